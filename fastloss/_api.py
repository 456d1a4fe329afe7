"""The public surface: one function per loss, ``value_and_grad``, ``grad``, ``grad_and_hessian``.

Each loss is described once by a :class:`LossInfo` (its inputs, parameters, runner and
metadata); the public function, the gradient transforms, the registry ``LOSSES``, the
benchmarks and the tests all read it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["LossInfo", "LOSSES", "register", "value_and_grad", "grad", "grad_and_hessian"]

_P = inspect.Parameter
COMMON = {"sample_weight": None, "reduction": "mean", "device": "auto", "out": None}


@dataclass
class LossInfo:
    """Registry entry of one loss.

    ``runner(inputs, params, *, <common>, want_grad, want_hess, argnums, grad_out, hess_out)``
    returns ``(value, {input_name: gradient}, hessian_or_None)``.
    """

    name: str
    kind: str                      # "elementwise", "rowwise", "ctc", ...
    inputs: tuple                  # positional array inputs, in order
    params: dict                   # loss parameters (keyword-only) and their defaults
    runner: Callable
    differentiable: tuple = ("pred",)
    has_hessian: bool = False
    common: dict = field(default_factory=lambda: dict(COMMON))
    formula: str = ""
    doc: str = ""
    spec: object = None
    func: Callable = None

    @property
    def signature(self) -> inspect.Signature:
        ps = [_P(n, _P.POSITIONAL_OR_KEYWORD) for n in self.inputs]
        ps += [_P(k, _P.KEYWORD_ONLY, default=v) for k, v in self.params.items()]
        ps += [_P(k, _P.KEYWORD_ONLY, default=v) for k, v in self.common.items()]
        return inspect.Signature(ps)

    def call(self, args, kwargs, **request):
        """Bind ``args``/``kwargs`` as ``signature`` would (by hand: ``Signature.bind`` cost
        about 40 µs per call, half the cost of a call on 1 000 elements) and run."""
        names = self.inputs
        if len(args) > len(names):
            raise TypeError(f"{self.name}: takes {len(names)} positional arguments "
                            f"({', '.join(names)}) but {len(args)} were given")
        inputs = dict(zip(names, args))
        params = dict(self.params)
        common = dict(self.common)
        for k, v in kwargs.items():
            if k in params:
                params[k] = v
            elif k in common:
                common[k] = v
            elif k in names:
                if k in inputs:
                    raise TypeError(f"{self.name}: multiple values for argument '{k}'")
                inputs[k] = v
            else:
                raise TypeError(f"{self.name}: got an unexpected keyword argument '{k}'")
        missing = [n for n in names if n not in inputs]
        if missing:
            raise TypeError(f"{self.name}: missing required argument(s) "
                            f"{', '.join(repr(n) for n in missing)}")
        return self.runner({n: inputs[n] for n in names}, params, **common, **request)


LOSSES: dict[str, LossInfo] = {}


def register(info: LossInfo) -> Callable:
    """Add a loss to ``LOSSES`` and build its public function."""

    def loss(*args, **kwargs):
        return info.call(args, kwargs)[0]

    loss.__name__ = loss.__qualname__ = info.name
    loss.__module__ = "fastloss"
    loss.__signature__ = info.signature
    loss.__doc__ = _docstring(info)
    loss.__fastloss__ = info
    info.func = loss
    LOSSES[info.name] = info
    return loss


def _docstring(info: LossInfo) -> str:
    lines = [info.doc or info.name, ""]
    if info.formula:
        lines += [f"Per-element loss: {info.formula}", ""]
    lines += ["Parameters", "----------"]
    lines += [f"{n} : array" for n in info.inputs]
    lines += [f"{k} : float, default {v!r}" for k, v in info.params.items()]
    lines += [
        "sample_weight : array broadcastable to the per-element losses, optional",
        "reduction : 'none' | 'sum' | 'mean'. With weights w, 'sum' is Σ w·ℓ and 'mean'",
        "    is the weighted average Σ w·ℓ / Σ w.",
        "device : 'auto' | 'cpu' | 'cuda'",
        "out : optional buffer for the per-element losses",
    ]
    return "\n".join(lines)


def _info(fn) -> LossInfo:
    info = getattr(fn, "__fastloss__", None)
    if info is None:
        raise TypeError(f"{getattr(fn, '__name__', fn)!r} is not a fastloss loss function")
    return info


def _argnums(info: LossInfo, argnums):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    for i in nums:
        if not isinstance(i, int) or not 0 <= i < len(info.inputs):
            raise ValueError(f"{info.name}: argnums must index its inputs {info.inputs}, got {argnums!r}")
        if info.inputs[i] not in info.differentiable:
            raise ValueError(f"{info.name}: argnums={argnums!r} asks for a gradient with respect to "
                             f"{info.inputs[i]!r}; "
                             f"differentiable inputs are {info.differentiable}")
    return single, nums


def value_and_grad(fn, argnums=0):
    """``fn``'s signature, returning ``(value, grad)`` from the loss's fused kernel.

    ``grad`` is the gradient of the reduced value (of the sum for ``reduction="none"``)
    with respect to input ``argnums`` (a tuple of arrays when ``argnums`` is a tuple),
    same shape and dtype as that input. Accepts ``grad_out=`` for the gradient buffer.
    """
    info = _info(fn)
    single, nums = _argnums(info, argnums)
    names = [info.inputs[i] for i in nums]

    def value_and_grad_fn(*args, grad_out=None, **kwargs):
        v, g, _ = info.call(args, kwargs, want_grad=True, argnums=nums, grad_out=grad_out)
        return (v, g[names[0]]) if single else (v, tuple(g[n] for n in names))

    value_and_grad_fn.__name__ = f"value_and_grad_{info.name}"
    value_and_grad_fn.__doc__ = value_and_grad.__doc__
    return value_and_grad_fn


def grad(fn, argnums=0):
    """Like :func:`value_and_grad` but returns only the gradient."""
    vg = value_and_grad(fn, argnums)

    def grad_fn(*args, **kwargs):
        return vg(*args, **kwargs)[1]

    grad_fn.__name__ = f"grad_{_info(fn).name}"
    return grad_fn


def grad_and_hessian(fn):
    """``fn``'s signature, returning ``(grad, diagonal Hessian)`` with respect to ``pred``.

    What gradient-boosting libraries take as a custom objective. Accepts ``grad_out=`` and
    ``hess_out=`` buffers.
    """
    info = _info(fn)
    if not info.has_hessian:
        raise ValueError(f"{info.name} has no diagonal Hessian")

    def grad_and_hessian_fn(*args, grad_out=None, hess_out=None, **kwargs):
        _, g, h = info.call(args, kwargs, want_grad=True, want_hess=True, argnums=(0,),
                            grad_out=grad_out, hess_out=hess_out)
        return g[info.inputs[0]], h

    grad_and_hessian_fn.__name__ = f"grad_and_hessian_{info.name}"
    return grad_and_hessian_fn
