"""Programmed flash (scheduled night flash, manual flash, a controller's fault report): safe entry and exit.

Entry waits until the green being served has run its min green and pedestrian timing, ends every green with its
full yellow, holds all red for the longest red clearance, and only then flashes. Flash lasts at least
``min_flash_s``. Exit goes through steady all-red (at least ``exit_all_red_s`` and the longest red clearance: a
driver who took the flashing yellow may still be inside), then a fresh phase machine starts with its start-up
all-red and serves the major phase first. Standards: ``../shared/reference/standards.md`` §D.

The safety monitor stays the judge: it sees every state this shows, flash included. Malfunction flash latched by
the monitor is separate and does not go through here.
"""

from __future__ import annotations

import enum
import math

from controller.intersection import Intersection
from controller.phase_machine import PhaseMachine
from controller.policies.base import Interval
from controller.safety import flash_state


def major_vehicle_links(intersection: Intersection) -> list[int]:
    """The major phase's vehicle links: what flashes yellow in scheduled (night) flash, the rest flashing red."""
    major = intersection.phases[intersection.major_phase]
    return [i for i in sorted(major.greens) if intersection.links[i].kind == "vehicle"]


class FlashStage(enum.Enum):
    """Where programmed flash is."""

    OFF = "off"
    WAITING = "waiting"  # for the green being served to reach the end of its min green
    CLEARING = "clearing"  # yellow then all red
    FLASHING = "flashing"
    EXITING = "exiting"  # steady all red before the major phase


class FlashSequencer:
    """Programmed flash for one intersection.

    :param intersection: the intersection.
    :param step_s: tick length, seconds.
    :param min_flash_s: shortest flash, seconds.
    :param exit_all_red_s: shortest steady all-red on leaving flash, seconds.
    """

    def __init__(self, intersection: Intersection, step_s: float = 1.0, min_flash_s: float = 10.0,
                 exit_all_red_s: float = 2.0) -> None:
        self.intersection = intersection
        self.step_s = step_s
        links = intersection.links
        ticks = lambda seconds: int(math.ceil(round(seconds / step_s, 6)))  # noqa: E731
        self._yellow = [ticks(l.yellow_s) for l in links]
        # at least one tick of all red before flashing, even where no red clearance is configured
        self._red_clear = max([ticks(l.red_clearance_s) for l in links] + [1])
        self._min_flash = ticks(min_flash_s)
        self._exit = max(ticks(exit_all_red_s), self._red_clear)
        self.stage = FlashStage.OFF
        self.pattern = flash_state(intersection)
        self._release = False
        self._ticks = 0
        self._ending: list[int] = []
        self._yellow_for = 0
        self._again = False

    @property
    def active(self) -> bool:
        """True from a request until the phase machine runs again after the exit."""
        return self.stage is not FlashStage.OFF

    def request(self, major_links=None) -> None:
        """Flash: flashing yellow on ``major_links`` (mutually compatible) and flashing red elsewhere, or all
        flashing red when None. A request during the exit is honoured after it."""
        self.pattern = flash_state(self.intersection, major_links)
        self._release = False
        if self.stage is FlashStage.OFF:
            self.stage = FlashStage.WAITING
        elif self.stage is FlashStage.EXITING:
            self._again = True

    def release(self) -> None:
        """Leave flash (after the minimum flash time)."""
        self._release = True

    def step(self, machine: PhaseMachine) -> tuple[str, PhaseMachine]:
        """One tick: the state to show and the phase machine to use from now on (a fresh one after the exit)."""
        if self.stage is FlashStage.WAITING:
            if self._release:
                self.stage = FlashStage.OFF
                return machine.tick(), machine
            m = machine
            if m.interval is Interval.GREEN and m.may_end_green() and (m.pending is None or m.pending == m.phase):
                shown = m.state
                self._ending = [i for i, c in enumerate(shown) if c in "Gg"]
                self._yellow_for = max([self._yellow[i] for i in self._ending] or [0])
                self.stage, self._ticks = FlashStage.CLEARING, 0
            else:
                return machine.tick(), machine  # let the green (or the change under way) run its course
        if self.stage is FlashStage.CLEARING:
            state = ["r"] * self.intersection.n_links
            if self._ticks < self._yellow_for:
                for i in self._ending:
                    state[i] = "y"
            self._ticks += 1
            if self._ticks >= self._yellow_for + self._red_clear:
                self.stage, self._ticks = FlashStage.FLASHING, 0
            return "".join(state), machine
        if self.stage is FlashStage.FLASHING:
            self._ticks += 1
            if self._release and self._ticks > self._min_flash:
                self.stage, self._ticks = FlashStage.EXITING, 0
                return self.intersection.all_red_state(), machine
            return self.pattern, machine
        if self.stage is FlashStage.EXITING:
            self._ticks += 1
            if self._ticks >= self._exit:
                self.stage = FlashStage.WAITING if self._again else FlashStage.OFF
                self._release = self._again = False
                fresh = PhaseMachine(self.intersection, self.step_s, ped_recall=machine.ped_recall)
                return fresh.tick(), fresh
            return self.intersection.all_red_state(), machine
        return machine.tick(), machine
