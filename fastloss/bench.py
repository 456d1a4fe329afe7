"""``python -m fastloss bench``: value+gradient of every registered loss, beside its peers.

For every benchmark case: the median time of fastloss's fused value+gradient, the bytes
moved per second, that as a share of the streaming bandwidth of a triad kernel
(c = a + s·b, float32) timed in turn with the case, and the time of the same work by a
NumPy float64 reference, PyTorch CPU (forward + backward) and scikit-learn's
``sklearn._loss`` (``loss_gradient``, same thread count) when installed, as ratios to
fastloss (> 1: fastloss is faster).  The first call (compile or cache load) is timed separately.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def _triad(n):
    """A zero-argument triad c = a + s·b over n float32 (12 bytes per element), Numba prange."""
    from numba import njit, prange

    @njit(parallel=True, fastmath=True)
    def triad(a, b, c, s):
        for i in prange(a.shape[0]):
            c[i] = a[i] + s * b[i]

    a = np.ones(n, np.float32)
    b = np.ones(n, np.float32)
    c = np.empty(n, np.float32)
    run = lambda: triad(a, b, c, np.float32(2))  # noqa: E731
    run()
    return run


def _round_robin(fs, repeat):
    """Median seconds of each zero-argument callable, timed in turn ``repeat`` times, so
    that a drift of the machine (this shared machine's bandwidth drifts by 2x over
    minutes) reaches every callable alike instead of the one that ran in the bad minute."""
    ts = {k: [] for k in fs}
    for _ in range(repeat):
        for k, f in fs.items():
            t = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


def target_name():
    import numba
    return f"CPU, {numba.get_num_threads()} threads (numba {numba.__version__})"


def run(quick=False, families=None, repeat=None, only=None, file=sys.stdout):
    """Print the table; return its rows as dicts.

    Each case's fastloss call, a triad pass over ``n_triad`` float32 and every available
    peer are timed in turn (:func:`_round_robin`): "% triad" compares the case with the
    triad measured in the same minutes, and the peer ratios compare like with like.
    """
    import fastloss
    from ._bench import FAMILIES, all_cases

    repeat = repeat or (3 if quick else 7)
    try:
        import torch
        torch.set_num_threads(__import__("numba").get_num_threads())
    except ImportError:
        pass
    n_triad = 2_000_000 if quick else 20_000_000
    triad = _triad(n_triad)
    print(f"fastloss {fastloss.__version__} bench — target: {target_name()}", file=file)
    print(f"float32; value+gradient; median of {repeat}, each case timed in turn with a triad "
          f"(c = a + s·b, {n_triad:.0e} float32) and its peers; ratios = peer time / fastloss "
          "time", file=file)
    head = (f"{'loss':<44}{'shape':>22}{'first s':>9}{'ms':>9}{'GB/s':>7}{'triad':>7}"
            f"{'%triad':>7}{'numpy×':>8}{'torch×':>8}{'sklearn×':>9}")
    print(head, file=file)
    print("-" * len(head), file=file)
    rows = []
    for case in all_cases(quick, families or FAMILIES):
        if only and case.loss not in only:
            continue
        info = fastloss.LOSSES[case.loss]
        vg = fastloss.value_and_grad(info.func, case.argnums)
        args, kw = case.make(np.float32)
        t0 = time.perf_counter()
        vg(*args, **kw)
        first = time.perf_counter() - t0
        fs = {"fastloss": lambda: vg(*args, **kw), "triad": triad}
        for peer in ("numpy", "torch", "sklearn"):
            try:
                f = case.peers[peer](args, kw)
                f()
                fs[peer] = f
            except Exception:  # peer missing or without this loss
                pass
        ts = _round_robin(fs, repeat)
        t = ts["fastloss"]
        gbs = case.nbytes(args) / t / 1e9
        bw = 12 * n_triad / ts["triad"] / 1e9
        ratios = {p: ts[p] / t if p in ts else None for p in ("numpy", "torch", "sklearn")}
        fmt = lambda r: f"{r:.1f}" if r is not None else "—"  # noqa: E731
        print(f"{case.loss:<44}{case.label:>22}{first:>9.2f}{t * 1e3:>9.2f}{gbs:>7.1f}"
              f"{bw:>7.1f}{100 * gbs / bw:>7.0f}{fmt(ratios['numpy']):>8}"
              f"{fmt(ratios['torch']):>8}{fmt(ratios['sklearn']):>9}", file=file, flush=True)
        rows.append(dict(loss=case.loss, label=case.label, first_s=first, ms=t * 1e3, gbs=gbs,
                         triad_gbs=bw, pct_triad=100 * gbs / bw,
                         **{f"{k}_ratio": v for k, v in ratios.items()}))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="fastloss", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd")
    b = sub.add_parser("bench", help="benchmark every registered loss against its peers")
    b.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    b.add_argument("--family", action="append", choices=["elementwise", "rowwise", "ctc"])
    b.add_argument("--loss", action="append", help="only this loss (repeatable)")
    b.add_argument("--repeat", type=int)
    args = p.parse_args(argv)
    if args.cmd != "bench":
        p.print_help()
        return 0
    run(quick=args.quick, families=args.family, repeat=args.repeat, only=args.loss)
    return 0
