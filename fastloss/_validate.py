"""Checks and conversions made in Python before any kernel runs (kernels check nothing)."""
from __future__ import annotations

import sys

import numpy as np

REDUCTIONS = ("none", "sum", "mean")
DEVICES = ("auto", "cpu", "cuda")


def check_choice(value, allowed, name: str, fn: str):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{fn}: {name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


def float_dtype_of(arr, name: str, fn: str) -> np.dtype:
    """The compute dtype for an input: float32/float64 kept, integers and bools to float64."""
    dt = np.dtype(arr.dtype)
    if dt.kind == "f":
        if dt.itemsize == 4:
            return np.dtype(np.float32)
        if dt.itemsize == 8:
            return np.dtype(np.float64)
        return np.dtype(np.float64 if dt.itemsize > 8 else np.float32)
    if dt.kind in "iub":
        return np.dtype(np.float64)
    raise TypeError(f"{fn}: {name} must be a real numeric array, got dtype {dt}")


def is_masked(x) -> bool:
    """True for a ``numpy.ma.MaskedArray`` (numpy.ma is never imported for the check)."""
    ma = sys.modules.get("numpy.ma")
    return ma is not None and isinstance(x, ma.MaskedArray)


def masked_error(name: str, fn: str) -> TypeError:
    return TypeError(f"{fn}: {name} is a masked array; masks are not applied by fastloss "
                     f"(np.asarray would drop it silently). Pass {name}.filled(v) and "
                     f"weight the masked elements 0 (e.g. "
                     f"sample_weight=~np.ma.getmaskarray({name})), or use np.ma.compressed")


def as_host_array(x, name: str, fn: str) -> np.ndarray:
    """``np.asarray`` with a clear error for things that are not numeric arrays.

    Masked arrays are refused (``TypeError``): their mask would be dropped silently.
    """
    if type(x) is not np.ndarray and is_masked(x):
        raise masked_error(name, fn)
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{fn}: {name} could not be converted to an array: {exc}") from None
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{fn}: {name} must be a real numeric array, got dtype {a.dtype}")
    return a


def real_scalar(value, name: str, fn: str) -> float:
    """A real number parameter as a float: Python/NumPy ints and floats (0-d arrays too);
    bools, complex numbers, strings, None and arrays of size > 1 raise ``TypeError``."""
    t = type(value)
    if t is float or t is int:
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if (isinstance(value, (bool, np.bool_, complex, np.complexfloating, str, bytes))
            or not isinstance(value, (int, float, np.integer, np.floating))
            and not hasattr(value, "__float__")):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}") from None


def bool_scalar(value, name: str, fn: str) -> bool:
    """A flag: ``bool`` or ``numpy.bool_`` only (0/1, strings and None raise ``TypeError``)."""
    if value is True or value is False or isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(f"{fn}: {name} must be a bool (True or False), got {value!r}")


def as_float(a: np.ndarray, dtype, name: str) -> np.ndarray:
    """C-contiguous, native-endian ``dtype`` copy only when needed (read-only is fine)."""
    dtype = np.dtype(dtype)
    if a.dtype != dtype or not a.flags.c_contiguous:
        a = np.array(a, dtype=dtype, order="C")  # (ascontiguousarray would make 0-d 1-d)
    return a


def broadcast_to_shape(a: np.ndarray, shape, name: str, other: str, fn: str) -> np.ndarray:
    """``a`` as a contiguous array of ``shape`` (materializes only a real broadcast)."""
    if a.shape == tuple(shape):
        return a
    try:
        b = np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(f"{fn}: {name} of shape {a.shape} does not broadcast to "
                         f"{other} shape {tuple(shape)}") from None
    return np.array(b, order="C")


def check_out(out, shape, dtype, name: str, fn: str) -> np.ndarray:
    """An ``out=`` buffer must be a writable C-contiguous array of the result's shape and dtype."""
    if type(out) is not np.ndarray:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(out).__name__}")
        if is_masked(out):
            raise TypeError(f"{fn}: {name} must be a plain numpy.ndarray, not a masked array "
                            f"(its mask would be ignored)")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"{fn}: {name} must have shape {tuple(shape)} and dtype {dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{fn}: {name} must be C-contiguous and writable")
    return out


def weight_total(w, n: int) -> float:
    """Σw in float64 (``n`` without weights), in the kernels' fixed summation order
    (:mod:`fastloss._cpu.fold`, so that streaming totals match it bit for bit);
    :func:`split_weights` already checked w >= 0."""
    if w is None:
        return float(n)
    from ._cpu.fold import lane_total_array
    return lane_total_array(np.ascontiguousarray(w).reshape(-1))


def split_weights(w, shape, dt, fn, other="pred"):
    """``sample_weight`` as (contiguous array of ``shape`` or None, scalar factor).

    A scalar weight never becomes an array; negative weights raise ``ValueError``.  A NaN
    weight is a weight like any other: its loss (and the weighted mean) is NaN, as in NumPy.
    """
    if w is None:
        return None, 1.0
    w = as_host_array(w, "sample_weight", fn)
    float_dtype_of(w, "sample_weight", fn)
    if w.ndim == 0:
        v = float(w)
        if v < 0:
            raise ValueError(f"{fn}: sample_weight must be non-negative, got {v}")
        return None, v
    w = broadcast_to_shape(as_float(w, dt, "sample_weight"), shape, "sample_weight", other, fn)
    neg = w < 0   # (not np.min: it returns NaN when a NaN sits next to a negative weight)
    if neg.any():
        raise ValueError(f"{fn}: sample_weight must be non-negative, found {w[neg][0]}")
    return w, 1.0


def split_buffers(given, wanted, fn: str, label: str = "grad_out") -> dict:
    """``{input name: buffer}`` of a ``grad_out=``-style argument: one buffer for one
    requested gradient, or a tuple/list of one per requested input (in ``wanted``'s order)."""
    if given is None:
        return {}
    if isinstance(given, (tuple, list)):
        if len(given) != len(wanted):
            raise ValueError(f"{fn}: {label} must hold {len(wanted)} buffers "
                             f"(one per requested input), got {len(given)}")
        return dict(zip(wanted, given))
    if len(wanted) != 1:
        raise ValueError(f"{fn}: {label} must be a tuple of {len(wanted)} buffers")
    return {wanted[0]: given}


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Exactly the same elements (same start, shape, strides, dtype)."""
    return (a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def unalias(fn: str, given, inputs, exact_ok=True):
    """Protect a kernel from ``out=``-style buffers that overlap its inputs.

    ``given``: ``[(argument name, buffer), ...]`` for the buffers the caller passed, as the
    kernel will see them; ``inputs``: the arrays the kernel reads (None entries skipped).
    Two caller buffers that share memory raise ``ValueError`` (no order of writes is right).
    A buffer that partially overlaps an input is replaced by a temporary, as NumPy's ufuncs
    do; a buffer that is exactly an input (``out=pred``) is kept when ``exact_ok``.
    Returns ``(buffers for the kernel, in the order of given; [(caller buffer, temporary)]
    to copy after the kernel succeeded)``.  Costs one bounds-only ``np.may_share_memory``
    per pair (about 0.1 µs), and only for buffers the caller passed.
    """
    if len(given) == 1:                       # the common case, without the loops
        b = given[0][1]
        for a in inputs:
            if a is not None and np.may_share_memory(b, a) and not (
                    exact_ok and _same_memory(b, a)):
                t = np.empty_like(b)
                return [t], [(b, t)]
        return [b], []
    bufs = []
    copies = []
    for i, (k, b) in enumerate(given):
        for k2, b2 in given[i + 1:]:
            if np.may_share_memory(b, b2):
                raise ValueError(f"{fn}: {k} and {k2} must not share memory")
        for a in inputs:
            if a is not None and np.may_share_memory(b, a) and not (
                    exact_ok and _same_memory(b, a)):
                t = np.empty_like(b)
                copies.append((b, t))
                b = t
                break
        bufs.append(b)
    return bufs, copies
