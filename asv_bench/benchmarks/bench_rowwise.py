"""asv benchmarks of the row-wise losses: value, and value + gradient, per case.

Cases come from :mod:`fastloss._bench.rowwise` (float32); ``setup`` builds the inputs and
calls each function once so that kernel compilation (or the on-disk cache load) is not
timed.
"""
import numpy as np

import fastloss

from . import timing
from fastloss._bench.rowwise import cases

_CASES = {f"{c.loss}[{c.label}]": c for c in cases(quick=False)}


class _Base:
    params = [list(_CASES)]
    param_names = ["case"]
    timeout = 300

    def setup(self, name):
        c = _CASES[name]
        self.args, self.kwargs = c.make(np.float32)  # with preallocated grad_out buffers
        self.value_kwargs = {k: v for k, v in self.kwargs.items() if k != "grad_out"}
        self.f = fastloss.LOSSES[c.loss].func
        self.vg = fastloss.value_and_grad(self.f, c.argnums)
        self.f(*self.args, **self.value_kwargs)
        self.vg(*self.args, **self.kwargs)


@timing
class TimeRowwiseValue(_Base):
    def time_value(self, name):
        self.f(*self.args, **self.value_kwargs)


@timing
class TimeRowwiseValueAndGrad(_Base):
    def time_value_and_grad(self, name):
        self.vg(*self.args, **self.kwargs)
