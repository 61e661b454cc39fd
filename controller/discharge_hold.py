"""Discharge hold for a policy's phase changes: a green is not ended while the queue its end would stop is still
crossing the stop bar.

A learned policy that decides every few seconds may ask to end a green as soon as its minimum has run, with the
queue still discharging at saturation flow; every change then costs the yellow and all-red for the few vehicles
the green had served (at the Óvalo de Miraflores the committed policy ended three of four greens at the first
decision after the 5 s minimum). The hold sits between the policy and the phase machine, as dilemma-zone
protection does, and applies max-pressure's rule (:mod:`controller.policies.max_pressure`): after the minimum green,
a change from phase *p* to *q* waits while a stop-bar loop on a movement that the change would stop saw a vehicle
less than ``gap_s`` ago; at max green it steps aside (the machine ends the green anyway). The policy keeps choosing
*which* phase comes next; the hold only delays *when*, like an actuated gap-out.

It needs the detectors every step (its gap timers), so a controller using it reads them every second.

>>> from controller.testing import two_phase_intersection
>>> from controller.policies.base import DetectorReadings, Interval, SignalView
>>> inter = two_phase_intersection()
>>> hold = DischargeHold(inter, gap_s=2.0)
>>> readings = DetectorReadings.empty(len(inter.detectors), 10.0)
>>> readings.occupied[:] = True                      # vehicles crossing every stop bar at t = 10 s
>>> hold.update(readings)
>>> view = SignalView(inter, readings, 0, 0, Interval.GREEN, 12.0, True)
>>> hold.choose(view, 1), hold.holds                 # phase 0's queue is still discharging: kept
(0, 1)
>>> quiet = DetectorReadings.empty(len(inter.detectors), 13.0)
>>> hold.update(quiet)
>>> hold.choose(SignalView(inter, quiet, 0, 0, Interval.GREEN, 15.0, True), 1)   # 3 s gap: the change goes
1
"""

from __future__ import annotations

import numpy as np

from controller.intersection import Intersection
from controller.policies.base import (DetectorReadings, GapTimers, Interval, SignalView,
                                      loops_on_stopped_movements)
from controller.timing import max_greens_s

#: seconds since a stop-bar loop last saw a vehicle below which its queue counts as discharging (max-pressure's)
DEFAULT_GAP_S = 2.0
_EPS = 1e-9


class DischargeHold:
    """Holds a green the policy wants to end while the queue that the change would stop is discharging.

    :param intersection: the intersection (its stop-bar loops are watched).
    :param gap_s: a loop that saw a vehicle less than this many seconds ago holds the green (> 0).
    :param step_s: the controller's step, seconds (max green counts in whole steps, as the phase machine does).
    """

    def __init__(self, intersection: Intersection, gap_s: float = DEFAULT_GAP_S, step_s: float = 1.0) -> None:
        if not gap_s > 0:
            raise ValueError(f"discharge hold gap {gap_s!r} must be more than 0 seconds")
        self.intersection = intersection
        self.gap_s = float(gap_s)
        phases, links, dets = intersection.phases, intersection.links, intersection.detectors
        vehicle = np.array([lk.kind == "vehicle" for lk in links], dtype=bool)
        stopbar = np.array([d.kind == "stopbar" for d in dets], dtype=bool)
        serves = np.array([[any(vehicle[l] and l in p.greens for l in d.links) for d in dets] for p in phases],
                          dtype=bool).reshape(len(phases), len(dets))
        #: [p, q, k]: the stop-bar loops whose gaps decide whether p may end for q
        self._watch = loops_on_stopped_movements(intersection, serves & stopbar[None, :])
        self._max_s = max_greens_s(phases, step_s)
        self._gaps = GapTimers(len(dets))
        #: steps at which a change the policy asked for was held
        self.holds = 0

    def update(self, readings: DetectorReadings) -> None:
        """Take this step's detector data (presence on the loops)."""
        self._gaps.actuated(np.asarray(readings.occupied, dtype=bool), readings.time_s)

    def choose(self, view: SignalView, choice: int) -> int:
        """The phase to ask the machine for: ``choice``, or the current green while the change must wait.

        :param view: the controller's view this step (after :meth:`update` with its readings).
        :param choice: the policy's choice (phase index).
        """
        if view.interval is not Interval.GREEN or choice == view.phase:
            return choice
        p = view.phase
        if view.green_elapsed_s + _EPS >= self._max_s[p]:
            return choice  # max green: the machine ends it whatever is asked
        discharging = self._gaps.gap_s(self._watch[p, choice], view.readings.time_s) + _EPS < self.gap_s
        if not view.min_green_done or discharging:
            self.holds += 1
            return p
        return choice
