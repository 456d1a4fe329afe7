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


def machine_header() -> str:
    """One line: CPU model, the widest vector ISA in /proc/cpuinfo's flags, LLVM's CPU name."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "model name" and model == "unknown CPU":
                    model = val.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    isa = ("AVX-512 (512-bit)" if "avx512f" in flags else "AVX2 (256-bit)" if "avx2" in flags
           else "NEON/ASIMD (128-bit)" if "asimd" in flags else "SSE/other (128-bit)")
    try:   # what Numba compiles for (NUMBA_CPU_NAME overrides the host CPU)
        import llvmlite.binding as ll
        from numba import config
        llvm_cpu = getattr(config, "CPU_NAME", None) or ll.get_host_cpu_name()
    except Exception:  # pragma: no cover - numba/llvmlite missing or unusable
        llvm_cpu = "?"
    return f"machine: {model}; vector width {isa}; Numba/LLVM target CPU {llvm_cpu}"


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
    from ._bench import DEFAULT_FAMILIES, all_cases

    repeat = repeat or (3 if quick else 7)
    try:
        import torch
        torch.set_num_threads(__import__("numba").get_num_threads())
    except ImportError:
        pass
    n_triad = 2_000_000 if quick else 20_000_000
    triad = _triad(n_triad)
    print(f"fastloss {fastloss.__version__} bench — target: {target_name()}", file=file)
    print(machine_header(), file=file)
    print(f"float32; value+gradient; median of {repeat}, each case timed in turn with a triad "
          f"(c = a + s·b, {n_triad:.0e} float32) and its peers; ratios = peer time / fastloss "
          "time", file=file)
    if "workflows" in (families or DEFAULT_FAMILIES):
        print("workflows: a whole fit or training run per row, float64; '↳' lines: other peers "
              "(builtin objective, serial kernel) as peer/fastloss ratios, and accuracy",
              file=file)
    head = (f"{'loss':<44}{'shape':>22}{'first s':>9}{'ms':>9}{'GB/s':>7}{'triad':>7}"
            f"{'%triad':>7}{'numpy×':>8}{'torch×':>8}{'sklearn×':>9}")
    print(head, file=file)
    print("-" * len(head), file=file)
    rows = []
    for case in all_cases(quick, families or DEFAULT_FAMILIES):
        if only and case.loss not in only:
            continue
        try:
            args, kw = case.make(np.float32)
        except ImportError:  # a workflow whose library is not installed
            continue
        if case.run is None:
            vg = fastloss.value_and_grad(fastloss.LOSSES[case.loss].func, case.argnums)
            fast = lambda: vg(*args, **kw)  # noqa: E731
        else:  # a workflow (fastloss._bench.workflows): a fit, a training run
            fast = case.run(args, kw)
        t0 = time.perf_counter()
        fast()
        first = time.perf_counter() - t0
        fs = {"fastloss": fast, "triad": triad}
        names = ("numpy", "torch", "sklearn", *(p for p in case.peers
                                                 if p not in ("numpy", "torch", "sklearn")))
        for peer in names:
            try:
                f = case.peers[peer](args, kw)
                f()
                fs[peer] = f
            except Exception:  # peer missing or without this loss
                pass
        stop = case.load() if case.load else None  # e.g. busy-loop processes
        try:
            ts = _round_robin(fs, repeat)
        finally:
            if stop:
                stop()
        t = ts["fastloss"]
        nb = case.nbytes(args)
        gbs = nb / t / 1e9 if nb else None
        bw = 12 * n_triad / ts["triad"] / 1e9
        ratios = {p: ts[p] / t if p in ts else None for p in names}
        fmt = lambda r, f=".1f": format(r, f) if r is not None else "—"  # noqa: E731
        print(f"{case.loss:<44}{case.label:>22}{first:>9.2f}{t * 1e3:>9.2f}{fmt(gbs):>7}"
              f"{bw:>7.1f}{fmt(gbs and 100 * gbs / bw, '.0f'):>7}{fmt(ratios['numpy']):>8}"
              f"{fmt(ratios['torch']):>8}{fmt(ratios['sklearn']):>9}", file=file, flush=True)
        extra = [f"{p}× {fmt(ratios[p], '.2f')} ({ts[p] * 1e3:.2f} ms)" for p in names[3:]
                 if p in ts]
        note = case.note(args, kw) if case.note else ""
        if extra or note:
            print(f"    ↳ {'; '.join(extra + ([note] if note else []))}", file=file, flush=True)
        rows.append(dict(loss=case.loss, label=case.label, first_s=first, ms=t * 1e3, gbs=gbs,
                         triad_gbs=bw, pct_triad=gbs and 100 * gbs / bw, note=note,
                         **{f"{k}_ratio": v for k, v in ratios.items()}))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="fastloss", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd")
    b = sub.add_parser("bench", help="benchmark every registered loss against its peers")
    b.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    b.add_argument("--family", action="append",
                   choices=["elementwise", "rowwise", "ctc", "workflows"],
                   help="only this family (repeatable; default: elementwise, rowwise, ctc; "
                        "workflows = model fits, boosting, contention, per-call float64)")
    b.add_argument("--loss", action="append", help="only this loss (repeatable)")
    b.add_argument("--repeat", type=int)
    args = p.parse_args(argv)
    if args.cmd != "bench":
        p.print_help()
        return 0
    run(quick=args.quick, families=args.family, repeat=args.repeat, only=args.loss)
    return 0
