"""Loss specifications: what a loss is called, which parameters it takes, which math."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["Param", "ElementwiseSpec", "elementwise", "ELEMENTWISE", "check_param"]


@dataclass(frozen=True)
class Param:
    """A numeric loss parameter: name, default and the rule it must satisfy.

    Rules: ``"any"`` (finite), ``">0"``, ``">=0"``, ``"open01"`` (0 < v < 1),
    ``"closed01"`` (0 <= v <= 1), ``"eps"`` (0 <= v < 0.5), ``"bool"``.
    """

    name: str
    default: float
    rule: str = "any"


_RULES = {
    "any": (lambda v: True, "finite"),
    ">0": (lambda v: v > 0, "> 0"),
    ">=0": (lambda v: v >= 0, ">= 0"),
    "open01": (lambda v: 0 < v < 1, "in (0, 1)"),
    "closed01": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "eps": (lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
}


def check_param(p: Param, value, loss: str) -> float:
    """Validate one parameter value and return it as a float."""
    if p.rule == "bool":
        if not isinstance(value, (bool, int)) or isinstance(value, float):
            raise TypeError(f"{loss}: {p.name} must be a bool, got {value!r}")
        return 1.0 if value else 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise TypeError(f"{loss}: {p.name} must be a real number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{loss}: {p.name} must be a real number, got {value!r}") from None
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
