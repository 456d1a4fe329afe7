"""Benchmark cases of the CTC loss: float32 value + gradient w.r.t. the logits, mean reduction.

Shapes (T, N, C, L) as in the issue; logits in "TNC" layout (PyTorch's), full-length inputs
and labels (labels uniform over the non-blank classes); the gradient goes into a preallocated
``grad_out`` (as in the elementwise cases; PyTorch allocates its own).  The "torch" peer is
``log_softmax`` + ``ctc_loss`` forward + backward on CPU tensors.
"""
import numpy as np

from . import Case

SHAPES = [(150, 32, 29, 40), (500, 32, 29, 100), (200, 16, 1000, 50), (1000, 8, 5000, 200)]
QUICK = SHAPES[:3]   # milliseconds per call: long enough to time stably


def inputs(shape, dtype=np.float32, seed=0):
    """``(args, kwargs)`` for ``value_and_grad(ctc_loss)``: logits (T, N, C), layout TNC."""
    T, N, C, L = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, C), dtype=np.float32).astype(dtype)
    labels = rng.integers(1, C, size=(N, L))
    return (x, labels, np.full(N, T), np.full(N, L)), {"layout": "TNC", "reduction": "mean"}


def _with_grad_out(shape, dtype):
    args, kw = inputs(shape, dtype)
    return args, {**kw, "grad_out": np.empty_like(args[0])}


def _torch_peer(args, kw):
    import torch  # ImportError when missing
    import torch.nn.functional as F

    x, labels, il, ll = args
    xt = torch.from_numpy(x).requires_grad_()
    lt, ilt, llt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (labels, il, ll))

    def run():
        xt.grad = None
        loss = F.ctc_loss(F.log_softmax(xt, -1), lt, ilt, llt, reduction="mean")
        loss.backward()
        return loss

    return run


def cases(quick: bool = False):
    out = []
    for shape in (QUICK if quick else SHAPES):
        T, N, C, L = shape
        out.append(Case(
            loss="ctc_loss", label=f"ctc T={T} N={N} C={C} L={L}",
            make=(lambda dtype, shape=shape: _with_grad_out(shape, dtype)),
            nbytes=lambda args: 2 * args[0].nbytes,   # logits read, gradient written
            peers={"torch": _torch_peer}, argnums=0))
    return out
