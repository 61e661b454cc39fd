"""``ondaverde bench replay`` runs end to end on a short log and reports its ratios (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from hw.replay.bench import bench_replay, write_day
from hw.replay.events import load_events
from ondaverde.cli import main


def test_the_long_log_is_the_sample_repeated_back_to_back(tmp_path):
    csv_path, pq_path, rows = write_day(tmp_path, 4)
    assert rows == 2 * 37152
    a, ra = load_events(csv_path)
    b, rb = load_events(pq_path)
    assert ra.rows_read == rb.rows_read == rows and len(a) == len(b)
    assert (a.time_s == b.time_s).all()
    assert a.time_s[-1] - a.time_s[0] == pytest.approx(4 * 3600 - 1.5)  # two 2-hour copies, the second 2 h later
    assert ra.gaps == [] and ra.out_of_order == 0


def test_bench_replay_reports_ingest_and_replay_rates(capsys):
    assert main(["bench", "replay", "--hours", "2", "--repeats", "1", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["events"] == 37152
    for name in ("csv", "parquet"):
        x = r[name]
        assert x["events_per_s"] > 0 and x["ratio_to_plain"] > 0 and x["ingest_peak_mb"] > 0 and x["table_mb"] > 0
    assert set(r["replay"]) == {"actuated", "maxpressure"}
    for x in r["replay"].values():
        assert x["violations"] == 0 and x["simulated_h"] == pytest.approx(2.0, abs=0.01) and x["sim_h_per_wall_s"] > 0


def test_bench_replay_refuses_a_log_shorter_than_its_piece(capsys):
    assert main(["bench", "replay", "--hours", "1"]) == 2
    assert "give at least 2" in capsys.readouterr().err
