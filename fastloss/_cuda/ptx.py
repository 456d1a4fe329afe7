"""Every CUDA kernel compiled to PTX and assembled by ``ptxas``, without a GPU.

``python -m fastloss._cuda.ptx [--jobs N] [--arch 80,90] [--markdown FILE]`` compiles
every kernel of every family (elementwise, row-wise, CTC, the final reductions, the
device-side label checks, the layout gather), for
float32 and float64, to PTX for each architecture, assembles it with ``ptxas -v`` (from the
``nvidia-cuda-nvcc`` wheel that ``numba-cuda[cu12]`` installs, or ``$CUDA_HOME/bin``) and
prints a table: registers per thread, spill stores/loads, stack frame, static shared
memory.  :func:`report` returns the rows (used by ``tests/test_cuda_ptx.py``).

How it works without a device: kernels are typed with the argument tuples the launchers
build (``args_for``/``ctc_args``) from NumPy stand-ins (``numba.typeof`` gives device
arrays and NumPy arrays the same types), and compiled from their plain Python copies
(:data:`fastloss._cuda.build.PYFUNCS`).  A kernel that calls ``cuda.jit(device=True)``
functions makes Numba compile those for "the current device"; :func:`fake_device` stands
in a device of the requested compute capability for that (only the lowering of a few
intrinsics depends on it, identically for every cc >= 6.0).  Each kernel is typed and
lowered once; NVVM then emits PTX for every architecture from the same IR.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np

ARCHS = ((8, 0), (9, 0))
DTYPES = ("float32", "float64")


class _FakeDevice:
    def __init__(self, cc):
        self.compute_capability = tuple(cc)
        self.id = 0


@contextlib.contextmanager
def fake_device(cc=(8, 0)):
    """Make Numba compile device functions for ``cc`` without a CUDA context."""
    import numba.cuda.dispatcher as disp

    old = disp.get_current_device
    disp.get_current_device = lambda: _FakeDevice(cc)
    try:
        yield
    finally:
        disp.get_current_device = old


def ptxas_path():
    """The ``ptxas`` binary (the nvcc wheel's, else $CUDA_HOME's, else $PATH's) or None."""
    try:
        import nvidia.cuda_nvcc as m
        roots = list(m.__path__)
    except ImportError:
        roots = []
    for r in roots:
        p = os.path.join(r, "bin", "ptxas")
        if os.path.exists(p):
            return p
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if home and os.path.exists(os.path.join(home, "bin", "ptxas")):
        return os.path.join(home, "bin", "ptxas")
    return shutil.which("ptxas")


def nvvm_available() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return False
    try:
        from numba.cuda.cudadrv import nvvm
        nvvm.NVVM()
        return True
    except Exception:
        return False


# --------------------------------------------------------------------- the kernel list
def _elementwise(dt):
    from .. import _elementwise as run
    from .._compile import namespace
    from .._math.spec import ELEMENTWISE
    from . import elementwise as ew

    ns = namespace(run.MATH, "cuda")
    x = np.zeros(4, dt)
    part = np.zeros((2, 4))
    out = []
    for name, spec in sorted(ELEMENTWISE.items()):
        check = spec.check.__name__ if spec.check is not None else "ok_always"
        k = ew.kernel_for(name, ns, check, dt)
        args = ew.args_for(x, x, x, 1.0, (0.0, 0.0, 0.0), 1.0, np.zeros(3), x, x, x, part,
                           False, dt)
        out.append(("elementwise", name, k, args))
    # the three-array template: gaussian_nll, margin_ranking and the per-element twins
    from .._math.spec import ELEMENTWISE3
    specs = [*ELEMENTWISE3.values(), *(run.twin_spec(s, p) for s in ELEMENTWISE.values()
                                       for p in s.per_element)]
    for spec in sorted(specs, key=lambda s: s.name):
        k = ew.kernel_for(spec.name, ns, spec.check.__name__, dt, three=True)
        args = ew.args3_for(x, x, x, x, 1.0, (0.0, 0.0, 0.0), 1.0, np.zeros(3), (x,) * 5,
                            part, False, dt)
        out.append(("elementwise", spec.name, k, args))
    return out


def _row_variants():
    """(tag, flags) of every row math the runner can pick (parameter variants included)."""
    from .. import _rowwise as run

    variants = {"kl_divergence": [{"log_target": True}],
                "multiclass_hinge": [{"kind": "crammer_singer"}, {"p": 2},
                                     {"kind": "crammer_singer", "p": 2}],
                "triplet_margin": [{"squared": True}],
                "softmax_cross_entropy_with_integer_labels": [{"class_weight": np.ones(4)}]}
    seen = {}
    for name, spec in run.ROWLOSSES.items():
        for extra in [{}] + variants.get(name, []):
            params = dict(spec.params, **extra)
            K = np.zeros(2, np.int64) if spec.label_kind == "int" else None
            tag, need_max, _, ex = spec.prepare(params, 4, np.dtype(np.float64), K, name)
            flags = run._flags(tag, need_max, spec, ex.get("class_weight") is not None)
            key = (tag,) + flags[:3]   # class weights are a runtime flag on CUDA
            seen.setdefault(key, (name, tag, flags))
            if run._tag_has_hessian(tag):   # the diagonal-Hessian variant: "<tag>+h"
                seen.setdefault(key + ("h",), (name, tag + "+h", flags))
    return list(seen.values())


def _rowwise(dt):
    from .. import _rowwise as run
    from .._compile import namespace
    from . import rowwise as rw

    ns = namespace(run.MATH, "cuda")
    A = np.zeros((2, 4), dt)
    v = np.zeros(2, dt)
    out = []
    for name, tag, flags in _row_variants():
        hess = tag.endswith("+h")
        k = rw.kernel_for(tag.removesuffix("+h"), ns, flags, dt, hess=hess)
        args = rw.args_for(A, A, A, np.zeros(2, np.int64), v, np.zeros(4, dt), v, 1.0,
                           (0.0,) * 4, 1.0, np.zeros((2, 2)), v, A, A, A, False, dt,
                           gH=A if hess else None)
        out.append(("rowwise", tag, k, args))
    return out


def _ctc(dt):
    from .. import _ctc as run
    from .._compile import namespace
    from . import ctc

    ks = ctc.kernels_for(namespace(run.MATH, "cuda"), dt)
    x = np.zeros((2, 3, 4), dt)
    i64 = np.zeros(2, np.int64)
    f64 = np.zeros(2)
    args = ctc.ctc_args(x, False, False, np.zeros((2, 3), np.int64), np.zeros((2, 5), np.uint8),
                        i64, i64, f64, x, f64, False, "none", 1.0, np.zeros((2, 3)),
                        np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), f64, np.zeros(1),
                        np.zeros(2, dt), np.zeros(1, dt), 2)
    names = ("lse", "alpha_beta", "grad", "finish")
    return [("ctc", n, k, a) for n, k, a in zip(names, ks, args)]


def _reduce(dt):
    from . import reduce

    part = np.zeros((2, 4))
    return [("reduce", "sum", reduce.sum_kernel, (np.zeros(4, dt), part)),
            ("reduce", "finish", reduce.finish_kernel,
             (part, 1, 1.0, 1.0, np.zeros(3), False, False, np.zeros(3), np.zeros(1, dt)))]


def _labels(dt):
    from . import labels

    i64 = np.zeros(2, np.int64)
    v = np.zeros(2, dt)
    part = np.zeros((3, 2))
    row = labels.rowlab_args(i64, 0, 4, -100, v, v, 1.0, i64, v, part)
    ctc = labels.ctcprep_args(np.zeros((2, 3), np.int64), True, i64, i64, v, 5, 4, 0, 3, 2,
                              i64, np.zeros((2, 7), np.int64), np.zeros((2, 9), np.uint8), i64,
                              i64, i64, np.zeros(2), np.zeros(6))
    return [("labels", "rows", labels.rowlab_kernel, row),
            ("labels", "ctc", labels.ctcprep_kernel, ctc),
            ("labels", "class_weight", labels.cwcheck_kernel,
             labels.cwcheck_args(v, np.zeros(2)))]


def _layout(dt):
    from . import layout

    i64 = np.zeros(2, np.int64)
    return [("layout", "gather", layout.gather_kernel,
             layout.args_for(np.zeros(4, dt), np.zeros(4, dt), i64, i64))]


def _metric(dt):
    """The metric-learning pass kernel: float64 only (float32 embeddings are widened)."""
    if dt != np.float64:
        return []
    from .. import _metric as run
    from .._compile import namespace
    from . import metric

    k = metric.kernel(namespace(run.MATH, "cuda"))
    x = np.zeros((4, 3))
    i64 = np.zeros(4, np.int64)
    f64 = np.zeros(4)
    args = (1, 0, 0, 4, x, x, i64, f64, i64, np.zeros(5, np.int64), np.zeros(4, np.int32),
            f64, np.zeros(4), np.zeros((4, 6)), f64, x, x, np.zeros((4, 12)), True)
    return [("metric", "pass", k, args)]


FAMILIES = {"elementwise": _elementwise, "rowwise": _rowwise, "ctc": _ctc, "reduce": _reduce,
            "labels": _labels, "layout": _layout, "metric": _metric}


def kernels(families=tuple(FAMILIES), dtypes=DTYPES):
    """[(family, name, dtype, plain Python function, argument types)] of every kernel."""
    import numba

    from .build import PYFUNCS

    out = []
    with fake_device():
        for fam in families:
            for dt in dtypes:
                for family, name, k, args in FAMILIES[fam](np.dtype(dt)):
                    py = PYFUNCS.get(k.py_func.__name__, k.py_func)
                    sig = tuple(numba.typeof(a) for a in args)
                    out.append((family, name, dt, py, sig))
    return out


# -------------------------------------------------------------------- compile + ptxas
def compile_ptx(pyfunc, sig, archs=ARCHS):
    """{cc: PTX} of one kernel: typed and lowered once, PTX per architecture."""
    from numba.cuda import compiler

    with fake_device(archs[0]):
        fixup = getattr(compiler, "_compile_pyfunc_with_fixup", None)
        if fixup is None:   # an older numba-cuda: type once per architecture
            return {cc: compiler.compile_ptx(pyfunc, sig, cc=cc)[0] for cc in archs}
        lib, _ = fixup(pyfunc, sig, device=False, cc=archs[0], abi="numba")
        return {cc: lib.get_asm_str(cc=cc) for cc in archs}


_INFO = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+)'")
_PROPS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers(?:.*?(\d+) bytes smem)?")


def ptxas(ptx: str, arch: str, exe=None) -> dict:
    """Assemble ``ptx`` for ``arch`` (e.g. "sm_90"): registers, spills, stack, smem of its
    entry function (ptxas -v)."""
    exe = exe or ptxas_path()
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        r = subprocess.run([exe, f"-arch={arch}", "-v", "-o", os.path.join(d, "k.cubin"), src],
                           capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"ptxas failed for {arch}:\n{r.stderr[-4000:]}")
    lines = r.stderr.splitlines()
    info = {}
    for i, line in enumerate(lines):
        if _INFO.search(line):
            for nxt in lines[i + 1:i + 5]:
                m = _PROPS.search(nxt)
                if m:
                    info["stack"], info["spill_st"], info["spill_ld"] = map(int, m.groups())
                m = _USED.search(nxt)
                if m:
                    info["regs"] = int(m.group(1))
                    info["smem"] = int(m.group(2) or 0)
            break
    if "regs" not in info:
        raise RuntimeError(f"no entry function in ptxas output:\n{r.stderr[-2000:]}")
    return info


def _work(item, archs=ARCHS):
    family, name, dt, py, sig = item
    t0 = time.perf_counter()
    ptx = compile_ptx(py, sig, archs)
    t1 = time.perf_counter()
    rows = []
    with ThreadPoolExecutor(len(archs)) as ex:
        infos = list(ex.map(lambda cc: ptxas(ptx[cc], f"sm_{cc[0]}{cc[1]}"), archs))
    for cc, info in zip(archs, infos):
        assert f".target sm_{cc[0]}{cc[1]}" in ptx[cc]
        rows.append(dict(family=family, kernel=name, dtype=dt, arch=f"sm_{cc[0]}{cc[1]}",
                         compile_s=t1 - t0, **info))
    return rows


def _chunk(args):
    families, dtypes, archs = args
    out = []
    for item in kernels(families, dtypes):
        out.extend(_work(item, archs))
    return out


def report(jobs=1, families=tuple(FAMILIES), dtypes=DTYPES, archs=ARCHS):
    """Rows (dict per kernel × dtype × arch) for every kernel; ``jobs`` worker processes
    (each types its own share: one per (family, dtype) pair, largest first)."""
    if jobs <= 1:
        return _chunk((families, dtypes, archs))
    parts = [((f,), (d,), archs) for f in families for d in dtypes]
    order = {"rowwise": 0, "elementwise": 1, "ctc": 2, "labels": 3, "reduce": 4,
             "layout": 5, "metric": 6}
    parts.sort(key=lambda p: order.get(p[0][0], 9))
    rows = []
    import multiprocessing as mp

    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as ex:
        for r in ex.map(_chunk, parts):
            rows.extend(r)
    return rows


def markdown(rows) -> str:
    head = ("| family | kernel | dtype | arch | registers | spill stores / loads (B) | "
            "stack (B) | static smem (B) |\n|---|---|---|---|---:|---:|---:|---:|")
    key = {"elementwise": 0, "rowwise": 1, "ctc": 2, "reduce": 3, "labels": 4, "layout": 5,
           "metric": 6}
    body = [f"| {r['family']} | {r['kernel']} | {r['dtype']} | {r['arch']} | {r['regs']} | "
            f"{r['spill_st']} / {r['spill_ld']} | {r['stack']} | {r['smem']} |"
            for r in sorted(rows, key=lambda r: (key.get(r["family"], 9), r["kernel"],
                                                 r["dtype"], r["arch"]))]
    return "\n".join([head] + body)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastloss._cuda.ptx", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--arch", default="80,90", help="comma-separated, e.g. 80,90")
    ap.add_argument("--family", action="append", choices=sorted(FAMILIES))
    ap.add_argument("--markdown", help="write the table into this file between the markers "
                    "<!-- ptx-table --> and <!-- /ptx-table -->")
    a = ap.parse_args(argv)
    archs = tuple((int(s[:-1]), int(s[-1])) for s in a.arch.split(","))
    t0 = time.perf_counter()
    rows = report(a.jobs, tuple(a.family or FAMILIES), DTYPES, archs)
    table = markdown(rows)
    print(table)
    print(f"\n{len(rows)} kernel builds in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if a.markdown:
        with open(a.markdown) as f:
            text = f.read()
        start, end = "<!-- ptx-table -->", "<!-- /ptx-table -->"
        i, j = text.index(start) + len(start), text.index(end)
        with open(a.markdown, "w") as f:
            f.write(text[:i] + "\n" + table + "\n" + text[j:])
    return rows


if __name__ == "__main__":
    main()


# ------------------------------------------------------------ the disk cache, offline
@contextlib.contextmanager
def offline_device(cc=(9, 0)):
    """Enough of a device for ``cuda.jit(cache=True)`` to compile, save and load kernels
    without a GPU: a fake current device of ``cc`` for typing, the codegen and the cache
    index (whose key holds the codegen's ``magic_tuple``), and a ``bind`` that stops at
    the PTX instead of loading a module into a context.  For tests of the cache keys."""
    from unittest import mock

    import numba.cuda.codegen as cg
    import numba.cuda.dispatcher as disp

    class _Ctx:
        device = _FakeDevice(cc)

    with fake_device(cc), \
            mock.patch.object(cg.devices, "get_context", lambda *a, **k: _Ctx()), \
            mock.patch.object(cg.JITCUDACodegen, "magic_tuple",
                              lambda self: ("offline", tuple(cc))), \
            mock.patch.object(disp._Kernel, "bind",
                              lambda self: self._codelibrary.get_asm_str(tuple(cc))):
        yield


def cache_probe(which="elementwise", cc=(9, 0)) -> dict:
    """Compile one kernel of ``which`` family through its dispatcher (``cache=True``) under
    :func:`offline_device`; returns its cache hits and misses and whether the kernel's
    PTX targets ``cc``.  Run it in two fresh processes: the second must hit."""
    import numba

    target = f".target sm_{cc[0]}{cc[1]}"
    with offline_device(cc):
        _, _, k, args = FAMILIES[which](np.dtype(np.float64))[0]
        sig = tuple(numba.typeof(a) for a in args)
        kern = k.compile(sig)
        return {"hits": int(sum(k.stats.cache_hits.values())),
                "misses": int(sum(k.stats.cache_misses.values())),
                "target": target in kern._codelibrary.get_asm_str(tuple(cc))}
