"""Trust at the edges: buffers that overlap inputs, weights, masked arrays, errors after a
buffer was given, a cache that cannot be written, and a sweep of bad arguments over every
public function (each must raise TypeError/ValueError naming the argument).

References are float64 NumPy formulas on copies of the inputs made before the call.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss as fl
from fastloss import gluon, slim

RNG = np.random.default_rng(1010)


def sq_ref(x, y):
    return (np.asarray(x, np.float64) - y) ** 2


# ------------------------------------------------------------- overlapping buffers
def test_partially_overlapping_out_is_computed_through_a_temporary():
    buf = np.linspace(-2, 2, 11)
    expect = sq_ref(buf[:-1].copy(), 0.5)
    r = fl.squared_error(buf[:-1], 0.5, reduction="none", out=buf[1:])
    np.testing.assert_allclose(r, expect, rtol=1e-15)
    np.testing.assert_allclose(buf[1:], expect, rtol=1e-15)
    assert np.shares_memory(r, buf)          # the caller's buffer holds the result
    # the other direction (out starts before pred)
    buf = np.linspace(-2, 2, 11)
    expect = sq_ref(buf[1:].copy(), 0.5)
    fl.squared_error(buf[1:], 0.5, reduction="none", out=buf[:-1])
    np.testing.assert_allclose(buf[:-1], expect, rtol=1e-15)


def test_partially_overlapping_grad_and_hess_out():
    x = np.linspace(-3, 3, 13)
    y = np.linspace(1, 2, 12)
    ref_x = x[:-1].copy()
    d = ref_x - y
    g_ref = np.where(np.abs(d) <= 1, d, np.sign(d))
    h_ref = (np.abs(d) <= 1).astype(float)
    g, h = fl.grad_and_hessian(fl.huber)(x[:-1], y, reduction="sum", grad_out=x[1:],
                                        hess_out=np.empty(12))
    np.testing.assert_allclose(g, g_ref, rtol=1e-15)
    np.testing.assert_allclose(x[1:], g_ref, rtol=1e-15)
    np.testing.assert_array_equal(h, h_ref)
    # a gradient buffer overlapping the target
    t = np.linspace(0, 1, 11)
    p = RNG.normal(size=10)
    ref = 2 * (p - t[1:])
    fl.value_and_grad(fl.squared_error)(p, t[1:], reduction="sum", grad_out=t[:-1])
    np.testing.assert_allclose(t[:-1], ref, rtol=1e-15)


def test_overlap_in_the_parallel_kernel():
    n = 1 << 17                                   # above PARALLEL_MIN: threads, blocks
    buf = RNG.normal(size=n + 1)
    expect = sq_ref(buf[1:].copy(), 0.25)
    fl.squared_error(buf[1:], 0.25, reduction="none", out=buf[:-1])
    np.testing.assert_allclose(buf[:-1], expect, rtol=1e-15)


def test_exact_in_place_still_writes_in_place():
    x = np.linspace(-2, 2, 9)
    expect = sq_ref(x.copy(), 1.0)
    r = fl.squared_error(x, 1.0, reduction="none", out=x)
    assert r is x
    np.testing.assert_allclose(x, expect, rtol=1e-15)
    x = np.linspace(-2, 2, 9)
    g_ref = 2 * (x - 1.0)
    _, g = fl.value_and_grad(fl.squared_error)(x, 1.0, reduction="sum", grad_out=x)
    assert g is x
    np.testing.assert_allclose(x, g_ref, rtol=1e-15)


def test_buffers_sharing_memory_with_each_other_raise():
    x = np.linspace(-1, 1, 5)
    b = np.empty(5)
    with pytest.raises(ValueError, match="out.*grad_out.*share memory"):
        fl.value_and_grad(fl.squared_error)(x, 0.0, reduction="none", out=b, grad_out=b)
    with pytest.raises(ValueError, match="grad_out.*hess_out.*share memory"):
        fl.grad_and_hessian(fl.squared_error)(x, 0.0, grad_out=b, hess_out=b)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_rowwise_overlapping_buffers():
    N, C = 4, 5
    logits = RNG.normal(size=(N, C))
    labels = np.array([0, 4, 2, 1])
    lse = np.log(np.exp(logits).sum(-1))
    loss_ref = lse - logits[np.arange(N), labels]
    grad_ref = _softmax(logits) - np.eye(C)[labels]
    vg = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    # the gradient buffer shifted by one element against the logits
    mem = np.zeros(N * C + 1)
    mem[:-1] = logits.reshape(-1)
    _, g = vg(mem[:-1].reshape(N, C), labels, reduction="sum",
              grad_out=mem[1:].reshape(N, C))
    np.testing.assert_allclose(g, grad_ref, rtol=1e-12, atol=1e-15)
    # per-row losses stored over the first row of the logits
    mem = logits.copy()
    v = fl.softmax_cross_entropy_with_integer_labels(mem, labels, reduction="none",
                                                     out=mem.reshape(-1)[:N])
    np.testing.assert_allclose(v, loss_ref, rtol=1e-12)
    # exactly in place keeps working
    mem = logits.copy()
    _, g = vg(mem, labels, reduction="sum", grad_out=mem)
    assert g is mem
    np.testing.assert_allclose(mem, grad_ref, rtol=1e-12, atol=1e-15)
    # dense labels: the gradient of the logits written over the labels
    y = _softmax(RNG.normal(size=(N, C)))
    ref = _softmax(logits) - y
    yy = y.copy()
    _, g = fl.value_and_grad(fl.softmax_cross_entropy)(logits, yy, reduction="sum",
                                                       grad_out=yy)
    np.testing.assert_allclose(g, ref, rtol=1e-12, atol=1e-15)
    buf = np.empty(N * C)
    with pytest.raises(ValueError, match="share memory"):
        vg(logits, labels, reduction="none", out=buf[:N], grad_out=buf.reshape(N, C))


def test_ctc_grad_out_overlapping_logits():
    x = RNG.normal(size=(2, 6, 4))
    labels, il, ll = np.array([[1, 2], [3, 0]]), np.array([6, 5]), np.array([2, 1])
    _, g_ref = fl.value_and_grad(fl.ctc_loss)(x, labels, il, ll, reduction="sum")
    mem = np.zeros(x.size + 3)
    mem[:x.size] = x.reshape(-1)
    _, g = fl.value_and_grad(fl.ctc_loss)(mem[:x.size].reshape(x.shape), labels, il, ll,
                                          reduction="sum",
                                          grad_out=mem[3:].reshape(x.shape))
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------ weights
def test_negative_weight_next_to_nan_is_refused():
    with pytest.raises(ValueError, match="sample_weight must be non-negative, found -1"):
        fl.huber(np.linspace(-1, 1, 6), np.zeros(6),
                 sample_weight=[np.nan, -1, 1, 1, 1, 1], reduction="none")
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fl.softmax_cross_entropy_with_integer_labels(np.zeros((3, 4)), [0, 1, 2],
                                                     sample_weight=[np.nan, -2.0, 1.0])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fl.cosine_distance(np.ones((3, 2)), np.ones((3, 2)), sample_weight=[-1, np.nan, 1])
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fl.ctc_loss(np.zeros((2, 3, 3)), [[1], [2]], [3, 3], [1, 1],
                    sample_weight=[np.nan, -1.0])


def test_nan_weight_gives_nan_as_numpy():
    x = np.linspace(-1, 1, 3)
    w = np.array([np.nan, 1.0, 2.0])
    v = fl.squared_error(x, 0.0, sample_weight=w, reduction="none")
    np.testing.assert_array_equal(np.isnan(v), [True, False, False])
    np.testing.assert_allclose(v[1:], w[1:] * x[1:] ** 2)
    assert np.isnan(fl.squared_error(x, 0.0, sample_weight=w))            # as np.average
    assert np.isnan(np.average(x ** 2, weights=w))
    r = fl.cosine_distance(np.ones((2, 2)), np.ones((2, 2)), sample_weight=[np.nan, 1.0],
                           reduction="none")
    assert np.isnan(r[0]) and r[1] == -1.0


# ------------------------------------------------------------------ masked arrays
MASKED = np.ma.array([0.5, 100.0, 2.0], mask=[0, 1, 0])


@pytest.mark.parametrize("call", [
    lambda: fl.huber(MASKED, np.zeros(3)),
    lambda: fl.huber(np.zeros(3), MASKED),
    lambda: fl.huber(np.zeros(3), np.zeros(3), sample_weight=MASKED),
    lambda: fl.value_and_grad(fl.huber)(MASKED, np.zeros(3)),
    lambda: fl.softmax_cross_entropy_with_integer_labels(np.ma.zeros((3, 2)), [0, 1, 0]),
    lambda: fl.softmax_cross_entropy_with_integer_labels(
        np.zeros((2, 3)), np.ma.array([0, 1], mask=[0, 1])),
    lambda: fl.ctc_loss(np.ma.zeros((1, 3, 3)), [[1]], [3], [1]),
    lambda: fl.ctc_loss(np.zeros((1, 3, 3)), [[1]], np.ma.array([3]), [1]),
    lambda: gluon.L2Loss()(MASKED, np.zeros(3)),
    lambda: gluon.L2Loss().loss_and_grad(np.zeros(3), MASKED),
    lambda: gluon.SoftmaxCELoss()(np.zeros((3, 2)), np.ma.array([0, 1, 0])),
    lambda: slim.mean_squared_error(MASKED, np.zeros(3)),
    lambda: slim.mean_squared_error(np.zeros(3), np.zeros(3), weights=MASKED),
    lambda: slim.mean_squared_error.value_and_grad(MASKED, np.zeros(3)),
    lambda: fl.huber(np.zeros(3), np.zeros(3), reduction="none", out=np.ma.zeros(3)),
])
def test_masked_arrays_are_refused(call):
    with fl.LossCollection():
        with pytest.raises(TypeError, match="masked array"):
            call()


# -------------------------------------------------- errors leave buffers untouched
def test_errors_raised_before_the_kernel_leave_buffers_untouched():
    out = np.full(3, 7.0)
    g = np.full(3, 7.0)
    with pytest.raises(ValueError, match="sample_weight"):
        fl.value_and_grad(fl.huber)(np.zeros(3), np.zeros(3), reduction="none", out=out,
                                    grad_out=g, sample_weight=[1.0, -1.0, 1.0])
    assert (out == 7).all() and (g == 7).all()
    gl = np.full((2, 3), 7.0)
    ol = np.full(2, 7.0)
    with pytest.raises(ValueError, match="labels"):
        fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(
            np.zeros((2, 3)), [0, 5], reduction="none", out=ol, grad_out=gl)
    assert (gl == 7).all() and (ol == 7).all()
    gc = np.full((1, 3, 3), 7.0)
    with pytest.raises(ValueError, match="labels"):
        fl.value_and_grad(fl.ctc_loss)(np.zeros((1, 3, 3)), [[4]], [3], [1], grad_out=gc)
    assert (gc == 7).all()


@pytest.mark.parametrize("name, y", [
    ("hinge", [1.0, -1.0, 0.0, 1.0]), ("logistic", [1.0, 1.0, 2.0, -1.0]),
    ("squared_hinge", [1.0, np.inf, 1.0, -1.0]),
    ("sigmoid_binary_cross_entropy", [0.0, 1.0, 1.5, 0.5]),
    ("binary_cross_entropy", [0.0, -0.1, 1.0, 0.5]),
])
def test_domain_errors_leave_buffers_untouched(name, y):
    f = getattr(fl, name)
    x = np.array([0.1, 0.4, 0.6, 0.9])
    out, g = np.full(4, 3.0), np.full(4, 4.0)
    with pytest.raises(ValueError, match="target"):
        fl.value_and_grad(f)(x, np.array(y), reduction="none", out=out, grad_out=g)
    assert (out == 3).all() and (g == 4).all()
    if name == "binary_cross_entropy":          # the prediction's domain too
        with pytest.raises(ValueError, match="pred"):
            fl.grad_and_hessian(f)(np.array([0.1, 1.2, 0.5, 0.5]), np.full(4, 0.5),
                                   grad_out=g, hess_out=out)
        assert (out == 3).all() and (g == 4).all()
    # NaN labels are not domain errors (NaN in, NaN out), with or without buffers
    yn = np.array([1.0, np.nan, 1.0, 1.0]) if name in ("hinge", "logistic", "squared_hinge") \
        else np.array([1.0, np.nan, 0.0, 0.5])
    v = f(x, yn, reduction="none", out=out)
    assert np.isnan(v[1]) and np.isfinite(v[[0, 2, 3]]).all()


@pytest.mark.parametrize("name, good, bad", [
    ("logistic", (1.0, -1.0), (0.5, 2.0, 0.0)),
    ("sigmoid_binary_cross_entropy", (0.0, 0.3, 1.0), (1.5, -0.25)),
    ("binary_cross_entropy", (0.0, 0.5, 1.0), (-0.1, 1.01)),
])
def test_domain_checks_of_large_arrays(name, good, bad):
    """From 65 536 elements the pre-kernel domain check is one compiled pass: every kind of
    invalid entry, anywhere, is found and counted; NaN passes; buffers stay untouched."""
    n = 70_003
    f = getattr(fl, name)
    x = RNG.uniform(0.05, 0.95, n)
    y = np.resize(np.array(good), n)
    y[::1000] = np.nan
    g = np.full(n, 4.0)
    v, _ = fl.value_and_grad(f)(x, y, grad_out=g)
    assert np.isnan(v)
    for b in bad:
        for where in ((0,), (n - 1,), (2047, 2048, 40_000)):
            yb = y.copy()
            yb[list(where)] = b
            g[:] = 4.0
            with pytest.raises(ValueError, match=f"{len(where)} element"):
                fl.value_and_grad(f)(x, yb, grad_out=g)
            assert (g == 4).all()
    if name == "binary_cross_entropy":          # the prediction's domain too
        xb = x.copy()
        xb[n // 2] = 1.5
        with pytest.raises(ValueError, match="pred and target"):
            fl.grad(f)(xb, np.full(n, 0.5), grad_out=g)
        assert (g == 4).all()


def test_rowwise_probability_errors_leave_buffers_untouched():
    logits = RNG.normal(size=(2, 3))
    y = np.array([[0.5, 0.5, 0.0], [1.2, -0.2, 0.0]])
    out, g = np.full(2, 3.0), np.full((2, 3), 4.0)
    for f in (fl.softmax_cross_entropy, fl.softmax_kl_divergence):
        with pytest.raises(ValueError, match="non-negative"):
            fl.value_and_grad(f)(logits, y, reduction="none", out=out, grad_out=g)
        assert (out == 3).all() and (g == 4).all()
    with pytest.raises(ValueError, match="non-negative"):
        fl.value_and_grad(fl.kl_divergence)(np.log(np.full((2, 3), 1 / 3)), y,
                                            reduction="none", out=out, grad_out=g)
    assert (out == 3).all() and (g == 4).all()
    # log targets may be negative
    v = fl.kl_divergence(np.log(np.full((2, 3), 1 / 3)), np.log(np.full((2, 3), 1 / 3)),
                         log_target=True, reduction="none", out=out)
    np.testing.assert_allclose(v, 0.0, atol=1e-12)


def test_kernel_domain_error_through_a_temporary_leaves_the_buffer_untouched():
    # a partially overlapping buffer runs through a temporary: nothing is copied back
    mem = np.linspace(-1, 1, 6)
    before = mem.copy()
    with pytest.raises(ValueError, match="target"):
        fl.hinge(mem[:-1], np.array([1.0, -1.0, 0.5, 1.0, 1.0]), reduction="none",
                 out=mem[1:])
    np.testing.assert_array_equal(mem, before)


# --------------------------------------------------------------- core parameters
def test_argnums_must_be_integers():
    with pytest.raises(TypeError, match="huber: argnums must be an integer"):
        fl.value_and_grad(fl.huber, 0.0)
    with pytest.raises(TypeError, match="argnums"):
        fl.value_and_grad(fl.huber, "0")
    with pytest.raises(TypeError, match="argnums"):
        fl.value_and_grad(fl.triplet_margin, (0, 1.0))
    with pytest.raises(TypeError, match="argnums"):
        fl.value_and_grad(fl.triplet_margin, ())
    with pytest.raises(TypeError, match="argnums"):
        fl.value_and_grad(fl.huber, True)
    v, g = fl.value_and_grad(fl.squared_error, np.int64(0))(np.ones(2), np.zeros(2),
                                                          reduction="sum")
    assert v == 2.0 and (g == 2).all()


def test_numpy_bools_are_bools_and_numbers_are_not():
    p, y = np.array([0.2, 0.7]), np.array([0.0, 1.0])
    ref = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert fl.binary_cross_entropy(p, y, clip=np.True_) == pytest.approx(ref, rel=1e-6)
    assert fl.binary_cross_entropy(p, y, clip=np.True_) == fl.binary_cross_entropy(
        p, y, clip=True)
    lam = np.array([0.5, 2.0])
    ref = np.mean(np.exp(lam) - y * lam)
    assert fl.poisson_nll(lam, y, log_input=np.True_) == pytest.approx(ref, rel=1e-12)
    for bad in (2, 0, 1, 1.0, "yes", None):
        with pytest.raises(TypeError, match="clip must be a bool"):
            fl.binary_cross_entropy(p, y, clip=bad)
        with pytest.raises(TypeError, match="log_input must be a bool"):
            fl.poisson_nll(lam, y, log_input=bad)
    for bad in (np.True_, True, 1 + 0j, np.complex128(1), "1", None, [1.0], np.ones(2)):
        with pytest.raises(TypeError, match="delta must be a real number"):
            fl.huber(p, y, delta=bad)
    assert fl.huber(p, y, delta=np.float32(1.0)) == fl.huber(p, y, delta=np.array(1.0))


def test_uint64_lengths_report_the_real_value():
    big = np.array([2 ** 64 - 1], dtype=np.uint64)
    with pytest.raises(ValueError, match="input_lengths.*18446744073709551615"):
        fl.ctc_loss(np.zeros((1, 3, 3)), [[1]], big, [1])
    with pytest.raises(ValueError, match="label_lengths.*18446744073709551615"):
        fl.ctc_loss(np.zeros((1, 3, 3)), [[1]], [3], big)
    with pytest.raises(ValueError, match="input_lengths.*18446744073709551615"):
        fl.ctc_greedy_decode(np.zeros((1, 3, 3)), big)


# ----------------------------------------------------------------------- cache
_CACHE_PROBE = textwrap.dedent("""
    import errno, warnings
    import numpy as np
    import numba.core.caching as caching
    MODE = %r
    if MODE == "enospc":
        def save(self, key, data):
            raise OSError(errno.ENOSPC, "No space left on device")
        caching.IndexDataCacheFile.save = save
    else:   # no cache location at all (for the kernels cpu_kernel makes)
        def init(self, py_func):
            raise RuntimeError("cannot cache function %%r: no locator available" %% py_func)
        caching.FunctionCache.__init__ = init
    import fastloss
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = fastloss.squared_error(np.array([1.0, 3.0]), np.zeros(2))
        b = fastloss.absolute_error(np.array([1.0, 3.0]), np.zeros(2))
    msgs = [str(x.message) for x in w if "kernel cache" in str(x.message)]
    print(a, b, len(msgs), msgs[0] if msgs else "")
""")


@pytest.mark.parametrize("mode", ["enospc", "nolocator"])
def test_unwritable_cache_costs_compile_time_only(tmp_path, mode):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", _CACHE_PROBE % mode], env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    a, b, n, *msg = r.stdout.split(maxsplit=3)
    assert float(a) == 5.0 and float(b) == 2.0
    assert n == "1"                                   # one warning per process
    assert "NUMBA_CACHE_DIR" in msg[0]
    if mode == "enospc":
        assert "No space left" in msg[0]


# ---------------------------------------------------------- sweep: every function
X2 = np.array([[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]])
VALID = {
    "pred": np.array([0.2, 0.7]), "target": np.array([1.0, 1.0]),
}
ROW_INPUTS = {
    "softmax_cross_entropy": (X2, X2), "softmax_kl_divergence": (X2, X2),
    "softmax_cross_entropy_with_integer_labels": (X2, np.array([0, 2])),
    "kl_divergence": (np.log(X2), X2), "multiclass_hinge": (X2, np.array([1, 0])),
    "cosine_embedding": (X2, X2[::-1].copy(), np.array([1.0, -1.0])),
    "cosine_distance": (X2, X2), "triplet_margin": (X2, X2 * 2, X2 * 3),
    "mean_pairwise_squared_error": (X2, X2 * 2),
    "nll_loss": (np.log(X2), np.array([0, 2])), "categorical_hinge": (X2, X2),
    "poly1_softmax_cross_entropy": (X2, X2), "multilabel_soft_margin": (X2, X2),
    "categorical_focal_cross_entropy": (X2, np.array([0, 2])),
    "multilabel_margin": (X2, np.array([[0, -1, 0], [2, 1, -1]])),
    "multiclass_sparsemax_loss": (X2, np.array([0, 2])), "dice": (X2, X2),
    "tversky": (X2, X2),
}
CTC_INPUTS = (np.zeros((2, 4, 3)), np.array([[1, 2], [2, 0]]), np.array([4, 3]),
              np.array([2, 1]))


VALID3 = {"gaussian_nll": (X2[0], X2[1], np.array([0.5, 1.0, 2.0])),
          "margin_ranking": (X2[0], X2[1], np.array([1.0, -1.0, 1.0]))}


def valid_inputs(info):
    if info.kind == "elementwise" and info.name in VALID3:
        return VALID3[info.name]
    if info.kind == "elementwise":
        return (VALID["pred"], VALID["target"])
    if info.kind == "ctc":
        return CTC_INPUTS
    if info.kind == "metric":
        return METRIC_INPUTS[info.name]
    return ROW_INPUTS[info.name]


_LAB2 = np.array([0, 0])   # the metric-learning losses (tests/test_metric.py)
METRIC_INPUTS = {"contrastive": (np.array([1, 0]), X2, X2 + 1), "npairs": (_LAB2, X2, X2 + 1),
                 "ntxent": (X2, _LAB2), "triplet_semihard": (_LAB2, X2),
                 "lifted_struct": (_LAB2, X2)}


BAD_ARRAYS = [np.array(["a", "b"]), None, np.array([1 + 1j, 2]),
              np.array([1, "a"], dtype=object), [[1.0, 2.0], [3.0]], "abc", {"a": 1}]


def _bad_values(default):
    if isinstance(default, bool):
        return ["a", None, 2, 0, 1.0, [True]]
    if isinstance(default, int):
        return [1.5, "1", None, True, np.True_, 1 + 0j, [0]]
    if isinstance(default, float):
        return ["a", None, 1 + 2j, np.complex64(1), [1.0, 2.0], np.True_, True, object()]
    if isinstance(default, str):
        return [1, None, "nope", b"NTC"]
    return ["a", np.array(["x", "y", "z"]), 1 + 1j, object()]   # array params (None default)


def _expect_named(call, name):
    try:
        call()
    except (TypeError, ValueError) as e:
        assert name in str(e), f"message does not name {name!r}: {e}"
        return
    except Exception as e:  # noqa: BLE001 - the point of the sweep
        pytest.fail(f"{type(e).__name__} instead of TypeError/ValueError: {e}")
    pytest.fail(f"no error for a bad {name}")


@pytest.mark.parametrize("name", sorted(fl.LOSSES))
def test_sweep_bad_inputs_and_parameters(name):
    info = fl.LOSSES[name]
    fn = info.func
    args = valid_inputs(info)
    fn(*args)                                  # the valid call works
    for i, inp in enumerate(info.inputs):
        for bad in BAD_ARRAYS:
            a = list(args)
            a[i] = bad
            _expect_named(lambda: fn(*a), inp)
    for p, default in info.params.items():
        for bad in _bad_values(default):
            if isinstance(bad, list) and p in getattr(info.spec, "per_element", ()):
                continue    # an array parameter: [1.0, 2.0] may be valid (broadcast to pred)
            _expect_named(lambda: fn(*args, **{p: bad}), p)
    for bad in (["a", "b"], np.array([1 + 1j, 1]), np.array([None, 1], dtype=object), "w"):
        _expect_named(lambda: fn(*args, sample_weight=bad), "sample_weight")
    for bad in ("avg", None, 1, ["mean"]):
        _expect_named(lambda: fn(*args, reduction=bad), "reduction")
    for bad in ("tpu", None, 0):
        _expect_named(lambda: fn(*args, device=bad), "device")
    if "out" in info.common:
        for bad in ("a", [0.0, 0.0], np.empty(7), np.empty(2, np.float32)):
            _expect_named(lambda: fn(*args, reduction="none", out=bad), "out")


GLUON = {
    "L1Loss": ((X2, X2), {}), "L2Loss": ((X2, X2), {}), "HuberLoss": ((X2, X2), {"rho": 1}),
    "SigmoidBCELoss": ((X2, np.ones_like(X2)), {"from_sigmoid": False}),
    "SoftmaxCELoss": ((X2, np.array([0, 2])), {"axis": -1, "sparse_label": True,
                                               "from_logits": False}),
    "HingeLoss": ((X2, np.ones_like(X2)), {"margin": 1}),
    "SquaredHingeLoss": ((X2, np.ones_like(X2)), {"margin": 1}),
    "LogisticLoss": ((X2, np.ones_like(X2)), {"label_format": "signed"}),
    "KLDivLoss": ((np.log(X2), X2), {"from_logits": True, "axis": -1}),
    "TripletLoss": ((X2, X2 * 2, X2 * 3), {"margin": 1}),
    "CosineEmbeddingLoss": ((X2, X2 * 2, np.array([1, -1])), {"margin": 0}),
    "PoissonNLLLoss": ((X2, X2), {"from_logits": True, "compute_full": False}),
    "CTCLoss": ((np.zeros((2, 4, 3)), np.array([[0, 1], [1, -1]])),
                {"layout": "NTC", "label_layout": "NT"}),
}


def _gluon_bad(name, default):
    if isinstance(default, str):
        return [1, None, "nope"]
    if name in ("axis", "batch_axis") or isinstance(default, bool):
        return _bad_values(default)
    return _bad_values(float(default))        # rho=1, margin=1: real numbers


@pytest.mark.parametrize("cls", sorted(GLUON))
def test_sweep_gluon(cls):
    C = getattr(gluon, cls)
    args, params = GLUON[cls]
    C(**params)(*args)
    C(**params).loss_and_grad(*args)
    for p, default in dict(params, weight=1.0, batch_axis=0).items():
        for bad in _gluon_bad(p, default):
            if p == "weight" and bad is None:
                continue                                  # None: no weight (Gluon's default)
            _expect_named(lambda: C(**dict(params, **{p: bad}))(*args), p)
    names = C._forward.__code__.co_varnames[2:2 + len(args)]
    for i, nm in enumerate(names):
        for bad in BAD_ARRAYS:
            a = list(args)
            a[i] = bad
            _expect_named(lambda: C(**params)(*a), nm)
    for bad in (["a", "b"], np.array([1 + 1j, 1])):
        _expect_named(lambda: C(**params)(*args, sample_weight=bad), "sample_weight")


def test_gluon_call_arguments():
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match="PoissonNLLLoss: epsilon must be a real number"):
        gluon.PoissonNLLLoss()(x, x, epsilon="a")
    with pytest.raises(ValueError, match="epsilon"):
        gluon.PoissonNLLLoss(from_logits=False)(x, x, epsilon=-1.0)
    with pytest.raises(TypeError, match="SigmoidBinaryCrossEntropyLoss: pos_weight"):
        gluon.SigmoidBCELoss()(x, x, pos_weight="a")
    with pytest.raises(TypeError, match="pos_weight"):
        gluon.SigmoidBCELoss()(x, x, pos_weight=np.array(["a", "b", "c"]))
    with pytest.raises(TypeError, match="SoftmaxCrossEntropyLoss: label"):
        gluon.SoftmaxCELoss()(x, np.array(["a", "b"]))
    with pytest.raises(ValueError, match="label must be class indices.*1.7"):
        gluon.SoftmaxCELoss()(x, np.array([0.0, 1.7]))
    lab = np.array([[0, 1], [1, -1]])
    with pytest.raises(TypeError, match="CTCLoss: pred_lengths"):
        gluon.CTCLoss()(np.zeros((2, 4, 3)), lab, np.array(["4", "4"]))
    with pytest.raises(ValueError, match="pred_lengths must be lengths.*4.7"):
        gluon.CTCLoss()(np.zeros((2, 4, 3)), lab, np.array([4.7, 4.0]))
    with pytest.raises(ValueError, match="label_lengths must be lengths.*1.5"):
        gluon.CTCLoss()(np.zeros((2, 4, 3)), lab, None, np.array([1.5, 1.0]))
    with pytest.raises(ValueError, match="CTCLoss: label must be class indices.*1.7"):
        gluon.CTCLoss()(np.zeros((2, 4, 3)), np.array([[0, 1.7], [1, -1]]))
    # whole floats are fine (and equal the integer call)
    a = gluon.CTCLoss()(np.zeros((2, 4, 3)), lab.astype(float), np.array([4.0, 3.0]))
    b = gluon.CTCLoss()(np.zeros((2, 4, 3)), lab, np.array([4, 3]))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="tutorial_curves: step must be non-zero"):
        gluon.tutorial_curves(step=0)
    with pytest.raises(TypeError, match="tutorial_curves: start"):
        gluon.tutorial_curves(start="a")
    with pytest.raises(ValueError, match="tutorial_curves: stop must be finite"):
        gluon.tutorial_curves(stop=np.inf)
    assert len(gluon.tutorial_curves(0, 1, 0.25)["L2Loss"][0]) == 4


SLIM = {
    "absolute_difference": (X2, X2), "mean_squared_error": (X2, X2), "log_loss": (X2, X2),
    "sigmoid_cross_entropy": (X2, np.ones_like(X2)),
    "softmax_cross_entropy": (X2, np.array([[0, 1.0, 0], [1, 0, 0]])),
    "sparse_softmax_cross_entropy": (X2, np.array([0, 2])),
    "hinge_loss": (X2, np.array([[0, 1, 1], [1, 0, 0]])),
    "mean_pairwise_squared_error": (X2, X2 * 2),
    "cosine_distance": (X2, X2),
    "multiclass_hinge_loss": (X2, np.array([1, 0])),
    "compute_weighted_loss": (X2,),
}
SLIM_PARAMS = {"weights": 1.0, "label_smoothing": 0.0, "epsilon": 1e-7, "axis": 1}


@pytest.mark.parametrize("name", sorted(SLIM))
def test_sweep_slim(name):
    import inspect
    f = getattr(slim, name)
    args = SLIM[name]
    kw = {"axis": 1} if name == "cosine_distance" else {}
    with fl.LossCollection():
        f(*args, **kw)
        f.value_and_grad(*args, **kw)
        sig = inspect.signature(f)
        for i, nm in enumerate(list(sig.parameters)[:len(args)]):
            for bad in BAD_ARRAYS:
                a = list(args)
                a[i] = bad
                _expect_named(lambda: f(*a, **kw), nm)
        for p, default in SLIM_PARAMS.items():
            if p not in sig.parameters:
                continue
            for bad in _bad_values(default) + (["a"] if p == "weights" else []):
                if p == "weights" and isinstance(bad, (bool, np.bool_, complex)):
                    continue          # (weights are arrays: bools count as 0/1 as in TF)
                if p == "weights" and isinstance(bad, list) and len(bad) == 2:
                    continue
                _expect_named(lambda: f(*args, **dict(kw, **{p: bad})), p)


def test_slim_hinge_speaks_slims_convention():
    with pytest.raises(ValueError, match="slim.hinge_loss: labels must be 0 or 1"):
        slim.hinge_loss(X2, np.array([[1, -1, 1], [-1, 1, 1]]))


def test_slim_default_collection_runs_in_constant_memory():
    import gc
    import warnings
    import weakref

    from fastloss import collection

    slim.reset_default_collection()
    x0 = np.linspace(0, 1, 8)
    ref = weakref.ref(x0)
    slim.mean_squared_error(x0, np.zeros(8))
    slim.mean_squared_error.value_and_grad(x0, np.zeros(8))
    del x0
    gc.collect()
    assert ref() is None                  # the process-wide default keeps no input arrays
    n = collection.DEFAULT_MAX_TERMS + 200
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for i in range(n):
            slim.absolute_difference(np.full(2, float(i)), np.zeros(2))
    assert len(slim.get_default_collection()) == collection.DEFAULT_MAX_TERMS
    assert sum("oldest are dropped" in str(m.message) for m in w) == 1
    # the most recent terms are the ones kept
    assert slim.get_losses()[-1] == n - 1.0
    assert slim.get_total_loss() == sum(range(n - collection.DEFAULT_MAX_TERMS, n))
    slim.reset_default_collection()
    assert len(slim.get_default_collection()) == 0
    # an explicit scope keeps everything, and bounds itself on request
    with fl.LossCollection(max_terms=3) as c, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(5):
            slim.absolute_difference(np.full(2, float(i)), np.zeros(2))
        assert c.get_losses() == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="max_terms"):
        fl.LossCollection(max_terms=0)


def test_layers_report_core_errors_in_their_own_terms():
    with pytest.raises(ValueError, match=r"^fastloss\.slim\.log_loss: predictions and labels "
                                         r"must lie in \[0, 1\]"):
        slim.log_loss(np.array([0.2, 0.5]), np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"^fastloss\.slim\.sigmoid_cross_entropy: "
                                         r"multi_class_labels must lie"):
        slim.sigmoid_cross_entropy(np.array([0.2, 0.5]), np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"^fastloss\.slim\.softmax_cross_entropy: "
                                         r"onehot_labels must hold probabilities"):
        slim.softmax_cross_entropy(np.zeros((2, 2)), np.array([[1.0, -1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"^fastloss\.gluon\.HingeLoss: label must lie in "
                                         r"\{-1, \+1\}"):
        gluon.HingeLoss()(np.zeros((2, 2)), np.array([[1, 0], [1, 1]]))
    with pytest.raises(ValueError, match=r"^fastloss\.gluon\.CTCLoss: pred_lengths must be "
                                         r"<= T"):
        gluon.CTCLoss()(np.zeros((2, 4, 3)), np.array([[0, 1], [1, -1]]), np.array([9, 4]))


def test_rowwise_out_is_filled_for_every_reduction():
    logits = RNG.normal(size=(3, 4))
    labels = np.array([0, 3, 1])
    ref = np.log(np.exp(logits).sum(-1)) - logits[np.arange(3), labels]
    out = np.full(3, 7.0)
    v = fl.softmax_cross_entropy_with_integer_labels(logits, labels, reduction="sum", out=out)
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    assert v == pytest.approx(ref.sum(), rel=1e-12)
    with pytest.raises(ValueError, match="out must have shape"):
        fl.softmax_cross_entropy_with_integer_labels(logits, labels, out=np.empty(4))


def test_collection_arguments():
    c = fl.LossCollection()
    with pytest.raises(TypeError, match="param must be a real numeric array"):
        c.add_regularization(None, l2=1.0)
    with pytest.raises(TypeError, match="param"):
        c.add_regularization(np.array([1 + 1j]), l2=1.0)
    with pytest.raises(ValueError, match="argnums"):
        c.add(fl.huber, np.zeros(2), np.zeros(2), argnums=True)
    with pytest.raises(TypeError, match="scope"):
        c.get_losses(1.5)
    with pytest.raises(TypeError, match="loss_collection"):
        slim.get_losses(loss_collection=1.5)
    with fl.LossCollection(), pytest.raises(TypeError, match="scope"):
        slim.mean_squared_error(np.zeros(2), np.zeros(2), scope=1)


def test_uint64_labels_above_int64_are_refused_not_wrapped():
    # 2**64 - 100 would wrap to -100, the default ignore_index, and be skipped silently
    lab = np.array([0, 2 ** 64 - 100], dtype=np.uint64)
    with pytest.raises(ValueError, match="labels.*18446744073709551516"):
        fl.softmax_cross_entropy_with_integer_labels(np.zeros((2, 3)), lab)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_outside_pass_matches_numpy(dt):
    from fastloss._elementwise import _outside

    v = RNG.normal(size=100_001).astype(dt) * 3
    v[5], v[77_777], v[-1], v[4095], v[4096] = np.nan, -np.inf, 40.0, 1.0, -1.0
    a = np.abs(v)
    for lo, hi in ((0.0, 1.0), (-2.5, 2.5), (1.0, 1.0)):
        assert _outside(v, lo, hi, False, None) == np.count_nonzero((v < lo) | (v > hi))
        assert _outside(v, lo, hi, True, None) == np.count_nonzero((a < lo) | (a > hi))
        w = v[:3000]                                                    # the serial kernel
        assert _outside(w, lo, hi, False, 1) == np.count_nonzero((w < lo) | (w > hi))
    assert _outside(np.full(70_000, np.nan, dt), 0.0, 1.0, False, None) == 0
    assert _outside(np.full(70_000, -np.inf, dt), 1.0, 1.0, True, None) == 70_000
    # a bound just inside the dtype's precision: compared in the array's own dtype
    e = np.full(70_000, np.nextafter(dt(1), dt(2)))
    assert _outside(e, 0.0, 1.0, False, None) == 70_000
