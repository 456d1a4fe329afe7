"""``fastloss score`` on the command line: JSON summary, outputs, exit codes, help."""
import json
import subprocess
import sys

import numpy as np
import pytest

import fastloss
from fastloss.__main__ import main


def _files(tmp_path, n=5000, dt=np.float32):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n).astype(dt)
    y = (rng.random(n) < 0.5).astype(dt)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return x, y


def _run(capsys, *argv):
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_npy_json_summary_and_out(tmp_path, capsys):
    x, y = _files(tmp_path)
    rc, out, err = _run(capsys, "score", "huber", "--pred", str(tmp_path / "x.npy"),
                        "--target", str(tmp_path / "y.npy"), "--param", "delta=0.5",
                        "--out", str(tmp_path / "o.npy"), "--chunk-size", "2048",
                        "--quantiles", "0.5,0.9", "--no-progress")
    assert rc == 0, err
    d = json.loads(out)
    r = fastloss.score("huber", x, y, delta=0.5)
    assert d["mean"] == r.mean and d["sum"] == r.sum and d["count"] == 5000
    assert d["value"] == d["mean"] and set(d["quantiles"]) == {"0.5", "0.9"}
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"),
                                  fastloss.huber(x, y, delta=0.5, reduction="none"))


def test_table_format_and_weight_number(tmp_path, capsys):
    _files(tmp_path)
    rc, out, _ = _run(capsys, "score", "squared_error", "--pred", str(tmp_path / "x.npy"),
                      "--target", str(tmp_path / "y.npy"), "--weight", "2", "--format",
                      "table", "--reduction", "sum", "--threads", "1")
    assert rc == 0
    rows = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert float(rows["weight_sum"]) == 10000.0 and rows["reduction"] == "sum"


def test_parquet_and_csv_columns(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    x, y = _files(tmp_path, dt=np.float64)
    t = pa.table({"p": pa.array(x, mask=np.arange(5000) == 17), "t": y})
    pq.write_table(t, tmp_path / "d.parquet", row_group_size=1000)
    pcsv.write_csv(pa.table({"p": x, "t": y}), tmp_path / "d.csv")
    rc, out, err = _run(capsys, "score", "squared_error", "--pred",
                        f"{tmp_path}/d.parquet:p", "--target", f"{tmp_path}/d.parquet:t")
    assert rc == 1 and "row 17" in err          # a null: bad data, exit 1, row named
    rc, out, err = _run(capsys, "score", "squared_error", "--pred",
                        f"{tmp_path}/d.parquet:p", "--target", f"{tmp_path}/d.parquet:t",
                        "--nulls", "skip", "--out", str(tmp_path / "o.parquet"))
    assert rc == 0, err
    assert json.loads(out)["skipped"] == 1
    rc, out, err = _run(capsys, "score", "squared_error", "--pred", f"{tmp_path}/d.csv:p",
                        "--target", f"{tmp_path}/d.csv:t")
    assert rc == 0, err
    assert abs(json.loads(out)["mean"] - np.mean((x - y) ** 2)) < 1e-12


def test_exit_2_names_the_argument(tmp_path, capsys):
    _files(tmp_path)
    x, y = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    cases = [
        (["nope", "--pred", x, "--target", y], "argument LOSS"),
        (["huber", "--pred", x, "--target", y, "--param", "beta=1"], "argument --param"),
        (["huber", "--pred", x, "--target", y, "--param", "delta=-1"], "argument --param delta"),
        (["huber", "--pred", str(tmp_path / "missing.npy"), "--target", y], "argument --pred"),
        (["huber", "--pred", x], "argument --target"),
        (["huber", "--pred", x, "--target", y, "--reduction", "none"], "argument --reduction"),
        (["huber", "--pred", x, "--target", y, "--chunk-size", "0"], "argument --chunk-size"),
        (["huber", "--pred", x, "--target", y, "--quantiles", "a"], "argument --quantiles"),
        (["huber", "--pred", x, "--target", y, "--format", "xml"], "argument --format"),
    ]
    for argv, msg in cases:
        with pytest.raises(SystemExit) if "--format" in argv else _NoRaise() as e:
            rc, _, err = _run(capsys, "score", *argv)
        if "--format" in argv:
            assert e.value.code == 2
            continue
        assert rc == 2 and msg in err, (argv, err)


class _NoRaise:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_bad_label_exit_1_with_rows(tmp_path, capsys):
    x, y = _files(tmp_path)
    y[3000] = 7.0
    np.save(tmp_path / "y.npy", y)
    rc, _, err = _run(capsys, "score", "sigmoid_binary_cross_entropy", "--pred",
                      str(tmp_path / "x.npy"), "--target", str(tmp_path / "y.npy"),
                      "--chunk-size", "2048")
    assert rc == 1 and "rows 2048-4095" in err


def test_help_lists_losses_and_parameters_and_bench_still_works():
    p = subprocess.run([sys.executable, "-m", "fastloss", "score", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0
    for name, info in fastloss.LOSSES.items():
        assert name in p.stdout
        for k in info.params:
            assert f"{k}=" in p.stdout
    assert "exit codes" in p.stdout
    p = subprocess.run([sys.executable, "-m", "fastloss", "bench", "--help"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "--quick" in p.stdout
    p = subprocess.run([sys.executable, "-c", "import sys, fastloss; print(sorted(m for m in "
                        "('numba', 'pyarrow', 'dask', 'tqdm', 'distributed') if m in "
                        "sys.modules))"], capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == "[]"


def test_progress_bar_on_stderr_when_asked(tmp_path, capsys):
    pytest.importorskip("tqdm")
    _files(tmp_path)
    rc, out, err = _run(capsys, "score", "huber", "--pred", str(tmp_path / "x.npy"),
                        "--target", str(tmp_path / "y.npy"), "--progress", "--chunk-size", "2048")
    assert rc == 0 and "rows" in err and "huber" in err
    json.loads(out)  # stdout stays one JSON object
    rc, out, err = _run(capsys, "score", "huber", "--pred", str(tmp_path / "x.npy"),
                        "--target", str(tmp_path / "y.npy"))
    assert rc == 0 and err == ""   # not a terminal: no bar by default


# --- version, bench and compile -------------------------------------------------------------

def test_version():
    for cmd in (["-m", "fastloss", "--version"], ["-m", "fastloss", "-V"]):
        p = subprocess.run([sys.executable, *cmd], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(f"fastloss {fastloss.__version__} (numba ")
    p = subprocess.run([sys.executable, "-m", "fastloss", "--help"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0 and "compile" in p.stdout and "--version" in p.stdout


def test_bench_unknown_loss_exits_2_with_the_names(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--loss", "hubber"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unknown loss 'hubber'" in err
    assert all(name in err for name in fastloss.LOSSES)


def test_bench_json_rows_and_machine(tmp_path, capsys, monkeypatch):
    from fastloss import bench
    from fastloss._bench import elementwise

    monkeypatch.setattr(elementwise, "N_QUICK", 100_000)   # test sizes
    monkeypatch.setattr(bench, "QUICK_N_TRIAD", 100_000)
    out = tmp_path / "b.json"
    rc = main(["bench", "--quick", "--family", "elementwise", "--loss", "squared_error",
               "--repeat", "1", "--json", str(out)])   # (test_bench's kernel: no compile)
    assert rc == 0
    text = capsys.readouterr().out
    assert "squared_error" in text and f"rows written to {out}" in text
    d = json.loads(out.read_text())
    assert set(d) == {"machine", "settings", "rows"}
    assert d["settings"]["families"] == ["elementwise"]
    assert d["settings"]["losses"] == ["squared_error"]
    (r,) = d["rows"]
    for key in ("family", "loss", "label", "n", "first_s", "ms", "spread_pct", "gbs",
                "triad_gbs", "pct_triad", "pct_triad_artefact", "note", "peer_ms",
                "numpy_ratio", "torch_ratio", "sklearn_ratio"):
        assert key in r, key
    assert r["loss"] == "squared_error" and r["ms"] > 0 and d["machine"]["cores"] >= 1


def test_compile_one_loss_is_idempotent(tmp_path):
    cmd = [sys.executable, "-m", "fastloss", "compile", "--losses", "squared_error",
           "--dtypes", "float32", "--calls", "grad", "--progress", "plain"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "[2/2] squared_error float32 grad (parallel)" in first.stderr  # progress lines
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    # the second run finds both kernels (serial and parallel) in the cache
    assert "kernels compiled and saved: 0, loaded from the cache: 2" in second.stdout, \
        second.stdout
    assert "cache: " in second.stdout and "cache: none" not in second.stdout


def test_compile_bad_arguments_exit_2(capsys):
    for argv, msg in ((["--losses", "nope"], "unknown loss 'nope'"),
                      (["--dtypes", "float16"], "--dtypes"),
                      (["--calls", "all"], "--calls"),
                      (["--family", "ctc", "--losses", "huber"], "nothing to compile")):
        with pytest.raises(SystemExit) as e:
            main(["compile", *argv])
        assert e.value.code == 2
        assert msg in capsys.readouterr().err, argv
