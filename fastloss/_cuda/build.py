"""Cacheable CUDA kernels: module-level templates copied with bound globals.

:func:`cuda_kernel` does for CUDA what :func:`fastloss._compile.cpu_kernel` does for the
CPU: it copies a kernel template (a plain function of a ``fastloss._cuda`` module) with
some globals bound (one loss's compiled device math, compile-time flags, the dtype)
under a unique, stable name ``<template>__<tag>__<digest>``, and compiles it with
``cuda.jit(cache=True)``.  The cache index key holds the bytecode and the pickled
closure cells, not the globals (for ``@njit`` a closure over a dispatcher pickles with a
random uuid and misses in every process; the template scheme does not
depend on how a dispatcher pickles); the name carries a digest of every source the
kernels depend on (the math modules, these templates, the compiler), so an edit never
loads a stale kernel.

``PYFUNCS`` keeps the plain Python copy of each kernel, so that
:mod:`fastloss._cuda.ptx` can compile every kernel to PTX for an explicit compute
capability without a GPU.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import threading
import types

_PKG = pathlib.Path(__file__).parent.parent
_LOCK = threading.RLock()
_KERNELS: dict = {}
PYFUNCS: dict = {}   # kernel name -> the plain Python function it was compiled from


def simulator() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


def digest() -> str:
    """The CPU digest (math, compiler, runners) plus every CUDA template source."""
    if "digest" not in _KERNELS:
        from .._compile import digest as cpu_digest

        h = hashlib.sha256(cpu_digest().encode())
        for p in sorted([*_PKG.glob("_cuda/*.py"), _PKG / "_device.py"]):
            h.update(p.read_bytes())
        _KERNELS["digest"] = h.hexdigest()[:10]
    return _KERNELS["digest"]


def copy_template(template, tag: str, bind: dict):
    """The plain function ``template`` with ``bind`` over its globals, renamed."""
    name = f"{template.__name__}__{tag}__{digest()}"
    g = dict(template.__globals__)
    g.update(bind)
    f = types.FunctionType(template.__code__, g, name, template.__defaults__)
    f.__qualname__ = name
    f.__module__ = template.__module__
    return f


def cuda_kernel(template, tag: str, bind: dict):
    """A cacheable ``@cuda.jit`` copy of ``template`` (memoized per process)."""
    name = f"{template.__name__}__{tag}__{digest()}"
    key = (template.__module__, name)
    with _LOCK:
        if key not in _KERNELS:
            from numba import cuda

            f = copy_template(template, tag, bind)
            PYFUNCS[name] = f
            # the simulator has no disk cache (it runs the Python function itself)
            _KERNELS[key] = cuda.jit(f) if simulator() else cuda.jit(cache=True)(f)
        return _KERNELS[key]
