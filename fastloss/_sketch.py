"""Fixed-order reductions and a mergeable quantile sketch for :func:`fastloss.score`.

**Sums.** Rows are grouped in blocks of ``BLK`` consecutive rows of the *global* row index
(block ``j`` holds rows ``j*BLK .. j*BLK+BLK-1``).  Each block's values are summed in float64
by one compiled loop (its summation order depends only on the block's length), and the block
sums are added one after another, block 0 first, into a float64 accumulator that is carried
from chunk to chunk.  Chunks always start on a block boundary, so the total is the same
float64 number for every chunk size, thread count and kind of source.

**Quantiles.** A fixed-bin histogram over the float32 bit pattern: the sign, the 8 exponent
bits and the top 7 mantissa bits of each value select one of 65 536 bins.  A bin spans a
relative width of at most 2**-7, and a quantile is reported as its bin's midpoint clamped to
[min, max], so the relative error of any quantile is at most 2**-8 (0.39 %) for values in
float32's normal range (float64 values are rounded to float32 first; values beyond it land in
the infinity bins).  Ranks are exact counts; histograms merge by addition, in any order.

Numba is imported (and the kernels compiled, cached on disk) on first use only.
"""
from __future__ import annotations

import numpy as np

BLK = 2048
NBINS = 1 << 16
_K: dict = {}


def block_stats(v, m):
    """The block sums of ``v`` (rows where ``m`` is true) and the rows counted; ``v`` 1-D
    float32/float64, ``m`` a bool array or None.  (Compiled with ``reassoc``: only the sum
    inside one block may be reordered; :func:`fold` adds the block sums in order.)"""
    n = v.shape[0]
    nb = (n + BLK - 1) // BLK
    ps = np.empty(nb)
    cn = np.zeros(nb, np.int64)
    for b in range(nb):
        lo = b * BLK
        hi = min(lo + BLK, n)
        s = 0.0
        if m is None:
            for i0 in range(lo, hi):
                s += np.float64(v[np.uint64(i0)])
            cn[b] = hi - lo
        else:
            c = 0
            for i0 in range(lo, hi):
                i = np.uint64(i0)
                s += np.float64(v[i]) if m[i] else 0.0
                c += 1 if m[i] else 0
            cn[b] = c
        ps[b] = s
    return ps, cn.sum()


def fold(ps, acc):
    """``acc + ps[0] + ps[1] + ...`` in this order (compiled without fast-math flags)."""
    for b in range(ps.shape[0]):
        acc += ps[b]
    return acc


def hist_update(bits, m, counts):
    """Add the float32 bit patterns ``bits`` (uint32; rows where ``m``) to ``counts``."""
    for i in range(bits.shape[0]):
        if m is not None and not m[i]:
            continue
        u = bits[i]
        if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000):
            continue  # NaN
        if u & np.uint32(0x80000000):
            u = ~u
        else:
            u = u | np.uint32(0x80000000)
        counts[u >> np.uint32(16)] += 1


def _kernel(name):
    k = _K.get(name)
    if k is None:
        import numba

        fm = {"nsz", "arcp", "contract", "reassoc"}  # never nnan/ninf: NaN counts must work
        if name == "block_stats":
            # serial: a memory-bound sum needs no second parallel region per chunk (each one
            # waits for its slowest thread)
            k = numba.njit(cache=True, fastmath=fm, error_model="numpy")(block_stats)
        elif name == "fold":
            k = numba.njit(cache=True)(fold)
        else:
            k = numba.njit(cache=True)(hist_update)
        _K[name] = k
    return k


class Totals:
    """Running, mergeable reductions of a stream of per-row values."""

    def __init__(self, quantiles=None):
        self.sum = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.nan = 0
        self.count = 0
        self.counts = np.zeros(NBINS, np.int64) if quantiles else None

    def add_range(self, count, known_sum, lo, hi):
        """Fold in a chunk of ``count`` rows known only by its running total and its range
        (no NaN: a chunk with one is folded in with :meth:`add`); not for quantiles."""
        self.sum = float(known_sum)
        self.count += int(count)
        if count:
            self.min = min(self.min, float(lo))
            self.max = max(self.max, float(hi))

    def add(self, values, valid=None, known_sum=None, known_range=None):
        """Fold one chunk (its first row on a block boundary) into the totals.
        ``known_sum``: the running total after this chunk, already formed by the loss's
        kernel (then the chunk has no invalid rows and is not summed again here);
        ``known_range``: ``[min, max]`` of the chunk's values from the same kernel pass
        (no NaN among them), so they are not scanned again."""
        v = values.reshape(-1)
        if v.size == 0:
            return
        if v.dtype not in (np.float32, np.float64):
            v = v.astype(np.float64)
        if known_sum is not None and valid is None:
            s, c = known_sum, v.size
        else:
            ps, c = _kernel("block_stats")(v, valid)
            s = _kernel("fold")(ps, self.sum)
        if s != s and self.sum == self.sum:  # the first NaN: count them from here on
            self.nan_seen = True
        if getattr(self, "nan_seen", False):
            isn = np.isnan(v)
            self.nan += int(np.count_nonzero(isn if valid is None else isn & valid))
        self.sum = float(s)
        self.count += int(c)
        if c:
            if known_range is not None and valid is None:
                lo, hi = known_range
            else:  # NumPy's vectorized min/max (NaN-propagating: then reported as NaN)
                lo = np.min(v, where=valid, initial=np.inf) if valid is not None else np.min(v)
                hi = np.max(v, where=valid, initial=-np.inf) if valid is not None else np.max(v)
            self.min = min(self.min, float(lo))
            self.max = max(self.max, float(hi))
        if self.counts is not None:
            bits = np.ascontiguousarray(v, dtype=np.float32).view(np.uint32)
            _kernel("hist_update")(bits, valid, self.counts)

    def quantiles(self, qs):
        """``{q: value}`` from the histogram (NaN rows excluded)."""
        if self.counts is None:
            return None
        total = int(self.counts.sum())
        out = {}
        if total == 0:
            return {float(q): float("nan") for q in qs}
        cum = np.cumsum(self.counts)
        for q in qs:
            q = float(q)
            rank = min(total, max(1, int(np.ceil(q * total))))
            key = int(np.searchsorted(cum, rank))
            out[q] = float(np.clip(_decode(key), self.min, self.max))
        return out


def _decode(key: int) -> float:
    u = np.uint32((key << 16) | 0x8000)
    bits = (u & np.uint32(0x7FFFFFFF)) if (u & np.uint32(0x80000000)) else ~u
    return float(np.array([bits], np.uint32).view(np.float32)[0])


def sum_blocks(values, valid=None, acc=0.0):
    """The fixed-order float64 sum of ``values`` (see the module docstring)."""
    v = np.ascontiguousarray(values).reshape(-1)
    if v.dtype not in (np.float32, np.float64):
        v = v.astype(np.float64)
    return float(_kernel("fold")(_kernel("block_stats")(v, valid)[0], float(acc)))
