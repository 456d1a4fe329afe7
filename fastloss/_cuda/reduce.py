"""Block-level tree reductions in shared memory, and the final-reduction kernels.

Each thread ``t`` of a block first writes its partial into column ``t`` of a shared array
``sh`` of shape (rows, TPB), TPB a power of two; these device functions then fold the
columns pairwise in a fixed order (deterministic, no atomics) so that ``sh[r, 0]`` holds the
result of row r.  They synchronize the block before and during the fold; a caller that
overwrites ``sh`` afterwards must ``cuda.syncthreads()`` first.

Kernels (module level, cacheable, one block of TPB threads unless said):

* ``sum_kernel(v, part)`` — grid-stride pass: per-block Σ v and the count of v < 0
  (weights) into ``part[0:2, block]``.
* ``finish_kernel(part, mode, scale, wsum, wtot, use_wtot, nan_bad, res, out)`` — folds the
  partials ``part[r, :]`` (r < 3: Σ w·ℓ, invalid count, negative-weight count) in a fixed
  order and forms the reduced value on the device: ``mode`` 0 keeps the counts only, 1 the
  sum (× ``scale``), 2 the mean Σ / Σw with Σw = ``wtot[0]`` when ``use_wtot`` else
  ``wsum`` (NaN when Σw <= 0); with ``use_wtot`` the counts of the device array ``wtot`` =
  (Σw, negative weights, invalid labels) — from ``sum_kernel`` or the label kernels of
  :mod:`fastloss._cuda.labels` — are added.  ``res`` (float64) receives (value, invalid
  count, negative-weight count), ``out[0]`` the value in the output dtype; with
  ``nan_bad`` a count above 0 makes the value NaN (no host check in that mode).
"""
import math

from numba import cuda, float64  # module globals: the simulator swaps `cuda` here

from .runtime import SIM, TPB


@cuda.jit(device=True)
def _fold(sh, t, take_max):
    """Pairwise fold of the columns of ``sh`` into column 0: sums, or maxima (NaN partials
    are then dropped by the compare)."""
    cuda.syncthreads()
    step = sh.shape[1] // 2
    while step > 0:
        if t < step:
            for r in range(sh.shape[0]):
                o = sh[r, t + step]
                if not take_max:
                    sh[r, t] += o
                elif o > sh[r, t]:
                    sh[r, t] = o
        cuda.syncthreads()
        step //= 2


@cuda.jit(device=True)
def tree_sum(sh, t):
    """sh[r, 0] = Σ_t sh[r, t] for every row r."""
    _fold(sh, t, False)


@cuda.jit(device=True)
def tree_max(sh, t):
    """sh[r, 0] = max_t sh[r, t] for every row r (NaN partials are dropped by the compare)."""
    _fold(sh, t, True)


def sum_template(v, part):
    sh = cuda.shared.array((2, TPB), float64)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    s = 0.0
    neg = 0.0
    while i < v.shape[0]:
        x = float64(v[i])
        s += x
        if x < 0:
            neg += 1.0
        i += stride
    sh[0, t] = s
    sh[1, t] = neg
    tree_sum(sh, t)
    if t == 0:
        part[0, cuda.blockIdx.x] = sh[0, 0]
        part[1, cuda.blockIdx.x] = sh[1, 0]


def finish_template(part, mode, scale, wsum, wtot, use_wtot, nan_bad, res, out):
    sh = cuda.shared.array((3, TPB), float64)
    t = cuda.threadIdx.x
    R = part.shape[0]
    P = part.shape[1]
    for r in range(3):
        s = 0.0
        if r < R:
            j = t
            while j < P:
                s += part[r, j]
                j += TPB
        sh[r, t] = s
    tree_sum(sh, t)
    if t == 0:
        v = sh[0, 0] * scale
        bad = sh[1, 0]
        wneg = sh[2, 0]
        den = wsum
        if use_wtot:
            den = wtot[0]
            wneg += wtot[1]
            bad += wtot[2]
        if mode == 2:
            v = v / den if den > 0 else math.nan
        if nan_bad and (bad > 0 or wneg > 0):
            v = math.nan
        res[0] = v
        res[1] = bad
        res[2] = wneg
        out[0] = v


def _kernel(f):
    return cuda.jit(f) if SIM else cuda.jit(cache=True)(f)


sum_kernel = _kernel(sum_template)
finish_kernel = _kernel(finish_template)
