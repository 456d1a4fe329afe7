"""Fit time of fastloss.linear_model's estimators against their scikit-learn counterparts.

    python benchmarks/estimators.py                      # 1000×20 and 200000×50
    python benchmarks/estimators.py --sizes 1000x20 --repeat 9
    python benchmarks/estimators.py --cases logreg,ridge --threads 2

For each case and size both estimators are fitted once untimed (kernels compiled or loaded,
BLAS warmed), then timed in turn (round robin, ``--repeat`` rounds, medians) so that the
machine's drift reaches both alike.  The table gives both fit times, their ratio
(scikit-learn / fastloss: above 1 means fastloss is faster), the iterations, and the largest
coefficient difference relative to the largest scikit-learn coefficient.  The penalties are
mapped so that both estimators minimize the same objective (see docs/estimators.md); both
run at ``--tol`` (default 1e-6) where the estimator has one.  ``quantile`` (scikit-learn's
linear program, HiGHS) runs only at sizes up to 20 000 rows unless ``--quantile-large``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np


def _cpu():
    name = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        for line in txt.splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
        flags = sorted({w for w in txt.split() if w.startswith("avx512")})
        vec = "AVX-512" if flags else ("AVX2" if " avx2 " in txt else "SSE")
    except OSError:
        vec = "?"
    return f"{name} ({os.cpu_count()} CPUs, {vec})"


def _data(kind, n, p, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    w = rng.normal(size=p) / np.sqrt(p)
    z = X @ w
    if kind == "binary":
        return X, (z + rng.logistic(size=n) > 0).astype(np.int64)
    if kind == "multi":
        W = rng.normal(size=(5, p)) / np.sqrt(p)
        return X, np.argmax(X @ W.T + rng.gumbel(size=(n, 5)), axis=1)
    if kind == "poisson":
        return X, rng.poisson(np.exp(0.5 * z)).astype(np.float64)
    return X, z + rng.standard_t(3, size=n)          # regression with heavy tails


def _cases(tol):
    from sklearn import linear_model as skl
    from sklearn.svm import LinearSVC

    from fastloss.linear_model import LinearClassifier, LinearRegressor

    C, a = 1.0, 1.0

    def logreg(kind):
        def make(n):
            return (skl.LogisticRegression(C=C, tol=tol, max_iter=10000),
                    LinearClassifier(alpha=1 / (C * n), tol=tol, max_iter=10000))
        return kind, make

    def ridge(n):
        return skl.Ridge(alpha=a), LinearRegressor(alpha=2 * a / n, tol=tol, max_iter=10000)

    def huber(n):
        sk = skl.HuberRegressor(alpha=a, tol=tol, max_iter=10000)
        return sk, None                  # the fastloss side needs sk's scale: see main

    def poisson(n):
        return (skl.PoissonRegressor(alpha=1e-3, tol=tol, max_iter=10000),
                LinearRegressor("poisson", alpha=1e-3, tol=tol, max_iter=10000))

    def quantile(n):
        return (skl.QuantileRegressor(quantile=0.7, alpha=1e-3, solver="highs"),
                LinearRegressor("quantile", loss_params={"quantile": 0.7}, alpha=1e-3,
                                l1_ratio=1.0, tol=tol, max_iter=10000))

    def svc(n):
        return (LinearSVC(C=C, dual=False, fit_intercept=False, tol=tol, max_iter=100000),
                LinearClassifier("squared_hinge", alpha=1 / (C * n), fit_intercept=False,
                                 tol=tol, max_iter=10000))

    return {
        "logreg": ("binary", logreg("binary")[1]),
        "logreg_multinomial": ("multi", logreg("multi")[1]),
        "ridge": ("regression", ridge),
        "huber": ("regression", huber),
        "poisson": ("poisson", poisson),
        "quantile": ("regression", quantile),
        "linear_svc": ("binary", svc),
    }


def _fit(est, X, y):
    t = time.perf_counter()
    est.fit(X, y)
    return time.perf_counter() - t


def _iters(est):
    it = getattr(est, "n_iter_", None)
    return "-" if it is None else int(np.max(it))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1000x20,200000x50")
    ap.add_argument("--cases", default="all")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--threads", type=int, default=None,
                    help="fastloss and BLAS threads (threadpoolctl); default: as found")
    ap.add_argument("--quantile-large", action="store_true")
    args = ap.parse_args(argv)

    import numba
    import scipy
    import sklearn

    import fastloss
    from fastloss.linear_model import LinearRegressor

    cases = _cases(args.tol)
    names = list(cases) if args.cases == "all" else args.cases.split(",")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    limiter = None
    if args.threads:
        from threadpoolctl import threadpool_limits
        limiter = threadpool_limits(args.threads)
        fastloss.set_num_threads(args.threads)
    print(f"# {_cpu()}; Python {sys.version.split()[0]}, NumPy {np.__version__}, SciPy "
          f"{scipy.__version__}, scikit-learn {sklearn.__version__}, Numba {numba.__version__}"
          f"; threads {args.threads or 'default'}; tol {args.tol}; {args.repeat} rounds, "
          f"medians")
    hdr = (f"{'case':20s} {'size':>10s} {'sklearn s':>10s} {'fastloss s':>10s} "
           f"{'ratio':>6s} {'it sk':>6s} {'it fl':>6s} {'coef rel diff':>13s}")
    print(hdr)
    print("-" * len(hdr))
    warnings.simplefilter("ignore")        # convergence chatter of either side
    for name in names:
        kind, make = cases[name]
        for n, p in sizes:
            if name == "quantile" and n > 20000 and not args.quantile_large:
                print(f"{name:20s} {f'{n}x{p}':>10s}   skipped (LP at this size: "
                      f"--quantile-large)")
                continue
            X, y = _data(kind, n, p)
            sk, fl = make(n)
            if fl is None:               # huber: fastloss at scikit-learn's fitted scale
                sk.fit(X, y)
                sig = sk.scale_
                fl = LinearRegressor("huber", loss_params={"delta": sk.epsilon * sig},
                                     alpha=sk.alpha * sig / n, tol=args.tol, max_iter=10000)
            _fit(sk, X, y), _fit(fl, X, y)          # warm: kernels, caches, BLAS
            ts, tf = [], []
            for _ in range(args.repeat):
                ts.append(_fit(sk, X, y))
                tf.append(_fit(fl, X, y))
            ms, mf = statistics.median(ts), statistics.median(tf)
            cs, cf = np.asarray(sk.coef_, float), np.asarray(fl.coef_, float)
            rel = float(np.max(np.abs(cs - cf)) / max(np.max(np.abs(cs)), 1e-300))
            print(f"{name:20s} {f'{n}x{p}':>10s} {ms:10.4f} {mf:10.4f} {ms / mf:6.2f} "
                  f"{str(_iters(sk)):>6s} {str(_iters(fl)):>6s} {rel:13.2e}", flush=True)
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
