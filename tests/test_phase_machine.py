"""Phase machine behaviour on hand-made intersections: min/max green, clearances, requests kept, pedestrians."""

import pytest

from controller.errors import InputError
from controller.intersection import Intersection, Phase, SignalLink
from controller.phase_machine import PhaseMachine
from controller.testing import crossroads_with_crosswalks, two_phase_intersection


def run(machine, ticks, requests=None):
    requests = requests or {}
    out = []
    for t in range(ticks):
        if t in requests:
            machine.request(requests[t])
        out.append(machine.tick())
    return out


def runs(states, link):
    """Consecutive (char, length) runs of one link's colour."""
    out = []
    for s in states:
        c = s[link]
        if out and out[-1][0] == c:
            out[-1][1] += 1
        else:
            out.append([c, 1])
    return [tuple(r) for r in out]


def test_startup_all_red_then_major_phase():
    states = run(PhaseMachine(two_phase_intersection()), 4)
    assert states[:2] == ["rrrr", "rrrr"] and states[2] == "GGrr"


def test_request_during_min_green_is_kept_and_served_when_min_green_ends():
    m = PhaseMachine(two_phase_intersection(min_green_s=10))
    states = run(m, 40, {3: 1})  # asked one step into the green
    green0 = runs(states, 0)
    assert green0[1] == ("G", 10)  # min green honoured, not cut
    assert green0[2] == ("y", 3) and runs(states, 2)[1][0] == "G"
    assert m.stats.deferred == 1 and m.stats.changes == 1


def test_request_during_yellow_is_served_after_the_next_min_green():
    m = PhaseMachine(two_phase_intersection())
    states = run(m, 60, {3: 1, 9: 0})  # phase 0 asked again while phase 0 is clearing
    assert runs(states, 0)[-1][0] == "G"  # served, not dropped
    assert runs(states, 2)[1] == ("G", 5)  # the green it interrupted ran its full min green


def test_max_green_forces_the_change_only_when_another_phase_waits():
    m = PhaseMachine(two_phase_intersection(min_green_s=5, max_green_s=20))
    states = run(m, 60)
    assert all(s == "GGrr" for s in states[2:])  # nobody waiting: rests in green
    m.call_vehicle(1)
    states = run(m, 10)
    assert states[0] == "yyrr" and m.stats.max_outs == 1


def test_withdrawn_non_locking_calls_no_longer_force_a_max_out():
    m = PhaseMachine(two_phase_intersection(min_green_s=5, max_green_s=20))
    run(m, 5)
    m.set_vehicle_calls([1])
    m.set_vehicle_calls([])  # a central system set, then cleared, its call bit
    states = run(m, 40)
    assert all(s == "GGrr" for s in states) and m.stats.max_outs == 0
    m.set_vehicle_calls([1, 0])  # the call on the green phase is ignored, the other one counts
    assert run(m, 1) == ["yyrr"]
    with pytest.raises(InputError):
        m.set_vehicle_calls([5])


def test_extend_request_holds_green_until_max_out_with_a_call():
    m = PhaseMachine(two_phase_intersection(min_green_s=5, max_green_s=20))
    m.call_vehicle(1)
    states = []
    for _ in range(40):
        m.request(0)  # the policy keeps asking to extend
        states.append(m.tick())
    assert runs(states, 0)[1] == ("G", 20)


def test_clearance_intervals_are_rounded_up_never_down():
    inter = two_phase_intersection()
    fine = Intersection(inter.id, tuple(SignalLink(l.index, l.kind, l.from_lane, l.to_lane, l.speed_mps, 3.2, 1.1)
                                        for l in inter.links), inter.phases, inter.compatible, inter.detectors)
    states = run(PhaseMachine(fine), 40, {3: 1})
    assert ("y", 4) in runs(states, 0)  # 3.2 s yellow shown as 4 whole seconds
    rr = [s for s in states[10:20] if s == "rrrr"]
    assert len(rr) == 2  # 1.1 s all-red shown as 2 seconds


def test_pedestrian_walk_and_clearance_are_never_cut():
    m = PhaseMachine(crossroads_with_crosswalks())
    states = run(m, 80, {3: 1})
    walk = runs(states, 2)
    assert walk[1] == ("G", 7) and walk[2] == ("y", 12)  # walk 7 s, flashing don't walk 12 s
    assert runs(states, 0)[1][1] >= 19  # the vehicle green lasted at least walk + clearance


def test_pedestrian_call_on_a_crosswalk_green_in_two_phases_gets_its_walk():
    # regression: a call on a crosswalk carried over from the previous phase was consumed without a walk
    v = lambda i: SignalLink(i, "vehicle", f"in{i}", f"out{i}", 10.0, 3.0, 1.0)
    crosswalk = SignalLink(2, "pedestrian", "w2", "", 1.2, 5.0, 1.0, 4.0)
    inter = Intersection("ped", (v(0), v(1), crosswalk),
                         (Phase(1, "GrG", "A", 5, 30, 5), Phase(2, "rGG", "B", 5, 30, 5)),
                         ((True, False, True), (False, True, True), (True, True, True)))
    m = PhaseMachine(inter, 1.0, ped_recall=False)
    run(m, 3)
    m.call_pedestrian(1)
    m.request(1)
    states = run(m, 30)
    assert "rGG" in states  # the walk was shown in phase B


def test_unknown_phase_request_is_refused_with_a_clear_error():
    m = PhaseMachine(two_phase_intersection())
    with pytest.raises(InputError, match="no phase index 5"):
        m.request(5)
    with pytest.raises(InputError):
        m.call_vehicle(-1)


# ---------------------------------------------------------------- the steady-state fast path
from hypothesis import given, settings  # noqa: E402

from tests.strategies import intersections, request_plans  # noqa: E402


def _random_inputs(m: PhaseMachine, rng, plan, n: int) -> None:
    """The plan's random requests and calls for one tick."""
    if rng.random() < plan.request_p:
        m.request(rng.randrange(n))
    if rng.random() < plan.vehicle_call_p:
        m.call_vehicle(rng.randrange(n))
    if rng.random() < plan.ped_call_p:
        m.call_pedestrian(rng.randrange(n))


def _stream(inter, plan, fast: bool, ticks: int = 600) -> list[tuple[str, str]]:
    import random

    rng = random.Random(plan.seed)
    n = len(inter.phases)
    m = PhaseMachine(inter, plan.step_s, int(plan.initial_phase * n), plan.ped_recall)
    if not fast:
        m._steady_ticks = lambda: 0  # every tick takes the full path
    out = []
    for _ in range(ticks):
        _random_inputs(m, rng, plan, n)
        out.append((m.tick(), m.interval.value))
    return out


@settings(max_examples=150, deadline=None)
@given(inter=intersections(), plan=request_plans())
def test_fast_path_gives_exactly_the_full_path_stream(inter, plan):
    assert _stream(inter, plan, fast=True) == _stream(inter, plan, fast=False)


def _skipping_stream(inter, plan, ticks: int = 600) -> list[tuple[str, str, float]]:
    """Like :func:`_stream`, but every quiet stretch is run with one ``skip`` and its state repeated."""
    import random

    rng = random.Random(plan.seed)
    n = len(inter.phases)
    m = PhaseMachine(inter, plan.step_s, int(plan.initial_phase * n), plan.ped_recall)
    out = []
    while len(out) < ticks:
        _random_inputs(m, rng, plan, n)
        out.append((m.tick(), m.interval.value, m.green_elapsed_s))
        quiet = min(m.quiet_ticks, ticks - len(out), 7)
        if quiet:
            m.skip(quiet)
            out.extend([(m.state, m.interval.value, None)] * quiet)
    return out


@settings(max_examples=100, deadline=None)
@given(inter=intersections(), plan=request_plans())
def test_skipping_quiet_ticks_shows_what_ticking_would(inter, plan):
    """``skip`` over the quiet ticks the machine announces changes neither the states shown nor the clocks."""
    import random

    skipping = _skipping_stream(inter, plan)
    # replay with plain ticks, asking nothing during the stretches that were skipped
    rng = random.Random(plan.seed)
    n = len(inter.phases)
    m = PhaseMachine(inter, plan.step_s, int(plan.initial_phase * n), plan.ped_recall)
    for state, interval, elapsed in skipping:
        if elapsed is not None:
            _random_inputs(m, rng, plan, n)
        assert (m.tick(), m.interval.value) == (state, interval)
        if elapsed is not None:
            assert m.green_elapsed_s == elapsed


def test_skip_refuses_more_than_the_quiet_ticks():
    m = PhaseMachine(two_phase_intersection())
    m.tick()
    with pytest.raises(ValueError, match="quiet"):
        m.skip(m.quiet_ticks + 1)
