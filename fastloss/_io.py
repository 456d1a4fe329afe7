"""Chunked readers and writers for :func:`fastloss.score` (no optional import at module load).

A *source* turns one input (an array, a memmap, a ``.npy``/Parquet/CSV path with a column,
an Arrow array, a sliceable array such as a Zarr or HDF5 dataset, or an iterable of chunks)
into a sequence of ``(values, valid)`` pieces along axis 0: ``values`` a NumPy array,
``valid`` a boolean array (``None`` when every row is present).  :func:`rechunk` cuts those
pieces at fixed global row boundaries, copying only where a chunk spans two pieces.

A *sink* takes the per-row results chunk by chunk: NumPy arrays and ``.npy`` memmaps are
written in place (the kernel writes straight into the mapped file), Parquet files through a
``ParquetWriter`` (skipped rows become nulls), sliceable arrays (Zarr) by slice assignment.
"""
from __future__ import annotations

import mmap
import os
from collections.abc import Iterable

import numpy as np

__all__ = ["ScoreDataError", "open_sources", "rechunk", "open_sink", "split_spec"]

_TABULAR = (".parquet", ".pq", ".csv", ".tsv")
_KNOWN = _TABULAR + (".npy", ".zarr")


class ScoreDataError(ValueError):
    """Bad data met while streaming (a null, an invalid label); names the rows."""


def split_spec(spec):
    """``"file.parquet:column"`` -> ``("file.parquet", "column")``; other values unchanged.

    A tuple ``(path, column)`` is accepted as well.  The split happens only when the part
    before the last ``:`` ends with a known extension, so paths with colons still work.
    """
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], (str, os.PathLike)):
        return os.fspath(spec[0]), spec[1]
    if isinstance(spec, os.PathLike):
        return os.fspath(spec), None
    if isinstance(spec, str):
        head, sep, tail = spec.rpartition(":")
        if sep and head.lower().endswith(_KNOWN) and tail and "/" not in tail:
            return head, tail
        return spec, None
    return spec, None


def _is_arrow(x) -> bool:
    mod = type(x).__module__ or ""
    return mod.startswith("pyarrow") and hasattr(x, "null_count")


def _is_sliceable(x) -> bool:
    """The generic protocol: ``shape``, ``dtype`` and ``__getitem__`` with slices (h5py, zarr)."""
    return (hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")
            and not isinstance(x, np.ndarray))


def _ext(path: str) -> str:
    p = path.lower().rstrip("/")
    for e in _KNOWN:
        if p.endswith(e):
            return e
    return os.path.splitext(p)[1]


class Source:
    """One input as pieces along axis 0. ``length`` is ``None`` when unknown (iterables)."""

    length = None
    name = ""
    group = None       # key of a table read shared with other sources (one file, many columns)

    def pieces(self):
        raise NotImplementedError

    def describe(self):
        return self.name


class ArraySource(Source):
    """NumPy arrays and memmaps: zero-copy views; pages of a memmap are touched ahead."""

    def __init__(self, a, name):
        self.a = a
        self.name = name
        self.length = a.shape[0] if a.ndim else None
        self.mapped = isinstance(a, np.memmap) or isinstance(getattr(a, "base", None), np.memmap)

    def view(self, lo, hi):
        return self.a[lo:hi]


class SliceSource(Source):
    """Anything with ``shape``, ``dtype`` and slice ``__getitem__``: h5py, zarr, ..."""

    def __init__(self, a, name):
        self.a = a
        self.name = name
        self.length = int(a.shape[0])

    def view(self, lo, hi):
        return np.asarray(self.a[lo:hi])


def _arrow_to_numpy(arr, name, fn):
    """One Arrow array -> ``(values, valid)``; zero-copy when there are no nulls."""
    import pyarrow as pa

    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_fixed_size_list(arr.type):  # (n, C) rows
        width = arr.type.list_size
        flat = arr.flatten() if arr.null_count == 0 else arr.fill_null(
            pa.scalar([0] * width, arr.type)).flatten()
        vals, _ = _arrow_to_numpy(flat, name, fn)
        vals = vals.reshape(len(arr), width)
        valid = None if arr.null_count == 0 else np.asarray(arr.is_valid().to_numpy(
            zero_copy_only=False), bool)
        return vals, valid
    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)
            or pa.types.is_boolean(arr.type)):
        raise TypeError(f"{fn}: {name} must hold numbers, got Arrow type {arr.type}")
    if arr.null_count == 0:
        return arr.to_numpy(zero_copy_only=not pa.types.is_boolean(arr.type)), None
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)
    return arr.fill_null(0).to_numpy(zero_copy_only=False), valid


class ArrowSource(Source):
    """A ``pyarrow.Array`` or ``ChunkedArray``: its chunks in order, never concatenated."""

    def __init__(self, a, name, fn):
        self.a = a
        self.name = name
        self.fn = fn
        self.length = len(a)

    def pieces(self):
        chunks = self.a.chunks if hasattr(self.a, "chunks") else [self.a]
        for c in chunks:
            if len(c):
                yield _arrow_to_numpy(c, self.name, self.fn)


class TableSource(Source):
    """One column of a Parquet or CSV file; columns of the same file are read together."""

    def __init__(self, table, column, name):
        self.table = table
        self.column = column
        self.name = name
        self.length = table.length
        self.group = table


class Table:
    """A Parquet or CSV file read once, in record batches, for all the columns asked of it."""

    def __init__(self, path, fn):
        self.path = path
        self.fn = fn
        self.columns = []
        self.kind = "csv" if _ext(path) in (".csv", ".tsv") else "parquet"
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(f"{fn}: reading {path!r} needs pyarrow "
                              "(pip install 'fastloss[arrow]')") from None
        if not os.path.exists(path):
            raise FileNotFoundError(f"{fn}: no such file: {path!r}")
        self.length = None
        if self.kind == "parquet":
            import pyarrow.parquet as pq
            self.pf = pq.ParquetFile(path)
            self.length = self.pf.metadata.num_rows
            self.names = self.pf.schema_arrow.names
        else:
            import pyarrow.csv as pcsv
            self.names = pcsv.open_csv(path, **self._csv_opts()).schema.names

    def _csv_opts(self):
        import pyarrow.csv as pcsv
        delim = "\t" if self.path.lower().endswith(".tsv") else ","
        return {"parse_options": pcsv.ParseOptions(delimiter=delim),
                "read_options": pcsv.ReadOptions(block_size=1 << 24)}

    def add(self, column, name):
        if column is None:
            if len(self.names) == 1:
                column = self.names[0]
            else:
                raise ValueError(f"{self.fn}: {name}: {self.path!r} has columns {self.names}; "
                                 f"name one as {self.path}:COLUMN")
        if column not in self.names:
            raise ValueError(f"{self.fn}: {name}: no column {column!r} in {self.path!r} "
                             f"(columns: {', '.join(self.names)})")
        if column not in self.columns:
            self.columns.append(column)
        return TableSource(self, column, name)

    def batches(self, chunk):
        """Yields ``{column: arrow array}`` per record batch."""
        if self.kind == "parquet":
            it = self.pf.iter_batches(batch_size=chunk, columns=self.columns, use_threads=True)
        else:
            import pyarrow.csv as pcsv
            opts = self._csv_opts()
            opts["convert_options"] = pcsv.ConvertOptions(include_columns=self.columns)
            it = pcsv.open_csv(self.path, **opts)
        for b in it:
            yield {c: b.column(c) for c in self.columns}


class IterSource(Source):
    """An iterable of chunks (arrays, Arrow arrays): taken in order, lengths arbitrary."""

    def __init__(self, it, name, fn):
        self.it = it
        self.name = name
        self.fn = fn

    def pieces(self):
        for c in self.it:
            if _is_arrow(c):
                if len(c):
                    yield _arrow_to_numpy(c, self.name, self.fn)
                continue
            a = np.asarray(c)
            if a.ndim == 0:
                raise ValueError(f"{self.fn}: {self.name}: chunks of an iterable must be "
                                 "arrays with a row axis, got a scalar")
            if len(a):
                yield a, None


def open_source(x, name, fn, tables):
    """``x`` as a :class:`Source`, or ``None`` for a scalar (passed to every chunk as is)."""
    x, column = split_spec(x)
    if isinstance(x, str):
        e = _ext(x)
        if e == ".npy":
            if column is not None:
                raise ValueError(f"{fn}: {name}: a .npy file has no columns ({x}:{column})")
            if not os.path.exists(x):
                raise FileNotFoundError(f"{fn}: {name}: no such file: {x!r}")
            return ArraySource(np.load(x, mmap_mode="r"), name)
        if e in _TABULAR:
            t = tables.get(x)
            if t is None:
                t = tables[x] = Table(x, fn)
            return t.add(column, name)
        if e == ".zarr":
            try:
                import zarr
            except ImportError:
                raise ImportError(f"{fn}: {name}: reading {x!r} needs zarr") from None
            z = zarr.open(x, mode="r")
            if column is not None:
                z = z[column]
            return SliceSource(z, name)
        raise ValueError(f"{fn}: {name}: unsupported file type {x!r} "
                         "(.npy, .parquet, .csv, .zarr, or an array)")
    if isinstance(x, np.ndarray):
        return None if x.ndim == 0 else ArraySource(x, name)
    if isinstance(x, (int, float, np.number, bool)):
        return None
    if _is_arrow(x):
        return ArrowSource(x, name, fn)
    if _is_sliceable(x):
        return SliceSource(x, name)
    if isinstance(x, Iterable) and not isinstance(x, (bytes, dict)):
        if isinstance(x, (list, tuple)) and (len(x) == 0 or np.ndim(x[0]) == 0):
            return ArraySource(np.asarray(x), name)  # a plain list of numbers
        return IterSource(iter(x), name, fn)
    raise TypeError(f"{fn}: {name} must be an array, a memmap, a file path, an Arrow array, "
                    f"a sliceable array or an iterable of chunks; got {type(x).__name__}")


def _pieces(src, chunk):
    """Pieces of a non-table source: views of at most ``chunk`` rows for random-access ones."""
    if isinstance(src, (ArraySource, SliceSource)):
        for lo in range(0, src.length, chunk):
            hi = min(lo + chunk, src.length)
            yield src.view(lo, hi), None
    else:
        yield from src.pieces()


_POPULATE_READ = [getattr(mmap, "MADV_POPULATE_READ", 22)]   # Linux >= 5.14


def _touch(a):
    """Fault in the pages of a memmapped chunk so the kernel finds them resident: one
    ``madvise(MADV_POPULATE_READ)`` (the kernel maps the whole range at once, without the
    GIL), or where that is refused, one load per page (NumPy releases the GIL for the
    strided reduction)."""
    flat = a.reshape(-1) if a.flags.c_contiguous else None
    if flat is None or flat.size == 0:
        return
    mp = _mapping(flat) if _POPULATE_READ else None
    if mp is not None:
        page = mmap.PAGESIZE
        lo = flat.__array_interface__["data"][0] - mp[1]
        lo_p = lo - lo % page
        try:
            mp[0].madvise(_POPULATE_READ[0], lo_p, lo + flat.nbytes - lo_p)
            return
        except (OSError, ValueError, AttributeError):  # an older kernel, a closed map
            _POPULATE_READ.clear()
    step = max(1, 4096 // flat.itemsize)
    np.add.reduce(flat[::step], dtype=np.float64 if flat.dtype.kind == "f" else None)


def _mapping(a):
    """``(mmap object, address of its first byte)`` behind a memmapped array, else None."""
    m = a
    while isinstance(getattr(m, "base", None), np.ndarray):  # up to the array over the map
        m = m.base
    if not isinstance(m, np.memmap) or getattr(m, "_mmap", None) is None:
        return None
    start = m.offset - m.offset % mmap.ALLOCATIONGRANULARITY
    return m._mmap, m.__array_interface__["data"][0] - (m.offset - start)


def release(a):
    """Drop a consumed memmapped chunk from this process's resident set (the page cache
    keeps it; dirty pages of an output are written back as usual), so that the resident
    memory of a streaming pass stays a few chunks whatever the file size."""
    if not isinstance(a, np.ndarray) or a.size == 0 or not hasattr(mmap, "MADV_DONTNEED"):
        return
    mp = _mapping(a)
    if mp is None:
        return
    mm, base = mp
    page = mmap.PAGESIZE
    lo = a.__array_interface__["data"][0] - base
    hi = lo + a.nbytes
    lo_p = -(-lo // page) * page       # whole pages inside the chunk only: a page shared
    hi_p = (hi // page) * page         # with the next chunk stays mapped
    if hi_p > lo_p:
        try:
            mm.madvise(mmap.MADV_DONTNEED, lo_p, hi_p - lo_p)
        except (OSError, ValueError):
            pass


class _Cutter:
    """Cuts a stream of pieces at fixed row boundaries (chunk rows each)."""

    def __init__(self, it):
        self.it = it
        self.buf = []      # list of (values, valid) pieces not yet emitted
        self.have = 0
        self.done = False

    def take(self, n):
        """The next ``n`` rows (fewer at the end) as ``(values, valid)``; ``None`` when empty."""
        while self.have < n and not self.done:
            try:
                v, m = next(self.it)
            except StopIteration:
                self.done = True
                break
            self.buf.append((v, m))
            self.have += len(v)
        if self.have == 0:
            return None
        n = min(n, self.have)
        parts, got = [], 0
        while got < n:
            v, m = self.buf[0]
            k = min(len(v), n - got)
            if k == len(v):
                parts.append((v, m))
                self.buf.pop(0)
            else:
                parts.append((v[:k], None if m is None else m[:k]))
                self.buf[0] = (v[k:], None if m is None else m[k:])
            got += k
        self.have -= n
        if len(parts) == 1:
            return parts[0]
        vals = np.concatenate([p[0] for p in parts])
        if all(p[1] is None for p in parts):
            return vals, None
        return vals, np.concatenate([np.ones(len(p[0]), bool) if p[1] is None else p[1]
                                     for p in parts])


def rechunk(sources, chunk, fn):
    """Yields ``(lo, hi, [(values, valid) per source])`` for consecutive chunks of ``chunk`` rows.

    Sources reading the same file share one batch reader.  Lengths are checked as the
    stream goes: a source that ends early or late raises :class:`ScoreDataError`.
    """
    streams = {}
    cutters = []
    for s in sources:
        if isinstance(s, TableSource):
            key = id(s.table)
            if key not in streams:
                streams[key] = _TableStream(s.table, chunk)
            cutters.append(_Cutter(streams[key].column(s.column)))
        else:
            cutters.append(_Cutter(_pieces(s, chunk)))
    lo = 0
    while True:
        try:
            got = [c.take(chunk) for c in cutters]
        except Exception as exc:
            if (type(exc).__module__ or "").startswith("pyarrow"):  # a malformed file
                raise ScoreDataError(f"{fn}: reading rows from {lo}: {exc}") from None
            raise
        if all(g is None for g in got):
            return
        lens = [0 if g is None else len(g[0]) for g in got]
        if len(set(lens)) != 1:
            names = ", ".join(f"{s.name}: {n}" for s, n in zip(sources, lens))
            raise ScoreDataError(f"{fn}: inputs end at different rows: from row {lo}, chunk "
                                 f"lengths {names}")
        for s, g in zip(sources, got):
            if getattr(s, "mapped", False):
                _touch(g[0])
        hi = lo + lens[0]
        yield lo, hi, got
        lo = hi


class _TableStream:
    """Fans one table's record batches out to per-column piece iterators."""

    def __init__(self, table, chunk):
        self.table = table
        self.it = table.batches(chunk)
        self.queues = {c: [] for c in table.columns}

    def _pull(self):
        b = next(self.it)
        for c, arr in b.items():
            self.queues[c].append(arr)

    def column(self, c):
        q = self.queues[c]
        while True:
            if not q:
                try:
                    self._pull()
                except StopIteration:
                    return
                continue
            arr = q.pop(0)
            chunks = arr.chunks if hasattr(arr, "chunks") else [arr]
            for a in chunks:
                if len(a):
                    yield _arrow_to_numpy(a, self.table.path + ":" + c, self.table.fn)


# ---------------------------------------------------------------- sinks

class Sink:
    """Per-row results, written chunk by chunk.  ``direct(lo, hi)`` is a writable view the
    kernel can write into (or ``None``); ``write(lo, values, valid)`` stores a chunk."""

    def direct(self, lo, hi):
        return None

    def write(self, lo, values, valid):
        raise NotImplementedError

    def close(self):
        pass

    result = None


class ArraySink(Sink):
    def __init__(self, a):
        self.a = a
        self.result = a

    def direct(self, lo, hi):
        v = self.a[lo:hi]
        return v if v.flags.c_contiguous and v.flags.writeable else None

    def write(self, lo, values, valid):
        v = self.a[lo:lo + len(values)]
        if values.__array_interface__["data"][0] != v.__array_interface__["data"][0]:
            v[...] = values
        if valid is not None:
            v[~valid] = np.nan

    def close(self):
        # no msync: the pages are in the page cache, where every reader of the file sees
        # them, and the OS writes them back (a forced flush cost as long as the whole loss
        # pass on 1e8 float32 rows); call np.memmap.flush or os.sync for durability
        pass


class NpyAppendSink(Sink):
    """A ``.npy`` file of unknown final length: rows appended, the header written at close
    (it is reserved at a fixed 128 bytes, room for any shape)."""

    HEADER = 128

    def __init__(self, path, tail, dtype):
        self.path, self.tail, self.dtype, self.n = path, tuple(tail), np.dtype(dtype), 0
        self.f = open(path, "wb")
        self.f.write(b"\0" * self.HEADER)
        self.result = path

    def write(self, lo, values, valid):
        if valid is not None:
            values = values.copy()
            values[~valid] = np.nan
        self.f.write(np.ascontiguousarray(values, self.dtype).tobytes())
        self.n += len(values)

    def close(self):
        if self.f is None:
            return
        d = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False,
             "shape": (self.n,) + self.tail}
        h = repr(d).encode("latin1")
        h = h + b" " * (self.HEADER - 10 - len(h) - 1) + b"\n"
        self.f.seek(0)
        self.f.write(b"\x93NUMPY\x01\x00" + len(h).to_bytes(2, "little") + h)
        self.f.close()
        self.f = None


class SliceSink(Sink):
    def __init__(self, a):
        self.a = a
        self.result = a

    def write(self, lo, values, valid):
        if valid is not None:
            values = values.copy()
            values[~valid] = np.nan
        self.a[lo:lo + len(values)] = values


class ParquetSink(Sink):
    def __init__(self, path, column, fn):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ImportError(f"{fn}: writing {path!r} needs pyarrow") from None
        self.path, self.column, self.writer = path, column, None
        self.result = path

    def write(self, lo, values, valid):
        import pyarrow as pa
        import pyarrow.parquet as pq

        if values.ndim == 1:
            arr = pa.array(values, mask=None if valid is None else ~valid)
        else:
            flat = pa.array(values.reshape(-1))
            arr = pa.FixedSizeListArray.from_arrays(flat, values.shape[1])
        t = pa.table({self.column: arr})
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, t.schema)
        self.writer.write_table(t)

    def close(self):
        if self.writer is not None:
            self.writer.close()


def open_sink(target, shape, dtype, name, fn, column):
    """A sink for ``target`` (an array, a ``.npy``/``.parquet``/``.zarr`` path, a sliceable
    array) holding ``shape``/``dtype`` results; ``shape[0]`` may be ``None`` for Parquet."""
    path, col = split_spec(target)
    if isinstance(path, str):
        e = _ext(path)
        if e == ".npy":
            if shape[0] is None:
                return NpyAppendSink(path, shape[1:], dtype)
            sink = ArraySink(np.lib.format.open_memmap(path, mode="w+", dtype=dtype,
                                                       shape=tuple(shape)))
            sink.result = path
            return sink
        if e in (".parquet", ".pq"):
            return ParquetSink(path, col or column, fn)
        if e == ".zarr":
            try:
                import zarr
            except ImportError:
                raise ImportError(f"{fn}: {name}: writing {path!r} needs zarr") from None
            if shape[0] is None:
                raise ValueError(f"{fn}: {name}: a Zarr output needs the row count in advance")
            sink = SliceSink(zarr.open(path, mode="w", shape=tuple(shape), dtype=dtype))
            sink.result = path
            return sink
        raise ValueError(f"{fn}: {name}: unsupported output {path!r} (.npy, .parquet, .zarr "
                         "or an array)")
    if isinstance(target, np.ndarray):
        if shape[0] is not None and target.shape != tuple(shape):
            raise ValueError(f"{fn}: {name} must have shape {tuple(shape)}, got {target.shape}")
        if target.dtype != dtype:
            raise ValueError(f"{fn}: {name} must have dtype {dtype}, got {target.dtype}")
        if not target.flags.writeable:
            raise ValueError(f"{fn}: {name} must be writable")
        return ArraySink(target)
    if _is_sliceable(target) and hasattr(target, "__setitem__"):
        return SliceSink(target)
    raise TypeError(f"{fn}: {name} must be an array, a .npy/.parquet/.zarr path or a sliceable "
                    f"array; got {type(target).__name__}")


def open_sources(inputs: dict, fn):
    """``{name: Source or None}`` with tables shared between columns of one file."""
    tables = {}
    return {n: open_source(x, n, fn, tables) for n, x in inputs.items()}
