"""Layout changes on the device: broadcasting and axis permutation by a strided gather.

``gather_kernel(src, dst, shape, strides)`` writes ``dst[i] = src[Σ_d idx_d · strides[d]]``
for the C-order multi-index ``idx`` of ``i`` in ``shape`` (grid-stride loop, one element per
thread and step).  ``src`` and ``dst`` are 1-D; the source's dtype is cast to the
destination's on the fly.  A stride of 0 broadcasts a dimension, permuted strides move an
axis.  Used by the runners for inputs living on the device whose layout differs from the
kernels' (a ``sample_weight`` or a target of another shape that broadcasts; a class axis
that is not last for Numba device arrays, and the gradient moved back): no host copy.

The source is 1-D: a C-contiguous array (``contiguous_flat``), or the flat span of a
non-contiguous Numba device array with its own strides, which is how
:func:`fastloss._device.compact` compacts such an array on the device.
"""
from __future__ import annotations

import numpy as np
from numba import cuda  # module global: the simulator swaps `cuda` here

from . import runtime

TPB = runtime.TPB


def gather_template(src, dst, shape, strides):
    i = cuda.grid(1)
    step = cuda.gridsize(1)
    nd = shape.shape[0]
    while i < dst.shape[0]:
        r = i
        off = 0
        for j in range(nd):
            d = nd - 1 - j
            q = r // shape[d]
            off += (r - q * shape[d]) * strides[d]
            r = q
        dst[i] = src[off]
        i += step


gather_kernel = cuda.jit(gather_template) if runtime.SIM else cuda.jit(cache=True)(
    gather_template)


def c_strides(shape) -> list:
    """Element strides of a C-contiguous array of ``shape``."""
    st = [0] * len(shape)
    acc = 1
    for d in range(len(shape) - 1, -1, -1):
        st[d] = acc
        acc *= int(shape[d])
    return st


def broadcast_strides(src_shape, dst_shape) -> list:
    """Strides into a C-contiguous ``src_shape`` array that broadcast it to ``dst_shape``
    (the shapes are known to broadcast)."""
    src_shape = tuple(src_shape)
    st = c_strides(src_shape)
    off = len(dst_shape) - len(src_shape)
    out = [0] * len(dst_shape)
    for d in range(len(src_shape)):
        if src_shape[d] != 1:
            out[off + d] = st[d]
    return out


def args_for(src, dst, shape, strides):
    """The kernel's argument tuple (also what :mod:`fastloss._cuda.ptx` types)."""
    return (src, dst, shape, strides)


def gather(alloc, stream, src, dst_shape, strides, dtype):
    """A new C-contiguous array of ``dst_shape`` and ``dtype`` gathered from the flat
    contiguous device array ``src``; returns ``(native, flat view)``."""
    n = int(np.prod(dst_shape)) if len(dst_shape) else 1
    native, view = alloc.empty(max(n, 1), dtype)
    if n == 0:
        return native[:0], view[:0]
    shp = np.array(list(dst_shape) or [1], np.int64)
    sts = np.array(list(strides) or [0], np.int64)
    blocks = runtime.blocks_elementwise(n)
    runtime.launch(gather_kernel, blocks, TPB, stream,
                   *args_for(src, view, alloc.to_device(shp), alloc.to_device(sts)))
    return native, view


def contiguous_flat(d):
    """A flat view of a C-contiguous Numba device array (0-d included)."""
    if d.ndim == 0 or d.size == 1:
        return d.reshape(1)
    return d.reshape(d.size)


def broadcast(alloc, stream, src, src_shape, dst_shape, dtype):
    """``src`` (flat, C-contiguous, ``src_shape``) broadcast to ``dst_shape``."""
    return gather(alloc, stream, src, tuple(dst_shape),
                  broadcast_strides(src_shape, dst_shape), dtype)


def permute(alloc, stream, src, src_shape, perm, dtype):
    """``src`` (flat, C-contiguous, ``src_shape``) with its axes in the order ``perm``
    (``np.transpose`` semantics), as a new C-contiguous array."""
    st = c_strides(src_shape)
    return gather(alloc, stream, src, tuple(int(src_shape[p]) for p in perm),
                  [st[p] for p in perm], dtype)


def axis_last_perm(ndim, ax):
    return [d for d in range(ndim) if d != ax] + [ax]


def axis_back_perm(ndim, ax):
    """The inverse of :func:`axis_last_perm`."""
    fwd = axis_last_perm(ndim, ax)
    inv = [0] * ndim
    for j, d in enumerate(fwd):
        inv[d] = j
    return inv
