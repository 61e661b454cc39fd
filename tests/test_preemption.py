"""Emergency-vehicle preemption in the core: the sequence and its hi-res events, entry that cuts greens and walks
but never a yellow, red clearance or pedestrian clearance, dwell beyond max green, maximum presence, priority
among calls, scheduled flash waiting — and a property over random layouts, calls, bus check-ins and flash
requests judged by an independent monitor, with planted mutations that the same judge catches."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import InputError
from controller.events import EventCode as E
from controller.flash import FlashStage
from controller.intersection import Detector, Intersection, Phase, SignalLink
from controller.phase_machine import PhaseMachine
from controller.policies.base import DetectorReadings, Interval
from controller.policies.registry import make_policy
from controller.preemption import PreemptPlan, PreemptStage, approach_phases
from controller.safety import SafetyMonitor
from controller.signal_controller import SignalController
from controller.testing import crossroads_with_crosswalks, two_phase_intersection
from controller.transit_priority import TransitSettings
from tests.strategies import intersections

PREEMPT_CODES = {E.PREEMPT_CALL_ON, E.PREEMPT_CALL_OFF, E.PREEMPT_ENTRY_STARTED, E.PREEMPT_TRACK_CLEARANCE,
                 E.PREEMPT_DWELL, E.PREEMPT_MAX_PRESENCE, E.PREEMPT_EXIT}


def _controller(inter, plans, policy="fixed", transit=None) -> SignalController:
    ctrl = SignalController(inter, make_policy(policy))
    ctrl.modes.configure(plans, transit)
    return ctrl


def _run(ctrl: SignalController, seconds: int, actions: dict, judge: SafetyMonitor | None = None) -> list[str]:
    """Step ``ctrl`` for ``seconds``; ``actions[t]`` is called with the controller before step ``t``."""
    judge = judge or SafetyMonitor(ctrl.intersection)
    states = []
    for t in range(seconds):
        if t in actions:
            actions[t](ctrl)
        state = ctrl.step(DetectorReadings.empty(len(ctrl.intersection.detectors), float(t)))
        judge.check(state)
        states.append(state)
    assert not judge.violations, judge.reason
    assert not ctrl.monitor.violations, ctrl.monitor.reason
    return states


def _codes(ctrl: SignalController) -> list[tuple[int, int]]:
    return [(e.code, e.param) for e in ctrl.events if e.code in PREEMPT_CODES]


def _call(number: int, on: bool):
    return lambda ctrl: ctrl.modes.preemption.call(number, on)


def test_sequence_call_entry_dwell_call_off_exit_with_full_clearances():
    inter = two_phase_intersection(min_green_s=10, max_green_s=40)
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, min_green_s=3, min_dwell_s=8)])
    # phase 0 turns green at t=2 (start-up all-red); the call comes at t=3, one second into its 10 s min green
    states = _run(ctrl, 80, {3: _call(1, True), 30: _call(1, False)})
    assert states[2:4] == ["GGrr", "GGrr"]
    first_yellow = states.index("yyrr")
    assert first_yellow == 5  # the 10 s min green cut to the 3 s preempt minimum green (t = 2, 3, 4)
    assert states[5:8] == ["yyrr"] * 3 and states[8:10] == ["rrrr"] * 2  # full 3 s yellow and 2 s all-red
    assert states[10:30] == ["rrGG"] * 20  # dwell while the call is present
    assert _codes(ctrl) == [(102, 1), (105, 1), (107, 1), (104, 1), (111, 1)]
    times = {e.code: e.time_s for e in ctrl.events}
    assert times[102] == times[105] == 3 and times[107] == 10 and times[104] == times[111] == 30
    assert ctrl.modes.preemption.stage is PreemptStage.IDLE


def test_track_clearance_before_the_dwell_and_exit_to_the_chosen_phase():
    inter = two_phase_intersection(min_green_s=5)
    plan = PreemptPlan(2, dwell_phase=1, track_phase=0, track_green_s=6, min_green_s=2, min_dwell_s=5,
                       exit_phase=0)
    ctrl = _controller(inter, [plan])
    states = _run(ctrl, 70, {20: _call(2, True), 40: _call(2, False)})
    assert _codes(ctrl) == [(102, 2), (105, 2), (106, 2), (107, 2), (104, 2), (111, 2)]
    times = {e.code: e.time_s for e in ctrl.events if e.code in PREEMPT_CODES}
    assert times[106] <= 26  # the track phase (green at the call, or next) is served
    assert all(s == "rrGG" for s in states[int(times[107]):40])
    assert states[-1] == "GGrr"  # the exit phase


def test_a_call_that_drops_within_the_delay_never_starts_a_sequence():
    inter = two_phase_intersection()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, delay_s=5)])
    plain = SignalController(inter, make_policy("fixed"))
    states = _run(ctrl, 60, {10: _call(1, True), 14: _call(1, False)})
    assert states == _run(plain, 60, {})
    assert _codes(ctrl) == [(102, 1), (104, 1)]


def test_walk_is_cut_to_the_preempt_minimum_walk_but_the_pedestrian_clearance_runs_in_full():
    inter = crossroads_with_crosswalks()  # crosswalk 2 (walk 7 s, clearance 12 s) runs with phase 0
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, min_green_s=1, min_walk_s=3)])
    states = _run(ctrl, 60, {3: _call(1, True)})
    walk = [t for t, s in enumerate(states) if s[2] == "G"]
    clearance = [t for t, s in enumerate(states) if s[2] == "y"]
    assert len(walk) == 3  # 7 s walk cut to 3 s
    assert len(clearance) == 12 and clearance[0] == walk[-1] + 1  # flashing don't walk in full
    assert next(t for t, s in enumerate(states) if s[3] == "G") > clearance[-1]


def test_a_walk_that_already_ran_past_the_minimum_ends_at_once():
    inter = crossroads_with_crosswalks()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, min_green_s=1, min_walk_s=2)])
    states = _run(ctrl, 60, {7: _call(1, True)})  # walk shown since t=2: 5 s at the call
    walk = [t for t, s in enumerate(states) if s[2] == "G"]
    clearance = [t for t, s in enumerate(states) if s[2] == "y"]
    assert walk == list(range(2, 7)) and len(clearance) == 12 and clearance[0] == 7


def test_dwell_outlasts_max_green_while_other_phases_call():
    inter = two_phase_intersection(min_green_s=5, max_green_s=15)
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, max_presence_s=0)], policy="actuated")
    judge = SafetyMonitor(inter)
    states = []
    for t in range(120):
        if t == 5:
            ctrl.modes.preemption.call(1, True)
        readings = DetectorReadings.empty(len(inter.detectors), float(t))
        readings.occupied[:] = True  # demand everywhere: max green would end any normal green
        states.append(ctrl.step(readings))
        judge.check(states[-1])
    assert not judge.violations
    dwell = int(next(e.time_s for e in ctrl.events if e.code == E.PREEMPT_DWELL))
    assert all(s == "rrGG" for s in states[dwell:120])  # > 100 s, far beyond the 15 s max green


def test_maximum_presence_ends_a_stuck_call_until_it_drops():
    inter = two_phase_intersection()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, max_presence_s=30, min_dwell_s=5)])
    _run(ctrl, 200, {10: _call(1, True), 150: _call(1, False)})
    assert _codes(ctrl) == [(102, 1), (105, 1), (107, 1), (110, 1), (111, 1), (104, 1)]
    times = {e.code: e.time_s for e in ctrl.events}
    assert times[110] == times[111] == 40 and ctrl.modes.preemption.stage is PreemptStage.IDLE


def test_a_higher_priority_call_takes_over_and_the_lower_one_is_served_after():
    inter = two_phase_intersection()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=0, min_dwell_s=5), PreemptPlan(2, dwell_phase=1,
                                                                                          min_dwell_s=5)])
    states = _run(ctrl, 120, {10: _call(2, True), 30: _call(1, True), 50: _call(1, False), 80: _call(2, False)})
    entries = [(e.code, e.param) for e in ctrl.events if e.code in (E.PREEMPT_ENTRY_STARTED, E.PREEMPT_DWELL)]
    assert entries == [(105, 2), (107, 2), (105, 1), (107, 1), (105, 2), (107, 2)]
    assert states[45] == "GGrr" and states[75] == "rrGG"


def test_a_lower_priority_call_waits_for_the_one_being_served():
    inter = two_phase_intersection()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=0, min_dwell_s=5), PreemptPlan(2, dwell_phase=1,
                                                                                          min_dwell_s=5)])
    states = _run(ctrl, 100, {10: _call(1, True), 20: _call(2, True), 40: _call(1, False), 70: _call(2, False)})
    assert all(s == "GGrr" for s in states[12:40])
    assert states[60] == "rrGG"


@pytest.mark.parametrize("yields", [True, False])
def test_a_dwell_whose_vehicle_is_through_yields_to_a_waiting_call(yields):
    """Two ambulances converging: preempt 2 waits for preempt 1; once 1's call drops (its vehicle crossed), the
    remaining minimum dwell is given up for 2 (``dwell_yields``), or run out in full without it."""
    inter = two_phase_intersection()
    plans = [PreemptPlan(n, dwell_phase=n - 1, min_dwell_s=30, dwell_yields=yields) for n in (1, 2)]
    ctrl = _controller(inter, plans)
    states = _run(ctrl, 120, {10: _call(1, True), 14: _call(2, True), 20: _call(1, False), 90: _call(2, False)})
    times = {(e.code, e.param): e.time_s for e in ctrl.events if e.code in PREEMPT_CODES}
    dwell_1 = times[107, 1]
    assert dwell_1 < 20 and times[104, 1] == 20
    if yields:
        assert times[111, 1] == 20 and times[105, 2] <= 21  # straight on to the waiting call
    else:
        assert times[111, 1] == dwell_1 + 30 and times[105, 2] >= dwell_1 + 30
    first_green_2 = next(t for t in range(21, 120) if states[t] == "rrGG")
    assert first_green_2 == times[107, 2]  # the yellow and all-red of phase 0 still ran in full (checked by _run)


def test_scheduled_flash_waits_for_the_preemption_and_follows_it():
    inter = two_phase_intersection()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, min_dwell_s=5)])
    flash = set("os")

    def scheduled(c):
        c.request_flash([0, 1], yields_to_preempt=True)

    states = _run(ctrl, 120, {8: _call(1, True), 9: scheduled, 40: _call(1, False)})
    first_flash = next(t for t, s in enumerate(states) if set(s) <= flash)
    assert all(not set(s) <= flash for s in states[:41]) and first_flash > 40
    assert states[30] == "rrGG"


def test_a_preempt_call_releases_a_scheduled_flash_and_the_flash_comes_back_after():
    inter = two_phase_intersection()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, min_dwell_s=5)])
    flash = set("os")
    states = _run(ctrl, 200, {0: lambda c: c.request_flash([0, 1], yields_to_preempt=True), 40: _call(1, True),
                              90: _call(1, False)})
    assert set(states[39]) <= flash
    dwell = int(next(e.time_s for e in ctrl.events if e.code == E.PREEMPT_DWELL))
    assert 40 < dwell < 70 and states[dwell] == "rrGG"  # min flash and the all-red exit ran first
    assert set(states[-1]) <= flash and ctrl.flash.stage is FlashStage.FLASHING


def test_a_flash_that_does_not_yield_ends_the_preemption():
    inter = two_phase_intersection()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1, min_dwell_s=5)])
    states = _run(ctrl, 80, {5: _call(1, True), 25: lambda c: c.request_flash()})
    assert set(states[-1]) == {"s"}
    assert ctrl.modes.preemption.stage is PreemptStage.IDLE
    assert [c for c, _ in _codes(ctrl)][-1] == E.PREEMPT_EXIT


def test_preemption_suspends_transit_priority():
    inter = two_phase_intersection()
    ctrl = _controller(inter, [PreemptPlan(1, dwell_phase=1)], transit=TransitSettings())
    actions = {3: lambda c: c.modes.priority.check_in("bus", 0, c.modes.time_s), 6: _call(1, True)}
    _run(ctrl, 60, actions)
    codes = [e.code for e in ctrl.events]
    assert codes.index(E.TSP_SERVICE_END) > codes.index(E.TSP_SERVICE_START)
    assert codes.index(E.TSP_SERVICE_END) >= codes.index(E.PREEMPT_ENTRY_STARTED)


def test_bad_plans_are_refused_with_one_line():
    inter = two_phase_intersection()
    ctrl = SignalController(inter, None)
    with pytest.raises(InputError, match="dwell_phase index 5 is not a phase"):
        ctrl.modes.configure([PreemptPlan(1, dwell_phase=5)])
    with pytest.raises(InputError, match="not unique"):
        ctrl.modes.configure([PreemptPlan(1, dwell_phase=0), PreemptPlan(1, dwell_phase=1)])
    ctrl.modes.configure([PreemptPlan(1, dwell_phase=0)])
    with pytest.raises(InputError, match="no preempt 3"):
        ctrl.modes.preemption.call(3, True)


# ---------------------------------------------------------------------------------------------- property
@st.composite
def preempt_plans(draw, inter) -> list[PreemptPlan]:
    k = len(inter.phases)
    phase = st.integers(0, k - 1)
    plans = []
    for number in range(1, draw(st.integers(1, 3)) + 1):
        plans.append(PreemptPlan(
            number, draw(phase), priority=draw(st.sampled_from([None, 1])), delay_s=draw(st.sampled_from([0, 0, 3])),
            min_green_s=draw(st.sampled_from([0.0, 1.0, 2.5, 5.0])), min_walk_s=draw(st.sampled_from([0.0, 2.0, 4.5])),
            track_phase=draw(st.one_of(st.none(), phase)), track_green_s=draw(st.sampled_from([0.0, 4.0])),
            min_dwell_s=draw(st.sampled_from([0.0, 5.0, 15.0])), dwell_yields=draw(st.booleans()), max_presence_s=draw(st.sampled_from([0.0, 30.0, 120.0])),
            exit_phase=draw(st.one_of(st.none(), phase))))
    return plans


def _drive_random(inter, plans, seed, policy, step_s, mutate=None, steps=1500):
    """Random preempt calls, bus check-ins/outs, scheduled flash; every state judged by an independent monitor.

    Returns (judge, controller, green runs) where green runs are (phase, ticks shown, min allowed ticks)."""
    rng = random.Random(seed)
    ctrl = SignalController(inter, make_policy(policy), step_s)
    ctrl.modes.configure(plans, TransitSettings(max_extension_s=rng.choice([0, 5, 10]),
                                                lockout_s=rng.choice([0, 30]),
                                                condition=rng.choice(["always", "late"]), late_threshold_s=30))
    if mutate is not None:
        mutate(ctrl)
    judge = SafetyMonitor(inter, step_s)
    k = len(inter.phases)
    ticks = lambda s: int(math.ceil(round(s / step_s, 6)))  # noqa: E731
    floor = [min(ticks(p.min_green_s), min(ticks(q.min_green_s) for q in plans)) for p in inter.phases]
    runs, run_phase, run_len = [], None, 0
    for t in range(steps):
        r = rng.random()
        if r < 0.02:
            number = rng.choice(plans).number
            ctrl.modes.preemption.call(number, rng.random() < 0.6)
        elif r < 0.04:
            ctrl.modes.priority.check_in(f"bus{rng.randrange(4)}", rng.randrange(k), ctrl.modes.time_s,
                                         rng.choice([None, 0.0, 90.0]))
        elif r < 0.06:
            ctrl.modes.priority.check_out(f"bus{rng.randrange(4)}", ctrl.modes.time_s)
        elif r < 0.065:
            ctrl.request_flash(None, yields_to_preempt=True)
        elif r < 0.07:
            ctrl.release_flash()
        readings = DetectorReadings.empty(len(inter.detectors), t * step_s)
        state = ctrl.step(readings)
        judge.check(state)
        m = ctrl.machine
        green = ctrl.interval is Interval.GREEN  # the flash sequencer's entry shows the machine's green too
        if green and m.phase == run_phase:
            run_len += 1
        else:
            if run_phase is not None:
                runs.append((run_phase, run_len, floor[run_phase]))
            run_phase, run_len = (m.phase, 1) if green else (None, 0)
    return judge, ctrl, runs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), intersections(max_links=12), st.integers(0, 2**31 - 1),
       st.sampled_from(["fixed", "actuated", "maxpressure", "maxpressure-spillback"]), st.sampled_from([0.5, 1.0, 2.0]))
def test_random_preempt_and_priority_calls_never_give_an_unsafe_sequence(data, inter, seed, policy, step_s):
    plans = data.draw(preempt_plans(inter))
    judge, ctrl, runs = _drive_random(inter, plans, seed, policy, step_s)
    assert not judge.violations, judge.reason
    assert not ctrl.monitor.violations, ctrl.monitor.reason
    # no green ended before the smaller of its own min green and the shortest preempt minimum green
    short = [(p, n, need) for p, n, need in runs if n < need]
    assert not short, short


def test_the_property_exercises_every_stage():
    """The random drive above reaches entry, track clearance, dwell, max presence and priority services."""
    seen, services = set(), 0
    inter = two_phase_intersection()
    for seed in range(6):
        plans = [PreemptPlan(1, 1, track_phase=0, track_green_s=4, max_presence_s=30), PreemptPlan(2, 0)]
        _, ctrl, _ = _drive_random(inter, plans, seed, "actuated", 1.0)
        seen |= {e.code for e in ctrl.events}
        services += ctrl.modes.priority.services
    assert {102, 104, 105, 106, 107, 110, 111, 112, 113, 115, 118, 119} <= seen and services > 0


# ------------------------------------------------------------------------------------------- mutations
def _cut_yellow_on_entry(ctrl):
    """Mutant: a preemption entry that shortens the yellow to one step."""
    original = PhaseMachine.set_preempt_limits

    def cutting(self, min_green_s, min_walk_s=0.0):
        original(self, min_green_s, min_walk_s)
        if min_green_s is not None:
            self._yellow = [1] * len(self._yellow)
            if self.interval is Interval.YELLOW:
                self._yellow_ticks = min(self._yellow_ticks, self.interval_ticks)

    ctrl.machine.set_preempt_limits = cutting.__get__(ctrl.machine)


def _skip_red_clearance_on_entry(ctrl):
    """Mutant: a preemption entry that releases the dwell phase without the red clearance."""
    original = PhaseMachine.set_preempt_limits

    def skipping(self, min_green_s, min_walk_s=0.0):
        original(self, min_green_s, min_walk_s)
        if min_green_s is not None:
            self._red_clear = [0] * len(self._red_clear)

    ctrl.machine.set_preempt_limits = skipping.__get__(ctrl.machine)


def _cut_ped_clearance_on_entry(ctrl):
    """Mutant: a preemption entry that ends the walk and cuts the pedestrian clearance to one step."""
    original = PhaseMachine.set_preempt_limits

    def cutting(self, min_green_s, min_walk_s=0.0):
        original(self, min_green_s, min_walk_s)
        if min_green_s is not None:
            self._yellow = [1 if self._is_ped[i] else y for i, y in enumerate(self._yellow)]

    ctrl.machine.set_preempt_limits = cutting.__get__(ctrl.machine)


@pytest.mark.parametrize("mutant, inter, kind", [
    (_cut_yellow_on_entry, two_phase_intersection(), "short_yellow"),
    (_skip_red_clearance_on_entry, two_phase_intersection(), "missing_red_clearance"),
    (_cut_ped_clearance_on_entry, crossroads_with_crosswalks(), "short_yellow"),
])
def test_planted_mutations_of_the_entry_are_caught(mutant, inter, kind):
    plans = [PreemptPlan(1, 1, min_green_s=1, min_walk_s=2), PreemptPlan(2, 0, min_green_s=1, min_walk_s=2)]
    caught = []
    for seed in range(10):
        judge, ctrl, _ = _drive_random(inter, plans, seed, "fixed", 1.0, mutate=mutant, steps=600)
        # the controller's own monitor latches first (and then shows flash to the outside judge)
        caught += [v.kind for v in judge.violations + ctrl.monitor.violations]
    assert kind in caught
    clean = [_drive_random(inter, plans, seed, "fixed", 1.0, steps=600) for seed in range(10)]
    assert not any(judge.violations or ctrl.monitor.violations for judge, ctrl, _ in clean)


def test_approach_phase_ties_go_to_the_phase_that_also_clears_the_next_stop_line():
    """A joined signal (a roundabout ring): the lane into the ring is green in both phases, the ring section it
    feeds (its next stop line, same signal) only in the second. An emergency vehicle's call on the entry must dwell in
    the second, or it would stop at the ring's red a few metres on (traced at the Óvalo: 30 s standing)."""
    links = (SignalLink(0, "vehicle", "entry_0", "ring_0", 8.3, 3.0, 1.0),
             SignalLink(1, "vehicle", "ring_0", "exit_0", 8.3, 3.0, 1.0),
             SignalLink(2, "vehicle", "side_0", "exit_0", 8.3, 3.0, 1.0))
    phases = (Phase(1, "Grg", "entry; the ring section ahead red", 5.0, 40.0, 20.0),
              Phase(2, "GGr", "entry and the ring", 5.0, 40.0, 20.0))
    compatible = ((True, True, True), (True, True, False), (True, False, True))
    inter = Intersection("ring", links, phases, compatible,
                         (Detector("sb", "stopbar", "entry_0", (0,), 1.0),))
    assert approach_phases(inter) == {"entry_0": 1, "ring_0": 1, "side_0": 0}
