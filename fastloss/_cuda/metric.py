"""CUDA kernel of the metric-learning losses: one pass of :mod:`fastloss._math.metric`.

``metric_template`` is a template: :func:`fastloss._cuda.build.cuda_kernel` copies it with
``row_pass`` bound to the ``"cuda"`` compilation of :mod:`fastloss._math.metric` (the same
row math the CPU kernel runs): one cacheable kernel for every loss and pass, on float64
embeddings (the runner widens float32 inputs on the device).  One thread per anchor row:
thread t of a launch runs row ``r0 + t`` (for ``t < R``, the rows of one tile) with
``ws[t]`` as its workspace, so a tile's workspace is R × 3N float64 (R chosen by the
runner to bound it, see :func:`launch_pass`).  The runner launches the passes in order (a
kernel boundary is the grid-wide barrier between them).
"""
from numba import cuda  # module global: the simulator swaps `cuda` here

from . import runtime
from .build import cuda_kernel

TPB = 128
row_pass = None   # bound: fastloss._math.metric.row_pass compiled for "cuda"


def metric_template(which, pss, r0, nrows, x, y, lab, flab, crank, off, nsel, sc, prm, st,
                    loss, ga, gb, ws, wg):
    t = cuda.grid(1)
    if t < nrows:
        row_pass(which, pss, r0 + t, x, y, lab, flab, crank, off, nsel, sc, prm, st, loss,
                 ga, gb, ws[t], wg)


def kernel(ns):
    """The cached kernel (``ns``: the cuda namespace of fastloss._math.metric)."""
    return cuda_kernel(metric_template, "metric", {"row_pass": ns["row_pass"]})


def launch_pass(k, stream, which, pss, n, rows_per_tile, *arrays):
    """Pass ``pss`` over rows 0..n-1 in tiles of ``rows_per_tile`` (the workspace's rows)."""
    for r0 in range(0, n, rows_per_tile):
        nrows = min(rows_per_tile, n - r0)
        grid = (nrows + TPB - 1) // TPB
        runtime.launch(k, grid, TPB, stream, which, pss, r0, nrows, *arrays)
