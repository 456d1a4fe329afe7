"""CPU kernel shape for elementwise losses: one fused, parallel pass.

``ew_kernel`` is a template: :func:`fastloss._compile.cpu_kernel` copies it with the
globals ``loss_fn``, ``check_fn`` and ``FT`` bound to one loss's compiled scalar math and
dtype, under a name of its own, so that each loss gets its own cacheable kernel
(``ew3_kernel``: its twin for the losses of three arrays, which also stores the gradients
w.r.t. the second and third).  Outputs
passed as ``None`` are pruned at compile time (Numba types them as ``none``), so
value-only, value+gradient and gradient+Hessian calls each compile to a loop that stores
only what is asked for.

The loop runs over blocks of ``BLK`` elements in parallel.  The sum has one fixed order,
defined in :mod:`fastloss._cpu.fold` (float64 chunk sums, blocks added in order from
``s_in``), written with strict adds that no compiler flag may regroup: it does not depend
on the scheduler, the thread count, the vector width chosen, or whether the caller wanted
outputs; the serial twin computes the same blocks in the same order; and a sequence of
calls on consecutive slices whose lengths are multiples of ``BLK``, each starting from the
previous total, gives the bits of one call on the whole array (what streaming relies on).
Indices are unsigned: with a signed index starting at an unknown ``lo`` Numba emits a
negative-index wraparound select per access, which turned the loads into gathers (10x slower).

Address independence: a loop that loads the inputs and stores into the caller's buffers
gets a run-time alias check from LLVM's vectorizer, and outputs within a vector's reach of
an input (``out=pred`` in place, adjacent small allocations) then run the scalar loop, whose
sum and per-element polynomials differ in their last bits.  With outputs, each chunk of
``CH`` elements is therefore computed into stack arrays (``stack_empty``: no alias check,
the path depends on the length only) and then copied out while summing.
"""
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

loss_fn = None   # bound per loss: (x, y, a, b, c) -> (value, grad, hess)
check_fn = None  # bound per loss: (x, y, a, b, c) -> bool, False for an invalid label
FT = None        # bound: numba.float32 or numba.float64

from .fold import BLK, CH, chunk_sum  # noqa: E402  (the fixed summation order)
from .._math.strict import sadd  # noqa: E402



def _stack_array(size, ty):
    """Signature and codegen of a stack array of ``size`` (a literal) elements of ``ty``."""
    n = size.literal_value
    arrty = types.Array(ty, 1, "C")

    def codegen(context, builder, sig, args):
        lt = context.get_data_type(ty)
        ptr = cgutils.alloca_once(builder, lt, size=n)
        ptr.align = 64    # whole cache lines: vector stores never straddle two
        ary = context.make_array(arrty)(context, builder)
        itemsize = context.get_abi_sizeof(lt)
        context.populate_array(ary, data=ptr,
                               shape=[context.get_constant(types.intp, n)],
                               strides=[context.get_constant(types.intp, itemsize)],
                               itemsize=context.get_constant(types.intp, itemsize),
                               meminfo=None)
        return ary._getvalue()

    return arrty, codegen


@intrinsic(prefer_literal=True)
def stack_empty(typingctx, size, dtype):
    """A 1-D array of ``size`` (a literal) elements of ``dtype`` on the stack of the running
    function (an ``alloca`` in its entry block; per thread inside a ``prange``).  LLVM knows
    a local that does not escape aliases no argument, so a loop that loads inputs and
    stores only into such arrays is vectorized without a run-time alias check."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    ty = getattr(dtype, "dtype", dtype)
    if not isinstance(ty, types.Float):
        return None
    arrty, codegen = _stack_array(size, ty)
    return arrty(size, dtype), codegen


@intrinsic(prefer_literal=True)
def stack_like(typingctx, size, value):
    """:func:`stack_empty` with the dtype of a float ``value`` (a term whose type the
    compiled math decides: float32, or float64 where it widens)."""
    if not isinstance(size, types.IntegerLiteral) or not isinstance(value, types.Float):
        return None
    arrty, codegen = _stack_array(size, value)
    return arrty(size, value), codegen


@intrinsic
def borrowed(typingctx, arr):
    """``arr`` without its memory-info pointer: views taken from it (``arr[i]`` per row)
    skip the atomic reference counting Numba does for each view (NRT_incref/NRT_decref,
    ``lock``-prefixed; 82 % of the time of a serial float64 softmax cross-entropy over
    2 000 rows of 5 classes went there).  Only for arrays the caller keeps alive for the
    whole kernel call, whose views do not outlive it."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, value=args[0])
        dst = context.make_array(sig.return_type)(context, builder)
        context.populate_array(dst, data=src.data,
                               shape=cgutils.unpack_tuple(builder, src.shape),
                               strides=cgutils.unpack_tuple(builder, src.strides),
                               itemsize=src.itemsize, meminfo=None)
        return dst._getvalue()

    return arr(arr), codegen


def _nan_ignoring(op):
    """An intrinsic ``f(x, y)`` for ``llvm.<op>`` (IEEE minNum/maxNum: a NaN operand is
    ignored): LLVM vectorizes these reductions, whereas a select-based min/max without
    ``nnan`` stays scalar."""
    def typer(typingctx, x, y):
        if not (isinstance(x, types.Float) and x == y):
            return None

        def codegen(context, builder, sig, args):
            lt = context.get_value_type(sig.args[0])
            name = f"llvm.{op}.f32" if lt == ir.FloatType() else f"llvm.{op}.f64"
            fn = cgutils.get_or_insert_function(builder.module,
                                                ir.FunctionType(lt, [lt, lt]), name)
            return builder.call(fn, args)

        return x(x, y), codegen

    typer.__name__ = op
    return intrinsic(typer)


minnum = _nan_ignoring("minnum")
maxnum = _nan_ignoring("maxnum")


def outside_count(v, lo, hi, mag):
    """The number of elements ``a`` of a 1-D float array (``a = |v|`` when ``mag``) with
    ``a < lo`` or ``a > hi``; NaN is never counted (both comparisons are false): the domain
    checks of the elementwise runner in one vectorized pass of ordered comparisons, in the
    array's own dtype (``lo``, ``hi`` of that dtype), per block in parallel (template:
    compiled by :func:`fastloss._compile.cpu_kernel`)."""
    n = v.shape[0]
    nb = (n + BLK - 1) // BLK
    r = np.empty(nb, np.int64)
    for blk in prange(nb):
        j0 = blk * BLK
        j1 = min(j0 + BLK, n)
        c = np.int32(0)
        if mag:
            for j in range(j0, j1):
                a = abs(v[np.uint64(j)])
                c += np.int32((a < lo) | (a > hi))
        else:
            for j in range(j0, j1):
                a = v[np.uint64(j)]
                c += np.int32((a < lo) | (a > hi))
        r[blk] = c
    t = 0
    for blk in range(nb):
        t += r[blk]
    return t


def ew_kernel(x, y, w, ws, a, b, c, gscale, out_l, out_g, out_h, s_in, mm=None, nov=None):
    """``s_in`` + Σ w·ℓ (float64, in the fixed order of :func:`lane_fold`) and the count of
    invalid labels; stores w·ℓ, gscale·w·ℓ', gscale·w·ℓ''.

    x, y, w (or None): 1-D, same length; ws: scalar weight; a, b, c: loss parameters.
    ``mm`` (omitted: compiled out): an (nblocks, 2) array that gets each block's min and
    max of w·ℓ (without a NaN; a block holding one has a NaN sum), so that a caller that
    needs the range but not the values does not store them.  ``nov`` (omitted: compiled
    out; passed, any value: no values): for callers that want only the gradient (and
    Hessian) -- the values are neither stored nor summed, so their math is dead code
    (sigmoid BCE: the ``log1p``), and the sum returned is ``s_in``; ``out_l`` and ``mm``
    must then be None.
    """
    n = x.shape[0]
    nb = (n + BLK - 1) // BLK
    zero = FT(0.0)
    one = FT(1.0)
    ps = np.empty(nb)   # block sums and counts, added in block order after the loop
    pb = np.empty(nb)
    for blk in prange(nb):
        lo = blk * BLK
        hi = min(lo + BLK, n)
        tb = zero
        # A loop that loads the inputs and stores into the caller's buffers gets a
        # run-time alias check from LLVM: outputs within a vector's reach of an input
        # (adjacent small allocations, out=pred in place) run the scalar loop, whose
        # per-element math (the vectorized exp/log polynomials) differs in its last bits
        # from the vector loop's.  So per chunk: (1) compute into stack arrays (no alias
        # check: always the same path for a given length), (2) copy them to the outputs
        # (bit exact on either path), (3) sum the values (:func:`fastloss._cpu.fold.chunk_sum`).
        sv = stack_empty(CH, FT)
        sg = stack_empty(CH, FT)
        sh = stack_empty(CH, FT)
        t = 0.0
        vlo = FT(np.inf)
        vhi = FT(-np.inf)
        for c0 in range(lo, hi, CH):
            m = min(c0 + CH, hi) - c0
            for j0 in range(m):
                j = np.uint64(j0)
                i = np.uint64(c0 + j0)
                xi = x[i]
                yi = y[i]
                v, g, h = loss_fn(xi, yi, a, b, c)
                tb += zero if check_fn(xi, yi, a, b, c) else one
                wi = ws
                if w is not None:
                    wi = w[i] * ws
                # weight 0: no contribution, also from an infinite (overflowed) loss;
                # NaN stays NaN
                if nov is None:
                    sv[j] = zero if (wi == zero and v == v) else FT(v * wi)
                if out_g is not None:
                    sg[j] = zero if (wi == zero and g == g) else g * (wi * gscale)
                if out_h is not None:
                    sh[j] = zero if (wi == zero and h == h) else h * (wi * gscale)
            if out_l is not None or out_g is not None or out_h is not None:
                for j0 in range(m):
                    j = np.uint64(j0)
                    i = np.uint64(c0 + j0)
                    if out_l is not None:
                        out_l[i] = sv[j]
                    if out_g is not None:
                        out_g[i] = sg[j]
                    if out_h is not None:
                        out_h[i] = sh[j]
            if nov is None:
                t = sadd(t, chunk_sum(sv, m))
            if mm is not None:
                for j0 in range(m):
                    e = sv[np.uint64(j0)]
                    vlo = minnum(vlo, e)
                    vhi = maxnum(vhi, e)
        ps[blk] = t
        pb[blk] = tb
        if mm is not None:
            mm[blk, 0] = vlo
            mm[blk, 1] = vhi
    s = s_in
    bad = 0.0
    for blk in range(nb):
        s = sadd(s, ps[blk])
        bad += pb[blk]
    return s, int(bad)


def ew3_kernel(x, y, z, w, ws, a, b, c, gscale, out_l, out_g, out_h, out_gy, out_gz, s_in):
    """:func:`ew_kernel` for the losses of three arrays: ``loss_fn(x, y, z, a, b, c) ->
    (value, d/dx, d²/dx², d/dy, d/dz)``; also stores gscale·w·d/dy and gscale·w·d/dz
    (``out_gy``, ``out_gz``; None prunes them).  Same blocks, chunks and summation order.
    """
    n = x.shape[0]
    nb = (n + BLK - 1) // BLK
    zero = FT(0.0)
    one = FT(1.0)
    ps = np.empty(nb)
    pb = np.empty(nb)
    for blk in prange(nb):
        lo = blk * BLK
        hi = min(lo + BLK, n)
        tb = zero
        sv = stack_empty(CH, FT)
        sg = stack_empty(CH, FT)
        sh = stack_empty(CH, FT)
        sy = stack_empty(CH, FT)
        sz = stack_empty(CH, FT)
        t = 0.0
        for c0 in range(lo, hi, CH):
            m = min(c0 + CH, hi) - c0
            for j0 in range(m):
                j = np.uint64(j0)
                i = np.uint64(c0 + j0)
                xi = x[i]
                yi = y[i]
                zi = z[i]
                v, g, h, gy, gz = loss_fn(xi, yi, zi, a, b, c)
                tb += zero if check_fn(xi, yi, zi, a, b, c) else one
                wi = ws
                if w is not None:
                    wi = w[i] * ws
                sv[j] = zero if (wi == zero and v == v) else FT(v * wi)
                if out_g is not None:
                    sg[j] = zero if (wi == zero and g == g) else g * (wi * gscale)
                if out_h is not None:
                    sh[j] = zero if (wi == zero and h == h) else h * (wi * gscale)
                if out_gy is not None:
                    sy[j] = zero if (wi == zero and gy == gy) else gy * (wi * gscale)
                if out_gz is not None:
                    sz[j] = zero if (wi == zero and gz == gz) else gz * (wi * gscale)
            if (out_l is not None or out_g is not None or out_h is not None
                    or out_gy is not None or out_gz is not None):
                for j0 in range(m):
                    j = np.uint64(j0)
                    i = np.uint64(c0 + j0)
                    if out_l is not None:
                        out_l[i] = sv[j]
                    if out_g is not None:
                        out_g[i] = sg[j]
                    if out_h is not None:
                        out_h[i] = sh[j]
                    if out_gy is not None:
                        out_gy[i] = sy[j]
                    if out_gz is not None:
                        out_gz[i] = sz[j]
            t = sadd(t, chunk_sum(sv, m))
        ps[blk] = t
        pb[blk] = tb
    s = s_in
    bad = 0.0
    for blk in range(nb):
        s = sadd(s, ps[blk])
        bad += pb[blk]
    return s, int(bad)
