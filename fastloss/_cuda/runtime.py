"""Launch configuration, streams and allocation of the CUDA kernels.

Launch configuration (from the device's properties, read once per device):

* threads per block ``TPB`` = 256 on a GPU (8 in the simulator, whose threads are Python
  threads); every kernel uses it, a power of two for the shared-memory tree reductions.
* **elementwise** (grid-stride loop): ``min(ceil(n / TPB), waves · SMs · ⌊max threads
  per SM / TPB⌋)`` blocks with ``waves = 4``: enough resident blocks to fill every SM
  several times over (latency hiding, tail balance), and few enough that the per-block
  partial sums stay a small second pass.
* **row-wise** (one block per row, rows ``i, i + grid, ...``): ``min(N, waves · SMs ·
  ⌊max threads per SM / TPB⌋)`` blocks, the same rule with rows for elements.
* **CTC**: one block per frame (log-sum-exp, gradient) and one block per sequence
  (α/β recursion): ``N·T`` and ``N`` blocks, bounded by the grid limit 2³¹ − 1.
* **final reductions**: one block folds the partials in a fixed order.

The result of a reduction depends on the number of blocks, hence on the device (its SM
count) but not on the run: the same input on the same GPU gives the same bits.

Streams: ``stream=`` takes a Numba stream, a CuPy or PyTorch stream, or a raw
``cudaStream_t`` handle (int); by default the inputs' current stream is used (CuPy's
``cupy.cuda.get_current_stream()``, PyTorch's ``torch.cuda.current_stream()``), and
Numba's default stream otherwise.  Every kernel, allocation and copy of one call is
queued on that stream.

Allocation: outputs and scratch arrays of a call on CuPy inputs come from CuPy's memory
pool (``cupy.empty``), on PyTorch inputs from PyTorch's caching allocator
(``torch.empty(device=...)``), otherwise from Numba (``cuda.device_array``); users who
want every Numba allocation to go through CuPy's pool can also install
:class:`CuPyEMMPlugin` with ``numba.cuda.set_memory_manager``.
"""
from __future__ import annotations

import math
import os

import numpy as np

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
TPB = 8 if SIM else 256
WAVES = 4
GRID_MAX = 2 ** 31 - 1
_PROPS: dict = {}


def device_props() -> tuple:
    """(SM count, max threads per SM) of the current device (memoized per device id)."""
    from numba import cuda

    if SIM:
        return 1, 2 * TPB
    dev = cuda.get_current_device()
    key = dev.id
    p = _PROPS.get(key)
    if p is None:
        p = _PROPS[key] = (int(dev.MULTIPROCESSOR_COUNT),
                           int(dev.MAX_THREADS_PER_MULTI_PROCESSOR))
    return p


def resident_blocks(props=None, tpb=TPB) -> int:
    """WAVES × the blocks of ``tpb`` threads that the device keeps resident at once."""
    sms, per_sm = props if props is not None else device_props()
    return max(1, WAVES * sms * max(1, per_sm // tpb))


def blocks_elementwise(n: int, props=None) -> int:
    return max(1, min(math.ceil(n / TPB), resident_blocks(props)))


def blocks_rowwise(rows: int, props=None) -> int:
    return max(1, min(rows, resident_blocks(props), GRID_MAX))


# ------------------------------------------------------------------------------ streams
def _external(handle: int):
    from numba import cuda

    if SIM:
        return cuda.stream()
    return cuda.external_stream(int(handle)) if handle else cuda.default_stream()


def resolve_stream(stream, kind: str, fn: str = "fastloss"):
    """A Numba stream object for this call (see the module docstring)."""
    from numba import cuda

    if stream is None:
        if kind == "cupy":
            import cupy
            return _external(cupy.cuda.get_current_stream().ptr)
        if kind == "torch":
            import torch
            return _external(torch.cuda.current_stream().cuda_stream)
        return 0 if SIM else cuda.default_stream()
    if isinstance(stream, bool):
        raise TypeError(f"{fn}: stream must be a CUDA stream or a stream handle, got {stream!r}")
    if isinstance(stream, (int, np.integer)):
        return _external(int(stream))
    mod = type(stream).__module__.split(".")[0]
    if mod == "cupy" and hasattr(stream, "ptr"):
        return _external(stream.ptr)
    if mod == "torch" and hasattr(stream, "cuda_stream"):
        return _external(stream.cuda_stream)
    if hasattr(stream, "handle") or "numba" in type(stream).__module__:
        return stream   # a Numba stream (or the simulator's)
    raise TypeError(f"{fn}: stream must be a Numba, CuPy or PyTorch stream, or an int "
                    f"handle, got {type(stream).__name__}")


def check_device_result(v, fn: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{fn}: device_result must be a bool, got {v!r}")
    return bool(v)


def launch(kernel, grid, block, stream, *args):
    """``kernel[grid, block, stream](*args)`` (the simulator takes no stream 0)."""
    if SIM or stream == 0:
        return kernel[grid, block](*args)
    return kernel[grid, block, stream](*args)


# --------------------------------------------------------------------------- allocation
class Allocator:
    """Allocates device arrays for one call through the inputs' library.

    ``empty`` returns ``(native, view)``: the object handed back to the caller (a CuPy
    array, a PyTorch tensor or a Numba device array) and a Numba device-array view of
    the same memory for the kernels.
    """

    def __init__(self, kind: str, stream, device=None):
        self.kind = kind
        self.stream = stream
        self.device = device  # torch.device of the inputs

    def empty(self, shape, dtype):
        from numba import cuda

        dtype = np.dtype(dtype)
        if SIM:
            a = cuda.device_array(shape, dtype)
            return a, a
        if self.kind == "cupy":
            import cupy
            a = cupy.empty(shape, dtype)
            return a, cuda.as_cuda_array(a)
        if self.kind == "torch":
            import torch
            a = torch.empty(shape, dtype=_TORCH_DTYPES[dtype.str](torch),
                            device=self.device or "cuda")
            return a, cuda.as_cuda_array(a)
        if self.stream == 0:
            a = cuda.device_array(shape, dtype)
        else:
            a = cuda.device_array(shape, dtype, stream=self.stream)
        return a, a

    def view(self, shape, dtype):
        return self.empty(shape, dtype)[1]

    def to_device(self, h):
        """A device copy of the host array ``h``, queued on the call's stream."""
        from numba import cuda

        h = np.ascontiguousarray(h)
        if SIM or self.stream == 0:
            return cuda.to_device(h)
        return cuda.to_device(h, stream=self.stream)


_TORCH_DTYPES = {"<f4": lambda t: t.float32, "<f8": lambda t: t.float64,
                 "<i4": lambda t: t.int32, "<i8": lambda t: t.int64, "|u1": lambda t: t.uint8}


def copy_to_host(d, stream):
    """``d`` copied to a new host array (waits for the stream)."""
    if SIM or stream == 0:
        return d.copy_to_host()
    h = d.copy_to_host(stream=stream)
    stream.synchronize()
    return h


def copy_on_device(dst, src, stream):
    """``dst[...] = src`` between device arrays, queued on ``stream`` (no host copy)."""
    if SIM or stream == 0:
        dst.copy_to_device(src)
    else:
        dst.copy_to_device(src, stream=stream)


def torch_device(named_arrays):
    for v in named_arrays.values():
        if v is not None and type(v).__module__.split(".")[0] == "torch":
            return v.device
    return None


class CuPyEMMPlugin:
    """A Numba External Memory Management plugin drawing from CuPy's memory pool.

    Install it process-wide (before any Numba allocation) with
    ``numba.cuda.set_memory_manager(fastloss._cuda.runtime.CuPyEMMPlugin.make())``.
    fastloss never installs it itself: the memory manager is global to the process.
    """

    @staticmethod
    def make():
        import cupy
        from numba import cuda

        class _Plugin(cuda.HostOnlyCUDAMemoryManager):
            def initialize(self):
                pass

            def memalloc(self, size):
                import ctypes

                mem = cupy.cuda.alloc(size)   # a cupy MemoryPointer from the current pool
                ptr = ctypes.c_void_p(mem.ptr)
                keep = [mem]

                def finalizer():
                    keep.clear()   # hands the block back to CuPy's pool

                return cuda.MemoryPointer(self.context, ptr, size, finalizer=finalizer)

            def get_memory_info(self):
                free, total = cupy.cuda.runtime.memGetInfo()
                return cuda.MemoryInfo(free=free, total=total)

            def get_ipc_handle(self, memory):
                raise NotImplementedError("IPC handles of CuPy-pool memory are not supported")

            @property
            def interface_version(self):
                return 1

        return _Plugin
