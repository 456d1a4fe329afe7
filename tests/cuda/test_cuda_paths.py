"""The CUDA call path: device-side reductions, device results, streams, allocation.

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cuda/test_cuda_paths.py -p no:cacheprovider

CuPy and PyTorch CUDA are not installed here: their allocator and stream hooks are
tested with stand-in modules (the calls fastloss makes into them, not the libraries).
"""
import sys
import types

import numpy as np
import pytest

import fastloss as fl


def _host(d):
    return d.copy_to_host() if hasattr(d, "copy_to_host") else np.asarray(d)


# ---------------------------------------------------------------- CTC, huge feasible losses
def test_ctc_huge_feasible_losses_are_finite():
    x = np.where(np.arange(6) == 0, 0.0, -30.0) * np.ones((1, 100, 6))
    lab = np.tile([1, 2], 15)[None]
    v = fl.ctc_loss(x, lab, [100], [30], reduction="none", device="cuda")
    np.testing.assert_allclose(v, [841.358], rtol=1e-6)
    x = np.full((1, 200, 5), -1e3)
    x[0, :, 0] = 0
    v = fl.ctc_loss(x, [[1, 2]], [200], [2], reduction="none", device="cuda")
    np.testing.assert_allclose(v, [1990.10], rtol=1e-6)


def _ctc_brute(lp, lab):
    """-log Σ over all paths (T small) collapsing to ``lab`` (blank 0), float64."""
    import itertools
    T, C = lp.shape
    tot = -np.inf
    for path in itertools.product(range(C), repeat=T):
        out, prev = [], None
        for k in path:
            if k != prev and k != 0:
                out.append(k)
            prev = k
        if out == list(lab):
            tot = np.logaddexp(tot, sum(lp[t, k] for t, k in enumerate(path)))
    return -tot


def test_ctc_value_against_brute_force_and_device_result():
    from numba import cuda
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 4, 3)) * 3
    lp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    labels = np.array([[1, 2], [2, 2]])
    ref = [_ctc_brute(lp[0], [1, 2]), _ctc_brute(lp[1], [2, 2])]
    v = fl.ctc_loss(x, labels, [4, 4], [2, 2], reduction="none", device="cuda")
    np.testing.assert_allclose(v, ref, rtol=1e-12)
    w = np.array([0.5, 2.0])
    s = fl.ctc_loss(cuda.to_device(x), labels, [4, 4], [2, 2], reduction="mean",
                    sample_weight=w, device_result=True)
    assert s.shape == () and not isinstance(s, np.ndarray)
    np.testing.assert_allclose(_host(s), np.dot(w, ref) / 2 / w.sum(), rtol=1e-12)


# ------------------------------------------------------------ device-side reductions
def test_elementwise_device_weights_reduced_on_device():
    from numba import cuda
    rng = np.random.default_rng(0)
    x, y, w = rng.normal(size=7), rng.normal(size=7), rng.random(7)
    ref = np.sum(w * np.where(np.abs(x - y) <= 1, 0.5 * (x - y) ** 2, np.abs(x - y) - 0.5))
    dx, dy, dw = (cuda.to_device(a) for a in (x, y, w))
    for red, want in (("sum", ref), ("mean", ref / w.sum())):
        v, g = fl.value_and_grad(fl.huber)(dx, dy, sample_weight=dw, reduction=red)
        np.testing.assert_allclose(v, want, rtol=1e-13)
        gc = fl.grad(fl.huber)(x, y, sample_weight=w, reduction=red, device="cpu")
        np.testing.assert_allclose(g.copy_to_host(), gc, rtol=1e-13)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fl.huber(dx, dy, sample_weight=cuda.to_device(-w))
    # with device results nothing is checked on the host: a NaN instead of the error
    v = fl.huber(dx, dy, sample_weight=cuda.to_device(-w), device_result=True)
    assert np.isnan(_host(v))


def test_device_result_zero_d_arrays_every_family():
    from numba import cuda
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    k = np.array([0, 3, 1])
    cases = [
        (fl.logistic, (x.ravel(), np.sign(x.ravel())), {}),
        (fl.squared_error, (x.ravel().astype(np.float32), np.zeros(12, np.float32)), {}),
        (fl.softmax_cross_entropy_with_integer_labels, (x, k), {}),
        (fl.cosine_distance, (x, x[::-1].copy()), {}),
    ]
    for f, args, kw in cases:
        for red in ("sum", "mean"):
            host = f(*args, reduction=red, device="cpu", **kw)
            d = f(*(cuda.to_device(a) for a in args), reduction=red, device_result=True, **kw)
            assert d.shape == () and _host(d).dtype == np.asarray(host).dtype
            np.testing.assert_allclose(_host(d), host, rtol=1e-6)
            # host inputs with device="cuda" and device_result: still a device array
            d2 = f(*args, reduction=red, device="cuda", device_result=True, **kw)
            np.testing.assert_allclose(_host(d2), host, rtol=1e-6)


def test_invalid_labels_nan_with_device_result_raise_without():
    x = np.zeros(3)
    y = np.array([1.0, 0.0, -1.0])   # 0 is not a ±1 label
    with pytest.raises(ValueError, match="must lie in"):
        fl.hinge(x, y, device="cuda")
    assert np.isnan(_host(fl.hinge(x, y, device="cuda", device_result=True)))
    r = fl.hinge(x, y, device="cuda", reduction="none", device_result=True)
    assert np.isnan(r[1]) and r[0] == 1.0
    with pytest.raises(ValueError, match="probabilities"):
        fl.kl_divergence(np.zeros((2, 3)), -np.ones((2, 3)), device="cuda")
    v = fl.kl_divergence(np.zeros((2, 3)), -np.ones((2, 3)), device="cuda", device_result=True)
    assert np.isnan(_host(v))


def test_device_result_is_ignored_on_the_cpu():
    v = fl.huber(np.ones(3), np.zeros(3), device_result=True)
    assert isinstance(v, np.floating)


# ------------------------------------------------------------------------------ streams
def test_stream_argument():
    from numba import cuda
    x = np.linspace(-2, 2, 9)
    y = np.zeros(9)
    s = cuda.stream()
    want = fl.huber(x, y, device="cpu")
    assert fl.huber(x, y, device="cuda", stream=s) == pytest.approx(want, rel=1e-14)
    v, g = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(
        x.reshape(3, 3), np.array([0, 1, 2]), device="cuda", stream=s)
    np.testing.assert_allclose(
        v, fl.softmax_cross_entropy_with_integer_labels(x.reshape(3, 3), np.array([0, 1, 2])),
        rtol=1e-13)
    x3 = np.random.default_rng(0).normal(size=(1, 3, 3))
    np.testing.assert_allclose(fl.ctc_loss(x3, [[1]], [3], [1], device="cuda", stream=s),
                               fl.ctc_loss(x3, [[1]], [3], [1], device="cpu"), rtol=1e-12)
    assert fl.huber(x, y, device="cuda", stream=0) == pytest.approx(want, rel=1e-14)
    with pytest.raises(TypeError, match="stream"):
        fl.huber(x, y, device="cuda", stream="fast")
    with pytest.raises(TypeError, match="stream"):
        fl.huber(x, y, device="cuda", stream=True)
    for f, args in ((fl.huber, (x, y)), (fl.cosine_distance, (x.reshape(3, 3),) * 2),
                    (fl.ctc_loss, (x3, [[1]], [3], [1]))):
        with pytest.raises(TypeError, match=f"{f.__name__}: device_result must be a bool"):
            f(*args, device="cuda", device_result="yes")


# ------------------------------------------------------------- CuPy / PyTorch stand-ins
class _FakeCupyArray:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)


def _fake_modules(monkeypatch, calls):
    cupy = types.ModuleType("cupy")
    cupy.empty = lambda shape, dtype: (calls.append(("cupy.empty", shape, np.dtype(dtype)))
                                       or _FakeCupyArray(shape, dtype))
    cupy.cuda = types.SimpleNamespace(
        get_current_stream=lambda: types.SimpleNamespace(ptr=1234))
    torch = types.ModuleType("torch")
    torch.float32, torch.float64 = "t.float32", "t.float64"
    torch.empty = lambda shape, dtype, device: (calls.append(("torch.empty", shape, dtype,
                                                              device)) or object())
    torch.cuda = types.SimpleNamespace(
        current_stream=lambda: types.SimpleNamespace(cuda_stream=5678))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setitem(sys.modules, "torch", torch)


def test_allocator_uses_the_callers_library(monkeypatch):
    from numba import cuda

    from fastloss._cuda import runtime
    calls = []
    _fake_modules(monkeypatch, calls)
    monkeypatch.setattr(runtime, "SIM", False)
    monkeypatch.setattr(cuda, "as_cuda_array", lambda a: ("view", a), raising=False)
    nat, view = runtime.Allocator("cupy", 0).empty((4,), np.float32)
    assert isinstance(nat, _FakeCupyArray) and view == ("view", nat)
    assert calls[-1] == ("cupy.empty", (4,), np.dtype(np.float32))
    nat, view = runtime.Allocator("torch", 0, device="cuda:1").empty((2, 3), np.float64)
    assert calls[-1] == ("torch.empty", (2, 3), "t.float64", "cuda:1") and view[1] is nat


def test_current_stream_of_cupy_and_torch(monkeypatch):
    from numba import cuda

    from fastloss._cuda import runtime
    _fake_modules(monkeypatch, [])
    monkeypatch.setattr(runtime, "SIM", False)
    monkeypatch.setattr(cuda, "external_stream", lambda h: ("ext", h), raising=False)
    assert runtime.resolve_stream(None, "cupy") == ("ext", 1234)
    assert runtime.resolve_stream(None, "torch") == ("ext", 5678)
    assert runtime.resolve_stream(99, "numba") == ("ext", 99)
    # an explicit CuPy / PyTorch stream object is wrapped by its handle
    cs = type("Stream", (), {"__module__": "cupy.cuda.stream", "ptr": 42})()
    ts = type("Stream", (), {"__module__": "torch.cuda.streams", "cuda_stream": 43})()
    assert runtime.resolve_stream(cs, "numba") == ("ext", 42)
    assert runtime.resolve_stream(ts, "numba") == ("ext", 43)


def test_torch_inputs_give_torch_kind():
    from fastloss import _device
    t = type("Tensor", (), {"__module__": "torch", "__cuda_array_interface__": {}})()
    assert _device.device_kind({"pred": t, "target": t}) == "torch"
