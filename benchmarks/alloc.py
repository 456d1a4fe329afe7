"""The allocating call against the ``grad_out`` call: what first-touch page faults cost.

    python benchmarks/alloc.py [--n 2e7] [--repeat 15]

Value+gradient of huber (float32 and float64) and of the integer-label softmax
cross-entropy (float32, rows of 1000), each timed three ways, round robin in one process,
medians, with the minor page faults of the call (``getrusage``):

* ``grad_out``: into a preallocated buffer (no allocation);
* ``pool``: the plain call, output from :mod:`fastloss._alloc`'s reuse pool (default);
* ``fresh``: the plain call bypassing the pool (``_alloc.MIN_BYTES`` raised for that
  call only): fresh memory, what ``np.empty`` gives -- page faults and the operating
  system's zeroing of every page.

Also printed: the same ``fresh`` call with NumPy's transparent-huge-page ``madvise``
switched off, to show what huge pages already save.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _timed(fs, repeat, setup=None):
    ts = {k: [] for k in fs}
    fl = {k: [] for k in fs}
    for _ in range(repeat):
        for k, (prep, f) in fs.items():
            prep()
            f0 = _faults()
            t = time.perf_counter()
            r = f()
            ts[k].append(time.perf_counter() - t)
            fl[k].append(_faults() - f0)
            del r
    return {k: (statistics.median(ts[k]), statistics.median(fl[k])) for k in fs}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", default="2e7")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args(argv)
    import numba

    import fastloss
    from fastloss import _alloc
    from fastloss.bench import machine_header

    n = int(float(args.n))
    rng = np.random.default_rng(0)
    min_bytes = _alloc.MIN_BYTES

    def pool_on():
        _alloc.MIN_BYTES = min_bytes

    def pool_off():   # bypass the pool without dropping its blocks
        _alloc.MIN_BYTES = 1 << 62
    print(machine_header())
    print(f"numba threads {numba.get_num_threads()}; median of {args.repeat}, round robin; "
          "ms (minor page faults per call)")
    cases = []
    for dt in (np.float32, np.float64):
        x = rng.standard_normal(n).astype(dt)
        y = rng.standard_normal(n).astype(dt)
        cases.append((f"huber {np.dtype(dt).name} n={n:.0e}",
                      fastloss.value_and_grad(fastloss.huber), (x, y)))
    C = 1000
    logits = rng.standard_normal((n // C, C)).astype(np.float32)
    labels = rng.integers(0, C, n // C)
    cases.append((f"softmax CE int labels float32 {n // C}x{C}",
                  fastloss.value_and_grad(fastloss.softmax_cross_entropy_with_integer_labels),
                  (logits, labels)))
    head = f"{'case':<40}{'grad_out':>18}{'pool':>18}{'fresh':>18}{'fresh, no THP':>18}"
    print(head)
    print("-" * len(head))
    thp = np._core.multiarray._get_madvise_hugepage()
    for name, vg, a in cases:
        g = np.empty_like(a[0])
        fs = {"grad_out": (pool_on, lambda: vg(*a, grad_out=g)),
              "pool": (pool_on, lambda: vg(*a)),
              "fresh": (pool_off, lambda: vg(*a))}
        for prep, f in fs.values():
            prep()
            f()
            f()
        r = _timed(fs, args.repeat)
        np._core.multiarray._set_madvise_hugepage(False)
        try:
            r.update(_timed({"nothp": (pool_off, lambda: vg(*a))}, max(3, args.repeat // 3)))
        finally:
            np._core.multiarray._set_madvise_hugepage(thp)
            pool_on()
        cell = lambda k: f"{r[k][0] * 1e3:9.2f} ({r[k][1]:5.0f})"  # noqa: E731
        print(f"{name:<40}{cell('grad_out'):>18}{cell('pool'):>18}{cell('fresh'):>18}"
              f"{cell('nothp'):>18}", flush=True)


if __name__ == "__main__":
    main()
