"""CUDA elementwise kernels (simulator or GPU) equal the CPU kernels, every loss and reduction."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(__file__)))

import fastloss  # noqa: E402
from fastloss._math.spec import ELEMENTWISE  # noqa: E402
from reference import PARAMS, make_inputs  # noqa: E402


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_cuda_equals_cpu(name):
    rng = np.random.default_rng(0)
    x, y = make_inputs(name, 19, rng)
    w = rng.random(19)
    p = PARAMS.get(name, {})
    f = getattr(fastloss, name)
    for red in ("none", "sum", "mean"):
        for sw in (None, w):
            vc, gc = fastloss.value_and_grad(f)(x, y, sample_weight=sw, reduction=red,
                                                device="cpu", **p)
            vd, gd = fastloss.value_and_grad(f)(x, y, sample_weight=sw, reduction=red,
                                                device="cuda", **p)
            np.testing.assert_allclose(vd, vc, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(gd, gc, rtol=1e-12, atol=1e-14)
    gc, hc = fastloss.grad_and_hessian(f)(x, y, device="cpu", **p)
    gd, hd = fastloss.grad_and_hessian(f)(x, y, device="cuda", **p)
    np.testing.assert_allclose(hd, hc, rtol=1e-12, atol=1e-14)


def test_device_arrays_stay_on_device():
    from numba import cuda
    x = np.linspace(-2, 2, 9)
    y = np.zeros(9)
    dx, dy = cuda.to_device(x), cuda.to_device(y)
    r = fastloss.huber(dx, dy, reduction="none")
    assert not isinstance(r, np.ndarray)
    np.testing.assert_allclose(r.copy_to_host(), fastloss.huber(x, y, reduction="none"))
    v, g = fastloss.value_and_grad(fastloss.huber)(dx, dy)
    np.testing.assert_allclose(g.copy_to_host(), fastloss.grad(fastloss.huber)(x, y))
    x32 = cuda.to_device(x.astype(np.float32))
    assert fastloss.huber(x32, dy).dtype == np.float32


def test_mixed_devices_rejected():
    from numba import cuda
    with pytest.raises(ValueError, match="different devices"):
        fastloss.huber(cuda.to_device(np.zeros(3)), np.zeros(3))
    with pytest.raises(ValueError, match="device='cpu'"):
        fastloss.huber(cuda.to_device(np.zeros(3)), cuda.to_device(np.zeros(3)), device="cpu")


def test_cuda_label_errors_and_float32():
    with pytest.raises(ValueError, match="must lie in"):
        fastloss.hinge(np.zeros(3), np.array([1.0, 0.0, -1.0]), device="cuda")
    x = np.linspace(-3, 3, 10).astype(np.float32)
    y = np.sign(x)
    a = fastloss.logistic(x, y, device="cuda", reduction="none")
    b = fastloss.logistic(x, y, device="cpu", reduction="none")
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=2e-6)


def test_empty_on_cuda():
    assert fastloss.huber(np.empty(0), np.empty(0), reduction="sum", device="cuda") == 0


# --- losses of three arrays and per-element parameters (the ew3 template) -----------------
def test_three_array_losses_cuda_equal_cpu():
    from numba import cuda
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    v = rng.uniform(0.2, 2.0, (2,))           # PyTorch's rule: one fewer trailing axis
    t = np.where(rng.random((2, 3)) < 0.5, -1.0, 1.0)
    w = rng.random((2, 3))
    cases = [(fastloss.gaussian_nll, (x, y, v), (0, 1, 2), {"full": True}),
             (fastloss.margin_ranking, (x, y, t), (0, 1), {"margin": 0.2})]
    for f, args, nums, p in cases:
        for red, sw in (("none", w), ("mean", None)):
            vc, gc = fastloss.value_and_grad(f, argnums=nums)(*args, sample_weight=sw,
                                                             reduction=red, device="cpu", **p)
            vd, gd = fastloss.value_and_grad(f, argnums=nums)(*args, sample_weight=sw,
                                                             reduction=red, device="cuda", **p)
            np.testing.assert_allclose(vd, vc, rtol=1e-12, atol=1e-14)
            for a, b in zip(gd, gc):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        gc, hc = fastloss.grad_and_hessian(f)(*args, device="cpu", **p)
        gd, hd = fastloss.grad_and_hessian(f)(*args, device="cuda", **p)
        np.testing.assert_allclose(gd, gc, rtol=1e-12)
        np.testing.assert_allclose(hd, hc, rtol=1e-12)
    # device inputs, the variance broadcast on the device
    r = fastloss.gaussian_nll(cuda.to_device(x), cuda.to_device(y), cuda.to_device(v),
                              reduction="none")
    np.testing.assert_allclose(r.copy_to_host(), fastloss.gaussian_nll(x, y, v, reduction="none"),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="var must lie in"):
        fastloss.gaussian_nll(x, y, -v, device="cuda")
    with pytest.raises(ValueError, match="target must lie in"):
        fastloss.margin_ranking(x, y, t * 0.5, device="cuda")


def test_per_element_parameters_cuda_equal_cpu():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2))
    y = (rng.random((3, 2)) < 0.5).astype(float)
    for f, p in ((fastloss.sigmoid_binary_cross_entropy, {"pos_weight": np.array([0.5, 3.0])}),
                 (fastloss.sigmoid_focal, {"alpha": np.array([0.2, 0.7])})):
        vc, gc = fastloss.value_and_grad(f)(x, y, reduction="none", device="cpu", **p)
        vd, gd = fastloss.value_and_grad(f)(x, y, reduction="none", device="cuda", **p)
        np.testing.assert_allclose(vd, vc, rtol=1e-12)
        np.testing.assert_allclose(gd, gc, rtol=1e-12, atol=1e-15)
