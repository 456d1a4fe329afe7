"""Cold compile time per kernel family, each case in a fresh process with an empty cache.

    python benchmarks/compile_time.py [--rounds 3] [--cases ctc_f32,ctc_f64,...] [--json FILE]

Each case runs in a new Python process with ``NUMBA_CACHE_DIR`` pointing at a fresh, empty
directory (so every kernel compiles), imports fastloss and Numba (timed apart), then times
its first call (compile + run) and a second call (run only); the compile time reported is
the difference.  A third process on the now filled cache times the first call again (the
cost of loading the kernel from disk).  Rounds alternate over the cases (round robin), so a
drift of the machine's load reaches every case alike; the medians are printed.

Cases (float32 unless said; "small" inputs run the serial kernel, "large" the parallel one,
see ``fastloss._cpu.PARALLEL_MIN``):

* ``ew_f32`` / ``ew_f32_par``: ``value_and_grad(huber)``, n = 1 000 / 2**17;
* ``row_f32``: ``value_and_grad(softmax_cross_entropy_with_integer_labels)``, 64 x 10;
* ``ctc_f32`` / ``ctc_f64``: ``value_and_grad(ctc_loss)``, (T, N, C, L) = (12, 2, 6, 3);
* ``ctc_f32_par``: the same at (50, 8, 20, 10) (parallel kernel).

``--tree before=DIR --tree after=.`` measures two copies of the package alternately (a
before/after comparison under the same machine load).  Also
``python -m fastloss bench --family compile`` (the same cases, one round).
"""
from __future__ import annotations

import argparse
import json
import sys

from fastloss._bench.compile import CASES, measure


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES),
                    help=f"comma-separated, of: {', '.join(CASES)}")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR",
                    help="also measure the fastloss package under DIR (repeatable; cases and "
                         "trees alternate round robin), e.g. before=/tmp/old after=.")
    a = ap.parse_args(argv)
    names = [c for c in a.cases.split(",") if c]
    bad = [c for c in names if c not in CASES]
    if bad:
        ap.error(f"unknown case(s) {', '.join(bad)}; one of {', '.join(CASES)}")

    def progress(n, cold, warm):
        print(f"  {n:<12} compile {cold['first_s'] - cold['second_s']:7.2f} s   "
              f"cache load {warm['first_s']:6.2f} s", file=sys.stderr, flush=True)

    trees = dict(t.split("=", 1) for t in a.tree) or None
    rows = measure(names, a.rounds, progress, trees)
    print(f"{'case':<13}{'tree':<8}{'loss':<44}{'dtype':<9}{'size':<12}{'compile s':>10}"
          f"{'min s':>8}{'cached s':>10}{'import s':>10}  samples")
    for r in rows:
        print(f"{r['case']:<13}{r['tree']:<8}{r['loss']:<44}{r['dtype']:<9}{r['size']:<12}"
              f"{r['compile_s']:>10.2f}{r['compile_min_s']:>8.2f}{r['warm_first_s']:>10.2f}"
              f"{r['import_s']:>10.2f}  "
              f"{r['samples']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
