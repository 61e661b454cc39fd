"""Observation functions: what a learning agent sees of one intersection, built only from field detectors.

Add a class and register it to offer another observation; the environments never change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from gymnasium import spaces

from controller.intersection import Intersection
from controller.phase_features import JAM_SPACING_M
from controller.policies.base import DetectorReadings, Interval
from controller.signal_controller import SignalController



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

    def reset(self) -> None:
        """A new episode starts (override if the function remembers anything between calls)."""

    @classmethod
    def batch(cls, functions: list["ObservationFunction"], controllers: list[SignalController],
              readings: list[DetectorReadings]) -> list[np.ndarray]:
        """Observations of several intersections at once (override to vectorise; the default loops)."""
        return [f(c, r) for f, c, r in zip(functions, controllers, readings)]


class DetectorObservation(ObservationFunction):
    """Phase one-hot, min-green-done flag, green elapsed / max green, clearance flag, then per detector:
    stop-bar occupancy, advance-loop count per decision interval (÷ interval in seconds), radar-zone
    vehicles and queue (÷ zone capacity) and speed (÷ 20 m/s). All in [0, 1]."""

    name = "detectors"

    def __init__(self, intersection: Intersection, delta_time_s: float) -> None:
        super().__init__(intersection, delta_time_s)
        dets = intersection.detectors
        self._n_phases = len(intersection.phases)
        capacity = np.array([max(d.length_m / JAM_SPACING_M, 1.0) for d in dets])
        stopbar = np.array([d.kind == "stopbar" for d in dets], dtype=bool)
        advance = np.array([d.kind == "advance" for d in dets], dtype=bool)
        zone = ~(stopbar | advance)
        # per-detector weights, so one observation is a few vector operations (it runs for every agent
        # at every decision): first value = occupancy (stop bar) or count scaled (advance, zones)
        self._w_occupancy = stopbar.astype(float)
        self._w_count = np.where(advance, 1.0 / delta_time_s, np.where(zone, 1.0 / capacity, 0.0))
        self._w_halting = np.where(zone, 1.0 / capacity, 0.0)
        self._max_green = np.array([p.max_green_s for p in intersection.phases])
        self._head = self._n_phases + 3
        self._size = self._head + 3 * len(dets)

    def space(self) -> spaces.Box:
        return spaces.Box(0.0, 1.0, shape=(self._size,), dtype=np.float32)

    def __call__(self, controller: SignalController, readings: DetectorReadings) -> np.ndarray:
        m = controller.machine
        out = np.zeros(self._size, dtype=np.float32)
        out[m.phase] = 1.0
        out[self._n_phases] = float(m.may_end_green())
        out[self._n_phases + 1] = min(m.green_elapsed_s / self._max_green[m.phase], 1.0)
        out[self._n_phases + 2] = float(controller.interval is not Interval.GREEN)
        body = out[self._head:]
        body[0::3] = readings.occupancy * self._w_occupancy + readings.count * self._w_count
        body[1::3] = readings.halting * self._w_halting
        body[2::3] = np.maximum(readings.speed_mps, 0.0) / 20.0
        np.clip(body, 0.0, 1.0, out=body)
        return out


    @classmethod
    def batch(cls, functions, controllers, readings) -> list[np.ndarray]:
        """All agents' observations with one pass of vector operations over their detectors together."""
        if len(functions) < 2:
            return super().batch(functions, controllers, readings)
        flat = cls.batch_flat(functions, controllers, readings)
        return np.split(flat, functions[0]._group[4])

    @classmethod
    def batch_flat(cls, functions, controllers, readings) -> np.ndarray:
        """The agents' observations concatenated in one vector (what a single agent over all lights sees)."""
        key = tuple(functions)  # the objects themselves (identity), so a cached layout never outlives them
        lead = functions[0]
        if getattr(lead, "_group_key", None) != key:  # layout of this group of intersections, computed once
            sizes = [f._size for f in functions]
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
            body_pos = np.concatenate([s + f._head + np.arange(3 * len(f.intersection.detectors))
                                       for s, f in zip(starts, functions)]).astype(np.int64)
            weights = tuple(np.concatenate([getattr(f, w) for f in functions])
                            for w in ("_w_occupancy", "_w_count", "_w_halting"))
            lead._group_key = key
            lead._group = (*weights, body_pos, starts[1:], starts.tolist(), int(sum(sizes)))
        w_occ, w_count, w_halt, body_pos, _, starts, total = lead._group
        body = np.empty((w_occ.size, 3), dtype=np.float32)
        body[:, 0] = np.concatenate([r.occupancy for r in readings]) * w_occ \
            + np.concatenate([r.count for r in readings]) * w_count
        body[:, 1] = np.concatenate([r.halting for r in readings]) * w_halt
        body[:, 2] = np.maximum(np.concatenate([r.speed_mps for r in readings]), 0.0) / 20.0
        np.clip(body, 0.0, 1.0, out=body)
        out = np.zeros(total, dtype=np.float32)
        out[body_pos] = body.ravel()
        for f, c, start in zip(functions, controllers, starts):
            m = c.machine
            out[start + m.phase] = 1.0
            out[start + f._n_phases] = m.may_end_green()
            out[start + f._n_phases + 1] = min(m.green_elapsed_s / f._max_green[m.phase], 1.0)
            out[start + f._n_phases + 2] = c.interval is not Interval.GREEN
        return out



OBSERVATIONS: dict[str, type[ObservationFunction]] = {DetectorObservation.name: DetectorObservation}
