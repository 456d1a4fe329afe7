"""CTC prefix beam search: ``ctc_beam_search_decode`` (host-side, a Numba kernel).

The decoder of ``tf.nn.ctc_beam_search_decoder`` (prefix search, Graves 2008 / Hannun et
al. 2014): beams are label prefixes, each carrying two log-probabilities over the frames
seen so far, p_b (the alignments that end in blank) and p_nb (that end in the prefix's last
label).  Frame t with log-probabilities q = log_softmax(logits_t) (float64) turns every
beam (prefix y, last label l) into

* y itself: p_b' = logaddexp(p_b, p_nb) + q(blank),  p_nb' = p_nb + q(l)  (l repeated);
* y + c for each non-blank c: p_nb' = logaddexp(p_b, p_nb) + q(c), or p_b + q(c) when
  c = l (a repeated label needs a blank in between); p_b' = −inf;

extensions that equal a prefix already in the beam are merged into it (log-sum), and the
``beam_width`` candidates with the largest logaddexp(p_b', p_nb') are kept (ties: the earlier
candidate, stays before extensions).  The result's score is logaddexp(p_b, p_nb) after the
last frame: the log of the summed probability of the alignments of that label sequence the
search kept — TF's ``log_probability``.  With a beam wide enough to keep every prefix it is
exactly log p(labels | logits) = −``ctc_loss``; a narrower beam gives a lower bound of it,
and may return another sequence than the exact best one.

CPU only, parallel over the batch (as TF's and PyTorch's decoders, which run on the host);
device inputs are copied to the host.
"""
from __future__ import annotations

import math

import numpy as np

prange = range   # numba.prange, bound when the kernel is built (no numba at import)

__all__ = ["ctc_beam_search_decode"]

NEG_INF = -np.inf


def _lae(a, b):
    """log(e^a + e^b); −inf when both are −inf."""
    m = a if a > b else b
    if m == NEG_INF:
        return NEG_INF
    return m + math.log1p(math.exp(-abs(a - b)))


def _argsort(key, n, idx, tmp):
    """Stable ascending argsort of ``key[:n]`` into ``idx[:n]`` (bottom-up merge sort;
    plain loops compile in a fraction of ``np.argsort``'s time)."""
    for i in range(n):
        idx[i] = i
    width = 1
    while width < n:
        i = 0
        while i < n:
            mid = min(i + width, n)
            hi = min(i + 2 * width, n)
            a = i
            b = mid
            k = i
            while a < mid and b < hi:
                if key[idx[b]] < key[idx[a]]:
                    tmp[k] = idx[b]
                    b += 1
                else:
                    tmp[k] = idx[a]
                    a += 1
                k += 1
            while a < mid:
                tmp[k] = idx[a]
                a += 1
                k += 1
            while b < hi:
                tmp[k] = idx[b]
                b += 1
                k += 1
            i += 2 * width
        for z in range(n):
            idx[z] = tmp[z]
        width *= 2


def ctc_beam_kernel(x, in_len, blank, W, K, out_lab, out_len, out_lp):
    """Prefix beam search of every sequence of ``x`` (N, T, C) float64 logits.

    in_len: (N,) int64; W: beam width; K: paths returned; out_lab (N, K, T) int64 (written
    from the first label, padded with −1), out_len (N, K) int64, out_lp (N, K) float64
    (−inf for paths past the number of beams, NaN for a sequence with a non-finite
    log-softmax in its frames).
    """
    N = x.shape[0]
    T = x.shape[1]
    C = x.shape[2]
    TT = max(T, 1)
    for n in prange(N):
        Tn = in_len[n]
        pre = np.full((W, TT), -1, np.int64)     # the beams' prefixes
        npre = np.full((W, TT), -1, np.int64)
        ln = np.zeros(W, np.int64)
        nln = np.zeros(W, np.int64)
        last = np.full(W, -1, np.int64)
        nlast = np.full(W, -1, np.int64)
        pb = np.full(W, NEG_INF)
        pnb = np.full(W, NEG_INF)
        npb = np.full(W, NEG_INF)
        npnb = np.full(W, NEG_INF)
        sb = np.empty(W)                         # the beams' own continuations
        snb = np.empty(W)
        child = np.full((W, C), -1, np.int64)    # beam i + label c is beam child[i, c]
        nc_max = W * C
        ec = np.empty(nc_max)                    # extension candidates: score, beam, label
        ei = np.empty(nc_max, np.int64)
        el = np.empty(nc_max, np.int64)
        sc = np.empty(W + nc_max)
        order = np.empty(W + nc_max, np.int64)
        otmp = np.empty(W + nc_max, np.int64)
        lp = np.empty(C)
        nb = 1
        pb[0] = 0.0
        bad = False
        for t in range(Tn):
            row = x[n, t]
            m = row[0]
            for k in range(C):
                v = row[k]
                if v != v:
                    bad = True
                m = v if v > m else m
            acc = 0.0
            for k in range(C):
                acc += math.exp(row[k] - m)
            lse = m + math.log(acc)
            if bad or not (lse > NEG_INF and lse < np.inf):
                bad = True
                break
            for k in range(C):
                lp[k] = row[k] - lse
            # children among the beams (prefix j = prefix i + last label of j)
            for i in range(nb):
                for c in range(C):
                    child[i, c] = -1
            for j in range(nb):
                if ln[j] == 0:
                    continue
                for i in range(nb):
                    if ln[i] != ln[j] - 1:
                        continue
                    same = True
                    for q in range(ln[i] - 1, -1, -1):   # prefixes differ near their end
                        if pre[i, q] != pre[j, q]:
                            same = False
                            break
                    if same:
                        child[i, last[j]] = j
                        break
            for i in range(nb):
                tot = _lae(pb[i], pnb[i])
                sb[i] = tot + lp[blank]
                snb[i] = pnb[i] + lp[last[i]] if ln[i] > 0 else NEG_INF
            ne = 0
            for i in range(nb):
                tot = _lae(pb[i], pnb[i])
                for c in range(C):
                    if c == blank:
                        continue
                    e = (pb[i] if c == last[i] else tot) + lp[c]
                    if e == NEG_INF:
                        continue
                    j = child[i, c]
                    if j >= 0:
                        snb[j] = _lae(snb[j], e)
                    else:
                        ec[ne] = e
                        ei[ne] = i
                        el[ne] = c
                        ne += 1
            ncand = nb + ne
            for i in range(nb):
                sc[i] = -_lae(sb[i], snb[i])
            for q in range(ne):
                sc[nb + q] = -ec[q]
            _argsort(sc, ncand, order, otmp)
            kept = 0
            for r in range(ncand):
                if kept == W:
                    break
                q = order[r]
                if -sc[q] == NEG_INF:
                    break
                if q < nb:
                    L = ln[q]
                    for z in range(L):
                        npre[kept, z] = pre[q, z]
                    nln[kept] = L
                    nlast[kept] = last[q]
                    npb[kept] = sb[q]
                    npnb[kept] = snb[q]
                else:
                    i = ei[q - nb]
                    L = ln[i]
                    for z in range(L):
                        npre[kept, z] = pre[i, z]
                    npre[kept, L] = el[q - nb]
                    nln[kept] = L + 1
                    nlast[kept] = el[q - nb]
                    npb[kept] = NEG_INF
                    npnb[kept] = ec[q - nb]
                kept += 1
            nb = kept
            pre, npre = npre, pre
            ln, nln = nln, ln
            last, nlast = nlast, last
            pb, npb = npb, pb
            pnb, npnb = npnb, pnb
        for k in range(K):
            out_len[n, k] = 0
            out_lp[n, k] = np.nan if bad else NEG_INF
        if bad:
            continue
        for i in range(nb):
            sc[i] = -_lae(pb[i], pnb[i])
        _argsort(sc, nb, order, otmp)
        for k in range(min(K, nb)):
            i = order[k]
            out_lp[n, k] = -sc[i]
            out_len[n, k] = ln[i]
            for z in range(ln[i]):
                out_lab[n, k, z] = pre[i, z]
    return 0


def _kernel():
    from numba import njit

    from ._compile import cached, cpu_kernel

    lae = cached(("ctc-beam-lae",), lambda: njit(error_model="numpy")(_lae))
    srt = cached(("ctc-beam-argsort",), lambda: njit(error_model="numpy")(_argsort))
    from ._ctc import DEBUG      # FASTLOSS_DEBUG_KERNELS=1: serial, bounds-checked

    from numba import prange as nb_prange

    return cpu_kernel(ctc_beam_kernel, "ctcbeam",
                      {"_lae": lae, "_argsort": srt, "prange": nb_prange},
                      parallel=not DEBUG, boundscheck=True if DEBUG else None)


def _pos_int(v, name, fn):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an integer, got {v!r}")
    if v < 1:
        raise ValueError(f"{fn}: {name} must be >= 1, got {v}")
    return int(v)


def ctc_beam_search_decode(logits, input_lengths, *, beam_width=100, top_paths=1, blank=0,
                           layout="NTC", n_threads=None):
    """CTC prefix beam search (``tf.nn.ctc_beam_search_decoder``): the ``top_paths`` most
    probable label sequences of each sequence and their log-probabilities.

    Frames are normalized by a log-softmax (float64); prefixes are extended and merged as
    in TF's prefix search (a repeated label needs a blank between its two copies; labels
    emitted in consecutive frames merge), keeping the ``beam_width`` best prefixes after
    every frame.  Frames past ``input_lengths`` are ignored.

    ``log_probs[n, k]`` follows TF's convention: the log of the probability of path k
    summed over the alignments of it that the search kept, logaddexp(p_b, p_nb) of its beam.
    With a beam that keeps every prefix (for instance ``beam_width >= Σ_{i<=T} (C − 1)^i``)
    this is exactly log p(labels | logits) = −``ctc_loss(..., reduction="none")`` and the
    paths are the exact ``top_paths`` best; a narrower beam gives a lower bound of it and
    may miss the best sequence.  With ``beam_width=1`` it is not greedy (best-path)
    decoding: the single beam keeps the prefix of the largest *summed* probability
    (blank and repeat continuations together), which may differ from the per-frame argmax
    path of :func:`ctc_greedy_decode`.

    Same conventions as :func:`ctc_greedy_decode` (layout, lengths, blank).  CPU only
    (a Numba kernel, parallel over the batch; device inputs are copied to the host).

    Parameters
    ----------
    logits : array (N, T, C) for layout "NTC", (T, N, C) for "TNC"; float32 or float64
    input_lengths : int array (N,), each <= T
    beam_width : int >= 1, default 100
    top_paths : int, 1 <= top_paths <= beam_width, default 1
    blank : int, default 0
    layout : "NTC" | "TNC"

    Returns
    -------
    labels : ndarray of int64, shape (N, top_paths, T)
        The decoded label sequences, best first, padded with -1.
    lengths : ndarray of int64, shape (N, top_paths)
        Their lengths (0 for a path that does not exist: fewer distinct prefixes than
        ``top_paths``).
    log_probs : ndarray, shape (N, top_paths), logits' dtype
        Their log-probabilities (see above); ``-inf`` for a path that does not exist, NaN
        for every path of a sequence whose frames hold NaN or +inf.

    Examples
    --------
    Two frames with p(blank) = 0.6, p(a) = 0.4: the best path is blank, blank (greedy
    decoding gives the empty sequence, probability 0.36), but "a" has the three alignments
    aa, a-, -a and probability 0.64.

    >>> import numpy as np, fastloss
    >>> logits = np.log(np.array([[[0.6, 0.4], [0.6, 0.4]]]))
    >>> labels, lengths, logp = fastloss.ctc_beam_search_decode(
    ...     logits, np.array([2]), beam_width=4, top_paths=2)
    >>> labels[0, :, :1].tolist(), lengths.tolist(), np.exp(logp).round(4).tolist()
    ([[1], [-1]], [[1, 0]], [[0.64, 0.36]])
    """
    from . import _threads
    from ._ctc import decoder_inputs

    fn = "ctc_beam_search_decode"
    x, dt, blank, in_len = decoder_inputs(logits, input_lengths, blank, layout, fn)
    W = _pos_int(beam_width, "beam_width", fn)
    K = _pos_int(top_paths, "top_paths", fn)
    if K > W:
        raise ValueError(f"{fn}: top_paths must be <= beam_width = {W}, got {K}")
    nt = _threads.resolve(n_threads, fn)
    N, T, C = x.shape
    labels = np.full((N, K, T), -1, np.int64)
    lengths = np.zeros((N, K), np.int64)
    logp = np.full((N, K), -np.inf)
    if N:
        from ._cpu import launch, want_parallel

        x64 = np.ascontiguousarray(x, np.float64)
        launch(_kernel(), x64, in_len, blank, W, K, labels, lengths, logp,
               parallel=want_parallel("ctc", x64.size * W, nt), n_threads=nt)
    return labels, lengths, logp.astype(dt, copy=False)
