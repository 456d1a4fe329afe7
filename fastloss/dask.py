"""fastloss on Dask arrays: lazy losses, gradients and Hessians, per-block kernels::

    import fastloss.dask as fd
    pred, target = fd.from_npy("pred.npy", chunks=1 << 22), fd.from_npy("target.npy", chunks=1 << 22)
    fd.huber(pred, target, delta=1.0).compute()               # the mean, one float64
    v, g = fd.value_and_grad(fastloss.huber)(pred, target)    # g: lazy, pred's chunks

* Every loss of :data:`fastloss.LOSSES` is here by name (``fastloss.dask.huber``) and through
  :func:`loss`.  Each block runs the in-memory loss with ``reduction="none"``; the block's
  (Σ w·ℓ, numerator and denominator of the mean) are that call's own fixed-order float64
  totals (:mod:`fastloss._cpu.fold`), and a tree reduction (``split_every`` fixed) adds
  them: the mean equals the in-memory one to float64 round-off, and is the same bits on
  every run for a fixed block layout (with one block, the same bits as the in-memory call
  and :func:`fastloss.score`).
* Row-wise losses need the class axis (every axis but the first) in one chunk: a split axis
  raises ``ValueError``, or is merged with ``rechunk=True``.  CTC runs over batches
  (``layout="NTC"``, sequences along axis 0).
* Readers (:func:`from_npy`, :func:`from_parquet`, :func:`from_zarr`) put only a path and a
  slice into the graph; each worker opens the file itself.
* :func:`setup_workers` registers :class:`WorkerSetup` on a ``distributed`` client: Numba
  threads per worker = its share of the host's cores divided by its Dask threads, the Numba
  cache directory, and kernels compiled (or loaded from the cache) once per worker.
"""
from __future__ import annotations

import os

import numpy as np

from ._api import LOSSES

__all__ = ["loss", "value_and_grad", "grad_and_hessian", "from_npy", "from_parquet",
           "from_zarr", "setup_workers", "WorkerSetup", "SPLIT_EVERY"]

SPLIT_EVERY = 16          # fan-in of the tree reduction (fixed: the sums' order is fixed)
_STATE = {"threads": None}


def _da():
    try:
        import dask.array as da
    except ImportError:
        raise ImportError("fastloss.dask needs dask (pip install 'fastloss[dask]')") from None
    return da


def _info(fn):
    if isinstance(fn, str):
        if fn not in LOSSES:
            raise ValueError(f"fastloss.dask: unknown loss {fn!r}")
        return LOSSES[fn]
    info = getattr(fn, "__fastloss__", None)
    if info is None:
        raise TypeError(f"fastloss.dask: {fn!r} is not a fastloss loss")
    return info


# ------------------------------------------------------------------ graph preparation

def _prepare(info, inputs, sample_weight, rechunk, fn):
    """Inputs as aligned dask arrays with blockwise indices; scalars kept apart."""
    da = _da()
    if len(inputs) != len(info.inputs):
        raise TypeError(f"{fn}: takes the inputs {', '.join(info.inputs)}; got {len(inputs)}")
    named = dict(zip(info.inputs, inputs))
    if sample_weight is not None and np.ndim(sample_weight) > 0:
        named["sample_weight"] = sample_weight
    first = info.inputs[0]
    X = named[first]
    if not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X), chunks="auto")
    ew = info.kind == "elementwise"
    arrays, scalars, letters = {}, {}, iter("bcdefghijklmnopqrstuvwxyz")
    if not ew:
        if X.ndim < 1:
            raise ValueError(f"{fn}: {first} needs a batch axis")
        X = _whole_tail(X, first, rechunk, fn)
    arrays[first] = X
    ind = {first: "a" + ("".join(next(letters) for _ in range(X.ndim - 1)))}
    if ew:
        ind[first] = "".join(chr(ord("a") + i) for i in range(X.ndim))
    for n, v in named.items():
        if n == first:
            continue
        if np.ndim(v) == 0 and not isinstance(v, da.Array):
            scalars[n] = v
            continue
        a = v if isinstance(v, da.Array) else da.from_array(np.asarray(v))
        if ew:
            if a.shape != X.shape:
                raise ValueError(f"{fn}: {n} of shape {a.shape} must have {first}'s shape "
                                 f"{X.shape} (no broadcasting across blocks)")
            a = a.rechunk(X.chunks)
            ind[n] = ind[first]
        else:
            if a.ndim < 1 or a.shape[0] != X.shape[0]:
                raise ValueError(f"{fn}: {n} of shape {a.shape} must have {X.shape[0]} rows "
                                 f"like {first}")
            a = _whole_tail(a, n, rechunk, fn).rechunk({0: X.chunks[0]})
            ind[n] = "a" + "".join(next(letters) for _ in range(a.ndim - 1))
        arrays[n] = a
    return arrays, ind, scalars, X


def _whole_tail(a, name, rechunk, fn):
    split = [i for i in range(1, a.ndim) if a.numblocks[i] > 1]
    if not split:
        return a
    if rechunk:
        return a.rechunk({i: -1 for i in split})
    raise ValueError(f"{fn}: {name} is split into {a.numblocks[split[0]]} chunks along axis "
                     f"{split[0]}; row-wise losses need every axis but the first in one chunk: "
                     f"pass rechunk=True or {name}.rechunk({{{split[0]}: -1}})")


def _apply_threads():
    n = _STATE["threads"]
    if n is not None:
        import numba
        if numba.get_num_threads() != n:
            numba.set_num_threads(n)


def _call_args(info, names, blocks, scalars):
    vals = dict(zip(names, blocks))
    vals.update(scalars)
    w = vals.pop("sample_weight", None)
    return [vals[n] for n in info.inputs], w


def _per_row(info, ins, w, params):
    return np.asarray(info.func(*ins, sample_weight=w, reduction="none", **params))


def _blk_totals(*blocks, loss, names, scalars, params, nd):
    """(Σ w·ℓ, numerator of the mean, denominator of the mean) of one block, shaped
    (1,)*nd + (3,): the in-memory call's own totals (for row-wise and CTC losses its
    running totals, :func:`fastloss._rowwise.running_totals`: class weights, ignored labels
    and CTC's label lengths as the in-memory ``"mean"``); the numerator differs from
    Σ w·ℓ for CTC only (PyTorch's mean divides by label lengths)."""
    _apply_threads()
    info = LOSSES[loss]
    ins, w = _call_args(info, names, blocks, scalars)
    out = np.empty((1,) * nd + (3,))
    if info.kind == "elementwise":   # the in-memory kernel's own accumulator and Σw
        acc = [0.0]
        kw = dict(params, sample_weight=w, reduction="none")
        per = np.asarray(info.call(ins, kw, sum_from=acc)[0])
        out[..., 0] = out[..., 1] = acc[0]
        if w is not None and np.ndim(w) > 0:
            from ._cpu.fold import lane_total_array
            wb = np.broadcast_to(np.asarray(w, per.dtype), per.shape)
            out[..., 2] = lane_total_array(np.ascontiguousarray(wb).reshape(-1))
        else:
            out[..., 2] = float(per.size) * (1.0 if w is None else float(w))
        return out
    acc = [0.0, 0.0, 0.0, 0.0]
    info.call(ins, dict(params, sample_weight=w, reduction="none"), sum_from=acc)
    out[..., 0], out[..., 1], out[..., 2] = acc[0], acc[1], acc[2]
    return out


def _blk_none(*blocks, loss, names, scalars, params):
    _apply_threads()
    info = LOSSES[loss]
    ins, w = _call_args(info, names, blocks, scalars)
    return _per_row(info, ins, w, params)


def _blk_grad(*blocks, loss, names, scalars, params, scale_kind, what):
    """Gradient (``what="grad"``) or diagonal Hessian (``"hess"``) of the reduced value for
    one block; the last block argument is the global 1/Σw (``scale_kind="mean"``)."""
    from ._api import grad_and_hessian, value_and_grad

    _apply_threads()
    info = LOSSES[loss]
    inv = None
    if scale_kind == "mean":
        *blocks, inv = blocks
    ins, w = _call_args(info, names, blocks, scalars)
    dt = np.float32 if np.asarray(ins[0]).dtype == np.float32 else np.float64
    if inv is not None:
        s = dt(np.asarray(inv).reshape(-1)[0])
        if info.kind == "ctc":
            lab = np.maximum(np.asarray(ins[3], np.float64), 1.0)
            base = np.ones(len(lab)) if w is None else np.broadcast_to(w, lab.shape)
            w = (base / lab).astype(dt) * s
        else:
            w = s if w is None else (np.asarray(w, dt) * s if np.ndim(w) else dt(w) * s)
    if what == "hess":
        return grad_and_hessian(info.func)(*ins, sample_weight=w, reduction="sum", **params)[1]
    return value_and_grad(info.func)(*ins, sample_weight=w, reduction="sum", **params)[1]


# ------------------------------------------------------------------ the lazy API

def _check_params(info, params, fn):
    for k in params:
        if k not in info.params:
            raise TypeError(f"{fn}: unexpected keyword argument {k!r}")
    if info.kind == "rowwise" and params.get("axis", -1) != -1:
        raise ValueError(f"{fn}: axis: the class axis must be the last (axis=-1); rows run "
                         "along axis 0")
    if info.kind == "ctc" and params.get("layout", "NTC") != "NTC":
        raise ValueError(f"{fn}: layout: pass layout='NTC' (sequences along axis 0)")


def _totals(info, inputs, sample_weight, rechunk, params, fn):
    da = _da()
    arrays, ind, scalars, X = _prepare(info, inputs, sample_weight, rechunk, fn)
    if sample_weight is not None and np.ndim(sample_weight) == 0:
        scalars["sample_weight"] = float(sample_weight)
    out_ind = ind[info.inputs[0]] if info.kind == "elementwise" else "a"
    names = list(arrays)
    args = []
    for n in names:
        args += [arrays[n], ind[n]]
    parts = da.blockwise(_blk_totals, out_ind + "z", *args, dtype=np.float64,
                         adjust_chunks={c: 1 for c in out_ind}, new_axes={"z": 3},
                         concatenate=True, loss=info.name, names=names, scalars=scalars,
                         params=params, nd=len(out_ind), meta=np.empty((0,) * (len(out_ind) + 1)))
    return parts.sum(axis=tuple(range(len(out_ind))), split_every=SPLIT_EVERY,
                     dtype=np.float64), arrays, ind, scalars, X


def loss(fn, *inputs, sample_weight=None, reduction="mean", rechunk=False, **params):
    """``fn`` (a loss or its name) over Dask arrays, lazily.

    ``"mean"``/``"sum"``: a 0-d float64 dask array (the weighted mean Σ w·ℓ / Σ w as the
    in-memory loss defines it, CTC's per-label-length mean included); ``"none"``: per-element
    (elementwise) or per-row values with the first input's chunks along axis 0.
    NumPy inputs are wrapped with ``da.from_array`` (fine for labels; for large data use the
    readers, so the data does not travel in the graph).
    """
    da = _da()
    info = _info(fn)
    name = f"fastloss.dask.{info.name}"
    _check_params(info, params, name)
    if reduction not in ("none", "sum", "mean"):
        raise ValueError(f"{name}: reduction must be 'none', 'sum' or 'mean'; got {reduction!r}")
    if reduction == "none":
        arrays, ind, scalars, X = _prepare(info, inputs, sample_weight, rechunk, name)
        if sample_weight is not None and np.ndim(sample_weight) == 0:
            scalars["sample_weight"] = float(sample_weight)
        out_ind = ind[info.inputs[0]] if info.kind == "elementwise" else "a"
        names = list(arrays)
        args = []
        for n in names:
            args += [arrays[n], ind[n]]
        dt = np.float32 if X.dtype == np.float32 else np.float64
        return da.blockwise(_blk_none, out_ind, *args, dtype=dt, concatenate=True,
                            loss=info.name, names=names, scalars=scalars, params=params,
                            meta=np.empty((0,) * len(out_ind), dt))
    tot = _totals(info, inputs, sample_weight, rechunk, params, name)[0]
    return tot[0] if reduction == "sum" else tot[1] / tot[2]


class _Bound:
    """``fastloss.dask.<loss>``: picklable, by name."""

    def __init__(self, name):
        self.name = name
        self.__name__ = name
        self.__doc__ = f"Lazy {name} over Dask arrays; see fastloss.dask.loss."

    def __call__(self, *inputs, **kw):
        return loss(self.name, *inputs, **kw)

    def __reduce__(self):
        return (_Bound, (self.name,))


def __getattr__(name):
    if name in LOSSES:
        return _Bound(name)
    raise AttributeError(f"module 'fastloss.dask' has no attribute {name!r}")


def _grad_graph(info, inputs, sample_weight, reduction, rechunk, params, what, name):
    da = _da()
    tot, arrays, ind, scalars, X = _totals(info, inputs, sample_weight, rechunk, params, name)
    if sample_weight is not None and np.ndim(sample_weight) == 0:
        scalars["sample_weight"] = float(sample_weight)
    names = list(arrays)
    args = []
    for n in names:
        args += [arrays[n], ind[n]]
    kind = "mean" if reduction == "mean" else "sum"
    if kind == "mean":
        args += [1.0 / tot[2], None]
    dt = np.float32 if X.dtype == np.float32 else np.float64
    g = da.blockwise(_blk_grad, ind[info.inputs[0]], *args, dtype=dt, concatenate=True,
                     loss=info.name, names=names, scalars=scalars, params=params,
                     scale_kind=kind, what=what, meta=np.empty((0,) * X.ndim, dt))
    value = None if reduction == "none" else (tot[0] if reduction == "sum" else tot[1] / tot[2])
    return value, g


class value_and_grad:  # noqa: N801  (used like the function of the same name in fastloss)
    """``value_and_grad(fn)(inputs..., reduction=..., **params)`` over Dask arrays:
    ``(lazy value, lazy gradient with the first input's chunks)``.  Plain-pickle friendly.

    The gradient is that of the reduced value (of the sum for ``"none"``, whose value is
    then ``None``); for ``"mean"`` it depends on the global Σ w, a reduction of the graph.
    """

    def __init__(self, fn, argnums=0):
        self.info = _info(fn)
        if argnums != 0:
            raise ValueError("fastloss.dask.value_and_grad: only argnums=0 (the first input)")
        self.loss = self.info.name
        self.__name__ = f"value_and_grad_{self.loss}"

    def __reduce__(self):
        return (value_and_grad, (self.loss,))

    def __call__(self, *inputs, sample_weight=None, reduction="mean", rechunk=False, **params):
        name = f"fastloss.dask.value_and_grad({self.loss})"
        _check_params(self.info, params, name)
        return _grad_graph(self.info, inputs, sample_weight, reduction, rechunk, params,
                           "grad", name)


class grad_and_hessian:  # noqa: N801
    """``grad_and_hessian(fn)(pred, target, ...)`` over Dask arrays: lazy (gradient,
    diagonal Hessian), both with ``pred``'s chunks (elementwise losses)."""

    def __init__(self, fn):
        self.info = _info(fn)
        if not self.info.has_hessian:
            raise ValueError(f"{self.info.name} has no diagonal Hessian")
        self.loss = self.info.name
        self.__name__ = f"grad_and_hessian_{self.loss}"

    def __reduce__(self):
        return (grad_and_hessian, (self.loss,))

    def __call__(self, *inputs, sample_weight=None, reduction="mean", **params):
        name = f"fastloss.dask.grad_and_hessian({self.loss})"
        _check_params(self.info, params, name)
        _, g = _grad_graph(self.info, inputs, sample_weight, reduction, False, params, "grad",
                           name)
        _, h = _grad_graph(self.info, inputs, sample_weight, reduction, False, params, "hess",
                           name)
        return g, h


# ------------------------------------------------------------------ readers

class _NpySlice:
    """What the graph holds for a ``.npy`` file: its path, shape and dtype.  Each worker
    memory-maps the file and hands out the block it is asked for as a read-only view of the
    map, its pages faulted in at once (``fastloss._io._touch``), without a copy: the
    sigmoid-BCE mean over 2·10⁸ float32 rows on a 2-worker LocalCluster took 0.20 s
    against 0.30 s when each block was copied out (2 cores AMD EPYC).  A block that travels
    to another worker is pickled as a plain array."""

    def __init__(self, path, shape, dtype):
        self.path, self.shape, self.dtype, self.ndim = path, shape, np.dtype(dtype), len(shape)

    def __getitem__(self, key):
        from ._io import _touch

        block = np.load(self.path, mmap_mode="r")[key]
        if isinstance(block, np.ndarray):
            _touch(block)
        return block


def from_npy(path, chunks=1 << 22):
    """A dask array over a ``.npy`` file, opened in each worker (nothing large in the graph).
    ``chunks``: rows per block (or any dask chunks spec)."""
    da = _da()
    path = os.path.abspath(os.fspath(path))
    m = np.load(path, mmap_mode="r")
    shape, dtype = m.shape, m.dtype
    del m
    if isinstance(chunks, int) and len(shape) > 1:
        chunks = (chunks,) + tuple(-1 for _ in shape[1:])
    from dask.base import tokenize
    st = os.stat(path)
    return da.from_array(_NpySlice(path, shape, dtype), chunks=chunks, lock=False,
                         asarray=False, meta=np.empty((0,) * len(shape), dtype),
                         name="npy-" + tokenize(path, st.st_mtime_ns, st.st_size, chunks))


def _read_row_group(path, column, i, lo, nulls):
    import pyarrow.parquet as pq

    from ._io import ScoreDataError, _arrow_to_numpy

    col = pq.ParquetFile(path).read_row_group(i, columns=[column]).column(column)
    parts = [_arrow_to_numpy(c, column, "fastloss.dask.from_parquet") for c in col.chunks]
    vals = np.concatenate([p[0] for p in parts]) if len(parts) != 1 else parts[0][0]
    valid = [p[1] for p in parts]
    if any(v is not None for v in valid):
        if nulls == "raise":
            m = np.concatenate([np.ones(len(p[0]), bool) if v is None else v
                                for p, v in zip(parts, valid)])
            bad = int(np.flatnonzero(~m)[0])
            raise ScoreDataError(f"fastloss.dask.from_parquet: {path}:{column} has a null at "
                                 f"row {lo + bad} (row group {i})")
        vals = vals.astype(np.float64)
        m = np.concatenate([np.ones(len(p[0]), bool) if v is None else v
                            for p, v in zip(parts, valid)])
        vals[~m] = np.nan
    return np.array(vals)


def from_parquet(path, column, nulls="raise"):
    """One dask block per Parquet row group of ``column``, read inside the worker.
    ``nulls="raise"`` (a null raises, naming the row) or ``"nan"`` (nulls become NaN,
    float64)."""
    da = _da()
    import pyarrow.parquet as pq
    from dask.base import tokenize

    path = os.path.abspath(os.fspath(path))
    pf = pq.ParquetFile(path)
    md = pf.metadata
    sizes = tuple(md.row_group(i).num_rows for i in range(md.num_row_groups))
    field = pf.schema_arrow.field(column)
    dtype = np.dtype(field.type.to_pandas_dtype())
    if nulls == "nan":
        dtype = np.dtype(np.float64)
    name = "parquet-" + tokenize(path, column, os.stat(path).st_mtime_ns, nulls)
    los = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    graph = {(name, i): (_read_row_group, path, column, i, int(los[i]), nulls)
             for i in range(len(sizes))}
    return da.Array(graph, name, chunks=(sizes,), dtype=dtype, meta=np.empty(0, dtype))


def from_zarr(url, component=None, **kw):
    """``dask.array.from_zarr``: chunks are read inside the workers (needs zarr)."""
    return _da().from_zarr(url, component=component, **kw)


# ------------------------------------------------------------------ workers

def _warm(losses, dtypes):
    """Compile (or load from the on-disk cache) the kernels of ``losses``: the serial and the
    parallel elementwise variants for each dtype."""
    from ._elementwise import PARALLEL_MIN

    done = []
    for name in losses:
        info = LOSSES[name]
        for dt in dtypes:
            for n in (8, PARALLEL_MIN):
                try:
                    if info.kind == "elementwise":
                        x = np.full(n, 0.5, dt)
                        info.func(x, np.ones(n, dt), reduction="none")
                    done.append((name, np.dtype(dt).name, n))
                except Exception:  # a warm-up that a loss's domain rejects is skipped
                    pass
    return done


def _plugin_base():
    try:
        from distributed import WorkerPlugin
        return WorkerPlugin
    except ImportError:
        return object


class WorkerSetup(_plugin_base()):
    """A ``distributed`` worker plugin: Numba threads, Numba cache directory, warm kernels.

    ``threads``: ``{worker address: n}`` or one int for all (see :func:`setup_workers`).
    ``cache_dir`` sets ``NUMBA_CACHE_DIR`` in the worker; it takes effect only if Numba is
    not imported there yet (start workers with the variable set to be sure).
    """

    name = "fastloss-setup"

    def __init__(self, threads=None, cache_dir=None, losses=(), dtypes=("float32", "float64")):
        self.threads, self.cache_dir = threads, cache_dir
        self.losses, self.dtypes = tuple(losses), tuple(dtypes)

    def setup(self, worker):
        import sys
        n = self.threads.get(worker.address) if isinstance(self.threads, dict) else self.threads
        if self.cache_dir and "numba" not in sys.modules:
            os.environ["NUMBA_CACHE_DIR"] = self.cache_dir
        if n is not None and "numba" not in sys.modules:
            os.environ["NUMBA_NUM_THREADS"] = str(int(n))
        _STATE["threads"] = None if n is None else int(n)
        worker.fastloss_warm = _warm(self.losses, self.dtypes)


def _host_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _worker_state():
    import numba
    return {"numba_threads": _STATE["threads"], "numba_cache_dir": numba.config.CACHE_DIR,
            "pid": os.getpid()}


def setup_workers(client, losses=(), dtypes=("float32", "float64"), cache_dir=None,
                  threads=None):
    """Register :class:`WorkerSetup` on every worker of ``client`` (and on those joining).

    Numba threads per task default to ``max(1, cores of the host // Dask threads of all the
    workers on that host)``, so kernels do not oversubscribe the machine.  Returns
    ``{worker: numba threads}``.
    """
    info = client.scheduler_info()["workers"]
    if threads is None:
        cores = client.run(_host_cores)
        per_host = {}
        for addr, w in info.items():
            per_host[w["host"]] = per_host.get(w["host"], 0) + w["nthreads"]
        threads = {addr: max(1, cores.get(addr, 1) // per_host[w["host"]])
                   for addr, w in info.items()}
    client.register_plugin(WorkerSetup(threads, cache_dir, losses, dtypes),
                           name=WorkerSetup.name)
    return threads
