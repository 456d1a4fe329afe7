"""Per-call cost of small float64 value+gradient calls against scikit-learn and NumPy.

    python benchmarks/small_calls.py [--rounds 15] [--number 0] [--threads N]

In one process, round robin (every callable of a case timed in turn, ``--rounds`` rounds,
each round the mean of ``--number`` calls -- 0: about 20 ms of calls -- then medians):

Elementwise, sigmoid binary cross-entropy, float64, n = 10 and 1 000:

* ``fl``: ``fastloss.value_and_grad(sigmoid_binary_cross_entropy)(x, y)`` (the checked call,
  gradient allocated);
* ``fl_out``: the same with ``grad_out=``;
* ``prep``: ``fastloss.prepare(...)`` once, then ``f(x, grad_out=g)`` per call;
* ``sk``: ``sklearn._loss.HalfBinomialLoss().loss_gradient(y, x, loss_out=, gradient_out=)``
  followed by the mean (what an estimator's objective computes);
* ``np``: NumPy: ``logaddexp(0, x) - y x`` and ``(expit(x) - y) / n``.

Row-wise, softmax cross-entropy with integer labels, K = 5 classes, 20 / 200 / 2 000 rows:
``fl``, ``fl_out``, ``prep`` as above; ``sk``: ``HalfMultinomialLoss(n_classes=5)
.loss_gradient(y, raw, gradient_out=)`` plus the mean (labels as float, as scikit-learn
takes them); ``np``: a NumPy log-softmax formulation.

Printed per case: the median µs per call of every callable, and ``X/sk`` ratios (target:
``fl`` and ``prep`` at n = 10 no more than ``sk``; row-wise within 2x of ``sk``).  Kernels
are warmed before timing.  On a busy machine, compare only ratios from one run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _timer(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def _calibrate(fn, target=0.02):
    n = 1
    while True:
        t = _timer(fn, n)
        if t * n >= target or n >= 1 << 20:
            return max(1, int(n * target / max(t * n, 1e-9)))
        n *= 4


def _elementwise_case(n, rng):
    import fastloss as fl
    from scipy.special import expit

    x = rng.standard_normal(n)
    y = (rng.random(n) < 0.5).astype(np.float64)
    vg = fl.value_and_grad(fl.sigmoid_binary_cross_entropy)
    g = np.empty(n)
    f = fl.prepare(fl.sigmoid_binary_cross_entropy, x, y)
    calls = {"fl": lambda: vg(x, y), "fl_out": lambda: vg(x, y, grad_out=g),
             "prep": lambda: f(x, grad_out=g)}
    try:
        from sklearn._loss.loss import HalfBinomialLoss

        hb = HalfBinomialLoss()
        lo, go = np.empty(n), np.empty(n)

        def sk():
            hb.loss_gradient(y, x, loss_out=lo, gradient_out=go)
            return lo.mean()
        calls["sk"] = sk
    except ImportError:
        pass

    def np_():
        v = np.mean(np.logaddexp(0.0, x) - y * x)
        return v, (expit(x) - y) / n
    calls["np"] = np_
    return f"sigmoid BCE f64 n={n}", calls


def _rowwise_case(rows, K, rng):
    import fastloss as fl

    L = rng.standard_normal((rows, K))
    lab = rng.integers(0, K, rows)
    loss = fl.softmax_cross_entropy_with_integer_labels
    vg = fl.value_and_grad(loss)
    g = np.empty_like(L)
    f = fl.prepare(loss, L, lab)
    calls = {"fl": lambda: vg(L, lab), "fl_out": lambda: vg(L, lab, grad_out=g),
             "prep": lambda: f(L, grad_out=g)}
    try:
        from sklearn._loss.loss import HalfMultinomialLoss

        hm = HalfMultinomialLoss(n_classes=K)
        yf = lab.astype(np.float64)
        lo, go = np.empty(rows), np.empty_like(L)

        def sk():
            hm.loss_gradient(yf, L, loss_out=lo, gradient_out=go)
            return lo.mean()
        calls["sk"] = sk
    except ImportError:
        pass
    idx = np.arange(rows)

    def np_():
        m = L.max(1, keepdims=True)
        e = np.exp(L - m)
        s = e.sum(1, keepdims=True)
        lse = np.log(s) + m
        v = np.mean(lse[:, 0] - L[idx, lab])
        gr = e / s
        gr[idx, lab] -= 1
        return v, gr / rows
    calls["np"] = np_
    return f"int softmax CE f64 {rows}x{K}", calls


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--number", type=int, default=0, help="calls per round (0: ~20 ms)")
    ap.add_argument("--threads", type=int, default=None, help="fastloss.set_num_threads")
    a = ap.parse_args(argv)
    import fastloss as fl

    if a.threads:
        fl.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    cases = [_elementwise_case(10, rng), _elementwise_case(1000, rng)]
    cases += [_rowwise_case(r, 5, rng) for r in (20, 200, 2000)]
    print(f"{'case':28s} " + " ".join(f"{k:>9s}" for k in ("fl", "fl_out", "prep", "sk", "np"))
          + "   fl/sk prep/sk  (median µs per call)")
    for title, calls in cases:
        for fn in calls.values():   # warm: compile / load kernels, fill caches
            fn()
            fn()
        number = {k: a.number or _calibrate(fn) for k, fn in calls.items()}
        times = {k: [] for k in calls}
        for _ in range(a.rounds):
            for k, fn in calls.items():
                times[k].append(_timer(fn, number[k]))
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        cols = " ".join(f"{med[k]:9.2f}" if k in med else f"{'-':>9s}"
                        for k in ("fl", "fl_out", "prep", "sk", "np"))
        ratio = ""
        if "sk" in med:
            ratio = f"   {med['fl'] / med['sk']:5.2f} {med['prep'] / med['sk']:6.2f}"
        print(f"{title:28s} {cols}{ratio}", flush=True)


if __name__ == "__main__":
    main()
