"""The losses defined by a peer library against that library: scikit-learn's
HalfTweedieLoss/HalfGammaLoss (gradient, Hessian, loss + constant_to_optimal_zero),
PyTorch's hinge_embedding_loss (value and autograd gradient), and Keras/optax where
installed.  One float64 kernel variant per loss (value_and_grad / grad_and_hessian as
tests/test_elementwise.py calls them)."""
import numpy as np
import pytest

import fastloss as fl


def _vgh(name, x, y, **p):
    v, g = fl.value_and_grad(getattr(fl, name))(x, y, sample_weight=np.ones_like(x),
                                               reduction="none", **p)
    g2, h = fl.grad_and_hessian(getattr(fl, name))(x, y, reduction="sum", **p)
    np.testing.assert_allclose(g, g2, rtol=1e-14)
    return v, g, h


def _log_link_inputs(n=200, zeros=True):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(n) * 1.5
    y = rng.gamma(1.5, 2.0, n)
    if zeros:
        y[::7] = 0.0
    return x, y


@pytest.mark.parametrize("power", [1.5, 1.3])
def test_tweedie_matches_sklearn(power):
    skl = pytest.importorskip("sklearn._loss.loss")
    x, y = _log_link_inputs()
    obj = skl.HalfTweedieLoss(power=power)
    gs, hs = obj.gradient_hessian(y_true=y, raw_prediction=x)
    ls = obj.loss(y_true=y, raw_prediction=x) + obj.constant_to_optimal_zero(y_true=y)
    v, g, h = _vgh("tweedie_deviance", x, y, power=power)
    np.testing.assert_allclose(g, gs, rtol=1e-12, atol=1e-14 * np.abs(gs).max())
    np.testing.assert_allclose(h, hs, rtol=1e-13)
    np.testing.assert_allclose(v, ls, rtol=1e-10, atol=1e-13)
    assert np.all(v >= 0)
    # at μ = y the value is 0 (sklearn's sum cancels to rounding there; ours is exact)
    v0 = fl.tweedie_deviance(np.log(y[y > 0]), y[y > 0], power=power, reduction="none")
    assert np.all(np.abs(v0) <= 1e-14 * np.maximum(1, y[y > 0]))


def test_gamma_matches_sklearn():
    skl = pytest.importorskip("sklearn._loss.loss")
    x, y = _log_link_inputs(zeros=False)
    obj = skl.HalfGammaLoss()
    gs, hs = obj.gradient_hessian(y_true=y, raw_prediction=x)
    ls = obj.loss(y_true=y, raw_prediction=x) + obj.constant_to_optimal_zero(y_true=y)
    v, g, h = _vgh("gamma_deviance", x, y)
    np.testing.assert_allclose(g, gs, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h, hs, rtol=1e-13)
    np.testing.assert_allclose(v, ls, rtol=1e-10, atol=1e-13)
    # the Tweedie family's limit: power -> 2 approaches the gamma deviance
    vt = fl.tweedie_deviance(x, y, power=1.999999, reduction="none")
    np.testing.assert_allclose(vt, v, rtol=1e-4, atol=1e-6)


def test_hinge_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x = rng.standard_normal(300) * 2
    y = np.where(rng.random(300) < 0.5, -1.0, 1.0)
    x = np.where(np.abs(0.7 - x) < 1e-3, x + 0.01, x)   # not at the kink
    for red in ("none", "sum", "mean"):
        tx = torch.tensor(x, requires_grad=True)
        out = torch.nn.functional.hinge_embedding_loss(tx, torch.tensor(y), margin=0.7,
                                                       reduction=red)
        out.sum().backward()
        v, g = fl.value_and_grad(fl.hinge_embedding)(x, y, margin=0.7, reduction=red)
        np.testing.assert_allclose(v, out.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(g, tx.grad.numpy(), rtol=1e-12)


def test_hinge_embedding_refuses_other_labels():
    with pytest.raises(ValueError, match="hinge_embedding"):
        fl.hinge_embedding(np.zeros(3), np.array([1.0, 0.0, -1.0]))


def test_keras_losses():
    keras = pytest.importorskip("keras")
    rng = np.random.default_rng(13)
    x = rng.standard_normal((4, 8))
    y = rng.standard_normal((4, 8))
    y[0, :3] = 0.0
    ref = np.asarray(keras.losses.MeanAbsolutePercentageError(reduction=None)(y, x))
    got = fl.mean_absolute_percentage_error(x, y, reduction="none").mean(-1)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    ref = np.asarray(keras.losses.MeanSquaredLogarithmicError(reduction=None)(y, x))
    got = fl.mean_squared_log_error(x, y, reduction="none").mean(-1)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7)


def test_optax_losses():
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(14)
    lp = rng.standard_normal((3, 5))
    t = rng.random((3, 5))
    t[0, 0] = 0.0
    ref = np.asarray(optax.losses.convex_kl_divergence(lp, t))
    got = fl.convex_kl(lp, t, reduction="none").sum(-1)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # optax's PolyLoss is the softmax form: with two classes and logits (0, x) its value
    # is the sigmoid form's
    x = rng.standard_normal(6)
    y = (rng.random(6) < 0.5).astype(float)
    logits = np.stack([np.zeros(6), x], -1)
    labels = np.stack([1 - y, y], -1)
    ref = np.asarray(optax.losses.poly_loss_cross_entropy(logits, labels, epsilon=2.0))
    np.testing.assert_allclose(fl.poly1_cross_entropy(x, y, reduction="none"), ref,
                               rtol=1e-5, atol=1e-6)


def test_documented_forms():
    """Worked values: Keras' definitions of MAPE/MSLE, PolyLoss at ε = 0 (plain BCE), the
    I-divergence's 0 log 0 = 0, convex_kl(x, t) = generalized_kl(e^x, t)."""
    x = np.array([1.0, -2.0, 0.5])
    y = np.array([2.0, 0.0, 0.5])
    np.testing.assert_allclose(fl.mean_absolute_percentage_error(x, y, reduction="none"),
                               [50.0, 2e9, 0.0])
    np.testing.assert_allclose(fl.mean_squared_log_error(x, y, reduction="none"),
                               [(np.log(2) - np.log(3)) ** 2,
                                (np.log1p(1e-7) - np.log1p(1e-7)) ** 2, 0.0], atol=1e-300)
    xs = np.array([-3.0, 0.2, 4.0])
    ys = np.array([0.0, 1.0, 0.3])
    np.testing.assert_allclose(
        fl.poly1_cross_entropy(xs, ys, epsilon=0.0, reduction="none"),
        fl.sigmoid_binary_cross_entropy(xs, ys, reduction="none"), rtol=1e-13)
    q = np.array([0.5, 2.0, 3.0])
    t = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(fl.generalized_kl(q, t, reduction="none"),
                               [0.5, np.log(0.5) - 1 + 2, 0.0], atol=1e-15)
    np.testing.assert_allclose(fl.convex_kl(np.log(q), t, reduction="none"),
                               fl.generalized_kl(q, t, reduction="none"), rtol=1e-13,
                               atol=1e-15)


@pytest.mark.parametrize("name", ["tweedie_deviance", "gamma_deviance", "convex_kl"])
def test_log_link_init_score_is_log_mean(name):
    """The constant raw score minimizing the weighted loss: log of the weighted mean."""
    from fastloss import boosting as fb
    rng = np.random.default_rng(15)
    y = rng.gamma(2.0, 0.1, 50)
    w = rng.random(50) + 0.2
    c = fb.init_score(name, y, w)
    assert c == pytest.approx(np.log(np.dot(w, y) / w.sum()), rel=1e-12)
    g = fl.grad(getattr(fl, name))(np.full(50, c), y, sample_weight=w, reduction="sum")
    assert abs(g.sum()) <= 1e-10 * np.abs(g).sum()
