"""``python -m fastloss compile``: compile the CPU kernels once, into the on-disk cache.

Every kernel compiles on its first call in a process that finds no cached copy (about 1–3 s
per elementwise or row-wise kernel, several seconds for CTC) and is saved to Numba's
on-disk cache; later processes load it in a fraction of a second.  This command pays that
cost up front: for each selected loss and dtype it runs the calls that programs make —
the value, ``value_and_grad`` (and ``grad_and_hessian`` where the loss has one) — on small
inputs (the serial kernel) and on inputs above the family's parallel threshold (the
parallel kernel; for row-wise losses also a few long rows, the chunked kernel; for CTC
also logits that need its log-space kernel), so that each of those kernels is compiled, or
found in the cache, and saved.

It is idempotent: a second run finds every kernel in the cache and takes seconds.  The
cache is the one the library uses (``NUMBA_CACHE_DIR`` when set, else next to the package
sources, else the user cache directory when those are read-only), so it works for
read-only installs too.  The kernels cover C-contiguous float32/float64 inputs; other
layouts, ``out=``/``sample_weight`` combinations and ``reduction="none"`` may still
compile a variant on first use (``--calls`` adds ``none`` and ``weighted``).
Kernel names carry a digest of the kernel sources: after an upgrade, run it again.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

CALLS = ("value", "grad", "hess", "none", "weighted")
DEFAULT_CALLS = ("value", "grad", "hess")
FAMILIES = ("elementwise", "rowwise", "ctc")


# ------------------------------------------------------------------------- inputs
def _ew_inputs(name, n, dt):
    from ._bench.elementwise import _inputs
    return _inputs(name, n, dt)


def _row_inputs(name, N, D, dt):
    rng = np.random.default_rng(0)

    def f(*shape):
        return rng.standard_normal(shape).astype(dt)

    def probs():
        p = rng.random((N, D)).astype(dt) + dt.type(0.1)
        return p / p.sum(-1, keepdims=True)

    ints = rng.integers(0, D, N)
    if name in ("softmax_cross_entropy_with_integer_labels", "multiclass_hinge", "nll_loss",
                "categorical_focal_cross_entropy"):
        return f(N, D), ints
    if name in ("softmax_cross_entropy", "softmax_kl_divergence",
                "poly1_softmax_cross_entropy"):
        return f(N, D), probs()
    if name == "kl_divergence":
        return np.log(probs()), probs()
    if name == "cosine_embedding":
        return f(N, D), f(N, D), np.where(rng.random(N) < 0.5, 1.0, -1.0).astype(dt)
    if name == "triplet_margin":
        return f(N, D), f(N, D), f(N, D)
    if name == "multiclass_sparsemax_loss":
        return f(N, D), ints
    if name == "multilabel_margin":   # two listed classes per row, then -1; O(C²) per
        D = min(D, 256)               # row: long rows are not precompiled
        t = np.full((N, D), -1, np.int64)
        t[:, :2] = rng.integers(0, D, (N, 2))
        return f(N, D), t
    if name in ("dice", "tversky"):
        return probs(), (rng.random((N, D)) < 0.5).astype(dt)
    return f(N, D), f(N, D)   # cosine_distance, mean_pairwise_squared_error, ...


def _ctc_inputs(shape, dt):
    from ._bench.ctc import inputs
    return inputs(shape, dt)


def _sizes(kind):
    """(label, size) pairs: below and above the family's parallel threshold."""
    from ._cpu import PARALLEL_MIN
    if kind == "elementwise":
        return [("serial", 256), ("parallel", max(PARALLEL_MIN["elementwise"], 1))]
    if kind == "rowwise":
        from ._rowwise import CHUNK
        m = max(PARALLEL_MIN["rowwise"], 1)
        return [("serial", (8, 16)), ("parallel", (max(m // 64, 1), 64)),
                ("long rows", (2, 2 * CHUNK))]
    m = max(PARALLEL_MIN["ctc"], 1)   # ctc: logits (N, T, C) elements
    return [("serial", (6, 2, 5, 2)), ("parallel", (max(m // (8 * 32), 2), 8, 32, 2))]


# ------------------------------------------------------------------------- tasks
def tasks(losses=None, dtypes=("float32", "float64"), families=FAMILIES,
          calls=DEFAULT_CALLS):
    """[(loss, dtype, size label, call, thunk)] to run, in order."""
    from ._api import LOSSES

    out = []
    names = [n for n, i in LOSSES.items() if i.kind in families and (not losses or n in losses)]
    for name in names:
        info = LOSSES[name]
        for dts in dtypes:
            dt = np.dtype(dts)
            for label, size in _sizes(info.kind):
                for call in calls:
                    t = _thunk(info, dt, size, call)
                    if t is not None:
                        out.append((name, dt.name, label, call, t))
    return out


def _thunk(info, dt, size, call):
    import fastloss

    if call == "hess" and not info.has_hessian:
        return None

    def make():
        if info.kind == "elementwise":
            return _ew_inputs(info.name, size, dt), {}
        if info.kind == "rowwise":
            return _row_inputs(info.name, *size, dt), {}
        args, kw = _ctc_inputs(size, dt)
        return args, {"layout": kw["layout"]}

    f = info.func
    n_diff = len(info.differentiable)

    def run():
        args, kw = make()
        if call == "value":
            f(*args, **kw)
        elif call == "grad":
            fastloss.value_and_grad(f)(*args, **kw)
            if n_diff > 1:
                fastloss.value_and_grad(f, tuple(range(n_diff)))(*args, **kw)
            if info.kind == "ctc":   # the log-space kernel: a blank 200 nats above the rest
                x = args[0].copy()
                x[..., 0] += 200
                fastloss.value_and_grad(f)(x, *args[1:], **kw)
        elif call == "hess":
            fastloss.grad_and_hessian(f)(*args, **kw)
        elif call == "none":
            f(*args, reduction="none", **kw)
            fastloss.value_and_grad(f)(*args, reduction="none", **kw)
        elif call == "weighted":
            n = args[0].shape[0] if info.kind != "ctc" else len(args[2])
            w = np.ones(args[0].shape if info.kind == "elementwise" else n, dt)
            f(*args, sample_weight=w, **kw)
            fastloss.value_and_grad(f)(*args, sample_weight=w, **kw)
    return run


# ------------------------------------------------------------------------- counting
def _kernels():
    """Every CPU kernel dispatcher built so far in this process (and its serial twin)."""
    from . import _compile
    from ._cpu import _TWINS
    ks = [k for k in _compile._KERNELS.values() if hasattr(k, "stats")]
    ks += [t for t in _TWINS.values() if hasattr(t, "stats")]
    uniq = {id(k): k for k in ks}
    return list(uniq.values())


def _counts():
    hits = misses = 0
    for k in _kernels():
        hits += sum(k.stats.cache_hits.values())
        misses += sum(k.stats.cache_misses.values())
    return hits, misses


def cache_location():
    """The directory one of the kernels built here caches to, or None."""
    for k in _kernels():
        c = getattr(k, "_cache", None)
        p = getattr(c, "_cache_path", None)
        if p:
            return p
    return None


# ------------------------------------------------------------------------- progress
class _Plain:
    """A one-line progress report per task on stderr (without tqdm)."""

    def __init__(self, total, file):
        self.total, self.i, self.file = total, 0, file

    def update(self, desc, seconds):
        self.i += 1
        print(f"[{self.i}/{self.total}] {desc} {seconds:.1f} s", file=self.file, flush=True)

    def close(self):
        pass


class _Tqdm:
    def __init__(self, total, file):
        from tqdm import tqdm
        self.bar = tqdm(total=total, file=file, unit="call", dynamic_ncols=True,
                        desc="compiling")

    def update(self, desc, seconds):
        self.bar.set_postfix_str(desc, refresh=False)
        self.bar.update(1)

    def close(self):
        self.bar.close()


def _progress(total, file, mode):
    if mode == "plain":
        return _Plain(total, file)
    try:
        return _Tqdm(total, file)
    except ImportError:
        return _Plain(total, file)


def compile_all(losses=None, dtypes=("float32", "float64"), families=FAMILIES,
                calls=DEFAULT_CALLS, progress="auto", file=None):
    """Run the tasks; return a summary dict (``tasks``, ``seconds``, ``compiled``,
    ``loaded`` (kernel signatures compiled / loaded from the disk cache), ``cache``,
    ``failed`` ([(task, error)]))."""
    file = file or sys.stderr
    todo = tasks(losses, dtypes, families, calls)
    bar = _progress(len(todo), file, progress) if progress else None
    failed = []
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always", RuntimeWarning)
        for name, dt, label, call, run in todo:
            t = time.perf_counter()
            try:
                run()
            except Exception as exc:  # a task the loss's inputs reject: reported, skipped
                failed.append(((name, dt, label, call), f"{type(exc).__name__}: {exc}"))
            if bar:
                bar.update(f"{name} {dt} {call} ({label})", time.perf_counter() - t)
    if bar:
        bar.close()
    hits, misses = _counts()
    cache_warnings = [str(w.message) for w in warned if "kernel cache" in str(w.message)]
    return {"tasks": len(todo), "seconds": time.perf_counter() - t0, "compiled": misses,
            "loaded": hits, "cache": cache_location(), "failed": failed,
            "cache_warnings": cache_warnings}


# ------------------------------------------------------------------------- the command
def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _parser():
    p = argparse.ArgumentParser(
        prog="fastloss compile", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compile fastloss's CPU kernels into the on-disk kernel cache, so that "
                    "the first call of a\nlater process loads them (a fraction of a second) "
                    "instead of compiling them (seconds each).\nIdempotent: a second run "
                    "finds everything in the cache.",
        epilog="examples:\n  fastloss compile                                  # everything "
               "(minutes)\n  fastloss compile --losses huber,ctc_loss --dtypes float32\n"
               "  fastloss compile --family rowwise --calls value,grad\n\n"
               "The cache is Numba's: NUMBA_CACHE_DIR when set, else next to the package "
               "sources, else\nthe user cache directory when those are read-only. Kernel "
               "names carry a digest of the kernel\nsources: run this again after an "
               "upgrade.\n\nexit codes: 0 success, 1 some kernels failed, 2 bad arguments")
    p.add_argument("--losses", type=_csv, metavar="NAME[,NAME...]",
                   help="only these losses (default: every registered loss of the families)")
    p.add_argument("--dtypes", type=_csv, default=["float32", "float64"],
                   metavar="DTYPE[,DTYPE...]", help="float32, float64 (default both)")
    p.add_argument("--family", type=_csv, metavar="FAMILY[,FAMILY...]",
                   help=f"only these families: {', '.join(FAMILIES)} (default all)")
    p.add_argument("--calls", type=_csv, default=list(DEFAULT_CALLS),
                   metavar="CALL[,CALL...]",
                   help="which calls to prepare: value (the loss), grad (value_and_grad), "
                        "hess (grad_and_hessian, where defined), none (reduction='none'), "
                        "weighted (sample_weight); default value,grad,hess")
    p.add_argument("--progress", choices=("auto", "plain", "none"), default="auto",
                   help="auto: a tqdm bar when tqdm is installed, else one line per task; "
                        "plain: one line per task; none: the summary only")
    return p


def main(argv=None) -> int:
    from ._api import LOSSES

    p = _parser()
    a = p.parse_args(argv)
    families = a.family or list(FAMILIES)
    bad = [f for f in families if f not in FAMILIES]
    if bad:
        p.error(f"argument --family: unknown {', '.join(bad)}; one of {', '.join(FAMILIES)}")
    if a.losses:
        bad = [n for n in a.losses if n not in LOSSES]
        if bad:
            p.error(f"argument --losses: unknown loss {', '.join(map(repr, bad))}; "
                    f"registered losses: {', '.join(LOSSES)}")
        if a.family is None:
            families = sorted({LOSSES[n].kind for n in a.losses})
    bad = [d for d in a.dtypes if d not in ("float32", "float64")]
    if bad or not a.dtypes:
        p.error(f"argument --dtypes: expected float32 and/or float64, got {','.join(bad)}")
    bad = [c for c in a.calls if c not in CALLS]
    if bad or not a.calls:
        p.error(f"argument --calls: unknown {', '.join(bad)}; one of {', '.join(CALLS)}")
    if not tasks(a.losses, a.dtypes, families, a.calls):
        p.error("nothing to compile: no loss of the selected families matches --losses")
    r = compile_all(a.losses, a.dtypes, families, a.calls,
                    progress=None if a.progress == "none" else a.progress)
    print(f"fastloss compile: {r['tasks']} calls in {r['seconds']:.1f} s; kernels compiled "
          f"and saved: {r['compiled']}, loaded from the cache: {r['loaded']}")
    print(f"cache: {r['cache'] or 'none'}")
    for w in r["cache_warnings"][:1]:
        print(f"warning: {w}")
    for task, err in r["failed"]:
        print(f"failed: {' '.join(task)}: {err}", file=sys.stderr)
    return 1 if r["failed"] else 0
