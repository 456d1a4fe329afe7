"""The elementwise family: validate, pick the target, allocate, launch, reduce, wrap."""
from __future__ import annotations

import os

import numpy as np

from . import _alloc, _device, _threads
from ._compile import cpu_kernel, dtype_tag, namespace
from ._math.spec import check_param
from ._validate import (REDUCTIONS, as_float, as_host_array, broadcast_to_shape, check_choice,
                        check_out, float_dtype_of, split_buffers, split_weights, unalias,
                        weight_total)

MATH = "fastloss._math.elementwise"
DEBUG = os.environ.get("FASTLOSS_DEBUG_KERNELS") == "1"  # serial, bounds-checked kernels
# below this many elements a serial kernel runs: no thread start-up, and a cheaper compile
PARALLEL_MIN = int(os.environ.get("FASTLOSS_PARALLEL_MIN", 1 << 16))


_KERNEL_FOR: dict = {}  # (loss, dtype, parallel) -> kernel: skips the lookups per call
_CPU: list = []        # fastloss._cpu once loaded (it imports Numba: never at import time)


def _cpu_module():
    from . import _cpu
    _CPU[:] = [_cpu]
    return _cpu


def cpu_kernel_for(spec, dtype, n=PARALLEL_MIN, math=None):
    """The cached fused kernel of one loss for one dtype (compiled on first call);
    ``math``: the name of the loss's math function (``spec.math_for(params)``; None: the
    loss's own)."""
    math = math or spec.name
    key = (spec.name, dtype_tag(dtype), n >= PARALLEL_MIN, math)
    k = _KERNEL_FOR.get(key)
    if k is None:
        k = _KERNEL_FOR[key] = _build_kernel(spec, dtype, n, math)
    return k


def kernel_for_params(spec, dtype, abc):
    """:func:`cpu_kernel_for` with the math the checked parameter values ``abc`` select
    (a ``fast`` twin where one matches, see ``ElementwiseSpec.math_for``)."""
    return cpu_kernel_for(spec, dtype, math=spec.math_for(abc) if spec.fast else None)


def _build_kernel(spec, dtype, n, math=None):
    if spec.arity != 2:   # (fastloss.prepare binds the two-array kernels only)
        raise TypeError(f"{spec.name}: a loss of {spec.arity} arrays has no two-array kernel; "
                        f"prepare() and the other two-array paths do not support it")
    from ._cpu.elementwise import ew_kernel
    from ._cpu.wide import transcendental

    tag = dtype_tag(dtype)
    ns = namespace(MATH, "cpu32" if tag == "f32" else "cpu64")
    check = spec.check.__name__ if spec.check is not None else "ok_always"
    parallel = n >= PARALLEL_MIN and not DEBUG
    import numba

    math = math or spec.name
    return cpu_kernel(ew_kernel, f"{math}_{tag}" + ("" if parallel else "_serial"),
                      {"loss_fn": ns[math], "check_fn": ns[check],
                       "FT": numba.float32 if tag == "f32" else numba.float64},
                      parallel=parallel, boundscheck=True if DEBUG else None,
                      wide=transcendental(spec.fn))


_PARAMS: dict = {}  # (loss, parameter values) -> checked tuple, for plain int/float values


def loss_params(spec, params: dict) -> tuple:
    key = (spec.name, *[params[p.name] for p in spec.params])
    plain = all(type(v) is float or type(v) is int for v in key[1:])  # (never bool, NaN ok)
    if plain:
        hit = _PARAMS.get(key)
        if hit is not None:
            return hit
    vals = [check_param(p, params[p.name], spec.base or spec.name) for p in spec.params]
    out = tuple(vals + [0.0] * (3 - len(vals)))
    if plain and len(_PARAMS) < 1024:
        _PARAMS[key] = out
    return out


_PM1 = frozenset((1.0, -1.0))


_RANGE_MIN = 1 << 16   # from here the domain checks take one compiled pass (_outside)
_RANGE: list = []


def _outside(v, lo, hi, mag, nt):
    """The number of elements of a contiguous 1-D ``v`` (of ``|v|`` when ``mag``) below
    ``lo`` or above ``hi``, NaN not counted: one compiled pass of comparisons in ``v``'s
    dtype, parallel as the elementwise kernels are (``np.fmin``/``np.fmax`` take a pass
    each, single-threaded, and the ±1 check an ``np.abs`` temporary)."""
    cpu = _CPU[0] if _CPU else _cpu_module()
    if not _RANGE:
        from ._cpu.elementwise import outside_count
        _RANGE.append(cpu_kernel(outside_count, "outside", {}, wide=True))
    t = v.dtype.type
    return int(cpu.launch(_RANGE[0], v, t(lo), t(hi), mag,
                          parallel=cpu.want_parallel("elementwise", v.size, nt), n_threads=nt))


def _domain_count(spec, x, y, nt=None):
    """The number of elements outside the loss's domain (the kernel's check, vectorized;
    NaN passes as in the kernel), or None for a check with no vectorized twin here."""
    check = spec.check.__name__
    yf = y.reshape(-1)
    if yf.size >= _RANGE_MIN and check in ("ok_pm1", "ok_unit_target", "ok_unit_both") \
            and yf.flags.c_contiguous and x.flags.c_contiguous:
        if check == "ok_pm1":
            return _outside(yf, 1.0, 1.0, True, nt)
        bad = _outside(yf, 0.0, 1.0, False, nt)
        if check == "ok_unit_target":
            return bad
        if bad == 0 and _outside(x.reshape(-1), 0.0, 1.0, False, nt) == 0:
            return 0        # (otherwise the union of the two is counted below)
    if yf.size <= 64 and check != "ok_unit_both":     # small: cheaper in Python than ufuncs
        v = yf.tolist()
        if check == "ok_pm1" and set(v) <= _PM1:
            return 0
        if check == "ok_unit_target" and min(v) >= 0 and max(v) <= 1:  # (min/max skip a
            return 0                                                     #  NaN not first)
    if check == "ok_pm1":
        a = np.abs(yf)
        if np.fmin.reduce(a) < 1 or np.fmax.reduce(a) > 1:   # fmin/fmax skip NaN
            return int(np.count_nonzero((a != 1) & (a == a)))
        return 0
    if check in ("ok_unit_target", "ok_unit_both"):
        arrays = (yf, x.reshape(-1)) if check == "ok_unit_both" else (yf,)
        if any(np.fmin.reduce(v) < 0 or np.fmax.reduce(v) > 1 for v in arrays):
            bad = (yf < 0) | (yf > 1)
            if check == "ok_unit_both":
                bad |= (x.reshape(-1) < 0) | (x.reshape(-1) > 1)
            return int(np.count_nonzero(bad))
        return 0
    return None


def _checked_first(spec, bad, given, bufs, copies):
    """Act on the domain count taken before the kernel: raise for invalid entries; with
    no vectorized check (``bad`` None), the caller's buffers become temporaries (copied
    back after the kernel) so that an error leaves them untouched."""
    if bad is None:
        for i, (_, b) in enumerate(given):
            if bufs[i] is b:
                bufs[i] = np.empty_like(b)
                copies.append((b, bufs[i]))
    elif bad:
        raise _domain_error(spec, bad)


def _domain_error(spec, bad: int):
    what = "pred and target" if spec.pred_domain else spec.checked
    return ValueError(f"{spec.base or spec.name}: {what} must lie in {spec.target_domain}; "
                      f"{bad} element(s) do not")


def run(spec, inputs, params, *, sample_weight=None, reduction="mean", device="auto", out=None,
        want_grad=False, want_hess=False, grad_out=None, hess_out=None, argnums=(0,),
        stream=None, device_result=False, n_threads=None, sum_from=None, check_first=True,
        minmax=None, want_value=True):
    """Value (and gradient / diagonal Hessian w.r.t. ``pred``) of one elementwise loss.

    Returns ``(value, {"pred": grad}, hess)``; ``grad`` and ``hess`` refer to the reduced
    value (with ``reduction="none"``, to the sum of the per-element losses).
    ``sum_from``: a one-element list holding a running float64 total (host only); the
    kernel continues it (:mod:`fastloss._cpu.fold`) and the new total is stored back.
    ``check_first=False`` (for callers that own the output buffers, as ``fastloss.score``):
    no separate domain pass before the kernel; a domain error still raises, after the
    kernel has written the buffers.  ``minmax`` (host, two arrays, for ``fastloss.score``):
    a list that gets ``[min, max]`` of w·ℓ over the elements, from the kernel's pass (NaN
    elements make the sum NaN and leave the range undefined).  ``want_value=False`` (the
    gradient transforms, which discard the value): on the host, with a gradient asked for
    and no ``out``, ``sum_from`` or ``minmax``, the kernel neither stores nor sums the
    values (its variant without the value math) and the value returned is meaningless.
    """
    if minmax is not None and (spec.per_element and _array_param(spec, params) is not None):
        raise ValueError(f"{spec.name}: minmax= needs a loss of two arrays")
    if spec.per_element and minmax is None:
        pname = _array_param(spec, params)
        if pname is not None:   # an array parameter: the loss's three-array twin
            return run3(twin_spec(spec, pname), {**inputs, pname: params[pname]}, params,
                        sample_weight=sample_weight, reduction=reduction, device=device,
                        out=out, want_grad=want_grad, want_hess=want_hess,
                        grad_out=grad_out, hess_out=hess_out, argnums=(0,), stream=stream,
                        device_result=device_result, n_threads=n_threads,
                        sum_from=sum_from, check_first=check_first)
    pred, target = inputs["pred"], inputs["target"]
    key = None
    if (type(pred) is np.ndarray and type(target) is np.ndarray and sample_weight is None
            and out is None and grad_out is None and hess_out is None and sum_from is None
            and minmax is None
            and n_threads is None and device == "auto" and type(reduction) is str
            and pred.size < _SMALL):
        key = _plan_key(spec, params, reduction, want_grad, want_hess, pred, target)
        plan = _PLANS.get(key) if key is not None else None
        if plan is not None:
            return _run_planned(spec, plan, pred, target)
    fn = spec.name
    check_choice(reduction, REDUCTIONS, "reduction", fn)
    nt = _threads.resolve(n_threads, fn)
    abc = loss_params(spec, params)
    where = _device.resolve(device, {"pred": pred, "target": target,
                                     "sample_weight": sample_weight}, fn)
    kind = _device.device_kind({"pred": pred, "target": target, "sample_weight": sample_weight})
    if where == "cuda" and minmax is not None:
        raise ValueError(f"{fn}: minmax= is for host arrays")
    if where == "cuda":
        # validate and shape on the host view of the metadata; data moves only if needed
        return _run_cuda(spec, pred, target, sample_weight, abc, reduction, kind, want_grad,
                         want_hess, stream, device_result)
    x0 = as_host_array(pred, "pred", fn)
    dt = float_dtype_of(x0, "pred", fn)
    y0 = as_host_array(target, "target", fn)
    float_dtype_of(y0, "target", fn)
    shape = x0.shape
    x = as_float(x0, dt, "pred")
    y = broadcast_to_shape(as_float(y0, dt, "target"), shape, "target", "pred", fn)
    w, ws = _weights(sample_weight, shape, dt, fn)
    n = x.size
    wsum = ws * weight_total(w, n)
    gscale = _gscale(reduction, wsum)

    def buf(given, name, needed):
        if given is not None:
            return check_out(given, shape, dt, name, fn)
        return _alloc.empty(shape, dt) if needed else None

    out_l = buf(out, "out", reduction == "none")
    out_g = buf(grad_out, "grad_out", want_grad or want_hess)
    out_h = buf(hess_out, "hess_out", want_hess)
    copies = ()
    if out is not None or grad_out is not None or hess_out is not None:
        # each element is read before it is written: out=pred works in place; a partial
        # overlap goes through a temporary (what NumPy's ufuncs do)
        given = []
        if out is not None:
            given.append(("out", out_l))
        if grad_out is not None:
            given.append(("grad_out", out_g))
        if hess_out is not None:
            given.append(("hess_out", out_h))
        # converted or broadcast inputs are fresh copies: only the others can overlap
        bufs, copies = unalias(fn, given, (x if x is x0 else None, y if y is y0 else None, w))
        if spec.check is not None and n and check_first:
            # a domain error must leave the caller's buffers as they were: check the domain
            # here (one vectorized pass, only when buffers were passed) instead of after
            # the kernel wrote them
            _checked_first(spec, _domain_count(spec, x, y, nt), given, bufs, copies)
        if copies:
            it = iter(bufs)
            out_l = next(it) if out is not None else out_l
            out_g = next(it) if grad_out is not None else out_g
            out_h = next(it) if hess_out is not None else out_h
    mm = ()
    if n == 0:
        s, bad = (0.0 if sum_from is None else float(sum_from[0])), 0
    else:
        cpu = _CPU[0] if _CPU else _cpu_module()   # (a function-level import: ~1 µs a call)
        kern = kernel_for_params(spec, dt, abc)
        if minmax is not None:       # (otherwise omitted: the kernel without the range)
            from ._cpu.fold import BLK
            mm = (np.empty(((n + BLK - 1) // BLK, 2), dt),)
        elif not want_value and out_l is None and sum_from is None and out_g is not None:
            mm = (None, True)        # the variant without the values (ew_kernel's nov)
        s, bad = cpu.launch(kern, x.reshape(-1), y.reshape(-1),
                        None if w is None else w.reshape(-1), dt.type(ws),
                        *(dt.type(v) for v in abc), dt.type(gscale),
                        None if out_l is None else out_l.reshape(-1),
                        None if out_g is None else out_g.reshape(-1),
                        None if out_h is None else out_h.reshape(-1),
                        0.0 if sum_from is None else float(sum_from[0]), *mm,
                        parallel=cpu.want_parallel("elementwise", n, nt), n_threads=nt)
    if minmax is not None:
        minmax[:] = ([float(mm[0][:, 0].min()), float(mm[0][:, 1].max())] if mm
                     else [float("inf"), float("-inf")])
    if bad:
        raise _domain_error(spec, bad)
    if key is not None and n and x is pred and y is target and w is None:
        if len(_PLANS) >= 1024:
            _PLANS.clear()
        _PLANS[key] = (cpu.serial(kern), dt, reduction, dt.type(ws),
                       *(dt.type(v) for v in abc), dt.type(gscale), wsum,
                       out_l is not None, out_g is not None, out_h is not None)
    if sum_from is not None:
        sum_from[0] = s
    for user, tmp in copies:
        user[...] = tmp
    if copies:
        back = {id(t): u for u, t in copies}
        out_l, out_g, out_h = (None if b is None else back.get(id(b), b)
                               for b in (out_l, out_g, out_h))
    return _reduce(s, wsum, reduction, out_l, dt), {"pred": out_g}, out_h


# Small calls (below the parallel threshold, where the Python layer costs more than the
# kernel): after one checked call, the decisions that depend only on the call's metadata
# (types, dtypes, shapes, contiguity, parameter values, reduction, outputs) are kept as a
# plan, and a later call with the same metadata goes straight to the serial kernel.  The
# values are still checked by the kernel (invalid labels raise; NaN propagates).
_SMALL = 1 << 16
_PLANS: dict = {}


def _plan_key(spec, params, reduction, want_grad, want_hess, pred, target):
    """The metadata of a small host call, or None when a value is not plainly hashable."""
    if not (pred.flags.c_contiguous and target.flags.c_contiguous):
        return None
    pv = tuple(params.values())
    for v in pv:
        t = type(v)
        if not (t is float or t is int or t is bool):
            return None
    return _key_head(spec, reduction, want_grad, want_hess, pred, target) + (
        tuple(map(type, pv)), pv)


def _key_head(spec, reduction, want_grad, want_hess, pred, target) -> tuple:
    """The plan key's part that is not the parameters."""
    return (spec.name, reduction, want_grad, want_hess, pred.dtype, target.dtype, pred.shape,
            target.shape)


def default_tail(spec) -> tuple:
    """The parameter part of a plan key for a call with the default parameters."""
    pv = tuple(p.default for p in spec.params)
    return (tuple(map(type, pv)), pv)


def small_call(spec, tail, args, want_grad, want_hess):
    """A positional call ``(pred, target)`` with default parameters and reduction, run from
    its plan; None when there is none (the caller takes the checked path, which makes it)."""
    if len(args) != 2:
        return None
    x, y = args
    if type(x) is not np.ndarray or type(y) is not np.ndarray or x.size >= _SMALL \
            or not (x.flags.c_contiguous and y.flags.c_contiguous):
        return None
    plan = _PLANS.get(_key_head(spec, "mean", want_grad, want_hess, x, y) + tail)
    return None if plan is None else _run_planned(spec, plan, x, y)


def _run_planned(spec, plan, pred, target):
    kern, dt, reduction, ws, a, b, c, gscale, wsum, need_l, need_g, need_h = plan
    shape = pred.shape
    out_l = np.empty(shape, dt) if need_l else None
    out_g = np.empty(shape, dt) if need_g else None
    out_h = np.empty(shape, dt) if need_h else None
    if len(shape) == 1:
        s, bad = kern(pred, target, None, ws, a, b, c, gscale, out_l, out_g, out_h, 0.0)
    else:
        s, bad = kern(pred.reshape(-1), target.reshape(-1), None, ws, a, b, c, gscale,
                      None if out_l is None else out_l.reshape(-1),
                      None if out_g is None else out_g.reshape(-1),
                      None if out_h is None else out_h.reshape(-1), 0.0)
    if bad:
        raise _domain_error(spec, bad)
    return _reduce(s, wsum, reduction, out_l, dt), {"pred": out_g}, out_h


def _weights(sample_weight, shape, dt, fn):
    return split_weights(sample_weight, shape, dt, fn)


def _gscale(reduction, wsum):
    if reduction != "mean":
        return 1.0
    return 1.0 / wsum if wsum > 0 else float("nan")


def _reduce(s, wsum, reduction, out_l, dt):
    if reduction == "none":
        return out_l
    if reduction == "sum":
        return dt.type(s)
    return dt.type(s / wsum) if wsum > 0 else dt.type(np.nan)


def _run_cuda(spec, pred, target, sample_weight, abc, reduction, kind, want_grad, want_hess,
              stream=None, device_result=False, third=None, want3=()):
    """The CUDA path: validation on metadata, everything else on the device, one stream.

    Host-side work is limited to what host inputs need (their validation and upload);
    device inputs stay on the device, weights included (their sum and sign check run
    there); a device target or weight of another shape is broadcast there by a
    strided-gather kernel.  The single device-to-host copy is the 3-value result
    (value, invalid labels, negative weights), skipped with ``device_result=True``.
    ``third``: (name, array, shape it is viewed as) of a loss of three arrays; ``want3``:
    the names of its inputs whose gradients are wanted (the gradients come back by name).
    """
    from ._cuda import runtime
    from ._cuda.elementwise import kernel_for, launch_elementwise, weight_total as dev_wsum

    fn = spec.base or spec.name
    meta = _device.shape_dtype(pred)
    if meta is None:
        xh = as_host_array(pred, "pred", fn)
        meta = (xh.shape, xh.dtype)
    shape, pdt = meta
    dt = float_dtype_of(np.empty(0, pdt), "pred", fn)
    named = {"pred": pred, "target": target, "sample_weight": sample_weight}
    if third is not None:
        named[third[0]] = third[1]
    st = runtime.resolve_stream(stream, kind, fn)
    alloc = runtime.Allocator(kind, st, runtime.torch_device(named))
    device_result = runtime.check_device_result(device_result, fn)
    n = int(np.prod(shape))
    flat = (n,)

    def dev(a, name, view=None):
        m = _device.shape_dtype(a)
        if m is not None and view is not None:
            m = (view, m[1])
        if m is not None and tuple(m[0]) == tuple(shape):
            float_dtype_of(np.empty(0, m[1]), name, fn)
            return _device.to_device(a, dt, name, fn, alloc, st).reshape(flat)
        if m is not None:   # a device input of another shape: broadcast on the device
            return _cuda_broadcast(a, m, shape, dt, name, fn, alloc, st)
        h = as_host_array(a, name, fn)
        float_dtype_of(h, name, fn)
        if view is not None:
            h = h.reshape(view)
        h = broadcast_to_shape(as_float(h, dt, name), shape, name, spec.inputs[0], fn)
        return alloc.to_device(h.reshape(flat))

    names = spec.inputs
    x = dev(pred, names[0])
    y = dev(target, names[1])
    z = None if third is None else dev(third[1], third[0], third[2])
    w, ws, wtot, wsum_h = None, 1.0, None, None
    if sample_weight is not None:
        m = _device.shape_dtype(sample_weight)
        if m is not None and n:
            # device weights (broadcast on the device when their shape differs): summed
            # and sign-checked on the device
            w = dev(sample_weight, "sample_weight")
            wtot = dev_wsum(alloc, w, st)
        elif m is not None:   # no elements: only the metadata is checked
            float_dtype_of(np.empty(0, m[1]), "sample_weight", fn)
            _check_broadcast(m[0], shape, "sample_weight", fn)
        else:
            wh, ws = _weights(sample_weight, shape, dt, fn)
            if wh is not None:
                wsum_h = weight_total(wh, n)
                w = alloc.to_device(wh.reshape(flat))
    wsum = ws * (n if w is None else (wsum_h if wsum_h is not None else 0.0))
    gscale = _gscale(reduction, wsum) if wtot is None else 1.0
    out_l = alloc.empty(flat, dt) if reduction == "none" else None
    out_g = alloc.empty(flat, dt) if (want_grad or want_hess) else None
    out_h = alloc.empty(flat, dt) if want_hess else None
    outs3 = None
    if third is not None:
        out_g = alloc.empty(flat, dt) if (want_hess or names[0] in want3) else None
        outs3 = tuple(alloc.empty(flat, dt) if n in want3 else None for n in names[1:])
    mode = {"none": 0, "sum": 1, "mean": 2}[reduction]
    if n == 0:
        v0 = 0.0 if reduction != "mean" else np.nan
        res_h = np.array([v0, 0.0, 0.0])
        value_d = alloc.to_device(np.array([v0], dt)) if device_result else None
    else:
        ns = namespace(MATH, "cuda")
        check = spec.check.__name__ if spec.check is not None else "ok_always"
        kern = kernel_for(spec.name, ns, check, dt, three=third is not None)
        view = (lambda o: None if o is None else o[1])
        res, value_d = launch_elementwise(kern, alloc, st, dt, x, y, w, ws, abc, gscale, wtot,
                                          view(out_l), view(out_g), view(out_h), mode,
                                          wsum, device_result, z=z,
                                          outs3=None if outs3 is None else
                                          tuple(map(view, outs3)))
        res_h = None if device_result else runtime.copy_to_host(res, st)
    if res_h is not None:
        if res_h[2] > 0:
            raise ValueError(f"{fn}: sample_weight must be non-negative, found "
                             f"{int(res_h[2])} negative weight(s)")
        if res_h[1] > 0:
            raise _domain_error(spec, int(res_h[1]))

    def wrap(o):
        return None if o is None else _cuda_result(o, kind, shape, st)

    if reduction == "none":
        value = wrap(out_l)
    elif device_result:
        value = value_d.reshape(())
    else:
        value = dt.type(res_h[0])
    if third is not None:
        grads = {n: wrap(o) for n, o in zip(names, (out_g, *outs3)) if n in want3}
        return value, grads, wrap(out_h)
    return value, {"pred": wrap(out_g)}, wrap(out_h)


def _check_broadcast(src_shape, shape, name, fn):
    try:
        ok = np.broadcast_shapes(tuple(src_shape), tuple(shape)) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{fn}: {name} of shape {tuple(src_shape)} does not broadcast to "
                         f"pred shape {tuple(shape)}")


def _cuda_broadcast(a, meta, shape, dt, name, fn, alloc, stream):
    """The device input ``a`` (``meta``: its shape and dtype) broadcast to ``shape`` on the
    device, flat, of ``dt`` (a strided-gather kernel; no host copy)."""
    from ._cuda import layout

    src_shape, sdt = tuple(meta[0]), meta[1]
    float_dtype_of(np.empty(0, sdt), name, fn)
    _check_broadcast(src_shape, shape, name, fn)
    d = _device.as_device_array(a, name, fn)
    if not (d.is_c_contiguous() and sdt in (np.float32, np.float64)):
        d = _device.to_device(a, dt, name, fn, alloc, stream)
    return layout.broadcast(alloc, stream, layout.contiguous_flat(d), src_shape, shape, dt)[1]


def _cuda_result(o, kind, shape, stream):
    """A (native, view) device buffer as the inputs' kind, shaped ``shape``."""
    from ._cuda import runtime

    native, view = o
    if kind == "host":
        return runtime.copy_to_host(view, stream).reshape(shape)
    return native.reshape(shape)


# --- losses of three arrays -----------------------------------------------------------------
# gaussian_nll, margin_ranking (ELEMENTWISE3), and the twins of the losses whose parameters
# also take an array (pos_weight, alpha): the same validation and outputs as ``run``, the
# kernel template ``ew3_kernel`` (one kernel per loss and dtype, its outputs pruned per call).

_KERNEL3_FOR: dict = {}
_TWINS: dict = {}


def _array_param(spec, params):
    """The name of the first per-element parameter given as an array (ndim >= 1), or None."""
    for pname in spec.per_element:
        v = params[pname]
        t = type(v)
        if t is float or t is int or t is bool or v is None or isinstance(v, str):
            continue
        try:
            nd = np.ndim(v)
        except Exception:   # noqa: BLE001 - not array-like: the scalar check names it
            continue
        if nd >= 1:
            return pname
    return None


def twin_spec(spec, pname):
    """The three-array spec of ``spec`` with parameter ``pname`` read per element."""
    key = (spec.name, pname)
    tw = _TWINS.get(key)
    if tw is None:
        import importlib
        from dataclasses import replace

        mod = importlib.import_module(MATH)
        fname = spec.per_element[pname]
        tw = _TWINS[key] = replace(
            spec, name=fname, fn=getattr(mod, fname), per_element={},
            check=(getattr(mod, spec.per_element_check[pname])
                   if pname in spec.per_element_check else None),
            per_element_check={}, inputs=("pred", "target", pname), differentiable=("pred",),
            checked="target", base=spec.name, z_shape="numpy")
    return tw


def cpu_kernel3_for(spec, dtype, n=PARALLEL_MIN):
    """The cached three-array kernel of one loss (or twin) for one dtype."""
    key = (spec.name, dtype_tag(dtype), n >= PARALLEL_MIN)
    k = _KERNEL3_FOR.get(key)
    if k is None:
        from ._cpu.elementwise import ew3_kernel
        from ._cpu.wide import transcendental
        import numba

        tag = dtype_tag(dtype)
        ns = namespace(MATH, "cpu32" if tag == "f32" else "cpu64")
        check = spec.check.__name__ if spec.check is not None else "ok_z_always"
        parallel = n >= PARALLEL_MIN and not DEBUG
        k = _KERNEL3_FOR[key] = cpu_kernel(
            ew3_kernel, f"{spec.name}_{tag}" + ("" if parallel else "_serial"),
            {"loss_fn": ns[spec.name], "check_fn": ns[check],
             "FT": numba.float32 if tag == "f32" else numba.float64},
            parallel=parallel, boundscheck=True if DEBUG else None,
            wide=transcendental(spec.fn))
    return k


_ARRAY_RULES = {   # vectorized Param rules (the ones per-element parameters use)
    "any": lambda v: np.ones(v.shape, bool),
    ">0": lambda v: v > 0,
    ">=0": lambda v: v >= 0,
    "closed01": lambda v: (v >= 0) & (v <= 1),
    "alpha": lambda v: v <= 1,
}


def _param_array(p, value, fn):
    """A per-element parameter array, checked entry by entry as the scalar would be."""
    from ._math.spec import _RULES

    a = as_host_array(value, p.name, fn)
    float_dtype_of(a, p.name, fn)
    a64 = np.asarray(a, np.float64)
    rule = _ARRAY_RULES.get(p.rule)
    ok = np.isfinite(a64) & (rule(a64) if rule is not None else
                             np.vectorize(_RULES[p.rule][0], otypes=[bool])(a64))
    if not ok.all():
        bad = float(a64[~ok].reshape(-1)[0])
        raise ValueError(f"{fn}: {p.name} must be {_RULES[p.rule][1]} and finite in every "
                         f"entry, got {bad!r}")
    return a


def _z_view(spec, zshape, shape, fn):
    """The shape the third array is viewed as before broadcasting (None: as it is).

    ``"var"`` (PyTorch's variance rule): the first input's shape; that shape without its
    last axis (a trailing axis of 1 is added); the same number of axes with exactly one of
    them 1 where the first input's is not; or a scalar.  Anything else raises."""
    zshape, shape = tuple(zshape), tuple(shape)
    name = spec.inputs[2]
    if spec.z_shape != "var" or zshape == shape or len(zshape) == 0:
        return None
    if zshape == shape[:-1]:
        return zshape + (1,)
    if len(zshape) == len(shape):
        diff = [(a, b) for a, b in zip(shape, zshape) if a != b]
        if len(diff) == 1 and diff[0][1] == 1:
            return None
    raise ValueError(f"{fn}: {name} of shape {zshape} does not fit {spec.inputs[0]} of "
                     f"shape {shape}: it must have that shape, that shape without the last "
                     f"axis, or size 1 in one axis (PyTorch's rule), or be a scalar")


def sum_to(g, shape, own, src):
    """The gradient ``g`` (of ``shape``) of an input of shape ``own`` that was broadcast
    (viewed as ``src``) to ``shape``: summed over the broadcast axes (in float64), of
    shape ``own`` and ``g``'s dtype.  Host arrays, CuPy arrays, PyTorch tensors and Numba
    device arrays (through the host)."""
    k = len(shape)
    pad = (1,) * (k - len(src)) + tuple(src)
    axes = tuple(i for i in range(k) if pad[i] == 1 and shape[i] != 1)
    if isinstance(g, np.ndarray):
        return np.add.reduce(g, axis=axes, dtype=np.float64, keepdims=True).astype(
            g.dtype).reshape(own)
    mod = type(g).__module__
    if mod.startswith("torch"):
        r = g.double().sum(dim=axes, keepdim=True) if axes else g
        return r.to(g.dtype).reshape(own)
    if mod.startswith("cupy"):
        return g.sum(axis=axes, dtype="float64", keepdims=True).astype(g.dtype).reshape(own)
    from numba import cuda
    return cuda.to_device(np.ascontiguousarray(sum_to(g.copy_to_host(), shape, own, src)))


def _domain_count3(spec, x, y, z):
    """Elements outside the domain (vectorized), or None without a vectorized twin."""
    from ._math.spec import ELEMENTWISE

    if spec.base is not None:
        return _domain_count(ELEMENTWISE[spec.base], x, y)
    check = spec.check.__name__
    zf = z.reshape(-1)
    if check == "ok_z_nonneg":
        return int(np.count_nonzero(zf < 0))
    if check == "ok_z_pm1":
        a = np.abs(zf)
        return int(np.count_nonzero((a != 1) & (a == a)))
    return None


def run3(spec, inputs, params, *, sample_weight=None, reduction="mean", device="auto",
         out=None, want_grad=False, want_hess=False, grad_out=None, hess_out=None,
         argnums=(0,), stream=None, device_result=False, n_threads=None, sum_from=None,
         check_first=True):
    """:func:`run` for a loss of three arrays (``spec.inputs``, the first one's shape is
    the result's; the others broadcast to it).

    Returns ``(value, {input name: grad}, hess)`` with a gradient for each input of
    ``argnums`` (positions in ``spec.inputs``; each must be differentiable); ``grad_out``:
    one buffer, or a tuple of one per requested input, in the order of ``argnums``.
    """
    fn = spec.base or spec.name
    names = spec.inputs
    check_choice(reduction, REDUCTIONS, "reduction", fn)
    nt = _threads.resolve(n_threads, fn)
    params = dict(params)
    if spec.base is not None:              # the per-element parameter: checked here
        pz = next(p for p in spec.params if p.name == names[2])
        inputs = dict(inputs)
        inputs[names[2]] = _param_array(pz, inputs[names[2]], fn)
        params[names[2]] = pz.default      # (its scalar slot is not read)
    abc = loss_params(spec, params)
    if want_hess:
        want_grad, argnums = True, (0,)
    elif hess_out is not None:
        raise ValueError(f"{fn}: hess_out= is only taken by grad_and_hessian")
    wanted = []
    if want_grad:
        for i in ((argnums,) if isinstance(argnums, int) else argnums):
            nm = names[i]
            if nm not in spec.differentiable:
                raise ValueError(f"{fn}: no gradient with respect to {nm!r}; differentiable "
                                 f"inputs are {spec.differentiable}")
            if nm not in wanted:
                wanted.append(nm)
    a0, a1, a2 = (inputs[nm] for nm in names)
    named = {names[0]: a0, names[1]: a1, names[2]: a2, "sample_weight": sample_weight}
    if type(a2) is float or type(a2) is int:     # a Python scalar third input
        a2 = np.float64(a2)
    where = _device.resolve(device, named, fn)
    if where == "cuda":
        kind = _device.device_kind(named)
        m0, m2 = _device.shape_dtype(a0), _device.shape_dtype(a2)
        if m0 is None:
            m0 = (as_host_array(a0, names[0], fn).shape, None)
        if m2 is None:
            m2 = (np.shape(as_host_array(a2, names[2], fn)), None)
        m1 = _device.shape_dtype(a1)
        if m1 is None:
            m1 = (np.shape(as_host_array(a1, names[1], fn)), None)
        view = _z_view(spec, m2[0], m0[0], fn)
        if grad_out is not None or hess_out is not None or out is not None:
            raise ValueError(f"{fn}: out=, grad_out= and hess_out= buffers are supported for "
                             f"host inputs only")
        r = _run_cuda(spec, a0, a1, sample_weight, abc, reduction, kind, want_grad,
                      want_hess, stream, device_result, third=(names[2], a2, view),
                      want3=tuple(wanted))
        shp = tuple(m0[0])
        for nm, own, src in ((names[1], m1[0], m1[0]), (names[2], m2[0], view or m2[0])):
            if nm in r[1] and tuple(own) != shp:   # a broadcast input: its own shape
                r[1][nm] = sum_to(r[1][nm], shp, tuple(own), tuple(src))
        return r
    x0 = as_host_array(a0, names[0], fn)
    dt = float_dtype_of(x0, names[0], fn)
    shape = x0.shape
    x = as_float(x0, dt, names[0])
    ys = []
    bshape = {}   # the broadcast inputs: name -> (their own shape, the shape broadcast)
    for nm, a in ((names[1], a1), (names[2], a2)):
        h = as_host_array(a, nm, fn)
        float_dtype_of(h, nm, fn)
        own = h.shape
        if nm == names[2]:
            view = _z_view(spec, h.shape, shape, fn)
            if view is not None:
                h = h.reshape(view)
        if own != shape:
            bshape[nm] = (own, h.shape)
        ys.append((h, broadcast_to_shape(as_float(h, dt, nm), shape, nm, names[0], fn)))
    (y0, y), (z0, z) = ys
    w, ws = _weights(sample_weight, shape, dt, fn)
    n = x.size
    wsum = ws * weight_total(w, n)
    gscale = _gscale(reduction, wsum)
    want_h = want_hess
    gouts = split_buffers(grad_out, wanted, fn)
    given = []

    def buf(g, label, needed):
        if g is not None:
            b = check_out(g, shape, dt, label, fn)
            given.append((label, b))
            return b
        return _alloc.empty(shape, dt) if needed else None

    out_l = buf(out, "out", reduction == "none")
    glab = (lambda nm: f"grad_out ({nm})" if len(wanted) > 1 else "grad_out")
    gb, red = {}, {}
    for nm in names:
        if nm in wanted and nm in bshape:   # summed over the broadcast axes afterwards
            u = gouts.get(nm)
            red[nm] = None if u is None else check_out(u, bshape[nm][0], dt, glab(nm), fn)
            gb[nm] = _alloc.empty(shape, dt)
        else:
            gb[nm] = buf(gouts.get(nm), glab(nm), nm in wanted or (want_h and nm == names[0]))
    out_h = buf(hess_out, "hess_out", want_h)
    copies = []
    if given:
        bufs, copies = unalias(fn, given, (x if x is x0 else None, y if y is y0 else None,
                                           z if z is z0 else None, w))
        if spec.check is not None and n and check_first:
            _checked_first(spec, _domain_count3(spec, x, y, z), given, bufs, copies)
        swap = {id(b): nb for (_, b), nb in zip(given, bufs)}
        out_l = swap.get(id(out_l), out_l)
        gb = {nm: swap.get(id(b), b) for nm, b in gb.items()}
        out_h = swap.get(id(out_h), out_h)
    flat = (lambda b: None if b is None else b.reshape(-1))
    if n == 0:
        s, bad = (0.0 if sum_from is None else float(sum_from[0])), 0
    else:
        cpu = _CPU[0] if _CPU else _cpu_module()
        kern = cpu_kernel3_for(spec, dt)
        s, bad = cpu.launch(kern, x.reshape(-1), y.reshape(-1), z.reshape(-1),
                            None if w is None else w.reshape(-1), dt.type(ws),
                            *(dt.type(v) for v in abc), dt.type(gscale), flat(out_l),
                            flat(gb[names[0]]), flat(out_h), flat(gb[names[1]]),
                            flat(gb[names[2]]),
                            0.0 if sum_from is None else float(sum_from[0]),
                            parallel=cpu.want_parallel("elementwise", n, nt), n_threads=nt)
    if bad:
        raise _domain_error(spec, bad)
    if sum_from is not None:
        sum_from[0] = s
    for user, tmp in copies:
        user[...] = tmp
    if copies:
        back = {id(t): u for u, t in copies}
        out_l, out_h = (None if b is None else back.get(id(b), b) for b in (out_l, out_h))
        gb = {nm: None if b is None else back.get(id(b), b) for nm, b in gb.items()}
    for nm, u in red.items():
        r = sum_to(gb[nm], shape, *bshape[nm])
        if u is not None:
            u[...] = r
        gb[nm] = r if u is None else u
    grads = {nm: gb[nm] for nm in wanted}
    if spec.base is not None:
        grads = {"pred": gb["pred"]}
    return _reduce(s, wsum, reduction, out_l, dt), grads, out_h
