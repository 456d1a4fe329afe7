"""Strided device inputs are compacted on the device; invalid ±1 labels and uint64 labels
above the int64 maximum are counted (NaN rows with ``device_result=True``).

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cuda/test_device_strided.py -p no:cacheprovider

"No host copy" is checked by counting the device-to-host copies of a call: exactly one
(the 3-value result), or none with ``device_result=True``.
"""
import numpy as np
import pytest

import fastloss as fl
from devcopies import count_copies, host


_host, _count_copies = host, count_copies


def test_compact_strided_views_against_numpy():
    from numba import cuda

    from fastloss import _device
    h = np.arange(60.0).reshape(3, 4, 5)
    d = cuda.to_device(h)
    for view, ref in ((d[:, ::2, 1:], h[:, ::2, 1:]), (d.T, h.T), (d[1:, :, 3], h[1:, :, 3])):
        assert not view.is_c_contiguous() or view is d
        with _count_copies() as n:
            c = _device.compact(view, np.float32)
            assert n[0] == 0
        assert c.is_c_contiguous() and c.dtype == np.float32
        np.testing.assert_array_equal(c.copy_to_host(), ref.astype(np.float32))
    k = cuda.to_device(np.arange(12, dtype=np.int32).reshape(3, 4))
    np.testing.assert_array_equal(_device.compact(k[:, ::3], np.int64).copy_to_host(),
                                  np.arange(12).reshape(3, 4)[:, ::3])


def test_noncontiguous_device_inputs_stay_on_the_device():
    from numba import cuda
    rng = np.random.default_rng(11)
    xp = rng.normal(size=(6, 8))
    yp = rng.normal(size=(6, 8))
    xd, yd = cuda.to_device(xp), cuda.to_device(yp)
    # elementwise: strided pred and target
    vg = fl.value_and_grad(fl.squared_error)
    vc, gc = vg(xp[:, ::2], yp[:, ::2], device="cpu")
    with _count_copies() as n:
        vd, gd = vg(xd[:, ::2], yd[:, ::2])
        assert n[0] == 1
    np.testing.assert_allclose(vd, vc, rtol=1e-13)
    np.testing.assert_allclose(gd.copy_to_host(), gc, rtol=1e-13)
    # row-wise: a transposed (class axis strided) input and strided labels
    lab = np.array([0, 2, 5, 1, 3, 3, 0, 4, 1, 2, 0, 5], np.int64)
    ld = cuda.to_device(lab)
    xt = rng.normal(size=(6, 6))
    vg = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    vc, gc = vg(xt.T, lab[::2], device="cpu")
    with _count_copies() as n:
        vd, gd = vg(cuda.to_device(xt).T, ld[::2])
        assert n[0] == 1
    np.testing.assert_allclose(vd, vc, rtol=1e-13)
    np.testing.assert_allclose(gd.copy_to_host(), gc, rtol=1e-13, atol=1e-15)
    with _count_copies() as n:
        v = vg(cuda.to_device(xt).T, ld[::2], device_result=True)[0]
        assert n[0] == 0
    np.testing.assert_allclose(_host(v), vc, rtol=1e-13)
    # CTC: strided logits (every other class dropped) and strided lengths
    x3 = rng.normal(size=(2, 5, 8))
    labels = np.array([[1, 2], [3, 1]])
    il = np.array([5, 0, 4, 0])
    vc = fl.ctc_loss(x3[:, :, ::2], labels, il[::2], [2, 2], device="cpu")
    with _count_copies() as n:
        vd = fl.ctc_loss(cuda.to_device(x3)[:, :, ::2], cuda.to_device(labels),
                         cuda.to_device(il)[::2], cuda.to_device(np.array([2, 2])))
        assert n[0] == 1
    np.testing.assert_allclose(vd, vc, rtol=1e-12)


def test_invalid_pm1_label_gives_a_nan_row_with_device_results():
    from numba import cuda
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = np.array([1.0, 0.5, -1.0, 1.0])
    yok = np.array([1.0, 1.0, -1.0, 1.0])
    vg = fl.value_and_grad(fl.cosine_embedding, argnums=(0, 1))
    vc, gc = vg(a, b, yok, reduction="none", device="cpu")
    with _count_copies() as n:
        vd, gd = vg(cuda.to_device(a), cuda.to_device(b), cuda.to_device(y),
                    reduction="none", device_result=True)
        assert n[0] == 0
    vd = _host(vd)
    assert np.isnan(vd[1])
    np.testing.assert_allclose(vd[[0, 2, 3]], vc[[0, 2, 3]], rtol=1e-13)
    for u, v in zip(gd, gc):
        u = u.copy_to_host()
        assert np.isnan(u[1]).all()
        np.testing.assert_allclose(u[[0, 2, 3]], v[[0, 2, 3]], rtol=1e-12, atol=1e-15)
    s = fl.cosine_embedding(cuda.to_device(a), cuda.to_device(b), cuda.to_device(y),
                            device_result=True)
    assert np.isnan(_host(s))
    with pytest.raises(ValueError, match="must be 1 or -1"):
        fl.cosine_embedding(cuda.to_device(a), cuda.to_device(b), cuda.to_device(y),
                            reduction="none")


def test_uint64_labels_above_int64_max_are_invalid():
    from numba import cuda
    x = np.zeros((3, 4))
    # 2**64 - 100 wraps to -100 (the default ignore_index) and 2**64 - 2**62 to a negative
    # value as int64: both must be counted invalid, never ignored or wrapped into a class
    for big in (2 ** 64 - 100, 2 ** 64 - 2 ** 62, 2 ** 63):
        lab = cuda.to_device(np.array([0, big, 1], np.uint64))
        with pytest.raises(ValueError, match="class indices"):
            fl.softmax_cross_entropy_with_integer_labels(cuda.to_device(x), lab)
        r = _host(fl.softmax_cross_entropy_with_integer_labels(
            cuda.to_device(x), lab, reduction="none", device_result=True))
        assert np.isnan(r[1]) and r[0] == pytest.approx(np.log(4)) and r[2] == pytest.approx(
            np.log(4))
        assert np.isnan(_host(fl.softmax_cross_entropy_with_integer_labels(
            cuda.to_device(x), lab, device_result=True)))
    # CTC labels and lengths
    x3 = np.zeros((2, 4, 3))
    big = 2 ** 64 - 1
    with pytest.raises(ValueError, match="labels"):
        fl.ctc_loss(cuda.to_device(x3), cuda.to_device(np.array([[1, big], [2, 1]], np.uint64)),
                    cuda.to_device(np.array([4, 4])), cuda.to_device(np.array([2, 2])))
    with pytest.raises(ValueError, match="input_lengths"):
        fl.ctc_loss(cuda.to_device(x3), cuda.to_device(np.array([[1, 2], [2, 1]])),
                    cuda.to_device(np.array([4, big], np.uint64)),
                    cuda.to_device(np.array([2, 2])))
    v = _host(fl.ctc_loss(cuda.to_device(x3),
                          cuda.to_device(np.array([[1, big], [2, 1]], np.uint64)),
                          cuda.to_device(np.array([4, 4])), cuda.to_device(np.array([2, 2])),
                          reduction="none", device_result=True))
    assert np.isnan(v[0]) and np.isfinite(v[1])


def test_device_class_weight_stays_on_the_device():
    from numba import cuda
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 4))
    k = np.array([0, 3, -100, 1, 2])
    cw = np.array([1.0, 2.0, 0.5, 1.5, 9.0])   # a strided view of it: [1, 0.5, 9] ...
    cw4 = np.array([1.0, 2.0, 0.5, 1.5])
    vg = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    for red in ("mean", "sum", "none"):
        for s in (0.0, 0.3):
            kw = dict(reduction=red, label_smoothing=s)
            vc, gc = vg(x, k, class_weight=cw4, device="cpu", **kw)
            with _count_copies() as n:
                vd, gd = vg(cuda.to_device(x), cuda.to_device(k),
                            class_weight=cuda.to_device(cw)[:4], **kw)
                if red != "none":
                    assert n[0] == 1
            np.testing.assert_allclose(_host(vd), vc, rtol=1e-13)
            np.testing.assert_allclose(gd.copy_to_host(), gc, rtol=1e-13, atol=1e-15)
    # a strided device class_weight, compacted on the device
    cws = np.array([1.0, 7.0, 2.0, 7.0, 0.5, 7.0, 1.5])
    vc = fl.softmax_cross_entropy_with_integer_labels(x, k, class_weight=cws[::2],
                                                       label_smoothing=0.2, device="cpu")
    with _count_copies() as n:
        vd = fl.softmax_cross_entropy_with_integer_labels(
            cuda.to_device(x), cuda.to_device(k), class_weight=cuda.to_device(cws)[::2],
            label_smoothing=0.2, device_result=True)
        assert n[0] == 0
    np.testing.assert_allclose(_host(vd), vc, rtol=1e-13)
    # invalid device class weights: an error naming class_weight, or NaN on the device
    for bad in (np.array([1.0, -1.0, 1.0, 1.0]), np.array([1.0, np.inf, 1.0, 1.0]),
                np.array([np.nan, 1.0, 1.0, 1.0])):
        with pytest.raises(ValueError, match="class_weight must be finite and non-negative"):
            fl.softmax_cross_entropy_with_integer_labels(
                cuda.to_device(x), cuda.to_device(k), class_weight=cuda.to_device(bad))
        v = fl.softmax_cross_entropy_with_integer_labels(
            cuda.to_device(x), cuda.to_device(k), class_weight=cuda.to_device(bad),
            device_result=True)
        assert np.isnan(_host(v))
    with pytest.raises(ValueError, match=r"class_weight must have shape \(4,\)"):
        fl.softmax_cross_entropy_with_integer_labels(
            cuda.to_device(x), cuda.to_device(k), class_weight=cuda.to_device(cw))
