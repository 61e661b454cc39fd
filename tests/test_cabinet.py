"""The field cabinet: remote holds, force-offs and calls honoured only through its own phase machine and
monitor, fall-back to local timing when the central system goes quiet, and the central side's commands."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.phase_machine import PhaseMachine
from controller.policies.base import DetectorReadings, Interval
from controller.policies.registry import make_policy
from controller.safety import SafetyMonitor
from controller.testing import crossroads_with_crosswalks, two_phase_intersection
from hw.cabinet import CONTROL_BACKUP, CONTROL_SYSTEM, FLASH_FAULT_MONITOR, FieldCabinet, PhaseCommands, \
    phase_mask, phases_of
from hw.commands import commands_for
from tests.strategies import intersections


def _idle(inter, t=0.0):
    return DetectorReadings.empty(len(inter.detectors), t)


def _run(cab: FieldCabinet, seconds: int, commands: PhaseCommands | None = None, refresh: bool = True) -> list:
    out = []
    for _ in range(seconds):
        if commands is not None:
            cab.receive(commands)
        if refresh:
            cab.refresh()
        out.append((cab.step(_idle(cab.intersection, cab.time_s)), cab.status()))
    return out


def test_masks_round_trip():
    assert phase_mask({1, 5}) == 0x22 and phases_of(0x22) == {1, 5} and phases_of(0) == frozenset()


def test_a_held_phase_stays_green_and_a_force_off_moves_to_the_called_phase_after_min_green():
    inter = two_phase_intersection(min_green_s=5.0, max_green_s=40.0)
    cab = FieldCabinet(inter, make_policy("fixed"), backup_time_s=3.0)
    start = _run(cab, 30, PhaseCommands(hold=frozenset({0}), vehicle_calls=frozenset({0})))
    assert start[-1][1].greens == 0b01 and start[-1][1].control_status == CONTROL_SYSTEM
    assert cab.controller.machine.interval is Interval.GREEN and cab.controller.machine.phase == 0
    changed = _run(cab, 20, PhaseCommands(force_off=frozenset({0}), vehicle_calls=frozenset({1})))
    colours = [(s.greens, s.yellows) for _, s in changed]
    assert colours[0] == (0, 0b01)  # min green long done: yellow at once
    assert (0b10, 0) in colours  # then phase 2 green, after yellow and all-red
    assert not cab.controller.monitor.violations


def test_a_force_off_during_min_green_waits_for_it():
    inter = two_phase_intersection(min_green_s=8.0, max_green_s=40.0)
    cab = FieldCabinet(inter, make_policy("fixed"))
    # through start-up into phase 1 green, then force it off at once
    while not (cab.controller.machine.interval is Interval.GREEN):
        _run(cab, 1, PhaseCommands(hold=frozenset({0}), vehicle_calls=frozenset({0})))
    greens = 0
    while cab.status().greens == 0b01:
        _run(cab, 1, PhaseCommands(force_off=frozenset({0}), vehicle_calls=frozenset({1})))
        greens += 1
    assert greens >= 8 - 1  # the green it was in had 8 s of min green (1 s counted before the force-off)


def test_without_heartbeat_the_cabinet_drops_remote_commands_and_runs_local_timing():
    inter = two_phase_intersection(min_green_s=5.0, max_green_s=40.0)
    cab = FieldCabinet(inter, make_policy("fixed"), backup_time_s=3.0)
    _run(cab, 10, PhaseCommands(hold=frozenset({0}), vehicle_calls=frozenset({0})))
    assert cab.remote
    quiet = _run(cab, 300, refresh=False)  # the central system stopped: nothing refreshes
    assert not cab.remote and cab.log.lost_control and cab.log.lost_control[0] <= 10 + 3
    assert quiet[-1][1].control_status == CONTROL_BACKUP
    # local (fixed) timing serves both phases, the hold notwithstanding
    assert {s.greens for _, s in quiet[20:]} >= {0b01, 0b10}
    assert not cab.controller.monitor.violations
    # a heartbeat again: back under central control
    _run(cab, 2, PhaseCommands(hold=frozenset({1}), vehicle_calls=frozenset({1})))
    assert cab.remote and len(cab.log.took_control) == 2


def test_commands_for_phase_indices_the_light_does_not_have_are_ignored():
    inter = two_phase_intersection()
    cab = FieldCabinet(inter, make_policy("fixed"))
    cab.receive(PhaseCommands(hold=frozenset({7}), force_off=frozenset({5}), vehicle_calls=frozenset({3, 1})))
    assert cab.commands.hold == frozenset() and cab.commands.vehicle_calls == frozenset({1})


def test_a_planted_conflict_sends_the_cabinet_to_flash_and_it_reports_it():
    inter = two_phase_intersection()
    cab = FieldCabinet(inter, make_policy("fixed"))
    _run(cab, 10, PhaseCommands(hold=frozenset({0}), vehicle_calls=frozenset({0})))
    both = "".join("G" for _ in range(inter.n_links))  # every link green: conflicting greens
    cab.controller.monitor.check(both)
    assert cab.controller.monitor.in_flash
    status = _run(cab, 3, PhaseCommands(hold=frozenset({1}), vehicle_calls=frozenset({1})))[-1][1]
    assert status.flash_status == FLASH_FAULT_MONITOR and status.greens == 0


def test_walk_and_pedestrian_clearance_are_reported_per_phase():
    inter = crossroads_with_crosswalks()
    cab = FieldCabinet(inter, make_policy("fixed"))
    seen = _run(cab, 200)  # local fixed timing serves the walks (pedestrian recall)
    walks = [s.walks for _, s in seen]
    clears = [s.ped_clears for _, s in seen]
    assert any(walks) and any(clears)
    for _, s in seen:
        assert not s.walks & s.ped_clears and not (s.walks | s.ped_clears) & s.reds  # walk only with its green


def test_a_cabinet_following_commands_for_a_core_machine_shows_the_same_phases_one_second_later():
    inter = crossroads_with_crosswalks()
    core = PhaseMachine(inter)
    cab = FieldCabinet(inter, make_policy("fixed"))
    rng = random.Random(4)
    cmd, core_colours, cab_colours = None, [], []
    for t in range(1500):
        if cmd is not None:
            cab.receive(cmd)
            cab.refresh()
        cab.step(_idle(inter, t))
        s = cab.status()
        cab_colours.append((s.greens, s.yellows))
        if rng.random() < 0.05:
            core.request(rng.randrange(len(inter.phases)))
        core.tick()
        core_colours.append((1 << core.phase if core.interval is Interval.GREEN else 0,
                             1 << core.phase if core.interval is Interval.YELLOW else 0))
        cmd = commands_for(core)
    # from the first exchange on, the cabinet shows at t+1 what the core showed at t
    assert cab_colours[1:] [5:] == core_colours[:-1][5:]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(intersections(max_links=12), st.integers(0, 2**31 - 1))
def test_random_remote_commands_never_make_the_cabinet_show_an_unsafe_sequence(inter, seed):
    """Whatever a central system (or garbage on the line) asks, the cabinet's output passes an independent
    monitor: remote commands are requests to its own phase machine, never signal states."""
    rng = random.Random(seed)
    cab = FieldCabinet(inter, make_policy("fixed"), backup_time_s=rng.choice([1.0, 3.0]))
    judge = SafetyMonitor(inter)
    n = len(inter.phases)

    def some() -> frozenset[int]:
        return frozenset(rng.randrange(-2, n + 3) for _ in range(rng.randrange(0, 4)))

    for t in range(1200):
        if rng.random() < 0.3:
            cab.receive(PhaseCommands(some(), some(), some(), some(), some()))
        if rng.random() < 0.8:
            cab.refresh()
        judge.check(cab.step(_idle(inter, t)))
    assert not cab.controller.monitor.violations
    assert not judge.violations, judge.reason


def test_a_push_button_call_is_registered_reported_and_served_with_a_walk_under_central_control():
    inter = crossroads_with_crosswalks()  # phase 0 north-south (crosswalk link 2), phase 1 east-west (link 5)
    cab = FieldCabinet(inter, make_policy("fixed"))
    hold_ns = PhaseCommands(hold=frozenset({0}), vehicle_calls=frozenset({0}))
    _run(cab, 20, hold_ns)
    assert cab.status().greens == 0b01 and cab.status().ped_calls == 0
    cab.press_pedestrian_buttons([1])
    assert cab.status().ped_calls == 0b10  # reported at once, for the central system to mirror
    _run(cab, 5, hold_ns)
    assert cab.status().ped_calls == 0b10  # held: still waiting
    states = _run(cab, 30, PhaseCommands(force_off=frozenset({0}), vehicle_calls=frozenset({1})))
    served = [k for k, (_, st) in enumerate(states) if st.greens == 0b10]
    assert served and states[served[0]][1].ped_calls == 0  # cleared when its phase turns green
    assert states[served[0]][1].walks == 0b10  # ... and its crosswalk walks
    assert not cab.controller.monitor.violations


def test_a_push_button_on_a_phase_without_crosswalks_places_no_call():
    cab = FieldCabinet(two_phase_intersection(), make_policy("fixed"))
    cab.press_pedestrian_buttons([0, 1])
    assert cab.status().ped_calls == 0
