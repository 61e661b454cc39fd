"""The detectors a network's own additional files declare, used as its traffic lights' field detectors.

A city model often comes with its detectors: SUMO E1 induction loops and E2 lane-area detectors where the real
loops and cameras are. A light with at least one of them on its approach lanes is given those (and the declared
zones on the lanes its movements enter) in place of the automatic set of :mod:`networks.detectors`; a light with
none keeps the automatic set. The kind of each follows from where it sits:

* an E1 loop on an approach lane: ``stopbar`` for the one nearest the stop line when it lies within
  :data:`STOPBAR_REACH_M` of it, ``advance`` for every other;
* an E2 zone whose downstream end lies on an approach lane: ``radar`` (vehicles, queue, speed);
* an E2 zone that starts on a lane the light's movements enter: ``exit``.

Each is declared again under the project's id (``{tl}__{sb|adv|rad|exit}__{declared id}``) with the read
interval as its aggregation period, exactly at the declared place (``Detector.placement``, to the last digit): the backend reads a loop's count over its last period,
which the network's own period (often 60-900 s) would not give. The declared detector stays as the network wrote
it, with its own output. Not used: E3 (entry-exit) detectors, instantaneous loops, detectors that see only some road
users (``vTypes``, ``nextEdges``, ``detectPersons``), detectors on lanes that neither approach nor leave a light, and
a loop declared upstream of a short approach lane (on a lane no light controls).

>>> lanes = {"in_0": 200.0, "out_0": 120.0}
>>> found = [DeclaredDetector("L1", "loop", ("in_0",), -3.0, -3.0), DeclaredDetector("L2", "loop", ("in_0",), 110.0, 110.0),
...          DeclaredDetector("Q", "zone", ("in_0",), 100.0, 200.0), DeclaredDetector("X", "zone", ("out_0",), 0.0, 50.0)]
>>> dets = declared_for_light("C", [(0, "in_0", "out_0")], lanes, found)
>>> [(d.id, d.kind, d.distance_m, d.length_m) for d in dets]
[('C__sb__L1', 'stopbar', 3.0, 0.0), ('C__adv__L2', 'advance', 90.0, 0.0), ('C__rad__Q', 'radar', 0.0, 100.0), ('C__exit__X', 'exit', 0.0, 50.0)]
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.errors import InputError
from controller.intersection import Detector

#: The loop nearest the stop line is its stop-bar loop when it lies within this many metres of it (field stop-bar
#: detection ends within a car length or two of the line; an advance loop sits 30 m or more upstream).
STOPBAR_REACH_M = 15.0

_LOOP_TAGS = {"inductionLoop", "e1Detector"}
_ZONE_TAGS = {"laneAreaDetector", "e2Detector"}
#: attributes that make a detector see only some road users (a bus loop for transit priority, a loop counting
#: vehicles bound for given edges, a person counter): not a detector of all traffic, so not used
_SELECTIVE = {"vTypes", "nextEdges", "detectPersons"}


@dataclass(frozen=True)
class DeclaredDetector:
    """A detector as an additional file declares it (positions as written: negative counts from the lane's end).

    :param id: the declared id.
    :param kind: ``loop`` (E1) or ``zone`` (E2).
    :param lanes: the lane(s) it covers, upstream first (a loop: one).
    :param pos_m: start position on the first lane, metres (a loop: its position).
    :param end_pos_m: end position on the last lane, metres (a loop: its position); None: start plus ``length_m``.
    :param length_m: zone length, metres, when given instead of an end (single-lane zones).
    """

    id: str
    kind: str
    lanes: tuple[str, ...]
    pos_m: float | None
    end_pos_m: float | None
    length_m: float | None = None


def read_declared(files: Iterable[Path]) -> list[DeclaredDetector]:
    """Every E1 loop and E2 zone declared in ``files`` (SUMO additional files, in load order).

    :param files: additional files; a detector file this project wrote is skipped (it holds the automatic set).
    :raises InputError: a declared detector without an id or a lane, or with a position that is not a number (the
        message names the file and the detector).
    """
    from networks.detectors import GENERATED_MARK

    found: list[DeclaredDetector] = []
    for path in files:
        path = Path(path)
        try:
            with open(path, "rb") as fh:
                gzipped = fh.read(2) == b"\x1f\x8b"
            with (gzip.open(path, "rb") if gzipped else open(path, "rb")) as fh:
                if GENERATED_MARK.encode() in fh.read(512):
                    continue
                fh.seek(0)
                for _, elem in ET.iterparse(fh, events=("end",)):
                    if (elem.tag in _LOOP_TAGS or elem.tag in _ZONE_TAGS) and not _SELECTIVE & set(elem.attrib):
                        found.append(_declared(elem, path))
                    elem.clear()
        except FileNotFoundError:
            raise InputError(f"{path}: additional file not found") from None
        except (ET.ParseError, EOFError, OSError) as exc:
            raise InputError(f"{path}: not a readable SUMO additional file (XML error: {exc})") from None
    return found


def _declared(elem: ET.Element, path: Path) -> DeclaredDetector:
    a = elem.attrib
    ident = a.get("id", "")
    where = f"{path}: {elem.tag} {ident!r}"
    if not ident:
        raise InputError(f"{path}: an {elem.tag} without an id")
    lanes = tuple(a["lanes"].split()) if a.get("lanes") else ((a["lane"],) if a.get("lane") else ())
    if not lanes:
        raise InputError(f"{where}: no lane")

    def number(key: str) -> float | None:
        if a.get(key) in (None, ""):
            return None
        try:
            return float(a[key])
        except ValueError:
            raise InputError(f"{where}: {key} {a[key]!r} is not a number") from None

    if elem.tag in _LOOP_TAGS:
        pos = number("pos") or 0.0
        return DeclaredDetector(ident, "loop", lanes[:1], pos, pos)
    return DeclaredDetector(ident, "zone", lanes, number("pos"), number("endPos"), number("length"))


def declared_for_light(tl_id: str, movements: Iterable[tuple[int, str, str]], lane_lengths: Mapping[str, float],
                       declared: Sequence[DeclaredDetector]) -> tuple[Detector, ...] | None:
    """The declared detectors of one light as its field detectors, or None when none lies on its approach lanes.

    :param tl_id: traffic-light id (prefix of every detector id).
    :param movements: the light's vehicle connections as ``(link index, from lane, to lane)``.
    :param lane_lengths: length of every lane the declared detectors name, metres (others are left out).
    :param declared: what the network's additional files declare (:func:`read_declared`).
    :return: per approach lane (sorted): its stop-bar loop, advance loops (nearest first), radar zones; then the
        exit zones, by lane; None when no declared detector is on an approach lane.
    """
    from networks.detectors import detector_id, links_by_lane

    feeds, fed_by = links_by_lane(movements, lane_lengths)
    loops: dict[str, list[tuple[float, DeclaredDetector]]] = {}
    zones: dict[str, list[Detector]] = {}
    exits: dict[str, list[Detector]] = {}
    segments_of: dict[str, tuple[str, float, float]] = {}
    for det in declared:
        if any(lane not in lane_lengths for lane in det.lanes):
            continue
        segments = _segments(det, lane_lengths)
        if det.kind == "loop":
            lane, at, _ = segments[0]
            if lane in feeds:
                loops.setdefault(lane, []).append((lane_lengths[lane] - at, det))
                segments_of[det.id] = segments[0]
            continue
        last_lane, _, last_end = segments[-1]
        first_lane, first_start, _ = segments[0]
        length = round(sum(end - start for _, start, end in segments), 2)
        placement = tuple(segments)  # exactly where SUMO puts the original (also on one lane: written as is)
        if last_lane in feeds:
            links = tuple(sorted(feeds[last_lane]))
            zones.setdefault(last_lane, []).append(Detector(
                detector_id(tl_id, "radar", det.id), "radar", last_lane, links,
                round(lane_lengths[last_lane] - last_end, 2), length, placement))
        if first_lane in fed_by:
            exits.setdefault(first_lane, []).append(Detector(
                detector_id(tl_id, "exit", det.id), "exit", first_lane, tuple(sorted(fed_by[first_lane])),
                round(first_start, 2), length, placement))
    if not loops and not zones:
        return None
    out: list[Detector] = []
    for lane in sorted(set(loops) | set(zones)):
        links = tuple(sorted(feeds[lane]))
        ordered = sorted(loops.get(lane, []), key=lambda item: (item[0], item[1].id))
        for k, (distance, det) in enumerate(ordered):
            kind = "stopbar" if k == 0 and distance <= STOPBAR_REACH_M else "advance"
            out.append(Detector(detector_id(tl_id, kind, det.id), kind, lane, links, round(distance, 2), 0.0,
                                (segments_of[det.id],)))
        out += sorted(zones.get(lane, []), key=lambda d: (d.distance_m, d.id))
    for lane in sorted(exits):
        out += sorted(exits[lane], key=lambda d: (d.distance_m, d.id))
    return tuple(out)


def _segments(det: DeclaredDetector, lane_lengths: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """Where a declared detector lies: ``(lane, from_m, to_m)`` per lane, upstream first, positions from each lane's
    start and inside the lane (SUMO's reading: a negative position counts from the lane's end)."""

    def on(lane: str, value: float) -> float:
        length = lane_lengths[lane]
        return min(max(value + length if value < 0 else value, 0.0), length)

    lanes = det.lanes
    first, last = lanes[0], lanes[-1]
    if det.kind == "loop":
        at = on(first, det.pos_m or 0.0)
        return [(first, at, at)]
    if len(lanes) == 1:
        length = lane_lengths[first]
        if det.pos_m is not None and det.end_pos_m is not None:
            start, end = on(first, det.pos_m), on(first, det.end_pos_m)
        elif det.length_m is not None and det.end_pos_m is not None:
            end = on(first, det.end_pos_m)
            start = max(end - det.length_m, 0.0)
        elif det.length_m is not None:
            start = on(first, det.pos_m or 0.0)
            end = min(start + det.length_m, length)
        else:
            start, end = on(first, det.pos_m or 0.0), length
        return [(first, start, end)]
    start = on(first, det.pos_m or 0.0)
    end = on(last, det.end_pos_m) if det.end_pos_m is not None else lane_lengths[last]
    middle = [(lane, 0.0, lane_lengths[lane]) for lane in lanes[1:-1]]
    return [(first, start, lane_lengths[first]), *middle, (last, 0.0, end)]

