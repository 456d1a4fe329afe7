"""Primitive functions per target: the float32 CPU kernels use vectorizable polynomials.

The math modules call ``exp``, ``expn`` (exp of a non-positive argument), ``log``,
``log1p``; :mod:`fastloss._compile` rebinds those
names to the functions here for the float32 CPU target.  Each casts its argument to
float32 first, so that a float64 constant in the loss math does not drag the
transcendental onto the scalar float64 path.
"""
import numpy as np
from numba import njit

from ._fastmath import fexp, fexpn, flog, flog1p

_F32 = np.float32


@njit(inline="always")
def exp32(x):
    return fexp(_F32(x))


@njit(inline="always")
def expn32(x):
    return fexpn(_F32(x))


@njit(inline="always")
def log32(x):
    return flog(_F32(x))


@njit(inline="always")
def log1p32(x):
    return flog1p(_F32(x))


F32_PRIMS = {"exp": exp32, "expn": expn32, "log": log32, "log1p": log1p32}
