"""fastloss.dask: lazy losses and gradients on Dask arrays, against the in-memory calls,
on a two-process LocalCluster (loopback only) when distributed is installed."""
import pickle

import numpy as np
import pytest

import fastloss

da = pytest.importorskip("dask.array")
fd = pytest.importorskip("fastloss.dask")

N = 12_000


def _data(dt=np.float64, n=N, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(dt), (rng.random(n) < 0.5).astype(dt)


def _rel(a, b):
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-300)


def test_transforms_pickle_with_plain_pickle():
    for f in (fastloss.value_and_grad(fastloss.huber), fastloss.grad(fastloss.huber),
              fastloss.grad_and_hessian(fastloss.logistic), fd.value_and_grad(fastloss.huber),
              fd.grad_and_hessian(fastloss.huber), fd.huber):
        g = pickle.loads(pickle.dumps(f))
        assert type(g) is type(f) and g.__name__ == f.__name__
    x, y = _data()
    v, g = pickle.loads(pickle.dumps(fastloss.value_and_grad(fastloss.huber)))(x, y)
    v2, g2 = fastloss.value_and_grad(fastloss.huber)(x, y)
    assert v == v2 and np.array_equal(g, g2)


def test_lazy_mean_sum_none_match_in_memory_and_score():
    x, y = _data()
    X, Y = da.from_array(x, chunks=4096), da.from_array(y, chunks=4096)
    m = fd.sigmoid_binary_cross_entropy(X, Y)
    assert isinstance(m, da.Array)  # lazy
    ref = fastloss.sigmoid_binary_cross_entropy(x, y)
    assert _rel(m.compute(), ref) < 1e-13
    s = fd.loss("sigmoid_binary_cross_entropy", X, Y, reduction="sum").compute()
    assert _rel(s, fastloss.sigmoid_binary_cross_entropy(x, y, reduction="sum")) < 1e-13
    # one block: the same bits as fastloss.score; a fixed layout: the same bits every run
    one = fd.sigmoid_binary_cross_entropy(da.from_array(x, chunks=-1), Y.rechunk(-1))
    assert one.compute() == fastloss.score("sigmoid_binary_cross_entropy", x, y).mean
    assert m.compute() == fd.sigmoid_binary_cross_entropy(X, Y).compute()
    per = fd.loss(fastloss.huber, X, Y, reduction="none", delta=0.3)
    assert per.chunks == X.chunks
    np.testing.assert_array_equal(per.compute(), fastloss.huber(x, y, delta=0.3,
                                                                reduction="none"))


def test_weights_and_gradients_keep_chunks():
    x, y = _data(np.float32)
    w = np.random.default_rng(3).random(N).astype(np.float32)
    X, Y, W = (da.from_array(a, chunks=5000) for a in (x, y, w))
    v, g = fd.value_and_grad(fastloss.huber)(X, Y, sample_weight=W, delta=0.5)
    v2, g2 = fastloss.value_and_grad(fastloss.huber)(x, y, sample_weight=w, delta=0.5)
    assert g.chunks == X.chunks and g.dtype == np.float32
    assert _rel(v.compute(), v2) < 1e-6
    np.testing.assert_allclose(g.compute(), g2, rtol=2e-6, atol=1e-12)
    gh = fd.grad_and_hessian(fastloss.logistic)(X, Y * 2 - 1, reduction="sum")
    g3, h3 = fastloss.grad_and_hessian(fastloss.logistic)(x, y * 2 - 1, reduction="sum")
    np.testing.assert_array_equal(gh[0].compute(), g3)
    np.testing.assert_array_equal(gh[1].compute(), h3)


def test_rowwise_needs_class_axis_in_one_chunk():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((3000, 10))
    k = rng.integers(0, 10, 3000)
    k[::7] = -100  # ignored rows: the mean divides by the counted rows only
    Z = da.from_array(z, chunks=(1000, 5))
    f = fastloss.softmax_cross_entropy_with_integer_labels
    with pytest.raises(ValueError, match="axis 1.*rechunk=True"):
        fd.loss(f, Z, k)
    ref = f(z, k)
    assert _rel(fd.loss(f, Z, k, rechunk=True).compute(), ref) < 1e-13
    # one block: the in-memory call's own totals, bit for bit (ignored rows, class weights)
    cw = rng.uniform(0.5, 2.0, 10)
    one = fd.loss(f, Z.rechunk(-1), k, class_weight=cw)
    assert one.compute() == f(z, k, class_weight=cw)
    assert fd.loss(f, Z.rechunk(-1), k, reduction="sum").compute() == f(z, k, reduction="sum")
    v, g = fd.value_and_grad(f)(Z.rechunk({1: -1}), da.from_array(k, chunks=1000))
    v2, g2 = fastloss.value_and_grad(f)(z, k)
    assert _rel(v.compute(), v2) < 1e-13
    assert g.chunks == ((1000,) * 3, (10,))
    np.testing.assert_allclose(g.compute(), g2, rtol=1e-12, atol=1e-15)


def test_ctc_over_batches():
    rng = np.random.default_rng(4)
    N_, T, C, S = 6, 12, 5, 4
    logits = rng.standard_normal((N_, T, C))
    labels = rng.integers(1, C, (N_, S))
    il = np.full(N_, T)
    ll = rng.integers(1, S + 1, N_)
    L = da.from_array(logits, chunks=(2, T, C))
    for red in ("mean", "sum"):
        v = fd.ctc_loss(L, labels, il, ll, reduction=red).compute()
        assert _rel(v, fastloss.ctc_loss(logits, labels, il, ll, reduction=red)) < 1e-12
        one = fd.ctc_loss(L.rechunk(-1), labels, il, ll, reduction=red).compute()
        assert one == fastloss.ctc_loss(logits, labels, il, ll, reduction=red)   # same bits
    _, g = fd.value_and_grad(fastloss.ctc_loss)(L, labels, il, ll)
    _, g2 = fastloss.value_and_grad(fastloss.ctc_loss)(logits, labels, il, ll)
    np.testing.assert_allclose(g.compute(), g2, rtol=1e-10, atol=1e-14)


def test_readers_put_no_data_in_the_graph(tmp_path):
    x, y = _data(np.float32, n=50_000)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    X = fd.from_npy(tmp_path / "x.npy", chunks=16384)
    assert X.chunks == ((16384, 16384, 16384, 848),)
    Y = fd.from_npy(tmp_path / "y.npy", chunks=16384)
    m = fd.sigmoid_binary_cross_entropy(X, Y)
    assert len(pickle.dumps(dict(m.__dask_graph__()))) < 20_000  # paths, not 400 kB of data
    assert _rel(m.compute(), fastloss.sigmoid_binary_cross_entropy(x, y)) < 1e-6
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"p": x, "t": y}), tmp_path / "d.parquet", row_group_size=20_000)
    P, T = fd.from_parquet(tmp_path / "d.parquet", "p"), fd.from_parquet(tmp_path / "d.parquet", "t")
    assert P.chunks == ((20_000, 20_000, 10_000),)
    assert m.compute() == fd.sigmoid_binary_cross_entropy(
        P.rechunk(X.chunks), T.rechunk(X.chunks)).compute()


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_local_cluster_matches_in_memory(client, tmp_path):
    x, y = _data(np.float32, n=40_000)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    threads = fd.setup_workers(client, losses=("sigmoid_binary_cross_entropy",),
                               dtypes=("float32",))
    assert set(threads) == set(client.scheduler_info()["workers"])
    states = client.run(fd._worker_state)
    assert all(s["numba_threads"] == threads[a] for a, s in states.items())
    X = fd.from_npy(tmp_path / "x.npy", chunks=8192)
    Y = fd.from_npy(tmp_path / "y.npy", chunks=8192)
    m = fd.sigmoid_binary_cross_entropy(X, Y)
    local = m.compute(scheduler="sync")
    remote = client.compute(m).result()
    assert remote == local  # fixed block layout: the same bits
    assert _rel(remote, fastloss.sigmoid_binary_cross_entropy(x, y)) < 1e-6
    v, g = fd.value_and_grad(fastloss.sigmoid_binary_cross_entropy)(X, Y, reduction="sum")
    gv = client.compute(g).result()
    np.testing.assert_array_equal(
        gv, fastloss.value_and_grad(fastloss.sigmoid_binary_cross_entropy)(
            x, y, reduction="sum")[1])


def test_npy_blocks_are_views_of_the_map(tmp_path):
    """Blocks of a ``.npy`` file are read-only views of a memory map in the worker (no copy),
    for every key and both orders; computed results are NumPy's own."""
    from fastloss.dask import _NpySlice
    rng = np.random.default_rng(9)
    a = rng.standard_normal((1000, 3)).astype(np.float32)
    for name, arr in (("c", a), ("f", np.asfortranarray(a)), ("v", a[:, 0].copy())):
        p = tmp_path / f"{name}.npy"
        np.save(p, arr)
        x = fd.from_npy(p, chunks=300)
        np.testing.assert_array_equal(x.compute(), arr)
        np.testing.assert_allclose(fd.squared_error(x, x * 0).compute(),
                                   fastloss.squared_error(arr, arr * 0), rtol=1e-6)
        src = _NpySlice(str(p), arr.shape, arr.dtype)
        keys = [slice(10, 20), (slice(990, 2000),), (slice(5, 5),), (slice(0, 9, 2),)]
        if arr.ndim == 2:
            keys += [(slice(3, 8), slice(None)), (slice(3, 8), slice(0, 2))]
        for key in keys:
            got = src[key]
            np.testing.assert_array_equal(got, arr[key])
            assert got.size == 0 or (isinstance(got, np.memmap) and not got.flags.writeable)
        assert src[7].shape == arr[7].shape
        assert pickle.loads(pickle.dumps(src[slice(0, 4)])).tolist() == arr[:4].tolist()
