"""Detector health: stuck on, stuck off, chattering, recovery; and a failed detector's phase on recall."""

from __future__ import annotations

import numpy as np

from controller.detector_health import DetectorHealth, HealthSettings
from controller.events import EventCode
from controller.policies.base import DetectorReadings, Interval
from controller.policies.registry import make_policy
from controller.signal_controller import SignalController
from controller.testing import two_phase_intersection

C = EventCode


def _run(health: DetectorHealth, pattern, seconds: int) -> list:
    n = len(health.intersection.detectors)
    events = []
    for t in range(seconds):
        occ = np.zeros(n, dtype=bool)
        occ[0] = pattern(t)
        events += [(e.time_s, e.code, e.param) for e in health.update(float(t), occ)]
    return events


def _first_loop(inter) -> int:
    return next(k for k, d in enumerate(inter.detectors) if d.kind in ("stopbar", "advance"))


def test_a_loop_stuck_on_is_a_shorted_fault_and_recovers_after_plausible_behaviour():
    inter = two_phase_intersection()
    assert _first_loop(inter) == 0
    health = DetectorHealth(inter, HealthSettings(stuck_on_s=300, recover_s=120))
    events = _run(health, lambda t: t < 400 or t % 7 == 0, 700)
    assert (301.0, C.DETECTOR_FAULT_SHORTED, 1) in events
    restored = [e for e in events if e[1] == C.DETECTOR_RESTORED]
    assert restored and 400 + 119 <= restored[0][0] <= 400 + 130
    assert not health.failed[0]


def test_a_loop_that_goes_quiet_is_an_open_fault_scaled_to_its_own_flow():
    health = DetectorHealth(two_phase_intersection(), HealthSettings(stuck_off_min_s=600, stuck_off_gaps=20))
    events = _run(health, lambda t: t < 1000 and t % 5 == 0, 2000)
    open_faults = [e for e in events if e[1] == C.DETECTOR_FAULT_OPEN]
    assert len(open_faults) == 1 and 995 + 600 <= open_faults[0][0] <= 995 + 602  # 600 s floor beats 20 gaps (100 s)
    quiet_road = DetectorHealth(two_phase_intersection(), HealthSettings(stuck_off_min_s=60, stuck_off_gaps=20))
    events = _run(quiet_road, lambda t: t % 50 == 0, 900)  # one car every 50 s: never 20 gaps (1000 s) of silence
    assert not [e for e in events if e[1] == C.DETECTOR_FAULT_OPEN]


def test_a_chattering_detector_is_an_excessive_change_fault():
    health = DetectorHealth(two_phase_intersection(), HealthSettings(chatter_changes=40, chatter_window_s=60))
    events = _run(health, lambda t: t % 2 == 0, 100)
    assert [e[1] for e in events] == [C.DETECTOR_FAULT_EXCESSIVE_CHANGE]
    assert health.fault(0) == "chatter"


def test_saturated_traffic_read_once_a_second_is_not_chattering_by_default():
    """A lane at capacity read once a second changes at most every second (a vehicle on, a gap off): 60 changes a
    minute, which the default threshold (more than traffic can make) never takes for a fault. (The daemon flagged a
    busy Óvalo loop with the old default of 40 and put its phase on recall.)"""
    health = DetectorHealth(two_phase_intersection())
    assert _run(health, lambda t: t % 2 == 0, 600) == []
    # polled four times a second, a loop flickering at every poll (240 changes a minute) is caught by the default
    fast = DetectorHealth(two_phase_intersection())
    n = len(fast.intersection.detectors)
    codes = []
    for k in range(4 * 120):
        occ = np.zeros(n, dtype=bool)
        occ[0] = k % 2 == 0
        codes += [e.code for e in fast.update(k / 4, occ)]
    assert codes == [C.DETECTOR_FAULT_EXCESSIVE_CHANGE]


def test_a_chattering_detector_that_goes_quiet_is_restored():
    health = DetectorHealth(two_phase_intersection(), HealthSettings(chatter_changes=40, chatter_window_s=60,
                                                                     recover_s=120))
    events = _run(health, lambda t: t < 100 and t % 2 == 0, 400)  # quiet (empty road) from 100 s on
    assert [e[1] for e in events] == [C.DETECTOR_FAULT_EXCESSIVE_CHANGE, C.DETECTOR_RESTORED]
    assert not health.failed[0]


def test_a_radar_zone_with_a_standing_queue_is_not_stuck_on():
    inter = two_phase_intersection()
    zone = next((k for k, d in enumerate(inter.detectors) if d.kind == "radar"), None)
    assert zone is not None  # the test layout has radar zones
    health = DetectorHealth(inter, HealthSettings(stuck_on_s=60))
    n = len(inter.detectors)
    for t in range(600):
        occ = np.zeros(n, dtype=bool)
        occ[zone] = True
        assert not health.update(float(t), occ)


def test_a_failed_detector_puts_its_phase_on_recall_instead_of_extending_it_forever():
    inter = two_phase_intersection(min_green_s=5, max_green_s=40)
    n = len(inter.detectors)
    other = next(k for k, d in enumerate(inter.detectors)  # the other phase's stop-bar loop
                 if d.kind == "stopbar" and set(d.links) <= inter.phases[1].greens)

    def greens_of_phase_0(health):
        ctrl = SignalController(inter, make_policy("actuated"), health=health)
        runs, current = [], 0
        for t in range(1200):
            r = DetectorReadings.empty(n, float(t))
            r.occupied[0] = True  # the phase-0 stop-bar loop is stuck on
            r.occupancy[0] = 1.0
            r.occupied[other] = t % 10 == 0  # some demand on the other phase
            r.count[other] = float(t % 10 == 0)
            ctrl.step(r)
            green0 = ctrl.machine.interval is Interval.GREEN and ctrl.machine.phase == 0
            if green0:
                current += 1
            elif current:
                runs.append(current)
                current = 0
        return runs, ctrl

    stuck, _ = greens_of_phase_0(None)
    recalled, ctrl = greens_of_phase_0(DetectorHealth(inter, HealthSettings(stuck_on_s=60, recall="min")))
    assert max(stuck[2:]) >= 40  # trusted, the stuck loop holds phase 0 to max green
    assert len(recalled) >= len(stuck) and max(recalled[5:]) < 40  # on recall it is served every cycle, not held
    assert [e.code for e in ctrl.events] == [C.DETECTOR_FAULT_SHORTED] and ctrl.events[0].param == 1
    assert not ctrl.monitor.violations


def _run_pair(health: DetectorHealth, stopbar, advance, seconds: int) -> list:
    """Lane 0's stop-bar (detector 0) and advance loop (detector 1) fed presence and per-second counts: a rising
    edge is one vehicle, as a controller counts them."""
    n = len(health.intersection.detectors)
    events, before = [], np.zeros(n, dtype=bool)
    for t in range(seconds):
        occ = np.zeros(n, dtype=bool)
        occ[0], occ[1] = stopbar(t), advance(t)
        counts = (occ & ~before).astype(float)
        before = occ
        events += [(e.time_s, e.code, e.param) for e in health.update(float(t), occ, counts)]
    return events


def test_a_loop_counting_far_more_than_its_lane_mate_is_chattering_even_at_a_one_second_poll():
    """Read once a second, a stop bar flickering on and off looks like a lane at capacity to the change rate (60 a
    minute, under the default), but it counts 30 vehicles a minute where the advance loop on its lane saw 6."""
    inter = two_phase_intersection()
    assert [inter.detectors[k].kind for k in (0, 1)] == ["stopbar", "advance"]
    assert inter.detectors[0].lane == inter.detectors[1].lane
    health = DetectorHealth(inter)
    events = _run_pair(health, lambda t: t % 2 == 0, lambda t: t % 10 == 0, 600)
    faults = [e for e in events if e[1] == C.DETECTOR_FAULT_EXCESSIVE_CHANGE]
    assert [e[2] for e in faults] == [1]  # the stop bar (channel 1) only, not its lane-mate
    assert 150 < faults[0][0] <= 160  # once both halves of the 300 s window show it (it counted 40 by 80 s)
    assert health.fault(0) == "chatter" and health.fault(1) is None


def test_lane_mates_that_agree_are_not_judged_and_a_dead_mate_is_no_reference():
    # a busy lane: both loops count the same 30 vehicles a minute, for ten minutes
    busy = DetectorHealth(two_phase_intersection())
    assert _run_pair(busy, lambda t: t % 2 == 0, lambda t: t % 2 == 1, 600) == []
    # a lane of 20 % more at the stop bar (vehicles changing lanes in between) is traffic, not a fault
    merging = DetectorHealth(two_phase_intersection())
    assert _run_pair(merging, lambda t: t % 5 in (0, 2), lambda t: t % 5 == 0 or t % 10 == 3, 600) == []
    # an advance loop gone dead: the stop bar must not be blamed (the dead loop is found stuck off on its own)
    dead = DetectorHealth(two_phase_intersection(), HealthSettings(stuck_off_min_s=300))
    events = _run_pair(dead, lambda t: t % 4 == 0, lambda t: t < 100 and t % 4 == 1, 900)
    assert {e[2] for e in events if e[1] != C.DETECTOR_RESTORED} == {2}
    assert [e[1] for e in events] == [C.DETECTOR_FAULT_OPEN]
    assert dead.fault(0) is None


def test_an_overcounting_loop_is_restored_once_it_agrees_with_its_lane_mate_again():
    health = DetectorHealth(two_phase_intersection(), HealthSettings(recover_s=120, lane_mate_window_s=300))
    events = _run_pair(health, lambda t: t % 2 == 0 if t < 400 else t % 10 == 0, lambda t: t % 10 == 0, 1200)
    codes = [(e[1], e[2]) for e in events]
    assert codes == [(C.DETECTOR_FAULT_EXCESSIVE_CHANGE, 1), (C.DETECTOR_RESTORED, 1)]
    restored = events[1][0]
    assert 400 < restored <= 400 + 300 + 120 + 2  # once the flicker has left the window, after recover_s
