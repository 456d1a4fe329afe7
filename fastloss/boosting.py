"""Custom objectives, evaluation metrics and initial scores for XGBoost and LightGBM.

::

    import xgboost as xgb, fastloss.boosting as fb
    obj = fb.xgboost_objective("pseudo_huber", delta=2.0)
    booster = xgb.train({"base_score": fb.base_score("pseudo_huber", y, delta=2.0)},
                        xgb.DMatrix(X, label=y), 100, obj=obj,
                        custom_metric=fb.xgboost_metric("pseudo_huber", delta=2.0))

Every callable computes its gradients and Hessians with one fused fastloss kernel
(:func:`fastloss.grad_and_hessian`, ``reduction="sum"``: one gradient per sample, not divided
by the number of samples), with the sample weights of the ``DMatrix`` / ``Dataset``.

Signatures (``api=``):

* ``"train"`` (default): ``obj(preds, dtrain) -> (grad, hess)`` for ``xgb.train(obj=...)``
  and ``lgb.train(params={"objective": obj})``; metrics ``metric(preds, data)`` returning
  ``(name, value)`` (XGBoost ``custom_metric=``) or ``(name, value, False)`` (LightGBM
  ``feval=``).
* ``"sklearn"``: ``obj(y_true, y_pred, sample_weight=None) -> (grad, hess)`` for
  ``XGBRegressor(objective=obj)`` / ``LGBMRegressor(objective=obj)`` and their classifiers;
  metrics ``metric(y_true, y_pred, sample_weight=None)`` returning the value (XGBoost
  ``eval_metric=``, named by ``metric.__name__``) or ``(name, value, False)`` (LightGBM
  ``eval_metric=``).  Both wrappers pass the weights only to a callable that declares them,
  which these do.

Conventions:

* Labels: the margin losses that take ±1 (``logistic``, ``hinge``, ``squared_hinge``) read a
  label 0 as -1, so the libraries' 0/1 labels work unchanged; ``sigmoid_binary_cross_entropy``
  and ``sigmoid_focal`` (labels in [0, 1]) read -1 as 0.
* Multiclass (``softmax_cross_entropy_with_integer_labels``): predictions of shape (n, K)
  (XGBoost: C order; LightGBM 4: an F-ordered view of its class-major buffer), integer class
  labels.  The gradient is p - onehot(y); the Hessian is the diagonal p(1 - p) times each
  library's own factor unless ``hessian_scale`` says otherwise: 2 for XGBoost
  (``multi:softprob``), K / (K - 1) for LightGBM (``multiclass``), both checked against the
  installed libraries' built-in objectives.  LightGBM gets float32 (n, K) arrays in F order,
  which it flattens class-major without another copy.
* ``min_hessian``: the loss's Hessian is raised to at least this value per unit weight.  The
  default, None, is 1.0 for the losses whose exact Hessian is 0 on whole intervals
  (``absolute_error``, ``quantile``, ``huber``, ``smooth_l1``, ``hinge``, ``squared_hinge``:
  with a zero Hessian no leaf reaches ``min_child_weight`` / ``min_sum_hessian_in_leaf``;
  1.0 is the Hessian of the libraries' built-in L1 and quantile objectives and of
  LightGBM's ``huber``), and 0 (the exact Hessian) for every other loss.
* ``scale`` multiplies gradient and Hessian (``squared_error`` is d², so ``scale=0.5`` gives
  XGBoost's ``reg:squarederror`` exactly); ``hessian_scale`` multiplies the Hessian only.
  Its default, None, is each library's built-in factor: 2 or K / (K - 1) for the softmax
  (above), e^0.7 for ``poisson_nll`` (``log_input=True``): both libraries' Poisson
  objectives take e^(x + 0.7) as the Hessian (``max_delta_step`` 0.7, a safeguard: smaller
  Newton steps); ``hessian_scale=1`` gives the exact Hessian e^x.  XGBoost's
  ``count:poisson`` also clamps each leaf to ±0.7 (the booster parameter
  ``max_delta_step=0.7`` reproduces it with a custom objective).
* ``dtype``: the precision of the computation, by default the predictions' own (XGBoost
  hands float32 margins, LightGBM float64), so that nothing is converted.
"""
from __future__ import annotations

import math

import numpy as np

from ._api import LOSSES, grad, grad_and_hessian

__all__ = ["xgboost_objective", "lightgbm_objective", "xgboost_metric", "lightgbm_metric",
           "init_score", "base_score"]

# the exact Hessian vanishes on whole intervals: default floor 1.0 (see the module docstring)
VANISHING_HESSIAN = frozenset({"absolute_error", "quantile", "huber", "smooth_l1", "hinge",
                               "squared_hinge"})
MULTICLASS = frozenset({"softmax_cross_entropy_with_integer_labels"})
POISSON_HESSIAN_SCALE = math.exp(0.7)   # count:poisson / poisson: max_delta_step 0.7
EPS = 1e-15   # probabilities are clipped to [EPS, 1 - EPS] in the initial scores (LightGBM's)
_APIS = ("train", "sklearn")
_LIBS = ("xgboost", "lightgbm")


# ----------------------------------------------------------------------------- helpers
def _info(loss, fn):
    """The registry entry of ``loss`` (a fastloss function or its name), checked."""
    info = getattr(loss, "__fastloss__", None)
    if info is None and isinstance(loss, str):
        info = LOSSES.get(loss)
    if info is None:
        raise ValueError(f"{fn}: loss must be a fastloss loss or its name, got {loss!r}")
    if info.kind == "rowwise":
        if info.name not in MULTICLASS:
            raise ValueError(f"{fn}: {info.name} is not a boosting objective (row-wise losses: "
                             f"{', '.join(sorted(MULTICLASS))})")
    elif info.kind != "elementwise" or not info.has_hessian:
        raise ValueError(f"{fn}: {info.name} has no diagonal Hessian")
    elif info.spec.pred_domain is not None:
        raise ValueError(f"{fn}: {info.name} takes predictions in {info.spec.pred_domain}, "
                         "not raw scores (for logits use sigmoid_binary_cross_entropy)")
    return info


def _check_params(info, params, fn):
    allowed = set(info.params) - ({"axis"} if info.name in MULTICLASS else set())
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise TypeError(f"{fn}: {info.name} got unexpected parameter(s) {', '.join(unknown)} "
                        f"(it takes {', '.join(info.params) or 'none'})")
    return dict(params)


def _nonneg(v, name, fn, allow_none=False):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: {name} must be a number, got {v!r}")
    v = float(v)
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{fn}: {name} must be finite and >= 0, got {v!r}")
    return v


def _map_labels(info, y):
    """0/1 labels to ±1 for the losses that take ±1; -1 to 0 for those that take [0, 1]."""
    dom = info.spec.target_domain if info.kind == "elementwise" else None
    # arithmetic on the comparison, not np.where: a data-dependent select over random 0/1
    # labels cost 3.6 ns per element (branch mispredictions), 20 times the kernel's share
    if dom == "{-1, +1}":
        return np.subtract(y, y == 0, dtype=y.dtype)
    if dom == "[0, 1]":
        return np.add(y, y == -1, dtype=y.dtype)
    return y


def _class_labels(y, n, fn):
    y = np.asarray(y).reshape(-1)
    if y.size != n:
        raise ValueError(f"{fn}: {y.size} labels for {n} rows of predictions")
    li = y.astype(np.intp)
    if not np.array_equal(li, y):
        raise ValueError(f"{fn}: multiclass labels must be integer class indices")
    return li


def softmax_diag_hessian_from_grad(g, labels, label_smoothing=0.0, class_weight=None,
                                   ignore_index=-100):
    """Diagonal softmax Hessian c·p(1 - p) recovered from the unweighted per-row gradient.

    Used while ``fastloss.grad_and_hessian`` has no Hessian for the row-wise softmax loss.
    The gradient of Σ_c w_c y'_c (lse(x) - x_c) is g = c·p - w⊙y' with c = Σ_c w_c y'_c
    (y' the smoothed one-hot labels, w the class weights), so p = (g + w⊙y') / c.
    """
    n, K = g.shape
    rows = np.arange(n)
    ok = labels != ignore_index
    lab = np.where(ok, labels, 0)
    if class_weight is None and label_smoothing == 0:
        p = g.copy()
        p[rows, lab] += 1.0
        h = p * (1.0 - p)
    else:
        s = float(label_smoothing)
        cw = (np.ones(K) if class_weight is None else np.asarray(class_weight, np.float64))
        t = np.broadcast_to(cw * (s / K), (n, K)).copy()
        t[rows, lab] += (1.0 - s) * cw[lab]
        c = t.sum(axis=1, keepdims=True)
        p = (g + t) / c
        h = c * p * (1.0 - p)
    h[~ok] = 0.0
    return h.astype(g.dtype, copy=False)


class _Core:
    """Loss binding shared by the objectives and metrics of both libraries."""

    def __init__(self, fn, loss, library, *, min_hessian=None, scale=1.0, hessian_scale=None,
                 dtype=None, n_threads=None, params):
        self.fn = fn
        self.info = _info(loss, fn)
        self.loss = self.info.name
        self.library = library
        self.params = _check_params(self.info, params, fn)
        self.multiclass = self.info.name in MULTICLASS
        self.min_hessian = _nonneg(min_hessian, "min_hessian", fn, allow_none=True)
        self.scale = _nonneg(scale, "scale", fn)
        self.hessian_scale = _nonneg(hessian_scale, "hessian_scale", fn, allow_none=True)
        self.dtype = None if dtype is None else np.dtype(dtype)
        if self.dtype is not None and self.dtype not in (np.float32, np.float64):
            raise ValueError(f"{fn}: dtype must be float32 or float64, got {dtype!r}")
        self.n_threads = n_threads
        self._func = self.info.func
        self._labels = None     # (labels as given, as the kernel takes them): see _cached
        self._args = (fn, self.loss, library, dict(min_hessian=min_hessian, scale=scale,
                      hessian_scale=hessian_scale, dtype=dtype, n_threads=n_threads),
                      self.params)

    def __reduce__(self):     # pickled by loss name and arguments, rebuilt from the registry
        return _rebuild_core, self._args

    # -- inputs
    def _dt(self, preds):
        if self.dtype is not None:
            return self.dtype
        dt = np.asarray(preds).dtype
        return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)

    def _inputs(self, preds, labels, weight):
        """(x, y, w) in the computing dtype and layout; w None when absent or empty."""
        preds = np.asarray(preds)
        dt = self._dt(preds)
        if weight is not None:
            weight = np.asarray(weight)
            weight = None if weight.size == 0 else np.asarray(weight, dt)
        if labels is None:
            raise ValueError(f"{self.fn}: the training data has no labels")
        if self.multiclass:
            if preds.ndim != 2:
                raise ValueError(f"{self.fn}: multiclass predictions must have shape (n, K), "
                                 f"got {preds.shape} (set num_class)")
            x = np.ascontiguousarray(preds, dtype=dt)   # LightGBM's F order: the one copy
            y = self._cached(np.asarray(labels),
                             lambda v: _class_labels(v, x.shape[0], self.fn))
            return x, y, weight
        x = np.asarray(preds, dt)
        y = np.asarray(labels, dt)
        if y.shape != x.shape:
            if y.size != x.size:
                raise ValueError(f"{self.fn}: {y.size} labels for predictions of shape "
                                 f"{x.shape}")
            y = y.reshape(x.shape)                  # multi-target: labels come flat
        if weight is not None and x.ndim == 2 and weight.shape == (x.shape[0],):
            weight = weight[:, None]                # one weight per sample, for every target
        return x, self._cached(y, lambda v: _map_labels(self.info, v)), weight

    def _cached(self, y, convert):
        """``convert(y)``, reused while the labels equal the last ones converted: a booster
        passes the same labels every round, and comparing them costs a fraction of
        converting them (a fresh array and its page faults)."""
        c = self._labels
        if (c is not None and c[0].shape == y.shape and c[0].dtype == y.dtype
                and np.array_equal(c[0], y)):
            return c[1]
        m = convert(y)
        if m is not y:
            self._labels = (y.copy(), m)
        return m

    # -- gradient and Hessian
    def _hscale(self, K):
        if self.hessian_scale is not None:
            return self.hessian_scale
        if self.multiclass:
            return 2.0 if self.library == "xgboost" else K / (K - 1.0)
        if self.loss == "poisson_nll" and self.params.get("log_input", True):
            return POISSON_HESSIAN_SCALE
        return 1.0

    def grad_hess(self, preds, labels, weight):
        x, y, w = self._inputs(preds, labels, weight)
        kw = dict(self.params, reduction="sum", n_threads=self.n_threads)
        if self.multiclass and not self.info.has_hessian:
            g = grad(self._func)(x, y, **kw)
            p = dict(self.info.params, **self.params)
            h = softmax_diag_hessian_from_grad(g, y, p["label_smoothing"], p["class_weight"],
                                               p["ignore_index"])
            if w is not None:
                g *= w[:, None]
                h *= w[:, None]
        else:
            if w is not None:
                kw["sample_weight"] = w
            g, h = grad_and_hessian(self._func)(x, y, **kw)
        m = self.min_hessian
        if m is None:
            m = 1.0 if self.loss in VANISHING_HESSIAN else 0.0
        if m > 0:
            floor = m if w is None else (m * (w[:, None] if h.ndim == 2 and w.ndim == 1 else w))
            np.maximum(h, floor, out=h)
        hs = self._hscale(x.shape[1] if self.multiclass else 1) * self.scale
        if self.scale != 1.0:
            g *= self.scale
        if hs != 1.0:
            h *= hs
        if self.multiclass and self.library == "lightgbm":
            # LightGBM flattens (n, K) in F order and converts to float32: hand it exactly that
            return np.asfortranarray(g, np.float32), np.asfortranarray(h, np.float32)
        return g, h

    # -- metric value
    def value(self, preds, labels, weight):
        """The weighted mean loss (float)."""
        x, y, w = self._inputs(preds, labels, weight)
        v = self._func(x, y, reduction="mean", sample_weight=w, n_threads=self.n_threads,
                       **self.params)
        return float(v)

    def describe(self):
        p = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"{self.loss!r}{p}"


def _rebuild_core(fn, loss, library, kw, params):
    return _Core(fn, loss, library, params=params, **kw)


def _labels_weights(data, fn):
    if not (hasattr(data, "get_label") and hasattr(data, "get_weight")):
        raise TypeError(f"{fn}: the second argument must be the training DMatrix / Dataset "
                        f"(got {type(data).__name__}); for the scikit-learn API pass "
                        "api='sklearn'")
    return data.get_label(), data.get_weight()


def _check_api(api, fn):
    if api not in _APIS:
        raise ValueError(f"{fn}: api must be 'train' or 'sklearn', got {api!r}")


# ---------------------------------------------------------------------------- objectives
class _TrainObjective:
    """``obj(preds, data) -> (grad, hess)``: the training API's custom objective."""

    def __init__(self, core):
        self._core = core

    def __call__(self, preds, data):
        y, w = _labels_weights(data, self._core.fn)
        return self._core.grad_hess(preds, y, w)

    def __repr__(self):
        return f"{self._core.fn}({self._core.describe()})"


class _SklearnObjective:
    """``obj(y_true, y_pred, sample_weight=None) -> (grad, hess)``: the scikit-learn API's."""

    def __init__(self, core):
        self._core = core

    def __call__(self, y_true, y_pred, sample_weight=None):
        return self._core.grad_hess(y_pred, y_true, sample_weight)

    def __repr__(self):
        return f"{self._core.fn}({self._core.describe()}, api='sklearn')"


def _objective(library, loss, api, kw, params):
    fn = f"{library}_objective"
    _check_api(api, fn)
    core = _Core(fn, loss, library, params=params, **kw)
    return _TrainObjective(core) if api == "train" else _SklearnObjective(core)


def xgboost_objective(loss, *, api="train", min_hessian=None, scale=1.0, hessian_scale=None,
                      dtype=None, n_threads=None, **params):
    """A custom XGBoost objective from a fastloss loss.

    Parameters
    ----------
    loss : fastloss loss function or its name
        An elementwise loss with a Hessian (``squared_error``, ``pseudo_huber``,
        ``logistic``, ``poisson_nll``, ...) or ``softmax_cross_entropy_with_integer_labels``
        (set ``num_class`` in the booster's parameters).
    api : {'train', 'sklearn'}, default 'train'
        'train': ``obj(preds, dtrain)`` for ``xgb.train(obj=...)``; 'sklearn':
        ``obj(y_true, y_pred, sample_weight=None)`` for ``XGBRegressor(objective=...)``.
    min_hessian : float, optional
        Floor of the loss's Hessian per unit weight; None: 1.0 for the losses whose Hessian
        vanishes on intervals (absolute error, quantile, Huber, smooth L1, hinges), else 0.
    scale : float, default 1.0
        Multiplies gradient and Hessian (0.5 turns ``squared_error`` into ``reg:squarederror``).
    hessian_scale : float, optional
        Multiplies the Hessian; None: 2 for the softmax (as ``multi:softprob``), e^0.7 for
        ``poisson_nll`` (as ``count:poisson``), else 1.
    dtype : float32 or float64, optional
        Precision of the computation; None: the predictions' (float32 for XGBoost).
    n_threads : int, optional
        fastloss's threads for each call (see :func:`fastloss.set_num_threads`).
    **params
        The loss's parameters (``delta=``, ``quantile=``, ``label_smoothing=``, ...).

    Returns
    -------
    callable
        Gradient and Hessian per sample (``reduction="sum"``), times the DMatrix's weights;
        (n, K) arrays for the softmax, as XGBoost passes and takes them.
    """
    return _objective("xgboost", loss, api, dict(min_hessian=min_hessian, scale=scale,
                      hessian_scale=hessian_scale, dtype=dtype, n_threads=n_threads), params)


def lightgbm_objective(loss, *, api="train", min_hessian=None, scale=1.0, hessian_scale=None,
                       dtype=None, n_threads=None, **params):
    """A custom LightGBM objective from a fastloss loss.

    As :func:`xgboost_objective`, with LightGBM's signatures: 'train' gives
    ``obj(preds, train_data)`` for ``lgb.train({"objective": obj, ...})``; 'sklearn'
    ``obj(y_true, y_pred, sample_weight=None)`` for ``LGBMRegressor(objective=obj)``.
    The softmax Hessian is scaled by K / (K - 1) unless ``hessian_scale`` is given (as
    LightGBM's ``multiclass``; ``poisson_nll``: e^0.7, as ``poisson``), and returned as
    float32 (n, K) arrays in F order.  The predictions are float64: ``dtype=np.float32``
    computes in float32 (LightGBM stores float32 gradients either way).
    """
    return _objective("lightgbm", loss, api, dict(min_hessian=min_hessian, scale=scale,
                      hessian_scale=hessian_scale, dtype=dtype, n_threads=n_threads), params)


# ------------------------------------------------------------------------------- metrics
class _Metric:
    def __init__(self, core, api, name):
        self._core = core
        self._api = api
        self.__name__ = name

    def _value(self, y, preds, w):
        return self._core.value(preds, y, w)

    def __repr__(self):
        return f"{self._core.fn[:-6]}metric({self._core.describe()}, api={self._api!r})"


class _XGBTrainMetric(_Metric):
    def __call__(self, predt, dmatrix):
        y, w = _labels_weights(dmatrix, self._core.fn)
        return self.__name__, self._value(y, predt, w)


class _XGBSklearnMetric(_Metric):
    def __call__(self, y_true, y_pred, sample_weight=None):
        return self._value(y_true, y_pred, sample_weight)


class _LGBTrainMetric(_Metric):
    def __call__(self, preds, eval_data):
        y, w = _labels_weights(eval_data, self._core.fn)
        return self.__name__, self._value(y, preds, w), False


class _LGBSklearnMetric(_Metric):
    def __call__(self, y_true, y_pred, sample_weight=None):
        return self.__name__, self._value(y_true, y_pred, sample_weight), False


def _metric(library, loss, api, name, dtype, n_threads, params):
    fn = f"{library}_metric"
    _check_api(api, fn)
    core = _Core(fn, loss, library, params=params, dtype=dtype, n_threads=n_threads)
    cls = {("xgboost", "train"): _XGBTrainMetric, ("xgboost", "sklearn"): _XGBSklearnMetric,
           ("lightgbm", "train"): _LGBTrainMetric,
           ("lightgbm", "sklearn"): _LGBSklearnMetric}[library, api]
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{fn}: name must be a string, got {name!r}")
    return cls(core, api, name or core.loss)


def xgboost_metric(loss, *, api="train", name=None, dtype=None, n_threads=None, **params):
    """The weighted mean of a fastloss loss as an XGBoost evaluation metric.

    'train': ``metric(predt, dmatrix) -> (name, value)`` for ``xgb.train(custom_metric=...)``;
    'sklearn': ``metric(y_true, y_pred, sample_weight=None) -> value`` for
    ``XGBRegressor(eval_metric=...)`` (XGBoost names it by ``metric.__name__``: ``name``, by
    default the loss's name).  Lower is better.  The predictions must be raw margins: XGBoost
    passes those to a custom metric when the objective is custom too (with a built-in
    objective it passes transformed predictions).
    """
    return _metric("xgboost", loss, api, name, dtype, n_threads, params)


def lightgbm_metric(loss, *, api="train", name=None, dtype=None, n_threads=None, **params):
    """The weighted mean of a fastloss loss as a LightGBM evaluation metric.

    'train': ``feval(preds, eval_data) -> (name, value, False)`` for ``lgb.train(feval=...)``;
    'sklearn': ``metric(y_true, y_pred, sample_weight=None) -> (name, value, False)`` for
    ``LGBMRegressor.fit(eval_metric=...)``.  ``False``: lower is better.  The predictions
    are the raw scores LightGBM passes with a custom objective.
    """
    return _metric("lightgbm", loss, api, name, dtype, n_threads, params)


# -------------------------------------------------------------------------- init scores
def _weighted_quantile(y, w, q):
    """The smallest c with Σ_{y <= c} w >= q Σ w: a minimizer of the pinball loss."""
    o = np.argsort(y, kind="stable")
    cw = np.cumsum(w[o])
    i = int(np.searchsorted(cw, q * cw[-1], side="left"))
    return float(y[o][min(i, y.size - 1)])


def _logit(p):
    p = min(max(p, EPS), 1.0 - EPS)
    return math.log(p) - math.log1p(-p)


def _root_of_gradient(info, y, w, params, lo, hi):
    """Bisection on c -> Σ w ℓ'(c, y): a stationary point of the summed loss in [lo, hi]
    (the minimizer for the convex losses)."""
    gfn = grad(info.func)
    x = np.empty(y.shape, np.float64)
    w = None if np.all(w == 1) else w

    def slope(c):
        x.fill(c)
        return float(np.sum(gfn(x, y, reduction="sum", sample_weight=w, **params)))

    if slope(lo) >= 0:
        return lo
    if slope(hi) <= 0:
        return hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if slope(mid) < 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def init_score(loss, y, sample_weight=None, *, num_class=None, **params):
    """The constant raw prediction that minimizes Σ w·ℓ(c, y) (LightGBM's ``init_score``).

    Closed forms: weighted mean (``squared_error``), weighted median / quantile
    (``absolute_error``, ``quantile``), logit of the weighted positive rate (``logistic``,
    ``sigmoid_binary_cross_entropy`` with ``pos_weight`` and ``label_smoothing``), log of
    the weighted mean (``poisson_nll``; ``log_input=False``: mean - eps), log of the weighted
    class frequencies (the softmax: an array of ``num_class`` values, by default
    ``max(y) + 1``; class weights and label smoothing included).  Other losses: bisection on
    the summed gradient between the smallest and largest label (regression losses) or over
    [-40, 40] (margin losses).  Probabilities are clipped to [1e-15, 1 - 1e-15], so the
    result is finite.  Labels follow the objectives' conventions (0/1 or ±1).

    Returns a float, or a float64 array of shape (num_class,) for the softmax. For
    LightGBM, pass ``np.full(n, c)`` (or ``np.tile(c, (n, 1))``) as the Dataset's
    ``init_score`` and add ``c`` to raw predictions; for XGBoost use :func:`base_score`.
    """
    fn = "init_score"
    info = _info(loss, fn)
    params = _check_params(info, params, fn)
    y = np.asarray(y)
    if y.size == 0:
        raise ValueError(f"{fn}: y is empty")
    y = y.reshape(-1) if info.name in MULTICLASS else y.reshape(-1).astype(np.float64)
    if sample_weight is None:
        w = np.ones(y.size)
    else:
        w = np.broadcast_to(np.asarray(sample_weight, np.float64), y.shape).astype(np.float64)
        if np.any(~(w >= 0)):
            raise ValueError(f"{fn}: sample_weight must be finite and >= 0")
    sw = float(w.sum())
    if not sw > 0:
        raise ValueError(f"{fn}: the sample weights sum to 0")
    p = dict(info.params, **params)
    name = info.name
    if name in MULTICLASS:
        li = _class_labels(y, y.size, fn)
        K = int(li.max()) + 1 if num_class is None else int(num_class)
        if li.min() < 0 or li.max() >= K:
            raise ValueError(f"{fn}: class labels must lie in [0, {K})")
        s = float(p["label_smoothing"])
        cw = np.ones(K) if p["class_weight"] is None else np.asarray(p["class_weight"], float)
        freq = np.bincount(li, weights=w, minlength=K) / sw
        t = cw * ((1.0 - s) * freq + s / K)        # the optimum softmax is t / Σ t
        return np.log(np.maximum(t / t.sum(), EPS))
    yv = _map_labels(info, y)
    if name == "squared_error":
        return float(np.dot(w, yv) / sw)
    if name == "absolute_error":
        return _weighted_quantile(yv, w, 0.5)
    if name == "quantile":
        return _weighted_quantile(yv, w, float(p["quantile"]))
    if name == "logistic":
        return _logit(float(np.dot(w, yv == 1) / sw))
    if name in ("tweedie_deviance", "gamma_deviance", "convex_kl"):
        # log link: the gradient's weighted sum vanishes at exp(x) = the weighted mean
        return math.log(max(float(np.dot(w, yv) / sw), EPS))
    if name == "sigmoid_binary_cross_entropy":
        pw, s = float(p["pos_weight"]), float(p["label_smoothing"])
        ys = yv * (1.0 - s) + 0.5 * s
        return _logit(float(np.dot(w, pw * ys) / np.dot(w, 1.0 + (pw - 1.0) * ys)))
    if name == "poisson_nll":
        m = float(np.dot(w, yv) / sw)
        if p["log_input"]:
            return math.log(max(m, EPS))
        return m - float(p["eps"])
    if info.spec.target_domain in ("{-1, +1}", "[0, 1]"):
        return _root_of_gradient(info, yv, w, params, -40.0, 40.0)
    return _root_of_gradient(info, yv, w, params, float(yv.min()), float(yv.max()))


def base_score(loss, y, sample_weight=None, *, num_class=None, **params):
    """:func:`init_score` in the form of XGBoost's ``base_score`` parameter: a float, or a
    list of ``num_class`` floats for the softmax (XGBoost >= 3.1 takes one per class).  With
    a custom objective XGBoost adds ``base_score`` to the margins as it is (no link)."""
    c = init_score(loss, y, sample_weight, num_class=num_class, **params)
    return [float(v) for v in c] if isinstance(c, np.ndarray) else float(c)
