"""The benchmark command: timing helpers, header, legend, peers, JSON, figures (no speed
is asserted)."""
import io
import json

import numpy as np
import pytest

from fastloss import bench


def test_round_robin_times_each_callable_in_turn():
    calls = []
    fs = {k: (lambda k=k: calls.append(k)) for k in ("a", "b", "c")}
    ts = bench._round_robin(fs, 3)
    assert calls == ["a", "b", "c"] * 3
    assert set(ts) == {"a", "b", "c"} and all(t >= 0 for t in ts.values())
    calls.clear()
    samples = {}
    bench._round_robin(fs, 2, {"b": 3}, samples)   # b: 3 calls per sample
    assert calls == ["a", "b", "b", "b", "c"] * 2
    assert {k: len(v) for k, v in samples.items()} == {"a": 2, "b": 2, "c": 2}


def test_calls_per_sample_reaches_the_minimum_sample_time():
    import time

    def f():
        time.sleep(0.002)
    m = bench._calls_per_sample(f, 0.02)
    assert 5 <= m <= 10            # 10 calls of >= 2 ms make 20 ms
    assert bench._calls_per_sample(f, 0.0001) == 1


def test_quick_cases_are_interleaved_round_by_round(monkeypatch):
    # --quick: round r of every case runs before round r + 1 of any, so each case's
    # median spans the whole run; a case with a background load is timed on its own
    from fastloss._bench import Case

    calls = []

    def case(name, load=None):
        def make(dtype):
            return (np.zeros(4, dtype),), {}
        return Case(loss=name, label="x", make=make, nbytes=lambda a: 16, load=load,
                    peers={"numpy": lambda a, k, n=name: (lambda: calls.append(n + ":np"))})

    class VG:   # stands in for value_and_grad(LOSSES[name].func)
        def __init__(self, name):
            self.name = name

        def __call__(self, *a, **k):
            calls.append(self.name)

    monkeypatch.setattr("fastloss.value_and_grad", lambda f, argnums=0: VG(f))
    monkeypatch.setattr("fastloss.LOSSES", {n: type("I", (), {"func": n})()
                                            for n in ("a", "b", "c")})
    monkeypatch.setattr(bench, "_calls_per_sample", lambda f, s: 1)
    loads = []
    c = case("c", load=lambda: loads.append(len(calls)) or (lambda: loads.append(len(calls))))
    rows = bench._interleaved([case("a"), case("b"), c], lambda: None, 4, 3, 0.0,
                              ["numpy"], io.StringIO())
    assert [r["loss"] for r in rows] == ["a", "b", "c"]
    assert all(len(r["samples_ms"]["fastloss"]) == 3 for r in rows)
    a_b = [x for x in calls if x in ("a", "b")][4:]   # after the first and warm-up calls
    assert a_b == ["a", "b"] * 3
    # c ran after a and b, entirely inside its load
    assert loads[0] >= max(i for i, x in enumerate(calls) if x in ("a", "b"))
    assert all(loads[0] <= i < loads[1] for i, x in enumerate(calls) if x == "c"
               and i >= loads[0])


def test_share_above_100_is_flagged():
    assert bench._pct(99.6) == "100" and bench._pct(100.4) == "100!"
    assert bench._pct(482) == "482!" and bench._pct(None) == "—"


def _small(monkeypatch):
    """Quick mode at test sizes (the real quick sizes take seconds per case)."""
    from fastloss._bench import elementwise
    monkeypatch.setattr(elementwise, "N_QUICK", 100_000)
    monkeypatch.setattr(bench, "QUICK_N_TRIAD", 100_000)


def test_quick_row_header_legend_json_and_missing_peer(tmp_path, monkeypatch, capsys):
    # PyTorch reported missing: said once, and no torch column
    monkeypatch.setattr(bench, "peers_available", lambda: {"torch": False, "sklearn": True})
    _small(monkeypatch)
    out = tmp_path / "rows.json"
    rc = bench.main(["--quick", "--family", "elementwise", "--loss", "squared_error",
                     "--repeat", "2", "--json", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    for key in ("machine:", "vector width", "threads:", "threading layer", "memory:",
                "GB/s (triad", "software:", "numba", "date:"):
        assert key in text, key
    assert text.count("PyTorch not installed") == 1 and "pip install torch" in text
    head = next(line for line in text.splitlines() if line.startswith("loss"))
    assert "torch×" not in head and "numpy×" in head and "sklearn×" in head
    for col in ("first s", "ms ", "GB/s", "triad", "%triad", "numpy×", "sklearn×",
                "float64", "peer time / fastloss time"):
        assert col in text.split(head)[1], col        # the legend under the table
    d = json.loads(out.read_text())
    assert {"cpu", "vector_width", "cores", "threads", "threading_layer", "triad_gbs",
            "versions", "date"} <= set(d["machine"])
    assert d["machine"]["triad_gbs"] > 0 and d["settings"]["quick"] is True
    (r,) = d["rows"]
    assert r["loss"] == "squared_error" and r["family"] == "elementwise"
    assert r["n"] == 100_000 and r["ms"] > 0 and r["triad_gbs"] > 0
    assert np.isclose(r["pct_triad"], 100 * r["gbs"] / r["triad_gbs"])
    assert r["pct_triad_artefact"] == (r["pct_triad"] > 100)
    assert r["numpy_ratio"] > 0 and r["torch_ratio"] is None  # NumPy is always there
    assert set(r["peer_ms"]) >= {"numpy"} and "torch" not in r["peer_ms"]


def test_unknown_loss_and_bad_arguments_exit_2(capsys):
    for argv, msg in ((["--loss", "nope"], "unknown loss 'nope'"),
                      (["--loss", "huber", "--family", "ctc"], "no benchmark case"),
                      (["--family", "nope"], "invalid choice"),
                      (["--repeat", "0"], "--repeat")):
        with pytest.raises(SystemExit) as e:
            bench.main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert msg in err, (argv, err)
    with pytest.raises(SystemExit):
        bench.main(["--loss", "nope"])
    err = capsys.readouterr().err
    assert "huber" in err and "ctc_loss" in err   # the names are listed


def test_help_explains_family_repeat_and_columns(capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for key in ("--family", "--repeat", "median", "--json", "--plot", "first s", "GB/s",
                "%triad", "numpy×", "torch×", "sklearn×", "float64", "workflows", "sizes",
                "compile"):
        assert key in text, key
    assert "``" not in text and ":func:" not in text


def _fake_rows():
    rows = []
    for i, loss in enumerate(("huber", "softmax_cross_entropy")):
        rows.append(dict(family="elementwise" if i == 0 else "rowwise", loss=loss,
                         label="n=1e6", n=10 ** 6, first_s=0.3, ms=1.0 + i, spread_pct=3.0,
                         gbs=10.0, triad_gbs=12.0 - 8 * i, pct_triad=83.0 + 100 * i,
                         pct_triad_artefact=bool(i), note="",
                         peer_ms={"numpy": 9.0, "torch": 4.0},
                         numpy_ratio=9.0, torch_ratio=4.0, sklearn_ratio=None))
    for n in (100, 10_000, 1_000_000):
        rows.append(dict(family="sizes", loss="huber", label=f"n={n:.0e}", n=n,
                         ms=n * 1e-6 + 0.01, peer_ms={"serial": n * 2e-6, "numpy": n * 1e-5}))
    rows.append(dict(family="compile", case="ctc_f32", loss="ctc_loss", dtype="float32",
                     size="12,2,6,3", compile_s=4.0, warm_first_s=0.3))
    return rows


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    info = bench.machine_info(12.0, 4_000_000)
    path = bench.plot(_fake_rows(), info, str(tmp_path / "perf.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no rows"):
        bench.plot([], info, str(tmp_path / "empty.png"))


def test_header_names_the_machine():
    info = bench.machine_info(20.0, 4_000_000)
    text = bench.machine_header(info)
    assert info["vector_width"] in text and "20.0 GB/s" in text and info["date"] in text
    assert bench.vector_width({"avx512f", "avx2"}).startswith("AVX-512")
    assert bench.vector_width({"avx2"}).startswith("AVX2")
    assert "machine:" in bench.machine_header()   # the one-line form of the scripts


def test_workflow_lbfgs_fit_matches_sklearn_coefficients():
    from fastloss._bench import workflows as W

    for K in (2, 3):
        case = W._lr_case(200, 4, K)
        args, kw = case.make()
        case.run(args, kw)()
        case.peers["sklearn"](args, kw)()
        note = case.note(args, kw)
        diff = float(note.rsplit(" ", 1)[1])
        assert diff < 1e-6, note


def test_workflow_contention_row_has_serial_peer():
    buf = io.StringIO()
    rows = bench.run(quick=True, families=["workflows"], only=["huber"], repeat=1, file=buf,
                     min_sample_s=0)
    assert [r["loss"] for r in rows] == ["huber"]
    assert rows[0]["serial_ratio"] is not None and rows[0]["ms"] > 0
    assert "serial×" in buf.getvalue() and "busy cores" in buf.getvalue()


def test_workflow_estimator_cases_match_sklearn():
    pytest.importorskip("sklearn")
    from fastloss._bench import workflows as W

    for model in ("multinomial", "poisson"):
        case = W._estimator_case(model, 300, 4)
        args, kw = case.make()
        case.run(args, kw)()
        case.peers["sklearn"](args, kw)()
        note = case.note(args, kw)
        assert float(note.rsplit(" ", 1)[1]) < 1e-4, note
