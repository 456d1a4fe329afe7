"""where= masks and tuple axes (fastloss._callopts) against NumPy/SciPy references."""
import numpy as np
import pytest
import scipy.special as sp

import fastloss as fl

rng = np.random.default_rng(7)


def test_elementwise_where_excludes_masked_elements_whatever_they_hold():
    x, y = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    m = rng.random((4, 5)) > 0.4
    x[~m] = np.nan
    y[~m] = np.inf
    v, g = fl.value_and_grad(fl.huber)(x, y, where=m)
    d = np.abs(x - y)[m]
    ref = np.where(d <= 1, 0.5 * d * d, d - 0.5).mean()
    assert v == pytest.approx(ref, rel=1e-13)
    assert np.all(g[~m] == 0) and np.isfinite(g).all()
    gr = np.clip(x - y, -1, 1) / m.sum()
    np.testing.assert_allclose(g[m], gr[m], rtol=1e-13)
    g2, h2 = fl.grad_and_hessian(fl.huber)(x, y, where=m, reduction="sum")
    assert np.all(h2[~m] == 0) and np.all(g2[~m] == 0)
    none = fl.huber(x, y, where=m, reduction="none")
    assert np.all(none[~m] == 0) and none.shape == x.shape


def test_elementwise_where_broadcasts_with_weights_and_float32():
    x = rng.normal(size=(3, 4)).astype(np.float32)
    y = rng.normal(size=(4,)).astype(np.float32)      # target broadcast along the rows
    w = rng.random((3, 4)) + 0.5
    m = np.array([True, False, True, True])           # a column mask, broadcast
    v = fl.squared_error(x, y, sample_weight=w, where=m)
    e = (x - y) ** 2
    ref = (w * e)[:, m].sum() / w[:, m].sum()
    assert v.dtype == np.float32 and v == pytest.approx(ref, rel=1e-6)
    s = fl.squared_error(x, y, where=np.ones(4, bool), reduction="sum")
    assert s == fl.squared_error(x, y, reduction="sum")   # all included: the plain call


def test_row_mask_for_rowwise_losses():
    L = rng.normal(size=(3, 4, 6))
    lab = rng.integers(0, 6, (3, 4))
    rm = rng.random((3, 4)) > 0.3
    L[~rm] = np.nan
    lab[~rm] = 99                                     # masked labels are not checked
    v, g = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(L, lab, where=rm)
    ll = -np.take_along_axis(sp.log_softmax(np.nan_to_num(L), -1),
                             np.minimum(lab, 5)[..., None], -1)[..., 0]
    assert v == pytest.approx(ll[rm].mean(), rel=1e-13)
    assert np.all(g[~rm] == 0) and np.isfinite(g).all()
    # class axis not last
    Lt = np.moveaxis(np.nan_to_num(L), -1, 1)
    vt = fl.softmax_cross_entropy_with_integer_labels(Lt, np.minimum(lab, 5), axis=1,
                                                      where=rm)
    assert vt == pytest.approx(v, rel=1e-13)


def test_class_mask_softmax_and_kl_follow_optax():
    L = rng.normal(size=(5, 6))
    cm = rng.random((5, 6)) > 0.3
    cm[:, 0] = True
    cm[4] = False                                     # a row with no class left: masked
    Y = sp.softmax(rng.normal(size=(5, 6)), -1) * cm
    Y /= np.maximum(Y.sum(-1, keepdims=True), 1e-300)
    v, (gx, gy) = fl.value_and_grad(fl.softmax_cross_entropy, argnums=(0, 1))(L, Y, where=cm)
    with np.errstate(invalid="ignore"):
        lsm = sp.log_softmax(np.where(cm, L, -np.inf), -1)
        per = -np.where(cm, Y * lsm, 0).sum(-1)
    assert v == pytest.approx(per[:4].mean(), rel=1e-13)
    p = np.exp(lsm[:4])
    np.testing.assert_allclose(gx[:4], (p * Y[:4].sum(-1, keepdims=True) - Y[:4]) / 4,
                               atol=1e-15)
    assert np.all(gx[~cm] == 0) and np.all(gy[~cm] == 0) and np.all(gx[4] == 0)
    with pytest.raises(ValueError, match="label_smoothing"):
        fl.softmax_cross_entropy(L, Y, where=cm, label_smoothing=0.1)
    lp = sp.log_softmax(rng.normal(size=(5, 6)), -1)
    t = sp.softmax(rng.normal(size=(5, 6)), -1)
    vk = fl.kl_divergence(lp, t, where=cm, reduction="sum")
    assert vk == pytest.approx(np.where(cm, t * (np.log(t) - lp), 0)[:4].sum(), rel=1e-13)
    with pytest.raises(ValueError, match="batch shape"):
        fl.multiclass_hinge(L, np.zeros(5, int), where=cm)


def test_ctc_where_masks_sequences():
    N, T, C = 3, 6, 4
    x = rng.normal(size=(N, T, C))
    labels = np.array([[1, 2], [2, 3], [1, 1]])
    il, ll = np.array([6, 5, 6]), np.array([2, 2, 2])
    m = np.array([True, False, True])
    per = fl.ctc_loss(x, labels, il, ll, reduction="none")
    x2 = x.copy()
    x2[1] = np.nan
    v, g = fl.value_and_grad(fl.ctc_loss)(x2, labels, il, ll, where=m, reduction="sum")
    assert v == pytest.approx(per[[0, 2]].sum(), rel=1e-12)
    assert np.all(g[1] == 0)
    flat = np.array([1, 2, 2, 3, 1, 1])               # concatenated targets
    v1 = fl.ctc_loss(x2, flat, il, ll, where=m, reduction="none")
    np.testing.assert_allclose(v1, np.where(m, per, 0), rtol=1e-12)


def test_tuple_axis_matches_scipy_and_layout():
    L = rng.normal(size=(3, 4, 5))
    Y = sp.softmax(rng.normal(size=(3, 4, 5)), axis=(0, 2))
    v, g = fl.value_and_grad(fl.softmax_cross_entropy)(L, Y, axis=(2, 0))
    ref = -(Y * sp.log_softmax(L, axis=(0, 2))).sum((0, 2)).mean()
    assert v == pytest.approx(ref, rel=1e-13)
    np.testing.assert_allclose(g, (sp.softmax(L, axis=(0, 2)) - Y) / 4, atol=1e-15)
    assert g.shape == L.shape and g.flags.c_contiguous
    k = rng.integers(0, 20, 3)                         # a flat index into the (4, 5) slice
    vi = fl.softmax_cross_entropy_with_integer_labels(L, k, axis=(1, 2), reduction="none")
    np.testing.assert_allclose(vi, -sp.log_softmax(L.reshape(3, 20), -1)[np.arange(3), k],
                               rtol=1e-13)
    go = np.empty_like(L)
    fl.value_and_grad(fl.softmax_cross_entropy)(L, Y, axis=(0, 2), grad_out=go)
    np.testing.assert_array_equal(go, g)


def test_bad_where_and_axis_raise_naming_the_argument():
    x = np.zeros(4)
    with pytest.raises(TypeError, match="huber: where must be a boolean"):
        fl.huber(x, x, where=np.ones(4))
    with pytest.raises(ValueError, match="huber: where of shape"):
        fl.huber(x, x, where=np.ones(3, bool))
    L = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="repeats"):
        fl.softmax_cross_entropy(L, L, axis=(1, -2))
    with pytest.raises(ValueError, match="out of range"):
        fl.softmax_cross_entropy(L, L, axis=(1, 3))
    with pytest.raises(TypeError, match="axis must be an integer or a tuple"):
        fl.softmax_cross_entropy(L, L, axis=(1, 1.5))
