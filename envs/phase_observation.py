"""The ``phases`` observation: the core's fixed per-phase feature layout (``controller/phase_features.py``), so
one policy can be shared by intersections of any shape."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from controller.intersection import Intersection
from controller.phase_features import SIZE, PhaseFeatures
from controller.policies.base import DetectorReadings, Interval
from controller.signal_controller import SignalController
from envs.observations import OBSERVATIONS, ObservationFunction


class PhaseObservation(ObservationFunction):
    """:class:`controller.phase_features.PhaseFeatures` of the intersection, detectors read every decision."""

    name = "phases"

    def __init__(self, intersection: Intersection, delta_time_s: float) -> None:
        super().__init__(intersection, delta_time_s)
        self.features = PhaseFeatures(intersection)

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, shape=(SIZE,), dtype=np.float32)

    def __call__(self, controller: SignalController, readings: DetectorReadings) -> np.ndarray:
        m = controller.machine
        return self.features(m.phase, m.target, controller.interval is Interval.GREEN, m.green_elapsed_s,
                             m.may_end_green(), readings, self.delta_time_s)


OBSERVATIONS[PhaseObservation.name] = PhaseObservation
