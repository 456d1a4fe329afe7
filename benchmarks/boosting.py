"""XGBoost and LightGBM: a fastloss objective against the library's built-in objective.

    python benchmarks/boosting.py [--n 200000] [--features 20] [--rounds 100] [--repeat 3]
        [--libs xgboost,lightgbm] [--losses logistic,squared_error,poisson_nll,pseudo_huber,softmax]
        [--threads N] [--fl-threads N]

For every library and loss, in one process and round robin (``--repeat`` rounds, medians):

* ``builtin``: ``xgb.train`` / ``lgb.train`` with the built-in objective (``binary:logistic``
  / ``binary``, ``reg:squarederror`` / ``regression``, ``count:poisson`` / ``poisson``,
  ``reg:pseudohubererror`` (LightGBM has none: a float64 NumPy objective with XGBoost's
  pseudo-Huber formulas stands in), ``multi:softprob`` / ``multiclass`` with 5 classes);
* ``fastloss``: the same booster parameters with ``fastloss.boosting.xgboost_objective`` /
  ``lightgbm_objective`` (defaults; initial score from ``base_score`` / ``init_score``;
  XGBoost Poisson also gets ``max_delta_step=0.7``, as ``count:poisson`` sets it).

Printed per row: training time of each (``--rounds`` rounds on ``--n`` rows), their ratio,
the time spent inside the fastloss objective (total over the rounds, and its share of the
fastloss run), the first call of the objective (kernel compile or cache load, not in the
timings), and the test metric of each (raw margins on ``--n`` held-out rows: log loss, RMSE,
Poisson deviance, mean pseudo-Huber, multiclass log loss; lower is better).

``--threads`` sets the boosters' threads (default: all cores); ``--fl-threads`` fastloss's
(default: fastloss's default).  On a busy machine the OpenMP pools of the booster and of
Numba contend: compare ``--fl-threads 1``.  The header names the CPU, its vector width and
Numba's threading layer.  Memory: the data (n × features float64, twice) plus the
libraries' own copies.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

K = 5
DELTA = 1.5
SOFTMAX = "softmax_cross_entropy_with_integer_labels"
ALIASES = {"softmax": SOFTMAX}
XGB = {"logistic": "binary:logistic", "squared_error": "reg:squarederror",
       "poisson_nll": "count:poisson", "pseudo_huber": "reg:pseudohubererror",
       SOFTMAX: "multi:softprob"}
LGB = {"logistic": "binary", "squared_error": "regression", "poisson_nll": "poisson",
       SOFTMAX: "multiclass"}


def _data(loss, n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((2 * n, d))
    f = X[:, 0] * X[:, 1] + np.sin(2 * X[:, 2]) + X[:, 3] - 0.3 * X[:, 4] ** 2
    if loss == "logistic":
        y = (f + rng.logistic(size=2 * n) > 0).astype(float)
    elif loss == "squared_error":
        y = f + 0.5 * rng.standard_normal(2 * n)
    elif loss == "poisson_nll":
        y = rng.poisson(np.exp(0.5 * f)).astype(float)
    elif loss == "pseudo_huber":
        y = f + 0.5 * rng.standard_t(4, 2 * n)
    else:
        z = np.stack([f, X[:, 4], -f, X[:, 5 % d], 0.5 * X[:, 0]], 1)
        y = np.argmax(2 * z + rng.gumbel(size=(2 * n, K)), 1).astype(float)
    return X[:n], y[:n], X[n:], y[n:]


def _metric(loss, m, y):
    from scipy.special import logsumexp, xlogy
    m = np.asarray(m, np.float64)
    if loss == "logistic":
        return np.mean(np.logaddexp(0, m) - y * m)
    if loss == "squared_error":
        return np.sqrt(np.mean((m - y) ** 2))
    if loss == "poisson_nll":
        mu = np.exp(m)
        return 2 * np.mean(xlogy(y, y / mu) - (y - mu))
    if loss == "pseudo_huber":
        return np.mean(DELTA ** 2 * (np.sqrt(1 + ((m - y) / DELTA) ** 2) - 1))
    return np.mean(logsumexp(m, axis=1) - m[np.arange(len(y)), y.astype(int)])


class _Timed:
    """An objective that adds the time spent in it to ``self.t``."""

    def __init__(self, obj):
        self.obj, self.t = obj, 0.0

    def __deepcopy__(self, memo):     # lgb.train deep-copies its parameters
        return self

    def __call__(self, preds, data):
        t = time.perf_counter()
        r = self.obj(preds, data)
        self.t += time.perf_counter() - t
        return r


def _np_pseudo_huber(preds, data):
    z = preds - data.get_label()
    s = np.sqrt(1 + (z / DELTA) ** 2)
    return z / s, 1 / s ** 3


def _case(lib, loss, args):
    import fastloss.boosting as fb
    Xtr, ytr, Xte, yte = _data(loss, args.n, args.features)
    pp = {"delta": DELTA} if loss == "pseudo_huber" else {}
    nt = args.threads
    out = {}
    if lib == "xgboost":
        import xgboost as xgb
        p = {"tree_method": "hist", "max_depth": 6, "eta": 0.1, "verbosity": 0}
        if nt:
            p["nthread"] = nt
        if loss == SOFTMAX:
            p["num_class"] = K
        if loss == "pseudo_huber":
            p["huber_slope"] = DELTA
        dtr, dte = xgb.DMatrix(Xtr, label=ytr), xgb.DMatrix(Xte)
        obj = _Timed(fb.xgboost_objective(loss, n_threads=args.fl_threads, **pp))
        pf = dict(p, base_score=fb.base_score(loss, ytr, **pp))
        if loss == "poisson_nll":
            pf["max_delta_step"] = 0.7

        def builtin():
            b = xgb.train(dict(p, objective=XGB[loss]), dtr, args.rounds)
            out["m_builtin"] = _metric(loss, b.predict(dte, output_margin=True), yte)

        def custom():
            obj.t = 0.0
            b = xgb.train(pf, dtr, args.rounds, obj=obj)
            out["m_fl"] = _metric(loss, b.predict(dte, output_margin=True), yte)
            out["t_obj"] = obj.t

        first = lambda: obj.obj(np.zeros((len(ytr), K) if loss == SOFTMAX else len(ytr),  # noqa
                                        np.float32), dtr)
    else:
        import lightgbm as lgb
        p = {"num_leaves": 63, "learning_rate": 0.1, "verbose": -1}
        if nt:
            p["num_threads"] = nt
        if loss == SOFTMAX:
            p["num_class"] = K
        c = fb.init_score(loss, ytr, **pp)
        init = np.tile(c, (len(ytr), 1)) if np.ndim(c) else np.full(len(ytr), c)
        dtr = lgb.Dataset(Xtr, ytr, free_raw_data=False).construct()
        dtr_i = lgb.Dataset(Xtr, ytr, init_score=init, free_raw_data=False).construct()
        obj = _Timed(fb.lightgbm_objective(loss, n_threads=args.fl_threads, **pp))

        def builtin():
            if loss == "pseudo_huber":
                b = lgb.train(dict(p, objective=_np_pseudo_huber), dtr_i, args.rounds)
                out["m_builtin"] = _metric(loss, c + b.predict(Xte, raw_score=True), yte)
            else:
                b = lgb.train(dict(p, objective=LGB[loss]), dtr, args.rounds)
                out["m_builtin"] = _metric(loss, b.predict(Xte, raw_score=True), yte)

        def custom():
            obj.t = 0.0
            b = lgb.train(dict(p, objective=obj), dtr_i, args.rounds)
            out["m_fl"] = _metric(loss, c + b.predict(Xte, raw_score=True), yte)
            out["t_obj"] = obj.t

        first = lambda: obj.obj(np.zeros((len(ytr), K), order="F") if loss == SOFTMAX  # noqa
                                else np.zeros(len(ytr)), dtr)
    t = time.perf_counter()
    first()
    t_first = time.perf_counter() - t
    tb, tc, to = [], [], []
    for _ in range(args.repeat):          # round robin
        t = time.perf_counter()
        builtin()
        tb.append(time.perf_counter() - t)
        t = time.perf_counter()
        custom()
        tc.append(time.perf_counter() - t)
        to.append(out["t_obj"])
    med = statistics.median
    return dict(builtin=med(tb), fl=med(tc), obj=med(to), first=t_first,
                m_builtin=out["m_builtin"], m_fl=out["m_fl"])


def _header():
    import numba
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        cpu = next(l.split(":", 1)[1].strip() for l in info.splitlines()
                   if l.startswith("model name"))
        flags = sorted({w for w in info.split() if w.startswith("avx512")})
        vec = "AVX-512" if flags else ("AVX2" if " avx2 " in info else "no AVX2")
    except (OSError, StopIteration):
        vec = "?"
    import fastloss
    fastloss.huber(np.zeros(1 << 20), np.zeros(1 << 20))   # a parallel kernel: starts the pool
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not started"
    print(f"# {cpu}; {vec}; {os.cpu_count()} logical CPUs; numba {numba.__version__} "
          f"threading layer {layer}; fastloss threads {fastloss.get_num_threads()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--libs", default="xgboost,lightgbm")
    ap.add_argument("--losses", default="logistic,squared_error,poisson_nll,pseudo_huber,softmax")
    ap.add_argument("--threads", type=int, default=0, help="booster threads (0: its default)")
    ap.add_argument("--fl-threads", type=int, default=None, dest="fl_threads")
    args = ap.parse_args(argv)
    if args.features < 6:
        ap.error("--features must be at least 6")
    libs = [s for s in args.libs.split(",") if s]
    losses = [ALIASES.get(s, s) for s in args.losses.split(",") if s]
    for loss in losses:
        if loss not in XGB:
            ap.error(f"unknown loss {loss!r}")
    _header()
    import xgboost
    import lightgbm
    print(f"# xgboost {xgboost.__version__}, lightgbm {lightgbm.__version__}; n = {args.n} "
          f"train + {args.n} test rows, {args.features} features, {args.rounds} rounds, "
          f"median of {args.repeat}")
    print(f"{'library':9} {'loss':14} {'builtin s':>10} {'fastloss s':>11} {'ratio':>6} "
          f"{'in obj s':>9} {'share':>6} {'1st call s':>10} {'metric builtin':>15} "
          f"{'metric fastloss':>16}")
    for lib in libs:
        for loss in losses:
            try:
                __import__(lib)
            except ImportError:
                print(f"{lib:9} skipped (not installed)")
                break
            r = _case(lib, loss, args)
            name = "softmax(K=5)" if loss == SOFTMAX else loss
            print(f"{lib:9} {name:14} {r['builtin']:10.3f} {r['fl']:11.3f} "
                  f"{r['fl'] / r['builtin']:6.2f} {r['obj']:9.3f} {r['obj'] / r['fl']:6.1%} "
                  f"{r['first']:10.2f} {r['m_builtin']:15.5f} {r['m_fl']:16.5f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
