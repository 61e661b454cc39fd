"""Ingest of recorded hi-res logs: the atspm package's real sample, every file layout, the daemon's own store,
messy logs (counts per problem) and files that are not logs (one-line error)."""

from __future__ import annotations

import csv
import re
import os
from pathlib import Path

import numpy as np
import pytest

from controller.errors import InputError
from controller.events import Event
from hw.eventlog import EventLog, format_timestamp
from hw.replay.detector_config import DetectorChannel, load_detector_config
from hw.replay.events import EventTable, load_events

atspm = pytest.importorskip("atspm")  # a declared dependency: importorskip only names the cause if it is missing
SAMPLE = Path(os.path.dirname(atspm.__file__)) / "data"

# (header, order of the fields signal/time/code/param in a row, timestamp spelling)
LAYOUTS = {
    "atspm4": (["SignalId", "Timestamp", "EventCode", "EventParam"], "stcp", "%Y-%m-%d %H:%M:%S.{f}"),
    "atspm4-csvhelper": (["Signal Id", "Timestamp", "Event Code", "Event Parameter"], "stcp", "%m/%d/%Y %H:%M:%S.{f}"),
    "atspm5-api": (["EventCode", "EventParam", "LocationIdentifier", "Timestamp"], "cpst", "%Y-%m-%dT%H:%M:%S.{f}"),
    "atspm-package": (["TimeStamp", "DeviceId", "EventId", "Parameter"], "tscp", "%Y-%m-%d %H:%M:%S.{f}"),
    "daemon-csv": (["Timestamp", "SignalId", "EventCode", "EventParam"], "tscp", "%Y-%m-%d %H:%M:%S.{f}"),
}


def _stamp(t: float, fmt: str) -> str:
    import datetime as dt

    tenths = round(t * 10)
    moment = dt.datetime.fromtimestamp(tenths // 10, tz=dt.timezone.utc)
    return moment.strftime(fmt).replace("{f}", str(tenths % 10))


def write_log(path: Path, rows: list[tuple[str, float, int, int]], layout: str = "atspm4") -> Path:
    """Write (signal, time s, code, param) rows in one of the layouts."""
    header, order, fmt = LAYOUTS[layout]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for sid, t, code, param in rows:
            field = {"s": sid, "t": _stamp(t, fmt), "c": code, "p": param}
            w.writerow([field[k] for k in order])
    return path


T0 = 1_713_182_400.0  # 2024-04-15 12:00:00 UTC
ROWS = [("7", T0 + 0.0, 1, 2), ("7", T0 + 0.0, 1, 6), ("7", T0 + 1.5, 82, 4), ("9", T0 + 2.0, 1, 4),
        ("7", T0 + 2.3, 81, 4), ("9", T0 + 30.0, 8, 4), ("7", T0 + 31.0, 8, 2), ("7", T0 + 31.0, 8, 6)]


def test_the_atspm_sample_loads_sorted_with_its_counts():
    table, report = load_events(SAMPLE / "sample_raw_data.parquet")
    assert report.layout == "atspm package"
    assert report.rows_read == 37152  # the file's own row count
    assert report.rows_kept + report.duplicates_dropped == report.rows_read
    assert table.signals() == ["1136"]
    assert table.time_s.dtype == np.float64 and table.code.dtype == np.int16 and table.param.dtype == np.int16
    assert np.all(np.diff(table.time_s) >= 0)
    same_time = np.diff(table.time_s) == 0
    assert np.all(np.diff(table.code)[same_time] >= 0)  # ties by code
    # 2024-04-15 12:00:00 to 13:59:58.5 as written
    assert table.time_s[0] == T0 and table.time_s[-1] == T0 + 2 * 3600 - 1.5
    assert report.unknown_codes == int((table.code >= 300).sum()) > 0  # vendor codes kept
    assert np.all(np.round(table.time_s * 10) == table.time_s * 10)


def test_the_atspm_sample_detector_configuration_loads_with_mapped_functions():
    channels = load_detector_config(SAMPLE / "sample_config.parquet")
    assert len(channels) == 16
    assert {c.function for c in channels} == {"advance", "presence", "stop_bar_count", "yellow_red"}
    assert DetectorChannel("1136", 6, 46, "yellow_red") in channels
    assert all(c.signal == "1136" for c in channels)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_csv_layout_reads_the_same_events(tmp_path, layout):
    table, report = load_events(write_log(tmp_path / "log.csv", ROWS, layout))
    assert report.rows_read == len(ROWS) and report.rows_kept == len(ROWS) and report.rows_unreadable == 0
    assert table.signals() == ["7", "9"]
    expected = sorted((s, round(t, 1), c, p) for s, t, c, p in ROWS)
    got = list(zip(table.signal.tolist(), table.time_s.tolist(), table.code.tolist(), table.param.tolist()))
    assert got == expected


def test_parquet_in_the_atspm4_layout_and_the_signal_filter(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.table({"SignalId": [r[0] for r in ROWS],
                  "Timestamp": pa.array([int(r[1] * 1e6) for r in ROWS], pa.timestamp("us")),
                  "EventCode": [r[2] for r in ROWS], "EventParam": [r[3] for r in ROWS]})
    pq.write_table(t, tmp_path / "log.parquet")
    table, report = load_events(tmp_path / "log.parquet", signal="9")
    assert report.layout == "ATSPM 4"
    assert table.signals() == ["9"] and len(table) == 2 and report.rows_read == len(ROWS)
    with pytest.raises(InputError, match="signal '5' is not in the log"):
        load_events(tmp_path / "log.parquet", signal="5")


def test_the_daemons_sqlite_log_and_its_csv_export_read_alike(tmp_path):
    log = EventLog(tmp_path / "events.sqlite", epoch_s=T0)
    log.append([Event(t - T0, s, c, p) for s, t, c, p in ROWS])
    log.export_csv(tmp_path / "events.csv")
    log.close()
    from_db, r_db = load_events(tmp_path / "events.sqlite")
    from_csv, r_csv = load_events(tmp_path / "events.csv")
    assert r_db.layout == "ondaverde event log (SQLite)" and r_csv.layout == "ondaverde event log CSV"
    for a, b in [(from_db.time_s, from_csv.time_s), (from_db.signal, from_csv.signal),
                 (from_db.code, from_csv.code), (from_db.param, from_csv.param)]:
        assert np.array_equal(a, b)
    assert len(from_db) == len(ROWS)


def test_a_messy_log_reports_each_problem_and_keeps_the_good_rows(tmp_path):
    rows = list(ROWS)
    rows.insert(3, ROWS[2])  # 2 exact duplicates, each next to its original
    rows.insert(6, ROWS[4])
    rows += [("7", T0 + 40.0, 82, 5), ("7", T0 + 35.0, 81, 5)]  # 1 out of order (35 s after 40 s)
    rows += [("7", T0 + 40.0, 305, 42), ("7", T0 + 40.0, 400, 1)]  # 2 vendor codes
    rows += [("7", T0 + 40.0 + 7 * 60, 1, 2)]  # a 7-minute gap in signal 7
    chatter = [("9", T0 + 100.0 + 0.3 * k, 82 if k % 2 == 0 else 81, 12) for k in range(100)]  # 100 changes in 30 s
    # 70 in 60 s: a lane near capacity (35 vehicles a minute), traffic, not chatter
    chatter += [("9", T0 + 200.0 + 0.85 * k, 82 if k % 2 == 0 else 81, 13) for k in range(70)]
    path = write_log(tmp_path / "messy.csv", rows + chatter)
    with open(path, "a") as f:
        f.write("7,not a time,1,2\n7,2024-04-15 12:00:05.0,one,2\n7,2024-04-15 12:00:05.0,1\n,2024-04-15 12:00:05.0,1,2\n")
    table, report = load_events(path, gap_minutes=5)
    assert report.rows_unreadable == 4
    assert report.duplicates_dropped == 2
    assert report.out_of_order == 1
    assert report.unknown_codes == 2
    assert [(s, e - b) for s, b, e in report.gaps] == [("7", 7 * 60.0)]
    assert report.chattering == [("9", 12)]
    assert report.rows_read == len(rows) + len(chatter) + 4
    assert len(table) == len(rows) + len(chatter) - 2
    assert "exact duplicates dropped: 2" in report.summary()


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"name,age\nann,3\n", "not an event log (no column for signal, time, code, param"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
    (b"SignalId,Timestamp,EventCode,EventParam\nx,yesterday,a,b\n", "none of its 1 rows is readable"),
    (b"SQLite format 3\x00" + b"\x00" * 200, "not an ondaverde event log"),
    (b"PAR1garbage", "cannot read as Parquet"),
])
def test_files_that_are_not_logs_raise_one_line(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)) as info:
        load_events(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content, message", [
    (b"SignalId,Phase,DetectorChannel,Function\n1,2,3,radar\n", "unknown detector function 'radar'"),
    (b"SignalId,Phase,DetectorChannel,Function\n1,20,3,Advance\n", "phase 20 is not a NEMA phase"),
    (b"SignalId,Phase,DetectorChannel,Function\n1,2,3,Advance\n1,4,3,Presence\n", "already given on row 2"),
    (b"SignalId,Phase\n1,2\n", "no column for channel, function"),
])
def test_bad_detector_configurations_raise_one_line(tmp_path, content, message):
    path = tmp_path / "det.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_detector_config(path)


def test_detector_config_csv_in_both_layouts(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("SignalId,Phase,DetectorChannel,Function\n7,2,4,Stop Bar Count\n7,2,5,advance\n")
    b = tmp_path / "b.csv"
    b.write_text("DeviceId,Phase,Parameter,Function\n7,2,4,stop bar count\n7,2,5,Advance\n")
    assert load_detector_config(a) == load_detector_config(b) == [
        DetectorChannel("7", 2, 4, "stop_bar_count"), DetectorChannel("7", 2, 5, "advance")]


def test_event_table_slices_one_signal():
    table = EventTable(np.array([1.0, 2.0, 0.5]), np.array(["a", "a", "b"]), np.array([1, 8, 1], np.int16),
                       np.array([2, 2, 4], np.int16))
    b = table.for_signal("b")
    assert b.signal.tolist() == ["b"] and b.time_s.tolist() == [0.5]
    assert len(table.for_signal("c")) == 0


def test_the_replay_command_refuses_a_file_that_is_not_a_log_in_one_line(tmp_path, capsys):
    from ondaverde.cli import main

    bad = tmp_path / "notes.csv"
    bad.write_text("shopping list\neggs\n")
    assert main(["replay", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an event log" in err and "Traceback" not in err
    assert main(["replay", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_timestamp_spellings_of_other_exports(tmp_path):
    path = tmp_path / "spellings.csv"
    path.write_text("SignalId,Timestamp,EventCode,EventParam\n"
                    "7,4/5/2024 9:01:02.3,1,2\n"            # US month first, one-digit month, day and hour
                    "7,04-15-2024 12:00:00.5,1,2\n"         # MaxTime
                    "7,4/15/2024 1:00:00 PM,1,2\n"          # 12-hour clock
                    "7,2024-04-15T12:30:00.1Z,1,2\n"        # ISO with a zone
                    "7,2024-04-15 12:45:00.25,1,2\n")       # ISO, rounded to 0.1 s
    table, report = load_events(path)
    assert report.rows_unreadable == 0
    import datetime as dt

    got = [dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:21] for t in table.time_s]
    assert got == ["2024-04-05 09:01:02.3", "2024-04-15 12:00:00.5", "2024-04-15 12:30:00.1",
                   "2024-04-15 12:45:00.2", "2024-04-15 13:00:00.0"]
