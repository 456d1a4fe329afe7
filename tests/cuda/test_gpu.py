"""Real-GPU checks (skipped in the simulator): sizes that span many blocks, both dtypes,
every loss against the CPU kernels, CuPy / PyTorch inputs and outputs, streams, the disk
cache across processes.  ``benchmarks/gpu.sh`` runs this file with the rest of tests/cuda.

    python -m pytest -q tests/cuda -p no:cacheprovider          # on a machine with a GPU
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1",
                                reason="real GPU only (too slow in the simulator)")

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))
from reference import PARAMS, make_inputs  # noqa: E402

TOL = {np.float32: (2e-5, 1e-6), np.float64: (1e-11, 1e-13)}


def _close(a, b, dtype, **kw):
    """rtol, and an atol relative to the largest reference magnitude."""
    r, t = TOL[dtype]
    b = np.asarray(b)
    scale = float(np.max(np.abs(b))) if b.size and np.isfinite(b).any() else 1.0
    np.testing.assert_allclose(a, b, rtol=r, atol=t * scale, **kw)


def _elementwise_names():
    from fastloss._math.spec import ELEMENTWISE
    return sorted(ELEMENTWISE)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", _elementwise_names())
def test_elementwise_every_loss_large(name, dtype):
    rng = np.random.default_rng(0)
    n = 300_001   # many blocks and a ragged tail
    x, y = make_inputs(name, n, rng)
    x, y = x.astype(dtype), y.astype(dtype)
    w = rng.random(n).astype(dtype)
    f = getattr(fl, name)
    p = PARAMS.get(name, {})
    for red in ("none", "sum", "mean"):
        for sw in (None, w):
            vc, gc = fl.value_and_grad(f)(x, y, sample_weight=sw, reduction=red, device="cpu",
                                          **p)
            vd, gd = fl.value_and_grad(f)(x, y, sample_weight=sw, reduction=red,
                                          device="cuda", **p)
            if red == "none":
                _close(vd, vc, dtype)
            else:   # float64 sums in a different order (blocks vs threads)
                np.testing.assert_allclose(vd, vc, rtol=1e-4 if dtype == np.float32 else 1e-10)
            _close(gd, gc, dtype)
    if f.__fastloss__.has_hessian:
        gc, hc = fl.grad_and_hessian(f)(x, y, device="cpu", **p)
        gd, hd = fl.grad_and_hessian(f)(x, y, device="cuda", **p)
        _close(hd, hc, dtype)


def _row_cases(N, C, dtype, rng):
    x = (rng.normal(size=(N, C)) * 2).astype(dtype)
    p = rng.random((N, C)) + 0.05
    p = (p / p.sum(-1, keepdims=True)).astype(dtype)
    k = rng.integers(0, C, N)
    a, b, c = (rng.normal(size=(N, C)).astype(dtype) for _ in range(3))
    pm = np.where(rng.random(N) < 0.5, 1.0, -1.0).astype(dtype)
    return [
        (fl.softmax_cross_entropy, (x, p), {"label_smoothing": 0.1}),
        (fl.softmax_cross_entropy_with_integer_labels, (x, k), {}),
        (fl.softmax_cross_entropy_with_integer_labels, (x, k),
         {"class_weight": rng.random(C) + 0.1, "label_smoothing": 0.2}),
        (fl.kl_divergence, (np.log(p), p[::-1].copy()), {}),
        (fl.kl_divergence, (np.log(p), np.log(p[::-1])), {"log_target": True}),
        (fl.softmax_kl_divergence, (x, p), {}),
        (fl.multiclass_hinge, (a, k), {}),
        (fl.multiclass_hinge, (a, k), {"kind": "crammer_singer"}),
        (fl.cosine_embedding, (a, b, pm), {}),
        (fl.cosine_distance, (a, b), {}),
        (fl.triplet_margin, (a, b, c), {}),
        (fl.triplet_margin, (a, b, c), {"squared": True}),
        (fl.mean_pairwise_squared_error, (a, b), {}),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,C", [(257, 1000), (3, 70_000)])
def test_rowwise_every_loss(N, C, dtype):
    rng = np.random.default_rng(1)
    for f, args, kw in _row_cases(N, C, dtype, rng):
        info = f.__fastloss__
        nums = tuple(info.inputs.index(n) for n in info.differentiable)
        for red in ("none", "mean"):
            v0, g0 = fl.value_and_grad(f, nums)(*args, reduction=red, device="cpu", **kw)
            v1, g1 = fl.value_and_grad(f, nums)(*args, reduction=red, device="cuda", **kw)
            tol = dict(rtol=2e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9,
                                                                              atol=1e-12)
            np.testing.assert_allclose(v1, v0, err_msg=info.name, **tol)
            for u, z in zip(g1 if isinstance(g1, tuple) else (g1,),
                            g0 if isinstance(g0, tuple) else (g0,)):
                np.testing.assert_allclose(u, z, err_msg=info.name, **tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(150, 32, 29, 40), (200, 4, 1000, 50)])
def test_ctc_benchmark_shapes(shape, dtype):
    from fastloss._bench.ctc import inputs
    args, kw = inputs(shape, dtype)
    kw = {k: v for k, v in kw.items() if k != "grad_out"}
    vg = fl.value_and_grad(fl.ctc_loss)
    for red in ("none", "mean"):
        v0, g0 = vg(*args, **dict(kw, reduction=red, device="cpu"))
        v1, g1 = vg(*args, **dict(kw, reduction=red, device="cuda"))
        tol = 1e-4 if dtype == np.float32 else 1e-9
        np.testing.assert_allclose(v1, v0, rtol=tol)
        np.testing.assert_allclose(g1, g0, atol=tol)


def test_ctc_huge_losses_finite_on_gpu():
    x = np.where(np.arange(6) == 0, 0.0, -30.0) * np.ones((1, 100, 6))
    lab = np.tile([1, 2], 15)[None]
    np.testing.assert_allclose(fl.ctc_loss(x, lab, [100], [30], reduction="none",
                                           device="cuda"), [841.358], rtol=1e-6)


def test_cupy_in_cupy_out_and_stream():
    cp = pytest.importorskip("cupy")
    x = cp.linspace(-3, 3, 100_000, dtype=cp.float32)
    y = cp.zeros_like(x)
    s = cp.cuda.Stream(non_blocking=True)
    with s:
        v, g = fl.value_and_grad(fl.huber)(x, y, device_result=True)
    assert isinstance(g, cp.ndarray) and v.shape == ()
    s.synchronize()
    vh, gh = fl.value_and_grad(fl.huber)(cp.asnumpy(x), cp.asnumpy(y))
    np.testing.assert_allclose(float(v), vh, rtol=1e-5)
    np.testing.assert_allclose(cp.asnumpy(g), gh, rtol=1e-5, atol=1e-9)
    # explicit stream= and device weights (summed on the device)
    w = cp.random.random(x.shape[0]).astype(cp.float32)
    v2 = fl.huber(x, y, sample_weight=w, stream=s)
    np.testing.assert_allclose(v2, fl.huber(cp.asnumpy(x), cp.asnumpy(y),
                                            sample_weight=cp.asnumpy(w)), rtol=1e-5)
    # class axis not last: moved on the device by CuPy
    z = cp.random.standard_normal((8, 10, 3)).astype(cp.float32)
    k = cp.random.randint(0, 10, (8, 3))
    v3, g3 = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(z, k, axis=1)
    v4, g4 = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(
        cp.asnumpy(z), cp.asnumpy(k), axis=1)
    assert isinstance(g3, cp.ndarray)
    np.testing.assert_allclose(v3, v4, rtol=1e-5)
    np.testing.assert_allclose(cp.asnumpy(g3), g4, rtol=1e-4, atol=1e-7)


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    x = torch.linspace(-3, 3, 10_000, device="cuda")
    y = torch.zeros_like(x)
    v, g = fl.value_and_grad(fl.logistic)(x, torch.sign(x) + (x == 0), device_result=True)
    assert isinstance(g, torch.Tensor) and g.device.type == "cuda"
    vh, gh = fl.value_and_grad(fl.logistic)(x.cpu().numpy(), (torch.sign(x) + (x == 0)).cpu()
                                            .numpy())
    np.testing.assert_allclose(float(torch.as_tensor(v, device="cuda")), vh, rtol=1e-5)
    np.testing.assert_allclose(g.cpu().numpy(), gh, rtol=1e-5, atol=1e-9)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        r = fl.huber(x, y, reduction="none")
    s.synchronize()
    assert isinstance(r, torch.Tensor)
    np.testing.assert_allclose(r.cpu().numpy(), fl.huber(x.cpu().numpy(), y.cpu().numpy(),
                                                         reduction="none"), rtol=1e-6)


_PROBE = """
import json, numpy as np, fastloss
from fastloss._cuda.elementwise import kernel_for
from fastloss._compile import namespace
fastloss.huber(np.ones(10, np.float32), np.zeros(10, np.float32), device="cuda")
k = kernel_for("huber", namespace("fastloss._math.elementwise", "cuda"), "ok_always",
               np.float32)
print(json.dumps({"hits": sum(k.stats.cache_hits.values()),
                  "misses": sum(k.stats.cache_misses.values())}))
"""


def test_disk_cache_across_processes(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [json.loads(subprocess.run([sys.executable, "-c", _PROBE], env=env, check=True,
                                      capture_output=True, text=True).stdout.splitlines()[-1])
            for _ in range(2)]
    assert runs == [{"hits": 0, "misses": 1}, {"hits": 1, "misses": 0}]


def test_ctc_gradient_bitwise_reproducible_on_gpu():
    # many states share a class (the blank, repeated labels): with float atomics the last
    # bits of the gradient would vary between runs; each element has one writer now
    from numba import cuda
    rng = np.random.default_rng(11)
    N, T, C, L = 16, 200, 8, 60
    x = cuda.to_device(rng.normal(size=(N, T, C)).astype(np.float32))
    labels = cuda.to_device(rng.integers(1, 3, size=(N, L)))
    il = cuda.to_device(np.full(N, T))
    ll = cuda.to_device(rng.integers(L // 2, L + 1, size=N))
    vg = fl.value_and_grad(fl.ctc_loss)
    gs = [vg(x, labels, il, ll, reduction="sum")[1].copy_to_host() for _ in range(3)]
    assert gs[0].tobytes() == gs[1].tobytes() == gs[2].tobytes()


def test_device_layout_paths_on_gpu():
    # broadcast weights, a moved class axis and device labels, at sizes of many blocks
    from numba import cuda
    rng = np.random.default_rng(12)
    x = rng.normal(size=(64, 1000, 3)).astype(np.float32)
    k = rng.integers(0, 1000, size=(64, 3))
    k[0, 0] = -100
    w = rng.random((64, 3)).astype(np.float32)
    f = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    vc, gc = f(x, k, axis=1, sample_weight=w, device="cpu")
    vd, gd = f(*(cuda.to_device(a) for a in (x, k)), axis=1, sample_weight=cuda.to_device(w))
    _close(vd, vc, np.float32)
    _close(gd.copy_to_host(), gc, np.float32)
    p = rng.normal(size=(300, 400))
    t = rng.normal(size=(1, 400))
    sw = rng.random((300, 1))
    vc, gc = fl.value_and_grad(fl.huber)(p, t, sample_weight=sw, device="cpu")
    vd, gd = fl.value_and_grad(fl.huber)(*(cuda.to_device(a) for a in (p, t)),
                                         sample_weight=cuda.to_device(sw))
    _close(vd, vc, np.float64)
    _close(gd.copy_to_host(), gc, np.float64)


def test_strided_numba_arrays_and_device_class_weight_on_gpu():
    # the flat-span view of a strided Numba device array (real DeviceNDArray memory),
    # compacted by the gather kernel; a device class_weight with label smoothing
    from numba import cuda

    from fastloss import _device
    rng = np.random.default_rng(21)
    h = rng.normal(size=(300, 70))
    d = cuda.to_device(h)
    for view, ref in ((d[5:, ::3], h[5:, ::3]), (d.T, h.T), (d[::7, 2], h[::7, 2])):
        np.testing.assert_array_equal(_device.compact(view, np.float64).copy_to_host(), ref)
    x = rng.normal(size=(257, 33))
    k = rng.integers(0, 33, 257)
    cw = rng.random(66) + 0.1
    vg = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    vc, gc = vg(x, k, class_weight=cw[::2], label_smoothing=0.1, device="cpu")
    vd, gd = vg(cuda.to_device(x), cuda.to_device(k), class_weight=cuda.to_device(cw)[::2],
                label_smoothing=0.1)
    _close(vd, vc, np.float64)
    _close(gd.copy_to_host(), gc, np.float64)
