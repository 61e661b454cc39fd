"""One intersection's decision pipeline: policy → phase machine → independent safety monitor → output.

This is the only road from a decision to a signal, in simulation, live and in replay. There is no
switch that skips the phase machine or the monitor.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from controller.detector_health import DetectorHealth
from controller.dilemma_zone import DilemmaZoneGuard
from controller.flash import FlashSequencer, FlashStage
from controller.intersection import Intersection
from controller.modes import ModeManager
from controller.phase_machine import PhaseMachine
from controller.policies.base import DetectorReadings, Interval, Policy, SignalView
from controller.safety import SafetyMonitor


class SignalController:
    """Runs one intersection, one step at a time.

    :param intersection: the intersection description.
    :param policy: the policy that proposes the next phase, or None when requests come from outside
        (a learning agent calls :meth:`request`).
    :param step_s: step length, seconds.
    :param decision_period_s: how often the policy is asked, seconds (a multiple of ``step_s``).
    :param health: detector health watch (live use): a failed detector's data is masked and its phase recalled;
        its fault and restore events collect in :attr:`events`.
    :param dilemma: dilemma-zone protection between the policy and the phase machine (its caller feeds it radar
        tracks each step), or None.
    """

    def __init__(self, intersection: Intersection, policy: Policy | None, step_s: float = 1.0,
                 decision_period_s: float = 1.0, health: DetectorHealth | None = None,
                 dilemma: DilemmaZoneGuard | None = None) -> None:
        self.intersection = intersection
        self.policy = policy
        self.step_s = step_s
        self.machine = PhaseMachine(intersection, step_s)
        self.monitor = SafetyMonitor(intersection, step_s)
        self._decide_every = max(1, round(decision_period_s / step_s))
        self._steps = 0
        self.state = intersection.all_red_state()
        self._call_detectors = phase_call_detectors(intersection)
        self.health = health
        self.dilemma = dilemma
        #: programmed flash (scheduled, manual, a field fault report): safe entry and exit
        self.flash = FlashSequencer(intersection, step_s)
        #: preemption and transit priority (off until ``modes.configure``; :mod:`controller.modes`)
        self.modes = ModeManager(intersection, step_s)
        #: events from the detector health watch not yet taken (the caller logs and clears them)
        self.events: list = []
        if policy is not None:
            policy.reset(intersection, step_s)

    def view(self, readings: DetectorReadings) -> SignalView:
        """What a policy sees now: detector data plus the controller's own signal status."""
        m = self.machine
        return SignalView(self.intersection, readings, m.phase, m.target, m.interval, m.green_elapsed_s,
                          m.may_end_green(), m.pedestrian_calls)

    def call_pedestrians(self, phases) -> None:
        """Pedestrian push-button calls on ``phases`` (indices): their crosswalks walk at the phase's next green,
        and the call is demand for the phase (a max-out serves it; actuated control also gaps out to it)."""
        for phase in phases:
            self.machine.call_pedestrian(phase)

    def request(self, phase: int) -> None:
        """Ask for ``phase`` (index) to be served next; the phase machine decides when."""
        self.machine.request(phase)

    def step(self, readings: DetectorReadings | None) -> str:
        """Decide (on decision steps), advance one step, and return the checked state to show.

        :param readings: this step's detector data (may be None when no policy is attached).
        :return: the signal state string; the flash pattern if the monitor has latched a fault.
        """
        if readings is not None:
            readings = self.take_readings(readings)
        choice = None
        if (self.policy is not None and self._steps % self._decide_every == 0 and not self.monitor.in_flash
                and not self.flash.active):
            view = self.view(readings)
            choice = self.policy.decide(view)
            if self.dilemma is not None:  # may hold the green while a vehicle is in its dilemma zone
                choice = self.dilemma.choose(view, choice)
        modes = self.modes
        modes.decide(self.machine, choice, self.flash)  # preemption, then transit priority, then the policy
        self._steps += 1
        if self.flash.active and not modes.flash_waits(self.flash):
            shown, self.machine = self.flash.step(self.machine)
        else:
            shown = self.machine.tick()
        modes.after_tick(self.machine)
        if modes.preemption is not None or modes.priority is not None:
            self.events += modes.take_events()
        self.state = self.monitor.check(shown)
        return self.state

    def take_readings(self, readings: DetectorReadings) -> DetectorReadings:
        """Take this step's detector data without stepping (what :meth:`step` does first with them): failed
        detectors screened out, detector presence placed as vehicle calls. A controller with no policy that is
        still :attr:`quiet_steps` after this may then count this step among its skipped ones.

        :param readings: this step's detector data.
        :return: the readings as screened (failed detectors masked).
        """
        if self.health is not None:
            readings = self._screened(readings)
        self._register_calls(readings.occupied)
        return readings

    def request_flash(self, major_links=None, yields_to_preempt: bool = False) -> None:
        """Go to programmed flash (yellow on ``major_links``, red elsewhere; all red when None) at the next safe
        point; see :mod:`controller.flash`. A scheduled flash (``yields_to_preempt``) waits for a preemption."""
        self.modes.flash_requested(major_links, yields_to_preempt)
        self.flash.request(major_links)

    def release_flash(self) -> None:
        """Leave programmed flash after its minimum time, through steady all-red into the major phase."""
        self.modes.flash_released()
        self.flash.release()

    @property
    def quiet_steps(self) -> int:
        """Steps known to show the current state unchanged if no request, call or reading arrives (0 with a
        policy attached, which may decide any step): :meth:`skip` may take that many at once."""
        if self.policy is not None or self.flash.active or self.modes.active:
            return 0
        return self.machine.quiet_ticks

    def skip(self, steps: int) -> str:
        """Run ``steps`` quiet steps at once (no readings, no policy): what ``steps`` calls of ``step(None)``
        would do, the held state still judged by the monitor.

        :param steps: number of steps, at most :attr:`quiet_steps`.
        :return: the state shown.
        """
        if self.policy is not None:
            raise ValueError("a controller with a policy decides every step and cannot skip")
        self.machine.skip(steps)
        self._steps += steps
        self.modes.time_s += steps * self.step_s
        self.state = self.monitor.check_held(self.machine.state, steps)
        return self.state

    def _screened(self, readings: DetectorReadings) -> DetectorReadings:
        """Readings with failed detectors masked (their phases recalled instead)."""
        health = self.health
        self.events += health.update(readings.time_s, readings.occupied, readings.count)
        failed = health.failed
        if not failed.any():
            return readings
        recall_max = health.settings.recall == "max"
        occupancy = np.where(failed, float(recall_max), readings.occupancy)
        screened = replace(readings, occupied=health.mask(readings.occupied), occupancy=occupancy,
                           count=np.where(failed, 0.0, readings.count), halting=np.where(failed, 0.0, readings.halting))
        self.machine.call_vehicles(health.recall_phases())
        return screened

    def _register_calls(self, occupied: np.ndarray) -> None:
        """Detector presence on a phase's approach lanes places a (locking) vehicle call on that phase."""
        occ = occupied.tolist()  # plain Python on a few dozen detectors beats numpy's per-call overhead
        calls = [p for p, idx in enumerate(self._call_detectors) if any(map(occ.__getitem__, idx))]
        if calls:
            self.machine.call_vehicles(calls)

    @property
    def interval(self) -> Interval:
        """The phase machine's interval, or FLASH once the monitor has latched or programmed flash shows."""
        stage = self.flash.stage
        if self.monitor.in_flash or stage is FlashStage.FLASHING:
            return Interval.FLASH
        if stage is FlashStage.CLEARING:  # flash entry: the machine is frozen, the sequencer shows the clearance
            return Interval.YELLOW if "y" in self.state else Interval.ALL_RED
        if stage is FlashStage.EXITING:
            return Interval.ALL_RED
        return self.machine.interval


def phase_call_detectors(intersection: Intersection) -> list[list[int]]:
    """Per phase, indices of the approach detectors (stop-bar, advance, radar) on lanes it serves green."""
    vehicle = {l.index for l in intersection.links if l.kind == "vehicle"}
    return [[k for k, d in enumerate(intersection.detectors) if d.kind != "exit" and (phase.greens & vehicle)
             .intersection(d.links)] for phase in intersection.phases]
