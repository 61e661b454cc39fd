"""The intersection model: signal links, phases, detectors, timing and the compatibility matrix.

A *link* is one controlled movement: one position in a SUMO traffic-light state string, or one
field signal channel. A *phase* is a set of links that are green together (a SUMO green phase,
a NEMA phase pair). *Signal groups* are links that always show the same colour in every phase.
The compatibility matrix says which links may show green at the same time; it comes from the
movements themselves (SUMO's foes/response, or NEMA rings and permissive movements), never from
the phase list, so the safety monitor can judge the phase machine independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from controller.errors import InputError

GREEN_CHARS = frozenset("Gg")
LinkKind = Literal["vehicle", "pedestrian"]
DetectorKind = Literal["stopbar", "advance", "radar", "exit"]


@dataclass(frozen=True)
class SignalLink:
    """One controlled movement and the clearance it needs.

    :param index: position in the signal state (SUMO tl link index), 0-based.
    :param kind: ``vehicle`` or ``pedestrian`` (a crosswalk).
    :param from_lane: incoming lane id (or field approach name).
    :param to_lane: outgoing lane id ('' for pedestrians).
    :param speed_mps: approach speed, metres per second.
    :param yellow_s: yellow change (vehicles) or flashing-don't-walk clearance (pedestrians), seconds.
    :param red_clearance_s: all-red after this link's yellow before any conflicting green, seconds.
    :param walk_s: walk interval for pedestrian links, seconds (0 for vehicles).
    :param turn_on_red: a vehicle link that may turn on red after a full stop when no foe comes (right turn on
        red): shown SUMO's ``s`` (stop, then go) instead of ``r`` whenever it is red. A red for the conflict
        monitor (its lamp is the red one); the program of a SUMO ``traffic_light_right_on_red`` junction shows it.
    """

    index: int
    kind: LinkKind
    from_lane: str
    to_lane: str
    speed_mps: float
    yellow_s: float
    red_clearance_s: float
    walk_s: float = 0.0
    turn_on_red: bool = False


@dataclass(frozen=True)
class Phase:
    """A green phase: which links are green (``G`` protected, ``g`` permissive/yielding).

    :param number: display number (NEMA phase number where known, else 1-based order).
    :param state: green state over all links, e.g. ``"GGgrrrGGgrrr"``; only ``G``, ``g`` and ``r``.
    :param name: free text (e.g. "Arequipa through").
    :param min_green_s: minimum green, seconds.
    :param max_green_s: maximum green, seconds; the change is forced here.
    :param program_green_s: green duration in the network's own fixed program, seconds.
    :param program_change_s: seconds of change interval (yellow, all-red) the network's own program runs after this
        green before the next phase of the list starts; None when the program is not one plain cycle through the
        phases in list order (a green shown twice in a cycle, or a program without change intervals). With it for
        every phase, the program's cycle is known and the fixed-time policy keeps it (see
        :class:`controller.policies.fixed_time.FixedTimePolicy`).
    """

    number: int
    state: str
    name: str = ""
    min_green_s: float = 5.0
    max_green_s: float = 60.0
    program_green_s: float = 30.0
    program_change_s: float | None = None

    @property
    def greens(self) -> frozenset[int]:
        """Indices of the links this phase shows green."""
        return frozenset(i for i, c in enumerate(self.state) if c in GREEN_CHARS)


@dataclass(frozen=True)
class Detector:
    """A field detector as deployed: stop-bar loop, advance loop, approach radar zone or exit radar zone.

    :param id: detector id (SUMO E1/E2 id or field channel name).
    :param kind: ``stopbar`` (presence at the stop line), ``advance`` (count/presence upstream),
        ``radar`` (approach zone: vehicles, queue and speed), ``exit`` (zone on an outgoing lane).
    :param lane: lane the detector sits on.
    :param links: the signal links it feeds (movements leaving ``lane``; for ``exit``, those entering it).
    :param distance_m: distance from the stop line (or from the lane start for ``exit``) to the detector, metres,
        measured along the road (across ``placement``'s lanes when it has them).
    :param length_m: detection zone length, metres (0 for point loops).
    :param placement: where the detector physically sits when that is not on ``lane`` alone (an approach lane too
        short to hold it: the detector extends onto the lanes upstream of it): ``(lane, from_m, to_m)`` segments,
        upstream first, positions from each lane's start; a loop has one segment with ``from_m == to_m``. Empty:
        on ``lane``, at ``distance_m`` and ``length_m``.
    """

    id: str
    kind: DetectorKind
    lane: str
    links: tuple[int, ...]
    distance_m: float = 0.0
    length_m: float = 0.0
    placement: tuple[tuple[str, float, float], ...] = ()


@dataclass(frozen=True)
class Intersection:
    """Everything the core knows about one signalised intersection.

    :param id: intersection id (SUMO traffic-light id).
    :param links: the controlled links, ``links[i].index == i``.
    :param phases: the green phases, in the default service sequence.
    :param compatible: ``compatible[i][j]`` is True when links *i* and *j* may be green together.
    :param detectors: the detectors feeding this intersection, in reading order.
    :param major_phase: index of the major-street phase (flash exit and default rest), 0-based.
    :param program_offset_s: when the network's own program starts a cycle with the first phase's green, seconds of
        the controller clock (modulo the cycle): SUMO's ``offset`` plus any change intervals the program lists before
        its first green. Used with the phases' ``program_change_s``.
    """

    id: str
    links: tuple[SignalLink, ...]
    phases: tuple[Phase, ...]
    compatible: tuple[tuple[bool, ...], ...]
    detectors: tuple[Detector, ...] = ()
    major_phase: int = 0
    program_offset_s: float = 0.0
    _signal_groups: tuple[tuple[int, ...], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        validate(self)
        groups: dict[tuple[str, ...], list[int]] = {}
        for i in range(self.n_links):
            groups.setdefault(tuple(p.state[i] for p in self.phases), []).append(i)
        object.__setattr__(self, "_signal_groups", tuple(tuple(g) for g in groups.values()))

    @property
    def n_links(self) -> int:
        """Number of controlled links (length of a signal state)."""
        return len(self.links)

    @property
    def signal_groups(self) -> tuple[tuple[int, ...], ...]:
        """Links grouped by identical colour in every phase (what one signal head / load switch shows)."""
        return self._signal_groups

    def all_red_state(self) -> str:
        """The state with every link red."""
        return "r" * self.n_links


def validate(intersection: Intersection) -> None:
    """Refuse an intersection whose data contradict themselves, naming the first problem.

    :param intersection: the intersection to check.
    :raises InputError: on an inconsistent description.
    """
    where = f"intersection {intersection.id!r}"
    n = len(intersection.links)
    if n == 0:
        raise InputError(f"{where}: no signal links")
    if not intersection.phases:
        raise InputError(f"{where}: no green phases")
    for i, link in enumerate(intersection.links):
        if link.index != i:
            raise InputError(f"{where}: link {i} has index {link.index}")
        if link.yellow_s <= 0 or link.red_clearance_s < 0:
            raise InputError(f"{where}: link {i} has yellow {link.yellow_s} s / red clearance {link.red_clearance_s} s")
    matrix = intersection.compatible
    if len(matrix) != n or any(len(row) != n for row in matrix):
        raise InputError(f"{where}: compatibility matrix is not {n}x{n}")
    for i in range(n):
        for j in range(i + 1, n):
            if matrix[i][j] != matrix[j][i]:
                raise InputError(f"{where}: compatibility of links {i} and {j} is not symmetric")
    for k, phase in enumerate(intersection.phases):
        if len(phase.state) != n or set(phase.state) - set("Ggr"):
            raise InputError(f"{where}: phase {phase.number} state {phase.state!r} is not {n} chars of G/g/r")
        if not phase.greens:
            raise InputError(f"{where}: phase {phase.number} shows no green")
        if not 0 < phase.min_green_s <= phase.max_green_s:
            raise InputError(f"{where}: phase {phase.number} min green {phase.min_green_s} s / max {phase.max_green_s} s")
        if not (math.isfinite(phase.program_green_s) and phase.program_green_s >= 0):
            raise InputError(f"{where}: phase {phase.number} program green {phase.program_green_s} s")
        if phase.program_change_s is not None and not (math.isfinite(phase.program_change_s)
                                                        and phase.program_change_s >= 0):
            raise InputError(f"{where}: phase {phase.number} program change interval {phase.program_change_s} s")
        greens = sorted(phase.greens)
        for a in greens:
            for b in greens:
                if a < b and not matrix[a][b]:
                    raise InputError(f"{where}: phase {phase.number} shows conflicting links {a} and {b} green together")
    if not math.isfinite(intersection.program_offset_s):
        raise InputError(f"{where}: program offset {intersection.program_offset_s} s")
    if not 0 <= intersection.major_phase < len(intersection.phases):
        raise InputError(f"{where}: major phase index {intersection.major_phase} out of range")
    for det in intersection.detectors:
        if any(not 0 <= i < n for i in det.links):
            raise InputError(f"{where}: detector {det.id!r} refers to a link outside 0..{n - 1}")
