"""Streaming-scoring benchmark: fastloss.score against plain streaming passes over the same data.

    python benchmarks/scoring.py                      # the targets' sizes: 2e8 float32 rows
    python benchmarks/scoring.py --rows 2e6 --repeat 1 --png /tmp/s.png   # a smoke run

Cases (each timed round robin against its reference, medians of ``--repeat`` rounds, warm
page cache):

* ``npy``: per-row sigmoid BCE from two ``.npy`` memmaps into an output memmap, against
  ``np.add(a, b, out=c)`` over the same chunks (target: >= 90 %); sums of the polynomial losses
  (``squared_error``, ``huber``, no output) against that pass's bandwidth (target: >= 80 %).
  The NumPy pass keeps its maps, so after the warm-up it meets no page fault; the same
  pass over freshly opened maps (``numpy_add_fresh_maps``) is reported beside it.
* ``parquet``: the same rows in a Parquet file of 200 row groups: ``score`` against pyarrow
  reading the two columns alone (target: <= 1.3x).
* ``dask``: the mean over ``fastloss.dask.from_npy`` blocks on a 2-worker LocalCluster against
  the in-process ``score`` (target: <= 1.5x).
* ``memory``: peak RSS of a streaming call in a fresh process at two sizes.
* ``chunks``: throughput of ``score`` against chunk size -> the PNG of docs/scoring.md.

Data files (about 0.8 GB per float32 column at 2e8 rows) are written once into ``--dir``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np


def machine() -> str:
    model = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def make_npy(d, n, chunk=1 << 22):
    paths = {k: os.path.join(d, f"{k}.npy") for k in ("x", "y")}
    for k, p in paths.items():
        if os.path.exists(p) and np.load(p, mmap_mode="r").shape == (n,):
            continue
        a = np.lib.format.open_memmap(p, "w+", np.float32, (n,))
        for lo in range(0, n, chunk):
            rng = np.random.default_rng(lo + (k == "y"))
            k_ = min(chunk, n - lo)
            a[lo:lo + k_] = (rng.standard_normal(k_, np.float32) if k == "x"
                             else (rng.random(k_) < 0.5).astype(np.float32))
        a.flush()
        del a
    return paths


def make_parquet(d, n, paths, groups=200):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = os.path.join(d, "xy.parquet")
    if os.path.exists(p) and pq.ParquetFile(p).metadata.num_rows == n:
        return p
    x, y = np.load(paths["x"], mmap_mode="r"), np.load(paths["y"], mmap_mode="r")
    per = -(-n // groups)
    w = None
    for lo in range(0, n, per):
        t = pa.table({"x": np.asarray(x[lo:lo + per]), "y": np.asarray(y[lo:lo + per])})
        if w is None:
            w = pq.ParquetWriter(p, t.schema)
        w.write_table(t, row_group_size=per)
    w.close()
    return p


def round_robin(fs: dict, repeat: int) -> dict:
    ts = {k: [] for k in fs}
    for _ in range(repeat):
        for k, f in fs.items():
            t0 = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in ts.items()}


def bench_npy(paths, d, n, chunk, repeat):
    import fastloss

    x, y = np.load(paths["x"], mmap_mode="r"), np.load(paths["y"], mmap_mode="r")
    o = np.lib.format.open_memmap(os.path.join(d, "o.npy"), "w+", np.float32, (n,))

    def numpy_pass():
        for lo in range(0, n, chunk):
            np.add(x[lo:lo + chunk], y[lo:lo + chunk], out=o[lo:lo + chunk])

    def bce_out():
        fastloss.score("sigmoid_binary_cross_entropy", x, y, out=o, chunk_size=chunk)

    def sq_sum():
        fastloss.score("squared_error", x, y, chunk_size=chunk)

    def huber_sum():
        fastloss.score("huber", x, y, chunk_size=chunk)

    def numpy_read():
        for lo in range(0, n, chunk):
            np.add(x[lo:lo + chunk], y[lo:lo + chunk])

    def numpy_fresh():
        # the same pass over maps opened for it: its pages are in the page cache but not
        # yet mapped into the process, as in a one-pass scoring job (score drops each
        # consumed chunk from the process, so it always meets its pages this way)
        xf, yf = np.load(paths["x"], mmap_mode="r"), np.load(paths["y"], mmap_mode="r")
        of = np.lib.format.open_memmap(os.path.join(d, "o.npy"), "r+")
        for lo in range(0, n, chunk):
            np.add(xf[lo:lo + chunk], yf[lo:lo + chunk], out=of[lo:lo + chunk])
        del xf, yf, of

    fs = {"numpy_add": numpy_pass, "bce_out": bce_out, "squared_error_sum": sq_sum,
          "huber_sum": huber_sum, "numpy_add_noout": numpy_read,
          "numpy_add_fresh_maps": numpy_fresh}
    for f in fs.values():  # warm: page cache, kernels
        f()
    t = round_robin(fs, repeat)
    gbs = {"numpy_add": 12 * n / t["numpy_add"] / 1e9,
           "squared_error_sum": 8 * n / t["squared_error_sum"] / 1e9,
           "huber_sum": 8 * n / t["huber_sum"] / 1e9}
    return {"seconds": t, "rows_per_s": {k: n / v for k, v in t.items()},
            "bce_share_of_numpy_add": t["numpy_add"] / t["bce_out"],
            "bce_share_of_numpy_add_fresh_maps": t["numpy_add_fresh_maps"] / t["bce_out"],
            "gbs": gbs,
            "sum_share_of_numpy_bandwidth": {k: gbs[k] / gbs["numpy_add"]
                                             for k in ("squared_error_sum", "huber_sum")}}


def bench_parquet(ppath, n, chunk, repeat):
    import pyarrow.parquet as pq

    import fastloss

    def pyarrow_alone():
        for b in pq.ParquetFile(ppath).iter_batches(batch_size=chunk, columns=["x", "y"]):
            b.column(0).to_numpy()
            b.column(1).to_numpy()

    def score():
        fastloss.score("sigmoid_binary_cross_entropy", f"{ppath}:x", f"{ppath}:y",
                       chunk_size=chunk)

    fs = {"pyarrow_read": pyarrow_alone, "score": score}
    for f in fs.values():
        f()
    t = round_robin(fs, repeat)
    return {"seconds": t, "ratio": t["score"] / t["pyarrow_read"]}


def bench_dask(paths, n, chunk, repeat):
    import distributed

    import fastloss
    import fastloss.dask as fd

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       silence_logs=40)
    client = distributed.Client(cluster)
    try:
        threads = fd.setup_workers(client, losses=("sigmoid_binary_cross_entropy",),
                                   dtypes=("float32",))
        X, Y = fd.from_npy(paths["x"], chunks=chunk), fd.from_npy(paths["y"], chunks=chunk)
        m = fd.sigmoid_binary_cross_entropy(X, Y)
        x, y = np.load(paths["x"], mmap_mode="r"), np.load(paths["y"], mmap_mode="r")
        fs = {"in_process": lambda: fastloss.score("sigmoid_binary_cross_entropy", x, y,
                                                   chunk_size=chunk),
              "dask": lambda: client.compute(m).result()}
        for f in fs.values():
            f()
        t = round_robin(fs, repeat)
        return {"seconds": t, "ratio": t["dask"] / t["in_process"],
                "per_worker_rows_per_s": n / t["dask"] / 2, "numba_threads": threads}
    finally:
        client.close()
        cluster.close()


_MEM = """
import json, sys, fastloss, numpy as np
x, y, o, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
n = int(sys.argv[5])
xs, ys = np.load(x, mmap_mode="r")[:n], np.load(y, mmap_mode="r")[:n]
fastloss.score("sigmoid_binary_cross_entropy", xs[:1 << 20], ys[:1 << 20], chunk_size=chunk)
def hwm():  # VmHWM (kB): the peak resident set since the last reset
    with open("/proc/self/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM")).split()[1])
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak, so that compile-time memory does not hide the pass
base = hwm()
fastloss.score("sigmoid_binary_cross_entropy", xs, ys, out=o, chunk_size=chunk)
print(json.dumps({"base_mb": base / 1024, "peak_mb": hwm() / 1024}))
"""


def bench_memory(paths, d, n, chunk):
    res = {}
    for rows in (n // 4, n):
        p = subprocess.run([sys.executable, "-c", _MEM, paths["x"], paths["y"],
                            os.path.join(d, "om.npy"), str(chunk), str(rows)],
                           capture_output=True, text=True, check=True)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        res[rows] = {**r, "growth_mb": r["peak_mb"] - r["base_mb"]}
    return {"chunk_rows": chunk, "chunk_mb": 4 * chunk / 2 ** 20, "by_rows": res}


def bench_chunks(paths, d, n, chunks, repeat):
    import fastloss

    x, y = np.load(paths["x"], mmap_mode="r"), np.load(paths["y"], mmap_mode="r")
    o = np.lib.format.open_memmap(os.path.join(d, "o.npy"), "w+", np.float32, (n,))
    fs = {c: (lambda c=c: fastloss.score("sigmoid_binary_cross_entropy", x, y, out=o,
                                         chunk_size=c)) for c in chunks}
    fs["numpy_add"] = lambda: [np.add(x[lo:lo + 1 << 21], y[lo:lo + 1 << 21],
                                      out=o[lo:lo + 1 << 21]) for lo in range(0, n, 1 << 21)]
    for f in fs.values():
        f()
    t = round_robin(fs, repeat)
    return {str(k): n / v for k, v in t.items()}


def plot(chunks_res, png, label):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cs = sorted(int(k) for k in chunks_res if k != "numpy_add")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.semilogx(cs, [chunks_res[str(c)] / 1e9 for c in cs], "o-",
                label="fastloss.score, sigmoid BCE -> memmap")
    ax.axhline(chunks_res["numpy_add"] / 1e9, color="gray", ls="--",
               label="np.add(a, b, out=c), 2^21-row chunks")
    ax.set_xlabel("chunk size (rows)")
    ax.set_ylabel("G rows/s")
    ax.set_title(label.replace(", 2", ",\n2", 1) if len(label) > 70 else label, fontsize=8)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=float, default=2e8)
    p.add_argument("--dir", default=os.environ.get("FASTLOSS_BENCH_DIR", "/tmp/fastloss-scoring"))
    p.add_argument("--chunk", type=int, default=1 << 21)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--cases", default="npy,parquet,dask,memory,chunks")
    p.add_argument("--chunks", default=",".join(str(1 << k) for k in range(14, 25, 2)))
    p.add_argument("--png", default=os.path.join(os.path.dirname(__file__), "..", "docs",
                                                 "scoring_throughput.png"))
    p.add_argument("--json", help="write the results here too")
    p.add_argument("--note", default="", help="prefix of the picture's title")
    a = p.parse_args(argv)
    n = int(a.rows)
    os.makedirs(a.dir, exist_ok=True)
    import numba

    import fastloss._cpu  # noqa: F401  (fastloss's threading layer, before Numba's pool starts)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    res = {"machine": machine(), "date": when, "rows": n, "chunk": a.chunk,
           "numba_threads": numba.get_num_threads()}
    paths = make_npy(a.dir, n)
    cases = a.cases.split(",")
    if "npy" in cases:
        res["npy"] = bench_npy(paths, a.dir, n, a.chunk, a.repeat)
        print(json.dumps({"npy": res["npy"]}, indent=1), flush=True)
    if "parquet" in cases:
        res["parquet"] = bench_parquet(make_parquet(a.dir, n, paths), n, a.chunk, a.repeat)
        print(json.dumps({"parquet": res["parquet"]}, indent=1), flush=True)
    if "dask" in cases:
        res["dask"] = bench_dask(paths, n, max(a.chunk, 1 << 22), a.repeat)
        print(json.dumps({"dask": res["dask"]}, indent=1), flush=True)
    if "memory" in cases:
        res["memory"] = bench_memory(paths, a.dir, n, a.chunk)
        print(json.dumps({"memory": res["memory"]}, indent=1), flush=True)
    if "chunks" in cases:
        cs = [int(c) for c in a.chunks.split(",")]
        res["chunks"] = bench_chunks(paths, a.dir, n, cs, a.repeat)
        plot(res["chunks"], a.png, f"{a.note}{res['machine']}, {res['numba_threads']} threads, "
                                   f"{n:.3g} float32 rows, {when}")
        res["png"] = os.path.abspath(a.png)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    print(json.dumps({k: res[k] for k in ("machine", "date", "rows")}))
    return res


if __name__ == "__main__":
    main()
