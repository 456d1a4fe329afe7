"""The output-buffer pool (fastloss._alloc): np.empty semantics, memory reuse only of dead arrays."""
import threading

import numpy as np
import pytest

from fastloss import _alloc

N = (1 << 20) // 8 + 3       # float64 elements just above the pool's minimum size


def _addr(a):
    return a.__array_interface__["data"][0]


@pytest.fixture(autouse=True)
def _fresh_pool():
    _alloc.set_pool_limit(1 << 30)
    _alloc.clear_pool()
    yield
    _alloc.set_pool_limit(_alloc._default_limit())
    _alloc.clear_pool()


def test_shape_dtype_and_small_arrays():
    a = _alloc.empty((3, N), np.float32)
    assert a.shape == (3, N) and a.dtype == np.float32 and a.flags.c_contiguous
    assert a.flags.writeable and a.flags.aligned
    b = _alloc.empty(N, np.float64)
    assert b.shape == (N,)
    small = _alloc.empty((4, 5), np.float64)
    assert small.shape == (4, 5) and _alloc.pool_bytes() == a.nbytes + b.nbytes
    assert _alloc.empty(0, np.float64).size == 0


def test_live_arrays_and_their_views_are_never_reused():
    a = _alloc.empty(N, np.float64)
    a[:] = 1.0
    view = a[::2]
    del a
    b = _alloc.empty(N, np.float64)            # `view` keeps the first block alive
    assert not np.shares_memory(b, view)
    b[:] = 2.0
    assert (view == 1.0).all()
    mv = memoryview(b)
    del b
    c = _alloc.empty(N, np.float64)
    assert not np.shares_memory(c, np.asarray(mv))
    assert not np.shares_memory(c, view)


def test_dead_arrays_are_reused():
    a = _alloc.empty(N, np.float64)
    p = _addr(a)
    del a
    b = _alloc.empty(N, np.float64)
    assert _addr(b) == p                         # same memory: no new pages to fault in
    c = _alloc.empty((N,), np.float64)           # b alive: a second block
    assert _addr(c) != p
    assert _alloc.pool_bytes() == 2 * N * 8


def test_limit_zero_and_clear():
    _alloc.set_pool_limit(0)
    a = _alloc.empty(N, np.float64)
    assert _alloc.pool_bytes() == 0
    del a
    _alloc.set_pool_limit(3 * N * 8)
    keep = [_alloc.empty(N, np.float64) for _ in range(4)]    # the 4th does not fit
    assert _alloc.pool_bytes() == 3 * N * 8
    del keep[:2]
    _alloc.clear_pool()
    assert _alloc.pool_bytes() == N * 8         # the third, still in use (the 4th is untracked)
    del keep
    _alloc.set_pool_limit(N * 8 - 1)             # shrinking drops free blocks
    assert _alloc.pool_bytes() == 0
    with pytest.raises(ValueError, match="set_pool_limit: nbytes"):
        _alloc.set_pool_limit(-1)


def test_threads_never_share_a_live_block():
    got, errors = [], []

    def work():
        try:
            for _ in range(50):
                a = _alloc.empty(N, np.float64)
                a[:] = threading.get_ident()
                got.append(a)
                if len(got) > 8:
                    got.pop(0)
                assert (a == threading.get_ident()).all()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
