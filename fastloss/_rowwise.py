"""The row-wise family: validate, pick the target, allocate, launch, reduce, wrap.

Every loss of the family is a :class:`RowLoss`: its input names and roles, how its
parameters become the kernel's four scalars, and which row math (a tag of
:mod:`fastloss._math.rowwise`) it runs.  :func:`run` is the runner every public function
calls (the contract of :mod:`fastloss._api`).

Layout: the class/feature axis is moved last (a copy when ``axis`` is not the last axis;
gradients are moved back), the batch dimensions are flattened into rows.  All checks that
protect the kernels (shapes, label ranges, ±1 labels, class weights) run here, in Python,
before any kernel; probability rows with negative entries are counted by the kernels and
raised afterwards.
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field

import numpy as np

from . import _alloc, _device, _rowplan, _threads
from ._compile import cached, cpu_kernel, dtype_tag, namespace
from ._validate import (REDUCTIONS, _same_memory, as_float, as_host_array, check_choice,
                        check_out, float_dtype_of, real_scalar, split_buffers, split_weights,
                        unalias)

MATH = "fastloss._math.rowwise"
DEBUG = os.environ.get("FASTLOSS_DEBUG_KERNELS") == "1"  # serial, bounds-checked kernels
CHUNK = 16384   # columns per task of the chunked CPU kernel (few long rows)


@dataclass
class RowLoss:
    name: str
    order: tuple                  # the public function's positional inputs, in order
    floats: tuple                 # names of the float inputs -> kernel A, B, C
    labels: str | None = None     # name of the label input
    label_kind: str | None = None  # "int" (class index per row) or "pm1" (±1 per row)
    axis: bool = False            # has an ``axis`` parameter
    flatten: bool = False         # rows = first dimension, everything else one row
    prob: str | None = None       # input whose entries must be >= 0 (counted by the kernel)
    differentiable: tuple = ()
    params: dict = field(default_factory=dict)
    prepare: object = None        # (params, C, dtype, extras) -> (tag, need_max, (p0..p3))
    fixup: object = None          # host recomputation of rows the kernel marks NaN (_limits)
    formula: str = ""
    doc: str = ""
    cw_mean: bool = True          # "mean" divides by the label's class weights (PyTorch CE)
    pre: object = None            # (inputs, fn) -> inputs: converts an input before the run
    reductions: tuple = ()        # reductions beyond none/sum/mean ("batchmean")


ROWLOSSES: dict[str, RowLoss] = {}


# ----------------------------------------------------------------- parameter checks
def _real(v, name, fn, rule=None):
    v = real_scalar(v, name, fn)
    if not np.isfinite(v):
        raise ValueError(f"{fn}: {name} must be finite, got {v!r}")
    if rule == "closed01" and not 0 <= v <= 1:
        raise ValueError(f"{fn}: {name} must be in [0, 1], got {v!r}")
    if rule == ">=0" and v < 0:
        raise ValueError(f"{fn}: {name} must be >= 0, got {v!r}")
    return v


def _bool(v, name, fn):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a bool, got {v!r}")
    return bool(v)


def _int(v, name, fn):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an integer, got {v!r}")
    return int(v)


# ------------------------------------------------------------------------ kernels
def _flags(tag, need_max, spec, has_cw):
    return (need_max, spec.label_kind == "int", spec.label_kind == "pm1", has_cw)


_KERNEL_FOR: dict = {}  # (tag, flags, dtype, chunked) -> kernel: skips the lookups per call
_CPU: list = []        # fastloss._cpu once loaded (it imports Numba: never at import time)


def _cpu_module():
    from . import _cpu
    _CPU[:] = [_cpu]
    return _cpu


def cpu_kernel_for(tag, flags, dtype, chunked):
    """The cached kernel of one row math for one dtype (compiled on first call)."""
    key = (tag, flags, dtype_tag(dtype), chunked)
    k = _KERNEL_FOR.get(key)
    if k is None:
        k = _KERNEL_FOR[key] = _build_kernel(tag, flags, dtype, chunked)
    return k


def _build_kernel(tag, flags, dtype, chunked):
    import numba

    from ._cpu import rowwise as tmpl

    need_max, int_labels, float_labels, has_cw = flags
    dt = dtype_tag(dtype)
    ns = namespace(MATH, "cpu32" if dt == "f32" else "cpu64")
    f1 = ns[f"{tag}_f1"] if f"{tag}_f1" in ns else ns["first_f1" if need_max else "nomax_f1"]
    bind = {"f1": f1, "f2": ns[f"{tag}_f2"], "fin": ns[f"{tag}_fin"], "f3": ns[f"{tag}_f3"],
            "FT": numba.float32 if dt == "f32" else numba.float64, "NEED_MAX": need_max,
            "INT_LABELS": int_labels, "FLOAT_LABELS": float_labels, "HAS_CW": has_cw,
            "FIXK": f"{tag}_fixk" in ns, "fixk": ns.get(f"{tag}_fixk", ns["no_fixk"]),
            "KEEP": f"{tag}_f3k" in ns, "f3k": ns.get(f"{tag}_f3k"),
            "hfin": ns.get(f"{tag}_hfin", ns["no_hfin"]), "h3": ns.get(f"{tag}_h3", ns["no_h3"]),
            "h3k": ns.get(f"{tag}_h3k", ns["no_h3k"]),
            "ROWARGS": tag in ns["ROW_ARGS"], "REFINE": f"{tag}_t2" in ns,
            "t2": ns.get(f"{tag}_t2"), "tfin": ns.get(f"{tag}_tfin")}
    name = f"{tag}_{dt}" + ("_cw" if has_cw else "")
    bind.update(cached(("row-helpers", name), lambda: _helpers(tmpl, bind)))
    template = tmpl.chunk_kernel if chunked else tmpl.row_kernel
    return cpu_kernel(template, name, bind, parallel=not DEBUG,
                      boundscheck=True if DEBUG else None)


def _helpers(tmpl, bind):
    """Per-loss inlined copies of the templates' row helpers (they call the bound math)."""
    import types

    from numba import njit

    from ._compile import FASTMATH

    g = dict(vars(tmpl))
    g.update(bind)
    out = {}
    for n in ("_f2at", "_rowrefine", "_span", "_rowmax", "_rowsums_small", "_rowsums",
              "_rowgrad", "_rowzero"):
        f = getattr(tmpl, n)
        out[n] = g[n] = njit(inline="always", fastmath=set(FASTMATH), error_model="numpy")(
            types.FunctionType(f.__code__, g, n, f.__defaults__))
    return out


def _use_chunks(N, D):
    if D < 2 * CHUNK:      # checked first: get_num_threads costs microseconds per call
        return False
    import numba
    return N < 2 * numba.get_num_threads()


# ------------------------------------------------------------------------- runner
def _shape_err(fn, a, sa, b, sb):
    return ValueError(f"{fn}: {b} of shape {tuple(sb)} does not match {a} of shape {tuple(sa)}")


def _norm_axis(axis, ndim, fn):
    axis = _int(axis, "axis", fn)
    if ndim == 0:
        raise ValueError(f"{fn}: inputs must have at least one dimension (the class axis)")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{fn}: axis {axis} is out of range for inputs with {ndim} dimensions")
    return axis % ndim


def _meta(x, name, fn):
    """(shape, dtype) of a host or device input without copying device data."""
    m = _device.shape_dtype(x)
    if m is not None:
        return m
    a = as_host_array(x, name, fn)
    return a.shape, a.dtype


def run(spec: RowLoss, inputs, params, *, sample_weight=None, reduction="mean",
        device="auto", out=None, want_grad=False, want_hess=False, argnums=(0,),
        grad_out=None, hess_out=None, stream=None, device_result=False, n_threads=None,
        sum_from=None):
    """Value (and gradients w.r.t. the requested inputs) of one row-wise loss.

    Returns ``(value, {input_name: grad}, hess)``; gradients refer to the reduced value
    (with ``reduction="none"``, to the sum of the per-row losses).  ``want_hess`` (losses
    whose row math has a Hessian, :func:`has_hessian`): ``hess`` is the diagonal of the
    Hessian of that value w.r.t. the first input, scaled as its gradient; else None.

    On the host, Σ w·ℓ is the fold of :mod:`fastloss._cpu.fold` over the per-row values
    (the ``reduction="none"`` output, in the array dtype) and the denominator of
    ``"mean"`` is ``ws·W``, ``ws`` the scalar sample weight (1 for an array) and W the
    same fold over the rows' weights (sample × class weight of the counted rows; a plain
    count without weights).  ``sum_from`` (host only): a list of running float64 totals
    that the call continues and stores back, ``[Σ w·ℓ]`` or ``[Σ w·ℓ, numerator of
    "mean", denominator of "mean", W]`` (see :func:`running_totals`): calls on
    consecutive row slices whose lengths are multiples of ``fastloss._cpu.fold.BLK``
    give exactly the totals of one call on all the rows.
    """
    fn = spec.name
    check_choice(reduction, REDUCTIONS + spec.reductions, "reduction", fn)
    batchmean = reduction == "batchmean"   # "sum" over the size of the first axis
    if batchmean:
        reduction = "sum"
    terms = False   # elementwise=True: per-element terms ('none'), mean over elements
    if "elementwise" in spec.params:
        terms = _bool(params.get("elementwise", False), "elementwise", fn)
    if spec.pre is not None:
        inputs = spec.pre(inputs, fn)
    nt = _threads.resolve(n_threads, fn)
    names = spec.floats
    if want_hess:
        if not has_hessian(spec):
            raise ValueError(f"{fn} has no diagonal Hessian")
        want_grad, argnums = True, (0,)
    elif hess_out is not None:
        raise ValueError(f"{fn}: hess_out= is only taken by grad_and_hessian")
    wanted = []
    if want_grad:
        for i in ((argnums,) if isinstance(argnums, int) else argnums):
            n = spec.order[i]
            if n not in spec.differentiable:
                raise ValueError(f"{fn}: no gradient with respect to {n!r}; differentiable "
                                 f"inputs are {spec.differentiable}")
            if n not in wanted:
                wanted.append(n)
    arrays = {n: inputs[n] for n in names}
    every = dict(arrays)
    if spec.labels:
        every[spec.labels] = inputs[spec.labels]
    every["sample_weight"] = sample_weight
    where = _device.resolve(device, every, fn)
    kind = _device.device_kind(every)

    # ---- shapes and dtype (metadata only)
    metas = {n: _meta(arrays[n], n, fn) for n in names}
    first = names[0]
    shape, pdt = metas[first]
    dt = float_dtype_of(np.empty(0, pdt), first, fn)
    for n in names[1:]:
        float_dtype_of(np.empty(0, metas[n][1]), n, fn)
        if tuple(metas[n][0]) != tuple(shape):
            raise _shape_err(fn, first, shape, n, metas[n][0])
    ndim = len(shape)
    if spec.flatten:
        if ndim < 1:
            raise ValueError(f"{fn}: {first} must have a batch dimension, got shape {shape}")
        ax = None
        batch = tuple(shape[:1])
        D = math.prod(shape[1:]) if ndim > 1 else 1
    else:
        ax = _norm_axis(params.get("axis", -1), ndim, fn)
        batch = tuple(s for i, s in enumerate(shape) if i != ax)
        D = int(shape[ax])
    N = math.prod(batch)
    if D == 0 and not spec.flatten:
        raise ValueError(f"{fn}: {first} has an empty class axis (shape {tuple(shape)})")
    moved = ax is not None and ax != ndim - 1
    # the scalar weight's factor ("batchmean": 1/size of the first axis) and the factor of
    # "mean"'s denominator (elementwise=True: the row length, a mean over elements)
    wfac = 1.0 / shape[0] if (batchmean and shape[0]) else 1.0
    mfac = float(D) if terms and reduction == "mean" else 1.0
    terms = terms and reduction == "none"
    if terms and out is not None:
        out = check_out(out, shape, dt, "out", fn)

    if where == "cuda" and kind != "host":   # device-resident: checks run on the device
        return _run_cuda_resident(spec, inputs, params, arrays, sample_weight, shape, ax,
                                  moved, batch, N, D, dt, kind, reduction, wanted, grad_out,
                                  out, stream, device_result, want_hess, hess_out,
                                  wfac=wfac, mfac=mfac, terms=terms)

    # ---- labels (validated on the host for host inputs)
    K = YL = None
    labels_h = None
    if spec.labels:
        lab = inputs[spec.labels]
        labels_h = (_device_to_host(lab) if _device.on_cuda(lab)
                    else as_host_array(lab, spec.labels, fn))
        if labels_h.shape != batch:
            raise ValueError(f"{fn}: {spec.labels} of shape {labels_h.shape} does not match the "
                             f"batch shape {batch} of {first} (shape {tuple(shape)})")
        if spec.label_kind == "int":
            if labels_h.dtype.kind not in "iu":
                raise TypeError(f"{fn}: {spec.labels} must be an integer array of class "
                                f"indices, got dtype {labels_h.dtype}")
            if labels_h.dtype == np.uint64 and labels_h.size and labels_h.max() > 2 ** 63 - 1:
                bad = int(labels_h.max())     # would wrap to a negative (ignored) index
                raise ValueError(f"{fn}: {spec.labels} must be class indices in [0, {D}), "
                                 f"found {bad}")
            K = np.array(labels_h, dtype=np.int64).reshape(-1)
        else:
            YL = np.ascontiguousarray(labels_h, dtype=dt).reshape(-1)
            okv = (YL == 1) | (YL == -1)
            if not okv.all():
                bad = YL[~okv][0]
                raise ValueError(f"{fn}: {spec.labels} must be 1 or -1, found {float(bad):g}")

    tag, need_max, pvals, extra = spec.prepare(params, D, dt, K, fn)
    if want_hess:
        _check_hessian_tag(spec, tag)
    CWh = extra.get("class_weight")
    has_cw = CWh is not None
    flags = _flags(tag, need_max, spec, has_cw)

    # ---- sample weights per row and the denominator of "mean"
    w, ws = _row_weights(sample_weight, batch, dt, fn)
    ws = ws * wfac
    rw_h = None if w is None else w.reshape(-1)
    s_in, _, w_in = running_totals(sum_from)
    W = weight_total(K, D, CWh if spec.cw_mean else None, rw_h, N, w_in)
    wsum = ws * W * mfac
    gscale = (1.0 / wsum if wsum > 0 else float("nan")) if reduction == "mean" else 1.0

    if where == "cuda":
        return _run_cuda(spec, arrays, shape, ax, moved, batch, N, D, dt, kind, tag, flags,
                         K, YL, CWh, rw_h, ws, pvals, gscale, wsum, reduction, wanted,
                         grad_out, None if terms else out, stream, device_result,
                         want_hess=want_hess, hess_out=hess_out, terms=terms,
                         terms_out=out if terms else None)

    # ---- host arrays, class axis last, rows flattened
    hs = {}
    for n in names:
        h = as_host_array(arrays[n], n, fn)
        if moved:
            h = np.moveaxis(h, ax, -1)
        hs[n] = as_float(h, dt, n).reshape(N, D)
    A = hs[names[0]]
    B = hs[names[1]] if len(names) > 1 else A
    Cm = hs[names[2]] if len(names) > 2 else A
    # a loss whose phase 2 keeps exp terms in the first gradient buffer (KEEP) must not
    # write them over an input it still reads: such a grad_out gets a separate buffer
    keep = names[0] if _keeps(tag) else None
    reads = [hs[n] for n in names] + [YL, rw_h, CWh]
    gbufs = _grad_buffers(fn, wanted, grad_out, argnums, shape, dt, moved, N, D,
                          reads if grad_out is not None else (), keep)
    hbuf = None
    if want_hess:   # (stored after the element is read: an input's exact memory is safe)
        hbuf = _grad_buffers(fn, ["hess"], hess_out, argnums, shape, dt, moved, N, D,
                             reads if hess_out is not None else (), None,
                             label="hess_out")["hess"]
    tbuf = None
    if terms:   # the per-element terms, in the third gradient slot (see kl_f3)
        tbuf = (out, np.empty((N, D), dt), out is not None)
        out = None
    # always an array (N values): one kernel variant fewer per loss, negligible traffic
    out_l = np.empty(N, dt)
    user_l = None
    if out is not None:   # (with "sum"/"mean" too: the per-row losses, as elementwise)
        out_l = user_l = check_out(out, batch, dt, "out", fn).reshape(-1)
        users = [("out", out_l)] + [(f"grad_out ({n})" if len(wanted) > 1 else "grad_out",
                                       e[0]) for n, e in gbufs.items() if e[0] is not None]
        if hbuf is not None and hbuf[0] is not None:
            users.append(("hess_out", hbuf[0]))
        unalias(fn, users, ())            # buffers sharing memory with each other: error
        if any(np.may_share_memory(out_l, h) for h in reads if h is not None):
            out_l = np.empty(N, dt)       # per-row values are stored while rows are read
    if hbuf is not None and hbuf[0] is not None and grad_out is not None:
        unalias(fn, [("grad_out", gbufs[names[0]][0]), ("hess_out", hbuf[0])], ())
    if spec.prob and tag != "klt" and N * D and (out is not None or grad_out is not None
                                                 or hess_out is not None):
        # a domain error must leave the caller's buffers as they were: count negative
        # probabilities here (one vectorized pass, only when buffers were passed)
        P = hs[spec.prob]
        if np.fmin.reduce(P.reshape(-1)) < 0:            # fmin skips NaN, as the kernel
            raise _prob_error(spec, np.count_nonzero(P < 0))
    if N == 0 or D == 0:
        s, bad = 0.0, 0.0
        out_l[:] = 0
        for e in gbufs.values():
            e[1][...] = 0
        if hbuf is not None:
            hbuf[1][...] = 0
        if tbuf is not None:
            tbuf[1][...] = 0
    else:
        cpu = _CPU[0] if _CPU else _cpu_module()   # (a function-level import: ~1 µs a call)
        launch = cpu.launch
        par = cpu.want_parallel("rowwise", N * D, nt)
        chunked = par and _use_chunks(N, D)
        kern = cpu_kernel_for(tag, flags, dt, chunked)
        gA = gbufs.get(names[0])
        gB = gbufs.get(names[1]) if len(names) > 1 else None
        gC = gbufs.get(names[2]) if len(names) > 2 else tbuf
        args = (A, B, Cm, K if K is not None else np.zeros(1, np.int64),
                YL if YL is not None else np.zeros(1, dt),
                CWh if has_cw else np.ones(1, dt),
                rw_h if rw_h is not None else np.ones(N, dt), dt.type(ws),
                *(dt.type(v) for v in pvals), dt.type(gscale), out_l,
                None if gA is None else gA[1], None if gB is None else gB[1],
                None if gC is None else gC[1], None if hbuf is None else hbuf[1])
        if chunked:
            args = args + (CHUNK,)
        s, bad = launch(kern, *args, parallel=par, n_threads=nt)
    if bad:
        raise _prob_error(spec, bad)
    if spec.fixup is not None and s != s and N and D:   # (s: the kernel's own sum)
        spec.fixup(A, B, YL, out_l, gbufs.get(names[0]), gbufs.get(names[1]), rw_h, ws,
                   gscale, pvals)
    s = fold_rows(out_l, s_in)
    if sum_from is not None:
        store_totals(sum_from, s, s, wsum, W)
    if user_l is not None and out_l is not user_l:
        user_l[...] = out_l
        out_l = user_l
    grads = {n: _finish_grad(gbufs[n], shape, ax, moved) for n in wanted}
    hess = None if hbuf is None else _finish_grad(hbuf, shape, ax, moved)
    if (reduction == "mean" and N and D and not par and not moved and mfac == 1.0
            and sample_weight is None and out is None and grad_out is None and not want_hess
            and sum_from is None and n_threads is None and device == "auto" and not has_cw
            and tbuf is None):
        _rowplan.remember(spec, inputs, params, want_grad, wanted, dt, N, D, shape, batch,
                          pvals, params.get("ignore_index") if K is not None else None, kern)
    if tbuf is not None:
        return _finish_grad(tbuf, shape, ax, moved), grads, hess
    return _reduce(s, wsum, reduction, out_l, batch, dt), grads, hess


@functools.lru_cache(maxsize=None)
def _tag_has_hessian(tag):
    import importlib
    return hasattr(importlib.import_module(MATH), f"{tag}_h3")


def has_hessian(spec) -> bool:
    """Whether ``spec``'s row math (for its default parameters) has a diagonal Hessian:
    the row math module defines ``<tag>_h3`` for it."""
    got = getattr(spec, "_has_hessian", None)
    if got is None:
        K = np.zeros(1, np.int64) if spec.label_kind == "int" else None
        try:
            tag = spec.prepare(dict(spec.params), 2, np.dtype(np.float64), K, spec.name)[0]
        except (TypeError, ValueError):
            tag = ""
        got = spec._has_hessian = _tag_has_hessian(tag)
    return got


def _check_hessian_tag(spec, tag):
    if not _tag_has_hessian(tag):
        raise ValueError(f"{spec.name} has no diagonal Hessian for these parameters")


def _device_to_host(a):
    return _device.as_device_array(a).copy_to_host()


def _prob_error(spec, bad):
    return ValueError(f"{spec.name}: {spec.prob} must hold probabilities (finite, non-negative "
                      f"entries); {int(bad)} negative entr{'y' if int(bad) == 1 else 'ies'} "
                      f"or +inf found")


def running_totals(sum_from):
    """(Σ w·ℓ, numerator of "mean", W) that a call continues.  ``sum_from`` (None: a call
    on its own) holds ``[Σ w·ℓ]`` or ``[Σ w·ℓ, numerator of "mean", denominator of "mean",
    W]``: running float64 totals over the rows of the previous calls, starting from zeros
    (the numerator is Σ w·ℓ except for CTC's ``"mean"``, Σ w·ℓ / max(label length, 1); the
    denominator is ``ws·W``).  A call with ``sum_from`` reduces over all the rows so far:
    its value is that of the running totals and its gradients are those of that value."""
    if sum_from is None:
        return 0.0, 0.0, 0.0
    if len(sum_from) not in (1, 4):
        raise ValueError("sum_from must hold 1 or 4 running totals")
    if len(sum_from) == 1:
        return float(sum_from[0]), 0.0, 0.0
    return float(sum_from[0]), float(sum_from[1]), float(sum_from[3])


def store_totals(sum_from, s, num, wsum, W):
    """Store a call's running totals into ``sum_from`` (see :func:`running_totals`)."""
    sum_from[0] = s
    if len(sum_from) == 4:
        sum_from[1], sum_from[2], sum_from[3] = num, wsum, W


def fold_rows(v, s_in=0.0):
    """``s_in`` + Σ of the per-row values ``v`` (1-D, the array dtype), summed in float64 in
    the fixed order of :mod:`fastloss._cpu.fold` (blocks of its ``BLK`` rows)."""
    if v.size == 0:
        return float(s_in)
    from ._cpu.fold import _FOLD, fold_kernel
    return (_FOLD[0] if _FOLD else fold_kernel())(np.ascontiguousarray(v), float(s_in))


def weight_total(K, D, CWh, rw_h, N, w_in=0.0):
    """W, the sum over the rows of the weight that ``"mean"`` divides by (then ``ws·W``,
    ``ws`` the scalar sample weight), continued from ``w_in``: the counted rows' (label in
    [0, D)) class weight × sample weight for integer labels, the sample weight otherwise;
    a count without weights (exact, so in every order the same), else the fold of
    :func:`fold_rows`."""
    if K is not None:
        counted = (K >= 0) & (K < D)
        if CWh is None and rw_h is None:
            return w_in + float(np.count_nonzero(counted))
        per = counted.astype(np.float64)
        if CWh is not None:
            per = per * CWh.astype(np.float64)[np.where(counted, K, 0)]
        if rw_h is not None:
            per = per * rw_h
        return fold_rows(per, w_in)
    if rw_h is None:
        return w_in + float(N)
    return fold_rows(rw_h, w_in)


def _row_weights(sample_weight, batch, dt, fn):
    """(per-row array or None, scalar factor)."""
    if sample_weight is not None and _device.on_cuda(sample_weight):
        sample_weight = _device_to_host(sample_weight)
    return split_weights(sample_weight, batch, dt, fn, "the batch (rows)")


@functools.lru_cache(maxsize=None)
def _keeps(tag):
    import importlib
    return hasattr(importlib.import_module(MATH), f"{tag}_f3k")


def _grad_buffers(fn, wanted, grad_out, argnums, shape, dt, moved, N, D, inputs=(),
                  keep=None, label="grad_out"):
    """{name: (user-visible array, 2-D kernel buffer, copy kernel buffer to user)} for the
    requested gradients.  The gradient of ``keep`` never shares memory with ``inputs``.
    ``label``: the buffers' keyword in error messages (``hess_out`` for the Hessian)."""
    outs = split_buffers(grad_out, wanted, fn, label)
    res = {}
    given_bufs = []
    for n in wanted:
        given = outs.get(n)
        if given is not None:
            g = check_out(given, shape, dt, label, fn)
            given_bufs.append((f"{label} ({n})" if len(wanted) > 1 else label, g))
            g2 = g.reshape(N, D)
            # a gradient stored at (row, column) after that element was read: exactly an
            # input of the same layout is safe, unless phase 2 keeps terms in it (keep);
            # any other overlap goes through a temporary
            shared = [h for h in inputs if h is not None and np.may_share_memory(g2, h)]
            if moved or (shared and (n == keep or not all(_same_memory(g2, h)
                                                             for h in shared))):
                res[n] = (g, np.empty((N, D), dt), True)
            else:
                res[n] = (g, g2, False)
        else:
            k = _alloc.empty((N, D), dt)
            res[n] = (None, k, False)
    if len(given_bufs) > 1:
        unalias(fn, given_bufs, ())
    return res


def _moved_shape(shape, ax):
    return tuple(s for i, s in enumerate(shape) if i != ax) + (shape[ax],)


def _finish_grad(entry, shape, ax, moved):
    """The gradient in the caller's layout (class axis moved back where it was)."""
    user, k2, copy = entry
    if not moved:
        if copy:
            user[...] = k2.reshape(shape)
        return user if user is not None else k2.reshape(shape)
    g = np.moveaxis(k2.reshape(_moved_shape(shape, ax)), -1, ax)
    if user is not None:
        user[...] = g
        return user
    return g


def _reduce(s, wsum, reduction, out_l, batch, dt):
    if reduction == "none":
        return out_l.reshape(batch)
    if reduction == "sum":
        return dt.type(s)
    return dt.type(s / wsum) if wsum > 0 else dt.type(np.nan)


def _run_cuda(spec, arrays, shape, ax, moved, batch, N, D, dt, kind, tag, flags, K, YL, CWh,
              rw_h, ws, pvals, gscale, wsum, reduction, wanted, grad_out, out, stream=None,
              device_result=False, wtot=None, st=None, alloc=None, cwchk=None,
              want_hess=False, hess_out=None, terms=False, terms_out=None):
    """The CUDA path: float inputs stay on the device (a class axis that is not last is
    moved there too: by CuPy / PyTorch for their inputs, by a strided-gather kernel for
    Numba device arrays), the reduction runs on the device, one stream; the only
    device-to-host copy is the 3-value result, skipped with ``device_result=True``
    (invalid rows then give NaN).  ``K``, ``YL``, ``rw_h`` are host arrays (uploaded) or
    device arrays; ``wtot``: the device (Σw, negative weights, invalid labels) of
    :func:`_run_cuda_resident` (then Σw is read on the device); ``cwchk``: the device
    (Σ class weights, invalid class weights) of a device ``class_weight``, whose count
    joins the single copy.  ``want_hess``: the diagonal Hessian w.r.t. the first input
    too (a kernel variant of its own)."""
    from ._cuda import layout, runtime
    from ._cuda.rowwise import kernel_for, launch_rowwise

    fn = spec.name
    if (grad_out is not None or out is not None or hess_out is not None
            or terms_out is not None):
        raise ValueError(f"{fn}: out=, grad_out= and hess_out= buffers are supported for "
                         f"host arrays only")
    names = spec.floats
    if st is None:
        st = runtime.resolve_stream(stream, kind, fn)
        alloc = runtime.Allocator(kind, st, runtime.torch_device(arrays))
    device_result = runtime.check_device_result(device_result, fn)
    native_move = moved and kind in ("cupy", "torch")
    ndim = len(shape)
    dev = {}
    for n in names:
        x = arrays[n]
        if native_move:   # the class axis moved last on the device, by CuPy / PyTorch
            if kind == "cupy":
                import cupy
                x = cupy.ascontiguousarray(cupy.moveaxis(x, ax, -1))
            else:
                x = x.detach().movedim(ax, -1).contiguous()
            d = _device.to_device(x, dt, n, fn, alloc, st)
        elif moved and _device.on_cuda(x):   # Numba device arrays: a gather kernel
            d = _device.as_device_array(x, n, fn)
            if not (d.is_c_contiguous() and d.dtype in (np.float32, np.float64)):
                d = _device.to_device(x, dt, n, fn, alloc, st)
            d = layout.permute(alloc, st, layout.contiguous_flat(d), shape,
                               layout.axis_last_perm(ndim, ax), dt)[1]
        elif moved:   # host arrays: moved on the host, then uploaded
            h = as_host_array(x, n, fn)
            d = alloc.to_device(np.ascontiguousarray(np.moveaxis(h, ax, -1), dtype=dt))
        elif _device.on_cuda(x):
            d = _device.to_device(x, dt, n, fn, alloc, st)
        else:
            d = alloc.to_device(as_float(as_host_array(x, n, fn), dt, n))
        dev[n] = d.reshape(N, D) if N * D else d
    up = (lambda a: None if a is None else (alloc.to_device(a) if isinstance(a, np.ndarray)
                                           else a))
    gd = {n: alloc.empty((N, D), dt) for n in wanted}
    hd = alloc.empty((N, D), dt) if want_hess else None
    td = alloc.empty((N, D), dt) if terms else None   # per-element terms (elementwise)
    mode = {"none": 0, "sum": 1, "mean": 2}[reduction]
    outv = None
    if N == 0 or D == 0:
        v0 = np.nan if reduction == "mean" and not wsum > 0 else 0.0
        res_h = np.array([v0, 0.0, 0.0])
        value_d = alloc.to_device(np.array([v0], dt)) if device_result else None
        if reduction == "none":   # rows without columns: loss 0 (gradients are empty)
            z = alloc.to_device(np.zeros(N, dt))
            outv = (z if kind == "host" else _device.wrap(z, kind, (N,)), z)
    else:
        ns = namespace(MATH, "cuda")
        kern = kernel_for(tag, ns, flags, dt, hess=want_hess)
        v = (lambda n: gd[n][1] if n in gd else None)
        res, value_d, outv = launch_rowwise(
            kern, alloc, st, dt, dev[names[0]], dev[names[1]] if len(names) > 1 else None,
            dev[names[2]] if len(names) > 2 else None,
            up(K), up(YL), up(CWh), up(rw_h), ws, pvals, gscale, v(names[0]),
            v(names[1]) if len(names) > 1 else None,
            v(names[2]) if len(names) > 2 else (None if td is None else td[1]),
            reduction == "none", device_result, mode, wsum, wtot, cwchk,
            gH=None if hd is None else hd[1])
        if cwchk is not None and not device_result:   # one copy of the five values
            both = alloc.view(5, np.float64)
            runtime.copy_on_device(both[0:3], res, st)
            runtime.copy_on_device(both[3:5], cwchk, st)
            res = both
        res_h = None if device_result else runtime.copy_to_host(res, st)
    if res_h is not None and len(res_h) > 3 and res_h[4]:
        raise ValueError(f"{fn}: class_weight must be finite and non-negative; found "
                         f"{int(res_h[4])} negative or non-finite weight(s)")
    if res_h is not None and res_h[2]:
        raise ValueError(f"{fn}: sample_weight must be non-negative, found "
                         f"{int(res_h[2])} negative weight(s)")
    if res_h is not None and res_h[1]:
        raise _cuda_count_error(spec, res_h[1], D)

    def back(o, shp):
        native, view = o
        if kind == "host":
            return runtime.copy_to_host(view, st).reshape(shp)
        return native.reshape(shp)

    if reduction == "none":
        value = back(outv, batch)
    elif device_result:
        value = value_d.reshape(())
    else:
        value = dt.type(res_h[0])
    mshape = _moved_shape(shape, ax) if moved else None

    def grad_back(g):   # a (native, view) (N, D) buffer in the caller's layout and kind
        if not moved:
            return back(g, shape)
        if native_move:
            gm = g[0].reshape(mshape)
            if kind == "cupy":
                import cupy
                return cupy.ascontiguousarray(cupy.moveaxis(gm, -1, ax))
            return gm.movedim(-1, ax).contiguous()
        if kind == "host":
            h = np.moveaxis(runtime.copy_to_host(g[1], st).reshape(mshape), -1, ax)
            return np.ascontiguousarray(h)
        nat, _ = layout.permute(alloc, st, g[1].reshape(N * D), mshape,   # on the device
                                layout.axis_back_perm(ndim, ax), dt)
        return nat.reshape(shape)

    grads = {n: grad_back(g) for n, g in gd.items()}
    if td is not None:
        if N == 0 or D == 0:   # no elements: zeros of the inputs' shape
            value = (np.zeros(shape, dt) if kind == "host" else
                     _device.wrap(alloc.to_device(np.zeros(shape, dt)), kind, shape))
        else:
            value = grad_back(td)
    return value, grads, (None if hd is None else grad_back(hd))


def _cuda_count_error(spec, bad, D):
    """The error for ``bad`` entries counted on the device."""
    fn = spec.name
    if spec.prob is not None or not spec.labels:
        return _prob_error(spec, bad)
    if spec.label_kind == "pm1":
        return ValueError(f"{fn}: {spec.labels} must be 1 or -1, found {int(bad)} other "
                          f"value(s)")
    extra = (f" or ignore_index={spec.params['ignore_index']}"
             if "ignore_index" in spec.params else "")
    return ValueError(f"{fn}: {spec.labels} must be class indices in [0, {D}){extra}; found "
                      f"{int(bad)} outside (number of classes C = {D})")


def _run_cuda_resident(spec, inputs, params, arrays, sample_weight, shape, ax, moved, batch,
                       N, D, dt, kind, reduction, wanted, grad_out, out, stream,
                       device_result, want_hess=False, hess_out=None, wfac=1.0, mfac=1.0,
                       terms=False):
    """CUDA with device-resident labels and sample weights: their checks (class range,
    ``ignore_index``, ±1 values, signs) and the denominator of ``"mean"`` (Σ over counted
    rows of class weight × sample weight) run in a device kernel
    (:func:`fastloss._cuda.labels.row_labels`); their counts come back with the result's
    single copy.  Only metadata is read on the host."""
    from ._cuda import layout, runtime
    from ._cuda.labels import row_labels

    fn = spec.name
    every = dict(arrays, sample_weight=sample_weight)
    st = runtime.resolve_stream(stream, kind, fn)
    alloc = runtime.Allocator(kind, st, runtime.torch_device(every))
    Ld = None
    lmode = 2
    if spec.labels:
        lab = inputs[spec.labels]
        lshape, ldt = _meta(lab, spec.labels, fn)
        if tuple(lshape) != tuple(batch):
            raise ValueError(f"{fn}: {spec.labels} of shape {tuple(lshape)} does not match "
                             f"the batch shape {batch} of {spec.floats[0]} (shape "
                             f"{tuple(shape)})")
        if spec.label_kind == "int":
            if ldt.kind not in "iu":
                raise TypeError(f"{fn}: {spec.labels} must be an integer array of class "
                                f"indices, got dtype {ldt}")
            lmode = 0
        else:
            if ldt.kind not in "iuf":
                raise TypeError(f"{fn}: {spec.labels} must be a numeric array of 1 / -1, "
                                f"got dtype {ldt}")
            lmode = 1
        if _device.on_cuda(lab):
            Ld = _device.as_device_array(lab, spec.labels, fn)
            if not Ld.is_c_contiguous():
                Ld = _device.to_device(lab, ldt, spec.labels, fn, alloc, st)
            Ld = layout.contiguous_flat(Ld) if N else Ld
        else:
            Ld = alloc.to_device(np.ascontiguousarray(as_host_array(lab, spec.labels, fn))
                                 .reshape(-1))
    # a class_weight on the device stays there: shape and dtype from metadata, its sum
    # (the W of label smoothing) and sign / finiteness on the device
    cw = params.get("class_weight") if "class_weight" in spec.params else None
    CWdev = None
    if cw is not None and _device.on_cuda(cw):
        cshape, cdt = _meta(cw, "class_weight", fn)
        float_dtype_of(np.empty(0, cdt), "class_weight", fn)
        if tuple(cshape) != (D,):
            raise ValueError(f"{fn}: class_weight must have shape ({D},) (one weight per "
                             f"class), got shape {tuple(cshape)}")
        CWdev = layout.contiguous_flat(_device.to_device(cw, dt, "class_weight", fn, alloc,
                                                         st))
        params = dict(params, class_weight=None)
    # the parameters (labels are checked below, on the device)
    tag, need_max, pvals, extra = spec.prepare(
        params, D, dt, np.zeros(0, np.int64) if lmode == 0 else None, fn)
    if want_hess:
        _check_hessian_tag(spec, tag)
    CWh = extra.get("class_weight")
    if CWdev is not None:
        CWh = CWdev
    elif CWh is not None:
        CWh = alloc.to_device(CWh)   # uploaded once, for the label check and the loss
    flags = _flags(tag, need_max, spec, CWh is not None)
    cwchk = None
    if CWdev is not None and N:
        from ._cuda.labels import class_weight_check
        cwchk = class_weight_check(alloc, st, CWdev)
    SW, ws = None, 1.0
    if sample_weight is not None and _device.on_cuda(sample_weight):
        wshape, wdt = _meta(sample_weight, "sample_weight", fn)
        float_dtype_of(np.empty(0, wdt), "sample_weight", fn)
        try:
            okb = np.broadcast_shapes(tuple(wshape), tuple(batch)) == tuple(batch)
        except ValueError:
            okb = False
        if not okb:
            raise ValueError(f"{fn}: sample_weight of shape {tuple(wshape)} does not "
                             f"broadcast to the batch (rows) shape {tuple(batch)}")
        d = _device.as_device_array(sample_weight, "sample_weight", fn)
        if not (d.is_c_contiguous() and d.dtype in (np.float32, np.float64)):
            d = _device.to_device(sample_weight, dt, "sample_weight", fn, alloc, st)
        if N:
            SW = (layout.contiguous_flat(d) if tuple(wshape) == tuple(batch) and d.dtype == dt
                  else layout.broadcast(alloc, st, layout.contiguous_flat(d), wshape, batch,
                                        dt)[1])
    elif sample_weight is not None:
        w, ws = _row_weights(sample_weight, batch, dt, fn)
        SW = None if w is None else alloc.to_device(w.reshape(-1))
    ws = ws * wfac
    K = YL = wtot = None
    if N and (Ld is not None or SW is not None):
        ign = (_int(params["ignore_index"], "ignore_index", fn)
               if "ignore_index" in spec.params else None)
        K, YL, wtot = row_labels(alloc, st, N, Ld, lmode, D, ign,
                                 CWh if spec.cw_mean else None, SW, ws * mfac, dt)
        wsum = 0.0   # read on the device
        gscale = 1.0
    else:
        wsum = ws * float(N) * mfac
        gscale = (1.0 / wsum if wsum > 0 else float("nan")) if reduction == "mean" else 1.0
    return _run_cuda(spec, arrays, shape, ax, moved, batch, N, D, dt, kind, tag, flags, K,
                     YL, CWh, SW, ws, pvals, gscale, wsum, reduction, wanted, grad_out,
                     None if terms else out, stream, device_result, wtot, st, alloc, cwchk,
                     want_hess, hess_out, terms=terms, terms_out=out if terms else None)


# --------------------------------------------------------------- the losses' parameters
def _check_labels_in_range(K, D, fn, name, ignore=None):
    if K.size and 0 <= K.min() and K.max() < D:   # (two reductions, no temporaries)
        return
    bad = (K < 0) | (K >= D)
    if bad.any():
        v = int(K[bad][0])
        extra = f" or ignore_index={ignore}" if ignore is not None else ""
        raise ValueError(f"{fn}: {name} must be class indices in [0, {D}){extra}; found {v} "
                         f"(number of classes C = {D})")


def _prep_sce(params, D, dt, K, fn):
    s = _real(params["label_smoothing"], "label_smoothing", fn, "closed01")
    CW = _class_weight(params.get("class_weight"), D, dt, fn)
    return "sce", True, (s, s / max(D, 1), 1.0 - s, 0.0), {"class_weight": CW}


def _class_weight(cw, D, dt, fn):
    """Validated per-class weights as a contiguous ``dt`` array of shape (D,), or None."""
    if cw is None:
        return None
    c = as_host_array(cw, "class_weight", fn)
    float_dtype_of(c, "class_weight", fn)
    if c.shape != (D,):
        raise ValueError(f"{fn}: class_weight must have shape ({D},) (one weight per "
                         f"class), got shape {c.shape}")
    if not np.all(np.isfinite(c)) or (c.size and c.min() < 0):
        raise ValueError(f"{fn}: class_weight must be finite and non-negative")
    return np.ascontiguousarray(c, dtype=dt)


def _prep_ice(params, D, dt, K, fn):
    s = _real(params["label_smoothing"], "label_smoothing", fn, "closed01")
    ign = _int(params["ignore_index"], "ignore_index", fn)
    skip = K == ign
    _check_labels_in_range(K[~skip], D, fn, "labels", ign)
    K[skip] = -1   # the kernels treat any label outside [0, C) as an ignored row
    CW = _class_weight(params["class_weight"], D, dt, fn)
    W = float(D) if CW is None else float(np.sum(CW, dtype=np.float64))
    return "ice", True, (s, s / max(D, 1), 1.0 - s, W), {"class_weight": CW}


def _prep_kl(params, D, dt, K, fn):
    lt = _bool(params["log_target"], "log_target", fn)
    _bool(params["elementwise"], "elementwise", fn)
    return ("klt" if lt else "kl"), False, (0.0, 0.0, 0.0, 0.0), {}


def _prep_skl(params, D, dt, K, fn):
    return "skl", True, (0.0, 0.0, 0.0, 0.0), {}


def _prep_mh(params, D, dt, K, fn):
    margin = _real(params["margin"], "margin", fn)
    kind = check_choice(params["kind"], ("weston_watkins", "crammer_singer"), "kind", fn)
    p = _int(params["p"], "p", fn)
    if p not in (1, 2):
        raise ValueError(f"{fn}: p must be 1 or 2, got {p!r}")
    _check_labels_in_range(K, D, fn, "labels")
    extra = {"class_weight": _class_weight(params["class_weight"], D, dt, fn)}
    sq = "2" if p == 2 else ""
    if kind == "crammer_singer":
        return "mhcs" + sq, True, (margin, 0.0, 0.0, 0.0), extra
    return "mh" + sq, False, (margin, 0.0, 0.0, 0.0), extra


def _prep_cemb(params, D, dt, K, fn):
    margin = _real(params["margin"], "margin", fn)
    eps = _real(params["eps"], "eps", fn, ">=0")
    if params.get("epsilon") is not None:   # optax: max(‖x‖, epsilon), eps unused
        e = _real(params["epsilon"], "epsilon", fn, ">=0")
        return "cembo", False, (margin, e, 1.0, 0.0), {}
    return "cemb", False, (margin, eps, 0.0, 0.0), {}


def _fix_cemb(A, B, YL, out_l, gA, gB, rw, ws, gscale, pvals):
    if pvals[2]:   # the optax form: no host recomputation
        return None
    from ._limits import cosine_embedding_rows
    return cosine_embedding_rows(A, B, YL, out_l, None if gA is None else gA[1],
                                 None if gB is None else gB[1], rw, ws, gscale,
                                 float(pvals[0]), float(pvals[1]))


def _prep_cdist(params, D, dt, K, fn):
    return "cdist", False, (0.0, 0.0, 0.0, 0.0), {}


def _prep_trip(params, D, dt, K, fn):
    margin = _real(params["margin"], "margin", fn)
    sq = _bool(params["squared"], "squared", fn)
    eps = _real(params["eps"], "eps", fn, ">=0")
    p = _real(params["p"], "p", fn)
    if not p >= 1:
        raise ValueError(f"{fn}: p must be >= 1 (a norm), got {p!r}")
    swap = _bool(params["swap"], "swap", fn)
    if sq and (p != 2 or swap):
        raise ValueError(f"{fn}: squared=True takes p=2 and swap=False")
    if p != 2 or swap:
        return "tripp", False, (margin, eps, p, 1.0 if swap else 0.0), {}
    return ("trips" if sq else "trip"), False, (margin, eps, 0.0, 0.0), {}


def _prep_mpse(params, D, dt, K, fn):
    # phase 1 carries the row's first difference, the shift of the centred sums
    return "mpse", True, (0.0, 0.0, 0.0, 0.0), {}


def _prep_nll(params, D, dt, K, fn):
    # the labels, ignore_index and class_weight of the integer-label cross-entropy
    extra = _prep_ice(dict(params, label_smoothing=0.0), D, dt, K, fn)[3]
    return "nll", False, (0.0, 0.0, 0.0, 0.0), extra


def _prep_chinge(params, D, dt, K, fn):
    return "chinge", True, (0.0, 0.0, 0.0, 0.0), {}


def _prep_poly(params, D, dt, K, fn):
    eps = _real(params["epsilon"], "epsilon", fn)
    return "poly", True, (eps, 0.0, 0.0, 0.0), {}


def _prep_mlsm(params, D, dt, K, fn):
    CW = _class_weight(params["class_weight"], D, dt, fn)
    return "mlsm", False, (0.0, 0.0, 0.0, 0.0), {"class_weight": CW}


def _prep_cfoc(params, D, dt, K, fn):
    alpha = _real(params["alpha"], "alpha", fn, ">=0")
    gamma = _real(params["gamma"], "gamma", fn, ">=0")
    _check_labels_in_range(K, D, fn, "labels")
    return "cfoc", True, (alpha, gamma, 0.0, 0.0), {}


def _prep_mlm(params, D, dt, K, fn):
    return "mlm", False, (0.0, 0.0, 0.0, 0.0), {}


def _pre_mlm(inputs, fn):
    """PyTorch's target rows of class indices (ended by the first negative entry) as a
    float array of each class's count in its row's list (what the row math reads)."""
    x, t = inputs["scores"], inputs["target"]
    xs, xdt = _meta(x, "scores", fn)
    T = _device_to_host(t) if _device.on_cuda(t) else as_host_array(t, "target", fn)
    if T.dtype.kind not in "iu":
        raise TypeError(f"{fn}: target must be an integer array of class indices "
                        f"(ended by -1), got dtype {T.dtype}")
    if T.shape != tuple(xs):
        raise _shape_err(fn, "scores", xs, "target", T.shape)
    dt = xdt if np.dtype(xdt).kind == "f" else np.float64
    if T.ndim == 0 or T.size == 0:
        return dict(inputs, target=np.zeros(T.shape, dt))
    C = T.shape[-1]
    T2 = T.reshape(-1, C).astype(np.int64)
    neg = T2 < 0
    end = np.where(neg.any(1), neg.argmax(1), C)
    listed = np.arange(C) < end[:, None]
    if listed.any() and T2[listed].max() >= C:
        bad = int(T2[listed & (T2 >= C)][0])
        raise ValueError(f"{fn}: target must hold class indices in [0, {C}) before its "
                         f"first -1, found {bad}")
    cnt = np.zeros(T2.shape, dt)
    r = np.broadcast_to(np.arange(T2.shape[0])[:, None], T2.shape)[listed]
    np.add.at(cnt, (r, T2[listed]), 1)
    return dict(inputs, target=cnt.reshape(T.shape))


def _prep_msm(params, D, dt, K, fn):
    _check_labels_in_range(K, D, fn, "labels")
    return "msm", True, (0.0, 0.0, 0.0, 0.0), {}


def _smooth(params, fn):
    return (_real(params["smooth_nr"], "smooth_nr", fn, ">=0"),
            _real(params["smooth_dr"], "smooth_dr", fn, ">=0"))


def _prep_dice(params, D, dt, K, fn):
    nr, dr = _smooth(params, fn)
    return "tvk", False, (0.5, 0.5, nr / 2, dr / 2), {}


def _prep_tversky(params, D, dt, K, fn):
    alpha = _real(params["alpha"], "alpha", fn, ">=0")
    beta = _real(params["beta"], "beta", fn, ">=0")
    nr, dr = _smooth(params, fn)
    return "tvk", False, (alpha, beta, nr, dr), {}


def _add(**kw):
    ROWLOSSES[kw["name"]] = RowLoss(**kw)


_add(name="softmax_cross_entropy", order=("logits", "labels"), floats=("logits", "labels"),
     axis=True, prob="labels", differentiable=("logits", "labels"),
     params={"axis": -1, "label_smoothing": 0.0, "class_weight": None}, prepare=_prep_sce,
     formula="-Σ_c w_c y'_c log softmax(x)_c,  y' = y (1 - s) + s / C",
     doc="Softmax cross-entropy with dense (probability) labels along ``axis`` "
         "(TF ``softmax_cross_entropy``; label smoothing as TF: y·(1−s) + s/C; labels must be "
         "finite and non-negative). ``class_weight`` (C,): PyTorch's ``cross_entropy`` "
         "``weight`` with probability targets, −Σ_c w_c y'_c log softmax(x)_c; 'mean' "
         "divides by the number of rows (Σ sample weights), not by the class weights, as "
         "PyTorch does for probability targets. "
         "Gradients w.r.t. logits and labels (−(1−s)·w·log softmax). "
         "``grad_and_hessian``: the gradient w.r.t. the logits and the diagonal of the true "
         "Hessian (Σ_c w_c y'_c)·p_k(1 − p_k), p = softmax(logits), per row, scaled as the "
         "gradient (sample weight; 1/Σw for 'mean'); the full Hessian is "
         "(Σwy')·(diag(p) − p pᵀ).")
_add(name="softmax_cross_entropy_with_integer_labels", order=("logits", "labels"),
     floats=("logits",), labels="labels", label_kind="int", axis=True,
     differentiable=("logits",),
     params={"axis": -1, "label_smoothing": 0.0, "class_weight": None, "ignore_index": -100},
     prepare=_prep_ice,
     formula="(1-s) w_y (lse(x) - x_y) + (s/C) Σ_c w_c (lse(x) - x_c)",
     doc="Softmax cross-entropy with integer class labels (PyTorch ``cross_entropy``): "
         "``class_weight`` (C,), ``label_smoothing``, ``ignore_index`` rows contribute 0 with "
         "0 gradient; 'mean' divides by the summed (sample × class) weights of counted rows. "
         "``grad_and_hessian``: the gradient w.r.t. the logits and the diagonal of the true "
         "Hessian T·p_k(1 − p_k), p = softmax(logits), T = (1−s)·w_y + (s/C)·Σ_c w_c (the "
         "row's weight of log-sum-exp; 1 without weights and smoothing), scaled as the "
         "gradient (sample weight; 1/Σw for 'mean'); ignored rows give 0. The full Hessian "
         "is T·(diag(p) − p pᵀ).")
_add(name="kl_divergence", order=("log_probs", "target"), floats=("log_probs", "target"),
     axis=True, prob="target", differentiable=("log_probs", "target"),
     params={"axis": -1, "log_target": False, "elementwise": False}, prepare=_prep_kl,
     reductions=("batchmean",),
     formula="Σ_c t_c (log t_c - log p_c),  0 log 0 = 0",
     doc="KL divergence KL(t ‖ p) from log-probabilities ``log_probs`` and target "
         "probabilities (log-probabilities with ``log_target=True``), summed along ``axis``. "
         "Targets must be finite and non-negative. Not clamped: with log-probabilities that "
         "do not sum to 1 the value can be negative (as PyTorch's ``kl_div``), and at t = p "
         "rounding can leave about −1e-16. At t = 0 where log p = −inf the target gradient "
         "is NaN: the loss jumps from 0 to +inf there and has no derivative. "
         "``reduction='batchmean'``: the sum divided by the size of the inputs' first axis "
         "(PyTorch's ``input.size(0)``; the number of rows for 2-D inputs with the class "
         "axis last); ``out=`` then holds the per-row terms of that sum (already divided). "
         "``elementwise=True`` gives PyTorch's per-element semantics: with "
         "``reduction='none'`` the per-element terms t·(log t − log p) (the inputs' shape, "
         "times the row's sample weight; ``out=`` of that shape), with 'mean' the mean over "
         "all elements (Σ w·ℓ / (Σw · C), PyTorch's 'mean'); 'sum' and 'batchmean' are "
         "unchanged. Gradients are those of the reduced value (of the sum for 'none').")
_add(name="softmax_kl_divergence", order=("logits", "target"), floats=("logits", "target"),
     axis=True, prob="target", differentiable=("logits", "target"),
     params={"axis": -1}, prepare=_prep_skl,
     formula="Σ_c t_c (log t_c - log softmax(x)_c)",
     doc="KL divergence KL(t ‖ softmax(logits)) along ``axis``; gradient w.r.t. the logits "
         "(and the target). Targets must be finite and non-negative; a row whose targets "
         "sum to 1 (within n·2⁻²³) is never below 0, other rows never below S·log S "
         "(S = Σt, the exact lower bound).")
_add(name="multiclass_hinge", order=("scores", "labels"), floats=("scores",), labels="labels",
     label_kind="int", differentiable=("scores",),
     params={"margin": 1.0, "kind": "weston_watkins", "p": 1, "class_weight": None},
     prepare=_prep_mh, cw_mean=False,
     formula="w_y Σ_{j≠y} max(0, s_j - s_y + margin)^p  (crammer_singer: max_{j≠y})",
     doc="Multiclass hinge loss over the last axis. ``kind='weston_watkins'`` sums over the "
         "wrong classes (PyTorch ``multi_margin_loss`` × C); ``'crammer_singer'`` takes the "
         "largest (ties share the subgradient equally). ``p=2`` squares each hinge term "
         "(PyTorch's ``p=2``). ``class_weight`` (C,): PyTorch's ``weight``, w_y times each "
         "of the row's terms (after the power, as PyTorch computes it); 'mean' divides by "
         "the number of rows (Σ sample weights), not by the class weights, as PyTorch.")
_add(name="cosine_embedding", order=("x1", "x2", "labels"), floats=("x1", "x2"),
     labels="labels", label_kind="pm1", differentiable=("x1", "x2"),
     params={"margin": 0.0, "eps": 1e-12, "epsilon": None}, prepare=_prep_cemb,
     fixup=_fix_cemb,
     formula="1 - cos(x1, x2) if y = 1 else max(0, cos(x1, x2) - margin)",
     doc="Cosine embedding loss (PyTorch ``cosine_embedding_loss``); "
         "cos = Σx1·x2 / sqrt((Σx1² + eps)(Σx2² + eps)), so zero rows give cos = 0. "
         "A row with infinite entries gives the limit as they grow alike (cos of their "
         "signs against the other row; gradient 0 for the infinite row), and rows of huge "
         "finite entries are computed without overflow (on the CPU; the CUDA kernels give "
         "NaN for such rows). ``epsilon`` (optax ``cosine_similarity``/``cosine_distance``): "
         "when given, cos = Σx1·x2 / (max(‖x1‖, epsilon)·max(‖x2‖, epsilon)) (optax's "
         "``safe_norm``: no gradient through a clamped norm) and ``eps`` is not used; then "
         "1 − cos for y = 1 is optax's ``cosine_distance``. In that form squares are formed "
         "in float64 and rows of float64 entries beyond about 1e154 give NaN.")
_add(name="cosine_distance", order=("pred", "target"), floats=("pred", "target"), axis=True,
     differentiable=("pred", "target"), params={"axis": -1}, prepare=_prep_cdist,
     formula="1 - Σ pred·target",
     doc="Cosine distance along ``axis`` (TF-Slim ``cosine_distance``; inputs are assumed "
         "unit-normalized and are not normalized here).")
_add(name="triplet_margin", order=("anchor", "positive", "negative"),
     floats=("anchor", "positive", "negative"),
     differentiable=("anchor", "positive", "negative"),
     params={"margin": 1.0, "squared": False, "eps": 1e-6, "p": 2.0, "swap": False},
     prepare=_prep_trip,
     formula="max(0, ‖a - p + eps‖_p - ‖a - n + eps‖_p + margin)",
     doc="Triplet margin loss with p = 2 (PyTorch ``triplet_margin_loss``: eps is added to "
         "the difference before the norm). ``squared=True``: MXNet Gluon's "
         "max(0, ‖a−p‖² − ‖a−n‖² + margin) (no eps). Infinite entries give the limit as "
         "they grow alike: an infinite anchor entry k gives ‖a−p‖ − ‖a−n‖ → "
         "sign·(n_k − p_k) (several: Σ sign_k (n_k − p_k)/√K), an infinite positive entry "
         "+inf; infinities in unrelated places (anchor and positive, positive and negative "
         "at different entries) have no limit: NaN. Not squared, the squares are formed in "
         "the input dtype: differences beyond about 1.8e19 in float32 (1.3e154 in float64) "
         "overflow them (a limit of the kernels). "
         "``p`` (>= 1, PyTorch's ``p``) and ``swap=True`` (PyTorch's distance swap: the "
         "negative distance is min(d(a, n), d(p, n)), d(p, n) = ‖p − n + eps‖_p; a tie "
         "keeps d(a, n)): d(x, y) = (Σ|x − y + eps|^p)^(1/p); the gradient of a zero "
         "distance is 0 for p > 1 (sign(0) = 0 for p = 1). For p ≠ 2 or swap=True the "
         "terms |·|^p are formed in the input dtype and infinite entries follow the "
         "arithmetic (NaN where infinities cancel), without the limits above.")
_add(name="mean_pairwise_squared_error", order=("pred", "target"), floats=("pred", "target"),
     flatten=True, differentiable=("pred", "target"), params={}, prepare=_prep_mpse,
     formula="mean_{i<j} ((p_i - p_j) - (t_i - t_j))^2 per sample",
     doc="Mean pairwise squared error (``tf.losses`` form: n(n−1)/2 pairs over all "
         "non-batch elements of each sample; a sample with one element gives 0).")
_add(name="nll_loss", order=("log_probs", "labels"), floats=("log_probs",), labels="labels",
     label_kind="int", axis=True, differentiable=("log_probs",),
     params={"axis": -1, "class_weight": None, "ignore_index": -100}, prepare=_prep_nll,
     formula="-w_y log_probs_y",
     doc="Negative log-likelihood of integer class labels from log-probabilities (PyTorch "
         "``nll_loss``): ``class_weight`` (C,) and ``ignore_index`` as "
         "``softmax_cross_entropy_with_integer_labels`` (ignored rows contribute 0 with 0 "
         "gradient; 'mean' divides by the summed (sample × class) weights of counted rows). "
         "Gradient −w_y at the label, 0 elsewhere. Only the label's entry enters the value, "
         "but a NaN anywhere in a row makes that row's loss NaN (PyTorch reads only the "
         "label's entry).")
_add(name="categorical_hinge", order=("pred", "target"), floats=("pred", "target"),
     axis=True, differentiable=("pred",), params={"axis": -1}, prepare=_prep_chinge,
     formula="max(0, max_c (1 - t_c) p_c - Σ_c t_c p_c + 1)",
     doc="Categorical hinge loss along ``axis`` (Keras ``CategoricalHinge``, whose "
         "arguments are ``(y_true, y_pred)``: here ``pred`` comes first): "
         "pos = Σ t·p, neg = max((1 − t)·p), max(0, neg − pos + 1); targets one-hot or soft "
         "(not checked). Gradient w.r.t. ``pred``: −t plus (1 − t_c) at the maximizing "
         "class c (tied maxima share it equally, as TensorFlow's gradient of "
         "``reduce_max``); 0 where the hinge is inactive or exactly at its kink. An "
         "infinite prediction next to a zero target (or 1 − target) factor gives NaN, as "
         "Keras (0·inf).")
_add(name="poly1_softmax_cross_entropy", order=("logits", "labels"),
     floats=("logits", "labels"), axis=True, prob="labels",
     differentiable=("logits", "labels"), params={"axis": -1, "epsilon": 2.0},
     prepare=_prep_poly,
     formula="-Σ_c y_c log q_c + epsilon Σ_c y_c (1 - q_c),  q = softmax(x)",
     doc="Poly-1 cross-entropy (Leng et al. 2022; optax ``poly_loss_cross_entropy``): "
         "softmax cross-entropy with probability labels plus ε·Σ y·(1 − softmax(x)) "
         "(ε(1 − p_t) for one-hot labels). Labels must be finite and non-negative. "
         "Gradients w.r.t. the logits (S·q − y − ε·q·(y − Σy·q), S = Σy) and the labels "
         "(−log q + ε(1 − q)).")
_add(name="multilabel_soft_margin", order=("logits", "target"), floats=("logits", "target"),
     differentiable=("logits",), params={"class_weight": None}, prepare=_prep_mlsm,
     formula="(1/C) Σ_c w_c (log(1 + e^{x_c}) - y_c x_c)",
     doc="Multi-label soft margin loss over the last axis (PyTorch "
         "``multilabel_soft_margin_loss``): the mean over the C classes of the sigmoid "
         "binary cross-entropy of each logit, with targets in [0, 1] (not checked) and an "
         "optional per-class ``class_weight`` (PyTorch's ``weight``); 'mean' averages over "
         "rows (sample weights), as PyTorch. A zero factor times an infinite logit is 0 "
         "(PyTorch gives NaN there). ``grad_and_hessian``: the gradient w.r.t. the logits "
         "and the exact (diagonal) Hessian w_c σ(x_c)(1 − σ(x_c))/C, scaled as the "
         "gradient.")
_add(name="categorical_focal_cross_entropy", order=("logits", "labels"), floats=("logits",),
     labels="labels", label_kind="int", axis=True, differentiable=("logits",),
     params={"axis": -1, "alpha": 0.25, "gamma": 2.0}, prepare=_prep_cfoc,
     formula="-alpha (1 - p_y)^gamma log p_y,  p = softmax(x)",
     doc="Categorical focal cross-entropy on logits (Keras ``CategoricalFocalCrossentropy`` "
         "with ``from_logits=True``) for integer class labels (the index of Keras's one-hot "
         "``y_true``; soft labels are not supported). Unlike Keras, the probability is not "
         "clipped to [1e-7, 1 − 1e-7]: the value is the exact −α(1 − p_y)^γ log p_y "
         "(1 − p_y is summed from the other classes, so it stays accurate as p_y → 1). "
         "Gradient w.r.t. the logits g·(p − onehot(y)), "
         "g = α(1 − p_y)^γ (1 − γ p_y log p_y / (1 − p_y)).")
_add(name="multilabel_margin", order=("scores", "target"), floats=("scores", "target"),
     differentiable=("scores",), params={}, prepare=_prep_mlm, pre=_pre_mlm,
     formula="(1/C) Σ_{j ∈ Y} Σ_{i ∉ Y} max(0, 1 - (s_j - s_i))",
     doc="Multi-label margin loss over the last axis (PyTorch ``multilabel_margin_loss``): "
         "``target`` is an integer array of the scores' shape whose rows list the target "
         "classes Y, ended by the first negative entry (-1; later entries are ignored; a "
         "class listed twice counts twice, as PyTorch). Each (target, non-target) pair "
         "adds max(0, 1 − s_j + s_i), divided by C; 'mean' averages over rows. O(C·|Y|) "
         "per element (the row is read whole), as PyTorch's O(C²) per row. The target "
         "is converted on the host (a device target is copied there). Gradient w.r.t. "
         "the scores; at the hinge's kink (s_j − s_i = 1) the subgradient is 0.")
_add(name="multiclass_sparsemax_loss", order=("scores", "labels"), floats=("scores",),
     labels="labels", label_kind="int", axis=True, differentiable=("scores",),
     params={"axis": -1}, prepare=_prep_msm,
     formula="Σ_c p_c (z_c - z_y) + (1 - Σ_c p_c²)/2,  p = sparsemax(z)",
     doc="Multiclass sparsemax loss (Martins & Astudillo 2016; optax "
         "``multiclass_sparsemax_loss``, integer labels) along ``axis``: the Fenchel-Young "
         "loss of sparsemax, p = max(z − τ, 0) with Σp = 1 (the Euclidean projection of the "
         "scores on the simplex). The threshold τ is computed per row without sorting: "
         "from the lower bound τ₀ = max z − 1, τ ← (Σ_{z_j > τ} z_j − 1) / #{z_j > τ} "
         "until the support's size repeats (Michelot's fixed point: τ increases to the "
         "exact value, the support shrinks; at most C + 1 passes over the row, a few in "
         "practice), so τ is the exact formula on the exact support to float64 rounding of "
         "its sum. Gradient p − onehot(y); ``grad_and_hessian`` gives the exact diagonal "
         "[p_c > 0](1 − 1/|S|) of the Hessian (S the support), scaled as the gradient. A "
         "+inf score gives NaN; −inf scores are outside the support. (optax's "
         "``sparsemax_loss`` is the binary, elementwise loss; this is its multiclass one.)")
_add(name="dice", order=("pred", "target"), floats=("pred", "target"), flatten=True,
     differentiable=("pred", "target"), params={"smooth_nr": 1e-5, "smooth_dr": 1e-5},
     prepare=_prep_dice,
     formula="1 - (2 Σ p t + smooth_nr) / (Σ p + Σ t + smooth_dr) per sample",
     doc="Soft Dice loss per sample over all its non-batch elements (MONAI ``DiceLoss`` "
         "with ``sigmoid=False, softmax=False, squared_pred=False``, its smoothing "
         "defaults, and every non-batch axis reduced together — MONAI reduces per channel "
         "by default; ``pred`` are probabilities, not checked). Sums "
         "Σpt, Σp(1 − t), Σ(1 − p)t are accumulated separately (no cancellation). "
         "Gradients w.r.t. ``pred`` and ``target``; ``grad_and_hessian``: the diagonal of "
         "the true Hessian w.r.t. ``pred``, 2v(uD − Nv)/D³ (N, D the fraction's numerator "
         "and denominator, u = t, v = ∂D/∂p), scaled as the gradient.")
_add(name="tversky", order=("pred", "target"), floats=("pred", "target"), flatten=True,
     differentiable=("pred", "target"),
     params={"alpha": 0.5, "beta": 0.5, "smooth_nr": 1e-5, "smooth_dr": 1e-5},
     prepare=_prep_tversky,
     formula="1 - (Σ p t + smooth_nr) / (Σ p t + α Σ p (1-t) + β Σ (1-p) t + smooth_dr)",
     doc="Soft Tversky loss per sample over all its non-batch elements (Salehi et al. "
         "2017; MONAI ``TverskyLoss`` with ``sigmoid=False, softmax=False`` and every "
         "non-batch axis reduced together): α weights the false positives Σp(1 − t), β the "
         "false negatives Σ(1 − p)t; α = β = 0.5 is the Dice coefficient (with halved "
         "smoothing). Gradients w.r.t. ``pred`` and ``target``; ``grad_and_hessian``: the "
         "diagonal of the true Hessian w.r.t. ``pred``, scaled as the gradient.")
