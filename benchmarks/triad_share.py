"""The transcendental float32 losses as a share of the triad, on this machine.

    python benchmarks/triad_share.py [--n 2e7] [--repeat 9]

In one process, round robin (each call timed in turn, ``--repeat`` rounds, medians): a
Numba parallel triad ``c = a + 2 b`` over ``--n`` float32 elements, and the value +
gradient (into a preallocated ``grad_out``) of sigmoid BCE, logistic, sigmoid focal and
log-cosh over the same number of elements, the sigmoid BCE value alone, and the integer
softmax cross-entropy over 32 768 rows of 1 000 classes. Printed: each median and the
triad's median as a percentage of it (100 % = at the triad's speed). The header names the
CPU, its vector width and Numba's threading layer.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=float, default=2e7)
    ap.add_argument("--repeat", type=int, default=9)
    a = ap.parse_args(argv)
    import numba
    from numba import njit, prange

    import fastloss as fl
    from fastloss.bench import machine_header

    n = int(a.n)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(np.float32)
    y = (rng.random(n) < 0.5).astype(np.float32)
    pm = np.where(y > 0, 1, -1).astype(np.float32)
    g, c = np.empty_like(x), np.empty_like(x)
    L = rng.standard_normal((32768, 1000)).astype(np.float32)
    lab = rng.integers(0, 1000, 32768)
    gL = np.empty_like(L)

    @njit(parallel=True)
    def triad(a, b, c):
        for i in prange(a.shape[0]):
            c[i] = a[i] + np.float32(2.0) * b[i]

    V = {k: fl.value_and_grad(getattr(fl, k)) for k in (
        "sigmoid_binary_cross_entropy", "logistic", "sigmoid_focal", "log_cosh",
        "softmax_cross_entropy_with_integer_labels")}
    cases = {
        "triad": lambda: triad(x, y, c),
        "sigmoid BCE v+g": lambda: V["sigmoid_binary_cross_entropy"](x, y, grad_out=g),
        "sigmoid BCE value": lambda: fl.sigmoid_binary_cross_entropy(x, y),
        "logistic v+g": lambda: V["logistic"](x, pm, grad_out=g),
        "sigmoid focal v+g": lambda: V["sigmoid_focal"](x, y, grad_out=g),
        "log-cosh v+g": lambda: V["log_cosh"](x, y, grad_out=g),
        "int softmax CE 32768x1000 v+g":
            lambda: V["softmax_cross_entropy_with_integer_labels"](L, lab, grad_out=gL),
    }
    for f in cases.values():
        f()
    ts = {k: [] for k in cases}
    for _ in range(a.repeat):
        for k, f in cases.items():
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    print(machine_header())
    print(f"threading layer {numba.threading_layer()}; n = {n}; median of {a.repeat}")
    tr = float(np.median(ts["triad"]))
    for k, v in ts.items():
        m = float(np.median(v))
        print(f"  {k:32s} {m * 1e3:8.2f} ms  {100 * tr / m:4.0f} % of the triad")


if __name__ == "__main__":
    main()
