"""Transit signal priority in the core: early green that never cuts a min green or a clearance, a green extension
bounded by its limit and by max green, lockout between services, the "late" condition, and the hi-res events."""

from __future__ import annotations

import pytest

from controller.errors import InputError
from controller.events import EventCode as E
from controller.policies.base import DetectorReadings, Interval
from controller.policies.registry import make_policy
from controller.safety import SafetyMonitor
from controller.signal_controller import SignalController
from controller.testing import two_phase_intersection
from controller.transit_priority import TransitSettings

TSP_CODES = {E.TSP_CHECK_IN, E.TSP_EARLY_GREEN, E.TSP_EXTEND_GREEN, E.TSP_CHECK_OUT, E.TSP_SERVICE_START,
             E.TSP_SERVICE_END}


def _run(ctrl: SignalController, seconds: int, actions: dict, demand=False) -> list[str]:
    """Step ``ctrl``; ``demand`` True puts presence on every detector, a list of link indices on theirs only."""
    judge = SafetyMonitor(ctrl.intersection)
    states = []
    for t in range(seconds):
        if t in actions:
            actions[t](ctrl)
        readings = DetectorReadings.empty(len(ctrl.intersection.detectors), float(t))
        if demand is True:
            readings.occupied[:] = True
        elif demand:
            readings.occupied[:] = [bool(set(d.links) & set(demand)) and d.kind != "exit"
                                    for d in ctrl.intersection.detectors]
        states.append(ctrl.step(readings))
        judge.check(states[-1])
    assert not judge.violations and not ctrl.monitor.violations, judge.reason or ctrl.monitor.reason
    return states


def _tsp(ctrl):
    return [(e.code, e.param, e.time_s) for e in ctrl.events if e.code in TSP_CODES]


def _check_in(bus, phase, lateness=None):
    return lambda c: c.modes.priority.check_in(bus, phase, c.modes.time_s, lateness)


def _check_out(bus):
    return lambda c: c.modes.priority.check_out(bus, c.modes.time_s)


def _green_runs(states: list[str], pattern: str) -> list[tuple[int, int]]:
    runs, start = [], None
    for t, s in enumerate(states + ["x"]):
        if s == pattern and start is None:
            start = t
        elif s != pattern and start is not None:
            runs.append((start, t - start))
            start = None
    return runs


def test_early_green_ends_the_conflicting_green_at_its_min_green_with_full_clearances():
    inter = two_phase_intersection(min_green_s=8)
    ctrl = SignalController(inter, make_policy("fixed"))  # fixed: phase 0 would run 30 s
    ctrl.modes.configure(transit=TransitSettings())
    states = _run(ctrl, 60, {4: _check_in("bus1", 1), 40: _check_out("bus1")})
    assert states[2:10] == ["GGrr"] * 8  # its 8 s min green, not less
    assert states[10:13] == ["yyrr"] * 3 and states[13:15] == ["rrrr"] * 2 and states[15] == "rrGG"
    # the fixed program would end phase 1 at t=35: held 5 s more until the bus checks out at t=40
    assert [(c, p) for c, p, _ in _tsp(ctrl)] == [(112, 2), (118, 2), (113, 2), (114, 2), (119, 2), (115, 2)]
    assert states[35:40] == ["rrGG"] * 5 and states[40] == "rryy"


def test_green_extension_holds_the_bus_phase_at_most_the_limit_then_locks_out():
    inter = two_phase_intersection(min_green_s=5, max_green_s=60)
    # demand on phase 1 only: actuated ends phase 0 at its min green
    plain = _green_runs(_run(SignalController(inter, make_policy("actuated")), 40, {}, demand=[2, 3]), "GGrr")
    ctrl = SignalController(inter, make_policy("actuated"))
    ctrl.modes.configure(transit=TransitSettings(max_extension_s=7, lockout_s=100))
    states = _run(ctrl, 120, {3: _check_in("bus1", 0), 60: _check_in("bus2", 0)}, demand=[2, 3])
    held = _green_runs(states, "GGrr")
    assert held[0][1] == plain[0][1] + 7  # extended by exactly the limit against the policy's wish
    codes = [(c, p) for c, p, _ in _tsp(ctrl)]
    assert codes[:4] == [(112, 1), (118, 1), (114, 1), (119, 1)]
    events = _tsp(ctrl)
    end, second = events[3][2], [t for c, _, t in events[4:] if c == E.TSP_SERVICE_START]
    assert second == [end + 100]  # bus2 checked in at t=60, within the lockout: served when it ends
    assert ctrl.modes.priority.services == 2  # bus1, never checked out, is not served twice


def test_extension_never_goes_beyond_max_green_when_another_phase_calls():
    inter = two_phase_intersection(min_green_s=5, max_green_s=12)
    ctrl = SignalController(inter, make_policy("fixed"))
    ctrl.modes.configure(transit=TransitSettings(max_extension_s=60))
    states = _run(ctrl, 80, {3: _check_in("bus1", 0)}, demand=True)
    assert max(n for _, n in _green_runs(states, "GGrr")) <= 12


def test_only_late_buses_get_priority_when_so_configured():
    inter = two_phase_intersection(min_green_s=8)
    ctrl = SignalController(inter, make_policy("fixed"))
    ctrl.modes.configure(transit=TransitSettings(condition="late", late_threshold_s=60))
    _run(ctrl, 30, {3: _check_in("on time", 1, 20.0), 4: _check_in("unknown", 1, None)})
    assert ctrl.modes.priority.services == 0
    _run(ctrl, 30, {0: _check_in("late", 1, 120.0)})
    assert ctrl.modes.priority.services == 1


def test_a_check_out_ends_the_service_and_unknown_buses_are_ignored():
    inter = two_phase_intersection()
    ctrl = SignalController(inter, make_policy("fixed"))
    ctrl.modes.configure(transit=TransitSettings())
    _run(ctrl, 40, {3: _check_in("bus1", 1), 20: _check_out("bus1"), 21: _check_out("never seen")})
    codes = [c for c, _, _ in _tsp(ctrl)]
    assert codes == [112, 118, 113, 119, 115] and ctrl.modes.priority.serving is None


def test_settings_are_checked():
    with pytest.raises(InputError, match="condition 'sometimes'"):
        TransitSettings(condition="sometimes")
    with pytest.raises(InputError, match="max_extension_s -1"):
        TransitSettings(max_extension_s=-1)


def test_without_configuration_the_controller_decides_exactly_as_before():
    inter = two_phase_intersection()
    a = SignalController(inter, make_policy("actuated"))
    b = SignalController(inter, make_policy("actuated"))
    b.modes.configure(transit=TransitSettings())
    assert _run(a, 200, {}, demand=True) == _run(b, 200, {}, demand=True)
    assert b.interval is Interval.GREEN or b.interval is not None
