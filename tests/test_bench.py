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
