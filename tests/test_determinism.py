"""Results do not depend on where the buffers sit in memory.

A CPU loop that both stores outputs and sums gets a run-time alias check from LLVM's loop
vectorizer: outputs within a vector's reach of an input (adjacent small allocations, an
exact in-place ``out=pred``) run the scalar loop, whose sequential sum differs in its last
bits from the vector loop's lane sums.  The kernels keep sums out of storing loops; these
tests place the outputs right after an input, in place, and far away, and require the same
bits.  Sizes: small (vector loop plus remainder, or the remainder alone) and one above the
elementwise serial threshold (the parallel kernel).
"""
import numpy as np
import pytest

import fastloss

EW_SIZES = (12, 37, 1000, 2 ** 16 + 5)
EW_LOSSES = ("huber", "sigmoid_binary_cross_entropy")


def _bits(a):
    a = np.ascontiguousarray(a)
    return a.view(np.uint8).tobytes()


def _ew_inputs(name, n, dt, nan=False):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dt)
    y = (rng.standard_normal(n).astype(dt) if name == "huber"
         else rng.uniform(0, 1, n).astype(dt))
    if nan:
        x[::7] = np.nan
        x[3::11] = np.inf
        x[5::13] = -np.inf
    return x, y


def _layouts(x, y, k):
    """(x, y, [k output buffers]) for: far, right after x, right after y, after x and y
    packed in one allocation, and (first output) in place on x."""
    n, dt = x.size, x.dtype
    out = []
    far = [np.empty(n + (1 << 14), dt)[(1 << 13):(1 << 13) + n] for _ in range(k)]
    out.append(("far", x, y, far))
    for gap in (0, 3):
        big = np.empty((2 + k) * n + 4 * gap + 64, dt)
        bx, by = big[:n], big[n + gap:2 * n + gap]
        bx[...] = x
        by[...] = y
        outs = [big[(2 + j) * n + (2 + j) * gap:(3 + j) * n + (2 + j) * gap]
                for j in range(k)]
        out.append((f"after y, gap {gap}", bx, by, outs))
        big2 = np.empty((2 + k) * n + 64, dt)
        bx2 = big2[:n]
        bx2[...] = x
        outs2 = [big2[(1 + j) * n + gap:(2 + j) * n + gap] for j in range(k)]
        by2 = big2[(1 + k) * n + 2 * gap:(2 + k) * n + 2 * gap]
        by2[...] = y
        out.append((f"after x, gap {gap}", bx2, by2, outs2))
    xi = x.copy()
    out.append(("in place", xi, y, [xi] + [np.empty_like(x) for _ in range(k - 1)]))
    return out


@pytest.mark.parametrize("dt", (np.float32, np.float64))
@pytest.mark.parametrize("n", EW_SIZES)
@pytest.mark.parametrize("name", EW_LOSSES)
def test_elementwise_value_and_grad_any_address(name, n, dt):
    fn = getattr(fastloss, name)
    x, y = _ew_inputs(name, n, dt)
    v0, g0 = fastloss.value_and_grad(fn)(x, y)
    for what, bx, by, (g,) in _layouts(x, y, 1):
        v, g1 = fastloss.value_and_grad(fn)(bx, by, grad_out=g)
        assert g1 is g
        assert _bits(v) == _bits(v0), what
        assert _bits(g1) == _bits(g0), what


@pytest.mark.parametrize("dt", (np.float32, np.float64))
@pytest.mark.parametrize("n", EW_SIZES)
@pytest.mark.parametrize("name", EW_LOSSES)
def test_elementwise_grad_and_hessian_any_address(name, n, dt):
    fn = getattr(fastloss, name)
    x, y = _ew_inputs(name, n, dt)
    g0, h0 = fastloss.grad_and_hessian(fn)(x, y, reduction="sum")
    for what, bx, by, (g, h) in _layouts(x, y, 2):
        g1, h1 = fastloss.grad_and_hessian(fn)(bx, by, reduction="sum", grad_out=g,
                                               hess_out=h)
        assert _bits(g1) == _bits(g0), what
        assert _bits(h1) == _bits(h0), what


@pytest.mark.parametrize("nan", (False, True))
@pytest.mark.parametrize("dt", (np.float32, np.float64))
@pytest.mark.parametrize("n", EW_SIZES)
@pytest.mark.parametrize("name", EW_LOSSES)
def test_elementwise_none_out_any_address(name, n, dt, nan):
    """Per-element values (NaN bit patterns included) and the value+grad sum with
    reduction="none" and out= placed anywhere."""
    fn = getattr(fastloss, name)
    x, y = _ew_inputs(name, n, dt, nan=nan)
    l0 = fn(x, y, reduction="none")
    for what, bx, by, (o,) in _layouts(x, y, 1):
        l1 = fn(bx, by, reduction="none", out=o)
        assert _bits(l1) == _bits(l0), what
    lv0, g0 = fastloss.value_and_grad(fn)(x, y, reduction="none")
    for what, bx, by, (o, g) in _layouts(x, y, 2):
        lv, g1 = fastloss.value_and_grad(fn)(bx, by, reduction="none", out=o, grad_out=g)
        assert _bits(lv) == _bits(lv0), what
        assert _bits(g1) == _bits(g0), what


# ------------------------------------------------------------------------------ row-wise
RW_SHAPES = ((1, 12), (1, 37), (2, 20), (1, 1000), (3, 1000), (20, 1000))  # last: parallel


def _rw_case(name, N, D, dt):
    rng = np.random.default_rng(N * 1000 + D)
    z = rng.standard_normal((N, D)).astype(dt)
    if name == "softmax_cross_entropy_with_integer_labels":
        lab = rng.integers(0, D, N)
    else:
        p = rng.uniform(0, 1, (N, D)).astype(dt)
        lab = (p / p.sum(axis=1, keepdims=True)).astype(dt)
    return z, lab


RW_LOSSES = ("softmax_cross_entropy_with_integer_labels", "softmax_cross_entropy",
             "softmax_kl_divergence")


@pytest.mark.parametrize("dt", (np.float32, np.float64))
@pytest.mark.parametrize("shape", RW_SHAPES)
@pytest.mark.parametrize("name", RW_LOSSES)
def test_rowwise_any_address(name, shape, dt):
    """value_and_grad (sum and "none" with out=) with grad_out right after the logits (one
    allocation), after the labels, or far away: the same bits."""
    fn = getattr(fastloss, name)
    N, D = shape
    z, lab = _rw_case(name, N, D, dt)
    dense = lab.dtype == dt
    v0, g0 = fastloss.value_and_grad(fn)(z, lab, reduction="sum")
    l0, gl0 = fastloss.value_and_grad(fn)(z, lab, reduction="none")
    places = []
    for gap in (0, 1, 5):
        big = np.empty(3 * N * D + 4 * gap + 64, dt)
        bz = big[:N * D].reshape(N, D)
        bz[...] = z
        g = big[N * D + gap:2 * N * D + gap].reshape(N, D)
        bl = lab
        if dense:
            bl = big[2 * N * D + 2 * gap:3 * N * D + 2 * gap].reshape(N, D)
            bl[...] = lab
        places.append((f"after logits, gap {gap}", bz, bl, g))
        if dense:
            big2 = np.empty(3 * N * D + 4 * gap + 64, dt)
            bz2 = big2[:N * D].reshape(N, D)
            bl2 = big2[N * D:2 * N * D].reshape(N, D)
            bz2[...] = z
            bl2[...] = lab
            g2 = big2[2 * N * D + gap:3 * N * D + gap].reshape(N, D)
            places.append((f"after labels, gap {gap}", bz2, bl2, g2))
    places.append(("far", z, lab, np.empty((N + 64, D), dt)[32:32 + N]))
    for what, bz, bl, g in places:
        v, g1 = fastloss.value_and_grad(fn)(bz, bl, reduction="sum", grad_out=g)
        assert _bits(v) == _bits(v0), what
        assert _bits(g1) == _bits(g0), what
        o = np.empty(N + 16, dt)[:N]
        lv, g2 = fastloss.value_and_grad(fn)(bz, bl, reduction="none", out=o, grad_out=g)
        assert _bits(lv) == _bits(l0), what
        assert _bits(g2) == _bits(gl0), what


@pytest.mark.parametrize("weighted", (False, True))
@pytest.mark.parametrize("name", EW_LOSSES)
def test_elementwise_repeated_calls_same_bits(name, weighted):
    """The same parallel call, repeated, gives the same bits, and so do the transforms
    that share its gradient (value_and_grad, grad, grad_and_hessian) and the serial kernel
    (``n_threads=1``): every element of every call, with and without weights."""
    n = 2 ** 16 + 5
    rng = np.random.default_rng(21)
    x = rng.standard_normal(n) * 4
    y = (rng.random(n) < 0.4).astype(np.float64)
    kw = {"reduction": "sum", "sample_weight": rng.random(n)} if weighted else {}
    f = getattr(fastloss, name)
    ref_v, ref_g = fastloss.value_and_grad(f)(x, y, **kw)
    calls = (lambda: fastloss.value_and_grad(f)(x, y, **kw)[1],
             lambda: fastloss.grad(f)(x, y, **kw),
             lambda: fastloss.grad_and_hessian(f)(x, y, **kw)[0],
             lambda: fastloss.value_and_grad(f)(x, y, n_threads=1, **kw)[1])
    for call in calls:
        for _ in range(4):
            assert _bits(call()) == _bits(ref_g)
    for _ in range(4):
        assert f(x, y, **kw) == ref_v
