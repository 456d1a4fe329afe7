"""Block-level tree reductions in shared memory, shared by the CUDA kernels.

Each thread ``t`` of a block first writes its partial into column ``t`` of a shared array
``sh`` of shape (rows, TPB), TPB a power of two; these device functions then fold the
columns pairwise in a fixed order (deterministic, no atomics) so that ``sh[r, 0]`` holds the
result of row r.  They synchronize the block before and during the fold; a caller that
overwrites ``sh`` afterwards must ``cuda.syncthreads()`` first.
"""
from numba import cuda  # module global: the simulator swaps `cuda` here


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
