"""fastloss against PyTorch (CPU, float64): values and autograd gradients.

Optional (skipped without torch); run by scripts/compare_peers/run.sh.  Each case draws
small random inputs with a fixed seed and compares the reduced value and the gradient
with respect to every differentiable input.  PyTorch semantics that differ from
fastloss's are mapped explicitly (see the comments).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastloss as fl  # noqa: E402

RNG = np.random.default_rng(2026)
RT = 1e-10


def T(a, grad=False):
    return torch.tensor(np.asarray(a), dtype=torch.float64 if np.asarray(a).dtype.kind == "f"
                        else None, requires_grad=grad)


def vg(f, nums, *args, **kw):
    return fl.value_and_grad(f, nums)(*args, **kw)


def close(a, b, rt=RT, at=1e-12, msg=""):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=rt, atol=at, err_msg=msg)


def torch_vg(fn, inputs, wrt=(0,)):
    ts = [T(a, grad=(i in wrt)) for i, a in enumerate(inputs)]
    v = fn(*ts)
    v.sum().backward()
    return v.detach().numpy(), [ts[i].grad.numpy() for i in wrt]


N = 7
X = RNG.normal(size=N) * 2
Y = RNG.normal(size=N)
P01 = RNG.uniform(0.05, 0.95, N)
Y01 = RNG.uniform(size=N)
PM = np.where(RNG.random(N) < 0.5, -1.0, 1.0)
CNT = RNG.poisson(2.0, N).astype(float)


ELEMENTWISE = [
    # (fastloss name, fastloss kw, inputs, torch fn(pred, target) -> reduced mean)
    ("absolute_error", {}, (X, Y), lambda p, t: F.l1_loss(p, t)),
    ("squared_error", {}, (X, Y), lambda p, t: F.mse_loss(p, t)),
    ("huber", {"delta": 0.7}, (X, Y), lambda p, t: F.huber_loss(p, t, delta=0.7)),
    ("smooth_l1", {"beta": 0.6}, (X, Y), lambda p, t: F.smooth_l1_loss(p, t, beta=0.6)),
    ("smooth_l1", {"beta": 0.0}, (X, Y), lambda p, t: F.smooth_l1_loss(p, t, beta=0.0)),
    ("sigmoid_binary_cross_entropy", {"pos_weight": 2.5}, (X, Y01),
     lambda p, t: F.binary_cross_entropy_with_logits(
         p, t, pos_weight=torch.tensor(2.5, dtype=torch.float64))),
    # PyTorch clamps log at −100; inside (eps, 1 − eps) clipping is inactive and they agree
    ("binary_cross_entropy", {}, (P01, Y01), lambda p, t: F.binary_cross_entropy(p, t)),
    ("logistic", {}, (X, PM), lambda p, t: F.soft_margin_loss(p, t)),
    ("poisson_nll", {"log_input": True}, (X, CNT),
     lambda p, t: F.poisson_nll_loss(p, t, log_input=True)),
    ("poisson_nll", {"log_input": True, "full": True}, (X, CNT),
     lambda p, t: F.poisson_nll_loss(p, t, log_input=True, full=True)),
    ("poisson_nll", {"log_input": False}, (P01 * 3, CNT),
     lambda p, t: F.poisson_nll_loss(p, t, log_input=False)),
    ("hinge", {"margin": 1.0}, (X, PM),   # hinge_embedding is different; write it out
     lambda p, t: torch.clamp(1.0 - t * p, min=0).mean()),
]


@pytest.mark.parametrize("case", ELEMENTWISE, ids=[f"{c[0]}-{i}" for i, c in enumerate(ELEMENTWISE)])
def test_elementwise_against_torch(case):
    name, kw, inputs, tfn = case
    v, g = vg(getattr(fl, name), 0, *inputs, **kw)
    tv, (tg,) = torch_vg(tfn, inputs)
    close(v, tv, msg=name)
    close(g, tg, msg=name)


def test_sigmoid_focal_against_torchvision():
    tv = pytest.importorskip("torchvision.ops")
    for alpha, gamma in ((0.25, 2.0), (-1.0, 0.0), (0.6, 1.5)):
        v, g = vg(fl.sigmoid_focal, 0, X, Y01, alpha=alpha, gamma=gamma, reduction="sum")
        tvv, (tg,) = torch_vg(lambda p, t: tv.sigmoid_focal_loss(p, t, alpha=alpha, gamma=gamma,
                                                                  reduction="sum"), (X, Y01))
        close(v, tvv)
        close(g, tg)


B, C = 5, 4
LOGITS = RNG.normal(size=(B, C)) * 2
LABELS = RNG.integers(0, C, B)
PROBS = RNG.dirichlet(np.ones(C), size=B)
CW = RNG.uniform(0.5, 2.0, C)


@pytest.mark.parametrize("s", [0.0, 0.2])
@pytest.mark.parametrize("cw", [None, CW])
def test_cross_entropy_integer(s, cw):
    k = LABELS.copy()
    k[1] = -100  # ignore_index
    v, g = vg(fl.softmax_cross_entropy_with_integer_labels, 0, LOGITS, k, label_smoothing=s,
              class_weight=cw)
    w = None if cw is None else T(cw)
    tv, (tg,) = torch_vg(lambda x: F.cross_entropy(x, torch.tensor(k), weight=w,
                                                    label_smoothing=s), (LOGITS,))
    close(v, tv)
    close(g, tg)


@pytest.mark.parametrize("s", [0.0, 0.3])
def test_cross_entropy_dense(s):
    v, (gx, gy) = vg(fl.softmax_cross_entropy, (0, 1), LOGITS, PROBS, label_smoothing=s)
    tv, (tgx, tgy) = torch_vg(lambda x, y: F.cross_entropy(x, y, label_smoothing=s),
                              (LOGITS, PROBS), wrt=(0, 1))
    close(v, tv)
    close(gx, tgx)
    close(gy, tgy)


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(log_target):
    lp = LOGITS - np.log(np.exp(LOGITS).sum(-1, keepdims=True))
    t = np.log(PROBS) if log_target else PROBS
    v, (g1, g2) = vg(fl.kl_divergence, (0, 1), lp, t, log_target=log_target, reduction="sum")
    tv, (tg1, tg2) = torch_vg(lambda a, b: F.kl_div(a, b, reduction="sum",
                                                     log_target=log_target), (lp, t), (0, 1))
    close(v, tv)
    close(g1, tg1)
    close(g2, tg2)


def test_multi_margin():
    # PyTorch divides the sum over wrong classes by C; fastloss's Weston–Watkins does not
    v, g = vg(fl.multiclass_hinge, 0, LOGITS, LABELS, margin=1.0, reduction="sum")
    tv, (tg,) = torch_vg(lambda x: F.multi_margin_loss(x, torch.tensor(LABELS), margin=1.0,
                                                        reduction="sum") * C, (LOGITS,))
    close(v, tv)
    close(g, tg)


@pytest.mark.parametrize("margin", [0.0, -0.2, 0.4])
def test_cosine_embedding(margin):
    a, b = RNG.normal(size=(B, C)), RNG.normal(size=(B, C))
    y = np.array([1, -1, 1, -1, -1])
    v, (ga, gb) = vg(fl.cosine_embedding, (0, 1), a, b, y, margin=margin, reduction="sum")
    tv, (tga, tgb) = torch_vg(lambda p, q: F.cosine_embedding_loss(
        p, q, torch.tensor(y), margin=margin, reduction="sum"), (a, b), (0, 1))
    close(v, tv, rt=1e-7)   # PyTorch's eps placement differs (1e-8 per norm)
    close(ga, tga, rt=1e-6, at=1e-8)
    close(gb, tgb, rt=1e-6, at=1e-8)


@pytest.mark.parametrize("margin", [1.0, 0.3])
def test_triplet(margin):
    a, p, n = (RNG.normal(size=(B, C)) for _ in range(3))
    v, gs = vg(fl.triplet_margin, (0, 1, 2), a, p, n, margin=margin, reduction="sum")
    tv, tgs = torch_vg(lambda x, y, z: F.triplet_margin_loss(x, y, z, margin=margin,
                                                              reduction="sum"), (a, p, n),
                       (0, 1, 2))
    close(v, tv)
    for g1, g2 in zip(gs, tgs):
        close(g1, g2)


def test_triplet_float32_anchor_equals_positive():
    a = np.full((2, 4), 1000.0, np.float32)
    n = a + 3
    v, (ga, gp, gn) = vg(fl.triplet_margin, (0, 1, 2), a, a.copy(), n, margin=10.0,
                         reduction="sum")
    ts = [torch.tensor(z, requires_grad=True) for z in (a, a.copy(), n)]
    F.triplet_margin_loss(*ts, margin=10.0, reduction="sum").backward()
    close(ga, ts[0].grad.numpy(), rt=1e-4, at=1e-4)
    close(gp, ts[1].grad.numpy(), rt=1e-4, at=1e-4)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("zero_infinity", [False, True])
def test_ctc(reduction, zero_infinity):
    Tn, Nb, Cc = 12, 4, 5
    x = RNG.normal(size=(Tn, Nb, Cc)) * 3
    il = np.array([12, 10, 3, 8])
    ll = np.array([3, 4, 3, 1])   # sequence 2 is impossible (3 labels with a repeat in 3 frames)
    lab = np.array([[1, 2, 3, 0], [4, 4, 1, 2], [2, 2, 1, 0], [3, 0, 0, 0]])
    v, g = vg(fl.ctc_loss, 0, x, lab, il, ll, layout="TNC", reduction=reduction,
              zero_infinity=zero_infinity)
    xt = T(x, grad=True)
    tv = F.ctc_loss(F.log_softmax(xt, -1), torch.tensor(lab), torch.tensor(il),
                    torch.tensor(ll), reduction=reduction, zero_infinity=zero_infinity)
    tv.sum().backward()
    tvn = tv.detach().numpy()
    if not zero_infinity and reduction == "none":
        assert np.isinf(v[2]) and np.isinf(tvn[2])
        close(np.delete(v, 2), np.delete(tvn, 2))
        return
    if not zero_infinity:
        assert np.isinf(v) and np.isinf(tvn)
        return
    close(v, tvn)
    close(g, xt.grad.numpy(), at=1e-10)


def test_ctc_large_losses():
    # feasible alignments whose loss is many hundreds of nats (log-space final sums)
    x = np.where(np.arange(6) == 0, 0.0, -30.0) * np.ones((1, 100, 6))
    lab = np.tile([1, 2], 15)[None]
    v = fl.ctc_loss(x, lab, [100], [30], reduction="none")
    tv = F.ctc_loss(F.log_softmax(T(x).permute(1, 0, 2), -1), torch.tensor(lab),
                    torch.tensor([100]), torch.tensor([30]), reduction="none")
    close(v, tv.numpy(), rt=1e-9)
