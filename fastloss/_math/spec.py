"""Loss specifications: what a loss is called, which parameters it takes, which math."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .._validate import real_scalar

__all__ = ["Param", "ElementwiseSpec", "elementwise", "ELEMENTWISE", "ELEMENTWISE3",
           "check_param"]


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
    """An elementwise loss: scalar math ``fn(x, y, a, b, c) -> (value, grad, hess)``.

    A loss of three arrays (``inputs`` has three names) has the math
    ``fn(x, y, z, a, b, c) -> (value, d/dx, d²/dx², d/dy, d/dz)`` and a check
    ``check(x, y, z, a, b, c)`` that applies to the input named ``checked``.
    ``per_element``: {parameter: name of its three-array twin in the math module}, for
    the parameters that also take an array (broadcast to ``pred``; the twin reads the
    parameter from ``z``); ``per_element_check``: {parameter: the twin of ``check``}.
    """

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
    inputs: tuple = ("pred", "target")
    differentiable: tuple = ("pred",)
    checked: str = "target"
    per_element: dict = field(default_factory=dict)
    per_element_check: dict = field(default_factory=dict)
    base: str | None = None         # a per-element twin: the loss it serves
    z_shape: str = "numpy"          # how the third array broadcasts: "numpy", "var" (PyTorch's)
    fast: tuple = ()                # ((parameter values or None, math function name), ...)

    @property
    def arity(self) -> int:
        return len(self.inputs)

    def math_for(self, abc: tuple) -> str:
        """The math function for checked parameter values ``abc`` (``loss_params``): the
        first ``fast`` entry whose values match (None matches any), else ``fn`` itself.

        In a vectorized loop every branch of the math is computed, also those a
        parameter value switches off (``poisson_nll``'s logarithms when ``log_input`` is
        True and ``full`` False); a ``fast`` twin is the same math with those branches
        taken out, and gives the same results for those values."""
        for values, name in self.fast:
            if all(v is None or v == got for v, got in zip(values, abc)):
                return name
        return self.name


ELEMENTWISE: dict[str, ElementwiseSpec] = {}
ELEMENTWISE3: dict[str, ElementwiseSpec] = {}   # the losses of three arrays


def elementwise(params=(), hessian=True, check=None, target_domain=None, pred_domain=None,
                formula="", inputs=None, differentiable=None, checked="target",
                per_element=(), z_shape="numpy", fast=()):
    """Register the decorated scalar function as an elementwise loss.

    ``inputs`` (three names): a loss of three arrays, registered in ``ELEMENTWISE3``;
    ``differentiable``: the inputs it returns gradients for; ``z_shape="var"``: the third
    array broadcasts as PyTorch's ``gaussian_nll_loss`` variance does (the first input's
    shape, that shape without its last axis, or one axis of size 1; or a scalar), else by
    NumPy's rules, to the first input's shape.  ``per_element``: parameters
    that also take an array; their three-array twins are generated here, next to ``fn``.
    ``fast``: ``((values, name), ...)``, math functions of ``fn``'s module that the CPU
    kernels use instead of ``fn`` for those parameter values (see ``math_for``).
    """
    if len(params) > 3:
        raise ValueError("elementwise losses take at most three parameters")
    names = [p.name for p in params]

    def deco(fn):
        three = inputs is not None and len(inputs) == 3
        spec = ElementwiseSpec(
            name=fn.__name__, fn=fn, params=tuple(params), hessian=hessian, check=check,
            target_domain=target_domain, pred_domain=pred_domain, formula=formula,
            doc=(fn.__doc__ or "").strip(), inputs=tuple(inputs or ("pred", "target")),
            differentiable=tuple(differentiable or ((inputs or ("pred",))[0],)),
            checked=checked, z_shape=z_shape, fast=tuple(fast))
        for pname in per_element:
            spec.per_element[pname] = _twin(fn, names.index(pname), f"{fn.__name__}__{pname}")
            if check is not None:
                k = names.index(pname)
                spec.per_element_check[pname] = _twin(check, k, f"{check.__name__}__z{k}",
                                                      check=True)
        (ELEMENTWISE3 if three else ELEMENTWISE)[fn.__name__] = spec
        return fn

    return deco


def _twin(fn, k: int, name: str, check=False) -> str:
    """Define ``name(x, y, z, a, b, c)`` in ``fn``'s module: ``fn`` with its parameter
    ``k`` read from the third array ``z`` (no gradient w.r.t. it: its slots are 0)."""
    args = ["a", "b", "c"]
    args[k] = "z"
    call = f"{fn.__name__}(x, y, {', '.join(args)})"
    body = (f"    return {call}\n" if check else
            f"    v, g, h = {call}\n    return v, g, h, 0.0, 0.0\n")
    g = fn.__globals__
    if name not in g:
        exec(f"def {name}(x, y, z, a, b, c):\n{body}", g)   # (source generated here)
        g[name].__doc__ = f"{fn.__name__} with parameter {k} per element (from z)."
    return name
