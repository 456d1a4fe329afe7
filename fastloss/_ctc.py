"""The CTC loss: validation, dispatch, reductions; ``ctc_loss`` and ``ctc_greedy_decode``.

Everything is checked here, in Python, before a kernel runs (errors raised inside a
``prange`` would be dropped).  The kernels live in :mod:`fastloss._cpu.ctc` and
:mod:`fastloss._cuda.ctc`; their log-space scalar math in :mod:`fastloss._math.ctc`.
"""
from __future__ import annotations

import os
import threading

import numpy as np

from . import _alloc, _device, _threads
from ._api import LossInfo, register
from ._compile import cached, cpu_kernel, dtype_tag, namespace
from ._validate import as_float, as_host_array, check_choice, check_out, float_dtype_of

__all__ = ["ctc_loss", "ctc_greedy_decode", "ctc_loss_with_forward_probs"]

MATH = "fastloss._math.ctc"
NAME = "ctc_loss"
DEBUG = os.environ.get("FASTLOSS_DEBUG_KERNELS") == "1"  # serial, bounds-checked kernels
LAYOUTS = ("NTC", "TNC")
# sequences of the latest CPU call (any thread) that took the log-space path (diagnostics)
last_logspace = 0
PROB_SPACE = True  # False: every sequence takes the log-space path (tests compare the two)
REDUCTIONS = ("none", "sum", "mean", "mean_batch")


def cpu_kernel_for(dtype, logspace=False):
    """The cached CTC kernel for one dtype (compiled on first call, cached on disk);
    ``logspace=True``: the kernel of the sequences it leaves to the log-space path, a
    kernel of its own so that programs that never need it never compile it."""
    from ._cpu import ctc as tmpl

    tag = dtype_tag(dtype)
    ns = namespace(MATH, "cpu32" if tag == "f32" else "cpu64")
    bind = {"lse3": ns["logaddexp3"], "exp_fn": ns["exp_"]}
    bind.update(cached(("ctc-helpers", tag, DEBUG), lambda: _helpers(tmpl, bind)))
    return cpu_kernel(tmpl.ctc_logspace_kernel if logspace else tmpl.ctc_kernel,
                      f"ctc_{tag}", bind, parallel=not DEBUG,
                      boundscheck=True if DEBUG else None)


def _helpers(tmpl, bind):
    """The kernel's per-sequence helpers, compiled with the bound math."""
    import types

    from numba import njit

    from ._compile import FASTMATH

    g = dict(vars(tmpl))
    g.update(bind)
    out = {}
    for name, attr in (("prob_alpha", "_prob_alpha"), ("prob_beta", "_prob_beta"),
                       ("logspace", "_logspace")):
        f = getattr(tmpl, attr)
        out[name] = njit(fastmath=set(FASTMATH), error_model="numpy",
                         boundscheck=True if DEBUG else None)(
            types.FunctionType(f.__code__, g, attr, f.__defaults__))
    return out


_WS = threading.local()


def _workspace(N, T, smax, dt):
    """Scratch arrays of the CPU kernel, kept per thread and reused while large enough
    (a fresh allocation of this size costs page faults comparable to the loss itself)."""
    need = {"Ep": (N * T * smax, dt), "PS": (N * T * smax, np.float64),
            "fr": (N * T * 4, np.float64), "flg": (N * T, np.float64)}
    ws = getattr(_WS, "arrays", None)
    if ws is None or any(ws[k].dtype != d or ws[k].size < n for k, (n, d) in need.items()):
        if ws is not None and ws["Ep"].dtype == dt:  # grow to the larger of the two
            need = {k: (max(n, ws[k].size), d) for k, (n, d) in need.items()}
        ws = {k: np.empty(n, d) for k, (n, d) in need.items()}
        _WS.arrays = ws if ws["Ep"].nbytes <= _WS_MAX else None
    return (ws["Ep"][:N * T * smax].reshape(N, T, smax),
            ws["PS"][:N * T * smax].reshape(N, T, smax),
            ws["fr"][:N * T * 4].reshape(N, T, 4), ws["flg"][:N * T].reshape(N, T))


_WS_MAX = 1 << 26  # bytes of emissions kept alive per thread between calls (float64 rows: 2-4x)


# --- validation -------------------------------------------------------------------------

def _check_int(value, name, fn):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an integer, got {value!r}")
    return int(value)


def _check_bool(value, name, fn):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a bool, got {value!r}")
    return bool(value)


def _host(a, name, fn):
    """A host NumPy view of ``a`` (copied from the device when it lives on CUDA)."""
    if _device.on_cuda(a):
        from numba import cuda
        try:
            if hasattr(a, "copy_to_host"):      # a Numba device array (the simulator's too)
                return a.copy_to_host()
            return cuda.as_cuda_array(a).copy_to_host()
        except Exception as exc:
            raise TypeError(f"{fn}: {name} cannot be read as a CUDA array ({exc})") from None
    return as_host_array(a, name, fn)


def _int_array(a, name, fn, ndim=None):
    h = _host(a, name, fn)
    if h.dtype.kind not in "iu":
        raise TypeError(f"{fn}: {name} must be an integer array, got dtype {h.dtype}")
    if ndim is not None and h.ndim not in ndim:
        want = " or ".join(f"{d}-D" for d in ndim)
        raise ValueError(f"{fn}: {name} must be {want}, got shape {h.shape}")
    return h


def _lengths(a, name, n, fn):
    h = _int_array(a, name, fn)
    if h.ndim != 1 or h.shape[0] != n:
        raise ValueError(f"{fn}: {name} must have shape ({n},) (one length per sequence, "
                         f"N = {n} from logits), got shape {h.shape}")
    if h.dtype.kind == "u" and h.dtype.itemsize == 8 and h.size:
        top = int(h.max())          # (astype(int64) would wrap 2**64 - 1 to -1)
        if top > np.iinfo(np.int64).max:
            raise ValueError(f"{fn}: {name} must be lengths that fit in int64, found {top}")
    h = h.astype(np.int64)
    if h.size and h.min() < 0:
        raise ValueError(f"{fn}: {name} must be non-negative, found {int(h.min())}")
    return h


def _padded_labels(labels, lab_len, n, C, blank, fn):
    """Labels as a padded (N, Lmax) int64 array, padding set to ``blank``; values checked."""
    h = _int_array(labels, "labels", fn, ndim=(1, 2))
    lmax = int(lab_len.max()) if n else 0
    valid = np.arange(lmax)[None, :] < lab_len[:, None]
    if h.ndim == 2:
        if h.shape[0] != n:
            raise ValueError(f"{fn}: labels of shape {h.shape} must have N = {n} rows "
                             f"(logits batch size)")
        if lmax > h.shape[1]:
            raise ValueError(f"{fn}: label_lengths must be <= labels.shape[1] = {h.shape[1]}, "
                             f"found {lmax}")
        pad = np.where(valid, h[:, :lmax], blank).astype(np.int64)
    else:
        total = int(lab_len.sum())
        if h.shape[0] != total:
            raise ValueError(f"{fn}: 1-D labels of shape {h.shape} must hold "
                             f"sum(label_lengths) = {total} targets")
        pad = np.full((n, lmax), blank, np.int64)
        pad[valid] = h
    vals = pad[valid]
    if vals.size:
        lo, hi = int(vals.min()), int(vals.max())
        if lo < 0 or hi >= C:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{fn}: labels must lie in [0, {C}) (C = logits.shape[-1]), "
                             f"found {bad}")
        if np.any(vals == blank):
            raise ValueError(f"{fn}: labels must not contain the blank index {blank}")
    return pad


def _extended(pad, lab_len, blank):
    """Extended labels (N, 2·Lmax + 1) and skip flags (N, 2·Lmax + 3): s−2 → s allowed."""
    n, lmax = pad.shape
    smax = 2 * lmax + 1
    ext = np.full((n, smax), blank, np.int64)
    ext[:, 1::2] = pad
    skipok = np.zeros((n, smax + 2), np.bool_)
    if lmax > 1:
        # state 2j+1 (label j) from state 2j-1 (label j-1) when the labels differ
        j = np.arange(1, lmax)
        ok = (pad[:, 1:] != pad[:, :-1]) & (j[None, :] < lab_len[:, None])
        skipok[:, 2 * j + 1] = ok
    return ext, skipok


def _weights(sample_weight, n, fn, per="sequence", host=None):
    """One float64 weight per batch item (``per`` names it in the message), or None."""
    if sample_weight is None:
        return None
    w = (host or _host)(sample_weight, "sample_weight", fn)
    float_dtype_of(w, "sample_weight", fn)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"{fn}: sample_weight must be a scalar or have shape ({n},) "
                         f"(one weight per {per}), got shape {w.shape}")
    w = np.ascontiguousarray(w, dtype=np.float64)
    neg = w < 0
    if neg.any():
        raise ValueError(f"{fn}: sample_weight must be non-negative, found {w[neg][0]}")
    return w


def _prepare(inputs, params, sample_weight, reduction, fn):
    """Validated metadata and host arrays (everything but the logits' data)."""
    blank = _check_int(params["blank"], "blank", fn)
    layout = check_choice(params["layout"], LAYOUTS, "layout", fn)
    zero_inf = _check_bool(params["zero_infinity"], "zero_infinity", fn)
    log_probs = _check_bool(params["log_probs"], "log_probs", fn)
    check_choice(reduction, REDUCTIONS, "reduction", fn)
    logits = inputs["logits"]
    meta = _device.shape_dtype(logits)
    if meta is None:
        xh = as_host_array(logits, "logits", fn)
        meta = (xh.shape, xh.dtype)
    else:
        xh = None
    shape, xdt = meta
    if len(shape) != 3:
        raise ValueError(f"{fn}: logits must be 3-D ({layout}: "
                         f"{'(N, T, C)' if layout == 'NTC' else '(T, N, C)'}), got shape {shape}")
    dt = float_dtype_of(np.empty(0, xdt), "logits", fn)
    tnc = layout == "TNC"
    T, N = (shape[0], shape[1]) if tnc else (shape[1], shape[0])
    C = shape[2]
    if not 0 <= blank < C:
        raise ValueError(f"{fn}: blank must lie in [0, {C}) (C = logits.shape[-1]), got {blank}")
    in_len = _lengths(inputs["input_lengths"], "input_lengths", N, fn)
    if in_len.size and in_len.max() > T:
        raise ValueError(f"{fn}: input_lengths must be <= T = {T} (logits shape {shape}, "
                         f"layout {layout}), found {int(in_len.max())}")
    lab_len = _lengths(inputs["label_lengths"], "label_lengths", N, fn)
    pad = _padded_labels(inputs["labels"], lab_len, N, C, blank, fn)
    w = _weights(sample_weight, N, fn)
    ext, skipok = _extended(pad, lab_len, blank)
    return dict(xh=xh, shape=shape, dt=dt, tnc=tnc, N=N, T=T, C=C, blank=blank,
                zero_inf=zero_inf, log_probs=log_probs, in_len=in_len, lab_len=lab_len,
                w=w, ext=ext, skipok=skipok)


def _scales(reduction, w, lab_len, n, wsum=None):
    """(gradient factor per sequence, Σw) of the reduced value (``wsum``: that Σw, formed by
    the caller)."""
    ww = np.ones(n) if w is None else w
    if wsum is None:
        wsum = float(np.sum(ww))
    if reduction in ("none", "sum"):
        return ww.copy(), wsum
    sc = ww / wsum if wsum > 0 else np.full(n, np.nan)
    if reduction == "mean":
        sc = sc / np.maximum(lab_len, 1)
    return sc, wsum


def _reduce(losses, p, reduction, wsum, dt, sum_from=None, W=0.0):
    """The reduced value from the per-sequence losses (float64).

    The totals are folds (:mod:`fastloss._cpu.fold`, continued from ``sum_from``, see
    :func:`fastloss._rowwise.running_totals`) of the per-sequence values w·ℓ in the array
    dtype (the ``"none"`` output): Σ w·ℓ, and for ``"mean"`` Σ w·ℓ / max(label length, 1);
    ``wsum`` (= ``W``, the fold of the weights or the sequence count) divides."""
    from ._rowwise import fold_rows, running_totals, store_totals

    if p["zero_inf"]:
        losses = np.where(np.isposinf(losses), 0.0, losses)
    w = p["w"]
    wl = losses if w is None else np.where(w == 0, 0.0, w * losses)
    per = wl.astype(dt)
    if reduction == "none" and sum_from is None:
        return per
    s_in, num_in, _ = running_totals(sum_from)
    s = fold_rows(per, s_in)
    num = s
    if reduction == "mean" or (sum_from is not None and len(sum_from) == 4):
        num = fold_rows(per.astype(np.float64) / np.maximum(p["lab_len"], 1), num_in)
    if sum_from is not None:
        store_totals(sum_from, s, num, wsum, W)
    if reduction == "none":
        return per
    if reduction == "sum":
        return dt.type(s)
    if reduction == "mean_batch":
        num = s
    return dt.type(num / wsum) if wsum > 0 else dt.type(np.nan)


# --- the runner ---------------------------------------------------------------------------

def run(inputs, params, *, sample_weight=None, reduction="mean", device="auto",
        want_grad=False, want_hess=False, argnums=(0,), grad_out=None, hess_out=None,
        stream=None, device_result=False, n_threads=None, sum_from=None):
    """Value (and gradient w.r.t. ``logits``) of the CTC loss; the runner of ``ctc_loss``.

    ``sum_from`` (host only): running totals that the call continues and stores back
    (:func:`fastloss._rowwise.running_totals`): calls on consecutive batches whose sizes
    are multiples of ``fastloss._cpu.fold.BLK`` give exactly the totals of one call."""
    fn = NAME
    nt = _threads.resolve(n_threads, fn)
    if want_hess or hess_out is not None:
        raise ValueError(f"{fn} has no Hessian")
    where = _device.resolve(device, {"logits": inputs["logits"]}, fn)
    if where == "cuda" and _cuda_resident(inputs, sample_weight):   # checks on the device
        return _run_cuda_resident(inputs, params, sample_weight, reduction, want_grad,
                                  grad_out, stream, device_result)
    p = _prepare(inputs, params, sample_weight, reduction, fn)
    if where == "cuda":
        scale, wsum = _scales(reduction, p["w"], p["lab_len"], p["N"])
        return _run_cuda(inputs["logits"], p, scale, wsum, reduction, want_grad, grad_out,
                         stream, device_result)
    from ._rowwise import fold_rows, running_totals

    w_in = running_totals(sum_from)[2]
    W = w_in + p["N"] if p["w"] is None else fold_rows(p["w"], w_in)   # Σw, fixed order
    scale, wsum = _scales(reduction, p["w"], p["lab_len"], p["N"], W)
    dt, shape = p["dt"], p["shape"]
    x = as_float(p["xh"], dt, "logits")
    g = user_g = None
    if want_grad:
        g = user_g = (check_out(grad_out, shape, dt, "grad_out", fn) if grad_out is not None
                      else _alloc.empty(shape, dt))
        if grad_out is not None and np.may_share_memory(g, x):
            # phase 1 stores exponentials in the gradient while the logits are still read
            g = np.empty(shape, dt)
    losses = np.zeros(p["N"])
    if p["N"]:
        from ._cpu import launch, want_parallel

        global last_logspace
        kern = cpu_kernel_for(dt)
        skip = np.where(p["skipok"], 0.0, -np.inf).astype(dt)
        skipm = p["skipok"].astype(np.float64)
        ws = _workspace(p["N"], p["T"], p["ext"].shape[1], dt)
        lg = np.empty(p["N"], np.uint8)
        gk = g if want_grad else np.empty((0, 0, 0), dt)
        par = want_parallel("ctc", x.size, nt)
        launch(kern, x, p["tnc"], p["log_probs"], p["ext"], skip, skipm, p["in_len"],
               p["lab_len"], scale, losses, want_grad, gk, *ws, PROB_SPACE, lg,
               parallel=par, n_threads=nt)
        idx = np.flatnonzero(lg).astype(np.int64)
        last_logspace = len(idx)
        if len(idx):   # the sequences the probability-space path could not take
            Ep, PS, fr, _ = ws
            launch(cpu_kernel_for(dt, logspace=True), x, p["tnc"], p["log_probs"], p["ext"],
                   skip, p["in_len"], p["lab_len"], scale, losses, want_grad, gk, Ep, PS, fr,
                   idx, parallel=par, n_threads=nt)
    if g is not user_g:
        user_g[...] = g
    return (_reduce(losses, p, reduction, wsum, dt, sum_from, W), {"logits": user_g},
            None)


def _run_cuda(logits, p, scale, wsum, reduction, want_grad, grad_out, stream=None,
              device_result=False):
    """The CUDA path: lengths, labels and weights (validated on the host) are uploaded on
    the call's stream; the reduction runs on the device; the only device-to-host copy is
    the reduced value, skipped with ``device_result=True``."""
    from ._cuda import runtime
    from ._cuda.ctc import launch_ctc

    if grad_out is not None:
        raise ValueError(f"{NAME}: grad_out is supported on the CPU only")
    dt, shape = p["dt"], p["shape"]
    kind = _device.device_kind({"logits": logits})
    st = runtime.resolve_stream(stream, kind, NAME)
    device_result = runtime.check_device_result(device_result, NAME)
    alloc = runtime.Allocator(kind, st, runtime.torch_device({"logits": logits}))
    if p["xh"] is None:
        x = _device.to_device(logits, dt, "logits", NAME, alloc, st)
    else:
        x = alloc.to_device(as_float(p["xh"], dt, "logits"))
    g = alloc.empty(shape, dt) if want_grad else None
    up = alloc.to_device
    res, value_d, outv = launch_ctc(
        namespace(MATH, "cuda"), alloc, st, dt, x, p["tnc"], p["log_probs"], up(p["ext"]),
        up(p["skipok"].astype(np.uint8)), up(p["in_len"]), up(p["lab_len"]), up(scale),
        None if g is None else g[1], None if p["w"] is None else up(p["w"]), p["zero_inf"],
        reduction, wsum)
    N = p["N"]
    if reduction == "none":
        nat, view = outv
        value = (runtime.copy_to_host(view, st)[:N] if kind == "host" else nat[:N])
    elif device_result:
        value = value_d.reshape(())
    else:
        value = dt.type(runtime.copy_to_host(res, st)[0])
    grad = None
    if g is not None:
        grad = runtime.copy_to_host(g[1], st) if kind == "host" else g[0]
    return value, {"logits": grad}, None


def _cuda_resident(inputs, sample_weight) -> bool:
    """Labels, lengths or weights living on the device: checked on the device."""
    return any(_device.on_cuda(inputs[k]) for k in ("labels", "input_lengths",
                                                      "label_lengths")) or (
        sample_weight is not None and _device.on_cuda(sample_weight))


def _run_cuda_resident(inputs, params, sample_weight, reduction, want_grad, grad_out,
                       stream=None, device_result=False):
    """CUDA with labels, lengths or weights on the device: only metadata is read on the host;
    the checks (lengths in range, labels in [0, C) and not blank, 1-D labels holding
    Σ label_lengths, weights >= 0), the extended labels, the gradient scales and Σw run in
    one device kernel (:func:`fastloss._cuda.labels.ctc_prepare`); its counts come back
    with the result's single copy (NaN instead of an error with ``device_result=True``).
    Host pieces among them are uploaded as they are and checked there too."""
    from ._cuda import layout, runtime
    from ._cuda.ctc import MODES, launch_ctc
    from ._cuda.labels import ctc_prepare

    fn = NAME
    if grad_out is not None:
        raise ValueError(f"{fn}: grad_out is supported on the CPU only")
    blank = _check_int(params["blank"], "blank", fn)
    layout_ = check_choice(params["layout"], LAYOUTS, "layout", fn)
    zero_inf = _check_bool(params["zero_infinity"], "zero_infinity", fn)
    log_probs = _check_bool(params["log_probs"], "log_probs", fn)
    check_choice(reduction, REDUCTIONS, "reduction", fn)
    logits = inputs["logits"]
    meta = _device.shape_dtype(logits)
    xh = None
    if meta is None:
        xh = as_host_array(logits, "logits", fn)
        meta = (xh.shape, xh.dtype)
    shape, xdt = meta
    if len(shape) != 3:
        raise ValueError(f"{fn}: logits must be 3-D ({layout_}: "
                         f"{'(N, T, C)' if layout_ == 'NTC' else '(T, N, C)'}), got shape "
                         f"{shape}")
    dt = float_dtype_of(np.empty(0, xdt), "logits", fn)
    tnc = layout_ == "TNC"
    T, N = (shape[0], shape[1]) if tnc else (shape[1], shape[0])
    C = shape[2]
    if not 0 <= blank < C:
        raise ValueError(f"{fn}: blank must lie in [0, {C}) (C = logits.shape[-1]), got {blank}")
    kind = _device.device_kind({"logits": logits})
    st = runtime.resolve_stream(stream, kind, fn)
    device_result = runtime.check_device_result(device_result, fn)
    alloc = runtime.Allocator(kind, st, runtime.torch_device({"logits": logits}))

    def ints(name, ndims):
        a = inputs[name]
        m = _device.shape_dtype(a)
        if m is None:
            h = _int_array(a, name, fn)
            m = (h.shape, h.dtype)
        shp, adt = tuple(m[0]), np.dtype(m[1])
        if adt.kind not in "iu":
            raise TypeError(f"{fn}: {name} must be an integer array, got dtype {adt}")
        if len(shp) not in ndims:
            want = " or ".join(f"{d}-D" for d in ndims)
            raise ValueError(f"{fn}: {name} must be {want}, got shape {shp}")
        if _device.on_cuda(a):
            d = _device.as_device_array(a, name, fn)
            if not d.is_c_contiguous():
                d = _device.to_device(a, adt, name, fn, alloc, st)
        else:
            d = alloc.to_device(np.ascontiguousarray(as_host_array(a, name, fn)))
        return d, shp

    il, ilshape = ints("input_lengths", (1,))
    ll, llshape = ints("label_lengths", (1,))
    for name, shp in (("input_lengths", ilshape), ("label_lengths", llshape)):
        if shp != (N,):
            raise ValueError(f"{fn}: {name} must have shape ({N},) (one length per sequence, "
                             f"N = {N} from logits), got shape {shp}")
    L, lshape = ints("labels", (1, 2))
    two_d = len(lshape) == 2
    if two_d and lshape[0] != N:
        raise ValueError(f"{fn}: labels of shape {lshape} must have N = {N} rows "
                         f"(logits batch size)")
    L2 = L if two_d else L.reshape(1, lshape[0])
    cap = min(lshape[1] if two_d else lshape[0], T)
    W = None
    if sample_weight is not None:
        if _device.on_cuda(sample_weight):
            wshape, wdt = _device.shape_dtype(sample_weight)
            float_dtype_of(np.empty(0, wdt), "sample_weight", fn)
            if tuple(wshape) not in ((), (N,)):
                raise ValueError(f"{fn}: sample_weight must be a scalar or have shape ({N},) "
                                 f"(one weight per sequence), got shape {tuple(wshape)}")
            d = _device.as_device_array(sample_weight, "sample_weight", fn)
            if not d.is_c_contiguous():
                d = _device.to_device(sample_weight, np.float64, "sample_weight", fn, alloc,
                                      st)
            W = layout.contiguous_flat(d)
            if tuple(wshape) == () and N:
                W = layout.broadcast(alloc, st, W, (), (N,), np.float64)[1]
        else:
            wh = _weights(sample_weight, N, fn)
            W = alloc.to_device(wh)
    if xh is None:
        x = _device.to_device(logits, dt, "logits", fn, alloc, st)
    else:
        x = alloc.to_device(as_float(xh, dt, "logits"))
    ext, skipok, in_len, lab_eff, lab_true, scale, cnt = ctc_prepare(
        alloc, st, L2, two_d, il, ll, W, N, T, C, blank, cap, MODES[reduction])
    g = alloc.empty(shape, dt) if want_grad else None
    res, value_d, outv = launch_ctc(
        namespace(MATH, "cuda"), alloc, st, dt, x, tnc, log_probs, ext, skipok, in_len,
        lab_eff, scale, None if g is None else g[1], W, zero_inf, reduction, 0.0, cnt,
        lab_true)
    res_h = None if device_result else runtime.copy_to_host(res, st)
    if res_h is not None:
        _raise_counts(res_h, N, T, C, blank, lshape)
    if reduction == "none":
        nat, view = outv
        value = (runtime.copy_to_host(view, st)[:N] if kind == "host" else nat[:N])
    elif device_result:
        value = value_d.reshape(())
    else:
        value = dt.type(res_h[0])
    grad = None
    if g is not None:
        grad = runtime.copy_to_host(g[1], st) if kind == "host" else g[0]
    return value, {"logits": grad}, None


def _raise_counts(res_h, N, T, C, blank, lshape):
    """The errors of the device-side checks (``res_h[1:6]``: their counts)."""
    fn = NAME
    b_il, b_ll, b_lab, neg, mismatch = (int(v) for v in res_h[1:6])
    if b_il:
        raise ValueError(f"{fn}: input_lengths must lie in [0, T = {T}], found {b_il} "
                         f"outside")
    if b_ll:
        top = f" and <= labels.shape[1] = {lshape[1]}" if len(lshape) == 2 else ""
        raise ValueError(f"{fn}: label_lengths must be non-negative{top}, found {b_ll} "
                         f"invalid")
    if mismatch:
        raise ValueError(f"{fn}: 1-D labels of shape {lshape} must hold sum(label_lengths) "
                         f"targets")
    if b_lab:
        raise ValueError(f"{fn}: labels must lie in [0, {C}) (C = logits.shape[-1]) and not "
                         f"contain the blank index {blank}; {b_lab} sequence(s) violate it")
    if neg:
        raise ValueError(f"{fn}: sample_weight must be non-negative, found {neg} negative "
                         f"weight(s)")


_DOC = """Connectionist temporal classification loss, −log p(labels | logits), per sequence.

.. math::

    \\ell = -\\log \\sum_{\\pi \\in \\mathcal{B}^{-1}(l)} \\prod_t p_t(\\pi_t)

over the alignments π of the frames that collapse to the label sequence l (repeats merged,
blanks removed), p_t = softmax of frame t's logits.

log_softmax over the class axis is fused in (pass ``log_probs=True`` when ``logits`` are
already log-probabilities).  ``fastloss.value_and_grad(ctc_loss)`` returns the gradient
with respect to ``logits``: softmax − γ (γ the posterior occupancy of each class, as
warp-ctc), or −γ with ``log_probs=True`` (the true gradient with respect to the
log-probabilities, not PyTorch's quirk); same shape, dtype and layout as ``logits``.

On the CPU the forward–backward recursion runs in probability space (float64, each frame
rescaled, Rabiner's scaling); a sequence in which a value that can still matter would
underflow (class gaps above 87 nats, long or very confident sequences) is recomputed in log
space, so results never depend on the path taken.  On CUDA it runs in log space.  The
log-space recursion keeps its rows in float64 and forms the log-likelihood and every
posterior from logarithms: any feasible alignment has a finite loss, however large (tested
to beyond 1e6 nats, to float64 round-off), and ``inf`` means that no alignment exists.
float32 logits: the loss within a relative 1e-6, the gradient entries within 1e-5 of the
float64 computation on the same logits (measured: 5e-8 and 2e-6).

Parameters
----------
logits : array (N, T, C) for layout "NTC", (T, N, C) for "TNC"; float32 or float64
labels : int array, padded (N, S), or 1-D concatenated targets (as PyTorch)
input_lengths : int array (N,), each <= T; later frames are ignored (zero gradient)
label_lengths : int array (N,)
blank : int, default 0, the blank class index
layout : "NTC" | "TNC"
reduction : "none" (N,) | "sum" | "mean" | "mean_batch".  "mean" divides each loss by its
    label length (clamped to >= 1) and averages over the batch (as PyTorch); "mean_batch"
    is the plain batch mean (MXNet Gluon, optax).  With ``sample_weight`` w (N,): "none"
    gives w·ℓ, "sum" Σ w·ℓ, "mean" Σ w·ℓ/max(len,1) / Σ w, "mean_batch" Σ w·ℓ / Σ w.
zero_infinity : bool; impossible alignments (labels, plus the blanks their repeats need,
    longer than the frames, or a label whose probability is 0 wherever it could be
    emitted) give loss 0 instead of +inf.  Their gradient is 0 either way.  A finite loss
    is never zeroed, however large.
log_probs : bool, ``logits`` are log-probabilities
sample_weight : array (N,) or scalar, optional, non-negative
device : "auto" | "cpu" | "cuda" (decided by where ``logits`` live; labels and lengths
    may live on either side)

Returns
-------
loss : numpy scalar or ndarray
    The reduced loss as a NumPy scalar of ``logits``' dtype, or the (N,) per-sequence
    losses with ``reduction="none"``.

Examples
--------
Uniform logits over 3 classes, 2 frames, label [1]: the alignments (1, 1), (0, 1), (1, 0)
each have probability 1/9, so the loss is log 3; the gradient is softmax − posterior.

>>> import numpy as np, fastloss
>>> logits = np.zeros((1, 2, 3))
>>> loss, g = fastloss.value_and_grad(fastloss.ctc_loss)(
...     logits, np.array([[1]]), np.array([2]), np.array([1]))
>>> round(float(loss), 4), round(float(np.log(3)), 4)
(1.0986, 1.0986)
>>> g.round(4)
array([[[-0.    , -0.3333,  0.3333],
        [-0.    , -0.3333,  0.3333]]])
"""

ctc_loss = register(LossInfo(
    name=NAME, kind="ctc", inputs=("logits", "labels", "input_lengths", "label_lengths"),
    params={"blank": 0, "layout": "NTC", "zero_infinity": False, "log_probs": False},
    runner=run, differentiable=("logits",), has_hessian=False,
    common={"sample_weight": None, "reduction": "mean", "device": "auto", "stream": None,
            "device_result": False, "n_threads": None},
    formula="−log Σ_{π ∈ B⁻¹(l)} Π_t p_t(π_t)", doc=_DOC))
ctc_loss.__doc__ = _DOC


# --- greedy decoding --------------------------------------------------------------------------

def decoder_inputs(logits, input_lengths, blank, layout, fn):
    """(host logits as (N, T, C), their dtype, blank, input lengths) of a decoder, checked."""
    blank = _check_int(blank, "blank", fn)
    layout = check_choice(layout, LAYOUTS, "layout", fn)
    x = _host(logits, "logits", fn)
    if x.ndim != 3:
        raise ValueError(f"{fn}: logits must be 3-D ({layout}), got shape {x.shape}")
    dt = float_dtype_of(x, "logits", fn)
    if layout == "TNC":
        x = x.transpose(1, 0, 2)
    N, T, C = x.shape
    if not 0 <= blank < C:
        raise ValueError(f"{fn}: blank must lie in [0, {C}) (C = logits.shape[-1]), got {blank}")
    in_len = _lengths(input_lengths, "input_lengths", N, fn)
    if in_len.size and in_len.max() > T:
        raise ValueError(f"{fn}: input_lengths must be <= T = {T}, found {int(in_len.max())}")
    return x, dt, blank, in_len


def ctc_greedy_decode(logits, input_lengths, *, blank=0, layout="NTC"):
    """Best-path decoding: argmax per frame, merge repeats, drop blanks.

    Returns ``(labels, lengths)``: labels (N, T) int64 padded with -1, lengths (N,) int64.
    Frames past ``input_lengths`` are ignored.  Runs on the host (device inputs are copied).

    Returns
    -------
    labels : ndarray of int64, shape (N, T)
        The decoded labels of each sequence, padded with -1.
    lengths : ndarray of int64, shape (N,)
        The number of decoded labels per sequence.
    """
    fn = "ctc_greedy_decode"
    x, _, blank, in_len = decoder_inputs(logits, input_lengths, blank, layout, fn)
    N, T, C = x.shape
    best = np.argmax(x, axis=-1) if C else np.zeros((N, T), np.int64)
    prev = np.concatenate([np.full((N, 1), -1), best[:, :-1]], axis=1)
    keep = (best != blank) & (best != prev) & (np.arange(T)[None, :] < in_len[:, None])
    lengths = keep.sum(axis=1).astype(np.int64)
    out = np.full((N, T), -1, np.int64)
    pos = np.cumsum(keep, axis=1) - 1
    rows = np.nonzero(keep)
    out[rows[0], pos[rows]] = best[rows]
    return out, lengths


# --- forward variables ------------------------------------------------------------------------

def _forward_kernel():
    """The forward-variable kernel (compiled on first use only: ``ctc_loss`` never needs it)."""
    from numba import njit

    from ._cpu import ctc as tmpl

    lae = cached(("ctc-lae",), lambda: njit(error_model="numpy")(tmpl._lae))
    return cpu_kernel(tmpl.ctc_forward_kernel, "ctcfwd", {"_lae": lae}, parallel=not DEBUG,
                      boundscheck=True if DEBUG else None)


def ctc_loss_with_forward_probs(logits, labels, input_lengths, label_lengths, *, blank=0,
                                layout="NTC", log_probs=False, n_threads=None):
    """CTC loss per sequence and its log forward variables (optax's
    ``ctc_loss_with_forward_probs`` layout).

    Returns ``(loss, logalpha_blank, logalpha_nonblank)``:

    * ``loss`` (N,): ``ctc_loss(..., reduction="none")`` (the same numbers);
    * ``logalpha_blank`` (T, N, L + 1), time-major whatever ``layout``:
      ``[t, n, j]`` = log α_t(2j), the log-probability of frames 0..t (emissions included)
      summed over the alignments that have emitted the first j labels of sequence n and
      are in the blank after them at frame t;
    * ``logalpha_nonblank`` (T, N, L): ``[t, n, j]`` = log α_t(2j + 1), the same for the
      alignments that are in label j (0-based, so j + 1 labels emitted) at frame t;

    with L = max(label_lengths) and p_t = softmax of frame t (``log_probs=True``: ``logits``
    are already log-probabilities).  Hence
    ``loss[n] = −logaddexp(logalpha_blank[T_n − 1, n, L_n], logalpha_nonblank[T_n − 1, n,
    L_n − 1])`` for T_n = input_lengths[n] > 0.

    Differences from optax (whose ``log_epsilon`` stands for log 0): impossible states are
    ``-inf``; states past a sequence's label length are ``-inf`` (optax runs the recursion
    over the padding labels); frames past ``input_lengths[n]`` repeat the last valid
    frame's row, as optax's padded frames do (all ``-inf`` when ``input_lengths[n] = 0``),
    but the last frame's blank row holds α_t(2j) itself, not optax's α_t(2j) + α_t(2j − 1).

    The forward variables are computed by a kernel of their own (float64, log space),
    compiled on first use of this function; ``ctc_loss`` is unchanged by it.  CPU only
    (CUDA inputs are copied to the host).  Arguments as :func:`ctc_loss`.

    Returns
    -------
    loss : ndarray (N,)
        Per-sequence −log p(labels | logits), logits' dtype.
    logalpha_blank : ndarray (T, N, L + 1)
        Log forward variables of the blank states, logits' dtype.
    logalpha_nonblank : ndarray (T, N, L)
        Log forward variables of the label states, logits' dtype.

    Examples
    --------
    >>> import numpy as np, fastloss
    >>> loss, lab_b, lab_nb = fastloss.ctc_loss_with_forward_probs(
    ...     np.zeros((1, 2, 3)), np.array([[1]]), np.array([2]), np.array([1]))
    >>> lab_b.shape, lab_nb.shape
    ((2, 1, 2), (2, 1, 1))
    >>> round(float(np.exp(lab_b[1, 0, 1]) + np.exp(lab_nb[1, 0, 0])), 4), round(1 / 3, 4)
    (0.3333, 0.3333)
    """
    fn = "ctc_loss_with_forward_probs"
    params = {"blank": blank, "layout": layout, "zero_infinity": False, "log_probs": log_probs}
    inputs = {"logits": _host(logits, "logits", fn), "labels": labels,
              "input_lengths": input_lengths, "label_lengths": label_lengths}
    p = _prepare(inputs, params, None, "none", fn)
    nt = _threads.resolve(n_threads, fn)
    dt = p["dt"]
    x = as_float(p["xh"], dt, "logits")
    pad = np.ascontiguousarray(p["ext"][:, 1::2])      # host labels, padded with blank
    loss = np.asarray(ctc_loss(x, pad, p["in_len"], p["lab_len"], blank=p["blank"],
                               layout=layout, log_probs=p["log_probs"], reduction="none",
                               device="cpu", n_threads=n_threads))
    N, T = p["N"], p["T"]
    L = pad.shape[1]
    ab = np.empty((T, N, L + 1))
    an = np.empty((T, N, L))
    if N and T:
        from ._cpu import launch, want_parallel

        x64 = np.ascontiguousarray(x.transpose(1, 0, 2) if p["tnc"] else x, np.float64)
        launch(_forward_kernel(), x64, p["log_probs"], pad,
               p["lab_len"], p["in_len"], p["blank"], ab, an,
               parallel=want_parallel("ctc", x64.size, nt), n_threads=nt)
    return loss, ab.astype(dt, copy=False), an.astype(dt, copy=False)
