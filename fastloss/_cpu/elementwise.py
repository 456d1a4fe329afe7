"""CPU kernel shape for elementwise losses: one fused, parallel pass.

``ew_kernel`` is a template: :func:`fastloss._compile.cpu_kernel` copies it with the
globals ``loss_fn`` and ``check_fn`` bound to one loss's compiled scalar math, under a
name of its own, so that each loss gets its own cacheable kernel.  Outputs passed as
``None`` are pruned at compile time (Numba types them as ``none``), so value-only,
value+gradient and gradient+Hessian calls each compile to a loop that stores only what
is asked for, and LLVM vectorizes it.
"""
from numba import prange

loss_fn = None   # bound per loss: (x, y, a, b, c) -> (value, grad, hess)
check_fn = None  # bound per loss: (x, y, a, b, c) -> bool, False for an invalid label


def ew_kernel(x, y, w, ws, a, b, c, gscale, out_l, out_g, out_h):
    """Σ w·ℓ (float64) and the count of invalid labels; stores w·ℓ, gscale·w·ℓ', gscale·w·ℓ''.

    x, y, w (or None): 1-D, same length; ws: scalar weight; a, b, c: loss parameters.
    """
    s = 0.0
    bad = 0
    for i in prange(x.shape[0]):
        xi = x[i]
        yi = y[i]
        v, g, h = loss_fn(xi, yi, a, b, c)
        bad += 0 if check_fn(xi, yi, a, b, c) else 1
        wi = ws
        if w is not None:
            wi = w[i] * ws
        v = v * wi
        if out_l is not None:
            out_l[i] = v
        if out_g is not None:
            out_g[i] = g * (wi * gscale)
        if out_h is not None:
            out_h[i] = h * (wi * gscale)
        s += v
    return s, bad
