"""Log-space scalar math of the CTC loss, written once.

Plain Python over floats; :func:`fastloss._compile.namespace` compiles every function here
for ``"cpu32"``, ``"cpu64"`` (``njit(inline='always')``) and ``"cuda"``
(``cuda.jit(device=True)``), with ``exp``/``log``/``log1p`` rebound per target (on
``cpu32`` they are the vectorizable float32 polynomials of :mod:`fastloss._fastmath`).

Everything is −inf aware without ``nnan``/``ninf`` fast-math: ``logaddexp(-inf, -inf)`` is
``-inf`` (never NaN) and NaN propagates.  The functions are branch-free (selects), so the
CPU kernels' loops over the CTC states vectorize, and they keep the argument's float type
(no float64 constant is ever returned), so float32 stays float32.
"""
from math import exp, log, log1p  # noqa: F401  (rebound per target)

import numpy as np

expn = exp  # exp of an argument <= 0; rebound per target (see fastloss._compile)
log1pu = log1p  # log1p of an argument in [0, 1]; rebound per target (cheaper on the CPU)

NEG_INF = float("-inf")
# exp() arguments below LO are flushed: e^LO = 1.6e-38 is the smallest normal float32, and
# denormal results are 100x slower on x86 (microcode assists).  The relative error this
# adds to a sum of exponentials is below e^-87, negligible in float32 and float64.
# A float32 constant, so that float32 code stays float32 (float64 code promotes it).
LO = np.float32(-87.0)


def max2(a, b):
    """max(a, b), NaN-propagating when ``a`` is NaN (selects only)."""
    return a if not (b > a) else b


def clamp_lo(d):
    """max(d, LO), NaN-propagating."""
    return d if not (d < LO) else LO


def logaddexp(a, b):
    """log(e^a + e^b); −inf when both are −inf; NaN propagates."""
    m = max2(a, b)
    r = m + log1pu(expn(clamp_lo(-abs(a - b))))
    return r if m > NEG_INF else m + (a + b)  # -inf, or NaN when max2 dropped one


def logaddexp3(a, b, c):
    """log(e^a + e^b + e^c); −inf when all are −inf; NaN propagates."""
    m = max2(max2(a, b), c)
    r = m + log(expn(clamp_lo(a - m)) + expn(clamp_lo(b - m)) + expn(clamp_lo(c - m)))
    return r if m > NEG_INF else m + (a + b + c)  # -inf, or NaN when max2 dropped one


def exp_(x):
    """exp(x) for x <= 0 (the target's ``expn``: a float32 polynomial on cpu32), flushed to
    0 below e^LO (no denormals); for the kernels' softmax and γ passes.  NaN propagates."""
    y = expn(clamp_lo(x))
    return y if not (x < LO) else y * 0


def log_(x):
    """The target's ``log``."""
    return log(x)
