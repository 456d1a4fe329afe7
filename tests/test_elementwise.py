"""Elementwise losses: values against independent references, gradients and Hessians
against central finite differences, float32 against float64, NaN and extreme inputs."""
import numpy as np
import pytest

import fastloss
from fastloss._math.spec import ELEMENTWISE
from reference import PARAMS, PM1, make_inputs, ref_loss

NAMES = sorted(ELEMENTWISE)
LOGIT_LOSSES = ("sigmoid_binary_cross_entropy", "sigmoid_focal", "logistic", "hinge",
                "squared_hinge", "poly1_cross_entropy")


def fn(name):
    return getattr(fastloss, name)


def vg(name, x, y, w=None, **p):
    """Per-element losses and gradient: the one kernel variant most tests share
    (float64 in, weights always an array, reduction 'none') to keep compiles few."""
    w = np.ones_like(x) if w is None else w
    return fastloss.value_and_grad(fn(name))(x, y, sample_weight=w, reduction="none", **p)


@pytest.mark.parametrize("name", NAMES)
def test_values_match_reference(name):
    rng = np.random.default_rng(1)
    x, y = make_inputs(name, 257, rng)
    w = rng.random(257) * 3
    p = PARAMS.get(name, {})
    got, _ = vg(name, x, y, w, **p)
    want = ref_loss(name, x, y, **p)
    np.testing.assert_allclose(got, w * want, rtol=1e-12, atol=1e-13)
    assert got.dtype == np.float64 and got.shape == x.shape


@pytest.mark.parametrize("name", ["huber", "logistic"])
def test_reductions_and_weights(name):
    """Every output pattern of the kernel template, on two losses."""
    rng = np.random.default_rng(2)
    x, y = make_inputs(name, 64, rng)
    w = rng.random(64) * 3
    p = PARAMS.get(name, {})
    want = ref_loss(name, x, y, **p)
    f = fn(name)
    np.testing.assert_allclose(f(x, y, reduction="none", **p), want, rtol=1e-12)
    np.testing.assert_allclose(f(x, y, reduction="sum", **p), want.sum(), rtol=1e-12)
    np.testing.assert_allclose(f(x, y, **p), want.mean(), rtol=1e-12)
    np.testing.assert_allclose(f(x, y, sample_weight=w, reduction="none", **p), w * want,
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(f(x, y, sample_weight=w, reduction="sum", **p), (w * want).sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(f(x, y, sample_weight=w, **p), (w * want).sum() / w.sum(),
                               rtol=1e-12)
    np.testing.assert_allclose(f(x, y, sample_weight=2.5, reduction="sum", **p),
                               2.5 * want.sum(), rtol=1e-12)
    np.testing.assert_allclose(f(x, y, sample_weight=2.5, **p), want.mean(), rtol=1e-12)
    # gradients of each reduction, weighted and not, against the per-element gradient
    _, g_el = vg(name, x, y, w, **p)
    for red, scale in (("none", 1.0), ("sum", 1.0), ("mean", 1.0 / w.sum())):
        v, g = fastloss.value_and_grad(f)(x, y, sample_weight=w, reduction=red, **p)
        np.testing.assert_allclose(g, g_el * scale, rtol=1e-13)
    _, g = fastloss.value_and_grad(f)(x, y, **p)
    np.testing.assert_allclose(g, vg(name, x, y, **p)[1] / x.size, rtol=1e-13)
    g2, h2 = fastloss.grad_and_hessian(f)(x, y, sample_weight=w, **p)
    np.testing.assert_allclose(g2, g_el / w.sum(), rtol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_finite_differences(name):
    rng = np.random.default_rng(3)
    x, y = make_inputs(name, 50, rng)
    w = rng.random(50) + 0.5
    p = PARAMS.get(name, {})
    h = 1e-6 * np.maximum(1.0, np.abs(x))
    fd = (vg(name, x + h, y, w, **p)[0] - vg(name, x - h, y, w, **p)[0]) / (2 * h)
    _, g = vg(name, x, y, w, **p)
    np.testing.assert_allclose(g, fd, rtol=2e-6, atol=1e-8)
    assert g.shape == x.shape and g.dtype == x.dtype


@pytest.mark.parametrize("name", NAMES)
def test_hessian_finite_differences(name):
    rng = np.random.default_rng(4)
    x, y = make_inputs(name, 40, rng)
    p = PARAMS.get(name, {})
    gh = fastloss.grad_and_hessian(fn(name))
    h = 1e-5 * np.maximum(1.0, np.abs(x))
    fd = (gh(x + h, y, reduction="sum", **p)[0] - gh(x - h, y, reduction="sum", **p)[0]) / (2 * h)
    g, hess = gh(x, y, reduction="sum", **p)
    np.testing.assert_allclose(g, vg(name, x, y, **p)[1], rtol=1e-13)
    np.testing.assert_allclose(hess, fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_float32_close_to_float64_parallel_kernel(name):
    """70 000 elements: the parallel kernel, float32 polynomials for exp/log."""
    rng = np.random.default_rng(5)
    n = 70_000
    x, y = make_inputs(name, n, rng)
    p = PARAMS.get(name, {})
    l64 = ref_loss(name, x, y, **p)
    l32, g32 = vg(name, x.astype(np.float32), y.astype(np.float32), **p)
    assert l32.dtype == np.float32 and g32.dtype == np.float32
    _, g64 = vg(name, x, y, **p)
    # stated tolerance: per element 2e-6 relative (plus 1e-6 of the largest value)
    np.testing.assert_allclose(l32, l64, rtol=2e-6, atol=1e-6 * np.abs(l64).max())
    np.testing.assert_allclose(g32, g64, rtol=2e-6, atol=1e-6 * np.abs(g64).max())


@pytest.mark.parametrize("name", LOGIT_LOSSES)
def test_extreme_logits_finite(name):
    x = np.array([-1e4, -300.0, -50.0, 50.0, 300.0, 1e4])
    y = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0]) if name in PM1 else \
        np.array([1.0, 0.0, 1.0, 0.0, 0.3, 0.0])
    p = PARAMS.get(name, {})
    want = ref_loss(name, x, y, **p)
    for dt in (np.float64, np.float32):
        v, g = vg(name, x.astype(dt), y.astype(dt), **p)
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
        np.testing.assert_allclose(v, want, rtol=1e-5 if dt == np.float32 else 1e-12,
                                   atol=1e-30)


@pytest.mark.parametrize("name", NAMES)
def test_nan_in_nan_out(name):
    rng = np.random.default_rng(6)
    x, y = make_inputs(name, 8, rng)
    x[3] = np.nan
    p = PARAMS.get(name, {})
    v, g = vg(name, x, y, **p)
    assert np.isnan(v[3]) and np.isnan(g[3])
    assert np.all(np.isfinite(np.delete(v, 3)))
    _, hess = fastloss.grad_and_hessian(fn(name))(x, y, reduction="sum", **p)
    assert np.isnan(hess[3])


def test_huber_worked_example():
    # 0.5·0.5² = 0.125 and 1·(3 − 0.5) = 2.5
    assert fastloss.huber(np.array([0.5, 3.0]), np.zeros(2)) == pytest.approx(1.3125)
    v = vg("smooth_l1", np.array([0.5, 3.0]), np.zeros(2), beta=2.0)[0]
    np.testing.assert_allclose(v, [0.0625, 2.0])


def test_subgradients_at_kinks_documented():
    z = np.zeros(3)
    assert np.all(vg("absolute_error", z, z)[1] == 0)
    assert np.all(vg("hinge", np.ones(2), np.ones(2))[1] == 0)  # at the margin
    g = vg("quantile", z, z, quantile=0.3)[1]
    np.testing.assert_allclose(g, -0.3)


def test_poisson_variants_match_reference():
    rng = np.random.default_rng(7)
    x = rng.uniform(0.1, 4, 30)
    y = rng.poisson(3, 30).astype(float)
    for li in (True, False):
        for full in (True, False):
            got = vg("poisson_nll", x, y, log_input=li, full=full)[0]
            np.testing.assert_allclose(got, ref_loss("poisson_nll", x, y, log_input=li,
                                                     full=full), rtol=1e-12)


def test_default_parameter_twins_match_references():
    """The defaults that take a ``fast`` twin (focal gamma=2, Poisson log_input=True,
    full=False) against the float64 NumPy formulas: values, and gradients and Hessians
    against central differences of the formula."""
    rng = np.random.default_rng(9)
    for name, p in (("sigmoid_focal", {}), ("poisson_nll", {})):
        x, y = make_inputs(name, 40, rng)
        if name == "poisson_nll":
            y = rng.poisson(3, 40).astype(float)
        v, g = vg(name, x, y, **p)
        _, hs = fastloss.grad_and_hessian(fn(name))(x, y, sample_weight=np.ones_like(x),
                                                    reduction="none", **p)
        np.testing.assert_allclose(v, ref_loss(name, x, y, **p), rtol=1e-12, atol=1e-300)
        f = lambda t: ref_loss(name, t, y, **p)   # noqa: E731
        d = 1e-5
        np.testing.assert_allclose(g, (f(x + d) - f(x - d)) / (2 * d), rtol=1e-6, atol=1e-9)
        d2 = 1e-4
        np.testing.assert_allclose(hs, (f(x + d2) - 2 * f(x) + f(x - d2)) / d2 ** 2,
                                   rtol=1e-4, atol=1e-6)


def test_bce_unclipped_form():
    rng = np.random.default_rng(8)
    x, y = make_inputs("binary_cross_entropy", 30, rng)
    got = vg("binary_cross_entropy", x, y, eps=1e-12, clip=False)[0]
    np.testing.assert_allclose(got, ref_loss("binary_cross_entropy", x, y, eps=1e-12,
                                             clip=False), rtol=1e-12)
    # clipped: gradient is 0 where p was clipped
    g = vg("binary_cross_entropy", np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0, 1.0]))[1]
    assert g[0] == 0 and g[1] == 0 and g[2] == pytest.approx(-2.0)


def test_focal_negative_alpha_disables_weighting():
    rng = np.random.default_rng(9)
    x, y = make_inputs("sigmoid_focal", 20, rng)
    got = vg("sigmoid_focal", x, y, alpha=-1.0, gamma=2.0)[0]
    np.testing.assert_allclose(got, ref_loss("sigmoid_focal", x, y, alpha=-1.0, gamma=2.0),
                               rtol=1e-12)


def test_torch_agreement():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(10)
    x = rng.standard_normal(100) * 3
    y = rng.standard_normal(100)
    yb = (rng.random(100) < 0.5).astype(float)
    tx, ty, tyb = (torch.tensor(a, requires_grad=(a is x)) for a in (x, y, yb))
    cases = [
        (fastloss.huber, dict(delta=0.7), lambda: F.huber_loss(tx, ty, delta=0.7), y),
        (fastloss.smooth_l1, dict(beta=0.5), lambda: F.smooth_l1_loss(tx, ty, beta=0.5), y),
        (fastloss.sigmoid_binary_cross_entropy, dict(pos_weight=2.0),
         lambda: F.binary_cross_entropy_with_logits(tx, tyb, pos_weight=torch.tensor(2.0)), yb),
        (fastloss.poisson_nll, dict(full=True),
         lambda: F.poisson_nll_loss(tx, torch.abs(ty) * 3, full=True), np.abs(y) * 3),
    ]
    for f, p, tf, tgt in cases:
        tx.grad = None
        out = tf()
        out.backward()
        v, g = fastloss.value_and_grad(f)(x, tgt, **p)
        np.testing.assert_allclose(v, out.item(), rtol=1e-10)
        np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("dt, n", [(np.float32, 300), (np.float64, 70_000)])  # serial, parallel
def test_gradient_transforms_skip_the_value_same_bits(dt, n):
    """grad / grad_and_hessian run the kernel variant without the value math; their
    gradients and Hessians are value_and_grad's bits, and domain errors still raise."""
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(n) * 4).astype(dt)
    x[::97] = np.nan
    y = (rng.random(n) < 0.4).astype(dt)
    w = rng.random(n).astype(dt)
    from scipy.special import expit

    f = fastloss.sigmoid_binary_cross_entropy
    for kw in ({}, {"reduction": "sum", "sample_weight": w}):
        v, g = fastloss.value_and_grad(f)(x, y, **kw)
        g1 = fastloss.grad(f)(x, y, **kw)
        g2, h2 = fastloss.grad_and_hessian(f)(x, y, **kw)
        assert g1.dtype == dt and np.array_equal(g, g1, equal_nan=True)
        assert np.array_equal(g, g2, equal_nan=True)
        s = expit(x.astype(np.float64))
        sm = expit(-x.astype(np.float64))                   # 1 - s without cancellation
        ws = w if "sample_weight" in kw else np.full(n, 1.0 / n)
        rtol = 2e-6 if dt == np.float32 else 1e-12
        np.testing.assert_allclose(g2, (s * (1 - y) - sm * y) * ws, rtol=rtol, atol=1e-30)
        np.testing.assert_allclose(h2, s * sm * ws, rtol=2e-5 if dt == np.float32
                                   else 1e-12, atol=1e-30)
    bad = y.copy()
    bad[5] = 2.0
    with pytest.raises(ValueError, match="target"):
        fastloss.grad(f)(x, bad)


@pytest.mark.parametrize("dt", (np.float32, np.float64))
def test_fast_math_twins_match_the_general_math(dt):
    """A loss's ``fast`` twin (the math the CPU kernels take for some parameter values,
    e.g. poisson_nll's and sigmoid_focal's defaults) gives the general math's values,
    gradients, Hessians and sum for those values (Poisson's bit for bit, focal's to
    round-off), special inputs included; other values keep the general math."""
    from fastloss._elementwise import cpu_kernel_for, loss_params
    from fastloss._math.spec import ELEMENTWISE

    rng = np.random.default_rng(5)
    n = 3000
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 80.0, -80.0, 700.0, -700.0])
    x = np.concatenate([rng.standard_normal(2 * n) * 3, specials, np.zeros(9),
                        specials]).astype(dt)
    y = np.concatenate([rng.poisson(2.0, n).astype(float), rng.uniform(0, 1, n), np.zeros(9),
                        specials, np.full(9, 3.0)]).astype(dt)
    twins = [(s, vals, name) for s in ELEMENTWISE.values() for vals, name in s.fast]
    assert twins                                   # poisson_nll has one
    for spec, vals, name in twins:
        params = {p.name: p.default for p in spec.params}
        abc = loss_params(spec, params)
        assert spec.math_for(abc) == name
        assert all(v is None or v == a for v, a in zip(vals, abc))
        runs = []
        for math in (spec.name, name):
            k = cpu_kernel_for(spec, dt, 1000, math=math)
            out = [np.empty(x.size, dt) for _ in range(3)]
            s, _ = k(x, y, None, dt(1.0), *(dt(v) for v in abc), dt(1.0), *out, 0.0)
            runs.append((s, out, k))
        (s0, o0, k0), (s1, o1, k1) = runs
        assert k0 is not k1 and name in k1.py_func.__name__
        # the same operations, but with a parameter constant the compiler may fuse and
        # reorder them differently (the kernels' fast-math flags allow contraction and
        # reassociation): the same special values, and round-off apart elsewhere
        # (compared inside the loss's domain: elsewhere the call raises)
        ok = (np.ones(x.size, bool) if spec.check is None else
              np.array([bool(spec.check(a, b, *abc)) for a, b in zip(x.tolist(), y.tolist())]))
        assert ok.sum() > n
        for a, b in zip(o0, o1):
            a, b = a[ok], b[ok]
            fin = np.isfinite(a)
            np.testing.assert_array_equal(fin, np.isfinite(b))
            np.testing.assert_array_equal(a[~fin], b[~fin])
            if name == "poisson_nll_rate":      # the same operations in the same order
                np.testing.assert_array_equal(a, b)
            else:   # focal's Hessian cancels: the rounding of its O(1) terms shows
                np.testing.assert_allclose(a[fin], b[fin], atol=8 * np.finfo(dt).eps,
                                           rtol=1e-13 if dt == np.float64 else 5e-5)
        if ok.all():
            assert s0 == pytest.approx(s1, rel=1e-13 if dt == np.float64 else 1e-6) \
                or (s0 != s0 and s1 != s1)
    other = {"log_input": False, "full": False, "eps": 1e-8}
    spec = ELEMENTWISE["poisson_nll"]
    assert spec.math_for(loss_params(spec, other)) == "poisson_nll"
    assert spec.math_for(loss_params(spec, dict(other, log_input=True, full=True))) \
        == "poisson_nll"
    spec = ELEMENTWISE["sigmoid_focal"]
    assert spec.math_for(loss_params(spec, {"alpha": 0.5, "gamma": 2.0})) == "sigmoid_focal_g2"
    assert spec.math_for(loss_params(spec, {"alpha": 0.25, "gamma": 1.5})) == "sigmoid_focal"
