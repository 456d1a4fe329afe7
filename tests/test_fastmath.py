"""Accuracy, special values and vectorization of fastloss._fastmath."""
import functools
import math
import re

import numpy as np
import pytest
from numba import njit, types

from fastloss._fastmath import fexp, flog, flog1p, fexp_f32, flog_f32

FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}

# The kernels are exercised both in the intended production setting and in a
# plain @njit (strict IEEE, error_model='python') caller.
CONTEXTS = {
    "fastmath": dict(fastmath=FLAGS, error_model="numpy"),
    "plain": dict(),
}

FUNCS = {"exp": fexp, "log": flog, "log1p": flog1p}
REFS = {"exp": np.exp, "log": np.log, "log1p": np.log1p}
MATH = {"exp": math.exp, "log": math.log, "log1p": math.log1p}


@functools.lru_cache(maxsize=None)
def _kernel(name, ctx):
    f = FUNCS[name]

    @njit(**CONTEXTS[ctx])
    def kernel(x, out):
        for i in range(x.shape[0]):
            out[i] = f(x[i])

    return kernel


def _apply(name, ctx, x):
    out = np.empty_like(x)
    _kernel(name, ctx)(x, out)
    return out


def _reference(name, x):
    with np.errstate(all="ignore"):
        return REFS[name](x.astype(np.float64)).astype(np.float32)


def _ulp_error(got, ref):
    """|got - ref| in units of the float32 spacing at ref (denormal-aware)."""
    spacing = np.spacing(np.abs(ref)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref.astype(np.float64)) / spacing


@functools.lru_cache(maxsize=None)
def _sweep():
    """Every 997th float32 bit pattern (both signs, normals and denormals,
    ~4.3e6 values) plus every float32 within 4096 ulp of 1, -1 and 0."""
    bits = np.arange(0, 2**32, 997, dtype=np.uint64).astype(np.uint32)
    near = np.arange(-4096, 4097, dtype=np.int64)
    extra = [
        (np.int64(0x3F800000) + near),            # around +1
        (np.int64(0xBF800000) + near),            # around -1
        np.abs(near),                             # +0 and tiny denormals
        np.int64(0x80000000) + np.abs(near),      # -0 and tiny denormals
    ]
    bits = np.concatenate([bits] + [e.astype(np.uint32) for e in extra])
    x = bits.view(np.float32)
    return x[np.isfinite(x)]


def _max_ulp(name, ctx, x):
    err = _ulp_error(_apply(name, ctx, x), _reference(name, x))
    i = int(np.argmax(err))
    return err[i], x[i]


@pytest.mark.parametrize("ctx", sorted(CONTEXTS))
def test_fexp_ulp(ctx):
    x = _sweep()
    x = x[(x >= -87.0) & (x <= 88.7)]
    err, at = _max_ulp("exp", ctx, x)
    assert err <= 2.0, f"max ulp error {err} at x={at!r}"


@pytest.mark.parametrize("ctx", sorted(CONTEXTS))
def test_fexp_gradual_underflow(ctx):
    # Results in the denormal range, ulp = 2**-149 there.
    x = np.linspace(-110.0, -87.0, 200_001, dtype=np.float32)
    err, at = _max_ulp("exp", ctx, x)
    assert err <= 2.0, f"max ulp error {err} at x={at!r}"


@pytest.mark.parametrize("ctx", sorted(CONTEXTS))
def test_flog_ulp(ctx):
    x = _sweep()
    x = x[x > 0]  # positive normals and denormals
    assert (x < np.finfo(np.float32).tiny).sum() > 1000
    err, at = _max_ulp("log", ctx, x)
    assert err <= 2.0, f"max ulp error {err} at x={at!r}"


@pytest.mark.parametrize("ctx", sorted(CONTEXTS))
def test_flog1p_ulp(ctx):
    x = _sweep()
    x = x[(x > -1.0) & (x <= 1e38)]
    err, at = _max_ulp("log1p", ctx, x)
    assert err <= 2.0, f"max ulp error {err} at x={at!r}"


_F32 = np.finfo(np.float32)
SPECIALS = np.array(
    [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, 2.0, -2.0,
     _F32.max, -_F32.max, _F32.tiny, -_F32.tiny, _F32.smallest_subnormal,
     -_F32.smallest_subnormal, _F32.eps, -_F32.eps / 2,
     88.72283172607422, 88.72284, 89.0, 1e30, -87.3, -103.9, -104.0,
     -1e30, -1.0000001, -0.99999994],
    dtype=np.float32,
)


@pytest.mark.parametrize("ctx", sorted(CONTEXTS))
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_special_values(name, ctx):
    got = _apply(name, ctx, SPECIALS)
    ref = _reference(name, SPECIALS)
    # NaN / inf / zero results exactly where numpy has them, the rest <= 2 ulp.
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(got[np.isinf(ref)], ref[np.isinf(ref)])
    np.testing.assert_array_equal(got == 0, ref == 0)
    fin = np.isfinite(ref)
    assert _ulp_error(got[fin], ref[fin]).max() <= 2.0
    # Exactly specified cases.
    exact = {
        "exp": [(0.0, 1.0), (-0.0, 1.0), (np.inf, np.inf), (-np.inf, 0.0),
                (89.0, np.inf), (-104.0, 0.0), (-1e30, 0.0)],
        "log": [(1.0, 0.0), (0.0, -np.inf), (-0.0, -np.inf),
                (np.inf, np.inf), (-np.inf, np.nan), (-2.0, np.nan),
                (-_F32.smallest_subnormal, np.nan)],
        "log1p": [(0.0, 0.0), (-1.0, -np.inf), (np.inf, np.inf),
                  (-np.inf, np.nan), (-2.0, np.nan), (-1.0000001, np.nan),
                  (_F32.eps / 2 ** 10, _F32.eps / 2 ** 10)],
    }[name]
    xs = np.array([a for a, _ in exact], np.float32)
    np.testing.assert_array_equal(_apply(name, ctx, xs),
                                  np.array([b for _, b in exact], np.float32))
    # NaN in -> NaN out.
    assert np.isnan(_apply(name, ctx, np.array([np.nan], np.float32))).all()


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_float32_in_float32_out(name):
    f = FUNCS[name]
    scalar = njit(lambda x: f(x))
    scalar(np.float32(0.5))
    sig = scalar.nopython_signatures[0]
    assert sig.args == (types.float32,)
    assert sig.return_type == types.float32
    # No float64 arithmetic sneaks into the float32 kernel.
    llvm = "\n".join(_kernel(name, "fastmath").inspect_llvm().values())
    body = [ln for ln in llvm.splitlines()
            if re.search(r"\b(fpext|fadd|fsub|fmul|fdiv)\b.*\bdouble\b", ln)]
    assert not body, body[:5]


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_float64_path_is_libm(name):
    f, mf = FUNCS[name], MATH[name]
    scalar = njit(lambda x: f(x))
    rng = np.random.default_rng(1)
    positive = np.exp(rng.uniform(-700, 700, 500))
    xs = {
        "exp": np.concatenate([rng.uniform(-740, 709, 500),
                               rng.uniform(-1, 1, 100), [0.0, 1e-300]]),
        "log": np.concatenate([positive, [1.0, 1e-310, 0.5]]),
        "log1p": np.concatenate([positive, rng.uniform(-0.999, 1, 100),
                                 [0.0, 1e-300, -1e-300]]),
    }[name]
    for x in xs:
        x = float(x)
        assert scalar(x) == mf(x)
    assert scalar.nopython_signatures[0].return_type == types.float64
    # Integer arguments follow math.* too.
    assert njit(lambda x: f(x))(3) == mf(3)


@pytest.mark.parametrize("name", sorted(FUNCS))
def test_python_stub_is_math(name):
    f, mf = FUNCS[name], MATH[name]
    for x in (0.5, 3.0, np.float32(1.7), 2):
        assert f(x) == mf(x)


def test_direct_f32_kernels():
    assert np.float32(fexp_f32(np.float32(1.0))) == np.float32(math.e)
    assert flog_f32(np.float32(math.e)) == pytest.approx(1.0, abs=2e-7)


def _host_has_avx2():
    import llvmlite.binding as ll
    from numba import config

    cpu_name = getattr(config, "CPU_NAME", None)
    if cpu_name and cpu_name.lower() in ("generic", "x86-64"):
        return False
    features = getattr(config, "CPU_FEATURES", None)
    if features:
        return "+avx2" in features
    try:
        return bool(ll.get_host_cpu_features().get("avx2", False))
    except Exception:  # pragma: no cover - non-x86 hosts
        return False


@pytest.mark.skipif(not _host_has_avx2(), reason="host CPU lacks AVX2")
@pytest.mark.parametrize("name", sorted(FUNCS))
def test_loop_vectorizes(name):
    k = _kernel(name, "fastmath")
    x = np.linspace(-3, 3, 64).astype(np.float32)
    k(x, np.empty_like(x))
    asm = "\n".join(k.inspect_asm().values())
    packed = re.findall(r"\bv(?:mul|add|sub|fmadd\w*|blendv)ps\b", asm)
    assert "ymm" in asm and len(packed) >= 5, "loop was not vectorized"
    # ... and no scalar libm call survived.
    assert not re.search(r"call\s+\S*(?:expf|logf|log1pf)\b", asm)


def test_fexpn_non_positive_exp():
    """exp of x <= 0 for the softmax terms: <= 1.01 ulp down to exp(-87.34), 0 below, NaN kept."""
    from fastloss._compile import FASTMATH
    from fastloss._fastmath import fexpn

    @njit(fastmath=set(FASTMATH), error_model="numpy")
    def run(d, out):
        for i in range(d.shape[0]):
            out[i] = fexpn(d[i])

    d = np.concatenate([-np.linspace(0, 87.4, 1_000_001), -np.logspace(-30, 1.9, 10_001),
                        [0.0, -0.0, 1.0, 88.0, -87.7, -88.0, -104.0, -1e30, -np.inf, np.nan]])
    d = d.astype(np.float32)
    out = np.empty_like(d)
    run(d, out)
    ok = d >= np.float32(-87.33654)
    ref = np.exp(d[ok].astype(np.float64))
    ulp = np.spacing(ref.astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(out[ok] - ref) / ulp) <= 1.01   # 1.0086 over every third float32
    assert np.all(out[~ok][:-1] == 0) and np.isnan(out[-1])
    assert out.dtype == np.float32
