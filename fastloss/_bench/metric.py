"""Benchmark cases of the metric-learning losses: float32 value + gradient, mean reduction.

Batches of N embeddings of dimension D (16 per class: the usual P×K sampling), the
gradient written into preallocated ``grad_out`` buffers.  The batch-pairwise losses cost
O(N²·D) and are compute-bound: their rows report no GB/s.  The "torch" peer is the
TF-Slim / optax formula written with PyTorch CPU tensors (the N×N matrices materialized, as
those libraries do), forward + backward.
"""
import numpy as np

from . import Case

SHAPES = {"contrastive": [(65536, 128)], "npairs": [(1024, 128), (4096, 128)],
          "ntxent": [(1024, 128), (4096, 128)], "triplet_semihard": [(1024, 128)],
          "lifted_struct": [(1024, 128), (4096, 128)]}
QUICK = {"contrastive": [(16384, 128)], "npairs": [(512, 128)], "ntxent": [(512, 128)],
         "triplet_semihard": [(512, 128)], "lifted_struct": [(512, 128)]}
PER_CLASS = 16


def inputs(name, shape, dtype=np.float32, seed=0):
    """``(args, kwargs, argnums)`` for ``value_and_grad(LOSSES[name].func, argnums)``."""
    N, D = shape
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, D), dtype=np.float32) / np.sqrt(D)).astype(dtype)
    lab = np.arange(N) // PER_CLASS
    if name == "contrastive":
        y = (x + 0.5 * rng.standard_normal((N, D), dtype=np.float32) / np.sqrt(D)).astype(dtype)
        return (rng.integers(0, 2, N), x, y), {}, (1, 2)
    if name == "npairs":
        y = (x + 0.5 * rng.standard_normal((N, D), dtype=np.float32) / np.sqrt(D)).astype(dtype)
        return (np.arange(N), x, y), {}, (1, 2)
    if name == "ntxent":
        return (x, lab), {}, 0
    return (lab, x), {}, 1


def _with_grad_out(name, shape, dtype):
    args, kw, argnums = inputs(name, shape, dtype)
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    bufs = tuple(np.empty_like(args[i]) for i in nums)
    return args, {**kw, "grad_out": bufs if len(bufs) > 1 else bufs[0]}


def _torch_loss(name, ts):
    import torch

    def pdist(f, squared):
        sq = torch.clamp((f * f).sum(1, keepdim=True) + (f * f).sum(1)[None, :]
                         - 2 * f @ f.T, min=0.0)
        err = sq <= 0
        d = sq if squared else torch.sqrt(sq + err.to(f.dtype) * 1e-16)
        return d * (~err).to(f.dtype) * (1 - torch.eye(f.shape[0], dtype=f.dtype))

    if name == "contrastive":
        lab, a, p = ts
        d = torch.sqrt(((a - p) ** 2).sum(1))
        y = lab.to(a.dtype)
        return (y * d ** 2 + (1 - y) * torch.clamp(1.0 - d, min=0) ** 2).mean()
    if name == "npairs":
        lab, a, p = ts
        t = (lab[:, None] == lab[None, :]).to(a.dtype)
        t = t / t.sum(1, keepdim=True)
        l2 = 0.25 * 0.002 * ((a ** 2).sum(1).mean() + (p ** 2).sum(1).mean())
        return l2 + (-(t * torch.log_softmax(a @ p.T, 1)).sum(1)).mean()
    if name == "ntxent":
        x, lab = ts
        u = x / torch.sqrt(torch.clamp((x * x).sum(1, keepdim=True), min=1.1920929e-07))
        c = u @ u.T / 0.07
        same = lab[:, None] == lab[None, :]
        pos = same & ~torch.eye(len(lab), dtype=torch.bool)
        neg = torch.logsumexp(torch.where(same, torch.tensor(-np.inf), c), 1, keepdim=True)
        ls = c - torch.logaddexp(neg, c)
        return -torch.where(pos, ls, torch.zeros_like(ls)).sum() / pos.sum()
    lab, x = ts
    same = lab[:, None] == lab[None, :]
    pos = (same & ~torch.eye(len(lab), dtype=torch.bool)).to(x.dtype)
    if name == "triplet_semihard":
        d = pdist(x, True)
        negm = ~same
        # per (a, p): the smallest D_an > D_ap among negatives (sorted row, searchsorted),
        # else the largest D_an
        sv = torch.sort(torch.where(negm, d, torch.tensor(np.inf)), 1).values
        nneg = negm.sum(1)
        idx = torch.searchsorted(sv.detach().contiguous(), d.detach().contiguous(), right=True)
        has = idx < nneg[:, None]
        out = sv.gather(1, idx.clamp(max=len(lab) - 1))
        ins = sv.gather(1, (nneg - 1).clamp(min=0)[:, None]).expand_as(out)
        semi = torch.where(has, out, ins)
        return torch.clamp((1.0 + d - semi) * pos, min=0).sum() / pos.sum()
    d = pdist(x, False)
    e = torch.where(~same, 1.0 - d, torch.tensor(-np.inf))
    lse = torch.logsumexp(e, 1)
    J = d + torch.logaddexp(lse[:, None], lse[None, :])
    return 0.25 * (torch.clamp(J, min=0) ** 2 * pos).sum() / (pos.sum() / 2)


def _torch_peer(name):
    def peer(args, kw):
        import torch  # ImportError when missing

        ts = [torch.from_numpy(np.ascontiguousarray(a)) for a in args]
        leaves = [t.requires_grad_() for t in ts if t.dtype.is_floating_point]

        def run():
            for t in leaves:
                t.grad = None
            loss = _torch_loss(name, ts)
            loss.backward()
            return loss

        return run
    return peer


def cases(quick: bool = False):
    out = []
    for name, shapes in (QUICK if quick else SHAPES).items():
        for shape in shapes:
            N, D = shape
            argnums = inputs(name, (2, 2))[2]
            out.append(Case(
                loss=name, label=f"{name} N={N} D={D}",
                make=(lambda dtype, name=name, shape=shape: _with_grad_out(name, shape, dtype)),
                nbytes=((lambda args: 4 * args[1].nbytes) if name == "contrastive"
                        else (lambda args: None)),
                peers={"torch": _torch_peer(name)}, argnums=argnums, n=N * D))
    return out
