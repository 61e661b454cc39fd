"""Detector data folded onto phase slots: a fixed layout that means the same at every intersection.

Every intersection is seen as :data:`MAX_PHASES` phase slots of the same features (zeros and a ``valid`` flag
of 0 beyond its own phases). The detectors are folded onto the phases whose green lanes they watch, so "slot k"
means the same thing at a 2-phase and at a 5-phase light and one learned policy can serve all of them. Pure
numpy: the training environment and the policy at the curb compute the very same vector.
"""

from __future__ import annotations

import numpy as np

from controller.errors import InputError
from controller.intersection import Intersection
from controller.policies.base import DetectorReadings

#: Phase slots of the layout; an intersection with more green phases cannot use it.
MAX_PHASES = 8
#: Features per phase slot, in order.
PHASE_FEATURES = ("valid", "current", "target", "green_elapsed", "queue", "vehicles", "stopbar_occupancy",
                  "advance_flow", "exit_vehicles")
#: Features of the whole intersection, before the slots.
HEAD_FEATURES = ("may_end_green", "in_clearance")
#: Size of the feature vector.
SIZE = len(HEAD_FEATURES) + MAX_PHASES * len(PHASE_FEATURES)
#: Vehicle spacing in a standing queue, metres (zone capacity = zone length / spacing).
JAM_SPACING_M = 7.5
#: Advance-loop flow that reads as 1.0, vehicles per second per loop (one vehicle every 2 s).
FLOW_SCALE_VPS = 0.5


class PhaseFeatures:
    """Computes the feature vector of one intersection.

    Per phase slot: valid, current, target (during a change), green elapsed / max green, then from the detectors
    on the lanes the phase serves: radar queue and vehicles (each ÷ zone capacity, mean over the zones), stop-bar
    occupancy (mean), advance-loop flow (vehicles per second ÷ :data:`FLOW_SCALE_VPS`, mean) and vehicles on its
    exit lanes (÷ capacity, mean). All clipped to [0, 1].

    :param intersection: the intersection.
    :raises InputError: for an intersection with more than :data:`MAX_PHASES` phases.
    """

    def __init__(self, intersection: Intersection) -> None:
        phases, dets = intersection.phases, intersection.detectors
        if len(phases) > MAX_PHASES:
            raise InputError(f"traffic light {intersection.id!r} has {len(phases)} phases; the shared layout "
                             f"holds at most {MAX_PHASES}")
        vehicle = {l.index for l in intersection.links if l.kind == "vehicle"}
        capacity = np.array([max(d.length_m / JAM_SPACING_M, 1.0) for d in dets])

        def weights(kind: str) -> np.ndarray:
            """(MAX_PHASES, detectors): the mean over the phase's detectors of ``kind``."""
            w = np.zeros((MAX_PHASES, len(dets)))
            for p, phase in enumerate(phases):
                mine = [k for k, d in enumerate(dets)
                        if d.kind == kind and (phase.greens & vehicle).intersection(d.links)]
                if mine:
                    w[p, mine] = 1.0 / len(mine)
            return w

        self.n_phases = len(phases)
        self._w_zone = weights("radar") / capacity
        self._w_stopbar = weights("stopbar")
        self._w_flow = weights("advance") / FLOW_SCALE_VPS
        self._w_exit = weights("exit") / capacity
        self._max_green = np.array([p.max_green_s for p in phases])

    def __call__(self, phase: int, target: int | None, in_green: bool, green_elapsed_s: float,
                 may_end_green: bool, readings: DetectorReadings, counted_s: float) -> np.ndarray:
        """The feature vector (float32, length :data:`SIZE`).

        :param phase: index of the phase green now (or being left).
        :param target: index of the phase being changed to (None or ``phase`` in green).
        :param in_green: False during yellow and all-red.
        :param green_elapsed_s: seconds the current phase has been green.
        :param may_end_green: min green (and pedestrian timing) done.
        :param readings: detector data; loop counts and occupancies cover the last ``counted_s`` seconds.
        :param counted_s: seconds the loop counts cover (to turn counts into flows).
        """
        slots = np.zeros((MAX_PHASES, len(PHASE_FEATURES)))
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
        out = np.empty(SIZE, dtype=np.float32)
        out[0] = float(may_end_green)
        out[1] = float(not in_green)
        out[len(HEAD_FEATURES):] = np.clip(slots, 0.0, 1.0).ravel()
        return out
