"""The diagonal Hessian of the softmax cross-entropies on CUDA equals the CPU's (tiny
inputs: the simulator is slow).

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cuda -k hessian -p no:cacheprovider
"""
import numpy as np
import pytest

import fastloss as fl

RNG = np.random.default_rng(11)
N, C = 3, 5


def _cases():
    x = RNG.normal(size=(N, C)) * 2
    x[1, 3] = -np.inf            # a masked class
    y = RNG.random((N, C))
    return [
        ("ice", fl.softmax_cross_entropy_with_integer_labels, (x, np.array([0, -100, 4])),
         {"class_weight": RNG.random(C) + 0.1, "label_smoothing": 0.2}),
        ("sce", fl.softmax_cross_entropy, (x, y), {"label_smoothing": 0.1}),
        ("mlsm", fl.multilabel_soft_margin, (x, (y > 0.5).astype(float)),
         {"class_weight": RNG.random(C) + 0.1}),
        ("msm", fl.multiclass_sparsemax_loss, (x, np.array([0, 2, 4])), {}),
        ("dice", fl.dice, (y, (y > 0.5).astype(float)), {}),
    ]


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_cuda_hessian_equals_cpu(case, reduction):
    _, f, args, kw = case
    kw = dict(kw, reduction=reduction, sample_weight=np.array([0.5, 2.0, 1.0]))
    g0, h0 = fl.grad_and_hessian(f)(*args, device="cpu", **kw)
    g1, h1 = fl.grad_and_hessian(f)(*args, device="cuda", **kw)
    assert isinstance(h1, np.ndarray) and h1.shape == h0.shape == args[0].shape
    np.testing.assert_allclose(g1, g0, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h1, h0, rtol=1e-12, atol=1e-15)


def test_cuda_hessian_device_arrays_axis_and_float32():
    from numba import cuda
    ice = fl.softmax_cross_entropy_with_integer_labels
    x = RNG.normal(size=(2, C, 2)).astype(np.float32)
    k = np.array([[0, 1], [4, 2]])
    g0, h0 = fl.grad_and_hessian(ice)(x, k, axis=1, reduction="sum")
    g1, h1 = fl.grad_and_hessian(ice)(x, k, axis=1, reduction="sum", device="cuda")
    assert h1.dtype == np.float32
    np.testing.assert_allclose(h1, h0, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(g1, g0, rtol=1e-5, atol=1e-7)
    # device inputs (labels on the device too): device results in the input's layout
    xd = cuda.to_device(np.ascontiguousarray(np.moveaxis(x, 1, -1)))
    g2, h2 = fl.grad_and_hessian(ice)(xd, cuda.to_device(k), reduction="sum")
    np.testing.assert_allclose(np.moveaxis(h2.copy_to_host(), -1, 1), h0, rtol=1e-5,
                               atol=1e-7)
    with pytest.raises(ValueError, match="host arrays only"):
        fl.grad_and_hessian(ice)(x, k, axis=1, device="cuda", hess_out=np.empty_like(x))
