"""CUDA kernels of the CTC loss (built per dtype and memoized with ``_compile.cached``).

* ``lse``: one block per frame (n, t), threads over the classes; float64 max and sum
  reductions in shared memory give the frame's log-sum-exp (skipped with ``log_probs``).
* ``alpha_beta``: one block per sequence, threads over the S' = 2L + 1 extended states,
  ``cuda.syncthreads()`` per time step; α and β (emission included) in float64 log space,
  O(T·S') each, with ``logaddexp3`` from :mod:`fastloss._math.ctc`.
* ``grad``: one block per frame (n, t): threads over the classes write the scaled softmax
  (or 0 with ``log_probs``), then threads over the states subtract the scaled posteriors
  γ_t(s) with atomic adds (several states share a class: all blanks, repeated labels).
"""
import math
import os

import numpy as np
from numba import cuda, float32, float64  # module globals: the simulator swaps `cuda` here

from .._compile import cached
from .reduce import tree_max, tree_sum

# threads per block (a power of two); the simulator runs each thread as a Python thread
TPB = 8 if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else 128
NEG_INF = float("-inf")


def build(ns, dtype):
    """The three kernels for one dtype, with the CTC math of ``ns`` (the cuda namespace)."""
    lse3 = ns["logaddexp3"]
    lae = ns["logaddexp"]
    cast = float32 if np.dtype(dtype) == np.float32 else float64

    @cuda.jit(device=True)
    def emit(x, tnc, lse, ext, n, t, s):
        k = ext[n, s]
        v = x[t, n, k] if tnc else x[n, t, k]
        return float64(v) - lse[n, t]

    @cuda.jit
    def lse_kernel(x, tnc, in_len, lse):
        T = lse.shape[1]
        i = cuda.blockIdx.x
        n = i // T
        t = i - n * T
        if t >= in_len[n]:
            return
        C = x.shape[2]
        tid = cuda.threadIdx.x
        sm = cuda.shared.array((1, TPB), float64)
        m = NEG_INF
        for k in range(tid, C, TPB):
            v = float64(x[t, n, k] if tnc else x[n, t, k])
            m = v if v > m else m
        sm[0, tid] = m
        tree_max(sm, tid)
        mx = sm[0, 0]
        cuda.syncthreads()
        s = 0.0
        for k in range(tid, C, TPB):
            v = float64(x[t, n, k] if tnc else x[n, t, k])
            s += math.exp(v - mx)
        sm[0, tid] = s
        tree_sum(sm, tid)
        if tid == 0:
            lse[n, t] = mx + math.log(sm[0, 0])

    @cuda.jit
    def ab_kernel(x, tnc, lse, ext, skipok, in_len, lab_len, alpha, beta, logp, want_grad):
        n = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        Tn = in_len[n]
        sn = 2 * lab_len[n] + 1
        if Tn == 0:
            if tid == 0:
                logp[n] = 0.0 if sn == 1 else NEG_INF
            return
        for s in range(tid, sn, TPB):
            alpha[n, 0, s] = emit(x, tnc, lse, ext, n, 0, s) if s < 2 else NEG_INF
        cuda.syncthreads()
        for t in range(1, Tn):
            for s in range(tid, sn, TPB):
                a0 = alpha[n, t - 1, s]
                a1 = alpha[n, t - 1, s - 1] if s >= 1 else NEG_INF
                a2 = alpha[n, t - 1, s - 2] if (s >= 2 and skipok[n, s]) else NEG_INF
                alpha[n, t, s] = lse3(a0, a1, a2) + emit(x, tnc, lse, ext, n, t, s)
            cuda.syncthreads()
        if tid == 0:
            last = alpha[n, Tn - 1, sn - 1]
            prev = alpha[n, Tn - 1, sn - 2] if sn > 1 else NEG_INF
            logp[n] = lae(last, prev)
        if want_grad:
            for s in range(tid, sn, TPB):
                beta[n, Tn - 1, s] = (emit(x, tnc, lse, ext, n, Tn - 1, s) if s >= sn - 2
                                      else NEG_INF)
            cuda.syncthreads()
            for t in range(Tn - 2, -1, -1):
                for s in range(tid, sn, TPB):
                    b0 = beta[n, t + 1, s]
                    b1 = beta[n, t + 1, s + 1] if s + 1 < sn else NEG_INF
                    b2 = beta[n, t + 1, s + 2] if (s + 2 < sn and skipok[n, s + 2]) else NEG_INF
                    beta[n, t, s] = lse3(b0, b1, b2) + emit(x, tnc, lse, ext, n, t, s)
                cuda.syncthreads()

    @cuda.jit
    def grad_kernel(x, tnc, log_probs, lse, ext, in_len, lab_len, alpha, beta, logp, scale,
                    grad):
        T = lse.shape[1]
        i = cuda.blockIdx.x
        n = i // T
        t = i - n * T
        C = x.shape[2]
        tid = cuda.threadIdx.x
        lp = logp[n]
        if t >= in_len[n] or lp == NEG_INF or lp != lp:
            fill = 0.0 if lp == lp else math.nan
            if t >= in_len[n]:
                fill = 0.0
            for k in range(tid, C, TPB):
                if tnc:
                    grad[t, n, k] = fill
                else:
                    grad[n, t, k] = fill
            return
        sc = scale[n]
        ls = lse[n, t]
        for k in range(tid, C, TPB):
            v = 0.0
            if not log_probs:
                v = sc * math.exp(float64(x[t, n, k] if tnc else x[n, t, k]) - ls)
            if tnc:
                grad[t, n, k] = v
            else:
                grad[n, t, k] = v
        cuda.syncthreads()
        sn = 2 * lab_len[n] + 1
        for s in range(tid, sn, TPB):
            gam = math.exp(alpha[n, t, s] + beta[n, t, s] - emit(x, tnc, lse, ext, n, t, s) - lp)
            k = ext[n, s]
            if tnc:
                cuda.atomic.add(grad, (t, n, k), cast(-sc * gam))
            else:
                cuda.atomic.add(grad, (n, t, k), cast(-sc * gam))

    return lse_kernel, ab_kernel, grad_kernel


def launch_ctc(ns, dtype, x, tnc, log_probs, ext, skipok, in_len, lab_len, scale, grad):
    """Run the CTC kernels on device arrays; returns log p(l|x) per sequence (host float64).

    ``grad`` (a device array shaped like ``x``, or None) receives the scaled gradient.
    """
    lse_k, ab_k, grad_k = cached(("cuda-ctc", np.dtype(dtype).str), lambda: build(ns, dtype))
    if tnc:
        T, N = x.shape[0], x.shape[1]
    else:
        N, T = x.shape[0], x.shape[1]
    smax = ext.shape[1]
    logp = cuda.device_array(N, np.float64)
    if N == 0:
        return logp.copy_to_host()
    lse = cuda.to_device(np.zeros((N, T)))
    alpha = cuda.device_array((N, max(T, 1), smax), np.float64)
    beta = (cuda.device_array((N, max(T, 1), smax), np.float64) if grad is not None
            else cuda.device_array((1, 1, 1), np.float64))
    if T > 0 and not log_probs:
        lse_k[N * T, TPB](x, bool(tnc), in_len, lse)
    ab_k[N, TPB](x, bool(tnc), lse, ext, skipok, in_len, lab_len, alpha, beta, logp,
                 grad is not None)
    if grad is not None and T > 0:
        grad_k[N * T, TPB](x, bool(tnc), bool(log_probs), lse, ext, in_len, lab_len, alpha,
                           beta, logp, scale, grad)
    return logp.copy_to_host()
