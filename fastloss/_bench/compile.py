"""Cold compile time per kernel family: each case in a fresh process, empty Numba cache.

Each case runs in a new Python process with ``NUMBA_CACHE_DIR`` pointing at a fresh, empty
directory (so every kernel it needs compiles), imports fastloss and Numba (timed apart),
then times its first call (compile + run) and a second call (run only); the compile time
is the difference.  A second process on the now filled cache times the first call again
(``warm_first_s``: loading the kernel from disk).  Rounds alternate over the cases (round
robin), so a drift of the machine's load reaches every case alike; medians are reported.

Cases (float32 unless said; "small" inputs run the serial kernel, larger ones the parallel
kernel, see ``fastloss._cpu.PARALLEL_MIN``):

* ``ew_f32`` / ``ew_f32_par``: ``value_and_grad(huber)``, n = 1 000 / 2**17;
* ``row_f32``: ``value_and_grad(softmax_cross_entropy_with_integer_labels)``, 64 x 10;
* ``ctc_f32`` / ``ctc_f64``: ``value_and_grad(ctc_loss)``, (T, N, C, L) = (12, 2, 6, 3);
* ``ctc_f32_par``: the same at (50, 8, 20, 10) (the parallel kernel).

Used by ``python -m fastloss bench --family compile`` and ``benchmarks/compile_time.py``.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

CASES = {
    "ew_f32": ("huber", "float32", "n=1000"),
    "ew_f32_par": ("huber", "float32", "n=131072"),
    "row_f32": ("softmax_cross_entropy_with_integer_labels", "float32", "64x10"),
    "ctc_f32": ("ctc_loss", "float32", "12,2,6,3"),
    "ctc_f64": ("ctc_loss", "float64", "12,2,6,3"),
    "ctc_f32_par": ("ctc_loss", "float32", "50,8,20,10"),
}

_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, numba, fastloss
from fastloss import _cpu  # noqa: F401  (the threading-layer set-up, timed with the import)
t_import = time.perf_counter() - t0
loss, dt, size = sys.argv[1], np.dtype(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
if loss == "ctc_loss":
    T, N, C, L = map(int, size.split(","))
    args = (rng.standard_normal((N, T, C)).astype(dt), rng.integers(1, C, (N, L)),
            np.full(N, T), np.full(N, L))
elif size.startswith("n="):
    n = int(size[2:])
    args = (rng.standard_normal(n).astype(dt), rng.standard_normal(n).astype(dt))
else:
    r, c = map(int, size.split("x"))
    args = (rng.standard_normal((r, c)).astype(dt), rng.integers(0, c, r))
f = fastloss.value_and_grad(fastloss.LOSSES[loss].func)
t0 = time.perf_counter(); f(*args); first = time.perf_counter() - t0
t0 = time.perf_counter(); f(*args); second = time.perf_counter() - t0
print(json.dumps({"import_s": t_import, "first_s": first, "second_s": second}))
"""


def run_case(name, cache_dir, tree=None):
    """One child process on ``cache_dir``: {"import_s", "first_s", "second_s"}; ``tree``: a
    directory put first on the child's ``PYTHONPATH`` (another copy of fastloss)."""
    loss, dt, size = CASES[name]
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    if tree:
        env["PYTHONPATH"] = os.pathsep.join([tree, *filter(None, [env.get("PYTHONPATH")])])
    p = subprocess.run([sys.executable, "-c", _CHILD, loss, dt, size], env=env,
                       capture_output=True, text=True, timeout=1800,
                       cwd=tree or None)
    if p.returncode:
        raise RuntimeError(f"{name}: child failed:\n{p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def measure(names, rounds=1, progress=None, trees=None):
    """Rows ``{"case", "tree", "loss", "dtype", "size", "compile_s", "cold_first_s",
    "warm_first_s", "import_s", "samples"}`` (medians over ``rounds``; the cases, and the
    ``trees`` ({label: directory holding a fastloss package}, default the imported one),
    alternated round robin)."""
    trees = trees or {"": None}
    keys = [(n, t) for n in names for t in trees]
    samples = {k: [] for k in keys}
    for _ in range(rounds):
        for n, t in keys:
            with tempfile.TemporaryDirectory(prefix="fastloss-compile-") as d:
                cold = run_case(n, d, trees[t])
                warm = run_case(n, d, trees[t])
            samples[n, t].append((cold, warm))
            if progress:
                progress(n if not t else f"{n} [{t}]", cold, warm)
    rows = []
    for n, t in keys:
        sm = samples[n, t]
        med = lambda f: statistics.median(f(c, w) for c, w in sm)  # noqa: E731
        loss, dt, size = CASES[n]
        rows.append({"family": "compile", "case": n, "tree": t, "loss": loss, "dtype": dt,
                     "size": size,
                     "compile_s": med(lambda c, w: c["first_s"] - c["second_s"]),
                     "compile_min_s": min(c["first_s"] - c["second_s"] for c, w in sm),
                     "cold_first_s": med(lambda c, w: c["first_s"]),
                     "warm_first_s": med(lambda c, w: w["first_s"]),
                     "import_s": med(lambda c, w: c["import_s"]),
                     "samples": [round(c["first_s"] - c["second_s"], 3) for c, w in sm]})
    return rows
