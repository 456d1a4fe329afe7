"""CUDA kernel shape for elementwise losses: grid-stride loop, block reduction.

Each block reduces its threads' float64 partial sums in shared memory (a fixed tree) and
writes one partial; the host sums the partials in order, so the value is deterministic
for a given size (no float atomics).  Which outputs are stored is fixed per compiled
kernel (closure constants), as on the CPU.
"""
import math

import numpy as np
from numba import cuda, float64, int32  # module globals: the simulator swaps `cuda` here

from .._compile import cached
from .reduce import tree_sum

TPB = 128          # threads per block (a power of two)
MAX_BLOCKS = 1024


def build_elementwise(loss_fn, check_fn, has_w, want_l, want_g, want_h):
    """A ``@cuda.jit`` kernel computing one loss's fused value / gradient / Hessian."""

    @cuda.jit
    def kernel(x, y, w, ws, a, b, c, gscale, out_l, out_g, out_h, part_s, part_bad):
        sh = cuda.shared.array((2, TPB), float64)  # Σ w·ℓ, invalid-label count
        t = cuda.threadIdx.x
        i = cuda.grid(1)
        stride = cuda.gridsize(1)
        n = x.shape[0]
        s = 0.0
        bad = 0
        while i < n:
            xi = x[i]
            yi = y[i]
            v, g, h = loss_fn(xi, yi, a, b, c)
            if not check_fn(xi, yi, a, b, c):
                bad += 1
            wi = ws
            if has_w:
                wi = w[i] * ws
            v = v * wi
            if want_l:
                out_l[i] = v
            if want_g:
                out_g[i] = g * (wi * gscale)
            if want_h:
                out_h[i] = h * (wi * gscale)
            s += v
            i += stride
        sh[0, t] = s
        sh[1, t] = bad
        tree_sum(sh, t)
        if t == 0:
            part_s[cuda.blockIdx.x] = sh[0, 0]
            part_bad[cuda.blockIdx.x] = int32(sh[1, 0])

    return kernel


def launch_elementwise(name, ns, check_name, dtype, x, y, w, ws, params, gscale,
                       out_l, out_g, out_h):
    """Run one elementwise loss on device arrays; returns (Σ w·ℓ, invalid-label count)."""
    has_w, want_l, want_g, want_h = (w is not None, out_l is not None, out_g is not None,
                                     out_h is not None)
    key = ("cuda-ew", name, np.dtype(dtype).str, has_w, want_l, want_g, want_h)
    kern = cached(key, lambda: build_elementwise(ns[name], ns[check_name], has_w, want_l,
                                                 want_g, want_h))
    n = x.shape[0]
    blocks = max(1, min(MAX_BLOCKS, math.ceil(n / TPB)))
    dummy = cuda.device_array(1, dtype=dtype)
    part_s = cuda.device_array(blocks, dtype=np.float64)
    part_bad = cuda.device_array(blocks, dtype=np.int32)
    cast = np.dtype(dtype).type
    a, b, c = (cast(p) for p in params)
    kern[blocks, TPB](x, y, w if has_w else dummy, cast(ws), a, b, c, cast(gscale),
                      out_l if want_l else dummy, out_g if want_g else dummy,
                      out_h if want_h else dummy, part_s, part_bad)
    return float(np.sum(part_s.copy_to_host())), int(np.sum(part_bad.copy_to_host()))
