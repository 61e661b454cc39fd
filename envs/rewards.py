"""Reward functions for training (they may use simulator ground truth: they never run at the curb).

Add a class and register it to offer another reward; the environments never change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from controller.intersection import Intersection


class RewardFunction(ABC):
    """Reward of one intersection for the last decision interval, read from the running simulation.

    :param intersection: the intersection.
    :param api: the backend's bound lane getters (``lane_halting``, ``lane_vehicles``, ``lane_waiting_time``).
    """

    name = ""

    def __init__(self, intersection: Intersection, api) -> None:
        self.intersection = intersection
        self.api = api
        self.incoming = sorted({l.from_lane for l in intersection.links if l.kind == "vehicle"})
        self.outgoing = sorted({l.to_lane for l in intersection.links if l.kind == "vehicle" and l.to_lane})

    @abstractmethod
    def __call__(self) -> float:
        """The reward now."""

    @classmethod
    def batch(cls, functions: list["RewardFunction"]) -> list[float]:
        """The rewards of several intersections at once (override to vectorise; the default loops)."""
        return [float(f()) for f in functions]


class QueueReward(RewardFunction):
    """Minus the number of halted vehicles (speed < 0.1 m/s) on the incoming lanes, divided by 10."""

    name = "queue"

    def __call__(self) -> float:
        halting = self.api.lane_halting
        return -sum([halting(l) for l in self.incoming]) / 10.0


class WaitingTimeChangeReward(RewardFunction):
    """Decrease of the accumulated waiting time (s) of vehicles on the incoming lanes, divided by 100."""

    name = "diff-waiting-time"

    def __init__(self, intersection: Intersection, api) -> None:
        super().__init__(intersection, api)
        self._last = 0.0

    def __call__(self) -> float:
        waiting = self.api.lane_waiting_time
        total = sum([waiting(l) for l in self.incoming])
        reward, self._last = (self._last - total) / 100.0, total
        return reward

    @classmethod
    def batch(cls, functions: list["WaitingTimeChangeReward"]) -> list[float]:
        """Every intersection's reward from one pass over all their incoming lanes (it runs every decision)."""
        if not functions:
            return []
        lanes = [lane for f in functions for lane in f.incoming]
        waiting = list(map(functions[0].api.lane_waiting_time, lanes))
        out, start = [], 0
        for f in functions:
            end = start + len(f.incoming)
            total = sum(waiting[start:end])
            out.append((f._last - total) / 100.0)
            f._last, start = total, end
        return out


class PressureReward(RewardFunction):
    """Minus the pressure: vehicles on incoming lanes minus vehicles on outgoing lanes, divided by 10."""

    name = "pressure"

    def __call__(self) -> float:
        vehicles = self.api.lane_vehicles
        inside = sum([vehicles(l) for l in self.incoming])
        out = sum([vehicles(l) for l in self.outgoing])
        return -(inside - out) / 10.0


REWARDS: dict[str, type[RewardFunction]] = {c.name: c for c in (QueueReward, WaitingTimeChangeReward, PressureReward)}
