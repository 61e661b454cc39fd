"""High-resolution controller events (Indiana enumerations, the ATSPM format) from what the core does each second.

:class:`EventRecorder` watches one intersection's phase machine, the state it shows and its detectors, and emits
the events a field controller's hi-res log would hold: begin green / yellow / red clearance per phase, pedestrian
walk / clearance / don't walk, detector on / off, how each green ended (max-out, or the policy's gap-out or
force-off) and flash. Pure: the live daemon, simulation and replay
all log through it. Codes: ``../shared/reference/standards.md`` §F; the parameter is a 1-based phase number or
detector channel.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from controller.intersection import Intersection
from controller.policies.base import Interval


class EventCode(enum.IntEnum):
    """Indiana hi-res event codes used by ondaverde."""

    PHASE_ON = 0
    BEGIN_GREEN = 1
    MIN_GREEN_COMPLETE = 3
    GAP_OUT = 4
    MAX_OUT = 5
    FORCE_OFF = 6
    GREEN_TERMINATION = 7
    BEGIN_YELLOW = 8
    END_YELLOW = 9
    BEGIN_RED_CLEARANCE = 10
    END_RED_CLEARANCE = 11
    PHASE_INACTIVE = 12
    PED_BEGIN_WALK = 21
    PED_BEGIN_CLEARANCE = 22
    PED_BEGIN_DONT_WALK = 23
    DETECTOR_OFF = 81
    DETECTOR_ON = 82
    DETECTOR_RESTORED = 83
    DETECTOR_FAULT_OTHER = 84
    DETECTOR_FAULT_WATCHDOG = 85
    DETECTOR_FAULT_OPEN = 86
    DETECTOR_FAULT_SHORTED = 87
    DETECTOR_FAULT_EXCESSIVE_CHANGE = 88
    PREEMPT_CALL_ON = 102
    PREEMPT_CALL_OFF = 104
    PREEMPT_ENTRY_STARTED = 105
    PREEMPT_TRACK_CLEARANCE = 106
    PREEMPT_DWELL = 107
    PREEMPT_MAX_PRESENCE = 110
    PREEMPT_EXIT = 111
    TSP_CHECK_IN = 112
    TSP_EARLY_GREEN = 113
    TSP_EXTEND_GREEN = 114
    TSP_CHECK_OUT = 115
    TSP_SERVICE_START = 118
    TSP_SERVICE_END = 119
    COORD_PATTERN_CHANGE = 131
    UNIT_CONTROL_STATUS_CHANGE = 155
    UNIT_FLASH_STATUS_CHANGE = 173


@dataclass(frozen=True)
class Event:
    """One log record.

    :param time_s: controller clock, seconds (0.1 s resolution in exports).
    :param signal_id: the intersection (traffic-light id).
    :param code: Indiana event code.
    :param param: its parameter (phase number, detector channel, preempt number, status code).
    """

    time_s: float
    signal_id: str
    code: int
    param: int


class EventRecorder:
    """Turns one intersection's second-by-second status into hi-res events.

    :param intersection: the intersection.
    :param ended_by: the code logged when a green ends other than by max-out, i.e. by its policy's decision:
        ``GAP_OUT`` for an actuated policy (its greens end when the gap timer runs out), ``FORCE_OFF`` for policies
        that end greens by their own plan (fixed time, max-pressure, a learned policy), None to log neither.
    """

    def __init__(self, intersection: Intersection, ended_by: EventCode | None = None) -> None:
        self.intersection = intersection
        self.ended_by = ended_by
        self._interval: Interval | None = None
        self._phase: int | None = None
        self._occupied = np.zeros(len(intersection.detectors), dtype=bool)
        self._peds = {k: sorted(i for i in p.greens if intersection.links[i].kind == "pedestrian")
                      for k, p in enumerate(intersection.phases)}
        self._ped_shown: dict[int, str] = {k: "r" for k, links in self._peds.items() if links}
        self._min_done = False
        self._max_outs = 0
        self._flash_code = 2

    def observe(self, time_s: float, interval: Interval, phase: int, state: str, min_green_done: bool = False,
                occupied: np.ndarray | None = None, max_outs: int = 0, flash_code: int | None = 5) -> list[Event]:
        """The events between the previous observation and this one.

        :param time_s: clock, seconds.
        :param interval: the phase machine's interval now (``Interval.FLASH`` once the monitor latched).
        :param phase: the phase green now, or being left during yellow and all-red (index).
        :param state: the signal state shown (for pedestrian indications).
        :param min_green_done: min green (and pedestrian timing) has run.
        :param occupied: detector presence now (per detector), or None when not read this second.
        :param max_outs: the phase machine's count of max-outs so far.
        :param flash_code: the NTCIP unitFlashStatus logged when flash begins or, while flashing, changes (5 fault
            monitor, 6 MMU, 3 automatic, 4 local manual, 1 other); 2 (not flashing) is logged when it ends. None:
            no source in force (a released flash still timing its minimum or exit) keeps the code already logged
            (3 if flash begins so).
        """
        sid, out = self.intersection.id, []

        def emit(code: EventCode, param: int) -> None:
            out.append(Event(time_s, sid, int(code), int(param)))

        before, was = self._interval, self._phase
        number = phase + 1
        if flash_code is None:
            flash_code = self._flash_code if self._flash_code != 2 else 3
        if interval is Interval.FLASH and (before is not Interval.FLASH or flash_code != self._flash_code):
            emit(EventCode.UNIT_FLASH_STATUS_CHANGE, flash_code)  # flash begins, or its reason changes
        elif interval is not Interval.FLASH and before is Interval.FLASH:
            emit(EventCode.UNIT_FLASH_STATUS_CHANGE, 2)  # not flashing any more
        self._flash_code = flash_code if interval is Interval.FLASH else 2
        if interval is not Interval.FLASH and (interval is not before or phase != was):
            if interval is Interval.GREEN:
                if before is Interval.ALL_RED and was is not None:
                    emit(EventCode.END_RED_CLEARANCE, was + 1)
                    if was != phase:
                        emit(EventCode.PHASE_INACTIVE, was + 1)
                elif before is Interval.YELLOW and was is not None:
                    # no red clearance was needed (the next phase adds no link conflicting with the ending ones,
                    # e.g. through + permissive left -> protected left): the yellow and the phase still end
                    emit(EventCode.END_YELLOW, was + 1)
                    if was != phase:
                        emit(EventCode.PHASE_INACTIVE, was + 1)
                emit(EventCode.PHASE_ON, number)
                emit(EventCode.BEGIN_GREEN, number)
                self._min_done = False
            elif interval is Interval.YELLOW:
                if max_outs > self._max_outs:
                    emit(EventCode.MAX_OUT, number)
                elif self.ended_by is not None:
                    emit(self.ended_by, number)
                emit(EventCode.GREEN_TERMINATION, number)
                emit(EventCode.BEGIN_YELLOW, number)
            elif interval is Interval.ALL_RED and before is Interval.YELLOW:
                emit(EventCode.END_YELLOW, number)
                emit(EventCode.BEGIN_RED_CLEARANCE, number)
        if interval is Interval.GREEN and min_green_done and not self._min_done:
            emit(EventCode.MIN_GREEN_COMPLETE, number)
            self._min_done = True
        self._max_outs = max_outs
        for k, links in self._peds.items():
            if not links:
                continue
            shown = "G" if any(state[i] in "Gg" for i in links) else "y" if any(state[i] == "y" for i in links) else "r"
            if shown != self._ped_shown[k]:
                code = {"G": EventCode.PED_BEGIN_WALK, "y": EventCode.PED_BEGIN_CLEARANCE,
                        "r": EventCode.PED_BEGIN_DONT_WALK}[shown]
                emit(code, k + 1)
                self._ped_shown[k] = shown
        if occupied is not None:
            changed = np.flatnonzero(occupied != self._occupied)
            for d in changed.tolist():
                emit(EventCode.DETECTOR_ON if occupied[d] else EventCode.DETECTOR_OFF, d + 1)
            self._occupied = occupied.copy()
        self._interval, self._phase = interval, phase
        return out


def policy_termination_code(policy_name: str | None) -> EventCode:
    """The code a green ended by ``policy_name``'s decision is logged with: gap-out for ``actuated``, force-off for
    every other policy (a plan or an external decision ends the green, as a central system's force-off does)."""
    return EventCode.GAP_OUT if policy_name == "actuated" else EventCode.FORCE_OFF
