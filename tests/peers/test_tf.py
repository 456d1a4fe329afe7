"""fastloss against TensorFlow (``tf.compat.v1.losses``) and tf-slim (``tf_slim.losses``).

Optional: skipped unless tensorflow (and, for the Slim half, tf_slim) import; run by
scripts/compare_peers/run.sh.  Values and tape gradients in float64, eager mode.
``tf.compat.v1.losses`` takes (labels, predictions); Slim takes (predictions, labels).
"""
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import fastloss as fl  # noqa: E402
from fastloss import slim  # noqa: E402

RNG = np.random.default_rng(4242)
B, D = 4, 3
X = RNG.normal(size=(B, D)) * 2
Y = RNG.normal(size=(B, D))
P01 = RNG.uniform(0.05, 0.95, (B, D))
Y01 = RNG.uniform(size=(B, D))
W_BATCH = np.array([1.0, 0.0, 2.0, 0.5])
W_FULL = np.where(RNG.uniform(size=(B, D)) < 0.3, 0.0, RNG.uniform(0.5, 2, (B, D)))


# tf.compat.v1.losses.compute_weighted_loss (and tf_slim's) casts the element losses to
# float32 before reducing, whatever the input dtype: float64 results agree to float32
# round-off only.
def close(a, b, rt=2e-6, at=1e-7, msg=""):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=rt, atol=at, err_msg=msg)


def tape(fn, pred, *rest):
    p = tf.Variable(np.asarray(pred, np.float64))
    with tf.GradientTape() as t:
        v = fn(p, *[tf.constant(r) for r in rest])
    return float(v.numpy()), t.gradient(v, p).numpy()


@pytest.fixture(autouse=True)
def scoped():
    with fl.LossCollection():
        yield


SLIM_CASES = [
    ("absolute_difference", (X, Y), {}),
    ("mean_squared_error", (X, Y), {}),
    ("log_loss", (P01, Y01), {"epsilon": 1e-5}),
    ("sigmoid_cross_entropy", (X, Y01), {"label_smoothing": 0.2}),
    ("mean_pairwise_squared_error", (X, Y), {}),
]


@pytest.mark.parametrize("w", [0.7, W_BATCH, W_FULL], ids=["scalar", "batch", "full"])
@pytest.mark.parametrize("case", SLIM_CASES, ids=[c[0] for c in SLIM_CASES])
def test_slim_against_tf_slim(case, w):
    tfs = pytest.importorskip("tf_slim")
    name, (a, b), kw = case
    if name == "mean_pairwise_squared_error" and np.ndim(w) == 2:
        pytest.skip("Slim's mpse takes per-sample weights only")
    ours, g = getattr(slim, name).value_and_grad(a, b, weights=w, **kw)
    ref, tg = tape(lambda p, q, ww: getattr(tfs.losses, name)(p, q, weights=ww, **kw), a, b,
                   np.asarray(w, np.float64))
    close(ours, ref, msg=name)
    close(g, tg, msg=name)


def test_slim_softmax_and_sparse():
    tfs = pytest.importorskip("tf_slim")
    C = 5
    x = RNG.normal(size=(B, C))
    k = RNG.integers(0, C, B)
    oh = np.eye(C)[k]
    v, g = slim.softmax_cross_entropy.value_and_grad(x, oh, weights=W_BATCH, label_smoothing=0.1)
    rv, rg = tape(lambda p, q, ww: tfs.losses.softmax_cross_entropy(p, q, weights=ww,
                                                                    label_smoothing=0.1),
                  x, oh, W_BATCH)
    close(v, rv)
    close(g, rg)
    v, g = slim.sparse_softmax_cross_entropy.value_and_grad(x, k, weights=W_BATCH)
    rv, rg = tape(lambda p, q, ww: tfs.losses.sparse_softmax_cross_entropy(p, q, weights=ww),
                  x, k, W_BATCH)
    close(v, rv)
    close(g, rg)


def test_slim_hinge_unreduced():
    tfs = pytest.importorskip("tf_slim")
    lab = RNG.integers(0, 2, (B, D)).astype(np.float64)
    v = slim.hinge_loss(X, lab)
    # tf_slim's hinge_loss builds float32 constants internally: feed it float32
    ref = tfs.losses.hinge_loss(tf.constant(X.astype(np.float32)),
                                tf.constant(lab.astype(np.float32))).numpy()
    close(v, ref, rt=1e-6, at=1e-6)


V1 = [
    # (fastloss core fn, kw, (pred, target), tf.compat.v1.losses fn(labels, predictions, weights))
    ("absolute_error", {}, (X, Y), lambda l, p, w: tf.compat.v1.losses.absolute_difference(l, p, w)),
    ("squared_error", {}, (X, Y), lambda l, p, w: tf.compat.v1.losses.mean_squared_error(l, p, w)),
    ("huber", {"delta": 0.8}, (X, Y),
     lambda l, p, w: tf.compat.v1.losses.huber_loss(l, p, w, delta=0.8)),
    ("binary_cross_entropy", {"eps": 1e-7, "clip": False}, (P01, Y01),
     lambda l, p, w: tf.compat.v1.losses.log_loss(l, p, w, epsilon=1e-7)),
]


@pytest.mark.parametrize("case", V1, ids=[c[0] for c in V1])
def test_core_against_tf_losses(case):
    """With weights of all non-zero entries, SUM_BY_NONZERO_WEIGHTS is fastloss's
    weighted sum divided by the element count."""
    name, kw, (p, t), tfn = case
    w = RNG.uniform(0.5, 2.0, (B, D))
    v, g = fl.value_and_grad(getattr(fl, name))(p, t, sample_weight=w, reduction="sum", **kw)
    ref, tg = tape(lambda pp, tt, ww: tfn(tt, pp, ww), p, t, w)
    close(float(v) / w.size, ref, msg=name)
    close(g / w.size, tg, msg=name)


def test_core_mpse_against_tf_losses():
    # per sample: TF's value of a one-row batch (pairs over n(n-1), as fastloss's core)
    v = fl.mean_pairwise_squared_error(X, Y, reduction="none")
    ref = [tf.compat.v1.losses.mean_pairwise_squared_error(tf.constant(Y[i:i + 1]),
                                                            tf.constant(X[i:i + 1])).numpy()
           for i in range(B)]
    close(v, ref)
    # (TF's value for the whole batch is not the mean of those per-row values: 14.5896
    # against 14.6239 for this X, Y; fastloss's "mean" is the mean of the rows)


def test_core_cosine_distance_against_tf_losses():
    a = X / np.linalg.norm(X, axis=1, keepdims=True)
    b = Y / np.linalg.norm(Y, axis=1, keepdims=True)
    v = fl.cosine_distance(a, b, reduction="mean")
    ref = tf.compat.v1.losses.cosine_distance(tf.constant(b), tf.constant(a), axis=1)
    close(v, ref.numpy())
