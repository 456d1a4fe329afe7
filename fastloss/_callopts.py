"""Call options that every loss takes around its runner: ``where=`` masks and tuple ``axis``.

Both rewrite a call into an ordinary one before the kernel runs, so no kernel variant is
added for them:

- ``where=`` (optax's argument): a boolean mask of the elements (elementwise losses), the
  rows (row-wise losses: broadcastable to the batch shape) or the sequences (``ctc_loss``:
  shape (N,)) to include.  A masked unit has weight 0 and gradient 0 (Hessian 0), whatever
  its inputs hold (NaN, ±inf, labels outside the domain): its inputs are replaced by those
  of the first included unit before the call and its weight is set to 0.  ``"mean"`` is the
  weighted mean over the included units (Σ_where w·ℓ / Σ_where w), ``"none"`` gives 0 at the
  masked ones.  For ``softmax_cross_entropy``, ``softmax_cross_entropy_with_integer_labels``
  and ``kl_divergence`` a mask of the inputs' full shape also masks classes within a row,
  as optax does: a masked class takes no part in the row's softmax and sums (its logit is
  treated as −inf, its label and target as 0), and its gradients are 0.  For the metric
  losses (``contrastive``, ``ntxent``, ...) the mask has shape (N,): masked batch items
  leave the batch (no pair includes them) and their gradients are 0.
- ``axis=(a0, a1, ...)`` (row-wise losses with an ``axis``): the reduction runs over
  several axes, taken in increasing order and flattened in C order (an integer label is a
  flat index into that slice, as in optax); gradients come back in the input's layout.
  The inputs are moved and reshaped once (a copy) before the call.

Both options take host (NumPy) inputs; CUDA inputs raise ``ValueError``.
"""
from __future__ import annotations

import math

import numpy as np

from . import _device
from ._validate import split_buffers

CLASS_MASKED = ("softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
                "kl_divergence")


def run(info, inputs, params, common, where, request):
    """The result of ``info``'s runner with ``where=`` and a tuple ``axis`` applied."""
    fn = info.name
    for n, v in list(inputs.items()) + [("sample_weight", common.get("sample_weight"))]:
        if v is not None and _device.on_cuda(v):
            raise ValueError(f"{fn}: where= and a tuple axis take host (NumPy) inputs; "
                             f"{n} is a CUDA array")
    axis = params.get("axis")
    if isinstance(axis, tuple):
        return _tuple_axis(info, inputs, params, common, where, request)
    return _masked(info, inputs, params, common, where, request)


# ------------------------------------------------------------------------- tuple axis
def _axes(axis, ndim, fn):
    out = []
    for a in axis:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{fn}: axis must be an integer or a tuple of integers, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ValueError(f"{fn}: axis {axis!r} is out of range for inputs with {ndim} "
                             f"dimensions")
        out.append(int(a) % ndim)
    if not out:
        raise ValueError(f"{fn}: axis must name at least one axis, got {axis!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis {axis!r} repeats an axis")
    return sorted(out)


def _tuple_axis(info, inputs, params, common, where, request):
    fn, spec = info.name, info.spec
    if info.kind != "rowwise" or "axis" not in info.params:
        raise TypeError(f"{fn}: axis must be an integer, got {params.get('axis')!r}")
    first = info.inputs[0]
    x0 = np.asarray(inputs[first])
    axes = _axes(params["axis"], x0.ndim, fn)
    if len(axes) == 1:
        return _masked(info, inputs, dict(params, axis=axes[0]), common, where, request)
    rest = [i for i in range(x0.ndim) if i not in axes]
    perm = rest + axes
    batch = tuple(x0.shape[i] for i in rest)
    flat = batch + (math.prod(x0.shape[i] for i in axes),)
    moved = tuple(x0.shape[i] for i in perm)
    ints = spec.labels if spec.label_kind is not None else None

    def to_rows(a, name):
        a = np.asarray(a)
        if a.shape != x0.shape:
            raise ValueError(f"{fn}: with a tuple axis, {name} must have {first}'s shape "
                             f"{x0.shape}, got {a.shape}")
        return np.transpose(a, perm).reshape(flat)

    new = {n: (v if n == ints else to_rows(v, n)) for n, v in inputs.items()}
    if where is not None and np.shape(where) == x0.shape:
        where = to_rows(where, "where")
    req = dict(request)
    bufs = {k: req.pop(k, None) for k in ("grad_out", "hess_out")}
    v, g, h = _masked(info, new, dict(params, axis=-1), common, where, req)
    inv = np.argsort(perm)

    def back(a):
        if a is None or np.shape(a) != flat:
            return a
        return np.ascontiguousarray(np.transpose(np.asarray(a).reshape(moved), inv))

    g = {n: back(a) for n, a in (g or {}).items()}
    h = back(h)
    go, ho = bufs["grad_out"], bufs["hess_out"]
    for n, b in split_buffers(go, list(g), fn).items():
        g[n] = _fill(b, g[n], "grad_out", fn)
    if ho is not None:
        h = _fill(ho, h, "hess_out", fn)
    return v, g, h


def _fill(buf, value, label, fn):
    from ._validate import check_out
    b = check_out(buf, value.shape, value.dtype, label, fn)
    np.copyto(b, value)
    return buf


# ------------------------------------------------------------------------------ where=
def _mask(where, fn):
    m = np.asarray(where)
    if m.dtype != np.bool_:
        raise TypeError(f"{fn}: where must be a boolean array, got dtype {m.dtype}")
    return m


def _unit_shape(info, inputs, params):
    """(shape of the masked units, row axis or None) of a call."""
    fn, spec = info.name, info.spec
    x0 = np.asarray(inputs[info.inputs[0]]) if info.kind != "ctc" else None
    if info.kind == "elementwise":
        return x0.shape, None
    if info.kind == "rowwise":
        if spec.flatten:
            return x0.shape[:1], None
        ax = params.get("axis", -1) if spec.axis else -1
        from ._rowwise import _norm_axis
        ax = _norm_axis(ax, x0.ndim, fn)
        return tuple(s for i, s in enumerate(x0.shape) if i != ax), ax
    if info.kind == "ctc":
        return np.shape(inputs["input_lengths"]), None
    raise TypeError(f"{fn}: where= is not supported by {info.kind} losses")


def _masked(info, inputs, params, common, where, request):
    if where is None:
        return info.runner(inputs, params, **common, **request)
    fn = info.name
    m = _mask(where, fn)
    if info.kind == "metric":
        return _metric_subset(info, inputs, params, common, m, request)
    unit, ax = _unit_shape(info, inputs, params)
    shapes = {n: np.shape(v) for n, v in inputs.items()} if info.kind == "elementwise" else {}
    classes = None
    if info.kind == "rowwise" and m.ndim and m.shape == np.shape(inputs[info.inputs[0]]) \
            and m.shape != unit:
        if fn not in CLASS_MASKED:
            raise ValueError(f"{fn}: where must be broadcastable to the batch shape {unit} "
                             f"(a mask of the rows); class masks are taken by "
                             f"{', '.join(CLASS_MASKED)}")
        classes = m
        m = m.any(axis=ax)       # a row without any class left is masked as a whole
    try:
        mb = np.broadcast_to(m, unit)
    except ValueError:
        raise ValueError(f"{fn}: where of shape {m.shape} is not broadcastable to "
                         f"{'the loss shape' if info.kind == 'elementwise' else 'the batch shape'}"
                         f" {unit}") from None
    if classes is not None:
        inputs = _mask_classes(info, inputs, params, classes, fn)
    common = dict(common)
    if not mb.all():
        common["sample_weight"] = _masked_weights(common.get("sample_weight"), mb, unit, fn)
        if mb.any():
            if info.kind == "ctc":
                inputs = _mask_sequences(inputs, mb, fn)
            else:
                inputs = _substitute(info, inputs, mb, ax, unit)
    v, g, h = info.runner(inputs, params, **common, **request)
    for n, s in shapes.items():       # gradients of broadcast inputs, summed back
        if g and g.get(n) is not None and np.shape(g[n]) != s:
            g[n] = _unbroadcast(g[n], s)
    if classes is not None and g:
        for a in g.values():
            if a is not None:
                np.copyto(a, 0, where=~classes)
    return v, g, h


def _metric_subset(info, inputs, params, common, m, request):
    """A metric loss on the batch items where ``m`` holds (the others leave the batch: no
    pair includes them); results scattered back, 0 for the masked items."""
    fn = info.name
    n = np.shape(inputs[info.inputs[0]])[0] if np.ndim(inputs[info.inputs[0]]) else 0
    if m.shape != (n,):
        raise ValueError(f"{fn}: where must have shape ({n},) (one entry per batch item), "
                         f"got {m.shape}")
    sub = {k: np.asarray(v)[m] for k, v in inputs.items()}
    common = dict(common)
    w = common.get("sample_weight")
    if w is not None and np.ndim(w):
        common["sample_weight"] = np.asarray(w)[m]
    req = dict(request)
    go = req.pop("grad_out", None)
    out = common.get("out")
    if out is not None:
        common["out"] = None
    v, g, h = info.runner(sub, params, **common, **req)
    if np.ndim(v) == 1 and common.get("reduction") == "none":
        full = np.zeros(n, v.dtype)
        full[m] = v
        v = full
        if out is not None:
            v = _fill(out, v, "out", fn)
    full_g = {}
    for k, a in (g or {}).items():
        z = np.zeros((n,) + a.shape[1:], a.dtype)
        z[m] = a
        full_g[k] = z
    for k, b in split_buffers(go, list(full_g), fn).items():
        full_g[k] = _fill(b, full_g[k], "grad_out", fn)
    return v, full_g, h


def _unbroadcast(g, shape):
    """The gradient of an input that was broadcast to ``g``'s shape."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and g.shape[lead + i] != 1)
    return np.sum(g, axis=axes, dtype=np.float64).astype(g.dtype).reshape(shape)


def _masked_weights(w, mb, unit, fn):
    if w is None:
        return mb.astype(np.float64)
    from ._validate import as_host_array
    wa = as_host_array(w, "sample_weight", fn)
    try:
        wb = np.broadcast_to(wa, unit)
    except ValueError:
        raise ValueError(f"{fn}: sample_weight of shape {wa.shape} is not broadcastable to "
                         f"{unit}") from None
    return np.where(mb, wb, np.zeros((), wb.dtype if wb.dtype.kind == "f" else np.float64))


def _substitute(info, inputs, mb, ax, unit):
    """Inputs whose masked units hold the first included unit's values."""
    idx = np.unravel_index(int(np.argmax(mb)), unit) if unit else ()
    out = {}
    for n, v in inputs.items():
        a = np.asarray(v)
        if info.kind == "elementwise":
            b = np.broadcast_to(a, unit)
            out[n] = np.where(mb, b, b[idx])
        elif a.shape == unit:                           # per-row labels
            c = a.copy()
            c[~mb] = a[idx]
            out[n] = c
        else:                                           # rows along the class axis
            mv = np.moveaxis(a, ax, -1) if ax is not None else a
            c = np.array(mv)
            c[~mb] = mv[idx]
            out[n] = np.moveaxis(c, -1, ax) if ax is not None else c
    return out


def _mask_classes(info, inputs, params, classes, fn):
    """softmax / KL inputs with the masked classes taken out of the row."""
    out = dict(inputs)
    first = info.inputs[0]
    if fn == "kl_divergence":
        lt = bool(params.get("log_target", False))
        x = np.asarray(inputs[first])
        t = np.asarray(inputs[info.inputs[1]])
        out[first] = np.where(classes, x, np.zeros((), x.dtype))
        out[info.inputs[1]] = np.where(classes, t, np.full((), -np.inf if lt else 0, t.dtype))
        return out
    if fn == "softmax_cross_entropy" and params.get("label_smoothing", 0.0) != 0:
        raise ValueError(f"{fn}: a class mask (where of the logits' shape) takes "
                         f"label_smoothing=0 only")
    x = np.asarray(inputs[first])
    out[first] = np.where(classes, x, np.full((), -np.inf, x.dtype))
    if fn == "softmax_cross_entropy":
        y = np.asarray(inputs["labels"])
        out["labels"] = np.where(classes, y, np.zeros((), y.dtype))
    return out


def _mask_sequences(inputs, mb, fn):
    """CTC inputs whose masked sequences have no frames and no labels (loss 0, gradient 0,
    their logits and labels unread)."""
    from ._ctc import _int_array
    out = dict(inputs)
    il = _int_array(inputs["input_lengths"], "input_lengths", fn).copy()
    ll = _int_array(inputs["label_lengths"], "label_lengths", fn)
    lab = _int_array(inputs["labels"], "labels", fn, ndim=(1, 2))
    il[~mb] = 0
    if lab.ndim == 1:     # concatenated targets: drop the masked sequences' segments
        if lab.shape[0] != int(ll.sum()):
            raise ValueError(f"{fn}: 1-D labels of shape {lab.shape} must hold "
                             f"sum(label_lengths) = {int(ll.sum())} targets")
        keep = np.repeat(mb, ll)
        out["labels"] = lab[keep]
    ll = ll.copy()
    ll[~mb] = 0
    out["input_lengths"], out["label_lengths"] = il, ll
    return out
