"""CUDA kernel shape for elementwise losses: grid-stride loop, block reduction.

``ew_template`` is a template: :func:`fastloss._cuda.build.cuda_kernel` copies it with the
globals ``loss_fn`` and ``check_fn`` bound to one loss's device math, under a stable name
of its own (cacheable across processes).  Which inputs and outputs exist is a runtime
flag, not a compile-time variant: the branch is uniform over the whole grid (no
divergence), and one kernel per loss and dtype keeps compile time, cache size and the CI
PTX check small.

Each block reduces its threads' float64 partial sums in shared memory (a fixed tree) and
writes one partial; :data:`fastloss._cuda.reduce.finish_kernel` folds the partials on the
device in a fixed order, so the value is deterministic for a given size and device (no
float atomics) and never goes through the host.  With device weights (``use_wtot``) the
gradient scale of ``"mean"`` is 1 / Σw read from ``wtot[0]``, computed beforehand on the
device by :data:`fastloss._cuda.reduce.sum_kernel`.
"""
import math

import numpy as np
from numba import cuda, float64  # module globals: the simulator swaps `cuda` here

from . import runtime
from .build import cuda_kernel
from .reduce import finish_kernel, sum_kernel, tree_sum

TPB = runtime.TPB
loss_fn = None    # bound per loss: (x, y, a, b, c) -> (value, grad, hess)
check_fn = None   # bound per loss: (x, y, a, b, c) -> bool, False for an invalid label
FT = None         # bound: numba.float32 or numba.float64 (arithmetic stays in the dtype)


def ew_template(x, y, w, ws, a, b, c, gscale, wtot, use_wtot, has_w, want_l, want_g, want_h,
                nan_bad, out_l, out_g, out_h, part):
    sh = cuda.shared.array((2, TPB), float64)  # Σ w·ℓ, invalid-label count
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    n = x.shape[0]
    gs = gscale
    if use_wtot:
        tot = wtot[0]
        gs = FT(1.0 / tot) if tot > 0 else FT(math.nan)
    s = 0.0
    bad = 0.0
    while i < n:
        xi = x[i]
        yi = y[i]
        v, g, h = loss_fn(xi, yi, a, b, c)
        wi = ws
        if has_w:
            wi = w[i] * ws
        # weight 0: no contribution, also from an infinite (overflowed) loss; NaN stays
        v = FT(0.0) if (wi == 0 and v == v) else v * wi
        g = FT(0.0) if (wi == 0 and g == g) else g * (wi * gs)
        h = FT(0.0) if (wi == 0 and h == h) else h * (wi * gs)
        if not check_fn(xi, yi, a, b, c):
            bad += 1.0
            if nan_bad:
                v = FT(math.nan)
                g = FT(math.nan)
                h = FT(math.nan)
        if want_l:
            out_l[i] = v
        if want_g:
            out_g[i] = g
        if want_h:
            out_h[i] = h
        s += v
        i += stride
    sh[0, t] = s
    sh[1, t] = bad
    tree_sum(sh, t)
    if t == 0:
        part[0, cuda.blockIdx.x] = sh[0, 0]
        part[1, cuda.blockIdx.x] = sh[1, 0]


def ew3_template(x, y, z, w, ws, a, b, c, gscale, wtot, use_wtot, has_w, want_l, want_g,
                 want_h, want_gy, want_gz, nan_bad, out_l, out_g, out_h, out_gy, out_gz, part):
    """:func:`ew_template` for the losses of three arrays: ``loss_fn(x, y, z, a, b, c) ->
    (value, d/dx, d²/dx², d/dy, d/dz)``, the last two stored when wanted."""
    sh = cuda.shared.array((2, TPB), float64)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    n = x.shape[0]
    gs = gscale
    if use_wtot:
        tot = wtot[0]
        gs = FT(1.0 / tot) if tot > 0 else FT(math.nan)
    s = 0.0
    bad = 0.0
    while i < n:
        xi = x[i]
        yi = y[i]
        zi = z[i]
        v, g, h, gy, gz = loss_fn(xi, yi, zi, a, b, c)
        wi = ws
        if has_w:
            wi = w[i] * ws
        sc = wi * gs
        v = FT(0.0) if (wi == 0 and v == v) else v * wi
        g = FT(0.0) if (wi == 0 and g == g) else g * sc
        h = FT(0.0) if (wi == 0 and h == h) else h * sc
        gy = FT(0.0) if (wi == 0 and gy == gy) else gy * sc
        gz = FT(0.0) if (wi == 0 and gz == gz) else gz * sc
        if not check_fn(xi, yi, zi, a, b, c):
            bad += 1.0
            if nan_bad:
                v = FT(math.nan)
                g = FT(math.nan)
                h = FT(math.nan)
                gy = FT(math.nan)
                gz = FT(math.nan)
        if want_l:
            out_l[i] = v
        if want_g:
            out_g[i] = g
        if want_h:
            out_h[i] = h
        if want_gy:
            out_gy[i] = gy
        if want_gz:
            out_gz[i] = gz
        s += v
        i += stride
    sh[0, t] = s
    sh[1, t] = bad
    tree_sum(sh, t)
    if t == 0:
        part[0, cuda.blockIdx.x] = sh[0, 0]
        part[1, cuda.blockIdx.x] = sh[1, 0]


def kernel_for(name, ns, check_name, dtype, three=False):
    """The cacheable kernel of one loss and dtype (``ns``: the cuda math namespace)."""
    import numba

    f32 = np.dtype(dtype) == np.float32
    tag = f"{name}_{'f32' if f32 else 'f64'}"
    return cuda_kernel(ew3_template if three else ew_template, tag,
                       {"loss_fn": ns[name], "check_fn": ns[check_name],
                        "FT": numba.float32 if f32 else numba.float64})


def weight_total(alloc, w, stream):
    """Device array (Σw, count of w < 0) of the device weights ``w`` (1-D), float64."""
    n = w.shape[0]
    blocks = runtime.blocks_elementwise(n)
    part = alloc.view((2, blocks), np.float64)
    runtime.launch(sum_kernel, blocks, TPB, stream, w, part)
    wtot = alloc.view(3, np.float64)
    spare = alloc.view(1, np.float64)
    runtime.launch(finish_kernel, 1, TPB, stream, part, 1, 1.0, 0.0, wtot, False, False,
                   wtot, spare)
    return wtot


def args_for(x, y, w, ws, params, gscale, wtot, out_l, out_g, out_h, part, nan_bad, dtype):
    """The kernel's argument tuple (also what :mod:`fastloss._cuda.ptx` types)."""
    cast = np.dtype(dtype).type
    a, b, c = (cast(p) for p in params)
    dummy = x[:1]
    return (x, y, dummy if w is None else w, cast(ws), a, b, c, cast(gscale),
            part[0] if wtot is None else wtot, wtot is not None, w is not None,
            out_l is not None, out_g is not None, out_h is not None, bool(nan_bad),
            dummy if out_l is None else out_l, dummy if out_g is None else out_g,
            dummy if out_h is None else out_h, part)


def args3_for(x, y, z, w, ws, params, gscale, wtot, outs, part, nan_bad, dtype):
    """The argument tuple of :func:`ew3_template` (``outs``: l, g, h, gy, gz or None)."""
    cast = np.dtype(dtype).type
    a, b, c = (cast(p) for p in params)
    dummy = x[:1]
    return (x, y, z, dummy if w is None else w, cast(ws), a, b, c, cast(gscale),
            part[0] if wtot is None else wtot, wtot is not None, w is not None,
            *(o is not None for o in outs), bool(nan_bad),
            *(dummy if o is None else o for o in outs), part)


def launch_elementwise(kern, alloc, stream, dtype, x, y, w, ws, params, gscale, wtot,
                       out_l, out_g, out_h, mode, wsum, nan_bad, z=None, outs3=None):
    """Run one elementwise loss on 1-D device arrays, all on ``stream``.

    ``wtot`` (or None): the device (Σw, negatives) of device weights.  Returns the device
    arrays ``(res, value)``: float64 (reduced value, invalid count, negative weights) and
    the reduced value as a 1-element array of ``dtype``.
    """
    n = x.shape[0]
    blocks = runtime.blocks_elementwise(n)
    part = alloc.view((2, blocks), np.float64)
    if z is not None:     # a loss of three arrays (outs3: its gradients w.r.t. y and z)
        args = args3_for(x, y, z, w, ws, params, gscale, wtot if mode == 2 else None,
                         (out_l, out_g, out_h, *outs3), part, nan_bad, dtype)
    else:
        args = args_for(x, y, w, ws, params, gscale, wtot if mode == 2 else None,
                        out_l, out_g, out_h, part, nan_bad, dtype)
    runtime.launch(kern, blocks, TPB, stream, *args)
    res = alloc.view(3, np.float64)
    native, value = alloc.empty(1, dtype)
    runtime.launch(finish_kernel, 1, TPB, stream, part, mode, 1.0, float(wsum),
                   part[0] if wtot is None else wtot, wtot is not None, bool(nan_bad), res,
                   value)
    return res, native
