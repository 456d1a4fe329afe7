"""512-bit vectors for fastloss's CPU kernels on AVX-512 machines, and only for them.

LLVM's cost model prefers 256-bit vectors on most AVX-512 CPUs (the ``prefer-256-bit``
tuning of the Intel targets), so Numba's loops use ``ymm`` registers even where ``zmm``
exist.  For the kernels whose per-element work is a polynomial exp/log (sigmoid BCE,
logistic, log-cosh, focal, Poisson, softmax), twice the lanes means about half the
instructions per element.  The LLVM function attribute ``"prefer-vector-width"="512"``
changes that choice per function.  Numba has no option for it, so while one of fastloss's
kernels compiles (:func:`compile_wide` wraps its dispatcher's ``compile``), every LLVM
function Numba adds to a code library in that thread -- the kernel, the parallel loop body
Numba outlines from its ``prange``, and any helper compiled with them -- gets the
attribute; other Numba code in the process is compiled as before.

Which kernels: the elementwise kernels of the losses whose math calls ``exp``/``log``
(:func:`transcendental`).  Measured on a 2-core Intel Xeon (AVX-512, LLVM target
rocketlake), float32 at 2·10⁷ elements, triad 7.9 ms: sigmoid BCE value + gradient 47 ms
at 256 bits against 29 ms at 512, value only 33 against 15 ms, huber value + gradient 13.8
against 10.6 ms, but squared error value only 5.7 against 7.2 ms: the polynomial losses,
near the memory bandwidth either way, come out mixed and keep LLVM's choice.  So do
the fold of :mod:`fastloss._cpu.fold`, and the row-wise and CTC kernels: those sum each
row in a vectorized reduction whose grouping follows the vector width of the kernel, and
compiled for 512 bits the parallel kernel and its serial twin grouped their row sums
differently (gradients 1 ulp apart).  The elementwise totals have one order whatever the
width inside one kernel (:mod:`fastloss._cpu.fold`), and a loss's value-only, gradient
and Hessian kernels, parallel and serial, are all compiled with the same width.

Chosen by :func:`enabled`: on when the host CPU has AVX-512F and no ``NUMBA_CPU_NAME`` /
``NUMBA_CPU_FEATURES`` target was set; ``FASTLOSS_VECTOR_WIDTH=256`` turns it off,
``FASTLOSS_VECTOR_WIDTH=512`` on (also with a set target).  The choice is part of every
kernel's name (``__w512``), so cached kernels of one choice are never loaded for the other.
"""
from __future__ import annotations

import os
import threading

_STATE = threading.local()
_LOCK = threading.Lock()
_DONE: dict = {}
ATTR = '"prefer-vector-width"="512"'


PRIMS = frozenset(("exp", "expn", "log", "log1p", "log1pu"))


def transcendental(fn, seen=None) -> bool:
    """Whether the plain-Python math function ``fn`` calls exp/log (directly or through the
    helpers of its module)."""
    seen = set() if seen is None else seen
    if fn in seen:
        return False
    seen.add(fn)
    g = fn.__globals__
    for name in fn.__code__.co_names:
        if name in PRIMS:
            return True
        h = g.get(name)
        if callable(h) and getattr(h, "__code__", None) is not None \
                and getattr(h, "__module__", None) == fn.__module__ and transcendental(h, seen):
            return True
    return False


def enabled() -> bool:
    """Whether fastloss's CPU kernels are compiled for 512-bit vectors (module docstring)."""
    got = _DONE.get("enabled")
    if got is None:
        got = _DONE["enabled"] = _decide(os.environ.get("FASTLOSS_VECTOR_WIDTH", "").strip())
    return got


def _decide(env: str) -> bool:
    if env == "256":
        return False
    if env == "512":
        return True
    from numba.core import config
    if getattr(config, "CPU_NAME", None) or getattr(config, "CPU_FEATURES", None):
        return False          # a target chosen for portability (e.g. a shared cache)
    import llvmlite.binding as ll
    try:
        return bool(ll.get_host_cpu_features().get("avx512f", False))
    except RuntimeError:      # pragma: no cover - features unknown on this host
        return False


def compile_wide(dispatcher):
    """Make ``dispatcher``'s compilations add the 512-bit attribute (see the module
    docstring); returns it."""
    _install()
    plain = dispatcher.compile

    def compile(sig):
        _STATE.depth = getattr(_STATE, "depth", 0) + 1
        try:
            return plain(sig)
        finally:
            _STATE.depth -= 1

    dispatcher.compile = compile
    dispatcher._fastloss_wide = True
    return dispatcher


def _install():
    """Wrap Numba's ``CPUCodeLibrary.add_ir_module`` once: inside a wide compile (this
    thread only) each function the module defines gets the attribute first."""
    with _LOCK:
        if _DONE.get("installed"):
            return
        import llvmlite.ir as lir
        from numba.core import codegen

        class WideAttributes(lir.values.FunctionAttributes):
            # llvmlite prints a function's attributes only when the set is non-empty
            def __bool__(self):
                return True

            def _to_list(self, ret_type):
                return super()._to_list(ret_type) + [ATTR]

        plain = codegen.CPUCodeLibrary.add_ir_module

        def add_ir_module(self, ir_module):
            if getattr(_STATE, "depth", 0):
                for f in ir_module.functions:
                    if f.blocks and not isinstance(f.attributes, WideAttributes):
                        old, new = f.attributes, WideAttributes()
                        for a in old:
                            new.add(a)
                        new.alignstack = old.alignstack
                        new.personality = old.personality
                        f.attributes = new
            return plain(self, ir_module)

        codegen.CPUCodeLibrary.add_ir_module = add_ir_module
        _DONE["installed"] = True
