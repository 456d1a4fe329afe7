"""CPU kernel of the metric-learning losses: one pass of :mod:`fastloss._math.metric`.

``metric_kernel`` is a template: :func:`fastloss._compile.cpu_kernel` copies it with
``row_pass`` bound to the float64 CPU compilation of :mod:`fastloss._math.metric`
(:func:`fastloss._metric._cpu_math`), so it is cacheable across processes.  It takes float64 embeddings only (the runner widens float32
inputs once, O(N·D): the O(N²·D) pair loops then run on float64 vectors without a
conversion per term), so ONE compiled kernel (and its serial twin) serves both dtypes and
every loss and pass: the loss (``which``) and the pass (``pss``) are runtime arguments.
A call runs one pass over all rows in a ``prange`` (rows are independent within a pass;
the runner calls the passes in order); a row allocates its own workspace of ``nws``
float64 (3N; 0 for the contrastive loss).
"""
import numpy as np
from numba import prange

row_pass = None   # bound: fastloss._math.metric.row_pass (fastloss._metric._cpu_math)


def metric_kernel(which, pss, x, y, lab, flab, crank, off, nsel, sc, prm, st, loss, ga,
                  gb, nws, wg):
    n = x.shape[0]
    for i in prange(n):
        ws = np.empty(nws, np.float64)
        row_pass(which, pss, i, x, y, lab, flab, crank, off, nsel, sc, prm, st, loss, ga,
                 gb, ws, wg)
