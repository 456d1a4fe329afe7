"""Linear models fitted around fastloss's fused loss + gradient kernels.

:class:`LinearRegressor` and :class:`LinearClassifier` are scikit-learn estimators
(``BaseEstimator`` with ``RegressorMixin`` / ``ClassifierMixin``; scikit-learn >= 1.4 must be
installed, ``pip install "fastloss[sklearn]"``).  Both minimize

    (1 / Σ s_i) Σ_i s_i ℓ(x_i·W + b, y_i)  +  alpha · (l1_ratio ‖W‖₁ + ½ (1 - l1_ratio) ‖W‖²)

over the coefficients ``W`` and the (unpenalized) intercept ``b``, where ℓ is a fastloss loss
and s_i the sample weight (times the class weight of y_i for the classifier).  The loss term
and its gradient with respect to the linear predictions come from one fused kernel call per
iteration (``fastloss.prepare``, the target and weights bound once); the chain rule through
``X`` is two BLAS products (``X @ W.T`` and ``G.T @ X``; scipy.sparse ``X`` uses its sparse
products).  A float32 ``X`` runs the float32 kernel and BLAS (float64 accumulation inside
the kernel), a float64 ``X`` the float64 ones; the optimizer's parameters are float64.

Solver: SciPy's L-BFGS-B (``solver="lbfgs"``, the only one).  With ``l1_ratio > 0`` the
coefficients are split as W = W⁺ - W⁻ with W⁺, W⁻ >= 0; the L1 term becomes the linear
α·l1_ratio·Σ(W⁺ + W⁻) and L-BFGS-B's bounds do the rest.  The split problem has the same
minimizers as the elastic net (at a minimum one of W⁺_j, W⁻_j is 0), coefficients end exactly
at 0 where a bound is active, and it keeps L-BFGS-B's line search and stopping rule; SciPy has
no OWL-QN, and a proximal-gradient loop would need a step-size search of its own and converge
more slowly on ill-conditioned X.  It doubles the number of coefficients the optimizer holds.

Non-smooth losses: ``absolute_error``, ``quantile`` (pinball) and ``hinge`` are fitted as the
limit of Huber-smoothed problems (pinball_q(d) = ½|d| + (½ - q)·d, hinge(u) = ½|u| + ½u, and
½|d| = lim huber_δ(d)/(2δ)): seven L-BFGS-B stages, δ shrinking tenfold from a tenth of the
targets' spread to 1e-7 of it, each started from the previous minimum, so the result is
within O(δ) of the linear-programming solution (scikit-learn's ``QuantileRegressor`` and
``LinearSVC(loss="hinge")`` agree to ~1e-7 relative on well-posed data).  ``n_iter_`` counts
the iterations of all stages; ``max_iter`` bounds each stage.  ``multiclass_hinge`` is not
smoothed: L-BFGS-B may stop on its line search near the minimum (then a
``ConvergenceWarning``), with coefficients less precise than the other losses give.
"""
from __future__ import annotations

import numbers
import threading
import warnings

import numpy as np

import fastloss as _fl
from fastloss import sklearn as _objs

try:                                    # scikit-learn is an optional dependency
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted
    try:
        from sklearn.utils.validation import validate_data as _validate_data
    except ImportError:                 # scikit-learn < 1.6
        def _validate_data(est, *args, **kw):
            return est._validate_data(*args, **kw)
except ImportError as e:                # pragma: no cover - exercised without sklearn
    raise ImportError("fastloss.linear_model needs scikit-learn: "
                      'pip install "fastloss[sklearn]"') from e

__all__ = ["LinearRegressor", "LinearClassifier"]

# regression losses: estimator name -> (fastloss loss, link inverse)
_REG_LOSSES = {
    "squared_error": "squared_error", "absolute_error": "absolute_error", "huber": "huber",
    "smooth_l1": "smooth_l1", "log_cosh": "log_cosh", "quantile": "quantile",
    "poisson": "poisson_nll",
}
# classification losses: estimator name -> (fastloss loss binary, multiclass, labels, proba)
_CLF_LOSSES = {
    "log_loss": ("sigmoid_binary_cross_entropy", "softmax_cross_entropy_with_integer_labels",
                 "01", "sigmoid"),
    "logistic": ("logistic", "logistic", "pm1", "sigmoid"),
    "focal": ("sigmoid_focal", "sigmoid_focal", "01", "sigmoid"),
    "hinge": ("hinge", "hinge", "pm1", None),
    "squared_hinge": ("squared_hinge", "squared_hinge", "pm1", None),
    "multiclass_hinge": ("hinge", "multiclass_hinge", "pm1", None),
}


def _check_params(est, losses):
    name = type(est).__name__
    if not isinstance(est.loss, str) or est.loss not in losses:
        raise ValueError(f"{name}: loss must be one of {sorted(losses)}, got {est.loss!r}")
    if not isinstance(est.alpha, numbers.Real) or not est.alpha >= 0:
        raise ValueError(f"{name}: alpha must be a non-negative number, got {est.alpha!r}")
    if not isinstance(est.l1_ratio, numbers.Real) or not 0 <= est.l1_ratio <= 1:
        raise ValueError(f"{name}: l1_ratio must be in [0, 1], got {est.l1_ratio!r}")
    if est.solver != "lbfgs":
        raise ValueError(f"{name}: solver must be 'lbfgs', got {est.solver!r}")
    if (not isinstance(est.max_iter, numbers.Integral) or isinstance(est.max_iter, bool)
            or est.max_iter < 1):
        raise ValueError(f"{name}: max_iter must be an integer >= 1, got {est.max_iter!r}")
    if not isinstance(est.tol, numbers.Real) or not est.tol >= 0:
        raise ValueError(f"{name}: tol must be a non-negative number, got {est.tol!r}")
    if est.loss_params is not None and not isinstance(est.loss_params, dict):
        raise TypeError(f"{name}: loss_params must be a dict or None, got "
                        f"{type(est.loss_params).__name__}")
    return dict(est.loss_params or {})


def _weights(est, sample_weight, X):
    try:        # the zero-total case is refused below, with a message naming the estimator
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                  allow_all_zero_weights=True)
    except TypeError:                   # scikit-learn < 1.6
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
    if not np.all(sw >= 0):
        raise ValueError(f"{type(est).__name__}.fit: sample_weight must be non-negative")
    total = float(sw.sum())
    if not total > 0:
        raise ValueError(f"{type(est).__name__}.fit: sample_weight sums to zero (total "
                         f"weight {total}); the weighted mean loss needs a positive total")
    return sw


_SCIPY_BLAS: list = []
_BLAS_LOCK = threading.RLock()


def _scipy_blas():
    """Controllers of the BLAS libraries SciPy loaded for itself (the wheels' own
    ``scipy.libs/`` OpenBLAS, not NumPy's), or [] where the two share one library."""
    with _BLAS_LOCK:
        return _scipy_blas_locked()


def _scipy_blas_locked():
    if not _SCIPY_BLAS:
        libs = []
        try:
            import importlib

            from threadpoolctl import ThreadpoolController
            importlib.import_module("scipy.optimize")      # loads SciPy's BLAS
            for lc in ThreadpoolController().lib_controllers:
                fp = str(getattr(lc, "filepath", "")).replace("\\", "/")
                if lc.user_api == "blas" and "/scipy.libs/" in fp:
                    libs.append(lc)
        except Exception:   # threadpoolctl absent or unable to inspect: leave threads be
            libs = []
        _SCIPY_BLAS.append(libs)
    return _SCIPY_BLAS[0]


class _serial_scipy_blas:
    """L-BFGS-B's own linear algebra (m×m matrices, m = 10) on one BLAS thread.

    SciPy's L-BFGS-B calls BLAS on tiny arrays every iteration; with its OpenBLAS on 2
    threads on a busy 2-core machine an iteration of a 10-coefficient problem took 20 ms
    instead of 0.16 ms.  Only SciPy's own library is limited: ``X @ W.T`` and ``G.T @ X``
    run on NumPy's BLAS with its threads.  Fits from other Python threads leave it alone."""

    _lock = _BLAS_LOCK
    _depth = 0              # fits in progress (Python threads): the last one restores
    _saved: list = []

    def __enter__(self):
        cls = type(self)
        # only from the main thread: OpenBLAS's thread count is process-wide, and a count
        # raised back from another Python thread did not take effect (seen with SciPy
        # 1.17's wheel: concurrent fits in a thread pool left it at 1)
        self.active = threading.current_thread() is threading.main_thread()
        if not self.active:
            return self
        with cls._lock:
            if cls._depth == 0:
                cls._saved = []
                for lc in _scipy_blas():
                    try:
                        cls._saved.append((lc, lc.num_threads))
                        lc.set_num_threads(1)
                    except Exception:
                        pass
            cls._depth += 1
        return self

    def __exit__(self, *exc):
        cls = type(self)
        if not self.active:
            return False
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                for lc, n in cls._saved:
                    try:
                        lc.set_num_threads(n)
                    except Exception:
                        pass
        return False


class _LinearFit:
    """The shared fitting machinery: objective, L-BFGS-B, warm start, results."""

    def _run_stages(self, minimize, stages, bind, make_fun, theta, bounds):
        used = 0
        for name, prm, tgt, scale, lin in stages:
            res = minimize(make_fun(bind(name, prm, tgt), scale, lin), theta, jac=True,
                           method="L-BFGS-B", bounds=bounds,
                           options={"maxiter": int(self.max_iter), "maxls": 50,
                                    "gtol": float(self.tol),
                                    "ftol": 64 * np.finfo(float).eps})
            theta = res.x
            used += int(res.nit)
        res.used = used
        return res

    def _fit_linear(self, X, target, sw, k, fn, params, intercept0):
        """Minimize the penalized weighted mean of ``fn`` over coefficients (k, p) and
        intercepts (k,) (k = 1: a 1-D prediction)."""
        from scipy.optimize import minimize
        import scipy.sparse as sp

        n, p = X.shape
        dt = X.dtype
        alpha, l1r = float(self.alpha), float(self.l1_ratio)
        fit_b = bool(self.fit_intercept)
        wshape = (n, 1) if (k > 1 and fn in _ELEMENTWISE_2D) else (n,)
        sw_n = (sw / sw.sum()).reshape(wshape).astype(dt)
        zshape = (n, k) if k > 1 else (n,)
        z0 = np.zeros(zshape, dt)

        def bind(name, prm, tgt):
            return _fl.prepare(getattr(_fl, name), z0, tgt, sample_weight=sw_n,
                               reduction="sum", n_threads=self.n_threads, **prm)

        sparse = sp.issparse(X)
        kp = k * p
        split = l1r > 0 and alpha > 0

        def unpack(theta):
            if split:
                w = theta[:kp] - theta[kp:2 * kp]
                b = theta[2 * kp:]
            else:
                w, b = theta[:kp], theta[kp:]
            return w.reshape(k, p), b

        def make_fun(f, scale, lin):
            # value and gradient of scale·Σ s ℓ(z) + Σ s (a z + c) + penalty, lin = (a, c)
            def fun(theta):
                w, b = unpack(theta)
                z = np.asarray(X @ w.astype(dt, copy=False).T)         # (n, k)
                if fit_b:
                    z = z + b.astype(dt)
                z = np.ascontiguousarray(z.reshape(zshape), dtype=dt)
                v, g = f(z)
                val = scale * float(v)
                if lin is not None:
                    a, c = lin
                    val += float(np.sum(sw_n * (a * z + c), dtype=np.float64))
                    g = (scale * g + sw_n * a).astype(dt, copy=False)
                elif scale != 1.0:
                    g = scale * g
                g2 = g.reshape(n, k)
                gw = (X.T @ g2).T if sparse else g2.T @ X            # (k, p), BLAS
                gw = np.asarray(gw, dtype=np.float64)
                gb = g2.sum(axis=0, dtype=np.float64) if fit_b else np.zeros(k)
                wr = w.ravel()
                if split:
                    l2 = alpha * (1.0 - l1r)
                    val += alpha * l1r * theta[:2 * kp].sum() + 0.5 * l2 * float(wr @ wr)
                    gl = gw.ravel() + l2 * wr
                    grad = np.concatenate([gl + alpha * l1r, -gl + alpha * l1r, gb])
                else:
                    val += 0.5 * alpha * float(wr @ wr)
                    grad = np.concatenate([gw.ravel() + alpha * wr, gb])
                return val, grad
            return fun

        w0 = np.zeros((k, p))
        b0 = np.zeros(k)
        if fit_b and intercept0 is not None:
            b0[:] = intercept0
        if self.warm_start and hasattr(self, "coef_"):
            cw = np.asarray(self.coef_, np.float64).reshape(-1, p) \
                if np.ndim(self.coef_) else None
            if cw is not None and cw.shape == (k, p):
                w0 = cw.copy()
                b0 = np.asarray(self.intercept_, np.float64).reshape(k).copy() \
                    if fit_b else b0
        if split:
            theta = np.concatenate([np.maximum(w0, 0).ravel(), np.maximum(-w0, 0).ravel(),
                                    b0])
            bounds = [(0, None)] * (2 * kp) + [(None, None)] * k
        else:
            theta = np.concatenate([w0.ravel(), b0])
            bounds = None
        # the stages: the loss itself, or (absolute error, pinball) a Huber-smoothed
        # continuation, each stage started from the previous one's minimum
        stages = _smoothing_stages(fn, params, target, sw) or \
            [(fn, params, target, 1.0, None)]
        with _serial_scipy_blas():
            res = self._run_stages(minimize, stages, bind, make_fun, theta, bounds)
        theta, used = res.x, res.used
        self.n_iter_ = int(max(used, 1))
        if res.status != 0:
            msg = res.message.decode() if isinstance(res.message, bytes) else str(res.message)
            warnings.warn(f"{type(self).__name__}: lbfgs failed to converge after "
                          f"{used} iteration(s) (status={res.status}): {msg}. Increase "
                          f"the number of iterations (max_iter) or scale the data.",
                          ConvergenceWarning, stacklevel=3)
        if len(stages) > 1:       # the objective of the loss itself at the solution
            res_fun = make_fun(bind(fn, params, target), 1.0, None)(theta)[0]
        else:
            res_fun = res.fun
        w, b = unpack(theta)
        if not fit_b:
            b = np.zeros(k)
        self.objective_ = float(res_fun)
        return w.astype(dt), b.astype(dt)


def _smoothing_stages(fn, params, target, sw):
    """Absolute error, pinball and hinge as limits of Huber: ½|d| = lim huber_δ(d) / (2δ)
    (up to the constant δ/4), so with d = pred - target

        |d| = 2·½|d|,   pinball_q(d) = ½|d| + (½ - q)·d,
        hinge = max(0, u) = ½|u| + ½u,  u = m - t·pred, |u| = |pred - m·t| (t = ±1).

    The stages shrink δ tenfold from a tenth of the targets' spread (1 for the hinge) to 1e-7
    of it, each started from the previous minimum; the last minimizer is within O(δ) of the
    non-smooth one.  Returns [(loss, params, target, scale, (a, c))] or None."""
    t = np.asarray(target)
    if fn in ("absolute_error", "quantile"):
        q = 0.5 if fn == "absolute_error" else float(params.get("quantile", 0.5))
        c = 1.0 if fn == "absolute_error" else 0.5
        a = t.dtype.type(0.5 - q) if fn == "quantile" else t.dtype.type(0.0)
        lin = (a, -a * t)
        tf = t.astype(np.float64)
        spread = float(np.average(np.abs(tf - np.median(tf)), weights=sw)) if t.size else 1.0
        spread = spread if spread > 0 else 1.0
        tgt = target
    elif fn == "hinge":
        m = float(params.get("margin", 1.0))
        c, spread = 0.5, 1.0
        lin = (-0.5 * t, t.dtype.type(0.5 * m))
        tgt = np.ascontiguousarray(m * t, dtype=t.dtype)
    else:
        return None
    return [("huber", {"delta": spread * 10.0 ** -j}, tgt, c / (spread * 10.0 ** -j), lin)
            for j in range(1, 8)]


_ELEMENTWISE_2D = {"logistic", "sigmoid_focal", "hinge", "squared_hinge",
                   "sigmoid_binary_cross_entropy"}


class LinearRegressor(_LinearFit, RegressorMixin, BaseEstimator):
    """Linear regression with a fastloss loss and an elastic-net penalty.

    Parameters
    ----------
    loss : {"squared_error", "absolute_error", "huber", "smooth_l1", "log_cosh", "quantile",
        "poisson"}, default "squared_error". ``"poisson"`` is ``poisson_nll`` with a log link
        (``predict`` returns exp(X·w + b); y must be >= 0).
    loss_params : dict, optional. The fastloss loss's parameters, e.g. ``{"delta": 0.5}``
        (huber), ``{"quantile": 0.9}``.
    alpha : float, default 1e-4. Penalty strength (on the weighted *mean* loss).
    l1_ratio : float in [0, 1], default 0. 0: L2 (ridge), 1: L1 (lasso).
    fit_intercept : bool, default True. The intercept is not penalized.
    solver : "lbfgs".
    max_iter : int, default 100. L-BFGS-B iterations (of each smoothing stage for
        ``absolute_error``, ``quantile`` and ``hinge``; ``n_iter_`` is their total).
    tol : float, default 1e-4. L-BFGS-B's ``gtol`` (max |projected gradient|).
    warm_start : bool, default False. Start from the previous ``coef_``/``intercept_``.
    n_threads : int or None. fastloss threads for the kernel (None: fastloss's default).

    Attributes: ``coef_`` (n_features,), ``intercept_`` (float), ``n_iter_``,
    ``n_features_in_``, ``feature_names_in_``, ``objective_`` (the minimized value).
    """

    def __init__(self, loss="squared_error", *, loss_params=None, alpha=1e-4, l1_ratio=0.0,
                 fit_intercept=True, solver="lbfgs", max_iter=100, tol=1e-4,
                 warm_start=False, n_threads=None):
        self.loss = loss
        self.loss_params = loss_params
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features; dense or scipy.sparse) and y (n_samples,)."""
        params = _check_params(self, _REG_LOSSES)
        X, y = _validate_data(self, X, y, accept_sparse=["csr", "csc"],
                              dtype=[np.float64, np.float32], y_numeric=True,
                              reset=not (self.warm_start and hasattr(self, "coef_")))
        sw = _weights(self, sample_weight, X)
        fn = _REG_LOSSES[self.loss]
        # a fresh writable copy: a read-only target would compile a kernel signature of its own
        y = np.array(y, dtype=X.dtype, order="C")
        if fn == "poisson_nll" and np.any(y < 0):
            raise ValueError("LinearRegressor.fit: Some value(s) of y are out of the valid "
                             "range of the loss 'poisson' (y must be >= 0).")
        obj = _objs.LOSS_OBJECTS[fn](**params)
        b0 = obj.fit_intercept_only(y, sw) if self.fit_intercept else None
        w, b = self._fit_linear(X, y, sw, 1, fn, params, b0)
        self.coef_ = w[0]
        self.intercept_ = b.dtype.type(b[0]) if self.fit_intercept else 0.0
        return self

    def _raw(self, X):
        check_is_fitted(self)
        X = _validate_data(self, X, accept_sparse=["csr", "csc"],
                           dtype=[np.float64, np.float32], reset=False)
        return np.asarray(X @ self.coef_.astype(X.dtype)) + self.intercept_

    def predict(self, X):
        """exp(X·w + b) for ``loss="poisson"``, else X·w + b."""
        z = self._raw(X)
        return np.exp(z) if self.loss == "poisson" else z


class LinearClassifier(_LinearFit, ClassifierMixin, BaseEstimator):
    """Linear classification with a fastloss loss and an elastic-net penalty.

    Parameters
    ----------
    loss : {"log_loss", "logistic", "focal", "hinge", "squared_hinge", "multiclass_hinge"},
        default "log_loss". Two classes: one decision function (``log_loss`` is
        ``sigmoid_binary_cross_entropy``, ``logistic`` the same loss on ±1 labels, ``focal``
        ``sigmoid_focal``, the hinge losses ``hinge``/``squared_hinge``; ``multiclass_hinge``
        is ``hinge`` for two classes). More classes: ``log_loss`` is multinomial
        (``softmax_cross_entropy_with_integer_labels``, K decision functions),
        ``multiclass_hinge`` is Weston-Watkins' (``multiclass_hinge``), the others are
        one-vs-rest (K independent binary problems, solved together).
    loss_params : dict, optional. The fastloss loss's parameters (``{"gamma": 1.0}``).
    alpha, l1_ratio, fit_intercept, solver, max_iter, tol, warm_start, n_threads :
        as :class:`LinearRegressor`.
    class_weight : dict, "balanced" or None. Multiplies each sample's weight by its class's
        (scikit-learn's convention; "balanced": Σ s / (n_classes · Σ_{class} s), s the sample
        weights).

    Attributes: ``classes_``, ``coef_`` (1, n_features) for two classes, else (K, n_features),
    ``intercept_`` (1,) or (K,), ``n_iter_``, ``n_features_in_``, ``objective_``.
    ``predict_proba`` exists for ``log_loss``, ``logistic`` and ``focal``.
    """

    def __init__(self, loss="log_loss", *, loss_params=None, alpha=1e-4, l1_ratio=0.0,
                 fit_intercept=True, solver="lbfgs", max_iter=100, tol=1e-4,
                 class_weight=None, warm_start=False, n_threads=None):
        self.loss = loss
        self.loss_params = loss_params
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.n_threads = n_threads

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features; dense or scipy.sparse) and class labels y."""
        from sklearn.utils.class_weight import compute_class_weight

        params = _check_params(self, _CLF_LOSSES)
        X, y = _validate_data(self, X, y, accept_sparse=["csr", "csc"],
                              dtype=[np.float64, np.float32],
                              reset=not (self.warm_start and hasattr(self, "coef_")))
        check_classification_targets(y)
        sw = _weights(self, sample_weight, X)
        classes, yi = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(f"LinearClassifier.fit: this solver needs samples of at least 2 "
                             f"classes in the data, but the data contains only one class: "
                             f"{classes[0]!r}")
        self.classes_ = classes
        kc = classes.size
        if self.class_weight is not None:
            try:                        # "balanced" counts weighted samples (>= 1.7)
                cw = compute_class_weight(self.class_weight, classes=classes, y=y,
                                          sample_weight=sw)
            except TypeError:
                cw = compute_class_weight(self.class_weight, classes=classes, y=y)
            sw = sw * cw[yi]
            if not sw.sum() > 0:
                raise ValueError("LinearClassifier.fit: sample_weight times class_weight "
                                 "sums to 0")
        binary_fn, multi_fn, labels, _ = _CLF_LOSSES[self.loss]
        dt = X.dtype
        if kc == 2:
            fn, k = binary_fn, 1
            t = yi.astype(dt)
            if labels == "pm1":
                t = 2 * t - 1
            obj = _objs.LOSS_OBJECTS[fn](**params)
            b0 = obj.fit_intercept_only(yi.astype(np.float64), sw) if self.fit_intercept \
                else None
        elif multi_fn in ("softmax_cross_entropy_with_integer_labels", "multiclass_hinge"):
            fn, k = multi_fn, kc
            t = yi.astype(np.int64)
            b0 = None
            if fn == "softmax_cross_entropy_with_integer_labels" and self.fit_intercept:
                b0 = _objs.LOSS_OBJECTS[fn](n_classes=kc, **params).fit_intercept_only(
                    yi.astype(np.float64), sw)
        else:                                               # one-vs-rest, solved jointly
            fn, k = multi_fn, kc
            onehot = (yi[:, None] == np.arange(kc)).astype(dt)
            t = np.ascontiguousarray(2 * onehot - 1 if labels == "pm1" else onehot)
            b0 = None
            if self.fit_intercept:
                obj = _objs.LOSS_OBJECTS[fn](**params)
                b0 = np.array([obj.fit_intercept_only(onehot[:, j].astype(np.float64), sw)
                               for j in range(kc)])
        w, b = self._fit_linear(X, t, sw, k, fn, params, b0)
        if fn == "softmax_cross_entropy_with_integer_labels":
            b = b - b.mean()     # softmax is invariant to a common shift: the centred one
        self.coef_ = w
        self.intercept_ = b if self.fit_intercept else np.zeros(k, dtype=dt)
        return self

    def decision_function(self, X):
        """X·Wᵀ + b: shape (n_samples,) for two classes, else (n_samples, n_classes)."""
        check_is_fitted(self)
        X = _validate_data(self, X, accept_sparse=["csr", "csc"],
                           dtype=[np.float64, np.float32], reset=False)
        z = np.asarray(X @ self.coef_.T.astype(X.dtype)) + self.intercept_
        return z[:, 0] if z.shape[1] == 1 else z

    def predict(self, X):
        """Class labels: the largest decision function (its sign for two classes)."""
        z = self.decision_function(X)
        idx = (z > 0).astype(np.int64) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def _has_proba(self):
        return _CLF_LOSSES.get(self.loss, (None,) * 4)[3] is not None

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities: sigmoid (two classes), softmax (multinomial log_loss) or
        normalized one-vs-rest sigmoids (logistic, focal with more classes)."""
        z = np.asarray(self.decision_function(X), dtype=np.float64)
        if z.ndim == 1:
            p1 = _objs.LogitLink.inverse(z)
            return np.stack([1 - p1, p1], axis=1)
        if self.loss == "log_loss":
            return _objs.SoftmaxLink.inverse(z)
        p = _objs.LogitLink.inverse(z)
        return p / p.sum(axis=1, keepdims=True)

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """log of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))
