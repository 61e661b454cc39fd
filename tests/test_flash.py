"""Programmed flash: entry only after min green, full yellow and red clearance; a minimum flash; exit through
steady all-red into the major phase — checked by an independent monitor on random layouts and requests."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.flash import FlashStage
from controller.policies.base import DetectorReadings
from controller.policies.registry import make_policy
from controller.safety import SafetyMonitor
from controller.signal_controller import SignalController
from controller.testing import two_phase_intersection
from tests.strategies import intersections

FLASH = set("os")


def _states(ctrl: SignalController, seconds: int, plan: dict[int, str]) -> list[str]:
    out = []
    for t in range(seconds):
        action = plan.get(t)
        if action == "flash":
            ctrl.request_flash()
        elif action == "release":
            ctrl.release_flash()
        out.append(ctrl.step(DetectorReadings.empty(len(ctrl.intersection.detectors), float(t))))
    return out


def test_flash_entry_waits_for_min_green_then_yellow_and_red_clearance():
    inter = two_phase_intersection(min_green_s=10)
    ctrl = SignalController(inter, make_policy("fixed"))
    states = _states(ctrl, 60, {3: "flash"})  # asked one second into the first green
    first_flash = next(t for t, s in enumerate(states) if set(s) <= FLASH)
    greens = [t for t, s in enumerate(states[:first_flash]) if "G" in s]
    assert len(greens) >= 10  # the min green ran in full
    yellows = [t for t, s in enumerate(states) if "y" in s]
    assert len(yellows) == 3 and yellows[-1] < first_flash  # the full 3 s yellow of the test layout
    assert states[first_flash - 1] == "rrrr" and states[first_flash - 2] == "rrrr"  # 2 s red clearance
    assert not ctrl.monitor.violations and ctrl.interval.value == "flash"


def test_flash_lasts_its_minimum_and_exits_through_all_red_into_the_major_phase():
    inter = two_phase_intersection(min_green_s=5)
    ctrl = SignalController(inter, make_policy("fixed"))
    states = _states(ctrl, 120, {0: "flash", 20: "release"})
    flashing = [t for t, s in enumerate(states) if set(s) <= FLASH]
    assert flashing and len(flashing) >= 10  # min_flash_s = 10 s
    after = states[flashing[-1] + 1:]
    first_green = next(k for k, s in enumerate(after) if "G" in s)
    assert first_green >= 2 and all(s == "rrrr" for s in after[:first_green])
    assert after[first_green][:2] == "GG"  # the major phase (phase 0 serves links 0 and 1)
    assert ctrl.flash.stage is FlashStage.OFF and not ctrl.monitor.violations


def test_a_release_before_entry_cancels_the_flash():
    ctrl = SignalController(two_phase_intersection(min_green_s=10), make_policy("fixed"))
    states = _states(ctrl, 40, {3: "flash", 4: "release"})
    assert not any(set(s) <= FLASH for s in states) and ctrl.flash.stage is FlashStage.OFF


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intersections(max_links=12), st.integers(0, 2**31 - 1), st.sampled_from(["fixed", "actuated", "maxpressure", "maxpressure-spillback"]))
def test_random_flash_requests_never_give_an_unsafe_sequence(inter, seed, policy):
    rng = random.Random(seed)
    ctrl = SignalController(inter, make_policy(policy))
    judge = SafetyMonitor(inter)
    previous = inter.all_red_state()
    for t in range(1500):
        r = rng.random()
        if r < 0.01:
            compatible_major = [i for i in inter.phases[inter.major_phase].greens
                                if inter.links[i].kind == "vehicle"]
            ctrl.request_flash(compatible_major if rng.random() < 0.5 else None)
        elif r < 0.03:
            ctrl.release_flash()
        readings = DetectorReadings.empty(len(inter.detectors), float(t))
        readings.occupied[:] = [rng.random() < 0.2 for _ in inter.detectors]
        state = ctrl.step(readings)
        judge.check(state)
        if set(state) <= FLASH and not set(previous) <= FLASH:
            assert set(previous) <= {"r"}, (previous, state)  # flash only from all red
        previous = state
    assert not ctrl.monitor.violations, ctrl.monitor.reason
    assert not judge.violations, judge.reason


def test_flash_begin_and_end_are_logged_as_unit_flash_status_changes():
    from controller.events import EventCode, EventRecorder

    inter = two_phase_intersection(min_green_s=5)
    ctrl = SignalController(inter, make_policy("fixed"))
    rec = EventRecorder(inter)
    events = []
    for t in range(120):
        if t == 0:
            ctrl.request_flash()
        if t == 30:
            ctrl.release_flash()
        state = ctrl.step(DetectorReadings.empty(len(inter.detectors), float(t)))
        m = ctrl.machine
        events += rec.observe(float(t), ctrl.interval, m.phase, state, m.may_end_green(), None, m.stats.max_outs,
                              flash_code=3)
    flash = [(e.code, e.param) for e in events if e.code == EventCode.UNIT_FLASH_STATUS_CHANGE]
    assert flash == [(EventCode.UNIT_FLASH_STATUS_CHANGE, 3), (EventCode.UNIT_FLASH_STATUS_CHANGE, 2)]
    codes = [e.code for e in events]
    # the entry is logged as a normal termination: yellow and red clearance before the flash
    first_flash = codes.index(EventCode.UNIT_FLASH_STATUS_CHANGE)
    assert EventCode.BEGIN_YELLOW in codes[:first_flash] and EventCode.BEGIN_RED_CLEARANCE in codes[:first_flash]
