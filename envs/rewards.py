"""Reward functions for training (they may use simulator ground truth: they never run at the curb).

Add a class and register it to offer another reward; the environments never change.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

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

    @classmethod
    def connect(cls, functions: list["RewardFunction"]) -> None:
        """Tell each function of a group about the others (override for rewards that look beyond one
        intersection; the default does nothing). :func:`make_rewards` calls it."""


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


class NeighbourQueueReward(RewardFunction):
    """Minus the halted vehicles on the incoming lanes, plus :attr:`neighbour_weight` times those of each adjacent
    light (one whose incoming lane this light feeds, or which feeds one of this light's), divided by 10.

    A light rewarded for its own queue alone is paid for sending a platoon into a queue it does not count (the
    next light's); sharing a part of each neighbour's reward (the spatially discounted reward of MA2C, Chu et al.
    2019) makes each one bear some of what it does to the lights around it. Only lights in the same group (the
    agents of one environment) count as neighbours, and only through a shared lane: lights separated by an
    unsignalised junction are not adjacent.
    """

    name = "queue-neighbours"
    #: weight of each neighbour's queue against the light's own
    neighbour_weight = 0.5

    def __init__(self, intersection: Intersection, api) -> None:
        super().__init__(intersection, api)
        self.neighbour_lanes: list[str] = []  # filled by connect()

    @classmethod
    def connect(cls, functions: list["NeighbourQueueReward"]) -> None:
        incoming = [set(f.incoming) for f in functions]
        outgoing = [set(f.outgoing) for f in functions]
        for i, f in enumerate(functions):
            f.neighbour_lanes = sorted(lane for j, g in enumerate(functions) if j != i
                                       and (outgoing[i] & incoming[j] or outgoing[j] & incoming[i])
                                       for lane in g.incoming)

    def __call__(self) -> float:
        halting = self.api.lane_halting
        own = sum([halting(l) for l in self.incoming])
        return -(own + self.neighbour_weight * sum([halting(l) for l in self.neighbour_lanes])) / 10.0

    @classmethod
    def batch(cls, functions: list["NeighbourQueueReward"]) -> list[float]:
        """Every intersection's reward from one read of each incoming lane of the group."""
        if not functions:
            return []
        lanes = sorted({lane for f in functions for lane in (*f.incoming, *f.neighbour_lanes)})
        index = {lane: k for k, lane in enumerate(lanes)}
        halted = np.array(list(map(functions[0].api.lane_halting, lanes)), dtype=float)
        return [-(float(halted[[index[l] for l in f.incoming]].sum())
                  + f.neighbour_weight * float(halted[[index[l] for l in f.neighbour_lanes]].sum())) / 10.0
                for f in functions]


REWARDS: dict[str, type[RewardFunction]] = {c.name: c for c in (QueueReward, WaitingTimeChangeReward, PressureReward,
                                                                 NeighbourQueueReward)}


def make_rewards(name: str, intersections: list[Intersection], api) -> list[RewardFunction]:
    """One reward function per intersection, connected as a group (:meth:`RewardFunction.connect`).

    :param name: reward name (a key of :data:`REWARDS`).
    :param intersections: the intersections rewarded (the agents), in order.
    :param api: the backend's bound lane getters.
    """
    cls = REWARDS[name]
    functions = [cls(i, api) for i in intersections]
    cls.connect(functions)
    return functions
