"""``python -m fastloss bench``: value+gradient of every registered loss, beside its peers.

For every benchmark case: the median time of fastloss's fused value+gradient, the bytes
moved per second, that as a share of the streaming bandwidth of a triad kernel
(c = a + s·b, float32) timed in turn with the case, and the time of the same work by a
NumPy float64 reference, PyTorch CPU (forward + backward) and scikit-learn's
``sklearn._loss`` (``loss_gradient``, same thread count) when installed, as ratios to
fastloss (> 1: fastloss is faster).  The first call (compile or cache load) is timed
separately.  The columns are explained under the table (:data:`LEGEND`).

Method.  Each case's callables (fastloss, the triad, every installed peer) are warmed up
(two calls), then timed in turn, round robin, ``repeat`` rounds (:func:`_round_robin`), so
that a drift of the machine reaches all of them alike; each sample repeats its call until
it lasts at least ``min_sample_s`` (20 ms with ``--quick``, 50 ms otherwise), so that timer
resolution and thread wake-up do not dominate small calls; the figure is the median.
With ``--quick`` every case is prepared first and the rounds run over all of them (round
1 of every case, then round 2, ...), so that each median spans the whole run rather than
the second or two one case would take alone: a shared machine's speed drifts over tens of
seconds, and a figure taken in one such window differs from the next run's.  The full
sizes are timed one case at a time (their buffers together would not fit in memory).

Rows (``run()``'s return value, the ``"rows"`` of ``--json FILE``), one dict per case:

* ``family`` (``"elementwise"``, ``"rowwise"``, ``"ctc"``, ``"metric"``, ``"workflows"``,
  ``"sizes"``),
  ``loss`` (registry name, or the workflow's name), ``label`` (the shape, as printed),
  ``n`` (elements of the prediction; ``None`` for workflows);
* ``first_s``: seconds of the first call in the process (compile or cache load + one run);
* ``ms``: median milliseconds of one fastloss call; ``spread_pct``: 100 · (slowest −
  fastest sample) / median, over the fastloss samples;
* ``gbs``: bytes moved per call (inputs read, gradients written) / time, in GB/s (``None``
  where not meaningful); ``triad_gbs``: the triad's GB/s in the same rounds;
  ``pct_triad``: ``100 · gbs / triad_gbs``; ``pct_triad_artefact``: True when above 100
  (a measurement artefact: data partly cache-resident, or the triad slowed by other load);
* ``<peer>_ratio`` for every peer the case has (``numpy``, ``torch``, ``sklearn``, and in
  workflow / sizes cases ``builtin``, ``serial``, ...): peer time / fastloss time,
  ``None`` when the peer is missing or has no counterpart; ``peer_ms``: {peer: median ms};
  ``samples_ms``: {callable: per-call milliseconds of every round} (``fastloss``, ``triad``
  and each peer);
* ``note``: the line printed under a workflow row (accuracy, counts), else ``""``.

``--family compile`` rows (:mod:`fastloss._bench.compile`): ``family="compile"``, ``case``,
``loss``, ``dtype``, ``size``, ``compile_s`` (cold first call − second call, in a fresh
process with an empty cache), ``cold_first_s``, ``warm_first_s`` (first call with the cache
filled), ``import_s``, ``samples``.

``--json FILE`` writes ``{"machine": machine_info(), "settings": {...}, "rows": [...]}``.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

FAMILIES = ("elementwise", "rowwise", "ctc", "metric", "workflows", "sizes", "compile")
PEERS = {  # column -> (import name, display name, how to install)
    "torch": ("torch", "PyTorch", "pip install torch (a CPU build: pip install torch "
                                  "--index-url https://download.pytorch.org/whl/cpu)"),
    "sklearn": ("sklearn", "scikit-learn", 'pip install "fastloss[bench]"'),
}
QUICK_N_TRIAD, FULL_N_TRIAD = 4_000_000, 20_000_000

LEGEND = """\
columns:
  first s   seconds of the first call in this process: compiling the kernel, or loading it
            from the on-disk cache, plus one run
  ms        median milliseconds of one fastloss value+gradient call (float32; gradients
            written into preallocated buffers)
  GB/s      bytes the call must move (inputs read once, gradients written once) / time
  triad     GB/s of the triad c = a + s*b (float32, Numba prange, same threads), timed in
            turn with the case: the memory bandwidth available in those same seconds
  %triad    100 * GB/s / triad: fastloss's share of the memory-bandwidth limit; a value
            above 100 is marked "!" and is a measurement artefact (data partly held in the
            CPU caches, or the triad slowed by other load), not a real share
  numpy×    time of a NumPy float64 reference of the same value+gradient (inputs converted
            to float64 beforehand) / fastloss time
  torch×    PyTorch CPU eager, forward + backward, float32, same thread count / fastloss time
  sklearn×  scikit-learn's sklearn._loss loss_gradient, same thread count / fastloss time
  ratios    peer time / fastloss time measured in the same rounds: > 1 means fastloss is
            faster; "—": the peer has no counterpart of this loss"""


# ------------------------------------------------------------------------- timing
def _round_robin(fs, repeat, number=None, samples=None):
    """Median seconds per call of each zero-argument callable, timed in turn ``repeat``
    times, so that a drift of the machine (a shared machine's bandwidth drifts by 2x over
    minutes) reaches every callable alike instead of the one that ran in the bad minute.
    ``number``: {name: calls per sample} (default 1); ``samples``: a dict that receives
    every callable's per-call sample times."""
    number = number or {}
    ts = {k: [] for k in fs}
    for _ in range(repeat):
        for k, f in fs.items():
            m = number.get(k, 1)
            t = time.perf_counter()
            for _ in range(m):
                f()
            ts[k].append((time.perf_counter() - t) / m)
    if samples is not None:
        samples.update(ts)
    return {k: statistics.median(v) for k, v in ts.items()}


def _calls_per_sample(f, min_sample_s, cap=10_000):
    """How many calls of ``f`` (already warm) make a sample of at least ``min_sample_s``."""
    t = time.perf_counter()
    f()
    dt = time.perf_counter() - t
    if dt >= min_sample_s:
        return 1
    m = 2   # time a few more calls: one call of a few µs is all noise
    t = time.perf_counter()
    for _ in range(m):
        f()
    dt = (time.perf_counter() - t) / m
    return int(min(cap, max(1, math.ceil(min_sample_s / max(dt, 1e-9)))))


def _triad(n):
    from ._bench.triad import triad
    return triad(n)


# ------------------------------------------------------------------------- machine
def _cpu_flags():
    model, flags = platform.processor() or "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            first = True
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "model name" and first:
                    model, first = val.strip(), False
                elif key in ("flags", "Features") and not flags:
                    flags = set(val.split())
    except OSError:
        pass
    return model, flags


def vector_width(flags) -> str:
    """The widest vector instruction set in the CPU flags."""
    if "avx512f" in flags:
        return "AVX-512 (512-bit)"
    if "avx2" in flags:
        return "AVX2 (256-bit)"
    if "asimd" in flags or platform.machine() in ("arm64", "aarch64"):
        return "NEON/ASIMD (128-bit)"
    return "SSE/other (128-bit)"


def _version(dist):
    try:
        from importlib import metadata
        return metadata.version(dist)
    except Exception:
        return None


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def package_location() -> str:
    """Where ``fastloss`` was imported from, and whether that is a source checkout."""
    import fastloss
    pkg = os.path.dirname(os.path.abspath(fastloss.__file__))
    root = os.path.dirname(pkg)
    checkout = os.path.exists(os.path.join(root, "pyproject.toml"))
    return pkg + (" (a source checkout)" if checkout else "")


def kernel_cache_dir() -> str:
    """Where Numba writes fastloss's kernel cache (``NUMBA_CACHE_DIR``, else next to the
    package sources, else the user cache directory when those are read-only)."""
    d = os.environ.get("NUMBA_CACHE_DIR")
    if d:
        return d + " (NUMBA_CACHE_DIR)"
    import fastloss
    pkg = os.path.dirname(os.path.abspath(fastloss.__file__))
    if os.access(pkg, os.W_OK):
        return os.path.join(pkg, "_cpu", "__pycache__") + " (and the other __pycache__ " \
                                                          "folders of the package)"
    return "the user cache directory (the package folder is read-only)"


def machine_info(triad_gbs=None, n_triad=None) -> dict:
    """The machine and software: a dict (the ``"machine"`` of ``--json``)."""
    import fastloss
    model, flags = _cpu_flags()
    info = {"cpu": model, "vector_width": vector_width(flags), "cores": _cores(),
            "machine": platform.machine(), "system": platform.system()}
    try:   # what Numba compiles for (NUMBA_CPU_NAME overrides the host CPU)
        import llvmlite.binding as ll
        import numba
        from numba import config
        info["llvm_cpu"] = getattr(config, "CPU_NAME", None) or ll.get_host_cpu_name()
        info["threads"] = numba.get_num_threads()
    except Exception:  # pragma: no cover - numba/llvmlite missing or unusable
        info["llvm_cpu"], info["threads"] = "?", None
    from ._threads import threading_layer
    info["threading_layer"] = threading_layer()
    try:
        from ._cpu import wide
        info["kernel_vectors"] = ("512-bit elementwise (FASTLOSS_VECTOR_WIDTH=256: "
                                  "LLVM's choice)" if wide.enabled()
                                  else "LLVM's choice for the target")
    except Exception:  # pragma: no cover - numba/llvmlite missing or unusable
        info["kernel_vectors"] = "?"
    info["triad_gbs"] = triad_gbs
    info["triad_n"] = n_triad
    info["versions"] = {"fastloss": fastloss.__version__,
                        "python": platform.python_version(),
                        **{d: _version(d) for d in ("numpy", "numba", "llvmlite", "scipy",
                                                    "torch", "scikit-learn")}}
    info["package"] = package_location()
    info["kernel_cache"] = kernel_cache_dir()
    info["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


def machine_header(info=None) -> str:
    """The machine, as printed above the table (one line without ``info``: the CPU)."""
    if info is None:
        model, flags = _cpu_flags()
        try:
            import llvmlite.binding as ll
            from numba import config
            llvm_cpu = getattr(config, "CPU_NAME", None) or ll.get_host_cpu_name()
        except Exception:  # pragma: no cover
            llvm_cpu = "?"
        return (f"machine: {model}; vector width {vector_width(flags)}; Numba/LLVM target "
                f"CPU {llvm_cpu}")
    v = info["versions"]
    vers = ", ".join(f"{k} {x}" for k, x in v.items() if x and k != "fastloss")
    bw = (f"{info['triad_gbs']:.1f} GB/s (triad c = a + s*b over {info['triad_n']:.0e} "
          f"float32, median)" if info.get("triad_gbs") else "not measured")
    return "\n".join([
        f"machine:   {info['cpu']}; vector width {info['vector_width']}; Numba/LLVM target "
        f"{info['llvm_cpu']}; kernel vectors {info.get('kernel_vectors', '?')}",
        f"threads:   {info['threads']} used of {info['cores']} cores; threading layer "
        f"{info['threading_layer']}",
        f"memory:    {bw}",
        f"software:  fastloss {v['fastloss']} from {info['package']}; {vers}",
        f"kernels:   cached in {info['kernel_cache']}",
        f"date:      {info['date']}",
    ])


def target_name():
    import numba
    return f"CPU, {numba.get_num_threads()} threads (numba {numba.__version__})"


def peers_available() -> dict:
    """{column: installed?} for the optional peers (found without importing them)."""
    return {k: importlib.util.find_spec(mod) is not None for k, (mod, _, _) in PEERS.items()}


# ------------------------------------------------------------------------- the table
def _fmt(r, f=".1f"):
    return format(r, f) if r is not None else "—"


def _ms(t):
    """Milliseconds with three significant figures at most, never in exponent form."""
    return f"{t:.0f}" if t >= 100 else f"{t:.1f}" if t >= 10 else f"{t:.2f}" if t >= 1 \
        else f"{t:.3f}"


def _pct(p):
    if p is None:
        return "—"
    return f"{p:.0f}!" if p > 100 else f"{p:.0f}"


def select_cases(quick, families, only):
    """The cases of ``families`` (loss names in ``only``, when given)."""
    from ._bench import all_cases
    cases = [c for c in all_cases(quick, families) if not only or c.loss in only]
    return cases


def run(quick=False, families=None, repeat=None, only=None, file=None,
        min_sample_s=None):
    """Print the table (header, rows, legend); return the rows as dicts (module docstring).

    Each case's fastloss call, a triad pass over ``n_triad`` float32 and every available
    peer are timed in turn (:func:`_round_robin`): "% triad" compares the case with the
    triad measured in the same minutes, and the peer ratios compare like with like.
    """
    rows, _ = run_with_info(quick, families, repeat, only, file, min_sample_s)
    return rows


def run_with_info(quick=False, families=None, repeat=None, only=None, file=None,
                  min_sample_s=None):
    """:func:`run`, returning ``(rows, machine_info)``."""
    file = sys.stdout if file is None else file
    import fastloss
    from ._bench import DEFAULT_FAMILIES

    families = list(families or DEFAULT_FAMILIES)
    repeat = repeat or 7
    if min_sample_s is None:
        min_sample_s = 0.02 if quick else 0.05
    have = peers_available()
    from . import _cpu  # noqa: F401  (fastloss's threading layer, before Numba's pool starts)
    if have["torch"]:
        import numba
        import torch
        torch.set_num_threads(numba.get_num_threads())
    table_fams = [f for f in families if f != "compile"]
    n_triad = QUICK_N_TRIAD if quick else FULL_N_TRIAD
    triad = _triad(n_triad) if table_fams else None
    bw0 = None
    if triad is not None:
        m = _calls_per_sample(triad, min_sample_s)
        t = _round_robin({"triad": triad}, max(repeat, 9), {"triad": m})["triad"]
        bw0 = 12 * n_triad / t / 1e9
    info = machine_info(bw0, n_triad if triad else None)
    print(f"fastloss {fastloss.__version__} bench — {'quick' if quick else 'full'} sizes",
          file=file)
    print(machine_header(info), file=file)
    for k, ok in have.items():
        if not ok:
            _, name, how = PEERS[k]
            print(f"{name} not installed: {how} (its column is left out)", file=file)
    rows = []
    if table_fams:
        cols = ["numpy"] + [k for k in PEERS if have[k]]
        print(f"float32 value+gradient; median of {repeat} rounds, each case timed in turn with "
              f"the triad and its peers; samples of >= {min_sample_s * 1e3:.0f} ms", file=file)
        if "workflows" in table_fams:
            print("workflows: a whole fit or training run per row, float64; '↳' lines: other "
                  "peers (builtin objective, serial kernel) as peer/fastloss ratios, and "
                  "accuracy", file=file)
        if "sizes" in table_fams:
            print("sizes: huber value+gradient against n; '↳' serial×: the serial kernel "
                  "(n_threads=1) / fastloss's choice", file=file)
        head = (f"{'loss':<44}{'shape':>24}{'first s':>9}{'ms':>9}{'GB/s':>7}{'triad':>7}"
                f"{'%triad':>7}" + "".join(f"{c + '×':>{9 if c == 'sklearn' else 8}}"
                                           for c in cols))
        print(head, file=file)
        print("-" * len(head), file=file)
        skip = {k for k, ok in have.items() if not ok}
        cases = select_cases(quick, table_fams, only)
        if quick:   # small cases, held together: each median spans the whole run
            rows.extend(_interleaved(cases, triad, n_triad, repeat, min_sample_s, cols,
                                     file, skip))
        else:       # full sizes: one case's buffers at a time
            for case in cases:
                row = _time_case(case, triad, n_triad, repeat, min_sample_s, cols, file,
                                 skip)
                if row is not None:
                    rows.append(row)
        print("-" * len(head), file=file)
        print(LEGEND, file=file)
        if any(r.get("pct_triad_artefact") for r in rows):
            print("note: some %triad values are above 100 (marked !): a measurement artefact; "
                  "run without --quick, or on an idle machine", file=file)
    if "compile" in families:
        rows.extend(_compile_family(only, file))
    return rows, info


def _time_case(case, triad, n_triad, repeat, min_sample_s, cols, file, skip=()):
    """Prepare, time (its own rounds) and print one case; its row, or None."""
    st = _prepare_case(case, triad, min_sample_s, skip)
    if st is None:
        return None
    stop = case.load() if case.load else None  # e.g. busy-loop processes
    samples = {}
    try:
        _round_robin(st["fs"], repeat, st["number"], samples)
    finally:
        if stop:
            stop()
    return _finish_case(st, samples, n_triad, cols, file)


def _interleaved(cases, triad, n_triad, repeat, min_sample_s, cols, file, skip=()):
    """Time ``cases`` together: every round times every case's callables in turn, so each
    case's median spans the whole run instead of the few seconds a case would take alone
    (a shared machine's speed drifts over tens of seconds).  Cases with a ``load`` (busy
    processes) or a whole workflow are timed on their own, after the others."""
    alone = [c for c in cases if c.load or c.run is not None]
    states = [st for c in cases if c not in alone
              for st in [_prepare_case(c, triad, min_sample_s, skip)] if st is not None]
    samples = [{} for _ in states]
    for _ in range(repeat):
        for st, sm in zip(states, samples):
            one = {}
            _round_robin(st["fs"], 1, st["number"], one)
            for k, v in one.items():
                sm.setdefault(k, []).extend(v)
    rows = [_finish_case(st, sm, n_triad, cols, file) for st, sm in zip(states, samples)]
    for c in alone:
        r = _time_case(c, triad, n_triad, repeat, min_sample_s, cols, file, skip)
        if r is not None:
            rows.append(r)
    return rows


def _prepare_case(case, triad, min_sample_s, skip=()):
    """A case's warm callables (fastloss, the triad, its installed peers), calls per
    sample and first-call time; None when a workflow's library is missing."""
    import fastloss

    try:
        args, kw = case.make(np.float32)
    except ImportError:  # a workflow whose library is not installed
        return None
    if case.run is None:
        vg = fastloss.value_and_grad(fastloss.LOSSES[case.loss].func, case.argnums)
        fast = lambda: vg(*args, **kw)  # noqa: E731
    else:  # a workflow (fastloss._bench.workflows): a fit, a training run
        fast = case.run(args, kw)
    t0 = time.perf_counter()
    fast()
    first = time.perf_counter() - t0
    fast()  # warm-up: page faults of first-touched buffers, thread start
    fs = {"fastloss": fast, "triad": triad}
    names = ("numpy", "torch", "sklearn", *(p for p in case.peers
                                             if p not in ("numpy", "torch", "sklearn")))
    for peer in names:
        if peer not in case.peers or peer in skip:
            continue
        try:
            f = case.peers[peer](args, kw)
            f()
            f()
            fs[peer] = f
        except Exception:  # peer missing or without this loss
            pass
    number = {k: _calls_per_sample(f, min_sample_s) for k, f in fs.items()}
    return dict(case=case, args=args, kw=kw, fs=fs, number=number, first=first, names=names)


def _finish_case(st, samples, n_triad, cols, file):
    """Medians of the samples, printed as a table line; the row (module docstring)."""
    case, args, kw, names, first = st["case"], st["args"], st["kw"], st["names"], st["first"]
    ts = {k: statistics.median(v) for k, v in samples.items()}
    t = ts["fastloss"]
    sm = samples["fastloss"]
    spread = 100 * (max(sm) - min(sm)) / t if t > 0 else None
    nb = case.nbytes(args)
    gbs = nb / t / 1e9 if nb else None
    bw = 12 * n_triad / ts["triad"] / 1e9
    pct = 100 * gbs / bw if gbs else None
    ratios = {p: ts[p] / t if p in ts else None for p in names if p in case.peers
              or p in ("numpy", "torch", "sklearn")}
    print(f"{case.loss:<44}{case.label:>24}{first:>9.2f}{_ms(t * 1e3):>9}{_fmt(gbs):>7}"
          f"{bw:>7.1f}{_pct(pct):>7}"
          + "".join(f"{_fmt(ratios.get(c)):>{9 if c == 'sklearn' else 8}}" for c in cols),
          file=file, flush=True)
    extra = [f"{p}× {_fmt(ratios[p], '.2f')} ({_ms(ts[p] * 1e3)} ms)" for p in names[3:]
             if p in ts]
    note = case.note(args, kw) if case.note else ""
    if extra or note:
        print(f"    ↳ {'; '.join(extra + ([note] if note else []))}", file=file, flush=True)
    n = getattr(case, "n", None)
    if n is None and case.run is None:
        n = int(np.asarray(args[0]).size)
    return dict(family=getattr(case, "family", ""), loss=case.loss, label=case.label, n=n,
                first_s=first, ms=t * 1e3, spread_pct=spread, gbs=gbs, triad_gbs=bw,
                pct_triad=pct, pct_triad_artefact=bool(pct is not None and pct > 100),
                note=note, peer_ms={p: ts[p] * 1e3 for p in ts if p not in ("fastloss",
                                                                            "triad")},
                samples_ms={p: [x * 1e3 for x in v] for p, v in samples.items()},
                **{f"{k}_ratio": v for k, v in ratios.items()})


def _compile_family(only, file):
    from ._bench.compile import CASES, measure

    names = [n for n, (loss, _, _) in CASES.items() if not only or loss in only]
    print("\ncompile time: each case in a fresh process with an empty kernel cache "
          "(NUMBA_CACHE_DIR), first call − second call; 'cached s': the first call of a "
          "second process on the filled cache", file=file)
    head = f"{'case':<13}{'loss':<44}{'dtype':<9}{'size':<12}{'compile s':>10}{'cached s':>10}"
    print(head, file=file)
    print("-" * len(head), file=file)
    rows = []
    for r in measure(names, 1):
        print(f"{r['case']:<13}{r['loss']:<44}{r['dtype']:<9}{r['size']:<12}"
              f"{r['compile_s']:>10.2f}{r['warm_first_s']:>10.2f}", file=file, flush=True)
        rows.append(r)
    return rows


# ------------------------------------------------------------------------- figures
def plot(rows, info, path):
    """The performance page's figures from ``rows``: ratio bars per loss against each peer,
    % of the triad per loss, time against size (``sizes`` rows), compile time (``compile``
    rows), with the machine beside them.  Needs matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install matplotlib") from None
    table = [r for r in rows if r.get("family") in ("elementwise", "rowwise", "ctc",
                                                     "metric")]
    sizes = [r for r in rows if r.get("family") == "sizes"]
    comp = [r for r in rows if r.get("family") == "compile"]
    panels = [p for p, ok in (("ratios", table), ("triad", table), ("sizes", sizes),
                              ("compile", comp)) if ok]
    if not panels:
        raise ValueError("--plot: no rows to draw")
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels) + 1),
                             squeeze=False)
    labels = [f"{r['loss']} {r['label']}" for r in table]
    for ax, p in zip(axes[:, 0], panels):
        if p == "ratios":
            peers = [k for k in ("numpy", "torch", "sklearn")
                     if any(r.get(f"{k}_ratio") for r in table)]
            w = 0.8 / max(len(peers), 1)
            x = np.arange(len(table))
            for i, k in enumerate(peers):
                v = [r.get(f"{k}_ratio") or np.nan for r in table]
                ax.bar(x + (i - (len(peers) - 1) / 2) * w, v, w, label=f"{k} time / fastloss")
            ax.axhline(1, color="k", lw=0.8)
            ax.set_yscale("log")
            ax.set_xticks(x, labels, rotation=75, ha="right", fontsize=7)
            ax.set_ylabel("peer time / fastloss time")
            ax.set_title("value+gradient, float32: > 1 means fastloss is faster")
            ax.legend(fontsize=8)
        elif p == "triad":
            v = [r.get("pct_triad") or np.nan for r in table]
            x = np.arange(len(table))
            ax.bar(x, v, color=["tab:red" if r.get("pct_triad_artefact") else "tab:blue"
                                for r in table])
            ax.axhline(100, color="k", lw=0.8)
            ax.set_xticks(x, labels, rotation=75, ha="right", fontsize=7)
            ax.set_ylabel("% of triad bandwidth")
            ax.set_title("fastloss as a share of the memory-bandwidth limit (red: > 100, "
                         "an artefact)")
        elif p == "sizes":
            n = [r["n"] for r in sizes]
            ax.loglog(n, [r["ms"] for r in sizes], "o-", label="fastloss")
            for k in ("serial", "numpy", "torch"):
                v = [r["peer_ms"].get(k, np.nan) for r in sizes]
                if not all(np.isnan(v)):
                    ax.loglog(n, v, ".--", label={"serial": "fastloss serial kernel",
                                                  "numpy": "NumPy float64",
                                                  "torch": "PyTorch"}[k])
            try:
                from ._cpu import PARALLEL_MIN
                ax.axvline(PARALLEL_MIN["elementwise"], color="grey", lw=0.8, ls=":",
                           label="parallel kernel from here")
            except Exception:  # pragma: no cover
                pass
            ax.set_xlabel("elements")
            ax.set_ylabel("ms per value+gradient call")
            ax.set_title(f"time against size: {sizes[0]['loss']}, float32")
            ax.legend(fontsize=8)
        else:
            x = np.arange(len(comp))
            ax.bar(x, [r["compile_s"] for r in comp])
            ax.set_xticks(x, [f"{r['loss']} {r['dtype']} {r['size']}" for r in comp],
                          rotation=30, ha="right", fontsize=7)
            ax.set_ylabel("s")
            ax.set_title("cold compile time per kernel family (empty cache, fresh process)")
    v = info["versions"]
    fig.text(0.01, 0.002, f"{info['cpu']}, {info['vector_width']}, {info['threads']} threads "
             f"of {info['cores']} cores, {info['threading_layer']}; triad "
             f"{_fmt(info.get('triad_gbs'))} GB/s; fastloss {v['fastloss']}, numba "
             f"{v['numba']}, numpy {v['numpy']}, torch {v.get('torch') or '—'}; "
             f"{info['date']}", fontsize=7)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------- the command
DESCRIPTION = """\
Time the fused value+gradient of every registered loss (float32) against a triad
memory-bandwidth yardstick and its peers: a NumPy float64 reference, PyTorch CPU and
scikit-learn (each when installed). A header names the machine; a legend under the
table explains every column."""


def _parser():
    from ._bench import DEFAULT_FAMILIES

    p = argparse.ArgumentParser(
        prog="fastloss bench", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=LEGEND + "\n\nexamples:\n  fastloss bench --quick\n"
               "  fastloss bench --family ctc --loss ctc_loss --json ctc.json\n"
               "  fastloss bench --quick --family elementwise --family sizes --plot perf.png\n"
               "\nexit codes: 0 success, 2 bad arguments (an unknown loss or family)")
    p.add_argument("--quick", action="store_true",
                   help="smaller inputs (elementwise 4e6 elements, row-wise half the rows, "
                        "the smaller CTC shapes): about a minute with a warm cache")
    p.add_argument("--family", action="append", choices=FAMILIES, metavar="FAMILY",
                   help="only this family of cases (repeatable). elementwise: the "
                        "per-element losses; rowwise: losses over a class or feature axis; "
                        "ctc: CTC at speech-like shapes; metric: the metric-learning losses "
                        "(batches of embeddings); workflows: L-BFGS model fits, "
                        "XGBoost/LightGBM objectives, a call under contention, float64 "
                        "per-call costs (minutes); sizes: huber against n, where the "
                        "parallel kernel takes over; compile: cold compile time per kernel "
                        "family in fresh processes. Default: "
                        + ", ".join(DEFAULT_FAMILIES))
    p.add_argument("--loss", action="append", metavar="NAME",
                   help="only this loss (repeatable; a registered name, see fastloss.LOSSES, "
                        "or a workflow's name)")
    p.add_argument("--repeat", type=int, metavar="R",
                   help="rounds of the round robin (default 7): every timed callable gets R "
                        "samples and the median is shown; each sample repeats its call "
                        "until it lasts >= 20 ms (--quick) or 50 ms")
    p.add_argument("--json", metavar="FILE",
                   help="also write the rows and the machine header as JSON (keys: "
                        "python -m pydoc fastloss.bench)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw the figures (ratios per loss, %% of the triad, time "
                        "against size, compile time) into FILE.png; needs matplotlib")
    return p


def _known_names(families):
    """Loss names a ``--loss`` may select: the registry, plus workflow case names."""
    from ._api import LOSSES
    names = set(LOSSES)
    if "workflows" in families:
        from ._bench import all_cases
        try:
            names |= {c.loss for c in all_cases(True, ["workflows"])}
        except Exception:  # pragma: no cover - a workflow module failed to import
            pass
    return names


def main(argv=None):
    from ._bench import DEFAULT_FAMILIES

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        argv = argv[1:]
    p = _parser()
    a = p.parse_args(argv)
    families = a.family or list(DEFAULT_FAMILIES)
    if a.repeat is not None and a.repeat < 1:
        p.error("argument --repeat: must be >= 1")
    if a.loss:
        from ._api import LOSSES
        known = _known_names(families)
        bad = [n for n in a.loss if n not in known]
        if bad:
            p.error(f"argument --loss: unknown loss {', '.join(map(repr, bad))}; "
                    f"registered losses: {', '.join(LOSSES)}")
        if not select_cases(a.quick, [f for f in families if f != "compile"], a.loss) and \
                not ("compile" in families and _compile_has(a.loss)):
            p.error(f"argument --loss: no benchmark case of {', '.join(a.loss)} in the "
                    f"families {', '.join(families)} (add --family ...)")
    if a.plot:   # fail before minutes of timing, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            p.error("argument --plot: needs matplotlib (pip install matplotlib)")
    rows, info = run_with_info(quick=a.quick, families=families, repeat=a.repeat,
                               only=a.loss)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": info, "settings": {"quick": a.quick, "families": families,
                                                      "repeat": a.repeat or 7,
                                                      "losses": a.loss},
                       "rows": rows}, f, indent=1, default=_json_default)
        print(f"rows written to {a.json}")
    if a.plot:
        plot(rows, info, a.plot)
        print(f"figures written to {a.plot}")
    return 0


def _compile_has(losses):
    from ._bench.compile import CASES
    return any(loss in losses for loss, _, _ in CASES.values())


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
