"""fastloss.score: streaming totals equal the in-memory ones, outputs, sources, nulls, memory."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss
from fastloss import ScoreDataError, score
from fastloss import _io

N = 20_000 + 37  # several 2048-row blocks and a ragged tail


def _data(n=N, dt=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(dt)
    y = (rng.random(n) < 0.4).astype(dt)
    return x, y


def _bce_ref(x, y):
    x, y = x.astype(np.float64), y.astype(np.float64)
    return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))


def _huber_ref(x, y, d):
    r = np.abs(x.astype(np.float64) - y)
    return np.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_sum_and_mean_same_bits_for_every_chunk_size(dt):
    x, y = _data(dt=dt)
    whole = score("sigmoid_binary_cross_entropy", x, y)
    for c in (1, 2048, 5000, 3 * 2048, 10_000, 1 << 20):
        r = score("sigmoid_binary_cross_entropy", x, y, chunk_size=c)
        assert r.sum == whole.sum and r.mean == whole.mean, c
        assert r.chunk_size % 2048 == 0
    # against an independent float64 formula and the in-memory kernel
    ref = _bce_ref(x, y)
    tol = 1e-6 if dt == np.float32 else 1e-12
    assert whole.count == N and whole.weight_sum == N
    assert abs(whole.sum - ref.sum()) <= tol * ref.sum()
    assert whole.mean == whole.sum / N
    # bit for bit the in-memory call (its own accumulator, continued across the chunks)
    mem = fastloss.sigmoid_binary_cross_entropy(x, y, reduction="sum")
    assert dt(whole.sum) == mem and dt(whole.mean) == fastloss.sigmoid_binary_cross_entropy(x, y)
    vg = fastloss.value_and_grad(fastloss.sigmoid_binary_cross_entropy)(x, y, reduction="sum")
    assert vg[0] == mem


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_weighted_sum_and_mean_equal_in_memory_bits(tmp_path, dt):
    """Weighted sums and means of streamed sources, every chunk size, against the in-memory
    loss's own results, bit for bit (both dtypes, gradients requested or not)."""
    x, y = _data(dt=dt, seed=3)
    w = np.random.default_rng(4).random(N).astype(dt)
    mem_sum = fastloss.huber(x, y, sample_weight=w, delta=0.7, reduction="sum")
    mem_mean = fastloss.huber(x, y, sample_weight=w, delta=0.7)
    np.save(tmp_path / "x.npy", x)
    for c in (2048, 6144, 1 << 16):
        for src in (x, str(tmp_path / "x.npy")):
            r = score("huber", src, y, sample_weight=w, delta=0.7, chunk_size=c)
            assert dt(r.sum) == mem_sum and dt(r.mean) == mem_mean, (c, type(src))
        g = np.empty_like(x)
        r = score("huber", x, y, sample_weight=w, delta=0.7, chunk_size=c, grad_out=g)
        assert dt(r.sum) == mem_sum
        np.testing.assert_array_equal(
            g, fastloss.grad(fastloss.huber)(x, y, sample_weight=w, delta=0.7,
                                               reduction="sum"))


def test_same_bits_for_every_thread_count():
    import numba

    x, y = _data()
    a = score("log_cosh", x, y, chunk_size=4096, n_threads=1)
    b = score("log_cosh", x, y, chunk_size=8192, n_threads=numba.config.NUMBA_NUM_THREADS)
    assert a.sum == b.sum and a.mean == b.mean


def test_out_grad_hess_match_in_memory_calls(tmp_path):
    x, y = _data()
    out = np.empty(N, np.float32)
    g = np.empty(N, np.float32)
    h = np.empty(N, np.float32)
    r = score("huber", x, y, delta=0.7, out=out, grad_out=g, hess_out=h, reduction="sum",
              chunk_size=4096)
    assert r.value == r.sum
    np.testing.assert_array_equal(out, fastloss.huber(x, y, delta=0.7, reduction="none"))
    g2, h2 = fastloss.grad_and_hessian(fastloss.huber)(x, y, delta=0.7, reduction="sum")
    np.testing.assert_array_equal(g, g2)
    np.testing.assert_array_equal(h, h2)
    ref = _huber_ref(x, y, 0.7)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)
    assert r.min == out.min() and r.max == out.max()


def test_npy_paths_in_and_out_are_memory_mapped(tmp_path):
    x, y = _data(dt=np.float64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    r = score("squared_error", str(tmp_path / "x.npy"), tmp_path / "y.npy",
              out=str(tmp_path / "l.npy"), grad_out=str(tmp_path / "g.npy"),
              reduction="none", chunk_size=6000)
    assert r.value == str(tmp_path / "l.npy")
    per = np.load(tmp_path / "l.npy")
    np.testing.assert_array_equal(per, (x - y) ** 2)
    np.testing.assert_array_equal(np.load(tmp_path / "g.npy"), 2 * (x - y))
    assert r.sum == score("squared_error", x, y).sum
    assert abs(r.sum - np.sum((x - y) ** 2)) <= 1e-12 * r.sum


def test_memmapped_chunks_are_populated_or_touched(tmp_path, monkeypatch):
    """Mapped chunks are faulted in ahead of the kernel with MADV_POPULATE_READ; where the
    kernel refuses it (simulated by an unknown advice) the page-by-page loads take over
    for the rest of the process, with the same results."""
    x, y = _data(dt=np.float64, seed=11)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    ref = score("squared_error", x, y, chunk_size=4096)
    for advice in (list(_io._POPULATE_READ), [12345]):
        monkeypatch.setattr(_io, "_POPULATE_READ", advice)
        r = score("squared_error", str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                  chunk_size=4096)
        assert (r.sum, r.min, r.max, r.count) == (ref.sum, ref.min, ref.max, N)
    assert _io._POPULATE_READ == []                  # the refused advice was dropped


def test_weights_array_and_scalar():
    x, y = _data(dt=np.float64)
    w = np.random.default_rng(1).random(N)
    r = score("huber", x, y, sample_weight=w, chunk_size=4096)
    ref = _huber_ref(x, y, 1.0)
    assert abs(r.sum - np.sum(w * ref)) <= 1e-12 * r.sum
    assert abs(r.weight_sum - w.sum()) <= 1e-12 * w.sum()
    assert r.mean == r.sum / r.weight_sum
    mem = fastloss.huber(x, y, sample_weight=w)
    assert abs(r.mean - mem) <= 1e-12 * mem
    assert score("huber", x, y, sample_weight=w, chunk_size=2048).sum == r.sum
    s = score("huber", x, y, sample_weight=2.5)
    assert s.weight_sum == 2.5 * N and abs(s.mean - ref.mean()) <= 1e-12 * ref.mean()


def test_rowwise_loss_over_rows():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((5000, 7))
    labels = rng.integers(0, 7, 5000)
    f = fastloss.softmax_cross_entropy_with_integer_labels
    per = np.empty(5000)
    g = np.empty_like(logits)
    r = score(f, logits, labels, out=per, grad_out=g, chunk_size=2048)
    z = logits - logits.max(1, keepdims=True)
    ref = np.log(np.exp(z).sum(1)) - z[np.arange(5000), labels]
    np.testing.assert_allclose(per, ref, rtol=1e-12)
    assert abs(r.mean - ref.mean()) <= 1e-12 * ref.mean()
    assert r.sum == score(f, logits, labels, chunk_size=4096).sum
    _, g2 = fastloss.value_and_grad(f)(logits, labels, reduction="sum")
    np.testing.assert_allclose(g, g2, rtol=1e-12, atol=1e-15)


def test_iterable_of_irregular_chunks_and_sliceable_protocol():
    x, y = _data()
    cuts = [0, 1, 3000, 3001, 9000, 17000, N]

    def gen(a):
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            yield a[lo:hi]

    class Sliceable:  # the protocol h5py and zarr datasets follow
        def __init__(self, a):
            self.a, self.shape, self.dtype = a, a.shape, a.dtype

        def __getitem__(self, s):
            return self.a[s].copy()

    ref = score("logistic", x, y * 2 - 1)
    r1 = score("logistic", gen(x), gen(y * 2 - 1), chunk_size=5000)
    r2 = score("logistic", Sliceable(x), Sliceable(y * 2 - 1), chunk_size=7000)
    assert r1.sum == ref.sum == r2.sum and r1.count == N


def test_inputs_of_different_lengths_raise_with_rows():
    x, y = _data()
    with pytest.raises(ValueError, match="different row counts"):
        score("huber", x, y[:-1])
    with pytest.raises(ScoreDataError, match="different rows"):
        score("huber", iter([x]), iter([y[:-5]]))


def test_domain_error_names_rows():
    x, y = _data()
    y = y.copy()
    y[9000] = 3.0  # outside [0, 1]
    with pytest.raises(ScoreDataError, match=r"rows 8192-12287"):
        score("sigmoid_binary_cross_entropy", x, y, chunk_size=4096)


def test_nan_in_gives_nan_out():
    x, y = _data()
    x = x.copy()
    x[5] = np.nan
    r = score("squared_error", x, y)
    assert np.isnan(r.sum) and np.isnan(r.mean) and r.nan == 1


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_totals_only_range_from_the_kernel_pass(dt):
    """Without outputs or quantiles the kernel returns each chunk's sum and range without
    storing per-row values: min, max and count are the per-row values' own, weights
    included (weight 0 gives 0, also for an infinite loss); a NaN chunk is counted."""
    x, y = _data(dt=dt, seed=7)
    w = np.random.default_rng(7).uniform(0, 2, N).astype(dt)
    w[:3000] = 0
    for sw in (None, w, 0.5):
        per = fastloss.huber(x, y, delta=0.3, sample_weight=sw, reduction="none")  # w·ℓ
        ref = _huber_ref(x, y, 0.3) * (1.0 if sw is None else sw)   # independent float64
        for c in (2048, 6144, None):
            r = score("huber", x, y, delta=0.3, sample_weight=sw, chunk_size=c)
            assert (r.min, r.max, r.count, r.nan) == (float(per.min()), float(per.max()), N, 0)
            np.testing.assert_allclose([r.min, r.max], [ref.min(), ref.max()],
                                       rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-30)
            assert dt(r.sum) == fastloss.huber(x, y, delta=0.3, sample_weight=sw,
                                               reduction="sum")
    xi = x.copy()
    xi[:10] = np.inf                       # weight 0 there: 0, not NaN, not inf
    r = score("squared_error", xi, y, sample_weight=w, chunk_size=4096)
    assert np.isfinite(r.max) and r.min == 0.0 and r.nan == 0
    xn = x.copy()
    xn[[100, 9000, 9001]] = np.nan         # two chunks of four: run again, NaNs counted
    r = score("squared_error", xn, y, chunk_size=4096)
    assert r.nan == 3 and np.isnan(r.sum) and np.isnan(r.min) and r.count == N


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_per_row_range_from_the_kernel_pass(dt):
    """With a per-row output the chunk's min and max come from the kernel's pass (not from
    a scan of the output): they equal the output's own and an independent float64 formula,
    weights included; after a NaN chunk they are NaN, as NumPy's are, and NaNs are counted."""
    x, y = _data(dt=dt, seed=8)
    w = np.random.default_rng(8).uniform(0, 2, N).astype(dt)
    w[:3000] = 0
    for sw in (None, w, 0.5):
        ref = _huber_ref(x, y, 0.3) * (1.0 if sw is None else sw)
        for c in (2048, 6144):
            out = np.full(N, 7.0, dt)
            r = score("huber", x, y, delta=0.3, sample_weight=sw, chunk_size=c, out=out)
            assert (r.min, r.max, r.count, r.nan) == (float(out.min()), float(out.max()), N, 0)
            np.testing.assert_allclose([r.min, r.max], [ref.min(), ref.max()],
                                       rtol=1e-5 if dt == np.float32 else 1e-12, atol=1e-30)
    xn = x.copy()
    xn[[100, 9000, 9001]] = np.nan
    out = np.empty(N, dt)
    r = score("huber", xn, y, chunk_size=4096, out=out)
    assert r.nan == 3 and np.isnan(r.sum) and np.isnan(r.min) and np.isnan(r.max)
    # the same bits whatever the read-ahead ("auto": none for arrays)
    outs = {}
    for pf in (0, 2, "auto"):
        outs[pf] = np.empty(N, dt)
        r = score("huber", x, y, chunk_size=4096, out=outs[pf], prefetch=pf)
        outs[pf] = (r.sum, r.min, r.max, outs[pf].tobytes())
    assert outs[0] == outs[2] == outs["auto"]
    xn = x.copy()
    xn[-5] = np.nan                        # NaN in the last chunk only
    r = score("huber", xn, y, chunk_size=4096, out=out)
    assert r.nan == 1 and np.isnan(r.min) and np.isnan(r.max) and r.count == N


def test_quantiles_within_documented_error():
    x, y = _data(n=50_000)
    per = fastloss.sigmoid_binary_cross_entropy(x, y, reduction="none")
    qs = (0.0, 0.01, 0.5, 0.9, 0.999, 1.0)
    r = score("sigmoid_binary_cross_entropy", x, y, quantiles=qs, chunk_size=8192)
    ref = np.quantile(per, qs, method="inverted_cdf")
    for q, v in zip(qs, ref):
        assert abs(r.quantiles[q] - v) <= 2.0 ** -8 * abs(v), q
    # merging: histograms add, whatever the chunking
    assert r.quantiles == score("sigmoid_binary_cross_entropy", x, y, quantiles=qs).quantiles


def test_bad_arguments_raise_before_reading():
    x, y = _data()
    with pytest.raises(ValueError, match="reduction"):
        score("huber", x, y, reduction="max")
    with pytest.raises(ValueError, match="out="):
        score("huber", x, y, reduction="none")
    with pytest.raises(TypeError, match="unexpected keyword argument 'beta'"):
        score("huber", x, y, beta=1.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        score("nope", x, y)
    with pytest.raises(ValueError, match="nulls"):
        score("huber", x, y, nulls="fill")
    with pytest.raises(ValueError, match="hess_out"):
        score("kl_divergence", x.reshape(-1, 1), y.reshape(-1, 1), hess_out=np.empty(N))
    with pytest.raises(ValueError, match="chunk_size"):
        score("huber", x, y, chunk_size=0)
    for bad in (-1, 1.5, True, "eager"):
        with pytest.raises(ValueError, match="prefetch must be 'auto' or an integer"):
            score("huber", x, y, prefetch=bad)


def _arrow():
    return pytest.importorskip("pyarrow")


def test_arrow_chunked_array_read_chunk_by_chunk_without_copies():
    pa = _arrow()
    x, y = _data()
    cx = pa.chunked_array([x[:7000], x[7000:7001], x[7001:]])
    cy = pa.chunked_array([y[:100], y[100:]])
    assert score("huber", cx, cy, chunk_size=4096).sum == score("huber", x, y).sum
    # a piece without nulls is a view of the Arrow buffer
    src = _io.ArrowSource(cx, "pred", "t")
    v, m = next(src.pieces())
    assert m is None and v.__array_interface__["data"][0] == cx.chunk(0).buffers()[1].address


def test_parquet_columns_nulls_raise_or_skip(tmp_path):
    pa = _arrow()
    import pyarrow.parquet as pq

    x, y = _data(dt=np.float64)
    mask = np.zeros(N, bool)
    mask[[3, 4000, 4001, N - 1]] = True
    t = pa.table({"p": pa.array(x, mask=mask), "t": pa.array(y)})
    path = tmp_path / "d.parquet"
    pq.write_table(t, path, row_group_size=3000)
    with pytest.raises(ScoreDataError, match="null at row 3"):
        score("huber", f"{path}:p", f"{path}:t")
    r = score("huber", f"{path}:p", (str(path), "t"), nulls="skip",
              out=str(tmp_path / "o.parquet"), chunk_size=4096)
    keep = ~mask
    ref = score("huber", x[keep], y[keep])
    assert r.skipped == 4 and r.count == N - 4 and r.rows == N
    assert abs(r.sum - ref.sum) <= 1e-12 * ref.sum  # other row blocks: equal to round-off
    assert abs(r.sum - _huber_ref(x[keep], y[keep], 1.0).sum()) <= 1e-12 * r.sum
    o = pq.read_table(tmp_path / "o.parquet").column("loss")
    assert o.null_count == 4 and len(o) == N
    np.testing.assert_array_equal(np.asarray(o.to_numpy(zero_copy_only=False))[keep],
                                  fastloss.huber(x, y, reduction="none")[keep])
    # the same totals whatever the chunk size, also with skipped rows
    assert score("huber", f"{path}:p", f"{path}:t", nulls="skip", chunk_size=2048).sum == r.sum
    with pytest.raises(ValueError, match="no column 'q'"):
        score("huber", f"{path}:q", f"{path}:t")


def test_csv_through_pyarrow(tmp_path):
    _arrow()
    x, y = _data(n=3000, dt=np.float64)
    path = tmp_path / "d.csv"
    with open(path, "w") as f:
        f.write("pred,target\n")
        for a, b in zip(x, y):
            f.write(f"{float(a)!r},{float(b)!r}\n")
    r = score("squared_error", f"{path}:pred", f"{path}:target", out=str(tmp_path / "o.npy"))
    assert r.sum == score("squared_error", x, y).sum
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), (x - y) ** 2)


@pytest.mark.parametrize("mod", ["zarr", "h5py"])
def test_zarr_and_hdf5_when_installed(tmp_path, mod):
    m = pytest.importorskip(mod)
    x, y = _data()
    if mod == "zarr":
        zx = m.open(str(tmp_path / "x.zarr"), mode="w", shape=x.shape, dtype=x.dtype,
                    chunks=(3000,))
        zx[:] = x
    else:
        f = m.File(tmp_path / "x.h5", "w")
        zx = f.create_dataset("x", data=x, chunks=(3000,))
    assert score("huber", zx, y, chunk_size=4096).sum == score("huber", x, y).sum


def test_memory_bounded_independent_of_data_size(tmp_path):
    """Peak RSS of a streaming call over .npy files of 2M and 8M rows (float32)."""
    code = textwrap.dedent("""
        import json, resource, sys, numpy as np, fastloss
        n, d = int(sys.argv[1]), sys.argv[2]
        for name, seed in (("x", 0), ("y", 1)):
            a = np.lib.format.open_memmap(f"{d}/{name}.npy", "w+", np.float32, (n,))
            for lo in range(0, n, 1 << 20):
                k = min(1 << 20, n - lo)
                a[lo:lo + k] = np.random.default_rng(seed + lo).random(k, np.float32)
            del a
        if len(sys.argv) > 3:  # the check of the check: without releasing pages
            import fastloss._io, fastloss.scoring
            fastloss.scoring.release = lambda a: None
        fastloss.score("huber", np.zeros(1 << 19, np.float32), np.zeros(1 << 19, np.float32),
                       out=np.empty(1 << 19, np.float32), chunk_size=1 << 18)

        def hwm():  # peak resident set (kB) since the last reset
            with open("/proc/self/status") as f:
                return int(next(l for l in f if l.startswith("VmHWM")).split()[1])
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak: compile-time memory must not hide the pass
        base = hwm()
        r = fastloss.score("huber", f"{d}/x.npy", f"{d}/y.npy", out=f"{d}/o.npy",
                           chunk_size=1 << 18)
        peak = hwm()
        print(json.dumps({"base_kb": base, "peak_kb": peak, "count": r.count}))
    """)
    if not os.path.exists("/proc/self/clear_refs"):
        pytest.skip("needs Linux's /proc/self/clear_refs to reset the peak RSS")
    res = {}
    for n, extra in ((2_000_000, []), (8_000_000, []), (8_000_000, ["keep-pages"])):
        d = tmp_path / f"{n}{'k' if extra else ''}"
        d.mkdir()
        p = subprocess.run([sys.executable, "-c", code, str(n), str(d), *extra],
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout.strip().splitlines()[-1])
        assert r["count"] == n
        res[(n, bool(extra))] = (r["peak_kb"] - r["base_kb"]) / 1024
    small, large, kept = res[(2_000_000, False)], res[(8_000_000, False)], res[(8_000_000, True)]
    print(f"peak RSS growth: {small:.1f} MB at 2M rows, {large:.1f} MB at 8M rows, "
          f"{kept:.1f} MB at 8M rows without the page release")
    # 8M rows are 96 MB of mapped input and output; the call holds a few 1 MB chunks
    assert large < 24 and large - small < 8, res
    assert kept > 64, res  # without releasing the consumed pages, the whole files stay resident


def test_mean_of_ignored_labels_class_weights_and_ctc_is_the_in_memory_mean():
    """score's mean divides by what the in-memory "mean" divides by: the counted rows of
    ignore_index / class_weight (softmax CE), Σ w with per-sequence label lengths (CTC)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5000, 7))
    k = rng.integers(-1, 7, 5000)
    cw, w = rng.uniform(size=7), rng.uniform(size=5000)
    f = fastloss.softmax_cross_entropy_with_integer_labels
    for kw in ({"ignore_index": -1}, {"ignore_index": -1, "class_weight": cw},
               {"ignore_index": -1, "class_weight": cw, "sample_weight": w}):
        for c in (2048, 1 << 20):
            r = score(f, x, k, chunk_size=c, **kw)
            assert r.mean == pytest.approx(float(f(x, k, **kw)), rel=1e-13), (kw, c)
            assert r.sum == pytest.approx(float(f(x, k, reduction="sum", **kw)), rel=1e-13)
    lg = rng.standard_normal((3000, 10, 5))
    lab, il, ll = rng.integers(1, 5, (3000, 3)), np.full(3000, 10), rng.integers(0, 4, 3000)
    r = score(fastloss.ctc_loss, lg, lab, il, ll, sample_weight=w[:3000], chunk_size=2048)
    want = fastloss.ctc_loss(lg, lab, il, ll, sample_weight=w[:3000])
    assert r.mean == pytest.approx(float(want), rel=1e-12)


# ---- row-wise and CTC losses: the streamed sum and mean are the in-memory call's bits
# chunk_size 1000 -> chunks of 2048 rows and a ragged last one; 3000 -> 4096; 1 << 20: one
_ROW_CHUNKS = (1000, 3000, 1 << 20)


def _pieces(a, cuts):
    """An iterable source: pieces whose lengths are not multiples of any block size."""
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        yield a[lo:hi]


def test_integer_label_cross_entropy_streams_the_in_memory_bits():
    """ignore_index, class weights, sample weights (array and scalar): score's sum and mean
    are ``==`` the in-memory ``reduction="sum"`` / ``"mean"`` for every chunk size and for
    irregular source pieces; the values against a float64 NumPy formula."""
    import math

    rng = np.random.default_rng(11)
    n, C = 6001, 7
    x = rng.standard_normal((n, C)) * 3
    k = rng.integers(-1, C, n)            # -1: ignored rows
    cw = rng.uniform(0.1, 2.0, C)
    w = rng.uniform(size=n)
    cuts = [0, 1, 700, 2901, 2902, 5000, n]
    f = fastloss.softmax_cross_entropy_with_integer_labels
    z = x - x.max(1, keepdims=True)
    nll = np.log(np.exp(z).sum(1)) - z[np.arange(n), np.where(k < 0, 0, k)]
    for kw, rw in (({"class_weight": cw}, np.ones(n)),
                   ({"class_weight": cw, "sample_weight": w}, w),
                   ({"sample_weight": 0.3}, np.full(n, 0.3))):
        kw["ignore_index"] = -1
        s, m = f(x, k, reduction="sum", **kw), f(x, k, **kw)
        cnt = (k >= 0) * kw.get("class_weight", np.ones(C))[np.where(k < 0, 0, k)] * rw
        assert abs(float(s) - math.fsum(cnt * nll)) <= 1e-12 * float(s)
        assert abs(float(m) - math.fsum(cnt * nll) / math.fsum(cnt)) <= 1e-12 * float(m)
        for c in _ROW_CHUNKS:
            r = score(f, x, k, chunk_size=c, **kw)
            assert r.sum == s and r.mean == m, (kw, c)
        r = score(f, _pieces(x, cuts), _pieces(k, cuts), chunk_size=2500, **kw)
        assert r.sum == s and r.mean == m and r.count == n, kw


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_dense_label_cross_entropy_streams_the_in_memory_bits(dt):
    import math

    rng = np.random.default_rng(12)
    n, C = 4097, 5
    x = rng.standard_normal((n, C)).astype(dt)
    y = rng.dirichlet(np.ones(C), n).astype(dt)
    w = rng.uniform(size=n).astype(dt)
    f = fastloss.softmax_cross_entropy
    s = f(x, y, sample_weight=w, label_smoothing=0.1, reduction="sum")
    m = f(x, y, sample_weight=w, label_smoothing=0.1)
    x64, y64 = x.astype(np.float64), y.astype(np.float64) * 0.9 + 0.1 / C
    ref = -(y64 * (x64 - np.log(np.exp(x64).sum(1, keepdims=True)))).sum(1) * w
    tol = 2e-6 if dt == np.float32 else 1e-12
    assert abs(float(s) - math.fsum(ref)) <= tol * float(s)
    for c in _ROW_CHUNKS:
        r = score(f, x, y, sample_weight=w, label_smoothing=0.1, chunk_size=c)
        assert dt(r.sum) == s and dt(r.mean) == m, c
        if dt == np.float64:
            assert r.sum == s and r.mean == m, c


def test_ctc_streams_the_in_memory_bits():
    """CTC's sum, PyTorch mean (each loss over its label length) and batch mean."""
    import math

    rng = np.random.default_rng(15)
    n = 3001
    lg = rng.standard_normal((n, 10, 5))
    lab, il = rng.integers(1, 5, (n, 3)), rng.integers(6, 11, n)
    ll = rng.integers(0, 4, n)
    w = rng.uniform(size=n)
    f = fastloss.ctc_loss
    for kw in ({}, {"sample_weight": w}):
        s, m = f(lg, lab, il, ll, reduction="sum", **kw), f(lg, lab, il, ll, **kw)
        for c in _ROW_CHUNKS:
            per = np.empty(n)
            r = score(f, lg, lab, il, ll, chunk_size=c, out=per, **kw)
            assert r.sum == s and r.mean == m, (c, kw)
            rw = kw.get("sample_weight", np.ones(n))
            assert abs(r.sum - math.fsum(per)) <= 1e-13 * r.sum
            assert abs(r.mean - math.fsum(per / np.maximum(ll, 1)) / math.fsum(rw)) <= (
                1e-13 * r.mean)
