"""Property tests: on random layouts under random policies, the phase machine never trips the safety monitor.

Every tick of :class:`PhaseMachine` is judged by :class:`SafetyMonitor` (conflicts, yellow after every
green, full yellow, red clearance) and by direct checks of the rules the monitor does not see (min green,
max green, walk). A second group plants faults in real streams and checks the monitor catches each one,
so "zero violations" cannot come from a monitor that sees nothing.
"""

from __future__ import annotations

import math
import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from controller.intersection import Intersection
from controller.phase_machine import PhaseMachine
from controller.policies.base import Interval
from controller.safety import SafetyMonitor
from tests.strategies import RequestPlan, intersections, request_plans

TICKS_PER_EXAMPLE = 2500
EXAMPLES = 250
#: The property test must cover at least this much simulated time in total (the brief's bar).
MIN_TOTAL_SIMULATED_S = 1e5
#: ... and show at least this many protected (G) -> permissive (g) changes of a link
MIN_PROTECTED_TO_PERMISSIVE = 100
EPS_S = 1e-6
GREEN = frozenset("Gg")


def _ticks(seconds: float, step_s: float) -> int:
    """Whole steps covering ``seconds``, as the phase machine rounds (up)."""
    return int(math.ceil(round(seconds / step_s, 6)))


def _machine(inter: Intersection, plan: RequestPlan) -> PhaseMachine:
    first = int(plan.initial_phase * len(inter.phases))
    return PhaseMachine(inter, plan.step_s, initial_phase=first, ped_recall=plan.ped_recall)


def _drive(machine: PhaseMachine, plan: RequestPlan, ticks: int):
    """Yield (state, interval, phase, waiting) per tick under the plan's random requests and calls.

    ``waiting`` tells whether another phase was waiting (a request or a vehicle call) as the tick began;
    the calls are mirrored here from the phase machine's documented rule (cleared when the phase turns green).
    """
    rng = random.Random(plan.seed)
    k = len(machine.intersection.phases)
    calls: set[int] = set()
    for _ in range(ticks):
        if rng.random() < plan.request_p:
            machine.request(rng.randrange(k))
        if rng.random() < plan.vehicle_call_p:
            q = rng.randrange(k)
            machine.call_vehicle(q)
            if not (machine.interval is Interval.GREEN and q == machine.phase):
                calls.add(q)
        if rng.random() < plan.ped_call_p:
            machine.call_pedestrian(rng.randrange(k))
        waiting = machine.pending not in (None, machine.phase) or bool(calls - {machine.phase})
        state = machine.tick()
        if machine.interval is Interval.GREEN:
            calls.discard(machine.phase)
        yield state, machine.interval, machine.phase, waiting


class TimingChecker:
    """Direct checks of what the monitor does not judge: min green per link and per phase, max green, walk."""

    def __init__(self, inter: Intersection, step_s: float) -> None:
        self.inter, self.step_s = inter, step_s
        n = inter.n_links
        self.is_ped = [link.kind == "pedestrian" for link in inter.links]
        # a link's green run spans at least one whole green of a phase that shows it
        self.link_min = [min((p.min_green_s for p in inter.phases if i in p.greens), default=0.0) for i in range(n)]
        # max green, or walk + clearance if longer: past it a waiting phase must get the change (NEMA max timer).
        # A crosswalk still in clearance when its next phase begins shows one step of don't walk before its
        # new walk, so a phase with crosswalks may hold one step more.
        self.longest = [max([_ticks(p.max_green_s, step_s)]
                            + [1 + _ticks(inter.links[i].walk_s, step_s) + _ticks(inter.links[i].yellow_s, step_s)
                               for i in p.greens if self.is_ped[i]])
                        for p in inter.phases]
        self.run_start = [0] * n  # tick at which each link's current green began
        self.green_of: tuple[int, int] | None = None  # (phase, first tick) of the green interval running
        self.prev = "r" * n
        self.t = 0

    def step(self, state: str, interval: Interval, phase: int, waiting: bool) -> None:
        t, step = self.t, self.step_s
        for i, (before, now) in enumerate(zip(self.prev, state)):
            if now in GREEN and before not in GREEN:
                self.run_start[i] = t
            elif before in GREEN and now not in GREEN:
                shown = (t - self.run_start[i]) * step
                if self.is_ped[i]:
                    walk = self.inter.links[i].walk_s
                    assert shown >= walk - EPS_S, f"t={t * step}: walk of link {i} lasted {shown} s < {walk} s"
                else:
                    assert now == "y", f"t={t * step}: vehicle link {i} left green for {now!r}"
                    need = self.link_min[i]
                    assert shown >= need - EPS_S, f"t={t * step}: link {i} green {shown} s < min green {need} s"
        still = interval is Interval.GREEN and self.green_of is not None and self.green_of[0] == phase
        if self.green_of is not None:
            p, start = self.green_of
            if not still:
                shown, need = (t - start) * step, self.inter.phases[p].min_green_s
                assert shown >= need - EPS_S, f"t={t * step}: phase {p} green {shown} s < min green {need} s"
            else:
                assert not (waiting and t - start >= self.longest[p]), (
                    f"t={t * step}: phase {p} green {(t - start) * step} s held past max green "
                    f"{self.inter.phases[p].max_green_s} s while another phase waits")
        if not still:
            self.green_of = (phase, t) if interval is Interval.GREEN else None
        self.prev = state
        self.t = t + 1


def _protected_returns(states: list[str]) -> int:
    """How often a link shown protected (``G``) is later shown permissive (``g``): the protected/permissive
    changes the run exercised."""
    count = 0
    last = [""] * (len(states[0]) if states else 0)
    for state in states:
        for i, c in enumerate(state):
            if c in GREEN:
                count += c == "g" and last[i] == "G"
                last[i] = c
    return count


def _run_checked(inter: Intersection, plan: RequestPlan, ticks: int) -> tuple[float, int]:
    """Run the machine under the plan with monitor and direct checks; return the simulated seconds and the
    number of protected -> permissive changes shown."""
    machine = _machine(inter, plan)
    monitor = SafetyMonitor(inter, plan.step_s)
    timing = TimingChecker(inter, plan.step_s)
    recent: list[str] = []
    states = []
    for state, interval, phase, waiting in _drive(machine, plan, ticks):
        recent = recent[-11:] + [state]
        states.append(state)
        shown = monitor.check(state)
        assert shown == state and not monitor.in_flash, f"{monitor.reason}; last states {recent}"
        timing.step(state, interval, phase, waiting)
    assert monitor.violations == ()
    return ticks * plan.step_s, _protected_returns(states)


def test_phase_machine_never_trips_the_monitor_on_random_layouts():
    total = {"simulated_s": 0.0, "examples": 0, "protected_to_permissive": 0}

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(inter=intersections(), plan=request_plans())
    def run(inter: Intersection, plan: RequestPlan) -> None:
        seconds, returns = _run_checked(inter, plan, TICKS_PER_EXAMPLE)
        total["simulated_s"] += seconds
        total["protected_to_permissive"] += returns
        total["examples"] += 1

    run()
    print(f"\nsafety property: {total['examples']} runs, {total['simulated_s']:.0f} simulated seconds, "
          f"{total['protected_to_permissive']} protected -> permissive changes")
    assert total["simulated_s"] >= MIN_TOTAL_SIMULATED_S
    # the layouts put links G in one phase and g in another, and the runs change between those phases
    assert total["protected_to_permissive"] >= MIN_PROTECTED_TO_PERMISSIVE


def test_a_crosswalk_clearance_carried_into_a_phase_that_does_not_serve_it_still_gets_its_red_clearance():
    """Found by the property test above (6 December 2026), kept as a fixed case: a crosswalk in its flashing don't
    walk when its phase changes to another that includes it, but without a pedestrian call, goes dark-red at
    that green's first step with no change interval of its own. The machine never recorded that end of its
    clearance, so the next phase's conflicting vehicle link was released after 1.0 s of red where 1.1 s (three
    half-second steps) was needed."""
    from controller.intersection import Phase, SignalLink

    ped = SignalLink(0, "pedestrian", "walk0", "", 1.2, 3.0, 1.1, 4.0)
    cars = [SignalLink(i, "vehicle", f"in{i}", f"out{i}", 8.0, 3.0, 0.0) for i in range(1, 6)]
    states = ["Grrrrr", "Grrrrr", "Grrrrr", "GrrrrG", "rrrrGr"]
    compatible = tuple(tuple(not ({i, j} == {0, 4}) for j in range(6)) for i in range(6))
    inter = Intersection("random", (ped, *cars), tuple(Phase(k + 1, st, f"random {k + 1}", 1.0, 1.0, 1.0)
                                                       for k, st in enumerate(states)), compatible)
    plan = RequestPlan(seed=0, step_s=0.5, request_p=0.0, vehicle_call_p=0.05, ped_call_p=0.02, ped_recall=False,
                       initial_phase=0.0)
    seconds, _ = _run_checked(inter, plan, TICKS_PER_EXAMPLE)
    assert seconds == TICKS_PER_EXAMPLE * 0.5


# ---------------------------------------------------------------------------- the monitor has teeth
# Each test takes a real stream from the phase machine, plants one fault, and expects the monitor to
# latch at exactly that step with exactly that kind.

def _stream(inter: Intersection, plan: RequestPlan, ticks: int = 400) -> list[str]:
    return [state for state, *_ in _drive(_machine(inter, plan), plan, ticks)]


def _first_fault(inter: Intersection, step_s: float, states: list[str]) -> tuple[int | None, set[str]]:
    """Step of the first fault and the kinds found in it; checks that the output flashes from there on."""
    monitor = SafetyMonitor(inter, step_s)
    for t, state in enumerate(states):
        if monitor.check(state) != state:
            kinds = {v.kind for v in monitor.violations}
            assert all(monitor.check(s) == monitor.fault_state for s in states[t:t + 5])  # stays latched
            return t, kinds
    return None, set()


def _replace(state: str, i: int, char: str) -> str:
    return state[:i] + char + state[i + 1:]


def _yellow_runs(states: list[str], i: int) -> list[tuple[int, int]]:
    """[start, end) of each complete yellow run of link i."""
    runs, start = [], None
    for t, s in enumerate(states):
        if s[i] == "y" and start is None:
            start = t
        elif s[i] != "y" and start is not None:
            runs.append((start, t))
            start = None
    return runs


teeth = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])


@teeth
@given(inter=intersections(), plan=request_plans(), pick=st.randoms(use_true_random=False))
def test_planted_conflict_is_caught(inter, plan, pick):
    states = _stream(inter, plan)
    spots = [(t, j) for t, s in enumerate(states) for i, c in enumerate(s) if c in GREEN
             for j in range(inter.n_links) if not inter.compatible[i][j] and s[j] not in GREEN]
    assume(spots)
    t, j = pick.choice(spots)
    states[t] = _replace(states[t], j, "G")
    at, kinds = _first_fault(inter, plan.step_s, states)
    # the planted green may also be a release inside a clearance or a yellow sent back to green
    assert at == t and "conflict" in kinds and kinds <= {"conflict", "missing_red_clearance", "short_yellow"}


@teeth
@given(inter=intersections(), plan=request_plans(), pick=st.randoms(use_true_random=False))
def test_planted_green_to_red_is_caught(inter, plan, pick):
    states = _stream(inter, plan)
    spots = [(t, i) for t in range(1, len(states)) for i in range(inter.n_links)
             if states[t - 1][i] in GREEN and states[t][i] == "y"]
    assume(spots)
    t, i = pick.choice(spots)
    states[t] = _replace(states[t], i, "r")
    assert _first_fault(inter, plan.step_s, states) == (t, {"green_to_red"})


@teeth
@given(inter=intersections(), plan=request_plans(), pick=st.randoms(use_true_random=False))
def test_planted_short_yellow_is_caught(inter, plan, pick):
    states = _stream(inter, plan)
    spots = [(i, run) for i in range(inter.n_links) for run in _yellow_runs(states, i)]
    assume(spots)
    i, (start, end) = pick.choice(spots)
    need = math.ceil((inter.links[i].yellow_s - 1e-3) / plan.step_s)  # steps the yellow must show
    cut = start + need - 1  # the yellow now shows need - 1 steps
    for t in range(cut, end):
        states[t] = _replace(states[t], i, "r")
    assert _first_fault(inter, plan.step_s, states) == (cut, {"short_yellow"})


@teeth
@given(inter=intersections(), plan=request_plans(), pick=st.randoms(use_true_random=False))
def test_planted_early_release_is_caught(inter, plan, pick):
    """Move a green start back to the step a conflicting yellow ended: its red clearance is skipped."""
    states = _stream(inter, plan)
    n = inter.n_links
    conflicts = [[j for j in range(n) if j != i and not inter.compatible[i][j]] for i in range(n)]
    spots = []
    for j in range(n):
        if math.ceil((inter.links[j].red_clearance_s - 1e-3) / plan.step_s) < 1:
            continue  # no red clearance to skip
        for _, te in _yellow_runs(states, j):
            for i in conflicts[j]:
                release = next((t for t in range(te, len(states)) if states[t][i] in GREEN), None)
                if (release is not None and states[te - 1][i] == "r"
                        and all(states[t][k] not in "Gggyo" for t in range(te, release) for k in conflicts[i])):
                    spots.append((te, release, i))
    assume(spots)
    te, release, i = pick.choice(spots)
    for t in range(te, release):
        states[t] = _replace(states[t], i, "G")
    assert _first_fault(inter, plan.step_s, states) == (te, {"missing_red_clearance"})


@teeth
@given(inter=intersections(), plan=request_plans(), pick=st.randoms(use_true_random=False))
def test_planted_protected_to_permissive_is_caught(inter, plan, pick):
    """Keep a protected green showing through its yellow and red clearance up to its permissive return: the
    defect's ``G`` -> ``g`` in one step (the movements it then yields to are released in that step)."""
    states = _stream(inter, plan)
    n = inter.n_links
    conflicts = [[j for j in range(n) if j != i and not inter.compatible[i][j]] for i in range(n)]
    spots = []
    for i in range(n):
        for start, end in _yellow_runs(states, i):
            if states[start - 1][i] != "G":
                continue
            back = next((t for t in range(end, len(states)) if states[t][i] != "r"), None)
            if (back is not None and states[back][i] == "g"  # nothing conflicting shows in between
                    and all(states[t][j] not in "Gggyo" for t in range(start, back) for j in conflicts[i])):
                spots.append((start, back, i))
    assume(spots)
    start, back, i = pick.choice(spots)
    for t in range(start, back):
        states[t] = _replace(states[t], i, "G")
    assert _first_fault(inter, plan.step_s, states) == (back, {"protected_to_permissive"})


@teeth
@given(inter=intersections(), plan=request_plans())
def test_phase_machine_mutant_showing_protected_as_continuing_green_is_caught(inter, plan):
    """A phase machine that treats ``G`` -> ``g`` as a continuing green (the defect: it forgets which greens are
    protected) trips the monitor by the first step it shows a link go from ``G`` straight to ``g``."""
    machine = _machine(inter, plan)
    machine._protected = [frozenset()] * len(inter.phases)  # the planted mutation
    states = [state for state, *_ in _drive(machine, plan, 400)]
    direct = next((t for t in range(1, len(states)) for i in range(inter.n_links)
                   if states[t - 1][i] == "G" and states[t][i] == "g"), None)
    assume(direct is not None)
    at, kinds = _first_fault(inter, plan.step_s, states)
    assert at is not None and at <= direct and kinds == {"protected_to_permissive"}
