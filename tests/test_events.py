"""Hi-res events from the core and their durable store: Indiana codes in order, detector edges, pedestrian
indications, CSV export, and no committed event lost to ``kill -9``."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from controller.events import Event, EventCode, EventRecorder, policy_termination_code
from controller.policies.base import DetectorReadings
from controller.policies.registry import make_policy
from controller.signal_controller import SignalController
from controller.testing import crossroads_with_crosswalks, two_phase_intersection
from hw.eventlog import EventLog, format_timestamp

C = EventCode


def _record(inter, seconds: int, policy: str = "fixed", occupied=None, ended_by=None) -> list[Event]:
    ctrl = SignalController(inter, make_policy(policy))
    rec = EventRecorder(inter, ended_by)
    out = []
    for t in range(seconds):
        occ = occupied(t) if occupied else np.zeros(len(inter.detectors), dtype=bool)
        r = DetectorReadings.empty(len(inter.detectors), float(t))
        r.occupied[:] = occ
        state = ctrl.step(r)
        m = ctrl.machine
        out += rec.observe(float(t), ctrl.interval, m.phase, state, m.may_end_green(), occ, m.stats.max_outs)
    return out


def test_every_green_is_followed_by_yellow_then_red_clearance_then_the_next_green():
    events = _record(two_phase_intersection(), 400)
    phase_events = [(e.code, e.param) for e in events if e.code in (C.BEGIN_GREEN, C.BEGIN_YELLOW,
                                                                     C.BEGIN_RED_CLEARANCE)]
    assert len(phase_events) > 20
    for (c1, p1), (c2, p2) in zip(phase_events, phase_events[1:]):
        if c1 == C.BEGIN_GREEN:
            assert (c2, p2) == (C.BEGIN_YELLOW, p1)
        elif c1 == C.BEGIN_YELLOW:
            assert (c2, p2) == (C.BEGIN_RED_CLEARANCE, p1)
        else:
            assert c2 == C.BEGIN_GREEN and p2 != p1
    # each begin green comes with phase on, and min green complete follows it
    greens = [e for e in events if e.code == C.BEGIN_GREEN]
    assert sum(e.code == C.PHASE_ON for e in events) == len(greens)
    assert sum(e.code == C.MIN_GREEN_COMPLETE for e in events) >= len(greens) - 1


@pytest.mark.parametrize("policy", ["actuated", "fixed"])
def test_every_green_ends_with_one_termination_code(policy):
    """Gap-out (actuated) or force-off (other policies) when the policy ends a green, max-out when max green
    does: exactly one of them right before each begin yellow, for the same phase."""
    inter = two_phase_intersection()
    # phase 1's loops busy for the first 300 s (its greens max out), then gaps (they gap out)
    events = _record(inter, 600, policy, occupied=lambda t: np.full(len(inter.detectors), t < 300 or t % 7 == 0),
                     ended_by=policy_termination_code(policy))
    ends = (C.GAP_OUT, C.MAX_OUT, C.FORCE_OFF)
    codes = [(e.code, e.param) for e in events if e.code in ends + (C.BEGIN_YELLOW,)]
    yellows = [k for k, (c, _) in enumerate(codes) if c == C.BEGIN_YELLOW]
    assert len(yellows) > 10
    for k in yellows:
        assert k > 0 and codes[k - 1][0] in ends and codes[k - 1][1] == codes[k][1], codes[max(0, k - 2):k + 1]
    seen = {c for c, _ in codes}
    assert (C.GAP_OUT in seen) == (policy == "actuated") and (C.FORCE_OFF in seen) == (policy != "actuated")
    if policy == "actuated":
        assert C.MAX_OUT in seen  # the busy first 300 s


def test_without_a_termination_code_only_max_outs_are_logged():
    codes = {e.code for e in _record(two_phase_intersection(), 400, "actuated")}
    assert C.GAP_OUT not in codes and C.FORCE_OFF not in codes


def test_a_yellow_straight_into_the_next_green_still_ends_the_yellow_and_the_phase():
    """Through + protected left -> the protected left alone needs no red clearance (no conflicting link turns
    green); the log must still close the yellow (9) and the phase (12), or ATSPM measures lose the split.
    (A permissive left, ``g`` in phase 1, would wait for the through's red clearance before its arrow.)"""
    from controller.intersection import Intersection, Phase, SignalLink

    links = tuple(SignalLink(i, "vehicle", f"in{i}", f"out{i}", 13.9, 3.0, 2.0) for i in range(3))
    compatible = ((True, True, False), (True, True, False), (False, False, True))
    phases = (Phase(1, "GGr", "through", 5.0, 20.0), Phase(2, "rGr", "protected left", 5.0, 10.0),
              Phase(3, "rrG", "cross street", 5.0, 20.0))
    events = _record(Intersection("lead-lag", links, phases, compatible), 300)
    codes = [(e.code, e.param) for e in events]
    assert (C.BEGIN_YELLOW, 1) in codes and (C.BEGIN_RED_CLEARANCE, 1) not in codes  # 1 -> 2: yellow only
    for phase in (1, 2, 3):
        assert codes.count((C.PHASE_ON, phase)) - codes.count((C.PHASE_INACTIVE, phase)) in (0, 1)
        assert codes.count((C.BEGIN_YELLOW, phase)) - codes.count((C.END_YELLOW, phase)) in (0, 1)
    ons = [e.time_s for e in events if (e.code, e.param) == (C.PHASE_ON, 1)]
    offs = [e.time_s for e in events if (e.code, e.param) == (C.PHASE_INACTIVE, 1)]
    assert len(offs) >= 3 and all(a < b for a, b in zip(ons, offs))


def test_detector_edges_give_on_and_off_with_the_channel():
    inter = two_phase_intersection()
    n = len(inter.detectors)

    def occupied(t):
        occ = np.zeros(n, dtype=bool)
        occ[0] = 10 <= t < 13
        return occ

    events = _record(inter, 20, occupied=occupied)
    edges = [(e.time_s, e.code, e.param) for e in events if e.code in (C.DETECTOR_ON, C.DETECTOR_OFF)]
    assert edges == [(10.0, C.DETECTOR_ON, 1), (13.0, C.DETECTOR_OFF, 1)]


def test_a_released_flash_still_timing_its_minimum_keeps_its_flash_status_until_it_ends():
    """A manual flash released before its minimum time flashes on with no source in force: no spurious
    'automatic' (3) status in between (seen in the daemon when the release came early)."""
    from controller.policies.base import Interval

    inter = two_phase_intersection()
    rec = EventRecorder(inter)
    flash = [(Interval.GREEN, 0), (Interval.FLASH, 4), (Interval.FLASH, 4), (Interval.FLASH, None),
             (Interval.FLASH, None), (Interval.ALL_RED, None), (Interval.GREEN, None)]
    events = []
    for t, (interval, code) in enumerate(flash):
        events += rec.observe(float(t), interval, 0, "rr", flash_code=code)
    assert [(e.time_s, e.param) for e in events if e.code == C.UNIT_FLASH_STATUS_CHANGE] == [(1.0, 4), (5.0, 2)]
    rec = EventRecorder(inter)  # a flash begun with no source given is logged as automatic, as before
    events = rec.observe(0.0, Interval.GREEN, 0, "rr") + rec.observe(1.0, Interval.FLASH, 0, "rr", flash_code=None)
    assert [(e.code, e.param) for e in events if e.code == C.UNIT_FLASH_STATUS_CHANGE] == [(C.UNIT_FLASH_STATUS_CHANGE, 3)]


def test_pedestrian_walk_clearance_and_dont_walk_are_logged_in_order():
    events = _record(crossroads_with_crosswalks(), 300)
    peds = [(e.code, e.param) for e in events if e.code in (C.PED_BEGIN_WALK, C.PED_BEGIN_CLEARANCE,
                                                            C.PED_BEGIN_DONT_WALK)]
    assert peds
    by_phase: dict[int, list[int]] = {}
    for code, phase in peds:
        by_phase.setdefault(phase, []).append(code)
    for codes in by_phase.values():
        for a, b in zip(codes, codes[1:]):
            assert (a, b) in {(C.PED_BEGIN_WALK, C.PED_BEGIN_CLEARANCE), (C.PED_BEGIN_CLEARANCE, C.PED_BEGIN_DONT_WALK),
                              (C.PED_BEGIN_DONT_WALK, C.PED_BEGIN_WALK)}


def test_store_exports_the_atspm_csv_layout(tmp_path):
    log = EventLog(tmp_path / "log.sqlite", epoch_s=1_700_000_000.0)
    assert log.append([Event(0.0, "J1", 1, 2), Event(3.25, "J1", 8, 2), Event(1.0, "J2", 82, 5)]) == 3
    assert log.export_csv(tmp_path / "log.csv") == 3
    rows = list(csv.reader(open(tmp_path / "log.csv")))
    assert rows[0] == ["Timestamp", "SignalId", "EventCode", "EventParam"]
    assert rows[1] == [format_timestamp(1_700_000_000.0), "J1", "1", "2"]
    assert [r[1:] for r in rows[1:]] == [["J1", "1", "2"], ["J2", "82", "5"], ["J1", "8", "2"]]  # time order
    assert rows[3][0].endswith(".2") or rows[3][0].endswith(".3")  # 0.1 s resolution
    assert log.export_csv(tmp_path / "j2.csv", signal_id="J2") == 1
    log.close()


def test_kill_9_loses_no_committed_event(tmp_path):
    db = tmp_path / "log.sqlite"
    writer = textwrap.dedent(f"""
        import sys
        from controller.events import Event
        from hw.eventlog import EventLog
        log = EventLog({str(db)!r})
        k = 0
        while True:
            k += log.append([Event(float(k + i), "J1", 82, 1) for i in range(50)])
            print(k, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True,
                            cwd=os.getcwd())
    committed = 0
    for line in proc.stdout:
        committed = int(line)
        if committed >= 2000:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log = EventLog(db)
    assert log.count() >= committed >= 2000
    log.close()


def test_events_command_exports_and_refuses_a_file_that_is_not_a_log(tmp_path):
    log = EventLog(tmp_path / "log.sqlite")
    log.append([Event(1.0, "J1", 1, 2), Event(2.0, "J2", 8, 2)])
    log.close()
    cmd = [sys.executable, "-m", "ondaverde.cli", "events"]
    ok = subprocess.run(cmd + [str(tmp_path / "log.sqlite"), "--csv", str(tmp_path / "o.csv"), "--signal", "J2"],
                        capture_output=True, text=True)
    assert ok.returncode == 0 and "1 events" in ok.stdout
    (tmp_path / "junk.sqlite").write_text("this is not a database, just text " * 100)
    bad = subprocess.run(cmd + [str(tmp_path / "junk.sqlite"), "--csv", str(tmp_path / "x.csv")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "junk.sqlite" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
