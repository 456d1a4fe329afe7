"""fastloss.slim: TF-Slim's ``slim.losses`` over the fused kernels.

Values against float64 NumPy transcriptions of ``tf.contrib.losses`` (``loss_ops.py``:
``compute_weighted_loss``, ``_num_present``, ``_scale_losses``), gradients against central
differences, the default-collection behaviour, and the documented differences from
``tf.losses``.  Every test runs inside its own ``LossCollection`` (the autouse fixture),
so nothing leaks into the process-wide default.
"""
import numpy as np
import pytest
from scipy.special import log_softmax

import fastloss as fl
from fastloss import slim

RNG = np.random.default_rng(777)
B, D = 4, 3


@pytest.fixture(autouse=True)
def scoped_collection():
    with fl.LossCollection() as c:
        yield c


def slim_reduce(losses, weights):
    """TF-Slim's compute_weighted_loss, literally (float64)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 0:
        n = losses.size if w != 0 else 0
        total = float(w) * losses.sum()
    else:
        if w.ndim > 1 and w.shape[-1] == 1:
            w = w[..., 0]
        red = losses.sum(axis=tuple(range(w.ndim, losses.ndim))) if losses.ndim > w.ndim \
            else losses
        total = np.sum(red * w)
        n = np.count_nonzero(w) * int(np.prod(losses.shape[w.ndim:]))
    return total / n if n > 0 else 0.0


def fd_grad(f, x, h=1e-6):
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        r = f(xp), f(xm)
        r = [x[0] if isinstance(x, tuple) else x for x in r]
        g[i] = (np.sum(r[0]) - np.sum(r[1])) / (2 * h)
    return g


WEIGHTS = {
    "scalar": 0.7,
    "batch": np.array([1.0, 0.0, 2.0, 0.5]),
    "batch1": np.array([[1.0], [0.0], [2.0], [0.5]]),
    "full": np.where(RNG.uniform(size=(B, D)) < 0.3, 0.0, RNG.uniform(0.5, 2, (B, D))),
}

ELEMENTWISE = [
    ("absolute_difference", {}, "real", lambda x, y: np.abs(x - y)),
    ("mean_squared_error", {}, "real", lambda x, y: (x - y) ** 2),
    ("log_loss", {"epsilon": 1e-5}, "prob",
     lambda x, y: -y * np.log(x + 1e-5) - (1 - y) * np.log(1 - x + 1e-5)),
    ("sigmoid_cross_entropy", {"label_smoothing": 0.2}, "unit",
     lambda x, y: (lambda ys: np.maximum(x, 0) - x * ys + np.log1p(np.exp(-np.abs(x))))(
         y * 0.8 + 0.1)),
]


@pytest.mark.parametrize("wname", list(WEIGHTS))
@pytest.mark.parametrize("name,kw,kind,ref", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise(name, kw, kind, ref, wname):
    fn = getattr(slim, name)
    x = RNG.uniform(0.05, 0.95, (B, D)) if kind == "prob" else RNG.normal(size=(B, D)) * 2
    y = RNG.uniform(size=(B, D)) if kind in ("prob", "unit") else RNG.normal(size=(B, D))
    w = WEIGHTS[wname]
    v, g = fn.value_and_grad(x, y, weights=w, **kw)
    np.testing.assert_allclose(v, slim_reduce(ref(x, y), w), rtol=1e-12)
    assert g.shape == x.shape
    if wname in ("batch", "full"):
        np.testing.assert_allclose(g, fd_grad(lambda z: fn.value_and_grad(z, y, w, **kw), x),
                                   rtol=1e-6, atol=1e-8)


def test_softmax_cross_entropy_label_smoothing_and_weights():
    C = 5
    x = RNG.normal(size=(B, C)) * 2
    y = np.eye(C)[RNG.integers(0, C, B)]
    w = np.array([1.0, 2.0, 0.0, 0.5])
    v, g = slim.softmax_cross_entropy.value_and_grad(x, y, weights=w, label_smoothing=0.1)
    ys = y * 0.9 + 0.1 / C
    ref = slim_reduce(-np.sum(ys * log_softmax(x, axis=1), axis=1), w)
    np.testing.assert_allclose(v, ref, rtol=1e-12)
    fd = fd_grad(lambda z: slim.softmax_cross_entropy.value_and_grad(z, y, w, 0.1), x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_sparse_softmax_cross_entropy_labels_and_weights_with_trailing_one():
    C = 5
    x = RNG.normal(size=(B, C))
    lab = RNG.integers(0, C, (B, 1))
    w = np.array([[0.5], [1.0], [1.5], [0.0]])
    v, g = slim.sparse_softmax_cross_entropy.value_and_grad(x, lab, w)
    ce = -log_softmax(x, axis=1)[np.arange(B), lab[:, 0]]
    np.testing.assert_allclose(v, slim_reduce(ce, w), rtol=1e-12)
    np.testing.assert_allclose(
        g, fd_grad(lambda z: slim.sparse_softmax_cross_entropy.value_and_grad(z, lab, w), x),
        rtol=1e-6, atol=1e-8)


def test_hinge_loss_unreduced_and_not_collected(scoped_collection):
    x = RNG.normal(size=(B, D)) * 2
    lab = RNG.integers(0, 2, (B, D)).astype(float)
    v, g = slim.hinge_loss.value_and_grad(x, lab)
    ref = np.maximum(0, 1 - (2 * lab - 1) * x)
    assert v.shape == (B, D)
    np.testing.assert_allclose(v, ref, rtol=1e-15)
    np.testing.assert_allclose(g, np.where(ref > 0, -(2 * lab - 1), 0.0))
    np.testing.assert_allclose(slim.hinge_loss(x, lab), ref)
    assert slim.get_losses() == [] and len(scoped_collection) == 0


def ref_mpse_slim(x, y, w):
    """tf.contrib.losses.mean_pairwise_squared_error, literally."""
    d = (x - y).reshape(len(x), -1)
    n = d.shape[1]
    w = np.asarray(w, dtype=np.float64)
    present = (np.full(len(x), float(n)) if w.ndim == 0 and w != 0 else
               np.zeros(len(x)) if w.ndim == 0 else (w.reshape(-1) != 0) * float(n))
    with np.errstate(invalid="ignore", divide="ignore"):
        t1 = np.where(present > 0, 2 * np.sum(d ** 2, 1) / present, 0.0)
        t2 = np.where(present > 0, 2 * np.sum(d, 1) ** 2 / present ** 2, 0.0)
    loss = np.sum((t1 - t2) * (w.reshape(-1) if w.ndim else w))
    return loss if present.sum() > 0 else 0.0


@pytest.mark.parametrize("w", [0.8, np.array([1.0, 0.0, 2.0, 0.5])])
def test_mean_pairwise_squared_error_slim_form(w):
    x, y = RNG.normal(size=(B, 2, 3)), RNG.normal(size=(B, 2, 3))
    v, g = slim.mean_pairwise_squared_error.value_and_grad(x, y, w)
    np.testing.assert_allclose(v, ref_mpse_slim(x, y, w), rtol=1e-12)
    fd = fd_grad(lambda z: slim.mean_pairwise_squared_error.value_and_grad(z, y, w), x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    # the tf.losses form (n(n−1) pairs) is fastloss.mean_pairwise_squared_error;
    # Slim's is that × (n−1)/n
    tfl = fl.mean_pairwise_squared_error(x, y, reduction="none")
    np.testing.assert_allclose(v, np.sum(tfl * 5 / 6 * w), rtol=1e-12)


def test_mean_pairwise_squared_error_zero_weights():
    x, y = RNG.normal(size=(B, D)), RNG.normal(size=(B, D))
    v, g = slim.mean_pairwise_squared_error.value_and_grad(x, y, np.zeros(B))
    assert v == 0 and not g.any()
    with pytest.raises(ValueError, match="batch_size"):
        slim.mean_pairwise_squared_error(x, y, np.ones((B, D)))


def test_cosine_distance_axis_and_prefix_weights():
    x = RNG.normal(size=(B, D, 2))
    y = RNG.normal(size=(B, D, 2))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    losses = 1 - np.sum(x * y, axis=1)                        # (B, 2)
    for w in (0.5, np.array([1.0, 0.0, 2.0, 1.0]), RNG.uniform(0.5, 2, (B, 2))):
        v, g = slim.cosine_distance.value_and_grad(x, y, axis=1, weights=w)
        np.testing.assert_allclose(v, slim_reduce(losses, w), rtol=1e-12)
    np.testing.assert_allclose(g, -y * w[:, None, :] / np.count_nonzero(w), rtol=1e-12)
    np.testing.assert_allclose(slim.cosine_distance(x, y, dim=1, weights=w), v, rtol=1e-15)
    # tf.losses form: weights with the reduced axis kept (size 1) are accepted
    np.testing.assert_allclose(slim.cosine_distance(x, y, axis=1, weights=w[:, None, :]), v,
                               rtol=1e-15)
    with pytest.raises(ValueError, match="cannot both be None"):
        slim.cosine_distance(x, y)
    with pytest.raises(ValueError, match="both"):
        slim.cosine_distance(x, y, axis=1, dim=1)


def test_compute_weighted_loss_prefix_weights():
    losses = RNG.uniform(size=(B, D, 2))
    w = np.where(RNG.uniform(size=(B, D)) < 0.3, 0.0, 1.5)
    v, g = slim.compute_weighted_loss.value_and_grad(losses, w)
    n = np.count_nonzero(w) * 2
    np.testing.assert_allclose(v, np.sum(losses * w[..., None]) / n, rtol=1e-13)
    np.testing.assert_allclose(g, np.broadcast_to(w[..., None] / n, losses.shape))
    assert slim.compute_weighted_loss(losses, 0.0) == 0.0


def test_multiclass_hinge_loss():
    C = 4
    s = RNG.normal(size=(B, C))
    lab = RNG.integers(0, C, B)
    w = np.array([1.0, 0.5, 0.0, 2.0])
    v, g = slim.multiclass_hinge_loss.value_and_grad(s, lab, w)
    marg = np.maximum(0, s - s[np.arange(B), lab][:, None] + 1)
    marg[np.arange(B), lab] = 0
    np.testing.assert_allclose(v, slim_reduce(marg.sum(1), w), rtol=1e-12)
    fd = fd_grad(lambda z: slim.multiclass_hinge_loss.value_and_grad(z, lab, w), s)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_mixed_sign_and_zero_weights():
    x, y = RNG.normal(size=(B, D)), RNG.normal(size=(B, D))
    w = np.array([1.0, -2.0, 0.0, 0.5])
    v, g = slim.mean_squared_error.value_and_grad(x, y, w)
    np.testing.assert_allclose(v, slim_reduce((x - y) ** 2, w), rtol=1e-12)
    np.testing.assert_allclose(g, 2 * (x - y) * w[:, None] / (3 * D), rtol=1e-12)
    v0, g0 = slim.mean_squared_error.value_and_grad(x, y, 0.0)
    assert v0 == 0 and not g0.any()
    with pytest.raises(ValueError, match="prefix"):
        slim.mean_squared_error(x, y, np.ones(B + 1))
    with pytest.raises(ValueError, match="not compatible"):
        slim.mean_squared_error(x, y[:, :2])


def test_default_collection_total_and_gradients(scoped_collection):
    x, y = RNG.normal(size=(B, D)), RNG.normal(size=(B, D))
    logits, lab = RNG.normal(size=(B, 5)), RNG.integers(0, 5, B)
    W = RNG.normal(size=(3, 2))
    a = slim.mean_squared_error(x, y, weights=0.5)
    b, gb = slim.sparse_softmax_cross_entropy.value_and_grad(logits, lab, scope="cls")
    slim.add_loss(0.25)
    scoped_collection.add_regularization(W, l2=0.1)
    assert slim.get_losses() == [a, b, 0.25]
    assert slim.get_losses("cls") == [b]
    reg = 0.5 * 0.1 * np.sum(W ** 2)
    np.testing.assert_allclose(slim.get_regularization_losses(), [reg], rtol=1e-13)
    np.testing.assert_allclose(slim.get_total_loss(), a + b + 0.25 + reg, rtol=1e-13)
    np.testing.assert_allclose(slim.get_total_loss(add_regularization_losses=False),
                               a + b + 0.25, rtol=1e-13)
    total, grads = slim.get_default_collection().value_and_grads()
    np.testing.assert_allclose(total, a + b + 0.25 + reg, rtol=1e-13)
    assert len(grads) == 3
    np.testing.assert_allclose(grads[0], 0.5 * 2 * (x - y) / (B * D), rtol=1e-13)
    np.testing.assert_allclose(grads[1], gb, rtol=1e-15)
    np.testing.assert_allclose(grads[2], 0.1 * W, rtol=1e-13)
    assert slim.value_and_grad(slim.log_loss) is slim.log_loss.value_and_grad


def test_default_collection_does_not_leak():
    outer = slim.get_default_collection()
    with fl.LossCollection() as inner:
        assert slim.get_default_collection() is inner
        slim.absolute_difference(np.ones(3), np.zeros(3))
        assert len(inner) == 1
    assert slim.get_default_collection() is outer and len(outer) == 0
    # the process-wide default (outside every block) can be reset
    with fl.LossCollection():
        pass
    slim.reset_default_collection()
