"""Row math of the metric-learning losses (pairwise over a batch), written once.

Plain Python over arrays and floats, compiled for both targets with the primitives of
:mod:`fastloss._compile` (``exp``/``log``/``log1p`` rebound per target): for the CPU as
plain float64 ``@njit`` functions (:func:`fastloss._metric._cpu_math`; float32 inputs are
widened to float64 before the kernel), for CUDA by :func:`fastloss._compile.namespace`
(``cuda.jit(device=True)``).  Every sum is a float64 accumulator.

The protocol ("pairwise over a batch").  A loss is a sequence of *passes*; a pass runs
:func:`row_pass` for every anchor row ``i`` independently (a ``prange`` on the CPU, one
thread per row on CUDA), so the rows of one pass may run in any order and in parallel.
A row reads the whole batch (the inputs, the per-row statistics of earlier passes) and
writes only its own row of the outputs:

* ``st[i, :]`` — per-row statistics (a log-sum-exp, a norm, a negative count),
* ``loss[i]`` — the anchor's loss term ℓ_i (not yet weighted),
* ``ga[i, :]``, ``gb[i, :]`` — float64 gradient rows with respect to the first and the
  second embedding input, already scaled by the per-row factors ``sc`` (weight over the
  reduction's denominator), so that the gradient of Σ_i sc_i ℓ_i is their sum,
* ``nsel`` (triplet only) — one int32 per positive pair (a, p): the index of the negative
  mined for it (-1: the anchor has no negative, -2: the hinge is inactive), at
  ``off[a] + rank`` (the r-th positive of a in index order);
* ``ws`` — a per-row workspace of 3N float64: the row's N pair terms (distances,
  similarities; the triplet loss's coefficients), and their exponentials, computed in
  loops of their own so that the CPU vectorizes them.

Nothing here allocates, and no N×N array exists: the pair terms are recomputed from the
embeddings (O(D) each) in each pass that needs them.

The passes (``which``, the pass number ``pss``):

* 0 contrastive: 0 (value and gradient of pair i).
* 1 npairs: 0 (row log-sum-exp, value, gradient of anchor i); 1 (gradient of positive j).
* 2 ntxent: 0 (inverse norms); 1 (negative log-sum-exp, value); 2 (gradient).
* 3 triplet_semihard: 0 (mining, value); 1 (gradient).
* 4 lifted_struct: 0 (negative log-sum-exp per row); 1 (value, gradient factor); 2
  (gradient).
* 5 a NaN check: ``loss[i]`` = 1 when row i of either input holds a NaN.
"""
from math import exp, log, log1p, sqrt  # noqa: F401  (exp, log, log1p rebound per target)

import numpy as np

float64 = np.float64
NEG_INF = float("-inf")
POS_INF = float("inf")

# column layout of the per-row statistics st (N, NST)
NST = 6


def sqdist(x, i, y, j):
    """Σ_d (x[i, d] − y[j, d])², accumulated in float64."""
    s = 0.0
    for d in range(x.shape[1]):
        t = float64(x[i, d]) - float64(y[j, d])
        s += t * t
    return s


def dot(x, i, y, j):
    """Σ_d x[i, d]·y[j, d], accumulated in float64."""
    s = 0.0
    for d in range(x.shape[1]):
        s += float64(x[i, d]) * float64(y[j, d])
    return s


def relu(h):
    """max(h, 0), NaN-propagating."""
    return h if not (h < 0.0) else 0.0


def zero_row(g, i):
    for d in range(g.shape[1]):
        g[i, d] = 0.0


def axpy(g, i, c, x, j):
    """g[i, :] += c·x[j, :]."""
    for d in range(g.shape[1]):
        g[i, d] += c * float64(x[j, d])


def combo_add(g, i, c, co, x):
    """g[i, :] += Σ_k c[co + k]·x[k, :] over the N rows of x, four rows per sweep of g[i]
    (a quarter of the loads and stores of g's row)."""
    N = x.shape[0]
    D = x.shape[1]
    k = 0
    while k + 4 <= N:
        c0 = c[co + k]
        c1 = c[co + k + 1]
        c2 = c[co + k + 2]
        c3 = c[co + k + 3]
        for d in range(D):
            g[i, d] += ((c0 * float64(x[k, d]) + c1 * float64(x[k + 1, d]))
                        + (c2 * float64(x[k + 2, d]) + c3 * float64(x[k + 3, d])))
        k += 4
    while k < N:
        axpy(g, i, c[co + k], x, k)
        k += 1


def row_has_nan(x, i):
    for d in range(x.shape[1]):
        v = x[i, d]
        if v != v:
            return 1.0
    return 0.0


# --- 0: contrastive (pairs) ---------------------------------------------------------------

def contrastive_row(i, x, y, flab, sc, prm, loss, ga, gb, wg):
    """ℓ_i = y_i d_i² + (1 − y_i) max(m − d_i, 0)², d_i = ‖a_i − p_i‖."""
    m = prm[0]
    d2 = sqdist(x, i, y, i)
    d = sqrt(d2)
    yl = float64(flab[i])
    h = relu(m - d)
    loss[i] = yl * d2 + (1.0 - yl) * h * h
    if wg:
        c = 2.0 * yl
        if d > 0.0:                # (d = 0: the hinge's subgradient 0)
            c -= 2.0 * (1.0 - yl) * h / d
        c *= sc[i]
        for k in range(x.shape[1]):
            t = c * (float64(x[i, k]) - float64(y[i, k]))
            ga[i, k] = t
            gb[i, k] = -t


# --- 1: npairs (anchors × positives softmax) ----------------------------------------------

def npairs_anchor(i, x, y, lab, sc, prm, st, loss, ga, ws, wg):
    """Row i of S = A Pᵀ: ℓ_i = lse_j S_ij − Σ_j t_ij S_ij + λ/4 (‖a_i‖² + ‖p_i‖²),
    t_ij = [y_i = y_j] / #{j: y_j = y_i}; gradient w.r.t. a_i.  ws[:N] holds the row."""
    N = y.shape[0]
    lam = prm[0]
    m = NEG_INF
    for j in range(N):
        v = dot(x, i, y, j)
        ws[j] = v
        m = v if v > m else m
    s = 0.0
    for j in range(N):            # (a loop of its own: the exponentials vectorize)
        s += exp(ws[j] - m)
    tsum = 0.0
    cnt = 0.0
    for j in range(N):
        if lab[j] == lab[i]:
            tsum += ws[j]
            cnt += 1.0
    lse = m + log(s)
    st[i, 0] = lse
    st[i, 1] = cnt
    loss[i] = lse - tsum / cnt + 0.25 * lam * (dot(x, i, x, i) + dot(y, i, y, i))
    if wg:
        for j in range(N):
            ws[j] = exp(ws[j] - lse)
        for j in range(N):
            c = ws[j]
            if lab[j] == lab[i]:
                c -= 1.0 / cnt
            ws[j] = sc[i] * c
        zero_row(ga, i)
        combo_add(ga, i, ws, 0, y)
        axpy(ga, i, sc[i] * 0.5 * lam, x, i)


def npairs_positive(j, x, y, lab, sc, prm, st, gb, ws):
    """Gradient w.r.t. p_j: Σ_i sc_i (softmax_ij − t_ij) a_i + sc_j λ/2 p_j."""
    N = x.shape[0]
    for i in range(N):
        ws[i] = dot(x, i, y, j) - st[i, 0]
    for i in range(N):
        ws[i] = exp(ws[i])
    for i in range(N):
        c = ws[i]
        if lab[j] == lab[i]:
            c -= 1.0 / st[i, 1]
        ws[i] = sc[i] * c
    zero_row(gb, j)
    combo_add(gb, j, ws, 0, x)
    axpy(gb, j, sc[j] * 0.5 * prm[0], y, j)


# --- 2: ntxent (cosine similarities, one softmax per positive pair) -----------------------

def ntxent_norm(i, x, prm, st):
    """st[i, 0] = 1/‖x_i‖ with ‖x_i‖² clipped below at eps (st[i, 1] = 1 when clipped)."""
    n2 = dot(x, i, x, i)
    eps = prm[1]
    if n2 < eps:
        st[i, 0] = 1.0 / sqrt(eps)
        st[i, 1] = 1.0
    else:
        st[i, 0] = 1.0 / sqrt(n2)
        st[i, 1] = 0.0


def ntxent_cos(x, i, k, st, inv_t):
    return dot(x, i, x, k) * st[i, 0] * st[k, 0] * inv_t


def ntxent_stats(i, x, lab, prm, st, loss, ws):
    """Row i: m_i = max over negatives of c_ik, E_i = Σ_neg e^{c_ik − m_i};
    ℓ_i = Σ_{j ∈ P(i)} [log(E_i + e^{c_ij − m_i}) − (c_ij − m_i)] and
    R_i = Σ_{j ∈ P(i)} 1 / (E_i + e^{c_ij − m_i}).  ws[:N] holds the row's c."""
    N = x.shape[0]
    inv_t = 1.0 / prm[0]
    m = NEG_INF
    nneg = 0.0
    for k in range(N):
        v = ntxent_cos(x, i, k, st, inv_t)
        ws[k] = v
        if lab[k] != lab[i]:
            m = v if v > m else m
            nneg += 1.0
    s = 0.0
    ell = 0.0
    r = 0.0
    if nneg > 0.0:
        for k in range(N):
            e = exp(ws[k] - m)
            s += e if lab[k] != lab[i] else 0.0
        for j in range(N):
            if j != i and lab[j] == lab[i]:
                t = ws[j] - m
                if t > 0.0:
                    et = exp(-t)
                    z = s * et
                    ell += log1p(z)
                    r += et / (z + 1.0)
                else:
                    ell += log(s + exp(t)) - t
                    r += 1.0 / (s + exp(t))
    st[i, 2] = m
    st[i, 3] = s
    st[i, 4] = r
    st[i, 5] = nneg
    loss[i] = ell


def ntxent_grad(i, x, lab, sc, prm, st, ga, ws):
    """∂/∂u_i = (1/τ) Σ_j (G_ij + G_ji) u_j, G_ij = ∂(sc_i ℓ_i)/∂c_ij: −sc_i E_i/(E_i +
    e^{c_ij − m_i}) for a positive j (σ_ij − 1), sc_i e^{c_ij − m_i} R_i for a negative;
    then through u = x / ‖x‖.  ws[:N] = e^{c_ij − m_j}, ws[N:2N] = e^{c_ij − m_i}."""
    N = x.shape[0]
    inv_t = 1.0 / prm[0]
    for j in range(N):
        ws[N + j] = ntxent_cos(x, i, j, st, inv_t)
    mi = st[i, 2]
    for j in range(N):             # (e^{+inf} where a row has no negative: not used)
        c = ws[N + j]
        ws[j] = exp(c - st[j, 2])
        ws[N + j] = exp(c - mi)
    hi = st[i, 5] > 0.0
    for j in range(N):
        g = 0.0
        if j != i:
            ej = ws[j]
            ei = ws[N + j]
            hj = st[j, 5] > 0.0
            if lab[j] == lab[i]:
                if hi:
                    g -= sc[i] * st[i, 3] / (st[i, 3] + ei)
                if hj:
                    g -= sc[j] * st[j, 3] / (st[j, 3] + ej)
            else:
                g += sc[i] * ei * st[i, 4] + sc[j] * ej * st[j, 4]
        ws[2 * N + j] = g * inv_t * st[j, 0]
    zero_row(ga, i)
    combo_add(ga, i, ws, 2 * N, x)
    inv = st[i, 0]
    if st[i, 1] == 0.0:            # project out the radial part: d(x/‖x‖) = (I − uuᵀ)/‖x‖
        ug = 0.0
        for d in range(ga.shape[1]):
            ug += float64(x[i, d]) * inv * ga[i, d]
        for d in range(ga.shape[1]):
            ga[i, d] = inv * (ga[i, d] - float64(x[i, d]) * inv * ug)
    else:
        for d in range(ga.shape[1]):
            ga[i, d] = inv * ga[i, d]


# --- 3: triplet with semi-hard negative mining (squared distances) ------------------------

def triplet_mine(a, x, lab, off, nsel, prm, loss, ws):
    """For each positive p of anchor a: the negative n with the smallest D_an > D_ap
    (semi-hard), else the one with the largest D_an (first index on ties), else none
    (D = 0); ℓ_a = Σ_p max(m + D_ap − D_an, 0)."""
    N = x.shape[0]
    m = prm[0]
    for k in range(N):
        ws[k] = sqdist(x, a, x, k) if k != a else 0.0
    worst = NEG_INF               # the fallback: the largest D_an (first index on ties)
    wi = -1
    for n in range(N):            # ws[N:2N]: D_an for the negatives, +inf elsewhere
        dn = ws[n] if lab[n] != lab[a] else POS_INF
        ws[N + n] = dn
        if dn != POS_INF and dn > worst:
            worst = dn
            wi = n
    e = off[a]
    ell = 0.0
    for p in range(N):
        if p != a and lab[p] == lab[a]:
            dap = ws[p]
            best = POS_INF
            bi = -1
            for n in range(N):    # branch-free: the smallest D_an > D_ap, first index
                v = ws[N + n]
                v = v if v > dap else POS_INF
                better = v < best
                best = v if better else best
                bi = n if better else bi
            neg = 0.0
            ni = -1
            if bi >= 0:
                neg = best
                ni = bi
            elif wi >= 0:
                neg = worst
                ni = wi
            h = m + dap - neg
            if h > 0.0:
                ell += h
                nsel[e] = ni
            else:
                ell += relu(h)
                nsel[e] = -2
            e += 1
    loss[a] = ell


def triplet_grad(i, x, lab, crank, off, nsel, sc, ga, ws):
    """ga[i] = Σ_k (G_ik + G_ki) · 2(x_i − x_k), G the coefficients of the squared
    distances: +sc_a on D_ap of an active pair, −sc_a on D_an of its mined negative."""
    N = x.shape[0]
    for k in range(N):
        ws[k] = 0.0
    e = off[i]
    for k in range(N):             # the pairs anchored at i
        if k != i and lab[k] == lab[i]:
            code = nsel[e]
            if code >= -1:
                ws[k] += sc[i]
            if code >= 0:
                ws[code] -= sc[i]
            e += 1
    for k in range(N):             # the pairs anchored at k that involve i
        if k != i:
            if lab[k] == lab[i]:
                r = crank[i] - (1 if crank[k] < crank[i] else 0)
                if nsel[off[k] + r] >= -1:
                    ws[k] += sc[k]
            else:
                for f in range(off[k], off[k + 1]):
                    if nsel[f] == i:
                        ws[k] -= sc[k]
    tot = 0.0
    for k in range(N):            # Σ_k c_k (x_i − x_k) = (Σ_k c_k) x_i − Σ_k c_k x_k
        c = 2.0 * ws[k]
        tot += c
        ws[N + k] = -c
    zero_row(ga, i)
    combo_add(ga, i, ws, N, x)
    axpy(ga, i, tot, x, i)


# --- 4: lifted structured loss (Euclidean distances) ---------------------------------------

def lifted_neg(i, x, lab, prm, st, ws):
    """mx_i = max over negatives of (m − D_ik), S_i = Σ_neg e^{m − D_ik − mx_i}."""
    N = x.shape[0]
    mg = prm[0]
    for k in range(N):
        ws[k] = sqdist(x, i, x, k)
    mx = NEG_INF
    for k in range(N):
        v = mg - sqrt(ws[k])
        v = v if lab[k] != lab[i] else NEG_INF
        ws[k] = v
        mx = v if v > mx else mx
    s = 0.0
    if mx > NEG_INF:
        for k in range(N):
            s += exp(ws[k] - mx)
    st[i, 0] = mx
    st[i, 1] = s


def lifted_J(dist, i, q, st):
    """J_iq = D_iq + log(Σ_{k ∈ N(i)} e^{m − D_ik} + Σ_{k ∈ N(q)} e^{m − D_qk}); −inf when
    neither has a negative."""
    mi = st[i, 0]
    mq = st[q, 0]
    M = mi if not (mq > mi) else mq
    if M == NEG_INF:
        return NEG_INF
    return dist + M + log(st[i, 1] * exp(mi - M) + st[q, 1] * exp(mq - M))


def lifted_value(i, x, lab, sc, st, loss):
    """ℓ_i = ¼ Σ_{q ∈ P(i)} max(J_iq, 0)²; st[i, 2] = B_i, the factor of the gradient
    through the negatives of i."""
    N = x.shape[0]
    ell = 0.0
    b = 0.0
    for q in range(N):
        if q != i and lab[q] == lab[i]:
            dist = sqrt(sqdist(x, i, x, q))
            J = lifted_J(dist, i, q, st)
            h = relu(J)
            ell += 0.25 * h * h
            if h > 0.0:
                b += 0.5 * h * (sc[i] + sc[q]) * exp(st[i, 0] + dist - J)
    loss[i] = ell
    st[i, 2] = b


def lifted_grad(i, x, lab, sc, prm, st, ga, ws):
    """ga[i] = Σ_k c_ik (x_i − x_k) / D_ik (0 where D_ik = 0); ws[:N] = D_i·,
    ws[N:2N], ws[2N:3N] the exponentials of the negative pairs."""
    N = x.shape[0]
    mg = prm[0]
    mi = st[i, 0]
    for k in range(N):
        ws[k] = sqrt(sqdist(x, i, x, k))
    if mi > NEG_INF:               # (row i has negatives; so has every negative k of it)
        for k in range(N):
            ws[N + k] = exp(mg - ws[k] - mi)
            ws[2 * N + k] = exp(mg - ws[k] - st[k, 0])
    tot = 0.0
    for k in range(N):            # Σ_k c_k (x_i − x_k) = (Σ_k c_k) x_i − Σ_k c_k x_k
        dist = ws[k]
        c = 0.0
        if k != i and dist > 0.0:
            if lab[k] == lab[i]:
                h = relu(lifted_J(dist, i, k, st))
                c = 0.5 * h * (sc[i] + sc[k]) / dist
            else:
                c = -(st[i, 2] * ws[N + k] + st[k, 2] * ws[2 * N + k]) / dist
        tot += c
        ws[N + k] = -c
    zero_row(ga, i)
    combo_add(ga, i, ws, N, x)
    axpy(ga, i, tot, x, i)


# --- the dispatch ----------------------------------------------------------------------------

def row_pass(which, pss, i, x, y, lab, flab, crank, off, nsel, sc, prm, st, loss, ga, gb,
             ws, wg):
    """Pass ``pss`` of loss ``which`` for row ``i`` (see the module docstring)."""
    if which == 0:
        contrastive_row(i, x, y, flab, sc, prm, loss, ga, gb, wg)
    elif which == 1:
        if pss == 0:
            npairs_anchor(i, x, y, lab, sc, prm, st, loss, ga, ws, wg)
        else:
            npairs_positive(i, x, y, lab, sc, prm, st, gb, ws)
    elif which == 2:
        if pss == 0:
            ntxent_norm(i, x, prm, st)
        elif pss == 1:
            ntxent_stats(i, x, lab, prm, st, loss, ws)
        else:
            ntxent_grad(i, x, lab, sc, prm, st, ga, ws)
    elif which == 3:
        if pss == 0:
            triplet_mine(i, x, lab, off, nsel, prm, loss, ws)
        else:
            triplet_grad(i, x, lab, crank, off, nsel, sc, ga, ws)
    elif which == 4:
        if pss == 0:
            lifted_neg(i, x, lab, prm, st, ws)
        elif pss == 1:
            lifted_value(i, x, lab, sc, st, loss)
        else:
            lifted_grad(i, x, lab, sc, prm, st, ga, ws)
    else:
        loss[i] = row_has_nan(x, i) + row_has_nan(y, i)
