"""Max-pressure control (P. Varaiya, "Max pressure control of a network of signalized intersections",
Transportation Research Part C 36, 2013), from detector counts.

Pressure of a movement (link) *l* = vehicles waiting to use it − vehicles on its outgoing lane; the
pressure of a phase is the sum over its green vehicle links. Once the current green has run its
minimum, the policy asks for the phase of highest pressure; a tie keeps the current phase, so the
signal does not switch for nothing.

Counting (all vehicles, not only halted ones: the classic definition, which also did better in our
baselines, see ``reference/learning.md``):

* **incoming**: ``count`` of the approach radar zone on the link's lane. A lane feeding several links
  (a shared through/right lane) is not counted once per link: the detectors cannot tell which
  movement each vehicle will take, so the lane's count is split equally over its vehicle links.
  A phase serving every movement of the lane therefore sees the lane's vehicles exactly once.
* **outgoing**: ``count`` of the exit zone(s) on the link's outgoing lane, subtracted in full for
  each link, as in Varaiya's per-movement pressure (every movement into that lane adds to it).
* **without radar** (a link no radar zone covers): a queue proxy from the lane's loops. With an
  advance and a stop-bar loop, the vehicles between them are estimated by input-output counting
  (advance count in − stop-bar count out), kept within [1 if the stop-bar is occupied else 0,
  storage + 1] where storage is the gap between the loops over a 7.5 m jam spacing, and set to the
  maximum when a vehicle stands on the advance loop (the queue has reached it). With a single loop,
  its occupancy fraction (0..1) stands in. No exit detection means no downstream term: the policy
  then serves the longest estimated queue.

**Discharge hold.** Varaiya's policy re-decides every step once the minimum green has run, so a green is ended as
soon as its queue, being served, falls just below another phase's: greens of a few seconds, each followed by
several seconds of yellow and all-red, and capacity collapses (measured on the RESCO and sumo-rl networks: on
sumo-rl's single intersection 786 s of delay, 1,066 vehicles never inserted in an hour, against 19 s with the
hold). So a green is kept while its stop-bar loops still see vehicles crossing (one within ``gap_s``: the queue is
discharging, and ending it now wastes the rest of the queue's saturation flow for the change's lost time); once it
gaps out, or at max green, the phase of highest pressure is served. Only the loops of the movements the change
would stop count: a movement green in the phase of highest pressure too (a roundabout's circulating lane) keeps
discharging whatever is decided, and its steady traffic held the Óvalo de Miraflores' greens long.
``maxpressure-varaiya`` is the policy as published (``gap_s = 0``).

**Longest wait.** Max-pressure as published has no notion of fairness: a phase whose measured pressure stays low
(a side street's few vehicles, or a queue longer than its radar zone, whose count is capped by the zone) can lose
every comparison for as long as the main street keeps its queue, and is starved. So once a vehicle has stood
``max_wait_s`` on a stop-bar loop of a phase's movements (a phase without one: halted in its radar zone) while none
of the loop's movements was green, that phase is served next, as soon as the current green has run its minimum,
ahead of pressure and of the discharge hold; the longest standing first. A loop that clears (the vehicle left, e.g.
turning permissively in another phase) ends the wait. ``maxpressure-varaiya`` has no such bound.

**Blind phases.** A phase whose vehicle movements no detector watches (a network's own layout that detects the side
street only) has no pressure to weigh: it would never be served. It is treated as actuated control treats it (max
recall): the major phase (the undetected main street of a semi-actuated layout) is always called, as if its
pressure were infinite, so it comes back whenever another green ends (a gap-out after the discharge hold, a max-out)
and is held to its maximum green (max recall); another blind phase (a turning phase nobody detects) is taken to have a
vehicle waiting since its last green, so it is served once it has been red ``max_wait_s``, for its minimum green.
``maxpressure-varaiya`` has no such rule (a blind phase gets only what a max-out of another phase forces, at its
minimum green).

The policy must be asked every step when it relies on loop counts (they cover the step just ended).
"""

from __future__ import annotations

import numpy as np

from controller.intersection import Intersection
from controller.discharge_hold import DischargeHold
from controller.policies.base import Interval, Policy, SignalView, green_in, undetected_phases
from controller.timing import max_greens_s

#: Space one queued vehicle takes, metres (a car plus the gap to the next; the usual jam-density value).
JAM_SPACING_M = 7.5
#: Longest a vehicle waits before its phase is served whatever the pressures, seconds (about one long cycle).
MAX_WAIT_S = 120.0
#: Occupancy above which a vehicle is taken to be standing on the advance loop (queue spill-back).
STANDING_OCCUPANCY = 0.95
_EPS = 1e-9


class _LoopQueue:
    """Input-output queue estimate for one lane without radar (see the module docstring)."""

    def __init__(self, stopbar: int | None, advance: int | None, storage: float, links: np.ndarray) -> None:
        self.stopbar, self.advance, self.storage, self.links = stopbar, advance, storage, links
        self.queue = 0.0

    def update(self, occupied: np.ndarray, count: np.ndarray, occupancy: np.ndarray) -> float:
        sb, adv = self.stopbar, self.advance
        if sb is not None and adv is not None:
            low = 1.0 if occupied[sb] else 0.0
            high = self.storage + 1.0
            q = self.queue + float(count[adv]) - float(count[sb])
            if occupancy[adv] >= STANDING_OCCUPANCY:
                q = high
            self.queue = min(max(q, low), high)
        else:
            self.queue = float(occupancy[sb if sb is not None else adv])
        return self.queue


class MaxPressurePolicy(Policy):
    """Varaiya's max-pressure with a minimum green and a discharge hold, from radar zone counts (loops as a fallback).

    :param use_halting: count only halted vehicles in the zones (``halting``) instead of all of them
        (``count``, the default and the classic definition); kept for comparisons.
    :param gap_s: discharge hold: after its minimum green, a green is kept while a stop-bar loop of its vehicle
        movements saw a vehicle less than this many seconds ago (0: no hold, Varaiya's policy as published).
    :param max_wait_s: longest wait, seconds: a phase with a vehicle waiting this long is served next, whatever the
        pressures (``inf``: no bound, Varaiya's policy as published).
    """

    name = "maxpressure"

    def __init__(self, use_halting: bool = False, gap_s: float = 2.0, max_wait_s: float = MAX_WAIT_S) -> None:
        if not gap_s >= 0:
            raise ValueError(f"discharge gap {gap_s!r} must be 0 or more seconds")
        if not max_wait_s > 0:
            raise ValueError(f"longest wait {max_wait_s!r} must be more than 0 seconds")
        self.use_halting = use_halting
        self.gap_s = gap_s
        self.max_wait_s = max_wait_s

    def reset(self, intersection: Intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        links, dets, phases = intersection.links, intersection.detectors, intersection.phases
        n_links, n_dets = len(links), len(dets)
        vehicle = np.array([lk.kind == "vehicle" for lk in links], dtype=bool)
        #: greens[i, l]: vehicle link l is green in phase i
        self.greens = np.array([[l in p.greens and vehicle[l] for l in range(n_links)] for p in phases], dtype=float)
        self.w_in = np.zeros((n_links, n_dets))
        self.w_out = np.zeros((n_links, n_dets))
        for k, d in enumerate(dets):
            served = [l for l in d.links if vehicle[l]]
            if d.kind == "radar" and served:
                self.w_in[served, k] += 1.0 / len(served)
            elif d.kind == "exit":
                self.w_out[served, k] = 1.0
        self._loops = self._loop_queues(intersection, vehicle, covered=self.w_in.any(axis=1))
        self._max_s = max_greens_s(phases, step_s)
        self.pressures = np.zeros(len(phases))
        # serves[i, k]: detector k sits on a lane of one of phase i's green vehicle movements
        serves = np.array([[any(vehicle[l] and l in p.greens for l in d.links) for d in dets] for p in phases],
                          dtype=bool).reshape(len(phases), n_dets)
        stopbar = np.array([d.kind == "stopbar" for d in dets], dtype=bool)
        radar = np.array([d.kind == "radar" for d in dets], dtype=bool)
        #: the discharge hold: a green is kept while a stop-bar loop on a movement its end would stop sees vehicles
        self._hold = DischargeHold(intersection, self.gap_s, step_s) if self.gap_s > 0 else None
        #: waits_on[i, k]: detector k shows the vehicles waiting for phase i: its stop-bar loops (a phase without
        #: one: its radar zones' halted vehicles), while none of the loop's movements is green
        self._waits_on = serves & stopbar[None, :]
        for i in range(len(phases)):
            if not self._waits_on[i].any():
                self._waits_on[i] = serves[i] & radar
        self._watch_radar = radar
        self._green_in = green_in(intersection)
        #: per detector, since when a vehicle has stood on it without a green, seconds (inf: none standing)
        self.standing_since = np.full(n_dets, np.inf)
        #: blind[i]: phase i has vehicle movements and no detector watching any of them (no pressure to weigh)
        self.blind = undetected_phases(intersection)
        self._any_blind = bool(self.blind.any())
        #: the major phase, when blind, is always called and held to its maximum green (max recall; not in Varaiya's)
        self._recalled = self.blind & (np.arange(len(phases)) == intersection.major_phase) & (self.max_wait_s < np.inf)
        self._any_recalled = bool(self._recalled.any())
        #: per phase, when its last green ended, seconds (None until the first decision: then "since the start")
        self._green_at: np.ndarray | None = None

    @staticmethod
    def _loop_queues(intersection: Intersection, vehicle: np.ndarray, covered: np.ndarray) -> list[_LoopQueue]:
        """One estimator per lane whose links no radar zone covers but a stop-bar/advance loop does."""
        by_lane: dict[str, dict] = {}
        for k, d in enumerate(intersection.detectors):
            if d.kind not in ("stopbar", "advance"):
                continue
            served = [l for l in d.links if vehicle[l] and not covered[l]]
            if not served:
                continue
            lane = by_lane.setdefault(d.lane, {"stopbar": None, "advance": None, "links": set()})
            if lane[d.kind] is None:
                lane[d.kind] = k
            lane["links"].update(served)
        queues = []
        for lane in by_lane.values():
            sb, adv = lane["stopbar"], lane["advance"]
            gap_m = 0.0
            if sb is not None and adv is not None:
                gap_m = intersection.detectors[adv].distance_m - intersection.detectors[sb].distance_m
            queues.append(_LoopQueue(sb, adv, max(gap_m / JAM_SPACING_M, 1.0), np.array(sorted(lane["links"]))))
        return queues

    def link_pressures(self, view: SignalView) -> np.ndarray:
        """Per link: estimated vehicles upstream minus vehicles on the outgoing lane (0 for pedestrian links).

        Updates the loop estimators, so call it once per step (``decide`` does).
        """
        r = view.readings
        zone = np.asarray(r.halting if self.use_halting else r.count, dtype=float)
        upstream = self.w_in @ zone
        for lane in self._loops:
            upstream[lane.links] += lane.update(r.occupied, r.count, r.occupancy) / len(lane.links)
        # exit zones: all vehicles on the outgoing lane, halted or not (they all take its space)
        return upstream - self.w_out @ np.asarray(r.count, dtype=float)

    def _update_waits(self, view: SignalView) -> None:
        """Follow every watched detector: standing since when (a loop occupied, a radar zone with halted vehicles),
        while none of its movements is green or yellow; cleared as soon as it is free or served."""
        r = view.readings
        standing = np.where(self._watch_radar, np.asarray(r.halting) > 0, np.asarray(r.occupied, dtype=bool))
        if view.interval is Interval.GREEN or view.interval is Interval.YELLOW:
            standing &= ~self._green_in[view.phase]  # those vehicles are moving (or clearing)
        self.standing_since[~standing] = np.inf
        self.standing_since[standing] = np.minimum(self.standing_since[standing], r.time_s)

    def _longest_waiting(self, view: SignalView) -> int | None:
        """The phase (not the current one) with a vehicle standing ``max_wait_s`` or more, longest first; or None."""
        since = np.where(self._waits_on, self.standing_since[None, :], np.inf).min(axis=1, initial=np.inf)
        if self._any_blind:  # a blind phase: taken to have had a vehicle waiting since its last green
            since = np.where(self.blind, np.minimum(since, self._green_at), since)
        waited = view.readings.time_s - since
        waited[view.phase] = -np.inf
        best = int(np.argmax(waited))
        return best if waited[best] + _EPS >= self.max_wait_s else None

    def decide(self, view: SignalView) -> int:
        self.pressures = self.greens @ self.link_pressures(view)  # every step, so the loop estimates stay current
        readings = view.readings
        if self._hold is not None:
            self._hold.update(readings)
        self._update_waits(view)
        if self._green_at is None:
            self._green_at = np.full(len(self.pressures), readings.time_s)
        if view.interval is not Interval.GREEN:
            return view.next_phase
        p = view.phase
        self._green_at[p] = readings.time_s
        if not view.min_green_done:
            return p
        maxing_out = view.green_elapsed_s + _EPS >= self._max_s[p]
        if self._recalled[p] and not maxing_out:
            return p  # max recall: nothing tells how many wait, so the whole maximum green
        starved = self._longest_waiting(view)
        if starved is not None:
            return starved
        pressures = self.pressures
        if self._any_recalled:  # an undetected main street is always called: it comes back after every other green
            pressures = np.where(self._recalled, np.inf, pressures)
        if maxing_out:
            # the machine ends this green now whatever we ask: choose where it goes rather than take the next in list
            others = pressures.copy()
            others[p] = -np.inf
            return int(np.argmax(others))
        best = int(np.argmax(pressures))
        if not pressures[best] > pressures[p] + _EPS:
            return p
        # kept while the queue that changing to best would stop is still discharging over the stop bar
        return best if self._hold is None else self._hold.choose(view, best)


class VaraiyaMaxPressurePolicy(MaxPressurePolicy):
    """Max-pressure as published: no discharge hold (re-decides every step once the minimum green has run) and no
    bound on a phase's wait.

    :param use_halting: as :class:`MaxPressurePolicy`.
    """

    name = "maxpressure-varaiya"

    def __init__(self, use_halting: bool = False) -> None:
        super().__init__(use_halting, gap_s=0.0, max_wait_s=np.inf)


class SpillbackMaxPressurePolicy(MaxPressurePolicy):
    """Max-pressure that never pushes traffic into a nearly full outgoing lane: a movement whose exit zone holds
    ``full_fraction`` of its capacity (zone length over a 7.5 m jam spacing) or more adds no positive pressure.

    Plain max-pressure assumes links of unbounded capacity: a long queue upstream outweighs a full exit, and the
    phase keeps sending vehicles that cannot leave the junction, which then blocks. A simple form of capacity-aware
    back-pressure (J. Gregoire et al., "Capacity-aware backpressure traffic signal control", IEEE Transactions on
    Control of Network Systems 2, 2015). Measured on Miraflores: see the README (Results).

    :param full_fraction: exit-zone fullness (vehicles / capacity) from which a movement's pressure is cut to at most
        0 (0 < fraction; default 0.8).
    :param use_halting: as :class:`MaxPressurePolicy`.
    """

    name = "maxpressure-spillback"

    def __init__(self, full_fraction: float = 0.8, use_halting: bool = False) -> None:
        super().__init__(use_halting)
        if not full_fraction > 0:
            raise ValueError(f"full fraction {full_fraction!r} must be positive")
        self.full_fraction = full_fraction

    def reset(self, intersection: Intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        capacity = np.array([max(d.length_m / JAM_SPACING_M, 1.0) for d in intersection.detectors])
        #: w_full[l, k]: exit zone k's vehicles as a fraction of its capacity, for link l
        self.w_full = self.w_out / capacity

    def link_pressures(self, view: SignalView) -> np.ndarray:
        pressure = super().link_pressures(view)
        full = self.w_full @ np.asarray(view.readings.count, dtype=float) >= self.full_fraction
        return np.where(full, np.minimum(pressure, 0.0), pressure)
