"""The ``phases`` observations: the core's fixed per-phase feature layouts (``controller/phase_features.py``), so
one policy can be shared by intersections of any shape (``phases``: the current layout, ``phases-v1``: the first,
``phases-v3``: with the change features, ``phases-v4``: with max-pressure's pressures and choice)."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces

from controller.intersection import Intersection
from controller.phase_features import LAYOUT_V1, LAYOUT_V2, LAYOUT_V3, LAYOUT_V4, FeatureLayout, PhaseFeatures
from controller.policies.base import DetectorReadings, Interval
from controller.signal_controller import SignalController
from envs.observations import OBSERVATIONS, ObservationFunction


class PhaseObservation(ObservationFunction):
    """:class:`controller.phase_features.PhaseFeatures` of the intersection (layout :data:`LAYOUT_V2`), detectors
    read every decision."""

    name = "phases"
    layout: FeatureLayout = LAYOUT_V2

    def __init__(self, intersection: Intersection, delta_time_s: float) -> None:
        super().__init__(intersection, delta_time_s)
        self.features = PhaseFeatures(intersection, self.layout)

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, shape=(self.layout.size,), dtype=np.float32)

    def reset(self) -> None:
        self.features.reset()

    def __call__(self, controller: SignalController, readings: DetectorReadings) -> np.ndarray:
        m = controller.machine
        return self.features(m.phase, m.target, controller.interval is Interval.GREEN, m.green_elapsed_s,
                             m.may_end_green(), readings, self.delta_time_s)


class PhaseObservationV1(PhaseObservation):
    """The first layout (:data:`LAYOUT_V1`): what policies trained before December 2026 saw."""

    name = "phases-v1"
    layout = LAYOUT_V1


class PhaseObservationV3(PhaseObservation):
    """:data:`LAYOUT_V3`: v2 plus what a change to each phase would start and stop."""

    name = "phases-v3"
    layout = LAYOUT_V3


class PhaseObservationV4(PhaseObservation):
    """:data:`LAYOUT_V4`: v2 plus each phase's max-pressure pressure and whether max-pressure would ask for it."""

    name = "phases-v4"
    layout = LAYOUT_V4


_CLASSES = (PhaseObservation, PhaseObservationV1, PhaseObservationV3, PhaseObservationV4)
#: The observation that builds each feature layout, by layout name.
OBSERVATION_OF_LAYOUT = {cls.layout.name: cls.name for cls in _CLASSES}
for _cls in _CLASSES:
    OBSERVATIONS[_cls.name] = _cls
