"""PyTorch bridge: every registered fastloss loss as a differentiable PyTorch operation.

    >>> import torch, fastloss.torch as flt
    >>> pred = torch.randn(8, requires_grad=True)
    >>> loss = flt.huber(pred, torch.zeros(8), delta=1.0)
    >>> loss.backward()                       # pred.grad from the fused forward kernel

For each loss in :data:`fastloss.LOSSES` this module provides

* a function of the same name (``fastloss.torch.huber(pred, target, delta=1.0,
  reduction="mean")``) taking the loss's inputs as tensors (or anything fastloss takes), its
  parameters and the common keywords (``sample_weight``, ``reduction``, ``n_threads``,
  ``device``, ``stream``);
* an :class:`torch.nn.Module` named in CamelCase (``Huber(delta=1.0)``,
  ``SoftmaxCrossEntropyWithIntegerLabels()``, ``CtcLoss()``), and the generic
  :class:`Loss` (``Loss("huber", delta=1.0)``).

They are generated from the registry when this module is imported, so a new loss needs no
edit here.  ``import fastloss`` never imports this module (nor PyTorch).

How a call runs.  When autograd needs a gradient (grad mode on and some input requiring
grad), the forward pass is ONE call of the loss's fused kernel, ``value_and_grad`` with the
gradient written by ``grad_out=`` straight into the memory of a new tensor; that gradient
(of the reduced value, of the *sum* for ``reduction="none"``) is saved, and backward only
scales it by the incoming gradient: a scalar for ``"sum"``/``"mean"``/``"mean_batch"``, the
per-element (per-row, per-sequence) incoming gradient broadcast over the reduced axis for
``"none"``.  Otherwise (``torch.no_grad()``, nothing requiring grad) only the value is
computed.  Gradients flow to the loss's differentiable inputs (``LOSSES[name].differentiable``);
a non-differentiable input that requires grad (a regression target, ``sample_weight``) raises
``TypeError`` rather than silently receiving no gradient — pass ``x.detach()``.

Memory.  CPU tensors go in as zero-copy NumPy views (``tensor.detach().numpy()``, any
strides) and results come back through ``torch.from_numpy`` (no copy).  CUDA tensors are
passed to fastloss as they are (it reads ``__cuda_array_interface__`` and returns PyTorch
tensors on the same device, reduced values as 0-d device tensors without a host
synchronization).  Results have the input's device and the loss's floating dtype (that of
``pred``/``logits``); integer label tensors are accepted where the loss takes labels.
float16 and bfloat16 are refused with ``TypeError`` (cast with ``x.float()``): fastloss's
kernels exist for float32 and float64 only, and a silent upcast would copy the input.
"""
from __future__ import annotations

import numpy as np
import torch

from ._api import LOSSES

__all__ = ["Loss", "function", "loss_module"]

_REFUSED_KW = ("out", "grad_out", "hess_out", "device_result")
_HALF = (torch.float16, torch.bfloat16)


# --- conversion ---------------------------------------------------------------------------

def _arg(x, name, fn, *, allow_grad):
    """``x`` as fastloss takes it: CPU tensors as zero-copy NumPy views, CUDA tensors as they
    are (detached), anything else unchanged."""
    if not isinstance(x, torch.Tensor):
        return x
    if x.dtype in _HALF:
        raise TypeError(f"fastloss.torch.{fn}: {name} has dtype {x.dtype}; fastloss computes in "
                        f"float32 or float64 only (cast with {name}.float())")
    if x.requires_grad and not allow_grad and torch.is_grad_enabled():
        raise TypeError(f"fastloss.torch.{fn}: {name} requires grad but {fn} has no gradient "
                        f"with respect to {name!r} (differentiable inputs: "
                        f"{LOSSES[fn].differentiable}); pass {name}.detach()")
    x = x.detach()
    if x.device.type == "cuda":
        return x
    if x.device.type != "cpu":
        raise TypeError(f"fastloss.torch.{fn}: {name} is on device {x.device}; fastloss runs on "
                        f"CPU and CUDA tensors only")
    if x.is_conj() or x.is_neg():
        x = x.resolve_conj().resolve_neg()
    return x.numpy()


def _tensor(v, device):
    """A fastloss result (NumPy scalar/array, or a CUDA tensor already) as a tensor."""
    if isinstance(v, torch.Tensor):
        return v
    if device.type == "cuda":                     # another CUDA array kind: no host copy
        return torch.as_tensor(v, device=device)
    if isinstance(v, np.ndarray):
        if not v.flags.writeable:
            v = v.copy()
        t = torch.from_numpy(v)
    else:
        t = torch.from_numpy(np.asarray(v))      # a NumPy scalar: its dtype kept
    return t if device.type == "cpu" else t.to(device)


def _row_view(info, params, value_shape, in_shape):
    """Shape that makes the per-row incoming gradient (``value_shape``, ``reduction="none"``)
    broadcast against an input of ``in_shape``; ``None`` when no axis mapping fits."""
    vs, s = tuple(value_shape), tuple(in_shape)
    if vs == s:
        return s
    nd = len(s)
    candidates = []
    if info.kind == "ctc":
        layout = params.get("layout", "NTC")
        candidates.append([1, 2] if layout == "NTC" else [0, 2])   # reduced: time, class
    if "axis" in params and nd:
        ax = params["axis"]
        if isinstance(ax, (int, np.integer)) and -nd <= ax < nd:
            candidates.append([int(ax) % nd])
    candidates.append(list(range(len(vs), nd)))          # rows leading, reduced trailing
    for red in candidates:
        kept = tuple(d for i, d in enumerate(s) if i not in red)
        if kept == vs:
            return tuple(1 if i in red else d for i, d in enumerate(s))
    return None


# --- the autograd Function ---------------------------------------------------------------

class _Fused(torch.autograd.Function):
    """Forward: value and gradient from one fused kernel call; backward: the saved gradient
    times the incoming gradient.  ``plan`` carries everything that is not a tensor input."""

    @staticmethod
    def forward(ctx, plan, *tensors):
        info, kwargs, wanted = plan["info"], plan["kwargs"], plan["wanted"]
        fn, names = info.name, info.inputs
        args = [_arg(t, n, fn, allow_grad=True) for t, n in zip(tensors, names)]
        device = plan["device"]
        cuda = device.type == "cuda"
        argnums = tuple(names.index(n) for n in wanted)
        kw = dict(kwargs)
        gbufs = None
        if not cuda:
            dt = plan["dtype"]
            gbufs = [torch.empty(tuple(tensors[i].shape), dtype=dt) for i in argnums]
            kw["grad_out"] = gbufs[0].numpy() if len(gbufs) == 1 else tuple(g.numpy() for g in gbufs)
        else:
            kw["device_result"] = True
        value, grads, _ = info.call(tuple(args), kw, want_grad=True, argnums=argnums,
                                    grad_out=kw.pop("grad_out", None))
        if cuda:
            gbufs = [grads[n] if isinstance(grads[n], torch.Tensor)
                     else torch.as_tensor(grads[n], device=device) for n in wanted]
        else:   # the buffers hold the gradients unless fastloss had to use a temporary
            gbufs = [b if np.shares_memory(grads[n], b.numpy()) or b.numel() == 0
                     else _tensor(grads[n], device) for b, n in zip(gbufs, wanted)]
        out = _tensor(value, device)
        views = []
        if out.dim():                        # reduction="none": per element / row / sequence
            for i in argnums:
                v = _row_view(info, plan["params"], out.shape, tensors[i].shape)
                if v is None:
                    raise ValueError(f"fastloss.torch.{fn}: reduction='none' gives values of "
                                     f"shape {tuple(out.shape)} that do not map onto "
                                     f"{names[i]} of shape {tuple(tensors[i].shape)}")
                views.append(v)
        ctx.save_for_backward(*gbufs)
        ctx.slots = [names.index(n) for n in wanted]
        ctx.n_inputs = len(tensors)
        ctx.views = views
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout):
        saved = ctx.saved_tensors
        res = [None] * (1 + ctx.n_inputs)
        for k, (slot, g) in enumerate(zip(ctx.slots, saved)):
            if ctx.views:
                r = g * gout.reshape(ctx.views[k]).to(g.dtype)
            elif gout.device.type == "cpu" and gout.item() == 1.0:
                r = g                          # the common loss.backward(): no extra pass
            else:
                r = g * gout.to(g.dtype)
            res[1 + slot] = r
        return tuple(res)


# --- the public functions -----------------------------------------------------------------

def _call(name, args, kwargs):
    info = LOSSES[name]
    fn, names = info.name, info.inputs
    for k in _REFUSED_KW:
        if k in kwargs:
            raise TypeError(f"fastloss.torch.{fn}: {k}= is managed by the bridge; call "
                            f"fastloss.{fn} with NumPy arrays for preallocated buffers")
    if len(args) > len(names):
        raise TypeError(f"fastloss.torch.{fn}: takes {len(names)} positional arguments "
                        f"({', '.join(names)}) but {len(args)} were given")
    inputs = dict(zip(names, args))
    rest = {}
    for k, v in kwargs.items():
        if k in names:
            if k in inputs:
                raise TypeError(f"fastloss.torch.{fn}: multiple values for argument '{k}'")
            inputs[k] = v
        else:
            rest[k] = v
    missing = [n for n in names if n not in inputs]
    if missing:
        raise TypeError(f"fastloss.torch.{fn}: missing required argument(s) "
                        f"{', '.join(repr(n) for n in missing)}")
    tensors = [inputs[n] for n in names]
    # parameters and weights: never differentiated here (refused if they require grad)
    conv = {k: _arg(v, k, fn, allow_grad=False) for k, v in rest.items()}
    ref = next((t for t in tensors if isinstance(t, torch.Tensor)), None)
    device = ref.device if ref is not None else torch.device("cpu")
    need = torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad
                                           for t in tensors)
    if not need:                                 # value only: no gradient computed
        if device.type == "cuda":
            conv["device_result"] = True
        args_ = tuple(_arg(t, n, fn, allow_grad=True) for t, n in zip(tensors, names))
        value, _, _ = info.call(args_, conv)
        return _tensor(value, device)
    wanted = []
    for n, t in zip(names, tensors):
        if isinstance(t, torch.Tensor) and t.requires_grad:
            if n not in info.differentiable:
                raise TypeError(f"fastloss.torch.{fn}: {n} requires grad but {fn} has no "
                                f"gradient with respect to {n!r} (differentiable inputs: "
                                f"{info.differentiable}); pass {n}.detach()")
            if t.dtype in _HALF:
                _arg(t, n, fn, allow_grad=True)          # raises the dtype error
            wanted.append(n)
    # the loss's float dtype: its first differentiable float input's (labels may come first)
    first = next((t for n, t in zip(names, tensors) if isinstance(t, torch.Tensor)
                  and t.dtype in (torch.float32, torch.float64) and n in info.differentiable),
                 None)
    if first is None:
        first = next(t for t in tensors if isinstance(t, torch.Tensor))
    dtype = first.dtype if first.dtype in (torch.float32, torch.float64) else torch.float64
    params = dict(info.params)
    params.update({k: v for k, v in conv.items() if k in params})
    plan = {"info": info, "kwargs": conv, "wanted": tuple(wanted), "device": device,
            "dtype": dtype, "params": params}
    return _Fused.apply(plan, *tensors)


def function(name):
    """The PyTorch form of the registered loss ``name`` (what ``fastloss.torch.<name>`` is)."""
    info = LOSSES[name]

    def loss(*args, **kwargs):
        return _call(name, args, kwargs)

    loss.__name__ = loss.__qualname__ = name
    loss.__module__ = __name__
    loss.__signature__ = info.signature.replace(parameters=[
        p for p in info.signature.parameters.values() if p.name not in _REFUSED_KW])
    loss.__doc__ = (f"``fastloss.{name}`` on PyTorch tensors, differentiable with respect to "
                    f"{', '.join(info.differentiable)} (one fused kernel call computes value "
                    f"and gradient).\n\n" + ((info.func.__doc__ or "") if info.func else ""))
    return loss


class Loss(torch.nn.Module):
    """``nn.Module`` form of any registered loss: ``Loss("huber", delta=1.0,
    reduction="sum")(pred, target)``.  Constructor keywords are the loss's parameters and
    the common keywords; ``forward`` takes the inputs (and may override keywords).  Tensor
    keywords (``pos_weight``, ``class_weight``, ``sample_weight``) are registered as buffers,
    so they follow ``module.to(device)``."""

    def __init__(self, name, **kwargs):
        super().__init__()
        if name not in LOSSES:
            raise ValueError(f"fastloss.torch.Loss: unknown loss {name!r}; registered: "
                             f"{', '.join(LOSSES)}")
        info = LOSSES[name]
        allowed = set(info.params) | (set(info.common) - set(_REFUSED_KW))
        bad = [k for k in kwargs if k not in allowed]
        if bad:
            raise TypeError(f"fastloss.torch.Loss({name!r}): unexpected keyword(s) {bad}; "
                            f"takes {sorted(allowed)}")
        self.name = name
        self._kw = {}
        for k, v in kwargs.items():
            if isinstance(v, torch.Tensor):
                self.register_buffer(k, v)
                self._kw[k] = None
            else:
                self._kw[k] = v

    def _kwargs(self):
        return {k: (getattr(self, k) if v is None and k in self._buffers else v)
                for k, v in self._kw.items()}

    def forward(self, *inputs, **overrides):
        kw = self._kwargs()
        kw.update(overrides)
        return _call(self.name, inputs, kw)

    def extra_repr(self):
        return ", ".join([repr(self.name)] + [f"{k}={v!r}" for k, v in self._kw.items()
                                              if k not in self._buffers])


def _camel(name):
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def loss_module(name):
    """The ``nn.Module`` class of the registered loss ``name`` (``Huber`` for ``huber``)."""
    def __init__(self, **kwargs):
        Loss.__init__(self, name, **kwargs)

    return type(_camel(name), (Loss,), {
        "__init__": __init__, "__module__": __name__,
        "__doc__": f"``nn.Module`` form of ``fastloss.torch.{name}``: keywords as "
                   f"``fastloss.{name}``'s parameters and common keywords."})


def _export():
    g = globals()
    for name in LOSSES:
        g[name] = function(name)
        g[_camel(name)] = loss_module(name)
        __all__.extend([name, _camel(name)])


_export()
