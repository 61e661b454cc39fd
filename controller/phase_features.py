"""Detector data folded onto phase slots: a fixed layout that means the same at every intersection.

Every intersection is seen as :data:`MAX_PHASES` phase slots of the same features (zeros and a ``valid`` flag
of 0 beyond its own phases). The detectors are folded onto the phases whose green lanes they watch, so "slot k"
means the same thing at a 2-phase and at a 5-phase light and one learned policy can serve all of them. Pure
numpy: the training environment and the policy at the curb compute the very same vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.errors import InputError
from controller.intersection import Intersection
from controller.policies.base import DetectorReadings, Interval, SignalView, stopped_movements

#: Phase slots of the layout; an intersection with more green phases cannot use it.
MAX_PHASES = 8
#: Features per phase slot of the first layout, in order.
PHASE_FEATURES = ("valid", "current", "target", "green_elapsed", "queue", "vehicles", "stopbar_occupancy",
                  "advance_flow", "exit_vehicles")
#: Features of the whole intersection, before the slots.
HEAD_FEATURES = ("may_end_green", "in_clearance")
#: Vehicle spacing in a standing queue, metres (zone capacity = zone length / spacing).
JAM_SPACING_M = 7.5
#: Advance-loop flow that reads as 1.0, vehicles per second per loop (one vehicle every 2 s).
FLOW_SCALE_VPS = 0.5
#: Time since a phase was last served that reads as 1.0, seconds.
RED_ELAPSED_SCALE_S = 120.0
#: Max-pressure phase pressure that reads as 1.0 (and minus it as 0.0; no pressure reads 0.5), vehicles.
PRESSURE_SCALE_VEH = 40.0


@dataclass(frozen=True)
class FeatureLayout:
    """A named, versioned feature layout: what each number of the vector means. A policy file names the layout
    it was trained on, and the core builds exactly that vector for it.

    :param name: layout name, as stored in policy files.
    :param phase_features: features per phase slot, in order.
    :param head: features of the whole intersection, before the slots.
    """

    name: str
    phase_features: tuple[str, ...]
    head: tuple[str, ...] = HEAD_FEATURES

    @property
    def size(self) -> int:
        """Length of the feature vector."""
        return len(self.head) + MAX_PHASES * len(self.phase_features)

    def description(self) -> dict:
        """The layout as stored in a policy file."""
        return {"name": self.name, "size": self.size, "max_phases": MAX_PHASES, "head": list(self.head),
                "phase_features": list(self.phase_features)}

    def column(self, slot: int, feature: str) -> int:
        """Index in the vector of ``feature`` of phase slot ``slot``."""
        return len(self.head) + slot * len(self.phase_features) + self.phase_features.index(feature)


#: The first layout (policies trained before December 2026).
LAYOUT_V1 = FeatureLayout("phase-features-v1", PHASE_FEATURES)
#: v1 plus, per phase, the time since it was last served (green or clearing it; ÷ :data:`RED_ELAPSED_SCALE_S`)
#: and the longest radar queue on its lanes that not every phase serves (÷ zone capacity): a mean over a
#: phase's zones dilutes one long queue among the lanes it shares with other phases (a roundabout's ring).
LAYOUT_V2 = FeatureLayout("phase-features-v2", PHASE_FEATURES + ("red_elapsed", "queue_max"))
#: Features of :data:`LAYOUT_V3` that look at a phase from the phase green now: what changing to it would start
#: and what it would stop (:func:`controller.policies.base.stopped_movements`, the movements max-pressure and
#: actuated weigh). A movement green in both keeps flowing either way and is in neither.
CHANGE_FEATURES = ("queue_started", "occupancy_started", "queue_stopped", "occupancy_stopped")
#: v2 plus, per phase, the radar queue and stop-bar occupancy on the movements a change from the current phase to
#: it would start and on those it would stop (means, as ``queue`` and ``stopbar_occupancy``; 0 for the current
#: phase): at a roundabout whose ring lanes are green in most phases, the per-phase means cannot tell the phases
#: apart, these can.
LAYOUT_V3 = FeatureLayout("phase-features-v3", LAYOUT_V2.phase_features + CHANGE_FEATURES)
#: Features of :data:`LAYOUT_V4`: what max-pressure (``controller.policies.max_pressure``) makes of the same
#: detector data, decided at the policy's own decision interval.
MAX_PRESSURE_FEATURES = ("pressure", "maxpressure_choice")
#: v2 plus, per phase, its max-pressure pressure (0.5 + pressure / (2 × :data:`PRESSURE_SCALE_VEH`)) and whether
#: max-pressure, with its minimum green, discharge hold and longest-wait rule, would ask for it now (1 or 0): a
#: policy can follow max-pressure where it does best (a roundabout's ring) and depart from it elsewhere.
LAYOUT_V4 = FeatureLayout("phase-features-v4", LAYOUT_V2.phase_features + MAX_PRESSURE_FEATURES)
#: Layouts by name.
LAYOUTS = {layout.name: layout for layout in (LAYOUT_V1, LAYOUT_V2, LAYOUT_V3, LAYOUT_V4)}
#: The layout new training runs use.
DEFAULT_LAYOUT = LAYOUT_V2


class PhaseFeatures:
    """Computes the feature vector of one intersection.

    Per phase slot: valid, current, target (during a change), green elapsed / max green, then from the detectors
    on the lanes the phase serves: radar queue and vehicles (each ÷ zone capacity, mean over the zones), stop-bar
    occupancy (mean), advance-loop flow (vehicles per second ÷ :data:`FLOW_SCALE_VPS`, mean) and vehicles on its
    exit lanes (÷ capacity, mean); :data:`LAYOUT_V2` adds the seconds since the phase was last served
    (÷ :data:`RED_ELAPSED_SCALE_S`; counted from the first vector, at which every phase reads 0) and its longest
    queue; :data:`LAYOUT_V3` adds the :data:`CHANGE_FEATURES`, seen from the phase green now (or being left);
    :data:`LAYOUT_V4` adds to v2 the :data:`MAX_PRESSURE_FEATURES`, from a max-pressure policy fed each call's data.
    All clipped to [0, 1]. The time since service (and v4's max-pressure state: loop queue estimates, waits) is
    remembered between calls: build one object per intersection and run, and call it once at every decision.

    :param intersection: the intersection.
    :param layout: the feature layout.
    :raises InputError: for an intersection with more than :data:`MAX_PHASES` phases.
    """

    def __init__(self, intersection: Intersection, layout: FeatureLayout = DEFAULT_LAYOUT) -> None:
        phases, dets = intersection.phases, intersection.detectors
        if len(phases) > MAX_PHASES:
            raise InputError(f"traffic light {intersection.id!r} has {len(phases)} phases; the shared layout "
                             f"holds at most {MAX_PHASES}")
        vehicle = {l.index for l in intersection.links if l.kind == "vehicle"}
        capacity = np.array([max(d.length_m / JAM_SPACING_M, 1.0) for d in dets])

        def mean_over(kind: str, links: frozenset[int]) -> np.ndarray:
            """(detectors,): the mean over the detectors of ``kind`` on any of ``links`` (all zero if none)."""
            w = np.zeros(len(dets))
            mine = [k for k, d in enumerate(dets) if d.kind == kind and links.intersection(d.links)]
            if mine:
                w[mine] = 1.0 / len(mine)
            return w

        def weights(kind: str) -> np.ndarray:
            """(MAX_PHASES, detectors): the mean over the phase's detectors of ``kind``."""
            w = np.zeros((MAX_PHASES, len(dets)))
            for p, phase in enumerate(phases):
                w[p] = mean_over(kind, phase.greens & vehicle)
            return w

        self.n_phases = len(phases)
        self._w_zone = weights("radar") / capacity
        self._w_stopbar = weights("stopbar")
        self._w_flow = weights("advance") / FLOW_SCALE_VPS
        self._w_exit = weights("exit") / capacity
        self._max_green = np.array([p.max_green_s for p in phases])
        self.layout = layout
        if LAYOUTS.get(layout.name) != layout:
            raise InputError(f"unknown feature layout {layout.name!r}; known: {', '.join(LAYOUTS)}")
        self._v2 = layout in (LAYOUT_V2, LAYOUT_V3, LAYOUT_V4)
        self._v3 = layout == LAYOUT_V3
        self.intersection = intersection
        self._max_pressure = None
        if layout == LAYOUT_V4:
            from controller.policies.max_pressure import MaxPressurePolicy

            self._max_pressure = MaxPressurePolicy()
            self._max_pressure.reset(intersection, 1.0)
            self._pressure_col = layout.phase_features.index("pressure")
        if self._v3:  # [current, slot, feature, detector]: the change features' weights
            n = len(phases)
            self._w_change = np.zeros((n, MAX_PHASES, len(CHANGE_FEATURES), len(dets)))
            for c in range(n):
                for p in range(n):
                    if p == c:
                        continue
                    started, stopped = stopped_movements(intersection, p, c), stopped_movements(intersection, c, p)
                    self._w_change[c, p] = (mean_over("radar", started) / capacity, mean_over("stopbar", started),
                                            mean_over("radar", stopped) / capacity, mean_over("stopbar", stopped))
        serves = weights("radar") > 0
        shared = serves.sum(axis=0) >= max(len(phases), 2)  # zones every phase serves tell no phase apart
        self._queue_max_mask = serves & ~shared
        self._inv_capacity = 1.0 / capacity
        self._served_s = np.zeros(MAX_PHASES)
        self._started = False

    def reset(self) -> None:
        """Forget the service history (a new run)."""
        self._started = False
        if self._max_pressure is not None:
            self._max_pressure.reset(self.intersection, 1.0)

    def __call__(self, phase: int, target: int | None, in_green: bool, green_elapsed_s: float,
                 may_end_green: bool, readings: DetectorReadings, counted_s: float) -> np.ndarray:
        """The feature vector (float32, length ``layout.size``).

        :param phase: index of the phase green now (or being left).
        :param target: index of the phase being changed to (None or ``phase`` in green).
        :param in_green: False during yellow and all-red.
        :param green_elapsed_s: seconds the current phase has been green.
        :param may_end_green: min green (and pedestrian timing) done.
        :param readings: detector data; loop counts and occupancies cover the last ``counted_s`` seconds.
        :param counted_s: seconds the loop counts cover (to turn counts into flows).
        """
        slots = np.zeros((MAX_PHASES, len(self.layout.phase_features)))
        slots[: self.n_phases, 0] = 1.0
        slots[phase, 1] = 1.0
        if not in_green and target is not None:
            slots[target, 2] = 1.0
        slots[phase, 3] = min(green_elapsed_s / self._max_green[phase], 1.0)
        slots[:, 4] = self._w_zone @ readings.halting
        slots[:, 5] = self._w_zone @ readings.count
        slots[:, 6] = self._w_stopbar @ readings.occupancy
        slots[:, 7] = (self._w_flow @ readings.count) / max(counted_s, 1e-9)
        slots[:, 8] = self._w_exit @ readings.count
        if self._v2:
            now = readings.time_s
            if not self._started:
                self._served_s[:] = now
                self._started = True
            self._served_s[phase] = now  # green, or clearing it
            slots[: self.n_phases, 9] = (now - self._served_s[: self.n_phases]) / RED_ELAPSED_SCALE_S
            if self._queue_max_mask.any():
                slots[:, 10] = np.where(self._queue_max_mask, readings.halting * self._inv_capacity, 0.0).max(axis=1)
        if self._v3:
            w = self._w_change[phase]
            slots[:, 11] = w[:, 0] @ readings.halting
            slots[:, 12] = w[:, 1] @ readings.occupancy
            slots[:, 13] = w[:, 2] @ readings.halting
            slots[:, 14] = w[:, 3] @ readings.occupancy
        if self._max_pressure is not None:
            mp, col = self._max_pressure, self._pressure_col
            # all-red is taken as yellow (the features know only "not green"): max-pressure then follows the
            # change either way, and counts the vehicles of the movements being cleared as not yet waiting
            interval = Interval.GREEN if in_green else Interval.YELLOW
            view = SignalView(self.intersection, readings, phase, phase if target is None else target, interval,
                              green_elapsed_s if in_green else 0.0, may_end_green)
            choice = mp.decide(view)
            slots[: self.n_phases, col] = 0.5 + mp.pressures / (2.0 * PRESSURE_SCALE_VEH)
            slots[choice, col + 1] = 1.0
        out = np.empty(self.layout.size, dtype=np.float32)
        out[0] = float(may_end_green)
        out[1] = float(not in_green)
        out[len(HEAD_FEATURES):] = np.clip(slots, 0.0, 1.0).ravel()
        return out
