"""The math at the edges: evaluation order under fast-math, cancellation, ±inf limits, NaN
propagation, non-negativity, parameter domains.

Every expectation is an independent float64 NumPy formula or an exact limit.  Both dtypes;
the value-only kernel (a separate compiled variant: plain calls) and the gradient /
Hessian kernels.  Calls reuse the kernel variants of the other test files where they can
(``value_and_grad`` with weights and ``reduction="none"``, ``grad_and_hessian`` with
``"sum"``); float32 adds one variant returning value, gradient and Hessian together.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from scipy.special import log_softmax, softmax

import fastloss as fl
from fastloss._math.spec import ELEMENTWISE
from reference import PARAMS

INF = np.inf
NAN = np.nan
DTYPES = (np.float64, np.float32)


def f(name):
    return getattr(fl, name)


# ------------------------------------------------------------------- elementwise paths
def ew_value(name, x, y, **p):
    """The value-only kernel (reduction 'none', no weights)."""
    return f(name)(x, y, reduction="none", **p)


def ew_all(name, x, y, **p):
    """(value, gradient, Hessian) per element.

    float64: the variants test_elementwise compiles (value_and_grad with weights, and
    grad_and_hessian with 'sum'); float32: one kernel storing all three."""
    if x.dtype == np.float64:
        v, g = fl.value_and_grad(f(name))(x, y, sample_weight=np.ones_like(x),
                                          reduction="none", **p)
        g2, h = fl.grad_and_hessian(f(name))(x, y, reduction="sum", **p)
        np.testing.assert_allclose(g, g2, rtol=1e-14, atol=0)   # variants: last bit
        return v, g, h
    info = f(name).__fastloss__
    v, g, h = info.call((x, y), dict(reduction="none", **p), want_grad=True, want_hess=True,
                        argnums=(0,))
    return v, g["pred"], h


def assert_limit(got, want, dt, what, rtol=None):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    if rtol is None:
        rtol = 1e-12 if dt == np.float64 else 2e-6
    atol = 1e-14 if dt == np.float64 else 1e-6
    for gv, wv in zip(got.ravel(), want.ravel()):
        if math.isnan(wv):
            assert math.isnan(gv), f"{what}: got {gv}, want NaN"
        elif math.isinf(wv):
            assert gv == wv, f"{what}: got {gv}, want {wv}"
        else:
            assert gv == pytest.approx(wv, rel=rtol, abs=atol), f"{what}: got {gv}, want {wv}"


# ------------------------------------------------------------------ 2. evaluation order
@pytest.mark.parametrize("dt", DTYPES)
def test_bce_eps_added_after_the_difference(dt):
    """-log((1 - 1) + 1e-12) = 27.631021 (MXNet, TF-Slim); regrouped as
    (1 + 1e-12) - 1 it was 27.63093 (float64) or inf (float32)."""
    x, y = np.array([1.0, 0.0], dt), np.array([0.0, 1.0], dt)
    want = -np.log(np.float64(dt(1e-12)))
    v = ew_value("binary_cross_entropy", x, y, eps=1e-12, clip=False)
    np.testing.assert_allclose(v, [want, want], rtol=1e-12 if dt == np.float64 else 1e-6)
    v2, g, h = ew_all("binary_cross_entropy", x, y, eps=1e-12, clip=False)
    np.testing.assert_allclose(v2, v, rtol=1e-15 if dt == np.float64 else 1e-6)
    e = np.float64(dt(1e-12))
    np.testing.assert_allclose(g, [1 / e, -1 / e], rtol=1e-6)
    np.testing.assert_allclose(h, [1 / e ** 2 + 1 / (2 + e) ** 2] * 2, rtol=1e-5)


def ref_triplet(a, p, n, margin, eps):
    a, p, n = (np.asarray(z, np.float64) for z in (a, p, n))
    dp, dn = a - p + eps, a - n + eps
    np_, nn = np.linalg.norm(dp, axis=-1), np.linalg.norm(dn, axis=-1)
    d = np_ - nn + margin
    act = (d > 0)[:, None]
    up, un = dp / np_[:, None], dn / nn[:, None]
    return np.maximum(d, 0), (np.where(act, up - un, 0), np.where(act, -up, 0),
                              np.where(act, un, 0))


@pytest.mark.parametrize("dt", DTYPES)
def test_triplet_anchor_equal_positive(dt):
    """a = p = 1000, n = a + 3, margin 10 (PyTorch: d_p = -0.5, d_a = 1.0): the eps is added
    after a - p, never to a first (1000 + 1e-6 rounds to 1000 in float32)."""
    a = np.full((2, 4), 1000.0, dt)
    p, n = a.copy(), a + 3
    v, (ga, gp, gn) = fl.value_and_grad(fl.triplet_margin, (0, 1, 2))(
        a, p, n, margin=10.0, reduction="sum")
    np.testing.assert_allclose(ga, 1.0, rtol=1e-5)
    np.testing.assert_allclose(gp, -0.5, rtol=1e-5)
    np.testing.assert_allclose(gn, -0.5, rtol=1e-5)
    want, _ = ref_triplet(a, p, n, 10.0, 1e-6)
    np.testing.assert_allclose(v, want.sum(), rtol=1e-6)
    np.testing.assert_allclose(fl.triplet_margin(a, p, n, margin=10.0, reduction="none"),
                               want, rtol=1e-6)
    # a = p ~ N(0, 1): gradients to float32 round-off (errors reached 0.019 of 0.41)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 16)).astype(dt)
    p, n = a.copy(), (a + rng.standard_normal((8, 16))).astype(dt)
    want, gw = ref_triplet(a, p, n, 1.0, 1e-6)
    v, gs = fl.value_and_grad(fl.triplet_margin, (0, 1, 2))(a, p, n, reduction="none")
    np.testing.assert_allclose(v, want, rtol=1e-5)
    for g, w in zip(gs, gw):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dt", DTYPES)
def test_multiclass_hinge_margin_added_after_the_difference(dt):
    """Scores 1e7 (float32 spacing 1): (s_j - s_y) + 0.3 is 0.3, (s_j + 0.3) - s_y is 0."""
    s = np.full((2, 3), 1e7, dt)
    k = np.array([0, 2])
    v = fl.multiclass_hinge(s, k, margin=0.3, reduction="none")
    np.testing.assert_allclose(v, [0.6, 0.6], rtol=1e-6)
    v, g = fl.value_and_grad(fl.multiclass_hinge)(s, k, margin=0.3, reduction="none")
    np.testing.assert_allclose(v, [0.6, 0.6], rtol=1e-6)
    np.testing.assert_array_equal(g, [[-2, 1, 1], [1, 1, -2]])


# ------------------------------------------------------------- 3. pairwise cancellation
def ref_mpse(d):
    """Exact (rational arithmetic) per-row value and gradient w.r.t. d."""
    d = np.asarray(d, np.float64).reshape(len(d), -1)
    n = d.shape[1]
    vals, grads = [], []
    for row in d:
        fr = [Fraction(float(z)) for z in row]
        mu = sum(fr) / n
        c = [z - mu for z in fr]
        vals.append(float(2 * sum(z * z for z in c) / (n - 1)))
        grads.append([float(4 * z / (n - 1)) for z in c])
    return np.array(vals), np.array(grads)


@pytest.mark.parametrize("dt,offset,D", [(np.float32, 1e4, 1000), (np.float32, 1e3, 1000),
                                          (np.float64, 1e8, 1000), (np.float64, -1e12, 40)])
def test_mpse_offset_rows(dt, offset, D):
    """Rows of offset + N(0, 1): n Σd² − (Σd)² gave 0 (float32 1e4, float64 1e8)."""
    rng = np.random.default_rng(1)
    p = (offset + rng.standard_normal((3, D))).astype(dt)
    t = (rng.standard_normal((3, D)) * 0.1).astype(dt)
    want, gw = ref_mpse(p.astype(np.float64) - t.astype(np.float64))
    rtol = 1e-4 if dt == np.float32 else 1e-7
    np.testing.assert_allclose(fl.mean_pairwise_squared_error(p, t, reduction="none"), want,
                               rtol=rtol)
    v, (gp, gt) = fl.value_and_grad(fl.mean_pairwise_squared_error, (0, 1))(
        p, t, reduction="none")
    np.testing.assert_allclose(v, want, rtol=rtol)
    atol = 1e-3 * np.abs(gw).max() if dt == np.float32 else 1e-9 * np.abs(gw).max()
    np.testing.assert_allclose(gp, gw, atol=atol)
    np.testing.assert_allclose(gt, -gw, atol=atol)


def test_mpse_chunked_kernel_offset(monkeypatch):
    """Few long rows (column chunks in parallel): the shift d_0 lives in the first chunk."""
    from fastloss import _rowwise
    monkeypatch.setattr(_rowwise, "CHUNK", 64)
    rng = np.random.default_rng(2)
    p = 1e8 + rng.standard_normal((1, 300))
    t = np.zeros_like(p)
    assert _rowwise._use_chunks(1, 300)
    want, gw = ref_mpse(p - t)
    v, (gp, gt) = fl.value_and_grad(fl.mean_pairwise_squared_error, (0, 1))(
        p, t, reduction="none")
    np.testing.assert_allclose(v, want, rtol=1e-7)
    np.testing.assert_allclose(gp, gw, atol=1e-9 * np.abs(gw).max())


# ----------------------------------------------------- 4. ±inf: the limits, elementwise
# (loss, params, pred, target, value, d/dpred, d²/dpred²); "raise": outside the domain
P = PARAMS
EW_LIMITS = [
    ("absolute_error", {}, INF, 0.5, INF, 1, 0),
    ("absolute_error", {}, -INF, 0.5, INF, -1, 0),
    ("absolute_error", {}, 0.5, INF, INF, -1, 0),
    ("absolute_error", {}, 0.5, -INF, INF, 1, 0),
    ("squared_error", {}, INF, 0.5, INF, INF, 2),
    ("squared_error", {}, -INF, 0.5, INF, -INF, 2),
    ("squared_error", {}, 0.5, INF, INF, -INF, 2),
    ("squared_error", {}, 0.5, -INF, INF, INF, 2),
    ("huber", P["huber"], INF, 0.5, INF, 0.7, 0),
    ("huber", P["huber"], -INF, 0.5, INF, -0.7, 0),
    ("huber", P["huber"], 0.5, INF, INF, -0.7, 0),
    ("huber", P["huber"], 0.5, -INF, INF, 0.7, 0),
    ("pseudo_huber", P["pseudo_huber"], INF, 0.5, INF, 0.8, 0),
    ("pseudo_huber", P["pseudo_huber"], -INF, 0.5, INF, -0.8, 0),
    ("pseudo_huber", P["pseudo_huber"], 0.5, INF, INF, -0.8, 0),
    ("pseudo_huber", P["pseudo_huber"], 0.5, -INF, INF, 0.8, 0),
    ("smooth_l1", P["smooth_l1"], INF, 0.5, INF, 1, 0),
    ("smooth_l1", P["smooth_l1"], -INF, 0.5, INF, -1, 0),
    ("smooth_l1", P["smooth_l1"], 0.5, INF, INF, -1, 0),
    ("smooth_l1", {"beta": 0.0}, 0.5, -INF, INF, 1, 0),
    ("log_cosh", {}, INF, 0.5, INF, 1, 0),
    ("log_cosh", {}, -INF, 0.5, INF, -1, 0),
    ("log_cosh", {}, 0.5, INF, INF, -1, 0),
    ("log_cosh", {}, 0.5, -INF, INF, 1, 0),
    ("quantile", P["quantile"], INF, 0.5, INF, 0.7, 0),
    ("quantile", P["quantile"], -INF, 0.5, INF, -0.3, 0),
    ("quantile", P["quantile"], 0.5, INF, INF, -0.3, 0),
    ("quantile", P["quantile"], 0.5, -INF, INF, 0.7, 0),
    ("sigmoid_binary_cross_entropy", {}, INF, 1.0, 0, 0, 0),
    ("sigmoid_binary_cross_entropy", {}, -INF, 0.0, 0, 0, 0),
    ("sigmoid_binary_cross_entropy", {}, INF, 0.0, INF, 1, 0),
    ("sigmoid_binary_cross_entropy", {}, -INF, 1.0, INF, -1, 0),
    ("sigmoid_binary_cross_entropy", {}, INF, 0.25, INF, 0.75, 0),
    # pos_weight 2.5, smoothing 0.1: y' = 0.95 / 0.05
    ("sigmoid_binary_cross_entropy", P["sigmoid_binary_cross_entropy"], INF, 1.0, INF, 0.05, 0),
    ("sigmoid_binary_cross_entropy", P["sigmoid_binary_cross_entropy"], -INF, 1.0, INF,
     -2.375, 0),
    ("sigmoid_binary_cross_entropy", P["sigmoid_binary_cross_entropy"], -INF, 0.0, INF,
     -0.125, 0),
    ("sigmoid_binary_cross_entropy", {}, 0.5, INF, "raise"),
    ("sigmoid_focal", P["sigmoid_focal"], INF, 1.0, 0, 0, 0),
    ("sigmoid_focal", P["sigmoid_focal"], -INF, 0.0, 0, 0, 0),
    ("sigmoid_focal", P["sigmoid_focal"], INF, 0.0, INF, 0.7, 0),
    ("sigmoid_focal", P["sigmoid_focal"], -INF, 1.0, INF, -0.3, 0),
    # soft label 0.25: α_t = 0.6, p - y = 0.75, (1 - p_t)^γ = 0.75^1.5
    ("sigmoid_focal", P["sigmoid_focal"], INF, 0.25, INF, 0.6 * 0.75 * 0.75 ** 1.5, 0),
    ("sigmoid_focal", {"alpha": 1.0, "gamma": 2.0}, INF, 0.0, 0, 0, 0),   # α_t = 0
    ("sigmoid_focal", {"alpha": -1.0, "gamma": 0.0}, -INF, 1.0, INF, -1, 0),
    ("sigmoid_focal", {}, 0.5, -INF, "raise"),
    ("binary_cross_entropy", {}, INF, 0.5, "raise"),
    ("binary_cross_entropy", {}, -INF, 0.5, "raise"),
    ("binary_cross_entropy", {}, 0.5, -INF, "raise"),
    # 6. eps = 0 at the boundary: 0 log 0 = 0
    ("binary_cross_entropy", {"eps": 0.0}, 0.0, 0.0, 0, 1, 1),
    ("binary_cross_entropy", {"eps": 0.0}, 1.0, 1.0, 0, -1, 1),
    ("binary_cross_entropy", {"eps": 0.0}, 1.0, 0.0, INF, INF, INF),
    ("binary_cross_entropy", {"eps": 0.0}, 0.0, 1.0, INF, -INF, INF),
    ("binary_cross_entropy", {"eps": 0.0, "clip": False}, 0.0, 0.0, 0, 1, 1),
    ("binary_cross_entropy", {"eps": 0.0, "clip": False}, 1.0, 0.0, INF, INF, INF),
    ("hinge", P["hinge"], INF, 1.0, 0, 0, 0),
    ("hinge", P["hinge"], -INF, 1.0, INF, -1, 0),
    ("hinge", P["hinge"], INF, -1.0, INF, 1, 0),
    ("hinge", P["hinge"], -INF, -1.0, 0, 0, 0),
    ("hinge", {}, 0.5, INF, "raise"),
    ("squared_hinge", P["squared_hinge"], INF, 1.0, 0, 0, 0),
    ("squared_hinge", P["squared_hinge"], -INF, 1.0, INF, -INF, 2),
    ("squared_hinge", P["squared_hinge"], INF, -1.0, INF, INF, 2),
    ("squared_hinge", P["squared_hinge"], -INF, -1.0, 0, 0, 0),
    ("logistic", {}, INF, 1.0, 0, 0, 0),
    ("logistic", {}, -INF, 1.0, INF, -1, 0),
    ("logistic", {}, INF, -1.0, INF, 1, 0),
    ("logistic", {}, -INF, -1.0, 0, 0, 0),
    ("logistic", {}, 0.5, -INF, "raise"),
    ("poisson_nll", P["poisson_nll"], INF, 2.0, INF, INF, INF),
    ("poisson_nll", P["poisson_nll"], -INF, 2.0, INF, -2, 0),
    ("poisson_nll", P["poisson_nll"], -INF, 0.0, 0, 0, 0),
    ("poisson_nll", P["poisson_nll"], 0.5, INF, INF, -INF, math.exp(0.5)),
    ("poisson_nll", P["poisson_nll"], 0.5, -INF, INF, INF, math.exp(0.5)),
    ("poisson_nll", {}, INF, 2.0, INF, INF, INF),
    ("poisson_nll", {"log_input": False}, INF, 2.0, INF, 1, 0),
    ("poisson_nll", {"log_input": False, "full": True}, INF, 2.0, INF, 1, 0),
    ("poisson_nll", {"log_input": False}, 0.5, INF, INF, -INF, INF),
    ("poisson_nll", {"log_input": False, "full": True}, 0.5, INF, INF, -INF, INF),
    # x + eps = 0 (log_input=False, eps=0): y = 0 gives x - 0·log x -> 0, gradient 1 - y/x = 1
    ("poisson_nll", {"log_input": False, "eps": 0.0}, 0.0, 0.0, 0, 1, 0),
    ("poisson_nll", {"log_input": False, "eps": 0.0}, 0.0, 2.0, INF, -INF, INF),
    # power 1.3: (2 - p) + (p - 1) = 1 is the Hessian at mu = y = 1
    ("tweedie_deviance", P["tweedie_deviance"], INF, 2.0, INF, INF, INF),
    ("tweedie_deviance", P["tweedie_deviance"], -INF, 2.0, INF, -INF, INF),
    ("tweedie_deviance", P["tweedie_deviance"], -INF, 0.0, 0, 0, 0),
    ("tweedie_deviance", P["tweedie_deviance"], INF, 0.0, INF, INF, INF),
    ("tweedie_deviance", P["tweedie_deviance"], 0.5, INF, INF, -INF, INF),
    ("tweedie_deviance", P["tweedie_deviance"], INF, INF, NAN, NAN, NAN),
    ("tweedie_deviance", P["tweedie_deviance"], 0.0, 1.0, 0, 0, 1),
    ("tweedie_deviance", P["tweedie_deviance"], 0.5, -1.0, NAN, NAN, NAN),
    ("gamma_deviance", {}, INF, 2.0, INF, 1, 0),
    ("gamma_deviance", {}, -INF, 2.0, INF, -INF, INF),
    ("gamma_deviance", {}, 0.5, 0.0, INF, 1, 0),
    ("gamma_deviance", {}, -INF, 0.0, INF, 1, 0),          # y = 0: the gradient is 1
    ("gamma_deviance", {}, 0.5, INF, INF, -INF, INF),
    ("gamma_deviance", {}, 0.0, 1.0, 0, 0, 1),
    ("gamma_deviance", {}, 0.5, -1.0, NAN, NAN, NAN),
    # eps = 1e-3
    ("mean_absolute_percentage_error", P["mean_absolute_percentage_error"], INF, 0.5, INF, 200, 0),
    ("mean_absolute_percentage_error", P["mean_absolute_percentage_error"], -INF, 0.5, INF, -200,
     0),
    ("mean_absolute_percentage_error", P["mean_absolute_percentage_error"], 0.5, INF, 100, 0, 0),
    ("mean_absolute_percentage_error", P["mean_absolute_percentage_error"], 0.5, -INF, 100, 0, 0),
    ("mean_absolute_percentage_error", P["mean_absolute_percentage_error"], INF, -INF, 200, 0, 0),
    ("mean_absolute_percentage_error", P["mean_absolute_percentage_error"], -INF, INF, 200, 0, 0),
    ("mean_absolute_percentage_error", P["mean_absolute_percentage_error"], INF, INF, NAN, NAN,
     NAN),
    ("mean_absolute_percentage_error", P["mean_absolute_percentage_error"], 0.3, 0.0, 3e4, 1e5,
     0),
    ("mean_absolute_percentage_error", {}, 0.5, 0.5, 0, 0, 0),
    ("mean_squared_log_error", P["mean_squared_log_error"], INF, 0.5, INF, 0, 0),
    ("mean_squared_log_error", P["mean_squared_log_error"], -INF, 0.5,
     (math.log1p(1e-7) - math.log1p(0.5)) ** 2, 0, 0),
    ("mean_squared_log_error", P["mean_squared_log_error"], 0.5, INF, INF, -INF, INF),
    ("mean_squared_log_error", P["mean_squared_log_error"], INF, INF, NAN, NAN, NAN),
    ("mean_squared_log_error", {"eps": 0.0}, -1.0, 3.0, math.log(4.0) ** 2, 0, 0),
    ("hinge_embedding", P["hinge_embedding"], INF, 1.0, INF, 1, 0),
    ("hinge_embedding", P["hinge_embedding"], -INF, 1.0, -INF, 1, 0),
    ("hinge_embedding", P["hinge_embedding"], INF, -1.0, 0, 0, 0),
    ("hinge_embedding", P["hinge_embedding"], -INF, -1.0, INF, -1, 0),
    ("hinge_embedding", P["hinge_embedding"], 0.8, -1.0, 0, 0, 0),       # at the margin
    ("hinge_embedding", {}, 0.5, INF, "raise"),
    # epsilon 1.5; soft label 0.25 at +inf: p - y = 0.75, the polynomial term's slope 0
    ("poly1_cross_entropy", P["poly1_cross_entropy"], INF, 1.0, 0, 0, 0),
    ("poly1_cross_entropy", P["poly1_cross_entropy"], -INF, 0.0, 0, 0, 0),
    ("poly1_cross_entropy", P["poly1_cross_entropy"], INF, 0.0, INF, 1, 0),
    ("poly1_cross_entropy", P["poly1_cross_entropy"], -INF, 1.0, INF, -1, 0),
    ("poly1_cross_entropy", P["poly1_cross_entropy"], INF, 0.25, INF, 0.75, 0),
    ("poly1_cross_entropy", {}, 0.5, -INF, "raise"),
    ("generalized_kl", {}, INF, 2.0, INF, 1, 0),
    ("generalized_kl", {}, 0.0, 2.0, INF, -INF, INF),
    ("generalized_kl", {}, 0.0, 0.0, 0, 1, 0),
    ("generalized_kl", {}, 0.5, 0.0, 0.5, 1, 0),
    ("generalized_kl", {}, 0.5, INF, INF, -INF, INF),
    ("generalized_kl", {}, INF, INF, NAN, NAN, NAN),
    ("generalized_kl", {}, -INF, 1.0, NAN, NAN, NAN),
    ("generalized_kl", {}, -0.5, 1.0, NAN, NAN, NAN),
    ("generalized_kl", {}, 0.5, -1.0, NAN, NAN, NAN),
    ("generalized_kl", {}, 2.0, 2.0, 0, 0, 0.5),
    ("convex_kl", {}, INF, 2.0, INF, INF, INF),
    ("convex_kl", {}, -INF, 2.0, INF, -2, 0),
    ("convex_kl", {}, -INF, 0.0, 0, 0, 0),
    ("convex_kl", {}, 0.5, INF, INF, -INF, math.exp(0.5)),
    ("convex_kl", {}, 0.5, 0.0, math.exp(0.5), math.exp(0.5), math.exp(0.5)),
    ("convex_kl", {}, INF, INF, NAN, NAN, INF),          # the Hessian e^x: no target
    ("convex_kl", {}, 0.5, -1.0, NAN, NAN, NAN),
    ("convex_kl", {}, 0.0, 1.0, 0, 0, 1),
]
PM1_LOSSES = ("hinge", "squared_hinge", "logistic", "hinge_embedding")
POS_TARGET = ("poisson_nll", "gamma_deviance")     # the ordinary elements' targets: 1, 2


def _ids(cases):
    return [f"{c[0]}-{c[2]}-{c[3]}-{i}" for i, c in enumerate(cases)]


def test_limit_table_covers_every_elementwise_loss():
    assert {c[0] for c in EW_LIMITS} == set(ELEMENTWISE)
    for name in ELEMENTWISE:    # each loss: +inf and -inf of pred at least
        xs = {c[2] for c in EW_LIMITS if c[0] == name}
        assert {INF, -INF} <= xs, name


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("case", EW_LIMITS, ids=_ids(EW_LIMITS))
def test_elementwise_limits(case, dt):
    name, p, x0, y0 = case[:4]
    # the edge case next to two ordinary elements (so a NaN cannot hide in a reduction)
    x = np.array([x0, 0.3, 0.4], dt)
    y = np.array([y0, 1.0, 0.0], dt) if name not in POS_TARGET else np.array([y0, 1.0, 2.0], dt)
    if name in PM1_LOSSES:
        y[1:] = [1.0, -1.0]
    if case[4] == "raise":
        with pytest.raises(ValueError, match=name):
            ew_value(name, x, y, **p)
        return
    v_want, g_want, h_want = case[4:]
    v = ew_value(name, x, y, **p)
    va, g, h = ew_all(name, x, y, **p)
    assert np.all(np.isfinite(v[1:])) and np.all(np.isfinite(g[1:]))
    assert_limit(v[:1], v_want, dt, f"{name} value")
    assert_limit(va[:1], v_want, dt, f"{name} value (gradient kernel)")
    assert_limit(g[:1], g_want, dt, f"{name} gradient")
    assert_limit(h[:1], h_want, dt, f"{name} Hessian")


@pytest.mark.parametrize("dt", DTYPES)
def test_bce_hessian_tiny_pred(dt):
    """pred 1e-300 (float64) / 1e-37 (float32), target 0, eps 0: -log(1 - p), Hessian 1."""
    p = 1e-300 if dt == np.float64 else 1e-37
    x, y = np.array([p, 0.5], dt), np.array([0.0, 0.5], dt)
    v, g, h = ew_all("binary_cross_entropy", x, y, eps=0.0)
    assert v[0] == pytest.approx(p, abs=1e-30) and g[0] == 1 and h[0] == 1


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_elementwise_nan_in_nan_out(name, dt):
    """NaN pred or NaN target: NaN value and gradient (and Hessian where it depends on it)."""
    p = PARAMS.get(name, {})
    x = np.array([NAN, 0.4, 0.3, 0.6], dt)
    y = np.array([0.0, NAN, 1.0, 0.0], dt)
    if name in PM1_LOSSES:
        y[[0, 2, 3]] = [1.0, -1.0, 1.0]
    if name in POS_TARGET:
        y[[0, 2, 3]] = [2.0, 3.0, 0.0 if name == "poisson_nll" else 1.0]
    for v in (ew_value(name, x, y, **p), ew_all(name, x, y, **p)[0]):
        assert np.isnan(v[:2]).all() and np.isfinite(v[2:]).all()
    _, g, h = ew_all(name, x, y, **p)
    assert np.isnan(g[:2]).all() and np.isfinite(g[2:]).all()
    assert np.isnan(h[0]) and np.isfinite(h[2:]).all()
    if name == "poisson_nll":      # log_input: the Hessian e^x does not involve the target
        assert h[1] == pytest.approx(math.exp(0.4), rel=1e-6)
    else:
        assert np.isnan(h[1])


# ---------------------------------------------- 5. non-negative losses stay non-negative
NONNEG = [n for n in sorted(ELEMENTWISE) if n not in ("poisson_nll", "hinge_embedding")]
NONNEG_TARGET = ("tweedie_deviance", "gamma_deviance", "generalized_kl", "convex_kl")


def _extreme_values(dt, rng, n):
    big = float(np.finfo(dt).max)
    pool = np.array([big, big / 2, big / 3, 3e38 if dt == np.float32 else 1e300,
                     1e30, 1e20, 88.0, 100.0, 1e-30, 0.0, 1.0, 2.0, 0.5, 17.0, 40.0])
    pool = pool[np.isfinite(pool.astype(dt))]
    pool = np.concatenate([pool, -pool])
    return rng.choice(pool, n).astype(dt), pool


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", NONNEG)
def test_elementwise_never_negative(name, dt):
    rng = np.random.default_rng(3)
    n = 400
    x, pool = _extreme_values(dt, rng, n)
    if name in PM1_LOSSES:
        y = rng.choice([-1.0, 1.0], n).astype(dt)
    elif name in NONNEG_TARGET:
        y = np.abs(rng.choice(pool, n)).astype(dt)
        if name == "generalized_kl":
            x = np.abs(x)
    elif name in ("sigmoid_binary_cross_entropy", "sigmoid_focal", "poly1_cross_entropy"):
        y = rng.choice([0.0, 1.0, 0.25, 0.999], n).astype(dt)
    elif name == "binary_cross_entropy":
        x = rng.choice([0.0, 1.0, 1e-30, 1 - 1e-7, 0.5, 1e-8], n).astype(dt)
        y = rng.choice([0.0, 1.0, 0.3, 1e-30], n).astype(dt)
    else:
        y = rng.choice(pool, n).astype(dt)
    params = [PARAMS.get(name, {})]
    if name == "sigmoid_binary_cross_entropy":
        params += [{"pos_weight": 1e3, "label_smoothing": 0.3}, {"pos_weight": 0.0}]
    if name == "sigmoid_focal":
        params += [{"alpha": 1.0, "gamma": 0.0}, {"alpha": -1.0, "gamma": 5.0}]
    if name == "binary_cross_entropy":
        params += [{"eps": 0.0}, {"eps": 0.4}]
    for p in params:
        v = ew_value(name, x, y, **p)
        assert np.all(v >= 0), (p, x[~(v >= 0)], y[~(v >= 0)], v[~(v >= 0)])
        va = ew_all(name, x, y, **p)[0]
        assert np.all(va >= 0), (p, x[~(va >= 0)], y[~(va >= 0)], va[~(va >= 0)])


def test_sigmoid_bce_float32_overflow_issue_example():
    v = fl.sigmoid_binary_cross_entropy(np.float32([3e38]), np.float32([0]), pos_weight=2.5,
                                        label_smoothing=0.1, reduction="none")
    assert v.dtype == np.float32 and v[0] == pytest.approx(0.95 * 3e38, rel=1e-6)


# ------------------------------------------------------- 12. parameter domains (focal)
@pytest.mark.parametrize("alpha", [1.5, 2.0, np.inf])
def test_focal_alpha_above_one_refused(alpha):
    with pytest.raises(ValueError, match="sigmoid_focal: alpha"):
        fl.sigmoid_focal(np.zeros(3), np.ones(3), alpha=alpha)


def test_focal_alpha_edges_accepted():
    x, y = np.array([-2.0, 0.5, 3.0]), np.array([1.0, 0.0, 1.0])
    for a in (0.0, 1.0, -0.5):
        assert np.all(ew_value("sigmoid_focal", x, y, alpha=a) >= 0)


# --------------------------------------------- rowwise: independent float64 references
def _probs(rng, shape):
    p = rng.random(shape) + 0.1
    return p / p.sum(-1, keepdims=True)


def ref_row(tag, args, kw):
    """(per-row values, tuple of gradients of their sum) in float64."""
    A = [np.asarray(a, np.float64) for a in args]
    if tag in ("sce",):
        x, y = A
        s = kw.get("label_smoothing", 0.0)
        yp = y * (1 - s) + s / x.shape[-1]
        ls = log_softmax(x, -1)
        v = -np.sum(np.where(yp == 0, 0, yp * ls), -1)
        return v, (yp.sum(-1, keepdims=True) * softmax(x, -1) - yp, -(1 - s) * ls)
    if tag == "ice":
        x, k = A[0], np.asarray(args[1])
        ls = log_softmax(x, -1)
        oh = np.eye(x.shape[-1])[k]
        return -np.sum(oh * ls, -1), (softmax(x, -1) - oh,)
    if tag == "kl":
        lp, t = A
        with np.errstate(all="ignore"):
            v = np.sum(np.where(t == 0, 0, t * (np.log(t) - lp)), -1)
            return v, (-t, np.log(t) + 1 - lp)
    if tag == "klt":
        lp, lt = A
        t = np.exp(lt)
        with np.errstate(all="ignore"):   # t = 0 (log t = -inf): the term vanishes
            return (np.sum(np.where(t == 0, 0, t * (lt - lp)), -1),
                    (-t, np.where(t == 0, 0, t * (lt - lp + 1))))
    if tag == "skl":
        x, t = A
        ls = log_softmax(x, -1)
        with np.errstate(all="ignore"):
            v = np.sum(np.where(t == 0, 0, t * (np.log(t) - ls)), -1)
            return v, (t.sum(-1, keepdims=True) * softmax(x, -1) - t, np.log(t) + 1 - ls)
    if tag in ("mh", "mhcs"):
        s, k = A[0], np.asarray(args[1])
        m = kw.get("margin", 1.0)
        v, g = np.zeros(len(s)), np.zeros_like(s)
        for i, ki in enumerate(k):
            d = s[i] - s[i, ki] + m
            d[ki] = -np.inf
            if tag == "mh":
                act = d > 0
                v[i] = np.sum(d[act])
                g[i, act] = 1
                g[i, ki] = -act.sum()
            else:   # the largest other score (ties from the scores, not rounded d)
                others = np.delete(s[i], ki)
                smax = others.max()
                mx = smax - s[i, ki] + m
                if mx > 0:
                    v[i] = mx
                    ties = s[i] == smax
                    ties[ki] = False
                    g[i, ties] = 1 / ties.sum()
                    g[i, ki] = -1
        return v, (g,)
    if tag == "cdist":
        p, t = A
        return 1 - np.sum(p * t, -1), (-t, -p)
    if tag in ("trip", "trips"):
        a, p, n = A
        m = kw.get("margin", 1.0)
        if tag == "trips":   # exact (rational): no cancellation at huge entries
            F = np.vectorize(Fraction, otypes=[object])
            fa, fp, fn = F(a), F(p), F(n)
            dx = np.sum((fa - fp) ** 2, -1) - np.sum((fa - fn) ** 2, -1) + Fraction(m)
            d = dx.astype(np.float64)
            act = (dx > 0)[:, None]
            ga = (2 * (fn - fp)).astype(np.float64)
            up, un = (2 * (fa - fp)).astype(np.float64), (2 * (fa - fn)).astype(np.float64)
            return np.where(dx > 0, d, 0), tuple(np.where(act, g, 0) for g in (ga, -up, un))
        else:
            eps = kw.get("eps", 1e-6)
            dp, dn = a - p + eps, a - n + eps
            npn, nnn = np.linalg.norm(dp, axis=-1), np.linalg.norm(dn, axis=-1)
            d = npn - nnn + m
            act = (d > 0)[:, None]
            up, un = dp / npn[:, None], dn / nnn[:, None]
        return np.maximum(d, 0), tuple(np.where(act, g, 0) for g in (up - un, -up, un))
    if tag == "mpse":
        p, t = A
        v, g = ref_mpse(p - t)
        return v, (g, -g)
    raise KeyError(tag)


RNG = np.random.default_rng(11)
X = RNG.normal(size=(2, 4)) * 2
Y = _probs(RNG, (2, 4))
K = np.array([2, 0])
LP = log_softmax(RNG.normal(size=(2, 4)), -1)
A3 = [RNG.normal(size=(2, 4)) for _ in range(3)]
A3[2] = A3[0] + 2 * np.sign(RNG.normal(size=(2, 4)))     # anchors closer to the positives
PM = np.array([1, -1])
# tag: (function, float inputs, extra positional, params); gradients of every float input
ROW = {
    "sce": (fl.softmax_cross_entropy, [X, Y], [], {"label_smoothing": 0.1}),
    "ice": (fl.softmax_cross_entropy_with_integer_labels, [X], [K], {}),
    "kl": (fl.kl_divergence, [LP, Y], [], {}),
    "klt": (fl.kl_divergence, [LP, np.log(Y)], [], {"log_target": True}),
    "skl": (fl.softmax_kl_divergence, [X, Y], [], {}),
    "mh": (fl.multiclass_hinge, [X], [K], {"margin": 1.5}),
    "mhcs": (fl.multiclass_hinge, [X], [K], {"kind": "crammer_singer"}),
    "cemb": (fl.cosine_embedding, [A3[0], A3[1]], [PM], {"margin": -0.2}),
    "cdist": (fl.cosine_distance, [A3[0], A3[1]], [], {}),
    "trip": (fl.triplet_margin, A3, [], {"margin": 0.5}),
    "trips": (fl.triplet_margin, A3, [], {"squared": True, "margin": 2.0}),
    "mpse": (fl.mean_pairwise_squared_error, [A3[0], A3[1]], [], {}),
}


def row_vg(tag, floats, dt):
    fn, _, extra, kw = ROW[tag]
    fs = [np.asarray(a, dt) for a in floats]
    nums = tuple(range(len(fs)))
    v, g = fl.value_and_grad(fn, nums if len(nums) > 1 else 0)(*fs, *extra, reduction="none",
                                                                **kw)
    return v, (g if isinstance(g, tuple) else (g,))


def row_ref(tag, floats):
    fn, _, extra, kw = ROW[tag]
    return ref_row(tag, list(floats) + list(extra), kw)


def test_row_references_agree_with_kernels():
    """The references of this file against the kernels on ordinary inputs."""
    for tag, (fn, floats, extra, kw) in ROW.items():
        if tag == "cemb":
            continue
        v, g = row_vg(tag, floats, np.float64)
        rv, rg = row_ref(tag, floats)
        np.testing.assert_allclose(v, rv, rtol=1e-12, atol=1e-12, err_msg=tag)
        for a, b in zip(g, rg):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=tag)


# ------------------------------------------------------ 10. NaN in: affected entries NaN
# (tag, input index, column): which gradient entries of row 0 must be NaN
# "all": every entry of every gradient; {gradient index: columns}; the rest stay finite
NAN_CASES = [
    ("sce", 0, "all"), ("sce", 1, {0: "all"}),
    ("ice", 0, "all"),
    ("kl", 0, {1: [1]}), ("kl", 1, {0: [1], 1: [1]}),
    ("klt", 0, {1: [1]}), ("klt", 1, {0: [1], 1: [1]}),
    ("skl", 0, "all"), ("skl", 1, {0: "all", 1: [1]}),
    ("mh", 0, {0: [1, 2]}),                  # the NaN score and the label's score (k = 2)
    ("mhcs", 0, "all"),
    ("cemb", 0, "all"), ("cemb", 1, "all"),
    ("cdist", 0, {1: [1]}), ("cdist", 1, {0: [1]}),
    ("trip", 0, "all"), ("trip", 1, "all"), ("trip", 2, "all"),
    ("trips", 0, "all"), ("trips", 1, "all"), ("trips", 2, "all"),
    ("mpse", 0, "all"), ("mpse", 1, "all"),
]


def test_nan_cases_cover_every_row_input():
    want = {(t, i) for t, (_, fl_, _, _) in ROW.items() for i in range(len(fl_))}
    assert {(c[0], c[1]) for c in NAN_CASES} == want


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("case", NAN_CASES, ids=[f"{c[0]}-{c[1]}" for c in NAN_CASES])
def test_rowwise_nan_gradients(case, dt):
    tag, idx, which = case
    floats = [np.array(a) for a in ROW[tag][1]]
    floats[idx][0, 1] = np.nan
    v, g = row_vg(tag, floats, dt)
    assert np.isnan(v[0]) and np.isfinite(v[1])
    for gi, gr in enumerate(g):
        assert np.all(np.isfinite(gr[1])), (tag, gi)
        mask = np.zeros(4, bool)
        if which == "all":
            mask[:] = True
        elif gi in which:
            mask[which[gi] if which[gi] != "all" else slice(None)] = True
        assert np.all(np.isnan(gr[0][mask])), (tag, gi, gr[0])
        assert np.all(np.isfinite(gr[0][~mask])), (tag, gi, gr[0])


def test_multiclass_hinge_nan_issue_example():
    v, g = fl.value_and_grad(fl.multiclass_hinge)(np.array([[np.nan, 0, 1]]), np.array([1]))
    assert np.isnan(v) and np.isnan(g[0, 0]) and np.isnan(g[0, 1]) and g[0, 2] == 1
    v, g = fl.value_and_grad(fl.multiclass_hinge)(np.array([[np.nan, 0, 1]]), np.array([1]),
                                                  kind="crammer_singer")
    assert np.isnan(v) and np.isnan(g).all()


# ---------------------------------------------------------- 4. ±inf: row-wise limits
# (tag, input index, column, sign): the limit taken numerically from the float64
# references at ±1e100 and ±1e150 (entries that move are diverging: ±inf expected)
ROW_INF = [
    ("sce", 0, 1, -1), ("sce", 0, 1, 1), ("ice", 0, 1, -1), ("ice", 0, 2, -1),
    ("ice", 0, 1, 1), ("ice", 0, 2, 1),
    ("kl", 0, 1, -1),
    ("skl", 0, 1, -1), ("skl", 0, 1, 1),
    ("mh", 0, 1, 1), ("mh", 0, 1, -1), ("mh", 0, 2, 1), ("mh", 0, 2, -1),
    ("mhcs", 0, 1, 1), ("mhcs", 0, 1, -1), ("mhcs", 0, 2, 1), ("mhcs", 0, 2, -1),
    ("cdist", 0, 1, 1), ("cdist", 1, 1, -1),
    ("trip", 1, 1, 1), ("trip", 1, 1, -1), ("trip", 2, 1, 1), ("trip", 2, 1, -1),
    ("trips", 1, 1, 1), ("trips", 1, 1, -1), ("trips", 2, 1, 1), ("trips", 2, 1, -1),
    ("trips", 0, 1, 1), ("trips", 0, 1, -1), ("trips", 0, 2, 1), ("trips", 0, 2, -1),
    ("mpse", 0, 1, 1), ("mpse", 0, 0, -1), ("mpse", 1, 1, 1), ("mpse", 1, 0, -1),
]


def _row_limit(tag, idx, col, sign):
    outs = []
    for big in (1e100, 1e150):
        floats = [np.array(a, np.float64) for a in ROW[tag][1]]
        floats[idx][0, col] = sign * big
        with np.errstate(all="ignore"):     # 0·inf inside the references' where()
            outs.append(row_ref(tag, floats))
    (v1, g1), (v2, g2) = outs

    def lim(a, b):
        with np.errstate(all="ignore"):
            moving = ~np.isclose(a, b, rtol=1e-9, atol=1e-12)
        return np.where(moving, np.copysign(np.inf, b), b)

    return lim(v1, v2), [lim(a, b) for a, b in zip(g1, g2)]


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("case", ROW_INF, ids=[f"{c[0]}-{c[1]}-{c[2]}-{c[3]}"
                                                for c in ROW_INF])
def test_rowwise_limits(case, dt):
    tag, idx, col, sign = case
    v_want, g_want = _row_limit(tag, idx, col, sign)
    floats = [np.array(a) for a in ROW[tag][1]]
    floats[idx][0, col] = sign * np.inf
    v, g = row_vg(tag, floats, dt)
    rtol = 1e-9 if dt == np.float64 else 1e-5
    assert_limit(v, v_want, dt, f"{tag} value", rtol)
    for gi, (a, b) in enumerate(zip(g, g_want)):
        assert_limit(a, b, dt, f"{tag} gradient {gi}", rtol)


def test_klt_infinite_log_target():
    lp, lt = np.array(LP), np.log(Y)
    lt[0, 1] = np.inf
    v, (ga, gb) = row_vg("klt", [lp, lt], np.float64)
    assert v[0] == np.inf and ga[0, 1] == -np.inf and gb[0, 1] == np.inf
    lt[0, 1] = -np.inf                       # t = 0: the term vanishes
    v, (ga, gb) = row_vg("klt", [lp, lt], np.float64)
    rv, (ra, rb) = row_ref("klt", [lp, lt])
    np.testing.assert_allclose(v, rv, rtol=1e-12)
    np.testing.assert_allclose(ga, ra, atol=1e-15)
    np.testing.assert_allclose(gb, rb, atol=1e-15)


# ------------------------------------------------- 5. row-wise losses stay non-negative
@pytest.mark.parametrize("dt", DTYPES)
def test_rowwise_never_negative(dt):
    """Losses >= 0 in exact arithmetic (softmax CE, hinge, cosine embedding, triplet,
    pairwise) on large inputs: never negative, never NaN."""
    rng = np.random.default_rng(4)
    big = 3e38 if dt == np.float32 else 1e300
    x = rng.choice([big, -big, 1e30, -1e30, 0.0, 1.0, -1.0, 88.0], (6, 5))
    y = _probs(rng, (6, 5))
    y[0] = [1, 0, 0, 0, 0]
    k = rng.integers(0, 5, 6)
    cases = [(fl.softmax_cross_entropy, (x, y), {}), (fl.softmax_cross_entropy, (x, y),
                                                      {"label_smoothing": 0.3}),
             (fl.softmax_cross_entropy_with_integer_labels, (x, k), {}),
             (fl.multiclass_hinge, (x, k), {}),
             (fl.multiclass_hinge, (x, k), {"kind": "crammer_singer"})]
    # norms and squares: values whose squares stay finite
    s = 1e18 if dt == np.float32 else 1e150
    a = rng.choice([s, -s, 1.0, 0.0, 1e-3], (6, 5))
    b = a * (1 + 1e-7 * rng.standard_normal((6, 5)))
    c = a + rng.standard_normal((6, 5))
    cases += [(fl.cosine_embedding, (a, a.copy(), np.ones(6)), {}),
              (fl.cosine_embedding, (a, b, np.ones(6)), {}),
              (fl.triplet_margin, (a, b, c), {}),
              (fl.triplet_margin, (a, b, c), {"squared": True, "margin": 0.0}),
              (fl.mean_pairwise_squared_error, (a, b), {})]
    for fn, args, kw in cases:
        args = tuple(np.asarray(z, dt) if np.asarray(z).dtype.kind == "f" else z
                     for z in args)
        v = fn(*args, reduction="none", **kw)
        assert np.all(v >= 0), (fn.__name__, kw, v)


# ------------------------------------------- Hessians and gradients without cancellation
@pytest.mark.parametrize("dt", DTYPES)
def test_logistic_hessian_small_tail(dt):
    """σ(z)σ(−z) at |z| large: s(1 − s) gave 0 at float32 x = −17 (4.14e-8), 0.1 % off at
    float64 −30, 0 at −40.  Reference: SciPy's expit in float64."""
    from scipy.special import expit
    xs = [-17.0, -30.0, -40.0, -80.0, 17.0, 40.0, 0.5] if dt == np.float32 else \
        [-17.0, -30.0, -40.0, -300.0, 17.0, 40.0, 0.5]
    x = np.array(xs, dt)
    y = np.ones_like(x)
    y[-1] = -1.0
    z = -y.astype(np.float64) * x.astype(np.float64)
    want = expit(z) * expit(-z)
    _, g, h = ew_all("logistic", x, y)
    np.testing.assert_allclose(h, want, rtol=1e-14 if dt == np.float64 else 1e-5, atol=0)
    np.testing.assert_allclose(g, -y * expit(z), rtol=1e-14 if dt == np.float64 else 1e-5,
                               atol=0)
    # sigmoid BCE (pos_weight 1, no smoothing) has the same Hessian σ(x)σ(−x)
    _, _, hb = ew_all("sigmoid_binary_cross_entropy", x, np.zeros_like(x))
    xf = x.astype(np.float64)
    np.testing.assert_allclose(hb, expit(xf) * expit(-xf),
                               rtol=1e-14 if dt == np.float64 else 1e-5, atol=0)


def _mp_logcosh_tanh(d):
    import mpmath
    with mpmath.workdps(400):              # cosh(1e-138) = 1 + 5e-277
        v = mpmath.mpf(float(d))
        return (float(mpmath.log(mpmath.cosh(v))), float(mpmath.tanh(v)),
                float(1 / mpmath.cosh(v) ** 2))


@pytest.mark.parametrize("dt", DTYPES)
def test_log_cosh_small_differences(dt):
    """tanh d from (1 − e)/(1 + e) cancelled (1.00000008e-10 at d = 1e-10, 0 at 1e-138);
    the value's Taylor series had wrong d¹², d¹⁴ coefficients (1.4e-12 relative near 1/8).
    Reference: mpmath at 400 digits.  The Taylor range |d| < 1/8 to float64 round-off; above
    it |d| + log1p(e^{-2|d|}) − log 2 loses a few digits near 1/8 (3e-15 relative in
    float64, 1.5e-6 in float32)."""
    ds = [1e-138, 1e-30, 1e-10, 1e-4, 0.01, 0.1, 0.1249, 0.1251, 0.5, -0.12, -1e-10]
    if dt == np.float32:
        ds = [d for d in ds if abs(d) > 1e-37 or d == 0]
    x = np.array(ds, dt)
    y = np.zeros_like(x)
    # the reference rounded to the dtype (float32: d² of 1e-30 underflows to 0)
    ref = np.array([_mp_logcosh_tanh(d) for d in x.astype(np.float64)]).astype(dt)
    ref = ref.astype(np.float64)
    rtol = 4e-16 if dt == np.float64 else 2e-7
    vtol = np.where(np.abs(x) < 0.125, rtol, 4e-15 if dt == np.float64 else 3e-6)
    v = ew_value("log_cosh", x, y)
    va, g, h = ew_all("log_cosh", x, y)
    assert np.all(np.abs(v - ref[:, 0]) <= vtol * ref[:, 0]), (v, ref[:, 0])
    assert np.all(np.abs(va - ref[:, 0]) <= vtol * ref[:, 0]), (va, ref[:, 0])
    np.testing.assert_allclose(g, ref[:, 1], rtol=rtol, atol=0)
    np.testing.assert_allclose(h, ref[:, 2], rtol=1e-15 if dt == np.float64 else 1e-6, atol=0)


# ------------------------------------------------- KL: never below 0 by rounding
@pytest.mark.parametrize("dt", DTYPES)
def test_softmax_kl_equal_distributions_not_negative(dt):
    """KL(q ‖ q) was −2.2e-16 (zeros logits, t = 1/3): rows that sum to 1 are >= 0."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(20, 7)) * 3
    x[0] = 0.0
    t = softmax(x, -1).astype(dt)
    t[0] = dt(1 / 3) if False else t[0]
    x = x.astype(dt)
    cases = [(np.zeros((1, 3), dt), np.full((1, 3), 1 / 3, dt)), (x, t)]
    for xx, tt in cases:
        v = fl.softmax_kl_divergence(xx, tt, reduction="none")
        v2, _ = fl.value_and_grad(fl.softmax_kl_divergence, (0, 1))(xx, tt, reduction="none")
        assert np.all(v >= 0) and np.all(v2 >= 0), (v, v2)
        assert np.all(v <= 1e-6 if dt == np.float32 else v <= 1e-14)


@pytest.mark.parametrize("dt", DTYPES)
def test_softmax_kl_unnormalized_target_keeps_its_value(dt):
    """Targets summing to S != 1: the loss is bounded by S log S, not by 0 (no clamp
    there): t = (1/4, 1/4), logits 0 gives ½ log ½ exactly."""
    x, t = np.zeros((2, 2), dt), np.array([[0.25, 0.25], [0.5, 0.5]], dt)
    want = [0.5 * np.log(0.5), 0.0]
    v = fl.softmax_kl_divergence(x, t, reduction="none")
    v2, (gx, gt) = fl.value_and_grad(fl.softmax_kl_divergence, (0, 1))(x, t, reduction="none")
    rtol = 1e-15 if dt == np.float64 else 1e-6
    np.testing.assert_allclose(v, want, rtol=rtol, atol=1e-7 if dt == np.float32 else 1e-16)
    np.testing.assert_allclose(v2, want, rtol=rtol, atol=1e-7 if dt == np.float32 else 1e-16)
    np.testing.assert_allclose(gt[0], np.log(0.25) + 1 - np.log(0.5), rtol=rtol)


@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("tag", ["sce", "kl", "skl"])
def test_infinite_probability_refused(tag, dt):
    """A +inf target is not a probability (like a negative one): a ValueError naming the
    argument, on the value and the gradient paths."""
    fn, floats, extra, kw = ROW[tag]
    fs = [np.array(a, dt) for a in floats]
    fs[1][0, 2] = np.inf
    arg = "labels" if tag == "sce" else "target"
    with pytest.raises(ValueError, match=rf"{fn.__name__}: {arg} must hold probabilities.*"
                                         r"\+inf"):
        fn(*fs, reduction="none", **kw)
    with pytest.raises(ValueError, match=rf"{fn.__name__}: {arg}"):
        fl.value_and_grad(fn, (0, 1))(*fs, reduction="none", **kw)


# --------------------------------------------- cosine_distance: ±inf against a zero entry
@pytest.mark.parametrize("dt", DTYPES)
def test_cosine_distance_infinite_times_zero(dt):
    """p = ±inf where t = 0 (and t = ±inf where p = 0): that term's limit is 0; the
    gradient w.r.t. the zero entry is −(the infinite one)."""
    p = np.array([[INF, 0.5, -INF, 0.0], [0.1, 0.2, 0.3, 0.4]], dt)
    t = np.array([[0.0, 0.3, 0.0, -INF], [0.4, 0.3, 0.2, 0.1]], dt)
    want = [1 - 0.15, 1 - float(np.dot(p[1].astype(np.float64), t[1].astype(np.float64)))]
    v = fl.cosine_distance(p, t, reduction="none")
    v2, (gp, gt) = fl.value_and_grad(fl.cosine_distance, (0, 1))(p, t, reduction="none")
    rtol = 1e-15 if dt == np.float64 else 1e-6
    np.testing.assert_allclose(v, want, rtol=rtol)
    np.testing.assert_allclose(v2, want, rtol=rtol)
    np.testing.assert_array_equal(gp[0], -t[0].astype(np.float64))
    np.testing.assert_array_equal(gt[0], -p[0].astype(np.float64))


# ----------------------------------------------- triplet_margin: infinite anchor entries
def _mp_triplet(a, p, n, margin, eps, T):
    """Value and gradients at the infinite entries replaced by ±T, in 80-digit mpmath."""
    import mpmath
    with mpmath.workdps(80):
        def big(z):
            return [mpmath.mpf(float(np.sign(v))) * T if np.isinf(v) else mpmath.mpf(float(v))
                    for v in z]
        A, P, N = big(a), big(p), big(n)
        dp = [x - y + eps for x, y in zip(A, P)]
        dn = [x - y + eps for x, y in zip(A, N)]
        npn = mpmath.sqrt(sum(z * z for z in dp))
        nnn = mpmath.sqrt(sum(z * z for z in dn))
        d = npn - nnn + margin
        if d <= 0:
            z = [0.0] * len(a)
            return 0.0, (z, z, z)
        up = [z / npn for z in dp]
        un = [z / nnn for z in dn]
        return float(d), ([float(x - y) for x, y in zip(up, un)], [float(-x) for x in up],
                          [float(x) for x in un])


@pytest.mark.parametrize("dt", DTYPES)
def test_triplet_infinite_anchor(dt):
    """An infinite anchor entry: ‖a−p‖ − ‖a−n‖ -> sign·(n_k − p_k) (NaN before); two
    infinite entries growing alike: Σ sign_k (n_k − p_k)/√2.  Reference: mpmath at ±1e40."""
    rng = np.random.default_rng(7)
    a = rng.normal(size=(4, 5))
    p, n = a + 0.3 * rng.normal(size=(4, 5)), a + rng.normal(size=(4, 5))
    a[0, 1] = INF
    a[1, 2] = -INF
    a[2, 0], a[2, 3] = INF, -INF
    p[3, 4] = INF                      # an infinite positive entry: d -> +inf
    margin = 1.5
    a, p, n = (z.astype(dt) for z in (a, p, n))
    v = fl.triplet_margin(a, p, n, margin=margin, reduction="none")
    v2, gs = fl.value_and_grad(fl.triplet_margin, (0, 1, 2))(a, p, n, margin=margin,
                                                             reduction="none")
    for i in range(4):
        wv, wg = _mp_triplet(*(z[i].astype(np.float64) for z in (a, p, n)), margin, 1e-6,
                             __import__("mpmath").mpf(10) ** 40)
        wv = INF if i == 3 else wv
        rtol = 1e-12 if dt == np.float64 else 2e-6
        atol = 1e-14 if dt == np.float64 else 2e-6
        assert_limit(v[i:i + 1], wv, dt, f"row {i} value", rtol)
        assert_limit(v2[i:i + 1], wv, dt, f"row {i} value (gradient kernel)", rtol)
        for g, w in zip(gs, wg):
            np.testing.assert_allclose(g[i], w, rtol=rtol, atol=atol, err_msg=f"row {i}")


def test_triplet_infinite_anchor_next_to_infinite_positive_is_nan():
    """a_0 = +inf and p_1 = +inf: the distances grow at unrelated rates, no limit."""
    a, p, n = np.zeros((1, 3)), np.zeros((1, 3)), np.ones((1, 3))
    a[0, 0], p[0, 1] = INF, INF
    v, gs = fl.value_and_grad(fl.triplet_margin, (0, 1, 2))(a, p, n, reduction="none")
    assert np.isnan(v[0]) and all(np.isnan(g).all() for g in gs)


@pytest.mark.parametrize("dt", DTYPES)
def test_kl_zero_target_at_impossible_class(dt):
    """t = 0 where log p = −inf: the term is 0 (0 log 0 convention), the gradient w.r.t.
    log p is −t = 0, and the target gradient log t + 1 − log p is NaN by design: the loss
    jumps from 0 (t = 0) to +inf (any t > 0), so it has no derivative there."""
    lp = np.array([[-INF, np.log(0.5), np.log(0.5)]], dt)
    t = np.array([[0.0, 0.5, 0.5]], dt)
    v = fl.kl_divergence(lp, t, reduction="none")
    v2, (gl, gt) = fl.value_and_grad(fl.kl_divergence, (0, 1))(lp, t, reduction="none")
    assert v[0] == pytest.approx(0.0, abs=1e-7) and v2[0] == pytest.approx(0.0, abs=1e-7)
    np.testing.assert_array_equal(gl, -t.astype(np.float64))
    assert np.isnan(gt[0, 0]) and np.all(np.isfinite(gt[0, 1:]))


# ------------------------------------- cosine_embedding: infinite entries, huge entries
def _mp_cemb(a, b, y, margin, eps, T):
    """Loss and gradients with the infinite entries replaced by ±T, in 80-digit mpmath."""
    import mpmath
    with mpmath.workdps(80):
        def big(z):
            return [mpmath.mpf(float(np.sign(v))) * T if np.isinf(v) else mpmath.mpf(float(v))
                    for v in z]
        A, B = big(a), big(b)
        m1 = sum(x * x for x in A) + eps
        m2 = sum(x * x for x in B) + eps
        den = mpmath.sqrt(m1 * m2)
        cs = sum(x * z for x, z in zip(A, B)) / den
        if y > 0:
            loss, dl = max(mpmath.mpf(0), 1 - cs), -1
        else:
            d = cs - margin
            loss, dl = (d, 1) if d > 0 else (mpmath.mpf(0), 0)
        ga = [float(dl * (z / den - cs * x / m1)) for x, z in zip(A, B)]
        gb = [float(dl * (x / den - cs * z / m2)) for x, z in zip(A, B)]
        return float(loss), ga, gb


@pytest.mark.parametrize("dt", DTYPES)
def test_cosine_embedding_infinite_entries_give_limits(dt):
    """Rows with infinite entries (one side, both sides, several alike) give the limit as
    they grow alike (NaN before); finite rows beside them are unchanged.  Reference: the
    loss with ±1e60 and ±1e120 in place of ±inf, in mpmath (both agree to the digits)."""
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    a[0, 1] = INF
    b[1, 2] = -INF
    a[2, 0], a[2, 3], b[2, 0] = INF, -INF, INF
    a[3, 1], b[3, 1] = INF, -INF
    a[4, :], b[4, 0] = 0.0, INF          # a zero row against an infinite one: cos = 0
    y = np.array([1, -1, 1, -1, -1, 1.0])
    margin = -0.3
    a, b = a.astype(dt), b.astype(dt)
    v, (ga, gb) = fl.value_and_grad(fl.cosine_embedding, (0, 1))(
        a, b, y, margin=margin, reduction="none")
    v1 = fl.cosine_embedding(a, b, y, margin=margin, reduction="none")
    rtol = 1e-12 if dt == np.float64 else 2e-6
    for i in range(6):
        T = __import__("mpmath").mpf(10) ** 60
        wv, wa, wb = _mp_cemb(*(z[i].astype(np.float64) for z in (a, b)), y[i], margin,
                              1e-12, T)
        wv2 = _mp_cemb(*(z[i].astype(np.float64) for z in (a, b)), y[i], margin, 1e-12,
                       T * T)[0]
        assert wv == pytest.approx(wv2, rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(v[i], wv, rtol=rtol, atol=rtol, err_msg=f"row {i}")
        np.testing.assert_allclose(v1[i], wv, rtol=rtol, atol=rtol, err_msg=f"row {i}")
        np.testing.assert_allclose(ga[i], wa, rtol=rtol, atol=1e-9, err_msg=f"row {i} x1")
        np.testing.assert_allclose(gb[i], wb, rtol=rtol, atol=1e-9, err_msg=f"row {i} x2")
    # the reductions see the recomputed rows, with weights
    w = np.arange(1.0, 7.0)
    s = fl.cosine_embedding(a, b, y, margin=margin, sample_weight=w, reduction="sum")
    assert float(s) == pytest.approx(float(np.sum(w * v.astype(np.float64))), rel=rtol)
    m, gm = fl.value_and_grad(fl.cosine_embedding)(a, b, y, margin=margin, sample_weight=w)
    assert float(m) == pytest.approx(float(s) / w.sum(), rel=rtol)
    np.testing.assert_allclose(gm, ga * (w / w.sum())[:, None], rtol=rtol, atol=1e-9)


def test_cosine_embedding_nan_beside_infinity_stays_nan():
    a = np.array([[INF, np.nan, 1.0]])
    v, (ga, gb) = fl.value_and_grad(fl.cosine_embedding, (0, 1))(
        a, np.ones((1, 3)), np.ones(1), reduction="none")
    assert np.isnan(v[0]) and np.isnan(ga).all() and np.isnan(gb).all()


@pytest.mark.parametrize("dt", DTYPES)
def test_squared_norms_do_not_overflow(dt):
    """Entries whose squares overflow the dtype (float32 beyond 1.8e19, float64 beyond
    1.3e154): cosine_embedding and triplet_margin give the scaled values (NaN or a
    wrong cos before)."""
    big = 1e30 if dt == np.float32 else 1e200
    a = np.array([[3.0, 4.0, 0.0], [1.0, -2.0, 2.0]]) * big
    b = np.array([[4.0, 3.0, 0.0], [1.0, 2.0, 2.0]]) * big
    y = np.array([1.0, -1.0])
    v, (ga, gb) = fl.value_and_grad(fl.cosine_embedding, (0, 1))(
        a.astype(dt), b.astype(dt), y, reduction="none")
    cs = np.array([24 / 25, 1 / 9])
    np.testing.assert_allclose(v, [1 - cs[0], cs[1]], rtol=1e-6)
    # d cos/da = b/(|a||b|) − cos a/|a|², of order 1/big
    na, nb = np.linalg.norm(a / big, axis=1), np.linalg.norm(b / big, axis=1)
    wa = ((b / big) / (na * nb)[:, None] - cs[:, None] * (a / big) / (na ** 2)[:, None]) / big
    wa[0] *= -1
    np.testing.assert_allclose(ga.astype(np.float64), wa, rtol=1e-5,
                               atol=1e-12 / big)
    assert np.all(np.isfinite(gb))
    if dt == np.float32:   # triplet: squares in float64, so float32 inputs cannot overflow
        p = a + np.array([[1.0, 0, 0], [0, 1.0, 0]]) * big
        n = a + np.array([[2.0, 0, 0], [0, 0, 3.0]]) * big
        t, gt = fl.value_and_grad(fl.triplet_margin, (0, 1, 2))(
            a.astype(dt), p.astype(dt), n.astype(dt), margin=0.0, reduction="none")
        np.testing.assert_allclose(t, [0.0, 0.0], atol=1e-3 * big)
        tt = fl.triplet_margin(n.astype(dt), p.astype(dt), a.astype(dt), margin=0.0,
                               reduction="none")
        want = (np.linalg.norm(n - p, axis=1) - np.linalg.norm(n - a, axis=1))
        want = np.maximum(want, 0)
        np.testing.assert_allclose(tt, want, rtol=1e-5)
        assert all(np.all(np.isfinite(g)) for g in gt)


def test_cosine_embedding_limits_through_prepare():
    a = np.array([[INF, 1.0, 2.0], [1.0, 2.0, 3.0]])
    b, y = np.ones((2, 3)), np.array([1.0, -1.0])
    run = fl.prepare(fl.cosine_embedding, a, b, y, margin=0.1)
    v, g = run(a)
    w, gw = fl.value_and_grad(fl.cosine_embedding)(a, b, y, margin=0.1)
    assert np.isfinite(v) and v == w
    np.testing.assert_array_equal(g, gw)


@pytest.mark.parametrize("dt", DTYPES)
def test_sigmoid_focal_tiny_target_not_cancelled(dt):
    """α_t = α y + (1 − α)(1 − y) for a tiny soft target y: regrouped under fast-math it
    cancelled to 0 (loss 0 instead of ≈ 0.17 y); reference: the formula in float64."""
    x = np.array([0.0, 0.5, -0.5, 2.0])
    for y0 in (1e-20, 3e-25):
        y = np.full(4, y0)
        p = 1 / (1 + np.exp(-x))
        ce = -(y * np.log(p) + (1 - y) * np.log1p(-p))
        u = p * (1 - y) + (1 - p) * y
        want = (1.0 * y) * u ** 2 * ce
        got = fl.sigmoid_focal(x.astype(dt), y.astype(dt), alpha=1.0, gamma=2.0,
                               reduction="none")
        np.testing.assert_allclose(got, want, rtol=1e-5 if dt == np.float32 else 1e-12)
