"""The benchmark command: its timing helper and one quick row (no speed is asserted)."""
import io

import numpy as np

from fastloss import bench


def test_round_robin_times_each_callable_in_turn():
    calls = []
    fs = {k: (lambda k=k: calls.append(k)) for k in ("a", "b", "c")}
    ts = bench._round_robin(fs, 3)
    assert calls == ["a", "b", "c"] * 3
    assert set(ts) == {"a", "b", "c"} and all(t >= 0 for t in ts.values())


def test_quick_row_reports_triad_and_peers():
    buf = io.StringIO()
    rows = bench.run(quick=True, families=["elementwise"], only=["squared_error"], repeat=1,
                     file=buf)
    assert [r["loss"] for r in rows] == ["squared_error"]
    r = rows[0]
    assert r["ms"] > 0 and r["triad_gbs"] > 0
    assert np.isclose(r["pct_triad"], 100 * r["gbs"] / r["triad_gbs"])
    assert r["numpy_ratio"] is not None        # NumPy is always there
    assert "squared_error" in buf.getvalue() and "%triad" in buf.getvalue()


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
    rows = bench.run(quick=True, families=["workflows"], only=["huber"], repeat=1, file=buf)
    assert [r["loss"] for r in rows] == ["huber"]
    assert rows[0]["serial_ratio"] is not None and rows[0]["ms"] > 0
    assert "serial×" in buf.getvalue() and "busy cores" in buf.getvalue()
