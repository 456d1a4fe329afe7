"""Elementwise losses with a third per-element array: ``gaussian_nll`` and ``margin_ranking``
(three inputs), and the per-element ``pos_weight`` of ``sigmoid_binary_cross_entropy`` and
``alpha`` of ``sigmoid_focal`` (an array broadcast to ``pred``, per class along the last axis).

Values against float64 NumPy formulas, every gradient against central finite differences of
those formulas, and against PyTorch (value and autograd gradients) where it defines the loss.
Few kernel variants: the calls go through ``_full`` (reduction="none", weights, every
gradient) and ``grad_and_hessian``, float64, plus one float32 check.
"""
import numpy as np
import pytest

import fastloss as fl
from fastloss import _doctext as T

LOG2PI = np.log(2 * np.pi)


# --- float64 references -----------------------------------------------------------------------
def ref_gnll(x, y, v, full=False, eps=1e-6):
    vc = np.maximum(v, eps)
    return 0.5 * (np.log(vc) + (x - y) ** 2 / vc) + (0.5 * LOG2PI if full else 0.0)


def ref_margin(x1, x2, t, margin=0.0):
    return np.maximum(0.0, -t * (x1 - x2) + margin)


def ref_bce_pw(x, y, pw):
    # PyTorch's BCEWithLogitsLoss with pos_weight: -(pw y log σ(x) + (1 - y) log(1 - σ(x)))
    ls = -np.logaddexp(0, -x)          # log σ(x)
    lm = -np.logaddexp(0, x)           # log(1 - σ(x))
    return -(pw * y * ls + (1 - y) * lm)


def ref_focal(x, y, alpha, gamma=2.0):
    p = 1 / (1 + np.exp(-x))
    ce = np.logaddexp(0, x) - y * x
    pt = p * y + (1 - p) * (1 - y)
    at = np.where(alpha >= 0, alpha * y + (1 - alpha) * (1 - y), 1.0)
    return at * (1 - pt) ** gamma * ce


def fd(f, args, i, h=1e-6):
    """Central finite difference of sum(f(*args)) w.r.t. args[i], element by element."""
    a = [np.array(np.broadcast_to(v, np.shape(args[0])), float) for v in args]
    g = np.zeros_like(a[i])
    for k in np.ndindex(a[i].shape):
        up, dn = [v.copy() for v in a], [v.copy() for v in a]
        up[i][k] += h
        dn[i][k] -= h
        g[k] = (f(*up).sum() - f(*dn).sum()) / (2 * h)
    return g


def _full(fn, args, w=None, **p):
    """(per-element w·ℓ, gradients of Σ w·ℓ w.r.t. every differentiable input)."""
    info = fl.LOSSES[fn.__name__]
    nums = tuple(info.inputs.index(n) for n in info.differentiable)
    v, g = fl.value_and_grad(fn, argnums=nums)(*args, sample_weight=w, reduction="none", **p)
    return v, dict(zip(info.differentiable, g))


def _inputs(seed=0, shape=(4, 3)):
    rng = np.random.default_rng(seed)
    return rng, rng.standard_normal(shape), rng.standard_normal(shape)


# --- gaussian_nll -----------------------------------------------------------------------------
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll_reference_and_fd(full):
    rng, x, y = _inputs()
    v = rng.uniform(0.2, 2.0, x.shape)
    w = rng.uniform(0.5, 2.0, x.shape)
    val, g = _full(fl.gaussian_nll, (x, y, v), w, full=full)
    f = lambda a, b, c: w * ref_gnll(a, b, c, full)  # noqa: E731
    np.testing.assert_allclose(val, f(x, y, v), rtol=1e-14, atol=1e-15)
    for i, n in enumerate(("input", "target", "var")):
        np.testing.assert_allclose(g[n], fd(f, (x, y, v), i), rtol=1e-7, atol=1e-8)
    gh, h = fl.grad_and_hessian(fl.gaussian_nll)(x, y, v, full=full)
    np.testing.assert_allclose(gh, g["input"] / w / x.size, rtol=1e-14)
    np.testing.assert_allclose(h, 1 / v / x.size, rtol=1e-14)
    m = fl.gaussian_nll(x, y, v, full=full, sample_weight=w)
    np.testing.assert_allclose(m, f(x, y, v).sum() / w.sum(), rtol=1e-14)


def test_gaussian_nll_matches_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng, x, y = _inputs(1, (3, 4))
    cases = [rng.uniform(0.1, 2.0, (3, 4)),          # heteroscedastic
             rng.uniform(0.1, 2.0, (3,)),            # one fewer trailing axis
             rng.uniform(0.1, 2.0, (3, 1)),          # size-1 last axis
             rng.uniform(0.1, 2.0, (1, 4)),          # size-1 first axis (PyTorch >= 2.1)
             np.array([[1e-9, 0.5, 0.0, 2.0]] * 3),  # below eps: clamped
             0.7]                                    # a Python scalar
    for var in cases:
        for full, eps, red in ((False, 1e-6, "mean"), (True, 1e-3, "sum")):
            ts = [torch.tensor(a, requires_grad=True) for a in (x, y, np.asarray(var, float))]
            tv = ts[2] if np.ndim(var) else float(var)
            ref = F.gaussian_nll_loss(ts[0], ts[1], tv, full=full, eps=eps, reduction=red)
            ref.backward()
            nums = (0, 1, 2) if np.ndim(var) else (0, 1)
            val, gs = fl.value_and_grad(fl.gaussian_nll, argnums=nums)(
                x, y, var, full=full, eps=eps, reduction=red)
            np.testing.assert_allclose(val, ref.item(), rtol=1e-13)
            for t, gr in zip(ts, gs):   # a broadcast var's gradient: of var's shape
                assert gr.shape == tuple(t.shape)
                np.testing.assert_allclose(gr, t.grad.numpy(), rtol=1e-12, atol=1e-300)
    # reduction="none" equals PyTorch's per-element losses
    vn = fl.gaussian_nll(x, y, cases[0], reduction="none")
    tn = F.gaussian_nll_loss(torch.tensor(x), torch.tensor(y), torch.tensor(cases[0]),
                             reduction="none")
    np.testing.assert_allclose(vn, tn.numpy(), rtol=1e-14)


def test_gaussian_nll_clamp_gradient_is_pytorchs():
    x, y = np.array([1.0, 2.0, 0.5]), np.zeros(3)
    v = np.array([1e-8, 0.5, 0.0])
    _, g = _full(fl.gaussian_nll, (x, y, v))
    e = 1e-6
    np.testing.assert_allclose(g["var"], [0.5 * (1 / e - 1 / e**2), 0.5 * (2 - 16),
                                          0.5 * (1 / e - 0.25 / e**2)])
    np.testing.assert_allclose(g["input"], [1e6, 4.0, 5e5])


def test_gaussian_nll_shapes_and_errors():
    x = np.zeros((2, 3))
    for bad in (np.ones((3,)), np.ones((2, 2)), np.ones((1, 1)), np.ones((2, 3, 1)),
                np.ones((3, 2))):
        with pytest.raises(ValueError, match="gaussian_nll: var of shape"):
            fl.gaussian_nll(x, x, bad)
    with pytest.raises(ValueError, match="gaussian_nll: var must lie in"):
        fl.gaussian_nll(x, x, -np.ones((2, 3)))
    with pytest.raises(ValueError, match="gaussian_nll: var must lie in"):   # out= untouched
        o = np.full((2, 3), 7.0)
        fl.gaussian_nll(x, x, np.array([1.0, -1.0]), reduction="none", out=o)
    assert (o == 7.0).all()
    with pytest.raises(ValueError, match="eps"):
        fl.gaussian_nll(x, x, 1.0, eps=0.0)
    with pytest.raises(TypeError, match="full"):
        fl.gaussian_nll(x, x, 1.0, full=1)
    with pytest.raises(TypeError, match="var"):
        fl.gaussian_nll(x, x, np.array(["a"] * 3))
    with pytest.raises(ValueError, match="target"):
        fl.gaussian_nll(x, np.zeros(4), 1.0)
    with pytest.raises(ValueError, match="differentiable"):
        fl.value_and_grad(fl.margin_ranking, argnums=2)
    # NaN in, NaN out; an infinite variance gives +inf
    r = fl.gaussian_nll(np.array([np.nan, 0.0, 1.0]), np.zeros(3), np.array([1.0, np.nan, np.inf]),
                        reduction="none")
    assert np.isnan(r[:2]).all() and r[2] == np.inf


# --- margin_ranking ---------------------------------------------------------------------------
def test_margin_ranking_reference_fd_and_torch():
    rng, a, b = _inputs(2, (5, 2))
    t = np.where(rng.random((5, 2)) < 0.5, -1.0, 1.0)
    m = 0.3
    u = -t * (a - b) + m
    a = np.where(np.abs(u) < 1e-2, a + 0.05, a)     # away from the kink
    w = rng.uniform(0.5, 2.0, a.shape)
    val, g = _full(fl.margin_ranking, (a, b, t), w, margin=m)
    f = lambda p, q, r: w * ref_margin(p, q, r, m)  # noqa: E731
    np.testing.assert_allclose(val, f(a, b, t), rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(g["input1"], fd(f, (a, b, t), 0), atol=1e-8)
    np.testing.assert_allclose(g["input2"], fd(f, (a, b, t), 1), atol=1e-8)
    gh, h = fl.grad_and_hessian(fl.margin_ranking)(a, b, t, margin=m)
    assert (h == 0).all()
    torch = pytest.importorskip("torch")
    ta, tb = (torch.tensor(v, requires_grad=True) for v in (a, b))
    ref = torch.nn.functional.margin_ranking_loss(ta, tb, torch.tensor(t), margin=m)
    ref.backward()
    vg, (g1, g2) = fl.value_and_grad(fl.margin_ranking, argnums=(0, 1))(a, b, t, margin=m)
    np.testing.assert_allclose(vg, ref.item(), rtol=1e-15)
    np.testing.assert_allclose(g1, ta.grad.numpy(), rtol=1e-15)
    np.testing.assert_allclose(g2, tb.grad.numpy(), rtol=1e-15)
    np.testing.assert_allclose(gh, g1, rtol=1e-15)
    # at the kink, PyTorch's clamp_min subgradient: -t for input1
    k = np.array([1.0, 2.0])
    _, (k1, k2) = fl.value_and_grad(fl.margin_ranking, argnums=(0, 1))(
        k, k, np.array([1.0, -1.0]), reduction="sum")
    np.testing.assert_array_equal(k1, [-1.0, 1.0])
    np.testing.assert_array_equal(k2, [1.0, -1.0])


def test_margin_ranking_labels_and_broadcast():
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(ValueError, match="margin_ranking: target must lie in"):
        fl.margin_ranking(x, x, np.array([1.0, 0.0, -1.0]))
    r = fl.margin_ranking(x, 1.0, np.array([1.0, -1.0, 1.0]), margin=0.5, reduction="none")
    np.testing.assert_array_equal(r, ref_margin(x, 1.0, np.array([1.0, -1.0, 1.0]), 0.5))
    assert np.isnan(fl.margin_ranking(np.array([np.nan]), np.zeros(1), np.ones(1)))


# --- per-element pos_weight and alpha ---------------------------------------------------------
def _logit_inputs(seed=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 3)) * 2
    y = np.where(rng.random((4, 3)) < 0.3, rng.random((4, 3)),
                 (rng.random((4, 3)) < 0.5).astype(float))
    return x, y


def test_pos_weight_array_reference_fd_and_torch():
    x, y = _logit_inputs()
    pw = np.array([0.5, 2.0, 3.0])
    f = lambda a: ref_bce_pw(a, y, pw)  # noqa: E731
    g, h = fl.grad_and_hessian(fl.sigmoid_binary_cross_entropy)(x, y, pos_weight=pw,
                                                                  reduction="sum")
    np.testing.assert_allclose(g, fd(lambda a: f(a), (x,), 0), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(h, fd(lambda a: fl.grad(fl.sigmoid_binary_cross_entropy)(
        a, y, pos_weight=pw, reduction="sum"), (x,), 0), rtol=1e-6, atol=1e-9)
    v = fl.sigmoid_binary_cross_entropy(x, y, pos_weight=pw, reduction="none")
    np.testing.assert_allclose(v, f(x), rtol=1e-13)
    # a constant array equals the scalar
    np.testing.assert_allclose(
        fl.sigmoid_binary_cross_entropy(x, y, pos_weight=np.full(3, 2.5), reduction="none"),
        fl.sigmoid_binary_cross_entropy(x, y, pos_weight=2.5, reduction="none"), rtol=1e-15)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    ref = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw))(tx, torch.tensor(y))
    ref.backward()
    val, gv = fl.value_and_grad(fl.sigmoid_binary_cross_entropy)(x, y, pos_weight=pw)
    np.testing.assert_allclose(val, ref.item(), rtol=1e-14)
    np.testing.assert_allclose(gv, tx.grad.numpy(), rtol=1e-13)


def test_focal_alpha_array_reference_fd_and_torch():
    x, y = _logit_inputs(4)
    al = np.array([0.1, 0.5, 0.9])
    g, h = fl.grad_and_hessian(fl.sigmoid_focal)(x, y, alpha=al, reduction="sum")
    f = lambda a: ref_focal(a, y, al)  # noqa: E731
    np.testing.assert_allclose(g, fd(f, (x,), 0), rtol=1e-6, atol=1e-9)
    v = fl.sigmoid_focal(x, y, alpha=al, reduction="none")
    np.testing.assert_allclose(v, f(x), rtol=1e-12)
    # per class equals the scalar loss column by column; a negative entry disables it
    for c in range(3):
        np.testing.assert_allclose(v[:, c], fl.sigmoid_focal(x[:, c], y[:, c], alpha=al[c],
                                                             reduction="none"), rtol=1e-15)
    v2 = fl.sigmoid_focal(x, y, alpha=np.array([-1.0, 0.5, 0.5]), reduction="none")
    np.testing.assert_allclose(v2[:, 0], fl.sigmoid_focal(x[:, 0], y[:, 0], alpha=-1.0,
                                                          reduction="none"), rtol=1e-15)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    ty, ta = torch.tensor(y), torch.tensor(al)
    p = torch.sigmoid(tx)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(tx, ty, reduction="none")
    pt = p * ty + (1 - p) * (1 - ty)
    ref = ((ta * ty + (1 - ta) * (1 - ty)) * (1 - pt) ** 2 * ce).mean()  # torchvision's formula
    ref.backward()
    val, gv = fl.value_and_grad(fl.sigmoid_focal)(x, y, alpha=al)
    np.testing.assert_allclose(val, ref.item(), rtol=1e-13)
    np.testing.assert_allclose(gv, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_per_element_parameter_errors():
    x, y = _logit_inputs()
    f = fl.sigmoid_binary_cross_entropy
    for bad, match in ((np.array([1.0, -1.0, 1.0]), "pos_weight must be >= 0"),
                       (np.array([1.0, np.nan, 1.0]), "pos_weight must be"),
                       (np.ones(4), "pos_weight of shape"),
                       (np.array(["a", "b", "c"]), "pos_weight")):
        with pytest.raises((ValueError, TypeError), match=match):
            f(x, y, pos_weight=bad)
    with pytest.raises(ValueError, match="sigmoid_focal: alpha must be"):
        fl.sigmoid_focal(x, y, alpha=np.array([0.1, 1.5, 0.2]))
    with pytest.raises(ValueError, match="sigmoid_binary_cross_entropy: target must lie in"):
        f(x, y + 2, pos_weight=np.ones(3))
    with pytest.raises(ValueError, match="label_smoothing"):
        f(x, y, pos_weight=np.ones(3), label_smoothing=2.0)


def test_float32_and_empty():
    rng, x, y = _inputs(5, (7,))
    v = rng.uniform(0.2, 2.0, 7)
    r32 = fl.gaussian_nll(x.astype(np.float32), y.astype(np.float32), v.astype(np.float32),
                          reduction="none")
    assert r32.dtype == np.float32
    np.testing.assert_allclose(r32, ref_gnll(x.astype(np.float32).astype(float),
                                             y.astype(np.float32).astype(float),
                                             v.astype(np.float32).astype(float)),
                               rtol=2e-6, atol=1e-6)
    assert fl.gaussian_nll(np.empty(0), np.empty(0), np.empty(0), reduction="sum") == 0
    assert fl.margin_ranking(np.empty(0), np.empty(0), np.empty(0), reduction="none").shape == (0,)


def test_buffers_and_registry():
    rng, x, y = _inputs(6, (3, 2))
    v = rng.uniform(0.2, 2.0, x.shape)
    w = np.ones_like(x)
    o, gi, gv = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    val, (a, b) = fl.value_and_grad(fl.gaussian_nll, argnums=(0, 2))(
        x, y, v, sample_weight=w, reduction="none", out=o, grad_out=(gi, gv))
    assert val is o and a is gi and b is gv
    ref, g = _full(fl.gaussian_nll, (x, y, v), w)
    np.testing.assert_array_equal(o, ref)
    np.testing.assert_array_equal(gi, g["input"])
    np.testing.assert_array_equal(gv, g["var"])
    with pytest.raises(ValueError, match="grad_out"):
        fl.value_and_grad(fl.gaussian_nll, argnums=(0, 2))(x, y, v, grad_out=gi)
    # the gradient of a broadcast input has its own shape (summed over the broadcast axes)
    gv1, gt1 = np.empty(3), np.empty(2)
    _, (a1, b1) = fl.value_and_grad(fl.gaussian_nll, argnums=(2, 1))(
        x, y[0], v[:, 0], reduction="sum", grad_out=(gv1, gt1))
    assert a1 is gv1 and b1 is gt1
    _, g = _full(fl.gaussian_nll, (x, np.broadcast_to(y[0], x.shape).copy(),
                                   np.broadcast_to(v[:, :1], x.shape).copy()))
    np.testing.assert_allclose(gv1, g["var"].sum(1), rtol=1e-14)
    np.testing.assert_allclose(gt1, g["target"].sum(0), rtol=1e-14)
    _, gs = fl.value_and_grad(fl.gaussian_nll, argnums=2)(x, y, 0.5)
    full = fl.grad(fl.gaussian_nll, 2)(x, y, np.full(x.shape, 0.5))
    assert gs.shape == () and np.isclose(gs, full.sum(), rtol=1e-14)
    info = fl.LOSSES["gaussian_nll"]
    assert info.inputs == ("input", "target", "var") and info.kind == "elementwise"
    assert info.differentiable == ("input", "target", "var") and info.has_hessian
    assert fl.LOSSES["margin_ranking"].differentiable == ("input1", "input2")
    assert "gaussian_nll" in fl.__all__ and "margin_ranking" in fl.__all__


@pytest.mark.parametrize("name", sorted(T.EW3_EXPECTED))
def test_docstring_example_outputs_match_reference(name):
    setup, args = T.EW3_EXAMPLES[name]
    ns = {"np": np}
    for line in setup:
        exec(line, ns)  # noqa: S102
    a = [ns[n.strip()] for n in args.split(",")]
    ref = {"gaussian_nll": ref_gnll, "margin_ranking": ref_margin}[name]
    mean, grad = T.EW3_EXPECTED[name]
    assert abs(float(mean) - ref(*a).mean()) <= 6e-5
    g = np.array(eval(grad.replace("array(", "(")), float)  # noqa: S307
    np.testing.assert_allclose(g, fd(lambda *z: ref(*z) / z[0].size, a, 0), atol=6e-5)
    assert ">>> loss, g = fastloss.value_and_grad" in getattr(fl, name).__doc__


def test_parallel_kernel_equals_the_serial_one_bitwise():
    """The parallel three-array kernel (prange over blocks) gives the serial twin's bits:
    the fixed summation order of fastloss._cpu.fold, whatever the thread count."""
    from fastloss import _cpu
    from fastloss import _elementwise as E
    from fastloss._math.spec import ELEMENTWISE3

    rng, x, y = _inputs(7, (5000,))   # 3 blocks
    v = rng.uniform(0.2, 2.0, 5000)
    k = E.cpu_kernel3_for(ELEMENTWISE3["gaussian_nll"], np.float64)
    gp, gv = np.empty(5000), np.empty(5000)
    s, bad = k(x, y, v, None, 1.0, 0.0, 1e-6, 0.0, 1.0 / 5000, None, gp, None, None, gv, 0.0)
    assert bad == 0 and _cpu.serial(k) is not k
    val, (g1, g2) = fl.value_and_grad(fl.gaussian_nll, argnums=(0, 2))(x, y, v)
    assert np.float64(s / 5000) == val
    np.testing.assert_array_equal(gp, g1)
    np.testing.assert_array_equal(gv, g2)
