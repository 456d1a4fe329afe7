"""asv benchmarks of the elementwise losses: value and value+gradient, 1e3/1e5/1e7, both dtypes.

Kernels are warmed in ``setup`` (and cached on disk), so compile time stays out of the
timings; first-call latency has its own benchmark below.
"""
import os
import subprocess
import sys

import numpy as np

import fastloss

from . import timing
from fastloss._bench.elementwise import _inputs
from fastloss._math.spec import ELEMENTWISE

NAMES = sorted(ELEMENTWISE)


@timing
class Elementwise:
    params = (NAMES, [1_000, 100_000, 10_000_000], ["float32", "float64"])
    param_names = ["loss", "n", "dtype"]
    timeout = 300

    def setup(self, loss, n, dtype):
        self.f = getattr(fastloss, loss)
        self.vg = fastloss.value_and_grad(self.f)
        self.x, self.y = _inputs(loss, n, np.dtype(dtype))
        self.g = np.empty_like(self.x)
        self.f(self.x, self.y)
        self.vg(self.x, self.y, grad_out=self.g)

    def time_value(self, loss, n, dtype):
        self.f(self.x, self.y)

    def time_value_and_grad(self, loss, n, dtype):
        self.vg(self.x, self.y, grad_out=self.g)


class PeakMemory:
    """Peak memory of value+gradient at 1e7 float32 (inputs + gradient, no temporaries)."""
    params = (["huber", "sigmoid_binary_cross_entropy"],)
    param_names = ["loss"]

    def setup(self, loss):
        self.x, self.y = _inputs(loss, 10_000_000, np.float32)
        self.vg = fastloss.value_and_grad(getattr(fastloss, loss))
        self.vg(self.x[:10], self.y[:10])

    def peakmem_value_and_grad(self, loss):
        self.vg(self.x, self.y)


@timing
class FirstCall:
    """A fresh process: ``import fastloss`` + the first call, with a warm on-disk cache."""
    params = (["huber", "logistic"],)
    param_names = ["loss"]
    timeout = 300
    repeat = (3, 5, 30.0)   # one sample is a whole process (about a second)
    min_run_count = 3

    def _run(self, loss):
        code = (f"import numpy as np, fastloss; x = np.ones(1_000_000, np.float32); "
                f"fastloss.value_and_grad(fastloss.{loss})(x, x)")
        subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))

    def setup(self, loss):
        self._run(loss)  # fills the cache

    def time_import_and_first_call(self, loss):
        self._run(loss)


@timing
class ElementwiseThree:
    """The losses of three arrays: value, and value + the gradients of two inputs."""
    params = (["gaussian_nll", "margin_ranking"], [1_000, 100_000, 10_000_000],
              ["float32", "float64"])
    param_names = ["loss", "n", "dtype"]
    timeout = 300

    def setup(self, loss, n, dtype):
        from fastloss._bench.elementwise import THREE, _three_inputs

        self.f = getattr(fastloss, loss)
        self.vg = fastloss.value_and_grad(self.f, argnums=THREE[loss])
        self.a = _three_inputs(loss, n, np.dtype(dtype))
        self.g = tuple(np.empty_like(self.a[0]) for _ in THREE[loss])
        self.f(*self.a)
        self.vg(*self.a, grad_out=self.g)

    def time_value(self, loss, n, dtype):
        self.f(*self.a)

    def time_value_and_grad(self, loss, n, dtype):
        self.vg(*self.a, grad_out=self.g)
