"""Every CUDA kernel compiles for real hardware (sm_80, sm_90) without a GPU, and caches.

Runs in the normal (CPU) pytest process; skipped when numba-cuda's NVVM or ptxas is
missing (``pip install "numba-cuda[cu12]"``) or under the CUDA simulator.  The table of
registers and spills in docs/cuda.md comes from the same code:
``python -m fastloss._cuda.ptx --markdown docs/cuda.md``.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ptx = pytest.importorskip("fastloss._cuda.ptx")

pytestmark = pytest.mark.skipif(
    not (ptx.nvvm_available() and ptx.ptxas_path()),
    reason="numba-cuda's NVVM or ptxas is missing (pip install 'numba-cuda[cu12]')")


@pytest.fixture(scope="module")
def rows():
    # every kernel x {float32, float64} x {sm_80, sm_90}; two processes (CI has 2 cores)
    return ptx.report(jobs=2)


def _expected():
    from fastloss._math.spec import ELEMENTWISE

    names = {("elementwise", n) for n in ELEMENTWISE}
    from fastloss._math.spec import ELEMENTWISE3
    names |= {("elementwise", n) for n in ELEMENTWISE3}
    names |= {("elementwise", t) for s in ELEMENTWISE.values() for t in s.per_element.values()}
    names |= {("rowwise", tag) for _, tag, _ in ptx._row_variants()}
    names |= {("ctc", n) for n in ("lse", "alpha_beta", "grad", "finish")}
    names |= {("reduce", n) for n in ("sum", "finish")}
    names |= {("labels", n) for n in ("rows", "ctc", "class_weight")}
    names |= {("layout", "gather")}
    out = {(f, n, dt, arch) for f, n in names for dt in ptx.DTYPES
           for arch in ("sm_80", "sm_90")}
    # one metric-learning kernel, float64 (float32 embeddings are widened on the device)
    return out | {("metric", "pass", "float64", arch) for arch in ("sm_80", "sm_90")}


def test_every_kernel_compiles_and_assembles(rows):
    got = {(r["family"], r["kernel"], r["dtype"], r["arch"]) for r in rows}
    assert got == _expected()
    # the row-wise list covers the parameter variants that pick another row math
    tags = {r["kernel"] for r in rows if r["family"] == "rowwise"}
    assert {"sce", "ice", "kl", "klt", "mh", "mhcs", "trip", "trips"} <= tags
    for r in rows:
        assert 0 < r["regs"] <= 255, r


def test_no_spills_in_elementwise_and_rowwise(rows):
    spills = [r for r in rows if r["family"] in ("elementwise", "rowwise")
              and (r["spill_st"] or r["spill_ld"])]
    assert not spills, spills


def test_ptxas_parser_reads_spills():
    # a kernel with a large local array indexed at run time must report local memory
    # (stack) through the same parser: the parser is not blind
    from numba import cuda, float64, int64

    def big(out, k):
        a = cuda.local.array(512, float64)
        for i in range(512):
            a[i] = i * 1.5
        out[0] = a[k % 512]

    sig = (float64[::1], int64)
    text = ptx.compile_ptx(big, sig, archs=((9, 0),))[(9, 0)]
    info = ptx.ptxas(text, "sm_90")
    assert info["stack"] >= 512 * 8
    assert info["regs"] > 0


def _probe(which, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    code = ("import json, fastloss._cuda.ptx as p; "
            f"print(json.dumps(p.cache_probe({which!r})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("which", ["elementwise", "rowwise", "ctc"])
def test_fresh_process_loads_kernel_from_disk_cache(which, tmp_path):
    first = _probe(which, tmp_path)
    second = _probe(which, tmp_path)
    assert first == {"hits": 0, "misses": 1, "target": True}
    assert second == {"hits": 1, "misses": 0, "target": True}


def test_launch_rules_follow_device_properties():
    from fastloss._cuda import runtime

    h100 = (132, 2048)
    a100 = (108, 2048)
    tpb = runtime.TPB
    assert runtime.blocks_elementwise(10 ** 9, h100) == 4 * 132 * (2048 // tpb)
    assert runtime.blocks_elementwise(10 ** 9, a100) == 4 * 108 * (2048 // tpb)
    assert runtime.blocks_elementwise(1000, h100) == -(-1000 // tpb)
    assert runtime.blocks_elementwise(0, h100) == 1
    assert runtime.blocks_rowwise(7, h100) == 7
    assert runtime.blocks_rowwise(10 ** 7, (16, 1536)) == 4 * 16 * (1536 // tpb)
    assert np.log2(tpb) == int(np.log2(tpb))   # the tree reductions need a power of two


def test_cupy_emm_plugin_draws_from_cupys_pool(monkeypatch):
    # a stand-in CuPy (not installed here): the plugin allocates through cupy.cuda.alloc
    # and returns the block to it when Numba drops the pointer
    import types

    from numba import cuda

    from fastloss._cuda.runtime import CuPyEMMPlugin
    freed, calls = [], []

    class Block:
        def __init__(self, size):
            self.ptr, self.size = 0x7000, size
            calls.append(size)

        def __del__(self):
            freed.append(self.size)

    cupy = types.ModuleType("cupy")
    cupy.cuda = types.SimpleNamespace(alloc=Block, runtime=types.SimpleNamespace(
        memGetInfo=lambda: (5, 9)))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    plugin = CuPyEMMPlugin.make()
    assert issubclass(plugin, cuda.HostOnlyCUDAMemoryManager)
    mgr = plugin(context=object())
    mp = mgr.memalloc(1024)
    assert calls == [1024] and int(mp.device_pointer) == 0x7000 and mp.size == 1024
    assert mgr.get_memory_info().total == 9 and mgr.interface_version == 1
    mp.free()
    assert freed == [1024]
