"""Metric-learning losses on CUDA (simulator or GPU) against the CPU kernel, tiny inputs.

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda/test_metric_cuda.py -p no:cacheprovider
"""
import numpy as np
import pytest

import fastloss
from fastloss import value_and_grad

NAMES = ("contrastive", "npairs", "ntxent", "triplet_semihard", "lifted_struct")


def _case(name, dtype, n=5, d=2, seed=0):
    rng = np.random.default_rng(seed)
    lab = np.array([0, 0, 1, 1, 0][:n])
    x = rng.normal(size=(n, d)).astype(dtype)
    if name == "contrastive":
        y = (x + rng.normal(size=(n, d))).astype(dtype)
        return (np.array([1, 0, 1, 0, 0][:n]), x, y), (1, 2)
    if name == "npairs":
        return (lab, x, rng.normal(size=(n, d)).astype(dtype)), (1, 2)
    if name == "ntxent":
        return (x, lab), (0,)
    return (lab, x), (1,)


@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    dtype = np.float32 if name == "lifted_struct" else np.float64
    args, idx = _case(name, dtype)
    kw = {"margin": 2.0} if name == "triplet_semihard" else {}
    vc, gc = value_and_grad(getattr(fastloss, name), argnums=idx)(*args, device="cpu", **kw)
    vd, gd = value_and_grad(getattr(fastloss, name), argnums=idx)(*args, device="cuda", **kw)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(vd, vc, rtol=tol)
    for a, b in zip(gd, gc):
        assert a.dtype == dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_cuda_device_arrays_value_only_none_and_nan():
    from numba import cuda

    args, _ = _case("triplet_semihard", np.float64)
    lab, x = args
    v = fastloss.triplet_semihard(cuda.to_device(lab), cuda.to_device(x))
    assert np.isclose(float(v), float(fastloss.triplet_semihard(lab, x)), rtol=1e-12)
    r = fastloss.contrastive(lab % 2, x, x[::-1].copy(), reduction="none", device="cuda")
    np.testing.assert_allclose(r, fastloss.contrastive(lab % 2, x, x[::-1].copy(),
                                                       reduction="none"), rtol=1e-12)
    xn = x.copy()
    xn[1, 0] = np.nan
    assert np.isnan(fastloss.lifted_struct(lab, xn, device="cuda"))
