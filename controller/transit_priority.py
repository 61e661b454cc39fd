"""Transit signal priority: buses check in on approach and out at the stop line; early green or a bounded green
extension for the phase serving them, a lockout between services, and "always" or "only when late".

*Early green* (red truncation): the bus's phase is asked for at once, so the green being served ends as soon as
its own minimum green (and pedestrian timing) allow; yellow and red clearance run in full, as always.
*Green extension*: while the bus's phase is green, it is held against the policy's wish to end it, for at most
``max_extension_s`` seconds in one service, and never beyond max green (the phase machine still maxes out when
another phase waits). A service ends when the bus checks out, the extension is used up, or a preemption starts;
the next one may start ``lockout_s`` after it (re-service inhibit). Standards: ``../shared/reference/standards.md``
§E.

Logged in the Indiana hi-res codes: 112 check-in, 118 service start, 113 early green or 114 extend green, 119
service end, 115 check-out; the parameter is the TSP channel, here the 1-based number of the bus's phase.

>>> from controller.testing import two_phase_intersection
>>> from controller.phase_machine import PhaseMachine
>>> m = PhaseMachine(two_phase_intersection())
>>> tsp = TransitPriority(TransitSettings(max_extension_s=10), "two-phase")
>>> tsp.check_in("bus 7", phase=1, time_s=0.0)
>>> tsp.decide(m, policy_choice=0, time_s=0.0)   # phase 1 is red: early green asks for it at once
1
>>> [e.code for e in tsp.events]
[112, 118, 113]
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.errors import InputError
from controller.events import Event, EventCode
from controller.phase_machine import PhaseMachine
from controller.policies.base import Interval

CONDITIONS = ("always", "late")


@dataclass(frozen=True)
class TransitSettings:
    """How an intersection grants transit priority.

    :param max_extension_s: longest time one service holds the bus's green against the policy, seconds.
    :param lockout_s: seconds after a service ends before the next may start.
    :param condition: ``always``, or ``late``: only for a bus at least ``late_threshold_s`` behind schedule.
    :param late_threshold_s: lateness that counts as late, seconds.
    :param early_green: allow early green (red truncation); False leaves only green extension.
    """

    max_extension_s: float = 10.0
    lockout_s: float = 60.0
    condition: str = "always"
    late_threshold_s: float = 60.0
    early_green: bool = True

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise InputError(f"transit priority condition {self.condition!r} is not one of {', '.join(CONDITIONS)}")
        for name in ("max_extension_s", "lockout_s", "late_threshold_s"):
            if not getattr(self, name) >= 0:
                raise InputError(f"transit priority {name} {getattr(self, name)} must be >= 0 s")


@dataclass
class _Bus:
    phase: int
    since: float
    lateness_s: float | None
    served: bool = False  # one service per check-in


class TransitPriority:
    """Transit priority for one intersection; :meth:`decide` runs once per controller step.

    :param settings: the intersection's priority settings.
    :param signal_id: the intersection id for the log records.
    """

    def __init__(self, settings: TransitSettings, signal_id: str = "") -> None:
        self.settings = settings
        self.signal_id = signal_id
        #: hi-res events not yet taken (the controller moves them to its own list)
        self.events: list[Event] = []
        self.buses: dict[str, _Bus] = {}
        #: the bus being served, or None
        self.serving: str | None = None
        #: services granted so far
        self.services = 0
        self._phase = 0
        self._extended_s = 0.0
        self._extending = False
        self._lockout_until = float("-inf")
        self._now = 0.0

    # ----------------------------------------------------------------- inputs
    def check_in(self, bus: str, phase: int, time_s: float, lateness_s: float | None = None) -> None:
        """A bus asks for priority on ``phase`` (index) as it enters the approach.

        :param bus: the bus's id (a vehicle or trip id).
        :param phase: index of the phase serving its movement, 0-based.
        :param time_s: controller clock, seconds.
        :param lateness_s: how far behind schedule it is, seconds (negative: early; None: unknown).
        """
        if bus in self.buses:
            return
        self._now = time_s
        self.buses[bus] = _Bus(int(phase), time_s, lateness_s)
        self._emit(EventCode.TSP_CHECK_IN, phase)

    def check_out(self, bus: str, time_s: float) -> None:
        """The bus passed the stop line or left the approach (unknown buses are ignored).

        :param bus: the bus's id.
        :param time_s: controller clock, seconds.
        """
        entry = self.buses.pop(bus, None)
        if entry is None:
            return
        self._now = time_s
        if self.serving == bus:
            self._end_service()
        self._emit(EventCode.TSP_CHECK_OUT, entry.phase)

    # ----------------------------------------------------------------- the decision
    def decide(self, machine: PhaseMachine, policy_choice: int | None, time_s: float,
               suspended: bool = False) -> int | None:
        """The bus's phase while a service runs (asked for instead of the policy's choice), else None.

        :param machine: the phase machine (read only).
        :param policy_choice: the policy's latest choice (index), or None when it has not decided yet.
        :param time_s: controller clock, seconds.
        :param suspended: a preemption or flash has the intersection: no service runs (one running ends).
        :return: the phase index to request instead of the policy's, or None (no priority now).
        """
        self._now = time_s
        if suspended:
            if self.serving is not None:
                self._end_service()
            return None
        if self.serving is None:
            self._maybe_start(machine)
        if self.serving is None:
            return None
        phase = self._phase
        green = machine.interval is Interval.GREEN and machine.phase == phase
        # extension time counts only while the policy's change could take effect (min green done)
        if green and policy_choice is not None and policy_choice != phase and machine.may_end_green():
            if not self._extending:
                self._extending = True
                if self._extended_s == 0:
                    self._emit(EventCode.TSP_EXTEND_GREEN, phase)
            self._extended_s += machine.step_s
        elif green:
            self._extending = False
        if self._extended_s > self.settings.max_extension_s:
            self._end_service()
            return None
        return phase

    def _maybe_start(self, machine: PhaseMachine) -> None:
        if self._now < self._lockout_until:
            return
        s = self.settings
        for bus, entry in sorted(self.buses.items(), key=lambda kv: kv[1].since):
            if entry.served:
                continue
            if s.condition == "late" and (entry.lateness_s is None or entry.lateness_s < s.late_threshold_s):
                continue
            green = machine.interval is Interval.GREEN and machine.phase == entry.phase
            if not green and not s.early_green:
                continue
            self.serving, self._phase, self._extended_s, self._extending = bus, entry.phase, 0.0, False
            entry.served = True
            self.services += 1
            self._emit(EventCode.TSP_SERVICE_START, entry.phase)
            if not green:
                self._emit(EventCode.TSP_EARLY_GREEN, entry.phase)
            return

    def _end_service(self) -> None:
        self._emit(EventCode.TSP_SERVICE_END, self._phase)
        self.serving = None
        self._extending = False
        self._lockout_until = self._now + self.settings.lockout_s

    def _emit(self, code: EventCode, phase: int) -> None:
        self.events.append(Event(self._now, self.signal_id, int(code), int(phase) + 1))
