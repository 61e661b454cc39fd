"""What-if demand from the recorded arrivals themselves (``--arrivals recorded``): one vehicle per detector
actuation, timed to pass the simulated detector when the real vehicle passed the real one.

The default demand (:mod:`networks.whatif_demand`) draws Poisson arrivals at each bin's recorded rate, so the
recorded timing, which answered that day's actual vehicles, meets other vehicles in the simulation. Here every
detector-on event (code 82) of a phase's arrival channels is one vehicle. Arrival channels are the phase's
``advance`` detectors (upstream, before any queue: arrivals), else its counting function of
:data:`networks.whatif_demand.COUNT_FUNCTIONS` order (a stop-bar actuation is a departure from the queue under
the recorded timing, so it favours that timing; the output names the function used). The vehicle departs at
the start of its approach edge ``(lane length - detector distance) / speed`` seconds before the actuation, at the
speed limit, so on a free road it reaches the simulated detector at the recorded time.

Turns are assigned deterministically with the shares of :mod:`networks.whatif_demand` (the k-th vehicle of an
approach takes the turn furthest below its share), so every seed sees the same vehicles; seeds vary only the
drivers. Vehicles due before the window start depart at 0.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from controller.errors import InputError
from networks.detectors import ADVANCE_HEADWAY_S, STOPBAR_SETBACK_M
from networks.whatif import LEFT_OF, Movement
from networks.whatif_demand import COUNT_FUNCTIONS, DETECTOR_ON, LEFT_SHARE, RIGHT_SHARE

#: arrival functions, most faithful first (advance loops see vehicles before they queue)
ARRIVAL_FUNCTIONS = ("advance",) + tuple(f for f in COUNT_FUNCTIONS if f != "advance")


@dataclass(frozen=True)
class Arrival:
    """One recorded vehicle.

    :param detector_s: when it passed the detector, seconds from the window start.
    :param from_edge: its approach edge.
    :param to_edge: the edge it turns into.
    :param turn: ``left``, ``through`` or ``right``.
    :param phase: the approach's through phase.
    :param function: the detector function it was seen by.
    """

    detector_s: float
    from_edge: str
    to_edge: str
    turn: str
    phase: int
    function: str


def _shares(turns: set[str], with_left: bool) -> dict[str, float]:
    """Turn shares of a through phase's vehicles (the left share only when no left phase counts the lefts)."""
    base = {"right": RIGHT_SHARE, "through": 1.0 - RIGHT_SHARE - (LEFT_SHARE if with_left else 0.0)}
    if with_left:
        base["left"] = LEFT_SHARE
    present = {t: v for t, v in base.items() if t in turns}
    total = sum(present.values())
    return {t: v / total for t, v in present.items()} if total else {}


def assign_turns(n: int, shares: Mapping[str, float]) -> list[str]:
    """Turns of ``n`` vehicles in order: each takes the turn furthest below its share so far.

    >>> assign_turns(7, {"right": 0.15, "through": 0.85})
    ['through', 'through', 'through', 'right', 'through', 'through', 'through']

    :param n: vehicles.
    :param shares: turn -> share (sums to 1).
    """
    got = {t: 0 for t in shares}
    out = []
    for k in range(1, n + 1):
        turn = max(shares, key=lambda t: (shares[t] * k - got[t], shares[t]))
        got[turn] += 1
        out.append(turn)
    return out


def recorded_arrivals(time_s: np.ndarray, code: np.ndarray, param: np.ndarray,
                      detectors: Mapping[int, Sequence[tuple[int, str]]], movements: Sequence[Movement],
                      begin_s: float, end_s: float) -> list[Arrival]:
    """One vehicle per detector-on event of each phase's arrival channels in ``[begin_s, end_s)``.

    :param time_s: event times, epoch seconds (one signal).
    :param code: event codes.
    :param param: event parameters.
    :param detectors: phase -> its detectors as ``(channel, function)``.
    :param movements: the light's movements.
    :param begin_s: window start, epoch seconds (time 0 of the simulation).
    :param end_s: window end, epoch seconds.
    """
    on = np.asarray(code) == DETECTOR_ON
    t = np.asarray(time_s, dtype=float)[on]
    ch = np.asarray(param)[on]
    inside = (t >= begin_s) & (t < end_s)
    t, ch = t[inside] - begin_s, ch[inside]

    def channels(phase: int | None) -> tuple[str, tuple[int, ...]] | None:
        dets = detectors.get(phase, ()) if phase is not None else ()
        for function in ARRIVAL_FUNCTIONS:
            chosen = tuple(c for c, f in dets if f == function)
            if chosen:
                return function, chosen
        return None

    by_approach: dict[int, dict[str, list[tuple[str, str]]]] = {}
    for m in movements:
        pairs = by_approach.setdefault(m.phase, {}).setdefault(m.turn, [])
        if (m.from_edge, m.to_edge) not in pairs:
            pairs.append((m.from_edge, m.to_edge))
    out: list[Arrival] = []
    for phase, turns in sorted(by_approach.items()):
        left_phase = next((l for l, th in LEFT_OF.items() if th == phase), None)
        left_src = channels(left_phase) if left_phase is not None else None
        groups = []
        through_src = channels(phase)
        if through_src is not None:
            shares = _shares(set(turns), with_left=left_src is None or "left" not in turns)
            groups.append((through_src, shares))
        if left_src is not None:
            groups.append((left_src, {"left": 1.0} if "left" in turns else _shares(set(turns), False)))
        for (function, chans), shares in groups:
            if not shares:
                continue
            times = np.sort(t[np.isin(ch, chans)])
            for k, (when, turn) in enumerate(zip(times.tolist(), assign_turns(len(times), shares))):
                pairs = turns[turn]
                from_edge, to_edge = pairs[k % len(pairs)]
                out.append(Arrival(when, from_edge, to_edge, turn, phase, function))
    return sorted(out, key=lambda a: a.detector_s)


def _lanes(net_file: Path) -> dict[str, tuple[float, float]]:
    """Edge -> (length m, speed m/s) of its first lane, for the normal edges of a net."""
    from networks.derive import _open

    out: dict[str, tuple[float, float]] = {}
    try:
        with _open(Path(net_file)) as fh:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "edge":
                    lane = elem.find("lane")
                    if elem.get("function") in (None, "normal") and lane is not None:
                        out[elem.get("id")] = (float(lane.get("length", 0)), float(lane.get("speed", 13.89)))
                    elem.clear()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{net_file}: not a readable SUMO network ({exc})") from None
    return out


def write_arrivals(arrivals: Sequence[Arrival], net_file: Path, path: Path) -> Path:
    """Write the arrivals as SUMO trips departing so that each passes its detector at the recorded time.

    :param arrivals: from :func:`recorded_arrivals`.
    :param net_file: the net (approach lane lengths and speeds).
    :param path: the route file.
    :raises InputError: no arrival at all.
    """
    if not arrivals:
        raise InputError("no recorded arrivals to build demand from: no detector of the configuration saw a vehicle "
                         "in the window")
    edges = _lanes(net_file)
    trips = []
    for k, a in enumerate(arrivals):
        length, speed = edges.get(a.from_edge, (0.0, 13.89))
        distance = ADVANCE_HEADWAY_S * speed if a.function == "advance" else STOPBAR_SETBACK_M
        lead = max(length - min(distance, length), 0.0) / max(speed, 1.0)
        trips.append((max(a.detector_s - lead, 0.0), k, a))
    trips.sort(key=lambda x: (x[0], x[1]))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             "<!-- what-if demand: one vehicle per recorded detector actuation; written by networks/whatif_arrivals.py -->",
             "<routes>"]
    for depart, k, a in trips:
        lines.append(f'    <trip id="a{k}.p{a.phase}.{a.turn}" depart="{depart:.2f}" from={quoteattr(a.from_edge)} '
                     f'to={quoteattr(a.to_edge)} departLane="best" departSpeed="max"/>')
    lines.append("</routes>")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
