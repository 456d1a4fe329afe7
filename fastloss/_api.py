"""The public surface: one function per loss, ``value_and_grad``, ``grad``, ``grad_and_hessian``.

Each loss is described once by a :class:`LossInfo` (its inputs, parameters, runner and
metadata); the public function, the gradient transforms, the registry ``LOSSES``, the
benchmarks and the tests all read it.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["LossInfo", "LOSSES", "register", "value_and_grad", "grad", "grad_and_hessian"]

_P = inspect.Parameter
COMMON = {"sample_weight": None, "reduction": "mean", "device": "auto", "out": None,
          "stream": None, "device_result": False, "n_threads": None}


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
        if not kwargs and len(args) == len(names):   # the common call: positional inputs
            return self.runner(dict(zip(names, args)), dict(self.params), **self.common,
                               **request)
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
        "n_threads : CPU threads for this call: None (fastloss's default, see",
        "    fastloss.set_num_threads), an int >= 1, or negative (-1: all). Ignored on CUDA.",
        "stream : CUDA stream (Numba, CuPy, PyTorch or an int handle) for the whole call;",
        "    default: the inputs' current stream (CuPy, PyTorch), else Numba's default",
        "    stream. Ignored on the CPU.",
        "device_result : bool, default False. On CUDA, return a reduced value as a 0-d",
        "    device array (the inputs' kind) instead of a NumPy scalar: no device-to-host",
        "    copy, no synchronization; labels outside the domain then give NaN instead of",
        "    raising. Ignored on the CPU.",
        "",
        "Buffers (``out=``, and ``grad_out=``/``hess_out=`` of the gradient transforms) must",
        "be writable C-contiguous NumPy arrays of the result's shape and dtype. ``out=pred``",
        "(exactly the input) works in place; a buffer that partially overlaps an input is",
        "computed through a temporary; two buffers sharing memory raise ``ValueError``. A",
        "call that raises leaves them untouched: with buffers, label domains (±1, [0, 1],",
        "non-negative probabilities) are checked by one vectorized pass before the kernel.",
        "Masked arrays raise ``TypeError`` (pass ``a.filled(v)`` and weight the masked",
        "elements 0). A NaN weight gives a NaN loss; negative weights raise ``ValueError``.",
    ]
    return "\n".join(lines)


def _info(fn) -> LossInfo:
    info = getattr(fn, "__fastloss__", None)
    if info is None:
        raise TypeError(f"{getattr(fn, '__name__', fn)!r} is not a fastloss loss function")
    return info


def _is_index(i) -> bool:
    return isinstance(i, (int, np.integer)) and not isinstance(i, (bool, np.bool_))


def _argnums(info: LossInfo, argnums):
    single = _is_index(argnums)
    if single:
        nums = (int(argnums),)
    elif isinstance(argnums, (tuple, list)) and argnums and all(map(_is_index, argnums)):
        nums = tuple(int(i) for i in argnums)
    else:
        raise TypeError(f"{info.name}: argnums must be an integer or a non-empty tuple of "
                        f"integers indexing its inputs {info.inputs}, got {argnums!r}")
    for i in nums:
        if not 0 <= i < len(info.inputs):
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
    return _Transform("value_and_grad", _info(fn).name, argnums)


class _Transform:
    """A gradient transform of one registered loss (``value_and_grad``, ``grad``,
    ``grad_and_hessian``): a module-level callable holding the loss name, so that it pickles
    with plain :mod:`pickle` (Dask, multiprocessing) and unpickles to the same loss."""

    def __init__(self, kind, name, argnums=0):
        info = LOSSES[name]
        self.kind, self.loss, self.argnums = kind, name, argnums
        self._info = info
        self._single, self._nums = _argnums(info, argnums)
        self._names = [info.inputs[i] for i in self._nums]
        self.__name__ = self.__qualname__ = f"{kind}_{name}"
        self.__doc__ = {"value_and_grad": value_and_grad, "grad": grad,
                        "grad_and_hessian": grad_and_hessian}[kind].__doc__

    def __reduce__(self):
        return (_Transform, (self.kind, self.loss, self.argnums))

    def __repr__(self):
        return f"<fastloss {self.kind}({self.loss})>"

    def __call__(self, *args, **kwargs):
        info = self._info
        if self.kind == "grad_and_hessian":
            go, ho = kwargs.pop("grad_out", None), kwargs.pop("hess_out", None)
            _, g, h = info.call(args, kwargs, want_grad=True, want_hess=True, argnums=(0,),
                                grad_out=go, hess_out=ho)
            return g[info.inputs[0]], h
        go = kwargs.pop("grad_out", None)
        v, g, _ = info.call(args, kwargs, want_grad=True, argnums=self._nums, grad_out=go)
        gr = g[self._names[0]] if self._single else tuple(g[n] for n in self._names)
        return gr if self.kind == "grad" else (v, gr)


def grad(fn, argnums=0):
    """Like :func:`value_and_grad` but returns only the gradient."""
    return _Transform("grad", _info(fn).name, argnums)


def grad_and_hessian(fn):
    """``fn``'s signature, returning ``(grad, diagonal Hessian)`` with respect to ``pred``.

    What gradient-boosting libraries take as a custom objective. Accepts ``grad_out=`` and
    ``hess_out=`` buffers.
    """
    info = _info(fn)
    if not info.has_hessian:
        raise ValueError(f"{info.name} has no diagonal Hessian")
    return _Transform("grad_and_hessian", info.name)
