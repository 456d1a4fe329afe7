"""The bandwidth yardstick of ``python -m fastloss bench``: a triad c = a + s·b over float32.

Numba ``prange`` (the same threads as fastloss's kernels), cached on disk like them.  Each
element reads 8 bytes and writes 4: 12 bytes moved per element, the traffic of an
elementwise value+gradient pass (pred and target read, gradient written).
"""
import numpy as np
from numba import njit, prange

from .. import _cpu  # noqa: F401  (fastloss's threading layer set up before this pool starts)


@njit(parallel=True, fastmath=True, cache=True)
def triad_kernel(a, b, c, s):
    for i in prange(a.shape[0]):
        c[i] = a[i] + s * b[i]


def triad(n):
    """A zero-argument callable running the triad over n float32 (compiled and warmed)."""
    a = np.ones(n, np.float32)
    b = np.ones(n, np.float32)
    c = np.empty(n, np.float32)
    s = np.float32(2)

    def run():
        triad_kernel(a, b, c, s)
    run()
    return run
