"""CPU kernel of the CTC loss: log_softmax, forward–backward and gradient in one call.

``ctc_kernel`` is a template: :func:`fastloss._compile.cpu_kernel` copies it with the
globals ``lse3`` (``logaddexp3``), ``exp_fn`` and the helpers below bound to the compiled
scalar math of :mod:`fastloss._math.ctc` for one dtype, so it is cacheable across processes.

Three parallel phases, so that the per-frame work uses every core even for a batch of one:

1. over all frames (n, t): the softmax of the logits (skipped with ``log_probs``): the row
   max m, e^(x − m) (stored in the gradient buffer when a gradient is wanted), their float64
   sum and the log-sum-exp; and the emission probabilities of the extended label sequence
   l' = blank, l1, blank, …, blank, scaled by the frame's largest one (offset M_t kept in
   float64): ŷ_t(s) = p_t(l'_s) / e^(M_t);
2. over sequences n: α forward and β backward **in probability space, float64**, each
   frame's row renormalized to sum 1 with the log of the factor accumulated in float64
   (Rabiner's scaling): a state costs two additions and a multiplication, where log space
   costs three exponentials and a logarithm.  The posteriors
   γ_t(s) = α⁻_t(s) β_t(s) / p(l|x) (α⁻: α before the emission at t) overwrite ŷ;
3. over all frames (n, t): the gradient row, softmax − Σ_{s: l'_s = k} γ_t(s) (or −γ with
   ``log_probs``), times the sequence's reduction scale; zero past the sequence's length
   and for impossible alignments.

**Exactness guard.** Probability space is exact up to rounding as long as nothing that is
non-zero in exact arithmetic flushes to zero.  Phase 1 flags a frame whose emission
probability of a used symbol lies below e^LO (LO = −87) times the frame's largest, phase 2
flags any product α⁻·ŷ (or its β counterpart) of positive factors that falls below
``TINY`` = 1e-280 of its row (float64 reaches 2.2e-308), and checks Σ_s γ_t(s) = 1 on every
frame.  A flagged sequence is recomputed by the log-space recursion (``_logspace``:
float64 rows renormalized by their maximum, offsets in float64, the final log-likelihood
and every γ formed from logarithms), which has no such limit: any finite −log p, however
large, comes out finite, and ``inf`` means that no alignment exists.  Extreme logits (gaps
of more than 87 nats between the classes a sequence uses) and paths that fall more than
~645 nats below their frame's best state take that slower path.  Zeros that are exact
(impossible alignments, −inf log-probabilities) are not flagged: a row that sums to
exactly 0 means p(l|x) = 0.

``want_grad`` is a runtime flag (one compiled kernel per dtype serves value-only and
value+gradient calls; compiling is the expensive part).

**Compile cost.** The log-space path is a kernel of its own, ``ctc_logspace_kernel``:
``ctc_kernel`` marks the sequences it cannot take in ``lg`` and leaves their loss and
gradient rows to it, and the runner launches it only when a sequence is marked.  Most
programs never compile it (it cost about half of ``ctc_kernel``'s compile time, twice in
the parallel kernel, where the parfor typing saw the sequence index once as int64 and once
as uint64).  Each sequence is computed by the same code either way: the results do not
depend on the split.
"""
import math

import numpy as np
from numba import prange

from .rowwise import maxnum

lse3 = None    # bound: logaddexp3 for the compute dtype
exp_fn = None  # bound: the target's exp (vectorizable float32 polynomial on cpu32), 0 below e^LO
prob_alpha = None   # bound: the helpers below, compiled with the bound globals
prob_beta = None
logspace = None

NEG_INF = -np.inf
POS_INF = np.inf
LO = -87.0          # as fastloss._math.ctc.LO: exp_fn flushes arguments below it to 0
TINY = 1e-280       # probability-space values below this (relative to their row) are flagged
GAMMA_TOL = 1e-6    # |Σ_s γ_t(s) − 1| above this sends the sequence to log space
BLK = 256           # phase-1 sums: dtype lanes within a block, float64 across blocks


def ctc_kernel(x, tnc, log_probs, ext, skip, skipm, in_len, lab_len, scale, losses,
               want_grad, grad, Ep, PS, fr, flg, use_prob, lg):
    """Per-sequence −log p(l|x) into ``losses`` (float64); gradient rows into ``grad``.

    Sequences the probability-space path cannot take get ``lg[n] = 1`` (``lg``: (N,)
    uint8, written for every sequence) and are left to :func:`ctc_logspace_kernel`: their
    ``losses`` entry and gradient rows are not written here, their softmax (``fr``) and
    stored exponentials (``grad``) are.

    x: (N, T, C), or (T, N, C) when ``tnc``; ext: (N, Smax) extended labels (int64);
    skip: (N, Smax + 2) additive skip-transition mask into state s (0 or −inf);
    skipm: the same as a float64 factor (1 or 0); in_len, lab_len: (N,) int64;
    scale: (N,) float64 gradient factor of each sequence; grad: like x (written only when
    ``want_grad``; any 3-D array of the dtype otherwise); ``use_prob`` False forces the
    log-space path (for tests).  Workspace (contents ignored):
    Ep (N, T, Smax) dtype, PS (N, T, Smax) float64 (α of either path), fr (N, T, 4)
    float64, flg (N, T) float64.
    """
    if tnc:
        T = x.shape[0]
        N = x.shape[1]
    else:
        N = x.shape[0]
        T = x.shape[1]
    C = x.shape[2]
    smax = ext.shape[1]
    gather = want_grad and not log_probs  # ŷ read from the stored e^(x − m)
    z0 = np.zeros(1, x.dtype)[0]

    # -- phase 1: softmax of each frame, scaled emission probabilities of the states
    for i in prange(N * T):
        n = i // T
        t = i - n * T
        if t < in_len[n]:
            row = x[t, n] if tnc else x[n, t]
            sn = min(2 * lab_len[n] + 1, smax)  # the bound lets LLVM vectorize
            e = Ep[n, t]
            g = e
            if gather:
                g = grad[t, n] if tnc else grad[n, t]
            f = fr[n, t]
            l = 0.0
            if not log_probs:
                m = row[0]
                for k in range(1, C):
                    m = maxnum(m, row[k])
                acc = 0.0
                for k0 in range(0, C, BLK):
                    part = z0
                    if gather:
                        for k in range(k0, min(k0 + BLK, C)):
                            v = exp_fn(row[k] - m)
                            g[k] = v
                            part += v
                    else:
                        for k in range(k0, min(k0 + BLK, C)):
                            part += exp_fn(row[k] - m)
                    acc += part
                l = m + math.log(acc)
                f[0] = l
                f[1] = 1.0 / acc
            bad = 0.0
            if gather:
                # ŷ_t(s) = e^(x_k − m): the offset is M_t = m − lse (log of the largest p_t)
                for j in range(sn):
                    k = ext[n, j]
                    v = g[k]
                    e[j] = v
                    bad += 1.0 if (v == 0 and row[k] > NEG_INF) else 0.0
                f[2] = m - l
            else:
                M = NEG_INF
                for j in range(sn):
                    v = row[ext[n, j]] - l
                    e[j] = v
                    M = maxnum(M, v)
                M = M if M > NEG_INF else 0.0  # all −inf: every ŷ is 0 (p = 0, exactly)
                for j in range(sn):
                    lp = e[j]
                    d = lp - M
                    bad += 1.0 if (d < LO and lp > NEG_INF) else 0.0
                    e[j] = exp_fn(d)
                f[2] = M
            flg[n, t] = bad

    # -- phase 2: α and β in probability space; marks the sequences it cannot take
    for n in prange(N):
        lg[n] = 0
        Tn = in_len[n]
        sn = min(2 * lab_len[n] + 1, smax)
        if Tn == 0:
            losses[n] = 0.0 if sn == 1 else POS_INF
            continue
        bad = 0.0
        for t in range(Tn):
            bad += flg[n, t]
        ok = use_prob and bad == 0
        if ok:
            lp, ok = prob_alpha(Ep[n], PS[n], fr[n], skipm[n], Tn, sn)
            if ok:
                losses[n] = -lp
                if want_grad and math.isfinite(lp):
                    ok = prob_beta(Ep[n], PS[n], fr[n], skipm[n], Tn, sn, lp)
        if not ok:
            lg[n] = 1   # log space: ctc_logspace_kernel

    # -- phase 3: gradient rows (of the sequences phase 2 completed)
    if want_grad:
        for i in prange(N * T):
            n = i // T
            t = i - n * T
            g = grad[t, n] if tnc else grad[n, t]
            ln = losses[n]
            if lg[n] != 0:
                pass    # ctc_logspace_kernel writes this row
            elif t >= in_len[n] or ln == POS_INF:
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
                    q = sc * fr[n, t, 1]  # e^(x − m) / Σ e^(x − m), scaled
                    for k in range(C):
                        g[k] = g[k] * q
                sn = min(2 * lab_len[n] + 1, smax)  # the bound lets LLVM vectorize
                gm = Ep[n, t]
                for s in range(sn):
                    c = ext[n, s]
                    g[c] -= sc * gm[s]
    return 0


def ctc_logspace_kernel(x, tnc, log_probs, ext, skip, in_len, lab_len, scale, losses,
                        want_grad, grad, Ep, PS, fr, idx):
    """The sequences ``idx`` (int64) that :func:`ctc_kernel` marked, in log space: their
    ``losses`` entry and (``want_grad``) their gradient rows, by the code ``ctc_kernel``'s
    phase 3 runs for the others, on the state it left (``fr``, the exponentials in ``grad``).
    Arguments as :func:`ctc_kernel`'s."""
    if tnc:
        T = x.shape[0]
    else:
        T = x.shape[1]
    C = x.shape[2]
    smax = ext.shape[1]
    for j in prange(idx.shape[0]):
        n = idx[j]
        Tn = in_len[n]
        sn = min(2 * lab_len[n] + 1, smax)
        ln = logspace(x, tnc, log_probs, ext[n], skip[n], fr[n], n, Tn, sn, want_grad,
                      Ep[n], PS[n])
        losses[n] = ln
        if want_grad:
            sc = scale[n]
            for t in range(T):
                g = grad[t, n] if tnc else grad[n, t]
                if t >= Tn or ln == POS_INF:
                    for k in range(C):
                        g[k] = 0.0
                elif ln != ln:
                    for k in range(C):
                        g[k] = np.nan
                else:
                    if log_probs:
                        for k in range(C):
                            g[k] = 0.0
                    else:
                        q = sc * fr[n, t, 1]  # e^(x − m) / Σ e^(x − m), scaled
                        for k in range(C):
                            g[k] = g[k] * q
                    gm = Ep[n, t]
                    for s in range(sn):
                        c = ext[n, s]
                        g[c] -= sc * gm[s]
    return 0


def _prob_alpha(Ep, PS, fr, sm, Tn, sn):
    """Forward pass of one sequence: (log p(l|x), ok).

    Ep: (T, Smax) scaled emissions ŷ; PS: (T, Smax) float64, receives α⁻_t (α before the
    emission at t, relative to the row offset fr[t, 3]); fr[t, 2] = M_t, the emission
    offset; sm: (Smax + 2,) skip factors.  ok is False when a value underflowed (see the
    module docstring); log p is −inf when a row sums to exactly 0 (impossible alignment)
    and NaN for NaN input.
    """
    smax = PS.shape[1]
    pa = np.zeros(smax + 2)  # α̂_{t−1}, two zero pads in front: pa[s + 2] is state s
    cu = np.zeros(smax + 2)
    ps = PS[0]
    e = Ep[0]
    c = 0.0
    bad = 0.0
    for s in range(sn):
        p = 1.0 if s < 2 else 0.0
        ps[s] = p
        r = p * e[s]
        pa[s + 2] = r
        c += r
    A = 0.0
    fr[0, 3] = 0.0
    for t in range(Tn):
        if t > 0:
            ps = PS[t]
            e = Ep[t]
            c = 0.0
            live = sn - 2 - 2 * (Tn - 1 - t)  # states below cannot reach the end
            for s in range(sn):
                p = pa[s + 2] + pa[s + 1] + sm[s] * pa[s]
                ps[s] = p
                r = p * e[s]
                small = r < TINY
                bad += 1.0 if (small and p > 0 and e[s] > 0 and s >= live) else 0.0
                r = r * 0 if small else r  # flushed: no denormals
                cu[s + 2] = r
                c += r
            if bad > 0:
                return 0.0, False
            pa, cu = cu, pa
        fr[t, 3] = A
        if not (c > 0):  # exactly 0: no alignment; NaN: NaN input
            return (NEG_INF if c == 0 else c), True
        A += fr[t, 2] + math.log(c)
        inv = 1.0 / c
        for s in range(sn):
            pa[s + 2] *= inv
    fin = pa[sn + 1] + pa[sn]  # the last label or the final blank (pa[1] = 0 when sn = 1)
    if not (fin > 0):
        return (NEG_INF if fin == 0 else fin), True
    return A + math.log(fin), True


def _prob_beta(Ep, PS, fr, sm, Tn, sn, lp):
    """Backward pass of one sequence, fused with the posteriors γ, written over ``Ep``.

    Returns False when a value underflowed or Σ_s γ_t(s) strayed from 1 (log space then).
    """
    smax = PS.shape[1]
    pb = np.zeros(smax + 2)  # β̂_{t+1}, two zero pads behind: pb[s] is state s
    pc = np.zeros(smax + 2)
    bad = 0.0
    B = 0.0
    for t in range(Tn - 1, -1, -1):
        e = Ep[t]
        c = 0.0
        if t == Tn - 1:
            for s in range(sn):
                r = e[s] if s >= sn - 2 else 0.0 * e[s]
                pc[s] = r
                c += r
        else:
            reach = 2 * t + 1  # states above cannot be reached from the start
            for s in range(sn):
                q = pb[s] + pb[s + 1] + sm[s + 2] * pb[s + 2]
                r = q * e[s]
                small = r < TINY
                bad += 1.0 if (small and q > 0 and e[s] > 0 and s <= reach) else 0.0
                r = r * 0 if small else r  # flushed: no denormals
                pc[s] = r
                c += r
        if not (c > 0) or bad > 0:
            return False
        B += fr[t, 2] + math.log(c)
        inv = 1.0 / c
        # γ_t(s) = α⁻_t(s) β_t(s) / p = PS_t(s) · β̂_t(s) · e^(A_{t−1} + B_t − log p)
        k = math.exp(fr[t, 3] + B - lp) * inv
        ps = PS[t]
        gs = 0.0
        for s in range(sn):
            v = pc[s]
            pb[s] = v * inv
            gm = ps[s] * v * k
            e[s] = gm
            gs += gm
        if not (abs(gs - 1.0) <= GAMMA_TOL):  # NaN too
            return False
    return True


def _logspace(x, tnc, log_probs, ext, sk, fr, n, Tn, sn, want_grad, gam, al):
    """−log p(l|x) of sequence n in log space (and γ into ``gam`` when ``want_grad``).

    Rows of α (kept in ``al``, (T, Smax) float64) and β in float64 for both dtypes,
    renormalized by their maximum per frame, the offsets accumulated in float64; β needs
    only two rows and is fused with γ.  The log emissions are gathered per frame.  Only the
    transcendentals of ``lse3``/``exp_fn`` run in the dtype (the float32 polynomials on
    float32): they see differences of at most 87 nats and sums in [1, 3], where float32 is
    accurate to ~1e-7 nats, whereas a row kept in float32 holds a value thousands of nats
    below its maximum only to ulp(value) (1e-3 nats at 1e4), an error γ = e^(α + β − …)
    inherited (gradient errors of 1e-3 were measured with logits of scale 1e3).

    The final log-likelihood, log p = A + log(e^a + e^b) with a and b the last label and
    the final blank relative to the row maximum, is formed in log space: a final state can
    lie any distance below a state that cannot finish (e^a underflows past 745 nats).
    """
    smax = ext.shape[0]
    A = np.zeros(Tn)
    e = np.empty(smax)              # log emission probabilities of frame t
    prv = np.empty(smax + 2)        # α rows with two −inf pads in front: prv[s + 2] is s
    cur = np.empty(smax + 2)
    for s in range(smax + 2):
        prv[s] = NEG_INF
        cur[s] = NEG_INF
    row = x[0, n] if tnc else x[n, 0]
    l = 0.0 if log_probs else fr[0, 0]
    prv[2] = row[ext[0]] - l
    mx = prv[2]
    if sn > 1:
        prv[3] = row[ext[1]] - l
        mx = prv[3] if prv[3] > mx else mx
    if mx > NEG_INF:
        prv[2] -= mx
        if sn > 1:
            prv[3] -= mx
        A[0] = mx
    r = al[0]
    for s in range(sn):
        r[s] = prv[s + 2]
    for t in range(1, Tn):
        row = x[t, n] if tnc else x[n, t]
        l = 0.0 if log_probs else fr[t, 0]
        for j in range(sn):
            e[j] = row[ext[j]] - l
        for s in range(sn):
            cur[s + 2] = lse3(prv[s + 2], prv[s + 1], prv[s] + sk[s]) + e[s]
        mx = cur[2]
        for s in range(1, sn):
            v = cur[s + 2]
            mx = v if v > mx else mx
        A[t] = A[t - 1]
        if mx > NEG_INF:
            A[t] += mx
        else:
            mx = 0.0
        r = al[t]
        for s in range(sn):
            v = cur[s + 2] - mx
            cur[s + 2] = v
            r[s] = v
        prv, cur = cur, prv
    fin = al[Tn - 1]
    fa = fin[sn - 1]
    fb = fin[sn - 2] if sn > 1 else NEG_INF
    fm = fa if fa > fb else fb
    if fa != fa or fb != fb:
        lp = fa + fb  # NaN
    elif fm == NEG_INF:
        lp = NEG_INF  # no alignment
    else:
        lp = A[Tn - 1] + fm + math.log(math.exp(fa - fm) + math.exp(fb - fm))
    if want_grad and math.isfinite(lp):
        bn = np.empty(smax + 2)     # β rows with two −inf pads behind: bn[s] is s
        bc = np.empty(smax + 2)
        for s in range(smax + 2):
            bn[s] = NEG_INF
            bc[s] = NEG_INF
        B = 0.0
        for t in range(Tn - 1, -1, -1):
            row = x[t, n] if tnc else x[n, t]
            l = 0.0 if log_probs else fr[t, 0]
            for j in range(sn):
                e[j] = row[ext[j]] - l
            if t == Tn - 1:
                for s in range(sn):
                    bc[s] = e[s] if s >= sn - 2 else NEG_INF
            else:
                for s in range(sn):
                    bc[s] = lse3(bn[s], bn[s + 1], bn[s + 2] + sk[s + 2]) + e[s]
            mb = bc[0]
            for s in range(1, sn):
                v = bc[s]
                mb = v if v > mb else mb
            if mb > NEG_INF:
                for s in range(sn):
                    bc[s] -= mb
                B += mb
            off = A[t] + B - lp
            r = al[t]
            g = gam[t]
            for s in range(sn):
                # α and β both hold the emission; where it is −inf, γ is 0 (not −inf + inf)
                v = exp_fn(r[s] + bc[s] - e[s] + off)
                g[s] = v if e[s] > NEG_INF else 0.0
            bn, bc = bc, bn
    return -lp


def ctc_forward_kernel(x, log_probs, lab, lab_len, in_len, blank, ab, an):
    """Log forward variables of every sequence (``fastloss.ctc_loss_with_forward_probs``).

    x: (N, T, C) float64 logits (log-probabilities when ``log_probs``); lab: (N, L) int64
    labels (padding ignored); lab_len, in_len: (N,) int64.  Writes, for t < in_len[n],
    ab[t, n, j] = log α_t(2j) (j labels emitted, in the blank after them) for j <= lab_len[n],
    an[t, n, j] = log α_t(2j + 1) (in label j) for j < lab_len[n]; −inf for the states
    past the label length; rows t >= in_len[n] repeat row in_len[n] − 1 (all −inf when
    in_len[n] = 0).  float64 throughout; NaN propagates.
    """
    N = x.shape[0]
    T = x.shape[1]
    C = x.shape[2]
    L = lab.shape[1]
    for n in prange(N):
        Tn = in_len[n]
        Ln = lab_len[n]
        S = 2 * Ln + 1
        prev = np.full(S, NEG_INF)
        cur = np.full(S, NEG_INF)
        lp = np.empty(C)
        for t in range(T):
            if t < Tn:
                row = x[n, t]
                if log_probs:
                    for k in range(C):
                        lp[k] = row[k]
                else:
                    m = row[0]
                    for k in range(1, C):
                        m = maxnum(m, row[k])
                    acc = 0.0
                    for k in range(C):
                        acc += math.exp(row[k] - m)
                    lse = m + math.log(acc)
                    for k in range(C):
                        lp[k] = row[k] - lse
                for s in range(S):
                    k = blank if s % 2 == 0 else lab[n, s // 2]
                    if t == 0:
                        a = 0.0 if s < 2 else NEG_INF
                    else:
                        a = prev[s]
                        if s >= 1:
                            a = _lae(a, prev[s - 1])
                        if s >= 3 and s % 2 == 1 and lab[n, s // 2] != lab[n, s // 2 - 1]:
                            a = _lae(a, prev[s - 2])
                    cur[s] = a + lp[k]
                prev, cur = cur, prev
            for j in range(L + 1):
                ab[t, n, j] = prev[2 * j] if (j <= Ln and Tn > 0) else NEG_INF
            for j in range(L):
                an[t, n, j] = prev[2 * j + 1] if (j < Ln and Tn > 0) else NEG_INF
    return 0


def _lae(a, b):
    """log(e^a + e^b) in float64; −inf when both are −inf; NaN propagates."""
    m = a if a > b else b
    if m == NEG_INF:
        return a + b
    if m != m or a != a or b != b:
        return a + b
    return m + math.log1p(math.exp(-abs(a - b)))
