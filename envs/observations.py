"""Observation functions: what a learning agent sees of one intersection, built only from field detectors.

Add a class and register it to offer another observation; the environments never change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from gymnasium import spaces

from controller.intersection import Intersection
from controller.policies.base import DetectorReadings, Interval
from controller.signal_controller import SignalController

#: vehicle spacing in a standing queue, metres (for zone capacity normalisation)
JAM_SPACING_M = 7.5


class ObservationFunction(ABC):
    """Turns one intersection's signal status and detector readings into a vector."""

    name = ""

    def __init__(self, intersection: Intersection, delta_time_s: float) -> None:
        self.intersection = intersection
        self.delta_time_s = delta_time_s

    @abstractmethod
    def space(self) -> spaces.Box:
        """The observation space for this intersection."""

    @abstractmethod
    def __call__(self, controller: SignalController, readings: DetectorReadings) -> np.ndarray:
        """The observation now."""


class DetectorObservation(ObservationFunction):
    """Phase one-hot, min-green-done flag, green elapsed / max green, clearance flag, then per detector:
    stop-bar occupancy, advance-loop count per decision interval (÷ interval in seconds), radar-zone
    vehicles and queue (÷ zone capacity) and speed (÷ 20 m/s). All in [0, 1]."""

    name = "detectors"

    def __init__(self, intersection: Intersection, delta_time_s: float) -> None:
        super().__init__(intersection, delta_time_s)
        dets = intersection.detectors
        self._n_phases = len(intersection.phases)
        self._loop = np.array([d.kind in ("stopbar", "advance") for d in dets], dtype=bool)
        self._stopbar = np.array([d.kind == "stopbar" for d in dets], dtype=bool)
        self._zone = ~self._loop
        self._capacity = np.array([max(d.length_m / JAM_SPACING_M, 1.0) for d in dets])
        self._max_green = np.array([p.max_green_s for p in intersection.phases])
        self._size = self._n_phases + 3 + 3 * len(dets)

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, shape=(self._size,), dtype=np.float32)

    def __call__(self, controller: SignalController, readings: DetectorReadings) -> np.ndarray:
        m = controller.machine
        head = np.zeros(self._n_phases + 3, dtype=np.float32)
        head[m.phase] = 1.0
        head[self._n_phases] = float(m.may_end_green())
        head[self._n_phases + 1] = m.green_elapsed_s / self._max_green[m.phase]
        head[self._n_phases + 2] = float(controller.interval is not Interval.GREEN)
        a = np.where(self._stopbar, readings.occupancy,
                     np.where(self._loop, readings.count / self.delta_time_s, readings.count / self._capacity))
        b = np.where(self._zone, readings.halting / self._capacity, 0.0)
        c = np.where(readings.speed_mps >= 0, readings.speed_mps / 20.0, 0.0)
        body = np.stack([a, b, c], axis=1).ravel()
        return np.clip(np.concatenate([head, body]), 0.0, 1.0).astype(np.float32)


OBSERVATIONS: dict[str, type[ObservationFunction]] = {DetectorObservation.name: DetectorObservation}
