"""float64 against float32 and PyTorch eager: value+gradient of the transcendental losses.

    python benchmarks/float64.py [--sizes 1e3,1e4,1e5,1e6,1e7,1e8] [--repeat 9] [--threads N]

For every loss and size, in one process and round robin (each callable timed in turn,
``--repeat`` rounds, medians), three calls of the same value+gradient work:

* ``fl64``: ``fastloss.value_and_grad(loss)(pred, target)`` on float64 arrays (the plain
  call: the gradient is allocated by the call);
* ``fl32``: the same on float32 copies;
* ``torch64``: PyTorch eager on float64 tensors (forward, ``backward()``).

Printed per row: the three median times, ``torch/fl64`` (> 1: fastloss float64 is faster)
and ``fl64/fl32`` (the cost of float64 over float32).  Sizes count elements; the softmax
cross-entropy uses rows of 100 classes (size / 100 rows, integer labels).  Kernels are
compiled (or loaded from the cache) before timing.  Memory: about 5 float64 arrays of
the largest size for fastloss plus PyTorch's temporaries (1e8: ~8 GB).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

C = 100  # classes per row of the softmax case


def _cases():
    import torch.nn.functional as F

    def ew(rng, n, kind):
        x = rng.standard_normal(n) * 3
        if kind == "01":
            y = (rng.random(n) < 0.5).astype(np.float64)
        elif kind == "pm1":
            y = np.where(rng.random(n) < 0.5, -1.0, 1.0)
        elif kind == "count":
            x = rng.standard_normal(n)
            y = rng.poisson(2.0, n).astype(np.float64)
        else:
            y = rng.standard_normal(n)
        return x, y

    def t_bce(x, y):
        return F.binary_cross_entropy_with_logits(x, y)

    def t_logistic(x, y):
        return F.softplus(-y * x).mean()

    def t_log_cosh(x, y):
        d = x - y
        return (d + F.softplus(-2.0 * d) - np.log(2.0)).mean()

    def t_poisson(x, y):
        return F.poisson_nll_loss(x, y, log_input=True)

    def t_sce(x, y):
        return F.cross_entropy(x, y)

    return [
        ("sigmoid_binary_cross_entropy", lambda r, n: ew(r, n, "01"), t_bce),
        ("logistic", lambda r, n: ew(r, n, "pm1"), t_logistic),
        ("log_cosh", lambda r, n: ew(r, n, "real"), t_log_cosh),
        ("poisson_nll", lambda r, n: ew(r, n, "count"), t_poisson),
        ("softmax_cross_entropy_with_integer_labels",
         lambda r, n: (r.standard_normal((max(n // C, 1), C)) * 3,
                       r.integers(0, C, max(n // C, 1))), t_sce),
    ]


def _round_robin(fs, repeat):
    ts = {k: [] for k in fs}
    for _ in range(repeat):
        for k, f in fs.items():
            t = time.perf_counter()
            f()
            ts[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in ts.items()}


def _fmt(s):
    return f"{s * 1e3:10.3f}" if s >= 1e-3 else f"{s * 1e6:8.1f}µs"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1e3,1e4,1e5,1e6,1e7,1e8")
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--loss", default=None, help="only this loss")
    args = ap.parse_args(argv)

    import numba
    import torch

    import fastloss
    from fastloss.bench import machine_header

    import fastloss._cpu  # noqa: F401  (fastloss's threading layer, before Numba's pool starts)
    if args.threads:
        numba.set_num_threads(args.threads)
    torch.set_num_threads(numba.get_num_threads())
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    print(machine_header())
    print(f"threads: numba {numba.get_num_threads()}, torch {torch.get_num_threads()} "
          f"(torch {torch.__version__}); median of {args.repeat}, round robin; "
          "times in ms unless marked")
    head = (f"{'loss':<42}{'n':>10}{'fl64':>11}{'fl32':>11}{'torch64':>11}"
            f"{'torch/fl64':>11}{'fl64/fl32':>10}")
    print(head)
    print("-" * len(head))
    rng = np.random.default_rng(0)
    rows = []
    for name, make, tfn in _cases():
        if args.loss and name != args.loss:
            continue
        vg = fastloss.value_and_grad(getattr(fastloss, name))
        for n in sizes:
            x64, y64 = make(rng, n)
            x32 = x64.astype(np.float32)
            y32 = y64.astype(np.float32) if y64.dtype.kind == "f" else y64
            xt = torch.from_numpy(x64).requires_grad_(True)
            yt = torch.from_numpy(y64)

            def torch_vg():
                v = tfn(xt, yt)
                v.backward()
                xt.grad = None
                return v

            fs = {"fl64": lambda: vg(x64, y64), "fl32": lambda: vg(x32, y32),
                  "torch64": torch_vg}
            for f in fs.values():   # compile / load kernels, warm caches and pools
                f()
                f()
            v64 = float(vg(x64, y64)[0])
            vt = float(torch_vg().detach())
            assert abs(v64 - vt) <= 1e-9 * max(1.0, abs(vt)), (name, n, v64, vt)
            rep = args.repeat if n < 10**8 else max(3, args.repeat // 3)
            t = _round_robin(fs, rep)
            rows.append((name, n, t))
            print(f"{name:<42}{n:>10.0e}{_fmt(t['fl64'])}{_fmt(t['fl32'])}"
                  f"{_fmt(t['torch64'])}{t['torch64'] / t['fl64']:>11.2f}"
                  f"{t['fl64'] / t['fl32']:>10.2f}", flush=True)
            x64 = y64 = x32 = y32 = xt = yt = fs = None   # free before the next size
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
