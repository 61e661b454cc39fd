"""The one decision interface every policy answers, and the detector data it may see.

Policies see only what field detectors and radar deliver (:class:`DetectorReadings`) plus the
signal status the controller itself knows. They never see simulator ground truth.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from controller.intersection import Intersection


class Interval(enum.Enum):
    """Where the phase machine is within a phase change."""

    GREEN = "green"
    YELLOW = "yellow"
    ALL_RED = "all_red"
    FLASH = "flash"


@dataclass
class DetectorReadings:
    """One step of detector data for one intersection; arrays follow ``Intersection.detectors``.

    :param time_s: controller clock, seconds.
    :param occupied: True if the detector saw a vehicle since the previous reading (loop actuation or
        occupancy, zone not empty).
    :param count: loops: vehicles that passed since the previous reading; zones: vehicles in the zone now.
    :param halting: zones: queued vehicles as the zone defines them (SUMO's lane-area default: slower
        than 1.39 m/s for at least 1 s); loops: 0.
    :param occupancy: stop-bar loops: fraction of the last step the loop was occupied, 0..1; others 0.
    :param speed_mps: approach radar zones: mean speed, metres per second (-1 when empty or not measured).
    """

    time_s: float
    occupied: np.ndarray
    count: np.ndarray
    halting: np.ndarray
    occupancy: np.ndarray
    speed_mps: np.ndarray

    @classmethod
    def empty(cls, n_detectors: int, time_s: float = 0.0) -> "DetectorReadings":
        """Readings with no vehicle anywhere (useful for tests and for a start-up step)."""
        z = np.zeros(n_detectors)
        return cls(time_s, np.zeros(n_detectors, dtype=bool), z.copy(), z.copy(), z.copy(), -np.ones(n_detectors))


def presence(count: np.ndarray, occupancy: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Detector presence (``DetectorReadings.occupied``) from counts and occupancies over one reading period: a
    vehicle counted in it (a loop actuation, a zone not empty) or occupancy above zero.

    :param count: per detector, vehicles counted in the period (loops) or present (zones).
    :param occupancy: per detector, occupied fraction, 0..1.
    :param out: a boolean array to write into (reused buffers), or None for a new one.
    """
    return np.logical_or(np.asarray(count) > 0, np.asarray(occupancy) > 0, out=out)


@dataclass
class SignalView:
    """What a policy may look at when deciding.

    :param intersection: the intersection description (phases, detectors, timing).
    :param readings: this step's detector data.
    :param phase: index of the phase now green, or being left during yellow/all-red.
    :param next_phase: index of the phase the machine is changing to (equals ``phase`` in green).
    :param interval: green, yellow, all-red or flash.
    :param green_elapsed_s: seconds the current phase has been green (0 outside green).
    :param min_green_done: True when the current green may be ended now.
    :param pedestrian_calls: phases (indices) with a pedestrian push-button call waiting.
    """

    intersection: Intersection
    readings: DetectorReadings
    phase: int
    next_phase: int
    interval: Interval
    green_elapsed_s: float
    min_green_done: bool
    pedestrian_calls: frozenset[int] = frozenset()


class GapTimers:
    """When each detector last saw a vehicle, and the gap since then over a set of them: the passage (gap) timers
    that actuated control extends on and max-pressure's discharge hold watches.

    :param n_detectors: the intersection's detectors (``Intersection.detectors`` order).
    """

    def __init__(self, n_detectors: int) -> None:
        self.last_s = np.full(n_detectors, -np.inf)

    def actuated(self, on: np.ndarray, now_s: float) -> None:
        """Detectors ``on`` (boolean mask) saw a vehicle at ``now_s`` (controller clock, seconds)."""
        self.last_s[on] = now_s

    def gap_s(self, detectors: np.ndarray, now_s: float) -> float:
        """Seconds since any of ``detectors`` (indices) last saw a vehicle; infinite if none ever did or none given."""
        return now_s - self.last_s[detectors].max(initial=-np.inf)


def green_in(intersection: Intersection) -> np.ndarray:
    """``[i, k]``: detector *k* has a link (of any kind) green in phase *i*; its vehicles are then being served, not
    waiting.

    :param intersection: the intersection.
    """
    phases, dets = intersection.phases, intersection.detectors
    return np.array([[bool(p.greens & set(d.links)) for d in dets] for p in phases],
                    dtype=bool).reshape(len(phases), len(dets))


def stopped_movements(intersection: Intersection, p: int, q: int) -> frozenset[int]:
    """The vehicle links (movements) that ending phase *p* for phase *q* stops: green in *p* and not in *q*, or
    protected in *p* and only permissive in *q* (a protected left that turns permissive must then yield). Read the
    other way round, ``stopped_movements(i, q, p)`` are the movements the change *starts* (or protects).

    :param intersection: the intersection.
    :param p: index of the phase being ended.
    :param q: index of the phase that follows.
    """
    phases, links = intersection.phases, intersection.links
    now, then = phases[p].state, phases[q].state
    return frozenset(l for l in phases[p].greens if links[l].kind == "vehicle"
                     and (then[l] not in "Gg" or (now[l] == "G" and then[l] == "g")))


def loops_on_stopped_movements(intersection: Intersection, *candidates: np.ndarray) -> np.ndarray:
    """``[p, q, k]``: detector *k* watches a movement that ending phase *p* for phase *q* would stop (a vehicle
    movement green in *p* and not in *q*, or protected in *p* and only permissive in *q*): the loops whose gaps may
    decide whether *p* ends. A movement green in both (a roundabout's circulating lane, a right-turn lane green in
    two phases) keeps flowing whatever is decided, and its steady traffic must not hold *p*'s green.

    :param intersection: the intersection.
    :param candidates: ``[p, k]`` masks of the loops a policy would otherwise watch for phase *p*, in order of
        preference: the first one with a loop on a stopped movement is used, restricted to those loops. When none
        has one (the stopped movements have no loop) the first mask stands in whole; when *p*'s vehicle movements
        all stay green in *q* the result is empty (nothing would be stopped).
    """
    dets = intersection.detectors
    n = len(intersection.phases)
    out = np.zeros((n, n, len(dets)), dtype=bool)
    for p in range(n):
        for q in range(n):
            stopped = stopped_movements(intersection, p, q)
            if not stopped:
                continue
            on_stopped = np.array([bool(stopped & set(d.links)) for d in dets], dtype=bool)
            chosen = next((mask[p] & on_stopped for mask in candidates if (mask[p] & on_stopped).any()), None)
            out[p, q] = candidates[0][p] if chosen is None else chosen
    return out


def undetected_phases(intersection: Intersection) -> np.ndarray:
    """``[i]``: phase *i* has vehicle movements and no approach detector (stop-bar or advance loop, radar zone) on any
    of them: no detector tells whether anyone waits for it. Only a network's own partial layout (or an intersection
    file) leaves such phases; the automatic set watches every approach lane. A link index no connection uses has no
    lane and is no movement.

    :param intersection: the intersection.
    """
    links = intersection.links
    watched = {l for d in intersection.detectors if d.kind != "exit" for l in d.links}
    moving = [{l for l in p.greens if links[l].kind == "vehicle" and links[l].from_lane} for p in intersection.phases]
    return np.array([bool(m) and not m & watched for m in moving], dtype=bool)


class Policy(ABC):
    """A signal-timing policy. One typed call, one return shape, for classical and learned policies alike."""

    #: Short name used on the command line (``--controller NAME``).
    name: str = ""

    def reset(self, intersection: Intersection, step_s: float) -> None:
        """Prepare for a new run on ``intersection``; ``step_s`` is the decision step in seconds."""
        self.intersection = intersection
        self.step_s = step_s

    @abstractmethod
    def decide(self, view: SignalView) -> int:
        """Return the index of the phase to serve next; returning ``view.phase`` means "keep/extend it".

        The phase machine decides *when* the request takes effect (min green, clearances, max green).
        """
