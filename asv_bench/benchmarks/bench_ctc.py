"""asv benchmarks of the CTC loss: value and value+gradient (float32) on the issue's shapes.

Kernels are warmed in ``setup`` (and cached on disk), so compile time stays out of the
timings.
"""
import numpy as np

import fastloss

from . import timing
from fastloss._bench.ctc import SHAPES, inputs

LABELS = [f"{T}x{N}x{C}x{L}" for T, N, C, L in SHAPES]


@timing
class CTC:
    params = (LABELS,)
    param_names = ["TxNxCxL"]
    timeout = 600

    def setup(self, shape):
        T, N, C, L = map(int, shape.split("x"))
        self.args, self.kw = inputs((T, N, C, L), np.float32)
        self.vg = fastloss.value_and_grad(fastloss.ctc_loss)
        self.g = np.empty_like(self.args[0])
        fastloss.ctc_loss(*self.args, **self.kw)
        self.vg(*self.args, grad_out=self.g, **self.kw)

    def time_value(self, shape):
        fastloss.ctc_loss(*self.args, **self.kw)

    def time_value_and_grad(self, shape):
        self.vg(*self.args, grad_out=self.g, **self.kw)
