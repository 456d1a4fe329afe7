"""fastloss.gluon: MXNet Gluon's loss classes over the fused kernels.

Values against float64 NumPy transcriptions of Gluon's formulas (``gluon/loss.py``),
gradients against central differences of the layer's own per-sample losses, the loss
tutorial's worked examples, and CTC (blank last, −1 padding) against a NumPy forward
recursion.  Most calls go through ``loss_and_grad`` with array sample weights so that each
loss compiles few kernel variants.
"""
import numpy as np
import pytest
from scipy.special import log_softmax

import fastloss as fl
from fastloss import gluon

RNG = np.random.default_rng(20240605)


def mean_nonbatch(loss, ba):
    axes = tuple(i for i in range(loss.ndim) if i != ba)
    return loss.mean(axis=axes) if axes else loss


def fd_grad(f, x, h=1e-6, where=None):
    """Central differences of sum(f(x)) for every element of x (or those in ``where``)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in (np.ndindex(x.shape) if where is None else where):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (np.sum(_val(f(xp))) - np.sum(_val(f(xm)))) / (2 * h)
    return g


def _val(r):
    return r[0] if isinstance(r, tuple) else r


def softplus(x):
    return np.logaddexp(0.0, x)


# ---------------------------------------------------------------- the tutorial's examples
def test_tutorial_l2():
    loss = gluon.L2Loss()
    np.testing.assert_allclose(loss(np.ones(2), 2 * np.ones(2)), [0.5, 0.5], rtol=1e-15)
    np.testing.assert_allclose(loss(np.ones(2), 2 * np.ones(2), np.array([1.0, 2.0])),
                               [0.5, 1.0], rtol=1e-15)


def test_tutorial_softmax_ce():
    v = gluon.SoftmaxCrossEntropyLoss()(np.array([[1.0, 10.0], [8.0, 2.0]]), np.array([0, 1]))
    np.testing.assert_allclose(v, [9.0001, 6.0025], atol=1e-4)
    ref = -np.array([log_softmax([1.0, 10.0])[0], log_softmax([8.0, 2.0])[1]])
    np.testing.assert_allclose(v, ref, rtol=1e-13)
    assert gluon.SoftmaxCELoss is gluon.SoftmaxCrossEntropyLoss


def test_tutorial_kldiv():
    pred = np.array([[0.39056206, 1.3068528, 0.39056206, -0.30258512]])
    label = np.array([[0.3, 0.4, 0.1, 0.2]])
    v = gluon.KLDivLoss(from_logits=False)(pred, label)
    ref = np.mean(label * (np.log(label + 1e-12) - log_softmax(pred, axis=-1)), axis=1)
    np.testing.assert_allclose(v, ref, rtol=1e-12)
    np.testing.assert_allclose(v, [0.0254], atol=5e-5)


def test_tutorial_cosine_embedding():
    a = np.array([1.0, 0, 1, 0, 1, 0])
    b = np.array([0.0, 1, 0, 1, 0, 1])
    loss = gluon.CosineEmbeddingLoss()
    np.testing.assert_allclose(loss(a, a, np.array([1.0])), [0.0], atol=1e-15)
    np.testing.assert_allclose(loss(a, b, np.array([-1.0])), [0.0], atol=1e-15)


def test_tutorial_curves():
    curves = gluon.tutorial_curves()
    x = np.arange(-50, 50) / 10.0
    refs = {
        "L1Loss": np.abs(x), "L2Loss": 0.5 * x ** 2,
        "HuberLoss": np.where(np.abs(x) > 1, np.abs(x) - 0.5, 0.5 * x ** 2),
        "SigmoidBCELoss": softplus(-x), "LogisticLoss": softplus(-x),
        "HingeLoss": np.maximum(0, 1 - x), "SquaredHingeLoss": np.maximum(0, 1 - x) ** 2,
    }
    assert set(curves) == set(refs)
    for name, (px, v, g) in curves.items():
        assert px.shape == v.shape == g.shape == (100,)
        np.testing.assert_allclose(px, x, atol=1e-12)
        np.testing.assert_allclose(v, refs[name], rtol=1e-12, atol=1e-12, err_msg=name)


# ------------------------------------------------------------ elementwise classes
def _bce_sigmoid(p, y):
    return -(np.log(p + 1e-12) * y + np.log(1 - p + 1e-12) * (1 - y))


ELEMENTWISE = [
    # (class, ctor kwargs, label kind, reference ℓ(pred, label) before weights)
    (gluon.L1Loss, {"weight": 0.7}, "real", lambda x, y: np.abs(y - x)),
    (gluon.L2Loss, {"weight": 0.7}, "real", lambda x, y: 0.5 * (y - x) ** 2),
    (gluon.HuberLoss, {"rho": 0.8, "weight": 1.3}, "real",
     lambda x, y: np.where(np.abs(y - x) > 0.8, np.abs(y - x) - 0.4,
                           (0.5 / 0.8) * (y - x) ** 2)),
    (gluon.SigmoidBinaryCrossEntropyLoss, {"weight": 0.7}, "unit",
     lambda x, y: np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))),
    (gluon.SigmoidBCELoss, {"from_sigmoid": True, "weight": 0.7}, "unit_prob", _bce_sigmoid),
    (gluon.HingeLoss, {"margin": 1.5, "weight": 0.7}, "pm1",
     lambda x, y: np.maximum(0, 1.5 - x * y)),
    (gluon.SquaredHingeLoss, {"margin": 0.5, "weight": 0.7}, "pm1",
     lambda x, y: np.maximum(0, 0.5 - x * y) ** 2),
    (gluon.LogisticLoss, {"weight": 0.7}, "pm1",
     lambda x, y: softplus(x) - x * (y + 1) / 2),
    (gluon.LogisticLoss, {"weight": 0.7, "label_format": "binary"}, "binary",
     lambda x, y: softplus(x) - x * y),
]


def _labels(kind, shape):
    if kind == "real":
        return RNG.normal(size=shape)
    if kind in ("unit", "unit_prob"):
        return RNG.uniform(size=shape)
    if kind == "pm1":
        return RNG.choice([-1.0, 1.0], size=shape)
    return RNG.choice([0.0, 1.0], size=shape)


@pytest.mark.parametrize("cls,kw,kind,ref", ELEMENTWISE,
                         ids=[f"{c.__name__}-{i}" for i, (c, *_) in enumerate(ELEMENTWISE)])
def test_elementwise_batch_axis_1(cls, kw, kind, ref):
    shape = (3, 4, 2)                   # batch axis 1: 4 samples of 3×2 elements
    x = RNG.uniform(0.05, 0.95, shape) if kind == "unit_prob" else RNG.normal(size=shape) * 2
    y = _labels(kind, shape)
    sw = RNG.uniform(0.2, 2.0, (1, 4, 1))
    loss = cls(batch_axis=1, **kw)
    v, g = loss.loss_and_grad(x, y, sample_weight=sw)
    w = kw.get("weight", 1.0)
    expect = mean_nonbatch(ref(x, y) * sw * w, 1)
    assert v.shape == (4,)
    np.testing.assert_allclose(v, expect, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g, fd_grad(lambda z: loss.loss_and_grad(z, y, sample_weight=sw), x),
                               rtol=1e-6, atol=1e-8)


def test_l2_defaults_and_1d_sample_weight_alignment():
    x, y = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    sw = np.array([1.0, 0.0, 2.5])
    v, g = gluon.L2Loss().loss_and_grad(x, y, sw)        # 1-D weight aligned with batch axis
    np.testing.assert_allclose(v, np.mean(0.5 * (x - y) ** 2 * sw[:, None], axis=1), rtol=1e-13)
    np.testing.assert_allclose(g, (x - y) * sw[:, None] / 5, rtol=1e-13)
    # label of a different shape with the same number of elements is reshaped (Gluon)
    np.testing.assert_allclose(gluon.L2Loss()(x, y.reshape(-1), sw), v, rtol=1e-15)


def test_negative_global_weight():
    x, y = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    v, g = gluon.L1Loss(weight=-2.0).loss_and_grad(x, y, np.array([[1.0], [3.0]]))
    np.testing.assert_allclose(v, -2 * np.mean(np.abs(x - y) * [[1.0], [3.0]], axis=1),
                               rtol=1e-13)
    np.testing.assert_allclose(g, -2 * np.sign(x - y) * [[1.0], [3.0]] / 3, rtol=1e-13)


@pytest.mark.parametrize("from_sigmoid", [False, True])
def test_sigmoid_bce_pos_weight(from_sigmoid):
    x = RNG.uniform(0.05, 0.95, (3, 4)) if from_sigmoid else RNG.normal(size=(3, 4)) * 2
    y = RNG.uniform(size=(3, 4))
    sw = RNG.uniform(0.5, 1.5, (3, 1))
    for pw in (2.5, RNG.uniform(0.5, 3.0, (1, 4))):
        loss = gluon.SigmoidBCELoss(from_sigmoid=from_sigmoid, weight=0.9)
        v, g = loss.loss_and_grad(x, y, sample_weight=sw, pos_weight=pw)
        if from_sigmoid:
            ell = -(np.log(x + 1e-12) * y * pw + np.log(1 - x + 1e-12) * (1 - y))
        else:
            lw = 1 + (pw - 1) * y
            ell = x - x * y + lw * (np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0))
        np.testing.assert_allclose(v, np.mean(ell * sw * 0.9, axis=1), rtol=1e-12)
        np.testing.assert_allclose(
            g, fd_grad(lambda z: loss.loss_and_grad(z, y, sample_weight=sw, pos_weight=pw), x),
            rtol=1e-6, atol=1e-8)


def test_poisson_nll():
    x = RNG.normal(size=(4, 3))
    t = np.array([[0.0, 1.0, 3.0]] * 4) + RNG.integers(0, 3, (4, 3))
    t[0, 0] = 0.0
    sw = RNG.uniform(0.5, 2.0, (4, 1))
    for from_logits, full in ((True, False), (True, True), (False, True)):
        xx = x if from_logits else np.exp(x)
        loss = gluon.PoissonNLLLoss(weight=0.8, from_logits=from_logits, compute_full=full)
        v, g = loss.loss_and_grad(xx, t, sample_weight=sw, epsilon=1e-6)
        ell = np.exp(xx) - t * xx if from_logits else xx - t * np.log(xx + 1e-6)
        if full:
            with np.errstate(divide="ignore", invalid="ignore"):
                st = t * np.log(t) - t + 0.5 * np.log(2 * t * np.pi)
            ell = ell + np.where(t > 1, st, 0.0)       # PyTorch's mask (MXNet: NaN at t = 0)
        assert np.ndim(v) == 0
        np.testing.assert_allclose(v, np.mean(ell * sw * 0.8), rtol=1e-12)
        np.testing.assert_allclose(
            g, fd_grad(lambda z: loss.loss_and_grad(z, t, sample_weight=sw, epsilon=1e-6), xx),
            rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------- class-axis losses
def test_softmax_ce_sparse_axis_and_weights():
    # pred (B=3, C=5, T=2), classes on axis 1, labels (B, T)
    x = RNG.normal(size=(3, 5, 2)) * 2
    lab = RNG.integers(0, 5, (3, 2))
    sw = RNG.uniform(0.5, 2.0, (3, 1, 1))
    loss = gluon.SoftmaxCrossEntropyLoss(axis=1, weight=0.6)
    v, g = loss.loss_and_grad(x, lab, sample_weight=sw)
    ls = log_softmax(x, axis=1)
    picked = -np.take_along_axis(ls, lab[:, None, :], axis=1)      # (3, 1, 2)
    np.testing.assert_allclose(v, np.mean(picked * sw * 0.6, axis=(1, 2)), rtol=1e-12)
    fd = fd_grad(lambda z: loss.loss_and_grad(z, lab, sample_weight=sw), x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    # float labels with a kept class axis are accepted (Gluon's pick casts)
    np.testing.assert_allclose(loss(x, lab[:, None, :].astype(float), sample_weight=sw), v,
                               rtol=1e-15)


def test_softmax_ce_batch_axis_1_dense_and_from_logits():
    # pred (C=4, B=3) with axis=0, batch_axis=1
    x = RNG.normal(size=(4, 3))
    y = RNG.dirichlet(np.ones(4), size=3).T
    sw = np.array([0.5, 1.0, 2.0])
    dense = gluon.SoftmaxCELoss(axis=0, sparse_label=False, batch_axis=1, weight=1.5)
    v, g = dense.loss_and_grad(x, y, sample_weight=sw)
    np.testing.assert_allclose(v, -np.sum(log_softmax(x, axis=0) * y, axis=0) * sw * 1.5,
                               rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(lambda z: dense.loss_and_grad(z, y, sample_weight=sw), x),
                               rtol=1e-6, atol=1e-8)
    # from_logits: pred already log-probabilities; −Σ label·pred / −pick(pred, label)
    lp = log_softmax(x, axis=0)
    for sparse, lab in ((False, y), (True, np.array([3, 0, 2])),
                        (False, y - 0.1)):          # negative dense labels: cosine path
        loss = gluon.SoftmaxCELoss(axis=0, sparse_label=sparse, from_logits=True, batch_axis=1,
                                   weight=1.5)
        v, g = loss.loss_and_grad(lp, lab, sample_weight=sw)
        dense_lab = np.eye(4)[:, lab] if sparse else lab
        np.testing.assert_allclose(v, -np.sum(lp * dense_lab, axis=0) * sw * 1.5, rtol=1e-11)
        np.testing.assert_allclose(g, -dense_lab * sw * 1.5, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("from_logits", [True, False])
def test_kldiv_axis_and_weights(from_logits):
    # pred (B=2, C=4, T=3), classes on axis 1; the mean runs over C·T elements
    x = RNG.normal(size=(2, 4, 3))
    pred = log_softmax(x, axis=1) if from_logits else x
    lab = RNG.dirichlet(np.ones(4), size=(2, 3)).transpose(0, 2, 1)
    lab[0, 1, 0] = 0.0                                  # a zero label: 0·log(0 + 1e-12) = 0
    sw = RNG.uniform(0.5, 2.0, (2, 1, 3))
    loss = gluon.KLDivLoss(from_logits=from_logits, axis=1, weight=0.4)
    v, g = loss.loss_and_grad(pred, lab, sample_weight=sw)
    lp = pred if from_logits else log_softmax(x, axis=1)
    ref = np.mean(lab * (np.log(lab + 1e-12) - lp) * sw * 0.4, axis=(1, 2))
    np.testing.assert_allclose(v, ref, rtol=1e-12)
    fd = fd_grad(lambda z: loss.loss_and_grad(z, lab, sample_weight=sw), pred)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="class axis"):
        loss(pred, lab, sample_weight=RNG.uniform(size=(2, 4, 1)))


def test_triplet_batch_axis_1_all_gradients():
    a, p, n = (RNG.normal(size=(2, 4, 3)) for _ in range(3))   # batch axis 1: 4 samples
    sw = np.array([1.0, 0.5, 2.0, 1.5])
    loss = gluon.TripletLoss(margin=2.0, weight=0.7, batch_axis=1)
    v, grads = loss.loss_and_grad(a, p, n, sample_weight=sw)
    d = np.sum((p - a) ** 2 - (n - a) ** 2, axis=(0, 2))
    np.testing.assert_allclose(v, np.maximum(d + 2.0, 0) * 0.7 * sw, rtol=1e-12)
    assert len(grads) == 3
    fds = (fd_grad(lambda z: loss.loss_and_grad(z, p, n, sample_weight=sw), a),
           fd_grad(lambda z: loss.loss_and_grad(a, z, n, sample_weight=sw), p),
           fd_grad(lambda z: loss.loss_and_grad(a, p, z, sample_weight=sw), n))
    for gi, fi in zip(grads, fds):
        assert gi.shape == a.shape
        np.testing.assert_allclose(gi, fi, rtol=1e-6, atol=1e-8)


def test_cosine_embedding_margin_weights_gradients():
    x1, x2 = RNG.normal(size=(5, 4)), RNG.normal(size=(5, 4))
    x2[1] = -x1[1] + 0.1 * x2[1]            # a dissimilar pair with cos < margin
    lab = np.array([1.0, -1.0, -1.0, 1.0, -1.0])
    sw = RNG.uniform(0.5, 2.0, (5, 1))
    loss = gluon.CosineEmbeddingLoss(margin=0.2, weight=1.5)
    v, (g1, g2) = loss.loss_and_grad(x1, x2, lab, sample_weight=sw)
    cos = np.sum(x1 * x2, -1) / np.maximum(np.linalg.norm(x1, axis=-1)
                                           * np.linalg.norm(x2, axis=-1), 1e-12)
    ref = np.where(lab == 1, 1 - cos, np.maximum(0, cos - 0.2)) * sw[:, 0] * 1.5
    np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-15)
    fd1 = fd_grad(lambda z: loss.loss_and_grad(z, x2, lab, sample_weight=sw), x1)
    fd2 = fd_grad(lambda z: loss.loss_and_grad(x1, z, lab, sample_weight=sw), x2)
    np.testing.assert_allclose(g1, fd1, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g2, fd2, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- CTC
def ref_ctc(lp, lab, T):
    """−log p(lab | log-probs lp[:T]) by the forward recursion (float64)."""
    ext = [lp.shape[1] - 1]
    for c in lab:
        ext += [c, lp.shape[1] - 1]
    S = len(ext)
    alpha = np.full(S, -np.inf)
    alpha[0] = lp[0, ext[0]]
    if S > 1:
        alpha[1] = lp[0, ext[1]]
    for t in range(1, T):
        prev = alpha.copy()
        for s in range(S):
            a = prev[s]
            if s > 0:
                a = np.logaddexp(a, prev[s - 1])
            if s > 1 and ext[s] != ext[-1] and ext[s] != ext[s - 2]:
                a = np.logaddexp(a, prev[s - 2])
            alpha[s] = a + lp[t, ext[s]]
    return -(np.logaddexp(alpha[-1], alpha[-2]) if S > 1 else alpha[-1])


@pytest.mark.parametrize("layout,label_layout", [("NTC", "NT"), ("TNC", "TN")])
def test_ctc_blank_last_padding(layout, label_layout):
    N, T, C = 3, 7, 5                               # classes 0..3, blank = 4
    x = RNG.normal(size=(N, T, C))
    labels = np.array([[1, 1, 2, -1], [0, 3, -1, -1], [2, 0, 1, 3]], dtype=np.float32)
    pred_lengths = np.array([7, 5, 6])
    sw = np.array([1.0, 2.0, 0.5])
    xin = x if layout == "NTC" else x.transpose(1, 0, 2).copy()
    lin = labels if label_layout == "NT" else labels.T.copy()
    loss = gluon.CTCLoss(layout=layout, label_layout=label_layout, weight=0.9)
    v, g = loss.loss_and_grad(xin, lin, pred_lengths, None, sw)
    lens = [3, 2, 4]
    ref = np.array([ref_ctc(log_softmax(x[i], -1), labels[i, :lens[i]].astype(int),
                            pred_lengths[i]) for i in range(N)])
    np.testing.assert_allclose(v, ref * sw * 0.9, rtol=1e-10)
    assert g.shape == xin.shape
    where = [tuple(RNG.integers(0, s) for s in xin.shape) for _ in range(12)]
    fd = fd_grad(lambda z: loss.loss_and_grad(z, lin, pred_lengths, None, sw), xin, where=where)
    for i in where:
        np.testing.assert_allclose(g[i], fd[i], rtol=1e-5, atol=1e-7)
    # explicit label_lengths give the same; frames past pred_lengths get zero gradient
    v2 = loss(xin, lin, pred_lengths, np.array(lens), sw)
    np.testing.assert_allclose(v2, v, rtol=1e-14)
    gn = g if layout == "NTC" else g.transpose(1, 0, 2)
    assert np.all(gn[1, 5:] == 0)


def test_ctc_defaults_full_length():
    x = RNG.normal(size=(2, 4, 3))
    lab = np.array([[0, 1], [1, -1]])
    v = gluon.CTCLoss()(x, lab)
    ref = [ref_ctc(log_softmax(x[0], -1), [0, 1], 4), ref_ctc(log_softmax(x[1], -1), [1], 4)]
    np.testing.assert_allclose(v, ref, rtol=1e-10)


# ------------------------------------------------------------------------- misc
def test_errors_and_repr():
    with pytest.raises(ValueError, match="label_format"):
        gluon.LogisticLoss(label_format="other")
    with pytest.raises(TypeError, match="weight"):
        gluon.L1Loss(weight="a")
    with pytest.raises(ValueError, match="sample_weight"):
        gluon.L1Loss()(np.ones((2, 3)), np.ones((2, 3)), sample_weight=np.ones((3, 2)))
    with pytest.raises(ValueError, match="class indices"):
        gluon.SoftmaxCELoss()(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="differ"):
        gluon.SoftmaxCELoss(axis=0)(np.ones((2, 3)), np.array([0, 1, 1]))
    assert repr(gluon.L2Loss()) == "L2Loss(batch_axis=0, w=1.0)"
    assert {"L1Loss", "L2Loss", "HuberLoss", "SigmoidBCELoss", "SoftmaxCELoss", "KLDivLoss",
            "CTCLoss", "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "TripletLoss",
            "PoissonNLLLoss", "CosineEmbeddingLoss"} <= set(gluon.__all__)


def test_float32_keeps_dtype():
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    y = RNG.normal(size=(3, 4)).astype(np.float32)
    v, g = gluon.L2Loss().loss_and_grad(x, y)
    assert v.dtype == np.float32 and g.dtype == np.float32
    np.testing.assert_allclose(v, np.mean(0.5 * (x - y).astype(float) ** 2, axis=1), rtol=1e-5)
    assert fl.gluon is gluon


# ------------------------------------------------------------------- SDMLLoss, FocalLoss
def sdml_ref(x1, x2, s):
    """MXNet's SDMLLoss.hybrid_forward in float64 NumPy: KLDivLoss(from_logits=True) of
    log_softmax(−D) against the smoothed identity, averaged over the batch columns."""
    B = x1.shape[0]
    D = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(axis=2)
    gold = np.eye(B)
    lab = gold * (1 - s) + (1 - gold) * s / (B - 1)
    logp = log_softmax(-D, axis=1)
    return (lab * (np.log(lab + 1e-12) - logp)).mean(axis=1)


@pytest.mark.parametrize("s", [0.3, 0.0])
def test_sdml_value_and_gradients(s):
    x1, x2 = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    loss = gluon.SDMLLoss(smoothing_parameter=s)
    v, (g1, g2) = loss.loss_and_grad(x1, x2)
    np.testing.assert_allclose(v, sdml_ref(x1, x2, s), rtol=1e-12)
    np.testing.assert_allclose(loss(x1, x2), v, rtol=0)
    np.testing.assert_allclose(g1, fd_grad(lambda z: sdml_ref(z, x2, s), x1), rtol=1e-6,
                               atol=1e-8)
    np.testing.assert_allclose(g2, fd_grad(lambda z: sdml_ref(x1, z, s), x2), rtol=1e-6,
                               atol=1e-8)
    # batch_axis=1 (columns are the pairs) and the global weight
    vt, (h1, h2) = gluon.SDMLLoss(s, weight=2.0, batch_axis=1).loss_and_grad(x1.T, x2.T)
    np.testing.assert_allclose(vt, 2 * v, rtol=1e-12)
    np.testing.assert_allclose(h1, 2 * g1.T, rtol=1e-12)
    np.testing.assert_allclose(h2, 2 * g2.T, rtol=1e-12)


def test_sdml_errors_and_float32():
    x = RNG.normal(size=(3, 2)).astype(np.float32)
    v, (g1, g2) = gluon.SDMLLoss().loss_and_grad(x, x[::-1].copy())
    assert v.dtype == g1.dtype == g2.dtype == np.float32
    np.testing.assert_allclose(v, sdml_ref(x.astype(float), x[::-1].astype(float), 0.3),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="SDMLLoss: needs a batch of at least 2"):
        gluon.SDMLLoss()(x[:1], x[:1])
    with pytest.raises(ValueError, match="SDMLLoss: x1 and x2"):
        gluon.SDMLLoss()(x, x[:, :1])
    with pytest.raises(ValueError, match="smoothing_parameter"):
        gluon.SDMLLoss(1.0)


def focal_ref(x, y, alpha, gamma, eps=0.0):
    """GluonCV's FocalLoss element loss (with eps = 0 inside the logarithm)."""
    p = 1 / (1 + np.exp(-x))
    pt = np.where(y > 0, p, 1 - p)
    a = np.where(y > 0, alpha, 1 - alpha)
    return -a * (1 - pt) ** gamma * np.log(np.minimum(pt + eps, 1))


def test_focal_sparse_and_dense_labels():
    x = RNG.normal(scale=2, size=(3, 2, 4))
    lab = RNG.integers(0, 4, (3, 2))
    y = np.eye(4)[lab]
    sw = np.array([1.0, 0.5, 2.0])
    loss = gluon.FocalLoss(alpha=0.3, gamma=1.5, num_class=4)
    v, g = loss.loss_and_grad(x, lab, sw)
    ref = lambda z: (focal_ref(z, y, 0.3, 1.5) * sw[:, None, None]).mean(axis=(1, 2))  # noqa
    np.testing.assert_allclose(v, ref(x), rtol=1e-12)
    np.testing.assert_allclose(g, fd_grad(ref, x), rtol=1e-6, atol=1e-9)
    # GluonCV's eps = 1e-12 changes the value by a relative ~eps / p_t only
    np.testing.assert_allclose(v, (focal_ref(x, y, 0.3, 1.5, 1e-12) * sw[:, None, None])
                               .mean(axis=(1, 2)), rtol=1e-9)
    dense = gluon.FocalLoss(sparse_label=False, size_average=False, weight=0.5)
    yd = y * RNG.uniform(0.5, 1, y.shape)          # label > 0 is the target
    np.testing.assert_allclose(dense(x, yd), 0.5 * focal_ref(x, y, 0.25, 2).sum(axis=(1, 2)),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="num_class"):
        gluon.FocalLoss()
    with pytest.raises(ValueError, match="from_logits"):
        gluon.FocalLoss(num_class=4, from_logits=True)
    with pytest.raises(ValueError, match="class indices"):
        loss(x, np.full_like(lab, 4))
