"""Where inputs live, and moving them: the dispatcher's device half.

``device="auto"`` runs on CUDA when the inputs expose ``__cuda_array_interface__``
(CuPy, PyTorch CUDA tensors, Numba device arrays), on the CPU otherwise.  Results live
where the inputs live: CuPy in, CuPy out; PyTorch in, PyTorch out; other device inputs
give Numba device arrays; host inputs with ``device="cuda"`` give NumPy arrays back.
Reduced values are NumPy scalars (one device-to-host copy per call) unless
``device_result=True`` asks for a 0-d device array of the same kind (no copy, no
synchronization).  Stream and allocator handling: :mod:`fastloss._cuda.runtime`.
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


def _all_numpy(named_arrays: dict) -> bool:
    """Every value is None or exactly a ``numpy.ndarray`` (never on a CUDA device)."""
    for v in named_arrays.values():
        if v is not None and type(v) is not np.ndarray:
            return False
    return True


def resolve(device, named_arrays: dict, fn: str) -> str:
    """``"cpu"`` or ``"cuda"`` for these inputs; mixed devices raise ``ValueError``."""
    if type(device) is str and (device == "auto" or device == "cpu") and _all_numpy(named_arrays):
        return "cpu"   # plain NumPy inputs (the common case): nothing else to look at
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


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def device_kind(named_arrays: dict) -> str:
    """How to return results: ``"host"``, ``"cupy"``, ``"torch"`` or ``"numba"``."""
    if _all_numpy(named_arrays):
        return "host"
    vals = [v for v in named_arrays.values() if v is not None and on_cuda(v)]
    if not vals:
        return "host"
    if all(_is_cupy(v) for v in vals):
        return "cupy"
    if all(_is_torch(v) for v in vals):
        return "torch"
    return "numba"


def to_device(x, dtype, name: str, fn: str, alloc=None, stream=0):
    """A C-contiguous device array of ``dtype`` (zero-copy when already such).

    Device inputs are cast / compacted on the device: by CuPy or PyTorch for their
    arrays, by the strided-gather kernel of :mod:`fastloss._cuda.layout` for Numba device
    arrays (through ``alloc`` on ``stream`` when given)."""
    from numba import cuda

    if on_cuda(x):
        d = as_device_array(x, name, fn)
        if d.dtype == dtype and d.is_c_contiguous():
            return d
        if _is_cupy(x):   # cast / compact on the device, in CuPy's pool
            import cupy
            return cuda.as_cuda_array(cupy.ascontiguousarray(x, dtype=dtype))
        if _is_torch(x):  # the same with PyTorch's allocator
            import torch
            tdt = getattr(torch, np.dtype(dtype).name)   # float32, int64, ...
            return as_device_array(x.detach().to(tdt).contiguous(), name, fn)
        return compact(d, dtype, alloc, stream)
    return cuda.to_device(np.ascontiguousarray(x, dtype=dtype))


def _flat_span(d):
    """A flat (1-D, contiguous) Numba device array over the memory a strided device array
    ``d`` spans, starting at its element [0, ..., 0]; None when its strides are negative or
    not multiples of the item size."""
    item = d.dtype.itemsize
    strides = tuple(int(s) for s in d.strides)
    if any(s < 0 or s % item for s in strides):
        return None, None
    span = 1 + sum((int(n) - 1) * s // item for n, s in zip(d.shape, strides))
    if _is_sim(d):
        from numba import cuda
        a = np.lib.stride_tricks.as_strided(d._ary, shape=(span,), strides=(item,))
        return cuda.simulator.cudadrv.devicearray.FakeCUDAArray(a), [s // item for s in strides]
    from numba.cuda.cudadrv.devicearray import DeviceNDArray
    flat = DeviceNDArray(shape=(span,), strides=(item,), dtype=d.dtype, gpu_data=d.gpu_data)
    return flat, [s // item for s in strides]


def compact(d, dtype, alloc=None, stream=0):
    """A C-contiguous copy of the Numba device array ``d`` in ``dtype``, made on the device
    by the strided-gather kernel (a stride-0 or permuted view included)."""
    from ._cuda import layout, runtime

    if alloc is None:
        alloc = runtime.Allocator("numba", stream)
    shape = tuple(int(n) for n in d.shape)
    if d.size == 0:
        return alloc.view(shape, dtype)
    if d.is_c_contiguous():
        src, strides = layout.contiguous_flat(d), layout.c_strides(shape)
    else:
        src, strides = _flat_span(d)
    if src is None:   # negative strides: through the host (a documented limit)
        from numba import cuda
        return cuda.to_device(np.ascontiguousarray(d.copy_to_host(), dtype=dtype))
    _, view = layout.gather(alloc, stream, src, shape, strides, dtype)
    return view.reshape(shape) if len(shape) != 1 else view


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
    if kind == "torch":
        import torch
        return torch.as_tensor(d, device="cuda")
    return d
