"""Small hand-made intersections for tests, doctests and examples (no simulator needed)."""

from __future__ import annotations

from controller.intersection import Detector, Intersection, Phase, SignalLink


def _link(i: int, kind: str = "vehicle", yellow: float = 3.0, red: float = 2.0, walk: float = 0.0) -> SignalLink:
    return SignalLink(i, kind, f"in{i}", "" if kind == "pedestrian" else f"out{i}", 13.9, yellow, red, walk)


def two_phase_intersection(min_green_s: float = 5.0, max_green_s: float = 40.0) -> Intersection:
    """A 4-link crossroads: links 0-1 (north-south) against links 2-3 (east-west); 3 s yellow, 2 s all-red.

    Each link has a stop-bar loop, an advance loop, an approach radar zone and an exit zone.
    """
    ns = {0, 1}
    compatible = tuple(tuple((i in ns) == (j in ns) for j in range(4)) for i in range(4))
    detectors = []
    for i in range(4):
        detectors += [Detector(f"sb{i}", "stopbar", f"in{i}", (i,), 1.0),
                      Detector(f"adv{i}", "advance", f"in{i}", (i,), 40.0),
                      Detector(f"rad{i}", "radar", f"in{i}", (i,), 0.0, 100.0),
                      Detector(f"exit{i}", "exit", f"out{i}", (i,), 0.0, 100.0)]
    phases = (Phase(2, "GGrr", "north-south", min_green_s, max_green_s, 30.0),
              Phase(4, "rrGG", "east-west", min_green_s, max_green_s, 20.0))
    return Intersection("two-phase", tuple(_link(i) for i in range(4)), phases, compatible, tuple(detectors))


def crossroads_with_crosswalks() -> Intersection:
    """Two vehicle phases, each with a parallel crosswalk (links 2 and 5) that right turns yield to.

    Links: 0 NS through, 1 NS right (permissive over crosswalk 5), 2 crosswalk parallel to NS,
    3 EW through, 4 EW right (permissive over crosswalk 2), 5 crosswalk parallel to EW.
    """
    n = 6
    ns = {0, 1, 2}
    compat = [[(i in ns) == (j in ns) for j in range(n)] for i in range(n)]
    for a, b in ((1, 5), (4, 2)):  # a turning vehicle yields to the crosswalk it crosses: permissive pair
        compat[a][b] = compat[b][a] = True
    links = (_link(0), _link(1), _link(2, "pedestrian", yellow=12.0, red=1.0, walk=7.0),
             _link(3), _link(4), _link(5, "pedestrian", yellow=10.0, red=1.0, walk=7.0))
    phases = (Phase(2, "GgGrrr", "north-south", 5.0, 45.0, 30.0), Phase(4, "rrrGgG", "east-west", 5.0, 45.0, 25.0))
    return Intersection("crosswalks", links, phases, tuple(map(tuple, compat)))


def looped_intersection(name: str, states: tuple[str, ...], compatible, min_green_s: float = 5.0,
                        max_green_s: float = 40.0) -> Intersection:
    """Vehicle links (one per state character, lane ``in{i}``), a phase per state, and on each link a stop-bar
    and an advance loop (detectors 2i and 2i + 1).

    :param name: the intersection's id.
    :param states: one SUMO state string per phase (``G``, ``g``, ``r``; one character per link).
    :param compatible: ``[i][j]``: links i and j may be green together.
    :param min_green_s: every phase's min green, seconds.
    :param max_green_s: every phase's max green, seconds.
    """
    n = len(states[0])
    links = tuple(SignalLink(i, "vehicle", f"in{i}", f"out{i}", 13.9, 3.0, 2.0) for i in range(n))
    phases = tuple(Phase(i + 1, state, f"p{i}", min_green_s, max_green_s, 20.0) for i, state in enumerate(states))
    detectors = tuple(d for i in range(n) for d in (Detector(f"sb{i}", "stopbar", f"in{i}", (i,), 1.0),
                                                    Detector(f"adv{i}", "advance", f"in{i}", (i,), 40.0)))
    return Intersection(name, links, phases, tuple(tuple(row) for row in compatible), detectors)
