"""Benchmark cases of the row-wise losses (float32, value + gradient).

``make`` returns the fastloss call's keyword arguments with ``grad_out`` buffers
allocated once (:func:`_preallocated`).

Peers: ``"torch"`` runs the same forward + backward with PyTorch CPU tensors
(``cross_entropy``, ``kl_div``, ``multi_margin_loss``, ``cosine_embedding_loss``,
``triplet_margin_loss``, ``nll_loss``, ``multilabel_soft_margin_loss``,
``multilabel_margin_loss``, and the ``weight``/``p``/``swap``/``batchmean`` options);
losses PyTorch has no function for are written from its primitives (sparsemax by a sort,
Dice and Tversky as in MONAI).  torch is imported inside the peer
and ``ImportError`` propagates when missing.
"""
from __future__ import annotations

import numpy as np

from . import Case


def _rng():
    return np.random.default_rng(0)


def _nbytes(args):
    """Float inputs read plus their gradients written (labels are small)."""
    fl = [a for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return 2 * sum(a.nbytes for a in fl)


def _logits_nbytes(args):
    """Logits read + gradient written (integer-label losses: labels are negligible)."""
    return 2 * args[0].nbytes


def _torch_peer(build):
    def peer(args, kwargs):
        import torch  # noqa: F401  (ImportError when missing)
        return build(args, kwargs)
    return peer


def _t(a, grad=False):
    import torch
    t = torch.from_numpy(np.asarray(a))
    if grad:
        t.requires_grad_(True)
    return t


def _fb(loss_fn, leaves):
    """A zero-argument callable: forward + backward, gradients cleared each time."""
    def run():
        for t in leaves:
            t.grad = None
        loss_fn().backward()
    return run


def _peer_ce_int(args, kwargs):
    import torch.nn.functional as F
    x, k = _t(args[0], True), _t(args[1].astype(np.int64))
    return _fb(lambda: F.cross_entropy(x, k), [x])


def _peer_ce_dense(args, kwargs):
    import torch.nn.functional as F
    x, y = _t(args[0], True), _t(args[1])
    return _fb(lambda: F.cross_entropy(x, y), [x])


def _peer_kl(args, kwargs):
    import torch.nn.functional as F
    x, y = _t(args[0], True), _t(args[1])
    return _fb(lambda: F.kl_div(x, y, reduction="batchmean"), [x])


def _peer_softmax_kl(args, kwargs):
    import torch.nn.functional as F
    x, y = _t(args[0], True), _t(args[1])
    return _fb(lambda: F.kl_div(F.log_softmax(x, -1), y, reduction="batchmean"), [x])


def _peer_hinge(args, kwargs):
    import torch.nn.functional as F
    x, k = _t(args[0], True), _t(args[1].astype(np.int64))
    return _fb(lambda: F.multi_margin_loss(x, k), [x])


def _peer_cemb(args, kwargs):
    import torch.nn.functional as F
    a, b, y = _t(args[0], True), _t(args[1], True), _t(args[2])
    return _fb(lambda: F.cosine_embedding_loss(a, b, y), [a, b])


def _peer_cdist(args, kwargs):
    a, b = _t(args[0], True), _t(args[1], True)
    return _fb(lambda: (1 - (a * b).sum(-1)).mean(), [a, b])


def _peer_triplet(args, kwargs):
    import torch.nn.functional as F
    a, p, n = (_t(u, True) for u in args[:3])
    return _fb(lambda: F.triplet_margin_loss(a, p, n), [a, p, n])


def _peer_mpse(args, kwargs):
    p, t = _t(args[0], True), _t(args[1], True)

    def f():
        d = (p - t).reshape(p.shape[0], -1)
        n = d.shape[1]
        return (2 * (n * (d * d).sum(1) - d.sum(1) ** 2) / (n * (n - 1))).mean()
    return _fb(f, [p, t])


def _peer_nll(args, kwargs):
    import torch.nn.functional as F
    x, k = _t(args[0], True), _t(args[1].astype(np.int64))
    return _fb(lambda: F.nll_loss(x, k), [x])


def _peer_chinge(args, kwargs):
    p, t = _t(args[0], True), _t(args[1])

    def f():
        pos = (t * p).sum(-1)
        neg = ((1 - t) * p).amax(-1)
        return (neg - pos + 1).clamp(min=0).mean()
    return _fb(f, [p])


def _peer_poly(args, kwargs):
    import torch.nn.functional as F
    x, y = _t(args[0], True), _t(args[1])

    def f():
        ce = F.cross_entropy(x, y, reduction="none")
        return (ce + 2.0 * (y * (1 - F.softmax(x, -1))).sum(-1)).mean()
    return _fb(f, [x])


def _peer_mlsm(args, kwargs):
    import torch.nn.functional as F
    x, y = _t(args[0], True), _t(args[1])
    return _fb(lambda: F.multilabel_soft_margin_loss(x, y), [x])


def _peer_cfoc(args, kwargs):
    import torch.nn.functional as F
    x, k = _t(args[0], True), _t(args[1].astype(np.int64))

    def f():
        lp = F.log_softmax(x, -1).gather(1, k[:, None])[:, 0]
        return (-0.25 * (1 - lp.exp()) ** 2 * lp).mean()
    return _fb(f, [x])


def _peer_hinge_w(args, kwargs):
    import torch.nn.functional as F
    x, k = _t(args[0], True), _t(args[1].astype(np.int64))
    w = _t(kwargs["class_weight"])
    return _fb(lambda: F.multi_margin_loss(x, k, weight=w), [x])


def _peer_ce_dense_w(args, kwargs):
    import torch.nn.functional as F
    x, y = _t(args[0], True), _t(args[1])
    w = _t(kwargs["class_weight"])
    return _fb(lambda: F.cross_entropy(x, y, weight=w), [x])


def _peer_triplet_p1_swap(args, kwargs):
    import torch.nn.functional as F
    a, p, n = (_t(u, True) for u in args[:3])
    return _fb(lambda: F.triplet_margin_loss(a, p, n, p=1.0, swap=True), [a, p, n])


def _peer_mlm(args, kwargs):
    import torch.nn.functional as F
    x, t = _t(args[0], True), _t(args[1])
    return _fb(lambda: F.multilabel_margin_loss(x, t), [x])


def _peer_msm(args, kwargs):
    import torch
    z, k = _t(args[0], True), _t(args[1].astype(np.int64))

    def f():   # sparsemax by a sort (Martins & Astudillo), then optax's loss
        zs = torch.sort(z, -1, descending=True)[0]
        r = torch.arange(1, z.shape[-1] + 1, dtype=z.dtype)
        cs = zs.cumsum(-1)
        kk = ((1 + r * zs) > cs).sum(-1, keepdim=True)
        tau = (cs.gather(-1, kk - 1) - 1) / kk.to(z.dtype)
        p = (z - tau).clamp(min=0)
        zk = z.gather(-1, k[:, None])
        return ((p * (z - zk)).sum(-1) + 0.5 * (1 - (p * p).sum(-1))).mean()
    return _fb(f, [z])


def _peer_tversky(alpha, beta, c):
    def peer(args, kwargs):
        p, t = _t(args[0], True), _t(args[1], True)

        def f():   # MONAI's sums over each sample
            tp = (p * t).sum(-1)
            den = tp + alpha * (p * (1 - t)).sum(-1) + beta * ((1 - p) * t).sum(-1)
            return (1 - (c * tp + 1e-5) / (c * den + 1e-5)).mean()
        return _fb(f, [p, t])
    return peer


def _preallocated(case):
    """``case`` with its gradient buffers allocated once and passed as ``grad_out`` (as the
    elementwise cases and the triad do: a fresh 67-131 MB gradient per call would time
    page faults, not the loss).  PyTorch allocates its own gradients."""
    make, nums = case.make, case.argnums

    def make_pre(dtype=np.float32):
        args, kw = make(dtype)
        bufs = tuple(np.empty_like(args[i]) for i in
                     ((nums,) if isinstance(nums, int) else nums))
        return args, dict(kw, grad_out=bufs[0] if isinstance(nums, int) else bufs)
    case.make = make_pre
    return case


def cases(quick: bool = False) -> list:
    s = 2 if quick else 1     # quick: half the rows (still tens of MB: beyond the caches)

    def ice(N, C):
        def make(dtype=np.float32):
            r = _rng()
            return (r.standard_normal((N, C), dtype=np.float32).astype(dtype),
                    r.integers(0, C, N)), {}
        return make

    def dense(N, C, prob_first=False):
        def make(dtype=np.float32):
            r = _rng()
            x = r.standard_normal((N, C), dtype=np.float32).astype(dtype)
            y = r.random((N, C), dtype=np.float32).astype(dtype)
            y /= y.sum(-1, keepdims=True)
            if prob_first:
                x = np.log(np.abs(x) + 0.1)
                x -= np.log(np.exp(x).sum(-1, keepdims=True))
            return (x, y), {}
        return make

    def floats(n_inputs, N, D, labels=None):
        def make(dtype=np.float32):
            r = _rng()
            args = tuple(r.standard_normal((N, D), dtype=np.float32).astype(dtype)
                         for _ in range(n_inputs))
            if labels == "pm1":
                args = args + (np.where(r.random(N) < 0.5, 1.0, -1.0).astype(dtype),)
            if labels == "int":
                args = args + (r.integers(0, D, N),)
            return args, {}
        return make

    def with_kw(make, **extra):
        def make_kw(dtype=np.float32):
            args, kw = make(dtype)
            return args, dict(kw, **extra)
        return make_kw

    def weighted(make, C):
        def make_w(dtype=np.float32):
            args, kw = make(dtype)
            return args, dict(kw, class_weight=_rng().random(C).astype(dtype) + 0.5)
        return make_w

    def mlm(N, C):
        def make(dtype=np.float32):
            r = _rng()
            t = np.full((N, C), -1, np.int64)   # 1 to 5 listed classes per row
            n = r.integers(1, 6, N)
            for j in range(5):
                t[:, j] = np.where(j < n, r.integers(0, C, N), -1)
            return (r.standard_normal((N, C), dtype=np.float32).astype(dtype), t), {}
        return make

    def seg(N, D):   # soft predictions and binary masks, one sample per row
        def make(dtype=np.float32):
            r = _rng()
            return (r.random((N, D), dtype=np.float32).astype(dtype),
                    (r.random((N, D)) < 0.3).astype(dtype)), {}
        return make

    tp = _torch_peer
    return [_preallocated(c) for c in [
        Case("softmax_cross_entropy_with_integer_labels", f"N={32768 // s},C=1000",
             ice(32768 // s, 1000), _logits_nbytes, {"torch": tp(_peer_ce_int)}),
        Case("softmax_cross_entropy_with_integer_labels", f"N=64,C={262144 // s}",
             ice(64, 262144 // s), _logits_nbytes, {"torch": tp(_peer_ce_int)}),
        Case("softmax_cross_entropy", f"N={8192 // s},C=1000", dense(8192 // s, 1000),
             _logits_nbytes, {"torch": tp(_peer_ce_dense)}),
        Case("kl_divergence", f"N={8192 // s},C=1000", dense(8192 // s, 1000, True),
             _logits_nbytes, {"torch": tp(_peer_kl)}),
        Case("softmax_kl_divergence", f"N={8192 // s},C=1000", dense(8192 // s, 1000),
             _logits_nbytes, {"torch": tp(_peer_softmax_kl)}),
        Case("multiclass_hinge", f"N={32768 // s},C=100", floats(1, 32768 // s, 100, "int"),
             _logits_nbytes, {"torch": tp(_peer_hinge)}),
        Case("cosine_embedding", f"N={32768 // s},D=256", floats(2, 32768 // s, 256, "pm1"),
             _nbytes, {"torch": tp(_peer_cemb)}, argnums=(0, 1)),
        Case("cosine_distance", f"N={32768 // s},D=256", floats(2, 32768 // s, 256), _nbytes,
             {"torch": tp(_peer_cdist)}, argnums=(0, 1)),
        Case("triplet_margin", f"N={32768 // s},D=256", floats(3, 32768 // s, 256), _nbytes,
             {"torch": tp(_peer_triplet)}, argnums=(0, 1, 2)),
        Case("mean_pairwise_squared_error", f"N={32768 // s},D=256", floats(2, 32768 // s, 256),
             _nbytes, {"torch": tp(_peer_mpse)}, argnums=(0, 1)),
        Case("nll_loss", f"N={32768 // s},C=1000", ice(32768 // s, 1000), _logits_nbytes,
             {"torch": tp(_peer_nll)}),
        Case("categorical_hinge", f"N={32768 // s},C=100", dense(32768 // s, 100),
             _logits_nbytes, {"torch": tp(_peer_chinge)}),
        Case("poly1_softmax_cross_entropy", f"N={8192 // s},C=1000", dense(8192 // s, 1000),
             _logits_nbytes, {"torch": tp(_peer_poly)}),
        Case("multilabel_soft_margin", f"N={8192 // s},C=1000", dense(8192 // s, 1000),
             _logits_nbytes, {"torch": tp(_peer_mlsm)}),
        Case("categorical_focal_cross_entropy", f"N={32768 // s},C=1000",
             ice(32768 // s, 1000), _logits_nbytes, {"torch": tp(_peer_cfoc)}),
        # options of the row-wise losses beside their PyTorch peers
        Case("multiclass_hinge", f"N={32768 // s},C=100,class_weight",
             weighted(floats(1, 32768 // s, 100, "int"), 100), _logits_nbytes,
             {"torch": tp(_peer_hinge_w)}),
        Case("softmax_cross_entropy", f"N={8192 // s},C=1000,class_weight",
             weighted(dense(8192 // s, 1000), 1000), _logits_nbytes,
             {"torch": tp(_peer_ce_dense_w)}),
        Case("triplet_margin", f"N={32768 // s},D=256,p=1,swap",
             with_kw(floats(3, 32768 // s, 256), p=1.0, swap=True), _nbytes,
             {"torch": tp(_peer_triplet_p1_swap)}, argnums=(0, 1, 2)),
        Case("kl_divergence", f"N={8192 // s},C=1000,batchmean",
             with_kw(dense(8192 // s, 1000, True), reduction="batchmean"), _logits_nbytes,
             {"torch": tp(_peer_kl)}),
        # new losses
        Case("multilabel_margin", f"N={8192 // s},C=100", mlm(8192 // s, 100),
             _logits_nbytes, {"torch": tp(_peer_mlm)}),
        Case("multiclass_sparsemax_loss", f"N={32768 // s},C=1000", ice(32768 // s, 1000),
             _logits_nbytes, {"torch": tp(_peer_msm)}),
        Case("dice", f"N=64,D={65536 // s}", seg(64, 65536 // s), _nbytes,
             {"torch": tp(_peer_tversky(0.5, 0.5, 2.0))}, argnums=(0, 1)),
        Case("tversky", f"N=64,D={65536 // s},alpha=0.3,beta=0.7",
             with_kw(seg(64, 65536 // s), alpha=0.3, beta=0.7), _nbytes,
             {"torch": tp(_peer_tversky(0.3, 0.7, 1.0))}, argnums=(0, 1)),
    ]]
