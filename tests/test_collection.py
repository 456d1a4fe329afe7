"""fastloss.LossCollection: weighted multi-head totals, custom terms, regularization.

The two-head example's total and gradients against float64 references and central
differences of the collection's own total.
"""
import numpy as np
import pytest
from scipy.special import log_softmax

import fastloss as fl
from fastloss import gluon, slim

RNG = np.random.default_rng(99)


def fd_total(c, arr, h=1e-6):
    """Central differences of c's total with respect to ``arr`` (modified in place)."""
    g = np.zeros_like(arr)
    for i in np.ndindex(arr.shape):
        old = arr[i]
        arr[i] = old + h
        up = c.value_and_grads()[0]
        arr[i] = old - h
        dn = c.value_and_grads()[0]
        arr[i] = old
        g[i] = (up - dn) / (2 * h)
    return g


def huber(d, delta):
    a = np.abs(d)
    return np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))


def test_two_head_total_and_gradients():
    N, C = 4, 3
    logits = RNG.normal(size=(N, C)) * 2            # classification head
    labels = RNG.integers(0, C, N)
    boxes = RNG.normal(size=(N, 2)) * 2             # regression head
    targets = RNG.normal(size=(N, 2))
    sw = RNG.uniform(0.5, 2.0, (N, 1))
    W = RNG.normal(size=(3, 2))                     # a parameter
    c = fl.LossCollection()
    i_log = c.add(fl.softmax_cross_entropy_with_integer_labels, logits, labels, label_smoothing=0.1)
    i_box = c.add(fl.huber, boxes, targets, weight=0.5, delta=1.0, sample_weight=sw)
    assert c.add(fl.absolute_error, boxes, targets, weight=0.2, reduction="sum") == i_box
    i_w = c.add_regularization(W, l2=0.01, l1=0.003)
    c.add_loss(0.3)                                              # a constant term
    c.add_loss(lambda: (0.5 * np.sum((W - 1) ** 2), W - 1), wrt=W, weight=2.0)
    assert (i_log, i_box, i_w) == (0, 1, 2)
    assert c.inputs[0] is logits and c.inputs[2] is W

    total, grads = c.value_and_grads()
    ls = log_softmax(logits, axis=1)
    ce = np.mean(0.9 * -ls[np.arange(N), labels] + 0.1 / C * -ls.sum(1))
    hub = np.sum(huber(boxes - targets, 1.0) * sw) / np.sum(np.broadcast_to(sw, boxes.shape))
    ref = (ce + 0.5 * hub + 0.2 * np.sum(np.abs(boxes - targets))
           + 0.5 * 0.01 * np.sum(W ** 2) + 0.003 * np.sum(np.abs(W)) + 0.3
           + 2.0 * 0.5 * np.sum((W - 1) ** 2))
    np.testing.assert_allclose(total, ref, rtol=1e-12)
    assert len(grads) == 3
    for arr, g in zip((logits, boxes, W), grads):
        assert g.shape == arr.shape
        np.testing.assert_allclose(g, fd_total(c, arr), rtol=1e-6, atol=1e-8)
    # Slim-style accessors on an explicit collection
    assert len(c.get_losses()) == 5 and len(c.get_regularization_losses()) == 1
    np.testing.assert_allclose(c.get_total_loss(), total, rtol=1e-13)
    np.testing.assert_allclose(c.get_total_loss(add_regularization_losses=False),
                               total - c.get_regularization_losses()[0], rtol=1e-13)


def test_live_terms_see_in_place_updates():
    W = np.array([1.0, -2.0, 3.0])
    c = fl.LossCollection()
    c.add_regularization(W, l2=1.0)
    t0, (g0,) = c.value_and_grads()
    np.testing.assert_allclose(t0, 7.0, rtol=1e-15)
    np.testing.assert_allclose(g0, W, rtol=1e-15)
    W -= 0.5 * g0                                   # an SGD step in place
    t1, (g1,) = c.value_and_grads()
    np.testing.assert_allclose(t1, 0.25 * 7.0, rtol=1e-15)
    np.testing.assert_allclose(g1, W, rtol=1e-15)


def test_gluon_and_slim_terms_and_several_argnums():
    a, p, n = (RNG.normal(size=(3, 4)) for _ in range(3))
    x, y = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    with fl.LossCollection() as default:
        c = fl.LossCollection()
        c.add(gluon.L2Loss(), x, y)                                 # per-sample losses summed
        c.add(slim.mean_squared_error, x, y, weights=2.0)           # not added to `default`
        c.add(fl.triplet_margin, a, p, n, argnums=(0, 1, 2), margin=0.5, squared=True)
        c.add_loss(lambda: (1.5, np.ones(2)))                       # a slot of its own
        assert len(default) == 0
    total, grads = c.value_and_grads()
    assert len(grads) == 5 and c.inputs[4] is None
    ref = (np.sum(0.5 * np.mean((x - y) ** 2, 1)) + 2.0 * np.mean((x - y) ** 2)
           + np.mean(np.maximum(0, np.sum((a - p) ** 2 - (a - n) ** 2, 1) + 0.5)) + 1.5)
    np.testing.assert_allclose(total, ref, rtol=1e-13)
    np.testing.assert_allclose(grads[0], (x - y) / 4 + 4.0 * (x - y) / 12, rtol=1e-13)
    for k, arr in zip((1, 2, 3), (a, p, n)):
        np.testing.assert_allclose(grads[k], fd_total(c, arr), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(grads[4], np.ones(2))


def test_context_manager_nesting_and_reset():
    base = fl.collection.get_default_collection()
    with fl.LossCollection() as outer:
        slim.absolute_difference(np.ones(2), np.zeros(2))
        with fl.LossCollection() as inner:
            slim.absolute_difference(np.ones(2), np.zeros(2), weights=3.0)
            assert slim.get_losses() == [3.0]
        assert slim.get_default_collection() is outer and slim.get_losses() == [1.0]
        np.testing.assert_allclose(inner.get_total_loss(), 3.0)
    assert fl.collection.get_default_collection() is base
    outer.clear()
    assert len(outer) == 0 and outer.value_and_grads() == (0.0, [])


def test_errors():
    c = fl.LossCollection()
    with pytest.raises(ValueError, match="non-negative"):
        c.add_regularization(np.ones(2), l2=-1.0)
    with pytest.raises(TypeError, match="not a fastloss"):
        c.add(np.sum, np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="argnums"):
        c.add(fl.squared_error, np.ones(2), np.ones(2), argnums=5)
    c.add_loss(lambda: 1.0)
    with pytest.raises(TypeError, match=r"\(value, grad\)"):
        c.value_and_grads()
    assert "LossCollection(" in repr(c)
