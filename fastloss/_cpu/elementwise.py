"""CPU kernel shape for elementwise losses: one fused, parallel pass.

``ew_kernel`` is a template: :func:`fastloss._compile.cpu_kernel` copies it with the
globals ``loss_fn``, ``check_fn`` and ``FT`` bound to one loss's compiled scalar math and
dtype, under a name of its own, so that each loss gets its own cacheable kernel.  Outputs
passed as ``None`` are pruned at compile time (Numba types them as ``none``), so
value-only, value+gradient and gradient+Hessian calls each compile to a loop that stores
only what is asked for.

The loop runs over blocks of ``BLK`` elements in parallel; inside a block the sum and the
invalid-label count accumulate in the array dtype (so the loop is all-float32 for float32
input and LLVM vectorizes it at full width), and the block sums are added in float64.
Indices are unsigned: with a signed index starting at an unknown ``lo`` Numba emits a
negative-index wraparound select per access, which turned the loads into gathers (10x slower).
"""
import numpy as np
from numba import prange

loss_fn = None   # bound per loss: (x, y, a, b, c) -> (value, grad, hess)
check_fn = None  # bound per loss: (x, y, a, b, c) -> bool, False for an invalid label
FT = None        # bound: numba.float32 or numba.float64

BLK = 2048


def ew_kernel(x, y, w, ws, a, b, c, gscale, out_l, out_g, out_h):
    """Σ w·ℓ (float64) and the count of invalid labels; stores w·ℓ, gscale·w·ℓ', gscale·w·ℓ''.

    x, y, w (or None): 1-D, same length; ws: scalar weight; a, b, c: loss parameters.
    """
    n = x.shape[0]
    nb = (n + BLK - 1) // BLK
    zero = FT(0.0)
    one = FT(1.0)
    s = 0.0
    bad = 0.0
    for blk in prange(nb):
        lo = blk * BLK
        hi = min(lo + BLK, n)
        t = zero
        tb = zero
        for i0 in range(lo, hi):
            i = np.uint64(i0)  # unsigned: no negative-index wraparound, so loads vectorize
            xi = x[i]
            yi = y[i]
            v, g, h = loss_fn(xi, yi, a, b, c)
            tb += zero if check_fn(xi, yi, a, b, c) else one
            wi = ws
            if w is not None:
                wi = w[i] * ws
            v = FT(v * wi)
            if out_l is not None:
                out_l[i] = v
            if out_g is not None:
                out_g[i] = g * (wi * gscale)
            if out_h is not None:
                out_h[i] = h * (wi * gscale)
            t += v
        s += t
        bad += tb
    return s, int(bad)
