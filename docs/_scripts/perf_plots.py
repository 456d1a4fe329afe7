"""Draw the performance page's figures from the JSON of ``python -m fastloss bench --json``.

    python -m fastloss bench --family elementwise --family rowwise --family ctc \\
        --family sizes --family compile --json bench.json
    python docs/_scripts/perf_plots.py bench.json            # -> docs/_static/perf/
    python docs/_scripts/perf_plots.py table.json compile.json   # rows of several runs

Reads ``{"machine": {...}, "settings": {...}, "rows": [...]}`` (the row keys are listed in
``fastloss/bench.py``'s docstring) and writes into ``docs/_static/perf/`` (or ``--out``):

* ``ratios.png``   — bars of peer time / fastloss time per loss, one bar per peer (log scale);
* ``triad.png``    — fastloss's GB/s as a share of the triad bandwidth measured with it;
* ``sizes.png``    — time against size (log–log) of the ``sizes`` rows, with the serial
  kernel and the size where the parallel kernel takes over;
* ``compile.png``  — cold compile time per kernel family (``compile`` rows), when present;
* ``machine.md``   — the machine, versions, date and settings as a Markdown table, which
  ``docs/performance.md`` includes above the figures.

Each figure carries the machine, versions and date in its footer. Only matplotlib and the
standard library are needed (fastloss is not imported).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(os.path.dirname(HERE), "_static", "perf")
TABLE_FAMILIES = ("elementwise", "rowwise", "ctc")
PEER_NAMES = {"numpy": "NumPy float64", "torch": "PyTorch CPU", "sklearn": "scikit-learn"}


def load(path):
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, list):                   # bare rows
        data = {"machine": {}, "settings": {}, "rows": data}
    data.setdefault("machine", {})
    data.setdefault("settings", {})
    return data


def footer(m: dict) -> str:
    v = m.get("versions", {})
    vers = ", ".join(f"{k} {x}" for k, x in v.items() if x and k != "python")
    bw = m.get("triad_gbs")
    triad_txt = f"triad {bw:.1f} GB/s" if bw else "triad not measured"
    return (f"{m.get('cpu', '?')}; {m.get('vector_width', '?')}; {m.get('threads', '?')} "
            f"threads of {m.get('cores', '?')} cores ({m.get('threading_layer', '?')}); "
            f"{triad_txt}\n{vers}; {m.get('date', '?')}")


def _finish(fig, m, path):
    fig.text(0.01, 0.005, footer(m), fontsize=6.5, va="bottom", color="0.3")
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def _label(r):
    if r.get("family") == "elementwise":
        return r["loss"]
    name = r["loss"].replace("softmax_cross_entropy", "softmax_ce").replace(
        "_with_integer_labels", "_int").replace("mean_pairwise_squared_error", "mpse")
    return f"{name} {r.get('label', '').replace('ctc ', '')}"


def _bar_figure(rows):
    """A figure tall enough for the rotated labels, and its bottom margin."""
    import matplotlib.pyplot as plt
    longest = max(len(_label(r)) for r in rows)
    label_in = 0.055 * longest + 0.5             # inches below the axes
    height = 4.2 + label_in
    fig, ax = plt.subplots(figsize=(11, height))
    fig.subplots_adjust(bottom=label_in / height, top=1 - 0.35 / height, left=0.07, right=0.99)
    return fig, ax


def ratios(rows, m, path):
    import matplotlib.pyplot as plt
    import numpy as np

    peers = [p for p in PEER_NAMES if any(r.get(f"{p}_ratio") for r in rows)]
    fig, ax = _bar_figure(rows)
    x = np.arange(len(rows))
    w = 0.8 / max(len(peers), 1)
    for i, p in enumerate(peers):
        v = [r.get(f"{p}_ratio") or np.nan for r in rows]
        ax.bar(x + (i - (len(peers) - 1) / 2) * w, v, w, label=f"{PEER_NAMES[p]} time / fastloss time")
    ax.axhline(1, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(x, [_label(r) for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("peer time / fastloss time (log)")
    ax.set_title("value + gradient, float32: above 1, fastloss is faster")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")
    return _finish(fig, m, path)


def triad(rows, m, path):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = _bar_figure(rows)
    x = np.arange(len(rows))
    v = [r.get("pct_triad") if r.get("pct_triad") is not None else np.nan for r in rows]
    art = [bool(r.get("pct_triad_artefact")) for r in rows]
    ax.bar(x, v, color=["tab:red" if a else "tab:blue" for a in art])
    ax.axhline(100, color="k", lw=0.8)
    ax.set_xticks(x, [_label(r) for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("% of the triad's GB/s")
    ax.set_title("fastloss as a share of the memory-bandwidth limit"
                 + (" (red: above 100, a measurement artefact)" if any(art) else ""))
    ax.grid(axis="y", alpha=0.3)
    return _finish(fig, m, path)


def sizes(rows, m, path, parallel_min=None):
    import matplotlib.pyplot as plt
    import numpy as np

    rows = sorted(rows, key=lambda r: r["n"])
    n = np.array([r["n"] for r in rows], float)
    fig, ax = plt.subplots(figsize=(8, 5.0))
    ax.loglog(n, [r["ms"] for r in rows], "o-", label="fastloss (its choice of kernel)")
    for k, name in (("serial", "fastloss serial kernel (n_threads=1)"),
                    ("numpy", "NumPy float64"), ("torch", "PyTorch CPU")):
        v = np.array([r.get("peer_ms", {}).get(k, np.nan) for r in rows], float)
        if np.isfinite(v).any():
            ax.loglog(n, v, ".--", label=name)
    if parallel_min:
        ax.axvline(parallel_min, color="grey", ls=":", lw=1,
                   label=f"parallel kernel from n = {parallel_min:,}")
    ax.set_xlabel("elements n")
    ax.set_ylabel("ms per value + gradient call")
    ax.set_title(f"time against size: {rows[0]['loss']}, float32")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.subplots_adjust(bottom=0.2, top=0.93, left=0.1, right=0.98)
    return _finish(fig, m, path)


def compile_times(rows, m, path):
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4.6))
    x = np.arange(len(rows))
    ax.bar(x, [r.get("compile_s", np.nan) for r in rows], label="cold compile")
    ax.bar(x, [r.get("warm_first_s", np.nan) for r in rows], 0.4,
           label="first call, filled cache")
    ax.set_xticks(x, [f"{r['loss']} {r.get('dtype', '')} {r.get('size', '')}" for r in rows],
                  rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("s")
    ax.set_title("compile time per kernel family (fresh process, empty cache)")
    ax.legend(fontsize=8)
    fig.subplots_adjust(bottom=0.35, top=0.92, left=0.08, right=0.99)
    return _finish(fig, m, path)


def machine_md(m, settings) -> str:
    v = m.get("versions", {})
    bw = m.get("triad_gbs")
    lines = ["| | |", "|---|---|",
             f"| CPU | {m.get('cpu', '?')} ({m.get('machine', '')}; Numba/LLVM target "
             f"`{m.get('llvm_cpu', '?')}`) |",
             f"| vector width | {m.get('vector_width', '?')} |",
             f"| cores, threads used | {m.get('cores', '?')} cores, {m.get('threads', '?')} "
             f"threads, threading layer `{m.get('threading_layer', '?')}` |",
             "| memory bandwidth | " + (f"{bw:.1f} GB/s, measured: triad c = a + s·b over "
                                       f"{m.get('triad_n', 0):.0e} float32, median"
                                       if bw else "not measured") + " |",
             "| software | " + ", ".join(f"{k} {x}" for k, x in v.items() if x) + " |",
             f"| date | {m.get('date', '?')} |",
             f"| settings | {'quick' if settings.get('quick') else 'full'} sizes; families "
             f"{', '.join(settings.get('families') or []) or '?'} |"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", nargs="+",
                   help="file(s) written by `python -m fastloss bench --json`; the rows of "
                        "several runs are drawn together, the machine is the first file's")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: docs/_static/perf)")
    p.add_argument("--parallel-min", type=int, default=None,
                   help="elements from which the parallel elementwise kernel runs (default: "
                        "fastloss._cpu.PARALLEL_MIN when importable, else 65536)")
    a = p.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")

    runs = [load(j) for j in a.json]
    data = runs[0]
    m = data["machine"]
    rows = [r for d in runs for r in d["rows"]]
    data["settings"] = dict(data["settings"], families=sorted(
        {f for d in runs for f in (d["settings"].get("families") or [])}))
    os.makedirs(a.out, exist_ok=True)
    pm = a.parallel_min
    if pm is None:
        try:
            sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
            from fastloss._cpu import PARALLEL_MIN
            pm = PARALLEL_MIN["elementwise"]
        except Exception:
            pm = 1 << 16
    table = [r for r in rows if r.get("family") in TABLE_FAMILIES]
    made = []
    if table:
        made.append(("ratios", ratios(table, m, os.path.join(a.out, "ratios.png"))))
        made.append(("triad", triad(table, m, os.path.join(a.out, "triad.png"))))
    sz = [r for r in rows if r.get("family") == "sizes" and r.get("n")]
    if sz:
        made.append(("sizes", sizes(sz, m, os.path.join(a.out, "sizes.png"), pm)))
    comp = [r for r in rows if r.get("family") == "compile"]
    if comp:
        made.append(("compile", compile_times(comp, m, os.path.join(a.out, "compile.png"))))
    if not made:
        raise SystemExit(f"{', '.join(a.json)}: no rows to draw")
    with open(os.path.join(a.out, "machine.md"), "w") as f:
        f.write(machine_md(m, data["settings"]))
    for key, path in made:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
