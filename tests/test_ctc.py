"""CTC loss: values against brute-force alignment enumeration, gradients against finite
differences and PyTorch, layouts, label formats, impossible alignments, reductions,
weights, validation errors, and greedy decoding.

Few kernel variants are compiled (float64 and float32, one kernel each), sizes are tiny.
"""
import itertools
import warnings

import numpy as np
import pytest

import fastloss
from fastloss import ctc_greedy_decode, ctc_loss, value_and_grad

warnings.filterwarnings("ignore", category=Warning, module="numba")

vg = value_and_grad(ctc_loss)


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def collapse(path, blank):
    out, prev = [], None
    for k in path:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


def forward_nll(lp, label, blank=0):
    """−log p(label) by the textbook log-space α recursion in float64 NumPy (lp: (T, C))."""
    from scipy.special import logsumexp

    ext = np.full(2 * len(label) + 1, blank)
    ext[1::2] = label
    S = len(ext)
    skip = np.zeros(S, bool)
    skip[3::2] = np.asarray(label[1:]) != np.asarray(label[:-1])
    a = np.full(S, -np.inf)
    a[:2] = lp[0, ext[:2]]
    for t in range(1, lp.shape[0]):
        pad = np.r_[-np.inf, -np.inf, a]
        prev = np.stack([a, pad[1:-1], np.where(skip, pad[:-2], -np.inf)])
        a = logsumexp(prev, axis=0) + lp[t, ext]
    return -np.logaddexp(a[-1], a[-2]) if S > 1 else -a[-1]


def brute_nll(lp, label, blank=0):
    """−log Σ over all T-frame paths collapsing to ``label`` (lp: (T, C) log-probs)."""
    T, C = lp.shape
    tot = -np.inf
    for path in itertools.product(range(C), repeat=T):
        if collapse(path, blank) == list(label):
            tot = np.logaddexp(tot, sum(lp[t, k] for t, k in enumerate(path)))
    return -tot


def make(rng, N, T, C, L, blank=0, dtype=np.float64, full=False):
    x = rng.normal(size=(N, T, C)).astype(dtype)
    classes = [k for k in range(C) if k != blank]
    labels = rng.choice(classes, size=(N, L))
    ll = np.full(N, L) if full else rng.integers(0, L + 1, size=N)
    il = np.full(N, T) if full else rng.integers(max(1, (2 * L + 1) // 2), T + 1, size=N)
    return x, labels, il, ll


# --- values -------------------------------------------------------------------------------

CASES = [
    # (T, C, label, blank)
    (5, 4, [1, 2], 0),
    (5, 4, [1, 1], 0),          # repeat needs a blank between
    (4, 3, [2, 2], 0),
    (6, 4, [1, 2, 1], 0),
    (6, 3, [1, 1, 2], 0),
    (5, 4, [], 0),              # empty label
    (1, 3, [2], 0),             # single frame
    (1, 3, [], 0),
    (4, 4, [0, 2], 3),          # non-zero blank
    (3, 3, [1, 1], 0),          # exactly feasible (1, b, 1)
]


@pytest.mark.parametrize("T,C,label,blank", CASES)
def test_value_vs_brute_force(T, C, label, blank):
    rng = np.random.default_rng(T * 100 + C + len(label))
    x = rng.normal(size=(1, T, C))
    labels = np.array([label + [0] * (3 - len(label))]) if label else np.zeros((1, 1), int)
    v = ctc_loss(x, labels, [T], [len(label)], blank=blank, reduction="none")
    ref = brute_nll(log_softmax(x[0]), label, blank)
    np.testing.assert_allclose(v[0], ref, rtol=1e-10, atol=1e-10)
    if label:  # the NumPy recursion used as the reference for long sequences
        np.testing.assert_allclose(forward_nll(log_softmax(x[0]), label, blank), ref, rtol=1e-10)


def test_batch_vs_brute_force_ignores_frames_past_length():
    rng = np.random.default_rng(1)
    N, T, C = 4, 6, 4
    x = rng.normal(size=(N, T, C))
    labels = np.array([[1, 2, 3], [2, 2, 0], [3, 0, 0], [0, 0, 0]])
    ll = np.array([3, 2, 1, 0])
    il = np.array([6, 4, 2, 3])
    x2 = x.copy()
    for n in range(N):
        x2[n, il[n]:] = np.nan  # ignored
    v = ctc_loss(x2, labels, il, ll, reduction="none")
    ref = [brute_nll(log_softmax(x[n, :il[n]]), labels[n, :ll[n]]) for n in range(N)]
    np.testing.assert_allclose(v, ref, rtol=1e-10)
    _, g = vg(x2, labels, il, ll, reduction="sum")
    for n in range(N):
        assert np.all(g[n, il[n]:] == 0)
        assert np.all(np.isfinite(g[n, :il[n]]))


def test_log_probs_input():
    rng = np.random.default_rng(2)
    x, labels, il, ll = make(rng, 3, 6, 4, 2)
    lp = log_softmax(x)
    a = ctc_loss(x, labels, il, ll, reduction="none")
    b = ctc_loss(lp, labels, il, ll, reduction="none", log_probs=True)
    np.testing.assert_allclose(a, b, rtol=1e-12)


# --- gradients ----------------------------------------------------------------------------

@pytest.mark.parametrize("log_probs", [False, True])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_grad_vs_finite_differences(log_probs, reduction):
    rng = np.random.default_rng(3)
    x, labels, il, ll = make(rng, 3, 5, 4, 2)
    labels[0] = [2, 2]
    ll[0] = 2
    il[0] = 5
    ll[1] = 0
    if log_probs:
        x = log_softmax(x)  # any point works; the loss is then linear-exp in x
    kw = dict(reduction=reduction, log_probs=log_probs)
    v, g = vg(x, labels, il, ll, **kw)
    num = np.zeros_like(x)
    h = 1e-6
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num[idx] = (ctc_loss(xp, labels, il, ll, **kw) - ctc_loss(xm, labels, il, ll, **kw)) / (2 * h)
    np.testing.assert_allclose(g, num, atol=1e-7, rtol=1e-6)
    assert g.shape == x.shape and g.dtype == x.dtype


def test_logit_grad_is_softmax_minus_posterior():
    rng = np.random.default_rng(4)
    x, labels, il, ll = make(rng, 2, 6, 5, 2, full=True)
    _, g = vg(x, labels, il, ll, reduction="sum")
    _, glp = vg(log_softmax(x), labels, il, ll, reduction="sum", log_probs=True)
    sm = np.exp(log_softmax(x))
    np.testing.assert_allclose(g, sm + glp, atol=1e-12)
    np.testing.assert_allclose(glp.sum(-1), -1.0, atol=1e-12)  # posteriors sum to 1 per frame


# --- the two CPU paths: probability space (scaled) and its log-space fallback -------------

def _both_paths(args, kw):
    from fastloss import _ctc
    v1, g1 = vg(*args, **kw)
    n_log = _ctc.last_logspace
    _ctc.PROB_SPACE = False
    try:
        v2, g2 = vg(*args, **kw)
        assert _ctc.last_logspace == len(args[2])
    finally:
        _ctc.PROB_SPACE = True
    return (v1, g1), (v2, g2), n_log


@pytest.mark.parametrize("log_probs", [False, True])
def test_probability_path_equals_log_space_path(log_probs):
    # long enough that whole regions of the trellis flush to 0 (states that can no longer
    # reach the end, or not yet be reached): exact zeros, the probability path is kept
    rng = np.random.default_rng(11)
    N, T, C, L = 3, 300, 5, 40
    x = 2 * rng.normal(size=(N, T, C))
    if log_probs:
        x = log_softmax(x)
    labels = rng.integers(1, C, size=(N, L))
    labels[0, 5:9] = 3  # repeats need blanks between them
    il, ll = np.array([300, 120, 81]), np.array([40, 40, 40])
    (v1, g1), (v2, g2), n_log = _both_paths((x, labels, il, ll),
                                            dict(reduction="none", log_probs=log_probs))
    assert n_log == 0
    lp = x if log_probs else log_softmax(x)
    ref = [forward_nll(lp[n, :il[n]], labels[n, :ll[n]]) for n in range(N)]
    np.testing.assert_allclose(v1, ref, rtol=1e-12)
    np.testing.assert_allclose(v1, v2, rtol=1e-12)
    np.testing.assert_allclose(g1, g2, atol=1e-12)


def test_extreme_logits_take_log_space_path_and_stay_exact():
    # gaps of hundreds of nats between classes: e^-87 relative emissions flush in the
    # probability path, so those sequences are recomputed in log space
    from fastloss import _ctc
    rng = np.random.default_rng(12)
    for T, C, label in [(5, 3, [1, 2]), (6, 3, [2, 2])]:
        x = 300 * rng.normal(size=(1, T, C))
        v = ctc_loss(x, np.array([label]), [T], [len(label)], reduction="none")
        assert _ctc.last_logspace == 1
        ref = brute_nll(log_softmax(x[0]), label)
        np.testing.assert_allclose(v[0], ref, rtol=1e-10)
    # and the gradient equals the posterior computed by the log-space path alone
    x = 300 * rng.normal(size=(2, 8, 4))
    labels, il, ll = np.array([[1, 2, 3], [3, 3, 0]]), np.array([8, 8]), np.array([3, 2])
    _, g = vg(x, labels, il, ll, reduction="sum")
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g.sum(-1), 0.0, atol=1e-9)  # softmax − γ: rows sum to 0


def test_random_cases_both_paths_agree_with_the_numpy_recursion():
    # confident and flat logits, repeats, tight and loose lengths: whichever path each
    # sequence takes, values match the float64 NumPy recursion and gradients the log path
    from fastloss import _ctc
    rng = np.random.default_rng(15)
    paths = [0, 0]
    for _ in range(30):
        N, C, L = 3, int(rng.integers(3, 7)), int(rng.integers(1, 12))
        T = int(rng.integers(L, 3 * L + 60))
        x = float(rng.choice([1.0, 20.0, 80.0])) * rng.normal(size=(N, T, C))
        labels = rng.integers(1, C, size=(N, L))
        if rng.random() < 0.5:
            labels[:, ::2] = labels[:, :1]
        ll = rng.integers(0, L + 1, size=N)
        il = np.minimum(T, np.maximum(1, 2 * ll + rng.integers(-2, 20, size=N)))
        (v1, g1), (v2, g2), n_log = _both_paths((x, labels, il, ll), dict(reduction="none"))
        paths[0] += N - n_log
        paths[1] += n_log
        ref = [forward_nll(log_softmax(x[n, :il[n]]), labels[n, :ll[n]]) for n in range(N)]
        np.testing.assert_allclose(v1, ref, rtol=1e-10)
        np.testing.assert_allclose(v1, v2, rtol=1e-12)
        np.testing.assert_allclose(g1, g2, atol=1e-10)
    assert min(paths) > 10  # both paths were exercised


def test_concurrent_calls_from_threads_match_serial_calls():
    # each Python thread keeps its own kernel workspace
    import threading

    rng = np.random.default_rng(16)
    jobs = [make(rng, 3, int(T), 5, 3, full=True) for T in rng.integers(8, 40, size=8)]
    serial = [vg(*job, reduction="none") for job in jobs]
    results = [None] * len(jobs)

    def work(i):
        for _ in range(5):
            results[i] = vg(*jobs[i], reduction="none")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (v, g), (vs, gs) in zip(results, serial):
        np.testing.assert_array_equal(v, vs)
        np.testing.assert_array_equal(g, gs)


def test_grad_out_may_be_the_logits():
    # in place: the kernel stores exponentials in the gradient buffer while it still reads
    # the logits (also on the log-space path, taken here by two of the sequences)
    rng = np.random.default_rng(14)
    x = rng.normal(size=(4, 8, 5))
    x[2:] *= 300
    labels, il, ll = rng.integers(1, 5, size=(4, 3)), np.full(4, 8), np.full(4, 3)
    v, g = vg(x, labels, il, ll, reduction="none")
    from fastloss import _ctc
    assert _ctc.last_logspace == 2
    buf = x.copy()
    v2, g2 = vg(buf, labels, il, ll, reduction="none", grad_out=buf)
    assert g2 is buf
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(g2, g)


def test_probability_path_finite_differences_long_sequence():
    rng = np.random.default_rng(13)
    x, labels, il, ll = make(rng, 1, 40, 3, 8, full=True)
    kw = dict(reduction="sum")
    v, g = vg(x, labels, il, ll, **kw)
    from fastloss import _ctc
    assert _ctc.last_logspace == 0
    h = 1e-6
    for idx in [(0, 0, 0), (0, 7, 1), (0, 20, 2), (0, 39, 0), (0, 39, 1)]:
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        num = (ctc_loss(xp, labels, il, ll, **kw) - ctc_loss(xm, labels, il, ll, **kw)) / (2 * h)
        np.testing.assert_allclose(g[idx], num, atol=1e-7, rtol=1e-6)


# --- layouts, label formats ---------------------------------------------------------------

def test_tnc_equals_ntc_and_concatenated_equals_padded():
    rng = np.random.default_rng(5)
    x, labels, il, ll = make(rng, 4, 7, 5, 3)
    v1, g1 = vg(x, labels, il, ll, reduction="sum")
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))
    v2, g2 = vg(xt, labels, il, ll, reduction="sum", layout="TNC")
    np.testing.assert_allclose(v1, v2, rtol=1e-13)
    np.testing.assert_allclose(g1, g2.transpose(1, 0, 2), atol=1e-14)
    flat = np.concatenate([labels[n, :ll[n]] for n in range(4)])
    v3, g3 = vg(x, flat, il, ll, reduction="sum")
    np.testing.assert_allclose(v1, v3, rtol=1e-13)
    np.testing.assert_allclose(g1, g3, atol=1e-14)
    # padding values beyond the lengths are ignored
    lab2 = labels.copy()
    for n in range(4):
        lab2[n, ll[n]:] = 4
    np.testing.assert_allclose(ctc_loss(x, lab2, il, ll), ctc_loss(x, labels, il, ll))


# --- impossible alignments ---------------------------------------------------------------------

def test_impossible_alignment_inf_and_zero_grad():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3, 4, 4))
    labels = np.array([[1, 1, 1], [1, 2, 3], [1, 2, 0]])
    ll = np.array([3, 3, 2])     # [1,1,1] needs 5 frames; [1,2,3] needs 3
    il = np.array([4, 2, 4])     # both first two impossible
    v, g = vg(x, labels, il, ll, reduction="none")
    assert np.isposinf(v[0]) and np.isposinf(v[1]) and np.isfinite(v[2])
    assert np.all(g[:2] == 0) and np.all(np.isfinite(g))
    vz, gz = vg(x, labels, il, ll, reduction="none", zero_infinity=True)
    np.testing.assert_array_equal(vz[:2], 0.0)
    assert vz[2] == v[2]
    np.testing.assert_array_equal(gz, g)
    assert np.isposinf(ctc_loss(x, labels, il, ll, reduction="mean"))
    m = ctc_loss(x, labels, il, ll, reduction="mean", zero_infinity=True)
    np.testing.assert_allclose(m, v[2] / 2 / 3)
    # zero frames: empty label has probability 1, others impossible
    v0 = ctc_loss(x, labels, [0, 0, 0], [0, 1, 0], reduction="none")
    np.testing.assert_array_equal(v0, [0.0, np.inf, 0.0])


def test_long_sequence_float32_finite_and_close_to_float64():
    rng = np.random.default_rng(7)
    N, T, C, L = 2, 2000, 6, 60
    x = (3 * rng.normal(size=(N, T, C))).astype(np.float32)
    labels = rng.integers(1, C, size=(N, L))
    il, ll = np.full(N, T), np.full(N, L)
    v32, g32 = vg(x, labels, il, ll, reduction="none")
    v64, g64 = vg(x.astype(np.float64), labels, il, ll, reduction="none")
    assert np.all(np.isfinite(v32)) and np.all(np.isfinite(g32))
    assert v32.dtype == np.float32 and g32.dtype == np.float32
    np.testing.assert_allclose(v32, v64, rtol=1e-6)
    # both sequences take the log-space path (rows in float64, float32 transcendentals):
    # 2e-6 here (5e-4 with float32 rows); PyTorch's float32 CPU ctc_loss is off by ~9e-3
    np.testing.assert_allclose(g32, g64, atol=1e-5)


def test_nan_logits_give_nan_loss():
    rng = np.random.default_rng(8)
    x, labels, il, ll = make(rng, 2, 5, 4, 2, full=True)
    x[0, 2, 1] = np.nan
    v = ctc_loss(x, labels, il, ll, reduction="none")
    assert np.isnan(v[0]) and np.isfinite(v[1])
    assert np.isnan(ctc_loss(x, labels, il, ll))


# --- reductions and weights -----------------------------------------------------------------

def test_reductions_and_sample_weight():
    rng = np.random.default_rng(9)
    x, labels, il, ll = make(rng, 4, 6, 5, 3)
    ll[2] = 0
    per = ctc_loss(x, labels, il, ll, reduction="none")
    np.testing.assert_allclose(ctc_loss(x, labels, il, ll, reduction="sum"), per.sum())
    np.testing.assert_allclose(ctc_loss(x, labels, il, ll, reduction="mean"),
                               np.mean(per / np.maximum(ll, 1)))
    np.testing.assert_allclose(ctc_loss(x, labels, il, ll, reduction="mean_batch"), per.mean())
    w = np.array([0.5, 2.0, 0.0, 1.0])
    np.testing.assert_allclose(ctc_loss(x, labels, il, ll, reduction="none", sample_weight=w),
                               w * per)
    np.testing.assert_allclose(ctc_loss(x, labels, il, ll, reduction="sum", sample_weight=w),
                               np.sum(w * per))
    np.testing.assert_allclose(ctc_loss(x, labels, il, ll, reduction="mean", sample_weight=w),
                               np.sum(w * per / np.maximum(ll, 1)) / w.sum())
    np.testing.assert_allclose(
        ctc_loss(x, labels, il, ll, reduction="mean_batch", sample_weight=w),
        np.sum(w * per) / w.sum())
    # gradients follow the weights
    _, gs = vg(x, labels, il, ll, reduction="sum")
    _, gw = vg(x, labels, il, ll, reduction="mean_batch", sample_weight=w)
    per_seq = [vg(x[n:n + 1], labels[n:n + 1], il[n:n + 1], ll[n:n + 1], reduction="sum")[1]
               for n in range(4)]
    np.testing.assert_allclose(gs, np.concatenate(per_seq), atol=1e-14)
    np.testing.assert_allclose(gw, np.concatenate(per_seq) * (w / w.sum())[:, None, None],
                               atol=1e-14)


def test_grad_out_and_registry():
    rng = np.random.default_rng(10)
    x, labels, il, ll = make(rng, 2, 5, 4, 2)
    buf = np.empty_like(x)
    _, g = vg(x, labels, il, ll, grad_out=buf)
    assert g is buf
    info = fastloss.LOSSES["ctc_loss"]
    assert info.kind == "ctc" and info.differentiable == ("logits",) and not info.has_hessian
    assert "out" not in info.common
    with pytest.raises(ValueError):
        fastloss.grad_and_hessian(ctc_loss)
    with pytest.raises(ValueError, match="labels"):
        value_and_grad(ctc_loss, argnums=1)


# --- validation ----------------------------------------------------------------------------

def _args():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(2, 5, 4))
    return x, np.array([[1, 2], [3, 0]]), np.array([5, 4]), np.array([2, 1])


@pytest.mark.parametrize("change,exc,word", [
    (dict(labels=np.array([[1, 4], [3, 0]])), ValueError, "labels"),       # >= C
    (dict(labels=np.array([[1, -1], [3, 0]])), ValueError, "labels"),      # < 0
    (dict(labels=np.array([[1, 0], [3, 0]])), ValueError, "blank"),        # blank inside
    (dict(labels=np.array([[1.0, 2.0], [3.0, 0.0]])), TypeError, "labels"),
    (dict(labels=np.array([[[1]]])), ValueError, "labels"),
    (dict(labels=np.array([[1, 2]])), ValueError, "labels"),               # wrong N
    (dict(labels=np.array([1, 2, 3, 1])), ValueError, "labels"),           # sum != len
    (dict(label_lengths=np.array([3, 1])), ValueError, "label_lengths"),   # > S
    (dict(label_lengths=np.array([-1, 1])), ValueError, "label_lengths"),
    (dict(label_lengths=np.array([2])), ValueError, "label_lengths"),
    (dict(label_lengths=np.array([2.0, 1.0])), TypeError, "label_lengths"),
    (dict(input_lengths=np.array([6, 4])), ValueError, "input_lengths"),   # > T
    (dict(input_lengths=np.array([-1, 4])), ValueError, "input_lengths"),
    (dict(input_lengths=np.array([5, 4, 3])), ValueError, "input_lengths"),
    (dict(logits=np.zeros((2, 5))), ValueError, "logits"),
    (dict(logits=np.array([["a"]])), TypeError, "logits"),
    (dict(blank=4), ValueError, "blank"),
    (dict(blank=1.0), TypeError, "blank"),
    (dict(layout="NCT"), ValueError, "layout"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(zero_infinity=1), TypeError, "zero_infinity"),
    (dict(log_probs="yes"), TypeError, "log_probs"),
    (dict(sample_weight=np.ones(3)), ValueError, "sample_weight"),
    (dict(sample_weight=np.array([1.0, -1.0])), ValueError, "sample_weight"),
    (dict(device="tpu"), ValueError, "device"),
])
def test_validation_errors(change, exc, word):
    x, labels, il, ll = _args()
    kw = dict(logits=x, labels=labels, input_lengths=il, label_lengths=ll)
    kw.update(change)
    with pytest.raises(exc, match=word):
        ctc_loss(**kw)


def test_layout_tnc_checks_shapes():
    x, labels, il, ll = _args()
    with pytest.raises(ValueError, match="input_lengths"):
        ctc_loss(x, labels, il, ll, layout="TNC")  # N = 5 under TNC


# --- PyTorch --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_against_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    N, T, C, L = 4, 12, 6, 4
    x, labels, il, ll = make(rng, N, T, C, L, dtype=dtype)
    labels[0, :2] = [3, 3]
    for reduction in ("mean", "sum", "none"):
        v, g = vg(x, labels, il, ll, reduction=reduction)
        xt = torch.tensor(x.transpose(1, 0, 2), requires_grad=True)
        lt = torch.nn.functional.ctc_loss(torch.log_softmax(xt, -1), torch.tensor(labels),
                                          torch.tensor(il), torch.tensor(ll),
                                          reduction=reduction)
        lt.sum().backward()
        tol = 1e-10 if dtype == np.float64 else 2e-5
        np.testing.assert_allclose(v, lt.detach().numpy(), rtol=tol)
        np.testing.assert_allclose(g, xt.grad.numpy().transpose(1, 0, 2), atol=tol)


# --- greedy decoding -----------------------------------------------------------------------------

def _greedy_ref(x, il, blank):
    out = []
    for n in range(x.shape[0]):
        best = x[n, :il[n]].argmax(-1)
        out.append(collapse(best.tolist(), blank))
    return out


@pytest.mark.parametrize("layout", ["NTC", "TNC"])
def test_greedy_decode(layout):
    rng = np.random.default_rng(13)
    N, T, C = 5, 9, 4
    x = rng.normal(size=(N, T, C))
    x[0, :, 0] += 5        # all blanks
    x[1, :, 2] += 5        # one long run of 2
    il = np.array([9, 9, 5, 0, 7])
    ref = _greedy_ref(x, il, 1)
    xin = x.transpose(1, 0, 2) if layout == "TNC" else x
    labels, lengths = ctc_greedy_decode(xin, il, blank=1, layout=layout)
    assert labels.shape == (N, T) and lengths.shape == (N,)
    for n in range(N):
        assert lengths[n] == len(ref[n])
        assert labels[n, :lengths[n]].tolist() == ref[n]
        assert np.all(labels[n, lengths[n]:] == -1)
    with pytest.raises(ValueError, match="input_lengths"):
        ctc_greedy_decode(x, [10] * N)
    with pytest.raises(ValueError, match="blank"):
        ctc_greedy_decode(x, il, blank=4)


# --- on-disk cache ----------------------------------------------------------------------------

def test_kernel_cached_across_processes():
    import subprocess
    import sys

    x, labels, il, ll = _args()
    ctc_loss(x, labels, il, ll)  # compiled (or loaded) and saved by this process
    code = ("import warnings; warnings.simplefilter('ignore'); import numpy as np, fastloss; "
            "from fastloss._ctc import cpu_kernel_for; "
            "fastloss.ctc_loss(np.zeros((1, 2, 3)), [[1]], [2], [1]); "
            "from fastloss._cpu import serial; k = cpu_kernel_for(np.float64); "
            "ks = {id(q): q for q in (k, serial(k))}.values(); "  # tiny calls run the twin
            "print(sum(sum(q.stats.cache_hits.values()) for q in ks), "
            "sum(sum(q.stats.cache_misses.values()) for q in ks))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    hits, misses = map(int, out.stdout.split()[-2:])
    assert (hits, misses) == (1, 0), out.stderr[-2000:]
