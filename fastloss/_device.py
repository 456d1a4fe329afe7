"""Where inputs live, and moving them: the dispatcher's device half.

``device="auto"`` runs on CUDA when the inputs expose ``__cuda_array_interface__``
(CuPy, PyTorch CUDA tensors, Numba device arrays), on the CPU otherwise.  Results live
where the inputs live: CuPy in, CuPy out (when CuPy imports); other device inputs give
Numba device arrays; host inputs with ``device="cuda"`` give NumPy arrays back.
"""
from __future__ import annotations

import os

import numpy as np

from ._validate import DEVICES, check_choice


def on_cuda(x) -> bool:
    """True when ``x`` lives on a CUDA device (probed safely, never with ``hasattr``)."""
    if x is None or isinstance(x, (np.ndarray, int, float, list, tuple)):
        return False
    if _is_sim(x):
        return True
    try:
        x.__cuda_array_interface__
        return True
    except AttributeError:
        return False
    except Exception:  # e.g. a PyTorch CUDA tensor that requires grad
        return True


def cuda_available() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return True
    try:
        from numba import cuda
        return bool(cuda.is_available())
    except Exception:
        return False


def resolve(device, named_arrays: dict, fn: str) -> str:
    """``"cpu"`` or ``"cuda"`` for these inputs; mixed devices raise ``ValueError``."""
    check_choice(device, DEVICES, "device", fn)
    where = {k: on_cuda(v) for k, v in named_arrays.items() if v is not None}
    gpu = [k for k, v in where.items() if v]
    host = [k for k, v in where.items() if not v]
    if gpu and host:
        raise ValueError(f"{fn}: inputs live on different devices: {', '.join(gpu)} on CUDA, "
                         f"{', '.join(host)} on the host")
    if device == "cpu" and gpu:
        raise ValueError(f"{fn}: device='cpu' but {', '.join(gpu)} live on a CUDA device")
    target = "cuda" if (device == "cuda" or (device == "auto" and gpu)) else "cpu"
    if target == "cuda" and not cuda_available():
        raise RuntimeError(f"{fn}: device='cuda' was requested but no CUDA GPU is available "
                           "(install fastloss[cuda] on a machine with an NVIDIA GPU, or set "
                           "NUMBA_ENABLE_CUDASIM=1 for the simulator)")
    return target


def _is_sim(x) -> bool:
    """A device array of the CUDA simulator (it has no ``__cuda_array_interface__``)."""
    return "cuda.simulator" in type(x).__module__


def as_device_array(x, name: str = "input", fn: str = "fastloss"):
    """A Numba device-array view of a CUDA input (no copy)."""
    if _is_sim(x):
        return x
    from numba import cuda

    try:
        return cuda.as_cuda_array(x)
    except Exception as exc:
        raise TypeError(f"{fn}: {name} cannot be read as a CUDA array ({exc}); "
                        "detach PyTorch tensors that require grad first") from None


def _is_cupy(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def device_kind(named_arrays: dict) -> str:
    """How to return results: ``"host"``, ``"cupy"`` or ``"numba"``."""
    vals = [v for v in named_arrays.values() if v is not None and on_cuda(v)]
    if not vals:
        return "host"
    return "cupy" if all(_is_cupy(v) for v in vals) else "numba"


def to_device(x, dtype, name: str, fn: str):
    """A C-contiguous device array of ``dtype`` (zero-copy when already such)."""
    from numba import cuda

    if on_cuda(x):
        d = as_device_array(x, name, fn)
        if d.dtype == dtype and d.is_c_contiguous():
            return d
        if _is_cupy(x):
            import cupy
            return cuda.as_cuda_array(cupy.ascontiguousarray(x, dtype=dtype))
        return cuda.to_device(np.ascontiguousarray(d.copy_to_host(), dtype=dtype))
    return cuda.to_device(np.ascontiguousarray(x, dtype=dtype))


def shape_dtype(x):
    """Shape and dtype of a host or device input without copying it."""
    if _is_sim(x):
        return tuple(x.shape), np.dtype(x.dtype)
    if on_cuda(x):
        try:
            cai = x.__cuda_array_interface__
        except Exception as exc:
            raise TypeError(f"a CUDA input cannot be read ({exc}); detach it first") from None
        return tuple(cai["shape"]), np.dtype(cai["typestr"])
    return None


def wrap(d, kind: str, shape):
    """A device result reshaped to ``shape`` and returned as the inputs' kind."""
    if kind == "host":
        return d.copy_to_host().reshape(shape)
    d = d.reshape(shape) if tuple(d.shape) != tuple(shape) else d
    if kind == "cupy":
        import cupy
        return cupy.asarray(d)
    return d
