"""How many threads fastloss's CPU kernels use; the threadpoolctl controller.

Precedence for one call (see docs/threads.md):

1. the loss's ``n_threads=`` argument;
2. ``with fastloss.threads(n):`` — for calls made by the current Python thread;
3. ``fastloss.set_num_threads(n)`` — process-wide; what threadpoolctl's limits set;
4. otherwise Numba's thread count of the calling thread (``numba.set_num_threads`` is
   respected), which starts as the size of Numba's pool (``NUMBA_NUM_THREADS``, by default
   the number of CPUs this process may run on).

Counts follow scikit-learn's ``n_threads``: an integer >= 1 is a number of threads (capped
at the size of Numba's pool), a negative integer counts back from the current default
(``-1``: all of them, ``-2``: all but one, never fewer than one), ``0`` is an error.

Nothing here imports Numba or threadpoolctl when fastloss is imported.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading

import numpy as np

__all__ = ["set_num_threads", "get_num_threads", "threads"]

_local = threading.local()
_state = {"default": None,     # process-wide count (int) or None
          "tpc_base": None}    # threadpoolctl bookkeeping (see _set_from_threadpoolctl)


def pool_size() -> int:
    """The size of Numba's thread pool, without importing Numba when it is not loaded."""
    nb = sys.modules.get("numba")
    if nb is not None:
        return int(nb.config.NUMBA_NUM_THREADS)
    env = os.environ.get("NUMBA_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            pass
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _numba_count() -> int:
    """Numba's thread count for the calling thread (pool size while Numba's pool has not
    started: asking Numba would start it)."""
    nb = sys.modules.get("numba")
    if nb is None:
        return pool_size()
    from numba.np.ufunc import parallel as P
    if not P._is_initialized:
        return pool_size()
    return int(nb.get_num_threads())


def _check(n, fn: str, name: str = "n_threads") -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an integer or None, got {n!r}")
    n = int(n)
    if n == 0:
        raise ValueError(f"{fn}: {name} must be >= 1, or negative to count back from the "
                         f"default number of threads (-1: all), or None; got 0")
    return n


def _from_count(n: int, base: int) -> int:
    size = pool_size()
    if n < 0:
        n = base + 1 + n
    return max(1, min(n, size))


def default_threads() -> int:
    """The count a call without ``n_threads`` uses, from the calling thread."""
    n = getattr(_local, "n", None)
    if n is None:
        n = _state["default"]
    return _numba_count() if n is None else n


def resolve(n_threads, fn: str):
    """Validated thread count of one call: an int, or None for "Numba's own count".

    Called by the runners before any kernel; cheap when nothing is set (the usual case).
    """
    if n_threads is None:
        n = getattr(_local, "n", None)
        return _state["default"] if n is None else n
    n = _check(n_threads, fn)
    return _from_count(n, default_threads() if n < 0 else 0)


def set_num_threads(n) -> None:
    """Set the number of threads fastloss's CPU kernels use by default, process-wide.

    ``n``: an integer >= 1 (capped at the size of Numba's pool), a negative integer
    (``-1``: every thread of the pool, ``-2``: all but one), or ``None`` to return to the
    default (Numba's thread count of the calling thread). A loss's ``n_threads=`` argument
    and :func:`threads` take precedence. This is also what threadpoolctl's limits set.

    Returns
    -------
    None
    """
    if n is None:
        _state["default"] = None
        _state["tpc_base"] = None
        return
    n = _check(n, "fastloss.set_num_threads", "n")
    _state["default"] = _from_count(n, pool_size())
    _state["tpc_base"] = None


def get_num_threads() -> int:
    """The number of threads a loss called now from this thread would use by default.

    Returns
    -------
    int
        The thread count.
    """
    return default_threads()


@contextlib.contextmanager
def threads(n):
    """Context manager: calls made by the current Python thread inside the block use ``n``
    threads (same values as :func:`set_num_threads`; ``None`` changes nothing).

    Thread-local, like ``numba.set_num_threads``: other Python threads keep their count.
    A loss's ``n_threads=`` argument still takes precedence.

    Returns
    -------
    context manager
        Restores the previous count of the calling thread on exit.
    """
    prev = getattr(_local, "n", None)
    if n is not None:
        n = _check(n, "fastloss.threads", "n")
        _local.n = _from_count(n, default_threads())
    try:
        yield
    finally:
        _local.n = prev


# ----------------------------------------------------------------------- threadpoolctl
_registered = []


def _set_from_threadpoolctl(n) -> None:
    """threadpoolctl sets a limit, then restores the count it read before: keep "no
    explicit default" (None) when the restored count is the one it read from None."""
    n = max(1, min(int(n), pool_size()))
    if _state["default"] is None:
        base = _numba_count()
        if n == base:
            return
        _state["tpc_base"] = base
        _state["default"] = n
    elif _state["tpc_base"] == n:
        _state["default"] = None
        _state["tpc_base"] = None
    else:
        _state["default"] = n


def _controller_class():
    from threadpoolctl import LibController

    class FastlossController(LibController):
        """fastloss's CPU thread pool (Numba's) as a threadpoolctl library.

        threadpoolctl finds libraries among the loaded shared objects; fastloss ships none,
        so the controller is attached to NumPy's core extension (always loaded with
        fastloss) and reports fastloss's package directory as its ``filepath``.
        """
        user_api = "fastloss"
        internal_api = "fastloss"
        filename_prefixes = ("_multiarray_umath",)

        def set_additional_attributes(self):
            self.filepath = os.path.dirname(os.path.abspath(__file__))
            self.threading_layer = threading_layer()

        def get_num_threads(self):
            return default_threads()

        def set_num_threads(self, num_threads):
            _set_from_threadpoolctl(num_threads)

        def get_version(self):
            return sys.modules["fastloss"].__version__ if "fastloss" in sys.modules else None

    return FastlossController


def threading_layer():
    """Numba's threading layer once its pool has started, else None."""
    if "numba" not in sys.modules:
        return None
    from numba.np.ufunc import parallel as P
    if not P._is_initialized:
        return None
    try:
        return P.threading_layer()
    except ValueError:
        return None


def register_threadpoolctl() -> bool:
    """Make fastloss's pool visible to threadpoolctl (imports it). Idempotent."""
    if _registered:
        return True
    import threadpoolctl
    if not hasattr(threadpoolctl, "register"):  # threadpoolctl < 3.5
        return False
    threadpoolctl.register(_controller_class())
    _registered.append(True)
    return True


class _PostImportHook:
    """A ``sys.meta_path`` entry that registers fastloss with threadpoolctl right after
    threadpoolctl is imported (so ``import fastloss`` never imports it)."""

    def find_spec(self, name, path=None, target=None):
        if name != "threadpoolctl":
            return None
        import importlib.util
        self._remove()
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader

        class _Loader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                try:
                    register_threadpoolctl()
                except Exception:  # never break the user's import
                    pass

            def __getattr__(self, item):
                return getattr(loader, item)

        spec.loader = _Loader()
        return spec

    def _remove(self):
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass


def install_threadpoolctl_hook() -> None:
    """At ``import fastloss``: register now if threadpoolctl is loaded, else on its import."""
    if "threadpoolctl" in sys.modules:
        try:
            register_threadpoolctl()
        except Exception:
            pass
        return
    if not any(isinstance(f, _PostImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportHook())
