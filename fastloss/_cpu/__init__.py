"""CPU kernels (Numba ``@njit(parallel=True)``), their launcher and the threading policy.

Importing this package (on the first CPU kernel build, never at ``import fastloss``)
prepares Numba's threading layer before Numba starts its pool (see docs/threads.md):

* **TBB made loadable.** pip's ``tbb`` wheel installs ``libtbb.so.12`` in ``<prefix>/lib``,
  where Numba's loader does not look, so Numba falls back to GNU OpenMP, whose idle
  threads spin between calls and whose children abort after ``fork()``. When the user has
  not chosen a layer, the library is loaded here from the ``tbb`` distribution's files
  (``RTLD_GLOBAL``), and Numba's default priority (tbb, omp, workqueue) then picks TBB:
  fork-safe, safe for concurrent Python threads, and its idle workers sleep.
* **Without TBB**, when OpenMP will be used and neither the user nor another library set its
  wait policy, ``OMP_WAIT_POLICY=PASSIVE`` is set before ``libgomp`` loads; a process
  forked from one that started the OpenMP pool runs serial kernels (GNU OpenMP cannot run
  a parallel region in a forked child; Numba would terminate it).

:func:`launch` runs a kernel parallel or as its serial twin (same source compiled with
``parallel=False``: below the per-family size thresholds ``PARALLEL_MIN``, with one
thread, in a forked OpenMP child), with the requested thread count, and under a lock on
the ``workqueue`` layer (which aborts when two Python threads run parallel kernels at once).
"""
import ctypes
import os
import sys
import threading
import types

from .. import _threads

# Work (elements) from which a family's parallel kernel is used; below, the serial twin.
# Measured per family (docs/threads.md; benchmarks/threads_contention.py thresholds).
# FASTLOSS_PARALLEL_MIN overrides every family (0: always parallel).
PARALLEL_MIN = {"elementwise": 1 << 16, "rowwise": 1 << 14, "ctc": 1 << 12}
if os.environ.get("FASTLOSS_PARALLEL_MIN"):
    PARALLEL_MIN = dict.fromkeys(PARALLEL_MIN, int(os.environ["FASTLOSS_PARALLEL_MIN"]))

_LOCK = threading.Lock()
_TWIN_LOCK = threading.Lock()
_SAFE_LAYERS = ("omp", "tbb")
_TWINS: dict = {}
_state = {"layer": None, "serial_only": False, "tbb": None,
          "wait_policy_set": False}


# --------------------------------------------------------------- the threading layer
def _tbb_paths():
    """Candidate paths of the TBB runtime from the ``tbb`` distribution's file list."""
    names = {"linux": ("libtbb.so.12",), "darwin": ("libtbb.12.dylib",),
             "win32": ("tbb12.dll",)}.get(sys.platform, ())
    try:
        from importlib import metadata
        dist = metadata.distribution("tbb")
    except Exception:
        return []
    return [str(dist.locate_file(f)) for f in (dist.files or ()) if f.name in names]


def _load_tbb() -> bool:
    """Load a TBB runtime Numba can use (interface >= 12060); True when one is loaded."""
    lib = None
    name = {"linux": "libtbb.so.12", "darwin": "libtbb.12.dylib"}.get(sys.platform,
                                                                       "tbb12.dll")
    try:
        lib = ctypes.CDLL(name)  # already on the loader path: Numba finds it too
    except OSError:
        for p in _tbb_paths():
            try:
                if sys.platform == "win32":
                    os.add_dll_directory(os.path.dirname(p))
                lib = ctypes.CDLL(os.path.abspath(p), mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue
    if lib is None:
        return False
    try:
        f = lib.TBB_runtime_interface_version
        f.restype = ctypes.c_int
        return f() >= 12060
    except AttributeError:
        return False


def _gomp_loaded() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        ctypes.CDLL("libgomp.so.1", mode=getattr(os, "RTLD_NOLOAD", 4))
        return True
    except OSError:
        return False


def _prepare_layer():
    """Before Numba's pool starts: make TBB loadable, or make OpenMP's idle threads yield."""
    import numba
    from numba.np.ufunc import parallel as P

    if P._is_initialized:     # the user's own code started Numba's pool: nothing to choose
        return
    layer = str(numba.config.THREADING_LAYER).lower()
    tbb = False
    if layer not in ("omp", "workqueue"):
        tbb = _load_tbb()
    _state["tbb"] = tbb
    if (not tbb and layer != "workqueue" and "OMP_WAIT_POLICY" not in os.environ
            and not _gomp_loaded()):
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        _state["wait_policy_set"] = True


def _after_fork_in_child():
    global _LOCK
    _LOCK = threading.Lock()
    if _threads.threading_layer() == "omp":
        _state["serial_only"] = True


_prepare_layer()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------- kernels
def serial(kernel):
    """The serial twin of a parallel kernel: same source and globals, ``parallel=False``,
    named ``<name>__serial`` (its own on-disk cache entry). Non-parallel kernels are their
    own twin."""
    tw = _TWINS.get(kernel)
    if tw is not None:
        return tw
    with _TWIN_LOCK:
        tw = _TWINS.get(kernel)
        if tw is None:
            opts = dict(kernel.targetoptions)
            if not opts.get("parallel"):
                tw = kernel
            else:
                from numba import njit

                f = kernel.py_func
                name = f.__name__ + "__serial"
                nf = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__,
                                        f.__closure__)
                nf.__qualname__ = name
                nf.__module__ = f.__module__
                opts.pop("nopython", None)
                opts["parallel"] = False
                cache = type(getattr(kernel, "_cache", None)).__name__ != "NullCache"
                from .._compile import tolerant_cache  # a full cache costs compile time only
                tw = tolerant_cache(njit(cache=cache, **opts)(nf))
                if getattr(kernel, "_fastloss_wide", False):
                    from .wide import compile_wide
                    compile_wide(tw)
            _TWINS[kernel] = tw
    return tw


def want_parallel(family: str, work: int, n_threads=None) -> bool:
    """Whether a call of ``work`` elements runs the parallel kernel."""
    if work < PARALLEL_MIN[family] or n_threads == 1 or _state["serial_only"]:
        return False
    if n_threads is None:
        from numba.np.ufunc import parallel as P
        if P._is_initialized:
            return P._get_num_threads() > 1   # numba.set_num_threads(1) on this thread
    return True


def _call(kernel, args, n_threads):
    if n_threads is None:
        return kernel(*args)
    from numba.np.ufunc import parallel as P
    if not P._is_initialized:
        P._launch_threads()
    old = P._get_num_threads()
    P._set_num_threads(n_threads)
    try:
        return kernel(*args)
    finally:
        P._set_num_threads(old)


def launch(kernel, *args, parallel=True, n_threads=None):
    """Run ``kernel`` (parallel, with ``n_threads`` threads or Numba's count when None) or
    its serial twin; serialize parallel calls unless the threading layer is thread-safe."""
    if not parallel or n_threads == 1 or _state["serial_only"]:
        return serial(kernel)(*args)
    if _state["layer"] in _SAFE_LAYERS:
        return _call(kernel, args, n_threads)
    with _LOCK:
        result = _call(kernel, args, n_threads)
        _state["layer"] = _threads.threading_layer()
        return result
