"""Row-wise losses on the CPU: values against float64 NumPy/SciPy references, gradients
against central differences, PyTorch where available, edge cases and every error path.

Most calls go through ``value_and_grad`` with every differentiable input requested, so that
each loss compiles few kernel variants (the suite stays fast on a cold Numba cache).
"""
import numpy as np
import pytest
from scipy.special import log_expit, log_softmax, logsumexp, xlogy

import fastloss as fl
from fastloss import _rowwise

RNG = np.random.default_rng(1234)
N, C = 4, 6


def vg(f, *args, argnums=None, **kw):
    info = f.__fastloss__
    if argnums is None:
        argnums = tuple(info.inputs.index(n) for n in info.differentiable)
        argnums = argnums[0] if len(argnums) == 1 else argnums
    return fl.value_and_grad(f, argnums)(*args, **kw)


# ---------------------------------------------------------------- references (float64)
def ref_sce(x, y, s=0.0):
    C = x.shape[-1]
    yp = y * (1 - s) + s / C
    ls = log_softmax(x, axis=-1)
    return -np.sum(np.where(yp == 0, 0.0, yp * ls), axis=-1)


def ref_ice(x, k, s=0.0, cw=None, ignore=-100):
    C = x.shape[-1]
    cw = np.ones(C) if cw is None else cw
    ls = log_softmax(x, axis=-1)
    out = np.zeros(len(k))
    den = np.zeros(len(k))
    for i, ki in enumerate(k):
        if ki == ignore:
            continue
        out[i] = (1 - s) * cw[ki] * -ls[i, ki]
        if s > 0:
            out[i] += s / C * np.sum(cw * -ls[i])
        den[i] = cw[ki]
    return out, den


def ref_kl(lp, t, log_target=False):
    if log_target:
        return np.sum(np.exp(t) * (t - lp), axis=-1)
    return np.sum(np.where(t == 0, 0.0, xlogy(t, t) - t * lp), axis=-1)


def ref_mh(s, k, margin=1.0, kind="weston_watkins", p=1):
    out = []
    for i, ki in enumerate(k):
        d = s[i] - s[i, ki] + margin
        d = np.delete(d, ki)
        out.append(np.sum(np.maximum(d, 0) ** p) if kind == "weston_watkins"
                   else max(0, d.max()) ** p)
    return np.array(out)


def ref_cemb(a, b, y, margin=0.0, eps=1e-12):
    cos = np.sum(a * b, -1) / np.sqrt((np.sum(a * a, -1) + eps) * (np.sum(b * b, -1) + eps))
    return np.where(y == 1, 1 - cos, np.maximum(0, cos - margin))


def ref_trip(a, p, n, margin=1.0, squared=False, eps=1e-6):
    if squared:
        d = np.sum((a - p) ** 2, -1) - np.sum((a - n) ** 2, -1)
    else:
        d = np.linalg.norm(a - p + eps, axis=-1) - np.linalg.norm(a - n + eps, axis=-1)
    return np.maximum(0, d + margin)


def ref_mpse(p, t):
    d = (p - t).reshape(len(p), -1)
    n = d.shape[1]
    out = []
    for r in d:
        diff = r[:, None] - r[None, :]
        iu = np.triu_indices(n, 1)
        out.append(np.mean(diff[iu] ** 2) if n > 1 else 0.0)
    return np.array(out)


def ref_nll(lp, k, cw=None, ignore=-100):
    """PyTorch nll_loss per row: −w_k·lp_k, and the row's weight in 'mean' (0 if ignored)."""
    cw = np.ones(lp.shape[-1]) if cw is None else cw
    keep = k != ignore
    kk = np.where(keep, k, 0)
    w = np.where(keep, cw[kk], 0.0)
    return np.where(keep, -w * lp[np.arange(len(k)), kk], 0.0), w


def ref_chinge(p, t):
    """Keras categorical_hinge: max(0, max((1 − t)·p) − Σ t·p + 1)."""
    pos = np.sum(t * p, -1)
    neg = np.max((1 - t) * p, -1)
    return np.maximum(0.0, neg - pos + 1.0)


def ref_poly(x, y, eps=2.0):
    """optax poly_loss_cross_entropy: CE + ε·Σ y·(1 − softmax(x))."""
    ls = log_softmax(x, axis=-1)
    return -np.sum(y * ls, -1) + eps * np.sum(y * (1 - np.exp(ls)), -1)


def ref_mlsm(x, y, w=None):
    """PyTorch multilabel_soft_margin_loss per row: −mean_c w_c (y log σ(x) + (1−y) log σ(−x))."""
    w = np.ones(x.shape[-1]) if w is None else w
    return -np.mean(w * (y * log_expit(x) + (1 - y) * log_expit(-x)), -1)


def ref_cfoc(x, k, alpha=0.25, gamma=2.0):
    """−α (1 − p_k)^γ log p_k, p = softmax(x) (Keras' formula without its clipping), from
    r = Σ_{j≠k} exp(x_j − x_k): log p_k = −log1p(r), 1 − p_k = r / (1 + r) (accurate as
    p_k → 1; finite logits)."""
    xk = x[np.arange(len(k)), k][:, None]
    r = np.sum(np.where(np.arange(x.shape[-1]) == k[:, None], 0.0, np.exp(x - xk)), -1)
    lp = -np.log1p(r)
    return -alpha * (r / (1 + r)) ** gamma * lp


def keras_cfoc(y_true, logits, alpha=0.25, gamma=2.0, eps=1e-7):
    """A transcription of Keras 3 ``categorical_focal_crossentropy(from_logits=True)``."""
    y_pred = np.exp(log_softmax(logits, axis=-1))
    output = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
    output = np.clip(output, eps, 1.0 - eps)
    cce = -y_true * np.log(output)
    return np.sum(alpha * np.power(1.0 - output, gamma) * cce, axis=-1)


def keras_chinge(y_true, y_pred):
    """A transcription of Keras 3 ``categorical_hinge``."""
    pos = np.sum(y_true * y_pred, axis=-1)
    neg = np.max((1.0 - y_true) * y_pred, axis=-1)
    return np.maximum(neg - pos + 1.0, 0.0)


def probs(shape, rng=RNG):
    p = rng.random(shape) + 0.05
    return p / p.sum(-1, keepdims=True)


def make_cases():
    """(loss function, args, kwargs, reference per-row function)."""
    x = RNG.normal(size=(N, C)) * 2
    y = probs((N, C))
    k = RNG.integers(0, C, N)
    lp = log_softmax(RNG.normal(size=(N, C)), -1)
    a, b, c = (RNG.normal(size=(N, C)) for _ in range(3))
    pm = np.array([1, -1, 1, -1])
    ml = (RNG.random((N, C)) < 0.5).astype(float)
    ml[0, :2] = [0.3, 0.8]            # soft targets in [0, 1] too
    cw = RNG.random(C) + 0.2
    return [
        ("sce", fl.softmax_cross_entropy, (x, y), {"label_smoothing": 0.1},
         lambda: ref_sce(x, y, 0.1)),
        ("ice", fl.softmax_cross_entropy_with_integer_labels, (x, k), {},
         lambda: ref_ice(x, k)[0]),
        ("kl", fl.kl_divergence, (lp, y), {}, lambda: ref_kl(lp, y)),
        ("klt", fl.kl_divergence, (lp, np.log(y)), {"log_target": True},
         lambda: ref_kl(lp, np.log(y), True)),
        ("skl", fl.softmax_kl_divergence, (x, y), {},
         lambda: ref_kl(log_softmax(x, -1), y)),
        ("mh", fl.multiclass_hinge, (x, k), {"margin": 1.5}, lambda: ref_mh(x, k, 1.5)),
        ("mhcs", fl.multiclass_hinge, (x, k), {"kind": "crammer_singer"},
         lambda: ref_mh(x, k, 1.0, "crammer_singer")),
        ("mh2", fl.multiclass_hinge, (x, k), {"margin": 1.5, "p": 2},
         lambda: ref_mh(x, k, 1.5, p=2)),
        ("mhcs2", fl.multiclass_hinge, (x, k), {"kind": "crammer_singer", "p": 2},
         lambda: ref_mh(x, k, 1.0, "crammer_singer", 2)),
        ("cemb", fl.cosine_embedding, (a, b, pm), {"margin": -0.2},
         lambda: ref_cemb(a, b, pm, -0.2)),
        ("cdist", fl.cosine_distance, (a, b), {}, lambda: 1 - np.sum(a * b, -1)),
        ("trip", fl.triplet_margin, (a, b, c), {"margin": 0.5},
         lambda: ref_trip(a, b, c, 0.5)),
        ("trips", fl.triplet_margin, (a, b, c), {"squared": True, "margin": 2.0},
         lambda: ref_trip(a, b, c, 2.0, True)),
        ("mpse", fl.mean_pairwise_squared_error, (a.reshape(N, 2, 3), b.reshape(N, 2, 3)), {},
         lambda: ref_mpse(a, b)),
        ("nll", fl.nll_loss, (lp, k), {}, lambda: ref_nll(lp, k)[0]),
        ("chinge", fl.categorical_hinge, (a, y), {}, lambda: ref_chinge(a, y)),
        ("poly", fl.poly1_softmax_cross_entropy, (x, y), {"epsilon": 1.5},
         lambda: ref_poly(x, y, 1.5)),
        ("mlsm", fl.multilabel_soft_margin, (x, ml), {"class_weight": cw},
         lambda: ref_mlsm(x, ml, cw)),
        ("cfoc", fl.categorical_focal_cross_entropy, (x, k), {"alpha": 0.5, "gamma": 1.5},
         lambda: ref_cfoc(x, k, 0.5, 1.5)),
    ]


CASES = make_cases()
IDS = [c[0] for c in CASES]


def fd_grads(f, args, kw, names, h=1e-6):
    """Central differences of the summed (weighted) value w.r.t. each named input."""
    info = f.__fastloss__
    out = []
    for n in names:
        i = info.inputs.index(n)
        x = np.array(args[i], dtype=np.float64)
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            vals = []
            for sgn in (1, -1):
                xx = x.copy()
                xx[idx] += sgn * h
                aa = list(args)
                aa[i] = xx
                vals.append(float(vg(f, *aa, **kw)[0]))
            g[idx] = (vals[0] - vals[1]) / (2 * h)
        out.append(g)
    return out


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_and_gradients(case):
    _, f, args, kw, ref = case
    r = ref()
    w = np.array([0.5, 2.0, 1.0, 0.0])
    # per-row values
    v, _ = vg(f, *args, reduction="none", **kw)
    np.testing.assert_allclose(v, r, rtol=1e-12, atol=1e-12)
    # weighted sum / mean
    v, _ = vg(f, *args, reduction="sum", sample_weight=w, **kw)
    np.testing.assert_allclose(v, np.sum(w * r), rtol=1e-12)
    v, g = vg(f, *args, reduction="mean", sample_weight=w, **kw)
    np.testing.assert_allclose(v, np.sum(w * r) / w.sum(), rtol=1e-12)
    # gradients of the weighted mean against central differences, every input
    info = f.__fastloss__
    fd = fd_grads(f, args, dict(kw, reduction="mean", sample_weight=w), info.differentiable)
    g = g if isinstance(g, tuple) else (g,)
    assert len(g) == len(info.differentiable)
    for gi, fi, ai in zip(g, fd, args):
        assert gi.shape == np.shape(ai)
        np.testing.assert_allclose(gi, fi, rtol=1e-5, atol=1e-7)


# a few (each float32 variant is a compile)
F32_IDS = ("sce", "ice", "skl", "trip", "mpse", "poly", "mlsm", "cfoc")


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in F32_IDS], ids=F32_IDS)
def test_float32(case):
    _, f, args, kw, ref = case
    a32 = tuple(np.asarray(a, np.float32) if np.asarray(a).dtype.kind == "f" else a
                for a in args)
    v, g = vg(f, *a32, reduction="none", **kw)
    assert v.dtype == np.float32
    g = g if isinstance(g, tuple) else (g,)
    assert all(gi.dtype == np.float32 for gi in g)
    np.testing.assert_allclose(v, ref(), rtol=2e-5, atol=2e-5)
    _, g64 = vg(f, *args, reduction="none", **kw)
    for gi, gr in zip(g, g64 if isinstance(g64, tuple) else (g64,)):
        np.testing.assert_allclose(gi, gr, rtol=1e-5, atol=1e-6)


def test_plain_call_mean_default_and_argnums_tuple():
    x, y = RNG.normal(size=(3, 5)), probs((3, 5))
    v, (gx, gy) = fl.value_and_grad(fl.softmax_cross_entropy, (0, 1))(x, y)
    np.testing.assert_allclose(v, np.mean(ref_sce(x, y)), rtol=1e-12)
    # analytic forms
    np.testing.assert_allclose(gx, (np.exp(log_softmax(x, -1)) - y) / 3, atol=1e-14)
    np.testing.assert_allclose(gy, -log_softmax(x, -1) / 3, atol=1e-14)
    with pytest.raises(ValueError, match="gradient with respect to 'labels'"):
        fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels, 1)


def test_sce_labels_only_and_grad_out_over_inputs():
    """Gradients w.r.t. the labels alone (phase 3 recomputes exp) and grad_out buffers that
    are the inputs themselves (phase 2 keeps exp terms in the logits' gradient buffer,
    which must then not be the logits) agree with the plain call."""
    x, y = RNG.normal(size=(5, 7)), probs((5, 7))
    for f in (fl.softmax_cross_entropy, fl.softmax_kl_divergence):
        v, (gx, gy) = fl.value_and_grad(f, (0, 1))(x, y)
        v1, gy1 = fl.value_and_grad(f, 1)(x, y)
        np.testing.assert_allclose(v1, v, rtol=1e-14)
        np.testing.assert_allclose(gy1, gy, rtol=1e-13, atol=1e-15)
        xx, yy = x.copy(), y.copy()
        v2, (gx2, gy2) = fl.value_and_grad(f, (0, 1))(xx, yy, grad_out=(xx, yy))
        assert gx2 is xx and gy2 is yy
        np.testing.assert_allclose(v2, v, rtol=1e-14)
        np.testing.assert_allclose(gx2, gx, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(gy2, gy, rtol=1e-13, atol=1e-15)
    xx = x.copy()
    k = np.array([0, 3, 6, 1, 2])
    _, g = vg(fl.softmax_cross_entropy_with_integer_labels, x, k)
    _, g2 = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(xx, k, grad_out=xx)
    np.testing.assert_allclose(g2, g, rtol=1e-13, atol=1e-15)


def test_triplet_argnums_order_and_grad_out():
    a, p, n = (RNG.normal(size=(3, 4)) for _ in range(3))
    v, (gn, ga) = fl.value_and_grad(fl.triplet_margin, (2, 0))(a, p, n, margin=5.0)
    _, (ga2, gp2, gn2) = vg(fl.triplet_margin, a, p, n, margin=5.0)
    np.testing.assert_allclose(ga, ga2)
    np.testing.assert_allclose(gn, gn2)
    bufs = tuple(np.empty_like(a) for _ in range(3))
    _, g = fl.value_and_grad(fl.triplet_margin, (0, 1, 2))(a, p, n, margin=5.0, grad_out=bufs)
    assert all(u is w for u, w in zip(g, bufs))
    np.testing.assert_allclose(bufs[0], ga2)


# --------------------------------------------------------------- integer-label details
def test_ice_smoothing_weights_ignore_hand_computed():
    x = np.array([[0.0, 0.0], [np.log(3.0), 0.0], [5.0, -1.0]])
    k = np.array([0, 1, -100])
    cw = np.array([2.0, 1.0])
    v, g = vg(fl.softmax_cross_entropy_with_integer_labels, x, k, class_weight=cw,
              reduction="none")
    # row 0: w=2, p=1/2 -> 2 log 2; row 1: w=1, p=1/4 -> log 4; row 2 ignored
    np.testing.assert_allclose(v, [2 * np.log(2), np.log(4), 0.0], rtol=1e-14)
    np.testing.assert_array_equal(g[2], 0.0)
    m, _ = vg(fl.softmax_cross_entropy_with_integer_labels, x, k, class_weight=cw)
    np.testing.assert_allclose(m, (2 * np.log(2) + np.log(4)) / 3.0, rtol=1e-14)
    # smoothing 0.2 on row 0 with C=2: 0.8*(-log .5) + 0.1*(2·-log .5)
    v, _ = vg(fl.softmax_cross_entropy_with_integer_labels, x[:1], k[:1],
              label_smoothing=0.2, reduction="none")
    np.testing.assert_allclose(v, [np.log(2)], rtol=1e-14)


def test_ice_against_reference_with_everything():
    x = RNG.normal(size=(7, C)) * 3
    k = RNG.integers(0, C, 7)
    k[[1, 4]] = 3  # ignore_index may be a real class
    cw = RNG.random(C) + 0.1
    w = RNG.random(7)
    kw = dict(label_smoothing=0.3, class_weight=cw, ignore_index=3, sample_weight=w)
    r, den = ref_ice(x, k, 0.3, cw, ignore=3)
    v, g = vg(fl.softmax_cross_entropy_with_integer_labels, x, k, **kw)
    np.testing.assert_allclose(v, np.sum(w * r) / np.sum(w * den), rtol=1e-12)
    fd, = fd_grads(fl.softmax_cross_entropy_with_integer_labels, (x, k), kw, ("logits",))
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(g[[1, 4]], 0.0)


def test_ice_all_ignored_mean_is_nan():
    v, g = vg(fl.softmax_cross_entropy_with_integer_labels, np.zeros((2, 3)),
              np.array([-100, -100]))
    np.testing.assert_array_equal(g, 0.0)
    assert np.isnan(v)


# ------------------------------------------------------------------- PyTorch
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def test_torch_cross_entropy(torch):
    F = torch.nn.functional
    x = RNG.normal(size=(6, C)) * 2
    k = RNG.integers(0, C, 6)
    k[2] = -100
    cw = RNG.random(C) + 0.5
    for s in (0.0, 0.25):
        xt = torch.tensor(x, requires_grad=True)
        lt = F.cross_entropy(xt, torch.tensor(k), weight=torch.tensor(cw), label_smoothing=s)
        lt.backward()
        v, g = vg(fl.softmax_cross_entropy_with_integer_labels, x, k, class_weight=cw,
                  label_smoothing=s)
        np.testing.assert_allclose(v, lt.item(), rtol=1e-12)
        np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    # dense labels with smoothing (PyTorch = TF convention for probability targets)
    y = probs((6, C))
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(xt, torch.tensor(y), label_smoothing=0.1)
    lt.backward()
    v, (g, _) = vg(fl.softmax_cross_entropy, x, y, label_smoothing=0.1)
    np.testing.assert_allclose(v, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    # class axis 1 of a (N, C, L) input, as PyTorch
    x3 = RNG.normal(size=(2, C, 3))
    k3 = RNG.integers(0, C, (2, 3))
    xt = torch.tensor(x3, requires_grad=True)
    F.cross_entropy(xt, torch.tensor(k3)).backward()
    v, g = vg(fl.softmax_cross_entropy_with_integer_labels, x3, k3, axis=1)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_torch_others(torch):
    F = torch.nn.functional
    T = torch.tensor
    x = RNG.normal(size=(5, C))
    k = RNG.integers(0, C, 5)
    lp = log_softmax(RNG.normal(size=(5, C)), -1)
    y = probs((5, C))
    # kl_div(reduction="sum") = sum over everything
    for lt, tgt in ((False, y), (True, np.log(y))):
        xt = T(lp, requires_grad=True)
        F.kl_div(xt, T(tgt), reduction="sum", log_target=lt).backward()
        v, (g, _) = vg(fl.kl_divergence, lp, tgt, log_target=lt, reduction="sum")
        np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    # multi_margin_loss averages over C; ours sums (Weston-Watkins)
    xt = T(x, requires_grad=True)
    F.multi_margin_loss(xt, T(k), margin=0.7, reduction="sum").backward()
    v, g = vg(fl.multiclass_hinge, x, k, margin=0.7, reduction="sum")
    np.testing.assert_allclose(g, xt.grad.numpy() * C, rtol=1e-12, atol=1e-15)
    xt = T(x, requires_grad=True)
    lt = F.multi_margin_loss(xt, T(k), p=2, margin=0.7, reduction="sum")
    lt.backward()
    v, g = vg(fl.multiclass_hinge, x, k, margin=0.7, p=2, reduction="sum")
    np.testing.assert_allclose(v, lt.item() * C, rtol=1e-12)
    np.testing.assert_allclose(g, xt.grad.numpy() * C, rtol=1e-12, atol=1e-15)
    # cosine_embedding_loss
    a, b = RNG.normal(size=(2, 5, C))
    lab = np.array([1, -1, -1, 1, -1])
    at, bt = T(a, requires_grad=True), T(b, requires_grad=True)
    lt = F.cosine_embedding_loss(at, bt, T(lab), margin=0.1)
    lt.backward()
    v, (ga, gb) = vg(fl.cosine_embedding, a, b, lab, margin=0.1)
    np.testing.assert_allclose(v, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(ga, at.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-10, atol=1e-14)
    # triplet_margin_loss (eps added to the difference, as PyTorch)
    a, p, n = RNG.normal(size=(3, 5, C))
    ts = [T(u, requires_grad=True) for u in (a, p, n)]
    lt = F.triplet_margin_loss(*ts, margin=2.0)
    lt.backward()
    v, gs = vg(fl.triplet_margin, a, p, n, margin=2.0)
    np.testing.assert_allclose(v, lt.item(), rtol=1e-12)
    for gi, ti in zip(gs, ts):
        np.testing.assert_allclose(gi, ti.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_torch_nll_and_multilabel_soft_margin(torch):
    F = torch.nn.functional
    T = torch.tensor
    lp = log_softmax(RNG.normal(size=(6, C)) * 2, -1)
    k = RNG.integers(0, C, 6)
    k[[1, 4]] = 2                   # ignore_index a real class
    cw = RNG.random(C) + 0.5
    for red in ("mean", "sum", "none"):
        for kw in ({}, {"class_weight": cw, "ignore_index": 2}):
            xt = T(lp, requires_grad=True)
            tk = {"weight": T(cw)} if kw else {}
            lt = F.nll_loss(xt, T(k), reduction=red, ignore_index=kw.get("ignore_index", -100),
                            **tk)
            lt.sum().backward()
            v, g = vg(fl.nll_loss, lp, k, reduction=red, **kw)
            np.testing.assert_allclose(v, lt.detach().numpy(), rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-15, atol=0)
    # class axis 1 of (N, C, L), as PyTorch
    lp3 = log_softmax(RNG.normal(size=(2, C, 3)), 1)
    k3 = RNG.integers(0, C, (2, 3))
    xt = T(lp3, requires_grad=True)
    lt = F.nll_loss(xt, T(k3), weight=T(cw))
    lt.backward()
    v, g = vg(fl.nll_loss, lp3, k3, axis=1, class_weight=cw)
    np.testing.assert_allclose(v, lt.item(), rtol=1e-13)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-13, atol=1e-16)
    # multilabel_soft_margin_loss, soft and hard targets, with and without weight
    x = RNG.normal(size=(5, C)) * 3
    y = (RNG.random((5, C)) < 0.4).astype(float)
    y[2] = RNG.random(C)
    for red in ("mean", "sum", "none"):
        for w in (None, cw):
            xt = T(x, requires_grad=True)
            lt = F.multilabel_soft_margin_loss(xt, T(y), weight=None if w is None else T(w),
                                               reduction=red)
            lt.sum().backward()
            v, g = vg(fl.multilabel_soft_margin, x, y, class_weight=w, reduction=red)
            np.testing.assert_allclose(v, lt.detach().numpy(), rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-11, atol=1e-16)


# ------------------------------------------------------- nll_loss, hinge, poly, focal, mlsm
def test_nll_weights_ignore_mean_and_all_ignored():
    lp = np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]]))
    k = np.array([0, 1, 7])
    cw = np.array([2.0, 1.0, 3.0])
    v, g = vg(fl.nll_loss, lp, k, class_weight=cw, ignore_index=7, reduction="none")
    np.testing.assert_allclose(v, [2 * np.log(2), -np.log(0.6), 0.0], rtol=1e-15)
    np.testing.assert_array_equal(g, [[-2.0, 0, 0], [0, -1.0, 0], [0, 0, 0]])
    m, gm = vg(fl.nll_loss, lp, k, class_weight=cw, ignore_index=7)
    np.testing.assert_allclose(m, (2 * np.log(2) - np.log(0.6)) / 3.0, rtol=1e-15)
    np.testing.assert_allclose(gm, g / 3.0, rtol=1e-15)
    r, den = ref_nll(lp, k, cw, 7)
    np.testing.assert_allclose(m, r.sum() / den.sum(), rtol=1e-15)
    v, g = vg(fl.nll_loss, lp[:1], np.array([-100]))
    assert np.isnan(v) and np.all(g == 0)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\) or "
                                         r"ignore_index=-100; found 3"):
        fl.nll_loss(lp, np.array([0, 1, 3]))


def test_categorical_hinge_keras_ties_and_kink():
    p = RNG.normal(size=(5, C))
    t = np.eye(C)[RNG.integers(0, C, 5)]
    t[4] = probs((C,))                                      # a soft row
    v, g = vg(fl.categorical_hinge, p, t, reduction="none")
    np.testing.assert_allclose(v, keras_chinge(t, p), rtol=1e-13, atol=1e-15)
    # hand-computed: a tie of the maximum shares its subgradient; the kink gives 0
    p = np.array([[2.0, 2.0, 0.5], [0.5, 2.0, 1.0], [1.0, 3.0, 0.0]])
    t = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    v, g = vg(fl.categorical_hinge, p, t, reduction="none")
    np.testing.assert_allclose(v, [2.5, 0.0, 0.0])          # row 1 at the kink: 1 − 2 + 1
    np.testing.assert_array_equal(g, [[0.5, 0.5, -1.0], [0, 0, 0], [0, 0, 0]])


def test_poly1_one_hot_equals_ce_plus_eps_one_minus_pt():
    x = RNG.normal(size=(5, C)) * 2
    k = RNG.integers(0, C, 5)
    y = np.eye(C)[k]
    v, (gx, gy) = vg(fl.poly1_softmax_cross_entropy, x, y, epsilon=2.0, reduction="none")
    ce, gce = vg(fl.softmax_cross_entropy_with_integer_labels, x, k, reduction="none")
    pk = np.exp(log_softmax(x, -1))[np.arange(5), k]
    np.testing.assert_allclose(v, ce + 2.0 * (1 - pk), rtol=1e-13)
    np.testing.assert_allclose(v, ref_poly(x, y), rtol=1e-13)
    p = np.exp(log_softmax(x, -1))
    np.testing.assert_allclose(gx, gce - 2.0 * p * (y - pk[:, None]), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gy, -log_softmax(x, -1) + 2.0 * (1 - p), rtol=1e-13)
    # epsilon = 0 is the cross-entropy
    v0, _ = vg(fl.poly1_softmax_cross_entropy, x, y, epsilon=0.0, reduction="none")
    np.testing.assert_allclose(v0, ce, rtol=1e-14)


def test_focal_keras_limits_and_accuracy():
    x = RNG.normal(size=(6, C)) * 2
    k = RNG.integers(0, C, 6)
    v, g = vg(fl.categorical_focal_cross_entropy, x, k, reduction="none")
    np.testing.assert_allclose(v, keras_cfoc(np.eye(C)[k], x), rtol=1e-12)  # no clipping here
    # gamma = 0: alpha times the cross-entropy (value and gradient)
    v0, g0 = vg(fl.categorical_focal_cross_entropy, x, k, gamma=0.0, alpha=0.7, reduction="sum")
    ce, gce = vg(fl.softmax_cross_entropy_with_integer_labels, x, k, reduction="sum")
    np.testing.assert_allclose(v0, 0.7 * ce, rtol=1e-13)
    np.testing.assert_allclose(g0, 0.7 * gce, rtol=1e-12, atol=1e-16)
    # p_k -> 1: 1 − p_k from the other classes (Keras clips at 1 − 1e-7 and gives 0 there)
    xb = np.array([[30.0, 0.0, -1.0], [40.0, 1.0, 2.0]])
    kb = np.array([0, 0])
    for dt, rtol, atol in ((np.float64, 1e-12, 0), (np.float32, 2e-5, 1e-44)):
        v, g = vg(fl.categorical_focal_cross_entropy, xb.astype(dt), kb, reduction="none")
        np.testing.assert_allclose(v, ref_cfoc(xb, kb), rtol=rtol, atol=atol)
        assert v[0] > 0   # 5.2e-40 (float32: subnormal); a clipped or 1 − p form gives 0
        fd, = fd_grads(fl.categorical_focal_cross_entropy, (xb, kb), {"reduction": "sum"},
                       ("logits",), h=1e-3) if dt == np.float64 else (None,)
        if fd is not None:   # ~1e-52: compare the analytic form g(p − onehot)
            p = np.exp(log_softmax(xb, -1))
            r = np.exp(xb[:, 1:] - xb[:, :1]).sum(-1)
            q, lpk = r / (1 + r), -np.log1p(r)
            gg = 0.25 * q ** 2 * (1 - 2 * p[:, 0] * lpk / q)
            ref = gg[:, None] * (p - np.eye(3)[kb])
            ref[:, 0] = -gg * q
            np.testing.assert_allclose(g, ref, rtol=1e-10)
    # the label's logit at -inf: infinite loss, gradient alpha·(p − onehot) (its limit)
    xm = np.array([[-np.inf, 0.0, 1.0]])
    v, g = vg(fl.categorical_focal_cross_entropy, xm, np.array([0]), reduction="sum")
    assert v == np.inf
    p = np.exp(log_softmax(xm, -1))
    np.testing.assert_allclose(g, 0.25 * (p - [[1, 0, 0]]), rtol=1e-14)
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        fl.categorical_focal_cross_entropy(x, k, gamma=-1.0)
    with pytest.raises(ValueError, match="alpha must be finite"):
        fl.categorical_focal_cross_entropy(x, k, alpha=np.inf)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 6\)"):
        fl.categorical_focal_cross_entropy(x, k + C)


def test_multilabel_soft_margin_hessian_and_infinite_logits():
    x = RNG.normal(size=(N, C)) * 3
    y = (RNG.random((N, C)) < 0.5).astype(float)
    cw = RNG.random(C) + 0.1
    w = np.array([0.5, 2.0, 1.5, 0.0])
    kw = dict(class_weight=cw, sample_weight=w)
    g, h = fl.grad_and_hessian(fl.multilabel_soft_margin)(x, y, **kw)
    sq = np.exp(log_expit(x) + log_expit(-x))                 # σ(x)(1 − σ(x))
    np.testing.assert_allclose(h, (w / w.sum())[:, None] * cw * sq / C, rtol=1e-13)
    np.testing.assert_array_equal(g, fl.grad(fl.multilabel_soft_margin)(x, y, **kw))
    fd = fd_hess(lambda z: fl.grad(fl.multilabel_soft_margin)(z, y, **kw), x)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-9)
    # an infinite logit on its own side: 0 loss and 0 gradient (the limit)
    xi = np.array([[np.inf, -np.inf, 0.0]])
    v, g = vg(fl.multilabel_soft_margin, xi, np.array([[1.0, 0.0, 1.0]]), reduction="sum")
    np.testing.assert_allclose(v, np.log(2) / 3, rtol=1e-15)
    np.testing.assert_array_equal(g, [[0.0, 0.0, -0.5 / 3]])
    v, _ = vg(fl.multilabel_soft_margin, xi, np.array([[0.0, 1.0, 1.0]]), reduction="sum")
    assert v == np.inf
    with pytest.raises(ValueError, match=r"class_weight must have shape \(3,\)"):
        fl.multilabel_soft_margin(xi, xi, class_weight=np.ones(2))
    with pytest.raises(ValueError, match="class_weight must be finite and non-negative"):
        fl.multilabel_soft_margin(xi, xi, class_weight=-np.ones(3))


# ---------------------------------------------------------------- extremes and NaN
def test_extreme_logits_and_masked_classes():
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-np.inf, 2.0, -np.inf, 1.0],
                  [-np.inf, 3.0, 3.0, -np.inf]])
    k = np.array([0, 1, 2])
    y = np.zeros((3, 4))
    y[np.arange(3), k] = 1
    r = ref_ice(x, k)[0]
    for dt in (np.float64, np.float32):
        xd = x.astype(dt)
        v, g = vg(fl.softmax_cross_entropy_with_integer_labels, xd, k, reduction="none")
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
        np.testing.assert_allclose(v, r, rtol=1e-5)
        assert g[1, 0] == 0 and g[1, 2] == 0
    for dt in (np.float64,):   # (float32 variants of these: more compiles, same code)
        xd = x.astype(dt)
        v, g = vg(fl.softmax_cross_entropy_with_integer_labels, xd, k, reduction="none")
        v2, (g2, gy) = vg(fl.softmax_cross_entropy, xd, y.astype(dt), reduction="none")
        assert np.all(np.isfinite(v2)) and np.all(np.isfinite(g2))
        np.testing.assert_allclose(v2, r, rtol=1e-5)
        np.testing.assert_allclose(g2, g, atol=1e-6)
        # masked classes get zero probability and zero logit gradient
        assert g[1, 0] == 0 and g[1, 2] == 0
        v3, _ = vg(fl.softmax_kl_divergence, xd, y.astype(dt), reduction="none")
        np.testing.assert_allclose(v3, r, rtol=1e-5)
    # the label sits on a masked class: infinite (mathematically), not NaN
    v, _ = vg(fl.softmax_cross_entropy_with_integer_labels, x[1:2], np.array([0]),
              reduction="none")
    assert v[0] == np.inf
    # kl with zero-probability targets over -inf log-probabilities: 0 log 0 = 0
    lp = np.array([[0.0, -np.inf]])
    assert vg(fl.kl_divergence, lp, np.array([[1.0, 0.0]]), reduction="sum")[0] == 0.0


def test_nan_propagates():
    x = RNG.normal(size=(3, C))
    x[1, 2] = np.nan
    k = np.array([0, 0, 0])
    y = probs((3, C))
    a = RNG.normal(size=(3, C))
    pm = np.array([1, -1, 1])
    for f, args, kw in [(fl.softmax_cross_entropy_with_integer_labels, (x, k), {}),
                        (fl.softmax_cross_entropy, (x, y), {}),
                        (fl.softmax_kl_divergence, (x, y), {}),
                        (fl.kl_divergence, (x, y), {}),
                        (fl.multiclass_hinge, (x, k), {}),
                        (fl.multiclass_hinge, (x, k), {"kind": "crammer_singer"}),
                        (fl.multiclass_hinge, (x, k), {"p": 2}),
                        (fl.multiclass_hinge, (x, k), {"kind": "crammer_singer", "p": 2}),
                        (fl.cosine_embedding, (x, a, pm), {}),
                        (fl.cosine_distance, (x, a), {}),
                        (fl.triplet_margin, (x, a, a), {}),
                        (fl.mean_pairwise_squared_error, (x, a), {}),
                        (fl.nll_loss, (x, k), {}),
                        (fl.categorical_hinge, (x, y), {}),
                        (fl.categorical_hinge, (a, np.where(np.isnan(x), np.nan, y)), {}),
                        (fl.poly1_softmax_cross_entropy, (x, y), {}),
                        (fl.multilabel_soft_margin, (x, y), {}),
                        (fl.categorical_focal_cross_entropy, (x, k), {})]:
        v, _ = vg(f, *args, reduction="none", **kw)
        assert np.isnan(v[1]) and not np.isnan(v[0]) and not np.isnan(v[2]), f.__name__
    # a zero target entry next to a NaN log-probability is still NaN
    assert np.isnan(vg(fl.kl_divergence, np.array([[np.nan, 0.0]]), np.array([[0.0, 1.0]]))[0])


def test_zero_norm_and_degenerate_rows():
    z = np.zeros((2, 3))
    a = RNG.normal(size=(2, 3))
    v, (g1, g2) = vg(fl.cosine_embedding, z, a, np.array([1, -1]), reduction="none")
    np.testing.assert_allclose(v, [1.0, 0.0])
    assert np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))
    v, gs = vg(fl.triplet_margin, a, a, a, reduction="none")
    np.testing.assert_allclose(v, [1.0, 1.0])
    assert all(np.all(np.isfinite(g)) for g in gs)
    # one element per sample: no pairs, loss 0
    v, _ = vg(fl.mean_pairwise_squared_error, a[:, :1], z[:, :1], reduction="none")
    np.testing.assert_array_equal(v, 0.0)


# ---------------------------------------------------------------- shapes and axes
def test_axis_moves_and_gradients_move_back():
    x = RNG.normal(size=(2, C, 3))
    y = probs((2, 3, C)).transpose(0, 2, 1)
    v, (gx, gy) = vg(fl.softmax_cross_entropy, x, y, axis=1, reduction="none")
    xm, ym = np.moveaxis(x, 1, -1), np.moveaxis(y, 1, -1)
    v2, (gx2, gy2) = vg(fl.softmax_cross_entropy, xm, np.ascontiguousarray(ym),
                        reduction="none")
    np.testing.assert_allclose(v, v2, rtol=1e-14)
    np.testing.assert_allclose(gx, np.moveaxis(gx2, -1, 1), rtol=1e-14)
    np.testing.assert_allclose(gy, np.moveaxis(gy2, -1, 1), rtol=1e-14)
    assert v.shape == (2, 3) and gx.shape == x.shape
    v3, _ = vg(fl.cosine_distance, x, x, axis=-2, reduction="none")
    np.testing.assert_allclose(v3, 1 - np.sum(x * x, axis=1))


@pytest.mark.parametrize("Cbig", [262144])
def test_large_class_count_few_rows(Cbig):
    x = RNG.normal(size=(3, Cbig)).astype(np.float32)
    k = np.array([0, 17, Cbig - 1])
    v, g = vg(fl.softmax_cross_entropy_with_integer_labels, x, k, reduction="none")
    x64 = x.astype(np.float64)
    r = logsumexp(x64, -1) - x64[np.arange(3), k]
    np.testing.assert_allclose(v, r, rtol=1e-5)
    p = np.exp(log_softmax(x64, -1))
    p[np.arange(3), k] -= 1
    np.testing.assert_allclose(g, p, atol=1e-6)


def test_chunked_kernel_matches_row_kernel(monkeypatch):
    """The few-long-rows path (prange over row chunks), forced with a tiny chunk."""
    x = RNG.normal(size=(1, 37)) * 3
    x[0, 30] = -np.inf
    k = np.array([5])
    y = probs((1, 37))
    cases = [(fl.softmax_cross_entropy_with_integer_labels, (x, k),
              {"label_smoothing": 0.1, "class_weight": RNG.random(37)}),
             (fl.softmax_cross_entropy, (x, y), {"label_smoothing": 0.2}),
             (fl.categorical_hinge, (x[:, :30] * 0.1, y[:, :30]), {}),   # phase-1 f1, ties
             (fl.categorical_focal_cross_entropy, (x, k), {})]           # Σ_{j≠k} by chunk
    before = [vg(f, *a, reduction="none", **kw) for f, a, kw in cases]
    monkeypatch.setattr(_rowwise, "CHUNK", 4)
    assert _rowwise._use_chunks(1, 37)
    for (f, a, kw), (v0, g0) in zip(cases, before):
        v1, g1 = vg(f, *a, reduction="none", **kw)
        np.testing.assert_allclose(v1, v0, rtol=1e-13)
        for u, w in zip(g1 if isinstance(g1, tuple) else (g1,),
                        g0 if isinstance(g0, tuple) else (g0,)):
            np.testing.assert_allclose(u, w, rtol=1e-13, atol=1e-16)


def test_out_buffer_and_empty_batch():
    x, k = RNG.normal(size=(3, 4)), np.array([0, 1, 2])
    buf = np.empty(3)
    v, _ = vg(fl.softmax_cross_entropy_with_integer_labels, x, k, reduction="none", out=buf)
    assert v.base is buf or v is buf
    v, g = vg(fl.softmax_cross_entropy_with_integer_labels, np.zeros((0, 4)),
              np.zeros(0, np.int64), reduction="sum")
    assert v == 0 and g.shape == (0, 4)


# ----------------------------------------------------------------------- errors
def test_errors():
    x = RNG.normal(size=(3, 4))
    k = np.array([0, 1, 2])
    ice = fl.softmax_cross_entropy_with_integer_labels
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 4\).*found 4"):
        ice(x, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels must be class indices.*found -1"):
        ice(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"labels must be class indices.*found 7"):
        fl.multiclass_hinge(x, np.array([0, 7, 1]))
    with pytest.raises(TypeError, match="labels must be an integer array"):
        ice(x, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\) does not match the batch"):
        ice(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"class_weight must have shape \(4,\)"):
        ice(x, k, class_weight=np.ones(3))
    with pytest.raises(ValueError, match="class_weight must be finite and non-negative"):
        ice(x, k, class_weight=-np.ones(4))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        ice(x, k, label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"labels of shape \(3, 3\) does not match logits"):
        fl.softmax_cross_entropy(x, np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"labels must hold probabilities.*1 negative entry"):
        vg(fl.softmax_cross_entropy, x, np.array([[1, 0, 0, 0], [0, 1, 0, 0], [-1, 0, 2, 0.]]))
    with pytest.raises(ValueError, match="target must hold probabilities"):
        vg(fl.kl_divergence, x, -np.ones((3, 4)))
    with pytest.raises(ValueError, match="target must hold probabilities"):
        vg(fl.softmax_kl_divergence, x, -np.ones((3, 4)))
    with pytest.raises(ValueError, match="labels must be 1 or -1, found 0"):
        fl.cosine_embedding(x, x, np.array([1, 0, -1]))
    with pytest.raises(ValueError, match=r"x2 of shape \(3, 5\) does not match x1"):
        fl.cosine_embedding(x, np.ones((3, 5)), np.array([1, 1, -1]))
    with pytest.raises(ValueError, match=r"negative of shape \(2, 4\) does not match anchor"):
        fl.triplet_margin(x, x, x[:2])
    with pytest.raises(ValueError, match=r"target of shape \(3, 5\) does not match pred"):
        fl.mean_pairwise_squared_error(x, np.ones((3, 5)))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        ice(x, k, axis=2)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        ice(x, k, sample_weight=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="sample_weight of shape"):
        ice(x, k, sample_weight=np.ones(4))
    with pytest.raises(ValueError, match="kind must be one of"):
        fl.multiclass_hinge(x, k, kind="max")
    with pytest.raises(ValueError, match="p must be 1 or 2, got 3"):
        fl.multiclass_hinge(x, k, p=3)
    with pytest.raises(TypeError, match="p must be an integer"):
        fl.multiclass_hinge(x, k, p=2.0)
    with pytest.raises(TypeError, match="squared must be a bool"):
        fl.triplet_margin(x, x, x, squared=1)
    with pytest.raises(ValueError, match="reduction must be one of"):
        ice(x, k, reduction="avg")
    with pytest.raises(TypeError, match="logits must be a real numeric array"):
        ice(np.array([["a"]]), np.array([0]))
    with pytest.raises(ValueError, match="empty class axis"):
        ice(np.zeros((2, 0)), np.array([0, 0]))
    with pytest.raises(ValueError, match="no diagonal Hessian"):
        fl.grad_and_hessian(fl.kl_divergence)
    with pytest.raises(ValueError, match="epsilon must be finite"):
        fl.poly1_softmax_cross_entropy(x, x, epsilon=np.nan)
    with pytest.raises(ValueError, match=r"labels must hold probabilities.*1 negative entry"):
        fl.poly1_softmax_cross_entropy(x, np.array([[1, 0, 0, 0], [0, 1, 0, 0], [-1, 0, 2, 0.]]))
    with pytest.raises(ValueError, match=r"target of shape \(3, 5\) does not match pred"):
        fl.categorical_hinge(x, np.ones((3, 5)))


def test_registry():
    for name in ["softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
                 "kl_divergence", "softmax_kl_divergence", "multiclass_hinge",
                 "cosine_embedding", "cosine_distance", "triplet_margin",
                 "mean_pairwise_squared_error"]:
        info = fl.LOSSES[name]
        assert info.kind == "rowwise"
        assert info.has_hessian == name.startswith("softmax_cross_entropy")
        assert name in fl.__all__
    for name in ["nll_loss", "categorical_hinge", "poly1_softmax_cross_entropy",
                 "multilabel_soft_margin", "categorical_focal_cross_entropy"]:
        info = fl.LOSSES[name]
        assert info.kind == "rowwise" and name in fl.__all__
        assert info.has_hessian == (name == "multilabel_soft_margin")
    assert fl.LOSSES["cosine_embedding"].inputs == ("x1", "x2", "labels")
    assert fl.LOSSES["triplet_margin"].differentiable == ("anchor", "positive", "negative")


# ------------------------------------------------- diagonal Hessian (softmax cross-entropy)
ICE = fl.softmax_cross_entropy_with_integer_labels
SCE = fl.softmax_cross_entropy


def ref_hess(x, T, gs):
    """gs·T·p(1 − p) per row: the diagonal of ∂²(Σ gs·ℓ)/∂x² for a loss T·lse(x) − (linear)."""
    p = np.exp(log_softmax(x, -1))
    return (gs * T)[:, None] * p * (1 - p)


def fd_hess(gradfn, x, h=1e-5):
    """Central differences of the gradient along each logit: the Hessian's diagonal."""
    out = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        out[idx] = (gradfn(xp)[idx] - gradfn(xm)[idx]) / (2 * h)
    return out


def _hess_scale(reduction, w, den):
    if reduction == "mean":
        return w / np.sum(w * den)
    return w


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_hessian_integer_labels_weights_smoothing_ignore(reduction):
    x = RNG.normal(size=(N, C)) * 2
    k = np.array([1, -100, 5, 0])
    cw = RNG.random(C) + 0.2
    w = np.array([0.5, 2.0, 1.5, 0.0])
    s = 0.15
    kw = dict(class_weight=cw, label_smoothing=s, sample_weight=w, reduction=reduction)
    g, h = fl.grad_and_hessian(ICE)(x, k, **kw)
    assert g.shape == h.shape == x.shape and h.dtype == np.float64
    counted = k != -100
    T = np.where(counted, (1 - s) * cw[np.where(counted, k, 0)] + s / C * cw.sum(), 0.0)
    den = np.where(counted, cw[np.where(counted, k, 0)], 0.0)
    ref = ref_hess(x, T, _hess_scale(reduction, w, den))
    np.testing.assert_allclose(h, ref, rtol=1e-13, atol=1e-16)
    assert np.all(h[1] == 0) and np.all(h[3] == 0)          # ignored row; zero weight
    # the gradient is value_and_grad's, bit for bit
    np.testing.assert_array_equal(g, fl.grad(ICE)(x, k, **kw))
    # central differences of the gradient
    fd = fd_hess(lambda z: fl.grad(ICE)(z, k, **kw), x)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_hessian_dense_labels_smoothing(reduction):
    x = RNG.normal(size=(N, C)) * 2
    y = probs((N, C)) * np.array([[1.0], [0.5], [2.0], [1.0]])   # rows of other totals
    y[0, 2] = 0.0
    w = np.array([1.0, 0.25, 3.0, 1.0])
    s = 0.1
    kw = dict(label_smoothing=s, sample_weight=w, reduction=reduction)
    g, h = fl.grad_and_hessian(SCE)(x, y, **kw)
    T = (y * (1 - s) + s / C).sum(-1)                      # Σ smoothed targets per row
    ref = ref_hess(x, T, _hess_scale(reduction, w, np.ones(N)))
    np.testing.assert_allclose(h, ref, rtol=1e-13, atol=1e-16)
    np.testing.assert_array_equal(g, fl.grad(SCE)(x, y, **kw))
    fd = fd_hess(lambda z: fl.grad(SCE)(z, y, **kw), x)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-9)


def test_hessian_float32_axis_buffers_nan_and_limits():
    x = RNG.normal(size=(N, C)) * 3
    x[1, 2] = np.nan            # a NaN row: NaN gradient and Hessian in that row only
    x[2, 4] = -np.inf           # a masked class: p = 0 there, its Hessian 0
    x[3, [0, 5]] = np.inf       # two +inf logits share the softmax: p = 1/2 each
    k = np.array([0, 1, 2, 3])
    g, h = fl.grad_and_hessian(ICE)(x, k, reduction="sum")
    assert np.isnan(h[1]).all() and np.isnan(g[1]).all()
    assert h[2, 4] == 0 and np.isfinite(h[[0, 2, 3]]).all()
    np.testing.assert_allclose(h[3], [0.25, 0, 0, 0, 0, 0.25], atol=1e-16)
    ok = [0, 2]
    np.testing.assert_allclose(h[ok], ref_hess(x[ok], np.ones(2), np.ones(2)), rtol=1e-13,
                               atol=1e-16)
    # float32 in, float32 out, against the float64 reference
    x32 = RNG.normal(size=(N, C)).astype(np.float32) * 2
    g32, h32 = fl.grad_and_hessian(ICE)(x32, k)
    assert g32.dtype == h32.dtype == np.float32
    ref = ref_hess(x32.astype(np.float64), np.ones(N), np.full(N, 1 / N))
    np.testing.assert_allclose(h32, ref, rtol=2e-5, atol=1e-7)
    # class axis first: the Hessian moves back like the gradient; buffers are filled
    xt = np.ascontiguousarray(x32.T)
    gb, hb = np.empty_like(xt), np.empty_like(xt)
    g2, h2 = fl.grad_and_hessian(ICE)(xt, k, axis=0, grad_out=gb, hess_out=hb)
    assert g2 is gb and h2 is hb
    np.testing.assert_array_equal(h2, h32.T)
    np.testing.assert_array_equal(g2, g32.T)
    with pytest.raises(ValueError, match="share memory"):
        fl.grad_and_hessian(ICE)(x32, k, grad_out=g32, hess_out=g32)
    with pytest.raises(ValueError, match="hess_out"):
        fl.grad_and_hessian(ICE)(x32, k, hess_out=np.empty((N, C)))   # float64 buffer
    with pytest.raises(ValueError, match="no diagonal Hessian"):
        fl.grad_and_hessian(fl.multiclass_hinge)


@pytest.mark.parametrize("D", [5, 8, 9])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_short_rows_parallel_and_serial_kernels_agree_bitwise(D, dt):
    """Rows of at most 8 columns add their terms one by one (no staging): the parallel
    kernel and its serial twin still store the same bits, and the values are right."""
    N = 4000                                   # N·D >= 16 384: the parallel kernel
    x = RNG.normal(size=(N, D)).astype(dt)
    k = RNG.integers(0, D, N)
    q = RNG.dirichlet(np.ones(D), N).astype(dt)
    for f, t in ((ICE, k), (fl.softmax_cross_entropy, q), (fl.kl_divergence, q),
                 (fl.multiclass_hinge, k)):
        xx = np.log(q * 0.5 + 0.25).astype(dt) if f is fl.kl_divergence else x
        v1, g1 = fl.value_and_grad(f)(xx, t, reduction="sum", n_threads=1)
        v2, g2 = fl.value_and_grad(f)(xx, t, reduction="sum", n_threads=2)
        assert v1 == v2
        np.testing.assert_array_equal(g1, g2)
    ref = -log_softmax(x.astype(np.float64), -1)[np.arange(N), k]
    v, g = fl.value_and_grad(ICE)(x, k, reduction="none")
    np.testing.assert_allclose(v, ref, rtol=1e-5 if dt == np.float32 else 1e-13)
    p = np.exp(log_softmax(x.astype(np.float64), -1))
    p[np.arange(N), k] -= 1
    np.testing.assert_allclose(g, p, rtol=1e-5 if dt == np.float32 else 1e-12,
                               atol=1e-7 if dt == np.float32 else 1e-15)
    _, h1 = fl.grad_and_hessian(ICE)(x, k, reduction="sum", n_threads=1)
    _, h2 = fl.grad_and_hessian(ICE)(x, k, reduction="sum", n_threads=2)
    np.testing.assert_array_equal(h1, h2)


def test_hessian_parallel_serial_and_chunked_kernels(monkeypatch):
    """The parallel row kernel, its serial twin and the chunked kernel store the same bits."""
    x = RNG.normal(size=(64, 300))          # 19 200 elements: the parallel kernel
    k = RNG.integers(0, 300, 64)
    g1, h1 = fl.grad_and_hessian(ICE)(x, k, reduction="sum", n_threads=1)
    g2, h2 = fl.grad_and_hessian(ICE)(x, k, reduction="sum", n_threads=2)
    np.testing.assert_array_equal(h1, h2)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(g2, fl.grad(ICE)(x, k, reduction="sum", n_threads=2))
    np.testing.assert_allclose(h1, ref_hess(x, np.ones(64), np.ones(64)), rtol=1e-13,
                               atol=1e-18)
    # few long rows: the chunked kernel (forced, with small chunks)
    xc, kc = RNG.normal(size=(1, 17000)), np.array([5])
    monkeypatch.setattr(_rowwise, "CHUNK", 1000)
    monkeypatch.setattr(_rowwise, "_use_chunks", lambda N, D: True)
    gc, hc = fl.grad_and_hessian(ICE)(xc, kc, reduction="sum", n_threads=2)
    np.testing.assert_allclose(hc, ref_hess(xc, np.ones(1), np.ones(1)), rtol=1e-12,
                               atol=1e-22)
    p = np.exp(log_softmax(xc, -1))
    p[0, 5] -= 1
    np.testing.assert_allclose(gc, p, rtol=1e-12, atol=1e-22)
