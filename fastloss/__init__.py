"""fastloss: loss functions whose value and analytic gradient come from one compiled pass.

Numba kernels on the CPU (``@njit(parallel=True)``) and on NVIDIA GPUs (``@cuda.jit``),
chosen from where the inputs live.  Importing fastloss compiles nothing; each kernel
compiles on its first call and is cached on disk.

    >>> import numpy as np, fastloss
    >>> fastloss.huber(np.array([0.5, 3.0]), np.zeros(2), delta=1.0)
    1.3125
"""
from ._api import LOSSES, grad, grad_and_hessian, value_and_grad
from .losses_elementwise import *  # noqa: F401,F403
from .losses_elementwise import __all__ as _ew
from .losses_rowwise import *  # noqa: F401,F403
from .losses_rowwise import __all__ as _rw
from ._ctc import ctc_loss, ctc_greedy_decode
from .collection import LossCollection
from . import gluon, slim  # noqa: E402  (thin compatibility layers; no numba at import)

__version__ = "0.1.0"
__all__ = ["LOSSES", "value_and_grad", "grad", "grad_and_hessian", "ctc_loss", "ctc_greedy_decode",
           "LossCollection", "gluon", "slim", *_ew, *_rw]
