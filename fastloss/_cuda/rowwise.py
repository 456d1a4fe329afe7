"""CUDA kernel shape for row-wise losses: one block per row, shared-memory reductions.

Each block takes rows ``blockIdx.x, blockIdx.x + gridDim.x, ...``; inside a row its
threads stride over the columns (so a row never has to fit in shared memory), reduce the
phase-1 maximum and the phase-2 float64 sums with a fixed tree in shared memory, thread 0
runs the row's ``fin`` and publishes the gradient coefficients, and every thread writes
its columns' gradients.  Row losses (already weighted) and invalid-entry counts go to
per-row float64 arrays summed on the host in order, so results are deterministic.  Which
inputs, labels and outputs exist is fixed per compiled kernel (closure constants).
"""
import math

import numpy as np
from numba import cuda, float32, float64  # module globals: the simulator swaps `cuda` here

from .._compile import cached
from .reduce import tree_max, tree_sum

TPB = 128            # threads per block (a power of two)
MAX_BLOCKS = 65535


def build_rowwise(f1, f2, fin, f3, fixk, dtype, need_max, int_labels, float_labels, has_cw, has_sw,
                  want_ga, want_gb, want_gc):
    """A ``@cuda.jit`` kernel for one row-wise loss (math from :mod:`fastloss._math.rowwise`)."""

    FT = float32 if np.dtype(dtype) == np.float32 else float64
    want_any = want_ga or want_gb or want_gc
    has_fixk = fixk is not None and int_labels
    fixk = fixk if fixk is not None else f1   # never called then

    @cuda.jit
    def kernel(A, B, Cm, K, YL, CW, SW, ws, p0, p1, p2, p3, gscale, rowv, rowbad, gA, gB, gC):
        sh = cuda.shared.array((5, TPB), float64)
        smax = cuda.shared.array((1, TPB), float64)
        coef = cuda.shared.array(6, float64)
        t = cuda.threadIdx.x
        N = A.shape[0]
        D = A.shape[1]
        nf = float64(D)
        zero = FT(0.0)
        one = FT(1.0)
        i = cuda.blockIdx.x
        while i < N:
            k = 0
            xk = zero
            wk = one
            yl = 0.0
            valid = True
            if int_labels:
                k = K[i]
                valid = k >= 0 and k < D
                if valid:
                    xk = A[i, k]
                    if has_cw:
                        wk = CW[k]
            if float_labels:
                yl = YL[i]
            rw = ws
            if has_sw:
                rw = SW[i] * ws
            if valid:
                m = FT(-math.inf)
                if need_max:
                    mloc = -math.inf
                    j = t
                    while j < D:
                        v = f1(A[i, j], B[i, j], j, k)
                        mloc = v if v > mloc else mloc
                        j += TPB
                    smax[0, t] = mloc
                    tree_max(smax, t)
                    m = FT(smax[0, 0])
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                s3 = 0.0
                s4 = 0.0
                j = t
                while j < D:
                    wj = one
                    if has_cw:
                        wj = CW[j]
                    v0, v1, v2, v3, v4 = f2(A[i, j], B[i, j], Cm[i, j], wj, j, k, m, xk,
                                            p0, p1, p2, p3)
                    s0 += v0
                    s1 += v1
                    s2 += v2
                    s3 += v3
                    s4 += v4
                    j += TPB
                sh[0, t] = s0
                sh[1, t] = s1
                sh[2, t] = s2
                sh[3, t] = s3
                sh[4, t] = s4
                tree_sum(sh, t)
                if t == 0:
                    loss, c0, c1, c2, c3 = fin(sh[0, 0], sh[1, 0], sh[2, 0], sh[3, 0], m, xk,
                                               wk, yl, nf, rw * gscale, p0, p1, p2, p3)
                    rowv[i] = loss * rw
                    rowbad[i] = sh[4, 0]
                    coef[0] = c0
                    coef[1] = c1
                    coef[2] = c2
                    coef[3] = c3
                cuda.syncthreads()
                if want_any:
                    c0 = FT(coef[0])
                    c1 = FT(coef[1])
                    c2 = FT(coef[2])
                    c3 = FT(coef[3])
                    j = t
                    while j < D:
                        wj = one
                        if has_cw:
                            wj = CW[j]
                        ga, gb, gc = f3(A[i, j], B[i, j], Cm[i, j], wj, j, k, m, xk,
                                        c0, c1, c2, c3, p0, p1, p2, p3)
                        if want_ga:
                            gA[i, j] = ga
                        if want_gb:
                            gB[i, j] = gb
                        if want_gc:
                            gC[i, j] = gc
                        j += TPB
                    if has_fixk and want_ga and t == k % TPB:  # this thread wrote column k
                        gA[i, k] = fixk(gA[i, k], c0, c1, c2, c3)
            else:
                if t == 0:
                    rowv[i] = 0.0
                    rowbad[i] = 0.0
                if want_any:
                    j = t
                    while j < D:
                        if want_ga:
                            gA[i, j] = zero
                        if want_gb:
                            gB[i, j] = zero
                        if want_gc:
                            gC[i, j] = zero
                        j += TPB
            cuda.syncthreads()   # shared memory is reused by the next row
            i += cuda.gridDim.x

    return kernel


def launch_rowwise(tag, ns, flags, dtype, A, B, Cm, K, YL, CW, SW, ws, params, gscale,
                   gA, gB, gC):
    """Run one row-wise loss on 2-D device arrays.

    Returns the device arrays ``(rowv, rowbad)``: the weighted row losses and the count of
    invalid entries per row (float64).
    """
    need_max, int_labels, float_labels, has_cw = flags
    has_sw = SW is not None
    want = (gA is not None, gB is not None, gC is not None)
    dt = np.dtype(dtype)
    key = ("cuda-row", tag, dt.str, need_max, int_labels, float_labels, has_cw, has_sw) + want
    f1name = f"{tag}_f1" if f"{tag}_f1" in ns else ("first_f1" if need_max else "nomax_f1")
    kern = cached(key, lambda: build_rowwise(ns[f1name], ns[f"{tag}_f2"], ns[f"{tag}_fin"],
                                             ns[f"{tag}_f3"], ns.get(f"{tag}_fixk"), dt, need_max, int_labels,
                                             float_labels, has_cw, has_sw, *want))
    N = A.shape[0]
    rowv = cuda.device_array(max(N, 1), dtype=np.float64)
    rowbad = cuda.device_array(max(N, 1), dtype=np.float64)
    if N == 0:
        return rowv[:0], rowbad[:0]
    d2 = cuda.device_array((1, 1), dtype=dt)
    d1i = cuda.device_array(1, dtype=np.int64)
    d1 = cuda.device_array(1, dtype=dt)
    cast = dt.type
    p = [cast(v) for v in params]
    blocks = max(1, min(MAX_BLOCKS, N))
    kern[blocks, TPB](A, A if B is None else B, A if Cm is None else Cm,
                      d1i if K is None else K, d1 if YL is None else YL,
                      d1 if CW is None else CW, d1 if SW is None else SW, cast(ws),
                      p[0], p[1], p[2], p[3], cast(gscale), rowv, rowbad,
                      d2 if gA is None else gA, d2 if gB is None else gB,
                      d2 if gC is None else gC)
    return rowv, rowbad
