"""fastloss.prepare: equal to the checked call bit for bit; cheap checks that do raise."""
import numpy as np
import pytest

import fastloss as fl

RNG = np.random.default_rng(7)


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a, b, equal_nan=True), (a, b)
    ok = ~np.isnan(a)   # (signed zeros count; a NaN's sign bit carries no meaning)
    assert np.array_equal(np.signbit(a[ok]), np.signbit(b[ok]))


def _far(like):
    """A gradient buffer far (>= 256 KiB) from every other array.

    The kernels sum with reassociation allowed; when a store target lies within a few
    vector widths after an input in memory, LLVM's runtime alias check takes the scalar
    loop, which sums in another order (last-bit differences of a reduced value).  Both
    calls compared get such a buffer, so the comparison is bit for bit."""
    big = np.empty((1 << 17) + like.size, like.dtype)
    return big[1 << 16:(1 << 16) + like.size].reshape(like.shape)


def _close(a, b, ulps=8):
    """Values of allocating calls (their gradient buffer may sit anywhere)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_max_ulp(a, b, maxulp=ulps)


def _bce_target(shape):
    return (RNG.random(shape) > 0.5).astype(np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 10, 257])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_elementwise_bitwise_small(dtype, n, reduction):
    loss = fl.sigmoid_binary_cross_entropy
    x0 = RNG.standard_normal(n).astype(dtype)
    y = _bce_target(n)
    w = RNG.random(n)
    f = fl.prepare(loss, x0, y, sample_weight=w, reduction=reduction, pos_weight=2.0)
    vg = fl.value_and_grad(loss)
    for _ in range(3):
        x = RNG.standard_normal(n).astype(dtype)
        x[0] = np.nan if n > 1 else x[0]
        go, go2 = _far(x), _far(x)
        v, g = f(x, grad_out=go)
        assert g is go
        v2, g2 = vg(x, y, sample_weight=w, reduction=reduction, pos_weight=2.0, grad_out=go2)
        _same(v, v2)
        _same(g, g2)
        v3, g3 = f(x)                     # allocating: the gradient bit for bit
        _same(g3, g2)
        _close(v3, v2)


@pytest.mark.parametrize("name", ["huber", "logistic", "poisson_nll", "quantile"])
def test_elementwise_other_losses_2d(name):
    loss = getattr(fl, name)
    x = RNG.standard_normal((3, 4))
    y = np.sign(RNG.standard_normal((3, 4))) if name == "logistic" else RNG.random((3, 4))
    f = fl.prepare(loss, x, y[0])         # a broadcast target is bound (materialized)
    x2 = RNG.standard_normal((3, 4))
    v, g = f(x2, grad_out=_far(x2))
    v2, g2 = fl.value_and_grad(loss)(x2, y[0], grad_out=_far(x2))
    _same(v, v2)
    _same(g, g2)


def test_elementwise_matches_reference_formula():
    # an independent float64 reference: mean softplus(x) - y x, gradient (sigmoid(x) - y)/n
    x = RNG.standard_normal(10)
    y = _bce_target(10)
    v, g = fl.prepare(fl.sigmoid_binary_cross_entropy, x, y)(x)
    ref = np.mean(np.logaddexp(0, x) - y * x)
    assert abs(v - ref) <= 1e-15 * max(1, abs(ref)) * 10
    np.testing.assert_allclose(g, (1 / (1 + np.exp(-x)) - y) / 10, rtol=1e-14, atol=1e-17)


def test_target_is_bound_by_value():
    x = RNG.standard_normal(10)
    y = _bce_target(10)
    f = fl.prepare(fl.sigmoid_binary_cross_entropy, x, y)
    expect = fl.value_and_grad(fl.sigmoid_binary_cross_entropy)(x, y.copy(), grad_out=_far(x))
    y[:] = 0.5
    v, g = f(x, grad_out=_far(x))
    _same(v, expect[0])
    _same(g, expect[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 20, 200])
def test_integer_softmax_ce_bitwise(dtype, rows):
    loss = fl.softmax_cross_entropy_with_integer_labels
    K = 5
    L0 = RNG.standard_normal((rows, K)).astype(dtype)
    lab = RNG.integers(0, K, rows)
    lab[0] = -100                                   # an ignored row
    cw = RNG.random(K) + 0.5
    sw = RNG.random(rows)
    kw = dict(class_weight=cw, label_smoothing=0.1, sample_weight=sw)
    f = fl.prepare(loss, L0, lab, **kw)
    L = RNG.standard_normal((rows, K)).astype(dtype)
    go = _far(L)
    v, g = f(L, grad_out=go)
    assert g is go
    v2, g2 = fl.value_and_grad(loss)(L, lab, grad_out=_far(L), **kw)
    _same(v, v2)
    _same(g, g2)
    v3, g3 = f(L)
    _same(g3, g2)
    _close(v3, v2)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "kl_divergence", "cosine_embedding",
                                  "triplet_margin", "mean_pairwise_squared_error"])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_other_rowwise_bitwise(name, reduction):
    loss = getattr(fl, name)
    info = fl.LOSSES[name]
    shape = (6, 4)
    args = []
    for i, n in enumerate(info.inputs):
        if n == "labels" and name == "cosine_embedding":
            args.append(np.sign(RNG.standard_normal(6)))
        elif n in ("labels", "target") and name in ("softmax_cross_entropy", "kl_divergence"):
            p = RNG.random(shape)
            args.append(p / p.sum(-1, keepdims=True))
        else:
            args.append(RNG.standard_normal(shape))
    f = fl.prepare(loss, *args, reduction=reduction)
    x = RNG.standard_normal(shape)
    v, g = f(x, grad_out=_far(x))
    v2, g2 = fl.value_and_grad(loss)(x, *args[1:], reduction=reduction, grad_out=_far(x))
    _same(v, v2)
    _same(g, g2)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_parallel_sizes_bitwise(n_threads):
    # above the elementwise serial threshold: the prepared call takes the launcher's path
    n = (1 << 16) + 3
    x = RNG.standard_normal(n)
    y = RNG.random(n)
    f = fl.prepare(fl.huber, x, y, delta=0.5, n_threads=n_threads)
    v, g = f(x, grad_out=_far(x))
    v2, g2 = fl.value_and_grad(fl.huber)(x, y, delta=0.5, n_threads=n_threads,
                                         grad_out=_far(x))
    _same(v, v2)
    _same(g, g2)


def test_wrong_pred_raises():
    x = RNG.standard_normal(10)
    f = fl.prepare(fl.sigmoid_binary_cross_entropy, x, _bce_target(10))
    with pytest.raises(ValueError, match="sigmoid_binary_cross_entropy: pred must have"):
        f(np.zeros(11))
    with pytest.raises(ValueError, match="pred must have the prepared shape"):
        f(np.zeros(10, np.float32))
    with pytest.raises(ValueError, match="pred must have"):
        f(np.zeros((2, 5)))
    with pytest.raises(TypeError, match="pred must be a numpy.ndarray"):
        f(list(x))
    with pytest.raises(ValueError, match="pred must be C-contiguous"):
        f(np.zeros(20)[::2])
    with pytest.raises(ValueError, match="grad_out must have"):
        f(x, grad_out=np.empty(9))
    ro = np.empty(10)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="grad_out must be writable"):
        f(x, grad_out=ro)
    with pytest.raises(ValueError, match="grad_out must not share memory"):
        f(x, grad_out=x)
    L = RNG.standard_normal((20, 5))
    g = fl.prepare(fl.softmax_cross_entropy_with_integer_labels, L, RNG.integers(0, 5, 20))
    with pytest.raises(ValueError, match="logits|pred"):
        g(np.zeros((20, 4)))


def test_prepare_validates_like_the_checked_call():
    x = RNG.standard_normal(10)
    with pytest.raises(ValueError, match="sigmoid_binary_cross_entropy: target"):
        fl.prepare(fl.sigmoid_binary_cross_entropy, x, np.full(10, 2.0))
    with pytest.raises(ValueError, match="reduction"):
        fl.prepare(fl.huber, x, x, reduction="avg")
    with pytest.raises(ValueError, match="delta"):
        fl.prepare(fl.huber, x, x, delta=-1.0)
    with pytest.raises(ValueError, match="labels"):
        fl.prepare(fl.softmax_cross_entropy_with_integer_labels, np.zeros((3, 4)),
                   np.array([0, 1, 7]))
    with pytest.raises(TypeError, match="pred must be a float32 or float64"):
        fl.prepare(fl.huber, np.arange(3), np.zeros(3))
    with pytest.raises(TypeError, match="not supported"):
        fl.prepare(fl.ctc_loss, np.zeros((2, 1, 3)), np.zeros((1, 1), np.int64),
                   np.array([2]), np.array([1]))
    with pytest.raises(ValueError, match="class axis last"):
        fl.prepare(fl.softmax_cross_entropy_with_integer_labels, np.zeros((3, 4)),
                   np.zeros(4, np.int64), axis=0)


def test_pred_domain_error_raises_in_kernel():
    p = np.full(4, 0.5)
    f = fl.prepare(fl.binary_cross_entropy, p, np.array([0.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="binary_cross_entropy"):
        f(np.array([0.5, 1.5, 0.5, 0.5]))


def test_empty():
    f = fl.prepare(fl.huber, np.zeros(0), np.zeros(0), reduction="sum")
    v, g = f(np.zeros(0))
    v2, g2 = fl.value_and_grad(fl.huber)(np.zeros(0), np.zeros(0), reduction="sum")
    _same(v, v2)
    _same(g, g2)
