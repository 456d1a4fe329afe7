"""Workflow benchmark cases: fastloss inside the programs it is used in, against the real peer.

* ``lbfgs_binary`` / ``lbfgs_multinomial``: L2-penalized logistic regression fitted with
  ``scipy.optimize.minimize(method="L-BFGS-B")`` around ``fastloss.value_and_grad``
  (the gradient with respect to the weights by the chain rule through ``X`` with BLAS),
  against ``sklearn.linear_model.LogisticRegression(solver="lbfgs")`` with the same
  objective (mean loss + ``||W||² / (2 C n)``, intercept not penalized) and the same
  L-BFGS-B options (``gtol = tol``, ``ftol = 64 eps``, ``maxls = 50``).  Timed: one fit.
  Reported beside the row: the largest coefficient difference (class-centred for the
  multinomial, whose softmax is invariant to a per-feature shift) and the loss calls.
* ``xgboost_objective`` / ``lightgbm_objective``: 100 boosting rounds with the objective of
  ``fastloss.boosting`` for ``sigmoid_binary_cross_entropy`` (per-sample gradients)
  against the library's built-in binary logistic objective, both started from margin 0,
  and against the NumPy custom objective of the libraries' own examples (``expit``; its
  time is what the custom-objective interface costs with any objective).  Reported:
  training time of each, the time spent inside the fastloss objective, test AUC of each.
  Skipped when the library is missing.
* ``estimator_multinomial`` / ``estimator_poisson``: ``fastloss.linear_model``'s
  ``LinearClassifier`` / ``LinearRegressor("poisson_nll")`` against scikit-learn's
  ``LogisticRegression`` / ``PoissonRegressor`` on the same objective.  Timed: one fit.
* ``huber`` "torch bridge": ``fastloss.torch.huber`` forward + backward against
  ``torch.nn.functional.huber_loss``, float32.
* ``contention``: one value+gradient call while busy-loop processes keep every core busy
  (started just before the case is timed, stopped right after), default threads against
  the serial kernel (``n_threads=1``) on the same input.
* ``float64 per call``: sigmoid BCE value+gradient, float64, n = 10 … 1e5, against
  scikit-learn's ``HalfBinomialLoss.loss_gradient``, NumPy and PyTorch eager.

Peers outside the table's numpy/torch/sklearn columns ("builtin", "serial") and the
accuracy notes are printed on a line under the row.  Inputs are float64 whatever dtype the
runner asks for (the optimizers and boosting libraries work in float64).
"""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from . import Case
from .elementwise import _make as _ew_make
from .elementwise import _np_peer, _sklearn_peer, _torch_peer

C_REG = 1.0      # LogisticRegression's C
TOL = 1e-10      # gtol of both optimizers
ROUNDS = 100     # boosting rounds


# ------------------------------------------------------------------ logistic regression
def _lr_data(n, d, K, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if K == 2:
        y = (X @ rng.standard_normal(d) + rng.logistic(size=n) > 0).astype(np.float64)
    else:
        y = np.argmax(X @ rng.standard_normal((d, K)) + rng.gumbel(size=(n, K)), 1)
    return X, y


class _LBFGS:
    """The fastloss fit; ``last`` keeps the last result and ``calls`` its loss calls."""

    def __init__(self, X, y, K):
        import fastloss as fl

        self.X, self.y, self.K = X, y, K
        n, d = X.shape
        self.lam = 1.0 / (C_REG * n)
        self.k = 1 if K == 2 else K
        self.vg = fl.value_and_grad(fl.sigmoid_binary_cross_entropy if K == 2 else
                                    fl.softmax_cross_entropy_with_integer_labels)
        self.calls, self.last = 0, None

    def obj(self, w):
        self.calls += 1
        X, k, lam = self.X, self.k, self.lam
        d = X.shape[1]
        W = w[:d * k].reshape(d, k)
        Z = X @ W + w[d * k:]
        v, g = self.vg(Z[:, 0] if k == 1 else Z, self.y)
        g = g.reshape(-1, k)
        gw = X.T @ g + lam * W
        return v + 0.5 * lam * float(np.sum(W * W)), np.concatenate([gw.ravel(), g.sum(0)])

    def fit(self):
        import scipy.optimize as so

        d = self.X.shape[1]
        self.calls = 0
        self.last = so.minimize(self.obj, np.zeros(d * self.k + self.k), jac=True,
                                method="L-BFGS-B",
                                options={"maxiter": 1000, "gtol": TOL, "maxls": 50,
                                         "ftol": 64 * np.finfo(float).eps})
        return self.last

    def coef(self):
        d = self.X.shape[1]
        W = self.last.x[:d * self.k].reshape(d, self.k).T          # (k, d) like sklearn
        return W if self.k == 1 else W - W.mean(0, keepdims=True)


def _lr_case(n, d, K):
    name = "binary" if K == 2 else f"multinomial K={K}"
    state = {}

    def make(dtype=None):
        X, y = _lr_data(n, d, K)
        state["fit"] = _LBFGS(X, y, K)
        return (X, y), {}

    def run(args, kw):
        return state["fit"].fit

    def sk(args, kw):
        from sklearn.linear_model import LogisticRegression
        X, y = args

        def fit():
            state["sk"] = LogisticRegression(C=C_REG, tol=TOL, max_iter=1000).fit(X, y)
        return fit

    def note(args, kw):
        f = state["fit"]
        out = f"{f.calls} loss calls, {f.last.nit} iterations"
        if "sk" in state:
            ref = state["sk"].coef_
            ref = ref if f.k == 1 else ref - ref.mean(0, keepdims=True)
            out += f"; max |coef - sklearn coef| {np.abs(f.coef() - ref).max():.1e}"
        return out

    return Case(f"lbfgs_{'binary' if K == 2 else 'multinomial'}", f"{n}x{d} {name}",
                make, lambda args: None, {"sklearn": sk}, run=run, note=note)


# ------------------------------------------------------------------------------ boosting
def _gb_data(n, d=20, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, d))
    logit = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + X[:, 3] - 0.5 * X[:, 4] ** 2
    y = (logit + rng.logistic(size=2 * n) > 0).astype(np.float64)
    return X[:n], y[:n], X[n:], y[n:]


def _auc(y, s):
    from sklearn.metrics import roc_auc_score
    return roc_auc_score(y, s)


def _gb_case(lib, n):
    state = {"t_obj": 0.0}

    def make(dtype=None):
        __import__(lib)  # ImportError: the case is skipped
        return _gb_data(n), {}

    def timed(obj):
        def f(preds, data):
            t = time.perf_counter()
            r = obj(preds, data)
            state["t_obj"] += time.perf_counter() - t
            return r
        return f

    def objective(custom):
        if custom == "numpy":   # the NumPy objective of XGBoost's and LightGBM's examples
            from scipy.special import expit

            def obj(preds, data):
                y = data.get_label()
                p = expit(preds)
                return p - y, p * (1.0 - p)
            return obj
        import fastloss.boosting as fb
        make = fb.xgboost_objective if lib == "xgboost" else fb.lightgbm_objective
        return timed(make("sigmoid_binary_cross_entropy"))

    def train(args, custom):
        Xtr, ytr, Xte, yte = args
        if lib == "xgboost":
            import xgboost as xgb
            dtr, dte = xgb.DMatrix(Xtr, label=ytr), xgb.DMatrix(Xte)
            p = {"tree_method": "hist", "max_depth": 6, "eta": 0.3, "verbosity": 0}

            if custom:
                def fit():
                    if custom == "fastloss":
                        state["t_obj"] = 0.0
                    b = xgb.train(dict(p, base_score=0.0), dtr, ROUNDS, obj=objective(custom))
                    if custom == "fastloss":
                        state["auc_fl"] = _auc(yte, b.predict(dte, output_margin=True))
            else:
                def fit():
                    b = xgb.train(dict(p, objective="binary:logistic", base_score=0.5),
                                  dtr, ROUNDS)
                    state["auc_builtin"] = _auc(yte, b.predict(dte, output_margin=True))
            return fit
        import lightgbm as lgb
        p = {"num_leaves": 31, "learning_rate": 0.1, "verbose": -1,
             "boost_from_average": False}

        def fit():
            dtr = lgb.Dataset(Xtr, label=ytr, free_raw_data=False)
            if custom:
                if custom == "fastloss":
                    state["t_obj"] = 0.0
                b = lgb.train(dict(p, objective=objective(custom)), dtr, ROUNDS)
                if custom == "fastloss":
                    state["auc_fl"] = _auc(yte, b.predict(Xte, raw_score=True))
            else:
                b = lgb.train(dict(p, objective="binary"), dtr, ROUNDS)
                state["auc_builtin"] = _auc(yte, b.predict(Xte, raw_score=True))
        return fit

    def note(args, kw):
        out = f"time in the fastloss objective {state['t_obj'] * 1e3:.1f} ms per fit"
        if "auc_fl" in state and "auc_builtin" in state:
            out += (f"; test AUC fastloss {state['auc_fl']:.4f}, built-in "
                    f"{state['auc_builtin']:.4f}")
        return out

    return Case(f"{lib}_objective", f"{n}x20 {ROUNDS} rounds", make, lambda args: None,
                {"builtin": lambda args, kw: train(args, False),
                 "numpy_objective": lambda args, kw: train(args, "numpy")},
                run=lambda args, kw: train(args, "fastloss"), note=note,)


# ---------------------------------------------------------------------------- estimators
def _estimator_case(model, n, d):
    """fastloss.linear_model against its scikit-learn counterpart, the same objective."""
    K = 5 if model == "multinomial" else 2
    state = {}

    def make(dtype=None):
        __import__("sklearn")  # ImportError: the case is skipped
        X, y = _lr_data(n, d, K)
        if model == "poisson":
            rng = np.random.default_rng(1)
            y = rng.poisson(np.exp(0.3 * X[:, :3].sum(1))).astype(np.float64)
        return (X, y), {}

    def pair():
        from sklearn import linear_model as skl

        from .. import linear_model as flm
        alpha = 1.0 / (C_REG * n)
        if model == "poisson":   # mean half-deviance (= poisson_nll + const) + alpha/2 ||w||²
            return (skl.PoissonRegressor(alpha=1e-3, tol=1e-8, max_iter=1000),
                    flm.LinearRegressor("poisson", alpha=1e-3, tol=1e-8, max_iter=1000))
        return (skl.LogisticRegression(C=C_REG, tol=1e-8, max_iter=1000),
                flm.LinearClassifier(alpha=alpha, tol=1e-8, max_iter=1000))

    def run(args, kw):
        def fit():
            state["fl"] = pair()[1].fit(*args)
        return fit

    def sk(args, kw):
        def fit():
            state["sk"] = pair()[0].fit(*args)
        return fit

    def note(args, kw):
        if "fl" not in state or "sk" not in state:
            return ""
        a, b = np.ravel(state["fl"].coef_), np.ravel(state["sk"].coef_)
        return (f"{state['fl'].n_iter_} iterations; max |coef - sklearn coef| / max |coef| "
                f"{np.abs(a - b).max() / np.abs(b).max():.1e}")

    return Case(f"estimator_{model}", f"{n}x{d}", make, lambda args: None,
                {"sklearn": sk}, run=run, note=note)


# -------------------------------------------------------------------------- PyTorch bridge
def _torch_case(n):
    """fastloss.torch.huber forward + backward against torch's huber_loss, float32."""
    def make(dtype=None):
        import torch  # ImportError: the case is skipped
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, generator=g, requires_grad=True)
        return (x, torch.randn(n, generator=g)), {}

    def run(args, kw):
        import fastloss.torch as flt

        def f():
            args[0].grad = None
            flt.huber(*args).backward()
        return f

    def peer(args, kw):
        import torch

        def f():
            args[0].grad = None
            torch.nn.functional.huber_loss(*args).backward()
        return f

    return Case("torch_bridge_huber", f"n={n:.0e} f32", make,
                lambda args: 3 * 4 * n, {"torch": peer}, run=run)


# ---------------------------------------------------------------------------- contention
def _busy_cores():
    """Start one busy-loop process per core of fastloss's pool; return the stopper."""
    import fastloss._threads as T

    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(max(1, T.pool_size()))]
    time.sleep(0.3)

    def stop():
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
    return stop


def _contention_case(n):
    def make(dtype=None):
        rng = np.random.default_rng(0)
        x, y = rng.standard_normal(n), rng.standard_normal(n)
        return (x, y), {"grad_out": np.empty(n)}

    def serial(args, kw):
        import fastloss as fl
        vg = fl.value_and_grad(fl.huber)
        return lambda: vg(*args, n_threads=1, **kw)

    return Case("huber", f"busy cores n={n:.0e} f64", make, lambda args: 3 * args[0].nbytes,
                {"serial": serial}, load=_busy_cores,
                note=lambda args, kw: "all cores busy; serial = n_threads=1")


# ------------------------------------------------------------------------ float64 per call
def _f64_case(n):
    name = "sigmoid_binary_cross_entropy"
    return Case(name, f"float64 n={n:.0e}",
                lambda dtype=None: _ew_make(name, n, np.float64),
                lambda args: 3 * args[0].nbytes,
                {"numpy": _np_peer(name), "torch": _torch_peer(name),
                 "sklearn": _sklearn_peer(name)})


def cases(quick: bool = False) -> list:
    if quick:
        lr = [(1000, 20), (5000, 50)]
        gb, busy, f64, torch_n = 2000, [20_000], [10, 1000], [10_000]
    else:
        lr = [(1000, 20), (200_000, 50)]
        gb, busy, f64 = 100_000, [20_000, 200_000, 2_000_000], [10, 1000, 10_000, 100_000]
        torch_n = [10_000, 1_000_000, 10_000_000]
    out = []
    for n, d in lr:
        out.append(_lr_case(n, d, 2))
        out.append(_lr_case(n, d, 5))
    out += [_estimator_case(m, n, d) for n, d in lr for m in ("multinomial", "poisson")]
    out += [_gb_case("xgboost", gb), _gb_case("lightgbm", gb)]
    out += [_torch_case(n) for n in torch_n]
    out += [_contention_case(n) for n in busy]
    out += [_f64_case(n) for n in f64]
    return out
