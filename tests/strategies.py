"""Hypothesis strategies, float64 references and comparators for tests/test_properties.py.

The references are written from each loss's mathematical definition (value, first and
second derivative with respect to ``pred``), in float64 NumPy/SciPy, independently of
fastloss's math modules.  Subgradients at kinks follow the conventions fastloss documents
(``absolute_error`` 0 at d = 0, ``hinge``/``squared_hinge`` 0 at the margin, ``quantile``
−q at d = 0, ``huber`` the inner branch at |d| = delta, ``smooth_l1`` the outer branch at
|d| = beta).

Comparisons are *backward-stable*: a result computed in dtype ``dt`` is accepted when it
lies (within ``RTOL[dt]``) between the smallest and largest reference value over inputs
perturbed by a few units in the last place of ``dt``.  That tolerates the rounding of
``pred - target`` near kinks and cancellations without letting a wrong branch, a lost sign
or a NaN pass.  float32 results that overflow may be ±inf where the float64 reference is
beyond ``finfo(float32).max / 4``.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from scipy.special import expit, log_expit, xlogy

# documented accuracy of fastloss results against float64 references, per dtype
# (float32: a few ulps of evaluation error on top of the float32 rounding of the inputs)
RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-11}
PERTURB_ULPS = 4

# ------------------------------------------------------------------ special values
SPECIAL64 = [np.nan, np.inf, -np.inf, -0.0, 0.0, 5e-324, -5e-324, 2.2e-308, 1e38, -1e38,
             1e300, -1e300, 1.0, -1.0]
SPECIAL32 = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -1e-45, 1.2e-38, 1e38, -1e38,
             3e38, -3e38, 1.0, -1.0]


def specials(dt):
    return SPECIAL32 if np.dtype(dt) == np.float32 else SPECIAL64


# ------------------------------------------------------------------ shapes and layouts
def shapes(min_dims=0, max_dims=5, max_side=4, max_size=256):
    """Array shapes, empty and 0-d included, at most ``max_size`` elements."""
    return st.lists(st.integers(0, max_side), min_size=min_dims, max_size=max_dims).map(
        tuple).filter(lambda s: int(np.prod(s)) <= max_size)


LAYOUTS = ("c", "f", "strided", "reversed", "broadcast", "readonly")
WRITABLE_LAYOUTS = ("c", "f", "strided", "reversed")


def apply_layout(a, layout):
    """The same values as ``a`` in another memory layout (non-contiguous, negative strides,
    a zero-stride broadcast view, read-only)."""
    a = np.asarray(a)
    if a.ndim == 0 or layout == "c":
        return a.copy()
    if layout == "f":
        return np.asfortranarray(a)
    if layout == "strided":
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        big[tuple(slice(None, None, 2) for _ in a.shape)] = a
        return big[tuple(slice(None, None, 2) for _ in a.shape)]
    if layout == "reversed":
        rev = tuple(slice(None, None, -1) for _ in a.shape)
        return a[rev].copy()[rev]
    if layout == "broadcast":
        # a stride-0 view with the same values: only possible when the first axis is
        # constant; otherwise fall back to a read-only view
        if a.shape[0] >= 1 and np.array_equal(a, np.broadcast_to(a[:1], a.shape),
                                              equal_nan=True):
            return np.broadcast_to(a[:1], a.shape)
        layout = "readonly"
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    raise KeyError(layout)


# ------------------------------------------------------------------ elementwise domains
PM1 = ("hinge", "squared_hinge", "logistic", "hinge_embedding")
UNIT_TARGET = ("sigmoid_binary_cross_entropy", "sigmoid_focal", "poly1_cross_entropy")
NONNEG = ("absolute_error", "squared_error", "huber", "pseudo_huber", "smooth_l1", "log_cosh",
          "quantile",
          "sigmoid_binary_cross_entropy", "sigmoid_focal", "hinge", "squared_hinge",
          "logistic", "tweedie_deviance", "gamma_deviance", "mean_absolute_percentage_error",
          "mean_squared_log_error", "poly1_cross_entropy", "generalized_kl",
          "convex_kl")  # binary_cross_entropy(clip=False), poisson_nll, hinge_embedding
#                       can be negative
# log-growth losses: at an infinite input the float64 reference at ±1e300 (ref_with_limits)
# is finite where the limit is infinite; their ±inf limits are tested in test_edges_math
LOG_LINK = ("tweedie_deviance", "gamma_deviance", "convex_kl")
NONNEG_INPUTS = ("generalized_kl",)


def pred_values(name, dt, with_specials=True):
    """Elements for ``pred`` inside the loss's domain."""
    dt = np.dtype(dt)
    sp = specials(dt)
    if name == "binary_cross_entropy":
        base = st.floats(0.0, 1.0, width=32 if dt == np.float32 else 64)
        extra = [0.0, 1.0, -0.0, 1e-300 if dt == np.float64 else 1e-38, 0.5, np.nan]
    elif name == "poisson_nll":
        base = st.floats(-30, 30, width=32 if dt == np.float32 else 64)
        extra = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-30]
    elif name in LOG_LINK:
        base = st.floats(-30, 30, width=32 if dt == np.float32 else 64)
        extra = [np.nan, -0.0, 0.0, 1e-30, 1.0, -1.0]
    elif name in NONNEG_INPUTS:
        base = st.floats(0.0, 1e3, width=32 if dt == np.float32 else 64)
        extra = [np.nan, -0.0, 0.0, 1.0, 1e-30, 2.0 if dt == np.float32 else 5e-324]
    elif name == "mean_squared_log_error":
        base = st.floats(-1e3, 1e3, width=32 if dt == np.float32 else 64)
        extra = [s for s in sp if not np.isinf(s)] + [1e-7, 1.5e-7]
    else:
        base = st.floats(-1e3, 1e3, width=32 if dt == np.float32 else 64)
        extra = sp
    if not with_specials:
        return base
    return st.one_of(base, base, st.sampled_from(extra))


def target_values(name, dt, with_specials=True):
    """Elements for ``target`` inside the loss's domain."""
    dt = np.dtype(dt)
    w = 32 if dt == np.float32 else 64
    if name in PM1:
        return st.sampled_from([-1.0, 1.0] + ([np.nan] if with_specials else []))
    if name in UNIT_TARGET or name == "binary_cross_entropy":
        base = st.floats(0.0, 1.0, width=w)
        extra = [0.0, 1.0, -0.0, 0.5, np.nan]
    elif name in ("poisson_nll",) + LOG_LINK:
        base = st.one_of(st.integers(0, 20).map(float), st.floats(0.0, 20.0, width=w))
        extra = [0.0, 1.0, np.nan]
    elif name in NONNEG_INPUTS:
        base = st.floats(0.0, 1e3, width=w)
        extra = [0.0, -0.0, 1.0, np.nan, 1e-30]
    elif name == "mean_squared_log_error":
        base = st.floats(-1e3, 1e3, width=w)
        extra = [s for s in specials(dt) if not np.isinf(s)]
    else:
        base = st.floats(-1e3, 1e3, width=w)
        extra = specials(dt)
    if not with_specials:
        return base
    return st.one_of(base, base, st.sampled_from(extra))


# valid parameter values per loss (drawn), as floats/bools
def params_strategy(name):
    if name == "huber":
        return st.fixed_dictionaries({"delta": st.sampled_from([1.0, 0.7, 1e-3, 50.0])})
    if name == "pseudo_huber":
        return st.fixed_dictionaries({"delta": st.sampled_from([1.0, 0.8, 1e-3, 50.0])})
    if name == "smooth_l1":
        return st.fixed_dictionaries({"beta": st.sampled_from([1.0, 0.5, 0.0, 20.0])})
    if name == "quantile":
        return st.fixed_dictionaries({"quantile": st.sampled_from([0.5, 0.1, 0.9, 0.3])})
    if name == "sigmoid_binary_cross_entropy":
        return st.fixed_dictionaries({"pos_weight": st.sampled_from([1.0, 2.5, 0.0, 0.3]),
                                      "label_smoothing": st.sampled_from([0.0, 0.1, 1.0])})
    if name == "sigmoid_focal":
        return st.fixed_dictionaries({"alpha": st.sampled_from([0.25, 0.0, 1.0, -1.0, 0.6]),
                                      "gamma": st.sampled_from([2.0, 0.0, 1.0, 0.5, 3.5])})
    if name == "binary_cross_entropy":
        return st.fixed_dictionaries({"eps": st.sampled_from([1e-7, 1e-12, 0.0, 0.1]),
                                      "clip": st.booleans()})
    if name in ("hinge", "squared_hinge"):
        return st.fixed_dictionaries({"margin": st.sampled_from([1.0, 0.8, 0.0, -0.5, 3.0])})
    if name == "poisson_nll":
        return st.fixed_dictionaries({"log_input": st.booleans(), "full": st.booleans(),
                                      "eps": st.sampled_from([1e-8, 0.0, 0.1])})
    if name == "tweedie_deviance":
        return st.fixed_dictionaries({"power": st.sampled_from([1.5, 1.25, 1.75])})
    if name == "mean_absolute_percentage_error":
        return st.fixed_dictionaries({"eps": st.sampled_from([1e-7, 1e-3, 1.0])})
    if name == "mean_squared_log_error":
        return st.fixed_dictionaries({"eps": st.sampled_from([1e-7, 0.0, 0.5])})
    if name == "hinge_embedding":
        return st.fixed_dictionaries({"margin": st.sampled_from([1.0, 0.8, 0.0, -0.5, 3.0])})
    if name == "poly1_cross_entropy":
        # epsilon >= -1 keeps the loss non-negative (-log p_t >= 1 - p_t)
        return st.fixed_dictionaries({"epsilon": st.sampled_from([2.0, 0.0, 1.0, -0.5, 5.0])})
    return st.just({})


# --------------------------------------------------------- elementwise references (float64)
def _sign0(d):
    return np.where(d > 0, 1.0, np.where(d < 0, -1.0, d * 0.0))


def ref_elementwise(name, x, y, **p):
    """(value, d/dpred, d²/dpred²) in float64, elementwise, from the definitions."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    with np.errstate(all="ignore"):
        d = x - y
        ad = np.abs(d)
        if name == "absolute_error":
            return ad, _sign0(d), 0.0 * d
        if name == "squared_error":
            return d * d, 2 * d, np.full_like(d, 2.0) + 0.0 * np.where(np.isnan(d), d, 0)
        if name == "huber":
            de = p.get("delta", 1.0)
            s = ad <= de
            return (np.where(s, 0.5 * d * d, de * (ad - 0.5 * de)),
                    np.where(s, d, de * _sign0(d)), np.where(s, 1.0, 0.0) + 0 * _nanof(d))
        if name == "smooth_l1":
            b = p.get("beta", 1.0)
            s = ad < b
            return (np.where(s, 0.5 * d * d / b if b else 0.0, ad - 0.5 * b),
                    np.where(s, d / b if b else 0.0, _sign0(d)),
                    np.where(s, 1.0 / b if b else 0.0, 0.0) + 0 * _nanof(d))
        if name == "log_cosh":
            lc = np.where(ad < 20, np.log1p(2 * np.sinh(np.minimum(ad, 20) / 2) ** 2),
                          ad - np.log(2.0) + np.log1p(np.exp(-2 * ad)))
            return (lc, np.tanh(d),
                    1.0 / np.cosh(np.clip(d, -700, 700)) ** 2 + 0 * _nanof(d))
        if name == "pseudo_huber":
            de = p.get("delta", 1.0)
            u = d / de
            s = np.hypot(1.0, u)          # no overflow of u²
            au = np.abs(u)
            small = np.minimum(au, 1e100)
            v = np.where(au < 1e100, de * de * np.expm1(0.5 * np.log1p(small * small)),
                         de * de * (s - 1.0))
            return v, de * (u / s), 1.0 / s ** 3
        if name == "quantile":
            q = p.get("quantile", 0.5)
            v = np.where(d <= 0, -q * d, (1 - q) * d)
            return v, np.where(d <= 0, -q, 1 - q) + 0 * _nanof(d), 0.0 * _nanof(d)
        if name == "sigmoid_binary_cross_entropy":
            pw, s = p.get("pos_weight", 1.0), p.get("label_smoothing", 0.0)
            ys = y * (1 - s) + 0.5 * s
            a, b = pw * ys, 1 - ys
            sg = expit(x)
            v = -(_xl(a, log_expit(x)) + _xl(b, log_expit(-x)))
            g = _xm(b, sg) - _xm(a, expit(-x))
            h = (a + b) * sg * expit(-x)
            return v, g, h
        if name == "sigmoid_focal":
            return _focal(x, y, p.get("alpha", 0.25), p.get("gamma", 2.0))
        if name == "binary_cross_entropy":
            eps, clip = p.get("eps", 1e-7), p.get("clip", True)
            if clip:
                pc = np.clip(x, eps, 1 - eps)
                live = (x >= eps) & (x <= 1 - eps)
                p1, q1 = pc, 1 - pc
            else:
                live = np.ones(x.shape, bool)
                p1, q1 = x + eps, 1 - x + eps
            v = -(xlogy(y, p1) + xlogy(1 - y, q1))
            g = np.where(live, _div(-y, p1) + _div(1 - y, q1), 0.0) + 0 * _nanof(x)
            h = np.where(live, _div(y, p1 * p1) + _div(1 - y, q1 * q1), 0.0) + 0 * _nanof(x)
            return v, g, h
        if name in ("hinge", "squared_hinge"):
            m = p.get("margin", 1.0)
            z = m - y * x
            zp = np.where(z > 0, z, 0.0) + 0 * _nanof(z)
            if name == "hinge":
                return zp, np.where(z > 0, -y, 0.0) + 0 * _nanof(z), 0.0 * _nanof(z)
            return zp * zp, -2 * y * zp, np.where(z > 0, 2 * y * y, 0.0) + 0 * _nanof(z)
        if name == "logistic":
            z = -y * x
            return np.logaddexp(0, z), -y * expit(z), expit(z) * expit(-z)
        if name == "poisson_nll":
            li, full, eps = p.get("log_input", True), p.get("full", False), p.get("eps", 1e-8)
            if li:
                ex = np.exp(x)
                v, g, h = ex - _xm(y, x), ex - y, ex
            else:
                xe = x + eps
                v, g, h = x - xlogy(y, xe), 1 - _div(y, xe), _div(y, xe * xe)
            if full:
                stir = xlogy(y, y) - y + 0.5 * np.log(2 * np.pi * np.where(y > 1, y, 1.0))
                v = v + np.where(y > 1, stir, 0.0)
            return v, g, h
        if name in ("tweedie_deviance", "gamma_deviance", "generalized_kl", "convex_kl"):
            return _divergence(name, x, y, p)
        if name == "mean_absolute_percentage_error":
            m = np.maximum(np.abs(y), p.get("eps", 1e-7))
            return 100 * ad / m, 100 * _sign0(d) / m, 0.0 * _nanof(d)
        if name == "mean_squared_log_error":
            eps = p.get("eps", 1e-7)
            live = x >= eps
            dl = np.log1p(np.maximum(x, eps)) - np.log1p(np.maximum(y, eps))
            dl = dl + _nanof(x) + _nanof(y)       # (np.maximum propagates NaN already)
            xp1 = 1 + np.maximum(x, eps)
            return (dl * dl, np.where(live, 2 * dl / xp1, 0.0) + 0 * _nanof(dl),
                    np.where(live, 2 * (1 - dl) / xp1 ** 2, 0.0) + 0 * _nanof(dl))
        if name == "hinge_embedding":
            m = p.get("margin", 1.0)
            z = m - x
            ny = _nanof(y) + _nanof(z)
            v = np.where(y == 1, x, np.where(z > 0, z, 0.0)) + ny
            g = np.where(y == 1, 1.0, np.where(z > 0, -1.0, 0.0)) + ny
            return v, g, 0.0 * ny
        if name == "poly1_cross_entropy":
            e = p.get("epsilon", 2.0)
            sp, sm = expit(x), expit(-x)
            ce = -(_xl(y, log_expit(x)) + _xl(1 - y, log_expit(-x)))
            u = sp * (1 - y) + sm * y              # 1 - p_t
            v = ce + e * u
            g = (sp - y) + e * sp * sm * (1 - 2 * y)
            h = sp * sm * (1 + e * (sm - sp) * (1 - 2 * y))
            return v, g, h
    raise KeyError(name)


def _divergence(name, x, y, p):
    """Log-link deviances and KL divergences in extended precision (np.longdouble): their
    closed forms are differences of nearly equal terms near the minimum."""
    X = np.where(x == 0, 0.0, x).astype(np.longdouble)     # (-0.0 as 0)
    Y = np.where(y == 0, 0.0, y).astype(np.longdouble)
    bad = np.isnan(x) | np.isnan(y) | (y < 0)
    if name == "tweedie_deviance":
        pw = np.longdouble(p.get("power", 1.5))
        a, b = 2 - pw, 1 - pw
        ea, eb = np.exp(a * X), np.exp(b * X)
        yeb = np.where(Y == 0, 0, Y * eb)
        v = ea / a - yeb / b + np.where(Y == 0, 0, Y ** a) / (a * b)
        g, h = ea - yeb, a * ea - b * yeb
    elif name == "gamma_deviance":
        ye = np.where(Y == 0, 0, Y * np.exp(-X))
        v = ye - np.log(Y) + X - 1
        v = np.where(Y == 0, np.inf, v)
        g, h = 1 - ye, ye
    elif name == "generalized_kl":
        bad = bad | (x < 0)
        tl = np.where(Y == 0, 0, Y * np.log(Y / X))
        v = tl - Y + X
        r = np.where(Y == 0, 0, Y / X)
        g, h = 1 - r, np.where(Y == 0, 0, r / X)
    else:   # convex_kl
        tl = np.where(Y == 0, 0, Y * (np.log(Y) - X))
        ex = np.exp(X)
        v = tl + ex - Y
        g, h = ex - Y, ex
    out = []
    for r in (v, g, h):
        r = np.asarray(r, np.float64)
        out.append(np.where(bad, np.nan, r))
    return out


def _nanof(a):
    """0 where a is a number, NaN where a is NaN (to propagate NaN through selects)."""
    return np.where(np.isnan(a), np.nan, 0.0)


def _xl(a, l):
    """a·l with 0·(−inf) = 0 (a coefficient 0 removes the term)."""
    return np.where(a == 0, 0.0, a * l) + 0 * _nanof(l)


def _xm(a, b):
    return np.where(a == 0, 0.0, a * b) + 0 * _nanof(b)


def _div(a, b):
    return np.where(a == 0, 0.0 * b, a / b)


def _focal(x, y, alpha, gamma):
    p = expit(x)
    q = expit(x) * expit(-x)
    ce = -(_xl(y, log_expit(x)) + _xl(1 - y, log_expit(-x)))
    dce = p - y
    u = 1 - (p * y + (1 - p) * (1 - y))
    # u is computed exactly where it matters (x far from 0): from expit of ±x directly
    u = np.where(y == 1, expit(-x), np.where(y == 0, p, u))
    du = -q * (2 * y - 1)
    d2u = -(2 * y - 1) * q * (1 - 2 * p)
    up = np.where(u > 0, u ** gamma, 1.0 if gamma == 0 else 0.0)
    um1 = np.where(u > 0, u ** (gamma - 1), 0.0)
    um2 = np.where(u > 0, u ** (gamma - 2), 0.0)
    f, df = up, gamma * um1 * du
    d2f = gamma * (gamma - 1) * um2 * du * du + gamma * um1 * d2u
    at = alpha * y + (1 - alpha) * (1 - y) if alpha >= 0 else np.ones_like(y)
    v = at * _xm(f, ce)
    g = at * (dce * f + _xm(df, ce))
    h = at * (q * f + 2 * dce * df + _xm(d2f, ce))
    return v, g, h


def ref_with_limits(name, x, y, big, **p):
    """The reference with ±inf inputs replaced by ±``big`` (the limit), NaN where both
    inputs are infinite with the same sign (inf − inf: no limit); values that grow past
    1e250 from an infinite input are reported as ±inf."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    xi, yi = np.isinf(x), np.isinf(y)
    xs = np.where(xi, np.sign(x) * big, x)
    ys = np.where(yi, np.sign(y) * big, y)
    out = []
    with np.errstate(all="ignore"):
        refs = ref_elementwise(name, xs, ys, **p)
    for r in refs:
        r = np.array(r, np.float64)
        with np.errstate(all="ignore"):
            grow = (xi | yi) & (np.abs(r) > 1e250)
            r = np.where(grow, np.sign(r) * np.inf, r)
            r = np.where(xi & yi & (np.sign(x) == np.sign(y)), np.nan, r)
        out.append(r)
    return out


def reference_bounds(name, x, y, dt, **p):
    """[lo, hi] per element for value, grad and Hessian over inputs perturbed by a few
    ulps of ``dt`` (and the unperturbed exact point, for the documented subgradients)."""
    dt = np.dtype(dt)
    e = PERTURB_ULPS * np.finfo(dt).eps
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    stacks = [[], [], []]
    for fx in (0.0, -e, e):
        for fy in (0.0, -e, e):
            r = ref_with_limits(name, x * (1 + fx), y * (1 + fy), 1e300, **p)
            for s, ri in zip(stacks, r):
                s.append(ri)
    res = []
    for s in stacks:
        a = np.stack(s)
        nan = np.isnan(a[0])
        with np.errstate(all="ignore"):
            lo = np.where(nan, np.nan, np.nanmin(np.where(np.isnan(a), np.inf, a), axis=0))
            hi = np.where(nan, np.nan, np.nanmax(np.where(np.isnan(a), -np.inf, a), axis=0))
        res.append((lo, hi))
    return res


def within(got, lo, hi, dt, what, ctx="", floor=0.0):
    """Assert got ∈ [lo, hi] up to RTOL[dt] (and an absolute ``floor``); NaN exactly where
    the reference is NaN."""
    dt = np.dtype(dt)
    got = np.asarray(got, np.float64)
    lo = np.broadcast_to(lo, got.shape)
    hi = np.broadcast_to(hi, got.shape)
    rt = RTOL[dt]
    tiny = np.maximum(np.finfo(dt).tiny * 16, floor)
    big = np.finfo(dt).max / 4
    with np.errstate(all="ignore"):
        ref_nan = np.isnan(lo)
        ok = np.where(ref_nan, np.isnan(got),
                      (got >= lo - rt * np.abs(lo) - tiny) & (got <= hi + rt * np.abs(hi) + tiny))
        # float32 overflow: ±inf where the reference is beyond max/4 with that sign
        over = ((got == np.inf) & (hi >= big)) | ((got == -np.inf) & (lo <= -big))
        # the reference itself overflows the dtype (finite in float64)
        ok = ok | over | ((got == hi) & np.isinf(hi)) | ((got == lo) & np.isinf(lo))
    if not np.all(ok):
        i = np.argwhere(~ok)[0]
        i = tuple(i)
        raise AssertionError(f"{what} {ctx}: at {i} got {got[i]!r}, reference in "
                             f"[{lo[i]!r}, {hi[i]!r}] (dtype {dt}); "
                             f"{int(np.sum(~ok))} of {ok.size} elements differ")


def error_names_argument(exc, names):
    """The message of a raised error names one of ``names``."""
    msg = str(exc)
    return any(n in msg for n in names)


# ------------------------------------------------------------------ row-wise references
def log_softmax(x):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=-1, keepdims=True)
    with np.errstate(all="ignore"):
        z = x - np.where(np.isfinite(m), m, 0.0)
        return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def ref_rowwise(name, args, p):
    """Per-row float64 values of a row-wise loss (class/feature axis last)."""
    with np.errstate(all="ignore"):
        if name == "softmax_cross_entropy":
            x, y = args
            s = p.get("label_smoothing", 0.0)
            yp = y * (1 - s) + s / x.shape[-1]
            return -np.sum(_xl(yp, log_softmax(x)), axis=-1)
        if name == "softmax_cross_entropy_with_integer_labels":
            x, k = args
            s = p.get("label_smoothing", 0.0)
            ls = log_softmax(x)
            C = x.shape[-1]
            picked = np.take_along_axis(ls, k[..., None], -1)[..., 0]
            return -(1 - s) * picked - s / C * np.sum(ls, axis=-1)
        if name == "kl_divergence":
            lp, t = args
            if p.get("log_target", False):
                return np.sum(np.exp(t) * (t - lp), axis=-1)
            return np.sum(np.where(t == 0, 0.0 * lp, xlogy(t, t) - t * lp), axis=-1)
        if name == "softmax_kl_divergence":
            x, t = args
            ls = log_softmax(x)
            return np.sum(np.where(t == 0, 0.0 * ls, xlogy(t, t) - t * ls), axis=-1)
        if name == "multiclass_hinge":
            s, k = args
            m = p.get("margin", 1.0)
            sy = np.take_along_axis(s, k[..., None], -1)
            d = s - sy + m
            mask = np.arange(s.shape[-1]) == k[..., None]
            d = np.where(mask, -np.inf, d)
            e = p.get("p", 1)
            if p.get("kind", "weston_watkins") == "crammer_singer":
                return np.maximum(0, np.max(d, axis=-1)) ** e
            return np.sum(np.where(mask, 0.0, np.maximum(d, 0) ** e), axis=-1)
        if name == "cosine_embedding":
            a, b, y = args
            m, eps = p.get("margin", 0.0), p.get("eps", 1e-12)
            cos = np.sum(a * b, -1) / np.sqrt((np.sum(a * a, -1) + eps) * (np.sum(b * b, -1) + eps))
            return np.where(y == 1, 1 - cos, np.maximum(0, cos - m))
        if name == "cosine_distance":
            a, b = args
            return 1 - np.sum(a * b, -1)
        if name == "triplet_margin":
            a, pp, n = args
            m, eps = p.get("margin", 1.0), p.get("eps", 1e-6)
            if p.get("squared", False):
                dd = np.sum((a - pp) ** 2, -1) - np.sum((a - n) ** 2, -1)
            else:
                dd = (np.sqrt(np.sum((a - pp + eps) ** 2, -1))
                      - np.sqrt(np.sum((a - n + eps) ** 2, -1)))
            return np.maximum(0, dd + m)
        if name == "mean_pairwise_squared_error":
            pr, t = args
            d = (pr - t).reshape(len(pr), int(np.prod(np.shape(pr)[1:])))
            n = d.shape[1]
            if n < 2:
                return np.zeros(len(pr))
            diff = d[:, :, None] - d[:, None, :]
            return np.sum(diff ** 2, axis=(1, 2)) / 2 / (n * (n - 1) / 2)
        if name == "nll_loss":   # PyTorch: −lp_k; a NaN anywhere in the row: NaN
            lp, k = args
            picked = np.take_along_axis(lp, k[..., None], -1)[..., 0]
            return -picked + np.sum(_nanof(lp), axis=-1)
        if name == "categorical_hinge":   # Keras: max(0, max((1 − t) p) − Σ t p + 1)
            pr, t = args
            return np.maximum(0.0, np.max((1 - t) * pr, -1) - np.sum(t * pr, -1) + 1)
        if name == "poly1_softmax_cross_entropy":   # optax: CE + ε Σ y (1 − softmax)
            x, y = args
            ls = log_softmax(x)
            return (-np.sum(_xl(y, ls), axis=-1)
                    + p.get("epsilon", 2.0) * np.sum(y * (1 - np.exp(ls)), axis=-1))
        if name == "multilabel_soft_margin":   # PyTorch
            x, y = args
            w = p.get("class_weight")
            w = np.ones(x.shape[-1]) if w is None else np.asarray(w, np.float64)
            return -np.mean(w * (y * log_expit(x) + (1 - y) * log_expit(-x)), axis=-1)
        if name == "categorical_focal_cross_entropy":   # −α (1 − p_k)^γ log p_k
            x, k = args
            lp = np.take_along_axis(log_softmax(x), k[..., None], -1)[..., 0]
            q = -np.expm1(lp)
            return -p.get("alpha", 0.25) * q ** p.get("gamma", 2.0) * lp
        if name == "multilabel_margin":   # PyTorch's loop over (target, non-target) pairs
            x, tg = args
            C = x.shape[-1]
            x2, t2 = x.reshape(-1, C), np.asarray(tg).reshape(-1, C)
            out = np.zeros(len(x2))
            for r in range(len(x2)):
                ys = []
                for v in t2[r]:
                    if v < 0:
                        break
                    ys.append(int(v))
                non = np.setdiff1d(np.arange(C), ys)
                out[r] = (sum(np.sum(np.maximum(0.0, 1 - x2[r, j] + x2[r, non])) for j in ys)
                          / C + np.sum(_nanof(x2[r])))
            return out.reshape(x.shape[:-1])
        if name == "multiclass_sparsemax_loss":   # optax, with a sort-based sparsemax
            z, k = args
            C = z.shape[-1]
            z2, k2 = z.reshape(-1, C), np.asarray(k).reshape(-1)
            out = np.zeros(len(z2))
            for r in range(len(z2)):
                zr = z2[r]
                zs = np.sort(zr)[::-1]
                cs = np.cumsum(zs)
                i = np.arange(1, C + 1)
                kk = i[1 + i * zs > cs].max()
                pr = np.maximum(zr - (cs[kk - 1] - 1) / kk, 0)
                sc = zr - zr[k2[r]]
                sc[k2[r]] = 0.0
                out[r] = (pr @ np.where(pr > 0, sc, 0.0) + 0.5 * (1 - pr @ pr)
                          + np.sum(_nanof(zr)))
            return out.reshape(z.shape[:-1])
        if name in ("dice", "tversky"):   # MONAI, every non-batch axis of a sample
            pr, t = args
            n = int(np.prod(np.shape(pr)[1:]))
            pr, t = pr.reshape(len(pr), n), t.reshape(len(t), n)
            nr, dr = p.get("smooth_nr", 1e-5), p.get("smooth_dr", 1e-5)
            tp, fp, fn = (pr * t).sum(1), (pr * (1 - t)).sum(1), ((1 - pr) * t).sum(1)
            if name == "dice":
                return 1 - (2 * tp + nr) / (pr.sum(1) + t.sum(1) + dr)
            return 1 - (tp + nr) / (tp + p.get("alpha", 0.5) * fp + p.get("beta", 0.5) * fn
                                    + dr)
    raise KeyError(name)


# ------------------------------------------------------------------------ CTC by brute force
def ctc_brute(logp, labels, blank=0):
    """(−log p(labels), γ) by enumerating every path of one sequence: ``logp`` (T, C)
    log-probabilities.  γ[t, c] = P(π_t = c | labels).  Exact in log space."""
    import itertools

    T, C = logp.shape
    labels = list(labels)
    if T == 0:
        return (0.0 if not labels else np.inf), np.zeros((0, C))
    paths = []
    for path in itertools.product(range(C), repeat=T):
        col, prev = [], None
        for c in path:
            if c != prev and c != blank:
                col.append(c)
            prev = c
        if col == labels:
            paths.append(path)
    if not paths:
        return np.inf, np.zeros((T, C))
    P = np.array(paths)
    lp = logp[np.arange(T)[None, :], P].sum(axis=1)
    m = lp.max()
    tot = m + np.log(np.sum(np.exp(lp - m)))
    post = np.exp(lp - tot)
    gamma = np.zeros((T, C))
    for t in range(T):
        np.add.at(gamma[t], P[:, t], post)
    return -tot, gamma


def ctc_greedy_ref(x, lengths, blank=0):
    out = []
    for n in range(x.shape[0]):
        best = np.argmax(x[n, :lengths[n]], axis=-1) if lengths[n] else []
        seq, prev = [], None
        for b in best:
            if b != prev and b != blank:
                seq.append(int(b))
            prev = b
        out.append(seq)
    return out
