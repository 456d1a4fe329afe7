"""Property-based tests (hypothesis) over every public function of fastloss, fastloss.gluon
and fastloss.slim.

Each drawn case either matches an independent float64 reference (tests/strategies.py:
formulas from the definitions, brute-force CTC enumeration, central differences of the
row-wise references) or raises ``TypeError``/``ValueError`` whose message names the
offending argument.  Drawn: shapes (empty, 0-d, up to 5-D, broadcast targets), memory
layouts (Fortran, strided, negative strides, zero-stride broadcast views, read-only),
dtypes (float32/float64 for values; every other NumPy dtype for conversion or refusal),
values (NaN, ±inf, −0.0, denormals, 1e38/3e38, 1e300), parameters and ``out=`` buffers.

Invariants: losses that are non-negative stay >= 0; NaN in gives NaN in the affected
outputs; ``"sum"`` is the sum of ``"none"`` and ``"mean"`` the weighted average, for
values and gradients; permuting the batch permutes the per-sample results (bitwise);
rows are independent; float32 agrees with the float64 reference within
``strategies.RTOL[float32]`` after a few-ulp perturbation of the inputs.

Compile cost: Numba compiles one kernel per (loss, dtype, variant), so every value check
calls the same variant (``grad_and_hessian`` / ``value_and_grad`` with array weights and
``out=`` buffers), only float32/float64 reach the kernels, and sizes stay below the
parallel threshold (serial kernels).  ``derandomize=True`` makes the draws reproducible.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastloss as fl
from fastloss import gluon, slim

import strategies as S

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def prop(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


EW = sorted(n for n, i in fl.LOSSES.items() if i.kind == "elementwise" and len(i.inputs) == 2)
EW3 = sorted(n for n, i in fl.LOSSES.items() if i.kind == "elementwise" and len(i.inputs) == 3)
ROW = sorted(n for n, i in fl.LOSSES.items() if i.kind == "rowwise")
ARG_ERRORS = (TypeError, ValueError)


def test_registry_is_covered():
    kinds = {i.kind for i in fl.LOSSES.values()}
    assert kinds <= {"elementwise", "rowwise", "ctc", "metric"}, kinds
    METRIC = {n for n, i in fl.LOSSES.items() if i.kind == "metric"}   # tests/test_metric.py
    assert set(EW) | set(EW3) | set(ROW) | {"ctc_loss"} | METRIC == set(fl.LOSSES)
    for name, info in fl.LOSSES.items():
        assert getattr(fl, name) is info.func
        assert callable(info.func) and info.inputs


def _scale_tol(ref, tol=1e-12):
    """Absolute tolerance at ``tol`` of the largest finite entry (entries that are rounding
    residues of cancelling terms compare in absolute terms)."""
    r = np.abs(np.asarray(ref, np.float64))
    r = r[np.isfinite(r)]
    return tol * (float(r.max()) if r.size else 0.0) + 1e-15 * tol / 1e-12


def raises_naming(fn, names, exc=ARG_ERRORS):
    """Call ``fn``; it must raise ``exc`` with a message naming one of ``names``."""
    with pytest.raises(exc) as ei:
        fn()
    assert S.error_names_argument(ei.value, names), (
        f"message {str(ei.value)!r} names none of {names}")
    return ei.value


# ============================================================================ elementwise
def _round_params(p, dt):
    return {k: (v if isinstance(v, bool) else float(dt.type(v))) for k, v in p.items()}


def target_shape(draw, shape):
    """A shape that broadcasts to ``shape``: a suffix with some axes set to 1."""
    k = draw(st.integers(0, len(shape)))
    suf = shape[len(shape) - k:]
    return tuple(1 if draw(st.booleans()) else s for s in suf)


@st.composite
def ew_case(draw, name, dtypes=(F32, F64), specials=True, max_size=64):
    dt = draw(st.sampled_from(dtypes))
    shape = draw(S.shapes(max_size=max_size))
    x = draw(hnp.arrays(dt, shape, elements=S.pred_values(name, dt, specials)))
    tshape = target_shape(draw, shape)
    y = draw(hnp.arrays(dt, tshape, elements=S.target_values(name, dt, specials)))
    wshape = target_shape(draw, shape)
    w = draw(hnp.arrays(dt, wshape, elements=st.sampled_from([0.0, 1.0, 0.5, 2.0, 1e-3, 1.0])))
    p = draw(S.params_strategy(name))
    if name == "poisson_nll" and not p["log_input"]:
        x = np.abs(x)   # rates: pred >= 0
    # read-only inputs (broadcast views, read-only copies) are a separate Numba type, so a
    # separate compile: drawn for float64 pred only, to bound the number of kernels
    lays = S.LAYOUTS if dt == F64 else S.WRITABLE_LAYOUTS
    layout = draw(st.sampled_from(lays))
    ylay = draw(st.sampled_from(S.WRITABLE_LAYOUTS))
    return dt, S.apply_layout(x, layout), S.apply_layout(y, ylay), w, p


def ew_full_call(f, x, y, w, p, dt, reduction="none", out=None):
    """(per-element losses, grad, hess) from the one kernel variant used everywhere."""
    out = np.full(np.shape(x), -7.0, dt) if out is None else out
    g, h = fl.grad_and_hessian(f)(x, y, sample_weight=w, reduction=reduction, out=out, **p)
    return out, g, h


@pytest.mark.parametrize("name", EW)
@prop(40)
@given(data=st.data())
def test_elementwise_matches_reference(name, data):
    check_elementwise(name, data.draw(ew_case(name)))


def check_elementwise(name, case):
    f = getattr(fl, name)
    dt, x, y, w, p = case
    xv, yv = np.asarray(x), np.asarray(y)
    v, g, h = ew_full_call(f, x, y, w, p, dt)
    for a in (v, g, h):
        assert a.shape == xv.shape and a.dtype == dt
    yb = np.broadcast_to(yv, xv.shape)
    wb = np.broadcast_to(w, xv.shape).astype(np.float64)
    (vl, vh), (gl, gh), (hl, hh) = S.reference_bounds(name, xv, yb, dt, **_round_params(p, dt))
    ctx = f"{name} dtype={dt} params={p}"
    with np.errstate(all="ignore"):
        # values: one ulp of 1 absolute (a parameter such as eps = 1e-7 is below float32's
        # resolution at 1: log(1 + eps) is float32 rounding, not a wrong value)
        # a weight of 0 removes its element, even an infinite one (a NaN stays NaN)
        def wt(b):
            return np.where((wb == 0) & ~np.isnan(b), 0.0, wb * b)
        # a loss beyond the dtype's range before its weight: +inf is the dtype's answer
        big = np.finfo(dt).max / 4
        v = np.where((np.asarray(v) == np.inf) & (vh >= big) & (wb > 0), wt(vh), v)
        S.within(v, wt(vl), wt(vh), dt, "value", ctx, floor=2 * np.finfo(dt).eps * wb)
        S.within(g, wt(gl), wt(gh), dt, "gradient", ctx)
        S.within(h, wt(hl), wt(hh), dt, "hessian", ctx)
    nan_in = np.isnan(xv) | np.isnan(yb)
    assert np.isnan(v[nan_in]).all() and np.isnan(g[nan_in]).all() and np.isnan(h[nan_in]).all()
    if name in S.NONNEG and not (name == "sigmoid_focal" and p["alpha"] > 1):
        assert not np.any(v < 0), f"{ctx}: negative loss {v[v < 0][:3]}"


@pytest.mark.parametrize("name", EW)
@prop(15)
@given(data=st.data())
def test_elementwise_reductions_and_permutation(name, data):
    """sum == Σ none, mean == Σ w·ℓ / Σ w (values and gradients); permuting permutes."""
    f = getattr(fl, name)
    dt, x, y, _, p = data.draw(ew_case(name, specials=False, max_size=48))
    xs = np.asarray(x)
    y = np.broadcast_to(y, xs.shape).reshape(-1).copy()
    x = xs.reshape(-1).copy()
    w = data.draw(hnp.arrays(dt, x.shape, elements=st.sampled_from([0.0, 1.0, 0.5, 3.0])))
    vn, gn, hn = ew_full_call(f, x, y, w, p, dt, "none")
    vn, gn, hn = vn.copy(), gn.copy(), hn.copy()
    scratch = np.empty(x.shape, dt)
    vs, gs = fl.value_and_grad(f)(x, y, sample_weight=w, reduction="sum", out=scratch,
                                  grad_out=np.empty(x.shape, dt), **p)
    vm, gm = fl.value_and_grad(f)(x, y, sample_weight=w, reduction="mean", out=scratch,
                                  grad_out=np.empty(x.shape, dt), **p)
    tot = float(np.sum(vn, dtype=np.float64))
    scale = float(np.sum(np.abs(vn), dtype=np.float64)) + 1e-300
    tol = 1e-6 if dt == F32 else 1e-12
    if np.isinf(tot):
        assert float(vs) == tot
    else:
        assert abs(float(vs) - tot) <= tol * scale
    np.testing.assert_allclose(gs, gn, rtol=tol, atol=_scale_tol(gn, tol))
    wsum = float(np.sum(w, dtype=np.float64))
    if wsum > 0 and np.isinf(tot):
        assert float(vm) == tot
    elif wsum > 0:
        assert abs(float(vm) - tot / wsum) <= tol * scale / wsum
        np.testing.assert_allclose(gm, gn / wsum, rtol=2 * tol, atol=_scale_tol(gn / wsum, tol))
    else:
        assert np.isnan(vm)
    if x.size > 1:
        perm = np.random.default_rng(x.size).permutation(x.size)
        vp, gp, hp = ew_full_call(f, x[perm], y[perm], w[perm], p, dt, "none")
        np.testing.assert_array_equal(vp, vn[perm])
        np.testing.assert_array_equal(gp, gn[perm])
        np.testing.assert_array_equal(hp, hn[perm])
    if dt == F64:  # float32 against float64 on the same (float32-representable) inputs
        x32, y32, w32 = (a.astype(F32) for a in (x, y, w))
        v32, g32, _ = ew_full_call(f, x32, y32, w32, p, F32)
        (vl, vh), (gl, gh), _ = S.reference_bounds(name, x32, y32, F32, **_round_params(p, F32))
        def wt(b):   # a weight of 0 removes its element, even an infinite one
            return np.where((w32 == 0) & ~np.isnan(b), 0.0, w32 * b)
        S.within(v32, wt(vl), wt(vh), F32, "float32 value", name)
        S.within(g32, wt(gl), wt(gh), F32, "float32 gradient", name)


OTHER_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "bool", "float16", "longdouble"]
REFUSED = ["complex64", "complex128", "object", "U3", "S3", "datetime64[s]",
           "timedelta64[s]", "V8"]


def _cast(a, dtname):
    if dtname == "object":
        return a.astype(object)
    if dtname in ("U3", "S3"):
        return a.astype(dtname)
    if dtname.startswith(("datetime", "timedelta")):
        return a.astype(np.int64).astype(dtname)
    if dtname == "V8":
        return np.zeros(a.shape, "V8")
    return a.astype(dtname)


@pytest.mark.parametrize("name", EW)
@prop(12)
@given(data=st.data())
def test_elementwise_dtype_conversion_and_refusal(name, data):
    """Integers/bools/float16/longdouble convert (float16 computes in float32, the rest in
    float64); complex, object, strings, dates, void and masked arrays are refused with an
    error naming the argument (masked arrays may instead honour the mask)."""
    f = getattr(fl, name)
    n = data.draw(st.integers(1, 6))
    if name in S.PM1:
        x = data.draw(hnp.arrays(F64, n, elements=st.integers(-3, 3).map(float)))
        y = data.draw(hnp.arrays(F64, n, elements=st.sampled_from([-1.0, 1.0])))
    else:
        lo, hi = (0, 1) if name == "binary_cross_entropy" else (0, 3)
        x = data.draw(hnp.arrays(F64, n, elements=st.integers(lo, hi).map(float)))
        y = data.draw(hnp.arrays(F64, n, elements=st.integers(0, 1).map(float)))
    which = data.draw(st.sampled_from(["pred", "target", "sample_weight"]))
    dtname = data.draw(st.sampled_from(OTHER_DTYPES + REFUSED + ["masked"]))
    if name in S.PM1 and which == "target" and dtname.startswith(("uint", "bool")):
        dtname = "int8"   # -1 labels need a signed dtype
    w = np.ones(n)
    args = {"pred": x, "target": y, "sample_weight": w}
    if dtname == "masked":
        mask = np.zeros(n, bool)
        mask[0] = True
        args[which] = np.ma.array(args[which], mask=mask)
    else:
        args[which] = _cast(args[which], dtname)
    call = (lambda: fl.grad_and_hessian(f)(args["pred"], args["target"],
                                           sample_weight=args["sample_weight"],
                                           reduction="none", out=out))
    cdt = F32 if (which == "pred" and dtname == "float16") else F64
    out = np.empty(n, cdt)
    if dtname in REFUSED:
        raises_naming(call, [which], TypeError)
        return
    if dtname == "masked":
        try:
            fl.value_and_grad(f)(args["pred"], args["target"], sample_weight=args["sample_weight"])
        except TypeError as e:
            assert S.error_names_argument(e, [which]) and "mask" in str(e).lower(), str(e)
            return
        # honoured: the masked element weighs 0 and gets gradient 0
        v, g = fl.value_and_grad(f)(args["pred"], args["target"],
                                    sample_weight=args["sample_weight"], reduction="sum")
        keep = np.arange(n) != 0
        ref = S.ref_elementwise(name, x[keep], y[keep])[0].sum()
        np.testing.assert_allclose(float(v), ref, rtol=1e-12, atol=1e-300)
        assert g[0] == 0
        return
    g, h = call()
    assert out.dtype == cdt and g.dtype == cdt
    xv = np.asarray(args["pred"], np.float64)
    r = S.ref_elementwise(name, xv, np.asarray(args["target"], np.float64))
    wv = np.asarray(args["sample_weight"], np.float64)
    tol = 2e-6 if cdt == F32 else 1e-13
    np.testing.assert_allclose(out, wv * r[0], rtol=tol, atol=1e-300)
    np.testing.assert_allclose(g, wv * r[1], rtol=tol, atol=1e-300)


def _bad_param_values(rule):
    common = ["a", None, [1.0], complex(1, 1), np.array([1.0, 2.0])]
    if rule == "bool":
        return common + [2, 0, 1.0, "yes"]
    return common + [float("nan"), float("inf"), -float("inf"), np.True_, True] + {
        ">0": [0.0, -1.0], ">=0": [-1e-9], "open01": [0.0, 1.0, 1.5],
        "open12": [1.0, 2.0, 0.5], "closed01": [-0.1, 1.1],
        "eps": [-1e-3, 0.5], "any": []}[rule]


def _ew_params():
    from fastloss._math.spec import ELEMENTWISE
    out = []
    for name in EW:
        for p in ELEMENTWISE[name].params:
            out.append((name, p.name, p.rule))
    out.append(("sigmoid_focal", "alpha", "alpha"))
    return out


@pytest.mark.parametrize("name,param,rule", _ew_params(),
                         ids=[f"{a}-{b}" for a, b, _ in _ew_params()])
@prop(10)
@given(data=st.data())
def test_elementwise_bad_parameters(name, param, rule, data):
    f = getattr(fl, name)
    x, y = (np.array([0.2, 0.7]), np.array([1.0, -1.0])) if name in S.PM1 else \
        (np.array([0.2, 0.7]), np.array([0.0, 1.0]))
    if rule == "alpha":  # torchvision: alpha in [0, 1], or negative to disable weighting
        bad = data.draw(st.sampled_from([1.5, 2.0, 10.0]))
    else:
        vals = _bad_param_values(rule)
        from fastloss._math.spec import ELEMENTWISE
        if param in ELEMENTWISE[name].per_element:   # arrays of valid entries are accepted
            vals = [v for v in vals if not isinstance(v, (list, tuple, np.ndarray))]
        bad = data.draw(st.sampled_from(vals))
    raises_naming(lambda: f(x, y, **{param: bad}), [param])


def _valid_entry(v, rule):
    try:
        e = float(np.asarray(v, dtype=float).reshape(-1)[0])
    except (TypeError, ValueError):
        return False
    return np.isfinite(e) and (e >= 0 if rule == ">=0" else e > 0 if rule == ">0" else True)


@pytest.mark.parametrize("name", [n for n in EW if any(
    p.rule == "bool" for p in __import__("fastloss._math.spec", fromlist=["x"]).ELEMENTWISE[n].params)])
def test_elementwise_numpy_bools_accepted(name):
    from fastloss._math.spec import ELEMENTWISE
    f = getattr(fl, name)
    x, y = np.array([0.2, 0.7]), np.array([0.0, 1.0])
    for p in ELEMENTWISE[name].params:
        if p.rule == "bool":
            for v in (np.True_, np.False_):
                assert f(x, y, **{p.name: v}) == f(x, y, **{p.name: bool(v)})


@pytest.mark.parametrize("name", EW)
@prop(12)
@given(data=st.data())
def test_elementwise_bad_arguments_named(name, data):
    """Shapes, weights, reductions, devices, keywords, domains: errors name the argument."""
    f = getattr(fl, name)
    pm1 = name in S.PM1
    x = np.linspace(0.1, 0.9, 6).reshape(2, 3)
    y = np.where(np.arange(6) % 2, 1.0, -1.0).reshape(2, 3) if pm1 else np.full((2, 3), 0.5)
    case = data.draw(st.sampled_from([
        "target_shape", "weight_shape", "weight_negative", "weight_nan_negative",
        "reduction", "device", "kwarg", "positional", "ragged", "domain", "pred_domain"]))
    if case == "target_shape":
        raises_naming(lambda: f(x, np.zeros(data.draw(st.sampled_from([(4,), (3, 3), (2, 2)])))),
                      ["target"])
    elif case == "weight_shape":
        raises_naming(lambda: f(x, y, sample_weight=np.ones((5,))), ["sample_weight"])
    elif case == "weight_negative":
        w = np.ones((2, 3))
        w[data.draw(st.integers(0, 1)), data.draw(st.integers(0, 2))] = -1e-3
        raises_naming(lambda: f(x, y, sample_weight=w), ["sample_weight"], ValueError)
    elif case == "weight_nan_negative":
        w = np.array([np.nan, -1.0, 1.0, 1.0, 1.0, 1.0]).reshape(2, 3)
        raises_naming(lambda: f(x, y, sample_weight=w, reduction="none"), ["sample_weight"],
                      ValueError)
    elif case == "reduction":
        bad = data.draw(st.sampled_from(["avg", "MEAN", None, 1, "mean_batch"]))
        raises_naming(lambda: f(x, y, reduction=bad), ["reduction"])
    elif case == "device":
        raises_naming(lambda: f(x, y, device=data.draw(st.sampled_from(["gpu", None, 0]))),
                      ["device"])
    elif case == "kwarg":
        raises_naming(lambda: f(x, y, bogus=1), ["bogus"], TypeError)
    elif case == "positional":
        raises_naming(lambda: f(x, y, x), [name], TypeError)
    elif case == "ragged":
        raises_naming(lambda: f([[0.1, 0.2], [0.3]], [0.0, 1.0]), ["pred"])
    elif case == "domain":
        if name in S.PM1:
            yb = y.copy()
            yb[0, 0] = data.draw(st.sampled_from([0.0, 2.0, 0.5, np.inf]))
        elif name in S.UNIT_TARGET or name == "binary_cross_entropy":
            yb = y.copy()
            yb[1, 2] = data.draw(st.sampled_from([-0.1, 1.5, np.inf, -np.inf]))
        else:
            return
        out, gout = np.full(x.shape, 3.0), np.full(x.shape, 4.0)
        raises_naming(lambda: fl.value_and_grad(f)(x, yb, reduction="none", out=out,
                                                   grad_out=gout), ["target"], ValueError)
        # the caller's buffers are left as they were
        assert np.all(out == 3.0) and np.all(gout == 4.0)
    elif case == "pred_domain" and name == "binary_cross_entropy":
        xb = x.copy()
        xb[0, 1] = data.draw(st.sampled_from([-0.1, 1.5, np.inf]))
        raises_naming(lambda: f(xb, y), ["pred"], ValueError)


@pytest.mark.parametrize("name", EW)
@prop(10)
@given(data=st.data())
def test_elementwise_out_buffers(name, data):
    """out=/grad_out=/hess_out=: written and returned; wrong buffers refused by name;
    exact in-place works; partial overlap gives the right values or a clear error."""
    f = getattr(fl, name)
    dt = data.draw(st.sampled_from([F32, F64]))
    n = data.draw(st.integers(2, 12))
    if name == "binary_cross_entropy":
        x = np.linspace(0.05, 0.95, n + 1).astype(dt)
    else:
        x = np.linspace(-2, 2, n + 1).astype(dt)
    y = (np.where(np.arange(n + 1) % 2, 1.0, -1.0) if name in S.PM1 else
         np.full(n + 1, 0.5)).astype(dt)
    w = np.ones(n, dt)
    ref = ew_full_call(f, x[:-1].copy(), y[:-1].copy(), w, {}, dt)
    case = data.draw(st.sampled_from(["ok", "shape", "dtype", "strided", "readonly", "list",
                                      "inplace", "overlap"]))
    gh = fl.grad_and_hessian(f)
    xs, ys = x[:-1].copy(), y[:-1].copy()
    if case == "ok":
        o, go, ho = np.empty(n, dt), np.empty(n, dt), np.empty(n, dt)
        g, h = gh(xs, ys, sample_weight=w, reduction="none", out=o, grad_out=go, hess_out=ho)
        assert g is go and h is ho
        np.testing.assert_array_equal(o, ref[0])
        np.testing.assert_array_equal(g, ref[1])
        np.testing.assert_array_equal(h, ref[2])
        return
    which = data.draw(st.sampled_from(["out", "grad_out", "hess_out"]))
    bufs = {"out": np.empty(n, dt), "grad_out": np.empty(n, dt), "hess_out": np.empty(n, dt)}
    if case in ("shape", "dtype", "strided", "readonly", "list"):
        bufs[which] = {"shape": lambda: np.empty(n + 1, dt),
                       "dtype": lambda: np.empty(n, F64 if dt == F32 else F32),
                       "strided": lambda: np.empty(2 * n, dt)[::2],
                       "readonly": lambda: _readonly(n, dt),
                       "list": lambda: [0.0] * n}[case]()
        raises_naming(lambda: gh(xs, ys, sample_weight=w, reduction="none", **bufs), [which])
        return
    if case == "inplace":
        bufs[which] = xs
        g, h = gh(xs, ys, sample_weight=w, reduction="none", **bufs)
        got = {"out": bufs["out"], "grad_out": g, "hess_out": h}[which]
        np.testing.assert_array_equal(got, ref[["out", "grad_out", "hess_out"].index(which)])
        return
    # partial overlap: the buffer is the input shifted by one element
    xb = x.copy()
    bufs[which] = xb[1:]
    try:
        g, h = gh(xb[:-1], ys, sample_weight=w, reduction="none", **bufs)
    except ARG_ERRORS as e:
        assert S.error_names_argument(e, [which]), str(e)
        return
    got = {"out": bufs["out"], "grad_out": g, "hess_out": h}[which]
    np.testing.assert_array_equal(got, ref[["out", "grad_out", "hess_out"].index(which)])


def _readonly(n, dt):
    a = np.empty(n, dt)
    a.flags.writeable = False
    return a


# ============================================================================== row-wise
def _probs(draw, shape, dt, zeros=True):
    raw = draw(hnp.arrays(F64, shape, elements=st.sampled_from(
        [0.0, 0.1, 0.5, 1.0, 2.0, 1e-300] if zeros else [0.1, 0.5, 1.0, 2.0])))
    raw = np.where(raw.sum(-1, keepdims=True) > 0, raw, 1.0) if raw.size else raw
    return (raw / raw.sum(-1, keepdims=True)).astype(dt) if raw.size else raw.astype(dt)


VALS = st.one_of(st.floats(-5, 5), st.sampled_from([-0.0, 0.0, 5e-324, 1.0, -1.0, 1e-20]))


@st.composite
def row_case(draw, name, dtypes=(F64, F32), nan=False, max_batch=3):
    """(dtype, args in the public order (class axis last), params, labels-int array or
    None, batch shape)."""
    dt = draw(st.sampled_from(dtypes))
    batch = tuple(draw(st.lists(st.integers(0 if not nan else 1, 3), min_size=1 if name in (
        "multiclass_hinge", "cosine_embedding", "triplet_margin",
        "mean_pairwise_squared_error") or nan else 0, max_size=max_batch)))
    if name in ("multiclass_hinge", "cosine_embedding", "triplet_margin"):
        batch = batch[:1]     # these take (N, D)
    D = draw(st.integers(2 if name == "multiclass_hinge" else 1, 5))
    shape = batch + (D,)

    def arr(shp=shape):
        return draw(hnp.arrays(F64, shp, elements=VALS)).astype(dt)

    p, lab = {}, None
    if name == "softmax_cross_entropy":
        p["label_smoothing"] = draw(st.sampled_from([0.0, 0.1, 1.0]))
        args = [arr(), _probs(draw, shape, dt)]
    elif name == "softmax_cross_entropy_with_integer_labels":
        p["label_smoothing"] = draw(st.sampled_from([0.0, 0.2]))
        lab = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, D - 1)))
        args = [arr(), lab]
    elif name == "kl_divergence":
        p["log_target"] = draw(st.booleans())
        lp = np.log(_probs(draw, shape, F64, zeros=False)).astype(dt)
        t = _probs(draw, shape, dt, zeros=not p["log_target"])
        args = [lp, np.log(t.astype(F64)).astype(dt) if p["log_target"] else t]
    elif name == "softmax_kl_divergence":
        args = [arr(), _probs(draw, shape, dt)]
    elif name == "multiclass_hinge":
        p["margin"] = draw(st.sampled_from([1.0, 0.5, 0.0]))
        p["kind"] = draw(st.sampled_from(["weston_watkins", "crammer_singer"]))
        p["p"] = draw(st.sampled_from([1, 2]))
        lab = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, D - 1)))
        args = [arr(), lab]
    elif name == "cosine_embedding":
        p["margin"] = draw(st.sampled_from([0.0, -0.2, 0.5]))
        lab = draw(hnp.arrays(np.int64, batch, elements=st.sampled_from([-1, 1])))
        args = [arr(), arr(), lab]
    elif name == "cosine_distance":
        args = [arr(), arr()]
    elif name == "triplet_margin":
        p["margin"] = draw(st.sampled_from([1.0, 0.3]))
        p["squared"] = draw(st.booleans())
        args = [arr(), arr(), arr()]
    elif name == "mean_pairwise_squared_error":
        extra = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
        shape = batch[:1] + extra
        args = [arr(shape), arr(shape)]
    elif name in ("nll_loss", "categorical_focal_cross_entropy"):
        if name == "categorical_focal_cross_entropy":
            p["alpha"] = draw(st.sampled_from([0.25, 1.0]))
            p["gamma"] = draw(st.sampled_from([2.0, 0.0, 0.5]))
        lab = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, D - 1)))
        args = [arr(), lab]
    elif name in ("categorical_hinge", "poly1_softmax_cross_entropy"):
        if name == "poly1_softmax_cross_entropy":
            p["epsilon"] = draw(st.sampled_from([2.0, 0.5]))
        args = [arr(), _probs(draw, shape, dt)]
    elif name == "multilabel_soft_margin":
        args = [arr(), draw(hnp.arrays(F64, shape, elements=st.sampled_from(
            [0.0, 1.0, 0.5]))).astype(dt)]
    elif name == "multilabel_margin":   # index rows ended by -1 (repeats allowed)
        args = [arr(), draw(hnp.arrays(np.int64, shape, elements=st.integers(-1, D - 1)))]
    elif name == "multiclass_sparsemax_loss":
        lab = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, D - 1)))
        args = [arr(), lab]
    elif name in ("dice", "tversky"):   # per sample: (N, ...) probabilities and targets
        if name == "tversky":
            p["alpha"] = draw(st.sampled_from([0.5, 0.3, 1.0]))
            p["beta"] = draw(st.sampled_from([0.5, 0.7, 0.0]))
        batch = batch[:1] if batch else (1,)
        shape = batch + tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
        args = [draw(hnp.arrays(F64, shape, elements=st.floats(0, 1))).astype(dt),
                draw(hnp.arrays(F64, shape, elements=st.sampled_from(
                    [0.0, 1.0, 0.5]))).astype(dt)]
    else:
        raise KeyError(name)
    return dt, args, p, lab, batch


def _diff_argnums(name):
    info = fl.LOSSES[name]
    nums = tuple(info.inputs.index(n) for n in info.differentiable)
    return nums


def row_call(name, args, p, w, reduction="none"):
    """value_and_grad over every differentiable input (one kernel variant per loss)."""
    f = getattr(fl, name)
    nums = _diff_argnums(name)
    v, g = fl.value_and_grad(f, nums)(*args, sample_weight=w, reduction=reduction, **p)
    return v, g


def _row_ref_sum(name, args, p, w):
    r = S.ref_rowwise(name, [np.asarray(a, np.float64) if np.asarray(a).dtype.kind == "f"
                             else a for a in args], p)
    return float(np.sum(w * r))


def _fd_grads(name, args, p, w, nums, h=1e-6):
    """Central differences of Σ w·ref w.r.t. each differentiable input; NaN where the
    reference is not smooth there (the one-sided differences disagree: a kink; or two
    step sizes disagree: curvature on the scale of the step, as near a zero row of the
    cosine losses, whose eps = 1e-12 is the square of the step)."""
    base = [np.asarray(b, np.float64) if np.asarray(b).dtype.kind == "f" else b for b in args]
    f0 = _row_ref_sum(name, base, p, w)
    out = []
    for i in nums:
        a = np.asarray(args[i], np.float64)
        g = np.full(a.shape, np.nan)
        for idx in np.ndindex(a.shape):
            hh = h * (1 + abs(a[idx]))
            vals = []
            for sg in (1, -1, 0.25, -0.25):
                aa = list(base)
                aa[i] = a.copy()
                aa[i][idx] += sg * hh
                vals.append(_row_ref_sum(name, aa, p, w))
            fwd, bwd = (vals[0] - f0) / hh, (f0 - vals[1]) / hh
            c1, c4 = (vals[0] - vals[1]) / (2 * hh), (vals[2] - vals[3]) / (0.5 * hh)
            # smooth at this step size: one-sided and two step sizes agree
            if abs(fwd - bwd) <= 1e-3 * (1 + abs(fwd)) and abs(c1 - c4) <= 1e-5 * (1 + abs(c1)):
                g[idx] = c4
        out.append(g)
    return out


@pytest.mark.parametrize("name", ROW)
@prop(20)
@given(data=st.data())
def test_rowwise_matches_reference(name, data):
    dt, args, p, lab, batch = data.draw(row_case(name))
    w = data.draw(hnp.arrays(F64, batch if name != "mean_pairwise_squared_error" else
                             np.shape(args[0])[:1],
                             elements=st.sampled_from([0.0, 1.0, 0.5, 2.0]))).astype(dt)
    v, g = row_call(name, args, p, w)
    v = np.asarray(v)
    ref = S.ref_rowwise(name, [np.asarray(a, np.float64) if np.asarray(a).dtype.kind == "f"
                               else a for a in args], p)
    assert v.shape == ref.shape and v.dtype == dt
    fargs = [a for a in args if np.asarray(a).dtype.kind == "f"]
    mag = 1.0 + max((float(np.max(np.abs(a))) for a in fargs if a.size), default=0.0)
    D = max(np.shape(args[0])[-1] if np.ndim(args[0]) else 1, 1)
    if name == "mean_pairwise_squared_error":
        mag, D = mag * mag * 4, 1
    tol = (3e-5 if dt == F32 else 1e-11) * mag * D * (mag if "cosine" in name or
                                                      "triplet" in name else 1)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(v, w.astype(F64) * ref, rtol=0, atol=tol,
                                   err_msg=f"{name} {p} {dt}")
    if name in ("softmax_cross_entropy", "softmax_cross_entropy_with_integer_labels",
                "kl_divergence", "softmax_kl_divergence", "multiclass_hinge",
                "cosine_embedding", "triplet_margin", "mean_pairwise_squared_error",
                "categorical_hinge", "poly1_softmax_cross_entropy", "multilabel_soft_margin",
                "categorical_focal_cross_entropy"):
        assert not np.any(v < 0), f"{name}: negative loss {v}"
    g = g if isinstance(g, tuple) else (g,)
    nums = _diff_argnums(name)
    for gi, i in zip(g, nums):
        assert gi.shape == np.shape(args[i]) and gi.dtype == dt
    if dt == F64 and sum(np.size(args[i]) for i in nums) <= 24:
        fd = _fd_grads(name, args, p, w.astype(F64), nums)
        for gi, fi in zip(g, fd):
            ok = ~np.isnan(fi)
            np.testing.assert_allclose(gi[ok], fi[ok], rtol=1e-4, atol=1e-5 * mag,
                                       err_msg=f"{name} {p} gradient")


# (loss, input) pairs the loss is linear in: the gradient there does not depend on the
# input's own value, so a NaN in it need not reach that gradient entry
LINEAR_IN = {("cosine_distance", "pred"), ("cosine_distance", "target"),
             ("kl_divergence", "log_probs"), ("softmax_cross_entropy", "labels"),
             ("nll_loss", "log_probs"), ("poly1_softmax_cross_entropy", "labels")}


@pytest.mark.parametrize("name", ROW)
@prop(12)
@given(data=st.data())
def test_rowwise_reductions_permutation_and_nan(name, data):
    """sum/mean consistency (values and gradients), batch permutation, and a NaN entry
    poisons its own row (value and that entry's gradient) and nothing else."""
    dt, args, p, lab, batch = data.draw(row_case(name, dtypes=(F64,), nan=True, max_batch=1))
    N = np.shape(args[0])[0]
    w = data.draw(hnp.arrays(F64, (N,), elements=st.sampled_from([0.0, 1.0, 0.5, 2.0])))
    vn, gn = row_call(name, args, p, w, "none")
    vs, gs = row_call(name, args, p, w, "sum")
    vm, gm = row_call(name, args, p, w, "mean")
    gn, gs, gm = (g if isinstance(g, tuple) else (g,) for g in (gn, gs, gm))
    np.testing.assert_allclose(vs, np.sum(vn), rtol=1e-12, atol=1e-12 * float(np.sum(np.abs(vn))) + 1e-300)
    for a, b in zip(gs, gn):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=_scale_tol(b))
    den = float(np.sum(w))
    if name == "softmax_cross_entropy_with_integer_labels":
        den = float(np.sum(w))       # no class weights, no ignored rows here
    if den > 0:
        np.testing.assert_allclose(vm, np.sum(vn) / den, rtol=1e-12, atol=1e-12 * float(np.sum(np.abs(vn))) / den + 1e-300)
        for a, b in zip(gm, gn):
            np.testing.assert_allclose(a, b / den, rtol=1e-12, atol=_scale_tol(b / den))
    # permutation of the batch (rows are independent: bitwise equal)
    perm = np.random.default_rng(N).permutation(N)
    pargs = [np.asarray(a)[perm] for a in args]
    vp, gp = row_call(name, pargs, p, w[perm], "none")
    np.testing.assert_array_equal(vp, vn[perm])
    for a, b in zip(gp if isinstance(gp, tuple) else (gp,), gn):
        np.testing.assert_array_equal(a, b[perm])
    # NaN in one float entry of one row
    nums = _diff_argnums(name)
    i = data.draw(st.sampled_from(nums))
    a = np.array(args[i], dtype=dt)
    if a.size == 0:
        return
    idx = tuple(data.draw(st.integers(0, s - 1)) for s in a.shape)
    a[idx] = np.nan
    nargs = list(args)
    nargs[i] = a
    w1 = np.ones(N)
    vv, gg = row_call(name, nargs, p, w1, "none")
    v0, g0 = row_call(name, args, p, w1, "none")
    gg, g0 = (g if isinstance(g, tuple) else (g,) for g in (gg, g0))
    r = idx[0]
    assert np.isnan(vv[r]), f"{name}: NaN in row {r} gave loss {vv[r]}"
    if (name, fl.LOSSES[name].inputs[i]) not in LINEAR_IN:
        assert np.isnan(gg[nums.index(i)][idx]), f"{name}: NaN entry got finite gradient"
    others = np.arange(N) != r
    np.testing.assert_array_equal(vv[others], v0[others])
    for a1, b1 in zip(gg, g0):
        np.testing.assert_array_equal(a1[others], b1[others])


ROW_BAD = [
    ("softmax_cross_entropy", lambda x, k: fl.softmax_cross_entropy(x, np.ones((3, 5))), "labels"),
    ("softmax_cross_entropy", lambda x, k: fl.softmax_cross_entropy(x, -np.ones((3, 4))), "labels"),
    ("softmax_cross_entropy", lambda x, k: fl.softmax_cross_entropy(x, x, axis=2), "axis"),
    ("softmax_cross_entropy", lambda x, k: fl.softmax_cross_entropy(x, x, axis=1.0), "axis"),
    ("softmax_cross_entropy", lambda x, k: fl.softmax_cross_entropy(x, x, label_smoothing=2),
     "label_smoothing"),
    ("softmax_cross_entropy", lambda x, k: fl.softmax_cross_entropy(
        np.zeros((3, 0)), np.zeros((3, 0))), "logits"),
    ("ice", lambda x, k: fl.softmax_cross_entropy_with_integer_labels(x, k + 4), "labels"),
    ("ice", lambda x, k: fl.softmax_cross_entropy_with_integer_labels(x, k.astype(float)), "labels"),
    ("ice", lambda x, k: fl.softmax_cross_entropy_with_integer_labels(x, k[:2]), "labels"),
    ("ice", lambda x, k: fl.softmax_cross_entropy_with_integer_labels(
        x, k, class_weight=np.ones(3)), "class_weight"),
    ("ice", lambda x, k: fl.softmax_cross_entropy_with_integer_labels(
        x, k, class_weight=-np.ones(4)), "class_weight"),
    ("ice", lambda x, k: fl.softmax_cross_entropy_with_integer_labels(x, k, ignore_index=1.5),
     "ignore_index"),
    ("ice", lambda x, k: fl.softmax_cross_entropy_with_integer_labels(
        x.astype(complex), k), "logits"),
    ("ice", lambda x, k: fl.softmax_cross_entropy_with_integer_labels(
        x, k, sample_weight=[np.nan, -1, 1]), "sample_weight"),
    ("kl", lambda x, k: fl.kl_divergence(x, x, log_target=1), "log_target"),
    ("kl", lambda x, k: fl.kl_divergence(x, -np.ones((3, 4))), "target"),
    ("mh", lambda x, k: fl.multiclass_hinge(x, k, kind="bogus"), "kind"),
    ("mh", lambda x, k: fl.multiclass_hinge(x, k, margin="a"), "margin"),
    ("mh", lambda x, k: fl.multiclass_hinge(x, k - 5), "labels"),
    ("cemb", lambda x, k: fl.cosine_embedding(x, x, np.array([1, 0, 1])), "labels"),
    ("cemb", lambda x, k: fl.cosine_embedding(x, x[:, :2], np.array([1, 1, 1])), "x2"),
    ("cemb", lambda x, k: fl.cosine_embedding(x, x, np.array([1, 1, 1]), eps=-1.0), "eps"),
    ("trip", lambda x, k: fl.triplet_margin(x, x, x, squared=2), "squared"),
    ("trip", lambda x, k: fl.triplet_margin(x, x, x[:2]), "negative"),
    ("trip", lambda x, k: fl.triplet_margin(x, x, x, margin=np.nan), "margin"),
    ("mpse", lambda x, k: fl.mean_pairwise_squared_error(x, x.T), "target"),
    ("mpse", lambda x, k: fl.mean_pairwise_squared_error(np.float64(1.0), np.float64(1.0)),
     "pred"),
    ("cdist", lambda x, k: fl.cosine_distance(x, x, axis="1"), "axis"),
    ("cdist", lambda x, k: fl.cosine_distance(x, x, reduction="avg"), "reduction"),
]


@pytest.mark.parametrize("case", ROW_BAD, ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(ROW_BAD)])
def test_rowwise_bad_arguments_named(case):
    _, call, arg = case
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    k = np.array([0, 3, 1])
    raises_naming(lambda: call(x, k), [arg])


@prop(15)
@given(data=st.data())
def test_integer_labels_ignore_index_and_class_weight(data):
    """Ignored rows give 0 with 0 gradient and leave the mean's denominator; class
    weights scale rows and the denominator (PyTorch ``cross_entropy``)."""
    N, C = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    x = data.draw(hnp.arrays(F64, (N, C), elements=st.floats(-4, 4)))
    k = data.draw(hnp.arrays(np.int64, (N,), elements=st.integers(0, C - 1)))
    ign = data.draw(hnp.arrays(bool, (N,)))
    k = np.where(ign, -100, k)
    cw = data.draw(hnp.arrays(F64, (C,), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0])))
    w = data.draw(hnp.arrays(F64, (N,), elements=st.sampled_from([0.5, 1.0, 2.0])))
    f = fl.softmax_cross_entropy_with_integer_labels
    v, g = fl.value_and_grad(f)(x, k, class_weight=cw, sample_weight=w, reduction="none")
    ls = S.log_softmax(x)
    kk = np.where(ign, 0, k)
    ref = np.where(ign, 0.0, -cw[kk] * ls[np.arange(N), kk]) * w
    np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-14)
    assert np.all(g[ign] == 0)
    vm = f(x, k, class_weight=cw, sample_weight=w, reduction="mean")
    den = np.sum(np.where(ign, 0.0, w * cw[kk]))
    if den > 0:
        np.testing.assert_allclose(vm, ref.sum() / den, rtol=1e-12)
    else:
        assert np.isnan(vm)


# =================================================================================== CTC
@st.composite
def ctc_case(draw, dtypes=(F64,)):
    dt = draw(st.sampled_from(dtypes))
    N = draw(st.integers(1, 3))
    T = draw(st.integers(1, 5))
    C = draw(st.integers(2, 4 if T <= 3 else 3))
    blank = draw(st.integers(0, C - 1))
    nonblank = [c for c in range(C) if c != blank]
    labs = [draw(st.lists(st.sampled_from(nonblank), min_size=0, max_size=3)) for _ in range(N)]
    in_len = np.array([draw(st.integers(0, T)) for _ in range(N)], np.int64)
    scale = draw(st.sampled_from([1.0, 5.0, 40.0, 400.0, 3000.0]))
    x = draw(hnp.arrays(F64, (N, T, C), elements=st.floats(-1, 1))) * scale
    Lmax = max(1, max(len(l) for l in labs))
    pad = np.full((N, Lmax), draw(st.sampled_from([blank, -1, 0])), np.int64)
    for i, l in enumerate(labs):
        pad[i, :len(l)] = l
    lab_len = np.array([len(l) for l in labs], np.int64)
    return dt, x.astype(dt), pad, labs, in_len, lab_len, blank


def _ctc_expected(x, labs, in_len, blank, log_probs):
    N, T, C = x.shape
    lp = x.astype(F64) if log_probs else S.log_softmax(x.astype(F64))
    losses, grads = np.zeros(N), np.zeros((N, T, C))
    for n in range(N):
        L = in_len[n]
        loss, gam = S.ctc_brute(lp[n, :L], labs[n], blank)
        losses[n] = loss
        if np.isfinite(loss):
            grads[n, :L] = (-gam if log_probs else np.exp(lp[n, :L]) - gam)
    return losses, grads


@prop(40)
@given(case=ctc_case(dtypes=(F64, F32)), layout=st.sampled_from(["NTC", "TNC"]),
       log_probs=st.booleans(), flat=st.booleans())
def test_ctc_matches_brute_force(case, layout, log_probs, flat):
    dt, x, pad, labs, in_len, lab_len, blank = case
    xin = S.log_softmax(x.astype(F64)).astype(dt) if log_probs else x
    ref_l, ref_g = _ctc_expected(xin, labs, in_len, blank, log_probs)
    arg = np.ascontiguousarray(xin.transpose(1, 0, 2)) if layout == "TNC" else xin
    labels = np.concatenate([np.array(l, np.int64) for l in labs]) if flat else pad
    v, g = fl.value_and_grad(fl.ctc_loss)(arg, labels, in_len, lab_len, blank=blank,
                                          layout=layout, log_probs=log_probs, reduction="none")
    if layout == "TNC":
        g = g.transpose(1, 0, 2)
    assert v.dtype == dt and g.dtype == dt and v.shape == (len(labs),)
    rt = 1e-10 if dt == F64 else 3e-6
    fin = np.isfinite(ref_l)
    assert np.all(np.isposinf(v[~fin])), f"impossible alignments: {v[~fin]}"
    np.testing.assert_allclose(v[fin], ref_l[fin], rtol=rt,
                               atol=rt * (1 + float(np.max(np.abs(ref_l[fin]), initial=0))),
                               err_msg="ctc loss")
    assert np.all(v[fin] >= 0) or log_probs is False and np.all(v >= -1e-6)
    np.testing.assert_allclose(g, ref_g, atol=1e-8 if dt == F64 else 2e-4,
                               err_msg="ctc gradient")
    # zero_infinity: impossible → 0 with gradient 0
    vz = fl.ctc_loss(arg, labels, in_len, lab_len, blank=blank, layout=layout,
                     log_probs=log_probs, reduction="none", zero_infinity=True)
    assert np.all(vz[~fin] == 0)


@prop(20)
@given(case=ctc_case(), data=st.data())
def test_ctc_reductions_and_permutation(case, data):
    _, x, pad, labs, in_len, lab_len, blank = case
    N = len(labs)
    w = data.draw(hnp.arrays(F64, (N,), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0])))
    kw = dict(blank=blank, sample_weight=w, zero_infinity=True)
    vg = fl.value_and_grad(fl.ctc_loss)
    vn, gn = vg(x, pad, in_len, lab_len, reduction="none", **kw)
    vs, gs = vg(x, pad, in_len, lab_len, reduction="sum", **kw)
    np.testing.assert_allclose(vs, vn.sum(), rtol=1e-12, atol=1e-12 * float(np.sum(np.abs(vn))) + 1e-300)
    np.testing.assert_allclose(gs, gn, rtol=1e-12, atol=_scale_tol(gn))
    if w.sum() > 0:
        vm, gm = vg(x, pad, in_len, lab_len, reduction="mean", **kw)
        per = np.maximum(lab_len, 1)
        np.testing.assert_allclose(vm, np.sum(vn / per) / w.sum(), rtol=1e-12, atol=1e-300)
        gref = gn / per[:, None, None] / w.sum()
        np.testing.assert_allclose(gm, gref, rtol=1e-12, atol=_scale_tol(gref))
        vb = fl.ctc_loss(x, pad, in_len, lab_len, reduction="mean_batch", **kw)
        np.testing.assert_allclose(vb, vn.sum() / w.sum(), rtol=1e-12, atol=1e-300)
    perm = np.random.default_rng(N).permutation(N)
    vp, gp = vg(x[perm], pad[perm], in_len[perm], lab_len[perm], reduction="none",
                **dict(kw, sample_weight=w[perm]))
    np.testing.assert_array_equal(vp, vn[perm])
    np.testing.assert_array_equal(gp, gn[perm])


CTC_BAD = [
    (lambda x, l, il, ll: fl.ctc_loss(x[0], l, il, ll), "logits"),
    (lambda x, l, il, ll: fl.ctc_loss(x.astype(complex), l, il, ll), "logits"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l.astype(float), il, ll), "labels"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il + 10, ll), "input_lengths"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, -il, ll), "input_lengths"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il[:1], ll), "input_lengths"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il.astype(float), ll), "input_lengths"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll + 5), "label_lengths"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll.astype(np.uint64) - np.uint64(3)),
     "label_lengths"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l * 0, il, ll), "labels"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l + 9, il, ll), "labels"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll, blank=7), "blank"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll, blank=1.0), "blank"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll, layout="XYZ"), "layout"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll, zero_infinity=1), "zero_infinity"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll, reduction="avg"), "reduction"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll, sample_weight=[-1.0, 1.0]), "sample_weight"),
    (lambda x, l, il, ll: fl.ctc_loss(x, l, il, ll, sample_weight=[np.nan, -1.0]),
     "sample_weight"),
    (lambda x, l, il, ll: fl.ctc_greedy_decode(x, il + 10), "input_lengths"),
    (lambda x, l, il, ll: fl.ctc_greedy_decode(x[0], il), "logits"),
    (lambda x, l, il, ll: fl.ctc_greedy_decode(x, il, blank=-1), "blank"),
    (lambda x, l, il, ll: fl.ctc_greedy_decode(x, il, layout="NCT"), "layout"),
    (lambda x, l, il, ll: fl.grad_and_hessian(fl.ctc_loss), "Hessian"),
]


@pytest.mark.parametrize("case", CTC_BAD, ids=[f"{c[1]}-{i}" for i, c in enumerate(CTC_BAD)])
def test_ctc_bad_arguments_named(case):
    call, arg = case
    x = np.zeros((2, 4, 3))
    lab = np.array([[1, 2], [2, 0]])
    raises_naming(lambda: call(x, lab, np.array([4, 3]), np.array([2, 1])), [arg])


@prop(40)
@given(data=st.data())
def test_ctc_greedy_decode(data):
    N, T, C = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 6)), data.draw(
        st.integers(1, 4))
    x = data.draw(hnp.arrays(F64, (N, T, C), elements=st.integers(-2, 2).map(float)))
    il = np.array([data.draw(st.integers(0, T)) for _ in range(N)], np.int64)
    blank = data.draw(st.integers(0, C - 1))
    layout = data.draw(st.sampled_from(["NTC", "TNC"]))
    arg = x.transpose(1, 0, 2).copy() if layout == "TNC" else x
    out, lens = fl.ctc_greedy_decode(arg, il, blank=blank, layout=layout)
    ref = S.ctc_greedy_ref(x, il, blank)
    assert out.shape == (N, T) and lens.tolist() == [len(r) for r in ref]
    for n, r in enumerate(ref):
        assert out[n, :len(r)].tolist() == r and np.all(out[n, len(r):] == -1)


@prop(15)
@given(data=st.data())
def test_ctc_beam_search_decode(data):
    """Shapes and dtypes; each kept path's score is at most the exact log-probability of
    its label sequence (−ctc_loss), with equality for the best path when the beam keeps
    every prefix; paths come sorted by score."""
    N, T, C = data.draw(st.integers(1, 2)), data.draw(st.integers(0, 4)), data.draw(
        st.integers(2, 3))
    dt = data.draw(st.sampled_from([np.float32, np.float64]))
    x = data.draw(hnp.arrays(F64, (N, T, C), elements=st.integers(-2, 2).map(float))).astype(dt)
    il = np.array([data.draw(st.integers(0, T)) for _ in range(N)], np.int64)
    width = data.draw(st.integers(1, 4))
    k = data.draw(st.integers(1, width))
    lab, lens, lp = fl.ctc_beam_search_decode(x, il, beam_width=width, top_paths=k)
    assert lab.shape == (N, k, T) and lens.shape == (N, k) and lp.shape == (N, k)
    assert lp.dtype == dt and lab.dtype == np.int64
    assert np.all(lp[:, :-1] >= lp[:, 1:] - 1e-6)
    for n in range(N):
        for j in range(k):
            if not np.isfinite(lp[n, j]):
                continue
            L = int(lens[n, j])
            exact = -fl.ctc_loss(x[n:n + 1].astype(np.float64), lab[n, j:j + 1, :max(L, 1)],
                                 il[n:n + 1], np.array([L]), reduction="none")[0]
            assert lp[n, j] <= exact + 1e-4 * max(1.0, abs(exact))


@prop(15)
@given(data=st.data())
def test_ctc_loss_with_forward_probs(data):
    """The loss equals ctc_loss(reduction='none'); the forward variables are log-probabilities
    (<= 0) of the time-major shapes (T, N, L+1) and (T, N, L)."""
    N, T, C, L = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 5)),
                  data.draw(st.integers(2, 4)), data.draw(st.integers(0, 3)))
    x = data.draw(hnp.arrays(F64, (N, T, C), elements=st.integers(-2, 2).map(float)))
    lab = np.array([[data.draw(st.integers(1, C - 1)) for _ in range(max(L, 1))]
                    for _ in range(N)], np.int64)
    il = np.array([data.draw(st.integers(0, T)) for _ in range(N)], np.int64)
    ll = np.array([data.draw(st.integers(0, L)) for _ in range(N)], np.int64)
    loss, ab, an = fl.ctc_loss_with_forward_probs(x, lab, il, ll)
    np.testing.assert_allclose(loss, fl.ctc_loss(x, lab, il, ll, reduction="none"),
                               rtol=1e-12, atol=1e-12)
    Lm = int(ll.max())
    assert ab.shape == (T, N, Lm + 1) and an.shape == (T, N, Lm)
    assert np.all(ab[np.isfinite(ab)] <= 1e-12) and np.all(an[np.isfinite(an)] <= 1e-12)


# ================================================================ transforms and API
@prop(20)
@given(data=st.data())
def test_grad_transforms(data):
    """grad(f) is value_and_grad(f)[1]; bad transforms raise naming argnums / the loss."""
    name = data.draw(st.sampled_from(["huber", "triplet_margin", "cosine_embedding"]))
    f = getattr(fl, name)
    if name == "huber":
        args = (np.linspace(-2, 2, 5), np.zeros(5))
    elif name == "triplet_margin":
        args = tuple(np.linspace(-1, 1, 6).reshape(2, 3) * s for s in (1.0, 0.5, -0.3))
    else:
        args = (np.linspace(-1, 1, 6).reshape(2, 3), np.ones((2, 3)), np.array([1, -1]))
    nums = _diff_argnums(name)
    v, g = fl.value_and_grad(f, nums)(*args, sample_weight=np.ones(len(args[0])) if
                                      name != "huber" else np.ones(5))
    g2 = fl.grad(f, nums)(*args, sample_weight=np.ones(len(args[0])) if name != "huber"
                          else np.ones(5))
    for a, b in zip(g if isinstance(g, tuple) else (g,), g2 if isinstance(g2, tuple) else (g2,)):
        np.testing.assert_array_equal(a, b)
    bad = data.draw(st.sampled_from([0.0, "0", 7, -1, (0, 9), 1.5]))
    raises_naming(lambda: fl.value_and_grad(f, bad)(*args), ["argnums"])


@pytest.mark.parametrize("bad", [lambda: fl.value_and_grad(np.sum),
                                 lambda: fl.grad(lambda x: x),
                                 lambda: fl.grad_and_hessian(fl.kl_divergence),
                                 lambda: fl.value_and_grad(fl.huber, 1)])
def test_transform_refusals(bad):
    with pytest.raises(ARG_ERRORS):
        bad()


# ====================================================================== LossCollection
@prop(20)
@given(data=st.data())
def test_loss_collection_total_and_gradients(data):
    """The total is Σ weight·value; each distinct array gets Σ weight·gradient."""
    n = data.draw(st.integers(1, 5))
    a = data.draw(hnp.arrays(F64, (n,), elements=st.floats(-3, 3)))
    b = data.draw(hnp.arrays(F64, (n,), elements=st.floats(-3, 3)))
    t = np.zeros(n)
    ws = data.draw(st.lists(st.sampled_from([1.0, 0.5, -2.0, 0.0]), min_size=3, max_size=3))
    l2, l1 = data.draw(st.sampled_from([0.0, 0.1])), data.draw(st.sampled_from([0.0, 0.3]))
    c = fl.LossCollection()
    c.add(fl.huber, a, t, weight=ws[0], delta=0.7)
    c.add(fl.squared_error, a, b, weight=ws[1])
    c.add(fl.squared_error, b, t, weight=ws[2], reduction="sum")
    c.add_regularization(b, l2=l2, l1=l1)
    total, grads = c.value_and_grads()
    ra = S.ref_elementwise("huber", a, t, delta=0.7)
    rab = S.ref_elementwise("squared_error", a, b)
    rb = S.ref_elementwise("squared_error", b, t)
    exp_total = (ws[0] * ra[0].mean() + ws[1] * rab[0].mean() + ws[2] * rb[0].sum()
                 + 0.5 * l2 * np.sum(b * b) + l1 * np.sum(np.abs(b)))
    np.testing.assert_allclose(total, exp_total, rtol=1e-12, atol=1e-12)
    assert len(grads) == 2
    np.testing.assert_allclose(grads[0], ws[0] * ra[1] / n + ws[1] * rab[1] / n,
                               rtol=1e-12, atol=1e-12)
    gb = ws[2] * rb[1] + l2 * b + l1 * np.sign(b)   # add() differentiates w.r.t. pred only
    np.testing.assert_allclose(grads[1], gb, rtol=1e-12, atol=1e-12)
    for bad in ("a", None, np.nan * 1j):
        raises_naming(lambda: c.add(fl.huber, a, t, weight=bad), ["weight"])
    raises_naming(lambda: c.add_regularization(b, l2=-1.0), ["l2"])


# ============================================================================== gluon
GLUON_EW = [
    # class, ctor kwargs, core reference loss, its params, value factor, label kind
    (gluon.L1Loss, {}, "absolute_error", {}, 1.0, "real"),
    (gluon.L2Loss, {}, "squared_error", {}, 0.5, "real"),
    (gluon.HuberLoss, {"rho": 0.8}, "smooth_l1", {"beta": 0.8}, 1.0, "real"),
    (gluon.SigmoidBCELoss, {}, "sigmoid_binary_cross_entropy", {}, 1.0, "unit"),
    (gluon.HingeLoss, {"margin": 1.5}, "hinge", {"margin": 1.5}, 1.0, "pm1"),
    (gluon.SquaredHingeLoss, {"margin": 0.5}, "squared_hinge", {"margin": 0.5}, 1.0, "pm1"),
    (gluon.LogisticLoss, {}, "logistic", {}, 1.0, "pm1"),
]


@pytest.mark.parametrize("case", GLUON_EW, ids=[c[0].__name__ for c in GLUON_EW])
@prop(20)
@given(data=st.data())
def test_gluon_elementwise_against_reference(case, data):
    """Per sample: mean over the non-batch axes of weight·sample_weight·ℓ; the gradient is
    that of the per-sample sum."""
    cls, kw, core, cp, fac, kind = case
    shape = data.draw(S.shapes(min_dims=1, max_dims=3, max_side=3, max_size=27).filter(
        lambda s: s[0] >= 1 and int(np.prod(s)) > 0))
    ba = data.draw(st.integers(0, len(shape) - 1))
    x = data.draw(hnp.arrays(F64, shape, elements=st.floats(-4, 4)))
    y = data.draw(hnp.arrays(F64, shape, elements=(
        st.floats(-4, 4) if kind == "real" else st.floats(0, 1) if kind == "unit"
        else st.sampled_from([-1.0, 1.0]))))
    weight = data.draw(st.sampled_from([None, 0.7, 2.0]))
    sw_shape = tuple(s if i == ba else 1 for i, s in enumerate(shape))
    sw = data.draw(st.one_of(st.none(), hnp.arrays(F64, sw_shape, elements=st.sampled_from(
        [0.0, 0.5, 1.0, 2.0]))))
    loss = cls(weight=weight, batch_axis=ba, **kw)
    v, g = loss.loss_and_grad(x, y, sample_weight=sw)
    wt = (1.0 if weight is None else weight) * (1.0 if sw is None else np.broadcast_to(sw, shape))
    M = int(np.prod(shape)) // shape[ba]
    (vl, vh), (gl, gh), _ = S.reference_bounds(core, x, y, F64, **cp)
    axes = tuple(i for i in range(len(shape)) if i != ba)
    ref_v = np.sum(fac * wt * vl, axis=axes) / M
    np.testing.assert_allclose(v, ref_v, rtol=1e-10, atol=1e-12)
    S.within(g, fac * wt * np.minimum(gl, gh) / M, fac * wt * np.maximum(gl, gh) / M, F64,
             "gluon gradient", cls.__name__)


GLUON_BAD = [
    (lambda: gluon.HuberLoss(rho="a")(np.ones(2), np.ones(2)), "rho"),
    (lambda: gluon.HingeLoss(margin="a")(np.ones(2), np.ones(2)), "margin"),
    (lambda: gluon.SquaredHingeLoss(margin=None)(np.ones(2), np.ones(2)), "margin"),
    (lambda: gluon.TripletLoss(margin="a")(np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2))),
     "margin"),
    (lambda: gluon.PoissonNLLLoss()(np.ones(2), np.ones(2), epsilon="a"), "epsilon"),
    (lambda: gluon.SigmoidBCELoss()(np.ones(2), np.ones(2), pos_weight="a"), "pos_weight"),
    (lambda: gluon.SoftmaxCELoss()(np.ones((2, 3)), np.array(["a", "b"])), "label"),
    (lambda: gluon.SoftmaxCELoss()(np.ones((2, 3)), np.array([1.7, 0.0])), "label"),
    (lambda: gluon.CTCLoss()(np.zeros((2, 4, 3)), np.array([[0, 1], [1, -1]]),
                             pred_lengths=np.array(["4", "4"])), "pred_lengths"),
    (lambda: gluon.CTCLoss()(np.zeros((2, 4, 3)), np.array([[0, 1], [1, -1]]),
                             pred_lengths=np.array([4.7, 4.0])), "pred_lengths"),
    (lambda: gluon.CTCLoss(layout="XYZ"), "layout"),
    (lambda: gluon.CTCLoss(label_layout="XY"), "label_layout"),
    (lambda: gluon.tutorial_curves(step=0), "step"),
    (lambda: gluon.L1Loss(weight="a"), "weight"),
    (lambda: gluon.L1Loss(batch_axis=5)(np.ones((2, 2)), np.ones((2, 2))), "batch_axis"),
    (lambda: gluon.L2Loss()(np.ones((2, 2)), np.ones((2, 2)), np.ones(5)), "sample_weight"),
]


@pytest.mark.parametrize("case", GLUON_BAD, ids=[f"{c[1]}-{i}" for i, c in enumerate(GLUON_BAD)])
def test_gluon_bad_arguments_named(case):
    call, arg = case
    raises_naming(call, [arg])


# =============================================================================== slim
def slim_reduce(losses, weights):
    """TF-Slim's compute_weighted_loss (tf.contrib.losses), float64."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 0:
        n = losses.size if w != 0 else 0
        total = float(w) * losses.sum()
    else:
        if w.ndim > 1 and w.shape[-1] == 1:
            w = w[..., 0]
        red = losses.sum(axis=tuple(range(w.ndim, losses.ndim))) if losses.ndim > w.ndim \
            else losses
        total = np.sum(red * w)
        n = np.count_nonzero(w) * int(np.prod(losses.shape[w.ndim:]))
    return total / n if n > 0 else 0.0


SLIM_EW = [
    ("absolute_difference", {}, "absolute_error", {}, "real"),
    ("mean_squared_error", {}, "squared_error", {}, "real"),
    ("log_loss", {"epsilon": 1e-5}, "binary_cross_entropy", {"eps": 1e-5, "clip": False}, "prob"),
    ("sigmoid_cross_entropy", {"label_smoothing": 0.2}, "sigmoid_binary_cross_entropy",
     {"label_smoothing": 0.2}, "unit"),
]


@pytest.mark.parametrize("case", SLIM_EW, ids=[c[0] for c in SLIM_EW])
@prop(20)
@given(data=st.data())
def test_slim_against_reference(case, data):
    name, kw, core, cp, kind = case
    fn = getattr(slim, name)
    B = data.draw(st.integers(1, 4))
    rest = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=2)))
    shape = (B,) + rest
    x = data.draw(hnp.arrays(F64, shape, elements=st.floats(0.01, 0.99) if kind == "prob"
                             else st.floats(-4, 4)))
    y = data.draw(hnp.arrays(F64, shape, elements=st.floats(0, 1) if kind in ("prob", "unit")
                             else st.floats(-4, 4)))
    wkind = data.draw(st.sampled_from(["scalar", "batch", "batch1", "full"]))
    el = st.sampled_from([0.0, 0.5, 1.0, 2.0])
    w = {"scalar": lambda: data.draw(el),
         "batch": lambda: data.draw(hnp.arrays(F64, (B,), elements=el)),
         "batch1": lambda: data.draw(hnp.arrays(F64, (B, 1), elements=el)),
         "full": lambda: data.draw(hnp.arrays(F64, shape, elements=el))}[wkind]()
    with fl.LossCollection():
        v, g = fn.value_and_grad(x, y, weights=w, **kw)
    r = S.ref_elementwise(core, x, y, **cp)
    np.testing.assert_allclose(v, slim_reduce(r[0], w), rtol=1e-11, atol=1e-13)
    assert g.shape == x.shape


SLIM_BAD = [
    (lambda: slim.cosine_distance(np.ones((2, 3)), np.ones((2, 3)), axis=1.0), "axis"),
    (lambda: slim.cosine_distance(np.ones((2, 3)), np.ones((2, 3)), axis="1"), "axis"),
    (lambda: slim.sparse_softmax_cross_entropy(np.ones((4, 3)), np.zeros((4, 2), int)),
     "labels"),
    (lambda: slim.sigmoid_cross_entropy(np.ones(2), np.ones(2), label_smoothing="a"),
     "label_smoothing"),
    (lambda: slim.sigmoid_cross_entropy(np.ones(2), np.ones(2), label_smoothing=None),
     "label_smoothing"),
    (lambda: slim.log_loss(np.full(2, 0.5), np.ones(2), epsilon="a"), "epsilon"),
    (lambda: slim.log_loss(np.full(2, 0.5), np.ones(2), epsilon=None), "epsilon"),
    (lambda: slim.absolute_difference(np.ones(2), np.ones(2), weights="a"), "weights"),
    (lambda: slim.absolute_difference(np.ones(2), np.ones(2), weights=None), "weights"),
    (lambda: slim.hinge_loss(np.ones(2), np.array([1.0, -1.0])), "labels"),
    (lambda: slim.absolute_difference(np.ones(2), np.ones(3)), "labels"),
]


@pytest.mark.parametrize("case", SLIM_BAD, ids=[f"{c[1]}-{i}" for i, c in enumerate(SLIM_BAD)])
def test_slim_bad_arguments_named(case):
    call, arg = case
    with fl.LossCollection():
        e = raises_naming(call, [arg])
    if arg == "labels" and "hinge" in str(e):
        assert "0" in str(e) and "1" in str(e)


def test_slim_hinge_message_asks_for_01_labels():
    with fl.LossCollection():
        with pytest.raises(ValueError) as ei:
            slim.hinge_loss(np.ones(2), np.array([1.0, -1.0]))
    msg = str(ei.value)
    assert "hinge_loss" in msg and ("{0, 1}" in msg or "0/1" in msg or "0 or 1" in msg), msg


def test_slim_default_collection_constant_memory():
    """A training loop calling slim losses outside any scope must not grow without bound."""
    slim.reset_default_collection()
    try:
        x, y = np.linspace(0, 1, 4), np.zeros(4)
        for _ in range(200):
            slim.absolute_difference(x, y)
        assert len(slim.get_default_collection()) < 200
    finally:
        slim.reset_default_collection()


# ================================================================ every public callable
def test_thread_controls():
    n = fl.get_num_threads()
    assert isinstance(n, int) and n >= 1
    with fl.threads(1):
        assert fl.get_num_threads() == 1
    assert fl.get_num_threads() == n
    for bad in (0, "a", 1.5, np.float64(2.0)):
        raises_naming(lambda: fl.set_num_threads(bad), ["n"])
    assert fl.get_num_threads() == n


_PREP = ["huber", "sigmoid_binary_cross_entropy", "logistic", "poisson_nll"]


@prop(30)
@given(name=st.sampled_from(_PREP), n=st.integers(0, 300), f64=st.booleans(),
       red=st.sampled_from(["mean", "sum", "none"]), weighted=st.booleans(), seed=st.integers(0, 99))
def test_prepare_equals_the_checked_call(name, n, f64, red, weighted, seed):
    """A prepared call gives the checked call's value and gradient bit for bit, for any
    later prediction of the prepared shape; anything else is refused naming ``pred``."""
    dt = F64 if f64 else F32
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n).astype(dt)
    y = (np.sign(rng.normal(size=n)) if name == "logistic"
         else rng.integers(0, 2, n) if name == "sigmoid_binary_cross_entropy"
         else rng.poisson(2.0, n)).astype(dt)
    w = rng.uniform(0.5, 2.0, n) if weighted else None
    fn = getattr(fl, name)
    f = fl.prepare(fn, x0, y, sample_weight=w, reduction=red)
    x = rng.normal(size=n).astype(dt)
    g = np.empty_like(x)
    v1, g1 = f(x, grad_out=g)
    g2 = np.empty_like(x)
    v2, _ = fl.value_and_grad(fn)(x, y, sample_weight=w, reduction=red, grad_out=g2)
    np.testing.assert_array_equal(np.asarray(v1), np.asarray(v2))
    np.testing.assert_array_equal(g1, g2)
    raises_naming(lambda: f(x.astype(F64 if dt == F32 else F32)), ["pred"])
    raises_naming(lambda: f(np.zeros(n + 1, dt)), ["pred"])
    raises_naming(lambda: f(list(x)), ["pred"])


@prop(25)
@given(name=st.sampled_from(["huber", "log_cosh", "squared_error"]),
       n=st.integers(1, 20000), chunk=st.integers(1, 9000), seed=st.integers(0, 99))
def test_score_equals_the_in_memory_call(name, n, chunk, seed):
    """Streaming float64 totals equal the in-memory call (to round-off) whatever the chunk
    size, and the streamed sums are the same bits for every chunk size."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=n)
    w = rng.uniform(0.0, 2.0, n)
    r1 = fl.score(name, x, y, sample_weight=w, chunk_size=chunk)
    r2 = fl.score(name, x, y, sample_weight=w, chunk_size=1 << 14)
    assert r1.sum == r2.sum and r1.mean == r2.mean
    assert r1.count == n
    ref = getattr(fl, name)(x, y, sample_weight=w, reduction="sum")
    assert np.isclose(r1.sum, ref, rtol=1e-12, atol=0)
    assert np.isclose(r1.mean, ref / w.sum(), rtol=1e-12, atol=0)
    raises_naming(lambda: fl.score(name, x, y[:-1] if n > 1 else y[:0]), ["target", "pred"])
    raises_naming(lambda: fl.score(name, x, y, chunk_size=0), ["chunk_size"])
    raises_naming(lambda: fl.score(name, x, y, nulls="drop"), ["nulls"])


def test_every_public_function_is_exercised():
    """A new public name must get a property here (keeps the suite complete)."""
    covered = set(EW) | set(ROW) | {"ctc_loss", "ctc_greedy_decode", "ctc_beam_search_decode",
                                    "ctc_loss_with_forward_probs", "value_and_grad", "grad",
                                    "grad_and_hessian", "LossCollection", "LOSSES", "gluon",
                                    "slim", "set_num_threads", "get_num_threads", "threads",
                                    "prepare", "Prepared", "score", "ScoreResult",
                                    "ScoreDataError"}
    covered |= set(EW3) | {n for n, i in fl.LOSSES.items() if i.kind == "metric"}
    assert set(fl.__all__) <= covered, set(fl.__all__) - covered


@prop(15)
@given(data=st.data())
def test_divergences_never_negative_at_equal_distributions(data):
    """KL(t ‖ p) = 0 when p = t: rounding may give a tiny positive value, never a negative
    one (a loss that is >= 0 in exact arithmetic is never negative)."""
    C = data.draw(st.integers(1, 6))
    x = data.draw(hnp.arrays(F64, (2, C), elements=st.sampled_from([0.0, 1.0, -2.0, 0.5])))
    t = np.exp(S.log_softmax(x))
    v1 = fl.softmax_kl_divergence(x, t, reduction="none")
    v2 = fl.kl_divergence(np.log(t), t, reduction="none")
    assert np.all(v1 >= 0) and np.all(v2 >= 0), (v1, v2)


# ============================================================ elementwise, three arrays
def _ref3(name, x, y, z, p):
    if name == "gaussian_nll":
        v = np.maximum(z, p["eps"])
        return 0.5 * (np.log(v) + (x - y) ** 2 / v) + (0.5 * np.log(2 * np.pi) if p["full"] else 0)
    return np.maximum(0.0, -z * (x - y) + p["margin"])


@pytest.mark.parametrize("name", EW3)
@prop(20)
@given(data=st.data())
def test_elementwise3_matches_reference(name, data):
    """Values against float64 formulas for any shapes that broadcast; the gradients of
    weighted sums are linear in the weights and 'mean' is 'sum' / Σw."""
    shape = data.draw(S.shapes(max_size=24))
    x = data.draw(hnp.arrays(F64, shape, elements=st.floats(-5, 5)))
    y = data.draw(hnp.arrays(F64, target_shape(data.draw, shape), elements=st.floats(-5, 5)))
    if name == "gaussian_nll":
        zs = data.draw(st.sampled_from([shape, shape[:-1], ()]))
        z = data.draw(hnp.arrays(F64, zs, elements=st.floats(0, 4)))
        p = {"full": data.draw(st.booleans()), "eps": data.draw(st.sampled_from([1e-6, 0.1]))}
        zb = np.broadcast_to(z.reshape(zs + (1,)) if zs == shape[:-1] and zs != shape else z,
                             shape)
    else:
        z = data.draw(hnp.arrays(F64, target_shape(data.draw, shape),
                                 elements=st.sampled_from([-1.0, 1.0])))
        p = {"margin": data.draw(st.sampled_from([0.0, 0.5, -0.25]))}
        zb = np.broadcast_to(z, shape)
    w = data.draw(hnp.arrays(F64, shape, elements=st.sampled_from([0.0, 0.5, 1.0, 2.0])))
    f = getattr(fl, name)
    info = fl.LOSSES[name]
    nums = tuple(info.inputs.index(n) for n in info.differentiable)
    v, gs = fl.value_and_grad(f, argnums=nums)(x, y, z, sample_weight=w, reduction="none", **p)
    ref = w * _ref3(name, x, np.broadcast_to(y, shape), zb, p)
    np.testing.assert_allclose(v, ref, rtol=1e-13, atol=1e-13)
    for i, g in zip(nums, gs):   # a broadcast input's gradient has its own shape
        assert g.shape == np.shape((x, y, z)[i]) and g.dtype == F64
    s = f(x, y, z, sample_weight=w, reduction="sum", **p)
    assert np.isclose(s, ref.sum(), rtol=1e-12, atol=1e-12)
    if w.sum() > 0:
        m, gm = fl.value_and_grad(f, argnums=nums)(x, y, z, sample_weight=w, **p)
        assert np.isclose(m, s / w.sum(), rtol=1e-12, atol=1e-12)
        for a, b in zip(gm, gs):
            np.testing.assert_allclose(a, b / w.sum(), rtol=1e-12, atol=1e-300)
    raises_naming(lambda: f(x, y, z, reduction="avg", **p), ["reduction"])
