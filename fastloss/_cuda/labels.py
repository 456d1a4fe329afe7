"""Label, length and weight checks of device-resident inputs, on the device.

``rowlab_kernel`` (row-wise losses, grid-stride over the rows): per row, the integer class
label (``mode`` 0: kept when in [0, C), −1 when it equals ``ign``, −2 and counted as
invalid when out of range (a uint64 label above the int64 maximum included, never
wrapped): the row kernel makes such a row NaN with ``device_result=True``; the class
weight of a counted row times its sample weight, times the scalar ``wscale``, is summed:
the denominator of ``"mean"``), or the ±1 label (``mode`` 1: copied in the loss's dtype,
anything else counted: such a row too is NaN with ``device_result=True``), or only the sample
weights (``mode`` 2); negative sample weights are counted.  Per-block partials
``part[0:3, block]`` = (Σ weight, negative weights, invalid labels);
:data:`fastloss._cuda.reduce.finish_kernel` folds them into the 3-value device array
``wtot`` = (Σw, negative weights, invalid labels) that the loss kernel and the final
reduction read, so the one device-to-host copy of a call carries every count.

``cwcheck_kernel`` (one block): Σ of a device ``class_weight`` (the ``W`` of label
smoothing, which the row kernel then reads from device memory) and the count of negative
or non-finite class weights; the count joins the call's single device-to-host copy.

``ctcprep_kernel`` (CTC, one block, threads over the sequences; labels always 2-D: a 1-D
label array is passed as one row, with offsets from a serial prefix sum of the label
lengths): input lengths outside [0, T], label lengths < 0 (or above the padded width of
2-D labels), sequences with labels outside [0, C) or equal to the blank, negative
sequence weights and 1-D labels not holding Σ label_lengths are counted; an invalid
sequence gets input length 0 and label length −2 so that the CTC kernels never read out
of bounds and its log p is NaN (the counts make the call raise, or give NaN with
``device_result=True``).  It writes the extended labels and skip flags of the α/β
recursion, the per-sequence gradient scales and Σw (a fixed shared-memory tree), so labels
never visit the host.  A sequence with more labels than ``cap`` (= min(label capacity,
T)) is infeasible: its effective label length −1 makes the α/β kernel give log p = −∞.
"""
from __future__ import annotations

import math

from numba import cuda, float64, int64  # module globals: the simulator swaps `cuda` here

from . import runtime
from .reduce import tree_sum

TPB = runtime.TPB


def rowlab_template(L, mode, D, ign, has_ign, CW, has_cw, SW, has_sw, wscale, K, YL,
                    part):
    sh = cuda.shared.array((3, TPB), float64)
    t = cuda.threadIdx.x
    i = cuda.grid(1)
    stride = cuda.gridsize(1)
    s = 0.0
    neg = 0.0
    bad = 0.0
    while i < L.shape[0]:
        w = 1.0
        if has_sw:
            w = float64(SW[i])
            if w < 0:
                neg += 1.0
        if mode == 0:
            k = int64(L[i])
            wrapped = L[i] > 0 and k < 0   # uint64 above the int64 maximum: invalid
            if has_ign and k == ign and not wrapped:
                K[i] = -1
            elif k >= 0 and k < D and not wrapped:
                K[i] = k
                c = 1.0
                if has_cw:
                    c = float64(CW[k])
                s += c * w * wscale
            else:
                K[i] = -2   # invalid: the row is NaN with device results
                bad += 1.0
        elif mode == 1:
            y = float64(L[i])
            YL[i] = y
            if not (y == 1.0 or y == -1.0):
                bad += 1.0
            s += w * wscale
        else:
            s += w * wscale
        i += stride
    sh[0, t] = s
    sh[1, t] = neg
    sh[2, t] = bad
    tree_sum(sh, t)
    if t == 0:
        part[0, cuda.blockIdx.x] = sh[0, 0]
        part[1, cuda.blockIdx.x] = sh[1, 0]
        part[2, cuda.blockIdx.x] = sh[2, 0]


def _kernel(f):
    return cuda.jit(f) if runtime.SIM else cuda.jit(cache=True)(f)


rowlab_kernel = _kernel(rowlab_template)


def rowlab_args(L, mode, D, ign, CW, SW, wscale, K, YL, part):
    """The kernel's argument tuple (also what :mod:`fastloss._cuda.ptx` types)."""
    return (L, int(mode), int(D), int(0 if ign is None else ign), ign is not None,
            part[0] if CW is None else CW, CW is not None, part[0] if SW is None else SW,
            SW is not None, float(wscale), K, YL, part)


def row_labels(alloc, stream, N, L, mode, D, ign, CW, SW, wscale, dtype):
    """Device (K int64 or None, YL of ``dtype`` or None, wtot float64[3]) for N rows."""
    import numpy as np

    from .reduce import finish_kernel

    blocks = runtime.blocks_elementwise(N)
    part = alloc.view((3, blocks), np.float64)
    K = alloc.view(N, np.int64) if mode == 0 else alloc.view(1, np.int64)
    YL = alloc.view(N, dtype) if mode == 1 else alloc.view(1, dtype)
    src = L if mode != 2 else SW
    runtime.launch(rowlab_kernel, blocks, TPB, stream,
                   *rowlab_args(src, mode, D, ign, CW, SW, wscale, K, YL, part))
    wtot = alloc.view(3, np.float64)
    spare = alloc.view(1, np.float64)
    runtime.launch(finish_kernel, 1, TPB, stream, part, 1, 1.0, 0.0, wtot, False, False,
                   wtot, spare)
    return (K if mode == 0 else None), (YL if mode == 1 else None), wtot


def cwcheck_template(CW, out):
    sh = cuda.shared.array((2, TPB), float64)
    t = cuda.threadIdx.x
    s = 0.0
    bad = 0.0
    j = t
    while j < CW.shape[0]:
        c = float64(CW[j])
        if c >= 0 and c < math.inf:
            s += c
        else:   # negative, infinite or NaN
            bad += 1.0
        j += TPB
    sh[0, t] = s
    sh[1, t] = bad
    tree_sum(sh, t)
    if t == 0:
        out[0] = sh[0, 0] if sh[1, 0] == 0 else math.nan
        out[1] = sh[1, 0]


cwcheck_kernel = _kernel(cwcheck_template)


def cwcheck_args(CW, out):
    """The kernel's argument tuple (also what :mod:`fastloss._cuda.ptx` types)."""
    return (CW, out)


def class_weight_check(alloc, stream, CW):
    """Device float64[2] = (Σ class weights, or NaN when one is invalid; the count of
    negative or non-finite class weights) of the device array ``CW`` (one block)."""
    import numpy as np

    out = alloc.view(2, np.float64)
    runtime.launch(cwcheck_kernel, 1, TPB, stream, *cwcheck_args(CW, out))
    return out


def ctcprep_template(L, two_d, il_raw, ll_raw, W, has_w, T, C, blank, cap, rmode, off, ext,
                     skipok, in_len, lab_eff, lab_true, scale, cnt):
    sh = cuda.shared.array((6, TPB), float64)
    t = cuda.threadIdx.x
    N = il_raw.shape[0]
    smax = ext.shape[1]
    if t == 0:   # offsets of 1-D labels (a serial prefix sum: fixed order)
        acc = 0
        for n in range(N):
            off[n] = acc
            v = int64(ll_raw[n])
            if v > 0:
                acc += v
        sh[5, 0] = 0.0 if (two_d or acc == L.shape[1]) else 1.0
    cuda.syncthreads()
    mismatch = sh[5, 0]
    cuda.syncthreads()
    ws = 0.0
    b_il = 0.0
    b_ll = 0.0
    b_lab = 0.0
    neg = 0.0
    n = t
    while n < N:
        il = int64(il_raw[n])
        ll = int64(ll_raw[n])
        bad = False
        if il < 0 or il > T:
            b_il += 1.0
            bad = True
        if ll < 0 or (two_d and ll > L.shape[1]):
            b_ll += 1.0
            bad = True
        if ll < 0:
            ll = 0
        lab_true[n] = ll
        o = off[n]
        if not bad and not two_d and (mismatch > 0 or o + ll > L.shape[1]):
            bad = True   # (counted once, as the mismatch)
        if not bad:
            badlab = False
            for j in range(ll):
                v = int64(L[n, j] if two_d else L[0, o + j])
                if v < 0 or v >= C or v == blank:
                    badlab = True
            if badlab:
                b_lab += 1.0
                bad = True
        eff = ll
        if bad:
            eff = -2   # invalid: log p = NaN (an error, or NaN with device results)
            il = 0
        elif ll > cap:
            eff = -1   # more labels than frames: infeasible (its loss is +inf)
        in_len[n] = il
        lab_eff[n] = eff
        for s in range(smax):
            k = blank
            if s % 2 == 1 and (s // 2) < eff:
                j = s // 2
                k = int64(L[n, j] if two_d else L[0, o + j])
            ext[n, s] = k
        for s in range(smax + 2):
            ok = 0
            if s % 2 == 1 and s < smax:
                j = s // 2
                if j >= 1 and j < eff and ext[n, s] != ext[n, s - 2]:
                    ok = 1
            skipok[n, s] = ok
        w = 1.0
        if has_w:
            w = float64(W[n])
            if w < 0:
                neg += 1.0
        ws += w
        n += TPB
    sh[0, t] = ws
    sh[1, t] = b_il
    sh[2, t] = b_ll
    sh[3, t] = b_lab
    sh[4, t] = neg
    tree_sum(sh, t)
    wsum = sh[0, 0]
    n = t
    while n < N:
        w = 1.0
        if has_w:
            w = float64(W[n])
        sc = w
        if rmode >= 2:
            sc = w / wsum if wsum > 0 else math.nan
            if rmode == 3:
                sc = sc / max(lab_true[n], 1)
        scale[n] = sc
        n += TPB
    if t == 0:
        cnt[0] = wsum
        cnt[1] = sh[1, 0]
        cnt[2] = sh[2, 0]
        cnt[3] = sh[3, 0]
        cnt[4] = sh[4, 0]
        cnt[5] = mismatch


ctcprep_kernel = _kernel(ctcprep_template)

CTC_COUNTS = ("input_lengths", "label_lengths", "labels", "sample_weight", "labels_total")


def ctcprep_args(L, two_d, il_raw, ll_raw, W, T, C, blank, cap, rmode, off, ext, skipok,
                 in_len, lab_eff, lab_true, scale, cnt):
    """The kernel's argument tuple (also what :mod:`fastloss._cuda.ptx` types)."""
    return (L, bool(two_d), il_raw, ll_raw, scale if W is None else W, W is not None, int(T),
            int(C), int(blank), int(cap), int(rmode), off, ext, skipok, in_len, lab_eff,
            lab_true, scale, cnt)


def ctc_prepare(alloc, stream, L, two_d, il_raw, ll_raw, W, N, T, C, blank, cap, rmode):
    """Device (ext, skipok, in_len, lab_eff, lab_true, scale, cnt) for the CTC kernels:
    ``cnt`` = (Σw, invalid input lengths, invalid label lengths, sequences with invalid
    labels, negative weights, 1-D labels not holding Σ label_lengths)."""
    import numpy as np

    smax = 2 * cap + 1
    n1 = max(N, 1)
    off = alloc.view(n1, np.int64)
    ext = alloc.view((n1, smax), np.int64)
    skipok = alloc.view((n1, smax + 2), np.uint8)
    in_len = alloc.view(n1, np.int64)
    lab_eff = alloc.view(n1, np.int64)
    lab_true = alloc.view(n1, np.int64)
    scale = alloc.view(n1, np.float64)
    cnt = alloc.view(6, np.float64)
    runtime.launch(ctcprep_kernel, 1, TPB, stream,
                   *ctcprep_args(L, two_d, il_raw, ll_raw, W, T, C, blank, cap, rmode, off,
                                 ext, skipok, in_len, lab_eff, lab_true, scale, cnt))
    return ext, skipok, in_len, lab_eff, lab_true, scale, cnt
