"""The mode manager: which of normal operation, preemption and transit priority decides each step, and when a
scheduled flash has to wait for a preemption.

Order of precedence (architecture: inputs → detector health → mode manager → policy → phase machine → safety
monitor): a preemption in progress decides alone (transit priority is suspended, a service running ends); then a
transit priority service asks for the bus's phase instead of the policy's choice; otherwise the policy's choice
goes to the phase machine as it is. A *scheduled* flash (``yields_to_preempt``) waits while a preempt call is on:
asked before its entry began, it starts after the preemption; already flashing, it is released (minimum flash and
the all-red exit still run) and asked again once the preemption is over. Fault and manual flash do not yield.
Nothing here shows a signal: every request passes the phase machine and the safety monitor.
"""

from __future__ import annotations

from controller.events import Event
from controller.flash import FlashSequencer, FlashStage
from controller.intersection import Intersection
from controller.phase_machine import PhaseMachine
from controller.preemption import PreemptPlan, Preemption
from controller.transit_priority import TransitPriority, TransitSettings


class ModeManager:
    """Preemption and transit priority for one intersection (both off until configured).

    :param intersection: the intersection.
    :param step_s: controller step, seconds.
    """

    def __init__(self, intersection: Intersection, step_s: float = 1.0) -> None:
        self.intersection = intersection
        self.step_s = step_s
        self.preemption: Preemption | None = None
        self.priority: TransitPriority | None = None
        #: controller clock, seconds (steps × step length; survives the fresh phase machine of a flash exit)
        self.time_s = 0.0
        self._last_choice: int | None = None
        self._flash_yields = False
        self._yielded: tuple | None = None  # (major links,) of a scheduled flash left for a preemption

    def configure(self, preempt_plans: list[PreemptPlan] | None = None,
                  transit: TransitSettings | None = None) -> None:
        """Turn preemption (one plan per preempt input) and transit priority on; None leaves one off.

        :raises InputError: for a plan that does not fit the intersection.
        """
        if preempt_plans:
            for plan in preempt_plans:
                plan.check(self.intersection)
            self.preemption = Preemption(list(preempt_plans), self.intersection.id)
        if transit is not None:
            self.priority = TransitPriority(transit, self.intersection.id)

    @property
    def active(self) -> bool:
        """True while preemption or a priority service may change the controller's decisions."""
        p, t = self.preemption, self.priority
        return bool((p is not None and p.waiting) or (t is not None and (t.serving or t.buses)))

    # ----------------------------------------------------------------- flash
    def flash_requested(self, major_links, yields_to_preempt: bool) -> None:
        """A flash was asked for (``yields_to_preempt``: a scheduled flash, which waits for a preemption)."""
        self._flash_yields = yields_to_preempt
        self._yielded = None

    def flash_released(self) -> None:
        """The flash was released: a flash left for a preemption is not asked again."""
        self._yielded = None

    def flash_waits(self, flash: FlashSequencer) -> bool:
        """True when the flash sequencer must not run this step (a scheduled flash waiting for a preemption);
        releases a scheduled flash that is on when a preempt call comes, to be asked again afterwards."""
        p = self.preemption
        if p is None or not self._flash_yields:
            return False
        if not p.waiting:
            return False
        if flash.stage is FlashStage.WAITING:
            return True
        if flash.stage in (FlashStage.CLEARING, FlashStage.FLASHING) and self._yielded is None:
            self._yielded = (tuple(i for i, c in enumerate(flash.pattern) if c == "o") or None,)
            flash.release()
        return False

    # ----------------------------------------------------------------- the step
    def decide(self, machine: PhaseMachine, choice: int | None, flash: FlashSequencer) -> None:
        """Place this step's request on ``machine``: the preemption's, a priority service's, or ``choice``.

        :param machine: the phase machine used this step.
        :param choice: the policy's choice this step (index), or None when it did not decide.
        :param flash: the programmed-flash sequencer (a flash being entered or shown suspends priority).
        """
        if choice is not None:
            self._last_choice = choice
        flashing = flash.active and not self.flash_waits(flash)
        preempting = False
        p = self.preemption
        if p is not None:
            if flashing:  # a flash that does not yield (fault, manual), or a scheduled one running out
                p.observe(self.time_s)
                if p.engaged:
                    p.abort(machine)
            else:
                preempting = p.step(machine, self.time_s)
        override = None
        if self.priority is not None:
            override = self.priority.decide(machine, self._last_choice, self.time_s, suspended=preempting or flashing)
        if not preempting and not flashing:
            if override is not None:
                machine.request(override)
            elif choice is not None:
                machine.request(choice)
        if self._yielded is not None and not flash.active and self.preemption is not None \
                and not self.preemption.waiting:
            links = self._yielded[0]
            self._yielded = None
            flash.request(links)  # the scheduled flash resumes after the preemption

    def after_tick(self, machine: PhaseMachine) -> None:
        """After the phase machine's tick: note a preempt green that began in it; the clock moves one step."""
        if self.preemption is not None:
            self.preemption.after_tick(machine, self.time_s)
        self.time_s += self.step_s

    def take_events(self) -> list[Event]:
        """The preemption and priority events since the last call, in time order."""
        out: list[Event] = []
        for source in (self.preemption, self.priority):
            if source is not None and source.events:
                out += source.events
                source.events = []
        out.sort(key=lambda e: e.time_s)
        return out
