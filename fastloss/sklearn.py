"""Loss objects shaped like scikit-learn's ``sklearn._loss`` objects, computed by fastloss.

Each object wraps one registered fastloss loss and exposes the interface scikit-learn's
estimators call on their own losses (``HalfSquaredError``, ``HalfBinomialLoss``, ...)::

    loss(y_true, raw_prediction, sample_weight=None, loss_out=None, n_threads=1)
    gradient(y_true, raw_prediction, sample_weight=None, gradient_out=None, n_threads=1)
    loss_gradient(..., loss_out=None, gradient_out=None, n_threads=1)
    gradient_hessian(..., gradient_out=None, hessian_out=None, n_threads=1)
    __call__(y_true, raw_prediction, sample_weight=None, n_threads=1)   # weighted mean
    fit_intercept_only(y_true, sample_weight=None)
    init_gradient_and_hessian(n_samples, dtype=np.float64, order="F")
    link.link / link.inverse, predict, predict_proba, in_y_true_range, in_y_pred_range
    is_multiclass, n_classes, constant_hessian, approx_hessian, interval_y_true, interval_y_pred

Per-sample results (no reduction) come from the loss's fused kernel
(``value_and_grad(fn)(..., reduction="none")`` and ``grad_and_hessian``): with a sample weight
w the arrays are w·ℓ, w·ℓ', w·ℓ'' (as scikit-learn's).  float32 and float64 raw predictions
give results of the same dtype (float64 accumulation inside the kernels); ``y_true`` is
converted to the raw prediction's dtype.

What differs from scikit-learn's objects:

* The values are fastloss's losses, not scikit-learn's "half" losses: :class:`SquaredError`
  is (y - raw)² where ``HalfSquaredError`` is ½(y - raw)², so its gradient and Hessian are
  twice scikit-learn's.  :class:`PoissonNLL` (exp(raw) - y·raw), :class:`SigmoidBinaryCrossEntropy`
  and :class:`SoftmaxCrossEntropyWithIntegerLabels` equal ``HalfPoissonLoss``,
  ``HalfBinomialLoss`` and ``HalfMultinomialLoss`` exactly.
* Hessians are the exact second derivatives of the fastloss loss (0 for absolute error and
  pinball, 0 beyond ``delta`` for Huber); ``approx_hessian`` is False for every object.
  ``constant_hessian`` is True where the Hessian is the same number for every unweighted
  sample (squared error: 2; absolute error and pinball: 0), its value is
  ``hessian_constant``; ``init_gradient_and_hessian`` then returns a one-element Hessian
  array holding it (scikit-learn fills it with 1).
* Binary classification objects take ``y_true`` in {0, 1} (scikit-learn's convention); the
  margin losses (:class:`Hinge`, :class:`SquaredHinge`, :class:`Logistic`) also accept -1 for
  the negative class and map 0 to -1 before calling the ±1 kernels.
* ``predict`` is the inverse link (the expected target) for regression losses and the class
  index for classification losses; ``predict_proba`` exists for the probabilistic ones.

``binary_cross_entropy`` (whose input is a probability, not a raw prediction), the embedding
losses, ``kl_divergence`` (log-probabilities in), ``mean_pairwise_squared_error`` and CTC
have no object: they are not losses of a raw prediction against one target per sample.

Importing this module does not import scikit-learn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import fastloss as _fl

__all__ = [
    "Interval", "IdentityLink", "LogLink", "LogitLink", "SoftmaxLink", "FastLoss",
    "SquaredError", "AbsoluteError", "Huber", "SmoothL1", "LogCosh", "Quantile",
    "PoissonNLL", "SigmoidBinaryCrossEntropy", "SigmoidFocal", "Hinge", "SquaredHinge",
    "Logistic", "SoftmaxCrossEntropyWithIntegerLabels", "SoftmaxCrossEntropy",
    "MulticlassHinge", "LOSS_OBJECTS", "loss_object",
]


# --- intervals and links --------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A real interval; ``includes(x)`` is True when every element of ``x`` lies in it."""

    low: float
    high: float
    low_inclusive: bool
    high_inclusive: bool

    def includes(self, x) -> bool:
        x = np.asarray(x)
        lo = np.greater_equal if self.low_inclusive else np.greater
        hi = np.less_equal if self.high_inclusive else np.less
        return bool(np.all(lo(x, self.low)) and np.all(hi(x, self.high)))


_REAL = Interval(-np.inf, np.inf, False, False)


def _put(out, r):
    """``r``, or ``r`` written into ``out`` (returned) when a buffer is given."""
    if out is None:
        return r
    np.copyto(out, r)
    return out


def _float(a):
    a = np.asarray(a)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


class IdentityLink:
    """raw = y_pred."""

    interval_y_pred = _REAL

    @staticmethod
    def link(y_pred, out=None):
        return _put(out, y_pred) if out is not None else np.array(_float(y_pred), copy=True)

    @staticmethod
    def inverse(raw_prediction, out=None):
        return IdentityLink.link(raw_prediction, out)


class LogLink:
    """raw = log(y_pred)."""

    interval_y_pred = Interval(0, np.inf, False, False)

    @staticmethod
    def link(y_pred, out=None):
        return np.log(y_pred, out=out)

    @staticmethod
    def inverse(raw_prediction, out=None):
        return np.exp(raw_prediction, out=out)


class LogitLink:
    """raw = log(p / (1 - p)); inverse: the logistic sigmoid."""

    interval_y_pred = Interval(0, 1, False, False)

    @staticmethod
    def link(y_pred, out=None):
        y_pred = _float(y_pred)
        return _put(out, np.log(y_pred) - np.log1p(-y_pred))

    @staticmethod
    def inverse(raw_prediction, out=None):
        r = _float(raw_prediction)
        e = np.exp(-np.abs(r))
        return _put(out, np.where(r >= 0, 1 / (1 + e), e / (1 + e)).astype(r.dtype, copy=False))


class SoftmaxLink:
    """Symmetric multinomial logit: raw_k = log p_k - mean_j log p_j; inverse: softmax
    over the last axis."""

    interval_y_pred = Interval(0, 1, False, False)

    @staticmethod
    def link(y_pred, out=None):
        lp = np.log(_float(y_pred))
        return _put(out, lp - lp.mean(axis=-1, keepdims=True))

    @staticmethod
    def inverse(raw_prediction, out=None):
        r = _float(raw_prediction)
        e = np.exp(r - r.max(axis=-1, keepdims=True))
        return _put(out, e / e.sum(axis=-1, keepdims=True))


def _writable(a):
    """``a`` C-contiguous and writable (a read-only array would compile a kernel signature
    of its own)."""
    a = np.ascontiguousarray(a)
    return a if a.flags.writeable else a.copy()


# --- the base object ------------------------------------------------------------------------

class FastLoss:
    """A fastloss loss in scikit-learn's loss-object shape (see the module docstring).

    Subclasses set ``loss_name`` (the registered fastloss loss), ``link``, the label domain
    and, where one exists, a closed-form ``fit_intercept_only``.  Keyword arguments of the
    constructor are the loss's parameters (``Huber(delta=0.5)``); ``sample_weight`` is
    accepted for scikit-learn's signature (it only decides ``constant_hessian``).
    """

    loss_name: str = ""
    link = IdentityLink()
    is_multiclass = False
    is_classification = False
    interval_y_true = _REAL
    hessian_constant = None        # the Hessian of every unweighted sample, when constant
    approx_hessian = False
    differentiable = True

    def __init__(self, sample_weight=None, **params):
        info = _fl.LOSSES[self.loss_name]
        unknown = set(params) - set(info.params)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected parameter(s) "
                            f"{', '.join(sorted(unknown))}; {self.loss_name} takes "
                            f"{', '.join(info.params) or 'none'}")
        self.params = dict(params)
        self.n_classes = None
        self.constant_hessian = self.hessian_constant is not None and sample_weight is None
        self.interval_y_pred = self.link.interval_y_pred

    def __repr__(self):
        p = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({p})"

    @property
    def _info(self):
        return _fl.LOSSES[self.loss_name]

    @property
    def _fn(self):
        return self._info.func

    # -- label domain -------------------------------------------------------------------------
    def in_y_true_range(self, y) -> bool:
        """True if every element of ``y`` is a valid target."""
        return self.interval_y_true.includes(y)

    def in_y_pred_range(self, y) -> bool:
        """True if every element of ``y`` is a valid prediction (inverse-link space)."""
        return self.interval_y_pred.includes(y)

    # -- argument handling --------------------------------------------------------------------
    def _where(self, method):
        return f"{type(self).__name__}.{method}"

    def _raw(self, raw_prediction, method):
        raw = np.asarray(raw_prediction)
        if raw.dtype not in (np.float32, np.float64):
            if raw.dtype.kind in "biu":
                raw = raw.astype(np.float64)
            else:
                raise TypeError(f"{self._where(method)}: raw_prediction must be a float32 or "
                                f"float64 array, got dtype {raw.dtype}")
        if not self.is_multiclass:
            if raw.ndim == 2 and raw.shape[1] == 1:
                raw = raw[:, 0]
            if raw.ndim != 1:
                raise ValueError(f"{self._where(method)}: raw_prediction must have shape "
                                 f"(n_samples,) or (n_samples, 1), got {raw.shape}")
        elif raw.ndim != 2:
            raise ValueError(f"{self._where(method)}: raw_prediction must have shape "
                             f"(n_samples, n_classes), got {raw.shape}")
        return _writable(raw)

    def _weights(self, sample_weight, n, dt, method):
        # no weights run as weights of 1 (the same bits: w·ℓ with w = 1 is exact), so
        # that weighted and unweighted calls share one compiled kernel signature
        if sample_weight is None:
            return np.ones(n, dtype=dt)
        sw = np.asarray(sample_weight)
        if sw.ndim == 0:
            return np.full(n, sw, dtype=dt)
        if sw.shape != (n,):
            raise ValueError(f"{self._where(method)}: sample_weight must have shape ({n},), "
                             f"got {sw.shape}")
        return _writable(np.ascontiguousarray(sw, dtype=dt))

    def _target(self, y_true, raw, method):
        y = np.asarray(y_true)
        if y.shape != raw.shape[:1]:
            raise ValueError(f"{self._where(method)}: y_true must have shape "
                             f"({raw.shape[0]},), got {y.shape}")
        return _writable(np.ascontiguousarray(y, dtype=raw.dtype))

    def _args(self, y_true, raw_prediction, sample_weight, method):
        raw = self._raw(raw_prediction, method)
        y = self._target(y_true, raw, method)
        sw = self._weights(sample_weight, raw.shape[0], raw.dtype, method)
        return raw, y, sw

    def _kw(self, sw, n_threads):
        return dict(self.params, sample_weight=sw, reduction="none", n_threads=n_threads,
                    device="cpu")

    @staticmethod
    def _buffer(out, shape, dt):
        """``out`` if the kernel can write it directly, else None (computed, then copied)."""
        if (out is not None and isinstance(out, np.ndarray) and out.shape == shape
                and out.dtype == dt and out.flags.c_contiguous and out.flags.writeable):
            return out
        return None

    @staticmethod
    def _deliver(res, out, method, name):
        if out is None or res is out:
            return res
        out = np.asarray(out)
        if out.size != res.size:
            raise ValueError(f"{method}: {name} must have {res.size} elements, got shape "
                             f"{out.shape}")
        np.copyto(out.reshape(res.shape) if out.shape != res.shape else out, res,
                  casting="same_kind")
        return out

    @staticmethod
    def _loss_shape(raw):
        return raw.shape[:1]

    # -- per-sample arrays --------------------------------------------------------------------
    def loss(self, y_true, raw_prediction, sample_weight=None, loss_out=None, n_threads=1):
        """Per-sample loss w·ℓ, shape (n_samples,)."""
        raw, y, sw = self._args(y_true, raw_prediction, sample_weight, "loss")
        lo = self._buffer(loss_out, self._loss_shape(raw), raw.dtype)
        v = self._fn(raw, y, **self._kw(sw, n_threads), out=lo)
        return self._deliver(v, loss_out, self._where("loss"), "loss_out")

    def gradient(self, y_true, raw_prediction, sample_weight=None, gradient_out=None,
                 n_threads=1):
        """Per-sample gradient w·∂ℓ/∂raw, raw_prediction's shape."""
        raw, y, sw = self._args(y_true, raw_prediction, sample_weight, "gradient")
        go = self._buffer(gradient_out, raw.shape, raw.dtype)
        g = _fl.grad(self._fn)(raw, y, **self._kw(sw, n_threads), grad_out=go)
        return self._deliver(g, gradient_out, self._where("gradient"), "gradient_out")

    def loss_gradient(self, y_true, raw_prediction, sample_weight=None, loss_out=None,
                      gradient_out=None, n_threads=1):
        """(loss, gradient) from one fused pass."""
        raw, y, sw = self._args(y_true, raw_prediction, sample_weight, "loss_gradient")
        lo = self._buffer(loss_out, self._loss_shape(raw), raw.dtype)
        go = self._buffer(gradient_out, raw.shape, raw.dtype)
        v, g = _fl.value_and_grad(self._fn)(raw, y, **self._kw(sw, n_threads), out=lo,
                                            grad_out=go)
        m = self._where("loss_gradient")
        return (self._deliver(v, loss_out, m, "loss_out"),
                self._deliver(g, gradient_out, m, "gradient_out"))

    def gradient_hessian(self, y_true, raw_prediction, sample_weight=None, gradient_out=None,
                         hessian_out=None, n_threads=1):
        """(gradient, diagonal Hessian) w·ℓ', w·ℓ'', raw_prediction's shape."""
        raw, y, sw = self._args(y_true, raw_prediction, sample_weight, "gradient_hessian")
        go = self._buffer(gradient_out, raw.shape, raw.dtype)
        ho = self._buffer(hessian_out, raw.shape, raw.dtype)
        g, h = self._grad_hess(raw, y, sw, n_threads, go, ho)
        m = self._where("gradient_hessian")
        return (self._deliver(g, gradient_out, m, "gradient_out"),
                self._deliver(h, hessian_out, m, "hessian_out"))

    def _grad_hess(self, raw, y, sw, n_threads, go, ho):
        return _fl.grad_and_hessian(self._fn)(raw, y, **self._kw(sw, n_threads), grad_out=go,
                                              hess_out=ho)

    def __call__(self, y_true, raw_prediction, sample_weight=None, n_threads=1):
        """Weighted average of the per-sample loss (a float)."""
        raw, y, sw = self._args(y_true, raw_prediction, sample_weight, "__call__")
        v = self._fn(raw, y, **self._kw(sw, n_threads))          # w·ℓ
        return float(np.sum(v, dtype=np.float64) / np.sum(sw, dtype=np.float64))

    def init_gradient_and_hessian(self, n_samples, dtype=np.float64, order="F"):
        """Uninitialized gradient and Hessian arrays (a one-element Hessian holding
        ``hessian_constant`` when ``constant_hessian``)."""
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"{self._where('init_gradient_and_hessian')}: dtype must be "
                             f"np.float32 or np.float64, got {dtype}")
        shape = (n_samples, self.n_classes) if self.is_multiclass else (n_samples,)
        g = np.empty(shape, dtype=dtype, order=order)
        if self.constant_hessian:
            return g, np.full((1,), self.hessian_constant, dtype=dtype)
        return g, np.empty(shape, dtype=dtype, order=order)

    # -- intercept-only model -----------------------------------------------------------------
    def _y_w(self, y_true, sample_weight, method="fit_intercept_only"):
        y = np.asarray(y_true, dtype=np.float64)
        if y.ndim != 1:
            raise ValueError(f"{self._where(method)}: y_true must be 1-D, got shape {y.shape}")
        if y.size == 0:
            raise ValueError(f"{self._where(method)}: y_true is empty")
        w = np.ones_like(y) if sample_weight is None else np.ascontiguousarray(
            np.broadcast_to(np.asarray(sample_weight, dtype=np.float64), y.shape))
        if not np.all(w >= 0) or not w.sum() > 0:
            raise ValueError(f"{self._where(method)}: sample_weight must be non-negative with "
                             f"a positive sum")
        return y, w

    def fit_intercept_only(self, y_true, sample_weight=None):
        """The constant raw prediction minimizing Σ w·ℓ (closed form where one exists,
        else a 1-D root of the gradient)."""
        y, w = self._y_w(y_true, sample_weight)
        return self._root_1d(y, w)

    def _sum_grad(self, c, y, w):
        raw = np.full(y.shape, c)
        return float(_fl.grad(self._fn)(raw, self._target(y, raw, "fit_intercept_only"),
                                        **dict(self._kw(w, 1), reduction="sum")).sum())

    def _root_1d(self, y, w, lo=None, hi=None):
        """Root of the (monotone) summed gradient of a convex loss in [lo, hi]."""
        from scipy.optimize import brentq
        lo = float(np.min(y)) if lo is None else lo
        hi = float(np.max(y)) if hi is None else hi
        if lo == hi:
            return np.float64(lo)
        glo, ghi = self._sum_grad(lo, y, w), self._sum_grad(hi, y, w)
        if glo >= 0:
            return np.float64(lo)
        if ghi <= 0:
            return np.float64(hi)
        scale = max(abs(lo), abs(hi), 1.0)
        return np.float64(brentq(self._sum_grad, lo, hi, args=(y, w), xtol=1e-14 * scale,
                                 rtol=4 * np.finfo(float).eps, maxiter=200))

    # -- predictions --------------------------------------------------------------------------
    def predict(self, raw_prediction):
        """The inverse link of ``raw_prediction`` (the expected target)."""
        return self.link.inverse(self._raw(raw_prediction, "predict"))


def _weighted_quantile(y, w, q):
    """Smallest y_(k) with Σ_{j<=k} w_(j) >= q·Σw: a minimizer of Σ w ρ_q(y - c)."""
    order = np.argsort(y, kind="stable")
    ys, cw = y[order], np.cumsum(w[order])
    k = int(np.searchsorted(cw, q * cw[-1], side="left"))
    return np.float64(ys[min(k, ys.size - 1)])


# --- regression -----------------------------------------------------------------------------

class SquaredError(FastLoss):
    """(y - raw)², identity link (scikit-learn's ``HalfSquaredError`` times 2)."""

    loss_name = "squared_error"
    hessian_constant = 2.0

    def fit_intercept_only(self, y_true, sample_weight=None):
        y, w = self._y_w(y_true, sample_weight)
        return np.float64(np.average(y, weights=w))


class AbsoluteError(FastLoss):
    """|y - raw|, identity link; intercept: the weighted median."""

    loss_name = "absolute_error"
    hessian_constant = 0.0

    def fit_intercept_only(self, y_true, sample_weight=None):
        y, w = self._y_w(y_true, sample_weight)
        if sample_weight is None:
            return np.float64(np.median(y))
        return _weighted_quantile(y, w, 0.5)


class Quantile(FastLoss):
    """Pinball loss of quantile ``quantile`` (scikit-learn's ``PinballLoss``); intercept: the
    weighted ``quantile``-quantile."""

    loss_name = "quantile"
    hessian_constant = 0.0

    def fit_intercept_only(self, y_true, sample_weight=None):
        y, w = self._y_w(y_true, sample_weight)
        q = float(self.params.get("quantile", 0.5))
        if sample_weight is None:       # (as scikit-learn's PinballLoss: any point between
            return np.float64(np.percentile(y, 100 * q))   # two order statistics minimizes)
        return _weighted_quantile(y, w, q)


class Huber(FastLoss):
    """Huber loss with a fixed ``delta`` (scikit-learn's ``HuberLoss`` takes delta as a
    quantile of the residuals instead); intercept: 1-D root of the gradient."""

    loss_name = "huber"


class SmoothL1(FastLoss):
    """Smooth L1 (Huber / beta); intercept: 1-D root of the gradient."""

    loss_name = "smooth_l1"


class LogCosh(FastLoss):
    """log cosh(raw - y); intercept: 1-D root of the gradient."""

    loss_name = "log_cosh"


class PoissonNLL(FastLoss):
    """exp(raw) - y·raw (log link; scikit-learn's ``HalfPoissonLoss``); ``full=True`` adds
    the Stirling term.  Only ``log_input=True`` (the raw prediction is the log-rate)."""

    loss_name = "poisson_nll"
    link = LogLink()
    interval_y_true = Interval(0, np.inf, True, False)

    def __init__(self, sample_weight=None, **params):
        if not params.get("log_input", True):
            raise ValueError("PoissonNLL: log_input must be True (raw predictions are "
                             "log-rates)")
        super().__init__(sample_weight, **params)

    def fit_intercept_only(self, y_true, sample_weight=None):
        y, w = self._y_w(y_true, sample_weight)
        m = np.average(y, weights=w)
        return np.float64(np.log(max(m, 10 * np.finfo(np.float64).eps)))


# --- binary classification ------------------------------------------------------------------

def _logit(p):
    eps = 10 * np.finfo(np.float64).eps
    p = min(max(float(p), eps), 1 - eps)
    return np.float64(math.log(p) - math.log1p(-p))


class _Binary(FastLoss):
    is_classification = True
    n_classes_ = 2
    interval_y_true = Interval(0, 1, True, True)

    def predict(self, raw_prediction):
        """Class index (0 or 1): raw > 0."""
        return (self._raw(raw_prediction, "predict") > 0).astype(np.int64)


class _Probabilistic:
    def predict_proba(self, raw_prediction):
        """Probabilities of classes 0 and 1, shape (n_samples, 2)."""
        p1 = self.link.inverse(self._raw(raw_prediction, "predict_proba"))
        return np.stack([1 - p1, p1], axis=1)


class SigmoidBinaryCrossEntropy(_Probabilistic, _Binary):
    """Binary cross-entropy on logits (scikit-learn's ``HalfBinomialLoss``), y in [0, 1];
    ``pos_weight``, ``label_smoothing``.  Intercept in closed form:
    σ(c) = Σ w pw y' / Σ w (1 + (pw - 1) y')."""

    loss_name = "sigmoid_binary_cross_entropy"
    link = LogitLink()

    def fit_intercept_only(self, y_true, sample_weight=None):
        y, w = self._y_w(y_true, sample_weight)
        pw = float(self.params.get("pos_weight", 1.0))
        s = float(self.params.get("label_smoothing", 0.0))
        ys = y * (1 - s) + 0.5 * s
        return _logit(np.sum(w * pw * ys) / np.sum(w * (1 + (pw - 1) * ys)))


class SigmoidFocal(_Probabilistic, _Binary):
    """Focal loss on logits (``alpha``, ``gamma``), y in [0, 1]; intercept: 1-D root."""

    loss_name = "sigmoid_focal"
    link = LogitLink()

    def fit_intercept_only(self, y_true, sample_weight=None):
        y, w = self._y_w(y_true, sample_weight)
        return self._root_1d(y, w, -40.0, 40.0)


class _Margin(_Binary):
    """Margin losses: the kernels take ±1; 0 (and -1) mean the negative class."""

    interval_y_true = Interval(-1, 1, True, True)

    def _target(self, y_true, raw, method):
        y = super()._target(y_true, raw, method)
        bad = ~((y == 0) | (y == 1) | (y == -1) | np.isnan(y))
        if bad.any():
            raise ValueError(f"{self._where(method)}: y_true must hold class labels 0 (or -1) "
                             f"and 1, got {y[bad][0]!r}")
        return np.subtract(y, y == 0).astype(raw.dtype, copy=False)   # 0 -> -1, no select

    def in_y_true_range(self, y):
        y = np.asarray(y)
        return bool(np.all((y == 0) | (y == 1) | (y == -1)))

    def _wpm(self, y_true, sample_weight):
        y, w = self._y_w(y_true, sample_weight)
        wp = float(np.sum(w[y > 0]))
        return wp, float(np.sum(w)) - wp


class Hinge(_Margin):
    """max(0, margin - t·raw), t = ±1 (linear SVM).  Intercept: margin·sign(W₊ - W₋)."""

    loss_name = "hinge"

    def fit_intercept_only(self, y_true, sample_weight=None):
        wp, wn = self._wpm(y_true, sample_weight)
        return np.float64(float(self.params.get("margin", 1.0)) * np.sign(wp - wn))


class SquaredHinge(_Margin):
    """max(0, margin - t·raw)² (``LinearSVC``'s default loss).  Intercept:
    margin·(W₊ - W₋)/(W₊ + W₋)."""

    loss_name = "squared_hinge"

    def fit_intercept_only(self, y_true, sample_weight=None):
        wp, wn = self._wpm(y_true, sample_weight)
        return np.float64(float(self.params.get("margin", 1.0)) * (wp - wn) / (wp + wn))


class Logistic(_Probabilistic, _Margin):
    """log(1 + exp(-t·raw)), t = ±1: the same numbers as :class:`SigmoidBinaryCrossEntropy`
    for labels {0, 1} ↔ {-1, +1}."""

    loss_name = "logistic"
    link = LogitLink()

    def fit_intercept_only(self, y_true, sample_weight=None):
        wp, wn = self._wpm(y_true, sample_weight)
        return _logit(wp / (wp + wn))


# --- multiclass -----------------------------------------------------------------------------

def softmax_diag_hessian(raw, labels, sample_weight=None, label_smoothing=0.0,
                         class_weight=None, ignore_index=-100, dense=False):
    """Diagonal of the Hessian of the softmax cross-entropy with respect to the logits:
    A_i · p_ik (1 - p_ik) with A_i the total target weight of row i (1 without smoothing or
    class weights; (1 - s) w_{y_i} + (s/K) Σ_c w_c with them; Σ_c y'_ic for dense labels),
    times the sample weight.  Float64 NumPy, cast to raw's dtype.

    The stand-in used while ``fastloss.grad_and_hessian`` has no kernel for the row-wise
    softmax losses (``LOSSES[name].has_hessian`` False); :meth:`FastLoss._grad_hess` of the
    softmax objects switches to the kernel as soon as it has one.
    """
    r = np.asarray(raw, dtype=np.float64)
    k = r.shape[1]
    e = np.exp(r - r.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    s = float(label_smoothing)
    if dense:
        a = (1 - s) * np.asarray(labels, np.float64).sum(axis=1) + s
    else:
        lab = np.asarray(labels)
        cw = np.ones(k) if class_weight is None else np.asarray(class_weight, np.float64)
        live = lab != ignore_index
        wy = np.where(live, cw[np.where(live, lab, 0)], 0.0)
        a = (1 - s) * wy + np.where(live, s / k * cw.sum(), 0.0)
    if sample_weight is not None:
        a = a * np.asarray(sample_weight, np.float64).reshape(-1)
    return (a[:, None] * p * (1 - p)).astype(np.asarray(raw).dtype)


class _Softmax(FastLoss):
    is_multiclass = True
    is_classification = True
    link = SoftmaxLink()
    interval_y_true = Interval(0, np.inf, True, False)

    def __init__(self, sample_weight=None, n_classes=3, **params):
        if "axis" in params and params["axis"] not in (-1, 1):
            raise ValueError(f"{type(self).__name__}: axis must be -1 (classes last)")
        super().__init__(sample_weight, **params)
        if not (isinstance(n_classes, (int, np.integer)) and n_classes >= 2):
            raise ValueError(f"{type(self).__name__}: n_classes must be an integer >= 2, "
                             f"got {n_classes!r}")
        self.n_classes = int(n_classes)

    def _raw(self, raw_prediction, method):
        raw = super()._raw(raw_prediction, method)
        if raw.shape[1] != self.n_classes:
            raise ValueError(f"{self._where(method)}: raw_prediction must have "
                             f"{self.n_classes} columns (n_classes), got {raw.shape[1]}")
        return raw

    def predict_proba(self, raw_prediction):
        """Softmax probabilities, shape (n_samples, n_classes)."""
        return self.link.inverse(self._raw(raw_prediction, "predict_proba"))

    def predict(self, raw_prediction):
        """Class index: argmax of the raw prediction."""
        return np.argmax(self._raw(raw_prediction, "predict"), axis=1)

    def _grad_hess(self, raw, y, sw, n_threads, go, ho):
        if self._info.has_hessian:       # the fused row-wise kernel, once it exists
            return super()._grad_hess(raw, y, sw, n_threads, go, ho)
        g = _fl.grad(self._fn)(raw, y, **self._kw(sw, n_threads), grad_out=go)
        h = softmax_diag_hessian(raw, y, sw, self.params.get("label_smoothing", 0.0),
                                 self.params.get("class_weight"),
                                 self.params.get("ignore_index", -100), dense=self._dense)
        if ho is not None:
            ho[...] = h
            h = ho
        return g, h

    _dense = False


class SoftmaxCrossEntropyWithIntegerLabels(_Softmax):
    """Softmax cross-entropy with labels 0..K-1 (scikit-learn's ``HalfMultinomialLoss``);
    ``label_smoothing``, ``class_weight``, ``ignore_index``.  Intercept in closed form:
    softmax(c) = Σ_i w_i a_i / Σ_i w_i A_i (a_i: row i's target weights), returned in the
    symmetric parametrization (centred, as scikit-learn's)."""

    loss_name = "softmax_cross_entropy_with_integer_labels"

    def _target(self, y_true, raw, method):
        y = np.asarray(y_true)
        if y.shape != raw.shape[:1]:
            raise ValueError(f"{self._where(method)}: y_true must have shape "
                             f"({raw.shape[0]},), got {y.shape}")
        if y.dtype.kind == "f":
            if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
                raise ValueError(f"{self._where(method)}: y_true must hold integer class "
                                 f"labels")
        return _writable(np.ascontiguousarray(y, dtype=np.int64))

    def in_y_true_range(self, y):
        y = np.asarray(y)
        return bool(self.interval_y_true.includes(y) and np.all(y.astype(int) == y)
                    and np.all(y < self.n_classes))

    def _targets(self, y_true, sample_weight):
        y, w = self._y_w(y_true, sample_weight)
        k = self.n_classes
        onehot = np.zeros((y.size, k))
        onehot[np.arange(y.size), y.astype(np.int64)] = 1.0
        cw = self.params.get("class_weight")
        cw = np.ones(k) if cw is None else np.asarray(cw, np.float64)
        s = float(self.params.get("label_smoothing", 0.0))
        return ((1 - s) * onehot * cw + s / k * cw) , w

    def fit_intercept_only(self, y_true, sample_weight=None):
        a, w = self._targets(y_true, sample_weight)
        p = (w @ a) / (w @ a.sum(axis=1))
        eps = np.finfo(np.float64).eps
        return self.link.link(np.clip(p, eps, 1 - eps))


class SoftmaxCrossEntropy(_Softmax):
    """Softmax cross-entropy with dense target distributions ``y_true`` of shape
    (n_samples, n_classes); ``label_smoothing``.  Intercept: softmax(c) = Σ w y' / Σ w Σ y'."""

    loss_name = "softmax_cross_entropy"
    _dense = True

    def _target(self, y_true, raw, method):
        y = np.asarray(y_true)
        if y.shape != raw.shape:
            raise ValueError(f"{self._where(method)}: y_true must have raw_prediction's shape "
                             f"{raw.shape}, got {y.shape}")
        return _writable(np.ascontiguousarray(y, dtype=raw.dtype))

    def fit_intercept_only(self, y_true, sample_weight=None):
        y = np.asarray(y_true, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] != self.n_classes:
            raise ValueError(f"{self._where('fit_intercept_only')}: y_true must have shape "
                             f"(n_samples, {self.n_classes}), got {y.shape}")
        _, w = self._y_w(y[:, 0], sample_weight)
        s = float(self.params.get("label_smoothing", 0.0))
        a = (1 - s) * y + s / self.n_classes
        p = (w @ a) / (w @ a.sum(axis=1))
        eps = np.finfo(np.float64).eps
        return self.link.link(np.clip(p, eps, 1 - eps))


class MulticlassHinge(SoftmaxCrossEntropyWithIntegerLabels):
    """Multiclass hinge (Weston-Watkins or Crammer-Singer) on scores, labels 0..K-1; no
    Hessian and no probabilities.  Intercept: a K-dimensional L-BFGS minimization."""

    loss_name = "multiclass_hinge"
    link = IdentityLink()
    interval_y_pred = _REAL

    def __init__(self, sample_weight=None, n_classes=3, **params):
        super().__init__(sample_weight, n_classes, **params)
        self.interval_y_pred = _REAL

    def predict_proba(self, raw_prediction):
        raise AttributeError("MulticlassHinge has no probabilities")

    def _grad_hess(self, raw, y, sw, n_threads, go, ho):
        raise ValueError("MulticlassHinge.gradient_hessian: multiclass_hinge has no Hessian")

    def fit_intercept_only(self, y_true, sample_weight=None):
        from scipy.optimize import minimize
        y, w = self._y_w(y_true, sample_weight)
        lab = y.astype(np.int64)
        vg = _fl.value_and_grad(self._fn)
        n, k = y.size, self.n_classes

        def f(c):
            raw = np.ascontiguousarray(np.broadcast_to(c, (n, k)))
            v, g = vg(raw, lab, **dict(self._kw(w, 1), reduction="sum"))
            return float(v), g.sum(axis=0)

        c = minimize(f, np.zeros(k), jac=True, method="L-BFGS-B").x
        return c - c.mean()


LOSS_OBJECTS = {cls.loss_name: cls for cls in (
    SquaredError, AbsoluteError, Huber, SmoothL1, LogCosh, Quantile, PoissonNLL,
    SigmoidBinaryCrossEntropy, SigmoidFocal, Hinge, SquaredHinge, Logistic,
    SoftmaxCrossEntropyWithIntegerLabels, SoftmaxCrossEntropy, MulticlassHinge)}


def loss_object(name, **params):
    """The loss object of the registered fastloss loss ``name``, e.g.
    ``loss_object("huber", delta=0.5)`` or
    ``loss_object("softmax_cross_entropy_with_integer_labels", n_classes=5)``."""
    try:
        cls = LOSS_OBJECTS[name]
    except KeyError:
        raise ValueError(f"loss_object: name must be one of {sorted(LOSS_OBJECTS)}, got "
                         f"{name!r}") from None
    return cls(**params)
