"""fastloss.torch forward+backward against PyTorch's own loss (CPU; CUDA with --device cuda).

Cases: Huber (``huber`` vs ``F.huber_loss``), sigmoid BCE with logits (``sigmoid_binary_cross_entropy``
vs ``F.binary_cross_entropy_with_logits``) and softmax cross-entropy with integer labels
(``softmax_cross_entropy_with_integer_labels`` vs ``F.cross_entropy``, 100 classes), each at
the given element counts.  One timed call is ``loss(pred, target).backward()`` on a leaf
that requires grad (``.grad`` cleared between calls).  The two implementations alternate
round robin after a warm-up call each (compilation excluded); medians and the ratio printed,
JSON with all samples written by ``--json``.

    python benchmarks/torch_bridge.py                         # 1e4, 1e6, 1e7 float32
    python benchmarks/torch_bridge.py --sizes 1e4 1e5 --repeats 5   # a quick look
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import fastloss.torch as flt

CLASSES = 100


def make(case, n, dtype, device, rng):
    if case == "softmax_ce":
        rows = max(1, n // CLASSES)
        x = torch.tensor(rng.normal(size=(rows, CLASSES)), dtype=dtype, device=device)
        y = torch.tensor(rng.integers(0, CLASSES, rows), device=device)
    else:
        x = torch.tensor(rng.normal(size=n) * 2, dtype=dtype, device=device)
        if case == "huber":
            y = torch.tensor(rng.normal(size=n), dtype=dtype, device=device)
        else:
            y = torch.tensor((rng.random(n) < 0.3).astype(np.float64), dtype=dtype, device=device)
    return x.requires_grad_(), y


def impls(case, dtype, device):
    if case == "huber":
        return {"fastloss.torch": lambda x, y: flt.huber(x, y, delta=1.0),
                "torch": lambda x, y: F.huber_loss(x, y, delta=1.0)}
    if case == "sigmoid_bce":
        pw = torch.tensor(2.0, dtype=dtype, device=device)
        return {"fastloss.torch": lambda x, y: flt.sigmoid_binary_cross_entropy(x, y,
                                                                               pos_weight=2.0),
                "torch": lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw)}
    return {"fastloss.torch": lambda x, y: flt.softmax_cross_entropy_with_integer_labels(x, y),
            "torch": lambda x, y: F.cross_entropy(x, y)}


def run(sizes, repeats, dtype, device, cases):
    rng = np.random.default_rng(0)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    rows = []
    for case in cases:
        for n in sizes:
            x, y = make(case, n, dtype, device, rng)
            fs = impls(case, dtype, device)
            times = {k: [] for k in fs}
            for f in fs.values():               # warm-up (compiles fastloss's kernels)
                f(x, y).backward()
                x.grad = None
            for _ in range(repeats):
                for k, f in fs.items():         # round robin
                    sync()
                    t0 = time.perf_counter()
                    f(x, y).backward()
                    sync()
                    times[k].append(time.perf_counter() - t0)
                    x.grad = None
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append({"case": case, "elements": int(x.numel()), "dtype": str(dtype),
                         "device": device, "median_s": med, "samples_s": times})
            print(f"{case:12s} {x.numel():>10,d}  fastloss.torch {med['fastloss.torch']*1e3:9.3f} ms"
                  f"   torch {med['torch']*1e3:9.3f} ms   ratio {med['torch']/med['fastloss.torch']:5.2f}x",
                  flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", type=float, default=[1e4, 1e6, 1e7])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--cases", nargs="+", default=["huber", "sigmoid_bce", "softmax_ce"],
                    choices=["huber", "sigmoid_bce", "softmax_ce"])
    ap.add_argument("--json", help="write all samples to this file")
    a = ap.parse_args(argv)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"fastloss threads {__import__('fastloss').get_num_threads()}")
    rows = run([int(s) for s in a.sizes], a.repeats, getattr(torch, a.dtype), a.device, a.cases)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
