"""Field-like detectors placed automatically on every signalised approach, and their SUMO additional file.

For each traffic light, every incoming lane that feeds a vehicle link gets

* a stop-bar loop (``stopbar``, SUMO E1 ``inductionLoop``) :data:`STOPBAR_SETBACK_M` before the stop line,
* an advance loop (``advance``, E1) at speed x :data:`ADVANCE_HEADWAY_S` upstream (about 42 m at 50 km/h),
  clipped to the lane,
* an approach radar zone (``radar``, E2 ``laneAreaDetector``) over the last min(150 m, lane length),

and every outgoing lane of its vehicle links gets an exit zone (``exit``, E2) over its first
min(100 m, lane length). Ids are ``{tl}__sb__{lane}``, ``{tl}__adv__{lane}``, ``{tl}__rad__{lane}`` and
``{tl}__exit__{lane}``: unique within a network and the same on every run.

>>> dets = place_detectors("C", [(0, "in_0", "out_0"), (1, "in_0", "left_0")],
...                        {"in_0": LaneGeometry(300.0, 13.89), "out_0": LaneGeometry(60.0, 13.89),
...                         "left_0": LaneGeometry(300.0, 13.89)})
>>> [(d.id, d.kind, d.links, d.distance_m, d.length_m) for d in dets][:3]
[('C__sb__in_0', 'stopbar', (0, 1), 1.0, 0.0), ('C__adv__in_0', 'advance', (0, 1), 41.67, 0.0), ('C__rad__in_0', 'radar', (0, 1), 0.0, 150.0)]
>>> [(d.id, d.length_m) for d in dets if d.kind == "exit"]
[('C__exit__left_0', 100.0), ('C__exit__out_0', 60.0)]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from controller.errors import InputError
from controller.intersection import Detector, Intersection

#: Stop-bar loop: distance from the stop line to the loop, metres.
STOPBAR_SETBACK_M = 1.0
#: Advance loop: placed this many seconds of travel at the lane speed upstream of the stop line.
ADVANCE_HEADWAY_S = 3.0
#: Approach radar zone: longest zone, metres (typical radar range for queue/ETA).
RADAR_ZONE_M = 150.0
#: Exit zone: longest zone on an outgoing lane, metres.
EXIT_ZONE_M = 100.0
#: Default loop aggregation period (s). The backend reads a loop's count over its last period, so the
#: simulation sets the period to its read interval (1 s for classical policies, the decision interval
#: for learning agents). SUMO's running interval count costs time that grows with the period.
PERIOD_S = 1
#: Output file SUMO accepts as "discard" on every platform.
NULL_FILE = "NUL"


@dataclass(frozen=True)
class LaneGeometry:
    """What detector placement needs to know about a lane.

    :param length_m: lane length, metres.
    :param speed_mps: lane speed limit, metres per second.
    """

    length_m: float
    speed_mps: float


def _floor2(x: float) -> float:
    """Round down to 0.01 m (positions written with two decimals must still fit inside the lane)."""
    return math.floor(round(x * 100.0, 6)) / 100.0


def detector_id(tl_id: str, kind: str, lane: str) -> str:
    """The deterministic detector id: ``{tl}__{sb|adv|rad|exit}__{lane}``.

    :param tl_id: traffic-light id.
    :param kind: detector kind (``stopbar``, ``advance``, ``radar``, ``exit``).
    :param lane: SUMO lane id.
    """
    short = {"stopbar": "sb", "advance": "adv", "radar": "rad", "exit": "exit"}[kind]
    return f"{tl_id}__{short}__{lane}"


def place_detectors(tl_id: str, movements: Iterable[tuple[int, str, str]],
                    lanes: Mapping[str, LaneGeometry]) -> tuple[Detector, ...]:
    """Place stop-bar, advance, radar and exit detectors for one traffic light.

    :param tl_id: traffic-light id (prefix of every detector id).
    :param movements: the vehicle connections of this light as ``(tl link index, from lane, to lane)``;
        several connections may share one link index.
    :param lanes: geometry of every lane named in ``movements`` (lanes missing here get no detector).
    :return: detectors ordered by incoming lane (stop-bar, advance, radar for each), then exit zones;
        lanes sorted by id.
    """
    feeds: dict[str, set[int]] = {}
    fed_by: dict[str, set[int]] = {}
    for index, from_lane, to_lane in movements:
        if from_lane in lanes:
            feeds.setdefault(from_lane, set()).add(index)
        if to_lane and to_lane in lanes:
            fed_by.setdefault(to_lane, set()).add(index)
    out: list[Detector] = []
    for lane in sorted(feeds):
        geo = lanes[lane]
        links = tuple(sorted(feeds[lane]))
        length = max(geo.length_m, 0.0)
        stop = STOPBAR_SETBACK_M if length > 2 * STOPBAR_SETBACK_M else _floor2(length / 2)
        advance = _floor2(min(max(geo.speed_mps, 1.0) * ADVANCE_HEADWAY_S, length))
        zone = _floor2(min(RADAR_ZONE_M, length))
        out.append(Detector(detector_id(tl_id, "stopbar", lane), "stopbar", lane, links, stop, 0.0))
        out.append(Detector(detector_id(tl_id, "advance", lane), "advance", lane, links, max(advance, stop), 0.0))
        if zone > 0:
            out.append(Detector(detector_id(tl_id, "radar", lane), "radar", lane, links, 0.0, zone))
    for lane in sorted(fed_by):
        zone = _floor2(min(EXIT_ZONE_M, max(lanes[lane].length_m, 0.0)))
        if zone > 0:
            out.append(Detector(detector_id(tl_id, "exit", lane), "exit", lane, tuple(sorted(fed_by[lane])), 0.0, zone))
    return tuple(out)


def detector_additional_xml(intersections: Sequence[Intersection], period_s: float = PERIOD_S) -> str:
    """The SUMO additional-file text declaring every detector of ``intersections``.

    Loops are written with negative ``pos`` (metres before the lane end = distance from the stop line);
    approach zones with negative ``pos`` and ``length`` so they end exactly at the stop line; exit zones
    with ``pos``/``endPos`` from the lane start. No output is written (``file="NUL"``).

    :param intersections: derived intersections (their ``detectors`` are written, in order).
    :param period_s: aggregation period of every detector, seconds (the loop count covers one period).
    """
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             "<!-- generated by ondaverde networks/detectors.py: field-like detectors; do not edit -->",
             "<additional>"]
    seen: set[str] = set()
    for inter in intersections:
        for det in inter.detectors:
            if det.id in seen:
                continue
            seen.add(det.id)
            ident, lane = quoteattr(det.id), quoteattr(det.lane)
            common = f'period="{period_s:g}" file="{NULL_FILE}"'
            if det.kind in ("stopbar", "advance"):
                pos = -det.distance_m if det.distance_m > 0 else 0.0
                lines.append(f'    <inductionLoop id={ident} lane={lane} pos="{pos:.2f}" {common}/>')
            elif det.kind == "radar":
                start = -(det.distance_m + det.length_m)
                lines.append(f'    <laneAreaDetector id={ident} lane={lane} pos="{start:.2f}" '
                             f'length="{det.length_m:.2f}" {common}/>')
            elif det.kind == "exit":
                lines.append(f'    <laneAreaDetector id={ident} lane={lane} pos="{det.distance_m:.2f}" '
                             f'endPos="{det.distance_m + det.length_m:.2f}" {common}/>')
            else:  # pragma: no cover - DetectorKind is closed
                raise InputError(f"detector {det.id!r}: unknown kind {det.kind!r}")
    lines.append("</additional>")
    return "\n".join(lines) + "\n"


def write_detector_additional(intersections: Sequence[Intersection], out_path: Path,
                              period_s: float = PERIOD_S) -> Path:
    """Write the SUMO additional file (load with ``sumo --additional-files out_path``).

    :param intersections: derived intersections whose detectors are written.
    :param out_path: file to write (parent folders are created).
    :param period_s: aggregation period of every detector, seconds.
    :return: ``out_path``.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(detector_additional_xml(intersections, period_s), encoding="utf-8")
    return out_path
