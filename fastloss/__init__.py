"""fastloss: loss functions whose value and analytic gradient come from one compiled pass.

Numba kernels on the CPU (``@njit(parallel=True)``) and on NVIDIA GPUs (``@cuda.jit``),
chosen from where the inputs live.  Importing fastloss compiles nothing; each kernel
compiles on its first call and is cached on disk.

    >>> import numpy as np, fastloss
    >>> print(fastloss.huber(np.array([0.5, 3.0]), np.zeros(2), delta=1.0))
    1.3125
"""
from ._api import LOSSES, grad, grad_and_hessian, value_and_grad
from .losses_elementwise import *  # noqa: F401,F403
from .losses_elementwise import __all__ as _ew
from .losses_rowwise import *  # noqa: F401,F403
from .losses_rowwise import __all__ as _rw
from ._ctc import ctc_greedy_decode, ctc_loss, ctc_loss_with_forward_probs
from ._ctc_beam import ctc_beam_search_decode
from ._metric import contrastive, lifted_struct, npairs, ntxent, triplet_semihard
from .collection import LossCollection
from . import gluon, slim  # noqa: E402  (thin compatibility layers; no numba at import)
from .scoring import ScoreDataError, ScoreResult, score  # streaming; no optional import
from ._threads import get_num_threads, set_num_threads, threads
from ._prepared import Prepared, prepare  # low-level repeated calls (optimizers)
from ._threads import install_threadpoolctl_hook as _install_tpc_hook
_install_tpc_hook()  # registers with threadpoolctl when it is (or once it gets) imported

__version__ = "0.1.0"
__all__ = ["LOSSES", "value_and_grad", "grad", "grad_and_hessian", "ctc_loss", "ctc_greedy_decode",
           "LossCollection", "gluon", "slim",
           "set_num_threads", "get_num_threads", "threads", "prepare", "Prepared",
           "score", "ScoreResult", "ScoreDataError", *_ew, *_rw,
           "contrastive", "npairs", "ntxent", "triplet_semihard", "lifted_struct",
           "ctc_loss_with_forward_probs", "ctc_beam_search_decode"]
