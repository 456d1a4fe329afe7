"""Loss specifications: what a loss is called, which parameters it takes, which math."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._validate import real_scalar

__all__ = ["Param", "ElementwiseSpec", "elementwise", "ELEMENTWISE", "check_param"]


@dataclass(frozen=True)
class Param:
    """A numeric loss parameter: name, default and the rule it must satisfy.

    Rules: ``"any"`` (finite), ``">0"``, ``">=0"``, ``"open01"`` (0 < v < 1),
    ``"open12"`` (1 < v < 2), ``"closed01"`` (0 <= v <= 1), ``"eps"`` (0 <= v < 0.5),
    ``"alpha"`` (v <= 1: a weight in [0, 1], negative to disable it), ``"bool"``.
    """

    name: str
    default: float
    rule: str = "any"


_RULES = {
    "any": (lambda v: True, "finite"),
    ">0": (lambda v: v > 0, "> 0"),
    ">=0": (lambda v: v >= 0, ">= 0"),
    "open01": (lambda v: 0 < v < 1, "in (0, 1)"),
    "open12": (lambda v: 1 < v < 2, "in (1, 2)"),
    "closed01": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "eps": (lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
    "alpha": (lambda v: v <= 1, "in [0, 1] (or negative, to disable the weighting)"),
}


def check_param(p: Param, value, loss: str) -> float:
    """Validate one parameter value and return it as a float.

    A ``"bool"`` parameter takes ``bool`` or ``numpy.bool_`` only (0, 1, 2 and strings
    raise ``TypeError``); a number takes ints and floats (Python or NumPy, 0-d arrays
    too) but not bools, complex numbers, strings or None.
    """
    if p.rule == "bool":
        if value is True or value is False or isinstance(value, np.bool_):
            return 1.0 if value else 0.0
        raise TypeError(f"{loss}: {p.name} must be a bool (True or False), got {value!r}")
    t = type(value)
    if t is float or t is int:
        v = float(value)
    else:
        v = real_scalar(value, p.name, loss)
    ok, desc = _RULES[p.rule]
    if not math.isfinite(v) or not ok(v):
        raise ValueError(f"{loss}: {p.name} must be {desc} and finite, got {value!r}")
    return v


@dataclass
class ElementwiseSpec:
    """An elementwise loss: scalar math ``fn(x, y, a, b, c) -> (value, grad, hess)``."""

    name: str
    fn: Callable
    params: tuple = ()
    hessian: bool = True
    check: Callable | None = None
    target_domain: str | None = None
    pred_domain: str | None = None
    formula: str = ""
    doc: str = ""
    kind: str = field(default="elementwise")


ELEMENTWISE: dict[str, ElementwiseSpec] = {}


def elementwise(params=(), hessian=True, check=None, target_domain=None, pred_domain=None,
                formula=""):
    """Register the decorated scalar function as an elementwise loss."""
    if len(params) > 3:
        raise ValueError("elementwise losses take at most three parameters")

    def deco(fn):
        ELEMENTWISE[fn.__name__] = ElementwiseSpec(
            name=fn.__name__, fn=fn, params=tuple(params), hessian=hessian, check=check,
            target_domain=target_domain, pred_domain=pred_domain, formula=formula,
            doc=(fn.__doc__ or "").strip())
        return fn

    return deco
