"""Row math of the row-wise losses, written once for every target.

A row-wise loss reduces over the last axis of each row.  Every loss here is described by
four plain-Python functions with fixed signatures, named ``<tag>_f1``, ``<tag>_f2``,
``<tag>_fin`` and ``<tag>_f3``; :mod:`fastloss._compile` compiles them for the float32 CPU
target (``exp``/``log`` rebound to vectorizable float32 polynomials), the float64 CPU
target and CUDA, and the kernel templates in :mod:`fastloss._cpu.rowwise` and
:mod:`fastloss._cuda.rowwise` run them in three phases per row::

    phase 1 (max):   m   = max_j  f1(a_j, b_j, j, k)                 (only when needed)
    phase 2 (sums):  s   = sum_j  f2(a_j, b_j, c_j, w_j, j, k, m, xk, params)   -> 4 sums + bad
    finish (scalar): loss, c0..c3 = fin(s0..s3, m, xk, wk, yl, n, gs, params)
    phase 3 (grad):  ga_j, gb_j, gc_j = f3(a_j, b_j, c_j, w_j, j, k, m, xk, c0..c3, params)
    label fix-up:    ga_k = fixk(ga_k, c0..c3)       (optional, integer-label losses)

Optional ``<tag>_f3k`` (the softmax losses): phase 2 keeps each element's first term ``v0``
(``expn(a − m)``) in the first gradient buffer, and phase 3 computes
``ga_j, gb_j, gc_j = f3k(v0_j, a_j, b_j, c_j, w_j, j, k, m, xk, c0..c3, params)``, the
same gradient as ``f3`` without recomputing ``v0`` (one ``exp`` per element instead of
two).  The CPU kernels use it when bound; CUDA (where ``exp`` is cheap) always runs ``f3``.

Optional refinement of the row scalar (the sparsemax threshold): a loss that defines
``<tag>_t2(a_j, b_j, j, k, t, params) -> (u0, u1)`` and ``<tag>_tfin(u0, u1, t, n,
params) -> (t', key)`` gets, after phase 1, ``t = m`` and then passes
``t, key = tfin(Σ_j t2(...))`` over the row until ``key`` repeats (at most n + 2 passes;
the sums in the fixed block order of phase 2 on the CPU, block trees on CUDA); the
final ``t`` is the ``m`` that phase 2, ``fin`` and phase 3 receive.

Row arguments: for a tag listed in ``ROW_ARGS``, ``f2`` and ``f3`` receive the row arrays
``a, b, c`` (1-D) instead of the row's elements and index them (``a[j]``): a loss whose
element terms need the whole row (multilabel_margin's pairs).  Such losses have no
``f3k``.

Optional diagonal Hessian (w.r.t. the first input ``a``): a loss that defines ``<tag>_h3``
has one (``grad_and_hessian``); ``<tag>_hfin(s0..s3, m, xk, wk, yl, n, gs, params)``
returns one more row coefficient ``ch`` and phase 3 also stores
``h_j = h3(a_j, b_j, c_j, w_j, j, k, m, xk, c0..c3, ch, params)`` (``h3k(v0_j, ...)`` on
the kept-term path, like ``f3k``), scaled like the gradient (``gs`` is in the
coefficients).  Kernels compile the Hessian code only for calls that ask for it.

``a, b, c``: the row's elements of up to three float inputs (unused ones are a copy of
``a``); ``k``: the row's integer label (0 when the loss has none); ``xk = a[k]``;
``w_j``/``wk``: class weights (1 without); ``yl``: a float row label (cosine_embedding);
``n``: the row length; ``gs``: the row's gradient scale (sample weight times 1/Σw for
``"mean"``), folded into the coefficients ``c0..c3`` so that phase 3 stores final
gradients.  ``bad`` counts invalid entries (negative probabilities); Python raises.

Precision discipline (so that the float32 loops vectorize): per-element code uses only the
array values, the dtype-typed parameters and the float32 constants below (a float32
constant keeps float32 arithmetic float32 and is promoted in float64 arithmetic); literal
``0.0``/``1``/``2.0`` would promote float32 loops to float64.  Phase-2 sums are accumulated
in float64 by the kernels; ``fin`` works in float64.

NaN handling: comparisons with NaN are false, so selects are written so NaN reaches the
result (``ZERO if d <= ZERO else d`` keeps NaN), and where a convention replaces a term by
0 (``0 log 0``, ``0 * -inf``) the NaN of the other operand is put back explicitly.  A NaN
input makes the loss NaN and every gradient entry that depends on it NaN.

Grouping: the kernels compile with the ``reassoc`` fast-math flag (for their vectorized
sums).  Differences of nearly equal terms and small constants added to them (``a - b +
eps``, ``a - s_y + margin``, ``c - (a - m)``) use ``sadd``/``ssub``, which are evaluated as
written (:mod:`fastloss._math.strict`).
"""
from math import exp, log, log1p, sqrt  # noqa: F401  (exp/log/log1p rebound per target)
from operator import add as sadd, sub as ssub  # noqa: F401  (strict on the CPU targets)

import numpy as np

expn = exp  # exp of an argument <= 0 (softmax terms); rebound per target, see _compile
log1pu = log1p  # log1p of an argument in [0, 1]; rebound per target

ZERO = np.float32(0.0)
ONE = np.float32(1.0)
TWO = np.float32(2.0)
NINF = np.float32(-np.inf)
INF = np.float32(np.inf)
NAN = np.float32(np.nan)
ONE64 = np.float64(1.0)   # promotes a product to float64 (squares that must not overflow)


def relu_nan(d):
    """max(0, d) that keeps NaN."""
    return ZERO if d <= ZERO else d


def no_fixk(g, c0, c1, c2, c3):
    return g


def nomax_f1(a, b, j, k):
    return ZERO


def first_f1(a, b, j, k):
    """The phase-1 value of the softmax losses: the logit itself."""
    return a


def shifted(a, m):
    """a − m for the softmax losses, 0 where a = m = +inf: a row's +inf logits share the
    softmax (the limit as they grow alike; a single +inf logit takes all of it)."""
    return ZERO if a == m else ssub(a, m)


# --- softmax_cross_entropy (dense labels b); p0 = smoothing s, p1 = s/C, p2 = 1-s -------
# Class weights w_j (PyTorch's ``weight`` with probability targets): ℓ = −Σ w_j y'_j log q_j.

def sce_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    d = shifted(a, m)
    e = expn(d)
    yp = (b * p2 + p1) * wj                     # w_j y'_j (w = 1 without class weights)
    t = ZERO if yp == ZERO else yp * d          # 0 * -inf = 0 for masked classes
    bad = ONE if (b < ZERO or b == INF) else ZERO   # not a probability: refused
    return e, t, yp, ZERO, bad


def sce_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    lse = log(s0)
    loss = s2 * lse - s1                        # Σwy'·(lse − (x − m))
    return loss, gs * s2 / s0, gs, gs * p2, lse


def sce_f3k(e, a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    yp = (b * p2 + p1) * wj
    ga = c0 * e - c1 * yp                       # (Σwy') softmax − wy'
    gb = (c2 * wj) * (c3 - shifted(a, m))       # −(1 − s) w log softmax
    return ga, gb, ZERO


def sce_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return sce_f3k(expn(shifted(a, m)), a, b, c, wj, j, k, m, xk, c0, c1, c2, c3,
                   p0, p1, p2, p3)


# --- softmax_cross_entropy_with_integer_labels -------------------------------------------
# p0 = s, p1 = s/C, p2 = 1-s, p3 = W = Σ class weights (C without).
# ℓ = (1-s)·w_k·(lse − x_k) + (s/C)·Σ_j w_j (lse − x_j)   (PyTorch's weighted smoothing)

def ice_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    d = shifted(a, m)
    e = expn(d)
    t = ZERO if wj == ZERO else wj * d
    return e, t, ZERO, ZERO, ZERO


def ice_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    lse = log(s0)
    loss = p2 * wk * (lse - shifted(xk, m))
    if p0 > 0:
        loss += p1 * (p3 * lse - s1)
    return loss, gs * (p2 * wk + p1 * p3) / s0, gs * p2 * wk, gs * p1, 0.0


def ice_f3k(e, a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return c0 * e - c2 * wj, ZERO, ZERO


def ice_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return ice_f3k(expn(shifted(a, m)), a, b, c, wj, j, k, m, xk, c0, c1, c2, c3,
                   p0, p1, p2, p3)


# Diagonal Hessian of both softmax cross-entropies w.r.t. the logits.  With T the total
# target weight multiplying lse in the row loss (Σy' for dense labels, (1−s)·w_y + (s/C)·W
# for integer labels), ∂²ℓ/∂x_j² = T·p_j(1 − p_j), p = softmax(x): the diagonal of the true
# Hessian T·(diag(p) − p pᵀ).  c0 = gs·T/s0 and ch ≈ 1/s0, so c0·e_j = gs·T·p_j.

def soft_hfin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    # 1/s0 (s0 in [1, C]) as exp(−log s0), within about (log C + 1) ulp of the target's
    # dtype (float32 polynomials on the float32 CPU target): a second division by s0
    # would let the code generator (``arcp``) turn fin's ``.../s0`` into a multiplication
    # by a shared reciprocal, and the gradient's bits would differ from value_and_grad's
    return expn(-log(s0))


def soft_h3k(e, a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, ch, p0, p1, p2, p3):
    # gs·T·(p − p²) from two-operand products and strict sums only (−p = 0 − ch·e is a
    # strict leaf, not a foldable negation), so that no kernel (serial, parallel, vector or
    # scalar path) can regroup it: all round it alike
    return c0 * sadd(e, ssub(ZERO, ch * e) * e)


def soft_h3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, ch, p0, p1, p2, p3):
    return soft_h3k(expn(shifted(a, m)), a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, ch,
                    p0, p1, p2, p3)


def no_hfin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return 0.0


def no_h3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, ch, p0, p1, p2, p3):
    return ZERO


def no_h3k(e, a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, ch, p0, p1, p2, p3):
    return ZERO


sce_hfin = ice_hfin = soft_hfin
sce_h3 = ice_h3 = soft_h3
sce_h3k = ice_h3k = soft_h3k


def ice_fixk(g, c0, c1, c2, c3):
    """The label's column, after phase 3 (keeps a j == k compare out of the vector loop)."""
    return g - c1


# --- kl_divergence: a = log p, b = t; Σ t (log t − log p), 0 log 0 = 0 --------------------
# The third gradient slot (the loss has two inputs) carries each element's term times the
# row's weight: the runner passes a buffer there for ``elementwise=True``, reduction 'none'.

def kl_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    v = ZERO if b == ZERO else b * (log(b) - a)
    v = a if a != a else v                      # NaN in log p -> NaN out
    bad = ONE if (b < ZERO or b == INF) else ZERO
    return v, ZERO, ZERO, ZERO, bad


def kl_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return s0, gs, 0.0, 0.0, 0.0


def kl_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    lb = log(b)
    v = ZERO if b == ZERO else b * ssub(lb, a)  # the element's term (elementwise=True)
    v = a if a != a else v
    return -c0 * b, c0 * (ssub(lb, a) + ONE), c0 * v


# log_target=True: b = log t
def klt_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    t = exp(b)
    v = ZERO if t == ZERO else t * (b - a)
    v = a if a != a else v
    return v, ZERO, ZERO, ZERO, ZERO


def klt_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return s0, gs, 0.0, 0.0, 0.0


def klt_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    t = exp(b)
    gb = ZERO if t == ZERO else c0 * t * (ssub(b, a) + ONE)
    v = ZERO if t == ZERO else t * ssub(b, a)
    v = a if a != a else v
    return -c0 * t, gb, c0 * v


# --- softmax_kl_divergence: a = logits, b = t ---------------------------------------------

def skl_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    d = shifted(a, m)
    e = expn(d)
    td = ZERO if b == ZERO else b * d
    tlt = ZERO if b == ZERO else b * log(b)
    bad = ONE if (b < ZERO or b == INF) else ZERO
    return e, td, b, tlt, bad


def kl_floor(st, n):
    """The least value of Σ t log(t / q) over distributions q, for targets summing to
    ``st`` (log-sum inequality): st·log st; 0 for a row that sums to 1 up to the rounding
    of its n entries (|st − 1| <= n·2⁻²³, both dtypes), so that such a row is never below
    0 by rounding (-2.2e-16 at t = q = 1/3)."""
    if st <= 0.0:
        return 0.0
    if abs(st - 1.0) <= n * 1.1920928955078125e-07:
        return 0.0
    return st * log(st)


def skl_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    lse = log(s0)
    loss = s3 - s1 + s2 * lse                   # Σ t log t − Σ t (x − m − lse)
    lb = kl_floor(s2, n)
    loss = lb if loss < lb else loss            # rounding only; NaN stays
    return loss, gs * s2 / s0, gs, lse, 0.0


def skl_f3k(e, a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    ga = c0 * e - c1 * b
    gb = c1 * (log(b) + ONE - shifted(a, m) + c2)   # log t + 1 − log softmax
    return ga, gb, ZERO


def skl_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return skl_f3k(expn(shifted(a, m)), a, b, c, wj, j, k, m, xk, c0, c1, c2, c3,
                   p0, p1, p2, p3)


# --- multiclass_hinge (Weston-Watkins sum): p0 = margin -----------------------------------
# A class weight w_y (``wk``, 1 without) multiplies the row's loss and gradient (PyTorch's
# multi_margin_loss ``weight``: each term times weight[y]); ``fin`` applies it.

def mh_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    d = sadd(ssub(a, xk), p0)
    v = relu_nan(d)
    v = ZERO if j == k else v
    cnt = ZERO if j == k else (ONE if d > ZERO else (ZERO if d <= ZERO else d))  # NaN stays
    return v, cnt, ZERO, ZERO, ZERO


def mh_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    g = gs * wk                                 # w_y scales the row (PyTorch's weight)
    return s0 * wk, g, g * s1, 0.0, 0.0


def mh_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    d = sadd(ssub(a, xk), p0)
    g = c0 if d > ZERO else (ZERO if d <= ZERO else d)   # NaN score -> NaN gradient
    g = -c1 if j == k else g
    return g, ZERO, ZERO


# --- multiclass_hinge, kind="crammer_singer": max(0, max_{j≠y} s_j − s_y + margin) ------
# Ties of the maximum share the subgradient equally (a convex combination).

def mhcs_f1(a, b, j, k):
    return NINF if j == k else a


def mhcs_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    tie = ONE if (a == m and j != k) else ZERO
    nan = ZERO if a == a else a
    return tie, nan, ZERO, ZERO, ZERO


def mhcs_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    d = sadd(sadd(ssub(m, xk), p0), s1)
    loss = 0.0 if d <= 0 else d
    act = d > 0
    nan = 0.0 if d == d else d                  # a NaN score: every entry NaN
    g = gs * wk
    c0 = g / s0 if act else nan
    c1 = g if act else nan
    return loss * wk, c0, c1, nan, 0.0


def mhcs_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    g = c0 if (a == m and j != k) else c2
    g = -c1 if j == k else g
    return g, ZERO, ZERO


# --- multiclass_hinge, p = 2 (squared hinge terms, PyTorch multi_margin_loss(p=2) × C) ---

def mh2_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    r = relu_nan(sadd(ssub(a, xk), p0))
    r = ZERO if j == k else r
    return r * r, r, ZERO, ZERO, ZERO


def mh2_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    g = gs * wk
    return s0 * wk, 2.0 * g, 2.0 * g * s1, 0.0, 0.0


def mh2_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    g = c0 * relu_nan(sadd(ssub(a, xk), p0))   # NaN score -> NaN gradient
    g = -c1 if j == k else g
    return g, ZERO, ZERO


# crammer_singer, p = 2: max(0, max_{j≠y} s_j − s_y + margin)²
def mhcs2_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    d = sadd(sadd(ssub(m, xk), p0), s1)
    act = d > 0
    loss = d * d if act else (0.0 if d <= 0 else d)
    nan = 0.0 if d == d else d
    g = gs * wk
    c0 = 2.0 * d * g / s0 if act else nan
    c1 = 2.0 * d * g if act else nan
    return loss * wk, c0, c1, nan, 0.0


mhcs2_f1 = mhcs_f1
mhcs2_f2 = mhcs_f2
mhcs2_f3 = mhcs_f3


# --- cosine_embedding: a = x1, b = x2, yl = ±1; p0 = margin, p1 = eps ----------------------
# cos = Σab / sqrt((Σa² + eps)(Σb² + eps))   (PyTorch's cosine_embedding_loss)
# The products are formed in float64 (float32 entries cannot overflow them).  A row whose
# squared norm is outside (1e-30, 1e36) has no kernel formula (no finite norm: an infinite
# entry; or gradient coefficients ~1/norm² beyond the float32 range): ``fin`` marks it
# NaN and the host recomputes it, from its limit or from the rows scaled by their largest
# entries (fastloss._limits.cosine_embedding_rows).

def cemb_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    ad = a * ONE64
    bd = b * ONE64
    return ad * bd, ad * ad, bd * bd, ZERO, ZERO


def cemb_label(cs, yl, p0):
    """(loss, d loss / d cos) of cosine_embedding for the row label ``yl`` (±1) and
    margin ``p0``."""
    if yl > 0:
        loss = 1.0 - cs
        loss = 0.0 if loss < 0 else loss        # |cos| <= 1; rounding must not go below
        return loss, -1.0
    d = cs - p0
    return (0.0 if d <= 0 else d), (1.0 if d > 0 else 0.0)


def cemb_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    m1 = s1 + p1
    m2 = s2 + p1
    if not (m1 > 1e-30 and m1 < 1e36 and m2 > 1e-30 and m2 < 1e36):   # the host's row
        return np.nan, np.nan, np.nan, np.nan, 0.0
    den = sqrt(m1 * m2)
    cs = s0 / den
    loss, dl = cemb_label(cs, yl, p0)
    g = gs * dl
    return loss, g / den, g * cs / m1, g * cs / m2, 0.0


def cemb_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return c0 * b - c1 * a, c0 * a - c2 * b, ZERO


# --- cosine_distance (TF-Slim): 1 − Σ p·t -------------------------------------------------

def cdist_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    # an infinite entry against a zero one: the term's limit is 0 (NaN stays NaN)
    t = ZERO if ((a == ZERO and b == b) or (b == ZERO and a == a)) else a * b
    return t, ZERO, ZERO, ZERO, ZERO


def cdist_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return 1.0 - s0, gs, 0.0, 0.0, 0.0


def cdist_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return -c0 * b, -c0 * a, ZERO


# --- triplet_margin: a = anchor, b = positive, c = negative; p0 = margin, p1 = eps --------
# d(x, y) = ||x − y + eps||₂ (PyTorch's pairwise_distance)

# Infinite entries: the limit as they grow alike (x_k = ±T, T -> inf; several infinite
# entries of a difference give the direction sign/sqrt(K) over them).  An infinite anchor
# entry (a - p and a - n infinite alike) gives ‖a−p‖ − ‖a−n‖ -> Σ_k sign_k (n_k − p_k)/sqrt(K);
# an infinite entry in only one of a − p, a − n next to an infinite anchor has no limit
# (NaN).  s2 counts the infinite entries of a − p, s3 sums the anchor terms.

def trip_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    dp = sadd(ssub(a, b), p1)                   # (a - b) + eps, never (a + eps) - b
    dn = sadd(ssub(a, c), p1)
    ip = dp == INF or dp == NINF
    inn = dn == INF or dn == NINF
    kp = ONE if ip else ZERO
    pos = dp > ZERO
    alike = ip and inn and (pos == (dn > ZERO))
    lim = (ssub(c, b) if pos else ssub(b, c)) if alike else (NAN if (ip or inn) else ZERO)
    dpd = dp * ONE64                            # float64 squares: no float32 overflow
    dnd = dn * ONE64
    return dpd * dpd, dnd * dnd, kp, lim, ZERO


def trip_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    dap = sqrt(s0)
    dan = sqrt(s1)
    kk = sqrt(s2) if s2 > 0 else 1.0
    both = dap == np.inf and dan == np.inf and s2 > 0   # (an overflow alone: NaN)
    d = sadd(s3 / kk if both else ssub(dap, dan), p0)
    loss = 0.0 if d <= 0 else d
    act = d > 0
    nan = 0.0 if d == d else d                  # NaN in: NaN gradients
    c0 = gs / dap if (act and dap > 0) else nan
    c1 = gs / dan if (act and dan > 0) else nan
    # an infinite distance: the unit vector's limit is ±1/sqrt(K) at the K infinite
    # entries, 0 elsewhere (c0 = gs/inf = 0); with an infinite anchor entry the two unit
    # vectors agree there (gradient of the anchor 0)
    c2 = gs / kk if (act and dap == np.inf) else nan
    c3 = gs / kk if (act and dan == np.inf) else nan
    return loss, c0, c1, c2, c3


def unit_part(cn, ci, dv):
    """cn·dv, or ±ci where dv is infinite (then cn = 0: the norm is infinite too)."""
    u = cn * dv
    return (ci if dv > ZERO else -ci) if (dv == INF or dv == NINF) else u


def trip_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    up = unit_part(c0, c2, sadd(ssub(a, b), p1))
    un = unit_part(c1, c3, sadd(ssub(a, c), p1))
    return up - un, -up, un


# squared=True (MXNet Gluon TripletLoss): max(0, Σ(a−p)² − Σ(a−n)² + margin)
# summed per element as (a−p)² − (a−n)² = (n − p)·((a − p) + (a − n)): no cancellation
# between two large sums, and an infinite anchor entry gives its limit (±inf)
def trips_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    u = ssub(c, b)
    w = sadd(ssub(a, b), ssub(a, c))
    t = ZERO if (u == ZERO and w == w) else u * w
    return t, ZERO, ZERO, ZERO, ZERO


def trips_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    d = sadd(s0, p0)
    loss = 0.0 if d <= 0 else d
    c0 = 2.0 * gs if d > 0 else (0.0 if d <= 0 else d)   # NaN in: NaN gradients
    return loss, c0, 0.0, 0.0, 0.0


def trips_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    up = ZERO if c0 == ZERO else c0 * (a - b)   # inactive: 0, even next to an infinity
    un = ZERO if c0 == ZERO else c0 * (a - c)
    ga = ZERO if c0 == ZERO else c0 * ssub(c, b)   # up − un, finite for an infinite anchor
    return ga, -up, un


# --- mean_pairwise_squared_error (tf.losses): mean over i<j of (d_i − d_j)², d = p − t ---
# Σ_{i<j} (d_i − d_j)² = n Σ(d − μ)²  -> O(n) per row; divided by n(n−1)/2.
# The sums are taken over e = d − d_0 (d_0: the row's first difference, carried by the
# phase-1 "max" slot), so that an offset common to the row cancels exactly before any
# square is formed: n Σe² − (Σe)² is then free of the catastrophic cancellation of
# n Σd² − (Σd)² (float32 rows of 1e4 + N(0, 1) gave 0 instead of 1.91).

def mpse_f1(a, b, j, k):
    return ssub(a, b) if j == 0 else NINF


def mpse_shift(m):
    """The row's shift d_0, or 0 when d_0 is not finite (NaN, ±inf: no shift helps)."""
    return m if (m > NINF and m < INF) else ZERO


def mpse_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    e = ssub(ssub(a, b), mpse_shift(m))
    return e, e * e, ZERO, ZERO, ZERO


def mpse_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    if n < 2:
        return 0.0 * s1, 0.0, 0.0, 0.0, 0.0
    mu = s0 / n
    ss = ssub(s1, s0 * mu)
    ss = 0.0 if ss <= 0 else ss                 # rounding; keeps NaN
    ss = s1 if s1 == np.inf else ss            # one infinite entry: the loss is inf
    return 2.0 * ss / (n - 1.0), gs * 4.0 / (n - 1.0), mu, 0.0, 0.0


def mpse_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    e = ssub(ssub(a, b), mpse_shift(m))
    t = e - c1
    t = e if (e == INF or e == NINF) else t     # one infinite entry: its own limit
    g = c0 * t
    return g, -g, ZERO


# --- nll_loss (PyTorch): a = log-probabilities, k the label; ℓ = −w_k·a_k ------------------
# Only the label's entry enters the value; a NaN anywhere in the row still makes the row's
# loss NaN (s0), the gradient −w_k at the label is constant (linear loss).

def nll_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    return (ZERO if a == a else a), ZERO, ZERO, ZERO, ZERO


def nll_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return s0 - (xk * ONE64) * wk, 0.0, gs * wk, 0.0, 0.0


def nll_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return ZERO, ZERO, ZERO


def nll_fixk(g, c0, c1, c2, c3):
    return g - c1


# --- categorical_hinge (Keras): a = pred, b = target ---------------------------------------
# pos = Σ t·p, neg = max_j (1 − t_j)·p_j, ℓ = max(0, neg − pos + 1).  Phase 1 carries neg;
# entries tied at the maximum share its subgradient equally (TensorFlow's gradient of
# reduce_max); at the kink (neg − pos + 1 = 0) the subgradient is 0.

def chinge_f1(a, b, j, k):
    return ssub(ONE, b) * a


def chinge_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    v = ssub(ONE, b) * a
    tie = ONE if v == m else ZERO
    nan = ZERO if v == v else v                 # (a NaN of 0·inf: the row is NaN)
    return b * a, tie, nan, ZERO, ZERO


def chinge_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    d = sadd(ssub(m, s0), 1.0) + s2
    loss = 0.0 if d <= 0 else d                 # keeps NaN
    act = d > 0
    nan = 0.0 if d == d else d
    c0 = gs / s1 if act else nan
    c1 = gs if act else nan
    return loss, c0, c1, 0.0, 0.0


def chinge_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    u = ssub(ONE, b)
    g = c0 * u if u * a == m else ZERO
    return g - c1 * b, ZERO, ZERO


# --- poly1_softmax_cross_entropy (optax poly_loss_cross_entropy): p0 = epsilon -------------
# ℓ = −Σ y log q + ε Σ y (1 − q), q = softmax(x).  Sums: s0 = Σe, s1 = Σ y(x − m),
# s2 = Σy, s3 = Σ y e, so Σ y q = s3/s0.
# ∂ℓ/∂x_j = S q_j − y_j − ε q_j (y_j − Σ y q)      (S = Σy)
# ∂ℓ/∂y_j = −log q_j + ε (1 − q_j)

def poly_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    d = shifted(a, m)
    e = expn(d)
    t = ZERO if b == ZERO else b * d            # 0 * -inf = 0 for masked classes
    bad = ONE if (b < ZERO or b == INF) else ZERO
    return e, t, b, b * e, bad


def poly_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    lse = log(s0)
    qy = s3 / s0
    pt = s2 - qy                                # Σ y (1 − q) >= 0 but for rounding
    pt = 0.0 if pt < 0 else pt                  # (keeps NaN)
    loss = (s2 * lse - s1) + p0 * pt
    return loss, gs * (s2 + p0 * qy) / s0, gs, gs * p0 / s0, lse + p0


def poly_f3k(e, a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    ce = c2 * e
    ga = c0 * e - c1 * b - ce * b
    gb = c1 * (c3 - shifted(a, m)) - ce
    return ga, gb, ZERO


def poly_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return poly_f3k(expn(shifted(a, m)), a, b, c, wj, j, k, m, xk, c0, c1, c2, c3,
                    p0, p1, p2, p3)


# --- multilabel_soft_margin (PyTorch): a = logits, b = targets; (1/C) Σ w_j bce(x_j, y_j) --
# bce(x, y) = log1p(e^−|x|) + (1 − y)·x⁺ + y·x⁻ (softplus(x) − y x without cancellation;
# a zero factor times an infinite |x| is 0); gradient w_j (σ(x) − y)/C, σ and 1 − σ from
# one exponential.  Hessian w_j σ(1 − σ)/C.

def mlsm_parts(a):
    e = expn(-abs(a))
    r = ONE / (ONE + e)
    er = e * r
    pos = a >= ZERO
    return e, (r if pos else er), (er if pos else r)


def mlsm_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    e = expn(-abs(a))
    u = ssub(ONE, b) if a >= ZERO else b
    lin = ZERO if u == ZERO else u * abs(a)
    v = log1pu(e) + lin                         # NaN logit: log1pu(NaN)
    v = (ZERO if v == v else v) if wj == ZERO else wj * v   # a NaN stays NaN
    return v, ZERO, ZERO, ZERO, ZERO


def mlsm_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return s0 / n, gs / n, 0.0, 0.0, 0.0


def mlsm_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    e, p, q = mlsm_parts(a)
    return (c0 * wj) * (ssub(ONE, b) * p - b * q), ZERO, ZERO


def mlsm_hfin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return 0.0


def mlsm_h3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, ch, p0, p1, p2, p3):
    e, p, q = mlsm_parts(a)
    return (c0 * wj) * (p * q)


# --- categorical_focal_cross_entropy (Keras, from logits; integer labels) -----------------
# ℓ = −α (1 − p_k)^γ log p_k, p = softmax(x); p0 = α, p1 = γ.
# s1 = Σ_{j≠k} e_j gives 1 − p_k = s1/s0 without cancellation; log p_k = −log1p(s1/e_k)
# where p_k >= 1/2 (accurate as p_k → 1), (x_k − m) − lse elsewhere.
# ∂ℓ/∂x_j = g·(p_j − δ_jk),  g = α (1 − p_k)^γ (1 − γ p_k log p_k / (1 − p_k)) >= 0;
# the label's entry is −g (1 − p_k), written directly (fixk).  Limits: at p_k = 1,
# log p_k / (1 − p_k) → −1; at p_k = 0 the γ term vanishes (g = α).

def powu(u, a):
    """u**a for u in [0, 1], a >= 0, with 0**0 = 1 (float64)."""
    return exp(a * log(u)) if u > 0 else (1.0 if a == 0 else 0.0 * u)


def cfoc_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    e = expn(shifted(a, m))
    return e, (ZERO if j == k else e), ZERO, ZERO, ZERO


def cfoc_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    dk = shifted(xk, m) * ONE64
    ek = exp(dk)
    pk = ek / s0
    q = s1 / s0
    lp = -log1p(s1 / ek) if pk >= 0.5 else dk - log(s0)
    f = powu(q, p1)
    loss = -(p0 * f) * lp
    r = lp / q if q > 0 else -1.0
    t = 0.0 if pk == 0 else p1 * pk * r
    g = gs * p0 * f * (1.0 - t)
    return loss, g / s0, 0.0, g * q, 0.0


def cfoc_f3k(e, a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return c0 * e, ZERO, ZERO


def cfoc_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return c0 * expn(shifted(a, m)), ZERO, ZERO


def cfoc_fixk(g, c0, c1, c2, c3):
    return -c2


# --- triplet_margin, p ≠ 2 or swap=True: p0 = margin, p1 = eps, p2 = p (>= 1), p3 = swap --
# d(x, y) = (Σ|x − y + eps|^p)^(1/p) (PyTorch's pairwise_distance); with swap the negative
# distance is min(d(a, n), d(p, n)) (strictly smaller: the swap; a tie keeps d(a, n)).
# ∂d(x, y)/∂x_j = sign(v_j)|v_j|^(p−1) / d^(p−1), v = x − y + eps; 0 where d = 0 (p > 1).
# Terms |v|^p in the input dtype (float32 overflows beyond |v|^p ~ 3e38), sums in float64.
# Infinite entries follow the arithmetic (no limits as for p = 2: inf − inf is NaN).

def powp(u, p):
    """u**p for u >= 0, p >= 1 (exact for p = 1, 2; 0 at u = 0; NaN stays)."""
    return u if p == ONE else (u * u if p == TWO else (ZERO if u == ZERO else
                                                        exp(p * log(u))))


def dpowp(v, p):
    """sign(v)·|v|^(p−1): the derivative of |v|^p / p (sign(v) for p = 1, 0 at v = 0)."""
    u = abs(v)
    r = (ONE if u > ZERO else (ZERO if u == ZERO else u)) if p == ONE else (
        u if p == TWO else (ZERO if u == ZERO else exp((p - ONE) * log(u))))
    return -r if v < ZERO else r


def tripp_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    dp = sadd(ssub(a, b), p1)
    dn = sadd(ssub(a, c), p1)
    ds = sadd(ssub(b, c), p1)
    ts = powp(abs(ds), p2) if p3 > ZERO else ZERO
    return powp(abs(dp), p2), powp(abs(dn), p2), ts, ZERO, ZERO


def root_p(s, p):
    """s**(1/p) in float64 (s >= 0)."""
    if p == 1.0:
        return s
    if p == 2.0:
        return sqrt(s)
    return 0.0 if s == 0.0 else s ** (1.0 / p)


def tripp_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    pp = p2 * ONE64
    dap = root_p(s0, pp)
    dan = root_p(s1, pp)
    dsw = root_p(s2, pp)
    swap = p3 > 0 and dsw < dan
    dneg = dsw if swap else dan
    d = sadd(ssub(dap, dneg), p0)
    loss = 0.0 if d <= 0 else d
    act = d > 0
    nan = 0.0 if d == d else d                  # NaN in: NaN gradients
    # gs / d^(p−1): the unit-gradient scale of each distance (0 for a zero distance, p > 1)
    e1 = pp - 1.0
    cp = (gs if e1 == 0 else (0.0 if dap == 0 else gs / dap ** e1)) if act else nan
    cq = (gs if e1 == 0 else (0.0 if dneg == 0 else gs / dneg ** e1)) if act else nan
    nq = 0.0 if cq == cq else cq                # 0, or the NaN of a NaN row
    cn = nq if swap else cq                     # the terms of d(a, n)
    cs = cq if swap else nq                     # the terms of d(p, n)
    return loss, cp, cn, cs, 0.0


def tripp_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    up = c0 * dpowp(sadd(ssub(a, b), p1), p2)
    un = c1 * dpowp(sadd(ssub(a, c), p1), p2)
    us = ZERO if c2 == ZERO else c2 * dpowp(sadd(ssub(b, c), p1), p2)
    return up - un, ssub(ZERO, up) - us, un + us


# --- cosine_embedding, optax epsilon: p0 = margin, p1 = epsilon, p2 = 1 (the flag) --------
# cos = Σab / (max(‖a‖, ε) max(‖b‖, ε))   (optax cosine_similarity: its safe_norm, whose
# gradient is 0 where the norm is clamped).  Products in float64 (float32 entries cannot
# overflow them; float64 entries beyond ~1e154 do: NaN).

def cembo_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    n1 = sqrt(s1)
    n2 = sqrt(s2)
    c1n = n1 > p1                               # the norm is not clamped (NaN: False)
    c2n = n2 > p1
    d1 = n1 if (c1n or n1 != n1) else p1 * ONE64
    d2 = n2 if (c2n or n2 != n2) else p1 * ONE64
    den = d1 * d2
    cs = s0 / den
    loss, dl = cemb_label(cs, yl, p0)
    g = gs * dl
    return loss, g / den, (g * cs / s1 if c1n else 0.0), (g * cs / s2 if c2n else 0.0), 0.0


cembo_f2 = cemb_f2
cembo_f3 = cemb_f3


# --- multilabel_margin (PyTorch): a = scores, b = target counts -----------------------------
# b_j: how often class j is listed in the row's target (before its first negative entry;
# the runner converts PyTorch's index rows).  ℓ = (1/C) Σ_j b_j Σ_{i: b_i = 0}
# max(0, 1 − a_j + a_i).  The row is read whole per element (ROW_ARGS: f2/f3 receive the
# row arrays a, b, c and index them), O(C²) per row as PyTorch.
# ∂ℓ/∂a_j = −(b_j/C)·#{i: b_i = 0, 1 − a_j + a_i > 0} for a target j, and
# (1/C)·Σ_l b_l [1 − a_l + a_j > 0] for a non-target j.

def ind_nan(d):
    """1 where d > 0, 0 where d <= 0, NaN for NaN."""
    return ONE if d > ZERO else (ZERO if d <= ZERO else d)


def mlm_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    n = a.shape[0]
    aj = a[j]
    bj = b[j]
    s = ZERO
    if bj != ZERO:
        for i in range(n):
            if b[i] == ZERO:
                s += relu_nan(sadd(ssub(ONE, aj), a[i]))
        s = bj * s
    nan = ZERO if aj == aj else aj              # a NaN score anywhere: the row is NaN
    return s, nan, ZERO, ZERO, ZERO


def mlm_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return (s0 + s1) / n, gs / n, 0.0, 0.0, 0.0


def mlm_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    n = a.shape[0]
    aj = a[j]
    bj = b[j]
    s = ZERO
    if bj != ZERO:
        for i in range(n):
            if b[i] == ZERO:
                s += ind_nan(sadd(ssub(ONE, aj), a[i]))
        s = -(bj * s)
    else:
        for i in range(n):
            bi = b[i]
            if bi != ZERO:
                s += bi * ind_nan(sadd(ssub(ONE, a[i]), aj))
    s = s if aj == aj else aj                   # a NaN score: its gradient is NaN
    return c0 * s, ZERO, ZERO


ROW_ARGS = ("mlm",)   # tags whose f2/f3 take the row arrays (a, b, c) instead of elements


# --- multiclass_sparsemax_loss (optax): a = scores, k the label ---------------------------
# p = sparsemax(z) = max(z − τ, 0), τ the threshold with Σ p = 1.  ℓ = Σ_j p_j (z_j − z_k)
# + ½ (1 − Σ p_j²) (optax's form), gradient p − onehot(k), diagonal Hessian
# [p_j > 0](1 − 1/|S|) (S the support; the Jacobian of sparsemax is diag(s) − s sᵀ/|S|).
# τ (the refinement phase, see t2/tfin): phase 1 gives τ₀ = max z − 1 <= τ; then
# τ ← (Σ_{z_j > τ} z_j − 1) / #{z_j > τ} until the support's size repeats (Michelot's
# fixed point from below: τ never decreases and never passes the exact τ, the support only
# shrinks; at most C + 1 passes, a few in practice); the final τ is the exact formula on
# the exact support, to float64 rounding of its sum.

def msm_f1(a, b, j, k):
    return ssub(a, ONE)


def msm_t2(a, b, j, k, t, p0, p1, p2, p3):
    on = a > t
    return (a if on else ZERO), (ONE if on else ZERO)


def msm_tfin(u0, u1, t, n, p0, p1, p2, p3):
    return ((u0 - 1.0) / u1 if u1 > 0 else t), u1


def msm_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    p = relu_nan(ssub(a, m))
    nan = ZERO if a == a else a
    t = ZERO if p == ZERO else p * ssub(a, xk)  # outside the support: 0 (optax's where)
    return t, p * p, (ONE if p > ZERO else ZERO), nan, ZERO


def msm_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    v = s0 + 0.5 * (1.0 - s1)
    v = 0.0 if v < 0 else v                     # >= 0 but for rounding (keeps NaN)
    nan = 0.0 if s3 == s3 else s3
    return v + s3, gs + nan, gs + nan, 0.0, 0.0


def msm_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    return c0 * relu_nan(ssub(a, m)), ZERO, ZERO


def msm_fixk(g, c0, c1, c2, c3):
    return g - c1


def msm_hfin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return 1.0 - 1.0 / s2 if s2 > 0 else 0.0


def msm_h3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, ch, p0, p1, p2, p3):
    p = ssub(a, m)
    return c0 * (ch if p > ZERO else (ZERO if p <= ZERO else p))


# --- dice / tversky (soft, per sample): a = pred, b = target -------------------------------
# s0 = Σ p t, s1 = Σ p (1 − t), s2 = Σ (1 − p) t (no cancellation); p0 = α, p1 = β,
# p2, p3 = the numerator's and denominator's smoothing divided by the numerator's factor c:
# ℓ = 1 − (s0 + p2) / (s0 + α s1 + β s2 + p3).  Dice: c = 2, α = β = ½ (the denominator is
# ½(Σp + Σt) + sdr/2); Tversky: c = 1.
# ∂ℓ/∂p_j = −u_j/D + N v_j/D²,  u = t, v = t(1 − β) + α(1 − t)   (N, D the fraction's parts)
# ∂ℓ/∂t_j = −p_j/D + N (p_j(1 − α) + β(1 − p_j))/D²
# ∂²ℓ/∂p_j² = 2 v_j (u_j D − N v_j)/D³ (the linear sums have no second derivative).

def tvk_f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3):
    return a * b, a * ssub(ONE, b), ssub(ONE, a) * b, ZERO, ZERO


def tvk_fin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    num = s0 + p2
    den = s0 + p0 * s1 + p1 * s2 + p3
    r = num / den
    return 1.0 - r, gs / den, gs * r / den, 0.0, 0.0


def tvk_f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3):
    v = b * ssub(ONE, p1) + p0 * ssub(ONE, b)
    vt = a * ssub(ONE, p0) + p1 * ssub(ONE, a)
    return c1 * v - c0 * b, c1 * vt - c0 * a, ZERO


def tvk_hfin(s0, s1, s2, s3, m, xk, wk, yl, n, gs, p0, p1, p2, p3):
    return 2.0 / (s0 + p0 * s1 + p1 * s2 + p3)


def tvk_h3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, ch, p0, p1, p2, p3):
    v = b * ssub(ONE, p1) + p0 * ssub(ONE, b)
    return ch * v * (c0 * b - c1 * v)
