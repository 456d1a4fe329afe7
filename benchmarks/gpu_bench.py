"""fastloss CUDA against PyTorch CUDA (and the device's copy bandwidth), on the CPU
benchmark's shapes.  Called by ``benchmarks/gpu.sh``; needs a GPU, PyTorch with CUDA and
CuPy.

    python benchmarks/gpu_bench.py [--quick] [--out DIR] [--repeat 20]

Each case times value + gradient of the reduced loss with CUDA events on one stream
(fastloss with ``device_result=True``: no host copy or synchronization inside the loop;
PyTorch forward + backward), after a warm-up that includes the first-call compile
(reported separately).  Cases and the copy-bandwidth reference (a device-to-device copy of
the same bytes) are timed in turn, round robin, medians over ``--repeat`` rounds.
Prints a short table last and writes ``gpu_bench.json`` and ``gpu_bench.md`` under
``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time


sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _events(torch, fn, inner):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record()
    for _ in range(inner):
        fn()
    e.record()
    e.synchronize()
    return s.elapsed_time(e) / inner * 1e-3   # seconds per call


def _copy_ref(torch, nbytes):
    """A device-to-device copy moving ``nbytes`` (read + write): the bandwidth ceiling."""
    n = max(1, nbytes // 8)
    a = torch.empty(n, dtype=torch.float32, device="cuda").uniform_()
    b = torch.empty_like(a)
    return (lambda: b.copy_(a)), 8 * n


def cases(torch, quick):
    import torch.nn.functional as F

    import fastloss as fl
    vg = fl.value_and_grad
    out = []
    n = 2_000_000 if quick else 20_000_000
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(n, device="cuda", generator=g)
    pm = torch.where(torch.rand(n, device="cuda", generator=g) < 0.5, -1.0, 1.0)
    y01 = (torch.rand(n, device="cuda", generator=g) < 0.5).float()
    yn = torch.randn(n, device="cuda", generator=g)
    ypo = torch.poisson(torch.full((n,), 2.0, device="cuda"), generator=g)

    def ew(name, target, peer):
        f = getattr(fl, name)
        xs = x.clone().requires_grad_(True)

        def ours():
            return vg(f)(x, target, device_result=True)

        def theirs():
            xs.grad = None
            peer(xs, target).backward()
        out.append(dict(family="elementwise", case=f"{name} v+g n={n:.0e}", ours=ours,
                        peer=theirs, nbytes=3 * 4 * n))

    ew("huber", yn, lambda a, t: F.huber_loss(a, t, delta=1.0))
    ew("sigmoid_binary_cross_entropy", y01, F.binary_cross_entropy_with_logits)
    ew("logistic", pm, F.soft_margin_loss)
    ew("log_cosh", yn, lambda a, t: torch.mean(torch.log(torch.cosh(a - t))))
    ew("poisson_nll", ypo, lambda a, t: F.poisson_nll_loss(a, t, log_input=True))

    for N, C in ((32768, 1000), (64, 262144)) if not quick else ((4096, 1000),):
        z = torch.randn(N, C, device="cuda", generator=g)
        k = torch.randint(0, C, (N,), device="cuda", generator=g)
        zs = z.clone().requires_grad_(True)
        f = fl.softmax_cross_entropy_with_integer_labels

        def ours(z=z, k=k, f=f):
            return vg(f)(z, k, device_result=True)

        def theirs(zs=zs, k=k):
            zs.grad = None
            F.cross_entropy(zs, k).backward()
        out.append(dict(family="rowwise", case=f"int softmax CE {N}x{C}", ours=ours,
                        peer=theirs, nbytes=2 * 4 * N * C))
    N, C = (8192, 1000) if not quick else (1024, 1000)
    lp = torch.log_softmax(torch.randn(N, C, device="cuda", generator=g), -1)
    tp = torch.softmax(torch.randn(N, C, device="cuda", generator=g), -1)
    lps = lp.clone().requires_grad_(True)

    def ours_kl():
        return vg(fl.kl_divergence)(lp, tp, device_result=True)

    def theirs_kl():
        lps.grad = None
        F.kl_div(lps, tp, reduction="batchmean").backward()
    out.append(dict(family="rowwise", case=f"KL divergence {N}x{C}", ours=ours_kl,
                    peer=theirs_kl, nbytes=3 * 4 * N * C))

    from fastloss._bench.ctc import QUICK, SHAPES
    for T, N, C, L in (QUICK if quick else SHAPES):
        xl = torch.randn(T, N, C, device="cuda", generator=g)
        lab = torch.randint(1, C, (N, L), device="cuda", generator=g)
        il = torch.full((N,), T, dtype=torch.int64)
        ll = torch.full((N,), L, dtype=torch.int64)
        xs = xl.clone().requires_grad_(True)
        lab_cpu = lab.cpu()

        lab_h, il_h, ll_h = lab_cpu.numpy(), il.numpy(), ll.numpy()

        def ours_ctc(xl=xl, lab=lab_h, il=il_h, ll=ll_h):
            # labels and lengths on the host, as cuDNN's CTC takes them
            return vg(fl.ctc_loss)(xl, lab, il, ll, layout="TNC", device_result=True)

        def theirs_ctc(xs=xs, lab=lab_cpu, il=il, ll=ll):
            xs.grad = None
            lp_ = torch.log_softmax(xs, -1)
            F.ctc_loss(lp_, lab.flatten().int(), il.int(), ll.int(),
                       reduction="mean").backward()
        out.append(dict(family="ctc", case=f"CTC v+g (T,N,C,L)=({T},{N},{C},{L})",
                        ours=ours_ctc, peer=theirs_ctc, nbytes=2 * 4 * T * N * C))
    return out


def check_values(torch):
    """Spot-check fastloss CUDA values against PyTorch CUDA where the definitions agree."""
    import torch.nn.functional as F

    import fastloss as fl
    z = torch.randn(512, 1000, device="cuda")
    k = torch.randint(0, 1000, (512,), device="cuda")
    a = float(fl.softmax_cross_entropy_with_integer_labels(z, k))
    b = float(F.cross_entropy(z, k))
    return {"int softmax CE vs torch (rel diff)": abs(a - b) / abs(b)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--inner", type=int, default=5)
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    a = ap.parse_args(argv)
    import torch

    dev = torch.cuda.get_device_name(0)
    cs = cases(torch, a.quick)
    for c in cs:   # first calls: compile (or cache load) + launch
        t0 = time.perf_counter()
        c["ours"]()
        torch.cuda.synchronize()
        c["first_s"] = time.perf_counter() - t0
        c["peer"]()
        torch.cuda.synchronize()
        c["copy"], c["copy_bytes"] = _copy_ref(torch, c["nbytes"])
        c["t_ours"], c["t_peer"], c["t_copy"] = [], [], []
    for _ in range(a.repeat):
        for c in cs:
            c["t_ours"].append(_events(torch, c["ours"], a.inner))
            c["t_peer"].append(_events(torch, c["peer"], a.inner))
            c["t_copy"].append(_events(torch, c["copy"], a.inner))
    rows = []
    for c in cs:
        to, tp, tc = (statistics.median(c[k]) for k in ("t_ours", "t_peer", "t_copy"))
        rows.append(dict(case=c["case"], family=c["family"], ours_ms=to * 1e3,
                         torch_ms=tp * 1e3, speedup=tp / to, gbs=c["nbytes"] / to / 1e9,
                         copy_gbs=c["copy_bytes"] / tc / 1e9,
                         share=(c["nbytes"] / to) / (c["copy_bytes"] / tc),
                         first_call_s=c["first_s"]))
    meta = dict(device=dev, date=time.strftime("%Y-%m-%d"), torch=torch.__version__,
                repeat=a.repeat, inner=a.inner, quick=a.quick, checks=check_values(torch))
    lines = [f"device: {dev}, {meta['date']}, torch {torch.__version__}",
             "| case | fastloss ms | torch ms | torch/fastloss | GB/s | copy GB/s | share of "
             "copy | first call s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['case']} | {r['ours_ms']:.3f} | {r['torch_ms']:.3f} | "
                     f"{r['speedup']:.2f} | {r['gbs']:.0f} | {r['copy_gbs']:.0f} | "
                     f"{100 * r['share']:.0f} % | {r['first_call_s']:.2f} |")
    table = "\n".join(lines)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "gpu_bench.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    with open(os.path.join(a.out, "gpu_bench.md"), "w") as f:
        f.write(table + "\n")
    print(json.dumps(meta["checks"]))
    print(table)


if __name__ == "__main__":
    main()
