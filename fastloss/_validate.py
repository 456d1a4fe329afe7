"""Checks and conversions made in Python before any kernel runs (kernels check nothing)."""
from __future__ import annotations

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


def as_host_array(x, name: str, fn: str) -> np.ndarray:
    """``np.asarray`` with a clear error for things that are not numeric arrays."""
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{fn}: {name} could not be converted to an array: {exc}") from None
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{fn}: {name} must be a real numeric array, got dtype {a.dtype}")
    return a


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
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"{fn}: {name} must have shape {tuple(shape)} and dtype {dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{fn}: {name} must be C-contiguous and writable")
    return out


def weight_total(w, n: int) -> float:
    """Σw in float64 (``n`` without weights); :func:`split_weights` already checked w >= 0."""
    if w is None:
        return float(n)
    return float(np.sum(w, dtype=np.float64))


def split_weights(w, shape, dt, fn, other="pred"):
    """``sample_weight`` as (contiguous array of ``shape`` or None, scalar factor).

    A scalar weight never becomes an array; negative weights raise ``ValueError``.
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
    if w.size and np.min(w) < 0:
        raise ValueError(f"{fn}: sample_weight must be non-negative, found {np.min(w)}")
    return w, 1.0
