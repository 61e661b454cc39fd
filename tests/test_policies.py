"""Classical policies driving the real phase machine, fed hand-made detector readings (no SUMO)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Callable

import numpy as np
import pytest

from controller.errors import InputError
from controller.intersection import Detector, Intersection, Phase, SignalLink
from controller.phase_machine import PhaseMachine
from controller.policies import registry
from controller.policies.actuated import ActuatedPolicy
from controller.policies.base import DetectorReadings, Policy, SignalView, loops_on_stopped_movements
from controller.policies.fixed_time import FixedTimePolicy, WebsterPolicy, webster_cycle_s, webster_greens_s
from controller.policies.max_pressure import MaxPressurePolicy, SpillbackMaxPressurePolicy, VaraiyaMaxPressurePolicy
from controller.testing import looped_intersection, two_phase_intersection

# detector indices in two_phase_intersection(): per link i, stop-bar 4i, advance 4i+1, radar 4i+2, exit 4i+3
SB, ADV, RAD, EXIT = 0, 1, 2, 3


def det(link: int, kind: int) -> int:
    return 4 * link + kind


Feed = Callable[[float, DetectorReadings], None]


def run(policy: Policy, inter: Intersection, seconds: float, feed: Feed | None = None,
        step_s: float = 1.0, machine: PhaseMachine | None = None) -> list[str]:
    """Drive ``policy`` through a real PhaseMachine; ``feed(t, readings)`` fills the readings of time t."""
    machine = machine or PhaseMachine(inter, step_s)
    policy.reset(inter, step_s)
    states = []
    for _ in range(int(round(seconds / step_s))):
        readings = DetectorReadings.empty(len(inter.detectors), machine.time_s)
        if feed is not None:
            feed(machine.time_s, readings)
        view = SignalView(inter, readings, machine.phase, machine.target, machine.interval,
                          machine.green_elapsed_s, machine.may_end_green())
        machine.request(policy.decide(view))
        states.append(machine.tick())
    return states


def greens(states: list[str], inter: Intersection) -> list[tuple[int, int, int]]:
    """Green runs as (phase index, first step, length in steps), in order."""
    by_state = {p.state: i for i, p in enumerate(inter.phases)}
    runs, t = [], 0
    for state, group in itertools.groupby(states):
        n = len(list(group))
        if state in by_state:
            runs.append((by_state[state], t, n))
        t += n
    return runs


def exclusive_intersection(n: int = 3, min_green_s: float = 5.0, max_green_s: float = 40.0) -> Intersection:
    """``n`` single-link phases that all conflict; link i has a stop-bar and an advance loop."""
    states = tuple("".join("G" if j == i else "r" for j in range(n)) for i in range(n))
    compatible = [[i == j for j in range(n)] for i in range(n)]
    return looped_intersection("exclusive", states, compatible, min_green_s, max_green_s)


# ---------------------------------------------------------------------------------------------- fixed time
@pytest.mark.parametrize("step_s", [1.0, 0.5])
def test_fixed_time_reproduces_program_greens(step_s):
    inter = two_phase_intersection()
    runs = greens(run(FixedTimePolicy(), inter, 200, step_s=step_s), inter)[:-1]  # the last run is cut off
    assert [p for p, _, _ in runs] == [0, 1] * (len(runs) // 2) + [0] * (len(runs) % 2)
    assert [n * step_s for _, _, n in runs] == [[30.0, 20.0][p] for p, _, _ in runs]
    starts = [t * step_s for p, t, _ in runs if p == 0]
    assert np.diff(starts).tolist() == [60.0] * (len(starts) - 1)  # 30 + 20 + two changes of 3 s yellow + 2 s red


def test_fixed_time_rounds_odd_greens_up_to_the_step():
    inter = two_phase_intersection()
    odd = dataclasses.replace(inter, phases=(dataclasses.replace(inter.phases[0], program_green_s=12.2),
                                             dataclasses.replace(inter.phases[1], program_green_s=7.0)))
    runs = greens(run(FixedTimePolicy(), odd, 80), odd)[:-1]
    assert {(p, n) for p, _, n in runs} == {(0, 13), (1, 7)}


def with_program_cycle(inter: Intersection, changes_s: tuple[float, ...], offset_s: float = 0.0) -> Intersection:
    """``inter`` whose program runs ``changes_s[i]`` seconds of change interval after phase i (its cycle known)."""
    phases = tuple(dataclasses.replace(p, program_change_s=c) for p, c in zip(inter.phases, changes_s))
    return dataclasses.replace(inter, phases=phases, program_offset_s=offset_s)


def yellow_onsets(states: list[str], inter: Intersection, link: int = 0) -> list[int]:
    """Steps at which ``link`` turns yellow."""
    return [t for t in range(1, len(states)) if states[t][link] == "y" and states[t - 1][link] != "y"]


def test_fixed_time_keeps_the_program_cycle_when_the_core_clears_longer():
    # program: 30 s green, 3 s yellow, 20 s green, 3 s yellow -> a 56 s cycle; the core clears 3 s + 2 s all-red
    inter = with_program_cycle(two_phase_intersection(), (3.0, 3.0))
    states = run(FixedTimePolicy(), inter, 600)
    runs = greens(states, inter)[1:-1]  # the start-up green and the cut-off last run left out
    assert {(p, n) for p, _, n in runs} == {(0, 28), (1, 18)}  # each green gives the program the 2 s of all-red
    starts = [t for p, t, _ in runs if p == 0]
    assert np.diff(starts).tolist() == [56] * (len(starts) - 1)  # the program's cycle, not 30 + 20 + 2 x 5 = 60
    # the sequential fixed time (cycle unknown) runs the program greens in full, and its cycle grows
    plain = greens(run(FixedTimePolicy(), two_phase_intersection(), 600), inter)[1:-1]
    assert np.diff([t for p, t, _ in plain if p == 0]).tolist()[0] == 60


def test_fixed_time_ends_its_greens_at_the_program_offset():
    # the program's cycle starts with phase 1's green at 20 s: its greens end at 50, 106, 162, ... (56 s cycle)
    inter = with_program_cycle(two_phase_intersection(), (3.0, 3.0), offset_s=20.0)
    onsets = yellow_onsets(run(FixedTimePolicy(), inter, 600), inter)
    assert onsets[1:] == [50 + 56 * k for k in range(1, len(onsets))]
    assert onsets[0] in (30, 50)  # the start-up green runs at least its minimum and ends on the program's time


def test_fixed_time_with_the_program_own_clearances_runs_the_program_greens():
    # program changes as long as the core's (3 s yellow + 2 s all-red): the same cycle either way
    inter = with_program_cycle(two_phase_intersection(), (5.0, 5.0))
    runs = greens(run(FixedTimePolicy(), inter, 600), inter)[1:-1]
    assert {(p, n) for p, _, n in runs} == {(0, 30), (1, 20)}


def test_fixed_time_short_program_green_keeps_min_green_and_the_cycle_recovers():
    # program: 30 s and 4 s greens with 1 s changes (36 s cycle); after the core's 5 s change phase 2 has nothing
    # left, so it runs its 5 s minimum, and phase 1 gives the time back (30 - 4 s late - 5 s minimum = 21 s)
    inter = two_phase_intersection(min_green_s=5.0)
    inter = dataclasses.replace(inter, phases=(inter.phases[0], dataclasses.replace(inter.phases[1], program_green_s=4.0)))
    inter = with_program_cycle(inter, (1.0, 1.0))
    runs = greens(run(FixedTimePolicy(), inter, 700), inter)[1:-1]
    assert {(p, n) for p, _, n in runs} == {(0, 21), (1, 5)}
    starts = [t for p, t, _ in runs if p == 0]
    assert np.diff(starts).tolist() == [36] * (len(starts) - 1)


# ---------------------------------------------------------------------------------------------- Webster
def test_webster_formulas_match_a_hand_calculation():
    # two phases, 3 s yellow + 2 s red each, 2 s start-up: L = 2 * 5 + 2 * 2 = 14 s
    # y = 300/1800 and 600/1800, Y = 0.5: C0 = (1.5 * 14 + 5) / (1 - 0.5) = 52 s; C0 - L = 38 s split 1 : 2
    policy = WebsterPolicy()
    policy.reset(two_phase_intersection(), 1.0)
    assert policy.lost_time_s == pytest.approx(14.0)
    assert policy.counted_lanes == ("in0", "in1", "in2", "in3")  # advance loops, one per lane
    policy.update_plan(np.array([300.0, 250.0, 600.0, 500.0]))  # the critical lane of each phase counts
    assert policy.ratios == pytest.approx([1 / 6, 1 / 3])
    assert policy.cycle_s == pytest.approx(52.0)
    assert policy.greens_s == pytest.approx([38 / 3 + 2, 76 / 3 + 2])


def test_webster_cycle_limits():
    assert webster_cycle_s(14.0, 0.0) == 40.0  # (1.5 * 14 + 5) = 26 s, raised to the 40 s minimum
    assert webster_cycle_s(14.0, 0.9) == 150.0  # 260 s, capped
    assert webster_cycle_s(14.0, 0.97) == 150.0  # beyond the formula's range: maximum cycle
    g = webster_greens_s(150.0, 14.0, np.array([0.9, 0.05]), np.array([5.0, 5.0]), np.array([60.0, 60.0]))
    assert g.tolist() == [60.0, pytest.approx(136 * 0.05 / 0.95 + 2)]


def test_webster_gives_the_measured_heavier_approach_the_longer_green():
    inter = two_phase_intersection()
    policy = WebsterPolicy(period_s=230.0)

    def feed(t, r):  # east-west 600 veh/h per lane, north-south 300: the program (30 / 20 s) has it backwards
        for link, headway in ((0, 12), (1, 12), (2, 6), (3, 6)):
            if t % headway == 0:
                r.count[det(link, ADV)] = 1
                r.occupied[det(link, ADV)] = True

    runs = greens(run(policy, inter, 420, feed), inter)
    # 60 s cycles from t = 2 end at t = 57 + 60 k; the first to end after 230 s of counting is at t = 237
    first_plan_at = 237
    before = {(p, n) for p, t, n in runs if t < first_plan_at}
    after = [(p, n) for p, t, n in runs[:-1] if t > first_plan_at]
    assert before == {(0, 30), (1, 20)}
    assert policy.cycle_s == pytest.approx(52.0, abs=2.0)  # measured flows ≈ 300 / 600 veh/h
    expected = {(p, math.ceil(policy.greens_s[p] - 1e-9)) for p in (0, 1)}
    assert set(after) == expected
    assert policy.greens_s[1] > 1.5 * policy.greens_s[0]


# ---------------------------------------------------------------------------------------------- actuated
def pulses(detector: int, times) -> Feed:
    times = set(times)

    def feed(t, r):
        if t in times:
            r.occupied[detector] = True
            r.count[detector] = 1
    return feed


def presence(detector: int, start: float = 0.0, end: float = math.inf) -> Feed:
    def feed(t, r):
        if start <= t < end:
            r.occupied[detector] = True
    return feed


def both(*feeds: Feed) -> Feed:
    def feed(t, r):
        for f in feeds:
            f(t, r)
    return feed


def test_actuated_extends_while_vehicles_arrive_and_gaps_out_after_the_passage_time():
    inter = two_phase_intersection()
    # north-south vehicles every 2 s until t = 24; east-west waits at its stop bar throughout
    feed = both(pulses(det(0, ADV), range(2, 25, 2)), presence(det(2, SB)))
    runs = greens(run(ActuatedPolicy(), inter, 60, feed), inter)
    assert runs[0] == (0, 2, 25)  # green from t = 2; last actuation at 24 + 3 s passage: yellow at 27
    assert runs[1][0] == 1


def test_actuated_a_four_second_gap_ends_the_green():
    inter = two_phase_intersection()
    feed = both(pulses(det(0, ADV), [2, 4, 6, 8, 10, 12, 16, 20]), presence(det(2, SB)))
    runs = greens(run(ActuatedPolicy(), inter, 40, feed), inter)
    assert runs[0] == (0, 2, 13)  # 12 + 3 = 15: the vehicle at 16 comes too late
    assert greens(run(ActuatedPolicy(passage_s=5.0), inter, 60, feed), inter)[0] == (0, 2, 23)  # 20 + 5 = 25


def ring_intersection(phase_states: tuple[str, ...] = ("GGr", "rGG")) -> Intersection:
    """A roundabout entry, abstracted: link 0 enters (green in phase 0), link 1 circulates (compatible with both
    entries, green in both phases), link 2 is the next entry (phase 1); each link has a stop-bar and an advance
    loop (detector 2i and 2i+1)."""
    return looped_intersection("ring", phase_states, ((True, True, False), (True, True, True), (False, True, True)))


def test_actuated_extends_only_on_the_movements_its_end_would_stop():
    """Steady circulating traffic (green in both phases) must not hold the entry's green: ending it stops only the
    entry, so the entry's loops alone extend it. (The old rule held it to max green: 40 s.)"""
    inter = ring_intersection()
    ring_always = pulses(2 * 1 + 1, range(0, 200))  # a circulating car over the ring's advance loop every second
    feed = both(ring_always, pulses(2 * 0 + 1, range(2, 11, 2)), presence(2 * 2 + 0))  # entry 0 until 10; 2 waits
    runs = greens(run(ActuatedPolicy(), inter, 60, feed), inter)
    assert runs[0] == (0, 2, 11)  # last entry actuation at 10 + 3 s passage: yellow at 13
    assert runs[1][0] == 1
    # the phase being left for one that keeps all of its movements going ends at its minimum green
    nested = ring_intersection(("rGr", "rGG"))
    runs = greens(run(ActuatedPolicy(), nested, 30, both(ring_always, presence(2 * 2 + 0))), nested)
    assert runs[0][::2] == (0, 5)  # (it starts at once: its only link conflicts with nothing)
    # with no call elsewhere the circulating traffic keeps the phase resting in green, as before
    assert greens(run(ActuatedPolicy(), inter, 30, ring_always), inter) == [(0, 2, 28)]


def test_actuated_a_permissive_left_waiting_calls_its_arrow():
    """A left turner standing on its stop-bar loop while its movement is only permissive may be waiting for a gap
    that never comes: it calls the phase with its protected arrow (only a protected movement's loop is "served")."""
    # link 0: the through; link 1: the left, permissive in phase 0, its arrow in phase 1
    inter = looped_intersection("left", ("Gg", "rG"), ((True, True), (True, True)))
    feed = both(pulses(2 * 0 + 1, range(0, 11)), presence(2 * 1 + 0))  # through traffic until 10; a left waits
    runs = greens(run(ActuatedPolicy(), inter, 40, feed), inter)
    # gap-out at 10 + 3 s, then the arrow (were any green "served", nobody would call it: max green)
    assert runs[0] == (0, 0, 13) and runs[1][0] == 1
    # ending the arrow for the permissive phase takes the left's protection: its loops decide; ending the through
    # phase for the arrow stops the through only
    loops = loops_on_stopped_movements(inter, np.ones((2, len(inter.detectors)), dtype=bool))
    assert np.flatnonzero(loops[1, 0]).tolist() == [2, 3] and np.flatnonzero(loops[0, 1]).tolist() == [0, 1]


def test_actuated_skips_a_phase_without_a_call():
    inter = exclusive_intersection(3)
    states = run(ActuatedPolicy(), inter, 40, presence(2 * 2 + SB))  # only phase 2's stop bar is occupied
    runs = greens(states, inter)
    assert [p for p, _, _ in runs[:2]] == [0, 2]
    assert runs[0][2] == 5  # min green, nobody on phase 0
    assert all(p != 1 for p, _, _ in runs)


def test_actuated_holds_a_phase_without_detectors_to_max_green():
    """Semi-actuated: the major street (no detectors) is on max recall and gets its maximum green each cycle; the
    detected side street is served on call and gaps out."""
    inter = two_phase_intersection(max_green_s=30.0)
    semi = dataclasses.replace(inter, detectors=tuple(d for d in inter.detectors if d.links[0] in (2, 3)))
    side = semi.detectors.index(next(d for d in semi.detectors if d.id == "sb2"))
    policy = ActuatedPolicy()
    runs = greens(run(policy, semi, 120, presence(side, 10, 12)), semi)
    assert list(policy.max_recall) == [True, False]
    assert runs == [(0, 2, 30), (1, 37, 5), (0, 47, 73)]  # max green, the side street (min green), then rest
    # with no side-street call at all it rests in the major green
    assert greens(run(ActuatedPolicy(), semi, 120), semi) == [(0, 2, 118)]
    # a phase with detectors that never call is skipped, as before (the full layout, nothing on the major street)
    full = greens(run(ActuatedPolicy(), inter, 120, presence(det(2, SB), 10, 12)), inter)
    assert full[0] == (0, 2, 8)  # long gapped out: the change starts at the call (t = 10)


def test_max_pressure_serves_phases_without_detectors_on_recall():
    """A phase no detector watches has no pressure: without the rule it would hardly be served again. The major one
    (an undetected main street) is always called, as if its pressure were infinite, and held to max green (max
    recall); another one (a turning phase nobody detects) is served at its minimum green once red max_wait_s."""
    inter = two_phase_intersection(max_green_s=30.0)  # major phase 0: north-south
    semi = dataclasses.replace(inter, detectors=tuple(d for d in inter.detectors if d.links[0] in (2, 3)))
    sb2 = next(k for k, d in enumerate(semi.detectors) if d.id == "sb2")
    rad2 = next(k for k, d in enumerate(semi.detectors) if d.id == "rad2")

    def queue(t, readings):  # east-west: a standing queue of 8 that keeps its stop bar occupied
        readings.occupied[sb2] = True
        readings.count[rad2] = 8.0

    policy = MaxPressurePolicy(max_wait_s=60.0)
    runs = greens(run(policy, semi, 300, queue), semi)
    assert list(policy.blind) == [True, False]
    assert [p for p, _, _ in runs] == [0, 1] * (len(runs) // 2) + [0] * (len(runs) % 2)  # back after every green
    assert all(n == 30 for p, _, n in runs[:-1] if p == 0)  # its maximum green each time
    # Varaiya's policy as published has no such rule: north-south gets what east-west's max-out forces, min green
    published = greens(run(VaraiyaMaxPressurePolicy(), semi, 300, queue), semi)
    assert [n for p, _, n in published if p == 0][:-1] == [5] * (len([p for p, _, _ in published if p == 0]) - 1)

    # three phases, the middle one (not major) undetected: its minimum green once it has been red max_wait_s
    three = exclusive_intersection(3, max_green_s=20.0)
    blind_middle = dataclasses.replace(three, detectors=tuple(d for d in three.detectors if d.links != (1,)))
    busy = [k for k, d in enumerate(blind_middle.detectors) if d.kind == "stopbar"]

    def both_queues(t, readings):
        readings.occupied[busy] = True
        readings.count[busy] = 1.0

    policy = MaxPressurePolicy(max_wait_s=60.0)
    runs = greens(run(policy, blind_middle, 400, both_queues), blind_middle)
    assert list(policy.blind) == [False, True, False]
    middle = [(t, n) for p, t, n in runs if p == 1]
    assert middle and all(n == 5 for _, n in middle)
    assert middle[0][0] >= 60 and all(b - a <= 60 + 20 + 2 * 5 + 5 for (a, _), (b, _) in zip(middle, middle[1:]))


def test_actuated_rests_in_green_without_a_conflicting_call():
    inter = two_phase_intersection()
    states = run(ActuatedPolicy(), inter, 38)  # no traffic at all; max green is 40 s
    assert states[2:] == ["GGrr"] * 36
    states = run(ActuatedPolicy(), inter, 40, presence(det(2, SB), start=20))  # a car arrives at t = 20
    assert states[19:21] == ["GGrr", "yyrr"]  # long gapped out: the change starts at once


def test_actuated_locking_memory_keeps_a_short_call():
    inter = two_phase_intersection()
    # north-south extends until 20; one east-west car touches its stop bar at t = 8 only (then rolls past it)
    feed = both(pulses(det(0, ADV), range(2, 21, 2)), presence(det(2, SB), 8, 9))
    locked = greens(run(ActuatedPolicy(), inter, 60, feed), inter)
    assert locked == [(0, 2, 21), (1, 28, 32)]  # gap-out at 23, 3 s yellow + 2 s red; then nobody: rest
    unlocked = greens(run(ActuatedPolicy(lock_calls=False), inter, 40, feed), inter)  # (max green 40 s not reached)
    assert unlocked == [(0, 2, 38)]  # without memory the call is lost: rest in north-south


def test_actuated_max_out_goes_to_a_called_phase_and_returns():
    inter = exclusive_intersection(3, max_green_s=20.0)
    feed = both(pulses(0 * 2 + ADV, range(0, 200)), presence(2 * 2 + SB))  # phase 0 never gaps out
    policy = ActuatedPolicy()
    runs = greens(run(policy, inter, 60, feed), inter)
    assert runs[0] == (0, 2, 20)  # maxed out
    assert runs[1][0] == 2  # the called phase, not the machine's default next in list (1)
    assert runs[2][0] == 0  # the maxed-out phase is served again
    assert all(p != 1 for p, _, _ in runs)


def test_actuated_max_out_leaves_a_call_on_the_maxed_out_phase():
    inter = exclusive_intersection(3, max_green_s=20.0)
    # phase 0 busy until it maxes out at t = 22, then its loops fall silent; phase 2 called briefly at t = 5..9
    feed = both(pulses(0 * 2 + ADV, range(0, 22)), presence(2 * 2 + SB, 5, 10))
    runs = greens(run(ActuatedPolicy(), inter, 60, feed), inter)
    assert [p for p, _, _ in runs] == [0, 2, 0]
    assert runs[1][2] == 5  # phase 2's car is long gone: min green, then back to the maxed-out phase


def test_actuated_reset_clears_memory():
    inter = two_phase_intersection()
    policy = ActuatedPolicy()
    feed = both(pulses(det(0, ADV), range(2, 21, 2)), presence(det(2, SB), 8, 9))
    assert run(policy, inter, 60, feed) == run(policy, inter, 60, feed)


# ---------------------------------------------------------------------------------------------- max-pressure
def zones(incoming: dict[int, float], outgoing: dict[int, float] | None = None) -> Feed:
    def feed(t, r):
        for link, n in incoming.items():
            r.count[det(link, RAD)] = n
            r.occupied[det(link, RAD)] = n > 0
        for link, n in (outgoing or {}).items():
            r.count[det(link, EXIT)] = n
            r.occupied[det(link, EXIT)] = n > 0
    return feed


def test_max_pressure_keeps_a_discharging_green_then_serves_the_pressure():
    inter = two_phase_intersection()
    # east-west has the higher pressure throughout; north-south's stop bars see a car every second until t = 20
    feed = both(zones({0: 2, 1: 2, 2: 6, 3: 6}),
                *(pulses(det(link, SB), range(0, 20)) for link in (0, 1)))
    held = greens(run(MaxPressurePolicy(), inter, 60, feed), inter)
    assert held[0][0] == 0 and held[0][1] + held[0][2] == 21  # kept until the first second without a car (t = 20)
    assert held[1][0] == 1
    # as published (no hold), the green ends at its minimum: the queue is cut while it still flows
    plain = greens(run(VaraiyaMaxPressurePolicy(), inter, 60, feed), inter)
    assert plain[0][0] == 0 and plain[0][2] == 5
    with pytest.raises(ValueError, match="gap"):
        MaxPressurePolicy(gap_s=-1.0)


def test_max_pressure_hold_watches_only_the_movements_the_change_would_stop():
    """The discharge hold keeps a green while the queue it would cut still crosses the stop bar; circulating traffic
    green in the next phase too is cut by nothing, so it must not hold the entry's green (it held it to max green)."""
    inter = ring_intersection()
    ring_sb, entry2_sb, entry2_adv = 2 * 1 + 0, 2 * 2 + 0, 2 * 2 + 1
    # entry 2: a car over the advance loop every 2 s joins a queue standing on the stop bar
    feed = both(pulses(ring_sb, range(0, 200)), pulses(entry2_adv, range(0, 200, 2)), presence(entry2_sb))
    runs = greens(run(MaxPressurePolicy(), inter, 60, feed), inter)
    assert runs[0] == (0, 2, 5)  # nothing of entry 0 discharging: its minimum green
    assert runs[1][0] == 1
    # entry 0's own queue discharging does hold it, as before: cars over its stop bar until t = 15
    feed = both(feed, pulses(2 * 0 + 0, range(0, 16)))
    assert greens(run(MaxPressurePolicy(), inter, 60, feed), inter)[0] == (0, 2, 15)  # until the first second without


def test_max_pressure_uses_queue_differences_not_queues():
    inter = two_phase_intersection()
    # north-south: 5 waiting but 4 on each exit (pressure 2); east-west: 3 waiting, exits empty (pressure 6)
    feed = zones({0: 5, 1: 5, 2: 3, 3: 3}, {0: 4, 1: 4})
    policy = MaxPressurePolicy()
    runs = greens(run(policy, inter, 20, feed), inter)
    assert policy.pressures.tolist() == [2.0, 6.0]
    assert runs[:2] == [(0, 2, 5), (1, 12, 8)]  # leaves north-south exactly at its 5 s minimum green
    runs = greens(run(MaxPressurePolicy(), inter, 20, zones({0: 5, 1: 5, 2: 3, 3: 3})), inter)
    assert runs == [(0, 2, 18)]  # exits empty: north-south has the larger pressure and keeps the green


@pytest.mark.parametrize("min_green_s", [5.0, 12.0])
def test_max_pressure_respects_min_green(min_green_s):
    inter = two_phase_intersection(min_green_s=min_green_s)
    runs = greens(run(MaxPressurePolicy(), inter, 40, zones({2: 30, 3: 30})), inter)
    assert runs[0] == (0, 2, min_green_s)


def test_max_pressure_tie_keeps_the_current_green():
    inter = two_phase_intersection()
    runs = greens(run(MaxPressurePolicy(), inter, 38, zones({0: 4, 1: 2, 2: 3, 3: 3})), inter)
    assert runs == [(0, 2, 36)]
    tie_after_10 = zones({0: 3, 1: 3, 2: 3, 3: 3})  # east-west first has more, then both phases tie at 6

    def feed(t, r):
        (tie_after_10 if t >= 10 else zones({2: 9}))(t, r)

    runs = greens(run(MaxPressurePolicy(), inter, 50, feed), inter)
    assert runs == [(0, 2, 5), (1, 12, 38)]  # a tie never switches back


def test_max_pressure_waits_for_min_green_itself():
    inter = two_phase_intersection(min_green_s=10.0)
    machine = PhaseMachine(inter, 1.0)
    run(MaxPressurePolicy(), inter, 30, zones({2: 30, 3: 30}), machine=machine)
    assert machine.stats.changes >= 1 and machine.stats.deferred == 0  # it never asked before it could be served


def test_max_pressure_max_out_goes_to_the_highest_other_pressure():
    inter = exclusive_intersection(3, max_green_s=20.0)  # loops only: sb i = 2i, adv i = 2i+1

    def feed(t, r):
        r.occupied[[0, 1, 4]] = True
        r.occupancy[1] = 1.0  # a car stands on phase 0's advance loop: its queue is full (the largest)
        r.occupancy[4] = 1.0  # one car at phase 2's stop bar; phase 1 is empty

    policy = MaxPressurePolicy()
    runs = greens(run(policy, inter, 40, feed), inter)
    assert runs[0] == (0, 2, 20) and runs[1][0] == 2  # not the machine's default next phase (1)


def test_max_pressure_serves_a_phase_whose_vehicle_waited_the_longest_wait():
    inter = exclusive_intersection(3, max_green_s=40.0)  # loops only: sb i = 2i, adv i = 2i+1

    def feed(t, r):
        r.occupied[[0, 1, 2, 3, 4]] = True
        r.occupancy[[1, 3]] = 1.0  # phases 0 and 1: queues back over their advance loops (the largest)
        # phase 2: one car at its stop bar, for ever the lowest pressure

    plain = greens(run(MaxPressurePolicy(max_wait_s=np.inf), inter, 300, feed), inter)
    assert {p for p, _, _ in plain} == {0, 1}  # at every max-out the higher other pressure wins: phase 2 starves
    assert {p for p, _, _ in greens(run(VaraiyaMaxPressurePolicy(), inter, 300, feed), inter)} == {0, 1}
    policy = MaxPressurePolicy(max_wait_s=60.0)
    runs = greens(run(policy, inter, 300, feed), inter)
    served = [start for p, start, _ in runs if p == 2]
    # waiting since t = 0: served once phase 1's green (begun at max-out of phase 0) has run its minimum after 60 s
    assert served and 60 <= served[0] <= 60 + 5 + 6 and len(served) >= 2
    assert all(length >= 5 for _, _, length in runs[:-1])  # the wait ends a green only once it may end
    assert MaxPressurePolicy().max_wait_s == 120.0
    # an intersection without any detector (found by the property tests): nobody is seen waiting, nothing breaks
    bare = dataclasses.replace(inter, detectors=())
    assert {p for p, _, _ in greens(run(MaxPressurePolicy(max_wait_s=60.0), bare, 300), bare)}
    with pytest.raises(ValueError, match="longest wait"):
        MaxPressurePolicy(max_wait_s=0.0)


def test_max_pressure_counts_a_shared_lane_once():
    # lane A feeds links 0 (through) and 1 (turn), both green in phase 0; lane B feeds link 2 (phase 1)
    links = (SignalLink(0, "vehicle", "A", "o0", 13.9, 3.0, 2.0), SignalLink(1, "vehicle", "A", "o1", 13.9, 3.0, 2.0),
             SignalLink(2, "vehicle", "B", "o2", 13.9, 3.0, 2.0))
    compatible = ((True, True, False), (True, True, False), (False, False, True))
    detectors = (Detector("radA", "radar", "A", (0, 1), 0.0, 100.0), Detector("radB", "radar", "B", (2,), 0.0, 100.0))
    inter = Intersection("shared", links, (Phase(1, "GGr"), Phase(2, "rrG")), compatible, detectors)

    def feed(t, r):
        r.count[:] = [6, 8]

    policy = MaxPressurePolicy()
    runs = greens(run(policy, inter, 20, feed), inter)
    assert policy.pressures.tolist() == [6.0, 8.0]  # counted per link it would be 12 for phase 0
    assert [p for p, _, _ in runs] == [0, 1]


def test_max_pressure_falls_back_to_loops_without_radar():
    base = two_phase_intersection()
    inter = dataclasses.replace(base, detectors=tuple(d for d in base.detectors if d.kind in ("stopbar", "advance")))
    # indices now: per link i, stop-bar 2i, advance 2i+1

    def feed(t, r):  # east-west: one arrival per second at the advance loops until t = 4, queue at the stop bars
        if t <= 4:
            r.count[[5, 7]] = 1
        r.occupied[[4, 6]] = True

    policy = MaxPressurePolicy()
    runs = greens(run(policy, inter, 16, feed), inter)
    assert runs[0] == (0, 2, 5)  # north-south has nobody: east-west after min green
    assert runs[1][0] == 1
    assert policy.pressures[1] == pytest.approx(10.0)  # 5 vehicles between the loops on each east-west lane


def test_spillback_max_pressure_sends_nobody_into_a_full_exit():
    inter = two_phase_intersection()  # exit zones 100 m: 13.3 vehicles at jam spacing
    # north-south: 30 waiting on each approach but 12 on each exit (90 % full); east-west: 3 waiting, exits empty
    feed = zones({0: 30, 1: 30, 2: 3, 3: 3}, {0: 12, 1: 12})
    plain = MaxPressurePolicy()
    assert greens(run(plain, inter, 20, feed), inter) == [(0, 2, 18)]  # 2 x (30 - 12) outweighs 6: keeps sending
    assert plain.pressures.tolist() == [36.0, 6.0]
    spill = SpillbackMaxPressurePolicy()
    runs = greens(run(spill, inter, 20, feed), inter)
    assert spill.pressures.tolist() == [0.0, 6.0]  # the full exits cut north-south's pressure to 0
    assert runs[:2] == [(0, 2, 5), (1, 12, 8)]  # leaves north-south at its minimum green
    # below the threshold (70 % full) it is plain max-pressure
    half = zones({0: 30, 1: 30, 2: 3, 3: 3}, {0: 9.3, 1: 9.3})
    assert greens(run(SpillbackMaxPressurePolicy(), inter, 20, half), inter) == greens(run(MaxPressurePolicy(), inter, 20, half), inter)


# ---------------------------------------------------------------------------------------------- registry
def test_registry_builds_each_policy_by_name():
    for name, cls in [("fixed", FixedTimePolicy), ("webster", WebsterPolicy), ("actuated", ActuatedPolicy),
                      ("maxpressure", MaxPressurePolicy), ("maxpressure-spillback", SpillbackMaxPressurePolicy),
                      ("maxpressure-varaiya", VaraiyaMaxPressurePolicy)]:
        assert type(registry.make_policy(name)) is cls
    assert registry.make_policy("actuated", passage_s=2.0).passage_s == 2.0


def test_registry_unknown_name_lists_the_choices():
    with pytest.raises(InputError) as err:
        registry.make_policy("maxpresure")
    assert str(err.value) == ("unknown controller 'maxpresure'; choose from: actuated, fixed, maxpressure, "
                              "maxpressure-spillback, maxpressure-varaiya, webster")


def test_registry_register(monkeypatch):
    monkeypatch.setattr(registry, "POLICIES", dict(registry.POLICIES))

    class Hold(Policy):
        name = "hold"

        def decide(self, view):
            return view.phase

    registry.register("hold", Hold)
    registry.register("hold", Hold)  # idempotent
    assert isinstance(registry.make_policy("hold"), Hold)
    with pytest.raises(ValueError):
        registry.register("fixed", Hold)
    with pytest.raises(ValueError):
        registry.register("dict", dict)


def test_actuated_gaps_out_to_a_phase_called_by_a_push_button():
    """With no vehicle anywhere, actuated rests in green; a pedestrian call on another phase is served as soon as
    the green may end (a call, like a vehicle's), not only at max green."""
    inter = exclusive_intersection(3, min_green_s=5.0, max_green_s=40.0)
    machine = PhaseMachine(inter)
    policy = ActuatedPolicy()
    policy.reset(inter, 1.0)
    shown = []
    for t in range(60):
        if t == 20:
            machine.call_pedestrian(2)
        readings = DetectorReadings.empty(len(inter.detectors), machine.time_s)
        view = SignalView(inter, readings, machine.phase, machine.target, machine.interval,
                          machine.green_elapsed_s, machine.may_end_green(), machine.pedestrian_calls)
        machine.request(policy.decide(view))
        shown.append(machine.tick())
    first_green_of_2 = next(t for t, s in enumerate(shown) if s[2] == "G")
    assert 20 < first_green_of_2 <= 20 + 3 + 2 + 2  # yellow 3 s + all-red 2 s (+ the steps to decide)
    assert machine.stats.max_outs == 0
