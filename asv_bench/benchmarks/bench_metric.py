"""asv benchmarks of the metric-learning losses: value and value+gradient (float32) on the
shapes of ``fastloss._bench.metric`` (N embeddings of dimension D, 16 per class).

Kernels are warmed in ``setup`` (and cached on disk), so compile time stays out of the
timings.
"""
import numpy as np

import fastloss

from . import timing
from fastloss._bench.metric import SHAPES, inputs

CASES = [f"{name}:{N}x{D}" for name, shapes in SHAPES.items() for N, D in shapes]


@timing
class Metric:
    params = (CASES,)
    param_names = ["loss:NxD"]
    timeout = 600

    def setup(self, case):
        name, shape = case.split(":")
        N, D = map(int, shape.split("x"))
        self.args, self.kw, argnums = inputs(name, (N, D), np.float32)
        self.f = fastloss.LOSSES[name].func
        self.vg = fastloss.value_and_grad(self.f, argnums)
        nums = argnums if isinstance(argnums, tuple) else (argnums,)
        bufs = tuple(np.empty_like(self.args[i]) for i in nums)
        self.g = bufs if len(bufs) > 1 else bufs[0]
        self.f(*self.args, **self.kw)
        self.vg(*self.args, grad_out=self.g, **self.kw)

    def time_value(self, case):
        self.f(*self.args, **self.kw)

    def time_value_and_grad(self, case):
        self.vg(*self.args, grad_out=self.g, **self.kw)
