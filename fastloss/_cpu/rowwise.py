"""CPU kernel shapes for row-wise losses: rows in parallel, or row chunks in parallel.

Both functions are templates: :func:`fastloss._compile.cpu_kernel` copies them with the
globals below bound to one loss's compiled row math (``f1, f2, fin, f3`` from
:mod:`fastloss._math.rowwise`) and its compile-time flags, under a name of their own, so
that each loss gets its own cacheable kernel.  Gradient outputs passed as ``None`` are
pruned at compile time; inputs a loss does not use are passed as a copy of ``A`` (their
loads are dead code).

* ``row_kernel`` — ``prange`` over rows; inside a row three plain loops (max, sums,
  gradient) that LLVM vectorizes.  Used when there are enough rows for every thread.
* ``chunk_kernel`` — few long rows: the same three phases, each a ``prange`` over
  (row, column chunk) pairs, partial results combined per row in a fixed order (the
  result does not depend on the thread count).

Row sums are accumulated in float64; row losses are summed after the parallel loop in row
order (deterministic for any thread count); the row scalars ``fin`` returns are cast back to the
array dtype (``FT``) so that the gradient loop stays in that dtype.

``KEEP`` (losses with an ``f3k``, the softmax ones): phase 2 also stores each element's
first term ``exp(x − m)`` in the first gradient buffer and phase 3 finishes it in place,
so each element costs one ``exp`` instead of two (phase 2 keeps them in a stack array while
summing and then copies them, so that its sums do not depend on gA's address; see
``_rowsums``).  Both kernels share this through
``_rowsums``/``_rowgrad``.  (A chunk-local online maximum, which would read the logits
once instead of twice, measured no faster here: the exp pass is compute bound.)

``REFINE`` (losses with ``<tag>_t2``): after phase 1 the row scalar is refined by
``_rowrefine`` (a few passes over the row; the chunked kernel runs it per row, serially).
``ROWARGS``: ``f2``/``f3`` get the row arrays instead of elements (see
:mod:`fastloss._math.rowwise`).

``gH`` (the diagonal Hessian w.r.t. ``A``, losses with ``<tag>_h3``): ``None`` prunes the
Hessian code at compile time, so it is compiled (as another specialization of the same
kernel) only for calls that pass a buffer.  The row coefficients pass through ``fence``
before phase 3, and the Hessian entry is written with strict operations only, so the
gradient of a Hessian call has the bits of a gradient-only call, and the serial, parallel
and chunked kernels store the same bits.
"""
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .._math.strict import sadd
from .elementwise import borrowed, maxnum, stack_like
from .fold import chunk_sum

f1 = None           # bound per loss (see fastloss._math.rowwise)
f2 = None
fin = None
f3 = None
fixk = None         # bound for losses with a label fix-up (FIXK)
f3k = None          # bound for losses whose phase 3 reuses the kept phase-2 term (KEEP)
hfin = None         # diagonal Hessian (losses with <tag>_h3; no_* stand-ins otherwise):
h3 = None           # its row coefficient, its entry, and its entry from the kept term
h3k = None
FT = None           # numba.float32 / numba.float64
FIXK = False        # gA[i, k] = fixk(gA[i, k], c0..c3) after phase 3
NEED_MAX = False    # phase 1 runs
INT_LABELS = False  # K holds integer class labels (out of range = ignored row)
FLOAT_LABELS = False  # YL holds a float label per row
HAS_CW = False      # CW holds class weights
KEEP = False        # phase 2 stores its first term v0 in gA, phase 3 runs f3k(v0, ...)
ROWARGS = False     # f2/f3 take the row arrays (a, b, c) and index them (ROW_ARGS tags)
REFINE = False      # the row scalar m is refined after phase 1 (losses with <tag>_t2)
t2 = None           # bound for REFINE: the refinement's terms and its finish
tfin = None


BLK = 512   # phase-2 sums: terms of a block summed by chunk_sum, blocks added in order
SMALL = 8   # rows of at most this many columns: phase-2 terms added one by one (no staging;
            # integer-label softmax CE value+gradient, float32, AVX-512: 5 columns 1.3x faster,
            # 10 alike, 16 1.2x slower than staged)


@intrinsic
def fence(typingctx, x):
    """``llvm.arithmetic.fence``: ``x`` unchanged, but fast-math regrouping never crosses it
    (the row coefficients of ``fin`` are fenced before phase 3, so that how LLVM merges
    ``fin`` into the gradient loop never depends on what else that loop computes: the
    gradient has the same bits with or without the Hessian)."""
    if not isinstance(x, types.Float):
        return None

    def codegen(context, builder, sig, args):
        lt = context.get_value_type(sig.args[0])
        name = ("llvm.arithmetic.fence.f32" if lt == ir.FloatType()
                else "llvm.arithmetic.fence.f64")
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(lt, [lt]), name)
        return builder.call(fn, args)

    return x(x), codegen


def _span(t, nch, chunk, D):
    """(row, first column, end column) of work item t of the chunked kernel."""
    i = t // nch
    lo = (t - i * nch) * chunk
    return i, lo, min(lo + chunk, D)


def _rowmax(a, b, lo, hi, k):
    """max_j f1(a_j, b_j, j, k) over [lo, hi), NaN entries ignored (NaN reaches the loss
    through the phase-2 sums instead)."""
    m = FT(-np.inf)
    for j in range(lo, hi):
        u = np.uint64(j)  # unsigned index: no wraparound select, loads stay contiguous
        m = maxnum(m, f1(a[u], b[u], j, k))
    return m


def _rowrefine(a, b, D, k, m, p0, p1, p2, p3):
    """The refined row scalar (``REFINE``): from ``t = m``, ``t, key = tfin(Σ_j t2(a_j, b_j,
    j, k, t))`` until ``key`` repeats (at most D + 2 passes); each pass's two sums in the
    fixed block order of :func:`_rowsums`, so that every kernel gets the same bits."""
    t = m
    key = -1.0
    nf = float(D)
    w0, w1 = t2(a[0], b[0], 0, k, t, p0, p1, p2, p3)
    q0 = stack_like(BLK, w0)
    q1 = stack_like(BLK, w1)
    for it in range(D + 2):
        s0 = 0.0
        s1 = 0.0
        for j0 in range(0, D, BLK):
            n = min(j0 + BLK, D) - j0
            for jj in range(n):
                u = np.uint64(j0 + jj)
                v0, v1 = t2(a[u], b[u], j0 + jj, k, t, p0, p1, p2, p3)
                q = np.uint64(jj)
                q0[q] = v0
                q1[q] = v1
            s0 = sadd(s0, chunk_sum(q0, n))
            s1 = sadd(s1, chunk_sum(q1, n))
        tn, kn = tfin(s0, s1, t, nf, p0, p1, p2, p3)
        if kn == key:
            break
        key = kn
        t = FT(tn)
    return t


def _f2at(a, b, c, wj, u, j, k, m, xk, p0, p1, p2, p3):
    """f2 at column j (the row arrays themselves for ``ROWARGS``)."""
    if ROWARGS:
        return f2(a, b, c, wj, j, k, m, xk, p0, p1, p2, p3)
    return f2(a[u], b[u], c[u], wj, j, k, m, xk, p0, p1, p2, p3)


def _rowsums(a, b, c, CW, gA, i, lo, hi, k, m, xk, p0, p1, p2, p3):
    """Σ_j f2(...) over [lo, hi) (lo < hi), in one fixed order: per block of ``BLK``
    columns the terms go to stack arrays and each is summed in float64 by
    :func:`fastloss._cpu.fold.chunk_sum` (a loop whose grouping depends on the block length
    only), the block sums added in order with strict adds.  A sum accumulated inside the
    loop that evaluates ``f2`` would be grouped as LLVM vectorizes that loop, which differs
    between the parallel kernel, its serial twin and the chunked kernel (their gradients
    were 1 ulp apart on some machines).  The stack arrays have the terms' own type
    (``stack_like``: the dtype, float64 where the math widens, as squared norms do), typed
    from the first column's terms, computed before the loop.  With ``KEEP`` (and a gradient
    wanted) the first terms are then copied to gA: no loop both reads the inputs and stores
    into a caller's buffer (whose vector/scalar path would depend on its address)."""
    one = FT(1.0)
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    u = np.uint64(lo)
    wj = one
    if HAS_CW:
        wj = CW[u]
    w0, w1, w2, w3, w4 = _f2at(a, b, c, wj, u, lo, k, m, xk, p0, p1, p2, p3)
    if hi - lo <= SMALL:
        return _rowsums_small(a, b, c, CW, gA, i, lo, hi, k, m, xk, p0, p1, p2, p3,
                              w0, w1, w2, w3, w4)
    q0 = stack_like(BLK, w0)
    q1 = stack_like(BLK, w1)
    q2 = stack_like(BLK, w2)
    q3 = stack_like(BLK, w3)
    q4 = stack_like(BLK, w4)
    q0[0] = w0
    q1[0] = w1
    q2[0] = w2
    q3[0] = w3
    q4[0] = w4
    for j0 in range(lo, hi, BLK):
        n = min(j0 + BLK, hi) - j0
        first = 1 if j0 == lo else 0       # (the first column is computed above)
        for jj in range(first, n):
            j = j0 + jj
            u = np.uint64(j)
            wj = one
            if HAS_CW:
                wj = CW[u]
            v0, v1, v2, v3, v4 = _f2at(a, b, c, wj, u, j, k, m, xk, p0, p1, p2, p3)
            q = np.uint64(jj)
            q0[q] = v0
            q1[q] = v1
            q2[q] = v2
            q3[q] = v3
            q4[q] = v4
        if KEEP and gA is not None:
            for jj in range(n):
                gA[i, np.uint64(j0 + jj)] = q0[np.uint64(jj)]
        s0 = sadd(s0, chunk_sum(q0, n))
        s1 = sadd(s1, chunk_sum(q1, n))
        s2 = sadd(s2, chunk_sum(q2, n))
        s3 = sadd(s3, chunk_sum(q3, n))
        s4 = sadd(s4, chunk_sum(q4, n))
    return s0, s1, s2, s3, s4


def _rowsums_small(a, b, c, CW, gA, i, lo, hi, k, m, xk, p0, p1, p2, p3,
                   w0, w1, w2, w3, w4):
    """:func:`_rowsums` for short rows (at most ``SMALL`` columns; ``w*`` are the first
    column's terms): the terms added one by one in column order with strict float64 adds.
    Staging a few terms costs more than computing them (integer-label softmax CE value, 5
    classes: 1.6× the time per row); a strict sum has one order, whichever kernel runs it."""
    one = FT(1.0)
    s0 = sadd(0.0, w0)
    s1 = sadd(0.0, w1)
    s2 = sadd(0.0, w2)
    s3 = sadd(0.0, w3)
    s4 = sadd(0.0, w4)
    if KEEP and gA is not None:
        gA[i, np.uint64(lo)] = w0
    for j in range(lo + 1, hi):
        u = np.uint64(j)
        wj = one
        if HAS_CW:
            wj = CW[u]
        v0, v1, v2, v3, v4 = _f2at(a, b, c, wj, u, j, k, m, xk, p0, p1, p2, p3)
        if KEEP and gA is not None:
            gA[i, u] = v0
        s0 = sadd(s0, v0)
        s1 = sadd(s1, v1)
        s2 = sadd(s2, v2)
        s3 = sadd(s3, v3)
        s4 = sadd(s4, v4)
    return s0, s1, s2, s3, s4


def _rowgrad(a, b, c, CW, gA, gB, gC, gH, i, lo, hi, k, m, xk, c0, c1, c2, c3, ch,
             p0, p1, p2, p3):
    """Phase 3 over columns [lo, hi) of row i: gradients from the row coefficients c0..c3
    (and the diagonal Hessian, with ``ch``, when ``gH`` is an array)."""
    one = FT(1.0)
    for j in range(lo, hi):
        u = np.uint64(j)  # unsigned index: no wraparound select, stores stay contiguous
        wj = one
        if HAS_CW:
            wj = CW[u]
        if KEEP and gA is not None:
            e = gA[i, u]
            ga, gb, gc = f3k(e, a[u], b[u], c[u], wj, j, k, m, xk, c0, c1, c2, c3,
                             p0, p1, p2, p3)
            if gH is not None:
                gH[i, u] = h3k(e, a[u], b[u], c[u], wj, j, k, m, xk, c0, c1, c2, c3, ch,
                               p0, p1, p2, p3)
        elif ROWARGS:
            ga, gb, gc = f3(a, b, c, wj, j, k, m, xk, c0, c1, c2, c3, p0, p1, p2, p3)
        else:
            ga, gb, gc = f3(a[u], b[u], c[u], wj, j, k, m, xk, c0, c1, c2, c3,
                            p0, p1, p2, p3)
            if gH is not None:
                gH[i, u] = h3(a[u], b[u], c[u], wj, j, k, m, xk, c0, c1, c2, c3, ch,
                              p0, p1, p2, p3)
        if gA is not None:
            gA[i, u] = ga
        if gB is not None:
            gB[i, u] = gb
        if gC is not None:
            gC[i, u] = gc
    if FIXK and gA is not None and k >= lo and k < hi:
        gA[i, k] = fixk(gA[i, k], c0, c1, c2, c3)


def _rowzero(gA, gB, gC, gH, i, lo, hi):
    """Zero gradients (and Hessian) over columns [lo, hi) of row i (ignored rows)."""
    zero = FT(0.0)
    for j in range(lo, hi):
        if gA is not None:
            gA[i, j] = zero
        if gB is not None:
            gB[i, j] = zero
        if gC is not None:
            gC[i, j] = zero
        if gH is not None:
            gH[i, j] = zero


def row_kernel(A, B, Cm, K, YL, CW, SW, ws, p0, p1, p2, p3, gscale, out_l, gA, gB, gC, gH):
    """Σ rw·ℓ (float64) and the count of invalid entries; stores rw·ℓ and the gradients
    (and the diagonal Hessian w.r.t. ``A`` into ``gH``, unless it is None)."""
    N, D = A.shape
    nf = float(D)
    zero = FT(0.0)
    one = FT(1.0)
    rv = np.empty(N)   # per-row results, summed in order after the parallel loop
    rb = np.zeros(N)
    Ab = borrowed(A)   # row views without atomic reference counting (see borrowed)
    Bb = borrowed(B)
    Cb = borrowed(Cm)
    for i in prange(N):
        a = Ab[i]
        b = Bb[i]
        c = Cb[i]
        k = 0
        xk = zero
        wk = one
        yl = 0.0
        valid = True
        if INT_LABELS:
            k = K[i]
            valid = k >= 0 and k < D
            if valid:
                xk = a[k]
                if HAS_CW:
                    wk = CW[k]
        if FLOAT_LABELS:
            yl = YL[i]
        rw = ws
        if SW is not None:
            rw = SW[i] * ws
        loss = 0.0
        if valid:
            m = FT(-np.inf)
            if NEED_MAX:
                m = _rowmax(a, b, 0, D, k)
            if REFINE:
                m = _rowrefine(a, b, D, k, m, p0, p1, p2, p3)
            s0, s1, s2, s3, s4 = _rowsums(a, b, c, CW, gA, i, 0, D, k, m, xk, p0, p1, p2, p3)
            rb[i] = s4
            loss, c0, c1, c2, c3 = fin(s0, s1, s2, s3, m, xk, wk, yl, nf, rw * gscale,
                                       p0, p1, p2, p3)
            if gA is not None or gB is not None or gC is not None:
                ch = zero
                if gH is not None:
                    ch = fence(FT(hfin(s0, s1, s2, s3, m, xk, wk, yl, nf, rw * gscale,
                                       p0, p1, p2, p3)))
                c0 = fence(FT(c0))   # (see fence)
                c1 = fence(FT(c1))
                c2 = fence(FT(c2))
                c3 = fence(FT(c3))
                _rowgrad(a, b, c, CW, gA, gB, gC, gH, i, 0, D, k, m, xk, c0, c1, c2, c3, ch,
                         p0, p1, p2, p3)
        else:
            _rowzero(gA, gB, gC, gH, i, 0, D)
        v = loss * rw
        if out_l is not None:
            out_l[i] = v
        rv[i] = v
    s = 0.0
    bad = 0.0
    for i in range(N):
        s += rv[i]
        bad += rb[i]
    return s, bad


def chunk_kernel(A, B, Cm, K, YL, CW, SW, ws, p0, p1, p2, p3, gscale, out_l, gA, gB, gC,
                 gH, chunk):
    """``row_kernel`` for few long rows: each phase is a prange over (row, chunk)."""
    N, D = A.shape
    nf = float(D)
    zero = FT(0.0)
    one = FT(1.0)
    nch = (D + chunk - 1) // chunk
    T = N * nch
    # per-row scalars
    ks = np.zeros(N, np.int64)
    valid = np.ones(N, np.bool_)
    xks = np.zeros(N, A.dtype)
    wks = np.ones(N, A.dtype)
    for i in range(N):
        if INT_LABELS:
            k = K[i]
            ks[i] = k
            valid[i] = k >= 0 and k < D
            if valid[i]:
                xks[i] = A[i, k]
                if HAS_CW:
                    wks[i] = CW[k]
    # phase 1: chunk maxima
    pm = np.empty(T, A.dtype)
    for t in prange(T):
        i, lo, hi = _span(t, nch, chunk, D)
        m = FT(-np.inf)
        if NEED_MAX:
            m = _rowmax(A[i], B[i], lo, hi, ks[i])
        pm[t] = m
    ms = np.empty(N, A.dtype)
    for i in range(N):
        m = FT(-np.inf)
        for q in range(nch):
            v = pm[i * nch + q]
            m = v if v > m else m
        if REFINE and valid[i]:
            m = _rowrefine(A[i], B[i], D, ks[i], m, p0, p1, p2, p3)
        ms[i] = m
    # phase 2: chunk sums
    ps = np.zeros((T, 5))
    for t in prange(T):
        i, lo, hi = _span(t, nch, chunk, D)
        if valid[i]:
            k = ks[i]
            m = ms[i]
            xk = xks[i]
            a = A[i]
            b = B[i]
            c = Cm[i]
            s0, s1, s2, s3, s4 = _rowsums(a, b, c, CW, gA, i, lo, hi, k, m, xk,
                                          p0, p1, p2, p3)
            ps[t, 0] = s0
            ps[t, 1] = s1
            ps[t, 2] = s2
            ps[t, 3] = s3
            ps[t, 4] = s4
    # finish per row
    coef = np.zeros((N, 5), A.dtype)
    s = 0.0
    bad = 0.0
    for i in range(N):
        rw = ws
        if SW is not None:
            rw = SW[i] * ws
        loss = 0.0
        if valid[i]:
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for q in range(nch):      # in chunk order, as the row kernel adds its blocks
                t = i * nch + q
                s0 = sadd(s0, ps[t, 0])
                s1 = sadd(s1, ps[t, 1])
                s2 = sadd(s2, ps[t, 2])
                s3 = sadd(s3, ps[t, 3])
                bad += ps[t, 4]
            yl = 0.0
            if FLOAT_LABELS:
                yl = YL[i]
            loss, c0, c1, c2, c3 = fin(s0, s1, s2, s3, ms[i], xks[i], wks[i], yl, nf,
                                       rw * gscale, p0, p1, p2, p3)
            coef[i, 0] = c0
            coef[i, 1] = c1
            coef[i, 2] = c2
            coef[i, 3] = c3
            if gH is not None:
                coef[i, 4] = hfin(s0, s1, s2, s3, ms[i], xks[i], wks[i], yl, nf,
                                  rw * gscale, p0, p1, p2, p3)
        v = loss * rw
        if out_l is not None:
            out_l[i] = v
        s += v
    # phase 3: gradients
    if gA is not None or gB is not None or gC is not None:
        for t in prange(T):
            i, lo, hi = _span(t, nch, chunk, D)
            if valid[i]:
                k = ks[i]
                m = ms[i]
                xk = xks[i]
                c0 = fence(coef[i, 0])
                c1 = fence(coef[i, 1])
                c2 = fence(coef[i, 2])
                c3 = fence(coef[i, 3])
                ch = fence(coef[i, 4])
                a = A[i]
                b = B[i]
                c = Cm[i]
                _rowgrad(a, b, c, CW, gA, gB, gC, gH, i, lo, hi, k, m, xk, c0, c1, c2, c3,
                         ch, p0, p1, p2, p3)
            else:
                _rowzero(gA, gB, gC, gH, i, lo, hi)
    return s, bad


def scan_labels(K, D, ign, has_ign):
    """The number of labels in [0, D), with the labels equal to ``ign`` (when ``has_ign``)
    set to -1 (ignored rows), or -1 at the first label that is neither (the caller then
    takes the checked path, which raises).  Template of :mod:`fastloss._rowplan`'s scan."""
    n = 0
    for i in range(K.shape[0]):
        k = K[i]
        if has_ign and k == ign:
            K[i] = -1
        elif 0 <= k < D:
            n += 1
        else:
            return -1
    return n
