"""CTC at the edges of the dynamic range: every feasible alignment gives a finite loss.

A sequence whose paths through the final states lie hundreds or thousands of nats below the
best state of the last frame (a confident, wrong prediction) has a finite −log p; ``inf``
is reserved for impossible alignments, and ``zero_infinity`` zeroes only those.  Values are
checked against an unnormalized float64 log-space forward–backward written here (and brute
force over all alignments for tiny T), gradients against its posteriors and against central
finite differences, on both CPU paths (probability space with the log-space fallback, and
log space forced), the serial and the parallel kernel, and the bounds-checked debug build.
"""
import itertools
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from fastloss import _ctc, ctc_loss, value_and_grad

warnings.filterwarnings("ignore", category=Warning, module="numba")

vg = value_and_grad(ctc_loss)

F32_RTOL = 1e-6   # float32 loss against float64 of the same (float32) logits
F32_ATOL_G = 1e-5  # float32 gradient entries


# --- independent float64 references ---------------------------------------------------------

def log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _lse(*terms):
    a = np.stack(terms)
    m = a.max(0)
    mm = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return mm + np.log(np.exp(a - mm).sum(0))


def ref_forward_backward(lp, label, blank=0):
    """(−log p, log γ (T, S'), extended labels): textbook α/β, unnormalized, in float64 log
    space (no row scaling at all: nothing to underflow)."""
    lp = np.asarray(lp, np.float64)
    T = lp.shape[0]
    ext = np.full(2 * len(label) + 1, blank)
    ext[1::2] = label
    S = len(ext)
    skip = np.zeros(S + 2, bool)  # s-2 -> s allowed into label state s
    skip[3:S:2] = np.asarray(label[1:]) != np.asarray(label[:-1])
    E = lp[:, ext]
    a = np.full((T, S), -np.inf)
    b = np.full((T, S), -np.inf)
    a[0, :2] = E[0, :2]
    pad = np.full(2, -np.inf)
    for t in range(1, T):
        p = np.r_[pad, a[t - 1]]
        a[t] = _lse(p[2:], p[1:-1], np.where(skip[:S], p[:-2], -np.inf)) + E[t]
    b[T - 1, -2:] = E[T - 1, -2:]
    for t in range(T - 2, -1, -1):
        q = np.r_[b[t + 1], pad]
        b[t] = _lse(q[:-2], q[1:-1], np.where(skip[2:], q[2:], -np.inf)) + E[t]
    ll = _lse(a[T - 1, -1], a[T - 1, -2]) if S > 1 else a[T - 1, -1]
    with np.errstate(invalid="ignore"):  # γ = 0 where the emission is impossible
        return -ll, np.where(E > -np.inf, a + b - E - ll, -np.inf), ext


def ref_value_grad(x, label, blank=0, log_probs=False):
    """−log p and its gradient w.r.t. the logits (softmax − γ) or log-probs (−γ)."""
    lp = np.asarray(x, np.float64) if log_probs else log_softmax(x)
    nll, lg, ext = ref_forward_backward(lp, label, blank)
    g = np.zeros_like(lp) if log_probs else np.exp(lp)
    if np.isfinite(nll):
        gam = np.exp(lg)
        for s, k in enumerate(ext):
            g[:, k] -= gam[:, s]
    return nll, g


def brute_nll(lp, label, blank=0):
    """−log Σ over every T-frame path that collapses to ``label``."""
    T, C = lp.shape
    tot = -np.inf
    for path in itertools.product(range(C), repeat=T):
        out, prev = [], None
        for k in path:
            if k != prev and k != blank:
                out.append(k)
            prev = k
        if out == list(label):
            tot = np.logaddexp(tot, sum(lp[t, k] for t, k in enumerate(path)))
    return -tot


def batch_ref(x, labels, il, ll, log_probs=False):
    x = np.asarray(x, np.float64)
    vals, grads = [], np.zeros_like(x)
    for n in range(x.shape[0]):
        v, g = ref_value_grad(x[n, :il[n]], labels[n, :ll[n]], log_probs=log_probs)
        vals.append(v)
        grads[n, :il[n]] = g
    return np.array(vals), grads


def both_paths(args, **kw):
    """{True: probability path (log-space fallback), False: log space forced}:
    (values, gradient of the sum, sequences that took log space)."""
    out = {}
    try:
        for prob in (True, False):
            _ctc.PROB_SPACE = prob
            v, g = vg(*args, reduction="none", **kw)
            out[prob] = (v, g, _ctc.last_logspace)
    finally:
        _ctc.PROB_SPACE = True
    return out


# --- the two reproductions -----------------------------------------------------------------

def repro_confident_blank():
    # blank at 0, every label at −30: the 30 labels cost ~900 nats, the blank path nothing
    x = np.where(np.arange(6) == 0, 0.0, -30.0) * np.ones((1, 100, 6))
    return x, np.tile([1, 2], 15)[None], np.array([100]), np.array([30]), 841.358


def repro_gap_1000():
    x = np.full((1, 200, 5), -1e3)
    x[0, :, 0] = 0
    return x, np.array([[1, 2]]), np.array([200]), np.array([2]), 1990.10


@pytest.mark.parametrize("make", [repro_confident_blank, repro_gap_1000])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reproductions_finite_and_exact(make, dtype):
    x, labels, il, ll, approx = make()
    x = x.astype(dtype)
    rv, rg = batch_ref(x, labels, il, ll)
    assert abs(rv[0] - approx) < 1e-2
    for prob, (v, g, n_log) in both_paths((x, labels, il, ll)).items():
        assert n_log == 1  # the probability path declines these (flagged underflow)
        assert v.dtype == dtype and g.dtype == dtype
        if dtype == np.float64:
            np.testing.assert_allclose(v, rv, rtol=1e-12)
            np.testing.assert_allclose(g, rg, atol=1e-12)
        else:
            np.testing.assert_allclose(v, rv, rtol=F32_RTOL)
            np.testing.assert_allclose(g, rg, atol=F32_ATOL_G)
        # the gradient is not 0: each label is pulled up with a total weight of ~1 over
        # its frames (softmax ~e^-30 or less, γ summing to ~1 per label)
        np.testing.assert_allclose(-g[0, :, 1:].sum(), ll[0], rtol=1e-4)
        # feasible: zero_infinity leaves the value and the gradient alone
        vz, gz = vg(x, labels, il, ll, reduction="none", zero_infinity=True)
        np.testing.assert_array_equal(vz, v)
        np.testing.assert_array_equal(gz, g)


def test_reproductions_match_brute_force_when_short():
    # the same patterns shortened so that every alignment can be enumerated
    for gap, T, label in [(30.0, 6, [1, 2, 1]), (1e3, 5, [1, 2]), (1e4, 4, [2, 2])]:
        x = np.full((1, T, 3), -gap)
        x[0, :, 0] = 0.0
        ref = brute_nll(log_softmax(x[0]), label)
        assert ref > gap
        for prob, (v, g, _) in both_paths((x, np.array([label]), [T], [len(label)])).items():
            np.testing.assert_allclose(v[0], ref, rtol=1e-13)
            assert np.all(np.isfinite(g))


# --- a sweep of losses from ~50 to beyond 1e6 nats -------------------------------------------

SCALES = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 1e4, 3e4, 1e5]


def sweep_batch(rng, scale):
    """Five sequences with logits of scale ``scale``: random logits, repeated labels, a tight
    length, and a confident blank against every label (the reproductions' pattern)."""
    N, T, C = 5, 24, 5
    x = scale * rng.normal(size=(N, T, C))
    x[4] = np.where(np.arange(C) == 0, 0.0, -scale)
    labels = rng.integers(1, C, size=(N, 6))
    labels[1, 1:4] = labels[1, 0]
    ll = np.array([6, 6, 4, 6, 6])
    il = np.array([24, 20, 8, 24, 24])
    return x, labels, il, ll


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_sweep_to_1e6_nats_both_paths(dtype):
    rng = np.random.default_rng(5)
    seen = []
    for scale in SCALES:
        x, labels, il, ll = sweep_batch(rng, scale)
        x = x.astype(dtype)
        rv, rg = batch_ref(x, labels, il, ll)
        assert np.all(np.isfinite(rv))
        seen.extend(rv)
        res = both_paths((x, labels, il, ll))
        for prob, (v, g, n_log) in res.items():
            assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
            if dtype == np.float64:
                np.testing.assert_allclose(v, rv, rtol=1e-11)
                # γ = e^(log α + log β − …) cancels logs of the loss's size: round-off scales
                np.testing.assert_allclose(g, rg, atol=1e-14 * max(100.0, rv.max()))
            else:
                np.testing.assert_allclose(v, rv, rtol=F32_RTOL)
                np.testing.assert_allclose(g, rg, atol=F32_ATOL_G)
        if scale <= 3.0:
            assert res[True][2] == 0   # ordinary logits stay on the probability path
        if scale >= 300.0:
            assert res[True][2] == 5   # gaps above 87 nats: every sequence in log space
    assert min(seen) < 100 and max(seen) > 1e6


def test_probability_path_carries_long_high_loss_sequences():
    # moderate logits over many frames: losses of thousands of nats that the probability
    # path computes itself (nothing underflows relative to its frame), and agrees on
    rng = np.random.default_rng(8)
    N, T, C, L = 2, 400, 29, 60
    x = rng.normal(size=(N, T, C))
    labels = rng.integers(1, C, size=(N, L))
    il, ll = np.full(N, T), np.full(N, L)
    rv, rg = batch_ref(x, labels, il, ll)
    assert rv.min() > 1000
    res = both_paths((x, labels, il, ll))
    assert res[True][2] == 0 and res[False][2] == N
    for v, g, _ in res.values():
        np.testing.assert_allclose(v, rv, rtol=1e-11)
        np.testing.assert_allclose(g, rg, atol=1e-10)


# --- gradients by central finite differences ---------------------------------------------------

@pytest.mark.parametrize("case", ["ordinary", "scale300", "gap400", "log_probs_gap"])
def test_grad_finite_differences_including_high_loss(case):
    rng = np.random.default_rng(9)
    T, C = 5, 3
    labels, ll, il = np.array([[1, 2], [2, 2]]), np.array([2, 2]), np.array([5, 5])
    log_probs = False
    if case == "ordinary":
        x = rng.normal(size=(2, T, C))
    elif case == "scale300":
        x = 300 * rng.normal(size=(2, T, C))
    elif case == "gap400":
        x = np.full((2, T, C), -400.0) + rng.normal(size=(2, T, C))
        x[:, :, 0] = 0.0
    else:
        x = log_softmax(np.full((2, T, C), -400.0) + rng.normal(size=(2, T, C)) +
                        np.where(np.arange(C) == 0, 400.0, 0.0))
        log_probs = True
    kw = dict(reduction="sum", log_probs=log_probs)
    for n in range(2):
        lp = x[n] if log_probs else log_softmax(x[n])
        np.testing.assert_allclose(ctc_loss(x[n:n + 1], labels[n:n + 1], [T], [2],
                                            reduction="none", log_probs=log_probs),
                                   [brute_nll(lp, labels[n])], rtol=1e-12)
    v, g = vg(x, labels, il, ll, **kw)
    if case != "ordinary":
        assert v > 700 and g.min() < -0.5
    h = 1e-5
    num = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (ctc_loss(xp, labels, il, ll, **kw)
                    - ctc_loss(xm, labels, il, ll, **kw)) / (2 * h)
    np.testing.assert_allclose(g, num, atol=2e-6, rtol=1e-5)


# --- zero_infinity and truly impossible alignments ---------------------------------------------

@pytest.mark.parametrize("log_probs", [False, True])
def test_zero_infinity_zeroes_only_impossible_alignments(log_probs):
    rng = np.random.default_rng(10)
    N, T, C = 6, 7, 4
    x = rng.normal(size=(N, T, C))
    x[0] = -1e3
    x[0, :, 0] = 0.0                    # feasible, ~2000 nats
    x[2, :, 2] = -np.inf                # label 2 never emitted: impossible
    x[3, :, 2] = -np.inf
    x[3, 4, 2] = 0.0                    # label 2 only at frame 4: feasible
    x[5] = -30.0
    x[5, :, 0] = 0.0                    # feasible, ~60 nats (probability path)
    if log_probs:
        x = log_softmax(x)
    labels = np.array([[1, 2, 0], [1, 1, 1], [1, 2, 0], [1, 2, 0], [3, 0, 0], [1, 3, 0]])
    ll = np.array([2, 3, 2, 2, 1, 2])
    il = np.array([7, 4, 7, 7, 7, 7])   # [1, 1, 1] needs 5 frames: impossible
    rv, rg = batch_ref(x, labels, il, ll, log_probs=log_probs)
    impossible = np.array([False, True, True, False, False, False])
    assert np.array_equal(np.isposinf(rv), impossible)
    for zi in (False, True):
        for prob, (v, g, _) in both_paths((x, labels, il, ll), log_probs=log_probs,
                                           zero_infinity=zi).items():
            want = np.where(impossible, 0.0 if zi else np.inf, rv)
            np.testing.assert_allclose(v, want, rtol=1e-12)
            assert np.all(g[impossible] == 0)
            np.testing.assert_allclose(g[~impossible], rg[~impossible], atol=1e-12)
            # not 0 where feasible: the two labels of sequence 0 pull with weight 1 each,
            # sequence 3 must emit label 2 at frame 4
            np.testing.assert_allclose(-g[0, :, 1:].sum(), 2.0, rtol=1e-9)
            assert g[3, 4, 2] < -0.5
    m = ctc_loss(x, labels, il, ll, reduction="mean", zero_infinity=True, log_probs=log_probs)
    np.testing.assert_allclose(m, np.sum(np.where(impossible, 0.0, rv) / ll) / N, rtol=1e-12)


# --- the parallel kernel and the bounds-checked debug build ------------------------------------

def mixed_batch(rng):
    """Eight sequences of 100 frames (4 800 logits: above the serial threshold): ordinary
    ones and both reproduction patterns."""
    N, T, C = 8, 100, 6
    x = rng.normal(size=(N, T, C))
    labels = rng.integers(1, C, size=(N, 30))
    ll = np.full(N, 12)
    il = np.full(N, T)
    x[1] = np.where(np.arange(C) == 0, 0.0, -30.0)          # reproduction 1
    labels[1] = np.tile([1, 2], 15)
    ll[1] = 30
    x[2] = np.where(np.arange(C) == 0, 0.0, -1e3)           # reproduction 2
    x[3] = np.where(np.arange(C) == 0, 0.0, -1e5)           # ~1e6 nats
    ll[3] = 10
    return x, labels, il, ll


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parallel_kernel_mixed_batch(dtype):
    from fastloss import _cpu
    rng = np.random.default_rng(11)
    x, labels, il, ll = mixed_batch(rng)
    x = x.astype(dtype)
    assert x.size >= _cpu.PARALLEL_MIN["ctc"]
    rv, rg = batch_ref(x, labels, il, ll)
    assert rv[3] > 9e5
    res = both_paths((x, labels, il, ll))
    assert res[True][2] == 3 and res[False][2] == 8
    for v, g, _ in res.values():
        if dtype == np.float64:
            np.testing.assert_allclose(v, rv, rtol=1e-11)
            np.testing.assert_allclose(g, rg, atol=1e-9)
        else:
            np.testing.assert_allclose(v, rv, rtol=F32_RTOL)
            np.testing.assert_allclose(g, rg, atol=F32_ATOL_G)


_DEBUG_SCRIPT = r"""
import json, sys, warnings
warnings.simplefilter("ignore")
import numpy as np
from fastloss import _ctc, ctc_loss, value_and_grad
assert _ctc.DEBUG
sys.path.insert(0, sys.argv[1])
import test_ctc_edges as te
rng = np.random.default_rng(11)
out = {}
for name, args in [("r1", te.repro_confident_blank()[:4]), ("r2", te.repro_gap_1000()[:4]),
                   ("mixed", te.mixed_batch(rng))]:
    for prob in (True, False):
        _ctc.PROB_SPACE = prob
        v, g = value_and_grad(ctc_loss)(*args, reduction="none")
        out[f"{name}-{prob}"] = [v.tolist(), g.ravel().tolist(), _ctc.last_logspace]
print(json.dumps(out))
"""


def test_debug_build_bounds_checked_serial_kernel():
    # FASTLOSS_DEBUG_KERNELS=1: serial kernels with boundscheck=True (an out-of-bounds
    # access raises instead of being dropped inside a prange); float64 only
    env = dict(os.environ, FASTLOSS_DEBUG_KERNELS="1")
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run([sys.executable, "-c", _DEBUG_SCRIPT, here], capture_output=True,
                          text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rng = np.random.default_rng(11)
    for name, args in [("r1", repro_confident_blank()[:4]), ("r2", repro_gap_1000()[:4]),
                       ("mixed", mixed_batch(rng))]:
        rv, rg = batch_ref(*args)
        for prob in (True, False):
            v, g, n_log = out[f"{name}-{prob}"]
            np.testing.assert_allclose(v, rv, rtol=1e-11)
            np.testing.assert_allclose(np.reshape(g, rg.shape), rg, atol=1e-9)
            if not prob:
                assert n_log == len(rv)
