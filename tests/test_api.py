"""The public surface: registry, transforms, out= buffers, input conversions, validation
errors, empty inputs, threads, and import/caching costs."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss
from fastloss._math.spec import ELEMENTWISE
from reference import ref_loss


def test_registry_lists_every_elementwise_loss():
    for name, spec in ELEMENTWISE.items():
        info = fastloss.LOSSES[name]
        assert info.func is getattr(fastloss, name)
        assert info.inputs == ("pred", "target")
        assert set(info.params) == {p.name for p in spec.params}
        assert info.has_hessian


def test_import_compiles_nothing():
    code = "import sys, fastloss; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_out_buffers_are_used():
    x = np.linspace(-2, 2, 11)
    y = np.zeros(11)
    out, gout, hout = np.empty(11), np.empty(11), np.empty(11)
    r = fastloss.huber(x, y, reduction="none", out=out)
    assert r is out
    v, g = fastloss.value_and_grad(fastloss.huber)(x, y, reduction="sum", grad_out=gout)
    assert g is gout
    g, h = fastloss.grad_and_hessian(fastloss.huber)(x, y, reduction="sum", grad_out=gout,
                                                     hess_out=hout)
    assert g is gout and h is hout
    np.testing.assert_allclose(h, (np.abs(x) <= 1).astype(float))
    with pytest.raises(ValueError, match="grad_out"):
        fastloss.value_and_grad(fastloss.huber)(x, y, grad_out=np.empty(3))
    with pytest.raises(ValueError, match="out"):
        fastloss.huber(x, y, reduction="none", out=np.empty(11, np.float32))


def test_input_conversions():
    x = np.linspace(-2, 2, 12)
    y = np.zeros(12)
    want = ref_loss("huber", x, y).sum()
    ro = x.copy()
    ro.flags.writeable = False
    assert fastloss.huber(ro, y, reduction="sum") == pytest.approx(want)
    strided = np.empty(24)
    strided[::2] = x
    assert fastloss.huber(strided[::2], y, reduction="sum") == pytest.approx(want)
    assert fastloss.huber(x.astype(">f8"), y, reduction="sum") == pytest.approx(want)
    assert fastloss.huber(list(x), 0, reduction="sum") == pytest.approx(want)
    xi = np.arange(-3, 3)
    r = fastloss.huber(xi, np.zeros(6, np.int32), reduction="none")
    assert r.dtype == np.float64
    np.testing.assert_allclose(r, ref_loss("huber", xi, 0))
    # 2-D with a broadcast target and per-row weights of shape (N, 1)
    x2 = x.reshape(3, 4)
    w = np.array([[1.0], [2.0], [0.0]])
    r = fastloss.huber(x2, 0.5, sample_weight=w, reduction="none")
    np.testing.assert_allclose(r, w * ref_loss("huber", x2, 0.5))
    v, g = fastloss.value_and_grad(fastloss.huber)(x2, 0.5, sample_weight=w)
    assert g.shape == (3, 4)
    np.testing.assert_allclose(v, (w * ref_loss("huber", x2, 0.5)).sum() / (w.sum() * 4))


def test_empty_inputs():
    e = np.empty(0)
    assert fastloss.huber(e, e, reduction="sum") == 0
    with np.errstate(all="raise"):
        assert np.isnan(fastloss.huber(e, e))
    assert fastloss.huber(e, e, reduction="none").shape == (0,)
    v, g = fastloss.value_and_grad(fastloss.huber)(e, e)
    assert g.shape == (0,)


def test_scalar_inputs():
    assert fastloss.squared_error(3.0, 1.0) == pytest.approx(4.0)


@pytest.mark.parametrize("bad, match", [
    (dict(reduction="avg"), "reduction"),
    (dict(device="tpu"), "device"),
    (dict(sample_weight=-np.ones(4)), "sample_weight"),
    (dict(sample_weight=np.ones(3)), "sample_weight"),
    (dict(delta=-1.0), "delta"),
    (dict(delta=float("nan")), "delta"),
])
def test_validation_errors_name_the_argument(bad, match):
    with pytest.raises(ValueError, match=match):
        fastloss.huber(np.zeros(4), np.zeros(4), **bad)


def test_type_errors_name_the_argument():
    with pytest.raises(TypeError, match="pred"):
        fastloss.huber(np.zeros(4, complex), np.zeros(4))
    with pytest.raises(TypeError, match="target"):
        fastloss.huber(np.zeros(4), np.array(["a"] * 4))
    with pytest.raises(TypeError, match="delta"):
        fastloss.huber(np.zeros(4), np.zeros(4), delta="big")
    with pytest.raises(TypeError, match="log_input"):
        fastloss.poisson_nll(np.zeros(4), np.zeros(4), log_input=0.5)
    with pytest.raises(TypeError, match="huber"):
        fastloss.huber(np.zeros(4), np.zeros(4), rho=1.0)
    with pytest.raises(TypeError, match="not a fastloss loss"):
        fastloss.value_and_grad(np.sum)
    with pytest.raises(ValueError, match="argnums"):
        fastloss.value_and_grad(fastloss.huber, argnums=1)


def test_shape_mismatch_names_shapes():
    with pytest.raises(ValueError, match=r"target of shape \(3,\).*\(4,\)"):
        fastloss.huber(np.zeros(4), np.zeros(3))


@pytest.mark.parametrize("name, x, y", [
    ("hinge", [0.5, 0.2], [1.0, 0.0]),
    ("logistic", [0.5, 0.2], [2.0, 1.0]),
    ("binary_cross_entropy", [0.5, 1.5], [1.0, 0.0]),
    ("binary_cross_entropy", [0.5, 0.5], [1.0, -0.1]),
    ("sigmoid_binary_cross_entropy", [0.5, 0.5], [1.0, 3.0]),
])
def test_label_domain_errors(name, x, y):
    with pytest.raises(ValueError, match="must lie in"):
        getattr(fastloss, name)(np.array(x), np.array(y), sample_weight=np.ones(2),
                                reduction="none")


def test_cuda_without_gpu_is_a_clear_error():
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("simulator enabled")
    from fastloss._device import cuda_available
    if cuda_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        fastloss.huber(np.zeros(3), np.zeros(3), device="cuda")


def test_threads_give_serial_results():
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(100_000) for _ in range(8)]
    y = np.zeros(100_000)
    vg = fastloss.value_and_grad(fastloss.logistic)
    ys = np.sign(xs[0]) + (xs[0] == 0)
    serial = [vg(x, ys) for x in xs]
    results = [None] * 8

    def work(i):
        for _ in range(3):
            results[i] = vg(xs[i], ys)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (v0, g0), (v1, g1) in zip(serial, results):
        assert v0 == v1
        np.testing.assert_array_equal(g0, g1)
    del y


def test_reduction_deterministic():
    x = np.random.default_rng(1).standard_normal(300_000).astype(np.float32)
    a = fastloss.squared_error(x, 0.0, reduction="sum")
    b = fastloss.squared_error(x, 0.0, reduction="sum")
    assert a == b
    assert a == pytest.approx(np.sum(x.astype(np.float64) ** 2), rel=1e-6)


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3),
       dtype=st.sampled_from([np.float32, np.float64, np.int64]),
       reduction=st.sampled_from(["none", "sum", "mean"]))
def test_property_shapes_and_dtypes(shape, dtype, reduction):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    y = np.zeros(shape, dtype)
    v, g = fastloss.value_and_grad(fastloss.squared_error)(x, y, reduction=reduction)
    out_dt = np.float64 if dtype == np.int64 else dtype
    assert g.shape == tuple(shape) and g.dtype == out_dt
    if reduction == "none":
        assert v.shape == tuple(shape) and v.dtype == out_dt
    else:
        assert np.ndim(v) == 0 and np.asarray(v).dtype == out_dt


@settings(max_examples=25, deadline=None)
@given(a=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       b=st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_property_bad_broadcast_raises(a, b):
    try:
        ok = np.broadcast_shapes(tuple(a), tuple(b)) == tuple(a)
    except ValueError:
        ok = False
    x, y = np.zeros(a), np.zeros(b)
    if ok:
        assert fastloss.squared_error(x, y, reduction="none").shape == tuple(a)
    else:
        with pytest.raises(ValueError, match="target"):
            fastloss.squared_error(x, y)


def test_kernel_cache_hit_in_fresh_process(tmp_path):
    """cache=True works across processes: the second process loads, not compiles."""
    code = textwrap.dedent("""
        import numpy as np, fastloss
        from fastloss._elementwise import cpu_kernel_for
        from fastloss._math.spec import ELEMENTWISE
        fastloss.huber(np.zeros(4), np.zeros(4))
        from fastloss import _cpu, _elementwise
        # every kernel the call may have run: built kernels and their serial twins
        twin = getattr(_cpu, "serial", lambda k: k)
        ks = {t for k in _elementwise._KERNEL_FOR.values() for t in (k, twin(k))}
        print(sum(sum(k.stats.cache_hits.values()) for k in ks),
              sum(sum(k.stats.cache_misses.values()) for k in ks))
    """)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    run = lambda: subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, check=True).stdout.split()
    assert run() == ["0", "1"]
    assert run() == ["1", "0"]


def test_read_only_install_caches_in_user_dir(tmp_path):
    """A package directory that cannot be written still gets an on-disk cache.

    Each package folder's ``__pycache__`` is made a plain file (so it cannot be created,
    even by root) and the folders are made read-only; Numba must fall back to the user
    cache directory under $HOME.
    """
    import shutil
    site = tmp_path / "site"
    pkg = site / "fastloss"
    shutil.copytree(os.path.dirname(fastloss.__file__), pkg,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(pkg):
        (open(os.path.join(root, "__pycache__"), "w")).close()
    for root, dirs, files in os.walk(site, topdown=False):
        os.chmod(root, 0o555)
    home = tmp_path / "home"
    home.mkdir()
    code = textwrap.dedent("""
        import numpy as np, fastloss
        from fastloss._elementwise import cpu_kernel_for
        from fastloss._math.spec import ELEMENTWISE
        fastloss.huber(np.zeros(4), np.zeros(4))
        from fastloss import _cpu, _elementwise
        # every kernel the call may have run: built kernels and their serial twins
        twin = getattr(_cpu, "serial", lambda k: k)
        ks = {t for k in _elementwise._KERNEL_FOR.values() for t in (k, twin(k))}
        print(fastloss.__file__.startswith(%r),
              sum(sum(k.stats.cache_hits.values()) for k in ks))
    """ % str(site))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env.update(PYTHONPATH=str(site), HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"))
    try:
        run = lambda: subprocess.run([sys.executable, "-c", code], env=env, cwd=str(home),
                                     capture_output=True, text=True, check=True).stdout.split()
        assert run() == ["True", "0"]
        assert run() == ["True", "1"]
        assert any((home / ".cache").rglob("*.nbi"))
    finally:
        for root, dirs, files in os.walk(tmp_path):
            os.chmod(root, 0o755)


def test_small_calls_repeat_the_checked_result_from_their_plan():
    # a small call's second run takes the planned path (fastloss._elementwise.small_call):
    # same bits as the checked path, and anything that changes the metadata is re-checked
    from fastloss import _elementwise as E

    rng = np.random.default_rng(3)
    x = rng.standard_normal(37)
    y = (rng.random(37) < 0.5).astype(np.float64)
    vg = fastloss.value_and_grad(fastloss.sigmoid_binary_cross_entropy)
    E._PLANS.clear()
    v1, g1 = vg(x, y)
    assert len(E._PLANS) == 1
    v2, g2 = vg(x, y)
    assert v1 == v2 and np.array_equal(g1, g2) and g1 is not g2
    ref = ref_loss("sigmoid_binary_cross_entropy", x, y).mean()
    assert abs(v2 - ref) < 1e-14
    # the plan's values are checked by the kernel: a label outside [0, 1] still raises
    bad = y.copy()
    bad[5] = 2.0
    with pytest.raises(ValueError, match="sigmoid_binary_cross_entropy: target"):
        vg(x, bad)
    # NaN in, NaN out; other dtypes, shapes, parameters and reductions get their own plan
    xn = x.copy()
    xn[0] = np.nan
    vn, gn = vg(xn, y)
    assert np.isnan(vn) and np.isnan(gn[0]) and np.isfinite(gn[1:]).all()
    v32, g32 = vg(x.astype(np.float32), y.astype(np.float32))
    assert v32.dtype == np.float32 and g32.dtype == np.float32 and abs(v32 - v1) < 1e-6
    for _ in range(2):
        assert fastloss.sigmoid_binary_cross_entropy(x, y, pos_weight=2.0) == pytest.approx(
            ref_loss("sigmoid_binary_cross_entropy", x, y, pos_weight=2.0).mean(), rel=1e-14)
        s = fastloss.sigmoid_binary_cross_entropy(x, y, reduction="sum")
        assert s == pytest.approx(37 * ref, rel=1e-14)
        x2, y2 = x[:36].reshape(6, 6), y[:36].reshape(6, 6)
        _, g2d = vg(x2, y2)
        assert g2d.shape == (6, 6)
        _, gt = vg(x2.T, y2.T)     # not contiguous: the checked path
        assert np.array_equal(gt, g2d.T)
        (gtup,) = fastloss.grad(fastloss.sigmoid_binary_cross_entropy, (0,))(x, y)
        assert np.array_equal(gtup, g1)
        gh, h = fastloss.grad_and_hessian(fastloss.sigmoid_binary_cross_entropy)(x, y)
        assert np.array_equal(gh, g1) and h.shape == x.shape
    assert all(k[0] == "sigmoid_binary_cross_entropy" for k in E._PLANS)
