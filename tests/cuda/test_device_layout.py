"""Device-resident inputs stay on the device: broadcasting, class-axis moves, label and
length checks, row weights; and the CTC gradient is bitwise reproducible.

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cuda/test_device_layout.py -p no:cacheprovider

"No host copy" is checked by counting the device-to-host copies of a call: exactly one
(the 3-value result), or none with ``device_result=True``.
"""
import numpy as np
import pytest

import fastloss as fl
from devcopies import count_copies, host


_host, _count_copies = host, count_copies


# ------------------------------------------------------------------ the gather kernel
def test_gather_broadcast_and_permute_against_numpy():
    from numba import cuda

    from fastloss._cuda import layout, runtime
    alloc = runtime.Allocator("numba", 0)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 1, 4))
    src = cuda.to_device(a.reshape(-1))
    _, v = layout.broadcast(alloc, 0, src, a.shape, (2, 3, 5, 4), np.float32)
    np.testing.assert_array_equal(v.copy_to_host().reshape(2, 3, 5, 4),
                                  np.broadcast_to(a, (2, 3, 5, 4)).astype(np.float32))
    b = rng.normal(size=(2, 3, 4))
    src = cuda.to_device(b.reshape(-1))
    for ax in range(3):
        perm = layout.axis_last_perm(3, ax)
        _, v = layout.permute(alloc, 0, src, b.shape, perm, np.float64)
        moved = np.moveaxis(b, ax, -1)
        np.testing.assert_array_equal(v.copy_to_host().reshape(moved.shape), moved)
        _, back = layout.permute(alloc, 0, v, moved.shape, layout.axis_back_perm(3, ax),
                                 np.float64)
        np.testing.assert_array_equal(back.copy_to_host().reshape(b.shape), b)


# ----------------------------------------------------------------------- elementwise
def test_elementwise_device_broadcast_weights_and_targets():
    from numba import cuda
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4))
    y = rng.normal(size=(1, 4))
    w = rng.random((3, 1))
    vc, gc = fl.value_and_grad(fl.huber)(x, y, sample_weight=w, device="cpu")
    dx, dy, dw = (cuda.to_device(a) for a in (x, y, w))
    with _count_copies() as n:
        vd, gd = fl.value_and_grad(fl.huber)(dx, dy, sample_weight=dw)
        assert n[0] == 1   # the result only
    np.testing.assert_allclose(vd, vc, rtol=1e-13)
    np.testing.assert_allclose(gd.copy_to_host(), gc, rtol=1e-13)
    # a 0-d device weight, and a float32 weight for float64 predictions
    v0 = fl.huber(dx, dy, sample_weight=cuda.to_device(np.array(2.5)), reduction="sum")
    np.testing.assert_allclose(v0, 2.5 * fl.huber(x, y, reduction="sum", device="cpu"),
                               rtol=1e-13)
    v32 = fl.huber(dx, dy, sample_weight=cuda.to_device(w.astype(np.float32)))
    np.testing.assert_allclose(v32, fl.huber(x, y, sample_weight=w.astype(np.float32),
                                             device="cpu"), rtol=1e-7)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fl.huber(dx, dy, sample_weight=cuda.to_device(-w))
    with pytest.raises(ValueError, match=r"huber: sample_weight of shape \(2, 1\) does not "
                                         r"broadcast"):
        fl.huber(dx, dy, sample_weight=cuda.to_device(np.ones((2, 1))))
    with pytest.raises(ValueError, match=r"huber: target of shape \(4, 1\) does not"):
        fl.huber(dx, cuda.to_device(np.ones((4, 1))))


# ------------------------------------------------------------------------- row-wise
def _ice(*a, **k):
    return fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(*a, **k)


def test_rowwise_device_labels_weights_checked_on_device():
    from numba import cuda
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 4))
    k = np.array([0, 3, -100, 1, 2], np.int32)   # one ignored row
    w = rng.random(5)
    cw = np.array([1.0, 2.0, 0.5, 1.5])
    for red in ("mean", "sum", "none"):
        kw = dict(sample_weight=w, class_weight=cw, reduction=red)
        vc, gc = _ice(x, k, device="cpu", **kw)
        dkw = dict(kw, sample_weight=cuda.to_device(w))
        with _count_copies() as n:
            vd, gd = _ice(cuda.to_device(x), cuda.to_device(k), **dkw)
            if red != "none":
                assert n[0] == 1
        np.testing.assert_allclose(_host(vd), vc, rtol=1e-13)
        np.testing.assert_allclose(gd.copy_to_host(), gc, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 4\)"):
        _ice(cuda.to_device(x), cuda.to_device(np.array([0, 4, 1, 1, 1])))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        _ice(cuda.to_device(x), cuda.to_device(k), sample_weight=cuda.to_device(-w))
    v = fl.softmax_cross_entropy_with_integer_labels(
        cuda.to_device(x), cuda.to_device(np.array([0, 4, 1, 1, 1])), device_result=True)
    assert np.isnan(_host(v))
    with pytest.raises(ValueError, match="class indices"):
        fl.multiclass_hinge(cuda.to_device(x), cuda.to_device(np.array([0, 1, 2, 3, -1])))
    np.testing.assert_allclose(
        fl.multiclass_hinge(cuda.to_device(x), cuda.to_device(np.array([0, 1, 2, 3, 1]))),
        fl.multiclass_hinge(x, np.array([0, 1, 2, 3, 1]), device="cpu"), rtol=1e-13)
    with pytest.raises(TypeError, match="integer array"):
        _ice(cuda.to_device(x), cuda.to_device(np.zeros(5)))


def test_rowwise_device_pm1_labels_and_row_weights():
    from numba import cuda
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    y = np.array([1.0, -1.0, -1.0, 1.0])
    w = rng.random((4,))
    f = fl.value_and_grad(fl.cosine_embedding, argnums=(0, 1))
    vc, gc = f(a, b, y, sample_weight=w, device="cpu")
    vd, gd = f(*(cuda.to_device(v) for v in (a, b, y)), sample_weight=cuda.to_device(w))
    np.testing.assert_allclose(vd, vc, rtol=1e-13)
    for u, v in zip(gd, gc):
        np.testing.assert_allclose(u.copy_to_host(), v, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="must be 1 or -1"):
        fl.cosine_embedding(*(cuda.to_device(v) for v in (a, b, np.array([1.0, 0, 1, 1]))))
    # device weights of a dense-label loss: summed and sign-checked on the device
    p = np.abs(rng.normal(size=(4, 3)))
    lq = np.log(p / p.sum(1, keepdims=True))
    q = p / p.sum(1, keepdims=True)
    with _count_copies() as n:
        v = fl.kl_divergence(cuda.to_device(lq), cuda.to_device(q),
                             sample_weight=cuda.to_device(w))
        assert n[0] == 1
    np.testing.assert_allclose(v, fl.kl_divergence(lq, q, sample_weight=w, device="cpu"),
                               rtol=1e-13)
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fl.kl_divergence(cuda.to_device(lq), cuda.to_device(q), sample_weight=cuda.to_device(-w))


def test_rowwise_class_axis_moved_on_the_device():
    from numba import cuda
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 4, 3))   # classes on axis 1
    k = np.array([[0, 3, 1], [2, 2, 0]])
    vc, gc = _ice(x, k, axis=1, device="cpu")
    with _count_copies() as n:
        vd, gd = _ice(cuda.to_device(x), cuda.to_device(k), axis=1)
        assert n[0] == 1
    np.testing.assert_allclose(vd, vc, rtol=1e-13)
    assert gd.shape == x.shape
    np.testing.assert_allclose(gd.copy_to_host(), gc, rtol=1e-13)


# ------------------------------------------------------------------------------ CTC
def _ctc_case(dtype=np.float64):
    rng = np.random.default_rng(5)
    N, T, C = 3, 7, 5
    x = rng.normal(size=(N, T, C)).astype(dtype)
    labels = np.array([[1, 2, 1, 1, 0, 0], [3, 3, 3, 0, 0, 0], [2, 4, 2, 4, 2, 4]])
    ll = np.array([4, 3, 6])
    il = np.array([7, 6, 7])
    return x, labels, il, ll


@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "mean_batch"])
def test_ctc_device_labels_and_lengths_checked_on_device(reduction):
    from numba import cuda
    x, labels, il, ll = _ctc_case()
    w = np.array([0.5, 2.0, 1.0])
    vg = fl.value_and_grad(fl.ctc_loss)
    kw = dict(reduction=reduction, sample_weight=w, zero_infinity=True)
    vc, gc = vg(x, labels, il, ll, device="cpu", **kw)
    dev = [cuda.to_device(a) for a in (x, labels, il, ll)]
    with _count_copies() as n:
        vd, gd = vg(*dev, **dict(kw, sample_weight=cuda.to_device(w)))
        if reduction != "none":
            assert n[0] == 1
    np.testing.assert_allclose(_host(vd), vc, rtol=1e-12)
    np.testing.assert_allclose(gd.copy_to_host(), gc, atol=1e-12)
    # 1-D (concatenated) labels on the device
    flat = np.concatenate([labels[i, :ll[i]] for i in range(3)])
    v1, g1 = vg(dev[0], cuda.to_device(flat), dev[2], dev[3],
                **dict(kw, sample_weight=cuda.to_device(w)))
    np.testing.assert_allclose(_host(v1), vc, rtol=1e-12)
    np.testing.assert_allclose(g1.copy_to_host(), gc, atol=1e-12)


def test_ctc_device_checks_raise_or_give_nan():
    from numba import cuda
    x, labels, il, ll = _ctc_case()
    d = cuda.to_device
    cases = [
        ((x, labels, np.array([7, 8, 7]), ll), "input_lengths must lie in"),
        ((x, labels, il, np.array([4, -1, 3])), "label_lengths must be non-negative"),
        ((x, labels, il, np.array([4, 7, 3])), "label_lengths must be non-negative"),
        ((x, np.where(labels == 3, 5, labels), il, ll), r"labels must lie in \[0, 5\)"),
        ((x, np.array([1, 2, 0, 3]), il, np.array([2, 1, 1])), "blank"),
        ((x, np.array([1, 2, 3]), il, np.array([2, 1, 1])), "sum\\(label_lengths\\)"),
    ]
    for args, msg in cases:
        with pytest.raises(ValueError, match=msg):
            fl.ctc_loss(*(d(a) for a in args))
        assert np.isnan(_host(fl.ctc_loss(*(d(a) for a in args), device_result=True)))
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        fl.ctc_loss(*(d(a) for a in (x, labels, il, ll)),
                    sample_weight=d(np.array([1.0, -1.0, 1.0])))
    with pytest.raises(TypeError, match="integer array"):
        fl.ctc_loss(*(d(a) for a in (x, labels, il.astype(float), ll)))


def test_ctc_gradient_bitwise_reproducible_without_atomics():
    # a class shared by many states (the blank; label 1 four times, 2 twice), S' > TPB
    from fastloss._cuda import ctc as cctc
    import inspect
    assert "cuda.atomic" not in inspect.getsource(cctc)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 12, 4)).astype(np.float32)
    labels = np.array([[1, 2, 1, 1, 3, 1, 2], [3, 1, 3, 0, 0, 0, 0]])
    il, ll = np.array([12, 11]), np.array([7, 3])
    vg = fl.value_and_grad(fl.ctc_loss)
    _, g1 = vg(x, labels, il, ll, device="cuda", reduction="sum")
    _, g2 = vg(x, labels, il, ll, device="cuda", reduction="sum")
    assert g1.tobytes() == g2.tobytes()
    _, gc = vg(x.astype(np.float64), labels, il, ll, device="cpu", reduction="sum")
    np.testing.assert_allclose(g1, gc, atol=3e-6)


def test_invalid_device_labels_give_nan_rows_with_device_results():
    from numba import cuda
    x = np.zeros((3, 4))
    r = fl.softmax_cross_entropy_with_integer_labels(
        cuda.to_device(x), cuda.to_device(np.array([0, 9, -100])), reduction="none",
        device_result=True)
    r = _host(r)
    assert np.isnan(r[1]) and r[0] == pytest.approx(np.log(4)) and r[2] == 0
    xc, labels, il, ll = _ctc_case()
    v = fl.ctc_loss(*(cuda.to_device(a) for a in (xc, labels, np.array([7, 9, 7]), ll)),
                    reduction="none", device_result=True)
    v = _host(v)
    assert np.isnan(v[1]) and np.isfinite(v[0]) and np.isfinite(v[2])
    # more labels than frames (above the DP workspace's bound min(width, T)): infeasible
    x3 = np.random.default_rng(7).normal(size=(2, 3, 4))
    lab = np.array([[1, 2, 3, 1, 2], [1, 2, 0, 0, 0]])
    args = (x3, lab, np.array([3, 3]), np.array([5, 2]))
    vg = fl.value_and_grad(fl.ctc_loss)
    for zi in (False, True):
        vc, gc = vg(*args, reduction="none", zero_infinity=zi, device="cpu")
        vd, gd = vg(*(cuda.to_device(a) for a in args), reduction="none", zero_infinity=zi)
        np.testing.assert_allclose(_host(vd), vc, rtol=1e-12)
        np.testing.assert_allclose(gd.copy_to_host(), gc, atol=1e-12)
    assert vc[0] == 0 and np.isinf(vg(*args, reduction="none", device="cpu")[0][0])
