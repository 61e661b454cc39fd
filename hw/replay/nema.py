"""The core's intersection model of a recorded signal, built from its detector configuration and its log: one
signal group per NEMA phase, the standard dual-ring compatibility, ring-stepping phase combinations, field or
default timing.

* **Links**: one vehicle link (signal group) per NEMA phase present in the configuration or shown green in the
  log. Pedestrian indications are not modelled (the recorded 21-23 events are not replayed).
* **Compatibility**: NEMA dual ring (ring 1: phases 1-4, ring 2: 5-8; barrier 1: 1, 2, 5, 6; barrier 2: 3, 4,
  7, 8): two phases may be green together when they are in the same barrier and different rings.
* **Core phases**: per barrier, the concurrent pairs a lead-lead cycle steps through, ring 2 moving first:
  (first of ring 1, first of ring 2), then ring 2 advances to its last phase, then ring 1 does; e.g. all eight
  phases give (1,5), (1,6), (2,6), (3,7), (3,8), (4,8), and phases 2, 5, 6, 8 give (2,5), (2,6), (8). Every NEMA
  phase is served once per cycle; the lagging pair of a lead-lag plan (2,5 after 2,6) is not offered.
* **Timing**: yellow and red clearance per phase from the log (median of its 8->9 and 10->11 intervals) where it
  has them, else ``controller/timing.py`` at 50 km/h across a 24 m junction (3.3 s -> 4 s yellow, 2.2 s -> 3 s
  all-red, rounded up to the 1 s step); min green 5 s; max green 60 s for through phases (even numbers) and 30 s
  for protected lefts (odd), common NEMA settings; the ``fixed`` policy's program green of a pair is the shorter
  recorded mean green of its two phases (30 s without a record), clamped to min..max.
* **Detectors**: one per configured channel, on the phase's link. Advance channels become ``advance`` loops
  60 m upstream; presence, stop-bar count and yellow-red channels become ``stopbar`` loops. Max-pressure pairs
  the k-th advance loop of a phase with a stop-bar loop on one "lane" (stop-bar count channels first) and
  estimates the queue between them by input-output counting (``controller/policies/max_pressure.py``). Decision
  replay does not use that for max-pressure (the recorded stop-bar departures followed the field's signal): it
  adds one approach zone per phase fed by a point queue (:class:`hw.replay.backend.PointQueues`). There are no
  exit detectors, so the downstream term of max-pressure is zero: it serves the largest estimated queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from controller.errors import InputError
from controller.intersection import Detector, Intersection, Phase, SignalLink
from controller.timing import red_clearance_s, yellow_change_s
from hw.replay.detector_config import DetectorChannel
from hw.replay.events import EventTable

RING = {1: 1, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 2}
BARRIER = {1: 1, 2: 1, 5: 1, 6: 1, 3: 2, 4: 2, 7: 2, 8: 2}
#: default approach speed (m/s, 50 km/h) and junction width (m) for clearances when the log has none
DEFAULT_SPEED_MPS = 50 / 3.6
DEFAULT_CROSSING_M = 24.0
MIN_GREEN_S = 5.0
MAX_GREEN_THROUGH_S = 60.0
MAX_GREEN_LEFT_S = 30.0
#: fixed program green without a recorded one, seconds
DEFAULT_PROGRAM_GREEN_S = 30.0
#: assumed distance of an advance loop from the stop line, metres (sets max-pressure's queue storage)
ADVANCE_DISTANCE_M = 60.0


@dataclass(frozen=True)
class NemaIntersection:
    """The model of one recorded signal and how its numbers map.

    :param intersection: the core's intersection.
    :param phases: NEMA phase of each link (link ``k`` is phase ``phases[k]``).
    :param combos: NEMA phases green in each core phase.
    :param channels: detector channel of each core detector (0: a modelled queue zone, no channel).
    """

    intersection: Intersection
    phases: tuple[int, ...]
    combos: tuple[tuple[int, ...], ...]
    channels: tuple[int, ...]


def ring_combos(phases: Iterable[int]) -> list[tuple[int, ...]]:
    """The core phases (concurrent NEMA phases) for the phases present, ring 2 stepping first in each barrier.

    >>> ring_combos([2, 5, 6, 8])
    [(2, 5), (2, 6), (8,)]
    >>> ring_combos(range(1, 9))
    [(1, 5), (1, 6), (2, 6), (3, 7), (3, 8), (4, 8)]

    :param phases: NEMA phases 1-8.
    :raises InputError: a phase outside 1-8.
    """
    present = sorted(set(int(p) for p in phases))
    bad = [p for p in present if p not in RING]
    if bad:
        raise InputError(f"NEMA phase {bad[0]}: decision replay knows phases 1-8 (dual ring, two barriers)")
    out: list[tuple[int, ...]] = []
    for barrier in (1, 2):
        r1 = [p for p in present if BARRIER[p] == barrier and RING[p] == 1]
        r2 = [p for p in present if BARRIER[p] == barrier and RING[p] == 2]
        if not r1 or not r2:
            out += [(p,) for p in r1 or r2]
            continue
        steps = [(r1[0], b) for b in r2] + [(a, r2[-1]) for a in r1[1:]]
        out += steps
    return out


def _intervals(table: EventTable, start: int, end: int, phase: int, cap_s: float) -> np.ndarray:
    """Durations from each ``start`` event of ``phase`` to the first ``end`` event after it, at most ``cap_s``
    (a longer one means the end event is missing from the log)."""
    mask = table.param == phase
    t0 = table.time_s[(table.code == start) & mask]
    t1 = table.time_s[(table.code == end) & mask]
    if not len(t0) or not len(t1):
        return np.zeros(0)
    k = np.searchsorted(t1, t0, side="left")
    ok = k < len(t1)
    d = t1[k[ok]] - t0[ok]
    return d[(d > 0) & (d <= cap_s)]


def _median(d: np.ndarray) -> float | None:
    return float(np.median(d)) if len(d) else None


def nema_intersection(signal: str, channels: Sequence[DetectorChannel], log: EventTable,
                      queue_zones: bool = False) -> NemaIntersection:
    """Build the model of ``signal`` (see the module docstring).

    :param signal: the signal id.
    :param channels: its detector channels.
    :param log: its recorded events (for the phases shown green and the recorded clearances).
    :param queue_zones: add one approach "radar zone" per NEMA phase (channel 0 in :attr:`NemaIntersection.channels`)
        whose count the replay fills from :class:`hw.replay.backend.PointQueues` (for max-pressure).
    :raises InputError: no phase at all, or a phase outside 1-8.
    """
    channels = [c for c in channels if c.signal == signal]
    green = set(log.param[log.code == 1].tolist())
    phases = sorted({c.phase for c in channels} | green)
    if not phases:
        raise InputError(f"signal {signal}: no phase in its detector configuration or its log")
    combos = ring_combos(phases)
    index = {p: k for k, p in enumerate(phases)}
    links = []
    for p in phases:
        yellow = _median(_intervals(log, 8, 9, p, 10.0)) or yellow_change_s(DEFAULT_SPEED_MPS)
        red = _median(_intervals(log, 10, 11, p, 10.0))
        red = red if red is not None else red_clearance_s(DEFAULT_CROSSING_M, DEFAULT_SPEED_MPS)
        links.append(SignalLink(index[p], "vehicle", f"phase{p}", f"phase{p}-exit", DEFAULT_SPEED_MPS, yellow, red))
    compatible = tuple(tuple(a == b or (BARRIER[a] == BARRIER[b] and RING[a] != RING[b]) for b in phases)
                       for a in phases)
    core_phases = []
    for combo in combos:
        state = "".join("G" if p in combo else "r" for p in phases)
        max_green = min(MAX_GREEN_LEFT_S if p % 2 else MAX_GREEN_THROUGH_S for p in combo)
        greens = [float(d.mean()) for d in (_intervals(log, 1, 8, p, 600.0) for p in combo) if len(d)]
        program = min(greens) if greens else DEFAULT_PROGRAM_GREEN_S
        program = min(max(program, MIN_GREEN_S), max_green)
        core_phases.append(Phase(len(core_phases) + 1, state, "+".join(map(str, combo)), MIN_GREEN_S, max_green,
                                 program))
    detectors, det_channels = _detectors(channels, index)
    if queue_zones:
        for p in phases:
            detectors.append(Detector(f"queue{p}", "radar", f"phase{p}-queue", (index[p],), 0.0, ADVANCE_DISTANCE_M))
            det_channels.append(0)
    major = next((k for k, c in enumerate(combos) if 2 in c or 6 in c), 0)
    inter = Intersection(str(signal), tuple(links), tuple(core_phases), compatible, tuple(detectors), major)
    return NemaIntersection(inter, tuple(phases), tuple(combos), tuple(det_channels))


def _detectors(channels: Sequence[DetectorChannel], index: dict[int, int]) -> tuple[list[Detector], list[int]]:
    detectors, numbers = [], []
    for phase in sorted({c.phase for c in channels}):
        mine = [c for c in channels if c.phase == phase]
        advance = [c for c in mine if c.function == "advance"]
        stopbar = ([c for c in mine if c.function == "stop_bar_count"] + [c for c in mine if c.function == "presence"]
                   + [c for c in mine if c.function == "yellow_red"])
        lanes = max(len(advance), 1)
        for k, c in enumerate(advance):
            detectors.append(Detector(f"ch{c.channel}", "advance", f"phase{phase}-lane{k}", (index[phase],),
                                      ADVANCE_DISTANCE_M))
            numbers.append(c.channel)
        for k, c in enumerate(stopbar):
            detectors.append(Detector(f"ch{c.channel}", "stopbar", f"phase{phase}-lane{k % lanes}", (index[phase],),
                                      0.0, 6.0))
            numbers.append(c.channel)
    return detectors, numbers
