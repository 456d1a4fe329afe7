"""The one summation order of the CPU elementwise kernels' totals.

A total over n values is formed as follows, and nothing else may change it:

* the values are cut into blocks of ``BLK`` = 2048 consecutive elements and each block into
  chunks of ``CH`` = 512 (the last ones may be shorter), aligned to the start of the array;
* each chunk's values, rounded to the array dtype, are summed in float64 by
  :func:`chunk_sum`, one loop compiled once per machine (LLVM vectorizes it: its lanes
  and their final combination depend only on the chunk length);
* the chunk sums are added to the block's partial in order, the block partials to a
  running float64 total ``s_in`` (0 for a single call) in block order, with strict adds
  (:func:`fastloss._math.strict.sadd`) that no fast-math flag may regroup.

So the total does not depend on the scheduler, the thread count, where the buffers lie,
or whether the caller wanted outputs; and a long array processed as consecutive slices
whose lengths are multiples of ``BLK``, each call starting from the previous total, gives
exactly the bits of one call over the whole array: streaming scoring
(:func:`fastloss.score`) is bit-identical to the in-memory loss for every chunk size.

:func:`lane_total_array` applies the same order to an array: Σw of weighted means, and the
totals of the row-wise and CTC losses, which are folds of their per-row values (the
``reduction="none"`` output, in the array dtype) and of their per-row weights, continued
from running totals in the same way (rows instead of elements).
"""
import numpy as np
from numba import njit

from .._math.strict import sadd

BLK = 2048
CH = 512


@njit(inline="always", fastmath=True, error_model="numpy")
def chunk_sum(v, m):
    """Σ v[j] for j < m in float64 (one vectorized reduction; the order is a function of
    ``m`` only)."""
    t = 0.0
    for j in range(m):
        t += v[np.uint64(j)]
    return t


def fold_array(v, s_in):
    """Template of :func:`lane_total_array`'s kernel (compiled by
    :func:`fastloss._compile.cpu_kernel`: cached on disk where a cache can be written)."""
    n = v.shape[0]
    s = s_in
    for lo in range(0, n, BLK):
        hi = min(lo + BLK, n)
        t = 0.0
        for c0 in range(lo, hi, CH):
            m = min(c0 + CH, hi) - c0
            t = sadd(t, chunk_sum(v[c0:c0 + m], m))
        s = sadd(s, t)
    return s


_FOLD: list = []   # the compiled fold_array once looked up (skips cpu_kernel's lookup)


def fold_kernel():
    """The compiled :func:`fold_array` (one dispatcher; float32 and float64 signatures)."""
    if not _FOLD:
        from .._compile import cpu_kernel
        _FOLD.append(cpu_kernel(fold_array, "fold", {}, parallel=False))
    return _FOLD[0]


def lane_total_array(v, s_in=0.0):
    """``s_in`` + Σ v in the kernels' fixed order (``v`` 1-D float32/float64, contiguous)."""
    return (_FOLD[0] if _FOLD else fold_kernel())(v, float(s_in))
