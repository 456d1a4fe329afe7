"""CTC prefix beam search against brute force (every alignment enumerated, float64) and an
independent dict-based prefix search; CTC forward variables against a NumPy recursion."""
import itertools

import numpy as np
import pytest

import fastloss
from fastloss import ctc_beam_search_decode, ctc_greedy_decode, ctc_loss


def _log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def _brute(x, T, blank):
    """{label sequence: probability} over every alignment of the first T frames of x (T, C)."""
    p = np.exp(_log_softmax(x[:T].astype(np.float64)))
    C = p.shape[1]
    out = {}
    for path in itertools.product(range(C), repeat=T):
        pr = 1.0
        for t, k in enumerate(path):
            pr *= p[t, k]
        seq, prev = [], None
        for k in path:
            if k != blank and k != prev:
                seq.append(k)
            prev = k
        out[tuple(seq)] = out.get(tuple(seq), 0.0) + pr
    return out


def _prefix_search(x, T, blank, W):
    """Prefix beam search with dicts (Hannun et al.), log space, top-W by total score, ties
    by insertion order (beams first, then extensions in beam and label order)."""
    lp = _log_softmax(x[:T].astype(np.float64))
    C = lp.shape[1]
    beams = {(): (0.0, -np.inf)}
    for t in range(T):
        nxt = {}
        order = []

        def add(y, b, nb):
            if y not in nxt:
                nxt[y] = [-np.inf, -np.inf]
                order.append(y)
            nxt[y][0] = np.logaddexp(nxt[y][0], b)
            nxt[y][1] = np.logaddexp(nxt[y][1], nb)

        for y, (b, nb) in beams.items():
            add(y, np.logaddexp(b, nb) + lp[t, blank], nb + lp[t, y[-1]] if y else -np.inf)
        for y, (b, nb) in beams.items():
            for c in range(C):
                if c == blank:
                    continue
                e = (b if y and c == y[-1] else np.logaddexp(b, nb)) + lp[t, c]
                if e > -np.inf:
                    add(y + (c,), -np.inf, e)
        ranked = sorted(order, key=lambda y: -np.logaddexp(*nxt[y]))  # stable
        beams = {y: tuple(nxt[y]) for y in ranked[:W] if np.logaddexp(*nxt[y]) > -np.inf}
    return sorted(((y, np.logaddexp(*v)) for y, v in beams.items()), key=lambda z: -z[1])


def _paths(labels, lengths, n):
    return [tuple(labels[n, k, :lengths[n, k]]) for k in range(labels.shape[1])]


@pytest.mark.parametrize("layout", ["NTC", "TNC"])
def test_exact_with_a_wide_beam_against_brute_force(layout):
    rng = np.random.default_rng(0)
    N, T, C, K = 3, 4, 3, 5
    x = rng.normal(scale=1.5, size=(N, T, C))
    il = np.array([4, 3, 0])
    blank = 1
    xin = x.transpose(1, 0, 2).copy() if layout == "TNC" else x
    lab, lens, lp = ctc_beam_search_decode(xin, il, beam_width=64, top_paths=K, blank=blank,
                                           layout=layout)
    assert lab.shape == (N, K, T) and lens.shape == (N, K) and lp.shape == (N, K)
    for n in range(N):
        ref = sorted(_brute(x[n], il[n], blank).items(), key=lambda z: -z[1])
        got = _paths(lab, lens, n)
        for k in range(min(K, len(ref))):
            assert got[k] == ref[k][0]
            np.testing.assert_allclose(lp[n, k], np.log(ref[k][1]), rtol=1e-12)
        assert np.all(lab[n, k, lens[n, k]:] == -1)
    # T = 0: the empty sequence with probability 1, nothing else
    assert lens[2].tolist() == [0] * K and lp[2, 0] == 0.0 and np.all(np.isneginf(lp[2, 1:]))
    # the score of a path is -ctc_loss of its labels when the beam is exact
    n = 0
    for k in range(2):
        if lens[n, k]:
            loss = ctc_loss(x[n:n + 1], lab[n:n + 1, k], il[n:n + 1], lens[n:n + 1, k],
                            blank=blank, reduction="none")
            np.testing.assert_allclose(lp[n, k], -loss[0], rtol=1e-12)


@pytest.mark.parametrize("W", [1, 2, 3])
def test_narrow_beams_against_a_dict_prefix_search(W):
    rng = np.random.default_rng(1)
    N, T, C = 4, 5, 4
    x = rng.normal(scale=2.0, size=(N, T, C))
    il = np.array([5, 5, 2, 4])
    lab, lens, lp = ctc_beam_search_decode(x.astype(np.float32), il, beam_width=W,
                                           top_paths=W, blank=0)
    assert lp.dtype == np.float32
    for n in range(N):
        ref = _prefix_search(x[n].astype(np.float32), il[n], 0, W)
        got = _paths(lab, lens, n)
        for k, (y, s) in enumerate(ref):
            assert got[k] == y
            np.testing.assert_allclose(lp[n, k], s, rtol=1e-6)
        exact = _brute(x[n].astype(np.float32), il[n], 0)
        for k in range(len(ref)):  # a kept-alignments sum: never above the exact probability
            assert lp[n, k] <= np.log(exact[got[k]]) + 1e-6


def test_width_one_is_not_greedy_decoding():
    # prefix "a" after frame 0; frame 1: p(blank) = p(a) = 0.3, p(b) = 0.4.  Greedy: "ab"
    # (0.4); the single beam keeps "a", whose probability sums the blank and the repeat (0.6)
    x = np.log(np.array([[[1e-12, 1.0, 1e-12], [0.3, 0.3, 0.4]]]))
    g, gl = ctc_greedy_decode(x, np.array([2]))
    assert g[0, :gl[0]].tolist() == [1, 2]
    lab, lens, lp = ctc_beam_search_decode(x, np.array([2]), beam_width=1)
    assert lab[0, 0, :lens[0, 0]].tolist() == [1]
    np.testing.assert_allclose(np.exp(lp[0, 0]), 0.6, rtol=1e-9)
    # p(blank) = 0.6, p(a) = 0.4 twice: width 1 returns the empty sequence (the greedy path,
    # probability 0.36); the exact best is "a" (0.64), found with width 2
    x = np.log(np.array([[[0.6, 0.4], [0.6, 0.4]]]))
    lab1, lens1, lp1 = ctc_beam_search_decode(x, np.array([2]), beam_width=1)
    lab2, lens2, lp2 = ctc_beam_search_decode(x, np.array([2]), beam_width=2)
    assert lens1[0, 0] == 0 and lens2[0, 0] == 1 and lab2[0, 0, 0] == 1
    np.testing.assert_allclose(np.exp([lp1[0, 0], lp2[0, 0]]), [0.36, 0.64], rtol=1e-12)


def test_one_hot_frames_match_greedy_and_repeats_need_a_blank():
    # near-one-hot frames a a - a b b: every beam width decodes the greedy "a a b"
    seq = [1, 1, 0, 1, 2, 2]
    x = np.full((1, len(seq), 3), -30.0)
    x[0, np.arange(len(seq)), seq] = 0.0
    g, gl = ctc_greedy_decode(x, np.array([6]))
    for W in (1, 5):
        lab, lens, _ = ctc_beam_search_decode(x, np.array([6]), beam_width=W)
        assert lab[0, 0, :lens[0, 0]].tolist() == g[0, :gl[0]].tolist() == [1, 1, 2]


def test_nan_and_validation():
    x = np.zeros((2, 3, 3))
    x[1, 1, 2] = np.nan
    lab, lens, lp = ctc_beam_search_decode(x, np.array([3, 3]), beam_width=4, top_paths=2)
    assert np.isfinite(lp[0, 0]) and np.all(np.isnan(lp[1])) and np.all(lens[1] == 0)
    _, _, lp = ctc_beam_search_decode(x, np.array([3, 1]), beam_width=4)   # NaN frame ignored
    assert np.isfinite(lp[1, 0])
    with pytest.raises(ValueError, match="top_paths"):
        ctc_beam_search_decode(x, [3, 3], beam_width=2, top_paths=3)
    with pytest.raises(ValueError, match="beam_width"):
        ctc_beam_search_decode(x, [3, 3], beam_width=0)
    with pytest.raises(TypeError, match="beam_width"):
        ctc_beam_search_decode(x, [3, 3], beam_width=2.0)
    with pytest.raises(ValueError, match="input_lengths"):
        ctc_beam_search_decode(x, [4, 3])
    with pytest.raises(ValueError, match="blank"):
        ctc_beam_search_decode(x, [3, 3], blank=3)
    with pytest.raises(ValueError, match="layout"):
        ctc_beam_search_decode(x, [3, 3], layout="NCT")
    with pytest.raises(ValueError, match="logits"):
        ctc_beam_search_decode(x[0], [3])


# ------------------------------------------------------------------ forward variables
def _np_forward(x, lab, T, L, blank, log_probs=False):
    """α_t(s) over the extended labels in probability space, float64, plain loops."""
    p = np.exp(x[:T] if log_probs else _log_softmax(x[:T]))
    ext = [blank]
    for k in lab[:L]:
        ext += [k, blank]
    S = len(ext)
    a = np.zeros((T, S))
    for t in range(T):
        for s in range(S):
            if t == 0:
                v = 1.0 if s < 2 else 0.0
            else:
                v = a[t - 1, s] + (a[t - 1, s - 1] if s >= 1 else 0.0)
                if s >= 3 and s % 2 == 1 and ext[s] != ext[s - 2]:
                    v += a[t - 1, s - 2]
            a[t, s] = v * p[t, ext[s]]
    return a


@pytest.mark.parametrize("layout", ["NTC", "TNC"])
def test_forward_probs_against_numpy(layout):
    rng = np.random.default_rng(2)
    N, T, C = 4, 6, 4
    x = rng.normal(size=(N, T, C))
    labels = np.array([[1, 2, 2], [3, 0, 0], [1, 1, 0], [2, 3, 1]])
    il = np.array([6, 4, 0, 2])
    ll = np.array([3, 1, 2, 3])     # sequence 3: impossible (3 labels in 2 frames)
    xin = x.transpose(1, 0, 2).copy() if layout == "TNC" else x
    loss, ab, an = fastloss.ctc_loss_with_forward_probs(xin, labels, il, ll, blank=0,
                                                        layout=layout)
    assert ab.shape == (T, N, 4) and an.shape == (T, N, 3)
    np.testing.assert_array_equal(loss, ctc_loss(xin, labels, il, ll, layout=layout,
                                                 reduction="none"))
    with np.errstate(divide="ignore"):
        for n in range(N):
            L, Tn = ll[n], il[n]
            if Tn == 0:
                assert np.all(np.isneginf(ab[:, n])) and np.all(np.isneginf(an[:, n]))
                continue
            a = _np_forward(x[n], labels[n], Tn, L, 0)
            for t in range(T):
                tt = min(t, Tn - 1)          # frames past the length repeat the last row
                np.testing.assert_allclose(ab[t, n, :L + 1], np.log(a[tt, 0::2]), rtol=1e-12)
                np.testing.assert_allclose(an[t, n, :L], np.log(a[tt, 1::2]), rtol=1e-12)
                assert np.all(np.isneginf(ab[t, n, L + 1:])) and np.all(np.isneginf(an[t, n, L:]))
            fin = -np.logaddexp(ab[Tn - 1, n, L], an[Tn - 1, n, L - 1])
            np.testing.assert_allclose(fin, loss[n], rtol=1e-12)


def test_forward_probs_float32_log_probs_and_nan():
    rng = np.random.default_rng(3)
    x = _log_softmax(rng.normal(size=(2, 3, 3)))
    x[1, 2, 0] = np.nan
    lab = np.array([[1, 2], [2, 2]])
    loss, ab, an = fastloss.ctc_loss_with_forward_probs(
        x.astype(np.float32), lab, np.array([3, 3]), np.array([2, 1]), log_probs=True)
    assert ab.dtype == an.dtype == loss.dtype == np.float32
    a = _np_forward(x[0], lab[0], 3, 2, 0, log_probs=True)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(ab[:, 0], np.log(a[:, 0::2]), rtol=1e-6)
        np.testing.assert_allclose(an[:, 0], np.log(a[:, 1::2]), rtol=1e-6)
    assert not np.any(np.isnan(ab[:2, 1])) and np.all(np.isnan(ab[2, 1, :2]))
    assert np.isnan(loss[1])
    with pytest.raises(ValueError, match="ctc_loss_with_forward_probs: input_lengths"):
        fastloss.ctc_loss_with_forward_probs(x, lab, np.array([4, 3]), np.array([2, 1]))
