"""CPU kernel of the CTC loss: log_softmax, forward–backward and gradient in one call.

``ctc_kernel`` is a template: :func:`fastloss._compile.cpu_kernel` copies it with the
globals ``lse3`` (``logaddexp3``) and ``exp_fn`` bound to the compiled scalar math of
:mod:`fastloss._math.ctc` for one dtype, so it is cacheable across processes.

Three parallel phases, so that the per-frame work uses every core even for a batch of one:

1. over all frames (n, t): the float64 log-sum-exp of the logits (skipped with
   ``log_probs``) and the emission log-probabilities ``E[n, t, s] = lp_t(l'_s)`` of the
   extended label sequence l' = blank, l1, blank, …, blank;
2. over sequences n: α forward and β backward in log space.  Each time step's row is
   renormalized by its maximum, the offsets accumulated in float64 (``A``, ``B``), so that
   float32 rows stay accurate for long sequences.  The loops over the states are branch-free
   and vectorize (float32 polynomial ``exp``/``log``).  β needs only two rows: it is fused
   with the posterior γ_t(s) = exp(α_t(s) + β_t(s) − lp_t(l'_s) − log p(l|x)), which
   overwrites α in place;
3. over all frames (n, t): the gradient row, softmax − Σ_{s: l'_s = k} γ_t(s) (or −γ with
   ``log_probs``), times the sequence's reduction scale; zero past the sequence's length
   and for impossible alignments.

``want_grad`` is a runtime flag (one compiled kernel per dtype serves value-only and
value+gradient calls; compiling is the expensive part).
"""
import math

import numpy as np
from numba import prange

lse3 = None    # bound: logaddexp3 for the compute dtype
exp_fn = None  # bound: the target's exp (vectorizable float32 polynomial on cpu32)

NEG_INF = -np.inf
POS_INF = np.inf


def ctc_kernel(x, tnc, log_probs, ext, skip, in_len, lab_len, scale, losses, want_grad, grad):
    """Per-sequence −log p(l|x) into ``losses`` (float64); gradient rows into ``grad``.

    x: (N, T, C), or (T, N, C) when ``tnc``; ext: (N, Smax) extended labels (int64);
    skip: (N, Smax + 2) additive skip-transition mask into state s (0 or −inf, −inf past
    the sequence's states); in_len, lab_len: (N,) int64; scale: (N,) float64 gradient
    factor of each sequence; grad: like x (written only when ``want_grad``; any 3-D
    array of the dtype otherwise).
    """
    if tnc:
        T = x.shape[0]
        N = x.shape[1]
    else:
        N = x.shape[0]
        T = x.shape[1]
    C = x.shape[2]
    smax = ext.shape[1]
    lse = np.zeros((N, T))
    E = np.empty((N, T, smax), x.dtype)
    al = np.empty((N, T, smax + 2), x.dtype)
    A = np.zeros((N, T))
    zero = np.zeros(1, x.dtype)[0]

    # -- phase 1: log-sum-exp per frame, emission log-probabilities of the states
    for i in prange(N * T):
        n = i // T
        t = i - n * T
        if t < in_len[n]:
            row = x[t, n] if tnc else x[n, t]
            l = 0.0
            if not log_probs:
                m = row[0]
                for k in range(1, C):
                    v = row[k]
                    m = v if v > m else m
                acc = 0.0
                for k in range(C):
                    acc += exp_fn(row[k] - m)
                l = m + math.log(acc)
                lse[n, t] = l
            sn = min(2 * lab_len[n] + 1, smax)  # the bound lets LLVM vectorize
            e = E[n, t]
            for j in range(sn):
                e[j] = row[ext[n, j]] - l

    # -- phase 2: forward (α), then backward (β) fused with the posteriors γ
    for n in prange(N):
        Tn = in_len[n]
        sn = min(2 * lab_len[n] + 1, smax)  # the bound lets LLVM vectorize
        if Tn == 0:
            losses[n] = 0.0 if sn == 1 else POS_INF
            continue
        a = al[n]
        sk = skip[n]
        # the recursion runs on two private rows (rows of one array would alias and keep
        # LLVM from vectorizing); each normalized row is also stored for the backward pass
        prv = np.empty(smax + 2, x.dtype)
        cur = np.empty(smax + 2, x.dtype)
        for s in range(smax + 2):
            prv[s] = NEG_INF
            cur[s] = NEG_INF
        prv[2] = E[n, 0, 0]
        mx = prv[2]
        if sn > 1:
            prv[3] = E[n, 0, 1]
            mx = prv[3] if prv[3] > mx else mx
        if mx > NEG_INF:
            prv[2] -= mx
            if sn > 1:
                prv[3] -= mx
            A[n, 0] = mx
        r = a[0]
        for s in range(sn + 2):
            r[s] = prv[s]
        for t in range(1, Tn):
            e = E[n, t]
            for s in range(sn):
                cur[s + 2] = lse3(prv[s + 2], prv[s + 1], prv[s] + sk[s]) + e[s]
            mx = cur[2]
            for s in range(1, sn):
                v = cur[s + 2]
                mx = v if v > mx else mx
            A[n, t] = A[n, t - 1]
            if mx > NEG_INF:
                A[n, t] += mx
            else:
                mx = zero
            r = a[t]
            for s in range(sn + 2):
                v = cur[s] - mx
                cur[s] = v
                r[s] = v
            prv, cur = cur, prv
        fin = a[Tn - 1]
        lp = A[n, Tn - 1] + math.log(math.exp(np.float64(fin[sn + 1]))
                                     + math.exp(np.float64(fin[sn])))
        losses[n] = -lp
        if want_grad and math.isfinite(lp):
            bn = np.empty(smax + 2, x.dtype)
            bc = np.empty(smax + 2, x.dtype)
            t = Tn - 1
            for s in range(smax + 2):
                bn[s] = NEG_INF
            e = E[n, t]
            bn[sn - 1] = e[sn - 1]
            mb = bn[sn - 1]
            if sn > 1:
                bn[sn - 2] = e[sn - 2]
                mb = bn[sn - 2] if bn[sn - 2] > mb else mb
            B = 0.0
            if mb > NEG_INF:
                bn[sn - 1] -= mb
                if sn > 1:
                    bn[sn - 2] -= mb
                B = np.float64(mb)
            off = A[n, t] + B - lp
            r = a[t]
            for s in range(sn):
                r[s + 2] = exp_fn(r[s + 2] + bn[s] - e[s] + off)
            for t in range(Tn - 2, -1, -1):
                e = E[n, t]
                for s in range(sn):
                    bc[s] = lse3(bn[s], bn[s + 1], bn[s + 2] + sk[s + 2]) + e[s]
                bc[sn] = NEG_INF
                bc[sn + 1] = NEG_INF
                mb = bc[0]
                for s in range(1, sn):
                    v = bc[s]
                    mb = v if v > mb else mb
                if mb > NEG_INF:
                    for s in range(sn):
                        bc[s] -= mb
                    B += mb
                off = A[n, t] + B - lp
                r = a[t]
                for s in range(sn):
                    r[s + 2] = exp_fn(r[s + 2] + bc[s] - e[s] + off)
                bn, bc = bc, bn

    # -- phase 3: gradient rows
    if want_grad:
        for i in prange(N * T):
            n = i // T
            t = i - n * T
            g = grad[t, n] if tnc else grad[n, t]
            ln = losses[n]
            if t >= in_len[n] or ln == POS_INF:
                for k in range(C):
                    g[k] = 0.0
            elif ln != ln:
                for k in range(C):
                    g[k] = np.nan
            else:
                sc = scale[n]
                if log_probs:
                    for k in range(C):
                        g[k] = 0.0
                else:
                    row = x[t, n] if tnc else x[n, t]
                    l = lse[n, t]
                    for k in range(C):
                        g[k] = sc * exp_fn(row[k] - l)
                sn = min(2 * lab_len[n] + 1, smax)  # the bound lets LLVM vectorize
                gm = al[n, t]
                for s in range(sn):
                    c = ext[n, s]
                    g[c] -= sc * gm[s + 2]
    return 0
