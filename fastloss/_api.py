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
    # small(args, want_grad, want_hess) -> result of runner, or None: a positional call with
    # the default parameters, run from the plan an earlier checked call left
    # (fastloss._elementwise.small_call); None when the family has no such path
    small: Callable = None

    @property
    def signature(self) -> inspect.Signature:
        ps = [_P(n, _P.POSITIONAL_OR_KEYWORD) for n in self.inputs]
        ps += [_P(k, _P.KEYWORD_ONLY, default=v) for k, v in self.params.items()]
        ps += [_P(k, _P.KEYWORD_ONLY, default=v) for k, v in self.common.items()]
        if self.kind in WHERE_KINDS:
            ps.append(_P("where", _P.KEYWORD_ONLY, default=None))
        return inspect.Signature(ps)

    def call(self, args, kwargs, **request):
        """Bind ``args``/``kwargs`` as ``signature`` would (by hand: ``Signature.bind`` cost
        about 40 µs per call, half the cost of a call on 1 000 elements) and run."""
        names = self.inputs
        if _any_pandas(args) or (kwargs and _any_pandas(kwargs.values())):
            from ._pandas import call   # Series in, Series out; DataFrames refused
            return call(self, args, kwargs, request)
        if not kwargs and len(args) == len(names):   # the common call: positional inputs
            return self.runner(dict(zip(names, args)), dict(self.params), **self.common,
                               **request)
        if len(args) > len(names):
            raise TypeError(f"{self.name}: takes {len(names)} positional arguments "
                            f"({', '.join(names)}) but {len(args)} were given")
        inputs = dict(zip(names, args))
        params = dict(self.params)
        common = dict(self.common)
        where = None
        for k, v in kwargs.items():
            if k == "where" and self.kind in WHERE_KINDS:
                where = v
            elif k in params:
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
        inputs = {n: inputs[n] for n in names}
        if where is not None or isinstance(params.get("axis"), tuple):
            from ._callopts import run   # where= masks, tuple axes: rewritten calls
            return run(self, inputs, params, common, where, request)
        return self.runner(inputs, params, **common, **request)


def _any_pandas(values) -> bool:
    """Whether an argument is a pandas object (by its type's module: pandas is not
    imported here); see :mod:`fastloss._pandas`."""
    for v in values:
        if type(v) is not np.ndarray and type(v).__module__.startswith("pandas"):
            return True
    return False


LOSSES: dict[str, LossInfo] = {}
WHERE_KINDS = ("elementwise", "rowwise", "ctc", "metric")   # the kinds taking where= (_callopts)


def register(info: LossInfo) -> Callable:
    """Add a loss to ``LOSSES`` and build its public function."""

    def loss(*args, **kwargs):
        if not kwargs and info.small is not None:
            r = info.small(args, False, False)
            if r is not None:
                return r[0]
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
    """The numpydoc docstring of a loss, from its registry entry and
    :mod:`fastloss._doctext` (LaTeX formula, parameter rules, subgradients, example)."""
    from . import _doctext as T

    name, spec, kind = info.name, info.spec, info.kind
    doc = (info.doc or name).strip()
    summary, _, rest = doc.partition("\n\n")
    lines = [" ".join(summary.split()), ""]
    if rest.strip():
        lines += [rest.strip(), ""]
    latex = getattr(spec, "latex", "") or T.LATEX.get(name, "")
    per = "Per-row loss" if kind == "rowwise" else "Per-element loss"
    if latex:
        lines += [f"{per}:", "", ".. math::", "", f"    {latex}", ""]
    elif info.formula:
        lines += [f"{per}: ``{info.formula}``", ""]
    if name in T.SYMBOLS:
        lines += [T.SYMBOLS[name], ""]
    # -- Parameters
    lines += ["Parameters", "----------"]
    first = info.inputs[0]
    for n in info.inputs:
        if kind == "elementwise":
            text = T.INPUTS.get((name, n)) or T.INPUTS.get(("elementwise", n), "array_like.")
            dom = (spec.pred_domain if n == "pred" else
                   spec.target_domain if n == getattr(spec, "checked", "target") else None)
            if dom:
                text += f" Values in {dom}."
        elif (name, n) in T.INPUTS:   # a row-wise input of its own kind
            text = T.INPUTS[(name, n)]
        elif n == getattr(spec, "labels", None):
            text = T.INPUTS[("rowwise", "labels", spec.label_kind)].format(first=first)
        elif getattr(spec, "flatten", False):
            text = T.INPUTS[("rowwise", "flatten")]
        elif n == first:
            text = T.INPUTS[("rowwise", "first")]
        else:
            text = T.INPUTS[("rowwise", "float")].format(first=first)
        if n == getattr(spec, "prob", None):
            text += " Finite and non-negative."
        lines += [f"{n} : array_like", f"    {text}"]
    rules = {p.name: p for p in getattr(spec, "params", ()) if hasattr(p, "rule")}
    for k, v in info.params.items():
        p = rules.get(k)
        if p is not None and p.rule == "bool":
            lines += [f"{k} : bool, default {v!r}"]
        elif p is not None and k in getattr(spec, "per_element", ()):
            lines += [f"{k} : float or array_like, default {v!r}",
                      f"    Must be {T.RULES.get(p.rule, p.rule)}. An array broadcasts to "
                      f"``{first}``'s shape (per class: shape (C,) for (N, C)); each entry "
                      "follows the same rule."]
        elif p is not None:
            lines += [f"{k} : float, default {v!r}", f"    Must be {T.RULES.get(p.rule, p.rule)}."]
        else:
            text = T.PARAMS.get((name, k)) or T.PARAMS.get(k)
            lines += [f"{k} : {text.split('. ', 1)[0]}" if text else f"{k} : default {v!r}"]
            if text and ". " in text:
                lines += [f"    {text.split('. ', 1)[1]}"]
    batch = ("per element, ``pred``'s shape" if kind == "elementwise" else
             "per sample, shape (N,)" if getattr(spec, "flatten", False) else
             f"per row, the batch shape of ``{first}``")
    wshape = "the per-element losses" if kind == "elementwise" else "the batch shape"
    lines += [
        "sample_weight : array_like or scalar, optional",
        f"    Non-negative weights broadcastable to {wshape}. A NaN weight gives a NaN loss.",
        "reduction : {'none', 'sum', 'mean'}, default 'mean'",
        f"    'none': the losses {batch} (times the weights); 'sum': Σ w·ℓ; 'mean': the",
        "    weighted average Σ w·ℓ / Σ w (the plain mean without weights).",
        "device : {'auto', 'cpu', 'cuda'}, default 'auto'",
        "    'auto' runs on CUDA when the inputs expose ``__cuda_array_interface__``.",
        "out : ndarray, optional",
        "    Buffer for the per-element (per-row) losses of ``reduction='none'``.",
        "where : array_like of bool, optional",
        "    Elements to include (optax's ``where``): " + (
            "broadcastable to ``pred``'s shape" if kind == "elementwise" else
            "shape (N,), one per sequence" if kind == "ctc" else
            "broadcastable to the batch shape (rows)"
            + ("; a mask of the inputs' shape masks classes" if name in
               ("softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
                "kl_divergence") else "")) + ". Masked ones have",
        "    weight 0 and gradient 0 whatever they hold; 'mean' averages the others.",
        "n_threads : int, optional",
        "    CPU threads for this call: None (fastloss's default, see",
        "    :func:`fastloss.set_num_threads`), an int >= 1, or negative (-1: all).",
        "    Ignored on CUDA.",
        "stream : CUDA stream, optional",
        "    Numba, CuPy, PyTorch stream or an int handle, for the whole call; default: the",
        "    inputs' current stream (CuPy, PyTorch), else Numba's default stream. Ignored",
        "    on the CPU.",
        "device_result : bool, default False",
        "    On CUDA, return a reduced value as a 0-d device array (the inputs' kind)",
        "    instead of a NumPy scalar: no device-to-host copy, no synchronization; labels",
        "    outside the domain then give NaN instead of raising. Ignored on the CPU.",
        "",
        "Returns",
        "-------",
        "loss : numpy scalar or ndarray",
        "    With 'sum' or 'mean', a NumPy scalar of the input dtype (float32 or float64;",
        "    accumulated in float64). With 'none', an array of the losses, " + batch.split(", ", 1)[1] + ".",
        "    CUDA inputs give results of the inputs' kind.",
        "",
        "Raises",
        "------",
        "ValueError",
        "    Shapes that do not match, labels outside the domain, a parameter that breaks",
        "    its rule, negative weights. The message names the function and the argument.",
        "TypeError",
        "    Non-numeric, complex or masked inputs, unknown keywords.",
        "",
        "See Also",
        "--------",
        "fastloss.value_and_grad, fastloss.grad" + (", fastloss.grad_and_hessian"
                                                     if info.has_hessian else ""),
        "",
        "Notes",
        "-----",
    ]
    if name in T.SUBGRADIENT:
        lines += [f"Subgradient: {T.SUBGRADIENT[name]}", ""]
    diff = ", ".join(f"``{d}``" for d in info.differentiable)
    lines += [
        f"Differentiable inputs: {diff}"
        + (f" (and a diagonal Hessian with respect to ``{info.inputs[0]}`` through"
           " :func:`fastloss.grad_and_hessian`)." if info.has_hessian else "."),
        "The gradient is that of the reduced value (of the sum for ``reduction='none'``).",
        "NaN in gives NaN out; ±inf in gives the mathematical limit where one exists.",
        "",
        "Buffers (``out=``, and ``grad_out=``/``hess_out=`` of the gradient transforms) must",
        "be writable C-contiguous NumPy arrays of the result's shape and dtype. ``out=pred``",
        "(exactly the input) works in place; a buffer that partially overlaps an input is",
        "computed through a temporary; two buffers sharing memory raise ``ValueError``. A",
        "call that raises leaves them untouched: with buffers, label domains (±1, [0, 1],",
        "non-negative probabilities) are checked by one vectorized pass before the kernel.",
        "Masked arrays raise ``TypeError`` (pass ``a.filled(v)`` and weight the masked",
        "elements 0).",
        "",
        "Examples",
        "--------",
        ">>> import numpy as np, fastloss",
    ]
    call = f"fastloss.value_and_grad(fastloss.{name})"
    if kind == "elementwise" and len(info.inputs) == 2:
        dom = ("poisson_nll" if name == "poisson_nll" else "prob" if spec.pred_domain
               else spec.target_domain or "regression")
        x, y = T.EW_INPUTS.get(dom, T.EW_INPUTS["regression"])
        lines += [f">>> pred = np.array({x})", f">>> target = np.array({y})"]
        args, exp = "pred, target", T.EW_EXPECTED.get(name)
        if exp:
            lines += [f'>>> fastloss.{name}(pred, target, reduction="none").round(4)', exp[0]]
            exp = exp[1:]
    elif name in T.ROW_EXAMPLES or name in T.EW3_EXAMPLES:
        setup, args = T.ROW_EXAMPLES.get(name) or T.EW3_EXAMPLES[name]
        lines += [f">>> {s}" for s in setup]
        exp = T.ROW_EXPECTED.get(name) or T.EW3_EXPECTED.get(name)
    else:
        return "\n".join(lines[:-4])   # no example inputs known: no Examples section
    lines += [f">>> loss, g = {call}({args})"]
    if exp:
        lines += [">>> round(float(loss), 4)", exp[0], ">>> g.round(4)", *exp[1].split("\n")]
    else:
        lines += [f">>> g.shape == {args.split(',')[0]}.shape, g.dtype",
                  "(True, dtype('float64'))"]
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


def value_and_grad(fn, argnums=None):
    """``fn``'s signature, returning ``(value, grad)`` from the loss's fused kernel.

    ``grad`` is the gradient of the reduced value (of the sum for ``reduction="none"``)
    with respect to input ``argnums`` (a tuple of arrays when ``argnums`` is a tuple),
    same shape and dtype as that input. Accepts ``grad_out=`` for the gradient buffer.

    Parameters
    ----------
    fn : callable
        A fastloss loss function (``fastloss.huber``, ``fastloss.LOSSES[name].func``).
    argnums : int or tuple of int, optional
        The input(s) to differentiate, by position; each must be one of the loss's
        differentiable inputs (``fastloss.LOSSES[name].differentiable``). Default: the
        first differentiable input (input 0, except for the metric losses whose labels
        come first, as in TF-Slim: their first embedding input).

    Returns
    -------
    callable
        ``f(*inputs, **kwargs) -> (value, grad)`` with ``fn``'s signature plus
        ``grad_out=``; ``value`` is what ``fn`` returns, ``grad`` an array like the
        differentiated input (a tuple of arrays for a tuple ``argnums``). It pickles with
        plain :mod:`pickle`.

    Raises
    ------
    TypeError
        ``fn`` is not a fastloss loss, or ``argnums`` is not an integer or tuple of them.
    ValueError
        ``argnums`` names an input that is out of range or not differentiable.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> loss, g = fastloss.value_and_grad(fastloss.squared_error)(np.array([1.0, 2.0]),
    ...                                                           np.zeros(2))
    >>> float(loss), g
    (2.5, array([1., 2.]))
    """
    return _Transform("value_and_grad", _info(fn).name, argnums)


class _Transform:
    """A gradient transform of one registered loss (``value_and_grad``, ``grad``,
    ``grad_and_hessian``): a module-level callable holding the loss name, so that it pickles
    with plain :mod:`pickle` (Dask, multiprocessing) and unpickles to the same loss."""

    def __init__(self, kind, name, argnums=None):
        info = LOSSES[name]
        if argnums is None:      # the first differentiable input
            argnums = info.inputs.index(info.differentiable[0])
        self.kind, self.loss, self.argnums = kind, name, argnums
        self._info = info
        self._single, self._nums = _argnums(info, argnums)
        self._names = [info.inputs[i] for i in self._nums]
        # the planned small-call path differentiates the first input only
        self._small = (info.small is not None and self._single
                       and self._names[0] == info.inputs[0])
        self.__name__ = self.__qualname__ = f"{kind}_{name}"
        self.__doc__ = {"value_and_grad": value_and_grad, "grad": grad,
                        "grad_and_hessian": grad_and_hessian}[kind].__doc__

    def __reduce__(self):
        return (_Transform, (self.kind, self.loss, self.argnums))

    def __repr__(self):
        return f"<fastloss {self.kind}({self.loss})>"

    def __call__(self, *args, **kwargs):
        info = self._info
        if not kwargs and self._small:
            hess = self.kind == "grad_and_hessian"
            r = info.small(args, True, hess)
            if r is not None:
                g = r[1][self._names[0]]
                if hess:
                    return g, r[2]
                return g if self.kind == "grad" else (r[0], g)
        # the elementwise kernels skip the value's math when it is discarded
        nov = {"want_value": False} if info.kind == "elementwise" else {}
        if self.kind == "grad_and_hessian":
            go, ho = kwargs.pop("grad_out", None), kwargs.pop("hess_out", None)
            _, g, h = info.call(args, kwargs, want_grad=True, want_hess=True, argnums=(0,),
                                grad_out=go, hess_out=ho, **nov)
            return g[info.inputs[0]], h
        go = kwargs.pop("grad_out", None)
        v, g, _ = info.call(args, kwargs, want_grad=True, argnums=self._nums, grad_out=go,
                            **(nov if self.kind == "grad" else {}))
        gr = g[self._names[0]] if self._single else tuple(g[n] for n in self._names)
        return gr if self.kind == "grad" else (v, gr)


def grad(fn, argnums=None):
    """Like :func:`value_and_grad` but returns only the gradient.

    Parameters
    ----------
    fn : callable
        A fastloss loss function.
    argnums : int or tuple of int, optional
        The input(s) to differentiate, by position (default: the first differentiable
        input, as :func:`value_and_grad`).

    Returns
    -------
    callable
        ``f(*inputs, **kwargs) -> grad`` with ``fn``'s signature plus ``grad_out=``: the
        gradient of the reduced value, like the differentiated input (a tuple for a tuple
        ``argnums``).

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> fastloss.grad(fastloss.squared_error)(np.array([1.0, 2.0]), np.zeros(2), reduction="sum")
    array([2., 4.])
    """
    return _Transform("grad", _info(fn).name, argnums)


def grad_and_hessian(fn):
    """``fn``'s signature, returning ``(grad, diagonal Hessian)`` with respect to its first
    input (``pred``; the logits of the softmax cross-entropies).

    What gradient-boosting libraries take as a custom objective: both are of the reduced
    value (of the sum for ``reduction="none"``), so weights and ``"mean"``'s 1/Σw scale
    them alike; same shape and dtype as that input. For the softmax cross-entropies the
    Hessian is the diagonal of the true Hessian w.r.t. the logits, T·p(1 − p) per row.
    Accepts ``grad_out=`` and ``hess_out=`` buffers.

    Parameters
    ----------
    fn : callable
        A fastloss loss function with a Hessian (``fastloss.LOSSES[name].has_hessian``).

    Returns
    -------
    callable
        ``f(*inputs, **kwargs) -> (grad, hess)``: the gradient and the diagonal of the
        Hessian of the reduced value with respect to the first input, both like it.

    Raises
    ------
    ValueError
        The loss has no diagonal Hessian.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> g, h = fastloss.grad_and_hessian(fastloss.huber)(np.array([0.5, 3.0]), np.zeros(2),
    ...                                                  reduction="sum")
    >>> g, h
    (array([0.5, 1. ]), array([1., 0.]))
    """
    info = _info(fn)
    if not info.has_hessian:
        raise ValueError(f"{info.name} has no diagonal Hessian")
    return _Transform("grad_and_hessian", info.name)
