"""Metric-learning losses: values against brute-force float64 references (explicit loops
over pairs and triplets, written from the TF-Slim / optax definitions), gradients against
central finite differences and PyTorch autograd on a PyTorch transcription of the TF and
optax code, float32, reductions and weights, edge cases (no positives, no negatives, NaN),
validation errors.

Tiny inputs: the serial kernel (float64 and float32) is compiled, and the parallel one
once (float64).
"""
import warnings

import numpy as np
import pytest

import fastloss
from fastloss import value_and_grad

warnings.filterwarnings("ignore", category=Warning, module="numba")

NAMES = ("contrastive", "npairs", "ntxent", "triplet_semihard", "lifted_struct")


# --- brute-force references (float64, loops) -----------------------------------------------

def ref_contrastive(lab, a, p, margin=1.0, w=None, reduction="mean"):
    n = len(lab)
    ls = np.zeros(n)
    for i in range(n):
        d = np.sqrt(np.sum((a[i] - p[i]) ** 2))
        ls[i] = lab[i] * d * d + (1 - lab[i]) * max(margin - d, 0.0) ** 2
    w = np.ones(n) if w is None else w
    if reduction == "none":
        return w * ls
    return np.sum(w * ls) if reduction == "sum" else np.sum(w * ls) / np.sum(w)


def ref_npairs(lab, a, p, reg_lambda=0.002, w=None, reduction="mean"):
    n = len(lab)
    ls = np.zeros(n)
    for i in range(n):
        s = [np.dot(a[i], p[j]) for j in range(n)]
        m = max(s)
        lse = m + np.log(sum(np.exp(v - m) for v in s))
        same = [j for j in range(n) if lab[j] == lab[i]]
        ls[i] = sum((lse - s[j]) / len(same) for j in same)
        ls[i] += 0.25 * reg_lambda * (np.dot(a[i], a[i]) + np.dot(p[i], p[i]))
    w = np.ones(n) if w is None else w
    return np.sum(w * ls) if reduction == "sum" else np.sum(w * ls) / np.sum(w)


def ref_ntxent(x, lab, temperature=0.07, w=None, reduction="mean", eps=None):
    n = len(lab)
    eps = np.finfo(np.float64).eps if eps is None else eps
    u = [x[i] / np.sqrt(max(np.dot(x[i], x[i]), eps)) for i in range(n)]
    tot, cnt = 0.0, 0.0
    w = np.ones(n) if w is None else w
    for i in range(n):
        negs = [np.dot(u[i], u[k]) / temperature for k in range(n) if lab[k] != lab[i]]
        for j in range(n):
            if j != i and lab[j] == lab[i]:
                c = np.dot(u[i], u[j]) / temperature
                tot += w[i] * -(c - np.log(np.exp(c) + sum(np.exp(v) for v in negs)))
                cnt += w[i]
    return tot if reduction == "sum" else tot / cnt


def _sq(x, i, j):
    return float(np.sum((x[i] - x[j]) ** 2))


def ref_triplet(lab, x, margin=1.0, w=None, reduction="mean"):
    n = len(lab)
    w = np.ones(n) if w is None else w
    tot, cnt = 0.0, 0.0
    for a in range(n):
        negs = [k for k in range(n) if lab[k] != lab[a]]
        for p in range(n):
            if p == a or lab[p] != lab[a]:
                continue
            dap = _sq(x, a, p)
            outside = [_sq(x, a, k) for k in negs if _sq(x, a, k) > dap]
            if outside:
                dn = min(outside)
            elif negs:
                dn = max(_sq(x, a, k) for k in negs)
            else:
                dn = 0.0
            tot += w[a] * max(margin + dap - dn, 0.0)
            cnt += w[a]
    return tot if reduction == "sum" else tot / cnt


def ref_lifted(lab, x, margin=1.0, w=None, reduction="mean"):
    n = len(lab)
    w = np.ones(n) if w is None else w
    dist = lambda i, j: np.sqrt(_sq(x, i, j))  # noqa: E731
    tot, cnt = 0.0, 0.0
    for i in range(n):
        for q in range(n):
            if q == i or lab[q] != lab[i]:
                continue
            s = sum(np.exp(margin - dist(i, k)) for k in range(n) if lab[k] != lab[i])
            s += sum(np.exp(margin - dist(q, k)) for k in range(n) if lab[k] != lab[q])
            J = dist(i, q) + np.log(s) if s > 0 else -np.inf
            tot += w[i] * 0.25 * max(J, 0.0) ** 2
            cnt += w[i] * 0.5
    return tot if reduction == "sum" else tot / cnt


def call_ref(name, args, **kw):
    return {"contrastive": ref_contrastive, "npairs": ref_npairs, "ntxent": ref_ntxent,
            "triplet_semihard": ref_triplet, "lifted_struct": ref_lifted}[name](*args, **kw)


def case(name, seed=0, n=7, d=3):
    """Inputs in the loss's argument order, away from kinks and ties."""
    rng = np.random.default_rng(seed)
    lab = np.array([0, 0, 1, 1, 1, 2, 0, 2, 1][:n])
    if name == "contrastive":
        a = rng.normal(size=(n, d)) * 0.4
        return (np.array([1, 0, 1, 0, 0, 1, 0][:n]), a, a + rng.normal(size=(n, d)) * 0.4), {}
    if name == "npairs":
        return (lab, rng.normal(size=(n, d)), rng.normal(size=(n, d))), {"reg_lambda": 0.1}
    x = rng.normal(size=(n, d))
    if name == "ntxent":
        return (x, lab), {"temperature": 0.5}
    return (lab, x), {"margin": 1.5 if name == "triplet_semihard" else 1.0}


def diff_idx(name):
    info = fastloss.LOSSES[name]
    return tuple(i for i, k in enumerate(info.inputs) if k in info.differentiable)


def fd_grad(f, args, i, h=1e-6):
    x = np.array(args[i], float)
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        a1, a2 = list(args), list(args)
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        a1[i], a2[i] = xp, xm
        g[k] = (f(*a1) - f(*a2)) / (2 * h)
    return g


# --- values and gradients --------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_value_and_grad_match_brute_force_and_finite_differences(name, reduction):
    args, kw = case(name)
    fn = getattr(fastloss, name)
    idx = diff_idx(name)
    v, gs = value_and_grad(fn, argnums=idx)(*args, reduction=reduction, **kw)
    ref = call_ref(name, args, reduction=reduction, **kw)
    assert v.dtype == np.float64
    np.testing.assert_allclose(v, ref, rtol=1e-12)
    for i, g in zip(idx, gs):
        fd = fd_grad(lambda *a: call_ref(name, a, reduction=reduction, **kw), args, i)
        assert g.shape == args[i].shape and g.dtype == np.float64
        np.testing.assert_allclose(g, fd, atol=1e-6 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("name", NAMES)
def test_sample_weight(name):
    args, kw = case(name, seed=3)
    n = len(args[0]) if name != "ntxent" else len(args[1])
    w = np.linspace(0.0, 2.0, n)
    fn = getattr(fastloss, name)
    for red in ("mean", "sum"):
        v = fn(*args, sample_weight=w, reduction=red, **kw)
        np.testing.assert_allclose(v, call_ref(name, args, w=w, reduction=red, **kw),
                                   rtol=1e-12)
    idx = diff_idx(name)
    _, g = value_and_grad(fn, argnums=idx[-1])(*args, sample_weight=w, **kw)
    fd = fd_grad(lambda *a: call_ref(name, a, w=w, **kw), args, idx[-1])
    np.testing.assert_allclose(g, fd, atol=1e-6 * max(1.0, np.abs(fd).max()))
    # a scalar weight scales "sum" and leaves "mean" unchanged
    np.testing.assert_allclose(fn(*args, sample_weight=2.0, reduction="sum", **kw),
                               2 * fn(*args, reduction="sum", **kw), rtol=1e-13)
    np.testing.assert_allclose(fn(*args, sample_weight=2.0, **kw), fn(*args, **kw),
                               rtol=1e-13)


@pytest.mark.parametrize("name", NAMES)
def test_float32(name):
    args, kw = case(name, seed=5)
    a32 = tuple(a.astype(np.float32) if a.dtype.kind == "f" and a.ndim == 2 else a
                for a in args)
    fn = getattr(fastloss, name)
    idx = diff_idx(name)
    v32, g32 = value_and_grad(fn, argnums=idx)(*a32, **kw)
    a64 = tuple(a.astype(np.float64) if a.dtype == np.float32 else a for a in a32)
    v64, g64 = value_and_grad(fn, argnums=idx)(*a64, **kw)
    assert v32.dtype == np.float32 and all(g.dtype == np.float32 for g in g32)
    if name == "ntxent":   # optax clips the squared norms at the dtype's eps: same here
        np.testing.assert_allclose(v32, v64, rtol=1e-6)
    np.testing.assert_allclose(v32, v64, rtol=1e-6)
    for a, b in zip(g32, g64):
        np.testing.assert_allclose(a, b, atol=1e-6 * max(1.0, np.abs(b).max()))


def test_parallel_kernel_matches_serial():
    rng = np.random.default_rng(11)
    n, d = 40, 12                         # N·N·D above the parallel threshold
    lab = rng.integers(0, 5, n)
    x = rng.normal(size=(n, d))
    for name in ("triplet_semihard", "lifted_struct", "ntxent"):
        fn = getattr(fastloss, name)
        args = (x, lab) if name == "ntxent" else (lab, x)
        i = 0 if name == "ntxent" else 1
        v1, g1 = value_and_grad(fn, argnums=i)(*args)
        v2, g2 = value_and_grad(fn, argnums=i)(*args, n_threads=1)
        # (the serial twin is compiled apart: vectorized sums may round differently)
        np.testing.assert_allclose(v1, v2, rtol=1e-14)
        np.testing.assert_allclose(g1, g2, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(v1, call_ref(name, args), rtol=1e-11)


# --- PyTorch autograd on a transcription of the TF / optax code ------------------------------

def _torch_refs():
    torch = pytest.importorskip("torch")

    def pdist(f, squared):
        sq = (f * f).sum(1, keepdim=True) + (f * f).sum(1)[None, :] - 2 * f @ f.T
        sq = torch.clamp(sq, min=0.0)
        err = sq <= 0
        d = sq if squared else torch.sqrt(sq + err.to(f.dtype) * 1e-16)
        d = d * (~err).to(f.dtype)
        return d * (1 - torch.eye(f.shape[0], dtype=f.dtype))

    def contrastive(lab, a, p, margin):
        d = torch.sqrt(((a - p) ** 2).sum(1))
        y = lab.to(a.dtype)
        return (y * d ** 2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2).mean()

    def npairs(lab, a, p, reg_lambda):
        l2 = 0.25 * reg_lambda * ((a ** 2).sum(1).mean() + (p ** 2).sum(1).mean())
        sim = a @ p.T
        t = (lab[:, None] == lab[None, :]).to(a.dtype)
        t = t / t.sum(1, keepdim=True)
        return l2 + (-(t * torch.log_softmax(sim, 1)).sum(1)).mean()

    def ntxent(x, lab, temperature):
        eps = torch.finfo(x.dtype).eps
        u = x / torch.sqrt(torch.clamp((x * x).sum(1, keepdim=True), min=eps))
        xcs = (u @ u.T) / temperature
        matches = lab[:, None] == lab[None, :]
        diffs = ~matches
        matches = matches & ~torch.eye(len(lab), dtype=torch.bool)
        ninf = torch.tensor(-np.inf, dtype=x.dtype)
        xd = torch.where(diffs, xcs, ninf)
        xm = torch.where(matches, xcs, ninf)
        mx = torch.cat([xd, xm], 1).max(1, keepdim=True).values.detach()
        xd, xm = xd - mx, xm - mx
        denom = torch.exp(xd).sum(1, keepdim=True) + torch.exp(xm)
        ls = xm - torch.log(denom)
        return -torch.where(matches, ls, torch.zeros_like(ls)).sum() / matches.sum()

    def masked_max(d, m):
        mn = d.min(1, keepdim=True).values
        return ((d - mn) * m).max(1, keepdim=True).values + mn

    def masked_min(d, m):
        mx = d.max(1, keepdim=True).values
        return ((d - mx) * m).min(1, keepdim=True).values + mx

    def triplet(lab, x, margin):
        B = len(lab)
        pd = pdist(x, True)
        adj = lab[:, None] == lab[None, :]
        adj_not = ~adj
        pdt = pd.repeat(B, 1)
        mask = adj_not.repeat(B, 1) & (pdt > pd.T.reshape(-1, 1))
        mask_final = (mask.to(x.dtype).sum(1, keepdim=True) > 0).reshape(B, B).T
        mask = mask.to(x.dtype)
        outside = masked_min(pdt, mask).reshape(B, B).T
        inside = masked_max(pd, adj_not.to(x.dtype)).repeat(1, B)
        semi = torch.where(mask_final, outside, inside)
        loss_mat = margin + pd - semi
        mpos = adj.to(x.dtype) - torch.eye(B, dtype=x.dtype)
        return torch.clamp(loss_mat * mpos, min=0).sum() / mpos.sum()

    def lifted(lab, x, margin):
        B = len(lab)
        pd = pdist(x, False)
        adj = lab[:, None] == lab[None, :]
        diff = margin - pd
        mask = (~adj).to(x.dtype)
        rmin = diff.min(1, keepdim=True).values
        rneg = ((diff - rmin) * mask).max(1, keepdim=True).values + rmin
        me = torch.maximum(rneg, rneg.T)
        dt_, mt = diff.repeat(B, 1), mask.repeat(B, 1)
        mev = me.T.reshape(-1, 1)
        left = (torch.exp(dt_ - mev) * mt).sum(1, keepdim=True).reshape(B, B)
        lm = me + torch.log(left + left.T) + pd
        mpos = adj.to(x.dtype) - torch.eye(B, dtype=x.dtype)
        return 0.25 * (torch.clamp(lm * mpos, min=0) ** 2).sum() / (mpos.sum() / 2)

    return torch, {"contrastive": contrastive, "npairs": npairs, "ntxent": ntxent,
                   "triplet_semihard": triplet, "lifted_struct": lifted}


@pytest.mark.parametrize("name", NAMES)
def test_gradient_equals_torch_autograd_of_the_peer_formula(name):
    torch, refs = _torch_refs()
    args, kw = case(name, seed=7)
    idx = diff_idx(name)
    v, gs = value_and_grad(getattr(fastloss, name), argnums=idx)(*args, **kw)
    ts = [torch.tensor(a, dtype=torch.float64 if a.dtype.kind == "f" and a.ndim == 2
                       else torch.int64, requires_grad=(i in idx)) for i, a in enumerate(args)]
    if name == "contrastive":
        ts[0] = torch.tensor(args[0])
    out = refs[name](*ts, *kw.values()) if kw else refs[name](*ts, 1.0)
    out.backward()
    np.testing.assert_allclose(v, out.item(), rtol=1e-10)
    for i, g in zip(idx, gs):
        np.testing.assert_allclose(g, ts[i].grad.numpy(), atol=1e-9)


# --- semantics and edges ---------------------------------------------------------------------

def test_contrastive_none_out_and_grad_out():
    (lab, a, p), _ = case("contrastive")
    ref = ref_contrastive(lab, a, p, reduction="none")
    out = np.empty(len(lab))
    r = fastloss.contrastive(lab, a, p, reduction="none", out=out)
    assert r is out
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    ga, gp = np.empty_like(a), np.empty_like(p)
    v, (g1, g2) = value_and_grad(fastloss.contrastive, argnums=(1, 2))(
        lab, a, p, reduction="sum", grad_out=(ga, gp))
    assert g1 is ga and g2 is gp
    np.testing.assert_allclose(ga, -gp, rtol=0, atol=0)
    np.testing.assert_allclose(v, ref.sum(), rtol=1e-12)
    # soft labels weight the two terms, as TF's float cast
    soft = np.full(len(lab), 0.25)
    np.testing.assert_allclose(fastloss.contrastive(soft, a, p),
                               ref_contrastive(soft, a, p), rtol=1e-12)


def test_no_positive_pairs_gives_nan_mean_and_zero_sum():
    x = np.random.default_rng(0).normal(size=(4, 2))
    lab = np.arange(4)
    for name in ("ntxent", "triplet_semihard", "lifted_struct"):
        fn = getattr(fastloss, name)
        args = (x, lab) if name == "ntxent" else (lab, x)
        i = 0 if name == "ntxent" else 1
        v, g = value_and_grad(fn, argnums=i)(*args)
        assert np.isnan(v) and np.isnan(g).all()
        v, g = value_and_grad(fn, argnums=i)(*args, reduction="sum")
        assert v == 0 and not g.any()


def test_no_negatives():
    x = np.random.default_rng(1).normal(size=(3, 2))
    lab = np.zeros(3, int)
    # triplet: D_an = 0, loss = margin + D_ap; lifted: every pair contributes 0; ntxent: 0
    np.testing.assert_allclose(fastloss.triplet_semihard(lab, x), ref_triplet(lab, x))
    assert fastloss.lifted_struct(lab, x) == 0
    assert fastloss.ntxent(x, lab) == 0
    g = fastloss.grad(fastloss.triplet_semihard, argnums=1)(lab, x)
    np.testing.assert_allclose(g, fd_grad(lambda *a: ref_triplet(*a), (lab, x), 1), atol=1e-6)


def test_nan_in_nan_out():
    for name in NAMES:
        args, kw = case(name)
        args = list(args)
        i = diff_idx(name)[0]
        args[i] = args[i].copy()
        args[i][2, 1] = np.nan
        v, g = value_and_grad(getattr(fastloss, name), argnums=i)(*args, **kw)
        assert np.isnan(v), name
        assert np.isnan(g[2]).any(), name


def test_mining_rules_on_a_line():
    # anchor 0 at 0, positive at 1 (D = 1); negatives at 0.5 (D = .25) and 2 (D = 4)
    x = np.array([[0.0], [1.0], [0.5], [2.0]])
    lab = np.array([0, 0, 1, 1])
    # (0,1): semi-hard negative 3 (4 > 1) → max(1 + 1 − 4, 0) = 0
    # (1,0): D = 1, negatives of 1: D = .25 and 1 — none > 1, the largest: 1 → 1 + 1 − 1 = 1
    # (2,3): D = 2.25, negatives 0 (.25), 1 (.25): fallback .25 → 1 + 2.25 − .25 = 3
    # (3,2): D = 2.25, negatives 0 (4), 1 (1): semi-hard 4 → max(1 + 2.25 − 4, 0) = 0
    assert fastloss.triplet_semihard(lab, x, reduction="sum") == 4.0
    assert ref_triplet(lab, x, reduction="sum") == 4.0


def test_mining_fallback_and_no_negative_rows_match_the_tf_transcription():
    torch, refs = _torch_refs()
    cases = [(np.array([[0.0], [1.0], [0.5], [2.0]]), np.array([0, 0, 1, 1])),
             (np.array([[0.0, 0.1], [1.0, 0.3], [0.4, -0.2], [2.0, 1.0], [0.2, 0.9]]),
              np.array([0, 0, 1, 1, 1]))]
    for x, lab in cases:
        for name in ("triplet_semihard", "lifted_struct"):
            v, g = value_and_grad(getattr(fastloss, name), argnums=1)(lab, x)
            xt = torch.tensor(x, requires_grad=True)
            out = refs[name](torch.tensor(lab), xt, 1.0)
            out.backward()
            np.testing.assert_allclose(v, out.item(), rtol=1e-12)
            np.testing.assert_allclose(g, xt.grad.numpy(), atol=1e-12)


def test_registry_and_signatures():
    for name in NAMES:
        info = fastloss.LOSSES[name]
        assert info.kind == "metric" and getattr(fastloss, name) is info.func
        assert name in fastloss.__all__ and not info.has_hessian
        assert "Returns\n-------" in info.func.__doc__
    assert fastloss.LOSSES["contrastive"].inputs == ("labels", "embeddings_anchor",
                                                     "embeddings_positive")
    assert fastloss.LOSSES["ntxent"].inputs == ("embeddings", "labels")
    assert fastloss.LOSSES["triplet_semihard"].differentiable == ("embeddings",)


# --- validation -----------------------------------------------------------------------------

def _raises(exc, fn, *args, names=(), **kw):
    with pytest.raises(exc) as ei:
        fn(*args, **kw)
    msg = str(ei.value)
    for n in names:
        assert n in msg, msg


def test_validation_errors_name_function_and_argument():
    x = np.zeros((4, 2))
    lab = np.array([0, 0, 1, 1])
    T = fastloss.triplet_semihard
    _raises(ValueError, T, lab[:3], x, names=("triplet_semihard", "labels"))
    _raises(TypeError, T, lab.astype(float), x, names=("triplet_semihard", "labels"))
    _raises(ValueError, T, lab, x[0], names=("triplet_semihard", "embeddings"))
    _raises(TypeError, T, lab, np.array([["a", "b"]] * 4), names=("embeddings",))
    _raises(ValueError, T, lab, x, reduction="none", names=("triplet_semihard", "reduction"))
    _raises(ValueError, T, lab, x, margin=np.inf, names=("margin",))
    _raises(TypeError, T, lab, x, margin="1", names=("margin",))
    _raises(ValueError, T, lab, x, sample_weight=-np.ones(4), names=("sample_weight",))
    _raises(ValueError, T, lab, x, sample_weight=np.ones(3), names=("sample_weight",))
    _raises(ValueError, fastloss.ntxent, x, lab, temperature=0.0, names=("ntxent", "temperature"))
    _raises(ValueError, fastloss.npairs, lab, x, x, reg_lambda=-1.0, names=("reg_lambda",))
    _raises(ValueError, fastloss.npairs, lab, x, x[:, :1], names=("embeddings_positive",))
    _raises(ValueError, fastloss.contrastive, np.array([0, 2, 1, 0]), x, x, names=("labels",))
    _raises(ValueError, fastloss.contrastive, lab, x, x, reduction="none", out=np.empty(3),
            names=("out",))
    _raises(ValueError, fastloss.grad(fastloss.contrastive, argnums=1), lab, x, x,
            grad_out=(np.empty((4, 2)), np.empty((4, 2))), names=("grad_out",))
    with pytest.raises(ValueError, match="differentiable"):
        fastloss.grad(T, argnums=0)(lab, x)            # argnums=0 is the labels
    np.testing.assert_array_equal(fastloss.grad(T)(lab, x),           # default: embeddings
                                  fastloss.grad(T, argnums=1)(lab, x))
    with pytest.raises(ValueError, match="Hessian"):
        fastloss.grad_and_hessian(T)
