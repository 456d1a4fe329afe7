"""Streaming scoring: per-row losses over data larger than memory, chunk by chunk.

:func:`score` reads its inputs in chunks of rows (a background thread reads chunk k+1 while
chunk k is computed: the parallel kernels release the GIL while their threads run), calls
the loss with ``reduction="none"`` on each chunk, writes the per-row losses (and, on request,
gradients and diagonal Hessians) to outputs, and folds each chunk into fixed-order float64
totals (see :mod:`fastloss._sketch`).  Memory holds a few chunks whatever the data size.
"""
from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ._io import (ArraySource, ScoreDataError, open_sink, open_sources, rechunk, release,
                  split_spec)

__all__ = ["score", "ScoreResult", "ScoreDataError", "DEFAULT_CHUNK"]

DEFAULT_CHUNK = 1 << 21       # rows per chunk for elementwise losses (8 MB per float32 column)
_ROW_BUDGET = 1 << 22         # elements per chunk for row-wise losses (rows x class axis)
_NULLS = ("raise", "skip")
_REDUCTIONS = ("none", "sum", "mean")


@dataclass
class ScoreResult:
    """What :func:`score` returns.

    ``sum`` is Σ wᵢ·ℓᵢ over the scored rows and ``weight_sum`` Σ wᵢ (the row count without
    weights); ``mean = sum / weight_sum``; ``value`` is the one ``reduction`` asked for (the
    output for ``"none"``).  ``count`` rows were scored and ``skipped`` null rows left out
    (``nulls="skip"``); ``min``/``max``/``quantiles`` are over the per-row values wᵢ·ℓᵢ of the
    scored rows (quantiles within 0.39 % relative error, see :mod:`fastloss._sketch`); ``nan``
    counts NaN per-row values (then ``sum`` and ``mean`` are NaN).
    """

    loss: str
    reduction: str
    value: object
    sum: float
    mean: float
    weight_sum: float
    count: int
    rows: int
    skipped: int
    nan: int
    min: float
    max: float
    quantiles: dict | None = None
    seconds: float = 0.0
    chunk_size: int = 0
    out: object = field(default=None, repr=False)
    grad_out: object = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """JSON-ready: floats, ints, strings (outputs by path or omitted)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("value", "out", "grad_out"):
            v = d[k]
            if not (v is None or isinstance(v, (int, float, str))):
                d[k] = None if k != "value" else "<array>"
        if d["quantiles"] is not None:
            d["quantiles"] = {str(q): v for q, v in d["quantiles"].items()}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in d.items()}


def _resolve_loss(loss):
    from ._api import LOSSES

    if isinstance(loss, str):
        info = LOSSES.get(loss)
        if info is None:
            raise ValueError(f"score: loss must be one of fastloss.LOSSES; got {loss!r}")
        return info
    info = getattr(loss, "__fastloss__", None)
    if info is None:
        raise TypeError(f"score: loss must be a loss name or a fastloss loss function, got "
                        f"{getattr(loss, '__name__', type(loss).__name__)!r}")
    return info


class _Prefetch:
    """Runs a generator in a thread, ``depth`` items ahead, forwarding its exceptions."""

    _END = object()

    def __init__(self, gen, depth):
        self.q = queue.Queue(maxsize=max(1, depth))
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, args=(gen,), daemon=True,
                                  name="fastloss-score-reader")
        self.t.start()

    def _put(self, item):
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, gen):
        try:
            for item in gen:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # forwarded to the consumer
            self._put(exc)

    def __iter__(self):
        while True:
            item = self.q.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self):
        self.stop.set()
        self.t.join(timeout=5)


def _progress_bar(progress, total, loss):
    if progress == "auto":
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainProgress(total)
    return tqdm(total=total, unit="rows", unit_scale=True, desc=loss, file=sys.stderr,
                smoothing=0.1, dynamic_ncols=True)


class _PlainProgress:
    """Fallback without tqdm: one line a second on stderr."""

    def __init__(self, total):
        self.total, self.n, self.t0, self.last = total, 0, time.perf_counter(), 0.0

    def update(self, k):
        self.n += k
        t = time.perf_counter() - self.t0
        if t - self.last >= 1.0:
            self.last = t
            tot = f"/{self.total}" if self.total else ""
            print(f"\r{self.n}{tot} rows, {self.n / t:.3g} rows/s", end="", file=sys.stderr)

    def close(self):
        print(file=sys.stderr)


def _round_chunk(c):
    from ._sketch import BLK
    return max(BLK, -(-int(c) // BLK) * BLK)


def score(loss, *inputs, sample_weight=None, out=None, grad_out=None, hess_out=None,
          reduction="mean", chunk_size=None, nulls="raise", quantiles=None, progress=False,
          n_threads=None, prefetch="auto", **params):
    """Score ``loss`` over inputs of any size, streaming; returns a :class:`ScoreResult`.

    Inputs (positional, in the loss's order, e.g. ``pred, target``), ``sample_weight`` too:
    NumPy arrays and memmaps (read in place), ``.npy`` paths (memory-mapped), Parquet/CSV
    paths with a column (``"data.parquet:pred"`` or ``("data.parquet", "pred")``; needs
    pyarrow; columns of one file are read together), ``pyarrow`` arrays and
    ``ChunkedArray``\\ s (chunk by chunk, never concatenated), Zarr/HDF5 datasets or anything
    with ``shape``, ``dtype`` and slicing, or iterables of chunks.  Rows run along axis 0
    (row-wise losses: the class axis last; ``ctc_loss``: ``layout="NTC"``).  Scalars are
    passed to every chunk.

    out, grad_out, hess_out
        Where per-row losses ``wᵢ·ℓᵢ``, gradients and diagonal Hessians (with respect to the
        first input, of the *sum* Σ wᵢ·ℓᵢ — divide by ``weight_sum`` for the mean) go: an
        array, a ``.npy`` path (memory-mapped; the kernel writes into the file), a
        ``.parquet`` path (column ``loss``/``grad``/``hess``, or ``"f.parquet:name"``), a
        ``.zarr`` path or a sliceable array.  Skipped rows are NaN (nulls in Parquet).
    reduction
        ``"mean"`` or ``"sum"`` picks ``result.value``; ``"none"`` requires ``out``.
    chunk_size
        Rows per chunk, rounded up to a multiple of 2048 (the block of the fixed-order sum).
        Default: 2**21 rows, or about 2**22 elements for row-wise losses.
    nulls
        ``"raise"`` (default): a null (Arrow/Parquet/CSV missing value) in any input raises
        :class:`ScoreDataError` naming the input and the row; ``"skip"``: the row is left out
        of every total (weight 0) and counted in ``skipped``.  NaN values are data, not
        nulls: they give NaN losses and a NaN sum.
    quantiles
        Quantile levels (e.g. ``(0.5, 0.99)``) from a fixed-bin sketch (≤ 0.39 % relative
        error); ``None`` skips the sketch (it costs a serial pass per chunk).
    progress
        ``True``/``False``/``"auto"`` (on when stderr is a terminal): a tqdm bar in rows/s.
    n_threads
        CPU threads of the kernels (the losses' ``n_threads=``: ``None`` follows
        :func:`fastloss.set_num_threads` / :func:`fastloss.threads`, ``k >= 1``, ``-1`` all).
    prefetch
        Chunks read ahead by the reader thread (0: read in the calling thread).
        ``"auto"``: 0 when every input is a NumPy array or memmap (the reader thread
        would only fault pages in, and on a machine whose cores all run the kernel it
        competes with the kernel's threads), else 2 (Parquet, Arrow, iterables, ...).

    ``sum`` and ``mean`` are float64 and the same bits for every ``chunk_size``, thread
    count and kind of source.  They are the in-memory call's own totals: cast to the input
    dtype they equal ``loss(..., reduction="sum")`` and ``reduction="mean"`` bit for bit
    (each chunk's call continues the running totals of the previous ones, in the fixed
    order of :mod:`fastloss._cpu.fold`: for the row-wise and CTC losses the numerator and
    the denominator of ``"mean"`` too, ignored labels, class weights and CTC's label
    lengths included); with skipped null rows they equal it to float64 round-off.

    Returns
    -------
    ScoreResult
        The float64 totals (``sum``, ``mean``, ``weight_sum``, ``count``) and ``value``,
        the one ``reduction`` asked for (the per-row output for ``"none"``).
    """
    t0 = time.perf_counter()
    info = _resolve_loss(loss)
    fn = f"score({info.name})"
    if len(inputs) != len(info.inputs):
        raise TypeError(f"{fn}: takes the inputs {', '.join(info.inputs)}; got {len(inputs)}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}; got {reduction!r}")
    if nulls not in _NULLS:
        raise ValueError(f"{fn}: nulls must be 'raise' or 'skip'; got {nulls!r}")
    if reduction == "none" and out is None:
        raise ValueError(f"{fn}: reduction='none' needs out= (a path or an array) for the "
                         "per-row losses")
    for k in params:
        if k not in info.params:
            raise TypeError(f"{fn}: unexpected keyword argument {k!r}; parameters of "
                            f"{info.name}: {', '.join(info.params) or 'none'}")
    if hess_out is not None and not info.has_hessian:
        raise ValueError(f"{fn}: hess_out: {info.name} has no diagonal Hessian")
    if info.kind == "rowwise" and params.get("axis", -1) not in (-1,):
        raise ValueError(f"{fn}: axis: score reads rows along axis 0 with the class axis last; "
                         "pass axis=-1")
    if info.kind == "ctc" and params.get("layout", "NTC") != "NTC":
        raise ValueError(f"{fn}: layout: score reads sequences along axis 0; pass layout='NTC'")
    if quantiles is not None:
        quantiles = tuple(float(q) for q in quantiles)
        if not all(0.0 <= q <= 1.0 for q in quantiles):
            raise ValueError(f"{fn}: quantiles must lie in [0, 1]; got {quantiles}")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size <= 0):
        raise ValueError(f"{fn}: chunk_size must be a positive integer; got {chunk_size!r}")
    if not (isinstance(prefetch, str) and prefetch == "auto") and (
            isinstance(prefetch, bool) or not isinstance(prefetch, (int, np.integer))
            or prefetch < 0):
        raise ValueError(f"{fn}: prefetch must be 'auto' or an integer >= 0; got {prefetch!r}")

    names = list(info.inputs)
    all_inputs = dict(zip(names, inputs))
    weight_scalar = None
    if sample_weight is not None:
        if np.ndim(sample_weight) == 0 and not isinstance(sample_weight, (str, os.PathLike)):
            weight_scalar = float(sample_weight)
            if not weight_scalar >= 0:
                raise ValueError(f"{fn}: sample_weight must be non-negative, got {sample_weight}")
        else:
            all_inputs["sample_weight"] = sample_weight
    srcs = open_sources(all_inputs, fn)
    chunked = [n for n, s in srcs.items() if s is not None]
    if names[0] not in chunked:
        raise ValueError(f"{fn}: {names[0]} must be an array or a stream of rows, not a scalar")
    lengths = {n: srcs[n].length for n in chunked if srcs[n].length is not None}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{fn}: inputs have different row counts: " +
                         ", ".join(f"{n}: {v}" for n, v in lengths.items()))
    total = next(iter(lengths.values()), None)

    first = srcs[names[0]]
    row_shape = None
    if hasattr(first, "a") and getattr(first.a, "shape", None) is not None:
        row_shape = tuple(first.a.shape[1:])
    if chunk_size is None:
        width = math.prod(row_shape) if row_shape else 1
        chunk_size = DEFAULT_CHUNK if info.kind == "elementwise" else max(1, _ROW_BUDGET // width)
    chunk = _round_chunk(chunk_size)

    from ._sketch import Totals

    tot = Totals(quantiles)
    wtot = Totals() if "sample_weight" in chunked else None
    # every chunk's call continues the running totals of the previous chunks (all
    # multiples of BLK rows) in the order of the in-memory call (fastloss._cpu.fold):
    # elementwise losses Σ w·ℓ (their Σw is folded here); row-wise and CTC losses
    # [Σ w·ℓ, numerator of "mean", denominator of "mean", W] (fastloss._rowwise.
    # running_totals).  A chunk with skipped rows ends this (then the totals go on below).
    ew = info.kind == "elementwise"
    exact = True
    ksum, kw_sum = [0.0], [0.0]
    rk = [0.0, 0.0, 0.0, 0.0]
    # without the running totals: the in-memory "mean" of the losses whose denominator is
    # not Σw (ignored labels and class weights of integer-label softmax cross-entropy) or
    # whose numerator is not Σ w·ℓ (CTC divides each loss by its label length):
    # [numerator, denominator], continued from rk when a chunk ends the exact totals
    mean_parts = [0.0, 0.0] if _special_mean(info, params) else None
    parts_live = False
    from ._cpu.fold import BLK
    state = {"out": None, "grad": None, "hess": None}
    scratch = {}
    skipped = 0
    rows = 0
    bar = _progress_bar(progress, total, info.name)
    from . import _threads
    nt = _threads.resolve(n_threads, fn) if n_threads is not None else None
    tctx = _threads.threads(nt)
    tctx.__enter__()
    # totals only (no per-row output, no sketch): each chunk's kernel returns its sum and
    # range without storing the per-row values (a chunk with a NaN sum is run again the
    # usual way, so that its NaNs are counted)
    two_arrays = (info.kind == "elementwise" and len(names) == 2
                  and not any(isinstance(v, np.ndarray) for v in params.values()))
    range_only = (two_arrays and out is None and grad_out is None and hess_out is None
                  and not quantiles)
    srcs_list = [srcs[n] for n in chunked]
    stream = rechunk(srcs_list, chunk, fn)
    if isinstance(prefetch, str):    # "auto" (checked above)
        prefetch = 0 if all(isinstance(s, ArraySource) for s in srcs_list) else 2
    reader = _Prefetch(stream, prefetch) if prefetch else None
    try:
        for lo, hi, got in (reader if reader is not None else stream):
            data = dict(zip(chunked, got))
            valid = _valid_rows(data, nulls, lo, fn)
            arrays, vals_valid = _fill(data, valid)
            k = hi - lo
            w = arrays.pop("sample_weight", None)
            if w is None:
                w = weight_scalar
            dt = _dtype_of(arrays[names[0]])
            if (range_only and exact and valid is None and vals_valid != "none"
                    and lo % BLK == 0):
                call_in = [arrays[n] if n in arrays else all_inputs[n] for n in names]
                before = ksum[0]
                mmv = _run_chunk_range(info, call_in, w, params, lo, hi, ksum)
                if ksum[0] == ksum[0]:
                    tot.add_range(k, ksum[0], *mmv)
                    if wtot is not None:
                        _add_weights(wtot, kw_sum, data, None, k, dt, ew)
                    _release_inputs(chunked, srcs, data)
                    rows = hi
                    if bar is not None:
                        bar.update(k)
                    continue
                ksum[0] = before     # a NaN: this chunk again, the usual way
            if state["out"] is None:
                _open_sinks(state, out, grad_out, hess_out, total, arrays[names[0]], dt,
                            info.kind, fn)
            bufs = {}
            for key, want in (("out", True), ("grad", grad_out is not None),
                              ("hess", hess_out is not None)):
                if not want:
                    continue
                shape = arrays[names[0]].shape
                if key == "out" and info.kind != "elementwise":
                    shape = (k,)
                sink = state[key]
                d = sink.direct(lo, hi) if sink is not None else None
                if d is None or d.dtype != dt:
                    # one scratch buffer per output, reused: the sinks write synchronously
                    d = scratch.get((key, shape, dt))
                    if d is None:
                        scratch.clear() if len(scratch) > 6 else None
                        d = scratch[(key, shape, dt)] = np.empty(shape, dt)
                bufs[key] = d
            call_in = [arrays[n] if n in arrays else all_inputs[n] for n in names]
            mm = None
            if vals_valid == "none":
                exact = False
                bufs["out"][...] = 0
                for key in ("grad", "hess"):
                    if key in bufs:
                        bufs[key][...] = 0
            else:
                exact = exact and valid is None and (lo % BLK == 0)
                # the range of the values from the kernel's pass (two-array elementwise
                # losses), instead of a min and a max pass over the chunk's output
                mm = [0.0, 0.0] if exact and two_arrays else None
                _run_chunk(info, call_in, w, params, bufs, lo, hi, fn,
                           (ksum if ew else rk) if exact else None, mm)
            run_sum = ksum[0] if ew else rk[0]
            known = exact and vals_valid != "none"
            tot.add(bufs["out"].reshape(-1), _expand(valid, bufs["out"].size, k),
                    known_sum=run_sum if known else None,
                    known_range=mm if known and mm is not None and run_sum == run_sum
                    else None)
            if mean_parts is not None and not exact:
                if not parts_live:   # continue the running totals of the chunks before
                    mean_parts[:] = rk[1:3]
                    parts_live = True
                _add_mean_parts(mean_parts, info, call_in, w, params, bufs["out"], valid)
            if wtot is not None:
                _add_weights(wtot, kw_sum, data, valid, k, dt, exact and ew)
            if valid is not None:
                skipped += int(k - np.count_nonzero(valid))
                for key in ("grad", "hess"):
                    if key in bufs:
                        bufs[key][~valid] = 0
            for key, b in bufs.items():
                state[key].write(lo, b, valid)
                release(b)
            _release_inputs(chunked, srcs, data)
            rows = hi
            if bar is not None:
                bar.update(k)
    finally:
        if reader is not None:
            reader.close()
        if bar is not None:
            bar.close()
        for key in ("out", "grad", "hess"):
            if state[key] is not None:
                state[key].close()
        tctx.__exit__(None, None, None)
    if state["out"] is None:  # no rows at all
        for key, tgt in (("out", out), ("grad", grad_out), ("hess", hess_out)):
            if tgt is not None and isinstance(split_spec(tgt)[0], str):
                state[key] = None
    if wtot is not None:
        wsum = kw_sum[0] if (exact and ew) else wtot.sum
    else:
        wsum = (1.0 if weight_scalar is None else weight_scalar) * tot.count
    if exact and rows:
        tot.sum = ksum[0] if ew else rk[0]
    mean = tot.sum / wsum if wsum > 0 else float("nan")
    if exact and rows and not ew:   # the in-memory call's numerator and denominator
        wsum = rk[2]
        mean = rk[1] / wsum if wsum > 0 else float("nan")
    elif mean_parts is not None and parts_live:
        wsum = mean_parts[1]
        mean = mean_parts[0] / wsum if wsum > 0 else float("nan")
    outres = state["out"].result if state["out"] is not None else out
    value = {"mean": mean, "sum": tot.sum, "none": outres}[reduction]
    lo_v = tot.min if tot.count else float("nan")
    hi_v = tot.max if tot.count else float("nan")
    if tot.nan:
        lo_v = hi_v = float("nan")
    return ScoreResult(loss=info.name, reduction=reduction, value=value, sum=tot.sum,
                       mean=mean, weight_sum=float(wsum), count=tot.count, rows=rows,
                       skipped=skipped, nan=tot.nan, min=lo_v, max=hi_v,
                       quantiles=tot.quantiles(quantiles) if quantiles else None,
                       seconds=time.perf_counter() - t0, chunk_size=chunk, out=outres,
                       grad_out=(state["grad"].result if state["grad"] is not None
                                 else grad_out))


def _expand(valid, size, k):
    """A per-row mask repeated over the elements of each row."""
    if valid is None or size == k:
        return valid
    return np.repeat(valid, size // k)


def _dtype_of(a):
    dt = np.dtype(a.dtype)
    if dt == np.float32:
        return dt
    return np.dtype(np.float64)


def _valid_rows(data, nulls, lo, fn):
    """The rows present in every input (``None``: all), or raise for ``nulls="raise"``."""
    valid = None
    for name, (_, m) in data.items():
        if m is None:
            continue
        if nulls == "raise":
            bad = int(np.flatnonzero(~m)[0])
            raise ScoreDataError(f"{fn}: {name} has a null at row {lo + bad} (rows {lo}-"
                                 f"{lo + len(m) - 1} of this chunk); pass nulls='skip' to leave "
                                 "such rows out, or fill them")
        valid = m.copy() if valid is None else (valid & m)
    return valid


def _fill(data, valid):
    """Arrays for the kernel: null rows get the values of a present row (their results are
    discarded).  Returns (arrays, "all" | "some" | "none")."""
    arrays = {n: v for n, (v, _) in data.items()}
    if valid is None:
        return arrays, "all"
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return arrays, "none"
    j = idx[0]
    for n, v in list(arrays.items()):
        c = np.array(v, copy=True)
        c[~valid] = c[j]
        arrays[n] = c
    return arrays, "some"


def _open_sinks(state, out, grad_out, hess_out, total, first, dt, kind, fn):
    row_tail = tuple(first.shape[1:])
    for key, tgt, col in (("out", out, "loss"), ("grad", grad_out, "grad"),
                          ("hess", hess_out, "hess")):
        if tgt is None:
            continue
        tail = row_tail if (key != "out" or kind == "elementwise") else ()
        state[key] = open_sink(tgt, (total,) + tail, dt, {"out": "out", "grad": "grad_out",
                                                          "hess": "hess_out"}[key], fn, col)
    if state["out"] is None:
        state["out"] = _NullSink()


class _NullSink:
    result = None

    def direct(self, lo, hi):
        return None

    def write(self, lo, values, valid):
        pass

    def close(self):
        pass


def counted_rows(logits, labels, params):
    """Per row, what integer-label softmax cross-entropy's ``"mean"`` counts: 0 for an
    ignored or out-of-range label, else the label's class weight (1 without); float64."""
    K = np.asarray(labels).reshape(-1)
    D = np.shape(logits)[-1]
    cnt = ((K != params.get("ignore_index", -100)) & (K >= 0) & (K < D)).astype(np.float64)
    cw = params.get("class_weight")
    if cw is not None:
        cnt = cnt * np.asarray(cw, np.float64)[np.where(cnt > 0, K, 0)]
    return cnt


def _special_mean(info, params):
    return info.kind == "ctc" or info.name in ("softmax_cross_entropy_with_integer_labels",
                                               "nll_loss")


def _add_mean_parts(parts, info, call_in, w, params, out, valid):
    """Add one chunk's numerator and denominator of the in-memory ``"mean"`` (fixed block
    order, so the totals do not depend on the chunking)."""
    from ._sketch import sum_blocks

    per = np.asarray(out, np.float64).reshape(-1)
    n = per.size
    wv = (np.ones(n) if w is None else
          np.broadcast_to(np.asarray(w, np.float64).reshape(-1) if np.ndim(w) else
                          np.float64(w), (n,)))
    if info.kind == "ctc":   # Σ w·ℓ / max(L, 1) over Σ w
        lab = np.asarray(call_in[3], np.float64).reshape(-1)
        parts[0] = sum_blocks(per / np.maximum(lab, 1.0), valid, parts[0])
        parts[1] = sum_blocks(np.ascontiguousarray(wv), valid, parts[1])
        return
    cnt = counted_rows(call_in[0], call_in[1], params)
    parts[0] = sum_blocks(per, valid, parts[0])
    parts[1] = sum_blocks(cnt * wv, valid, parts[1])


def _release_inputs(chunked, srcs, data):
    """Drop the consumed chunks of memmapped inputs from the resident set."""
    for n in chunked:
        if getattr(srcs[n], "mapped", False):
            release(data[n][0])


def _add_weights(wtot, kw_sum, data, valid, k, dt, exact):
    """The chunk's sample weights into their totals (and their fixed-order fold)."""
    from ._cpu.fold import lane_total_array
    wv = np.asarray(data["sample_weight"][0]).reshape(-1)
    wtot.add(wv, _expand(valid, wv.size, k))
    if exact:
        kw_sum[0] = lane_total_array(np.ascontiguousarray(wv, dtype=dt), kw_sum[0])


def _call_chunk(info, call_in, kw, req, lo, hi):
    """``info.call`` with the data errors of rows [lo, hi) raised as ScoreDataError."""
    try:
        return info.call(call_in, kw, **req)
    except ScoreDataError:
        raise
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if isinstance(exc, ValueError) and any(s in msg for s in ("must lie in", "must be 1 or -1",
                                                                  "non-negative", "probabilit",
                                                                  "label")):
            raise ScoreDataError(f"{msg} (rows {lo}-{hi - 1})") from None
        raise


def _run_chunk_range(info, call_in, w, params, lo, hi, sum_from):
    """An elementwise chunk's running total (continued in ``sum_from``) and ``[min, max]``
    of its w·ℓ, from the kernel's one pass (no per-row values stored)."""
    mm = [0.0, 0.0]
    kw = dict(params, sample_weight=w, reduction="sum")
    _call_chunk(info, call_in, kw, {"sum_from": sum_from, "minmax": mm}, lo, hi)
    return mm


def _run_chunk(info, call_in, w, params, bufs, lo, hi, fn, sum_from=None, minmax=None):
    want_grad = "grad" in bufs or "hess" in bufs
    kw = dict(params)
    kw["sample_weight"] = w
    kw["reduction"] = "none"
    has_out = "out" in info.common
    if has_out:
        kw["out"] = bufs["out"]
    req = {} if sum_from is None else {"sum_from": sum_from}
    if minmax is not None:
        req["minmax"] = minmax
    if info.kind == "elementwise":
        # the buffers are score's (a chunk of the output, or scratch): a domain error
        # raises ScoreDataError either way, so no separate domain pass before the kernel
        req["check_first"] = False
    if want_grad:
        req.update(want_grad=True, argnums=(0,), grad_out=bufs.get("grad"))
        if "hess" in bufs:
            req.update(want_hess=True, hess_out=bufs["hess"])
    value, g, h = _call_chunk(info, call_in, kw, req, lo, hi)
    if not has_out or value is not bufs["out"]:
        bufs["out"][...] = np.asarray(value).reshape(bufs["out"].shape)
    if want_grad:
        gv = g[info.inputs[0]]
        if "grad" in bufs and gv is not bufs["grad"]:
            bufs["grad"][...] = gv
        if "hess" in bufs and h is not bufs["hess"]:
            bufs["hess"][...] = h
