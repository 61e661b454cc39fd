"""ATSPM measures of recorded logs with the atspm package: the package's real sample log, the CSV files and plots
of ``ondaverde replay``, preemption service, and the daemon's own event log from a simulated Miraflores run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hw.replay.detector_config import DetectorChannel, detector_config_for, load_detector_config
from hw.replay.events import EventTable, load_events
from hw.replay.measures import MEASURES, compute_measures
from ondaverde.cli import main
from tests.support.simlog import EPOCH_S as T0, simulated_daemon_log

atspm = pytest.importorskip("atspm")  # a declared dependency: importorskip only names the cause if it is missing
SAMPLE = Path(os.path.dirname(atspm.__file__)) / "data"


@pytest.fixture(scope="module")
def sample():
    table, _ = load_events(SAMPLE / "sample_raw_data.parquet")
    config = load_detector_config(SAMPLE / "sample_config.parquet")
    return table, config, compute_measures(table, config)


def test_the_sample_gives_every_measure_the_log_supports(sample):
    table, config, m = sample
    for name in ("volumes", "terminations", "splits", "arrivals_on_green", "split_failures", "ped_delay"):
        assert len(m[name]) > 0, name
    assert len(m["preemption"]) == 0  # the sample holds no preemption event (102)
    assert not (table.code == 102).any()
    # two hours in 15-minute bins
    assert m["splits"]["TimeStamp"].nunique() == 8


def test_sample_volumes_are_the_detector_on_events_of_each_configured_channel(sample):
    table, config, m = sample
    vol = m["volumes"]
    for ch in config:
        logged = int(((table.code == 82) & (table.param == ch.channel)).sum())
        assert vol.loc[vol["Detector"] == ch.channel, "Total"].sum() == logged, ch
    row = vol.iloc[0]
    assert row["Flow_vph"] == row["Total"] * 4


def test_sample_terminations_and_split_services_match_the_log(sample):
    table, config, m = sample
    term = m["terminations"]
    for code, name in ((4, "GapOut"), (5, "MaxOut"), (6, "ForceOff")):
        assert term.loc[term["PerformanceMeasure"] == name, "Total"].sum() == int((table.code == code).sum())
    splits = m["splits"]
    for phase in (2, 5, 6, 8):
        services = splits.loc[splits["Phase"] == phase, "Services"].sum()
        phase_on = int(((table.code == 0) & (table.param == phase)).sum())
        assert phase_on - 2 <= services <= phase_on  # a service cut by the log's start or end is not complete
    assert (splits["Split_Min_s"] <= splits["Split_Mean_s"]).all()
    assert (splits["Split_Mean_s"] <= splits["Split_Max_s"]).all()
    assert (splits["Green_Mean_s"] < splits["Split_Mean_s"]).all()  # the split adds yellow and red clearance


def test_sample_arrivals_on_green_and_split_failures_are_fractions(sample):
    _, _, m = sample
    aog, sf = m["arrivals_on_green"], m["split_failures"]
    assert set(aog["Phase"]) == {2, 5, 6, 8}  # the phases with advance detectors
    assert aog["Percent_AOG"].between(0, 1).all()
    assert sf["Green_Occupancy"].between(0, 1).all() and sf["Red_Occupancy"].between(0, 1).all()
    assert m["ped_delay"]["AvgPedDelay"].gt(0).all()


def test_preemption_service_counts_calls_and_durations():
    # two calls of preempt 1 (40 s and 60 s) and one of preempt 2 (30 s), in the first bin; plus phase events
    rows = [(T0 + 10, 102, 1), (T0 + 11, 105, 1), (T0 + 50, 104, 1), (T0 + 300, 102, 1), (T0 + 360, 104, 1),
            (T0 + 400, 102, 2), (T0 + 430, 104, 2)]
    rows += [(T0 + 60.0 * k, 1, 2) for k in range(14)] + [(T0 + 60.0 * k + 40, 8, 2) for k in range(14)]
    rows += [(T0 + 60.0 * k + 5, 82, 3) for k in range(14)]
    rows.sort()
    t, c, p = (np.array(x) for x in zip(*rows))
    table = EventTable(t.astype(float), np.array(["5"] * len(rows)), c.astype(np.int16), p.astype(np.int16))
    m = compute_measures(table, [DetectorChannel("5", 2, 3, "advance")])
    pre = m["preemption"].set_index("Preempt")
    assert pre.loc[1, "Calls"] == 2 and pre.loc[1, "Duration_Mean_s"] == 50.0 and pre.loc[1, "Duration_Max_s"] == 60.0
    assert pre.loc[2, "Calls"] == 1 and pre.loc[2, "Duration_Mean_s"] == 30.0


def test_replay_command_writes_one_csv_per_measure_and_the_plots(tmp_path, capsys):
    out, plots = tmp_path / "measures", tmp_path / "plots"
    code = main(["replay", str(SAMPLE / "sample_raw_data.parquet"), "--config", str(SAMPLE / "sample_config.parquet"),
                 "--measures", str(out), "--plots", str(plots)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "exact duplicates dropped: 4" in printed and "splits.csv" in printed
    assert sorted(p.stem for p in out.glob("*.csv")) == sorted(MEASURES)
    splits = pd.read_csv(out / "splits.csv")
    assert list(splits.columns[:3]) == ["TimeStamp", "DeviceId", "Phase"] and len(splits) == 32
    for name in ("pcd_1136.png", "split_monitor_1136.png"):
        data = (plots / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.parametrize("args, message", [
    (["--measures", "M"], "--measures need a detector configuration"),
    (["--config", "NOFILE"], "NOFILE: no such file"),
])
def test_replay_command_refuses_missing_inputs_in_one_line(tmp_path, capsys, args, message):
    args = [a if a != "M" else str(tmp_path / "m") for a in args]
    code = main(["replay", str(SAMPLE / "sample_raw_data.parquet"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


@pytest.mark.sumo
def test_the_daemons_log_of_a_simulated_miraflores_run_yields_plausible_measures(tmp_path):
    inters = simulated_daemon_log("miraflores", 900, tmp_path / "events.csv")
    table, report = load_events(tmp_path / "events.csv")
    assert report.layout == "ondaverde event log CSV" and report.rows_unreadable == 0
    config = [c for inter in inters for c in detector_config_for(inter)]
    m = compute_measures(table, config)
    assert len(table.signals()) == len(inters)
    # volumes: every signal counted traffic
    vol = m["volumes"].groupby("DeviceId")["Total"].sum()
    assert set(vol.index) == set(table.signals()) and (vol > 0).all()
    # splits: every green at least its min green; a max-out ends a green that reached max green (the core counts a
    # change after max green as a max-out, also when the green rested past max with nobody waiting)
    timing = {(i.id, k + 1): p for i in inters for k, p in enumerate(i.phases)}
    green = m["timeline"][(m["timeline"]["EventClass"] == "Green") & m["timeline"]["IsValid"]]
    assert len(green) > 100
    mins = np.array([timing[(d, p)].min_green_s for d, p in zip(green["DeviceId"], green["EventValue"])])
    assert (green["Duration"].to_numpy() >= mins - 1e-3).all()
    term = m["terminations"]
    assert term["Total"].sum() > 0  # terminations present: max-outs and, under actuated control, gap-outs
    assert (table.code == 4).sum() > 10 and (table.code == 6).sum() == 0
    maxed = table.take(table.code == 5)
    ends = green.assign(End=(green["EndTime"] - pd.Timestamp(0)).dt.total_seconds())
    checked = 0
    for sid, t, phase in zip(maxed.signal, maxed.time_s, maxed.param):
        hit = ends[(ends["DeviceId"] == sid) & (ends["EventValue"] == phase) & (abs(ends["End"] - t) < 0.05)]
        if len(hit):
            assert float(hit["Duration"].iloc[0]) >= timing[(sid, int(phase))].max_green_s - 1.0
            checked += 1
    assert checked > 10
    splits = m["splits"]
    assert (splits["Split_Mean_s"] > splits["Green_Mean_s"]).all()
    assert m["arrivals_on_green"]["Percent_AOG"].between(0, 1).all() and len(m["arrivals_on_green"]) > 0
