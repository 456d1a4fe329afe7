"""Threading policy: fork, concurrent Python threads, determinism, n_threads, threadpoolctl.

The per-layer checks run in subprocesses (Numba picks its threading layer once per
process), with ``FASTLOSS_PARALLEL_MIN=0`` so that tiny inputs run the parallel kernels.
"""
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastloss
import fastloss._threads as T

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, env=None, timeout=600):
    e = dict(os.environ)
    e.pop("NUMBA_THREADING_LAYER", None)
    e.pop("OMP_WAIT_POLICY", None)
    e.update(env or {})
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e,
                          capture_output=True, text=True, timeout=timeout)


# the same inputs in every process: one loss per kernel family, parallel kernels (the
# subprocess sets FASTLOSS_PARALLEL_MIN=0), results as hex digests of their bytes
_CASES = """
import hashlib, numpy as np, fastloss as fl
def cases():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(20_000); y = rng.standard_normal(20_000)
    xf = x.astype(np.float32); yf = (y > 0).astype(np.float32)
    z = rng.standard_normal((64, 30)); lab = rng.integers(0, 30, 64)
    zt = rng.standard_normal((3, 12, 6)); lt = rng.integers(1, 6, (3, 4))
    il = np.full(3, 12); ll = np.full(3, 4)
    vg = fl.value_and_grad
    return {
        "huber_f64": lambda nt=None: vg(fl.huber)(x, y, reduction="sum", n_threads=nt),
        "bce_f32": lambda nt=None: vg(fl.sigmoid_binary_cross_entropy)(xf, yf, n_threads=nt),
        "ice_f64": lambda nt=None: vg(fl.softmax_cross_entropy_with_integer_labels)(
            z, lab, reduction="sum", n_threads=nt),
        "ctc_f64": lambda nt=None: vg(fl.ctc_loss)(zt, lt, il, ll, n_threads=nt),
    }
def digest(r):
    h = hashlib.sha256()
    for a in (r if isinstance(r, tuple) else (r,)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()
"""

_LAYER_SCRIPT = _CASES + """
import json, sys, threading, multiprocessing as mp
import numba
C = cases()
try:
    ref = {k: digest(f()) for k, f in C.items()}        # parallel kernels
except ValueError as e:
    if "threading layer" in str(e):
        print(json.dumps({"skip": str(e)})); sys.exit(0)
    raise
out = {"layer": numba.threading_layer(), "ref": ref}
out["serial"] = {k: digest(f(1)) for k, f in C.items()}  # serial twins
x = np.random.default_rng(3).standard_normal(70_000)
s = [fl.huber(x, np.zeros_like(x), reduction="sum") for _ in range(50)]
out["repeat_distinct"] = len(set(v.tobytes() for v in map(np.float64, s)))
res = {}
def work(i):
    res[i] = [digest(f()) for _ in range(3) for f in C.values()]
ts = [threading.Thread(target=work, args=(i,)) for i in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
out["threads_ok"] = all(r == [ref[k] for _ in range(3) for k in C] for r in res.values()) \\
    and len(res) == 8
def child(conn):
    conn.send({k: digest(f()) for k, f in cases().items()}); conn.close()
ctx = mp.get_context("fork")
a, b = ctx.Pipe(False)
p = ctx.Process(target=child, args=(b,)); p.start()
out["fork"] = a.recv() if a.poll(300) else None
p.join(300)
out["fork_exit"] = p.exitcode
print(json.dumps(out))
"""


def _layer_run(layer):
    env = {"FASTLOSS_PARALLEL_MIN": "0"}
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    r = _run(_LAYER_SCRIPT, env)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if "skip" in out:
        pytest.skip(f"threading layer {layer!r} does not load: {out['skip'][:200]}")
    return out


@pytest.fixture(scope="module", params=["default", "tbb", "omp", "workqueue"])
def layer_result(request):
    return request.param, _layer_run(request.param)


def test_layer_is_the_one_asked_for(layer_result):
    layer, out = layer_result
    if layer != "default":
        assert out["layer"] == layer
    else:
        assert out["layer"] in ("tbb", "omp", "workqueue")


def test_fork_child_after_parallel_work_computes_the_parents_results(layer_result):
    _, out = layer_result
    assert out["fork_exit"] == 0
    assert out["fork"] == out["ref"]


def test_eight_python_threads_match_serial_calls_bit_for_bit(layer_result):
    _, out = layer_result
    assert out["threads_ok"]


def test_fifty_repeated_reductions_are_bitwise_equal(layer_result):
    _, out = layer_result
    assert out["repeat_distinct"] == 1


def test_serial_twins_agree_with_parallel_kernels_bitwise(layer_result):
    # same blocks, same fixed order: the serial twin gives the parallel kernel's bits
    _, out = layer_result
    assert out["serial"] == out["ref"]


def test_default_layer_is_tbb_when_the_tbb_wheel_is_installed():
    from fastloss._cpu import _tbb_paths
    if not _tbb_paths():
        pytest.skip("no tbb distribution installed")
    r = _run("""
        import numpy as np, fastloss, numba
        x = np.ones(100_000)
        fastloss.huber(x, x)              # a parallel kernel: Numba's pool starts
        print(numba.threading_layer())
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-1] == "tbb"


def test_openmp_gets_a_passive_wait_policy_unless_the_user_set_one():
    code = """
        import os, numpy as np, fastloss, numba
        x = np.ones(100_000)
        try:
            fastloss.huber(x, x)
        except ValueError:
            print("skip"); raise SystemExit
        print(numba.threading_layer(), os.environ.get("OMP_WAIT_POLICY"))
    """
    r = _run(code, {"NUMBA_THREADING_LAYER": "omp"})
    assert r.returncode == 0, r.stderr[-2000:]
    if r.stdout.split()[-1] == "skip":
        pytest.skip("omp layer does not load")
    assert r.stdout.split()[-2:] == ["omp", "PASSIVE"]
    r = _run(code, {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": "ACTIVE"})
    assert r.stdout.split()[-2:] == ["omp", "ACTIVE"]


def test_import_fastloss_imports_neither_numba_nor_threadpoolctl():
    r = _run("""
        import sys, fastloss
        print("numba" in sys.modules, "threadpoolctl" in sys.modules)
    """)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------- n_threads in-process
def _huber(n, **kw):
    x = np.linspace(-3, 3, n)
    return fastloss.huber(x, np.zeros(n), reduction="sum", **kw)


@pytest.mark.parametrize("bad", [1.5, True, "2", np.float64(2.0)])
def test_n_threads_of_the_wrong_type_raises_type_error(bad):
    z = np.zeros((4, 3))
    lab = np.zeros(4, np.int64)
    with pytest.raises(TypeError, match="huber: n_threads"):
        _huber(10, n_threads=bad)
    with pytest.raises(TypeError, match="softmax_cross_entropy_with_integer_labels: n_threads"):
        fastloss.softmax_cross_entropy_with_integer_labels(z, lab, n_threads=bad)
    with pytest.raises(TypeError, match="ctc_loss: n_threads"):
        fastloss.ctc_loss(np.zeros((1, 4, 3)), [[1]], [4], [1], n_threads=bad)


def test_n_threads_zero_raises_value_error():
    with pytest.raises(ValueError, match="huber: n_threads must be >= 1"):
        _huber(10, n_threads=0)
    with pytest.raises(ValueError, match="ctc_loss: n_threads must be >= 1"):
        fastloss.ctc_loss(np.zeros((1, 4, 3)), [[1]], [4], [1], n_threads=0)


def test_n_threads_values_resolve_as_scikit_learn():
    size = T.pool_size()
    assert T.resolve(1, "f") == 1
    assert T.resolve(np.int32(1), "f") == 1
    assert T.resolve(-1, "f") == T.default_threads()
    assert T.resolve(-size - 5, "f") == 1          # never fewer than one
    assert T.resolve(10 * size, "f") == size       # capped at Numba's pool
    assert T.resolve(None, "f") is None            # nothing set: Numba's own count


def test_set_num_threads_and_threads_context():
    size = T.pool_size()
    try:
        fastloss.set_num_threads(1)
        assert fastloss.get_num_threads() == 1
        assert T.resolve(None, "f") == 1
        with fastloss.threads(-1):                 # counts back from the current default
            assert fastloss.get_num_threads() == 1
        fastloss.set_num_threads(-1)
        assert fastloss.get_num_threads() == size
        seen = {}
        with fastloss.threads(1):
            t = threading.Thread(target=lambda: seen.setdefault("other", T.resolve(None, "f")))
            t.start()
            t.join()
            assert T.resolve(None, "f") == 1
            with fastloss.threads(None):
                assert T.resolve(None, "f") == 1
        assert seen["other"] == size                 # thread-local: the other thread kept it
        assert T.resolve(None, "f") == size
    finally:
        fastloss.set_num_threads(None)
    assert T.resolve(None, "f") is None
    with pytest.raises(ValueError, match="fastloss.set_num_threads: n"):
        fastloss.set_num_threads(0)
    with pytest.raises(TypeError, match="fastloss.threads: n"):
        with fastloss.threads(2.0):
            pass


def test_losses_pass_n_threads_and_size_to_the_launcher(monkeypatch):
    import fastloss._cpu as cpu

    calls = []
    real = cpu.launch

    def spy(kernel, *args, parallel=True, n_threads=None):
        calls.append((parallel, n_threads))
        return real(kernel, *args, parallel=parallel, n_threads=n_threads)

    monkeypatch.setattr(cpu, "launch", spy)
    monkeypatch.setitem(cpu.PARALLEL_MIN, "elementwise", 50)
    monkeypatch.setitem(cpu.PARALLEL_MIN, "rowwise", 50)
    monkeypatch.setitem(cpu.PARALLEL_MIN, "ctc", 50)
    _huber(49)
    _huber(50, n_threads=-1)
    _huber(50, n_threads=1)
    z = np.zeros((10, 5))
    lab = np.zeros(10, np.int64)
    fastloss.softmax_cross_entropy_with_integer_labels(z[:9], lab[:9])
    fastloss.softmax_cross_entropy_with_integer_labels(z, lab, n_threads=99)
    zt = np.zeros((2, 5, 5))
    fastloss.ctc_loss(zt[:1], [[1]], [5], [1])
    fastloss.ctc_loss(zt, [[1], [2]], [5, 5], [1, 1], n_threads=1)
    size = T.pool_size()
    d = T.default_threads()
    assert calls == [(False, None), (d > 1, d), (False, 1),
                     (False, None), (size > 1, size), (False, None), (False, 1)]


def test_launch_runs_with_the_requested_numba_thread_count():
    # a real probe: which Numba threads ran the iterations, and the count the kernel saw
    import numba
    from numba import njit, prange

    import fastloss._cpu as cpu

    @njit(parallel=True)
    def probe(ids):
        n = numba.get_num_threads()
        for i in prange(ids.shape[0]):
            ids[i] = numba.get_thread_id()
        return n

    size = T.pool_size()
    ids = np.full(4096, -1, np.int64)
    for k in range(1, size + 1):
        ids[:] = -1
        seen = cpu.launch(probe, ids, parallel=True, n_threads=k)
        if k == 1:   # one thread: the serial twin runs on the calling thread
            assert (ids == 0).all()
        else:
            assert seen == k
            assert ids.min() >= 0 and ids.max() < k
    before = numba.get_num_threads()
    cpu.launch(probe, ids, parallel=True, n_threads=1)
    cpu.launch(probe, ids, parallel=True, n_threads=size)
    assert numba.get_num_threads() == before


def test_thresholds_exist_per_family_and_pick_the_serial_kernel_below():
    import fastloss._cpu as cpu

    assert set(cpu.PARALLEL_MIN) == {"elementwise", "rowwise", "ctc"}
    if os.environ.get("FASTLOSS_PARALLEL_MIN"):
        pytest.skip("thresholds overridden by FASTLOSS_PARALLEL_MIN")
    for fam, m in cpu.PARALLEL_MIN.items():
        assert not cpu.want_parallel(fam, m - 1)
        assert not cpu.want_parallel(fam, m, 1)
        assert cpu.want_parallel(fam, m, 2)


def test_serial_and_parallel_kernels_agree_in_process(monkeypatch):
    import fastloss._cpu as cpu

    rng = np.random.default_rng(5)
    x = rng.standard_normal(5000)
    y = rng.standard_normal(5000)
    z = rng.standard_normal((40, 7))
    lab = rng.integers(0, 7, 40)
    vg = fastloss.value_and_grad

    def results():
        return [vg(fastloss.huber)(x, y, reduction="sum"),
                vg(fastloss.softmax_cross_entropy_with_integer_labels)(z, lab)]

    monkeypatch.setattr(cpu, "PARALLEL_MIN", dict.fromkeys(cpu.PARALLEL_MIN, 0))
    par = results()
    monkeypatch.setattr(cpu, "PARALLEL_MIN", dict.fromkeys(cpu.PARALLEL_MIN, 1 << 62))
    ser = results()
    for (vp, gp), (vs, gs) in zip(par, ser):
        assert vp.tobytes() == vs.tobytes()
        np.testing.assert_array_equal(gp, gs)
    # and against an independent float64 reference
    r = np.abs(x - y)
    np.testing.assert_allclose(par[0][0], np.sum(np.where(r <= 1, 0.5 * r * r, r - 0.5)),
                               rtol=1e-12)


# ------------------------------------------------------------------------ threadpoolctl
@pytest.mark.parametrize("order", ["fastloss-first", "threadpoolctl-first"])
def test_threadpoolctl_sees_and_limits_fastloss(order):
    pytest.importorskip("threadpoolctl")
    imports = ("import fastloss, threadpoolctl" if order == "fastloss-first"
               else "import threadpoolctl, fastloss")
    r = _run(imports + """
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
import fastloss._threads as T
info = [i for i in threadpool_info() if i["user_api"] == "fastloss"]
assert len(info) == 1, info
assert info[0]["num_threads"] == T.default_threads()
with threadpool_limits(1):
    assert fastloss.get_num_threads() == 1
    assert T.resolve(None, "f") == 1
    v = fastloss.huber(np.ones(10), np.zeros(10))
with threadpool_limits(1, user_api="fastloss"):
    assert fastloss.get_num_threads() == 1
with threadpool_limits(1, user_api="blas"):
    assert fastloss.get_num_threads() == T.pool_size()
assert T.resolve(None, "f") is None    # back to "nothing set"
print("ok")
""")
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-1] == "ok"


def test_serial_twins_are_cached_across_processes():
    code = """
        import numpy as np, fastloss, fastloss._cpu as cpu
        from fastloss._elementwise import cpu_kernel_for
        from fastloss._math.spec import ELEMENTWISE
        fastloss.huber(np.ones(10), np.zeros(10))       # below the threshold: the twin
        tw = cpu.serial(cpu_kernel_for(ELEMENTWISE["huber"], np.dtype(np.float64)))
        assert tw is not cpu_kernel_for(ELEMENTWISE["huber"], np.dtype(np.float64))
        print(sum(tw.stats.cache_hits.values()))
    """
    first = _run(code)
    assert first.returncode == 0, first.stderr[-2000:]
    second = _run(code)
    assert second.returncode == 0, second.stderr[-2000:]
    assert int(second.stdout.split()[-1]) >= 1
