"""Radar tracks and dilemma-zone protection: implausible tracks dropped and counted, channel faults, approach-speed
records, the guard's hold never beyond max green (max-out logged), and in SUMO fewer vehicles caught in the
dilemma zone at yellow onsets than the same control without it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from controller.dilemma_zone import DilemmaZoneGuard, DilemmaZoneSettings
from controller.events import EventCode, EventRecorder
from controller.policies.base import DetectorReadings
from controller.policies.registry import make_policy
from controller.radar import MAX_SPEED_MPS, RadarWatch, SpeedRecorder, Track
from controller.signal_controller import SignalController
from controller.testing import two_phase_intersection

RADAR_OF_LINK = {0: 2, 1: 6, 2: 10, 3: 14}  # two_phase_intersection: detector index of each link's radar zone


def test_implausible_tracks_are_dropped_and_counted_by_reason():
    watch = RadarWatch(two_phase_intersection())
    garbage = [Track(2, 1, -5.0, 10.0), Track(2, 2, 50.0, MAX_SPEED_MPS + 0.1), Track(2, 3, math.nan, 10.0),
               Track(2, 4, 50.0, math.inf), Track(0, 5, 50.0, 10.0), Track(2, 6, 50.0, -1.0)]
    good = [Track(2, 7, 0.0, 0.0), Track(6, 8, 149.0, MAX_SPEED_MPS)]
    kept = watch.receive(0.0, garbage + good)
    assert kept == good and watch.dropped == len(garbage) and watch.accepted == 2
    assert watch.dropped_by_reason == {"negative range": 1, "speed over limit": 1, "not a number": 2,
                                       "unknown channel": 1, "negative speed": 1}


def test_a_radar_channel_sending_garbage_fails_with_84_and_is_restored_with_83():
    watch = RadarWatch(two_phase_intersection(), fault_after=5, window_s=60.0, restore_s=30.0)
    for t in range(10):
        kept = watch.receive(float(t), [Track(2, t, -1.0, 10.0), Track(2, 100, 40.0, 10.0)])
    assert watch.failed == {2} and kept == []  # a failed channel's plausible-looking tracks are not trusted
    assert [(e.code, e.param) for e in watch.events] == [(EventCode.DETECTOR_FAULT_OTHER, 3)]
    for t in range(10, 60):
        kept = watch.receive(float(t), [Track(2, 100, 40.0, 10.0)])
    assert watch.failed == set() and kept == [Track(2, 100, 40.0, 10.0)]
    assert [e.code for e in watch.events] == [EventCode.DETECTOR_FAULT_OTHER, EventCode.DETECTOR_RESTORED]


def test_approach_speed_records_give_mean_and_85th_percentile_per_period_counting_each_vehicle_once():
    rec = SpeedRecorder("X", period_s=900.0)
    rng = np.random.default_rng(3)
    speeds = rng.normal(13.0, 2.0, 200).clip(2.0, 30.0)
    out = []
    for k, v in enumerate(speeds):  # each vehicle seen for 5 scans, slowing down: only its first speed counts
        for s in range(5):
            out += rec.observe(4.0 * k + s, [Track(2, k, 150.0 - 10 * s, v - s)])
    out += rec.observe(1800.0, [])
    first = [r for r in out if r.start_s == 0.0]
    assert len(first) == 1 and first[0].channel == 3
    n = int(np.sum(4.0 * np.arange(200) < 900.0))
    assert first[0].vehicles == n
    assert first[0].mean_mps == pytest.approx(speeds[:n].mean())
    assert first[0].p85_mps == pytest.approx(np.percentile(speeds[:n], 85))


def _run(guarded: bool, tracks_at, seconds: int = 200, max_green_s: float = 30.0):
    inter = two_phase_intersection(min_green_s=5.0, max_green_s=max_green_s)
    guard = DilemmaZoneGuard(inter) if guarded else None
    ctrl = SignalController(inter, make_policy("actuated"), dilemma=guard)
    rec = EventRecorder(inter)
    states, events = [], []
    for t in range(seconds):
        readings = DetectorReadings.empty(len(inter.detectors), float(t))
        # each phase's stop-bar loop sees a car only while the other phase is green: every green has a call
        # waiting and, with no actuation of its own, gaps out at min green
        readings.occupied[0] = ctrl.machine.phase == 1
        readings.occupied[8] = ctrl.machine.phase == 0
        if guard is not None:
            guard.update(tracks_at(t))
        state = ctrl.step(readings)
        m = ctrl.machine
        events += rec.observe(float(t), ctrl.interval, m.phase, state, m.may_end_green(), None, m.stats.max_outs)
        states.append(state)
    assert not ctrl.monitor.violations
    return states, events, ctrl


def _greens(states: list[str], link: int) -> list[int]:
    runs, n = [], 0
    for s in states:
        if s[link] == "G":
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_the_guard_holds_a_green_for_a_vehicle_in_the_dilemma_zone_and_lets_it_go_after():
    # one vehicle at 13.9 m/s approaching on link 0 (phase 0), at the stop bar at t = 12 s
    def eta_at(t):
        return 12.0 - t

    def tracks(t):
        return [Track(RADAR_OF_LINK[0], 1, 13.9 * eta_at(t), 13.9)] if eta_at(t) > 0 else []

    plain, _, _ = _run(False, tracks, 60)
    guarded, _, ctrl = _run(True, tracks, 60)
    assert ctrl.dilemma.holds > 0
    # without the guard the first green gaps out while the vehicle is 2.5-5.5 s out; with it, it ends after
    end_plain = _greens(plain, 0)[0] + 2  # start-up all-red is 2 s
    end_guarded = _greens(guarded, 0)[0] + 2
    assert 2.5 <= eta_at(end_plain) <= 5.5
    assert eta_at(end_guarded) < 2.5


def test_the_guard_never_holds_beyond_max_green_and_the_max_out_is_logged():
    # a vehicle in the dilemma zone of phase 0 at every second: only max green ends its greens
    def tracks(t):
        return [Track(RADAR_OF_LINK[0], t, 40.0, 10.0)]

    states, events, ctrl = _run(True, tracks, 300, max_green_s=30.0)
    greens = _greens(states, 0)
    assert len(greens) >= 3 and max(greens) == 30  # held to max green, never past it
    assert sum(1 for e in events if e.code == EventCode.MAX_OUT and e.param == 1) >= len(greens) - 1
    assert ctrl.dilemma.holds > 0


def test_dilemma_zone_settings_are_checked():
    with pytest.raises(ValueError):
        DilemmaZoneSettings(eta_min_s=5.0, eta_max_s=2.0)
    s = DilemmaZoneSettings()
    assert s.caught(40.0, 10.0) and not s.caught(10.0, 10.0) and not s.caught(40.0, 3.0)


@pytest.mark.sumo
def test_dilemma_zone_protection_catches_fewer_vehicles_at_yellow_onset_in_sumo_with_delay_about_the_same():
    from envs.runner import run_episode
    from networks.catalog import load_network

    net = load_network("single")
    plain = run_episode(net, "base", "actuated", 0, dilemma_zone="count").record()
    guarded = run_episode(net, "base", "actuated", 0, dilemma_zone="protect").record()
    print("dilemma zone, single, actuated, seed 0:", {k: (plain[k], guarded[k]) for k in
                                                      ("dilemma_caught", "yellow_onsets", "delay", "max_outs")})
    assert plain["dilemma_holds"] == 0 and guarded["dilemma_holds"] > 0
    assert plain["dilemma_caught"] >= 20  # the measure sees the problem at all
    assert guarded["dilemma_caught"] <= 0.7 * plain["dilemma_caught"]
    assert guarded["delay"] <= 1.10 * plain["delay"]  # measured +1.1 % on this seed, +1.9 % over seeds 0-2
    assert guarded["violations"] == plain["violations"] == 0 and guarded["radar_dropped"] == 0


def test_a_held_end_is_final_once_the_zone_clears_unless_configured_otherwise():
    from controller.policies.base import Interval, SignalView

    inter = two_phase_intersection()

    def view(elapsed):
        return SignalView(inter, DetectorReadings.empty(len(inter.detectors)), 0, 0, Interval.GREEN, elapsed, True)

    for final, expected in ((True, 1), (False, 0)):
        guard = DilemmaZoneGuard(inter, DilemmaZoneSettings(final_end=final))
        guard.update([Track(RADAR_OF_LINK[0], 1, 50.0, 12.5)])  # ETA 4 s
        assert guard.choose(view(10.0), 1) == 0  # the policy gapped out: held
        guard.update([])  # the vehicle is through; a new actuation makes the policy want to extend again
        assert guard.choose(view(11.0), 0) == expected


@pytest.mark.sumo
def test_radar_tracks_reach_the_daemon_through_a_virtual_radar_in_the_field_loop():
    from hw.sil import run_sumo_loop

    summary = run_sumo_loop("single", None, 0, "actuated", 20.0, None, duration_s=200, dilemma_zone=True)
    # SUMO's vehicles in the radar zones → Modbus → the daemon's radar watch → its dilemma-zone guard
    assert summary["radar_tracks"] > 1000 and summary["radar_dropped"] == 0 and summary["dilemma_holds"] > 0
    assert summary["faults"] == summary["core_faults"] == 0 and summary["yellow_onsets"] > 0


def test_a_bad_radar_setting_is_listed_with_its_path():
    from hw.daemon_config import ConfigError, parse_config

    config = {"network": "single", "intersections": [{"id": "C", "backend": "modbus", "address": "127.0.0.1:1502",
                                                      "radar": "radar-box", "radar_unit": 0}]}
    with pytest.raises(ConfigError) as exc:
        parse_config(config, "d.yaml")
    assert any(p.startswith("intersections[0].radar: 'radar-box'") for p in exc.value.problems)
    assert any(p.startswith("intersections[0].radar_unit: 0") for p in exc.value.problems)
    ok = parse_config({**config, "intersections": [{**config["intersections"][0], "radar": "127.0.0.1:15030",
                                                    "radar_unit": 2}]})
    assert ok.intersections[0].radar == ("127.0.0.1", 15030) and ok.intersections[0].radar_unit == 2


@pytest.mark.sumo
def test_a_vehicle_past_the_stop_line_is_no_track_of_its_approach_zone():
    """SUMO keeps a vehicle in a zone while its back is in it; once its front is past the stop line (on the
    junction's internal lane) it is no track of that approach: its position there is no range to this stop line (it
    was read as one, giving about the lane's length)."""
    from envs.simulation import SignalSimulation
    from networks.catalog import load_network

    net = load_network("single")
    sc = net.scenario("base")
    sim = SignalSimulation(net, sc, 0, policies={"C": make_policy("actuated")}, dilemma_zone="count")
    try:
        api, radar = sim.backend.api, sim.radar
        zone_lane = {d.id: d.lane for d in sim.intersections[0].detectors if d.kind == "radar"}
        straddling = tracks = 0
        while sim.time_s < sc.begin_s + 900:
            sim.advance()
            in_zones = {vid: lane for det, lane in zone_lane.items()
                        for vid in api.lanearea.getLastStepVehicleIDs(det)}
            straddling += sum(api.vehicle.getLaneID(vid) != lane for vid, lane in in_zones.items())
            for track in radar.tracks()[0]:
                tracks += 1
                det = sim.intersections[0].detectors[track.channel]
                vid = next(v for v, k in radar._ids.items() if k == track.track_id)
                assert api.vehicle.getLaneID(vid) == det.lane, (vid, track)
                assert track.range_m == pytest.approx(api.lane.getLength(det.lane) - api.vehicle.getLanePosition(vid))
        assert straddling > 50 and tracks > 1000  # the case occurs, and tracks are still reported
    finally:
        sim.cleanup()


@pytest.mark.sumo
def test_the_dilemma_count_follows_a_short_block_upstream_to_the_vehicles_heading_for_the_yellow(tmp_path):
    """A 40 m block (shorter than the zone's reach, about 77 m at 50 km/h) puts a vehicle 4 s from the stop line on
    the lane before the approach, across an unsignalised junction. At a yellow onset it is counted when it heads
    for a link turning yellow (it was not: the count looked at the approach lane only), and a vehicle as close
    heading for a link that stays green is not."""
    import subprocess

    import traci

    from envs.radar_tracks import SumoRadar
    from networks.derive import derive_intersections
    from networks.sumo_home import sumo_home

    bin_dir = sumo_home() / "bin"
    (tmp_path / "n.nod.xml").write_text(
        '<nodes><node id="W" x="0" y="0"/><node id="M" x="200" y="0" type="priority"/>'
        '<node id="C" x="240" y="0" type="traffic_light"/><node id="E" x="440" y="0"/>'
        '<node id="N" x="240" y="200"/><node id="S" x="240" y="-200"/></nodes>')
    (tmp_path / "n.edg.xml").write_text(
        '<edges><edge id="WM" from="W" to="M" numLanes="1" speed="13.89"/>'
        '<edge id="MC" from="M" to="C" numLanes="1" speed="13.89"/>'
        '<edge id="CE" from="C" to="E" numLanes="1" speed="13.89"/><edge id="CN" from="C" to="N" numLanes="1" speed="13.89"/>'
        '<edge id="SC" from="S" to="C" numLanes="1" speed="13.89"/></edges>')
    net = tmp_path / "n.net.xml"
    proc = subprocess.run([str(bin_dir / "netconvert"), "-n", str(tmp_path / "n.nod.xml"), "-e",
                           str(tmp_path / "n.edg.xml"), "-o", str(net), "--no-turnarounds"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "r.rou.xml").write_text(
        '<routes><vType id="t" sigma="0" speedDev="0"/>'
        '<vehicle id="through" type="t" depart="0" departSpeed="max"><route edges="WM MC CE"/></vehicle>'
        '<vehicle id="left" type="t" depart="1" departSpeed="max"><route edges="WM MC CN"/></vehicle></routes>')
    inter = next(i for i in derive_intersections(net) if i.id == "C")
    through = next(l.index for l in inter.links if l.from_lane == "MC_0" and l.to_lane == "CE_0")
    traci.start([str(bin_dir / "sumo"), "-n", str(net), "-r", str(tmp_path / "r.rou.xml"), "--no-step-log",
                 "--no-warnings"])
    try:
        radar = SumoRadar(traci, [inter])
        green = "".join("G" if l.from_lane == "MC_0" else "r" for l in inter.links)
        yellow = "".join("y" if i == through else c for i, c in enumerate(green))
        radar.count_onsets([green])  # the approach turns green: no onset
        settings = radar.settings

        def ahead(vid):
            tls, link, metres, _ = traci.vehicle.getNextTLS(vid)[0]
            return link, metres, traci.vehicle.getSpeed(vid)

        while True:
            traci.simulationStep()
            ids = traci.vehicle.getIDList()
            if "left" in ids and ahead("through")[1] <= 60.0:
                break
        assert traci.vehicle.getLaneID("through") == "WM_0" and traci.vehicle.getLaneID("left") == "WM_0"
        link, metres, speed = ahead("through")
        assert link == through and settings.caught(metres, speed)
        link, metres, speed = ahead("left")
        assert link != through and settings.caught(metres, speed)  # as close, but its link stays green
        radar.count_onsets([yellow])
        assert (radar.onsets, radar.caught) == (1, 1)
    finally:
        traci.close()
