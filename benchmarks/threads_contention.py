"""Threading-policy measurements for fastloss's CPU kernels (docs/threads.md).

    python benchmarks/threads_contention.py all          # every part, every layer candidate
    python benchmarks/threads_contention.py thresholds   # serial vs parallel per call, 1e2..1e6
    python benchmarks/threads_contention.py contention   # a call while other processes busy-loop
    python benchmarks/threads_contention.py workflow     # L-BFGS-B multinomial fit vs scikit-learn
    python benchmarks/threads_contention.py safety       # fork child and 8 Python threads

``all`` runs ``contention``, ``workflow`` and ``safety`` once per candidate configuration,
each in a fresh process (the threading layer is chosen once per process):

* ``default``   — what fastloss does with nothing set (TBB made loadable when installed);
* ``omp``       — ``NUMBA_THREADING_LAYER=omp`` (GNU OpenMP, fastloss sets a passive wait
  policy when none is set);
* ``omp-spin``  — ``omp`` with ``OMP_WAIT_POLICY=ACTIVE`` (Numba's behaviour before);
* ``workqueue`` — ``NUMBA_THREADING_LAYER=workqueue`` (calls serialized by a lock);

then ``thresholds`` once. Ratios are taken within one process, round robin, medians; run
on a quiet machine (other load changes the parallel/serial ratios).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

CANDIDATES = {
    "default": {},
    "omp": {"NUMBA_THREADING_LAYER": "omp"},
    "omp-spin": {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "ACTIVE"},
    "workqueue": {"NUMBA_THREADING_LAYER": "workqueue"},
}


def _median(ts):
    ts = sorted(ts)
    return ts[len(ts) // 2]


def _time(f, reps):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return _median(ts), max(ts)


def _layer():
    import fastloss._threads as T
    return T.threading_layer()


# ------------------------------------------------------------------------- thresholds
def _threshold_cases():
    import numpy as np

    import fastloss as fl

    rng = np.random.default_rng(0)
    out = []
    for n in (100, 1000, 10_000, 30_000, 100_000, 300_000, 1_000_000):
        for dt, loss in ((np.float64, fl.huber), (np.float32, fl.sigmoid_binary_cross_entropy)):
            x = rng.standard_normal(n).astype(dt)
            y = (rng.random(n) < 0.5).astype(dt)
            g = np.empty_like(x)
            vg = fl.value_and_grad(loss)
            out.append(("elementwise", f"{loss.__name__} {np.dtype(dt).name}", n,
                        lambda nt, vg=vg, x=x, y=y, g=g: vg(x, y, grad_out=g, n_threads=nt)))
    vgc = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    for C in (5, 20, 1000):
        for N in (4, 20, 100, 1000, 10_000, 100_000):
            if N * C > 2_000_000 or N * C < 100:
                continue
            z = rng.standard_normal((N, C))
            lab = rng.integers(0, C, N)
            g = np.empty_like(z)
            out.append(("rowwise", f"int CE f64 C={C}", N * C,
                        lambda nt, z=z, lab=lab, g=g: vgc(z, lab, grad_out=g, n_threads=nt)))
    vgt = fl.value_and_grad(fl.ctc_loss)
    for T_, N, C, L in ((10, 2, 5, 3), (30, 4, 10, 5), (50, 8, 29, 10), (150, 8, 29, 40),
                        (150, 32, 29, 40), (200, 16, 200, 50)):
        z = rng.standard_normal((N, T_, C)).astype(np.float32)
        lab = rng.integers(1, C, (N, L))
        il = np.full(N, T_)
        ll = np.full(N, L)
        out.append(("ctc", f"ctc f32 N={N} C={C}", N * T_ * C,
                    lambda nt, z=z, lab=lab, il=il, ll=ll: vgt(z, lab, il, ll, n_threads=nt)))
    return out


def thresholds(reps=15, rounds=5):
    import fastloss._cpu as cpu
    import fastloss._threads as T

    cases = _threshold_cases()
    for fam in cpu.PARALLEL_MIN:
        cpu.PARALLEL_MIN[fam] = 0          # the parallel kernel at every size
    size = T.pool_size()
    for c in cases:                        # compile / load both variants
        c[3](1), c[3](size)
    res = {}
    for _ in range(rounds):                # round robin: drift reaches both alike
        for fam, name, work, f in cases:
            for nt in (1, size):
                m, _ = _time(lambda: f(nt), reps)
                res.setdefault((fam, name, work, nt), []).append(m)
    print(f"\nthresholds: per-call median, serial kernel vs parallel ({size} threads), "
          f"layer {_layer()}")
    print(f"{'family':12s} {'case':24s} {'work':>9s} {'serial us':>10s} {'parallel us':>12s} "
          f"{'par/ser':>8s}")
    for fam, name, work, _ in cases:
        s = _median(res[(fam, name, work, 1)]) * 1e6
        p = _median(res[(fam, name, work, size)]) * 1e6
        print(f"{fam:12s} {name:24s} {work:9d} {s:10.1f} {p:12.1f} {p / s:8.2f}")


# ------------------------------------------------------------------------- contention
def contention(reps=30):
    import numpy as np

    import fastloss as fl
    import fastloss._threads as T

    rng = np.random.default_rng(0)
    size = T.pool_size()
    cases = {}
    for n in (20_000, 200_000, 2_000_000):
        x = rng.standard_normal(n)
        y = rng.standard_normal(n)
        g = np.empty(n)
        vg = fl.value_and_grad(fl.huber)
        cases[f"huber f64 n={n}"] = lambda nt, x=x, y=y, g=g, vg=vg: vg(x, y, grad_out=g,
                                                                         n_threads=nt)
    vgc = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    for N, C in ((1000, 20), (4000, 1000)):
        z = rng.standard_normal((N, C))
        lab = rng.integers(0, C, N)
        cases[f"int CE f64 {N}x{C}"] = lambda nt, z=z, lab=lab: vgc(z, lab, n_threads=nt)
    for f in cases.values():
        f(1), f(None)

    def one_round():
        r = {}
        for k, f in cases.items():
            for nt in (None, 1):
                r[(k, nt)] = _time(lambda: f(nt), reps)
        return r

    quiet = one_round()
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(size)]
    time.sleep(0.5)
    try:
        loaded = one_round()
    finally:
        for p in busy:
            p.kill()
    print(f"\ncontention ({size} busy-loop processes): per-call median (max) in ms, "
          f"default threads vs n_threads=1; layer {_layer()}")
    for k in cases:
        qd, qs = quiet[(k, None)][0], quiet[(k, 1)][0]
        bd, bs = loaded[(k, None)], loaded[(k, 1)]
        print(f"  {k:24s} quiet {qd * 1e3:8.3f} / {qs * 1e3:8.3f}   busy {bd[0] * 1e3:8.3f} "
              f"({bd[1] * 1e3:7.2f}) / {bs[0] * 1e3:8.3f} ({bs[1] * 1e3:7.2f})   "
              f"busy default/serial {bd[0] / bs[0]:5.2f}")


# --------------------------------------------------------------------------- workflow
def workflow(rounds=7):
    import numpy as np
    import scipy.optimize as so
    from sklearn.linear_model import LogisticRegression

    import fastloss as fl

    rng = np.random.default_rng(0)
    n, d, K = 1000, 20, 5
    X = rng.standard_normal((n, d))
    y = np.argmax(X @ rng.standard_normal((d, K)) + rng.gumbel(size=(n, K)), 1)
    vg = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    C = 1.0
    lam = 1.0 / (C * n)     # scikit-learn's objective: mean loss + ||W||^2 / (2 C n)
    calls = [0]

    def obj(w):
        calls[0] += 1
        W = w[:d * K].reshape(d, K)
        Z = X @ W + w[d * K:]
        v, g = vg(Z, y)
        gw = X.T @ g + lam * W
        return v + 0.5 * lam * float(np.sum(W * W)), np.concatenate([gw.ravel(), g.sum(0)])

    def fit():
        calls[0] = 0
        return so.minimize(obj, np.zeros(d * K + K), jac=True, method="L-BFGS-B",
                           options={"maxiter": 1000, "gtol": 1e-10, "ftol": 1e-14})

    def skfit():
        return LogisticRegression(C=C, max_iter=1000, tol=1e-10).fit(X, y)

    fit(), skfit()
    tf, ts = [], []
    for _ in range(rounds):
        t = time.perf_counter()
        r = fit()
        tf.append(time.perf_counter() - t)
        t = time.perf_counter()
        m = skfit()
        ts.append(time.perf_counter() - t)
    W = r.x[:d * K].reshape(d, K)
    W = W - W.mean(1, keepdims=True)   # the softmax is invariant to a per-feature shift
    ref = m.coef_.T - m.coef_.T.mean(1, keepdims=True)
    f, s = _median(tf), _median(ts)
    print(f"\nworkflow: multinomial L-BFGS-B 1000x20 K=5, layer {_layer()}: fastloss "
          f"{f * 1e3:.1f} ms ({calls[0]} loss calls), scikit-learn {s * 1e3:.1f} ms, "
          f"ratio {f / s:.2f}, max |coef diff| {np.abs(W - ref).max():.1e}")


# ----------------------------------------------------------------------------- safety
def _child(conn, x, y):
    import fastloss as fl
    conn.send(fl.huber(x, y, reduction="sum"))
    conn.close()


def safety():
    import multiprocessing as mp
    import threading

    import numpy as np

    import fastloss as fl

    rng = np.random.default_rng(1)
    x = rng.standard_normal(300_000)
    y = rng.standard_normal(300_000)
    ref = fl.huber(x, y, reduction="sum")     # parallel kernel in the parent
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe(False)
    p = ctx.Process(target=_child, args=(b, x, y))
    p.start()
    got = a.recv() if a.poll(60) else None
    p.join(60)
    fork_ok = p.exitcode == 0 and got == ref
    res = [None] * 8

    def work(i):
        res[i] = [fl.huber(x, y, reduction="sum") for _ in range(5)]

    ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    threads_ok = all(v == ref for r in res for v in r)
    print(f"\nsafety, layer {_layer()}: fork child {'ok' if fork_ok else 'FAILED'} "
          f"(exit {p.exitcode}); 8 Python threads bitwise {'ok' if threads_ok else 'FAILED'}")


def main(argv):
    what = argv[1] if len(argv) > 1 else "all"
    if what == "all":
        for name, env in CANDIDATES.items():
            print(f"\n=== candidate {name}: {env or '(nothing set)'}", flush=True)
            e = {k: v for k, v in os.environ.items()
                 if k not in ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY")}
            e.update(env)
            for part in ("safety", "contention", "workflow"):
                subprocess.run([sys.executable, __file__, part], env=e, check=False)
        subprocess.run([sys.executable, __file__, "thresholds"], check=False)
        return
    {"thresholds": thresholds, "contention": contention, "workflow": workflow,
     "safety": safety}[what]()


if __name__ == "__main__":
    main(sys.argv)
