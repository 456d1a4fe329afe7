"""The elementwise family: validate, pick the target, allocate, launch, reduce, wrap."""
from __future__ import annotations

import os

import numpy as np

from . import _alloc, _device, _threads
from ._compile import cpu_kernel, dtype_tag, namespace
from ._math.spec import check_param
from ._validate import (REDUCTIONS, as_float, as_host_array, broadcast_to_shape, check_choice,
                        check_out, float_dtype_of, split_weights, unalias, weight_total)

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


def cpu_kernel_for(spec, dtype, n=PARALLEL_MIN):
    """The cached fused kernel of one loss for one dtype (compiled on first call)."""
    key = (spec.name, dtype_tag(dtype), n >= PARALLEL_MIN)
    k = _KERNEL_FOR.get(key)
    if k is None:
        k = _KERNEL_FOR[key] = _build_kernel(spec, dtype, n)
    return k


def _build_kernel(spec, dtype, n):
    from ._cpu.elementwise import ew_kernel
    from ._cpu.wide import transcendental

    tag = dtype_tag(dtype)
    ns = namespace(MATH, "cpu32" if tag == "f32" else "cpu64")
    check = spec.check.__name__ if spec.check is not None else "ok_always"
    parallel = n >= PARALLEL_MIN and not DEBUG
    import numba

    return cpu_kernel(ew_kernel, f"{spec.name}_{tag}" + ("" if parallel else "_serial"),
                      {"loss_fn": ns[spec.name], "check_fn": ns[check],
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
    vals = [check_param(p, params[p.name], spec.name) for p in spec.params]
    out = tuple(vals + [0.0] * (3 - len(vals)))
    if plain and len(_PARAMS) < 1024:
        _PARAMS[key] = out
    return out


_PM1 = frozenset((1.0, -1.0))


def _domain_count(spec, x, y):
    """The number of elements outside the loss's domain (the kernel's check, vectorized;
    NaN passes as in the kernel), or None for a check with no vectorized twin here."""
    check = spec.check.__name__
    yf = y.reshape(-1)
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


def _domain_error(spec, bad: int):
    what = "pred and target" if spec.pred_domain else "target"
    return ValueError(f"{spec.name}: {what} must lie in {spec.target_domain}; "
                      f"{bad} element(s) do not")


def run(spec, inputs, params, *, sample_weight=None, reduction="mean", device="auto", out=None,
        want_grad=False, want_hess=False, grad_out=None, hess_out=None, argnums=(0,),
        stream=None, device_result=False, n_threads=None, sum_from=None, check_first=True):
    """Value (and gradient / diagonal Hessian w.r.t. ``pred``) of one elementwise loss.

    Returns ``(value, {"pred": grad}, hess)``; ``grad`` and ``hess`` refer to the reduced
    value (with ``reduction="none"``, to the sum of the per-element losses).
    ``sum_from``: a one-element list holding a running float64 total (host only); the
    kernel continues it (:mod:`fastloss._cpu.fold`) and the new total is stored back.
    ``check_first=False`` (for callers that own the output buffers, as ``fastloss.score``):
    no separate domain pass before the kernel; a domain error still raises, after the
    kernel has written the buffers.
    """
    pred, target = inputs["pred"], inputs["target"]
    key = None
    if (type(pred) is np.ndarray and type(target) is np.ndarray and sample_weight is None
            and out is None and grad_out is None and hess_out is None and sum_from is None
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
            bad = _domain_count(spec, x, y)
            if bad is None:      # a check with no vectorized twin: run into temporaries
                for i, (_, b) in enumerate(given):
                    if bufs[i] is b:
                        bufs[i] = np.empty_like(b)
                        copies.append((b, bufs[i]))
            elif bad:
                raise _domain_error(spec, bad)
        if copies:
            it = iter(bufs)
            out_l = next(it) if out is not None else out_l
            out_g = next(it) if grad_out is not None else out_g
            out_h = next(it) if hess_out is not None else out_h
    if n == 0:
        s, bad = (0.0 if sum_from is None else float(sum_from[0])), 0
    else:
        cpu = _CPU[0] if _CPU else _cpu_module()   # (a function-level import: ~1 µs a call)
        kern = cpu_kernel_for(spec, dt)
        s, bad = cpu.launch(kern, x.reshape(-1), y.reshape(-1),
                        None if w is None else w.reshape(-1), dt.type(ws),
                        *(dt.type(v) for v in abc), dt.type(gscale),
                        None if out_l is None else out_l.reshape(-1),
                        None if out_g is None else out_g.reshape(-1),
                        None if out_h is None else out_h.reshape(-1),
                        0.0 if sum_from is None else float(sum_from[0]),
                        parallel=cpu.want_parallel("elementwise", n, nt), n_threads=nt)
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
              stream=None, device_result=False):
    """The CUDA path: validation on metadata, everything else on the device, one stream.

    Host-side work is limited to what host inputs need (their validation and upload);
    device inputs stay on the device, weights included (their sum and sign check run
    there); a device target or weight of another shape is broadcast there by a
    strided-gather kernel.  The single device-to-host copy is the 3-value result
    (value, invalid labels, negative weights), skipped with ``device_result=True``.
    """
    from ._cuda import runtime
    from ._cuda.elementwise import kernel_for, launch_elementwise, weight_total as dev_wsum

    fn = spec.name
    meta = _device.shape_dtype(pred)
    if meta is None:
        xh = as_host_array(pred, "pred", fn)
        meta = (xh.shape, xh.dtype)
    shape, pdt = meta
    dt = float_dtype_of(np.empty(0, pdt), "pred", fn)
    named = {"pred": pred, "target": target, "sample_weight": sample_weight}
    st = runtime.resolve_stream(stream, kind, fn)
    alloc = runtime.Allocator(kind, st, runtime.torch_device(named))
    device_result = runtime.check_device_result(device_result, fn)
    n = int(np.prod(shape))
    flat = (n,)

    def dev(a, name):
        m = _device.shape_dtype(a)
        if m is not None and tuple(m[0]) == tuple(shape):
            float_dtype_of(np.empty(0, m[1]), name, fn)
            return _device.to_device(a, dt, name, fn, alloc, st).reshape(flat)
        if m is not None:   # a device input of another shape: broadcast on the device
            return _cuda_broadcast(a, m, shape, dt, name, fn, alloc, st)
        h = as_host_array(a, name, fn)
        float_dtype_of(h, name, fn)
        h = broadcast_to_shape(as_float(h, dt, name), shape, name, "pred", fn)
        return alloc.to_device(h.reshape(flat))

    x = dev(pred, "pred")
    y = dev(target, "target")
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
    mode = {"none": 0, "sum": 1, "mean": 2}[reduction]
    if n == 0:
        v0 = 0.0 if reduction != "mean" else np.nan
        res_h = np.array([v0, 0.0, 0.0])
        value_d = alloc.to_device(np.array([v0], dt)) if device_result else None
    else:
        ns = namespace(MATH, "cuda")
        check = spec.check.__name__ if spec.check is not None else "ok_always"
        kern = kernel_for(spec.name, ns, check, dt)
        view = (lambda o: None if o is None else o[1])
        res, value_d = launch_elementwise(kern, alloc, st, dt, x, y, w, ws, abc, gscale, wtot,
                                          view(out_l), view(out_g), view(out_h), mode,
                                          wsum, device_result)
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
