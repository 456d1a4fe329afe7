"""pandas inputs: a ``Series`` in gives a ``Series`` out; a ``DataFrame`` is refused.

:meth:`fastloss._api.LossInfo.call` hands a call here when one of its arguments is a
pandas object (detected by the type's module name: pandas is never imported by
fastloss).  The rules:

* A ``pandas.Series`` input (``pred``, ``target``, labels, ``sample_weight``, an
  array-valued parameter such as ``class_weight``) is passed on as its NumPy values
  (``Series.to_numpy()``: no copy for NumPy dtypes; a nullable float dtype gives NaN for
  ``pd.NA``; other missing values are refused by the usual dtype check).
* Series are **not aligned** on their index: two Series inputs must have equal indexes
  (else ``ValueError``), so that a reordered target never pairs silently with the wrong
  prediction.  A Series next to a NumPy array is taken in positional order.
* Outputs of the input's length become Series with that input's index and name: the
  per-element (per-row) values of ``reduction="none"`` take the index of the first Series
  input of their length (``pred`` before ``target``; the labels of a row-wise loss index
  its rows); a gradient or Hessian with respect to a Series input takes that input's
  index and name.  Reduced values stay NumPy scalars.
* A ``pandas.DataFrame`` (any argument) raises ``TypeError`` naming the argument: pass a
  column (``df["col"]``) or ``df.to_numpy()`` (for the class axis of a row-wise loss).
"""
from __future__ import annotations

import numpy as np


def is_pandas(x) -> bool:
    t = type(x)
    return t is not np.ndarray and t.__module__.startswith("pandas")


def _values(x, name, fn):
    """The NumPy values of a Series; other pandas objects raise ``TypeError``."""
    kind = type(x).__name__
    if kind != "Series":
        what = "a pandas DataFrame" if kind == "DataFrame" else f"a pandas {kind}"
        hint = (f"pass a column ({name}=df['col']) or {name}=df.to_numpy()"
                if kind == "DataFrame" else f"pass {name}.to_numpy()")
        raise TypeError(f"{fn}: {name} is {what}; fastloss takes a pandas Series (values "
                        f"and gradients come back as Series with its index) or arrays: {hint}")
    dt = x.dtype
    if not isinstance(dt, np.dtype) and getattr(dt, "kind", "O") == "f":
        return x.to_numpy(dtype=np.dtype(dt.numpy_dtype), na_value=np.nan)   # Float64 & co
    if not isinstance(dt, np.dtype) and getattr(dt, "kind", "O") in "iub" and not x.hasnans:
        return x.to_numpy(dtype=np.dtype(dt.numpy_dtype))                    # Int64 & co
    return x.to_numpy()


def call(info, args, kwargs, request):
    """``info.call`` with pandas objects unwrapped and the results wrapped back."""
    fn = info.name
    names = info.inputs
    series = {}   # argument name -> the Series
    args2 = []
    for i, a in enumerate(args):
        name = names[i] if i < len(names) else f"argument {i}"
        if is_pandas(a):
            series[name] = a
            a = _values(a, name, fn)
        args2.append(a)
    kw2 = {}
    for k, v in kwargs.items():
        if is_pandas(v):
            series[k] = v
            v = _values(v, k, fn)
        kw2[k] = v
    first = None
    for name, s in series.items():
        if first is None:
            first = (name, s)
        elif len(s) == len(first[1]) and not s.index.equals(first[1].index):
            raise ValueError(f"{fn}: the pandas Series {first[0]} and {name} have different "
                             f"indexes; fastloss does not align them (pass "
                             f"{name}.reindex({first[0]}.index) or NumPy arrays)")
    value, grads, hess = info.call(tuple(args2), kw2, **request)
    import pandas as pd

    def wrap(arr, s):
        if isinstance(arr, np.ndarray) and arr.shape == (len(s),):
            return pd.Series(arr, index=s.index, name=s.name, copy=False)
        return arr

    if isinstance(value, np.ndarray) and value.ndim == 1:
        order = [n for n in names if n in series] + [n for n in series if n not in names]
        for n in order:
            if value.shape == (len(series[n]),):
                value = wrap(value, series[n])
                break
    if grads:
        grads = {n: (wrap(g, series[n]) if n in series else g) for n, g in grads.items()}
    if hess is not None and names[0] in series:
        hess = wrap(hess, series[names[0]])
    return value, grads, hess
