"""CPU kernels (Numba ``@njit(parallel=True)``) and their launcher."""
import threading

_LOCK = threading.Lock()
_SAFE_LAYERS = ("omp", "tbb")
_state = {"layer": None}


def launch(kernel, *args):
    """Call a parallel kernel; serialize calls unless the threading layer is thread-safe.

    Numba's ``workqueue`` layer aborts when two Python threads run parallel kernels at
    once, so until a thread-safe layer (OpenMP, TBB) is known to be active, launches take
    a lock.
    """
    if _state["layer"] in _SAFE_LAYERS:
        return kernel(*args)
    with _LOCK:
        result = kernel(*args)
        try:
            import numba
            _state["layer"] = numba.threading_layer()
        except ValueError:
            pass
        return result
