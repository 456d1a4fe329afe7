"""``fastloss`` on the command line: ``bench``, ``compile``, ``score`` and ``--version``.

* ``fastloss bench`` (see :mod:`fastloss.bench`): the benchmark table against the peers.
* ``fastloss compile [--losses ...] [--dtypes ...] [--family ...]`` (see
  :mod:`fastloss._precompile`): compile every kernel once, into the on-disk cache, so later
  processes start in a fraction of a second.
* ``fastloss score LOSS --pred FILE[:COLUMN] --target FILE[:COLUMN] ...`` streams a loss over
  ``.npy``, Parquet or CSV files (see :func:`fastloss.score`) and prints a JSON summary on
  stdout.  Exit codes: 0 success; 1 bad data (a null, a label outside the loss's domain,
  inputs of different lengths; the message names the rows); 2 bad arguments (the message
  names the argument).

``python -m fastloss`` run from a source checkout's root imports that checkout (Python puts
the current directory first on ``sys.path``), not an installed copy, and its kernels are
cached inside the checkout (``__pycache__`` folders, ignored by git) unless
``NUMBA_CACHE_DIR`` is set; ``fastloss bench`` prints which package and cache it used.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2


def version_string() -> str:
    """``fastloss X (numba Y, numpy Z, Python W)``, without importing Numba."""
    from importlib import metadata
    import platform

    from . import __version__

    def v(d):
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            return "not installed"
    return (f"fastloss {__version__} (numba {v('numba')}, numpy {v('numpy')}, "
            f"Python {platform.python_version()})")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "score":
        return score_main(argv[1:])
    if argv and argv[0] == "bench":
        from .bench import main as bench_main
        return bench_main(argv[1:])
    if argv and argv[0] == "compile":
        from ._precompile import main as compile_main
        return compile_main(argv[1:])
    p = argparse.ArgumentParser(prog="fastloss", description="fastloss command line: "
                                "loss functions with fused analytic gradients (Numba)")
    p.add_argument("--version", "-V", action="version", version=version_string())
    sub = p.add_subparsers(dest="cmd", metavar="{bench,compile,score}")
    sub.add_parser("bench", help="benchmark every registered loss against its peers "
                                 "(fastloss bench --help)")
    sub.add_parser("compile", help="compile the kernels into the on-disk cache once, so "
                                   "first calls are fast (fastloss compile --help)")
    sub.add_parser("score", help="stream a loss over .npy/Parquet/CSV files "
                                 "(fastloss score --help)")
    p.parse_args(argv)  # exits 2 on an unknown command, prints help for -h
    p.print_help()
    return EXIT_OK


def _loss_table() -> str:
    from ._api import LOSSES

    lines = ["losses and their parameters (--param NAME=VALUE):"]
    for name, info in LOSSES.items():
        ps = ", ".join(f"{k}={v!r}" for k, v in info.params.items()) or "-"
        lines.append(f"  {name:<42} inputs: {', '.join(info.inputs)}")
        lines.append(f"  {'':<42} params: {ps}")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: exit 2 with the argument named
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _parser():
    p = _Parser(
        prog="fastloss score",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Stream LOSS over rows of .npy, Parquet or CSV files: per-row losses to "
                    "--out, a JSON summary (sum, mean, count, min, max, quantiles) on stdout.",
        epilog=_loss_table() + "\n\nexit codes: 0 success, 1 bad data (the message names the "
               "rows), 2 bad arguments (the message names the argument)")
    p.add_argument("loss", help="loss name (listed below)")
    p.add_argument("--pred", required=True, metavar="FILE[:COLUMN]",
                   help="first input of the loss (pred, logits, ...)")
    p.add_argument("--target", metavar="FILE[:COLUMN]", help="second input (target, labels)")
    p.add_argument("--input", action="append", default=[], metavar="NAME=FILE[:COLUMN]",
                   help="any input by its name (for losses with three inputs)")
    p.add_argument("--weight", metavar="FILE[:COLUMN]|NUMBER", help="sample weights")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="loss parameter (repeatable)")
    p.add_argument("--out", metavar="FILE", help="per-row losses (.npy, .parquet)")
    p.add_argument("--grad-out", metavar="FILE", help="per-row gradients w.r.t. the first input")
    p.add_argument("--reduction", choices=("mean", "sum", "none"), default="mean",
                   help="which total is 'value' in the summary (default mean)")
    p.add_argument("--chunk-size", type=int, metavar="N", help="rows per chunk (multiple of 2048)")
    p.add_argument("--threads", type=int, metavar="N", help="Numba threads")
    p.add_argument("--nulls", choices=("raise", "skip"), default="raise",
                   help="missing values: fail (exit 1) or leave the row out (default raise)")
    p.add_argument("--quantiles", metavar="Q[,Q...]", help="e.g. 0.5,0.9,0.99")
    p.add_argument("--format", choices=("json", "table"), default="json")
    p.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def _value(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def _fail(p, arg, message):
    p.print_usage(sys.stderr)
    print(f"fastloss score: error: argument {arg}: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_file(p, arg, spec):
    from ._io import split_spec

    path, _ = split_spec(spec)
    if not os.path.exists(path):
        return _fail(p, arg, f"no such file: {path!r}")
    return None


def score_main(argv) -> int:
    p = _parser()
    a = p.parse_args(argv)
    from ._api import LOSSES

    info = LOSSES.get(a.loss)
    if info is None:
        return _fail(p, "LOSS", f"unknown loss {a.loss!r}; one of: {', '.join(LOSSES)}")
    inputs = {info.inputs[0]: ("--pred", a.pred)}
    if a.target is not None:
        if len(info.inputs) < 2:
            return _fail(p, "--target", f"{a.loss} takes one input")
        inputs[info.inputs[1]] = ("--target", a.target)
    for item in a.input:
        name, sep, spec = item.partition("=")
        if not sep or name not in info.inputs:
            return _fail(p, "--input", f"expected NAME=FILE with NAME one of "
                                       f"{', '.join(info.inputs)}; got {item!r}")
        inputs[name] = ("--input", spec)
    missing = [n for n in info.inputs if n not in inputs]
    if missing:
        return _fail(p, "--target" if missing[0] == info.inputs[1] else "--input",
                     f"{a.loss} needs the input(s) {', '.join(missing)}")
    for name, (arg, spec) in inputs.items():
        bad = _check_file(p, arg, spec)
        if bad is not None:
            return bad
    params = {}
    for item in a.param:
        k, sep, v = item.partition("=")
        if not sep:
            return _fail(p, "--param", f"expected NAME=VALUE, got {item!r}")
        if k not in info.params:
            return _fail(p, "--param", f"{a.loss} has no parameter {k!r} (parameters: "
                                       f"{', '.join(info.params) or 'none'})")
        params[k] = _value(v)
    weight = None
    if a.weight is not None:
        try:
            weight = float(a.weight)
        except ValueError:
            bad = _check_file(p, "--weight", a.weight)
            if bad is not None:
                return bad
            weight = a.weight
    quantiles = None
    if a.quantiles:
        try:
            quantiles = [float(q) for q in a.quantiles.split(",")]
        except ValueError:
            return _fail(p, "--quantiles", f"expected numbers separated by commas, got "
                                           f"{a.quantiles!r}")
        if not all(0 <= q <= 1 for q in quantiles):
            return _fail(p, "--quantiles", "levels must lie in [0, 1]")
    if a.chunk_size is not None and a.chunk_size <= 0:
        return _fail(p, "--chunk-size", "must be a positive integer")
    if a.threads is not None:
        import numba
        if not 1 <= a.threads <= numba.config.NUMBA_NUM_THREADS:
            return _fail(p, "--threads", f"must lie in 1..{numba.config.NUMBA_NUM_THREADS}")
    if a.reduction == "none" and a.out is None:
        return _fail(p, "--reduction", "'none' needs --out FILE")

    from ._io import ScoreDataError
    from .scoring import score

    try:
        r = score(a.loss, *(inputs[n][1] for n in info.inputs), sample_weight=weight,
                  out=a.out, grad_out=a.grad_out, reduction=a.reduction,
                  chunk_size=a.chunk_size, nulls=a.nulls, quantiles=quantiles,
                  progress="auto" if a.progress is None else a.progress, n_threads=a.threads,
                  **params)
    except ScoreDataError as exc:
        print(f"fastloss score: bad data: {exc}", file=sys.stderr)
        return EXIT_DATA
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        arg = next((f"--param {k}" for k in params if k in msg), None)
        if arg is None:
            arg = next((inputs[n][0] for n in info.inputs if f" {n}" in msg), "LOSS")
        print(f"fastloss score: error: argument {arg}: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except (ImportError, OSError) as exc:
        print(f"fastloss score: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    d = r.to_dict()
    if a.format == "json":
        print(json.dumps(d, indent=None))
    else:
        for k, v in d.items():
            if v is None:
                continue
            if isinstance(v, dict):
                v = ", ".join(f"q{q}={x:.6g}" for q, x in v.items())
            elif isinstance(v, float):
                v = f"{v:.10g}"
            print(f"{k:<12} {v}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
