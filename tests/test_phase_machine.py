"""Phase machine behaviour on hand-made intersections: min/max green, clearances, requests kept, pedestrians."""

import math
from pathlib import Path

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


# ---------------------------------------------------------------- protected -> permissive (G -> g)
def _protected_left(yellow_s: float = 4.0, red_s: float = 2.0) -> Intersection:
    """Link 0 a left turn, protected (``G``) in phase 0 and permissive (``g``) in phase 1 against the opposing
    through, link 1; the matrix lets them be green together (the left yields)."""
    links = (SignalLink(0, "vehicle", "in0", "out0", 13.9, yellow_s, red_s),
             SignalLink(1, "vehicle", "in1", "out1", 13.9, 3.0, 1.0))
    return Intersection("protected-left", links, (Phase(1, "Gr", "left", 5, 30), Phase(2, "gG", "through", 5, 30)),
                        ((True, True), (True, True)))


def test_protected_green_becoming_permissive_gets_its_yellow_and_red_clearance():
    m = PhaseMachine(_protected_left(yellow_s=4.0, red_s=2.0))
    states = run(m, 20, {6: 1})
    start = states.index("yr")
    # was Gr -> gG in one step: the opposing through released while the protected left turned permissive
    assert states[start - 1:start + 8] == ["Gr"] + ["yr"] * 4 + ["rr"] * 2 + ["gG"] * 2
    assert runs(states, 1)[0] == ("r", start + 6)  # the through waited for the left's yellow and red clearance


def test_protected_to_permissive_clearance_is_rounded_up_and_at_least_one_step():
    m = PhaseMachine(_protected_left(yellow_s=3.2, red_s=0.0), step_s=0.5)
    states = run(m, 40, {12: 1})
    assert ("y", 7) in runs(states, 0)  # 3.2 s yellow at 0.5 s steps: 7 steps
    assert "yr" not in [a for a, b in zip(states, states[1:]) if b == "gG"]  # never yellow straight to green
    assert states[states.index("gG") - 1] == "rr"


def test_permissive_to_protected_and_same_kind_greens_continue():
    m = PhaseMachine(_protected_left())
    states = run(m, 40, {6: 1, 20: 0})
    assert "gy" in states and states[states.index("gy") - 1] == "gG"  # g -> G (lagging left): link 0 stays green
    after = states[states.index("gG"):]
    assert all(s[0] in "Gg" for s in after)
    # G -> G and g -> g across phases: no yellow for the link that stays
    inter = Intersection("same", _protected_left().links, (Phase(1, "Gr"), Phase(2, "GG"), Phase(3, "gr")),
                         ((True, True), (True, True)))
    states = run(PhaseMachine(inter), 40, {6: 1, 20: 2})
    assert runs(states, 0)[0][0] == "G" and "y" not in "".join(s[0] for s in states[:20])


def test_protected_green_back_as_permissive_phases_later_waits_for_its_red_clearance():
    # link 0 protected in phase 0 with link 1, red in phase 1 (a 1 s green of link 1), permissive in phase 2
    # (link 1 continues, nothing conflicts): its own 4 s red clearance still runs from the end of its yellow
    links = tuple(SignalLink(i, "vehicle", f"in{i}", f"out{i}", 13.9, 3.0, red) for i, red in enumerate((4.0, 0.0)))
    inter = Intersection("later", links, (Phase(1, "GG"), Phase(2, "rG", min_green_s=1), Phase(3, "gG")),
                         ((True,) * 2,) * 2)
    states = run(PhaseMachine(inter), 30, {0: 1, 7: 2})
    assert runs(states, 0)[:3] == [("G", 5), ("y", 3), ("r", 4)] and runs(states, 0)[3][0] == "g"


def test_protected_left_on_a_four_leg_layout_clears_before_the_opposing_through():
    """The bundled single intersection: phase 1 (index 1) protects the east-west lefts (links 7, 15), phase 0
    runs the east-west throughs with those lefts permissive."""
    from networks.derive import load_intersection_file

    inter = load_intersection_file(Path(__file__).parents[1] / "networks/single/intersections.derived.json")[0]
    assert inter.phases[1].state[7] == "G" and inter.phases[0].state[7] == "g"
    m = PhaseMachine(inter, initial_phase=1)
    states = run(m, 60, {3: 0})
    for left, opposing in ((7, 13), (15, 5)):
        assert inter.compatible[left][opposing]  # the matrix alone would let them go together
        link = inter.links[left]
        colours = runs(states, left)
        yellow, red = math.ceil(link.yellow_s), math.ceil(link.red_clearance_s)
        assert colours[1:4] == [("G", colours[1][1]), ("y", yellow), ("r", red)] and colours[4][0] == "g"
        released = next(t for t, s in enumerate(states) if s[opposing] in "Gg")
        assert released == next(t for t, s in enumerate(states) if s[left] == "g")  # together, after the clearance


def test_lagging_protected_left_waits_for_the_opposing_through_red_clearance():
    # g -> G continues, but the arrow (G) comes only after the opposing through's yellow and 1 s red clearance
    m = PhaseMachine(_protected_left())
    states = run(m, 40, {6: 1, 20: 0})
    change = states[states.index("gy"):]
    assert change[:5] == ["gy"] * 3 + ["gr", "Gr"]


def test_opposing_through_waits_for_the_protected_left_clearance_when_the_left_goes_red():
    inter = Intersection("left-then-through", _protected_left().links,
                         (Phase(1, "Gr"), Phase(2, "gG"), Phase(3, "rG")), ((True, True), (True, True)))
    states = run(PhaseMachine(inter), 30, {6: 2})
    start = states.index("yr")
    assert states[start:start + 7] == ["yr"] * 4 + ["rr"] * 2 + ["rG"]  # 4 s yellow, 2 s red clearance


def test_lagging_lefts_on_a_four_leg_layout_wait_for_the_opposing_clearance():
    """The bundled single intersection: from the east-west throughs (lefts 7, 15 permissive) to the protected
    lefts (phase index 1), the lefts stay permissive through the throughs' yellow and red clearance."""
    from networks.derive import load_intersection_file

    inter = load_intersection_file(Path(__file__).parents[1] / "networks/single/intersections.derived.json")[0]
    states = run(PhaseMachine(inter, initial_phase=0), 40, {3: 1})
    for left, opposing in ((7, 13), (15, 5)):
        through = inter.links[opposing]
        assert runs(states, opposing)[2:4] == [("y", math.ceil(through.yellow_s)), ("r", runs(states, opposing)[3][1])]
        arrow = next(t for t, s in enumerate(states) if s[left] == "G")
        yellow_end = next(t for t, s in enumerate(states) if t and states[t - 1][opposing] == "y" and s[opposing] == "r")
        assert arrow - yellow_end >= math.ceil(through.red_clearance_s)
        assert all(s[left] in "Gg" for s in states[states.index(next(s for s in states if s[left] == "g")):])


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


def test_a_pedestrian_call_is_demand_for_its_phase_max_green_then_serves_it():
    """A push button calls its phase as a vehicle call does: resting in green with nobody waiting, the green
    showing is ended at max green for it; the call is cleared when the phase turns green."""
    inter = crossroads_with_crosswalks()
    m = PhaseMachine(inter)
    states = run(m, 200)
    assert states[-1] == states[100] and m.stats.max_outs == 0  # resting: nobody waits
    m.call_pedestrian(1)
    assert m.pedestrian_calls == {1}
    states = run(m, 200)
    assert m.stats.max_outs == 1 and m.phase == 1 and m.pedestrian_calls == frozenset()
    assert any(s[5] == "G" for s in states)  # the crosswalk of phase 1 walked
