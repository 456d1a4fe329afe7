"""CUDA kernel shape for row-wise losses: one block per row, shared-memory reductions.

``row_template`` is a template: :func:`fastloss._cuda.build.cuda_kernel` copies it with
the globals below bound to one loss's device row math (``f1, f2, fin, f3`` from
:mod:`fastloss._math.rowwise`) and its compile-time shape (``NEED_MAX``, ``INT_LABELS``,
``FLOAT_LABELS``), under a stable name (cacheable across processes).  Class weights,
sample weights and which gradients are stored are runtime flags (uniform branches).

``REFINE`` losses refine the phase-1 scalar with block-wide tree sums per pass (every
thread reads the pass's sums, so the loop is uniform); ``ROWARGS`` losses get the row
arrays ``A[i], B[i], Cm[i]`` in ``f2``/``f3``.

Each block takes rows ``blockIdx.x, blockIdx.x + gridDim.x, ...``; inside a row its
threads stride over the columns (so a row never has to fit in shared memory), reduce the
phase-1 maximum and the phase-2 float64 sums with a fixed tree in shared memory, thread 0
runs the row's ``fin`` and publishes the gradient coefficients, and every thread writes
its columns' gradients (and, in the ``HESS`` variant, the diagonal Hessian w.r.t. ``A``
into ``gH``: ``<tag>_hfin``'s row coefficient, ``<tag>_h3`` per column).  Row losses
(already weighted) and invalid-entry counts go to ``rows[0, i]`` and ``rows[1, i]``
(float64), which
:data:`fastloss._cuda.reduce.finish_kernel` folds on the device in row order, so results
are deterministic and never pass through the host.
"""
import math

import numpy as np
from numba import cuda, float32, float64  # module globals: the simulator swaps `cuda` here

from . import runtime
from .build import cuda_kernel
from .reduce import finish_kernel, tree_max, tree_sum

TPB = runtime.TPB
f1 = None            # bound per loss (see fastloss._math.rowwise)
f2 = None
fin = None
f3 = None
fixk = None
HAS_FIXK = False     # gA[i, k] = fixk(gA[i, k], c0..c3) after phase 3
FT = None            # numba.float32 / numba.float64
NEED_MAX = False     # phase 1 (row maximum of f1) runs
INT_LABELS = False   # K holds one class index per row
FLOAT_LABELS = False  # YL holds one float label per row
HESS = False         # the diagonal Hessian variant: phase 3 also stores h3 into gH
hfin = None          # bound in the HESS variant (the loss's <tag>_hfin, <tag>_h3)
h3 = None
ROWARGS = False      # f2/f3 take the row arrays (A[i], B[i], Cm[i]) and index them
REFINE = False       # the row scalar m is refined after phase 1 (<tag>_t2, <tag>_tfin)
t2 = None
tfin = None


def row_template(A, B, Cm, K, YL, CW, SW, ws, p0, p1, p2, p3, gscale, wtot, use_wtot,
                 has_cw, has_sw, want_ga, want_gb, want_gc, want_l, nan_bad, rows, outv, gA,
                 gB, gC, pw, use_pw, gH):
    sh = cuda.shared.array((5, TPB), float64)
    smax = cuda.shared.array((1, TPB), float64)
    coef = cuda.shared.array(6, float64)
    t = cuda.threadIdx.x
    N = A.shape[0]
    D = A.shape[1]
    nf = float64(D)
    zero = FT(0.0)
    one = FT(1.0)
    gs = gscale
    if use_wtot:   # "mean" over device weights / labels: 1 / Σw from device memory
        tot = wtot[0]
        gs = FT(1.0 / tot) if tot > 0 else FT(math.nan)
    bad_cw = 0.0
    if use_pw:   # a device class_weight: W = Σ class weights (p3) and its invalid count
        p3 = FT(pw[0])
        bad_cw = pw[1]
    i = cuda.blockIdx.x
    while i < N:
        k = 0
        xk = zero
        wk = one
        yl = 0.0
        valid = True
        if INT_LABELS:
            k = K[i]
            valid = k >= 0 and k < D
            if valid:
                xk = A[i, k]
                if has_cw:
                    wk = CW[k]
        if FLOAT_LABELS:
            yl = YL[i]
            if nan_bad and not (yl == 1.0 or yl == -1.0):
                valid = False   # an invalid ±1 label (device-side checks): a NaN row
        rw = ws
        if has_sw:
            rw = SW[i] * ws
        if valid:
            m = FT(-math.inf)
            if NEED_MAX:
                mloc = -math.inf
                j = t
                while j < D:
                    v = f1(A[i, j], B[i, j], j, k)
                    mloc = v if v > mloc else mloc
                    j += TPB
                smax[0, t] = mloc
                tree_max(smax, t)
                m = FT(smax[0, 0])
            if REFINE:   # t, key = tfin(Σ t2) until key repeats (block sums, every thread)
                key = -1.0
                it = 0
                while it < D + 2:
                    u0 = 0.0
                    u1 = 0.0
                    j = t
                    while j < D:
                        v0, v1 = t2(A[i, j], B[i, j], j, k, m, p0, p1, p2, p3)
                        u0 += v0
                        u1 += v1
                        j += TPB
                    cuda.syncthreads()   # (the previous pass's sums were read)
                    sh[0, t] = u0
                    sh[1, t] = u1
                    sh[2, t] = 0.0
                    sh[3, t] = 0.0
                    sh[4, t] = 0.0
                    tree_sum(sh, t)
                    tn, kn = tfin(sh[0, 0], sh[1, 0], m, nf, p0, p1, p2, p3)
                    if kn == key:
                        break
                    key = kn
                    m = FT(tn)
                    it += 1
                cuda.syncthreads()
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            s4 = 0.0
            j = t
            while j < D:
                wj = one
                if has_cw:
                    wj = CW[j]
                if ROWARGS:
                    v0, v1, v2, v3, v4 = f2(A[i], B[i], Cm[i], wj, j, k, m, xk,
                                            p0, p1, p2, p3)
                else:
                    v0, v1, v2, v3, v4 = f2(A[i, j], B[i, j], Cm[i, j], wj, j, k, m, xk,
                                            p0, p1, p2, p3)
                s0 += v0
                s1 += v1
                s2 += v2
                s3 += v3
                s4 += v4
                j += TPB
            sh[0, t] = s0
            sh[1, t] = s1
            sh[2, t] = s2
            sh[3, t] = s3
            sh[4, t] = s4
            tree_sum(sh, t)
            if t == 0:
                loss, c0, c1, c2, c3 = fin(sh[0, 0], sh[1, 0], sh[2, 0], sh[3, 0], m, xk,
                                           wk, yl, nf, rw * gs, p0, p1, p2, p3)
                v = loss * rw
                bad = sh[4, 0] + bad_cw
                if nan_bad and bad > 0:
                    v = math.nan
                rows[0, i] = v
                rows[1, i] = bad
                if want_l:
                    outv[i] = v
                coef[0] = c0
                coef[1] = c1
                coef[2] = c2
                coef[3] = c3
                if HESS:
                    coef[4] = hfin(sh[0, 0], sh[1, 0], sh[2, 0], sh[3, 0], m, xk, wk, yl, nf,
                                   rw * gs, p0, p1, p2, p3)
            cuda.syncthreads()
            if want_ga or want_gb or want_gc:
                c0 = FT(coef[0])
                c1 = FT(coef[1])
                c2 = FT(coef[2])
                c3 = FT(coef[3])
                ch = FT(coef[4]) if HESS else zero
                j = t
                while j < D:
                    wj = one
                    if has_cw:
                        wj = CW[j]
                    if ROWARGS:
                        ga, gb, gc = f3(A[i], B[i], Cm[i], wj, j, k, m, xk,
                                        c0, c1, c2, c3, p0, p1, p2, p3)
                    else:
                        ga, gb, gc = f3(A[i, j], B[i, j], Cm[i, j], wj, j, k, m, xk,
                                        c0, c1, c2, c3, p0, p1, p2, p3)
                    if want_ga:
                        gA[i, j] = ga
                    if want_gb:
                        gB[i, j] = gb
                    if want_gc:
                        gC[i, j] = gc
                    if HESS:
                        gH[i, j] = h3(A[i, j], B[i, j], Cm[i, j], wj, j, k, m, xk,
                                      c0, c1, c2, c3, ch, p0, p1, p2, p3)
                    j += TPB
                if HAS_FIXK and want_ga and t == k % TPB:  # this thread wrote column k
                    gA[i, k] = fixk(gA[i, k], c0, c1, c2, c3)
        else:   # an ignored row (label -1), or an invalid label (-2 or not ±1: device checks)
            fill = zero
            if nan_bad and ((INT_LABELS and k == -2) or FLOAT_LABELS):
                fill = FT(math.nan)
            if t == 0:
                rows[0, i] = float64(fill)
                rows[1, i] = 0.0
                if want_l:
                    outv[i] = fill
            if want_ga or want_gb or want_gc:
                j = t
                while j < D:
                    if want_ga:
                        gA[i, j] = fill
                    if want_gb:
                        gB[i, j] = fill
                    if want_gc:
                        gC[i, j] = fill
                    if HESS:
                        gH[i, j] = fill
                    j += TPB
        cuda.syncthreads()   # shared memory is reused by the next row
        i += cuda.gridDim.x



def kernel_for(tag, ns, flags, dtype, hess=False):
    """The cacheable kernel of one row math (``ns``: the cuda math namespace), one dtype;
    ``hess``: the variant that also stores the diagonal Hessian (``<tag>_h3``)."""
    need_max, int_labels, float_labels, _ = flags
    f32 = np.dtype(dtype) == np.float32
    f1name = f"{tag}_f1" if f"{tag}_f1" in ns else ("first_f1" if need_max else "nomax_f1")
    bind = {"f1": ns[f1name], "f2": ns[f"{tag}_f2"], "fin": ns[f"{tag}_fin"],
            "f3": ns[f"{tag}_f3"], "HAS_FIXK": f"{tag}_fixk" in ns,
            "fixk": ns.get(f"{tag}_fixk", ns["no_fixk"]), "FT": float32 if f32 else float64,
            "NEED_MAX": need_max, "INT_LABELS": int_labels, "FLOAT_LABELS": float_labels,
            "HESS": bool(hess), "hfin": ns[f"{tag}_hfin"] if hess else ns["no_hfin"],
            "h3": ns[f"{tag}_h3"] if hess else ns["no_h3"],
            "ROWARGS": tag in ns["ROW_ARGS"], "REFINE": f"{tag}_t2" in ns,
            "t2": ns.get(f"{tag}_t2"), "tfin": ns.get(f"{tag}_tfin")}
    name = (f"{tag}_{'f32' if f32 else 'f64'}_{'m' if need_max else 'n'}"
            f"{'i' if int_labels else ''}{'f' if float_labels else ''}{'_h' if hess else ''}")
    return cuda_kernel(row_template, name, bind)


def args_for(A, B, Cm, K, YL, CW, SW, ws, params, gscale, rows, outv, gA, gB, gC, nan_bad,
             dtype, wtot=None, pw=None, gH=None):
    """The kernel's argument tuple (also what :mod:`fastloss._cuda.ptx` types); ``K``
    is an int64 array (a 1-element dummy without integer labels); ``wtot``: the device
    (Σw, negative weights, invalid labels) whose Σw scales the gradient, or None; ``pw``:
    the device (Σ class weights, invalid class weights) of a device ``class_weight``
    (:func:`fastloss._cuda.labels.class_weight_check`), read for ``p3``, or None; ``gH``:
    the Hessian buffer of the ``hess`` variant (a dummy otherwise)."""
    cast = np.dtype(dtype).type
    p = [cast(v) for v in params]
    d1 = A[0, :1] if A.shape[0] else outv
    d2 = A[:1, :1]
    return (A, A if B is None else B, A if Cm is None else Cm,
            K, d1 if YL is None else YL, d1 if CW is None else CW,
            d1 if SW is None else SW, cast(ws), p[0], p[1], p[2], p[3], cast(gscale),
            rows[0] if wtot is None else wtot, wtot is not None, CW is not None,
            SW is not None, gA is not None, gB is not None, gC is not None,
            outv is not None, bool(nan_bad), rows, d1 if outv is None else outv,
            d2 if gA is None else gA, d2 if gB is None else gB, d2 if gC is None else gC,
            rows[0] if pw is None else pw, pw is not None, d2 if gH is None else gH)


def launch_rowwise(kern, alloc, stream, dtype, A, B, Cm, K, YL, CW, SW, ws, params, gscale,
                   gA, gB, gC, want_l, nan_bad, mode, wsum, wtot=None, pw=None, gH=None):
    """Run one row-wise loss on 2-D device arrays (N >= 1 rows), all on ``stream``.

    ``wtot`` (or None): the device (Σw, negative weights, invalid labels) of device
    labels and weights (:func:`fastloss._cuda.labels.row_labels`): Σw is the denominator
    of ``"mean"``, its counts join the result's.
    Returns ``(res, value, outv)``: the float64 device result (reduced value, invalid
    count, negative weights), the reduced value as a 1-element device array of ``dtype``
    (native kind), and the per-row weighted losses of ``dtype`` (native, or None without
    ``want_l``).
    """
    N = A.shape[0]
    rows = alloc.view((2, N), np.float64)
    outv = alloc.empty(N, dtype) if want_l else None
    if K is None:
        K = alloc.view(1, np.int64)
    runtime.launch(kern, runtime.blocks_rowwise(N), TPB, stream,
                   *args_for(A, B, Cm, K, YL, CW, SW, ws, params, gscale, rows,
                             None if outv is None else outv[1], gA, gB, gC, nan_bad, dtype,
                             wtot if mode == 2 else None, pw, gH))
    res = alloc.view(3, np.float64)
    native, value = alloc.empty(1, dtype)
    runtime.launch(finish_kernel, 1, TPB, stream, rows, mode, 1.0, float(wsum),
                   res if wtot is None else wtot, wtot is not None, bool(nan_bad), res, value)
    return res, native, outv
