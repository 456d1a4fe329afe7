"""pandas: a Series in gives a Series (same index, name) out for per-element results and
gradients; Series are not aligned (unequal indexes raise); DataFrames are refused."""
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl

pd = pytest.importorskip("pandas")

RNG = np.random.default_rng(5)


def _series(n=6, name="pred", start=10):
    return pd.Series(RNG.normal(size=n), index=pd.RangeIndex(start, start + n * 2, 2),
                     name=name)


def test_import_fastloss_does_not_import_pandas():
    code = "import sys, fastloss; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False"]


def test_series_values_and_gradients_keep_index_and_name():
    p = _series()
    t = pd.Series(RNG.normal(size=6), index=p.index, name="y")
    v = fl.huber(p, t, delta=0.5, reduction="none")
    assert isinstance(v, pd.Series) and v.index.equals(p.index) and v.name == "pred"
    ref = fl.huber(p.to_numpy(), t.to_numpy(), delta=0.5, reduction="none")
    np.testing.assert_array_equal(v.to_numpy(), ref)
    # reduced values stay NumPy scalars, equal to the array call
    m = fl.huber(p, t, delta=0.5)
    assert isinstance(m, np.floating) and m == fl.huber(p.to_numpy(), t.to_numpy(), delta=0.5)
    # gradients (value_and_grad / grad / grad_and_hessian) w.r.t. a Series are Series
    val, g = fl.value_and_grad(fl.huber)(p, t, delta=0.5, reduction="none")
    assert isinstance(val, pd.Series) and isinstance(g, pd.Series)
    assert g.index.equals(p.index) and g.name == "pred"
    np.testing.assert_array_equal(g.to_numpy(), fl.grad(fl.huber)(p.to_numpy(), t.to_numpy(),
                                                                   delta=0.5, reduction="none"))
    g2, h = fl.grad_and_hessian(fl.logistic)(p, np.sign(t.to_numpy()), reduction="sum")
    assert isinstance(g2, pd.Series) and isinstance(h, pd.Series) and h.index.equals(p.index)
    gr, hr = fl.grad_and_hessian(fl.logistic)(p.to_numpy(), np.sign(t.to_numpy()),
                                              reduction="sum")
    np.testing.assert_array_equal(h.to_numpy(), hr)
    np.testing.assert_array_equal(g2.to_numpy(), gr)
    # a Series target with a NumPy prediction: the values take the target's index
    v = fl.squared_error(p.to_numpy(), t, reduction="none")
    assert isinstance(v, pd.Series) and v.name == "y"
    # keywords and sample weights as Series
    w = pd.Series(RNG.random(6), index=p.index)
    v = fl.squared_error(pred=p, target=t, sample_weight=w, reduction="none")
    np.testing.assert_allclose(v.to_numpy(), w.to_numpy() * (p - t).to_numpy() ** 2,
                               rtol=1e-15)


def test_float32_and_nullable_dtypes():
    p = _series().astype(np.float32)
    v = fl.squared_error(p, 0.0, reduction="none")
    assert v.dtype == np.float32 and isinstance(v, pd.Series)
    q = pd.Series([0.5, None, 2.0], dtype="Float64")
    v = fl.squared_error(q, 0.0, reduction="none")
    np.testing.assert_array_equal(v.to_numpy(), [0.25, np.nan, 4.0])


def test_row_wise_labels_series_indexes_the_rows():
    logits = RNG.normal(size=(4, 3))
    lab = pd.Series([0, 2, 1, 1], index=list("abcd"), name="label")
    v = fl.softmax_cross_entropy_with_integer_labels(logits, lab, reduction="none")
    assert isinstance(v, pd.Series) and list(v.index) == list("abcd")
    ref = fl.softmax_cross_entropy_with_integer_labels(logits, lab.to_numpy(),
                                                       reduction="none")
    np.testing.assert_array_equal(v.to_numpy(), ref)
    _, g = fl.value_and_grad(fl.softmax_cross_entropy_with_integer_labels)(logits, lab)
    assert isinstance(g, np.ndarray) and g.shape == (4, 3)   # w.r.t. the NumPy logits


def test_unaligned_series_and_dataframes_are_refused():
    p = _series()
    t = pd.Series(RNG.normal(size=6), name="y")          # another index
    with pytest.raises(ValueError, match="huber: the pandas Series pred and target have "
                                         "different indexes"):
        fl.huber(p, t)
    df = pd.DataFrame({"a": RNG.normal(size=4), "b": RNG.normal(size=4)})
    with pytest.raises(TypeError, match=r"squared_error: pred is a pandas DataFrame.*df\['col'\]"):
        fl.squared_error(df, 0.0)
    with pytest.raises(TypeError, match="softmax_cross_entropy_with_integer_labels: logits is "
                                        "a pandas DataFrame"):
        fl.grad(fl.softmax_cross_entropy_with_integer_labels)(df, np.array([0, 1, 0, 1]))
    with pytest.raises(TypeError, match="sample_weight is a pandas DataFrame"):
        fl.squared_error(p, 0.0, sample_weight=df)
    with pytest.raises(TypeError, match="must be a real numeric array"):
        fl.squared_error(pd.Series(["a", "b"]), 0.0)
