"""Metric-learning losses (pairwise over a batch): validation, dispatch, reductions.

``contrastive``, ``npairs``, ``ntxent``, ``triplet_semihard``, ``lifted_struct`` — the
losses of TF-Slim's ``tf.contrib.losses.metric_learning`` (argument order included) and
optax's ``ntxent``.  Everything is checked here, in Python, before a kernel runs.  The row
math lives in :mod:`fastloss._math.metric` (compiled for the CPU and for CUDA from the same
source), the kernels in :mod:`fastloss._cpu.metric` and :mod:`fastloss._cuda.metric`: one
kernel per dtype and target serves every loss and pass.

Reductions.  Each loss is Σ_i ℓ_i over anchor rows i, divided by a count: the pairs N for
``contrastive`` and ``npairs``; the ordered positive pairs |P| = #{(i, j): i ≠ j,
y_i = y_j} for ``ntxent`` and ``triplet_semihard``; |P|/2 for ``lifted_struct`` (as TF).
``reduction="mean"`` (the default) is that quotient — the peers' value; ``"sum"`` is the
numerator Σ_i ℓ_i; ``"none"`` (``contrastive`` only, whose pairs are independent) the
per-pair losses.  With ``sample_weight`` w (one weight per anchor row): ``"sum"`` is
Σ w_i ℓ_i and ``"mean"`` Σ w_i ℓ_i / Σ w_i c_i, c_i the row's share of the count (1, or
its positives |P(i)|, or |P(i)|/2).  A count of 0 (no positive pair, all weights 0) gives
NaN for ``"mean"``, as TF's and optax's 0/0.

Kernels.  The pair loops run in float64 whatever the input dtype: float32 embeddings are
widened once (O(N·D)), results and gradients are returned in the input dtype.  On the CPU
the rows of a pass run in a ``prange`` (the serial twin below N·N·D = ``PAR_MIN``); on
CUDA one thread runs one anchor row, in tiles of rows whose workspaces (3N float64 each)
fit in ``CUDA_WS`` elements; labels and weights are checked on the host (device labels are
copied, N integers), gradients are formed in float64 on the device and cast through the
host.  ``out=`` and ``grad_out=`` are CPU-only.
"""
from __future__ import annotations

import numpy as np

from . import _alloc, _device, _threads
from ._api import LossInfo, register
from ._compile import cached, cpu_kernel, namespace
from ._validate import (as_float, as_host_array, check_choice, check_out, float_dtype_of,
                        real_scalar)

__all__ = ["contrastive", "npairs", "ntxent", "triplet_semihard", "lifted_struct"]

MATH = "fastloss._math.metric"
WHICH = {"contrastive": 0, "npairs": 1, "ntxent": 2, "triplet_semihard": 3,
         "lifted_struct": 4}
NANCHECK = 5
# (passes for the value, passes for value + gradient)
PASSES = {0: (1, 1), 1: (1, 2), 2: (2, 3), 3: (1, 2), 4: (2, 3)}
PAR_MIN = 1 << 14          # N·N·D from which the CPU kernel runs in parallel
CUDA_WS = 1 << 23          # float64 elements of the row workspaces of one CUDA tile
COUPLED_REDUCTIONS = ("sum", "mean")
PAIR_REDUCTIONS = ("none", "sum", "mean")


def cpu_kernel_for():
    """The cached CPU kernel (float64; its serial twin from :func:`fastloss._cpu.launch`)."""
    from ._cpu import metric as tmpl

    return cpu_kernel(tmpl.metric_kernel, "metric", {"row_pass": _cpu_math()["row_pass"]})


def _cpu_math():
    """Every function of :mod:`fastloss._math.metric` compiled for the float64 CPU target —
    :func:`fastloss._compile.namespace`'s primitives and fast-math flags, but plain
    ``@njit`` functions instead of ``inline='always'``: the row functions hold loops, and
    inlining them into the kernel and into its serial twin tripled the compile time (45 s
    against 16 s of CPU) for no run-time gain (LLVM still inlines the small ones)."""
    def build():
        import importlib
        import types

        from numba import njit

        from ._compile import FASTMATH, _prims

        mod = importlib.import_module(MATH)
        ns = dict(vars(mod))
        ns.update(_prims("cpu64"))
        for name, f in vars(mod).items():
            if isinstance(f, types.FunctionType) and f.__module__ == mod.__name__:
                nf = types.FunctionType(f.__code__, ns, name, f.__defaults__)
                nf.__qualname__ = f.__qualname__
                nf.__module__ = f.__module__
                ns[name] = njit(fastmath=set(FASTMATH), error_model="numpy")(nf)
        return ns

    return cached(("metric-math", "cpu64"), build)


# --- validation -------------------------------------------------------------------------

def _host(a, name, fn):
    if _device.on_cuda(a):     # labels and weights are small: checked on the host
        return _device.as_device_array(a, name, fn).copy_to_host()
    return as_host_array(a, name, fn)


def _embedding_meta(a, name, fn):
    """(host array or None, shape, compute dtype) of an embedding input."""
    meta = _device.shape_dtype(a)
    if meta is None:
        h = as_host_array(a, name, fn)
        meta = (h.shape, h.dtype)
    else:
        h = None
    shape, dt = tuple(meta[0]), np.dtype(meta[1])
    if len(shape) != 2:
        raise ValueError(f"{fn}: {name} must be 2-D (batch, embedding dimension), got shape "
                         f"{shape}")
    return h, shape, float_dtype_of(np.empty(0, dt), name, fn)


def _class_labels(labels, n, fn):
    h = _host(labels, "labels", fn)
    if h.dtype.kind not in "iub":
        raise TypeError(f"{fn}: labels must be an integer array (class ids), got dtype "
                        f"{h.dtype}")
    if h.shape != (n,):
        raise ValueError(f"{fn}: labels must have shape ({n},) (one class id per embedding "
                         f"row), got shape {h.shape}")
    if h.dtype.kind == "u" and h.dtype.itemsize == 8 and h.size and int(h.max()) > 2 ** 63 - 1:
        raise ValueError(f"{fn}: labels must fit in int64")
    return np.ascontiguousarray(h, dtype=np.int64)


def _pair_labels(labels, n, fn):
    h = _host(labels, "labels", fn)
    if h.shape != (n,):
        raise ValueError(f"{fn}: labels must have shape ({n},) (one label per pair), got "
                         f"shape {h.shape}")
    f = np.ascontiguousarray(h, dtype=np.float64)
    bad = (f < 0) | (f > 1)
    if bad.any():
        raise ValueError(f"{fn}: labels must lie in [0, 1] (1: similar pair, 0: dissimilar), "
                         f"found {f[bad][0]}")
    return f


def _weights(sample_weight, n, fn):
    from ._ctc import _weights as per_item
    return per_item(sample_weight, n, fn, per="anchor row", host=_host)


def _param(params, key, fn, rule):
    v = real_scalar(params[key], key, fn)
    ok = {"finite": np.isfinite(v), "positive": np.isfinite(v) and v > 0,
          "nonneg": np.isfinite(v) and v >= 0}[rule]
    if not ok:
        what = {"finite": "a finite real number", "positive": "a finite number > 0",
                "nonneg": "a finite number >= 0"}[rule]
        raise ValueError(f"{fn}: {key} must be {what}, got {v!r}")
    return v


def _class_counts(lab):
    """(positives per anchor |P(i)|, same-label count incl. i, rank of i in its class)."""
    n = len(lab)
    if n == 0:
        z = np.zeros(0, np.int64)
        return z, z, z
    _, inv, cnt = np.unique(lab, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    same = cnt[inv].astype(np.int64)
    order = np.argsort(inv, kind="stable")
    starts = np.concatenate([[0], np.cumsum(cnt)[:-1]])
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - starts[inv[order]]
    return same - 1, same, rank


# --- the runner ---------------------------------------------------------------------------

def _prepare(name, inputs, params, sample_weight, reduction, fn):
    which = WHICH[name]
    pair = which in (0, 1)
    check_choice(reduction, PAIR_REDUCTIONS if which == 0 else COUPLED_REDUCTIONS,
                 "reduction", fn)
    prm = np.zeros(2)
    if which == 0:
        prm[0] = _param(params, "margin", fn, "finite")
    elif which == 1:
        prm[0] = _param(params, "reg_lambda", fn, "nonneg")
    elif which == 2:
        prm[0] = _param(params, "temperature", fn, "positive")
    else:
        prm[0] = _param(params, "margin", fn, "finite")
    names = ("embeddings_anchor", "embeddings_positive") if pair else ("embeddings",)
    metas = [_embedding_meta(inputs[k], k, fn) for k in names]
    shape = metas[0][1]
    if pair and metas[1][1] != shape:
        raise ValueError(f"{fn}: embeddings_positive must have the shape of "
                         f"embeddings_anchor {shape}, got {metas[1][1]}")
    dt = np.result_type(*[m[2] for m in metas])
    n = shape[0]
    if which == 0:
        lab = np.zeros(0, np.int64)
        flab = _pair_labels(inputs["labels"], n, fn)
    else:
        lab = _class_labels(inputs["labels"], n, fn)
        flab = np.zeros(0)
    if which == 2:
        prm[1] = float(np.finfo(dt).eps)   # optax: squared norms clipped at the dtype's eps
    w = _weights(sample_weight, n, fn)
    return dict(which=which, names=names, metas=metas, shape=shape, dt=np.dtype(dt), n=n,
                lab=lab, flab=flab, w=w, prm=prm)


def _scales(p, reduction):
    """(per-row factors sc, weights as array) of the reduced value; None: a 0 count."""
    which, n, w = p["which"], p["n"], p["w"]
    ww = np.ones(n) if w is None else w
    if which in (0, 1):
        share = np.ones(n)
        pos = same = rank = None
    else:
        pos, same, rank = _class_counts(p["lab"])
        share = pos * (0.5 if which == 4 else 1.0)
    p.update(pos=pos, same=same, rank=rank)
    if reduction != "mean":
        return ww.copy()
    den = float(np.sum(ww * share))
    if not den > 0:
        return None if not np.isnan(den) else np.full(n, np.nan)
    return ww / den


def run(name, inputs, params, *, sample_weight=None, reduction="mean", device="auto",
        out=None, stream=None, device_result=False, n_threads=None, want_grad=False,
        want_hess=False, argnums=None, grad_out=None, hess_out=None, sum_from=None):
    """Value (and gradients w.r.t. the requested embedding inputs) of metric loss ``name``.

    ``sum_from`` (the running totals of :func:`fastloss.score`'s chunks) is refused: the
    losses couple the rows of a batch, so a value over chunks is not the batch's value."""
    fn = name
    if sum_from is not None:
        raise ValueError(f"{fn}: a metric-learning loss couples the rows of its batch and "
                         f"cannot be streamed in chunks (fastloss.score); call it on the "
                         f"whole batch")
    nt = _threads.resolve(n_threads, fn)
    if want_hess or hess_out is not None:
        raise ValueError(f"{fn} has no Hessian")
    p = _prepare(name, inputs, params, sample_weight, reduction, fn)
    where = _device.resolve(device, {k: inputs[k] for k in (*p["names"], "labels")}, fn)
    info_inputs = LOSS_INPUTS[name]
    if argnums is None:
        argnums = ()
    wanted = [info_inputs[i] for i in argnums] if want_grad else []
    if out is not None:
        if reduction != "none":
            raise ValueError(f"{fn}: out is the buffer of reduction='none'")
        if where == "cuda":
            raise ValueError(f"{fn}: out is supported on the CPU only")
        out = check_out(out, (p["n"],), p["dt"], "out", fn)
    gouts = _grad_outs(grad_out, wanted, p, where, fn)
    sc = _scales(p, reduction)
    runner = _run_cuda if where == "cuda" else _run_cpu
    loss, grads = runner(p, sc, wanted, gouts, nt, stream, inputs)
    return _finish(p, sc, loss, grads, reduction, out, where, stream, device_result, inputs)


def _grad_outs(grad_out, wanted, p, where, fn):
    if grad_out is None:
        return {}
    if where == "cuda":
        raise ValueError(f"{fn}: grad_out is supported on the CPU only")
    bufs = grad_out if isinstance(grad_out, (tuple, list)) else (grad_out,)
    if len(bufs) != len(wanted):
        raise ValueError(f"{fn}: grad_out must hold {len(wanted)} buffer(s), one per "
                         f"differentiated input, got {len(bufs)}")
    res = {k: check_out(b, p["shape"], p["dt"], "grad_out", fn) for k, b in zip(wanted, bufs)}
    if len(res) == 2 and np.may_share_memory(*res.values()):
        raise ValueError(f"{fn}: the grad_out buffers must not share memory")
    return res


def _arrays(p, sc, n, D, E):
    """The small per-call arrays every pass takes."""
    which = p["which"]
    crank = p["rank"] if which == 3 else np.zeros(0, np.int64)
    if which == 3:
        off = np.zeros(n + 1, np.int64)
        np.cumsum(p["pos"], out=off[1:])
    else:
        off = np.zeros(1, np.int64)
    nsel = np.empty(E, np.int32)
    scv = np.zeros(n) if sc is None else np.ascontiguousarray(sc, dtype=np.float64)
    return crank, off, nsel, scv


def _run_cpu(p, sc, wanted, gouts, nt, stream, inputs):
    from ._cpu import launch

    which, n, dt = p["which"], p["n"], p["dt"]
    D = p["shape"][1]
    # float64 inputs for the kernel: float32 embeddings are widened once, O(N·D), so that
    # the O(N²·D) pair loops run on float64 vectors (no per-term conversion) and one
    # kernel serves both dtypes
    xs = [as_float(m[0], np.float64, k) for m, k in zip(p["metas"], p["names"])]
    x = xs[0]
    y = xs[1] if len(xs) > 1 else x
    E = int(np.sum(p["pos"])) if which == 3 else 0
    crank, off, nsel, scv = _arrays(p, sc, n, D, E)
    st = np.zeros((n, 6))
    loss = np.zeros(n)
    wg = bool(wanted)
    kern = cpu_kernel_for()
    par = n * n * max(D, 1) >= PAR_MIN
    dummy = np.zeros((0, 0))
    nws = 3 * n if which != 0 else 0   # the row workspace (fastloss._math.metric)
    grads = {}
    if n == 0:
        return loss, {k: _alloc.empty(p["shape"], dt) if k not in gouts else gouts[k]
                      for k in wanted}
    if which != 0:
        launch(kern, NANCHECK, 0, x, y, p["lab"], p["flab"], crank, off, nsel, scv, p["prm"],
               st, loss, dummy, dummy, 0, False, parallel=par, n_threads=nt)
        if loss.any():
            return np.full(n, np.nan), {k: _nan_grad(p, gouts.get(k)) for k in wanted}
    # float64 gradient rows, written in place into float64 results that alias no input
    final = {k: gouts[k] if k in gouts else _alloc.empty(p["shape"], dt) for k in wanted}
    need = set(wanted)
    if which == 0 and wg:
        need = set(p["names"])          # both rows come from the same pass
    bufs = {}
    for k in need:
        f = final.get(k)
        if f is not None and dt == np.float64 and not any(
                np.may_share_memory(f, a) for a in xs):
            bufs[k] = f
        else:
            bufs[k] = np.empty(p["shape"])
    ga = bufs.get(p["names"][0], dummy)
    gb = bufs.get(p["names"][1], dummy) if len(p["names"]) > 1 else dummy
    nv, ng = PASSES[which]
    for pss in range(ng if wg else nv):
        wgp = wg
        if which == 1:
            if pss == 1 and "embeddings_positive" not in need:
                continue
            wgp = pss == 0 and "embeddings_anchor" in need
        launch(kern, which, pss, x, y, p["lab"], p["flab"], crank, off, nsel, scv, p["prm"],
               st, loss, ga, gb, nws, wgp, parallel=par, n_threads=nt)
    for k in wanted:
        a = ga if k == p["names"][0] else gb
        if final[k] is not a:
            final[k][...] = a
        grads[k] = final[k]
    if sc is None:
        for k in wanted:
            grads[k][...] = np.nan
    return loss, grads


def _nan_grad(p, buf):
    g = buf if buf is not None else _alloc.empty(p["shape"], p["dt"])
    g[...] = np.nan
    return g


def _run_cuda(p, sc, wanted, gouts, nt, stream, inputs):
    from ._cuda import metric as cm
    from ._cuda import runtime

    which, n, dt = p["which"], p["n"], p["dt"]
    D = p["shape"][1]
    named = {k: inputs[k] for k in p["names"]}
    kind = _device.device_kind(named)
    stm = runtime.resolve_stream(stream, kind, NAMES_FN[which])
    alloc = runtime.Allocator(kind, stm, runtime.torch_device(named))
    xs = []
    for m, k in zip(p["metas"], p["names"]):
        if m[0] is None:        # float64 on the device (one kernel for both dtypes)
            xs.append(_device.to_device(inputs[k], np.float64, k, NAMES_FN[which], alloc, stm))
        else:
            xs.append(alloc.to_device(as_float(m[0], np.float64, k)))
    x = xs[0]
    y = xs[1] if len(xs) > 1 else x
    E = int(np.sum(p["pos"])) if which == 3 else 0
    crank, off, nsel, scv = _arrays(p, sc, n, D, E)
    up = alloc.to_device
    lab, flab, crank_d, off_d, sc_d, prm_d = (up(a) for a in (p["lab"], p["flab"], crank, off,
                                                               scv, p["prm"]))
    nsel_d = alloc.view((max(E, 1),), np.int32)
    st = alloc.view((max(n, 1), 6), np.float64)
    loss_d = up(np.zeros(max(n, 1)))
    wg = bool(wanted)
    # rows per launch: R row workspaces of 3N float64 within CUDA_WS (contrastive: none)
    R = max(1, min(n, CUDA_WS // max(3 * n, 1))) if which != 0 else max(n, 1)
    ws = alloc.view((R, 3 * n if which != 0 else 1), np.float64) if n else alloc.view(
        (1, 1), np.float64)
    dummy = alloc.view((1, 1), np.float64)
    grads = {}
    if n == 0:
        return np.zeros(0), {k: _to_kind(np.zeros(p["shape"], dt), kind, alloc)
                             for k in wanted}
    k = cm.kernel(namespace(MATH, "cuda"))
    common = (lab, flab, crank_d, off_d, nsel_d, sc_d, prm_d, st, loss_d)
    if which != 0:
        cm.launch_pass(k, stm, NANCHECK, 0, n, R, x, y, *common, dummy, dummy, ws, False)
        if runtime.copy_to_host(loss_d, stm)[:n].any():
            return np.full(n, np.nan), {
                kk: _to_kind(np.full(p["shape"], np.nan, dt), kind, alloc) for kk in wanted}
    ga = alloc.view(p["shape"], np.float64) if wg else dummy
    gb = alloc.view(p["shape"], np.float64) if (wg and len(p["names"]) > 1) else dummy
    nv, ng = PASSES[which]
    for pss in range(ng if wg else nv):
        if which == 1 and pss == 1 and "embeddings_positive" not in wanted:
            continue
        cm.launch_pass(k, stm, which, pss, n, R, x, y, *common, ga, gb, ws, wg)
    loss = runtime.copy_to_host(loss_d, stm)[:n]
    for kk in wanted:
        a = ga if kk == p["names"][0] else gb
        h = runtime.copy_to_host(a, stm).astype(dt, copy=False)
        if sc is None:
            h[...] = np.nan
        grads[kk] = _to_kind(h, kind, alloc)
    return loss, grads


def _to_kind(h, kind, alloc):
    """A host gradient as the inputs' kind (host arrays stay on the host)."""
    if kind == "host":
        return h
    nat, view = alloc.empty(h.shape, h.dtype)
    from ._cuda import runtime
    runtime.copy_on_device(view, alloc.to_device(h), alloc.stream)
    return nat


def _finish(p, sc, loss, grads, reduction, out, where, stream, device_result, inputs):
    dt, w = p["dt"], p["w"]
    if reduction == "none":
        per = loss if w is None else np.where(w == 0, 0.0, w * loss)
        res = out if out is not None else np.empty(p["n"], dt)
        res[...] = per
        value = res
        if where == "cuda":
            value = _value_on_device(res, p, inputs, stream, shape=(p["n"],))
    else:
        if sc is None:
            v = np.nan
        else:
            v = float(np.sum(np.where(sc == 0, 0.0, sc * loss)))
        value = dt.type(v)
        if where == "cuda" and device_result:
            value = _value_on_device(np.array([value], dt), p, inputs, stream, shape=())
    return value, grads, None


def _value_on_device(h, p, inputs, stream, shape):
    from ._cuda import runtime

    named = {k: inputs[k] for k in p["names"]}
    kind = _device.device_kind(named)
    if kind == "host":
        return h.reshape(shape)
    stm = runtime.resolve_stream(stream, kind, "metric")
    alloc = runtime.Allocator(kind, stm, runtime.torch_device(named))
    nat, view = alloc.empty(h.shape, h.dtype)
    runtime.copy_on_device(view, alloc.to_device(h), stm)
    return nat.reshape(shape)


NAMES_FN = {v: k for k, v in WHICH.items()}


# --- registration -------------------------------------------------------------------------

_COMMON = {"sample_weight": None, "reduction": "mean", "device": "auto", "stream": None,
           "device_result": False, "n_threads": None}

LOSS_INPUTS = {
    "contrastive": ("labels", "embeddings_anchor", "embeddings_positive"),
    "npairs": ("labels", "embeddings_anchor", "embeddings_positive"),
    "ntxent": ("embeddings", "labels"),
    "triplet_semihard": ("labels", "embeddings"),
    "lifted_struct": ("labels", "embeddings"),
}
_PARAMS = {"contrastive": {"margin": 1.0}, "npairs": {"reg_lambda": 0.002},
           "ntxent": {"temperature": 0.07}, "triplet_semihard": {"margin": 1.0},
           "lifted_struct": {"margin": 1.0}}
_FORMULA = {
    "contrastive": "y d² + (1 − y) max(m − d, 0)²,  d = ‖a − p‖",
    "npairs": "CE(softmax(a_i · P), t_i) + λ/4 (‖a_i‖² + ‖p_i‖²)",
    "ntxent": "Σ_{j ∈ P(i)} −log(e^{c_ij} / (e^{c_ij} + Σ_{k ∈ N(i)} e^{c_ik}))",
    "triplet_semihard": "Σ_{p ∈ P(a)} max(m + D_ap − D_an*, 0),  D squared distances",
    "lifted_struct": "¼ Σ_{q ∈ P(i)} max(D_iq + log(Σ_{N(i)} e^{m−D} + Σ_{N(q)} e^{m−D}), 0)²",
}

_COMMON_DOC = """
sample_weight : array_like (N,) or scalar, optional
    Non-negative weight per anchor row (per pair for ``contrastive``); see the reductions
    above.  A NaN weight gives a NaN loss.
reduction : {reductions}, default 'mean'
    'mean': the peers' value (the normalized sum); 'sum': the numerator Σ w·ℓ{none}.
device : {{'auto', 'cpu', 'cuda'}}, default 'auto'
    'auto' runs on CUDA when the embeddings expose ``__cuda_array_interface__``.
stream : CUDA stream, optional
    The stream of the whole call on CUDA; ignored on the CPU.
device_result : bool, default False
    On CUDA, return the reduced value as a 0-d device array of the inputs' kind.
n_threads : int, optional
    CPU threads for this call (see :func:`fastloss.set_num_threads`).

Returns
-------
loss : numpy scalar{ret}
    A NumPy scalar of the embeddings' dtype (float32 or float64; computed in float64).

Raises
------
ValueError
    Shapes that do not match, labels of the wrong length{lab}, a parameter that breaks its
    rule, negative weights, an unknown reduction. The message names the function and the
    argument.
TypeError
    Non-numeric or complex inputs, non-integer class labels, unknown keywords.

See Also
--------
fastloss.value_and_grad, fastloss.grad
"""


def _doc(name, body, example):
    which = WHICH[name]
    red = "{'none', 'sum', 'mean'}" if which == 0 else "{'sum', 'mean'}"
    none = "; 'none': the per-pair losses w·ℓ, shape (N,)" if which == 0 else ""
    ret = " or ndarray (N,) with reduction='none'" if which == 0 else ""
    lab = " or outside [0, 1]" if which == 0 else ""
    return (body.strip() + "\n" + _COMMON_DOC.format(reductions=red, none=none, ret=ret,
                                                      lab=lab)
            + "\nExamples\n--------\n" + example.strip() + "\n")


_DOCS = {}
_DOCS["contrastive"] = _doc("contrastive", """
Contrastive loss of pairs (Hadsell, Chopra & LeCun 2006), as TF-Slim's ``contrastive_loss``.

.. math::

    \\ell_i = y_i d_i^2 + (1 - y_i) \\max(m - d_i, 0)^2, \\quad d_i = \\lVert a_i - p_i \\rVert_2

``"mean"`` averages over the N pairs.  Labels are 1 (similar pair) or 0 (dissimilar);
values in between weight the two terms, as TF's float cast does.  The gradient with respect
to both embeddings is analytic; at d_i = 0 the hinge's subgradient 0 is used (TF's
``sqrt`` gives NaN there).  Cost: O(N·D) (independent pairs, one kernel pass).

Parameters
----------
labels : array_like (N,)
    Pair labels in [0, 1].
embeddings_anchor : array_like (N, D)
    Anchor embeddings, float32 or float64.
embeddings_positive : array_like (N, D)
    The embeddings paired with them, same shape.
margin : float, default 1.0
    The margin m (finite).
""", """
>>> import numpy as np, fastloss
>>> a = np.array([[0.0, 0.0], [0.0, 0.0]])
>>> p = np.array([[0.3, 0.4], [0.6, 0.0]])
>>> round(float(fastloss.contrastive(np.array([1, 0]), a, p)), 4)   # (0.25 + 0.16) / 2
0.205
>>> loss, (ga, gp) = fastloss.value_and_grad(fastloss.contrastive, argnums=(1, 2))(
...     np.array([1, 0]), a, p)
>>> gp.round(4)                   # (1/N)·2(p − a) for the similar pair, a hinge push apart
array([[ 0.3,  0.4],
       [-0.4,  0. ]])
""")

_DOCS["npairs"] = _doc("npairs", """
N-pairs loss (Sohn 2016), as TF-Slim's ``npairs_loss``: a softmax cross-entropy over the
similarity matrix S = A Pᵀ plus an L2 penalty on the embeddings.

.. math::

    \\ell_i = \\log \\sum_j e^{S_{ij}} - \\sum_j t_{ij} S_{ij}
              + \\tfrac{\\lambda}{4} (\\lVert a_i \\rVert^2 + \\lVert p_i \\rVert^2),
    \\quad t_{ij} = \\frac{[y_i = y_j]}{\\#\\{k : y_k = y_i\\}}

``"mean"`` averages over the N anchors (TF's value: mean cross-entropy + λ/4 (mean ‖a‖² +
mean ‖p‖²)).  Gradients with respect to both embedding inputs.  Cost: O(N²·D) — each pass
recomputes the row's N dot products (one pass for the value and the anchors' gradient, one
more for the positives' gradient); no N×N array is formed.

Parameters
----------
labels : array_like of int (N,)
    Class ids of the pairs.
embeddings_anchor : array_like (N, D)
    Anchor embeddings (not normalized), float32 or float64.
embeddings_positive : array_like (N, D)
    Positive embeddings, same shape.
reg_lambda : float, default 0.002
    The L2 factor λ (finite, >= 0).
""", """
>>> import numpy as np, fastloss
>>> a = np.eye(2)
>>> loss = fastloss.npairs(np.array([0, 1]), a, a, reg_lambda=0.0)
>>> round(float(loss), 4), round(float(np.log(1 + np.exp(-1.0))), 4)
(0.3133, 0.3133)
>>> g = fastloss.grad(fastloss.npairs, argnums=1)(np.array([0, 1]), a, a, reg_lambda=0.0)
>>> g.round(4)
array([[-0.1345,  0.1345],
       [ 0.1345, -0.1345]])
""")

_DOCS["ntxent"] = _doc("ntxent", """
Normalized temperature-scaled cross-entropy (NT-Xent, SimCLR), as optax's ``ntxent``.

With the cosine similarities c_ij = u_i · u_j / τ, u_i = x_i / max(‖x_i‖, √eps) (eps the
dtype's machine epsilon, as optax), the positives P(i) = {j ≠ i: y_j = y_i} and the
negatives N(i) = {k: y_k ≠ y_i}, each positive pair is one softmax against the anchor's
negatives:

.. math::

    \\ell_i = \\sum_{j \\in P(i)} -\\log \\frac{e^{c_{ij}}}{e^{c_{ij}}
              + \\sum_{k \\in N(i)} e^{c_{ik}}}

``"mean"`` divides by the number of positive pairs |P| (optax's value; NaN when there is
none).  The gradient flows through the normalization (0 for the radial part; a norm below
√eps is treated as the constant √eps, as the clip does).  Cost: O(N²·D): three passes
over the rows (norms; the negatives' log-sum-exp and the value; the gradient), each pair's
similarity recomputed in O(D); no N×N array.

Parameters
----------
embeddings : array_like (N, D)
    float32 or float64.
labels : array_like of int (N,)
    Class ids; equal ids mark the positive pairs.
temperature : float, default 0.07
    τ (finite, > 0).
""", """
>>> import numpy as np, fastloss
>>> x = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
>>> loss = fastloss.ntxent(x, np.array([0, 0, 1, 1]), temperature=1.0)
>>> round(float(loss), 4), round(float(np.log(1 + 2 / np.e)), 4)
(0.5514, 0.5514)
>>> g = fastloss.grad(fastloss.ntxent)(x, np.array([0, 0, 1, 1]), temperature=1.0)
>>> g.shape
(4, 2)
""")

_DOCS["triplet_semihard"] = _doc("triplet_semihard", """
Triplet loss with semi-hard negative mining (Schroff et al. 2015), as TF-Slim's
``triplet_semihard_loss``, on squared Euclidean distances D.

For every positive pair (a, p) (p ≠ a, same label) the negative n* is mined as TF does:
the negative with the smallest D_an among those with D_an > D_ap; if there is none, the
negative with the largest D_an; if the anchor has no negative at all, D_an* = 0.

.. math::

    \\ell_a = \\sum_{p \\in P(a)} \\max(m + D_{ap} - D_{an^*}, 0)

``"mean"`` divides by the number of positive pairs |P| (TF's value; NaN when there is
none).  The gradient is that of the hinge at the mined triplets (subgradient 0 at the
kink; ties between negatives at exactly equal distance go to the lowest index, where TF
splits the gradient among them).  Cost: O(N²·D + N·Σ_a |P(a)|): per anchor one row of N
distances (a per-row workspace) and a scan of it per positive; the gradient pass keeps one
int32 per positive pair (the mined negative), no N×N array.

Parameters
----------
labels : array_like of int (N,)
    Class ids.
embeddings : array_like (N, D)
    float32 or float64 (TF expects them l2-normalized; nothing here requires it).
margin : float, default 1.0
    The margin m (finite).
""", """
>>> import numpy as np, fastloss
>>> x = np.array([[0.0], [1.0], [3.0]])
>>> loss = fastloss.triplet_semihard(np.array([0, 0, 1]), x)
>>> round(float(loss), 4)    # pairs (0, 1): 1 + 1 − 9 < 0; (1, 0): 1 + 1 − 4 < 0
0.0
>>> round(float(fastloss.triplet_semihard(np.array([0, 0, 1]), x, margin=6.0)), 4)
1.5
""")

_DOCS["lifted_struct"] = _doc("lifted_struct", """
Lifted structured loss (Oh Song et al. 2016), as TF-Slim's ``lifted_struct_loss``, on
Euclidean distances D.

.. math::

    J_{iq} = D_{iq} + \\log\\Big(\\sum_{k \\in N(i)} e^{m - D_{ik}}
             + \\sum_{k \\in N(q)} e^{m - D_{qk}}\\Big), \\quad
    \\ell_i = \\tfrac14 \\sum_{q \\in P(i)} \\max(J_{iq}, 0)^2

``"mean"`` divides by |P|/2, half the number of ordered positive pairs (TF's value; NaN
when there is none).  A pair neither of whose members has a negative contributes 0.  The
gradient is analytic (0 through a distance of exactly 0, as TF's masked square root).
Cost: O(N²·D): three passes over the rows (each row's negative log-sum-exp; the value;
the gradient), the distances recomputed in O(D) each; no N×N array.

Parameters
----------
labels : array_like of int (N,)
    Class ids.
embeddings : array_like (N, D)
    float32 or float64 (not normalized).
margin : float, default 1.0
    The margin m (finite).
""", """
>>> import numpy as np, fastloss
>>> x = np.array([[0.0], [1.0], [3.0]])
>>> J = 1 + np.log(np.exp(1 - 3.0) + np.exp(1 - 2.0))     # J_01 = J_10: one positive pair
>>> round(float(fastloss.lifted_struct(np.array([0, 0, 1]), x)), 4), round(float(J) ** 2 / 2, 4)
(0.0491, 0.0491)
>>> fastloss.grad(fastloss.lifted_struct, argnums=1)(np.array([0, 0, 1]), x).shape
(3, 1)
""")


def _register(name):
    from functools import partial

    common = dict(_COMMON)
    if name == "contrastive":
        common = {"sample_weight": None, "reduction": "mean", "device": "auto", "out": None,
                  "stream": None, "device_result": False, "n_threads": None}
    diff = tuple(k for k in LOSS_INPUTS[name] if k != "labels")
    f = register(LossInfo(
        name=name, kind="metric", inputs=LOSS_INPUTS[name], params=dict(_PARAMS[name]),
        runner=partial(run, name), differentiable=diff, has_hessian=False, common=common,
        formula=_FORMULA[name], doc=_DOCS[name]))
    f.__doc__ = _DOCS[name]
    return f


contrastive = _register("contrastive")
npairs = _register("npairs")
ntxent = _register("ntxent")
triplet_semihard = _register("triplet_semihard")
lifted_struct = _register("lifted_struct")
