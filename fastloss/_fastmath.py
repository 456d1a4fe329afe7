"""Branch-free, auto-vectorizable float32 ``exp`` / ``log`` / ``log1p``.

Numba lowers ``math.exp`` / ``math.log`` to scalar libm calls; without SVML
LLVM cannot vectorize a ``prange`` loop that contains them, so float32 losses
built on exp/log become compute bound.  The functions here are Cephes-style
polynomial approximations written so that, after inlining, a loop body
consists only of float arithmetic, compares/selects and int32 bit tricks that
LLVM's loop vectorizer turns into packed AVX2 code.

Public API (usable from ``@njit`` code, any fastmath flags, any error model)::

    fexp(x)    # exp(x)
    fexpn(x)   # exp(x) for x <= 0, flushed to 0 below exp(-87.34) (softmax terms)
    flog(x)    # log(x)
    flog1p(x)  # log(1 + x)

* float32 argument -> float32 result, computed entirely in float32
  (max error <= 2 ulp, see ``tests/test_fastmath.py``); special values
  (0, +-inf, NaN, negative arguments, overflow/underflow) follow C99/numpy;
  ``fexp`` even underflows gradually (denormal results are correct to 1 ulp
  down to exp(-103.97) ~ 2**-150, below that 0).
* float64 (or integer) argument -> ``math.exp`` / ``math.log`` /
  ``math.log1p``, i.e. the ordinary libm result.
* Called from plain Python they simply return the ``math`` module result.

The float32 kernels are also available directly as ``fexp_f32``,
``flog_f32`` and ``flog1p_f32`` (``njit(inline='always', cache=True)``,
float32 only).

Design notes
------------
* Intended kernel flags: ``fastmath={'nsz', 'arcp', 'contract', 'afn',
  'reassoc'}``, ``error_model='numpy'``.  Never ``nnan``/``ninf``: the special
  value handling relies on NaN/inf compares.
* The steps whose accuracy depends on the exact evaluation order (Cody-Waite
  range reduction, the two-step ``2**n`` scaling, the final summations, the
  ``log1p`` rounding correction ``x - ((1 + x) - 1)``) are emitted as raw
  LLVM IR by ``@intrinsic``s with strict IEEE semantics (see ``_STRICT``;
  Numba would otherwise stamp the kernel's fast-math flags onto them too).
  Under ``reassoc`` LLVM would otherwise be allowed to fold e.g.
  ``(1 + x) - 1 -> x`` or ``p * 2**a * 2**b -> p * 2**(a+b)`` (which
  overflows for n = 128), breaking accuracy by up to 2**23 ulp.  The same
  intrinsics keep all integer arithmetic in int32 (Numba's typing would
  promote int32 arithmetic to int64) and hide the only division from Numba's
  ``error_model='python'`` zero-division check, which would add a branch.
* Special cases are handled with ``a if cond else b`` selects on float
  compares, which LLVM if-converts into ``vblendvps``.
"""
import math
import warnings

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import NumbaIRAssumptionWarning
from numba.extending import intrinsic, overload

# Numba's internal SSA pedantic check flags the selects of the inlined overloads below
# ("variable ... is not in scope"); the code is correct (tested to 1 ulp) and the warning,
# repeated per compile, buried the benchmark table.  Silenced for numba's SSA module only.
warnings.filterwarnings("ignore", category=NumbaIRAssumptionWarning, module=r"numba\.core\.ssa")
warnings.filterwarnings("ignore", r"(?s).*is not in scope", NumbaIRAssumptionWarning)

__all__ = ["fexp", "fexpn", "flog", "flog1p", "fexp_f32", "fexpn_f32", "flog_f32",
           "flog1p_f32"]

_f32 = np.float32

# ---------------------------------------------------------------- constants
_ZERO = _f32(0.0)
_HALF = _f32(0.5)
_ONE = _f32(1.0)
_INF = _f32(np.inf)
_NINF = _f32(-np.inf)
_NAN = _f32(np.nan)

# exp --------------------------------------------------------------------
_LOG2E = _f32(1.44269504088896341)
# Cody-Waite split of ln(2): _EXP_C1 has 9 significant bits, so n * _EXP_C1
# is exact for |n| <= 2**15.  _EXP_C1 + _EXP_C2 == ln(2) to ~2**-40.
_EXP_C1 = _f32(0.693359375)
_EXP_C2 = _f32(-2.12194440e-4)
# Largest float32 whose exp() is finite in float32 (0x42b17217).
_EXP_HI = _f32(88.72283172607422)
# Below this exp() rounds to +0 even with gradual underflow
# (exp(-103.97208) ~= 2**-150, half the smallest denormal).
_EXP_LO = _f32(-103.97208)
# Cephes expf minimax polynomial: exp(r) ~= 1 + r + r^2 * P(r), |r| <= ln2/2.
_EXP_P0 = _f32(1.9875691500e-4)
_EXP_P1 = _f32(1.3981999507e-3)
_EXP_P2 = _f32(8.3334519073e-3)
_EXP_P3 = _f32(4.1665795894e-2)
_EXP_P4 = _f32(1.6666665459e-1)
_EXP_P5 = _f32(5.0000001201e-1)

# log --------------------------------------------------------------------
_FLT_MIN = _f32(1.17549435e-38)        # smallest normal, 2**-126
_TWO23 = _f32(8388608.0)               # 2**23
_MINUS23 = _f32(-23.0)
_LOG_C1 = _f32(0.693359375)            # ln2 hi (exact times any exponent)
_LOG_C2 = _f32(-2.12194440e-4)         # ln2 lo
# Cephes logf minimax polynomial on f in [sqrt(1/2)-1, sqrt(2)-1]:
# log(1+f) ~= f - f^2/2 + f^3 * P(f).
_LOG_P0 = _f32(7.0376836292e-2)
_LOG_P1 = _f32(-1.1514610310e-1)
_LOG_P2 = _f32(1.1676998740e-1)
_LOG_P3 = _f32(-1.2420140846e-1)
_LOG_P4 = _f32(1.4249322787e-1)
_LOG_P5 = _f32(-1.6668057665e-1)
_LOG_P6 = _f32(2.0000714765e-1)
_LOG_P7 = _f32(-2.4999993993e-1)
_LOG_P8 = _f32(3.3333331174e-1)

_NEG_ONE = _f32(-1.0)

# ---------------------------------------------------------------- intrinsics
_LL_F32 = ir.FloatType()
_LL_I32 = ir.IntType(32)


def _i32(v):
    return ir.Constant(_LL_I32, v)


def _f32c(v):
    return ir.Constant(_LL_F32, float(v))


# Fast-math flag put on every float instruction the intrinsics emit.  Numba
# applies a kernel's ``fastmath`` flags by rewriting the finished LLVM module,
# tagging every float binop that has *no* flags yet (numba.core.fastmathpass),
# which includes IR emitted by intrinsics.  'afn' only licenses approximating
# library *calls*, so on fadd/fsub/fmul/fdiv it changes nothing, but its mere
# presence makes Numba leave the instruction alone: no reassoc/contract/arcp.
_STRICT = ("afn",)


def _fadd(builder, a, b):
    return builder.fadd(a, b, flags=_STRICT)


def _fsub(builder, a, b):
    return builder.fsub(a, b, flags=_STRICT)


def _fmul(builder, a, b):
    return builder.fmul(a, b, flags=_STRICT)


def _fdiv(builder, a, b):
    return builder.fdiv(a, b, flags=_STRICT)


def _all_f32(*tys):
    return all(t == types.float32 for t in tys)


@intrinsic
def _exp_reduce(typingctx, x):
    """(n, r) with n = floor(x*log2(e) + 1/2) and r = x - n*ln2 (Cody-Waite).

    Emitted with strict IEEE semantics (``_STRICT``) so that
    ``(x - n*C1) - n*C2`` cannot be re-associated into ``x - n*(C1 + C2)``.
    ``x`` must be finite.
    """
    if not _all_f32(x):
        return None
    sig = types.UniTuple(types.float32, 2)(types.float32)

    def codegen(context, builder, signature, args):
        (xv,) = args
        floor = builder.module.declare_intrinsic("llvm.floor", [_LL_F32])
        z = _fmul(builder, xv, _f32c(_LOG2E))
        n = builder.call(floor, [_fadd(builder, z, _f32c(_HALF))])
        r = _fsub(builder, xv, _fmul(builder, n, _f32c(_EXP_C1)))
        r = _fsub(builder, r, _fmul(builder, n, _f32c(_EXP_C2)))
        return context.make_tuple(builder, signature.return_type, (n, r))

    return sig, codegen


def _ldexp2_ir(builder, pv, nv):
    """IR for pv * 2**nv, nv integral in [-252, 254] (see _exp_finish)."""
    ni = builder.fptosi(nv, _LL_I32)
    a = builder.ashr(ni, _i32(1))
    b = builder.sub(ni, a)
    sa = builder.bitcast(builder.shl(builder.add(a, _i32(127)), _i32(23)),
                         _LL_F32)
    sb = builder.bitcast(builder.shl(builder.add(b, _i32(127)), _i32(23)),
                         _LL_F32)
    return _fmul(builder, _fmul(builder, pv, sa), sb)


@intrinsic
def _exp_finish(typingctx, p, r, n):
    """((p*(r*r) + r) + 1) * 2**n, evaluated in exactly this order.

    The scaling is done as ``y * 2**a * 2**b`` with a = n >> 1, b = n - a; each
    power of two is built by writing the biased exponent into the exponent
    field (int32 arithmetic + bitcast).  Being strict (``_STRICT``), the
    products cannot be re-associated into ``y * 2**n`` (overflows for
    n = 128), and the last multiplication rounds only once, so results in the
    denormal range are correctly scaled.  n must be integral, in [-252, 254].
    """
    if not _all_f32(p, r, n):
        return None
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        pv, rv, nv = args
        y = _fmul(builder, pv, _fmul(builder, rv, rv))
        y = _fadd(builder, _fadd(builder, y, rv), _f32c(1.0))
        return _ldexp2_ir(builder, y, nv)

    return sig, codegen


@intrinsic
def _log_split(typingctx, x):
    """(f, k) with x = (1 + f) * 2**k and 1 + f in [sqrt(1/2), sqrt(2)).

    Pure int32 bit manipulation on a positive, normal, finite x:
    ``t = bits(x) - bits(sqrt(1/2)); k = t >> 23 (arithmetic);
    m = bits(x) - (k << 23)``.  f = m - 1 is exact (Sterbenz).
    """
    if not _all_f32(x):
        return None
    sig = types.UniTuple(types.float32, 2)(types.float32)

    def codegen(context, builder, signature, args):
        (xv,) = args
        ix = builder.bitcast(xv, _LL_I32)
        t = builder.sub(ix, _i32(0x3F3504F3))  # bits of sqrt(1/2)
        k = builder.ashr(t, _i32(23))
        m = builder.bitcast(builder.sub(ix, builder.shl(k, _i32(23))), _LL_F32)
        f = _fsub(builder, m, _f32c(1.0))
        kf = builder.sitofp(k, _LL_F32)
        return context.make_tuple(builder, signature.return_type, (f, kf))

    return sig, codegen


@intrinsic
def _log_finish(typingctx, f, e, q):
    """Cephes logf tail: ((q + e*C2) - f*f/2 + f) + e*C1, in this order.

    q = f**3 * P(f) is the polynomial part (computed by the caller with its
    own fast-math flags); the order of the final additions, small terms
    first, is what keeps the result within 1 ulp, so it is emitted strict
    (``_STRICT``).
    """
    if not _all_f32(f, e, q):
        return None
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        fv, ev, qv = args
        z = _fmul(builder, fv, fv)
        y = _fadd(builder, qv, _fmul(builder, ev, _f32c(_LOG_C2)))
        y = _fadd(builder, y, _fmul(builder, _f32c(-0.5), z))
        y = _fadd(builder, fv, y)
        return _fadd(builder, y, _fmul(builder, ev, _f32c(_LOG_C1)))

    return sig, codegen


@intrinsic
def _log1p_split(typingctx, x):
    """(u, c) with u = fl(1 + x) and c = (x - (u - 1)) / u.

    log1p(x) ~= log(u) + c.  Emitted strict (``_STRICT``): under
    ``reassoc``/``nsz`` LLVM would fold ``(1 + x) - 1`` to ``x`` and c to 0.
    The division is a plain ``fdiv`` (no Python zero-division check); for
    u == 0 it yields inf/NaN which the caller replaces by a select.
    """
    if not _all_f32(x):
        return None
    sig = types.UniTuple(types.float32, 2)(types.float32)

    def codegen(context, builder, signature, args):
        (xv,) = args
        u = _fadd(builder, xv, _f32c(1.0))
        um1 = _fsub(builder, u, _f32c(1.0))
        c = _fdiv(builder, _fsub(builder, xv, um1), u)
        return context.make_tuple(builder, signature.return_type, (u, c))

    return sig, codegen


# Below this fexpn flushes to 0: exp(-87.33654) = 2**-126 is the smallest normal float32,
# so one 2**n scaling suffices (n >= -126) and no denormal is produced.
_EXPN_LO = _f32(-87.33654)
# Arguments below _EXPN_LO are replaced by this: round(-88 log2 e) = -127 makes the 2**n
# factor's biased exponent 0, i.e. the factor is +0.0 and so is the result (no select).
_EXPN_FLUSH = _f32(-88.0)
# 1.5 * 2**23: x*log2(e) + _RND rounds to an integer held in the low mantissa bits.
_RND = _f32(12582912.0)
# ln 2 = _LN2_HI + _LN2_LO; _LN2_HI has 16 significant bits, so x - n*_LN2_HI is exact.
_LN2_HI = _f32(float.fromhex("0x1.62e4p-1"))
_LN2_LO = _f32(float.fromhex("0x1.7f7d1cp-20"))
# exp(r) ~= 1 + r + r^2 * Q(r) on |r| <= ln2/2 (+2e-3), Q of degree 4: a relative-error
# fit (iteratively reweighted least squares, float32 coefficients), max rel. error 5e-9.
_EXPN_Q = tuple(_f32(float.fromhex(h)) for h in
                ("0x1.6a1e98p-10", "0x1.123d42p-7", "0x1.555906p-5", "0x1.55548cp-3",
                 "0x1.fffffcp-2"))


@intrinsic
def fexpn_f32(typingctx, x):
    """exp(x) for float32 x <= 0 (also valid up to 88): the exponentials of softmax-like
    terms exp(x - max) and of exp(-|x|).

    About 2x cheaper than ``fexp_f32`` in a vectorized loop: the rounding to
    n = round(x log2 e) is the add-1.5*2**23 trick (n's bits are read from the sum, no
    float-int conversion), the reduction r = x - n ln2 and the degree-6 polynomial are
    fused multiply-adds, the 2**n factor is built once (n >= -127), and the special cases
    cost one select: arguments below exp(-87.34) ~ 1.2e-38 (the smallest normal float32)
    become -88, whose factor 2**-127 is built as +0.0, so they are flushed to 0; -inf
    gives 0; NaN propagates through the arithmetic.  Within 1.01 ulp elsewhere (every
    third float32 in [-87.34, 0] checked; ``tests/test_fastmath.py``).
    """
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        (xv,) = args
        b = builder
        fma = cgutils.get_or_insert_function(b.module, ir.FunctionType(_LL_F32, [_LL_F32] * 3),
                                             "llvm.fma.f32")
        xc = b.select(b.fcmp_ordered("<", xv, _f32c(_EXPN_LO)), _f32c(_EXPN_FLUSH), xv)
        z = b.call(fma, [xc, _f32c(_LOG2E), _f32c(_RND)])
        n = _fsub(b, z, _f32c(_RND))
        # z's bits are 0x4B400000 + n; shifting (bits + 127) left by 23 keeps n + 127.
        scale = b.bitcast(b.shl(b.add(b.bitcast(z, _LL_I32), _i32(127)), _i32(23)), _LL_F32)
        r = b.call(fma, [n, _f32c(-_LN2_HI), xc])
        r = b.call(fma, [n, _f32c(-_LN2_LO), r])
        q = _f32c(_EXPN_Q[0])
        for c in _EXPN_Q[1:]:
            q = b.call(fma, [q, r, _f32c(c)])
        y = _fadd(b, b.call(fma, [q, _fmul(b, r, r), r]), _f32c(1.0))
        return _fmul(b, y, scale)

    return types.float32(types.float32), codegen


# ---------------------------------------------------------- float32 kernels
@njit(inline="always", cache=True)
def fexp_f32(x):
    """exp(x) for float32 x, branch-free, float32 arithmetic only."""
    # Clamp to the range where the reduction is meaningful; NaN -> _EXP_HI
    # (compare is false), fixed up at the end.
    xc = x if x < _EXP_HI else _EXP_HI
    xc = xc if xc > _EXP_LO else _EXP_LO
    n, r = _exp_reduce(xc)
    p = _EXP_P0 * r + _EXP_P1
    p = p * r + _EXP_P2
    p = p * r + _EXP_P3
    p = p * r + _EXP_P4
    p = p * r + _EXP_P5
    y = _exp_finish(p, r, n)
    y = _INF if x > _EXP_HI else y
    y = _ZERO if x < _EXP_LO else y
    y = x if x != x else y  # NaN
    return y


@njit(inline="always", cache=True)
def flog_f32(x):
    """log(x) for float32 x, branch-free, float32 arithmetic only."""
    tiny = x < _FLT_MIN  # denormal (or <= 0, fixed up below)
    xs = x * _TWO23 if tiny else x
    f, k = _log_split(xs)
    e = k + _MINUS23 if tiny else k
    z = f * f
    p = _LOG_P0 * f + _LOG_P1
    p = p * f + _LOG_P2
    p = p * f + _LOG_P3
    p = p * f + _LOG_P4
    p = p * f + _LOG_P5
    p = p * f + _LOG_P6
    p = p * f + _LOG_P7
    p = p * f + _LOG_P8
    y = _log_finish(f, e, p * f * z)
    y = _NINF if x == _ZERO else y
    y = _NAN if x < _ZERO else y
    y = x if x == _INF else y
    y = x if x != x else y  # NaN
    return y


@njit(inline="always", cache=True)
def flog1p_f32(x):
    """log(1 + x) for float32 x, accurate for tiny |x|, branch-free."""
    u, c = _log1p_split(x)
    y = flog_f32(u) + c
    y = x if u == _ONE else y         # |x| < eps/2: log1p(x) == x
    y = x if x == _INF else y
    y = _NINF if x == _NEG_ONE else y
    y = _NAN if x < _NEG_ONE else y
    y = x if x != x else y  # NaN
    return y


# ------------------------------------------------- public type-dispatching
def fexp(x):
    """exp(x).  float32 -> fast float32 polynomial inside @njit code."""
    return math.exp(x)


def fexpn(x):
    """exp(x) for x <= 0.  float32 -> ``fexpn_f32`` inside @njit code (0 below e^-87.34)."""
    return math.exp(x)


def flog(x):
    """log(x).  float32 -> fast float32 polynomial inside @njit code."""
    return math.log(x)


def flog1p(x):
    """log(1 + x).  float32 -> fast float32 polynomial inside @njit code."""
    return math.log1p(x)


def _make_overload(stub, f32_impl, f64_impl):
    @overload(stub, inline="always")
    def _ol(x):
        if x == types.float32:
            return lambda x: f32_impl(x)
        if isinstance(x, (types.Float, types.Integer, types.Boolean)):
            return lambda x: f64_impl(x)
        return None

    return _ol


def _math_exp(x):
    return math.exp(x)


def _math_log(x):
    return math.log(x)


def _math_log1p(x):
    return math.log1p(x)


_ol_fexp = _make_overload(fexp, fexp_f32, njit(inline="always")(_math_exp))
_ol_fexpn = _make_overload(fexpn, fexpn_f32, njit(inline="always")(_math_exp))
_ol_flog = _make_overload(flog, flog_f32, njit(inline="always")(_math_log))
_ol_flog1p = _make_overload(flog1p, flog1p_f32,
                            njit(inline="always")(_math_log1p))


if __name__ == "__main__":  # pragma: no cover - throughput comparison
    import time

    from numba import prange

    FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}

    @njit(parallel=True, fastmath=FLAGS, error_model="numpy")
    def _k_fexp(x, out):
        for i in prange(x.shape[0]):
            out[i] = fexp(x[i])

    @njit(parallel=True, fastmath=FLAGS, error_model="numpy")
    def _k_mexp(x, out):
        for i in prange(x.shape[0]):
            out[i] = math.exp(x[i])

    @njit(parallel=True, fastmath=FLAGS, error_model="numpy")
    def _k_flog(x, out):
        for i in prange(x.shape[0]):
            out[i] = flog(x[i])

    @njit(parallel=True, fastmath=FLAGS, error_model="numpy")
    def _k_mlog(x, out):
        for i in prange(x.shape[0]):
            out[i] = math.log(x[i])

    @njit(parallel=True, fastmath=FLAGS, error_model="numpy")
    def _k_flog1p(x, out):
        for i in prange(x.shape[0]):
            out[i] = flog1p(x[i])

    @njit(parallel=True, fastmath=FLAGS, error_model="numpy")
    def _k_mlog1p(x, out):
        for i in prange(x.shape[0]):
            out[i] = math.log1p(x[i])

    def _bench(k, x, out, reps=10):
        k(x, out)
        best = np.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            k(x, out)
            best = min(best, time.perf_counter() - t0)
        return best

    N = 20_000_000
    rng = np.random.default_rng(0)
    xe = rng.uniform(-20, 20, N).astype(np.float32)
    xl = rng.uniform(1e-3, 1e3, N).astype(np.float32)
    out = np.empty(N, np.float32)
    import numba
    print(f"N={N} float32, threads={numba.get_num_threads()}")
    for name, kf, km, xx in (("exp", _k_fexp, _k_mexp, xe),
                             ("log", _k_flog, _k_mlog, xl),
                             ("log1p", _k_flog1p, _k_mlog1p, xl)):
        tf = _bench(kf, xx, out)
        tm = _bench(km, xx, out)
        print(f"{name:6s} fast {tf * 1e3:8.2f} ms   math {tm * 1e3:8.2f} ms"
              f"   speedup {tm / tf:5.2f}x")
