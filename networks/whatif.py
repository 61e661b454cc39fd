"""A SUMO model of one recorded intersection for the what-if: geometry from its detector configuration, and a
NEMA program written into a generic or a given network.

**Phase conventions** (NEMA dual ring, as in the ATSPM logs): ring 1 holds phases 1-4, ring 2 phases 5-8;
barrier 1 holds 1, 2, 5, 6 and barrier 2 holds 3, 4, 7, 8. Phases 2, 4, 6, 8 are throughs (with their right
turns), 1, 3, 5, 7 protected lefts. A left phase turns from the approach of the through phase it may run
with: 1 from 6's approach, 5 from 2's, 3 from 8's, 7 from 4's; 2 faces 6 and 4 faces 8.

**The generic geometry** (:func:`build_generic_network`, when no network is given). A four-leg crossing, every leg
300 m: phase 2 approaches from the west, 6 from the east, 4 from the north, 8 from the south (the orientation is
a convention; only the phase relations matter). Assumptions, none of which a detector configuration states:

* an approach exists where its through phase (or its left phase) has detectors or shows green in the log; every
  leg is an exit, so each approach has a left, a through and a right turn;
* through lanes = the most channels of one function (advance, stop-bar count, presence, yellow-red) on the
  through phase, 1-3; a left phase with detectors gets that many exclusive left lanes (1-2) running the whole
  approach (unlimited storage), otherwise the left turns from the leftmost through lane; the right turns from
  the rightmost lane;
* approach speed from the recorded yellow by the ITE formula solved for speed (``v = 2 a (Y - 1 s)``: 4.0 s
  gives 66 km/h), clamped to 30-80 km/h; 50 km/h without a recorded yellow;
* a left turn with its own phase is protected-only; without one it is permissive (yielding) with its through
  phase, or protected when the opposing through is red. Protected-permissive operation is not modelled: the
  core would show protected -> permissive as one continuing green and start the opposing through at once,
  where the field times the left's yellow and red clearance first (in the sample log, 5.5 s before phase 6
  follows phase 5), so the recorded timing could not be replayed as it ran.

**The program** (:func:`write_nema_program`, for both geometries). One SUMO green phase per concurrent pair the
rings allow within a barrier, over the phases present (e.g. 2+5, 2+6 and 8 for a log with phases 2, 5, 6, 8):
a ring with no phase in a barrier rests in red there. Each movement is green in the phases that contain its
NEMA phase, ``G`` where no opposing stream runs, ``g`` (yielding) where it does. The core derives its
intersection model, conflicts included, from the resulting net as from any other
(:mod:`networks.derive`); a program it refuses is reported with the light and phase.

**A given network** (``--net FILE --mapping FILE``): the mapping names the light and the incoming edge of each
through phase; turns are told by SUMO's connection directions::

    tl: C                   # optional when the net has one traffic light
    approaches: {2: west_in, 6: east_in, 8: south_in}
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from controller.errors import InputError
from controller.timing import DECELERATION_MPS2, PERCEPTION_REACTION_S

#: through phases and the leg their approach comes from in the generic geometry
THROUGH_LEG = {2: "W", 6: "E", 4: "N", 8: "S"}
#: protected left phase -> the through phase of the same approach
LEFT_OF = {1: 6, 5: 2, 3: 8, 7: 4}
#: through phase -> its protected left phase
LEFT_PHASE = {v: k for k, v in LEFT_OF.items()}
#: through phase -> the opposing through phase
OPPOSING = {2: 6, 6: 2, 4: 8, 8: 4}
RING = {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 2}
BARRIER = {1: 1, 2: 1, 5: 1, 6: 1, 3: 2, 4: 2, 7: 2, 8: 2}
#: generic geometry: leg -> (x, y) direction from the centre, and the legs an approach turns into
LEG_XY = {"W": (-1, 0), "E": (1, 0), "N": (0, 1), "S": (0, -1)}
TURNS = {"W": {"through": "E", "right": "S", "left": "N"}, "E": {"through": "W", "right": "N", "left": "S"},
         "N": {"through": "S", "right": "W", "left": "E"}, "S": {"through": "N", "right": "E", "left": "W"}}
#: generic geometry: leg length, metres
LEG_LENGTH_M = 300.0
#: approach speed without a recorded yellow, m/s (50 km/h)
DEFAULT_SPEED_MPS = 50 / 3.6
#: bounds of the speed inferred from a recorded yellow, m/s (30-80 km/h)
SPEED_RANGE_MPS = (30 / 3.6, 80 / 3.6)
#: lanes a phase's detectors may imply in the generic geometry
MAX_THROUGH_LANES = 3
MAX_LEFT_LANES = 2
#: program green of every phase in the written program, s (the what-if never runs the net's program itself)
PROGRAM_GREEN_S = 15.0
PROGRAM_YELLOW_S = 4.0
#: the light's id in the generic geometry
GENERIC_TL = "C"
#: SUMO connection directions by movement
_DIRS = {"s": "through", "r": "right", "R": "right", "l": "left", "L": "left"}


@dataclass(frozen=True)
class Approach:
    """One approach of the generic geometry.

    :param phase: its through phase (2, 4, 6 or 8).
    :param left_phase: its protected left phase, or None.
    :param through_lanes: through lanes (the rightmost also turns right), 1-3.
    :param left_lanes: exclusive left lanes (0: the left turns from the leftmost through lane).
    :param speed_mps: speed limit, metres per second.
    """

    phase: int
    left_phase: int | None
    through_lanes: int
    left_lanes: int
    speed_mps: float

    @property
    def leg(self) -> str:
        """Leg of the generic geometry it comes from (W, E, N, S)."""
        return THROUGH_LEG[self.phase]


@dataclass(frozen=True)
class Movement:
    """One connection of the light: a signal link position and the NEMA phase that serves it.

    :param link_index: position in the light's state string.
    :param from_edge: incoming edge.
    :param to_edge: outgoing edge.
    :param turn: ``through``, ``right`` or ``left``.
    :param phase: the approach's through phase.
    :param left_phase: the approach's protected left phase (for a left turn), or None.
    :param from_lane: incoming lane ('' when not known).
    """

    link_index: int
    from_edge: str
    to_edge: str
    turn: str
    phase: int
    left_phase: int | None = None
    from_lane: str = ""


def phase_combos(phases: Iterable[int]) -> list[tuple[int, ...]]:
    """The concurrent phase sets the rings allow, over the phases present: per barrier, one phase of ring 1
    with one of ring 2 (a ring with no phase in a barrier rests in red there).

    >>> phase_combos([2, 5, 6, 8])
    [(2, 5), (2, 6), (8,)]
    >>> len(phase_combos(range(1, 9)))
    8

    :param phases: NEMA phases 1-8.
    :raises InputError: a phase outside 1-8.
    """
    present = sorted(set(int(p) for p in phases))
    for p in present:
        if p not in RING:
            raise InputError(f"NEMA phase {p}: the what-if knows phases 1-8 (dual ring, two barriers)")
    out: list[tuple[int, ...]] = []
    for barrier in (1, 2):
        r1 = [p for p in present if BARRIER[p] == barrier and RING[p] == 1] or [None]
        r2 = [p for p in present if BARRIER[p] == barrier and RING[p] == 2] or [None]
        for a in r1:
            for b in r2:
                combo = tuple(p for p in (a, b) if p is not None)
                if combo:
                    out.append(combo)
    return out


def speed_from_yellow(yellow_s: float | None) -> float:
    """Approach speed (m/s) whose ITE yellow on level ground is ``yellow_s``: ``v = 2 a (Y - t)``, clamped to
    30-80 km/h; 50 km/h when there is no yellow.

    >>> round(speed_from_yellow(4.0) * 3.6)
    66

    :param yellow_s: the recorded yellow change interval, seconds (or None).
    """
    if yellow_s is None or not math.isfinite(yellow_s):
        return DEFAULT_SPEED_MPS
    v = 2 * DECELERATION_MPS2 * (yellow_s - PERCEPTION_REACTION_S)
    return min(max(v, SPEED_RANGE_MPS[0]), SPEED_RANGE_MPS[1])


def generic_approaches(detector_phases: Mapping[int, Sequence[tuple[int, str]]], green_phases: Iterable[int] = (),
                       yellow_s: Mapping[int, float] | None = None) -> list[Approach]:
    """The approaches of the generic geometry (assumptions in the module docstring).

    :param detector_phases: NEMA phase -> its detectors as ``(channel, function)``.
    :param green_phases: phases the log shows green (a phase on recall may have no detector).
    :param yellow_s: recorded yellow per phase, seconds (sets the approach speed).
    :raises InputError: a phase outside 1-8, or a left phase without its through phase.
    """
    phases = set(detector_phases) | set(green_phases)
    phase_combos(phases)  # checks the numbers
    for left, through in LEFT_OF.items():
        if left in phases and through not in phases:
            raise InputError(f"phase {left} (a protected left) has no through phase {through}: the generic "
                             "geometry cannot place it; give the network with --net and a mapping")
    yellow_s = yellow_s or {}

    def lanes(phase: int | None, cap: int) -> int:
        dets = detector_phases.get(phase, ()) if phase is not None else ()
        per_function: dict[str, int] = {}
        for _, function in dets:
            per_function[function] = per_function.get(function, 0) + 1
        return min(max(per_function.values(), default=1), cap)

    out = []
    for through in sorted(THROUGH_LEG):
        if through not in phases:
            continue
        left = LEFT_PHASE[through] if LEFT_PHASE[through] in phases else None
        speed = speed_from_yellow(yellow_s.get(through))
        out.append(Approach(through, left, lanes(through, MAX_THROUGH_LANES),
                            lanes(left, MAX_LEFT_LANES) if left is not None else 0, speed))
    if not out:
        raise InputError("no through phase (2, 4, 6 or 8) in the detector configuration or the log")
    return out


def _run_netconvert(args: list[str], cwd: Path, source: str) -> None:
    from networks.osm_import import _run
    from networks.sumo_home import sumo_binary

    _run([sumo_binary("netconvert"), *args], cwd, "netconvert", Path(source))


def build_generic_network(approaches: Sequence[Approach], out_dir: Path) -> tuple[Path, dict[int, str]]:
    """Write and build the generic crossing (plain XML -> netconvert) into ``out_dir``.

    :param approaches: from :func:`generic_approaches`.
    :param out_dir: folder for ``whatif.nod.xml``, ``.edg.xml``, ``.con.xml`` and ``whatif.base.net.xml``.
    :returns: the built net (its program still netconvert's) and the mapping through phase -> incoming edge.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_leg = {a.leg: a for a in approaches}
    out_lanes = max(a.through_lanes for a in approaches)
    nodes = ['<nodes>', f'    <node id="{GENERIC_TL}" x="0" y="0" type="traffic_light" tl="{GENERIC_TL}"/>']
    edges = ["<edges>"]
    cons = ["<connections>"]
    for leg, (dx, dy) in LEG_XY.items():
        nodes.append(f'    <node id="{leg}" x="{dx * LEG_LENGTH_M:g}" y="{dy * LEG_LENGTH_M:g}" type="priority"/>')
        main = leg in ("W", "E")
        a = by_leg.get(leg)
        speed = a.speed_mps if a else max(x.speed_mps for x in approaches)
        edges.append(f'    <edge id="{leg}_out" from="{GENERIC_TL}" to="{leg}" numLanes="{out_lanes}" '
                     f'speed="{speed:.2f}" priority="{2 if main else 1}"/>')
        if a is None:
            continue
        n = a.through_lanes + a.left_lanes
        edges.append(f'    <edge id="{leg}_in" from="{leg}" to="{GENERIC_TL}" numLanes="{n}" speed="{a.speed_mps:.2f}" '
                     f'priority="{2 if main else 1}"/>')
        turns = TURNS[leg]
        cons.append(f'    <connection from="{leg}_in" to="{turns["right"]}_out" fromLane="0" toLane="0"/>')
        for i in range(a.through_lanes):
            cons.append(f'    <connection from="{leg}_in" to="{turns["through"]}_out" fromLane="{i}" '
                        f'toLane="{min(i, out_lanes - 1)}"/>')
        left_lanes = range(a.through_lanes, n) if a.left_lanes else [a.through_lanes - 1]
        for k, i in enumerate(left_lanes):
            cons.append(f'    <connection from="{leg}_in" to="{turns["left"]}_out" fromLane="{i}" '
                        f'toLane="{out_lanes - 1 - min(k, out_lanes - 1)}"/>')
    files = {"whatif.nod.xml": nodes + ["</nodes>"], "whatif.edg.xml": edges + ["</edges>"],
             "whatif.con.xml": cons + ["</connections>"]}
    for name, lines in files.items():
        (out_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    base = out_dir / "whatif.base.net.xml"
    _run_netconvert(["--node-files", "whatif.nod.xml", "--edge-files", "whatif.edg.xml",
                     "--connection-files", "whatif.con.xml", "--no-turnarounds", "true",
                     "--tls.default-type", "static", "--output-file", base.name], out_dir, str(out_dir))
    return base, {a.phase: f"{a.leg}_in" for a in approaches}


def load_mapping(path: Path) -> tuple[str | None, dict[int, str]]:
    """Read a detector mapping for a given network (layout in the module docstring).

    :param path: YAML or JSON file.
    :returns: the light's id (or None) and through phase -> incoming edge.
    :raises InputError: missing file, bad YAML, no approaches, a phase that is not 2, 4, 6 or 8.
    """
    from networks.derive import _read_mapping

    path = Path(path)
    data = _read_mapping(path)
    if not isinstance(data, dict) or not isinstance(data.get("approaches"), dict) or not data["approaches"]:
        raise InputError(f"{path}: expected 'approaches:' mapping through phases (2, 4, 6, 8) to incoming edges")
    unknown = set(map(str, data)) - {"tl", "approaches"}
    if unknown:
        raise InputError(f"{path}: unknown key {sorted(unknown)[0]!r} (allowed: approaches, tl)")
    approaches: dict[int, str] = {}
    for key, edge in data["approaches"].items():
        try:
            phase = int(key)
        except (TypeError, ValueError):
            raise InputError(f"{path}: approaches: key {key!r} is not a phase number") from None
        if phase not in THROUGH_LEG:
            raise InputError(f"{path}: approaches: phase {phase} is not a through phase (2, 4, 6 or 8)")
        approaches[phase] = str(edge)
    tl = data.get("tl")
    return (None if tl is None else str(tl)), approaches


def light_movements(net_file: Path, approaches: Mapping[int, str], phases: Iterable[int],
                    tl: str | None = None) -> tuple[str, int, list[Movement]]:
    """The movements of a light whose approaches are the given edges.

    :param net_file: SUMO net.
    :param approaches: through phase -> incoming edge.
    :param phases: NEMA phases present (a left turn is protected by the approach's left phase if present).
    :param tl: the light's id (None: the net's only light).
    :returns: light id, number of signal links, movements (turnarounds and unmapped approaches left out).
    :raises InputError: no such light or edge, or an approach edge not controlled by the light.
    """
    from networks.derive import _open

    present = set(phases)
    lights: dict[str, int] = {}
    conns: list[dict[str, str]] = []
    try:
        with _open(Path(net_file)) as fh:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "connection" and elem.get("tl"):
                    conns.append(dict(elem.attrib))
                elif elem.tag == "tlLogic" and elem.get("id") not in lights:
                    phase = elem.find("phase")
                    lights[elem.get("id")] = len(phase.get("state", "")) if phase is not None else 0
                if elem.tag in ("edge", "junction", "connection", "tlLogic"):
                    elem.clear()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{net_file}: not a readable SUMO network ({exc})") from None
    if tl is None:
        if len(lights) != 1:
            raise InputError(f"{net_file}: {len(lights)} traffic lights ({', '.join(sorted(lights)) or 'none'}); "
                             "name the log's light with 'tl:' in the mapping")
        tl = next(iter(lights))
    if tl not in lights:
        raise InputError(f"{net_file}: no traffic light {tl!r} (it has {', '.join(sorted(lights)) or 'none'})")
    by_edge = {edge: phase for phase, edge in approaches.items()}
    movements: list[Movement] = []
    seen_edges = set()
    for c in conns:
        if c.get("tl") != tl or c["from"].startswith(":") or c["from"] not in by_edge:
            continue
        turn = _DIRS.get(c.get("dir", ""))
        if turn is None:
            continue
        phase = by_edge[c["from"]]
        seen_edges.add(c["from"])
        left = LEFT_PHASE[phase] if turn == "left" and LEFT_PHASE[phase] in present else None
        movements.append(Movement(int(c["linkIndex"]), c["from"], c["to"], turn, phase, left,
                                  f"{c['from']}_{c['fromLane']}"))
    missing = sorted(set(by_edge) - seen_edges)
    if missing:
        raise InputError(f"{net_file}: edge {missing[0]!r} has no connection controlled by light {tl!r}")
    return tl, lights[tl], movements


def movement_char(move: Movement, combo: Sequence[int]) -> str:
    """The movement's colour while ``combo`` is green: ``G``, ``g`` (yielding to an opposing stream) or ``r``
    (rules in the module docstring).

    >>> left = Movement(0, "W_in", "N_out", "left", 2, 5)      # with its own phase 5: protected-only
    >>> movement_char(left, (2, 5)), movement_char(left, (2, 6)), movement_char(left, (1, 6))
    ('G', 'r', 'r')
    >>> left = Movement(0, "W_in", "N_out", "left", 2)         # no left phase: permissive against 6
    >>> movement_char(left, (2, 6)), movement_char(left, (2,))
    ('g', 'G')
    """
    on = set(combo)
    if move.turn == "left" and move.left_phase is not None:  # protected-only
        return "G" if move.left_phase in on else "r"
    if move.phase not in on:
        return "r"
    if move.turn == "left" and OPPOSING[move.phase] in on:
        return "g"
    return "G"


def program_states(movements: Sequence[Movement], n_links: int, combos: Sequence[tuple[int, ...]]) -> list[str]:
    """One signal state per combo; a position shared by several movements shows the most restrictive colour;
    positions no mapped movement uses stay red.

    :param movements: the light's movements.
    :param n_links: length of the state.
    :param combos: from :func:`phase_combos`.
    """
    rank = {"r": 0, "g": 1, "G": 2}
    states = []
    for combo in combos:
        chars: list[str | None] = [None] * n_links
        for m in movements:
            ch = movement_char(m, combo)
            old = chars[m.link_index]
            chars[m.link_index] = ch if old is None or rank[ch] < rank[old] else old
        states.append("".join(c or "r" for c in chars))
    return states


def _program_id(net_file: Path, tl: str) -> str:
    """The programID of light ``tl``'s first program in ``net_file`` ("0" when it has none)."""
    from networks.derive import _open

    try:
        with _open(net_file) as fh:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "tlLogic" and elem.get("id") == tl:
                    return elem.get("programID", "0")
                if elem.tag in ("edge", "junction", "connection", "tlLogic"):
                    elem.clear()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{net_file}: not a readable SUMO network ({exc})") from None
    return "0"


def write_nema_program(net_in: Path, net_out: Path, tl: str, states: Sequence[str],
                       combos: Sequence[tuple[int, ...]]) -> Path:
    """Replace light ``tl``'s program in ``net_in`` with the NEMA phases (green, then yellow of the ending
    links; the core times its own clearances) and write ``net_out`` with netconvert.

    :param net_in: the net.
    :param net_out: the net to write (may not be ``net_in``).
    :param tl: light id.
    :param states: green state per combo, from :func:`program_states`.
    :param combos: the combos (names the phases ``2+5`` ...).
    """
    if not any(set(s) & set("Gg") for s in states):
        raise InputError(f"light {tl!r}: no movement of the mapped approaches is served by the phases")
    program = _program_id(Path(net_in), tl)  # replace the light's first program, the one the core derives from
    lines = ["<tlLogics>", f"    <tlLogic id={quoteattr(tl)} type=\"static\" programID={quoteattr(program)} "
             "offset=\"0\">"]
    for k, (state, combo) in enumerate(zip(states, combos)):
        nxt = states[(k + 1) % len(states)]
        yellow = "".join("y" if c in "Gg" and n == "r" else (c if n != "r" else "r") for c, n in zip(state, nxt))
        name = "+".join(map(str, combo))
        lines.append(f'        <phase duration="{PROGRAM_GREEN_S:g}" state="{state}" name="{name}"/>')
        if "y" in yellow:
            lines.append(f'        <phase duration="{PROGRAM_YELLOW_S:g}" state="{yellow}"/>')
    lines += ["    </tlLogic>", "</tlLogics>"]
    net_out = Path(net_out)
    tll = net_out.with_name(net_out.name.replace(".net.xml", "") + ".tll.xml")
    tll.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _run_netconvert(["--sumo-net-file", str(Path(net_in).resolve()), "--tllogic-files", str(tll.resolve()),
                     "--output-file", str(net_out.resolve())], net_out.parent, str(net_in))
    return net_out
