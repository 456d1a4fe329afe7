"""fastloss against optax (JAX, float64 via jax_enable_x64): values and jax.grad gradients.

Optional (skipped without jax/optax); run by scripts/compare_peers/run.sh.  optax losses
return per-element (or per-row) values; fastloss is called with ``reduction="none"`` and
the gradient of the sum is compared with ``jax.grad`` of the sum.
"""
import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import fastloss as fl  # noqa: E402

RNG = np.random.default_rng(99)
N, C = 6, 5
X = RNG.normal(size=N) * 2
Y = RNG.normal(size=N)
Y01 = RNG.uniform(size=N)
PM = np.where(RNG.random(N) < 0.5, -1.0, 1.0)
LOGITS = RNG.normal(size=(N, C)) * 2
PROBS = RNG.dirichlet(np.ones(C), size=N)
LABELS = RNG.integers(0, C, N)


def close(a, b, rt=1e-10, at=1e-12, msg=""):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=rt, atol=at, err_msg=msg)


def jvg(fn, *inputs, wrt=0):
    arrs = [jnp.asarray(a) for a in inputs]
    v = fn(*arrs)
    g = jax.grad(lambda *a: jnp.sum(fn(*a)), argnums=wrt)(*arrs)
    return np.asarray(v), (np.asarray(g) if isinstance(wrt, int) else [np.asarray(x) for x in g])


def _opt(name):
    f = getattr(optax, name, None) or getattr(getattr(optax, "losses", None), name, None)
    if f is None:
        pytest.skip(f"optax has no {name}")
    return f


CASES = [
    ("huber", {"delta": 0.7}, (X, Y), lambda p, t: _opt("huber_loss")(p, t, delta=0.7)),
    ("squared_error", {}, (X, Y), lambda p, t: 2 * _opt("l2_loss")(p, t)),   # l2 = ½ d²
    ("squared_error", {}, (X, Y), lambda p, t: _opt("squared_error")(p, t)),
    ("log_cosh", {}, (X, Y), lambda p, t: _opt("log_cosh")(p, t)),
    ("sigmoid_binary_cross_entropy", {}, (X, Y01),
     lambda p, t: _opt("sigmoid_binary_cross_entropy")(p, t)),
    ("sigmoid_focal", {"alpha": 0.25, "gamma": 2.0}, (X, Y01),
     lambda p, t: _opt("sigmoid_focal_loss")(p, t, alpha=0.25, gamma=2.0)),
    ("hinge", {}, (X, PM), lambda p, t: _opt("hinge_loss")(p, t)),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_elementwise_against_optax(case):
    name, kw, inputs, ofn = case
    v, g = fl.value_and_grad(getattr(fl, name))(*inputs, reduction="none", **kw)
    ov, og = jvg(ofn, *inputs)
    close(v, ov, msg=name)
    close(g, og, msg=name)


def test_softmax_cross_entropy_dense_and_integer():
    v, (gx, gy) = fl.value_and_grad(fl.softmax_cross_entropy, (0, 1))(LOGITS, PROBS,
                                                                      reduction="none")
    ov, (ogx, ogy) = jvg(_opt("softmax_cross_entropy"), LOGITS, PROBS, wrt=(0, 1))
    close(v, ov)
    close(gx, ogx)
    close(gy, ogy)
    v, g = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(
        LOGITS, LABELS, reduction="none")
    ov, og = jvg(lambda x: _opt("softmax_cross_entropy_with_integer_labels")(
        x, jnp.asarray(LABELS)), LOGITS)
    close(v, ov)
    close(g, og)


def test_smooth_labels_matches_label_smoothing():
    s = 0.2
    ys = np.asarray(_opt("smooth_labels")(jnp.asarray(np.eye(C)[LABELS]), s))
    a = fl.softmax_cross_entropy(LOGITS, np.eye(C)[LABELS], label_smoothing=s, reduction="none")
    b = fl.softmax_cross_entropy(LOGITS, ys, reduction="none")
    close(a, b)


def test_kl_divergence():
    lp = LOGITS - np.log(np.exp(LOGITS).sum(-1, keepdims=True))
    v, g = fl.value_and_grad(fl.kl_divergence)(lp, PROBS, reduction="none")
    ov, og = jvg(lambda a: _opt("kl_divergence")(a, jnp.asarray(PROBS)), lp)
    close(v, ov)
    close(g, og)


def test_cosine_distance_on_unit_vectors():
    # optax normalizes; fastloss (TF-Slim semantics) does not: compare on unit vectors
    a = LOGITS / np.linalg.norm(LOGITS, axis=-1, keepdims=True)
    b = PROBS / np.linalg.norm(PROBS, axis=-1, keepdims=True)
    close(fl.cosine_distance(a, b, reduction="none"),
          np.asarray(_opt("cosine_distance")(jnp.asarray(a), jnp.asarray(b))), rt=1e-9)


def test_ctc_mean_batch_and_gradient():
    Nb, Tn, Cc = 3, 10, 5
    x = RNG.normal(size=(Nb, Tn, Cc)) * 2
    il = np.array([10, 7, 9])
    lab = np.array([[1, 2, 3], [4, 4, 0], [2, 1, 0]])
    ll = np.array([3, 2, 2])
    v, g = fl.value_and_grad(fl.ctc_loss)(x, lab, il, ll, reduction="none")
    lpad = (np.arange(Tn)[None, :] >= il[:, None]).astype(np.float64)
    ypad = (np.arange(3)[None, :] >= ll[:, None]).astype(np.float64)
    ctc = _opt("ctc_loss")
    ov, og = jvg(lambda z: ctc(z, jnp.asarray(lpad), jnp.asarray(lab), jnp.asarray(ypad),
                               blank_id=0), x)
    close(v, ov, rt=1e-9)
    close(g, og, rt=1e-8, at=1e-10)
