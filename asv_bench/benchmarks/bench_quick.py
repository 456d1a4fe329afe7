"""``Quick*``: the small set for ``asv continuous -b Quick A B`` (two commits in minutes).

One value+gradient per kernel family and dtype at sizes where the kernel, not the Python
layer, dominates (plus one small call, where the Python layer does), and one L-BFGS-B fit.
Every kernel is called in ``setup`` (compiled, or loaded from the shared cache) and the
timing samples start after a warm-up, so neither compile nor cache load is timed.
"""
import numpy as np

import fastloss
from fastloss._bench.ctc import inputs as ctc_inputs
from fastloss._bench.elementwise import _inputs

from . import timing

# 6 rounds (processes) instead of 4: the parallel calls of 0.1-0.6 ms here move by up to
# 10 % between processes, and more processes steady the median two runs are compared on
QUICK_ROUNDS = 6


@timing
class QuickElementwise:
    rounds = QUICK_ROUNDS
    params = (["huber", "sigmoid_binary_cross_entropy"], [1_000, 1_000_000],
              ["float32", "float64"])
    param_names = ["loss", "n", "dtype"]
    timeout = 300

    def setup(self, loss, n, dtype):
        self.vg = fastloss.value_and_grad(getattr(fastloss, loss))
        self.x, self.y = _inputs(loss, n, np.dtype(dtype))
        self.g = np.empty_like(self.x)
        self.vg(self.x, self.y, grad_out=self.g)

    def time_value_and_grad(self, loss, n, dtype):
        self.vg(self.x, self.y, grad_out=self.g)


@timing
class QuickRowwise:
    rounds = QUICK_ROUNDS
    params = (["float32", "float64"],)
    param_names = ["dtype"]
    timeout = 300

    def setup(self, dtype):
        r = np.random.default_rng(0)
        self.z = r.standard_normal((4096, 100)).astype(dtype)
        self.k = r.integers(0, 100, 4096)
        self.g = np.empty_like(self.z)
        self.vg = fastloss.value_and_grad(fastloss.softmax_cross_entropy_with_integer_labels)
        self.vg(self.z, self.k, grad_out=self.g)

    def time_softmax_ce_value_and_grad(self, dtype):
        self.vg(self.z, self.k, grad_out=self.g)


@timing
class QuickCTC:
    rounds = QUICK_ROUNDS
    timeout = 300

    def setup(self):
        self.args, self.kw = ctc_inputs((50, 8, 29, 10), np.float32)
        self.vg = fastloss.value_and_grad(fastloss.ctc_loss)
        self.g = np.empty_like(self.args[0])
        self.vg(*self.args, grad_out=self.g, **self.kw)

    def time_value_and_grad(self):
        self.vg(*self.args, grad_out=self.g, **self.kw)


@timing
class QuickWorkflow:
    """Multinomial logistic regression, 1000 x 20, K = 5: L-BFGS-B around fastloss."""
    rounds = QUICK_ROUNDS
    timeout = 300

    def setup(self):
        try:
            from fastloss._bench.workflows import _LBFGS, _lr_data
        except ImportError:  # a commit before the workflow cases
            raise NotImplementedError("fastloss._bench.workflows is missing in this commit")
        X, y = _lr_data(1000, 20, 5)
        self.fit = _LBFGS(X, y, 5)
        self.fit.fit()

    def time_lbfgs_multinomial_fit(self):
        self.fit.fit()
