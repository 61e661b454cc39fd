"""Hypothesis strategies: random intersection layouts and random request plans for the phase machine.

Layouts are built through the dataclasses, so :func:`controller.intersection.validate` vouches for them:
a random symmetric compatibility matrix, then phases drawn as random cliques of mutually compatible links
(a link may sit in several phases, some greens permissive ``g``, some links never green), pedestrian
links with their own walk and clearance, and timings that are often not multiples of the step.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from controller.intersection import Intersection, Phase, SignalLink

#: Step lengths the core must run at (SUMO's step in training is 1 s; 0.5 and 2 s test the rounding).
STEPS_S = (0.5, 1.0, 2.0)


def _tenths(low: float, high: float) -> st.SearchStrategy[float]:
    """Decimal seconds in [low, high] to one decimal place (e.g. 3.7 s: not a multiple of 0.5 or 2 s)."""
    return st.integers(round(low * 10), round(high * 10)).map(lambda k: k / 10)


@st.composite
def signal_links(draw: st.DrawFn, index: int, pedestrian: bool) -> SignalLink:
    """One link: vehicles get yellow 3–6 s (MUTCD range), peds a walk of 4–10 s and a 3–15 s clearance."""
    if pedestrian:
        return SignalLink(index, "pedestrian", f"walk{index}", "", 1.2, draw(_tenths(3, 15)),
                          draw(_tenths(0, 4)), draw(_tenths(4, 10)))
    return SignalLink(index, "vehicle", f"in{index}", f"out{index}", draw(_tenths(8, 20)),
                      draw(_tenths(3, 6)), draw(_tenths(0, 4)))


@st.composite
def compatibility_matrices(draw: st.DrawFn, n: int) -> tuple[tuple[bool, ...], ...]:
    """A random symmetric n×n matrix (diagonal True) with a randomly chosen density of compatible pairs."""
    density = draw(st.sampled_from((2, 5, 8)))  # out of 10
    pairs = draw(st.lists(st.integers(0, 9), min_size=n * (n - 1) // 2, max_size=n * (n - 1) // 2))
    m = [[i == j for j in range(n)] for i in range(n)]
    it = iter(pairs)
    for i in range(n):
        for j in range(i + 1, n):
            m[i][j] = m[j][i] = next(it) < density
    return tuple(map(tuple, m))


@st.composite
def phases_for(draw: st.DrawFn, compatible: tuple[tuple[bool, ...], ...]) -> tuple[Phase, ...]:
    """1–6 phases, each a random clique of the matrix, with random min/max greens."""
    n = len(compatible)
    phases = []
    for k in range(draw(st.integers(1, 6))):
        order = draw(st.permutations(range(n)))
        wanted = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        chosen: list[int] = [order[0]]
        for i in order[1:]:
            if wanted[i] and all(compatible[i][j] for j in chosen):
                chosen.append(i)
        kinds = draw(st.lists(st.sampled_from("GGGg"), min_size=n, max_size=n))
        state = "".join(kinds[i] if i in chosen else "r" for i in range(n))
        min_green = draw(_tenths(1, 15))
        max_green = min_green + draw(_tenths(0, 60))
        phases.append(Phase(k + 1, state, f"random {k + 1}", min_green, max_green, min_green))
    return tuple(phases)


@st.composite
def intersections(draw: st.DrawFn, min_links: int = 2, max_links: int = 20) -> Intersection:
    """A random, self-consistent intersection with ``min_links``..``max_links`` links."""
    n = draw(st.integers(min_links, max_links))
    peds = draw(st.lists(st.sampled_from((False, False, False, True)), min_size=n, max_size=n))
    links = tuple(draw(signal_links(i, peds[i])) for i in range(n))
    compatible = draw(compatibility_matrices(n))
    phases = draw(phases_for(compatible))
    major = draw(st.integers(0, len(phases) - 1))
    return Intersection("random", links, phases, compatible, major_phase=major)


@dataclass(frozen=True)
class RequestPlan:
    """How a random policy drives the phase machine; the per-step choices come from ``random.Random(seed)``.

    :param seed: seed of the per-step random choices.
    :param step_s: step length, seconds.
    :param request_p: probability of a request (for a random phase) in each step; 1.0 = every step.
    :param vehicle_call_p: probability of a vehicle (detector) call for a random phase in each step.
    :param ped_call_p: probability of a pedestrian call (for a random phase) in each step.
    :param ped_recall: the phase machine's pedestrian recall setting.
    :param initial_phase: first phase after start-up, as a fraction of the phase count (0 ≤ x < 1).
    """

    seed: int
    step_s: float
    request_p: float
    vehicle_call_p: float
    ped_call_p: float
    ped_recall: bool
    initial_phase: float


def request_plans() -> st.SearchStrategy[RequestPlan]:
    """Random policies: none to every-step requests, detector calls, pedestrian calls with or without recall."""
    return st.builds(RequestPlan,
                     seed=st.integers(0, 2**32 - 1),
                     step_s=st.sampled_from(STEPS_S),
                     request_p=st.sampled_from((0.0, 0.01, 0.05, 0.2, 0.5, 1.0)),
                     vehicle_call_p=st.sampled_from((0.0, 0.05, 0.3)),
                     ped_call_p=st.sampled_from((0.0, 0.02, 0.2)),
                     ped_recall=st.booleans(),
                     initial_phase=st.floats(0, 1, exclude_max=True))
