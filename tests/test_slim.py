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


# ------------------------------------------- tf.compat.v1.losses reductions and collections
def tf_reduce(losses, weights, reduction):
    """tf.compat.v1.losses.compute_weighted_loss (losses_impl.py), re-derived in float64:
    weights aligned with the leading axes, broadcast to the loss shape."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim > 1 and w.shape[-1] == 1:
        w = w[..., 0]
    w = np.broadcast_to(w.reshape(w.shape + (1,) * (losses.ndim - w.ndim)), losses.shape)
    wl = losses * w
    if reduction == "none":
        return wl
    total = wl.sum()
    div = {"weighted_sum": 1.0, "weighted_mean": w.sum(),
           "weighted_sum_over_batch_size": float(losses.size),
           "weighted_sum_by_nonzero_weights": float(np.count_nonzero(w))}[reduction]
    return total / div if div != 0 else 0.0


TF_WEIGHTS = {
    "scalar": 0.7, "zero": 0.0,
    "batch_zeros": np.array([1.0, 0.0, 2.0, 0.0]),
    "batch1": np.array([[0.0], [1.5], [2.0], [0.5]]),
    "full_zeros": WEIGHTS["full"],
    "broadcast_row": np.array([[0.0, 2.0, 1.0]]),      # (1, D): a size-1 dim broadcast
}
RED_FORMS = [("NONE", "none"), ("SUM", "weighted_sum"), ("MEAN", "weighted_mean"),
             ("SUM_OVER_BATCH_SIZE", "weighted_sum_over_batch_size"),
             ("SUM_BY_NONZERO_WEIGHTS", "weighted_sum_by_nonzero_weights"),
             ("SUM_OVER_NONZERO_WEIGHTS", "weighted_sum_by_nonzero_weights")]


@pytest.mark.parametrize("wname", list(TF_WEIGHTS))
def test_tf_reductions_values_and_gradients(wname):
    w = TF_WEIGHTS[wname]
    x, y = RNG.normal(size=(B, D)), RNG.normal(size=(B, D))
    ell = (x - y) ** 2
    for i, (attr, value) in enumerate(RED_FORMS):
        ref = tf_reduce(ell, w, value)
        for form in (attr, value, getattr(slim.Reduction, attr)):
            v = slim.mean_squared_error(x, y, w, reduction=form)
            np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-300)
            np.testing.assert_allclose(slim.compute_weighted_loss(ell, w, reduction=form), ref,
                                       rtol=1e-12, atol=1e-300)
        if value == "none":
            assert np.shape(v) == (B, D)
        if i % 2 == 0:   # gradients (of the sum for NONE) against central differences
            v, g = slim.mean_squared_error.value_and_grad(x, y, w, reduction=attr)
            fd = fd_grad(lambda z: tf_reduce((z - y) ** 2, w, value), x)
            np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_tf_reductions_on_row_losses_and_slim_default():
    logits, lab = RNG.normal(size=(B, 5)), RNG.integers(0, 5, B)
    ell = -log_softmax(logits, axis=1)[np.arange(B), lab]
    w = np.array([0.0, 1.0, 3.0, 0.5])
    for _, value in RED_FORMS:
        np.testing.assert_allclose(
            slim.sparse_softmax_cross_entropy(logits, lab, w, reduction=value),
            tf_reduce(ell, w, value), rtol=1e-12)
    # None (the default) is Slim's count: it differs from TF's only for a size-1 weight
    # dimension broadcast over the loss (one present element per weight, not per element)
    x, y = RNG.normal(size=(B, D)), RNG.normal(size=(B, D))
    wr = TF_WEIGHTS["broadcast_row"]
    np.testing.assert_allclose(slim.mean_squared_error(x, y, wr),
                               slim_reduce((x - y) ** 2, wr), rtol=1e-12)
    np.testing.assert_allclose(slim.mean_squared_error(x, y, wr),
                               B * tf_reduce((x - y) ** 2, wr,
                                             "weighted_sum_by_nonzero_weights"), rtol=1e-12)
    wb = WEIGHTS["batch"]
    assert slim.mean_squared_error(x, y, wb) == slim.mean_squared_error(
        x, y, wb, reduction="SUM_BY_NONZERO_WEIGHTS")
    with pytest.raises(ValueError, match="mean_squared_error: reduction"):
        slim.mean_squared_error(x, y, reduction="mean")
    with pytest.raises(ValueError, match="Invalid Reduction Key"):
        slim.Reduction.validate("sum")
    assert len(set(slim.Reduction.all())) == 5


def test_huber_loss_and_hinge_reduction():
    x, y = RNG.normal(scale=2, size=(B, D)), RNG.normal(size=(B, D))
    d = np.abs(x - y)
    ell = np.where(d <= 1.5, 0.5 * d ** 2, 1.5 * (d - 0.75))
    w = WEIGHTS["batch"]
    v, g = slim.huber_loss.value_and_grad(x, y, w, delta=1.5)
    np.testing.assert_allclose(v, slim_reduce(ell, w), rtol=1e-12)
    fd = fd_grad(lambda z: slim.huber_loss(z, y, w, delta=1.5, loss_collection=None), x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(slim.huber_loss(x, y, w, 1.5, reduction="SUM"),
                               tf_reduce(ell, w, "weighted_sum"), rtol=1e-12)
    lab = (RNG.uniform(size=(B, D)) < 0.5).astype(float)
    h = np.maximum(0, 1 - (2 * lab - 1) * x)
    np.testing.assert_allclose(slim.hinge_loss(x, lab), h, rtol=1e-13)      # Slim's
    np.testing.assert_allclose(slim.hinge_loss(x, lab, weights=w, reduction="MEAN"),
                               tf_reduce(h, w, "weighted_mean"), rtol=1e-12)
    np.testing.assert_allclose(slim.hinge_loss(x, lab, weights=w),
                               tf_reduce(h, w, "none"), rtol=1e-13)


def test_loss_collection_keys(scoped_collection):
    x, y = RNG.normal(size=(B, D)), RNG.normal(size=(B, D))
    a = slim.absolute_difference(x, y)                                 # GraphKeys.LOSSES
    slim.absolute_difference(x, y, loss_collection=None)               # not added
    r = slim.mean_squared_error(x, y, loss_collection=slim.GraphKeys.REGULARIZATION_LOSSES)
    c = slim.log_loss(1 / (1 + np.exp(-x)), (y > 0) * 1.0, loss_collection="my_losses")
    h = slim.hinge_loss(x, (y > 0) * 1.0, loss_collection="losses")
    assert slim.get_regularization_loss() == 0.0 + r
    slim.add_loss(0.125, loss_collection=slim.GraphKeys.REGULARIZATION_LOSSES)
    slim.add_loss(9.0, loss_collection="my_losses")
    slim.add_loss(7.0, loss_collection=None)
    assert slim.get_losses()[0] == a and len(slim.get_losses()) == 2
    np.testing.assert_array_equal(slim.get_losses()[1], h)
    assert slim.get_losses(loss_collection="my_losses") == [c, 9.0]
    assert slim.get_regularization_losses() == [r, 0.125]
    np.testing.assert_allclose(slim.get_regularization_loss(), r + 0.125, rtol=1e-15)
    total = a + np.sum(h) + r + 0.125
    np.testing.assert_allclose(slim.get_total_loss(), total, rtol=1e-13)
    tot, grads = scoped_collection.value_and_grads()                  # "my_losses" excluded
    np.testing.assert_allclose(tot, total, rtol=1e-13)
    with fl.LossCollection():
        assert slim.get_regularization_loss() == 0.0
    with pytest.raises(TypeError, match="loss_collection"):
        slim.absolute_difference(x, y, loss_collection=3)
    with pytest.raises(TypeError, match="loss_collection"):
        slim.add_loss(1.0, loss_collection=3)


# ------------------------------------------------------------------ metric_learning names
def test_metric_learning_names_order_and_values(scoped_collection, capsys):
    ml = slim.metric_learning
    a, p = RNG.normal(size=(6, 3)), RNG.normal(size=(6, 3))
    lab = np.array([0, 1, 0, 2, 1, 2])
    y = np.array([1, 0, 1, 1, 0, 0])
    # contrastive_loss(labels, anchor, positive, margin): TF's formula, mean over pairs
    d = np.sqrt(np.sum((a - p) ** 2, axis=1))
    ref = lambda a_, p_: np.mean(  # noqa: E731
        y * np.sum((a_ - p_) ** 2, axis=1)
        + (1 - y) * np.maximum(0.8 - np.sqrt(np.sum((a_ - p_) ** 2, axis=1)), 0) ** 2)
    v, (ga, gp) = ml.contrastive_loss.value_and_grad(y, a, p, 0.8)
    np.testing.assert_allclose(v, np.mean(y * d ** 2 + (1 - y) * np.maximum(0.8 - d, 0) ** 2),
                               rtol=1e-12)
    np.testing.assert_allclose(ga, fd_grad(lambda z: ref(z, p), a), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gp, fd_grad(lambda z: ref(a, z), p), rtol=1e-6, atol=1e-8)
    # npairs_loss: softmax cross-entropy of A Pᵀ against the normalized label match + L2
    S = a @ p.T
    t = (lab[:, None] == lab[None, :]).astype(float)
    t /= t.sum(axis=1, keepdims=True)
    xent = np.mean(-np.sum(t * log_softmax(S, axis=1), axis=1))
    l2 = 0.25 * 0.01 * (np.mean(np.sum(a ** 2, 1)) + np.mean(np.sum(p ** 2, 1)))
    np.testing.assert_allclose(ml.npairs_loss(lab, a, p, 0.01, True), xent + l2, rtol=1e-12)
    assert "cross entropy loss" in capsys.readouterr().out
    # the mining losses: TF's order (labels, embeddings, margin), fastloss's values
    for name, core in (("triplet_semihard_loss", fl.triplet_semihard),
                       ("lifted_struct_loss", fl.lifted_struct)):
        f = getattr(ml, name)
        v, g = f.value_and_grad(lab, a, 0.5)
        rv, rg = fl.value_and_grad(core, argnums=1)(lab, a, margin=0.5)
        assert v == rv and f(lab, a, margin=0.5) == rv
        np.testing.assert_array_equal(g, rg)
    assert len(scoped_collection) == 0            # TF adds these to no collection
    with pytest.raises(ValueError, match="metric_learning.contrastive_loss"):
        ml.contrastive_loss(y[:5], a, p)
