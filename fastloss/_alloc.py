"""Output buffers for the CPU runners: ``empty(shape, dtype)`` instead of ``np.empty``.

Why: a freshly allocated large array is fresh memory from the operating system, and the
kernel that first writes it pays for the pages: a page fault per page and, above all,
the kernel zeroing every page before handing it over.  For huber value+gradient at
2e7 float32 (an 80 MB gradient) that was about as expensive as the whole loss
(measured on a busy, shared 2-core AMD EPYC with AVX-512, so the absolute times are
inflated: 25 ms into a preallocated ``grad_out``, 44 ms allocating; 114 first-touch page
faults with NumPy's transparent huge pages, which NumPy >= 1.22 already requests with
``madvise`` for arrays >= 4 MB; 19 532 faults and 176 ms with them switched off).  The
faults already happen inside the parallel kernel, on the threads that write the pages;
what remains is the zeroing, which only reusing memory avoids: with the pool below the
allocating call took the ``grad_out`` call's time, with 0 faults
(``benchmarks/alloc.py``).

How: arrays of at least ``MIN_BYTES`` are views of blocks that this module keeps.  A
block is handed out again only when no array made from it is alive any more -- every
NumPy view (and ``torch.from_numpy``, ``memoryview``, ...) of the returned array holds a
reference to its block, so the block's reference count says whether anything still uses
it.  The semantics are those of ``np.empty``: a new array with unspecified contents,
never one that is still reachable from Python.  (Only a raw address kept without a
reference -- ``arr.ctypes.data`` -- could see the memory reused, as it could see it freed.)

The pool holds at most ``limit`` bytes of blocks (in use or free; default 1 GiB, the
environment variable ``FASTLOSS_BUFFER_POOL`` in bytes overrides it, ``0`` turns reuse
off); a block that does not fit is not kept, and free blocks are dropped oldest first to
make room.  ``set_pool_limit`` changes the limit, ``clear_pool`` drops every free block.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 20          # smaller arrays: np.empty (malloc's free lists reuse them)
_LOCK = threading.Lock()
_BLOCKS: list = []           # uint8 arrays, oldest first
_STATE = {"limit": None, "bytes": 0}


def _default_limit() -> int:
    v = os.environ.get("FASTLOSS_BUFFER_POOL")
    if v is None or not v.strip():
        return 1 << 30
    try:
        return max(0, int(float(v)))
    except ValueError:
        return 1 << 30


def _refs(block) -> int:
    return sys.getrefcount(block)


def _free_refcount() -> int | None:
    """The reference count ``_refs`` sees for a block referenced only by the pool's list
    and one local variable -- the pattern of every check below (None where reference
    counts are not available, e.g. PyPy: no reuse then)."""
    if not hasattr(sys, "getrefcount"):
        return None
    blocks = [np.empty(1, np.uint8)]
    b = blocks[0]
    return _refs(b)


_FREE = _free_refcount()


def _find(nbytes: int):
    """A free block of exactly ``nbytes`` (moved to the end: most recently used), or None."""
    for i in range(len(_BLOCKS)):
        b = _BLOCKS[i]
        if b.size == nbytes and _refs(b) == _FREE:
            _BLOCKS.append(_BLOCKS.pop(i))
            return b
    return None


def _make_room(nbytes: int, limit: int) -> bool:
    """Drop free blocks, oldest first, until ``nbytes`` more fit under ``limit``."""
    i = 0
    while _STATE["bytes"] + nbytes > limit and i < len(_BLOCKS):
        b = _BLOCKS[i]
        if _refs(b) == _FREE:
            del _BLOCKS[i]
            _STATE["bytes"] -= b.size
        else:
            i += 1
    return _STATE["bytes"] + nbytes <= limit


def empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` (C order); large arrays reuse the memory of dead ones."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    count = 1
    for s in shape:
        count *= int(s)
    nbytes = count * dtype.itemsize
    if nbytes < MIN_BYTES or _FREE is None:
        return np.empty(shape, dtype)
    with _LOCK:
        limit = _STATE["limit"]
        if limit is None:
            limit = _STATE["limit"] = _default_limit()
        if nbytes > limit:
            return np.empty(shape, dtype)
        block = _find(nbytes)
        if block is None:
            if not _make_room(nbytes, limit):
                return np.empty(shape, dtype)
            block = np.empty(nbytes, np.uint8)
            _BLOCKS.append(block)
            _STATE["bytes"] += nbytes
        return block.view(dtype).reshape(shape)


def set_pool_limit(nbytes: int) -> None:
    """Keep at most ``nbytes`` of output blocks for reuse (0: no reuse); free blocks
    beyond the new limit are dropped."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"set_pool_limit: nbytes must be an integer >= 0, got {nbytes!r}")
    with _LOCK:
        _STATE["limit"] = int(nbytes)
        _make_room(0, int(nbytes))


def clear_pool() -> None:
    """Drop every free block (arrays still in use keep their memory)."""
    with _LOCK:
        _make_room(0, -1)


def pool_bytes() -> int:
    """Bytes of blocks the pool holds now (in use and free)."""
    with _LOCK:
        return _STATE["bytes"]
