"""Row-wise options and losses: class weights of multiclass_hinge and of the dense
cross-entropy, triplet_margin with p and swap, cosine_embedding with optax's epsilon,
kl_divergence's batchmean and per-element terms; multilabel_margin,
multiclass_sparsemax_loss, dice and tversky.  Values against float64 NumPy references and
PyTorch (skipped without it), gradients and Hessians against central differences.

Calls request every differentiable input (``value_and_grad``), so each loss compiles few
kernel variants.
"""
import numpy as np
import pytest
from scipy.special import log_softmax

import fastloss as fl
from fastloss import _rowwise

RNG = np.random.default_rng(2024)
N, C = 5, 6


def vg(f, *args, **kw):
    info = f.__fastloss__
    nums = tuple(info.inputs.index(n) for n in info.differentiable)
    return fl.value_and_grad(f, nums[0] if len(nums) == 1 else nums)(*args, **kw)


def fd(fun, x, h=1e-6):
    """Central differences of the scalar ``fun`` at ``x``."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


def fd2(fun, x, h=1e-4):
    """Central second differences of the scalar ``fun``: the Hessian's diagonal."""
    g = np.zeros_like(x)
    f0 = fun(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (fun(x + e) - 2 * f0 + fun(x - e)) / h ** 2
    return g


def probs(shape):
    p = RNG.random(shape) + 0.05
    return p / p.sum(-1, keepdims=True)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------ references (float64)
def sparsemax(z):
    """Sort-based sparsemax of one row (Martins & Astudillo, Algorithm 1)."""
    zs = np.sort(z)[::-1]
    cs = np.cumsum(zs)
    r = np.arange(1, len(z) + 1)
    kk = r[1 + r * zs > cs].max()
    return np.maximum(z - (cs[kk - 1] - 1) / kk, 0)


def ref_msm(z, k):
    """optax's _multiclass_sparsemax_loss, transcribed to NumPy."""
    out = []
    for zi, ki in zip(z, k):
        p = sparsemax(zi)
        s = zi - zi[ki]
        s[ki] = 0.0
        out.append(p @ np.where(p > 0, s, 0.0) + 0.5 * (1 - p @ p))
    return np.array(out)


def ref_tversky(p, t, a=0.5, b=0.5, nr=1e-5, dr=1e-5):
    """MONAI TverskyLoss per sample, every non-batch axis reduced."""
    p, t = p.reshape(len(p), -1), t.reshape(len(t), -1)
    tp, fp, fn = (p * t).sum(1), (p * (1 - t)).sum(1), ((1 - p) * t).sum(1)
    return 1 - (tp + nr) / (tp + a * fp + b * fn + dr)


def ref_dice(p, t, nr=1e-5, dr=1e-5):
    """MONAI DiceLoss (sigmoid=False) per sample, every non-batch axis reduced."""
    p, t = p.reshape(len(p), -1), t.reshape(len(t), -1)
    return 1 - (2 * (p * t).sum(1) + nr) / (p.sum(1) + t.sum(1) + dr)


def ref_cos_optax(a, b, y, eps, margin=0.0):
    na = np.maximum(np.linalg.norm(a, axis=-1), eps)
    nb = np.maximum(np.linalg.norm(b, axis=-1), eps)
    cs = (a * b).sum(-1) / (na * nb)
    return np.where(y > 0, 1 - cs, np.maximum(0, cs - margin))


def ref_mlm(x, tg):
    """PyTorch's multilabel_margin_loss loop, per row."""
    out = []
    for xi, ti in zip(x, tg):
        ys = []
        for v in ti:
            if v < 0:
                break
            ys.append(v)
        ist = np.zeros(len(xi), bool)
        ist[ys] = True
        out.append(sum(max(0.0, 1 - xi[j] + xi[i]) for j in ys for i in range(len(xi))
                       if not ist[i]) / len(xi))
    return np.array(out)


# ------------------------------------------------------------------------ options
def test_multiclass_hinge_class_weight_torch(torch):
    F = torch.nn.functional
    x = RNG.normal(size=(N, C))
    k = RNG.integers(0, C, N)
    cw = RNG.random(C) + 0.3
    for p in (1, 2):
        for red in ("none", "sum", "mean"):
            xt = torch.tensor(x, requires_grad=True)
            lt = F.multi_margin_loss(xt, torch.tensor(k), p=p, margin=0.7,
                                     weight=torch.tensor(cw), reduction=red)
            lt.sum().backward()
            v, g = vg(fl.multiclass_hinge, x, k, p=p, margin=0.7, class_weight=cw,
                      reduction=red)
            np.testing.assert_allclose(v, lt.detach().numpy() * C, rtol=1e-13)
            np.testing.assert_allclose(g, xt.grad.numpy() * C, rtol=1e-13, atol=1e-15)
    # crammer_singer: w_y times the row (value and gradient); 'mean' divides by Σ sample w
    w = np.array([0.5, 2.0, 1.0, 0.0, 1.5])
    d = np.where(np.arange(C) == k[:, None], -np.inf, x - x[np.arange(N), k][:, None] + 1)
    v0 = np.maximum(0, d.max(1))
    g0 = (d == d.max(1, keepdims=True)) * 1.0
    g0[np.arange(N), k] = -1.0
    g0 *= (v0 > 0)[:, None]
    v, g = vg(fl.multiclass_hinge, x, k, kind="crammer_singer", class_weight=cw,
              sample_weight=w)
    np.testing.assert_allclose(v, np.sum(w * cw[k] * v0) / w.sum(), rtol=1e-14)
    np.testing.assert_allclose(g, (w * cw[k])[:, None] * g0 / w.sum(), rtol=1e-14)
    with pytest.raises(ValueError, match=r"class_weight must have shape \(6,\)"):
        fl.multiclass_hinge(x, k, class_weight=np.ones(5))


def test_softmax_cross_entropy_class_weight_torch(torch):
    F = torch.nn.functional
    x = RNG.normal(size=(N, C)) * 2
    y = probs((N, C))
    cw = RNG.random(C) + 0.3
    for s in (0.0, 0.2):
        for red in ("none", "sum", "mean"):
            xt = torch.tensor(x, requires_grad=True)
            yt = torch.tensor(y, requires_grad=True)
            lt = F.cross_entropy(xt, yt, weight=torch.tensor(cw), label_smoothing=s,
                                 reduction=red)
            lt.sum().backward()
            v, (gx, gy) = vg(fl.softmax_cross_entropy, x, y, class_weight=cw,
                             label_smoothing=s, reduction=red)
            np.testing.assert_allclose(v, lt.detach().numpy(), rtol=1e-13)
            np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(gy, yt.grad.numpy(), rtol=1e-12, atol=1e-15)
    # the Hessian's diagonal: (Σ w y') p (1 − p), against differences of the gradient
    g, h = fl.grad_and_hessian(fl.softmax_cross_entropy)(x, y, class_weight=cw,
                                                         reduction="sum")
    p = np.exp(log_softmax(x, -1))
    np.testing.assert_allclose(h, (y * cw).sum(-1, keepdims=True) * p * (1 - p), rtol=1e-12)
    def gref(z):   # the gradient of −Σ w y log softmax(z): (Σ w y) softmax − w y
        return (cw * y).sum(-1, keepdims=True) * np.exp(log_softmax(z, -1)) - cw * y
    np.testing.assert_allclose(g, gref(x), rtol=1e-12, atol=1e-15)
    fdh = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = 1e-5
        fdh[i] = (gref(x + e)[i] - gref(x - e)[i]) / 2e-5
    np.testing.assert_allclose(h, fdh, rtol=1e-6, atol=1e-9)
    # float32
    v32, _ = vg(fl.softmax_cross_entropy, x.astype(np.float32), y.astype(np.float32),
                class_weight=cw, reduction="none")
    ref = -(cw * y * log_softmax(x, -1)).sum(-1)
    assert v32.dtype == np.float32
    np.testing.assert_allclose(v32, ref, rtol=2e-6)


def ref_triplet(a, b, c, margin=1.0, p=2.0, eps=1e-6, swap=False):
    """PyTorch's triplet_margin_loss per row (pairwise_distance with p and eps)."""
    def d(x, y):
        return np.sum(np.abs(x - y + eps) ** p, -1) ** (1 / p)
    dn = np.minimum(d(a, c), d(b, c)) if swap else d(a, c)
    return np.maximum(0, d(a, b) - dn + margin)


def _triplets():
    a, b, c = RNG.normal(size=(3, 8, C))
    c[:4] = b[:4] + 0.1 * RNG.normal(size=(4, C))     # d(p, n) < d(a, n): the swap acts
    return a, b, c


def test_triplet_p_and_swap_torch(torch):
    F = torch.nn.functional
    a, b, c = _triplets()
    swapped = (np.linalg.norm(b - c + 1e-6, axis=1) < np.linalg.norm(a - c + 1e-6, axis=1))
    assert swapped[:4].all()
    for p, swap in ((1.0, False), (3.0, False), (2.0, True), (1.5, True), (1.0, True)):
        for red in ("none", "mean"):
            ts = [torch.tensor(z, requires_grad=True) for z in (a, b, c)]
            lt = F.triplet_margin_loss(*ts, margin=1.5, p=p, swap=swap, reduction=red)
            lt.sum().backward()
            v, gs = vg(fl.triplet_margin, a, b, c, margin=1.5, p=p, swap=swap,
                       reduction=red)
            np.testing.assert_allclose(v, lt.detach().numpy(), rtol=1e-12)
            for gi, ti in zip(gs, ts):
                np.testing.assert_allclose(gi, ti.grad.numpy(), rtol=1e-11, atol=1e-14)
    # central differences of a NumPy reference (p = 3, swap)
    kw = dict(margin=1.5, p=3.0, swap=True)
    v, gs = vg(fl.triplet_margin, a, b, c, reduction="sum", **kw)
    np.testing.assert_allclose(v, ref_triplet(a, b, c, **kw).sum(), rtol=1e-13)
    for i, gi in enumerate(gs):
        def f(z, i=i):
            args = [a, b, c]
            args[i] = z
            return ref_triplet(*args, **kw).sum()
        np.testing.assert_allclose(gi, fd(f, [a, b, c][i]), rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="p must be >= 1"):
        fl.triplet_margin(a, b, c, p=0.5)
    with pytest.raises(ValueError, match="squared=True takes p=2 and swap=False"):
        fl.triplet_margin(a, b, c, squared=True, swap=True)
    with pytest.raises(TypeError, match="swap must be a bool"):
        fl.triplet_margin(a, b, c, swap=1)


def test_cosine_embedding_optax_epsilon():
    a, b = RNG.normal(size=(2, N, 4))
    a[0] *= 1e-3                         # a clamped norm: no gradient through it
    b[3] = 0.0                           # a zero row: cos = 0
    y = np.array([1.0, -1.0, 1.0, 1.0, -1.0])
    b1 = b.copy()
    b1[3] = RNG.normal(size=4)
    for eps, margin, bb in ((0.1, 0.0, b), (1e-8, -0.3, b1)):
        v, (ga, gb) = vg(fl.cosine_embedding, a, bb, y, epsilon=eps, margin=margin,
                         reduction="none")
        np.testing.assert_allclose(v, ref_cos_optax(a, bb, y, eps, margin), rtol=1e-13,
                                   atol=1e-15)
        np.testing.assert_allclose(
            ga, fd(lambda z: ref_cos_optax(z, bb, y, eps, margin).sum(), a), rtol=1e-6,
            atol=1e-8)
        np.testing.assert_allclose(
            gb, fd(lambda z: ref_cos_optax(a, z, y, eps, margin).sum(), bb), rtol=1e-6,
            atol=1e-8)
    # y = 1 gives optax's cosine_distance; epsilon = 0 and a zero row: NaN, as optax
    v, _ = vg(fl.cosine_embedding, a, b, np.ones(N), epsilon=0.0, reduction="none")
    assert np.isnan(v[3]) and not np.isnan(v[[0, 1, 2, 4]]).any()
    with pytest.raises(ValueError, match="epsilon must be >= 0"):
        fl.cosine_embedding(a, b, y, epsilon=-1.0)


def test_kl_batchmean_and_elementwise_torch(torch):
    F = torch.nn.functional
    T = torch.tensor
    lp = np.log(probs((N, C)))
    t = probs((N, C))
    t[1, 2] = 0.0
    for lt_ in (False, True):
        tt = np.log(t + 1e-300) if lt_ else t
        for red, kw in (("batchmean", {}), ("sum", {"elementwise": True}),
                        ("mean", {"elementwise": True}), ("none", {"elementwise": True})):
            xt = T(lp, requires_grad=True)
            ref = F.kl_div(xt, T(tt), reduction=red, log_target=lt_)
            ref.sum().backward()
            v, g = vg(fl.kl_divergence, lp, tt, reduction=red, log_target=lt_, **kw)
            np.testing.assert_allclose(v, ref.detach().numpy(), rtol=1e-13, atol=1e-300)
            np.testing.assert_allclose(g[0], xt.grad.numpy(), rtol=1e-13, atol=1e-300)
    # (N, C, L) with the class axis 1: batchmean divides by N, terms in the input layout
    lp3 = log_softmax(RNG.normal(size=(2, C, 3)), 1)
    t3 = np.moveaxis(probs((2, 3, C)), -1, 1)
    for red in ("batchmean", "none"):
        xt = T(lp3, requires_grad=True)
        ref = F.kl_div(xt, T(t3), reduction=red)
        ref.sum().backward()
        v, g = vg(fl.kl_divergence, lp3, t3, axis=1, reduction=red, elementwise=True)
        np.testing.assert_allclose(v, ref.detach().numpy(), rtol=1e-13, atol=1e-300)
        np.testing.assert_allclose(g[0], xt.grad.numpy(), rtol=1e-13)
    # sample weights: terms times the row's weight; 'mean' is Σ w ℓ / (Σw · C)
    w = np.array([0.5, 2.0, 1.0, 0.0, 1.5])
    terms = t * (np.log(np.where(t > 0, t, 1)) - lp)
    e, _ = vg(fl.kl_divergence, lp, t, reduction="none", elementwise=True, sample_weight=w)
    np.testing.assert_allclose(e, w[:, None] * terms, rtol=1e-14, atol=1e-300)
    out = np.empty((N, C))
    assert vg(fl.kl_divergence, lp, t, reduction="none", elementwise=True, out=out)[0] is out
    np.testing.assert_allclose(out, terms, rtol=1e-14, atol=1e-300)
    m, (gm, _) = vg(fl.kl_divergence, lp, t, elementwise=True, sample_weight=w)
    np.testing.assert_allclose(m, (w[:, None] * terms).sum() / (w.sum() * C), rtol=1e-14)
    np.testing.assert_allclose(gm, -w[:, None] * t / (w.sum() * C), rtol=1e-14)
    bm, (gb, _) = vg(fl.kl_divergence, lp, t, reduction="batchmean", sample_weight=w)
    np.testing.assert_allclose(bm, (w[:, None] * terms).sum() / N, rtol=1e-14)
    np.testing.assert_allclose(gb, -w[:, None] * t / N, rtol=1e-14)
    with pytest.raises(ValueError, match="reduction must be one of"):
        fl.softmax_kl_divergence(lp, t, reduction="batchmean")
    with pytest.raises(TypeError, match="elementwise must be a bool"):
        fl.kl_divergence(lp, t, elementwise=1)


# ------------------------------------------------------------------------ new losses
def test_multilabel_margin_torch(torch):
    F = torch.nn.functional
    x = RNG.normal(size=(N, C))
    tg = -np.ones((N, C), np.int64)
    tg[0, :2] = [1, 3]
    tg[1, :3] = [0, -1, 4]            # 4 after the first -1: ignored
    tg[2, :3] = [2, 2, 5]             # listed twice: counted twice
    tg[4] = np.arange(C)[::-1]        # every class a target: 0
    for red in ("none", "sum", "mean"):
        xt = torch.tensor(x, requires_grad=True)
        lt = F.multilabel_margin_loss(xt, torch.tensor(tg), reduction=red)
        lt.sum().backward()
        v, g = vg(fl.multilabel_margin, x, tg, reduction=red)
        np.testing.assert_allclose(v, lt.detach().numpy(), rtol=1e-13, atol=1e-16)
        np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(vg(fl.multilabel_margin, x, tg, reduction="none")[0],
                               ref_mlm(x, tg), rtol=1e-13)
    np.testing.assert_allclose(vg(fl.multilabel_margin, x, tg, reduction="sum")[1],
                               fd(lambda z: ref_mlm(z, tg).sum(), x), rtol=1e-7, atol=1e-9)
    w = np.array([0.5, 2.0, 1.0, 0.0, 1.5])
    v32, _ = vg(fl.multilabel_margin, x.astype(np.float32), tg, sample_weight=w)
    assert v32.dtype == np.float32
    np.testing.assert_allclose(v32, np.sum(w * ref_mlm(x, tg)) / w.sum(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"class indices in \[0, 6\) before its first -1"):
        fl.multilabel_margin(x, np.full((N, C), 6))
    with pytest.raises(TypeError, match="target must be an integer array"):
        fl.multilabel_margin(x, x)
    with pytest.raises(ValueError, match="does not match scores"):
        fl.multilabel_margin(x, tg[:, :3])


def test_multiclass_sparsemax_loss():
    z = RNG.normal(size=(7, 9)) * 2
    k = RNG.integers(0, 9, 7)
    z[0] = 0.5                       # all tied: p uniform
    z[1] = -np.inf                   # masked classes; the label among them: +inf
    z[1, 2] = 1.0
    k[1] = 7
    z[2, :3] = [5.0, 5.0, -3.0]      # a tie in the support
    P = np.array([sparsemax(r) for r in z])
    v, g = vg(fl.multiclass_sparsemax_loss, z, k, reduction="none")
    np.testing.assert_allclose(v, ref_msm(z, k), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(g, P - np.eye(9)[k], rtol=1e-13, atol=1e-15)
    zf = z[2:]
    kf = k[2:]
    np.testing.assert_allclose(g[2:], fd(lambda u: ref_msm(u, kf).sum(), zf), atol=1e-7)
    g2, h = fl.grad_and_hessian(fl.multiclass_sparsemax_loss)(z, k, reduction="none")
    S = (P > 0).sum(1, keepdims=True)
    np.testing.assert_array_equal(h, (P > 0) * (1 - 1 / S))
    np.testing.assert_array_equal(g2, g)
    # the Hessian's diagonal against second differences away from the support's kinks
    np.testing.assert_allclose(h[3:], fd2(lambda u: ref_msm(u, k[3:]).sum(), z[3:]),
                               atol=1e-5)
    # float32, sample weights, axis
    w = RNG.random(7)
    v32, _ = vg(fl.multiclass_sparsemax_loss, z.astype(np.float32), k, sample_weight=w,
                reduction="sum")
    assert v32.dtype == np.float32 and v32 == np.inf
    v32, _ = vg(fl.multiclass_sparsemax_loss, zf.T.astype(np.float32), kf, axis=0,
                reduction="none")
    np.testing.assert_allclose(v32, ref_msm(zf, kf), rtol=2e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 9\)"):
        fl.multiclass_sparsemax_loss(z, k + 9)


def test_sparsemax_threshold_chunked_and_large_rows(monkeypatch):
    # long rows of many near-ties: the threshold's fixed point on the exact support
    x = np.concatenate([RNG.normal(size=(1, 30)) * 0.05, RNG.normal(size=(1, 7))], 1)
    k = np.array([3])
    v, g = vg(fl.multiclass_sparsemax_loss, x, k, reduction="none")
    np.testing.assert_allclose(v, ref_msm(x, k), rtol=1e-13)
    np.testing.assert_allclose(g, sparsemax(x[0])[None] - np.eye(37)[k], atol=1e-15)
    monkeypatch.setattr(_rowwise, "CHUNK", 4)
    assert _rowwise._use_chunks(1, 37)
    monkeypatch.setattr("fastloss._cpu.want_parallel", lambda *a, **kw: True)
    v2, g2 = vg(fl.multiclass_sparsemax_loss, x, k, reduction="none")
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(g2, g)


def test_dice_and_tversky():
    p = RNG.random((4, 2, 3))
    t = (RNG.random((4, 2, 3)) < 0.5).astype(float)
    t[0] = RNG.random((2, 3))                       # soft targets too
    v, (gp, gt) = vg(fl.dice, p, t, reduction="none")
    np.testing.assert_allclose(v, ref_dice(p, t), rtol=1e-14)
    np.testing.assert_allclose(gp, fd(lambda z: ref_dice(z, t).sum(), p), rtol=1e-6,
                               atol=1e-9)
    np.testing.assert_allclose(gt, fd(lambda z: ref_dice(p, z).sum(), t), rtol=1e-6,
                               atol=1e-9)
    kw = dict(alpha=0.3, beta=0.7, smooth_nr=0.1, smooth_dr=0.2)
    w = np.array([0.5, 2.0, 0.0, 1.0])
    v, (gp, gt) = vg(fl.tversky, p, t, sample_weight=w, **kw)
    ref = lambda a, b: np.sum(w * ref_tversky(a, b, 0.3, 0.7, 0.1, 0.2)) / w.sum()  # noqa
    np.testing.assert_allclose(v, ref(p, t), rtol=1e-14)
    np.testing.assert_allclose(gp, fd(lambda z: ref(z, t), p), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gt, fd(lambda z: ref(p, z), t), rtol=1e-6, atol=1e-9)
    for f, kwf, r in ((fl.tversky, dict(kw, sample_weight=w), lambda z: ref(z, t)),
                      (fl.dice, {"sample_weight": w}, lambda z: np.sum(w * ref_dice(z, t))
                       / w.sum())):
        g, h = fl.grad_and_hessian(f)(p, t, **kwf)
        np.testing.assert_allclose(h, fd2(r, p), rtol=1e-5, atol=1e-7)
    # α = β = ½ is Dice with halved smoothing; float32
    np.testing.assert_allclose(vg(fl.tversky, p, t, smooth_nr=0.5e-5, smooth_dr=0.5e-5)[0],
                               vg(fl.dice, p, t)[0], rtol=1e-14)
    v32, _ = vg(fl.tversky, p.astype(np.float32), t.astype(np.float32), reduction="none",
                **kw)
    assert v32.dtype == np.float32
    np.testing.assert_allclose(v32, ref_tversky(p, t, 0.3, 0.7, 0.1, 0.2), rtol=1e-6)
    # an empty prediction and target with smoothing: 0 (both smoothings equal; the ratio
    # is 1 to rounding)
    assert abs(vg(fl.dice, np.zeros((1, 4)), np.zeros((1, 4)))[0]) < 1e-15
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        fl.tversky(p, t, alpha=-0.1)
    with pytest.raises(ValueError, match="smooth_dr must be finite"):
        fl.dice(p, t, smooth_dr=np.inf)


def test_nan_propagates_new():
    x = RNG.normal(size=(3, C))
    x[1, 2] = np.nan
    a = RNG.normal(size=(3, C))
    k = np.array([0, 1, 2])
    tg = np.array([[0, -1, 0, 0, 0, 0], [1, 4, -1, 0, 0, 0], [5, -1, 0, 0, 0, 0]])
    y = probs((3, C))
    pm = np.array([1.0, -1.0, 1.0])
    for f, args, kw in [(fl.multiclass_hinge, (x, k), {"class_weight": np.ones(C)}),
                        (fl.softmax_cross_entropy, (x, y), {"class_weight": np.ones(C)}),
                        (fl.triplet_margin, (x, a, a + 1), {"p": 1.5, "swap": True}),
                        (fl.cosine_embedding, (x, a, pm), {"epsilon": 0.1}),
                        (fl.multilabel_margin, (x, tg), {}),
                        (fl.multiclass_sparsemax_loss, (x, k), {}),
                        (fl.dice, (x, y), {}),
                        (fl.tversky, (x, y), {"alpha": 0.2})]:
        v, _ = vg(f, *args, reduction="none", **kw)
        assert np.isnan(v[1]) and not np.isnan(v[0]) and not np.isnan(v[2]), f.__name__


def test_registry_new():
    for name, hess in (("multilabel_margin", False), ("multiclass_sparsemax_loss", True),
                       ("dice", True), ("tversky", True)):
        info = fl.LOSSES[name]
        assert info.kind == "rowwise" and name in fl.__all__
        assert info.has_hessian == hess
        assert getattr(fl, name).__doc__
