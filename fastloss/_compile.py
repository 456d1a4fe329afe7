"""Compile the scalar math once per target and generate kernels from a few templates.

* :func:`namespace` takes a math module (plain Python functions) and compiles every
  function in it for one target — ``"cpu32"``, ``"cpu64"`` (``njit(inline='always')``) or
  ``"cuda"`` (``cuda.jit(device=True)``) — with the primitive names (``exp``, ``log``,
  ``log1p``) rebound to that target's versions: on the float32 CPU target they are the
  vectorizable polynomials of :mod:`fastloss._fastmath`.
* :func:`cpu_kernel` copies a CPU kernel template with some globals bound (the loss's
  compiled math) under a unique, stable name, so that ``cache=True`` works per loss
  across processes (a factory closure over a dispatcher would recompile in every process:
  Numba's cache key pickles the captured dispatcher, which carries a random uuid).  The
  name carries a digest of the math sources, so editing the math invalidates the cache,
  and the vector width chosen (:mod:`fastloss._cpu.wide`: 512-bit for the transcendental
  elementwise losses on AVX-512 machines).

Nothing here compiles at import time; kernels compile on first call.
"""
from __future__ import annotations

import hashlib
import importlib
import math
import os
import pathlib
import threading
import types

import numpy as np

# never nnan/ninf; 'reassoc' lets LLVM vectorize the float sums (and polynomials) -- the
# places where regrouping would change a result use sadd/ssub (fastloss._math.strict)
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
_PKG = pathlib.Path(__file__).parent
_LOCK = threading.RLock()
_NAMESPACES: dict = {}
_KERNELS: dict = {}


def digest() -> str:
    """A short hash of every source file the kernels depend on (math, kernels, compiler)."""
    if "digest" not in _KERNELS:
        h = hashlib.sha256()
        # the runners choose what is bound into the kernels: they count too
        files = [*_PKG.glob("_math/*.py"), *_PKG.glob("_cpu/*.py"), _PKG / "_fastmath.py",
                 _PKG / "_prims.py", _PKG / "_compile.py", _PKG / "_elementwise.py",
                 _PKG / "_rowwise.py", _PKG / "_ctc.py"]
        for p in sorted(files):
            h.update(p.read_bytes())
        _KERNELS["digest"] = h.hexdigest()[:10]
    return _KERNELS["digest"]


def _prims(target: str) -> dict:
    """The primitives a math module may call: ``exp``, ``expn`` (exp of an argument <= 0,
    may flush results below the smallest normal number of the dtype to 0), ``log``,
    ``log1p``, ``log1pu`` (log1p of an argument in [0, 1] only); on the CPU targets also
    ``sadd``/``ssub`` (strict add/subtract, :mod:`fastloss._math.strict`).  On the CPU
    targets exp/log are the vectorizable polynomials of :mod:`fastloss._prims` (libm
    calls would keep the loops scalar)."""
    if target in ("cpu32", "cpu64"):
        from . import _prims
        from ._math.strict import STRICT_PRIMS  # sadd/ssub: never reassociated
        prims = _prims.F32_PRIMS if target == "cpu32" else _prims.F64_PRIMS
        return dict(prims, **STRICT_PRIMS)
    if target == "cuda" and os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        # the simulator runs device code as Python: IEEE results (inf, NaN) instead of
        # the math module's exceptions for log(0) or exp(1000)
        return {"exp": np.exp, "expn": np.exp, "log": np.log, "log1p": np.log1p,
                "log1pu": np.log1p}
    return {"exp": math.exp, "expn": math.exp, "log": math.log, "log1p": math.log1p,
            "log1pu": math.log1p}


def _jit_for(target: str):
    if target == "cuda":
        from numba import cuda
        return lambda f: cuda.jit(device=True)(f)
    from numba import njit
    return lambda f: njit(inline="always", fastmath=set(FASTMATH), error_model="numpy")(f)


def _float32_code(code):
    """``code`` with its float literals turned into float32, so float32 math stays float32.

    (A Python float literal is float64 to Numba and would promote every expression it
    touches, halving the vector width and pushing exp/log onto the float64 path.)
    """
    consts = tuple(np.float32(c) if type(c) is float else c for c in code.co_consts)
    return code.replace(co_consts=consts)


def namespace(module_name: str, target: str) -> dict:
    """Every plain function of ``module_name`` compiled for ``target``, by name.

    On ``"cpu32"`` float literals and float module constants become float32.
    """
    key = (module_name, target)
    with _LOCK:
        if key not in _NAMESPACES:
            mod = importlib.import_module(module_name)
            ns = dict(vars(mod))
            if target == "cpu32":
                ns.update({k: np.float32(v) for k, v in ns.items() if type(v) is float})
            ns.update(_prims(target))
            jit = _jit_for(target)
            for name, f in vars(mod).items():
                if isinstance(f, types.FunctionType) and f.__module__ == mod.__name__:
                    code = _float32_code(f.__code__) if target == "cpu32" else f.__code__
                    nf = types.FunctionType(code, ns, name, f.__defaults__)
                    nf.__qualname__ = f.__qualname__
                    nf.__module__ = f.__module__
                    nf.__doc__ = f.__doc__
                    ns[name] = jit(nf)
            _NAMESPACES[key] = ns
        return _NAMESPACES[key]


def cpu_kernel(template, tag: str, bind: dict, parallel: bool = True, boundscheck=None,
               wide: bool = False):
    """A cacheable ``@njit`` copy of ``template`` named ``<template>__<tag>__<digest>``;
    ``wide``: compiled for 512-bit vectors where :func:`fastloss._cpu.wide.enabled`."""
    from numba import njit

    from ._cpu import wide as _wide

    wide512 = wide and _wide.enabled()
    name = f"{template.__name__}__{tag}__{digest()}"
    if wide512:
        name += "__w512"     # (a kernel of the other vector width never loads its cache)
    if boundscheck:
        name += "__bc"
    key = (template.__module__, name, parallel)
    with _LOCK:
        if key not in _KERNELS:
            g = dict(template.__globals__)
            g.update(bind)
            f = types.FunctionType(template.__code__, g, name, template.__defaults__)
            f.__qualname__ = name
            f.__module__ = template.__module__
            opts = dict(parallel=parallel, fastmath=set(FASTMATH), error_model="numpy",
                        boundscheck=boundscheck)
            try:
                k = njit(cache=True, **opts)(f)
            except (OSError, RuntimeError) as exc:   # no usable cache location at all
                _cache_warning(exc)
                k = njit(cache=False, **opts)(f)
            if wide512:
                _wide.compile_wide(k)
            _KERNELS[key] = tolerant_cache(k)
        return _KERNELS[key]


_CACHE_WARNED = []


def _cache_warning(exc):
    """Warn once per process that the on-disk kernel cache cannot be used."""
    with _LOCK:
        if _CACHE_WARNED:
            return
        _CACHE_WARNED.append(exc)
    import warnings
    warnings.warn(f"fastloss: the Numba kernel cache cannot be used ({type(exc).__name__}: "
                  f"{exc}); kernels run, but compile again in every process (set "
                  f"NUMBA_CACHE_DIR to a writable directory with free space)",
                  RuntimeWarning, stacklevel=4)


def tolerant_cache(kernel):
    """``kernel`` whose cache reads and writes may fail (a full disk, ENOSPC; a directory
    made read-only after start-up) at the cost of compile time only: the error is turned
    into one warning per process and the freshly compiled kernel runs."""
    cache = getattr(kernel, "_cache", None)
    save, load = getattr(cache, "save_overload", None), getattr(cache, "load_overload", None)
    if save is None or load is None:
        return kernel

    def save_overload(sig, data):
        try:
            save(sig, data)
        except OSError as exc:
            _cache_warning(exc)

    def load_overload(*args, **kwargs):
        try:
            return load(*args, **kwargs)
        except OSError as exc:
            _cache_warning(exc)
            return None

    cache.save_overload = save_overload
    cache.load_overload = load_overload
    return kernel


def cached(key, build):
    """Memoize ``build()`` under ``key`` (for CUDA kernels built by factories)."""
    with _LOCK:
        if key not in _KERNELS:
            _KERNELS[key] = build()
        return _KERNELS[key]


def dtype_tag(dtype) -> str:
    return "f32" if np.dtype(dtype) == np.float32 else "f64"
