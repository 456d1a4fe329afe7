"""MXNet Gluon's ``gluon.loss`` classes as a thin layer over fastloss's fused kernels.

Switch ``from mxnet.gluon import loss as gloss`` to ``from fastloss import gluon as gloss``:
same class names, constructor arguments and defaults, same numbers (NumPy arrays in and
out), plus gradients::

    loss = gluon.L2Loss()
    per_sample = loss(pred, label, sample_weight)            # one loss per sample
    per_sample, grad = loss.loss_and_grad(pred, label)       # grad of per_sample.sum()

Semantics follow Gluon (MXNet 1.x ``python/mxnet/gluon/loss.py``): each element loss is
multiplied by ``sample_weight`` (broadcast) and by the scalar ``weight``, then averaged over
every axis but ``batch_axis``.  Every value and gradient comes from one fastloss call per
term with ``reduction="none"`` and the weights folded into ``sample_weight``
(``weight × sample_weight / elements per sample``), so the fused kernel returns the
gradient of the sum of the per-sample losses directly.  Nothing here re-implements loss
math; the glue (reshapes, weights, label mapping, per-sample sums) is NumPy.

Differences from Gluon, all deliberate:

* ``sample_weight`` must broadcast to the loss tensor (as Gluon documents); a 1-D
  ``sample_weight`` of length batch-size is aligned with ``batch_axis`` (Gluon would need
  shape ``(batch, 1)``).  Negative weights work (split into two passes).
* Labels are validated where fastloss validates them: ±1 for ``HingeLoss``,
  ``SquaredHingeLoss``, ``LogisticLoss('signed')`` and ``CosineEmbeddingLoss`` (Gluon gives
  0 loss for a cosine label outside ±1), [0, 1] for the binary cross-entropies, class
  indices in range for ``SoftmaxCrossEntropyLoss`` (Gluon's ``pick`` clips them), and
  non-negative dense labels for the softmax losses.
* ``CosineEmbeddingLoss`` returns shape ``(rows,)``, not Gluon's ``(rows, 1)``;
  ``PoissonNLLLoss`` returns a 0-d scalar, not shape ``(1,)``.
* ``PoissonNLLLoss(compute_full=True)`` masks the Stirling term to 0 for targets ≤ 1 as
  PyTorch does (MXNet returns NaN for targets equal to 0).
* ``KLDivLoss`` averages over the non-batch axes (MXNet 1.8 / 2.0; 1.9.x summed);
  ``sample_weight`` may not vary along its class ``axis``.
* ``CosineEmbeddingLoss``: cos = x·y / sqrt((‖x‖² + 1e-30)(‖y‖² + 1e-30)) instead of
  x·y / max(‖x‖‖y‖, 1e-12); both give 0 for an all-zero row and agree otherwise to
  rounding unless ‖x‖‖y‖ < 1e-12.
* ``TripletLoss`` also takes ``sample_weight`` (per sample; Gluon 2.0 does, 1.x does not).
* ``SDMLLoss`` applies ``weight`` (MXNet ignores it) and needs a batch of >= 2 pairs.
* ``FocalLoss`` is GluonCV's (``gluoncv.loss.FocalLoss``), without ``eps`` inside the
  logarithm and without ``from_logits=True``; see its docstring.
"""
from __future__ import annotations

import math

import numpy as np

from ._validate import bool_scalar, is_masked, masked_error, real_scalar
from .collection import weighted_call

__all__ = ["Loss", "L1Loss", "L2Loss", "HuberLoss", "SigmoidBinaryCrossEntropyLoss",
           "SigmoidBCELoss", "SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "HingeLoss",
           "SquaredHingeLoss", "LogisticLoss", "KLDivLoss", "TripletLoss", "CTCLoss",
           "CosineEmbeddingLoss", "PoissonNLLLoss", "SDMLLoss", "FocalLoss",
           "tutorial_curves"]


def _fl():
    import fastloss
    return fastloss


# ----------------------------------------------------------------------------- helpers
def _array(x, name, where="fastloss.gluon"):
    """``np.asarray(x)``; masked arrays and ragged sequences raise ``TypeError``."""
    if type(x) is not np.ndarray and is_masked(x):
        raise masked_error(name, where)
    try:
        return np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{where}: {name} could not be converted to an array: {exc}") from None


def _numeric(x, name, where="fastloss.gluon"):
    a = _array(x, name, where)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{where}: {name} must be a real numeric array, got dtype {a.dtype}")
    return a


def _as_float(x, name="pred", where="fastloss.gluon"):
    a = _numeric(x, name, where)
    if a.dtype.kind == "f" and a.dtype.itemsize in (4, 8):
        return a
    return a.astype(np.float64)


def _reshape_like(y, x, name="label", where="fastloss.gluon"):
    """Gluon's ``_reshape_like``: ``y`` reshaped to ``x``'s shape (same number of elements)."""
    y = _numeric(y, name, where)
    if y.shape != x.shape and y.size == x.size:
        y = y.reshape(x.shape)
    return y


def _integral(a, name, where, what="integers"):
    """An integer (int64) copy of ``a``; floats must be finite whole numbers (1.7 is not
    truncated to 1), strings and other dtypes raise ``TypeError``."""
    a = _array(a, name, where)
    if a.dtype.kind in "iub":
        return a.astype(np.int64) if a.dtype.kind != "u" or a.dtype.itemsize < 8 else a
    if a.dtype.kind != "f":
        raise TypeError(f"{where}: {name} must be {what}, got dtype {a.dtype}")
    bad = ~np.isfinite(a) | (a != np.trunc(a)) | (np.abs(a) > 2.0 ** 62)
    if bad.any():
        raise ValueError(f"{where}: {name} must be {what} (whole numbers), "
                         f"found {a[bad].flat[0].item()!r}")
    return a.astype(np.int64)


def _norm_axis(axis, ndim, what="batch_axis"):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"fastloss.gluon: {what} must be an integer, got {axis!r}")
    if ndim == 0:
        raise ValueError("fastloss.gluon: inputs need a batch axis (got a 0-d array)")
    if not -ndim <= axis < ndim:
        raise ValueError(f"fastloss.gluon: {what} {axis} is out of range for {ndim}-D inputs")
    return int(axis) % ndim


def _align(sw, shape, ba, dtype):
    """``sample_weight`` as an array that broadcasts to ``shape`` (a 1-D weight of the batch
    size is aligned with the batch axis)."""
    w = _numeric(sw, "sample_weight")
    w = w.astype(dtype, copy=False)
    shape = tuple(shape)
    if w.ndim == 1 and len(shape) > 1 and w.shape[0] == shape[ba] and w.shape[0] != 1:
        w = w.reshape(tuple(-1 if i == ba else 1 for i in range(len(shape))))
    try:
        ok = np.broadcast_shapes(w.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"fastloss.gluon: sample_weight of shape {np.shape(sw)} does not "
                         f"broadcast to the loss shape {shape}")
    return w.reshape((1,) * (len(shape) - w.ndim) + w.shape)


def _per_sample(v, ba):
    axes = tuple(i for i in range(v.ndim) if i != ba)
    return v.sum(axis=axes) if axes else v


def _nums(want_grad, n=1):
    return tuple(range(n)) if want_grad else None


class Loss:
    """Base class: ``weight`` (global scalar or None) and ``batch_axis``.

    ``loss(*inputs, sample_weight=None)`` returns one loss per sample;
    ``loss.loss_and_grad(*inputs, ...)`` returns ``(losses, grad)``, ``grad`` the gradient of
    ``losses.sum()`` with respect to the prediction (a tuple over every float input for
    ``TripletLoss``, ``CosineEmbeddingLoss`` and ``SDMLLoss``).
    """

    def __init__(self, weight, batch_axis, **kwargs):
        if weight is not None:
            weight = real_scalar(weight, "weight", self._where())
        if isinstance(batch_axis, (bool, np.bool_)) or not isinstance(batch_axis,
                                                                      (int, np.integer)):
            raise TypeError(f"{self._where()}: batch_axis must be an integer, "
                            f"got {batch_axis!r}")
        self._weight = weight
        self._batch_axis = int(batch_axis)

    @classmethod
    def _where(cls):
        return f"fastloss.gluon.{cls.__name__}"

    def _real(self, v, name, rule=None):
        """A real constructor/call parameter; ``rule`` ">=0" or ">0"; must be finite."""
        v = real_scalar(v, name, self._where())
        if not math.isfinite(v) or (rule == ">=0" and v < 0) or (rule == ">0" and v <= 0):
            cond = {">=0": " and >= 0", ">0": " and > 0"}.get(rule, "")
            raise ValueError(f"{self._where()}: {name} must be finite{cond}, got {v!r}")
        return v

    def _flag(self, v, name):
        return bool_scalar(v, name, self._where())

    def _check_inputs(self, args, kwargs):
        names = self._forward.__code__.co_varnames[2:]   # after (self, want_grad)
        for i, a in enumerate(args):
            if type(a) is not np.ndarray and is_masked(a):
                raise masked_error(names[i] if i < len(names) else f"input {i}",
                                   self._where())
        for k, a in kwargs.items():
            if type(a) is not np.ndarray and is_masked(a):
                raise masked_error(k, self._where())

    def __repr__(self):
        return f"{type(self).__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def __call__(self, *args, **kwargs):
        """The per-sample losses, as Gluon's ``loss(pred, label, sample_weight)``.

        Parameters
        ----------
        *args : array_like
            The loss's inputs (``pred, label`` for most classes), NumPy arrays or anything
            ``np.asarray`` takes; float32 or float64 predictions keep their dtype.
        **kwargs
            ``sample_weight`` (broadcast to the loss tensor; a 1-D array of batch length is
            aligned with ``batch_axis``) and the class's call arguments.

        Returns
        -------
        ndarray
            One loss per sample (shape of the batch axis), each the mean over the non-batch
            axes of ``weight · sample_weight · ℓ``.
        """
        self._check_inputs(args, kwargs)
        return self._forward(False, *args, **kwargs)[0]

    forward = __call__

    def loss_and_grad(self, *args, **kwargs):
        """``(per-sample losses, gradient of their sum)`` from the same fused pass.

        Takes the arguments of :meth:`__call__`.

        Returns
        -------
        losses : ndarray
            The per-sample losses, as :meth:`__call__` returns them.
        grad : ndarray or tuple of ndarray
            The gradient of ``losses.sum()`` with respect to the prediction, like it (a
            tuple over every float input for ``TripletLoss``, ``CosineEmbeddingLoss`` and
            ``SDMLLoss``).
        """
        self._check_inputs(args, kwargs)
        return self._forward(True, *args, **kwargs)

    def _w(self):
        return 1.0 if self._weight is None else float(self._weight)

    def _forward(self, want_grad, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- elementwise losses: mean over the non-batch axes of weight·sample_weight·ℓ
    def _elementwise(self, want_grad, fn, pred, terms, sample_weight, scale=1.0, **params):
        """Σ over ``terms`` [(target, multiplier or None)] of fn(pred, target) per sample."""
        x = _as_float(pred, "pred", self._where())
        ba = _norm_axis(self._batch_axis, x.ndim)
        M = int(np.prod([s for i, s in enumerate(x.shape) if i != ba]))
        if M == 0:
            nan = np.full(x.shape[ba], np.nan, x.dtype)
            return nan, (np.zeros_like(x) if want_grad else None)
        base = self._w() * scale / M
        sw = None if sample_weight is None else _align(sample_weight, x.shape, ba, x.dtype)
        per = grad = None
        for target, mult in terms:
            w = base
            if sw is not None:
                w = sw * x.dtype.type(base)
            if mult is not None:
                w = w * mult
            v, g = weighted_call(fn, (x, target), dict(params, reduction="none"), w,
                                 _nums(want_grad), names=("pred", "label"),
                                 where=self._where())
            p = _per_sample(v, ba)
            per = p if per is None else per + p
            if want_grad:
                grad = g[0] if grad is None else grad + g[0]
        return per, grad


# ------------------------------------------------------------------ regression losses
class L1Loss(Loss):
    """|label − pred|, averaged over the non-batch axes (``fastloss.absolute_error``)."""

    def __init__(self, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)

    def _forward(self, want_grad, pred, label, sample_weight=None):
        x = _as_float(pred)
        return self._elementwise(want_grad, _fl().absolute_error, x,
                                 [(_reshape_like(label, x), None)], sample_weight)


class L2Loss(Loss):
    """½ (label − pred)², averaged over the non-batch axes (``fastloss.squared_error`` × ½)."""

    def __init__(self, weight=1., batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)

    def _forward(self, want_grad, pred, label, sample_weight=None):
        x = _as_float(pred)
        return self._elementwise(want_grad, _fl().squared_error, x,
                                 [(_reshape_like(label, x), None)], sample_weight, scale=0.5)


class HuberLoss(Loss):
    """Gluon's smoothed L1: (0.5/ρ) d² for |d| < ρ, |d| − ρ/2 above
    (``fastloss.smooth_l1(beta=rho)``, PyTorch's ``smooth_l1_loss``)."""

    def __init__(self, rho=1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._rho = self._real(rho, "rho", ">=0")

    def _forward(self, want_grad, pred, label, sample_weight=None):
        x = _as_float(pred)
        return self._elementwise(want_grad, _fl().smooth_l1, x, [(_reshape_like(label, x), None)],
                                 sample_weight, beta=self._rho)


# -------------------------------------------------------------- binary classification
class SigmoidBinaryCrossEntropyLoss(Loss):
    """Binary cross-entropy on logits, or on probabilities with ``from_sigmoid=True``
    (eps = 1e-12 inside both logarithms, as Gluon).

    ``loss(pred, label, sample_weight=None, pos_weight=None)``: ``pos_weight`` multiplies
    the positive term; a scalar is fused (``sigmoid_binary_cross_entropy(pos_weight=)``),
    an array (e.g. shape ``(1, classes)``) runs two weighted passes,
    pos_weight·y·ℓ(pred, 1) + (1 − y)·ℓ(pred, 0).  Pass ``pos_weight`` by keyword (its
    position relative to ``sample_weight`` changed between MXNet versions).
    """

    def __init__(self, from_sigmoid=False, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_sigmoid = self._flag(from_sigmoid, "from_sigmoid")

    def _forward(self, want_grad, pred, label, sample_weight=None, pos_weight=None):
        fl = _fl()
        x = _as_float(pred, "pred", self._where())
        y = _as_float(_reshape_like(label, x, "label", self._where()), "label",
                      self._where()).astype(x.dtype, copy=False)
        if pos_weight is not None and not isinstance(pos_weight, (int, float)):
            pos_weight = _numeric(pos_weight, "pos_weight", self._where())
        pw_arr = pos_weight is not None and np.ndim(pos_weight) > 0
        pw = None if (pos_weight is None or pw_arr) else self._real(pos_weight, "pos_weight")
        if not self._from_sigmoid and not pw_arr:
            return self._elementwise(want_grad, fl.sigmoid_binary_cross_entropy, x, [(y, None)],
                                     sample_weight, pos_weight=1.0 if pw is None else pw)
        if self._from_sigmoid and (pos_weight is None or pw == 1.0):
            return self._elementwise(want_grad, fl.binary_cross_entropy, x, [(y, None)],
                                     sample_weight, eps=1e-12, clip=False)
        # pos_weight·y·ℓ(pred, 1) + (1 − y)·ℓ(pred, 0): two fused passes
        pwa = np.asarray(pos_weight, dtype=x.dtype)
        pos = np.broadcast_to(pwa * y, x.shape)
        neg = np.broadcast_to(1 - y, x.shape)
        fn = fl.binary_cross_entropy if self._from_sigmoid else fl.sigmoid_binary_cross_entropy
        params = {"eps": 1e-12, "clip": False} if self._from_sigmoid else {}
        return self._elementwise(want_grad, fn, x,
                                 [(np.ones(x.shape, x.dtype), pos),
                                  (np.zeros(x.shape, x.dtype), neg)], sample_weight, **params)


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


class HingeLoss(Loss):
    """max(0, margin − pred·label), labels ±1 (``fastloss.hinge``)."""

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = self._real(margin, "margin")

    def _forward(self, want_grad, pred, label, sample_weight=None):
        x = _as_float(pred)
        return self._elementwise(want_grad, _fl().hinge, x, [(_reshape_like(label, x), None)],
                                 sample_weight, margin=self._margin)


class SquaredHingeLoss(Loss):
    """max(0, margin − pred·label)², labels ±1 (``fastloss.squared_hinge``)."""

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = self._real(margin, "margin")

    def _forward(self, want_grad, pred, label, sample_weight=None):
        x = _as_float(pred)
        return self._elementwise(want_grad, _fl().squared_hinge, x,
                                 [(_reshape_like(label, x), None)], sample_weight,
                                 margin=self._margin)


class LogisticLoss(Loss):
    """log(1 + exp(−pred·label)) for labels ±1 (``label_format='signed'``,
    ``fastloss.logistic``) or the same loss for labels 0/1 (``'binary'``,
    ``fastloss.sigmoid_binary_cross_entropy``)."""

    def __init__(self, weight=None, batch_axis=0, label_format='signed', **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        if not isinstance(label_format, str) or label_format not in ("signed", "binary"):
            raise ValueError(f"{self._where()}: label_format must be 'signed' or 'binary', "
                             f"got {label_format!r}")
        self._label_format = label_format

    def _forward(self, want_grad, pred, label, sample_weight=None):
        fl = _fl()
        x = _as_float(pred)
        fn = fl.logistic if self._label_format == "signed" else fl.sigmoid_binary_cross_entropy
        return self._elementwise(want_grad, fn, x, [(_reshape_like(label, x), None)],
                                 sample_weight)


class PoissonNLLLoss(Loss):
    """Poisson negative log-likelihood, **mean over every element** (a 0-d scalar).

    ``from_logits=True``: exp(pred) − target·pred; else pred − target·log(pred + epsilon).
    ``compute_full``: adds the Stirling term where target > 1 (0 elsewhere, as PyTorch).
    ``loss(pred, target, sample_weight=None, epsilon=1e-08)``; ``fastloss.poisson_nll``.
    """

    def __init__(self, weight=None, from_logits=True, batch_axis=0, compute_full=False,
                 **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = self._flag(from_logits, "from_logits")
        self._compute_full = self._flag(compute_full, "compute_full")

    def _forward(self, want_grad, pred, target, sample_weight=None, epsilon=1e-08):
        x = _as_float(pred, "pred", self._where())
        y = _reshape_like(target, x, "target", self._where())
        epsilon = self._real(epsilon, "epsilon", ">=0")
        if epsilon >= 0.5:
            raise ValueError(f"{self._where()}: epsilon must be in [0, 0.5), got {epsilon!r}")
        n = x.size
        if n == 0:
            return x.dtype.type(np.nan), (np.zeros_like(x) if want_grad else None)
        base = self._w() / n
        w = base
        if sample_weight is not None:
            ba = _norm_axis(self._batch_axis, x.ndim) if x.ndim else 0
            w = _align(sample_weight, x.shape, ba, x.dtype) * x.dtype.type(base)
        v, g = weighted_call(_fl().poisson_nll, (x, y),
                             dict(log_input=self._from_logits, full=self._compute_full,
                                  eps=epsilon, reduction="sum"), w, _nums(want_grad),
                             names=("pred", "target"), where=self._where())
        return v, (g[0] if want_grad else None)


# ------------------------------------------------------------------ class-axis losses
class _RowMixin:
    """Helpers for losses reduced over a class ``axis`` by a row-wise fastloss function."""

    def _axes(self, x, axis):
        ax = _norm_axis(axis, x.ndim, "axis")
        ba = _norm_axis(self._batch_axis, x.ndim)
        if ax == ba:
            raise ValueError(f"fastloss.gluon: axis ({axis}) and batch_axis "
                             f"({self._batch_axis}) must differ")
        return ax, ba

    def _row_weights(self, x, ax, ba, sample_weight, M):
        """weight·sample_weight/M per row (rows: ``x``'s shape without ``ax``)."""
        base = self._w() / M
        if sample_weight is None:
            return base
        w = _align(sample_weight, x.shape, ba, x.dtype)
        if w.shape[ax] != 1:
            raise ValueError(f"fastloss.gluon.{type(self).__name__}: sample_weight of shape "
                             f"{np.shape(sample_weight)} varies along the class axis {ax}; "
                             f"only per-row weights are supported")
        kept = list(x.shape)
        kept[ax] = 1
        w = np.broadcast_to(w, kept).take(0, axis=ax)
        return w * x.dtype.type(base)

    @staticmethod
    def _row_per_sample(v, ax, ba):
        return _per_sample(np.asarray(v), ba - (1 if ba > ax else 0))


class SoftmaxCrossEntropyLoss(_RowMixin, Loss):
    """Softmax cross-entropy along ``axis``; one loss per sample (averaged over the other
    non-batch axes after picking).

    ``sparse_label=True``: integer class labels of ``pred``'s shape without ``axis``
    (``fastloss.softmax_cross_entropy_with_integer_labels``); ``False``: probability
    labels of ``pred``'s shape (``fastloss.softmax_cross_entropy``).  ``from_logits=True``:
    ``pred`` already holds log-probabilities and the loss is −Σ label·pred
    (``fastloss.kl_divergence`` against the labels plus their entropy, computed in NumPy;
    for dense labels with negative entries, ``fastloss.cosine_distance`` − 1).
    """

    def __init__(self, axis=-1, sparse_label=True, from_logits=False, weight=None,
                 batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._sparse_label = self._flag(sparse_label, "sparse_label")
        self._from_logits = self._flag(from_logits, "from_logits")

    def _forward(self, want_grad, pred, label, sample_weight=None):
        fl = _fl()
        x = _as_float(pred)
        ax, ba = self._axes(x, self._axis)
        C = x.shape[ax]
        rows = tuple(s for i, s in enumerate(x.shape) if i != ax)
        M = max(int(np.prod(rows)) // max(x.shape[ba], 1), 1)
        w = self._row_weights(x, ax, ba, sample_weight, M)
        nums = _nums(want_grad)
        kw = {"axis": ax, "reduction": "none"}
        extra = None
        if self._sparse_label:
            lab = _integral(label, "label", self._where(), "class indices")
            if lab.size != int(np.prod(rows)):
                raise ValueError(f"fastloss.gluon.SoftmaxCrossEntropyLoss: label of shape "
                                 f"{lab.shape} must have pred's shape without axis {ax}, "
                                 f"{rows}")
            lab = lab.reshape(rows)
            if lab.size and (lab.min() < 0 or lab.max() >= C):
                bad = lab[(lab < 0) | (lab >= C)].flat[0]
                raise ValueError(f"fastloss.gluon.SoftmaxCrossEntropyLoss: label must hold "
                                 f"class indices in [0, {C}), found {int(bad)}")
            if not self._from_logits:
                v, g = weighted_call(fl.softmax_cross_entropy_with_integer_labels, (x, lab),
                                     dict(kw, ignore_index=np.iinfo(np.int64).min), w, nums,
                                     names=("pred", "label"), where=self._where())
            else:
                onehot = np.zeros(x.shape, x.dtype)
                np.put_along_axis(onehot, np.expand_dims(lab, ax), 1, axis=ax)
                v, g = weighted_call(fl.kl_divergence, (x, onehot), kw, w, nums,
                                     names=("pred", "label"), where=self._where())
        else:
            y = _as_float(_reshape_like(label, x, "label", self._where()), "label",
                          self._where()).astype(x.dtype, copy=False)
            if not self._from_logits:
                v, g = weighted_call(fl.softmax_cross_entropy, (x, y), kw, w, nums,
                                     names=("pred", "label"), where=self._where())
            elif not np.any(y < 0):
                # −Σ y·pred = KL(y ‖ pred) + H(y)
                v, g = weighted_call(fl.kl_divergence, (x, y), kw, w, nums,
                                     names=("pred", "label"), where=self._where())
                pos = y > 0
                extra = -np.sum(np.where(pos, y * np.log(np.where(pos, y, 1)), 0), axis=ax)
            else:
                # −Σ y·pred = cosine_distance(pred, y) − 1
                v, g = weighted_call(fl.cosine_distance, (x, y), kw, w, nums,
                                     names=("pred", "label"), where=self._where())
                extra = -np.ones(rows, x.dtype)
        if extra is not None:
            v = v + extra * w
        per = self._row_per_sample(v, ax, ba)
        return per, (g[0] if want_grad else None)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(_RowMixin, Loss):
    """label·(log(label + 1e-12) − pred), averaged over every non-batch axis (so divided by
    the number of classes too), as Gluon 1.8 / 2.0.

    ``from_logits=True``: ``pred`` holds log-probabilities (``fastloss.kl_divergence``);
    ``False``: log_softmax along ``axis`` is fused (``fastloss.softmax_kl_divergence``).
    The kernels use log(label); the 1e-12 is restored exactly by adding
    Σ label·log1p(1e-12/label) per row in NumPy (it does not depend on ``pred``).
    """

    def __init__(self, from_logits=True, axis=-1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._from_logits = self._flag(from_logits, "from_logits")
        self._axis = axis

    def _forward(self, want_grad, pred, label, sample_weight=None):
        fl = _fl()
        x = _as_float(pred)
        ax, ba = self._axes(x, self._axis)
        y = _as_float(_reshape_like(label, x, "label", self._where()), "label",
                      self._where()).astype(x.dtype, copy=False)
        M = max(x.size // max(x.shape[ba], 1), 1)
        w = self._row_weights(x, ax, ba, sample_weight, M)
        fn = fl.kl_divergence if self._from_logits else fl.softmax_kl_divergence
        v, g = weighted_call(fn, (x, y), {"axis": ax, "reduction": "none"}, w,
                             _nums(want_grad), names=("pred", "label"), where=self._where())
        pos = y > 0
        corr = np.sum(np.where(pos, y * np.log1p(1e-12 / np.where(pos, y, 1)), 0), axis=ax)
        per = self._row_per_sample(v + corr * w, ax, ba)
        return per, (g[0] if want_grad else None)


class TripletLoss(Loss):
    """max(0, ‖positive − pred‖² − ‖negative − pred‖² + margin), squared distances summed
    over every non-batch axis (``fastloss.triplet_margin(squared=True)``).

    ``loss(pred, positive, negative, sample_weight=None)``; ``loss_and_grad`` returns the
    gradients with respect to all three inputs.
    """

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = self._real(margin, "margin")

    def _forward(self, want_grad, pred, positive, negative, sample_weight=None):
        x = _as_float(pred)
        ba = _norm_axis(self._batch_axis, x.ndim)
        B = x.shape[ba]
        moved = np.moveaxis(x, ba, 0).shape

        def rows(a, name):
            a = _reshape_like(a, x, name, self._where()).astype(x.dtype, copy=False)
            if a.shape != x.shape:
                raise ValueError(f"{self._where()}: {name} of shape {a.shape} does not match "
                                 f"pred of shape {x.shape}")
            return np.moveaxis(a, ba, 0).reshape(B, -1)

        w = self._w()
        if sample_weight is not None:
            sw = _numeric(sample_weight, "sample_weight", self._where()).astype(x.dtype)
            if sw.size != B:
                raise ValueError(f"fastloss.gluon.TripletLoss: sample_weight must hold one "
                                 f"weight per sample ({B}), got shape {sw.shape}")
            w = sw.reshape(B) * x.dtype.type(w)
        v, g = weighted_call(_fl().triplet_margin, (rows(x, "pred"), rows(positive, "positive"),
                                                     rows(negative, "negative")),
                             {"margin": self._margin, "squared": True,
                              "reduction": "none"}, w, _nums(want_grad, 3),
                             names=("pred", "positive", "negative"), where=self._where())
        if not want_grad:
            return v, None
        back = tuple(np.moveaxis(gi.reshape(moved), 0, ba) for gi in g)
        return v, back


class CosineEmbeddingLoss(Loss):
    """1 − cos(x1, x2) for label 1, max(0, cos(x1, x2) − margin) for label −1, along the
    last axis (``fastloss.cosine_embedding``); one loss per row, shape ``(rows,)``.

    ``loss(input1, input2, label, sample_weight=None)``; ``loss_and_grad`` returns the
    gradients with respect to both inputs.
    """

    def __init__(self, weight=None, batch_axis=0, margin=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._margin = self._real(margin, "margin")

    def _forward(self, want_grad, input1, input2, label, sample_weight=None):
        x2 = _as_float(input2, "input2", self._where())
        x1 = _reshape_like(_as_float(input1, "input1", self._where()), x2, "input1",
                           self._where())
        if x1.shape != x2.shape:
            raise ValueError(f"{self._where()}: input1 of shape {np.shape(input1)} does not "
                             f"match input2 of shape {x2.shape}")
        x1 = x1.astype(x2.dtype, copy=False)
        shape = x2.shape
        D = shape[-1] if x2.ndim else 1
        a = x1.reshape(-1, D)
        b = x2.reshape(-1, D)
        R = a.shape[0]
        lab = _numeric(label, "label", self._where()).astype(x2.dtype).reshape(-1)
        if lab.size != R:
            raise ValueError(f"fastloss.gluon.CosineEmbeddingLoss: label must hold one value "
                             f"per row ({R}), got {lab.size}")
        w = self._w()
        if sample_weight is not None:
            sw = _numeric(sample_weight, "sample_weight", self._where()).astype(x2.dtype)
            if sw.size not in (1, R):
                raise ValueError(f"fastloss.gluon.CosineEmbeddingLoss: sample_weight must "
                                 f"hold one weight per row ({R}), got shape {sw.shape}")
            w = sw.reshape(-1) * x2.dtype.type(w)
        v, g = weighted_call(_fl().cosine_embedding, (a, b, lab),
                             {"margin": self._margin, "eps": 1e-30,
                              "reduction": "none"}, w, _nums(want_grad, 2),
                             names=("input1", "input2", "label"), where=self._where())
        if not want_grad:
            return v, None
        return v, (g[0].reshape(np.shape(input1) if np.size(input1) == a.size else shape),
                   g[1].reshape(shape))


class CTCLoss(Loss):
    """Connectionist temporal classification on unnormalized activations, blank = the
    **last** class, labels padded with −1 (``fastloss.ctc_loss(blank=C-1)``).

    ``loss(pred, label, pred_lengths=None, label_lengths=None, sample_weight=None)``:
    ``pred`` is (N, T, C) for ``layout='NTC'`` or (T, N, C) for ``'TNC'``; ``label`` is
    (N, L) for ``label_layout='NT'`` or (L, N) for ``'TN'``.  Without ``label_lengths`` a
    label sequence ends at its first −1; without ``pred_lengths`` every sequence has T
    frames.  Returns ``weight·sample_weight·loss`` per sequence, shape (N,); the gradient
    is with respect to ``pred`` (same layout).
    """

    def __init__(self, layout='NTC', label_layout='NT', weight=None, **kwargs):
        if not isinstance(layout, str) or layout not in ("NTC", "TNC"):
            raise ValueError(f"fastloss.gluon.CTCLoss: layout must be 'NTC' or 'TNC', "
                             f"got {layout!r}")
        if not isinstance(label_layout, str) or label_layout not in ("NT", "TN"):
            raise ValueError(f"fastloss.gluon.CTCLoss: label_layout must be 'NT' or 'TN', "
                             f"got {label_layout!r}")
        self._layout = layout
        self._label_layout = label_layout
        super().__init__(weight, label_layout.find('N'), **kwargs)

    def _forward(self, want_grad, pred, label, pred_lengths=None, label_lengths=None,
                 sample_weight=None):
        x = _as_float(pred, "pred", self._where())
        if x.ndim != 3:
            raise ValueError(f"fastloss.gluon.CTCLoss: pred must be 3-D ({self._layout}), "
                             f"got shape {x.shape}")
        N, T = (x.shape[0], x.shape[1]) if self._layout == "NTC" else (x.shape[1], x.shape[0])
        C = x.shape[2]
        lab = _numeric(label, "label", self._where())
        if lab.ndim == 1:
            lab = lab.reshape((1, -1) if self._batch_axis == 0 else (-1, 1))
        if self._batch_axis == 1:
            lab = lab.T
        if lab.dtype.kind == "f":
            lab = np.where(np.isfinite(lab), lab, -1)   # NaN / inf: padding, as -1
        lab = _integral(lab, "label", self._where(), "class indices")
        if lab.shape[0] != N:
            raise ValueError(f"fastloss.gluon.CTCLoss: label has {lab.shape[0]} sequences, "
                             f"pred has {N}")
        if label_lengths is None:
            pad = lab == -1
            lab_len = np.where(pad.any(axis=1), pad.argmax(axis=1), lab.shape[1])
        else:
            lab_len = _integral(label_lengths, "label_lengths", self._where(),
                                "lengths").reshape(-1)
        in_len = (np.full(N, T, np.int64) if pred_lengths is None
                  else _integral(pred_lengths, "pred_lengths", self._where(),
                                 "lengths").reshape(-1))
        w = self._w()
        if sample_weight is not None:
            sw = _numeric(sample_weight, "sample_weight", self._where()).astype(np.float64)
            if sw.size not in (1, N):
                raise ValueError(f"fastloss.gluon.CTCLoss: sample_weight must hold one weight "
                                 f"per sequence ({N}), got shape {sw.shape}")
            w = np.broadcast_to(sw.reshape(-1), (N,)) * w
        v, g = weighted_call(_fl().ctc_loss, (x, lab, in_len, lab_len),
                             {"blank": C - 1, "layout": self._layout, "reduction": "none"},
                             w, _nums(want_grad),
                             names=("pred", "label", "pred_lengths", "label_lengths"),
                             where=self._where())
        return v, (g[0] if want_grad else None)


# ------------------------------------------------------------- metric learning, GluonCV
class SDMLLoss(Loss):
    r"""Batchwise smoothed deep metric learning loss (Bonadiman et al. 2019), MXNet's
    ``gluon.loss.SDMLLoss``: ``x1[i]`` and ``x2[i]`` are a positive pair, every other row
    of the batch a negative.

    With D_ij = ‖x1_i − x2_j‖² (B × B) and the smoothed labels
    L = (1 − s)·I + s/(B − 1)·(1 − I) (s = ``smoothing_parameter``), the loss of row i is
    Gluon's ``KLDivLoss(from_logits=True)`` of log_softmax(−D_i) against L_i:

    .. math::

        \ell_i = \frac{1}{B} \sum_j L_{ij}\,\bigl(\log(L_{ij} + 10^{-12})
                 - \log \operatorname{softmax}(-D_i)_j\bigr)

    (``KLDivLoss(from_logits=False)`` of −D: ``fastloss.softmax_kl_divergence``, its
    gradient chained through D in NumPy).  ``loss(x1, x2)``, both (batch_size, vector_dim);
    ``loss_and_grad`` returns the gradients with respect to both.

    Differences from MXNet: ``weight`` multiplies the loss (MXNet stores it but does not
    apply it; the default 1 gives the same numbers); a batch of fewer than 2 rows raises
    ``ValueError`` (MXNet divides by B − 1 = 0).
    """

    def __init__(self, smoothing_parameter=0.3, weight=1., batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        s = self._real(smoothing_parameter, "smoothing_parameter", ">=0")
        if s >= 1:
            raise ValueError(f"{self._where()}: smoothing_parameter must be < 1, got {s!r}")
        self.smoothing_parameter = s

    def _forward(self, want_grad, x1, x2):
        where = self._where()
        a = _as_float(x1, "x1", where)
        b = _as_float(x2, "x2", where)
        if a.ndim != 2 or b.shape != a.shape:
            raise ValueError(f"{where}: x1 and x2 must be 2-D of the same shape "
                             f"(batch_size, vector_dim), got {a.shape} and {b.shape}")
        if _norm_axis(self._batch_axis, 2) == 1:
            a, b = a.T, b.T
        dt = np.result_type(a.dtype, b.dtype)
        a, b = a.astype(dt, copy=False), b.astype(dt, copy=False)
        B = a.shape[0]
        if B < 2:
            raise ValueError(f"{where}: needs a batch of at least 2 pairs, got {B}")
        s = self.smoothing_parameter
        L = np.full((B, B), s / (B - 1), dt)
        np.fill_diagonal(L, 1 - s)
        D = np.empty((B, B), dt)
        step = max(1, (1 << 22) // max(B * a.shape[1], 1))
        for i in range(0, B, step):                 # direct differences: no cancellation
            D[i:i + step] = np.sum((a[i:i + step, None, :] - b[None, :, :]) ** 2, axis=2)
        kl = KLDivLoss(from_logits=False, axis=1, weight=self._weight)
        per, gz = kl._forward(want_grad, -D, L)
        if not want_grad:
            return per, None
        gd = -gz                                    # d/dD = −d/dz
        rs = gd.sum(axis=1)[:, None]
        cs = gd.sum(axis=0)[:, None]
        g1 = 2 * (a * rs - gd @ b)                  # Σ_j gd_ij · 2(a_i − b_j)
        g2 = 2 * (b * cs - gd.T @ a)                # Σ_i gd_ij · 2(b_j − a_i)
        if _norm_axis(self._batch_axis, 2) == 1:
            g1, g2 = g1.T, g2.T
        return per, (g1.astype(dt, copy=False), g2.astype(dt, copy=False))


class FocalLoss(Loss):
    """GluonCV's ``gluoncv.loss.FocalLoss``: sigmoid focal loss per element,
    −α_t (1 − p_t)^γ log p_t with p = σ(pred), averaged (``size_average=True``) or summed
    over the non-batch axes (``fastloss.sigmoid_focal``).

    ``sparse_label=True``: ``label`` holds class indices and the targets are
    ``one_hot(label, num_class)`` along a new **last** axis (as GluonCV; ``pred`` has shape
    ``label.shape + (num_class,)``); ``False``: the targets are ``label > 0``.
    ``loss(pred, label, sample_weight=None)``.

    Differences from GluonCV: no ``eps`` inside the logarithm (GluonCV's
    log(min(p_t + eps, 1)); the kernel's log p_t is exact, the two differ by a relative
    eps/p_t); ``from_logits=True`` (``pred`` already probabilities) is not supported;
    class indices outside [0, num_class) raise ``ValueError`` (GluonCV's one_hot gives a
    row of zeros).  ``axis`` is accepted and unused, as in GluonCV.
    """

    def __init__(self, axis=-1, alpha=0.25, gamma=2, sparse_label=True, from_logits=False,
                 batch_axis=0, weight=None, num_class=None, eps=1e-12, size_average=True,
                 **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._alpha = self._real(alpha, "alpha")
        self._gamma = self._real(gamma, "gamma", ">=0")
        self._sparse_label = self._flag(sparse_label, "sparse_label")
        if self._sparse_label and (isinstance(num_class, bool)
                                   or not isinstance(num_class, (int, np.integer))
                                   or num_class < 1):
            raise ValueError(f"{self._where()}: Number of class > 0 must be provided if sparse "
                             f"label is used (num_class), got {num_class!r}")
        self._num_class = None if num_class is None else int(num_class)
        if self._flag(from_logits, "from_logits"):
            raise ValueError(f"{self._where()}: from_logits=True (probability inputs) is not "
                             f"supported; pass the logits with from_logits=False")
        self._eps = self._real(eps, "eps", ">=0")
        self._size_average = self._flag(size_average, "size_average")

    def _forward(self, want_grad, pred, label, sample_weight=None):
        where = self._where()
        x = _as_float(pred, "pred", where)
        if self._sparse_label:
            lab = _integral(label, "label", where, "class indices")
            K = self._num_class
            if lab.size and (lab.min() < 0 or lab.max() >= K):
                bad = lab.min() if lab.min() < 0 else lab.max()
                raise ValueError(f"{where}: label must hold class indices in [0, {K}), "
                                 f"found {int(bad)}")
            if x.shape != lab.shape + (K,):
                raise ValueError(f"{where}: pred of shape {x.shape} must have shape "
                                 f"label.shape + (num_class,) = {lab.shape + (K,)}")
            y = (lab[..., None] == np.arange(K)).astype(x.dtype)
        else:
            y = _numeric(_reshape_like(label, x, "label", where), "label", where)
            if y.shape != x.shape:
                raise ValueError(f"{where}: label of shape {y.shape} must match pred of "
                                 f"shape {x.shape}")
            y = (y > 0).astype(x.dtype)
        ba = _norm_axis(self._batch_axis, x.ndim)
        M = int(np.prod([d for i, d in enumerate(x.shape) if i != ba]))
        scale = 1.0 if self._size_average else float(max(M, 1))
        return self._elementwise(want_grad, _fl().sigmoid_focal, x, [(y, None)], sample_weight,
                                 scale=scale, alpha=self._alpha, gamma=self._gamma)


# --------------------------------------------------------------------- tutorial plots
def tutorial_curves(start=-5.0, stop=5.0, step=0.1):
    """The Gluon loss tutorial's curves: ``{name: (pred, loss, grad)}``.

    Regression losses (``L1Loss``, ``L2Loss``, ``HuberLoss``) at target 0 and
    classification losses (``SigmoidBCELoss``, ``LogisticLoss``, ``HingeLoss``,
    ``SquaredHingeLoss``) at label 1, over ``pred`` = start, start + step, … < stop
    (``nd.arange(-5, 5, 0.1)``: 100 points).

    Returns
    -------
    dict
        ``{class name: (pred, loss, grad)}``, three float64 arrays each: the predictions,
        the per-sample losses and their gradients.
    """
    fn = "fastloss.gluon.tutorial_curves"
    start, stop, step = (real_scalar(v, k, fn) for k, v in
                         (("start", start), ("stop", stop), ("step", step)))
    for k, v in (("start", start), ("stop", stop), ("step", step)):
        if not math.isfinite(v):
            raise ValueError(f"{fn}: {k} must be finite, got {v!r}")
    if step == 0:
        raise ValueError(f"{fn}: step must be non-zero")
    span = (stop - start) / step
    if not span <= 1e7:
        raise ValueError(f"{fn}: (stop - start) / step = {span:g} points is too many")
    n = max(int(round(span)), 0)
    x = start + step * np.arange(n, dtype=np.float64)
    zeros, ones = np.zeros_like(x), np.ones_like(x)
    out = {}
    for name, loss, lab in (("L1Loss", L1Loss(), zeros), ("L2Loss", L2Loss(), zeros),
                            ("HuberLoss", HuberLoss(rho=1), zeros),
                            ("SigmoidBCELoss", SigmoidBCELoss(), ones),
                            ("LogisticLoss", LogisticLoss(), ones),
                            ("HingeLoss", HingeLoss(), ones),
                            ("SquaredHingeLoss", SquaredHingeLoss(), ones)):
        v, g = loss.loss_and_grad(x, lab)
        out[name] = (x, v, g)
    return out
