"""The what-if of a recorded log: counts -> flows, recorded timing -> served greens, the generic network's program
against the detector configuration, and the atspm package's real sample run end to end (recorded timing and
actuated control on the same demand and seeds) with one-line errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from controller.errors import InputError
from networks.whatif import (Movement, build_generic_network, generic_approaches, light_movements, phase_combos,
                             program_states, write_nema_program)
from networks.whatif_demand import (LEFT_SHARE, RIGHT_SHARE, PhaseCounts, counted_window, flows_from_counts,
                                    phase_counts)
from networks.whatif_timing import recorded_plan

atspm = pytest.importorskip("atspm")  # a declared dependency: importorskip only names the cause if it is missing
SAMPLE = Path(os.path.dirname(atspm.__file__)) / "data"

# a four-approach crossing as a controller would serve it (W: through phase 2 + left 5, E: 6, S: 8)
MOVES = [Movement(0, "W_in", "S_out", "right", 2), Movement(1, "W_in", "E_out", "through", 2),
         Movement(2, "W_in", "N_out", "left", 2, 5), Movement(3, "E_in", "N_out", "right", 6),
         Movement(4, "E_in", "W_out", "through", 6), Movement(5, "E_in", "W_out", "through", 6),
         Movement(6, "E_in", "S_out", "left", 6), Movement(7, "S_in", "E_out", "right", 8),
         Movement(8, "S_in", "N_out", "through", 8)]


# ------------------------------------------------------------------------------------------- counts -> flows

def test_counts_to_flows_hand_computed():
    counts = PhaseCounts(0.0, 900.0, {2: np.array([100.0, 50.0]), 5: np.array([20.0, 0.0]), 6: np.array([200.0, 0.0]),
                                      8: np.array([30.0, 30.0])})
    flows = {(f.from_edge, f.to_edge, f.begin_s): f.vph for f in flows_from_counts(counts, MOVES)}
    # W: the left phase counts the left turns; the through phase's count is through + right
    assert flows[("W_in", "N_out", 0.0)] == pytest.approx(80.0)                 # 20 per 15 min
    assert flows[("W_in", "S_out", 0.0)] == pytest.approx(400.0 * RIGHT_SHARE)
    assert flows[("W_in", "E_out", 0.0)] == pytest.approx(400.0 * (1 - RIGHT_SHARE))
    assert ("W_in", "N_out", 900.0) not in flows                               # no vehicle, no flow
    assert flows[("W_in", "E_out", 900.0)] == pytest.approx(200.0 * (1 - RIGHT_SHARE))
    # E: no left phase, so the assumed left share of the approach's count
    assert flows[("E_in", "S_out", 0.0)] == pytest.approx(800.0 * LEFT_SHARE)
    assert flows[("E_in", "W_out", 0.0)] == pytest.approx(800.0 * (1 - LEFT_SHARE - RIGHT_SHARE))
    # S has no left movement on this net: its share goes to the movements it has, the total is kept
    s_total = flows[("S_in", "E_out", 0.0)] + flows[("S_in", "N_out", 0.0)]
    assert s_total == pytest.approx(120.0)
    assert flows[("S_in", "E_out", 0.0)] / s_total == pytest.approx(RIGHT_SHARE / (1 - LEFT_SHARE))
    assert sum(v for (_, _, b), v in flows.items() if b == 0.0) == pytest.approx(4 * (100 + 20 + 200 + 30))


def test_recorded_arrivals_one_vehicle_per_actuation():
    from networks.whatif_arrivals import recorded_arrivals

    # phase 2: advance ch 1 and presence ch 2; left phase 5: advance ch 3; phase 6: presence ch 4 only
    detectors = {2: [(1, "advance"), (2, "presence")], 5: [(3, "advance")], 6: [(4, "presence")]}
    t = np.arange(40, dtype=float) * 10.0 + 1000.0
    param = np.array([1] * 20 + [2] * 5 + [3] * 5 + [4] * 10)
    code = np.full(40, 82)
    code[-1] = 81                                                   # an "off" event is no vehicle
    arrivals = recorded_arrivals(t, code, param, detectors, MOVES, 1000.0, 1000.0 + 3600)
    by = {}
    for a in arrivals:
        by.setdefault((a.phase, a.turn), []).append(a)
    assert len(by[(2, "left")]) == 5 and all(a.function == "advance" for a in by[(2, "left")])
    assert len(by[(2, "right")]) + len(by[(2, "through")]) == 20           # the advance loop, not presence
    assert len(by[(2, "right")]) == round(20 * RIGHT_SHARE)
    assert sum(len(v) for (p, _), v in by.items() if p == 6) == 9 and by[(6, "left")][0].function == "presence"
    assert len(by[(6, "left")]) == round(9 * LEFT_SHARE)                  # no left phase on 6: the assumed share
    assert [a.detector_s for a in arrivals] == sorted(a.detector_s for a in arrivals)
    assert arrivals[0].detector_s == 0.0 and not recorded_arrivals(t, code, param, detectors, MOVES, 0.0, 500.0)


def test_phase_counts_prefer_counting_loops_and_bin_by_window():
    # channel 1: advance (phase 2); 2: presence (phase 2); 3: stop-bar count (phase 6); 4: presence (phase 6)
    detectors = {2: [(1, "advance"), (2, "presence")], 6: [(3, "stop_bar_count"), (4, "presence")]}
    t = np.array([10.0, 20.0, 30.0, 40.0, 950.0, 960.0, 970.0, 1900.0])
    code = np.array([82, 82, 82, 81, 82, 82, 82, 82])
    param = np.array([1, 2, 3, 3, 1, 4, 3, 1])
    counts = phase_counts(t, code, param, detectors, 0.0, 2)
    assert counts.sources == {2: ("advance", (1,)), 6: ("stop_bar_count", (3,))}
    assert counts.counts[2].tolist() == [1.0, 1.0]     # presence channel 2 and the event after the window ignored
    assert counts.counts[6].tolist() == [1.0, 1.0]     # detector-off (81) is not a vehicle
    begin, n = counted_window(np.array([1_000_000.0 * 900 + 30, 1_000_000.0 * 900 + 2 * 3600 - 20]))
    assert (begin, n) == (1_000_000.0 * 900, 8)        # starts/ends within a minute of a bin edge: counted
    assert counted_window(np.array([0.0, 3600 - 120.0]))[1] == 3       # the last bin misses 2 min: left out
    assert counted_window(np.array([0.0, 7200.0]), hours=1)[1] == 4
    with pytest.raises(InputError, match="no whole 15-minute bin"):
        counted_window(np.array([0.0, 600.0]))


def test_recorded_plan_from_phase_events():
    combos = phase_combos([2, 5, 6, 8])
    assert combos == [(2, 5), (2, 6), (8,)]
    # phase 2 green before the log starts (its first event is a yellow); 5 leads, 6 follows, then 8; then a
    # begin green of 8 with phase 6 never shown ending: the log lost 6's yellow
    ev = [(0.0, 1, 5), (10.0, 8, 5), (14.0, 10, 5), (15.5, 11, 5), (15.5, 1, 6), (50.0, 8, 2), (50.0, 8, 6),
          (54.0, 10, 2), (54.0, 10, 6), (55.5, 11, 2), (55.5, 11, 6), (55.5, 1, 8), (70.0, 8, 8), (74.0, 10, 8),
          (75.5, 11, 8), (75.5, 1, 6), (75.5, 1, 2), (120.0, 8, 2), (125.0, 1, 8), (140.0, 8, 8)]
    t, code, param = (np.array(x) for x in zip(*ev))
    plan = recorded_plan(t + 1000.0, code, param, combos, begin_s=1000.0)
    assert [(g.phases, g.change_s, g.green_s, g.end_s) for g in plan.greens] == [
        ((2, 5), 0.0, 0.0, 10.0), ((2, 6), 10.0, 15.5, 50.0), ((8,), 50.0, 55.5, 70.0), ((2, 6), 70.0, 75.5, 120.0),
        ((8,), 120.0, 125.0, 140.0)]
    assert [g.combo for g in plan.greens] == [0, 1, 2, 1, 2]
    assert plan.missing_yellows == 1
    assert plan.yellow_s == {2: 4.0, 5: 4.0, 6: 4.0, 8: 4.0}
    assert plan.red_clearance_s == {2: 1.5, 5: 1.5, 6: 1.5, 8: 1.5}
    assert plan.combo_at(-5.0) is None and plan.combo_at(12.0) == 1 and plan.combo_at(60.0) == 2
    # only phase 6 green while ring 1 rests: the combo holding it, counted as approximated
    one = recorded_plan(np.array([0.0, 30.0]), np.array([1, 8]), np.array([6, 6]), combos, 0.0)
    assert [g.combo for g in one.greens] == [1] and one.approximated == 1


def test_field_clearances_outside_mutcd_ranges_are_clamped_and_named():
    from networks.whatif_scenario import field_clearances
    from networks.whatif_timing import RecordedPlan

    plan = RecordedPlan([], yellow_s={2: 4.0, 4: 2.5, 6: 7.0}, red_clearance_s={2: 1.5, 4: 8.0})
    yellow, red, notes = field_clearances(plan)
    assert yellow == {2: 4.0, 4: 3.0, 6: 6.0} and red == {2: 1.5, 4: 6.0}
    assert notes == ["yellow ø4 2.5 s -> 3 s", "yellow ø6 7 s -> 6 s", "red clearance ø4 8 s -> 6 s"]


# ------------------------------------------------------------------------------------------- generic network

@pytest.mark.sumo
@pytest.mark.parametrize("phases", [[2, 5, 6, 8], list(range(1, 9)), [2, 4, 6, 8], [2, 6]])
def test_generic_network_serves_every_configured_phase(tmp_path, phases):
    from networks.derive import derive_intersections

    detectors = {p: [(10 + p, "advance"), (20 + p, "presence")] for p in phases}
    approaches = generic_approaches(detectors, yellow_s={p: 4.0 for p in phases})
    base, edges = build_generic_network(approaches, tmp_path)
    combos = phase_combos(phases)
    tl, n_links, moves = light_movements(base, edges, phases)
    net = write_nema_program(base, tmp_path / "whatif.net.xml", tl, program_states(moves, n_links, combos), combos)
    (inter,) = derive_intersections(net)
    assert len(inter.phases) == len(combos)
    # a recorded vehicle departs so that, at the speed limit, it passes the simulated advance loop on time
    from networks.whatif_arrivals import Arrival, _lanes, write_arrivals
    from networks.detectors import ADVANCE_HEADWAY_S

    approach = edges[phases[0] if phases[0] in edges else 2]
    routes = write_arrivals([Arrival(100.0, approach, moves[0].to_edge, "through", 2, "advance")], net,
                            tmp_path / "a.rou.xml")
    length, speed = _lanes(net)[approach]
    import xml.etree.ElementTree as ET

    (trip,) = ET.parse(routes).getroot().iter("trip")
    assert float(trip.get("depart")) == pytest.approx(100.0 - (length - ADVANCE_HEADWAY_S * speed) / speed, abs=0.01)
    served = {p: set() for p in phases}
    for k, combo in enumerate(combos):
        state = inter.phases[k].state
        for m in moves:
            if state[m.link_index] in "Gg":
                served[m.left_phase if m.turn == "left" and m.left_phase else m.phase].add(k)
        for p in combo:  # every phase of the combo shows green there
            assert any(state[m.link_index] in "Gg" and (m.left_phase == p if m.turn == "left" and m.left_phase
                                                         else m.phase == p) for m in moves), (combo, p)
    assert all(served[p] for p in phases), served
    # every through phase has its approach with a left, a through and a right; a left phase protects its left
    for p in (2, 4, 6, 8):
        turns = {m.turn for m in moves if m.phase == p}
        assert turns == ({"left", "through", "right"} if p in phases else set())
    for m in moves:
        if m.turn == "left" and m.left_phase is not None:
            assert {inter.phases[k].state[m.link_index] for k, c in enumerate(combos) if m.left_phase in c} == {"G"}
            assert {inter.phases[k].state[m.link_index] for k, c in enumerate(combos) if m.left_phase not in c} == {"r"}


def test_generic_geometry_refuses_what_it_cannot_place():
    with pytest.raises(InputError, match="phase 5 .* no through phase 2"):
        generic_approaches({5: [(1, "advance")], 6: [(2, "advance")]})
    with pytest.raises(InputError, match="phases 1-8"):
        phase_combos([2, 9])


# ------------------------------------------------------------------------------------------- the real sample

def _sample():
    from hw.replay.detector_config import channels_for, load_detector_config
    from hw.replay.events import load_events

    table, _ = load_events(SAMPLE / "sample_raw_data.parquet")
    config = load_detector_config(SAMPLE / "sample_config.parquet")
    signal = table.signals()[0]
    return table.for_signal(signal), channels_for(config, signal), signal


@pytest.mark.sumo
def test_sample_scenario_follows_the_log(tmp_path):
    from networks.derive import derive_intersections
    from networks.whatif_scenario import build_whatif

    events, channels, signal = _sample()
    sc = build_whatif(events.time_s, events.code, events.param, channels, signal, tmp_path, hours=1)
    assert sc.combos == ((2, 5), (2, 6), (8,))               # the sample's phases: 2, 5, 6, 8
    assert sc.horizon_s == 3600.0 and sc.counts.n_bins == 4
    (inter,) = derive_intersections(sc.network.net_file, sc.network.override_file)
    # the field's clearances (4.0 s yellow, 1.5 s red clearance in the log) on every link, not the formulas'
    assert {(lk.yellow_s, lk.red_clearance_s) for lk in inter.links} == {(4.0, 1.5)}
    longest = {k: max(v) for k, v in sc.plan.durations_by_combo().items()}
    assert all(inter.phases[k].max_green_s >= d for k, d in longest.items())
    # demand: every counted vehicle of the hour becomes scheduled demand (flows sum to the counts)
    counted = sum(c.sum() for c in sc.counts.counts.values()) * 4 / sc.counts.n_bins   # veh/h
    assert sum(f.vph for f in sc.flows) / sc.counts.n_bins == pytest.approx(counted)
    assert (tmp_path / "network.yaml").is_file()


@pytest.mark.sumo
def test_sample_whatif_end_to_end(tmp_path):
    """Recorded timing and actuated control on the same demand and seeds, with the project's delay metric."""
    from networks.whatif_scenario import build_whatif
    from training.whatif import RECORDED, format_whatif, run_whatif

    events, channels, signal = _sample()
    sc = build_whatif(events.time_s, events.code, events.param, channels, signal, tmp_path, hours=1)
    result = run_whatif(sc, "actuated", seeds=[0, 1], progress=False)
    by = {(r["controller"], r["seed"]): r for r in result["runs"]}
    assert set(by) == {(c, s) for c in (RECORDED, "actuated") for s in (0, 1)}
    for r in result["runs"]:
        assert r["delay"] > 0 and r["violations"] == 0
        assert r["scheduled"] == r["completed"] + r["unfinished"] + r["undeparted"]
    for seed in (0, 1):   # the same demand and seed: the same vehicles scheduled under either timing
        assert by[(RECORDED, seed)]["scheduled"] == by[("actuated", seed)]["scheduled"] > 1000
    # the recorded timing replayed: as many greens per phase as the log served (the start-up adds at most one)
    for row in result["timing_match"]:
        assert abs(row["replayed_greens"] - row["recorded_greens"]) <= 1, row
        assert abs(row["replayed_mean_s"] - row["recorded_mean_s"]) < 2.5, row
    # counts rebuilt from the detectors come back at the detectors
    rows = [r for r in result["count_match"] if r["controller"] == RECORDED]
    assert {r["approach"] for r in rows} == {2, 6, 8}
    assert all(r["geh_max"] < 5 for r in rows), rows
    text = format_whatif(result)
    assert "recorded" in text and "actuated" in text and "GEH" in text


# ------------------------------------------------------------------------------------------- a given network

SINGLE_NET = Path(__file__).resolve().parents[1] / "networks" / "single" / "single.net.xml"


@pytest.mark.sumo
def test_given_network_with_a_mapping(tmp_path):
    """The sample's phases on the bundled `single` crossing: the mapped approaches get the NEMA program and the
    demand; the unmapped north approach stays red."""
    from networks.derive import derive_intersections
    from networks.whatif_scenario import build_whatif

    events, channels, signal = _sample()
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("tl: C\napproaches: {2: west_app, 6: east_app, 8: south_app}\n", encoding="utf-8")
    sc = build_whatif(events.time_s, events.code, events.param, channels, signal, tmp_path / "s", net=SINGLE_NET,
                      mapping=mapping, hours=0.5)
    assert not sc.generic and sc.combos == ((2, 5), (2, 6), (8,))
    (inter,) = derive_intersections(sc.network.net_file, sc.network.override_file)
    north = [lk.index for lk in inter.links if lk.from_lane.startswith("north_app")]
    assert north and all(p.state[i] == "r" for p in inter.phases for i in north)
    assert {f.from_edge for f in sc.flows} == {"west_app", "east_app", "south_app"}
    west_left = [m for m in sc.movements if m.from_edge == "west_app" and m.turn == "left"]
    assert west_left and all(m.left_phase == 5 for m in west_left)


def test_bad_whatif_inputs_are_named(tmp_path):
    from networks.whatif import load_mapping
    from networks.whatif_scenario import build_whatif

    bad = tmp_path / "bad.yaml"
    bad.write_text("approaches: {5: west_app}\n", encoding="utf-8")
    with pytest.raises(InputError, match="phase 5 is not a through phase"):
        load_mapping(bad)
    bad.write_text("tl: C\n", encoding="utf-8")
    with pytest.raises(InputError, match="approaches"):
        load_mapping(bad)
    t, code, param = np.array([0.0, 3600.0]), np.array([1, 8]), np.array([2, 2])
    channel = SimpleNamespace(phase=2, channel=1, function="advance")
    with pytest.raises(InputError, match="no channel"):
        build_whatif(t, code, param, [], "7", tmp_path)
    with pytest.raises(InputError, match="--net and --mapping go together"):
        build_whatif(t, code, param, [channel], "7", tmp_path, net=SINGLE_NET)
    with pytest.raises(InputError, match="no begin-green"):
        build_whatif(t, np.array([82, 82]), np.array([1, 1]), [channel], "7", tmp_path)


@pytest.mark.sumo
def test_mapping_naming_an_edge_the_light_does_not_control(tmp_path):
    from networks.whatif_scenario import build_whatif

    events, channels, signal = _sample()
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("approaches: {2: west_in, 6: east_app, 8: south_app}\n", encoding="utf-8")
    with pytest.raises(InputError, match="'west_in' has no connection controlled by light 'C'"):
        build_whatif(events.time_s, events.code, events.param, channels, signal, tmp_path, net=SINGLE_NET,
                     mapping=mapping, hours=0.5)


# ------------------------------------------------------------------------------------------- the command

@pytest.mark.sumo
def test_command_whatif_json(tmp_path):
    """Two signals in one ATSPM 4 CSV: the sample's, and one with detector events but no phase events, which is
    skipped with a note while the other runs."""
    import pandas as pd

    raw = pd.read_parquet(SAMPLE / "sample_raw_data.parquet")
    raw = raw[raw["TimeStamp"] < raw["TimeStamp"].min() + pd.Timedelta(minutes=40)]
    log = pd.DataFrame({"SignalId": raw["DeviceId"].astype(str), "Timestamp": raw["TimeStamp"].dt.strftime(
        "%Y-%m-%d %H:%M:%S.%f").str[:-5], "EventCode": raw["EventId"], "EventParam": raw["Parameter"]})
    other = pd.DataFrame({"SignalId": "99", "Timestamp": log["Timestamp"].iloc[:50], "EventCode": 82, "EventParam": 1})
    pd.concat([log, other]).to_csv(tmp_path / "two.csv", index=False)
    cfg = pd.read_parquet(SAMPLE / "sample_config.parquet")
    config = pd.DataFrame({"SignalId": cfg["DeviceId"].astype(str), "Phase": cfg["Phase"],
                           "DetectorChannel": cfg["Parameter"], "Function": cfg["Function"]})
    config = pd.concat([config, pd.DataFrame([{"SignalId": "99", "Phase": 2, "DetectorChannel": 1,
                                               "Function": "advance"}])])
    config.to_csv(tmp_path / "detectors.csv", index=False)
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "replay", str(tmp_path / "two.csv"), "--config",
                           str(tmp_path / "detectors.csv"), "--whatif", "--controller", "maxpressure", "--seeds", "3",
                           "--arrivals", "recorded", "--json", "--whatif-dir", str(tmp_path / "kept")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)                             # stdout is the JSON alone
    assert [s["signal"] for s in out["skipped"]] == ["99"] and "begin-green" in out["skipped"][0]["reason"]
    assert "what-if skips signal 99" in proc.stderr
    (result,) = out["whatif"]
    tmp_path = tmp_path / "kept"
    assert result["controllers"] == ["recorded", "maxpressure"] and result["seeds"] == [3]
    assert {r["controller"]: r["runs"] for r in result["summary"]} == {"recorded": 1, "maxpressure": 1}
    assert all(r["delay"] > 0 for r in result["summary"])
    assert result["window"]["bins"] == 2 and result["demand"] == "recorded"
    # one vehicle per actuation of the advance loops (every phase of the sample has one), all of them scheduled
    cfg_adv = set(cfg.loc[cfg["Function"] == "Advance", "Parameter"])
    window = (raw["TimeStamp"] >= raw["TimeStamp"].min()) & (raw["TimeStamp"] < raw["TimeStamp"].min()
                                                             + pd.Timedelta(minutes=30))
    actuations = int(((raw["EventId"] == 82) & raw["Parameter"].isin(cfg_adv) & window).sum())
    assert {r["scheduled"] for r in result["runs"]} == {actuations}
    assert (tmp_path / result["signal"] / "network.yaml").is_file()   # kept: rerunnable with ondaverde evaluate


@pytest.mark.parametrize("args, message", [
    (["--whatif"], "--whatif needs a detector configuration"),
    (["--config", "CFG", "--whatif", "--net", "NET"], "--net and --mapping go together"),
    (["--config", "CFG", "--whatif", "--net", "NET", "--mapping", "BAD"], "phase 5 is not a through phase"),
    (["--config", "CFG", "--whatif", "--controller", "telepathy"], "unknown controller 'telepathy'"),
    (["--config", "CFG", "--whatif", "--controller", "rl"], "--controller rl needs --policy FILE"),
    (["--network", "single", "--whatif"], "--whatif models field logs"),
])
def test_command_whatif_bad_input(tmp_path, capsys, args, message):
    from ondaverde.cli import main

    bad = tmp_path / "mapping.yaml"
    bad.write_text("approaches: {5: west_app}\n", encoding="utf-8")
    files = {"CFG": str(SAMPLE / "sample_config.parquet"), "NET": str(SINGLE_NET), "BAD": str(bad)}
    code = main(["replay", str(SAMPLE / "sample_raw_data.parquet"), *(files.get(a, a) for a in args)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and message in err, err


def test_command_whatif_refuses_hours_that_are_not_positive(capsys):
    from ondaverde.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["replay", str(SAMPLE / "sample_raw_data.parquet"), "--whatif", "--hours", "0"])
    assert exc.value.code == 2 and "hours must be positive" in capsys.readouterr().err


@pytest.mark.sumo
def test_given_network_program_of_another_id_is_replaced(tmp_path):
    """A net whose light's program is not called "0": the NEMA program replaces it instead of joining it."""
    from networks.derive import derive_intersections

    net = tmp_path / "day.net.xml"
    net.write_text(SINGLE_NET.read_text(encoding="utf-8").replace('programID="0"', 'programID="day"'),
                   encoding="utf-8")
    combos = phase_combos([2, 5, 6, 8])
    tl, n_links, moves = light_movements(net, {2: "west_app", 6: "east_app", 8: "south_app"}, [2, 5, 6, 8])
    out = write_nema_program(net, tmp_path / "whatif.net.xml", tl, program_states(moves, n_links, combos), combos)
    assert out.read_text(encoding="utf-8").count("<tlLogic ") == 1
    assert [p.name for p in derive_intersections(out)[0].phases] == ["2+5", "2+6", "8"]
