"""Row-wise losses on CUDA equal the CPU results (tiny inputs: the simulator is slow).

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda -p no:cacheprovider
"""
import numpy as np
import pytest

import fastloss as fl

RNG = np.random.default_rng(7)
N, C = 3, 5


def _probs(shape):
    p = RNG.random(shape) + 0.05
    return p / p.sum(-1, keepdims=True)


def _cases():
    x = RNG.normal(size=(N, C)) * 2
    x[1, 3] = -np.inf   # a masked class
    y = _probs((N, C))
    k = np.array([0, 2, 4])
    a, b, c = (RNG.normal(size=(N, C)) for _ in range(3))
    pm = np.array([1.0, -1.0, -1.0])
    return [
        ("sce", fl.softmax_cross_entropy, (x, y), {"label_smoothing": 0.1}),
        ("ice", fl.softmax_cross_entropy_with_integer_labels, (x, np.array([0, -100, 4])),
         {"class_weight": RNG.random(C) + 0.1, "label_smoothing": 0.2}),
        ("kl", fl.kl_divergence, (np.log(y), _probs((N, C))), {}),
        ("klt", fl.kl_divergence, (np.log(y), np.log(_probs((N, C)))), {"log_target": True}),
        ("skl", fl.softmax_kl_divergence, (x, y), {}),
        ("mh", fl.multiclass_hinge, (a, k), {"margin": 0.5}),
        ("mhcs", fl.multiclass_hinge, (a, k), {"kind": "crammer_singer"}),
        ("mh2", fl.multiclass_hinge, (a, k), {"margin": 0.5, "p": 2}),
        ("mhcs2", fl.multiclass_hinge, (a, k), {"kind": "crammer_singer", "p": 2}),
        ("cemb", fl.cosine_embedding, (a, b, pm), {"margin": -0.5}),
        ("cdist", fl.cosine_distance, (a, b), {}),
        ("trip", fl.triplet_margin, (a, b, c), {}),
        ("trips", fl.triplet_margin, (a, b, c), {"squared": True}),
        ("mpse", fl.mean_pairwise_squared_error, (a, b), {}),
        ("nll", fl.nll_loss, (np.log(y), np.array([1, 3, -100])),
         {"class_weight": RNG.random(C) + 0.1}),
        ("chinge", fl.categorical_hinge, (a * 2, y), {}),
        ("poly", fl.poly1_softmax_cross_entropy, (x, y), {"epsilon": 1.5}),
        ("mlsm", fl.multilabel_soft_margin, (x, (y > 0.2).astype(float)),
         {"class_weight": RNG.random(C) + 0.1}),
        ("cfoc", fl.categorical_focal_cross_entropy, (x, np.array([0, 2, 3])), {"gamma": 1.5}),
        # options and losses of the row protocol's refinement / row-argument forms
        ("mhw", fl.multiclass_hinge, (a, k), {"p": 2, "class_weight": RNG.random(C) + 0.1}),
        ("scew", fl.softmax_cross_entropy, (x, y), {"class_weight": RNG.random(C) + 0.1}),
        ("tripp", fl.triplet_margin, (a, b, c), {"p": 1.5, "swap": True, "margin": 2.0}),
        ("cembo", fl.cosine_embedding, (a, b, pm), {"epsilon": 0.5}),
        ("mlm", fl.multilabel_margin, (a, np.array([[1, 3, -1, 0, 0], [4, -1, 2, 2, 2],
                                                     [0, 1, 2, 2, -1]])), {}),
        ("msm", fl.multiclass_sparsemax_loss, (x, k), {}),
        ("tvk", fl.tversky, (y, (a > 0).astype(float)), {"alpha": 0.3, "beta": 0.7}),
    ]


CASES = _cases()


def _vg(f, args, **kw):
    info = f.__fastloss__
    nums = tuple(info.inputs.index(n) for n in info.differentiable)
    v, g = fl.value_and_grad(f, nums)(*args, **kw)
    return v, (g if isinstance(g, tuple) else (g,))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cuda_equals_cpu(case):
    _, f, args, kw = case
    w = np.array([0.5, 2.0, 1.0])
    for red in ("none", "sum", "mean"):
        wkw = dict(kw, reduction=red, sample_weight=w if red != "none" else None)
        v0, g0 = _vg(f, args, device="cpu", **wkw)
        v1, g1 = _vg(f, args, device="cuda", **wkw)
        np.testing.assert_allclose(np.asarray(v1), v0, rtol=1e-12, atol=1e-14)
        for u, z in zip(g1, g0):
            assert isinstance(u, np.ndarray) and u.shape == z.shape
            np.testing.assert_allclose(u, z, rtol=1e-12, atol=1e-14)


def test_cuda_float32_axis_and_device_arrays():
    from numba import cuda
    x = RNG.normal(size=(2, C, 2)).astype(np.float32)
    k = np.array([[0, 1], [4, 2]])
    v0, g0 = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(
        x, k, axis=1, reduction="none")
    v1, g1 = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(
        x, k, axis=1, reduction="none", device="cuda")
    np.testing.assert_allclose(v1, v0, rtol=1e-5)
    np.testing.assert_allclose(g1, g0, rtol=1e-5, atol=1e-7)
    # device inputs give device results
    xd = cuda.to_device(np.ascontiguousarray(np.moveaxis(x, 1, -1)))
    kd = cuda.to_device(k)
    v2, g2 = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(
        xd, kd, reduction="none")
    np.testing.assert_allclose(v2.copy_to_host(), v0, rtol=1e-5)
    np.testing.assert_allclose(np.moveaxis(g2.copy_to_host(), -1, 1), g0, rtol=1e-5,
                               atol=1e-7)


def test_cuda_errors():
    x = RNG.normal(size=(2, C))
    with pytest.raises(ValueError, match="labels must be class indices"):
        fl.softmax_cross_entropy_with_integer_labels(x, np.array([0, C]), device="cuda")
    with pytest.raises(ValueError, match="target must hold probabilities"):
        fl.kl_divergence(x, -np.ones((2, C)), device="cuda")


def test_cuda_kl_batchmean_and_elementwise_terms():
    lp, t = np.log(_probs((N, C))), _probs((N, C))
    for kw in ({"reduction": "batchmean"}, {"reduction": "none", "elementwise": True},
               {"reduction": "mean", "elementwise": True}):
        v0, g0 = fl.value_and_grad(fl.kl_divergence)(lp, t, device="cpu", **kw)
        v1, g1 = fl.value_and_grad(fl.kl_divergence)(lp, t, device="cuda", **kw)
        np.testing.assert_allclose(np.asarray(v1), v0, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(g1, g0, rtol=1e-12, atol=1e-15)
