"""Small row-wise calls run from a plan (fastloss._rowplan) give the checked call's bits."""
import numpy as np
import pytest

import fastloss as fl
from fastloss import _rowplan


def _checked(fn, *args):
    _rowplan._PLANS.clear()
    return fn(*args)


def _inputs(name, dt, rng, N=7, D=5):
    L = rng.standard_normal((N, D)).astype(dt)
    if name in ("softmax_cross_entropy_with_integer_labels", "multiclass_hinge", "nll_loss",
                "categorical_focal_cross_entropy", "multiclass_sparsemax_loss"):
        return L, rng.integers(0, D, N)
    P = rng.random((N, D)).astype(dt)
    P /= P.sum(1, keepdims=True)
    if name == "kl_divergence":
        return np.log(P), P
    return L, P


# integer labels with and without ignore_index, two float inputs, a flattened loss; each
# case compiles its kernels, so the list is short
CASES = [("softmax_cross_entropy_with_integer_labels", np.float64),
         ("softmax_cross_entropy_with_integer_labels", np.float32),
         ("kl_divergence", np.float64), ("multiclass_hinge", np.float64), ("dice", np.float64)]


@pytest.mark.parametrize("name,dt", CASES)
def test_planned_equals_checked(name, dt):
    rng = np.random.default_rng(1)
    fn = getattr(fl, name)
    args = _inputs(name, dt, rng)
    vg = fl.value_and_grad(fn)
    v0, g0 = _checked(vg, *args)
    key = _rowplan._key(fl.LOSSES[name].spec, args, True)
    assert key in _rowplan._PLANS                  # the checked call left a plan
    v1, g1 = vg(*args)                             # ... which this call runs
    assert type(v1) is type(v0) and v1 == v0 and g1.dtype == dt
    np.testing.assert_array_equal(g1, g0)
    if name == "softmax_cross_entropy_with_integer_labels":   # value only: its own plan
        assert fn(*args) == _checked(fn, *args) == fn(*args)


def test_planned_value_matches_numpy():
    rng = np.random.default_rng(2)
    L = rng.standard_normal((20, 5))
    lab = rng.integers(0, 5, 20)
    vg = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)
    vg(L, lab)
    for _ in range(3):
        lab = rng.integers(0, 5, 20)
        lab[:3] = -100                            # ignored rows: the denominator changes
        v, g = vg(L, lab)
        keep = lab >= 0
        m = L.max(1, keepdims=True)
        lse = np.log(np.exp(L - m).sum(1)) + m[:, 0]
        ref = np.mean(lse[keep] - L[keep, lab[keep]])
        p = np.exp(L - lse[:, None])
        p[np.arange(20)[keep], lab[keep]] -= 1
        p[~keep] = 0
        np.testing.assert_allclose(v, ref, rtol=1e-13)
        np.testing.assert_allclose(g, p / keep.sum(), rtol=1e-12, atol=1e-17)


def _ce_case(seed, dt=np.float64):
    """6 rows of 4 logits, their labels, the integer-label cross-entropy (planned)."""
    rng = np.random.default_rng(seed)
    f = fl.softmax_cross_entropy_with_integer_labels
    L, lab = rng.standard_normal((6, 4)).astype(dt), rng.integers(0, 4, 6)
    f(L, lab)
    return L, lab, f


def test_labels_checked_every_call():
    L, lab, f = _ce_case(3)
    bad = lab.copy()
    bad[2] = 4
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 4\).*found 4"):
        f(L, bad)
    bad[2] = -1
    fl.multiclass_hinge(L, lab)
    with pytest.raises(ValueError, match="found -1"):
        fl.multiclass_hinge(L, bad)
    assert f(L, lab) == _checked(f, L, lab)


def test_labels_not_modified_and_int32_accepted():
    L, lab, f = _ce_case(4, np.float32)
    lab = lab.astype(np.int32)
    lab[0] = -100
    v0 = _checked(f, L, lab)
    v1 = f(L, lab)
    assert v1 == v0 and lab[0] == -100


def test_keywords_readonly_and_other_metadata():
    L, lab, f = _ce_case(5)
    # keyword parameters take the checked path: a smoothed loss is larger here
    assert f(L, lab, label_smoothing=0.5) != f(L, lab)
    Lr = L.copy()
    Lr.flags.writeable = False
    assert f(Lr, lab) == f(L, lab)
    # another shape or a non-contiguous view: no plan of this shape is reused
    L2 = np.ascontiguousarray(np.vstack([L, L]))
    np.testing.assert_allclose(f(L2, np.concatenate([lab, lab])), f(L, lab), rtol=1e-15)
    Lt = np.asfortranarray(L)
    assert f(Lt, lab) == f(L, lab)


def test_gradient_wrt_second_input_not_planned():
    rng = np.random.default_rng(6)
    lp, t = _inputs("kl_divergence", np.float64, rng)
    f = fl.kl_divergence
    fl.value_and_grad(f)(lp, t)                    # a plan for the first input's gradient
    g = fl.grad(f, argnums=1)(lp, t)               # w.r.t. target: the checked path
    np.testing.assert_allclose(g, (np.log(t) + 1 - lp) / lp.shape[0], rtol=1e-12)


def test_domain_error_through_plan():
    rng = np.random.default_rng(7)
    lp, t = _inputs("kl_divergence", np.float64, rng)
    f = fl.kl_divergence
    f(lp, t)
    t2 = t.copy()
    t2[1, 1] = -0.5
    with pytest.raises(ValueError):
        f(lp, t2)
