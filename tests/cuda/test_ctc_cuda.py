"""CTC on CUDA (simulator or GPU) against the CPU kernel, on tiny inputs.

    NUMBA_ENABLE_CUDASIM=1 python -m pytest tests/cuda -p no:cacheprovider
"""
import numpy as np
import pytest

import fastloss
from fastloss import ctc_loss, value_and_grad

vg = value_and_grad(ctc_loss)


def _case(dtype, layout="NTC"):
    rng = np.random.default_rng(0)
    N, T, C = 2, 6, 5
    x = rng.normal(size=(N, T, C)).astype(dtype)
    labels = np.array([[2, 2, 0], [1, 3, 4]])   # repeat; full length
    ll = np.array([2, 3])
    il = np.array([6, 5])
    if layout == "TNC":
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    return x, labels, il, ll


@pytest.mark.parametrize("dtype,layout", [(np.float64, "NTC"), (np.float32, "TNC")])
def test_cuda_matches_cpu(dtype, layout):
    x, labels, il, ll = _case(dtype, layout)
    kw = dict(layout=layout, reduction="none")
    vc, gc = vg(x, labels, il, ll, device="cpu", **kw)
    vd, gd = vg(x, labels, il, ll, device="cuda", **kw)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(vd, vc, rtol=tol)
    np.testing.assert_allclose(gd, gc, atol=tol)
    assert gd.dtype == x.dtype and gd.shape == x.shape


def test_cuda_log_probs_empty_label_impossible_and_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4))
    lp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    labels = np.array([[1, 1], [0, 0]])
    ll = np.array([2, 0])
    # second: [1,1] is impossible in 2 frames
    for il, kw in ((np.array([3, 2]), dict(log_probs=True, reduction="none")),
                   (np.array([2, 3]), dict(reduction="mean")),
                   (np.array([2, 3]), dict(reduction="mean_batch", zero_infinity=True))):
        if True:
            vc, gc = vg(lp, labels, il, ll, device="cpu", **kw)
            vd, gd = vg(lp, labels, il, ll, device="cuda", **kw)
            np.testing.assert_allclose(vd, vc, rtol=1e-10)
            np.testing.assert_allclose(gd, gc, atol=1e-10)


def test_cuda_device_array_inputs():
    from numba import cuda

    x, labels, il, ll = _case(np.float64)
    v = ctc_loss(cuda.to_device(x), labels, il, ll, reduction="sum")
    np.testing.assert_allclose(v, ctc_loss(x, labels, il, ll, reduction="sum", device="cpu"),
                               rtol=1e-10)
    _, g = vg(cuda.to_device(x), labels, il, ll, reduction="sum")
    assert hasattr(g, "copy_to_host")
    np.testing.assert_allclose(g.copy_to_host(),
                               vg(x, labels, il, ll, reduction="sum", device="cpu")[1],
                               atol=1e-10)


def test_cuda_minus_inf_emissions_give_zero_posterior_not_nan():
    # a feasible sequence whose logits are -inf for a class at some frames: no path uses
    # those states, so their gradient entries are 0 (softmax of -inf), never NaN
    x = np.zeros((1, 4, 3))
    x[0, :3, 2] = -np.inf
    vd, gd = vg(x, [[1, 2]], [4], [2], reduction="none", device="cuda")
    vc, gc = vg(x, [[1, 2]], [4], [2], reduction="none", device="cpu")
    gd = np.asarray(gd)
    assert np.isfinite(gd).all()
    np.testing.assert_allclose(np.asarray(vd), vc, rtol=1e-12)
    np.testing.assert_allclose(gd, gc, atol=1e-12)
    # exact value: class 2 only at the last frame (p = 1/3); frames 0-2 (p = 1/2 for blank and
    # class 1) must collapse to "1": 1bb, b1b, bb1, 11b, b11, 111 -> p = 6/8 * 1/3 = 1/4
    assert np.isclose(vc[0], np.log(4.0), rtol=1e-12)


def test_beam_search_and_forward_probs_take_device_arrays():
    """The host-side decoders and the forward variables copy device inputs to the host."""
    from numba import cuda

    x, labels, il, ll = _case(np.float64)
    xd, ld, ild, lld = (cuda.to_device(a) for a in (x, labels, il, ll))
    for a, b in zip(fastloss.ctc_beam_search_decode(xd, ild, beam_width=3, top_paths=2),
                    fastloss.ctc_beam_search_decode(x, il, beam_width=3, top_paths=2)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(fastloss.ctc_loss_with_forward_probs(xd, ld, ild, lld),
                    fastloss.ctc_loss_with_forward_probs(x, labels, il, ll)):
        np.testing.assert_array_equal(a, b)
