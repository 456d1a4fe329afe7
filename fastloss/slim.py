"""TF-Slim's ``slim.losses`` (``tf.contrib.losses``) as a thin layer over fastloss's kernels.

Switch ``slim.losses.X(...)`` to ``fastloss.slim.X(...)``: same names, argument order,
defaults and numbers (NumPy in, NumPy out), plus a gradient::

    loss = fastloss.slim.softmax_cross_entropy(logits, onehot, weights=w)
    loss, dlogits = fastloss.slim.softmax_cross_entropy.value_and_grad(logits, onehot, w)

**Gradients.**  Every function ``f`` has an attribute ``f.value_and_grad`` with ``f``'s
signature returning ``(value, gradient with respect to the first argument)`` from the
same fused pass (``fastloss.slim.value_and_grad(f)`` returns that attribute).

**Reduction** (Slim's ``compute_weighted_loss``): the sum of the weighted element losses
divided by the number of *present* elements — elements whose broadcast weight is
non-zero, 0 when there are none.  ``weights`` is a scalar, ``[batch_size]``, or a prefix
of the loss's shape (``[batch_size, d1, …]``), aligned with the loss's leading axes (not
NumPy's trailing ones); a trailing dimension of size 1 is squeezed first.  The count is
Slim's: non-zero weights times the size of the dimensions the weights do not cover.  The
value is one fastloss call with ``sample_weight = weights / num_present`` and
``reduction="sum"``; negative weights are allowed (split into two passes).

**Reductions** (``reduction=``, keyword, on every function but
``mean_pairwise_squared_error``, which has none in TF either): ``None`` (the default) is
Slim's reduction above; a ``tf.compat.v1.losses.Reduction`` name — the attribute name
(``"SUM_OVER_BATCH_SIZE"``), TF's value (``"weighted_sum_over_batch_size"``) or
``fastloss.slim.Reduction.SUM_OVER_BATCH_SIZE`` — applies TF's ``compute_weighted_loss``
to the weighted element losses w·ℓ (weights aligned with the leading axes as above and
broadcast to the loss's shape): ``NONE`` returns them unreduced (the gradient is that of
their sum), ``SUM`` their sum, ``MEAN`` the sum over Σ w, ``SUM_OVER_BATCH_SIZE`` over
the number of elements, ``SUM_BY_NONZERO_WEIGHTS`` = ``SUM_OVER_NONZERO_WEIGHTS``
(``tf.compat.v1.losses``' default) over the number of non-zero broadcast weights; a zero
divisor gives 0 (TF's ``div_no_nan``).  That last count equals Slim's whenever no weight
dimension of size 1 is broadcast over a longer loss dimension it covers (Slim counts such
a weight once, ``tf.compat.v1`` once per element it broadcasts to).

**Collections.**  ``loss_collection=`` (keyword): the TF collection key the result is
added to, default ``GraphKeys.LOSSES`` (``"losses"``); None adds nothing;
``GraphKeys.REGULARIZATION_LOSSES`` adds it as a regularization term (read by
``get_regularization_losses`` / ``get_regularization_loss`` and part of
``get_total_loss``); terms of any other key are kept apart (read them with
``get_losses(loss_collection=key)`` or ``get_default_collection().get_collection(key)``)
and are not part of the totals.  ``add_loss(loss, loss_collection=key)`` takes the same
keys; ``get_regularization_loss(scope=None)`` is TF's sum of the regularization terms (0.0
without any).

Each function adds its result to the default :class:`LossCollection`
(the innermost ``with LossCollection() as c:`` block's, else a process-wide one), as
Slim adds to ``GraphKeys.LOSSES`` — except ``hinge_loss``, which returns unreduced
element losses and adds nothing, exactly as Slim.  ``add_loss``, ``get_losses``,
``get_regularization_losses`` and ``get_total_loss`` read that collection;
``get_default_collection().value_and_grads()`` returns the total with gradients inside a
``with LossCollection()`` block.  The process-wide default keeps values only, and at most
``fastloss.collection.DEFAULT_MAX_TERMS`` recent terms (older ones are dropped with one
warning), so a training loop runs in constant memory; scope each step with
``with LossCollection() as c:`` (or call ``reset_default_collection()``) to total it.

**Differences from ``tf.losses``** (TF ≥ 1.0, which replaced ``tf.contrib.losses``):

* argument order: ``tf.losses.X(labels, predictions, ...)`` puts labels first; here, as in
  Slim, predictions/logits come first (``softmax_cross_entropy(logits, onehot_labels)``,
  ``log_loss(predictions, labels)`` …).  ``tf.losses`` also renamed ``dim`` to ``axis``.
* ``hinge_loss``: Slim returns the unreduced element losses and takes no weights;
  ``tf.losses.hinge_loss(labels, logits, weights)`` reduces them like the other losses.
* ``mean_pairwise_squared_error``: Slim divides the per-sample pair sum by n² (per
  sample 2·Σd²/n − 2·(Σd)²/n², then weights and **sums** over the batch);
  ``tf.losses`` averages over the n(n−1)/2 pairs (2·(nΣd² − (Σd)²)/(n(n−1))) — that is
  ``fastloss.mean_pairwise_squared_error``; here Slim's value is that times (n−1)/n.
* ``cosine_distance``: Slim sums over ``axis`` without keeping it (weights refer to the
  reduced shape); ``tf.losses`` keeps the axis (weights may then have size 1 there —
  accepted here too and squeezed).
* ``tf.losses`` functions take ``reduction=``; Slim has only the mean above (here
  ``reduction=None``, the default; TF's names are accepted, see **Reductions**).
* ``huber_loss`` (``tf.losses`` only; predictions first here too), and ``hinge_loss``
  with ``weights=``/``reduction=`` by keyword, reduce as ``tf.losses`` does.

**metric_learning**: ``fastloss.slim.metric_learning`` holds
``tf.contrib.losses.metric_learning``'s ``contrastive_loss``, ``npairs_loss``,
``triplet_semihard_loss`` and ``lifted_struct_loss`` (TF's argument order, labels first;
the mean of ``fastloss.contrastive`` / ``npairs`` / ``triplet_semihard`` /
``lifted_struct``); as in TF they add nothing to the collection, and ``f.value_and_grad``
differentiates with respect to the embeddings.

Other notes: inputs keep their float dtype (Slim casts to float32); labels are validated
where fastloss validates them ([0, 1] for ``log_loss``/``sigmoid_cross_entropy``, {0, 1} for
``hinge_loss``, class indices in range for the sparse losses, non-negative dense labels
for ``softmax_cross_entropy``); ``log_loss`` also requires predictions in [0, 1].
``scope`` names the term in the collection (``get_losses(scope)`` filters with
``re.match``).  A weights array of shape ``[1]`` follows Slim's count literally
(it counts as one present element per sample, unlike a scalar).
"""
from __future__ import annotations

import functools
import inspect

import math

import numpy as np

from ._validate import is_masked, masked_error, real_scalar
from .collection import (LossCollection, add_loss, get_default_collection, get_losses,
                         get_regularization_loss, get_regularization_losses, get_total_loss,
                         reset_default_collection, weighted_call)

__all__ = ["absolute_difference", "mean_squared_error", "log_loss", "sigmoid_cross_entropy",
           "softmax_cross_entropy", "sparse_softmax_cross_entropy", "hinge_loss",
           "mean_pairwise_squared_error", "cosine_distance", "compute_weighted_loss",
           "multiclass_hinge_loss", "value_and_grad", "add_loss", "get_losses",
           "get_regularization_losses", "get_total_loss", "get_default_collection",
           "reset_default_collection", "LossCollection", "huber_loss", "Reduction",
           "GraphKeys", "get_regularization_loss", "metric_learning"]


class Reduction:
    """``tf.compat.v1.losses.Reduction``: the reduction names (their values are TF's).

    * ``NONE``: the weighted element losses, unreduced (the loss's shape);
    * ``SUM``: Σ w·ℓ;
    * ``MEAN``: Σ w·ℓ / Σ w (the weights broadcast to the loss's shape);
    * ``SUM_OVER_BATCH_SIZE``: Σ w·ℓ / (number of elements of the loss);
    * ``SUM_BY_NONZERO_WEIGHTS`` = ``SUM_OVER_NONZERO_WEIGHTS`` (``tf.compat.v1.losses``'
      default): Σ w·ℓ / (number of non-zero weights, broadcast to the loss's shape).

    Every quotient is 0 when its divisor is 0 (TF's ``div_no_nan``).
    """

    NONE = "none"
    SUM = "weighted_sum"
    SUM_OVER_BATCH_SIZE = "weighted_sum_over_batch_size"
    MEAN = "weighted_mean"
    SUM_BY_NONZERO_WEIGHTS = "weighted_sum_by_nonzero_weights"
    SUM_OVER_NONZERO_WEIGHTS = SUM_BY_NONZERO_WEIGHTS

    @classmethod
    def all(cls):
        """The reduction values, as TF's ``Reduction.all()``.

        Returns
        -------
        tuple of str
        """
        return (cls.NONE, cls.SUM, cls.MEAN, cls.SUM_OVER_BATCH_SIZE,
                cls.SUM_OVER_NONZERO_WEIGHTS, cls.SUM_BY_NONZERO_WEIGHTS)

    @classmethod
    def validate(cls, key):
        """Raise ``ValueError`` unless ``key`` is one of :meth:`all`.

        Returns
        -------
        None
        """
        if key not in cls.all():
            raise ValueError(f"Invalid Reduction Key {key!r}. Key should be one of "
                             f"{cls.all()}.")


_RED_NAMES = ("NONE", "SUM", "MEAN", "SUM_OVER_BATCH_SIZE", "SUM_OVER_NONZERO_WEIGHTS",
              "SUM_BY_NONZERO_WEIGHTS")


def _reduction(r, fn):
    """A reduction argument as TF's value (None stays None: Slim's reduction)."""
    if r is None:
        return None
    if isinstance(r, str):
        if r in Reduction.all():
            return r
        if r in _RED_NAMES:
            return getattr(Reduction, r)
    raise ValueError(f"fastloss.slim.{fn}: reduction must be None (Slim's) or a "
                     f"tf.compat.v1.losses.Reduction name {_RED_NAMES} or value "
                     f"{tuple(dict.fromkeys(Reduction.all()))}, got {r!r}")


class GraphKeys:
    """The TF collection keys the Slim functions' ``loss_collection`` takes."""

    LOSSES = "losses"
    REGULARIZATION_LOSSES = "regularization_losses"


def _collection_key(v, fn):
    if v is None or v is False:
        return False
    if v is True:
        return GraphKeys.LOSSES
    if isinstance(v, str):
        return v
    raise TypeError(f"fastloss.slim.{fn}: loss_collection must be a collection key (a "
                    f"string such as GraphKeys.LOSSES) or None, got {v!r}")


def _fl():
    import fastloss
    return fastloss


# ------------------------------------------------------------------------ plumbing
def _slim(collect=True):
    """Build a Slim function from ``impl(*args, want_grad, **kw) -> (value, grad)``; the
    public signature gains the keyword ``loss_collection`` (default ``GraphKeys.LOSSES``,
    None with ``collect=False``), consumed here."""

    def deco(impl):
        sig = inspect.signature(impl)
        params = [p for p in sig.parameters.values() if p.name != "want_grad"]
        first = params[0].name
        lc_default = GraphKeys.LOSSES if collect else None
        params.append(inspect.Parameter("loss_collection", inspect.Parameter.KEYWORD_ONLY,
                                        default=lc_default))
        pub_sig = sig.replace(parameters=params)

        def record(ba, v, g):
            key = _collection_key(ba.arguments.pop("loss_collection", lc_default),
                                  impl.__name__)
            if key is False:
                return
            args, kw = ba.args, ba.kwargs
            name = ba.arguments.get("scope") or impl.__name__
            compute = (lambda want_grad, a=args, k=kw: impl(*a, want_grad=want_grad, **k))
            get_default_collection()._add_snapshot(name, ba.arguments[first], v, g, compute,
                                                   collection=key)

        def bind(args, kwargs):
            ba = pub_sig.bind(*args, **kwargs)
            for k, a in ba.arguments.items():
                if type(a) is not np.ndarray and is_masked(a):
                    raise masked_error(k, f"fastloss.slim.{impl.__name__}")
            scope = ba.arguments.get("scope")
            if scope is not None and not isinstance(scope, str):
                raise TypeError(f"fastloss.slim.{impl.__name__}: scope must be a string or "
                                f"None, got {scope!r}")
            return ba

        def call(args, kwargs, want_grad):
            ba = bind(args, kwargs)
            lc = ba.arguments.pop("loss_collection", lc_default)
            _collection_key(lc, impl.__name__)          # checked before the kernel runs
            v, g = impl(*ba.args, want_grad=want_grad, **ba.kwargs)
            ba.arguments["loss_collection"] = lc
            record(ba, v, g)
            return v, g

        @functools.wraps(impl)
        def fn(*args, **kwargs):
            return call(args, kwargs, False)[0]

        def vg(*args, **kwargs):
            return call(args, kwargs, True)

        fn.__signature__ = pub_sig
        vg.__signature__ = pub_sig
        vg.__name__ = f"value_and_grad_{impl.__name__}"
        vg.__doc__ = (f"``{impl.__name__}``'s value and its gradient with respect to "
                      f"``{first}`` (one fused pass).")
        fn.value_and_grad = vg
        fn._slim_impl = impl
        return fn

    return deco


@functools.lru_cache(maxsize=None)
def _argnames(fname):
    """The Slim function's positional argument names (what its errors call the inputs)."""
    return tuple(inspect.signature(globals()[fname]).parameters)[:3]


def value_and_grad(fn):
    """``fn.value_and_grad``: ``fn``'s signature, returning ``(value, grad)`` with the
    gradient with respect to ``fn``'s first argument.

    Returns
    -------
    callable
        ``fn.value_and_grad``: ``fn``'s signature, returning ``(loss, gradient)``.
    """
    vg = getattr(fn, "value_and_grad", None)
    if vg is None or not hasattr(fn, "_slim_impl"):
        raise TypeError(f"{getattr(fn, '__name__', fn)!r} is not a fastloss.slim function")
    return vg


def _array(x, name, fn):
    if type(x) is not np.ndarray and is_masked(x):
        raise masked_error(name, f"fastloss.slim.{fn}")
    try:
        return np.asarray(x)
    except Exception as exc:
        raise TypeError(f"fastloss.slim.{fn}: {name} could not be converted to an array: "
                        f"{exc}") from None


def _numeric(x, name, fn):
    a = _array(x, name, fn)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"fastloss.slim.{fn}: {name} must be a real numeric array, "
                        f"got dtype {a.dtype}")
    return a


def _float(x, name, fn):
    a = _numeric(x, name, fn)
    if a.dtype.kind == "f" and a.dtype.itemsize in (4, 8):
        return a
    return a.astype(np.float64)


def _real(v, name, fn, lo=None, hi=None):
    """A real parameter, finite, within [lo, hi] when given."""
    v = real_scalar(v, name, f"fastloss.slim.{fn}")
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = "" if lo is None else f" in [{lo}, {hi}]" if hi is not None else f" >= {lo}"
        raise ValueError(f"fastloss.slim.{fn}: {name} must be finite{rng}, got {v!r}")
    return v


def _int(v, name, fn):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"fastloss.slim.{fn}: {name} must be an integer, got {v!r}")
    return int(v)


def _same_shape(x, y, fn, xn="predictions", yn="labels"):
    if y is None:
        raise TypeError(f"fastloss.slim.{fn}: {yn} is required (got None)")
    y = _numeric(y, yn, fn)
    if y.shape != x.shape:
        raise ValueError(f"fastloss.slim.{fn}: {yn} of shape {y.shape} is not compatible "
                         f"with {xn} of shape {x.shape}")
    return y


def _weights(weights, loss_shape, dtype, fn):
    """Slim's weights → (scalar or array broadcastable to ``loss_shape``, num_present)."""
    if weights is None:
        raise TypeError(f"fastloss.slim.{fn}: weights must be a number or an array, got None")
    w = _numeric(weights, "weights", fn).astype(np.float64)
    shape = tuple(loss_shape)
    if w.ndim == 0:
        v = w.item()
        return v, (float(np.prod(shape)) if v != 0 else 0.0)
    if w.ndim > 1 and w.shape[-1] == 1:
        w = w[..., 0]
    if w.ndim > len(shape) or any(d not in (1, s) for d, s in zip(w.shape, shape)):
        raise ValueError(f"fastloss.slim.{fn}: weights of shape {np.shape(weights)} must be a "
                         f"scalar, [batch_size] or a prefix of the loss shape {shape}")
    n = float(np.count_nonzero(w)) * float(np.prod(shape[w.ndim:]))
    return w.reshape(w.shape + (1,) * (len(shape) - w.ndim)).astype(dtype), n


def _divisor(red, w, n, loss_shape):
    """The divisor of Σ w·ℓ for reduction ``red`` (None: Slim's count ``n``)."""
    if red is None:
        return n
    if red == Reduction.SUM:
        return 1.0
    if red == Reduction.SUM_OVER_BATCH_SIZE:
        return float(np.prod(loss_shape))
    wb = np.broadcast_to(np.asarray(w, np.float64), tuple(loss_shape))
    if red == Reduction.MEAN:
        return float(np.sum(wb))
    return float(np.count_nonzero(wb))          # SUM_BY_NONZERO_WEIGHTS


def _reduced(fname, fn, args, params, weights, loss_shape, dtype, want_grad, reduction=None):
    """Σ w·ℓ / divisor from one fused ``reduction="sum"`` call (``reduction``: see
    :class:`Reduction`; None: Slim's num_present), or the unreduced w·ℓ for
    ``Reduction.NONE``; gradient w.r.t. args[0] (of the sum of w·ℓ for ``NONE``).
    Errors of the core function are raised in Slim's terms (names of ``fname``'s
    arguments)."""
    red = _reduction(reduction, fname)
    w, n = _weights(weights, loss_shape, dtype, fname)
    nums = (0,) if want_grad else None
    where = f"fastloss.slim.{fname}"
    if red == Reduction.NONE:
        v, g = weighted_call(fn, args, dict(params, reduction="none"), w, nums,
                             names=_argnames(fname), where=where)
        v = np.broadcast_to(np.asarray(v, dtype), tuple(loss_shape)).copy()
        return v, (g[0] if want_grad else None)
    d = _divisor(red, w, n, loss_shape)
    if d == 0:
        return dtype.type(0.0), (np.zeros(np.shape(args[0]), dtype) if want_grad else None)
    sw = w / d
    v, g = weighted_call(fn, args, dict(params, reduction="sum"), sw, nums,
                         names=_argnames(fname), where=where)
    return dtype.type(v), (g[0] if want_grad else None)


# --------------------------------------------------------------------- the losses
@_slim()
def absolute_difference(predictions, labels=None, weights=1.0, scope=None, *, reduction=None,
                        want_grad=False):
    """|predictions − labels|, Slim-reduced (``fastloss.absolute_error``).

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    x = _float(predictions, "predictions", "absolute_difference")
    y = _same_shape(x, labels, "absolute_difference")
    return _reduced("absolute_difference", _fl().absolute_error, (x, y), {}, weights, x.shape,
                    x.dtype, want_grad, reduction)


@_slim()
def mean_squared_error(predictions, labels=None, weights=1.0, scope=None, *, reduction=None,
                       want_grad=False):
    """(predictions − labels)², Slim-reduced (``fastloss.squared_error``; no ½).

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    x = _float(predictions, "predictions", "mean_squared_error")
    y = _same_shape(x, labels, "mean_squared_error")
    return _reduced("mean_squared_error", _fl().squared_error, (x, y), {}, weights, x.shape,
                    x.dtype, want_grad, reduction)


@_slim()
def log_loss(predictions, labels=None, weights=1.0, epsilon=1e-7, scope=None, *,
             reduction=None, want_grad=False):
    """−y·log(p + ε) − (1 − y)·log(1 − p + ε), Slim-reduced
    (``fastloss.binary_cross_entropy(eps=epsilon, clip=False)``).

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    x = _float(predictions, "predictions", "log_loss")
    y = _same_shape(x, labels, "log_loss")
    return _reduced("log_loss", _fl().binary_cross_entropy, (x, y),
                    {"eps": _epsilon(epsilon), "clip": False}, weights, x.shape, x.dtype,
                    want_grad, reduction)


def _epsilon(e):
    e = _real(e, "epsilon", "log_loss", 0.0)
    if e >= 0.5:
        raise ValueError(f"fastloss.slim.log_loss: epsilon must be in [0, 0.5), got {e!r}")
    return e


@_slim()
def sigmoid_cross_entropy(logits, multi_class_labels, weights=1.0, label_smoothing=0,
                          scope=None, *, reduction=None, want_grad=False):
    """Sigmoid cross-entropy on logits, labels smoothed toward ½:
    y·(1 − s) + s/2 (``fastloss.sigmoid_binary_cross_entropy``).

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    x = _float(logits, "logits", "sigmoid_cross_entropy")
    y = _same_shape(x, multi_class_labels, "sigmoid_cross_entropy", "logits",
                    "multi_class_labels")
    return _reduced("sigmoid_cross_entropy", _fl().sigmoid_binary_cross_entropy, (x, y),
                    {"label_smoothing": _real(label_smoothing, "label_smoothing",
                                              "sigmoid_cross_entropy", 0.0, 1.0)},
                    weights, x.shape, x.dtype, want_grad, reduction)


@_slim()
def softmax_cross_entropy(logits, onehot_labels, weights=1.0, label_smoothing=0, scope=None,
                          *, reduction=None, want_grad=False):
    """Softmax cross-entropy over the last axis, labels smoothed toward 1/C:
    y·(1 − s) + s/C (``fastloss.softmax_cross_entropy``); weights per sample.

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    x = _float(logits, "logits", "softmax_cross_entropy")
    if x.ndim < 1:
        raise ValueError("fastloss.slim.softmax_cross_entropy: logits need a class axis")
    y = _same_shape(x, onehot_labels, "softmax_cross_entropy", "logits", "onehot_labels")
    return _reduced("softmax_cross_entropy", _fl().softmax_cross_entropy, (x, y),
                    {"axis": -1, "label_smoothing": _real(label_smoothing, "label_smoothing",
                                                          "softmax_cross_entropy", 0.0, 1.0)},
                    weights,
                    x.shape[:-1], x.dtype, want_grad, reduction)


@_slim()
def sparse_softmax_cross_entropy(logits, labels, weights=1.0, scope=None, *, reduction=None,
                                 want_grad=False):
    """Softmax cross-entropy with integer labels ``[batch_size]`` or ``[batch_size, 1]``
    (``fastloss.softmax_cross_entropy_with_integer_labels``); logits ``[batch, classes]``.

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    x = _float(logits, "logits", "sparse_softmax_cross_entropy")
    lab = _array(labels, "labels", "sparse_softmax_cross_entropy")
    if lab.ndim == 0:
        raise ValueError("fastloss.slim.sparse_softmax_cross_entropy: labels need a batch axis")
    if lab.ndim > 2 or (lab.ndim == 2 and lab.shape[1] != 1):
        raise ValueError(f"fastloss.slim.sparse_softmax_cross_entropy: labels must have shape "
                         f"[batch_size] or [batch_size, 1], got {lab.shape}")
    lab = lab.reshape(lab.shape[0])
    if x.ndim != 2 or x.shape[0] != lab.shape[0]:
        raise ValueError(f"fastloss.slim.sparse_softmax_cross_entropy: logits must be "
                         f"[batch_size, num_classes] matching labels ({lab.shape[0]}), got "
                         f"shape {x.shape}")
    if lab.dtype.kind not in "iu":
        raise TypeError(f"fastloss.slim.sparse_softmax_cross_entropy: labels must be integers, "
                        f"got dtype {lab.dtype}")
    return _reduced("sparse_softmax_cross_entropy",
                    _fl().softmax_cross_entropy_with_integer_labels, (x, lab),
                    {"axis": -1, "ignore_index": int(np.iinfo(np.int64).min)}, weights,
                    x.shape[:-1], x.dtype, want_grad, reduction)


@_slim(collect=False)
def hinge_loss(logits, labels=None, scope=None, *, weights=1.0, reduction=None,
               want_grad=False):
    """Unreduced hinge losses max(0, 1 − (2·labels − 1)·logits) for labels in {0, 1}
    (``fastloss.hinge``); the gradient is that of their sum.  Not added to the collection
    (as Slim) unless ``loss_collection`` names one.

    ``reduction=None`` (Slim's): the element losses times ``weights``, unreduced; a
    :class:`Reduction` name reduces them as ``tf.compat.v1.losses.hinge_loss`` does.

    Returns
    -------
    ndarray or numpy scalar
        The unreduced element losses (Slim's ``hinge_loss`` does not reduce and
        adds nothing to the collection), or their reduction; ``value_and_grad`` also
        returns the gradient of their sum (of the reduced value).
    """
    x = _float(logits, "logits", "hinge_loss")
    y = _same_shape(x, labels, "hinge_loss", "logits")
    ok = (y == 0) | (y == 1)
    if not ok.all():
        raise ValueError(f"fastloss.slim.hinge_loss: labels must be 0 or 1 (Slim maps them "
                         f"to -1 and +1), found {y[~ok].flat[0].item()!r}")
    y = y.astype(x.dtype) * 2 - 1
    red = _reduction(reduction, "hinge_loss")
    if red is None and not (np.ndim(weights) == 0 and _numeric(weights, "weights",
                                                               "hinge_loss") == 1):
        red = Reduction.NONE
    if red is not None:
        return _reduced("hinge_loss", _fl().hinge, (x, y), {}, weights, x.shape, x.dtype,
                        want_grad, red)
    v, g = weighted_call(_fl().hinge, (x, y), {"reduction": "none"}, None,
                         (0,) if want_grad else None)
    return v, (g[0] if want_grad else None)


@_slim()
def mean_pairwise_squared_error(predictions, labels=None, weights=1.0, scope=None, *,
                                want_grad=False):
    """Slim's pairwise loss per sample, 2·Σd²/n − 2·(Σd)²/n² over its n elements, times
    its weight, **summed** over the batch.  ``weights``: a scalar or ``[batch_size]``.
    ``fastloss.mean_pairwise_squared_error`` (``tf.losses``' n(n−1) form) × (n−1)/n.

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    fname = "mean_pairwise_squared_error"
    x = _float(predictions, "predictions", fname)
    y = _same_shape(x, labels, fname)
    if x.ndim == 0:
        raise ValueError(f"fastloss.slim.{fname}: predictions need a batch axis")
    B = x.shape[0]
    n = float(np.prod(x.shape[1:]))
    if weights is None:
        raise TypeError(f"fastloss.slim.{fname}: weights must be a number or an array, got None")
    w = _numeric(weights, "weights", fname).astype(np.float64)
    if w.ndim > 0:
        if w.size != B or (w.ndim > 1 and w.shape != (B, 1)):
            raise ValueError(f"fastloss.slim.{fname}: weights must be a scalar or "
                             f"[batch_size] ({B}), got shape {w.shape}")
        w = w.reshape(B)
        present = float(np.count_nonzero(w)) * n
    else:
        present = B * n if w.item() != 0 else 0.0
    if present == 0:
        return x.dtype.type(0.0), (np.zeros(x.shape, x.dtype) if want_grad else None)
    f = (n - 1.0) / n
    sw = w.item() * f if w.ndim == 0 else (w * f).astype(x.dtype)
    v, g = weighted_call(_fl().mean_pairwise_squared_error, (x, y), {"reduction": "sum"}, sw,
                         (0,) if want_grad else None, names=_argnames(fname),
                         where=f"fastloss.slim.{fname}")
    return x.dtype.type(v), (g[0] if want_grad else None)


@_slim()
def cosine_distance(predictions, labels=None, axis=None, weights=1.0, scope=None, dim=None,
                    *, reduction=None, want_grad=False):
    """1 − Σ predictions·labels along ``axis`` (inputs assumed unit-normalized),
    Slim-reduced over the remaining axes (``fastloss.cosine_distance``).

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    fname = "cosine_distance"
    if dim is not None:
        if axis is not None:
            raise ValueError(f"fastloss.slim.{fname}: cannot specify both 'axis' and 'dim'")
        axis = dim
    if axis is None:
        raise ValueError(f"fastloss.slim.{fname}: `axis` and `dim` cannot both be None.")
    axis = _int(axis, "axis" if dim is None else "dim", fname)
    x = _float(predictions, "predictions", fname)
    y = _same_shape(x, labels, fname)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"fastloss.slim.{fname}: axis {axis} is out of range for shape "
                         f"{x.shape}")
    ax = axis % x.ndim
    loss_shape = x.shape[:ax] + x.shape[ax + 1:]
    if weights is None:
        raise TypeError(f"fastloss.slim.{fname}: weights must be a number or an array, got None")
    w = _numeric(weights, "weights", fname)
    if w.ndim == x.ndim and w.ndim > 1 and w.shape[ax] == 1 and ax != x.ndim - 1:
        w = np.take(w, 0, axis=ax)       # tf.losses form: the reduced axis kept with size 1
    return _reduced(fname, _fl().cosine_distance, (x, y), {"axis": ax}, w, loss_shape,
                    x.dtype, want_grad, reduction)


@_slim()
def multiclass_hinge_loss(logits, labels, weights=1.0, scope=None, *, reduction=None,
                          want_grad=False):
    """Multiclass SVM hinge Σ_{j≠y} max(0, s_j − s_y + 1) over the last axis, Slim-reduced
    (``fastloss.multiclass_hinge``, Weston–Watkins).  ``labels``: integer classes of shape
    ``logits.shape[:-1]`` (or with a trailing 1).

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    x = _float(logits, "logits", "multiclass_hinge_loss")
    if x.ndim < 1:
        raise ValueError("fastloss.slim.multiclass_hinge_loss: logits need a class axis")
    lab = _array(labels, "labels", "multiclass_hinge_loss")
    if lab.size != int(np.prod(x.shape[:-1])):
        raise ValueError(f"fastloss.slim.multiclass_hinge_loss: labels of shape {lab.shape} "
                         f"must match logits {x.shape} without the class axis")
    lab = lab.reshape(x.shape[:-1])
    return _reduced("multiclass_hinge_loss", _fl().multiclass_hinge, (x, lab),
                    {"margin": 1.0, "kind": "weston_watkins"}, weights, x.shape[:-1], x.dtype,
                    want_grad, reduction)


@_slim()
def huber_loss(predictions, labels=None, weights=1.0, delta=1.0, scope=None, *, reduction=None,
               want_grad=False):
    """Huber loss of d = predictions − labels, ``tf.compat.v1.losses.huber_loss``:
    ½ d² for |d| <= delta, delta·(|d| − ½ delta) beyond (``fastloss.huber``), reduced as
    the other losses (argument order predictions first, as Slim).

    Returns
    -------
    numpy scalar or ndarray
        The reduced loss (Slim's reduction with ``reduction=None``, else TF's); the
        unreduced w·ℓ with ``Reduction.NONE``. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    x = _float(predictions, "predictions", "huber_loss")
    y = _same_shape(x, labels, "huber_loss")
    return _reduced("huber_loss", _fl().huber, (x, y),
                    {"delta": _real(delta, "delta", "huber_loss")}, weights, x.shape, x.dtype,
                    want_grad, reduction)


@_slim()
def compute_weighted_loss(losses, weights=1.0, scope=None, *, reduction=None, want_grad=False):
    """Slim's reduction of precomputed element losses: Σ w·losses / num_present (NumPy;
    the gradient with respect to ``losses`` is the broadcast w / num_present).

    Returns
    -------
    numpy scalar
        The Slim-reduced loss: Σ w·ℓ / (number of present elements), 0 when no
        element is present; the inputs' float dtype. ``f.value_and_grad`` returns
        ``(loss, gradient with respect to the first argument)``.
    """
    ell = _float(losses, "losses", "compute_weighted_loss")
    red = _reduction(reduction, "compute_weighted_loss")
    w, n = _weights(weights, ell.shape, ell.dtype, "compute_weighted_loss")
    if red == Reduction.NONE:
        v = np.broadcast_to(np.asarray(w * ell, ell.dtype), ell.shape).copy()
        g = (np.broadcast_to(np.asarray(w, ell.dtype), ell.shape).copy() if want_grad
             else None)
        return v, g
    n = _divisor(red, w, n, ell.shape)
    if n == 0:
        return ell.dtype.type(0.0), (np.zeros(ell.shape, ell.dtype) if want_grad else None)
    v = ell.dtype.type(np.sum(w * ell, dtype=np.float64) / n)
    g = np.broadcast_to(np.asarray(w / n, ell.dtype), ell.shape).copy() if want_grad else None
    return v, g


# ------------------------------------------------------------------ metric_learning
def _metric(name, core, argnums, params):
    """A ``tf.contrib.losses.metric_learning`` function over ``fastloss.<core>``: TF's
    argument order and defaults (``params``), the mean reduction, nothing added to the
    collection (as TF); ``f.value_and_grad`` returns ``(value, gradient with respect to
    the embeddings)`` (a tuple over anchor and positive for the pair losses)."""
    first = ("labels", "embeddings_anchor", "embeddings_positive") if len(argnums) == 2 \
        else ("labels", "embeddings")
    P = inspect.Parameter
    sig = inspect.Signature(
        [P(n, P.POSITIONAL_OR_KEYWORD) for n in first]
        + [P(k, P.POSITIONAL_OR_KEYWORD, default=v) for k, v in params.items()])

    def call(args, kwargs, want_grad):
        ba = sig.bind(*args, **kwargs)
        ba.apply_defaults()
        a = dict(ba.arguments)
        fn = getattr(_fl(), core)
        pr = a.pop("print_losses", False)
        if not isinstance(pr, (bool, np.bool_)):
            raise TypeError(f"fastloss.slim.metric_learning.{name}: print_losses must be a "
                            f"bool, got {pr!r}")
        ins = tuple(a.pop(n) for n in first)
        where = f"fastloss.slim.metric_learning.{name}"
        v, g = weighted_call(fn, ins, a, None, argnums if want_grad else None,
                             names=first, where=where)
        if pr:     # TF prints the two terms of npairs_loss
            emb = [np.asarray(x, np.float64) for x in ins[1:]]
            l2 = 0.25 * a["reg_lambda"] * sum(np.mean(np.sum(e * e, axis=1)) for e in emb)
            print(f"{where}: cross entropy loss = {float(v) - float(l2)}, "
                  f"l2 loss = {float(l2)}")
        if not want_grad:
            return v, None
        return v, (g if len(argnums) == 2 else g[0])

    def f(*args, **kwargs):
        return call(args, kwargs, False)[0]

    def vg(*args, **kwargs):
        return call(args, kwargs, True)

    f.__name__ = f.__qualname__ = name
    f.__signature__ = vg.__signature__ = sig
    vg.__name__ = f"value_and_grad_{name}"
    f.__doc__ = (f"``tf.contrib.losses.metric_learning.{name}``: ``fastloss.{core}`` with "
                 f"TF's argument order and defaults, mean-reduced; not added to the "
                 f"collection (as TF).\n\n``{name}.value_and_grad`` returns ``(loss, "
                 f"gradient with respect to the embeddings)``"
                 + (" (a tuple: anchor, positive)" if len(argnums) == 2 else "")
                 + ".\n\nReturns\n-------\nnumpy scalar\n    The loss, the embeddings' "
                   "dtype.\n")
    vg.__doc__ = f"``{name}``'s value and its gradient with respect to the embeddings."
    f.value_and_grad = vg
    return f


def _metric_learning():
    import types

    m = types.ModuleType("fastloss.slim.metric_learning", (
        "TF-Slim's ``tf.contrib.losses.metric_learning`` over fastloss's metric-learning "
        "kernels: ``contrastive_loss(labels, embeddings_anchor, embeddings_positive, "
        "margin=1.0)``, ``npairs_loss(labels, embeddings_anchor, embeddings_positive, "
        "reg_lambda=0.002, print_losses=False)``, ``triplet_semihard_loss(labels, "
        "embeddings, margin=1.0)``, ``lifted_struct_loss(labels, embeddings, margin=1.0)`` "
        "(``fastloss.contrastive``, ``npairs``, ``triplet_semihard``, ``lifted_struct``; "
        "their mean, TF's value).  As in TF they add nothing to the loss collection."))
    m.contrastive_loss = _metric("contrastive_loss", "contrastive", (1, 2), {"margin": 1.0})
    m.npairs_loss = _metric("npairs_loss", "npairs", (1, 2),
                            {"reg_lambda": 0.002, "print_losses": False})
    m.triplet_semihard_loss = _metric("triplet_semihard_loss", "triplet_semihard", (1,),
                                      {"margin": 1.0})
    m.lifted_struct_loss = _metric("lifted_struct_loss", "lifted_struct", (1,),
                                   {"margin": 1.0})
    m.__all__ = ["contrastive_loss", "npairs_loss", "triplet_semihard_loss",
                 "lifted_struct_loss"]
    return m


metric_learning = _metric_learning()
