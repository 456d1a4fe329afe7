"""CUDA kernels of the CTC loss: module-level templates, one cacheable copy per dtype.

* ``lse``: one block per frame (n, t), threads over the classes; float64 max and sum
  reductions in shared memory give the frame's log-sum-exp (0 with ``log_probs``).
* ``ab``: one block per sequence, threads over the S' = 2L + 1 extended states,
  ``cuda.syncthreads()`` per time step; α and β (emission included) in float64 log space,
  O(T·S') each, with ``logaddexp3`` from :mod:`fastloss._math.ctc`.  Log space keeps
  every feasible alignment finite, however large its loss (no underflow to −inf).
* ``grad``: one block per frame (n, t): threads over the states compute the posteriors
  γ_t(s) (stored over α_t(s), read by no other block), threads over the classes write the
  scaled softmax (or 0 with ``log_probs``); then each class that labels a state is written
  once more by one thread: the blank's by the thread of state 0 (Σ over the even states, a
  fixed shared-memory tree), a label class's by the thread of its first label state (its
  states summed in state order).  No atomics: the gradient is bitwise reproducible.
* ``ctc_finish``: one block: per-sequence losses (``zero_infinity``, weights, division by
  the label length for ``"mean"``) and their sum in a fixed order, on the device; with
  device-side label checks (``use_cnt``) Σw comes from device memory and their counts are
  copied into the result (any count above 0 makes the value NaN).

:func:`fastloss._cuda.build.cuda_kernel` binds ``logaddexp3``, ``logaddexp`` (the cuda
math namespace) and ``CAST`` (the gradient dtype) under stable names.
"""
import math

import numpy as np
from numba import cuda, float32, float64  # module globals: the simulator swaps `cuda` here

from . import runtime
from .build import cuda_kernel
from .reduce import tree_max, tree_sum

TPB = runtime.TPB
NEG_INF = float("-inf")
logaddexp3 = None   # bound: the cuda math namespace's
logaddexp = None
CAST = None         # bound: numba.float32 / numba.float64


@cuda.jit(device=True)
def emit(x, tnc, lse, ext, n, t, s):
    k = ext[n, s]
    v = x[t, n, k] if tnc else x[n, t, k]
    return float64(v) - lse[n, t]


def lse_template(x, tnc, log_probs, in_len, lse):
    T = lse.shape[1]
    i = cuda.blockIdx.x
    n = i // T
    t = i - n * T
    if t >= in_len[n]:
        return
    C = x.shape[2]
    tid = cuda.threadIdx.x
    if log_probs:   # the inputs are log-probabilities already: lse = 0
        if tid == 0:
            lse[n, t] = 0.0
        return
    sm = cuda.shared.array((1, TPB), float64)
    m = NEG_INF
    for k in range(tid, C, TPB):
        v = float64(x[t, n, k] if tnc else x[n, t, k])
        m = v if v > m else m
    sm[0, tid] = m
    tree_max(sm, tid)
    mx = sm[0, 0]
    cuda.syncthreads()
    s = 0.0
    for k in range(tid, C, TPB):
        v = float64(x[t, n, k] if tnc else x[n, t, k])
        s += math.exp(v - mx)
    sm[0, tid] = s
    tree_sum(sm, tid)
    if tid == 0:
        lse[n, t] = mx + math.log(sm[0, 0])


def ab_template(x, tnc, lse, ext, skipok, in_len, lab_len, alpha, beta, logp, want_grad):
    n = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    Tn = in_len[n]
    sn = 2 * lab_len[n] + 1
    if lab_len[n] < 0:   # set by the device-side label checks: −1 infeasible (more labels
        if tid == 0:     # than frames), −2 invalid
            logp[n] = NEG_INF if lab_len[n] == -1 else math.nan
        return
    if Tn == 0:
        if tid == 0:
            logp[n] = 0.0 if sn == 1 else NEG_INF
        return
    for s in range(tid, sn, TPB):
        alpha[n, 0, s] = emit(x, tnc, lse, ext, n, 0, s) if s < 2 else NEG_INF
    cuda.syncthreads()
    for t in range(1, Tn):
        for s in range(tid, sn, TPB):
            a0 = alpha[n, t - 1, s]
            a1 = alpha[n, t - 1, s - 1] if s >= 1 else NEG_INF
            a2 = alpha[n, t - 1, s - 2] if (s >= 2 and skipok[n, s]) else NEG_INF
            alpha[n, t, s] = logaddexp3(a0, a1, a2) + emit(x, tnc, lse, ext, n, t, s)
        cuda.syncthreads()
    if tid == 0:
        last = alpha[n, Tn - 1, sn - 1]
        prev = alpha[n, Tn - 1, sn - 2] if sn > 1 else NEG_INF
        logp[n] = logaddexp(last, prev)
    if want_grad:
        for s in range(tid, sn, TPB):
            beta[n, Tn - 1, s] = (emit(x, tnc, lse, ext, n, Tn - 1, s) if s >= sn - 2
                                  else NEG_INF)
        cuda.syncthreads()
        for t in range(Tn - 2, -1, -1):
            for s in range(tid, sn, TPB):
                b0 = beta[n, t + 1, s]
                b1 = beta[n, t + 1, s + 1] if s + 1 < sn else NEG_INF
                b2 = beta[n, t + 1, s + 2] if (s + 2 < sn and skipok[n, s + 2]) else NEG_INF
                beta[n, t, s] = logaddexp3(b0, b1, b2) + emit(x, tnc, lse, ext, n, t, s)
            cuda.syncthreads()


def grad_template(x, tnc, log_probs, lse, ext, in_len, lab_len, alpha, beta, logp, scale,
                grad):
    sh = cuda.shared.array((1, TPB), float64)
    T = lse.shape[1]
    i = cuda.blockIdx.x
    n = i // T
    t = i - n * T
    C = x.shape[2]
    tid = cuda.threadIdx.x
    lp = logp[n]
    if t >= in_len[n] or lp == NEG_INF or lp != lp:
        fill = 0.0 if lp == lp else math.nan
        if t >= in_len[n]:
            fill = 0.0
        for k in range(tid, C, TPB):
            if tnc:
                grad[t, n, k] = fill
            else:
                grad[n, t, k] = fill
        return
    sc = scale[n]
    ls = lse[n, t]
    sn = 2 * lab_len[n] + 1
    # posteriors γ_t(s) overwrite α_t(s): this block is the only reader of α[n, t, :]
    bsum = 0.0
    for s in range(tid, sn, TPB):
        em = emit(x, tnc, lse, ext, n, t, s)
        # a state whose emission is -inf has no path through it: γ = 0 (not -inf - -inf)
        gam = 0.0 if em == NEG_INF else math.exp(alpha[n, t, s] + beta[n, t, s] - em - lp)
        alpha[n, t, s] = gam
        if s % 2 == 0:
            bsum += gam
    for k in range(tid, C, TPB):
        v = 0.0
        if not log_probs:
            v = sc * math.exp(float64(x[t, n, k] if tnc else x[n, t, k]) - ls)
        if tnc:
            grad[t, n, k] = v
        else:
            grad[n, t, k] = v
    sh[0, tid] = bsum
    tree_sum(sh, tid)   # (synchronizes: γ and the softmax terms are all written)
    # each class of the labels is finished by one thread, in a fixed order: the thread of
    # its first label state sums the posteriors of all its states (no float atomics)
    for s in range(tid, sn, TPB):
        if s == 0 or s % 2 == 1:
            k = ext[n, s]
            acc = 0.0
            if s == 0:
                acc = sh[0, 0]          # the blank: every even state
            else:
                first = True
                for s2 in range(1, s, 2):
                    if ext[n, s2] == k:
                        first = False
                        break
                if first:
                    for s2 in range(s, sn, 2):
                        if ext[n, s2] == k:
                            acc += alpha[n, t, s2]
                else:
                    k = -1
            if k >= 0:
                v = 0.0
                if not log_probs:
                    v = math.exp(float64(x[t, n, k] if tnc else x[n, t, k]) - ls)
                if tnc:
                    grad[t, n, k] = CAST(sc * v - sc * acc)
                else:
                    grad[n, t, k] = CAST(sc * v - sc * acc)


def finish_template(logp, w, has_w, lab_len, zero_inf, mode, wsum, cnt, use_cnt, want_l,
                    res, outv, value):
    sh = cuda.shared.array((1, TPB), float64)
    tid = cuda.threadIdx.x
    N = logp.shape[0]
    s = 0.0
    n = tid
    while n < N:
        v = -logp[n]
        if zero_inf and v == math.inf:
            v = 0.0
        if has_w:
            wn = float64(w[n])
            v = 0.0 if wn == 0 else wn * v
        if want_l:
            outv[n] = v
        if mode == 3:
            v = v / max(lab_len[n], 1)
        s += v
        n += TPB
    sh[0, tid] = s
    tree_sum(sh, tid)
    if tid == 0:
        r = sh[0, 0]
        den = wsum
        bad = 0.0
        if use_cnt:   # Σw and the counts of the device-side label checks
            den = cnt[0]
            for j in range(1, 6):
                res[j] = cnt[j]
                bad += cnt[j]
        else:
            for j in range(1, 6):
                res[j] = 0.0
        if mode >= 2:
            r = r / den if den > 0 else math.nan
        if bad > 0:
            r = math.nan
        res[0] = r
        value[0] = r


MODES = {"none": 0, "sum": 1, "mean_batch": 2, "mean": 3}


def kernels_for(ns, dtype):
    """(lse, ab, grad, finish) kernels for one dtype (``ns``: the cuda CTC namespace)."""
    f32 = np.dtype(dtype) == np.float32
    tag = "f32" if f32 else "f64"
    bind = {"logaddexp3": ns["logaddexp3"], "logaddexp": ns["logaddexp"],
            "CAST": float32 if f32 else float64}
    return tuple(cuda_kernel(t, tag, bind) for t in
                 (lse_template, ab_template, grad_template, finish_template))


def ctc_args(x, tnc, log_probs, ext, skipok, in_len, lab_len, scale, grad, w, zero_inf,
             reduction, wsum, lse, alpha, beta, logp, res, outv, value, N, cnt=None,
             lab_true=None):
    """The argument tuples of the four kernels (also what :mod:`fastloss._cuda.ptx` types)."""
    tnc, log_probs = bool(tnc), bool(log_probs)
    return ((x, tnc, log_probs, in_len, lse),
            (x, tnc, lse, ext, skipok, in_len, lab_len, alpha, beta, logp, grad is not None),
            (x, tnc, log_probs, lse, ext, in_len, lab_len, alpha, beta, logp, scale,
             x if grad is None else grad),
            (logp[:N], logp if w is None else w, w is not None,
             lab_len if lab_true is None else lab_true, bool(zero_inf), MODES[reduction],
             float(wsum), res if cnt is None else cnt, cnt is not None, outv is not None,
             res, logp if outv is None else outv, value))


def launch_ctc(ns, alloc, stream, dtype, x, tnc, log_probs, ext, skipok, in_len, lab_len,
               scale, grad, w, zero_inf, reduction, wsum, cnt=None, lab_true=None):
    """Run the CTC kernels on device arrays, all on ``stream``.

    ``grad`` (a device array shaped like ``x``, or None) receives the scaled gradient.
    ``cnt``/``lab_true`` (or None): Σw and the counts of the device-side label checks, and
    the label lengths of the division of ``"mean"``
    (:func:`fastloss._cuda.labels.ctc_prepare`); ``lab_len`` may then hold −1 for an
    infeasible sequence.
    Returns ``(res, value, outv)``: float64 (reduced value, the five counts of ``cnt`` or
    zeros) as a 6-element device array,
    the same as ``dtype`` (native kind), and the per-sequence weighted losses (native,
    ``dtype``) for ``reduction="none"`` (else None).
    """
    lse_k, ab_k, grad_k, fin_k = kernels_for(ns, dtype)
    if tnc:
        T, N = x.shape[0], x.shape[1]
    else:
        N, T = x.shape[0], x.shape[1]
    smax = ext.shape[1]
    launch = runtime.launch
    res = alloc.view(6, np.float64)
    native, value = alloc.empty(1, dtype)
    outv = alloc.empty(max(N, 1), dtype) if reduction == "none" else None
    logp = alloc.view(max(N, 1), np.float64)
    lse = alloc.view((max(N, 1), max(T, 1)), np.float64)
    alpha = alloc.view((max(N, 1), max(T, 1), smax), np.float64)
    beta = alloc.view((max(N, 1), max(T, 1), smax) if grad is not None else (1, 1, 1),
                      np.float64)
    args = ctc_args(x, tnc, log_probs, ext, skipok, in_len, lab_len, scale, grad, w, zero_inf,
                    reduction, wsum, lse, alpha, beta, logp, res,
                    None if outv is None else outv[1], value, N, cnt, lab_true)
    if N:
        if T > 0:
            launch(lse_k, N * T, TPB, stream, *args[0])
        launch(ab_k, N, TPB, stream, *args[1])
        if grad is not None and T > 0:
            launch(grad_k, N * T, TPB, stream, *args[2])
    launch(fin_k, 1, TPB, stream, *args[3])
    return res, native, outv
