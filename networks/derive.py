"""Derive the intersection model (links, timing, compatibility matrix, phases, detectors) from any SUMO net.

Every ``tlLogic`` of a ``.net.xml`` becomes one :class:`~controller.intersection.Intersection`:

* **links** - one per position of the signal state (the connections' ``tl``/``linkIndex``). A crossing
  (walking area -> crossing edge, or a lane that only allows pedestrians) is a ``pedestrian`` link;
  everything else is a ``vehicle`` link. Clearances follow ``controller.timing``: vehicle yellow from the
  approach speed and grade, red clearance from the distance across the junction (the connection's
  internal lanes), pedestrian clearance from the crossing length.
* **compatibility** - from each junction's ``<request response foes>`` rows (architecture.md, "Conflicts,
  from the network itself"). Links that are not foes are compatible. Foes where neither yields to the other
  (``response``) are never compatible. Foes where one yields are compatible only when the net's own program
  shows them green together with the yielding link as ``g`` (a permissive left against the opposing through,
  a turn across a crosswalk), or as ``G`` + ``G`` for streams merging into or leaving from one edge. The
  program condition is needed because at a signal netconvert also writes *priority-road* yields between
  crossing streams that never run together (the side-street through "yields" to the main-street through),
  so "one yields" alone would let crossing throughs be green together. This mirrors a conflict monitor's
  program card: conflicts come from the movements, the permissive jumpers from the timing plan. Links at
  different junctions are compatible; links sharing one state position combine conservatively; a link is
  compatible with itself.
* **phases** - the program's green phases (at least one ``G``/``g``, no ``y``/``u``), identical states
  merged, states reduced to ``G``/``g``/``r``. A phase that only ends the crosswalks of the green phase
  just before it (SUMO's pedestrian clearance) is merged into that phase: the phase machine times
  pedestrian clearance itself from the links' ``yellow_s``. Each phase keeps its program green and the
  program's change interval after it (``program_change_s``: the yellow and all-red phases before the next green),
  and the light the program's ``offset`` (plus any change listed before the first green): together the program's
  cycle and offset, which ``fixed`` keeps.
* **detectors** - the network's own, where its additional files declare loops or zones on a light's approaches
  (:mod:`networks.declared_detectors`), else placed by :mod:`networks.detectors`.

The result can be adjusted by an override file (JSON or YAML), and written/read as an intersection file
(:func:`write_intersection_file` / :func:`load_intersection_file`) so field intersections without a
SUMO net use the same description.

Override file format (keys are tl ids; phases are keyed by their derived 1-based number, links by index)::

    C:
      major_phase: 0
      program_offset_s: 12        # when the program's cycle starts with phase 1's green (coordination)
      phases:
        1: {name: "Arequipa through", min_green_s: 8, max_green_s: 60}
      links:
        4: {yellow_s: 4.0, red_clearance_s: 2.0}
"""

from __future__ import annotations

import gzip
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from controller.errors import InputError
from controller.intersection import GREEN_CHARS, Detector, Intersection, Phase, SignalLink
from controller.timing import WALK_S, pedestrian_clearance_s, red_clearance_s, yellow_change_s
from networks.declared_detectors import DeclaredDetector, declared_for_light, read_declared
from networks.detectors import MIN_APPROACH_M, RADAR_ZONE_M, LaneGeometry, place_detectors

#: Minimum green (s) when the program gives none (or one below the hard floor of 4 s).
DEFAULT_MIN_GREEN_S = 5.0
#: Maximum green floor (s); the derived maximum is max(this, 1.5 x program green, maxDur).
DEFAULT_MAX_GREEN_S = 45.0
#: All-red buffer (s) after a pedestrian clearance before a conflicting green.
PEDESTRIAN_BUFFER_S = 2.0
#: Distance across a junction (m) when neither internal lanes nor a junction shape tell it.
DEFAULT_JUNCTION_WIDTH_M = 10.0
#: Grades beyond this magnitude (decimal) are clipped before the yellow formula.
MAX_GRADE = 0.15

INTERSECTION_FILE_FORMAT = "ondaverde-intersections"
INTERSECTION_FILE_VERSION = 1

_PHASE_OVERRIDES = frozenset({"min_green_s", "max_green_s", "program_green_s", "program_change_s", "name", "number"})
_LINK_OVERRIDES = frozenset({"yellow_s", "red_clearance_s", "walk_s", "speed_mps"})
_TL_OVERRIDES = frozenset({"phases", "links", "major_phase", "program_offset_s"})


# ----------------------------------------------------------------------------------------------- parsing


@dataclass
class _Lane:
    id: str
    edge: str
    speed: float
    length: float
    allow: str
    shape: str


@dataclass
class _Edge:
    id: str
    function: str
    to_node: str
    priority: int
    lanes: list[str] = field(default_factory=list)


@dataclass
class _Conn:
    from_edge: str
    to_edge: str
    from_lane: str
    to_lane: str
    via: str
    tl: str
    link_index: int
    dir: str = ""


@dataclass
class _Junction:
    id: str
    type: str
    inc_lanes: list[str]
    shape: str
    response: dict[int, int]
    foes: dict[int, int]


@dataclass
class _PhaseDef:
    duration: float
    state: str
    min_dur: float | None
    max_dur: float | None
    name: str


@dataclass
class _Net:
    edges: dict[str, _Edge] = field(default_factory=dict)
    lanes: dict[str, _Lane] = field(default_factory=dict)
    junctions: dict[str, _Junction] = field(default_factory=dict)
    conns: list[_Conn] = field(default_factory=list)
    programs: dict[str, list[_PhaseDef]] = field(default_factory=dict)
    offsets: dict[str, float] = field(default_factory=dict)  # light -> its program's SUMO offset, seconds
    by_from_lane: dict[str, list[_Conn]] = field(default_factory=dict)
    junction_of: dict[str, str] = field(default_factory=dict)
    next_via: dict[str, str] = field(default_factory=dict)
    by_to_lane: dict[str, list[_Conn]] = field(default_factory=dict)  # connections from normal (not internal) lanes
    declared: list[DeclaredDetector] = field(default_factory=list)  # detectors the additional files declare
    declared_lengths: dict[str, float] = field(default_factory=dict)  # length of each lane they name, metres

    def index(self) -> None:
        """Build the lookups derivation needs (once per net)."""
        for conn in self.conns:
            self.by_from_lane.setdefault(conn.from_lane, []).append(conn)
            if not conn.from_edge.startswith(":"):
                self.by_to_lane.setdefault(conn.to_lane, []).append(conn)
            if conn.via and conn.from_edge.startswith(":"):
                self.next_via[conn.from_lane] = conn.via
        for junction in self.junctions.values():
            if junction.type == "internal":
                continue
            for lane in junction.inc_lanes:
                self.junction_of[lane] = junction.id

    def function(self, edge: str) -> str:
        e = self.edges.get(edge)
        return e.function if e else "normal"


def _open(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _float(value: str | None, default: float | None = None) -> float | None:
    if value is None or value == "":
        return default
    return float(value)


def _parse_net(net_file: Path) -> _Net:
    """Read what derivation needs from a (possibly gzipped) ``.net.xml``, streaming."""
    net = _Net()
    try:
        with _open(net_file) as fh:
            context = ET.iterparse(fh, events=("start", "end"))
            _, root = next(context)
            if root.tag != "net":
                raise InputError(f"{net_file}: not a SUMO network (root element <{root.tag}>, expected <net>)")
            depth = 0
            for event, elem in context:
                if event == "start":
                    depth += 1
                    continue
                depth -= 1
                if depth != 0:
                    continue
                tag, a = elem.tag, elem.attrib
                if tag == "edge":
                    edge = _Edge(a["id"], a.get("function", "normal"), a.get("to", ""), int(float(a.get("priority", 0))))
                    for lane in elem.iter("lane"):
                        la = lane.attrib
                        net.lanes[la["id"]] = _Lane(la["id"], edge.id, float(la.get("speed", 13.89)),
                                                    float(la.get("length", 0.0)), la.get("allow", ""),
                                                    la.get("shape", ""))
                        edge.lanes.append(la["id"])
                    net.edges[edge.id] = edge
                elif tag == "junction":
                    response: dict[int, int] = {}
                    foes: dict[int, int] = {}
                    for req in elem.iter("request"):
                        i = int(req.get("index"))
                        # rightmost character = link 0, so bit k of the integer is link k
                        response[i] = int(req.get("response", "") or "0", 2)
                        foes[i] = int(req.get("foes", "") or "0", 2)
                    net.junctions[a["id"]] = _Junction(a["id"], a.get("type", ""), a.get("incLanes", "").split(), a.get("shape", ""),
                                                       response, foes)
                elif tag == "connection":
                    fe, te = a["from"], a["to"]
                    tl = a.get("tl", "")
                    net.conns.append(_Conn(fe, te, f"{fe}_{a['fromLane']}", f"{te}_{a['toLane']}", a.get("via", ""),
                                           tl, int(a["linkIndex"]) if tl and "linkIndex" in a else -1,
                                           a.get("dir", "")))
                elif tag == "tlLogic":
                    if a["id"] not in net.programs:  # the first program declared for a light is the one used
                        net.programs[a["id"]] = _program_phases(elem, net_file)
                        net.offsets[a["id"]] = _offset(elem, net_file)
                elem.clear()
                root.clear()
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{net_file}: network file not found") from None
    except IsADirectoryError:
        raise InputError(f"{net_file}: is a folder, expected a SUMO .net.xml file") from None
    except (ET.ParseError, StopIteration, EOFError, OSError) as exc:
        raise InputError(f"{net_file}: not a readable SUMO network (XML error: {exc})") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{net_file}: malformed SUMO network ({type(exc).__name__}: {exc})") from None
    return net


def _program_phases(elem: ET.Element, source: Path | None = None) -> list[_PhaseDef]:
    """The phases of one ``tlLogic`` element (a NEMA program as its concurrent pairs, :func:`_nema_pairs`);
    ``source`` names the file in error messages."""
    phases = [_PhaseDef(float(p.get("duration")), p.get("state", ""), _float(p.get("minDur")),
                        _float(p.get("maxDur")), p.get("name", "")) for p in elem.iter("phase")]
    if elem.get("type") == "NEMA":
        params = {p.get("key"): p.get("value", "") for p in elem.iter("param")}
        return _nema_pairs(phases, params, f"{source}: traffic light {elem.get('id')!r}")
    return phases


def _offset(elem: ET.Element, source: Path) -> float:
    """A ``tlLogic``'s ``offset`` (seconds; SUMO: the program's cycle position at time t is (t - offset) mod cycle)."""
    value = _float(elem.get("offset"), 0.0)
    if not math.isfinite(value):
        raise InputError(f"{source}: traffic light {elem.get('id')!r}: offset {elem.get('offset')!r} is not a number")
    return value


def _nema_pairs(phases: list[_PhaseDef], params: dict[str, str], where: str) -> list[_PhaseDef]:
    """A SUMO ``NEMA`` program as the phases that run together: its phases are single NEMA movements (named by
    NEMA number) and its ``ring1``/``ring2`` parameters list them slot by slot, the two rings' phases in the same
    slot running concurrently (slots before and after the barrier). Each slot becomes one green phase (e.g. 2+6):
    both phases' greens, min green the longer of the two minimums, max green the longer maximum, and as program
    green the longer maximum (a NEMA phase's split; its ``duration`` is not a timing)."""
    by_number: dict[int, _PhaseDef] = {}
    for phase in phases:
        try:
            by_number[int(phase.name)] = phase
        except ValueError:
            raise InputError(f"{where}: NEMA phase named {phase.name!r}, expected its NEMA number") from None

    def ring(key: str) -> list[int]:
        try:
            return [int(v) for v in params.get(key, "").replace(" ", "").split(",") if v != ""]
        except ValueError:
            raise InputError(f"{where}: NEMA parameter {key} {params.get(key)!r} is not a list of phase numbers") from None

    ring1, ring2 = ring("ring1"), ring("ring2")
    if not ring1 and not ring2:
        raise InputError(f"{where}: NEMA program without ring1/ring2 parameters")
    out = []
    for k in range(max(len(ring1), len(ring2))):
        numbers = [n for n in (ring1[k] if k < len(ring1) else 0, ring2[k] if k < len(ring2) else 0) if n]
        if not numbers:
            continue
        missing = [n for n in numbers if n not in by_number]
        if missing:
            raise InputError(f"{where}: NEMA ring names phase {missing[0]}, which the program does not have")
        members = [by_number[n] for n in numbers]
        state = "".join("G" if "G" in chars else "g" if "g" in chars else "s" if "s" in chars else "r"
                        for chars in zip(*(m.state for m in members)))
        max_durs = [m.max_dur if m.max_dur is not None else m.duration for m in members]
        min_durs = [m.min_dur for m in members if m.min_dur is not None]
        out.append(_PhaseDef(max(max_durs), state, max(min_durs) if min_durs else None, max(max_durs),
                             "+".join(map(str, numbers))))
    return out


def _parse_programs(path: Path) -> tuple[dict[str, list[_PhaseDef]], dict[str, float]]:
    """The ``tlLogic`` programs of a SUMO additional file, by light id (the last one per light), and their offsets."""
    programs: dict[str, list[_PhaseDef]] = {}
    offsets: dict[str, float] = {}
    try:
        with _open(path) as fh:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "tlLogic":
                    programs[elem.attrib["id"]] = _program_phases(elem, path)
                    offsets[elem.attrib["id"]] = _offset(elem, path)
                    elem.clear()
                elif elem.tag in ("vehicle", "flow", "trip", "person", "edge", "interval"):
                    elem.clear()
    except FileNotFoundError:
        raise InputError(f"{path}: additional file not found") from None
    except (ET.ParseError, EOFError, OSError) as exc:
        raise InputError(f"{path}: not a readable SUMO additional file (XML error: {exc})") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: malformed tlLogic ({type(exc).__name__}: {exc})") from None
    return programs, offsets


# ----------------------------------------------------------------------------------------------- geometry


def _points(shape: str) -> list[tuple[float, ...]]:
    pts = []
    for token in shape.split():
        try:
            pts.append(tuple(float(v) for v in token.split(",")))
        except ValueError:
            continue
    return pts


def _grade(lane: _Lane) -> float:
    """Average grade of a lane from its 3-D shape (0 when the shape has no z)."""
    pts = _points(lane.shape)
    if len(pts) < 2 or len(pts[0]) < 3 or len(pts[-1]) < 3:
        return 0.0
    run = sum(math.dist(p[:2], q[:2]) for p, q in zip(pts, pts[1:]))
    if run <= 0:
        return 0.0
    return max(-MAX_GRADE, min(MAX_GRADE, (pts[-1][2] - pts[0][2]) / run))


def _junction_extent(junction: _Junction | None) -> float:
    pts = _points(junction.shape) if junction else []
    if len(pts) < 2:
        return DEFAULT_JUNCTION_WIDTH_M
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    extent = max(max(xs) - min(xs), max(ys) - min(ys))
    return extent if extent > 0 else DEFAULT_JUNCTION_WIDTH_M


# ----------------------------------------------------------------------------------------------- derivation


def _is_pedestrian(net: _Net, conn: _Conn) -> bool:
    if "crossing" in (net.function(conn.from_edge), net.function(conn.to_edge)):
        return True
    lane = net.lanes.get(conn.from_lane)
    return lane is not None and lane.allow.split() == ["pedestrian"]


def _junction_link_indices(net: _Net, net_file: Path, junction_ids: Iterable[str]) -> dict[int, tuple[str, int]]:
    """Map ``id(conn)`` -> (junction id, junction link index) for the connections at these junctions.

    The junction's link order is: its incoming lanes in ``incLanes`` order, each lane's connections in file
    order, leaving out connections into walking areas and walking-area connections that do not enter a
    crossing (SUMO's NBRequest order; sumolib ``Node.getLinkIndex`` uses the same rule).
    """
    out: dict[int, tuple[str, int]] = {}
    for jid in junction_ids:
        junction = net.junctions.get(jid)
        if junction is None:
            continue
        k = 0
        for lane in junction.inc_lanes:
            for conn in net.by_from_lane.get(lane, ()):
                fn_from, fn_to = net.function(conn.from_edge), net.function(conn.to_edge)
                if fn_to == "walkingarea" or (fn_from == "walkingarea" and fn_to != "crossing"):
                    continue
                out[id(conn)] = (jid, k)
                k += 1
        if junction.response and k != len(junction.response):
            raise InputError(f"{net_file}: junction {jid!r} has {k} connections but {len(junction.response)} "
                             "request rows; cannot map its links to conflicts")
    return out


def _via_length(net: _Net, conn: _Conn) -> float | None:
    """Length (m) of the internal lanes a connection drives through, or None when the net has none."""
    if not conn.via or conn.via not in net.lanes:
        return None
    total, lane, seen = 0.0, conn.via, set()
    while lane and lane in net.lanes and lane not in seen:
        seen.add(lane)
        total += net.lanes[lane].length
        lane = net.next_via.get(lane, "")
    return total


def _compatibility(net: _Net, n: int, conns_by_index: dict[int, list[_Conn]],
                   jindex: dict[int, tuple[str, int]], program: list[_PhaseDef]) -> list[list[bool]]:
    """The n x n compatibility matrix of one traffic light (see the module docstring for the rule)."""
    compat = [[True] * n for _ in range(n)]
    placed = {i: [(c, jindex[id(c)]) for c in cs if id(c) in jindex] for i, cs in conns_by_index.items()}
    states = [p.state for p in program]

    def shown(yield_link: int, other_link: int, same_road: bool) -> bool:
        # the program shows both green, the yielding one as 'g' (streams that merge into, or leave from,
        # one edge may show G + G: SUMO resolves those by zipper/lane order)
        return any(st[other_link] in GREEN_CHARS and (st[yield_link] == "g" or (same_road and st[yield_link] == "G"))
                   for st in states)

    indices = sorted(placed)
    for x, i in enumerate(indices):
        for j in indices[x + 1:]:
            ok = True
            for ca, (ja, a) in placed[i]:
                junction = net.junctions[ja]
                for cb, (jb, b) in placed[j]:
                    if ja != jb or a == b:
                        continue
                    if not ((junction.foes.get(a, 0) >> b) & 1 or (junction.foes.get(b, 0) >> a) & 1):
                        continue
                    a_yields = bool((junction.response.get(a, 0) >> b) & 1)
                    b_yields = bool((junction.response.get(b, 0) >> a) & 1)
                    if not (a_yields or b_yields):
                        ok = False  # foes and nobody yields: never together
                    else:
                        same_road = ca.to_edge == cb.to_edge or ca.from_edge == cb.from_edge
                        ok = (a_yields and shown(i, j, same_road)) or (b_yields and shown(j, i, same_road))
                    if not ok:
                        break
                if not ok:
                    break
            if not ok:
                compat[i][j] = compat[j][i] = False
    return compat


def _green_phases(program: list[_PhaseDef], ped: list[bool]) -> tuple[list[tuple[str, _PhaseDef, float]],
                                                                     list[float] | None, float]:
    """Green phases as (G/g/r state, source phase, program green seconds), merged and deduplicated; with the
    program's change interval after each (seconds of phases showing yellow or no green before the next green phase;
    None unless the program runs each green once per cycle, in this order, with change intervals) and the seconds
    of change interval the program lists before its first green."""
    out: list[tuple[str, _PhaseDef, float]] = []
    changes: list[float] = []
    plain_cycle = True
    lead = 0.0  # change interval listed before the first green (it ends the cycle's last green)
    last: int | None = None  # index in ``out`` of the green phase seen last
    prev_green: int | None = None  # index in ``out`` of the green phase immediately before (no yellow between)
    for phase in program:
        raw = phase.state
        if not any(c in GREEN_CHARS for c in raw) or any(c in "yYu" for c in raw):
            prev_green = None
            if last is None:
                lead += phase.duration
            else:
                changes[last] += phase.duration
            continue
        state = "".join(c if c in GREEN_CHARS else "r" for c in raw)
        if prev_green is not None:
            before = out[prev_green][0]
            if len(before) == len(state) and before != state and all(
                    b == s or (ped[i] and b in GREEN_CHARS and s == "r") for i, (b, s) in enumerate(zip(before, state))):
                st, src, green = out[prev_green]
                out[prev_green] = (st, src, green + phase.duration)  # SUMO's crosswalk clearance: same vehicle green
                continue
        existing = next((k for k, (s, _, _) in enumerate(out) if s == state), None)
        if existing is None:
            out.append((state, phase, phase.duration))
            changes.append(0.0)
            prev_green = last = len(out) - 1
        elif existing == prev_green:  # the same greens go on (the phases differ only in red/'s' positions)
            st, src, green = out[existing]
            out[existing] = (st, src, green + phase.duration)
        else:
            plain_cycle = False  # the same green shown again in the cycle: the list order is not the program's
            prev_green = last = existing
    if last is not None:
        changes[last] += lead
    if not plain_cycle or not out or sum(changes) <= 0:
        return out, None, lead
    return out, changes, lead


def _derive_one(net: _Net, net_file: Path, tl: str, program: list[_PhaseDef], conns: list[_Conn],
                program_file: Path | None = None, offset_s: float = 0.0) -> Intersection:
    where = f"{program_file or net_file}: traffic light {tl!r}"
    if not program:
        raise InputError(f"{where}: program has no phases")
    n = len(program[0].state)
    if n == 0 or any(len(p.state) != n for p in program):
        raise InputError(f"{where}: phase states differ in length")
    conns_by_index: dict[int, list[_Conn]] = {}
    for conn in conns:
        if not 0 <= conn.link_index < n:
            raise InputError(f"{where}: connection {conn.from_lane} -> {conn.to_lane} has link index "
                             f"{conn.link_index}, outside the {n}-character signal state")
        conns_by_index.setdefault(conn.link_index, []).append(conn)
    junction_of = net.junction_of
    junction_ids = sorted({junction_of[c.from_lane] for c in conns if c.from_lane in junction_of})
    jindex = _junction_link_indices(net, net_file, junction_ids)

    links: list[SignalLink] = []
    ped: list[bool] = []
    for i in range(n):
        group = conns_by_index.get(i, [])
        if not group:  # a state position no connection uses: harmless placeholder
            speed = 13.89
            links.append(SignalLink(i, "vehicle", "", "", speed, yellow_change_s(speed), PEDESTRIAN_BUFFER_S))
            ped.append(False)
            continue
        is_ped = all(_is_pedestrian(net, c) for c in group)
        ped.append(is_ped)
        first = group[0]
        if is_ped:
            crossing = first.to_lane if net.function(first.to_edge) == "crossing" else first.from_lane
            lane = net.lanes.get(crossing)
            length = lane.length if lane else DEFAULT_JUNCTION_WIDTH_M
            speed = lane.speed if lane else 1.39
            links.append(SignalLink(i, "pedestrian", crossing, "", speed, pedestrian_clearance_s(length),
                                    PEDESTRIAN_BUFFER_S, WALK_S))
            continue
        yellow, red, speed = 0.0, 0.0, 0.0
        for conn in group:
            lane = net.lanes.get(conn.from_lane)
            v = lane.speed if lane else 13.89
            g = _grade(lane) if lane else 0.0
            width = _via_length(net, conn)
            if width is None:
                width = _junction_extent(net.junctions.get(junction_of.get(conn.from_lane, "")))
            yellow = max(yellow, yellow_change_s(v, g))
            red = max(red, red_clearance_s(width, v))
            speed = max(speed, v)
        # SUMO's "s" (stop, then go) in the program: a right turn allowed on red after a stop
        turn_on_red = any(phase.state[i] == "s" for phase in program)
        links.append(SignalLink(i, "vehicle", first.from_lane, first.to_lane, speed, yellow, red,
                                turn_on_red=turn_on_red))

    compat = _compatibility(net, n, conns_by_index, jindex, program)

    greens, changes, lead_s = _green_phases(program, ped)
    if not greens:
        raise InputError(f"{where}: the program has no green phase")
    for p_index, phase in enumerate(program):  # every phase that shows green, transitional ones included
        greens_here = [a for a, ch in enumerate(phase.state) if ch in GREEN_CHARS]
        for x, a in enumerate(greens_here):
            for b in greens_here[x + 1:]:
                if not compat[a][b]:
                    raise InputError(f"{where}: program phase {p_index + 1} of {len(program)} ({phase.state}) "
                                     f"shows conflicting links "
                                     f"{a} ({links[a].from_lane} -> {links[a].to_lane or 'crossing'}) and "
                                     f"{b} ({links[b].from_lane} -> {links[b].to_lane or 'crossing'}) green together")
    phases = []
    for k, (state, src, green) in enumerate(greens):
        min_green = src.min_dur if src.min_dur is not None and src.min_dur >= 4.0 else DEFAULT_MIN_GREEN_S
        max_green = max(DEFAULT_MAX_GREEN_S, 1.5 * green, src.max_dur or 0.0)
        phases.append(Phase(k + 1, state, src.name, min_green, max_green, green,
                            changes[k] if changes is not None else None))

    # major phase: serves the highest-priority road, then the most incoming lanes, then the longest green
    def score(k: int) -> tuple[int, int, float, int]:
        state = phases[k].state
        served = {c.from_lane for i, ch in enumerate(state) if ch in GREEN_CHARS and not ped[i]
                  for c in conns_by_index.get(i, [])}
        prio = max((net.edges[net.lanes[l].edge].priority for l in served if l in net.lanes), default=-(10 ** 9))
        protected = {c.from_lane for i, ch in enumerate(state) if ch == "G" and not ped[i]
                     for c in conns_by_index.get(i, [])}
        return prio, len(protected), phases[k].program_green_s, -k

    major = max(range(len(phases)), key=score)

    movements = [(c.link_index, c.from_lane, c.to_lane) for c in conns if not ped[c.link_index]]
    geometry = {lane: LaneGeometry(net.lanes[lane].length, net.lanes[lane].speed)
                for _, a, b in movements for lane in (a, b) if lane in net.lanes}
    for _, lane, _ in movements:  # approach lanes too short for their detectors: the road upstream of them
        if lane in net.lanes and net.lanes[lane].length < MIN_APPROACH_M:
            geometry[lane] = replace(geometry[lane], upstream=_road_upstream(net, lane, RADAR_ZONE_M))
    # the network's own detectors where it declares some on this light's approaches, else the automatic set
    detectors = declared_for_light(tl, movements, net.declared_lengths, net.declared)
    if detectors is None:
        detectors = place_detectors(tl, movements, geometry)
    return _make(where, tl, links, phases, compat, detectors, major, offset_s + lead_s)


def _road_upstream(net: _Net, lane: str, needed_m: float) -> tuple[tuple[str, float, float], ...]:
    """The road upstream of ``lane`` as far as it continues without a junction of its own, nearest first, up to
    ``needed_m`` metres: ``(lane, length m, gap m)`` per lane, the gap being the junction-internal connection
    between it and the lane downstream. It continues while the lane has exactly one lane feeding it, through a
    connection no traffic light controls, and that lane leads nowhere but into the same edge (a split of lanes is
    still one road; a junction where roads merge or part is where it ends)."""
    chain: list[tuple[str, float, float]] = []
    seen, total, current = {lane}, 0.0, lane
    while total < needed_m and len(chain) < 50:
        feeding = net.by_to_lane.get(current, [])
        if len({c.from_lane for c in feeding}) != 1 or feeding[0].tl:
            break
        up = feeding[0].from_lane
        leads_to = {c.to_edge for c in net.by_from_lane.get(up, [])}
        if up in seen or up not in net.lanes or leads_to != {net.lanes[current].edge}:
            break
        gap, via = 0.0, feeding[0].via
        while via and via in net.lanes and via not in seen:  # the internal lane(s) of the junction between them
            seen.add(via)
            gap += net.lanes[via].length
            via = net.next_via.get(via, "")
        chain.append((up, net.lanes[up].length, gap))
        seen.add(up)
        total += gap + net.lanes[up].length
        current = up
    return tuple(chain)


def _make(where: str, tl: str, links: Sequence[SignalLink], phases: Sequence[Phase], compat: Sequence[Sequence[bool]],
          detectors: Sequence[Detector], major: int, program_offset_s: float = 0.0) -> Intersection:
    try:
        return Intersection(tl, tuple(links), tuple(phases), tuple(tuple(bool(v) for v in row) for row in compat),
                            tuple(detectors), major, program_offset_s)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def derive_intersections(net_file: Path, override_file: Path | None = None,
                         program_files: tuple[Path, ...] | list[Path] = ()) -> list[Intersection]:
    """Derive one :class:`Intersection` per traffic light (``tlLogic``) of a SUMO network.

    :param net_file: SUMO ``.net.xml`` (or ``.net.xml.gz``) with traffic-light programs.
    :param override_file: optional JSON/YAML file adjusting timings, names and the major phase per light
        (see the module docstring).
    :param program_files: SUMO additional files loaded with the net, in load order: a ``tlLogic`` in them
        replaces the net's program for its light (the last one loaded wins, as in SUMO, where the program loaded
        last is the one running at the start).
    :return: intersections sorted by traffic-light id.
    :raises InputError: missing or malformed file, no traffic lights, a program phase that shows
        conflicting links green together, or a bad override (the message names the file).
    """
    net_file = Path(net_file)
    net = _parse_net(net_file)
    source = {}  # light -> the additional file its program came from
    net.declared = read_declared(program_files)
    net.declared_lengths = {lane: net.lanes[lane].length for det in net.declared for lane in det.lanes
                            if lane in net.lanes}
    for path in program_files:
        programs, offsets = _parse_programs(Path(path))
        net.programs.update(programs)
        net.offsets.update(offsets)
        source.update(dict.fromkeys(programs, Path(path)))
    if not net.programs:
        raise InputError(f"{net_file}: no traffic lights (tlLogic) in this network")
    net.index()
    conns_by_tl: dict[str, list[_Conn]] = {}
    for conn in net.conns:
        # a connection leaving an internal lane (after an internal junction) repeats its normal connection
        if conn.tl and net.function(conn.from_edge) != "internal":
            conns_by_tl.setdefault(conn.tl, []).append(conn)
    result = [_derive_one(net, net_file, tl, net.programs[tl], conns_by_tl.get(tl, []), source.get(tl),
                          net.offsets.get(tl, 0.0))
              for tl in sorted(net.programs)]
    if override_file is not None:
        result = apply_overrides(result, Path(override_file))
    return result


# ----------------------------------------------------------------------------------------------- overrides


def _read_mapping(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML/JSON'} ({first})") from None


def _as_index(path: Path, where: str, key: Any, limit: int, base: int) -> int:
    try:
        value = int(key)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {where}: key {key!r} is not a number") from None
    if not base <= value < limit + base:
        raise InputError(f"{path}: {where}: key {key!r} out of range {base}..{limit + base - 1}")
    return value - base


def _number(path: Path, where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{path}: {where}: {key} must be a number, got {value!r}")
    return float(value)


def apply_overrides(intersections: Sequence[Intersection], override_file: Path) -> list[Intersection]:
    """Apply an override file to derived intersections.

    :param intersections: derived intersections.
    :param override_file: JSON (``.json``) or YAML file; top-level keys are traffic-light ids, each with
        optional ``major_phase`` (0-based), ``phases`` (keyed by derived 1-based phase number: ``min_green_s``,
        ``max_green_s``, ``program_green_s``, ``program_change_s`` seconds, ``name``, ``number``), ``program_offset_s``
        (seconds) and ``links`` (keyed by 0-based link
        index: ``yellow_s``, ``red_clearance_s``, ``walk_s`` seconds, ``speed_mps`` metres per second).
    :return: the adjusted intersections (same order).
    :raises InputError: unknown traffic light or key, or a value of the wrong type (naming file and key).
    """
    path = Path(override_file)
    data = _read_mapping(path)
    if data is None:
        return list(intersections)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of traffic-light ids at the top level")
    by_id = {i.id: i for i in intersections}
    for tl in data:
        if str(tl) not in by_id:
            raise InputError(f"{path}: unknown traffic light {tl!r} (network has {', '.join(sorted(by_id)) or 'none'})")
    out = []
    for inter in intersections:
        spec = data.get(inter.id)
        if spec is None:
            out.append(inter)
            continue
        where = f"traffic light {inter.id!r}"
        if not isinstance(spec, dict):
            raise InputError(f"{path}: {where}: expected a mapping")
        for key in spec:
            if key not in _TL_OVERRIDES:
                raise InputError(f"{path}: {where}: unknown key {key!r} (allowed: {', '.join(sorted(_TL_OVERRIDES))})")
        for section in ("phases", "links"):
            if not isinstance(spec.get(section) or {}, dict):
                raise InputError(f"{path}: {where}: '{section}' must be a mapping keyed by "
                                 f"{'phase number' if section == 'phases' else 'link index'}")
        phases = list(inter.phases)
        for key, changes in (spec.get("phases") or {}).items():
            k = _as_index(path, f"{where} phases", key, len(phases), 1)
            if not isinstance(changes, dict):
                raise InputError(f"{path}: {where} phase {key}: expected a mapping")
            kwargs: dict[str, Any] = {}
            for name, value in changes.items():
                if name not in _PHASE_OVERRIDES:
                    raise InputError(f"{path}: {where} phase {key}: unknown key {name!r} "
                                     f"(allowed: {', '.join(sorted(_PHASE_OVERRIDES))})")
                if name == "name":
                    kwargs[name] = str(value)
                elif name == "number":
                    kwargs[name] = int(_number(path, f"{where} phase {key}", name, value))
                else:
                    kwargs[name] = _number(path, f"{where} phase {key}", name, value)
            phases[k] = replace(phases[k], **kwargs)
        links = list(inter.links)
        for key, changes in (spec.get("links") or {}).items():
            i = _as_index(path, f"{where} links", key, len(links), 0)
            if not isinstance(changes, dict):
                raise InputError(f"{path}: {where} link {key}: expected a mapping")
            kwargs = {}
            for name, value in changes.items():
                if name not in _LINK_OVERRIDES:
                    raise InputError(f"{path}: {where} link {key}: unknown key {name!r} "
                                     f"(allowed: {', '.join(sorted(_LINK_OVERRIDES))})")
                kwargs[name] = _number(path, f"{where} link {key}", name, value)
            links[i] = replace(links[i], **kwargs)
        major = inter.major_phase
        if "major_phase" in spec:
            major = int(_number(path, where, "major_phase", spec["major_phase"]))
        offset = inter.program_offset_s
        if "program_offset_s" in spec:
            offset = _number(path, where, "program_offset_s", spec["program_offset_s"])
        out.append(_make(f"{path}: {where}", inter.id, links, phases, inter.compatible, inter.detectors, major, offset))
    return out


# ----------------------------------------------------------------------------------------------- intersection file


def intersection_to_dict(inter: Intersection) -> dict[str, Any]:
    """Plain-data form of an intersection (what the intersection file stores for it).

    :param inter: the intersection.
    """
    return {
        "id": inter.id,
        "major_phase": inter.major_phase,
        "program_offset_s": inter.program_offset_s,
        "links": [asdict(link) for link in inter.links],
        "phases": [asdict(phase) for phase in inter.phases],
        "compatible": ["".join("1" if v else "0" for v in row) for row in inter.compatible],
        "detectors": [_detector_dict(det) for det in inter.detectors],
    }


def _detector_dict(det: Detector) -> dict[str, Any]:
    """One detector as plain data (lists, not tuples; no ``placement`` when it sits on its lane alone)."""
    data = dict(asdict(det), links=list(det.links), placement=[list(seg) for seg in det.placement])
    if not det.placement:
        del data["placement"]
    return data


def intersection_from_dict(data: dict[str, Any], where: str = "intersection file") -> Intersection:
    """Rebuild an intersection from :func:`intersection_to_dict` data.

    :param data: the mapping.
    :param where: name used in error messages (usually the file).
    :raises InputError: missing fields or inconsistent data.
    """
    try:
        ident = str(data["id"])
        links = tuple(SignalLink(**link) for link in data["links"])
        phases = tuple(Phase(**phase) for phase in data["phases"])
        rows = data["compatible"]
        compat = tuple(tuple(ch == "1" for ch in row) if isinstance(row, str) else tuple(bool(v) for v in row)
                       for row in rows)
        detectors = tuple(Detector(**dict(det, links=tuple(det.get("links", ())),
                                          placement=tuple((str(lane), float(a), float(b))
                                                          for lane, a, b in det.get("placement", ()))))
                          for det in data.get("detectors", ()))
        major = int(data.get("major_phase", 0))
        offset = float(data.get("program_offset_s", 0.0))
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: malformed intersection entry ({type(exc).__name__}: {exc})") from None
    return _make(f"{where}: intersection {ident!r}", ident, links, phases, compat, detectors, major, offset)


def write_intersection_file(intersections: Sequence[Intersection], path: Path, source: str = "") -> Path:
    """Write the full description of intersections as JSON (an intersection file).

    :param intersections: intersections to describe.
    :param path: output file (``.json``; parent folders are created).
    :param source: free text recorded in the file (e.g. the net it was derived from).
    :return: ``path``.
    """
    path = Path(path)
    doc = {"format": INTERSECTION_FILE_FORMAT, "version": INTERSECTION_FILE_VERSION, "source": source,
           "intersections": [intersection_to_dict(i) for i in intersections]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def load_intersection_file(path: Path) -> list[Intersection]:
    """Read an intersection file written by :func:`write_intersection_file` (JSON; YAML with the same layout works too).

    :param path: the file.
    :return: the intersections, in file order, equal to those written.
    :raises InputError: missing file, wrong format or inconsistent data (the message names the file).
    """
    path = Path(path)
    data = _read_mapping(path)
    if not isinstance(data, dict) or data.get("format") != INTERSECTION_FILE_FORMAT:
        raise InputError(f"{path}: not an ondaverde intersection file (expected \"format\": \"{INTERSECTION_FILE_FORMAT}\")")
    if data.get("version") != INTERSECTION_FILE_VERSION:
        raise InputError(f"{path}: intersection file version {data.get('version')!r} not supported "
                         f"(expected {INTERSECTION_FILE_VERSION})")
    entries = data.get("intersections")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: no intersections listed")
    return [intersection_from_dict(entry, str(path)) for entry in entries]
