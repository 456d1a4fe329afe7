"""The elementwise family: validate, pick the target, allocate, launch, reduce, wrap."""
from __future__ import annotations

import os

import numpy as np

from . import _device
from ._compile import cpu_kernel, dtype_tag, namespace
from ._math.spec import check_param
from ._validate import (REDUCTIONS, as_float, as_host_array, broadcast_to_shape, check_choice,
                        check_out, float_dtype_of, split_weights, weight_total)

MATH = "fastloss._math.elementwise"
DEBUG = os.environ.get("FASTLOSS_DEBUG_KERNELS") == "1"  # serial, bounds-checked kernels
# below this many elements a serial kernel runs: no thread start-up, and a cheaper compile
PARALLEL_MIN = int(os.environ.get("FASTLOSS_PARALLEL_MIN", 1 << 16))


_KERNEL_FOR: dict = {}  # (loss, dtype, parallel) -> kernel: skips the lookups per call


def cpu_kernel_for(spec, dtype, n=PARALLEL_MIN):
    """The cached fused kernel of one loss for one dtype (compiled on first call)."""
    key = (spec.name, dtype_tag(dtype), n >= PARALLEL_MIN)
    k = _KERNEL_FOR.get(key)
    if k is None:
        k = _KERNEL_FOR[key] = _build_kernel(spec, dtype, n)
    return k


def _build_kernel(spec, dtype, n):
    from ._cpu.elementwise import ew_kernel

    tag = dtype_tag(dtype)
    ns = namespace(MATH, "cpu32" if tag == "f32" else "cpu64")
    check = spec.check.__name__ if spec.check is not None else "ok_always"
    parallel = n >= PARALLEL_MIN and not DEBUG
    import numba

    return cpu_kernel(ew_kernel, f"{spec.name}_{tag}" + ("" if parallel else "_serial"),
                      {"loss_fn": ns[spec.name], "check_fn": ns[check],
                       "FT": numba.float32 if tag == "f32" else numba.float64},
                      parallel=parallel, boundscheck=True if DEBUG else None)


def loss_params(spec, params: dict) -> tuple:
    vals = [check_param(p, params[p.name], spec.name) for p in spec.params]
    return tuple(vals + [0.0] * (3 - len(vals)))


def _domain_error(spec, bad: int):
    what = "pred and target" if spec.pred_domain else "target"
    return ValueError(f"{spec.name}: {what} must lie in {spec.target_domain}; "
                      f"{bad} element(s) do not")


def run(spec, inputs, params, *, sample_weight=None, reduction="mean", device="auto", out=None,
        want_grad=False, want_hess=False, grad_out=None, hess_out=None, argnums=(0,)):
    """Value (and gradient / diagonal Hessian w.r.t. ``pred``) of one elementwise loss.

    Returns ``(value, {"pred": grad}, hess)``; ``grad`` and ``hess`` refer to the reduced
    value (with ``reduction="none"``, to the sum of the per-element losses).
    """
    fn = spec.name
    check_choice(reduction, REDUCTIONS, "reduction", fn)
    abc = loss_params(spec, params)
    pred, target = inputs["pred"], inputs["target"]
    where = _device.resolve(device, {"pred": pred, "target": target,
                                     "sample_weight": sample_weight}, fn)
    kind = _device.device_kind({"pred": pred, "target": target, "sample_weight": sample_weight})
    if where == "cuda":
        # validate and shape on the host view of the metadata; data moves only if needed
        return _run_cuda(spec, pred, target, sample_weight, abc, reduction, kind, want_grad,
                         want_hess)
    x = as_host_array(pred, "pred", fn)
    dt = float_dtype_of(x, "pred", fn)
    y = as_host_array(target, "target", fn)
    float_dtype_of(y, "target", fn)
    shape = x.shape
    x = as_float(x, dt, "pred")
    y = broadcast_to_shape(as_float(y, dt, "target"), shape, "target", "pred", fn)
    w, ws = _weights(sample_weight, shape, dt, fn)
    n = x.size
    wsum = ws * weight_total(w, n)
    gscale = _gscale(reduction, wsum)

    def buf(given, name, needed):
        if given is not None:
            return check_out(given, shape, dt, name, fn)
        return np.empty(shape, dt) if needed else None

    out_l = buf(out, "out", reduction == "none")
    out_g = buf(grad_out, "grad_out", want_grad or want_hess)
    out_h = buf(hess_out, "hess_out", want_hess)
    if n == 0:
        s, bad = 0.0, 0
    else:
        from ._cpu import launch

        kern = cpu_kernel_for(spec, dt, n)
        s, bad = launch(kern, x.reshape(-1), y.reshape(-1),
                        None if w is None else w.reshape(-1), dt.type(ws),
                        *(dt.type(v) for v in abc), dt.type(gscale),
                        None if out_l is None else out_l.reshape(-1),
                        None if out_g is None else out_g.reshape(-1),
                        None if out_h is None else out_h.reshape(-1))
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


def _run_cuda(spec, pred, target, sample_weight, abc, reduction, kind, want_grad, want_hess):
    from numba import cuda

    from ._cuda.elementwise import launch_elementwise

    fn = spec.name
    meta = _device.shape_dtype(pred)
    if meta is None:
        xh = as_host_array(pred, "pred", fn)
        meta = (xh.shape, xh.dtype)
    shape, pdt = meta
    dt = float_dtype_of(np.empty(0, pdt), "pred", fn)

    def dev(a, name):
        m = _device.shape_dtype(a)
        if m is not None and m[0] == shape:
            float_dtype_of(np.empty(0, m[1]), name, fn)
            return _device.to_device(a, dt, name, fn)
        h = (_device.as_device_array(a, name, fn).copy_to_host() if m is not None
             else as_host_array(a, name, fn))
        float_dtype_of(h, name, fn)
        h = broadcast_to_shape(as_float(h, dt, name), shape, name, "pred", fn)
        return _device.to_device(h, dt, name, fn)

    x = dev(pred, "pred")
    y = dev(target, "target")
    w, ws = None, 1.0
    if sample_weight is not None:
        m = _device.shape_dtype(sample_weight)
        wh = (_device.as_device_array(sample_weight).copy_to_host() if m is not None
              else as_host_array(sample_weight, "sample_weight", fn))
        wh, ws = _weights(wh, shape, dt, fn)
        if wh is not None:
            w = _device.to_device(wh, dt, "sample_weight", fn)
    n = int(np.prod(shape))
    wsum = ws * (n if w is None else weight_total(w.copy_to_host(), n))
    gscale = _gscale(reduction, wsum)
    flat = (n,)
    out_l = cuda.device_array(flat, dt) if reduction == "none" else None
    out_g = cuda.device_array(flat, dt) if (want_grad or want_hess) else None
    out_h = cuda.device_array(flat, dt) if want_hess else None
    if n == 0:
        s, bad = 0.0, 0
    else:
        ns = namespace(MATH, "cuda")
        check = spec.check.__name__ if spec.check is not None else "ok_always"
        s, bad = launch_elementwise(spec.name, ns, check, dt, x.reshape(flat),
                                    y.reshape(flat), None if w is None else w.reshape(flat),
                                    ws, abc, gscale, out_l, out_g, out_h)
    if bad:
        raise _domain_error(spec, bad)
    wrap = (lambda d: None if d is None else _device.wrap(d, kind, shape))
    value = wrap(out_l) if reduction == "none" else _reduce(s, wsum, reduction, None, dt)
    return value, {"pred": wrap(out_g)}, wrap(out_h)
