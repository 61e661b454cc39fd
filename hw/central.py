"""The core at the centre driving field intersections through an adapter: once per cabinet second, read status
and detectors, let the core decide (policy → phase machine → safety monitor), write the commands that realise it.

:class:`FieldLink` keeps the connection: on any :class:`~hw.errors.FieldError` it closes, logs one line and
reconnects with a capped backoff, so a controller that restarts is driven again within about a second of its
return. While the link is down nothing is sent and the cabinet runs its own local timing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from controller.detector_health import DetectorHealth
from controller.intersection import Intersection
from controller.policies.base import Interval, Policy
from controller.signal_controller import SignalController
from hw.commands import commands_for
from hw.errors import FieldError
from hw.field import FieldInputs, is_in_control, readings_from
from hw.modbus_adapter import ModbusAdapter


#: most seconds the core catches up after a late poll
MAX_CATCH_UP_S = 5
#: longest jump of the cabinet clock between two polls taken as time that passed (a link lost for up to an hour);
#: a longer one (a restarted controller's clock starting again from 0) counts as one second
MAX_CLOCK_JUMP_S = 3600


@dataclass
class LinkLog:
    """What happened on a link: one line per error, and when it came up and went down (monotonic seconds)."""

    errors: list[str] = field(default_factory=list)
    up: list[float] = field(default_factory=list)
    down: list[float] = field(default_factory=list)


class FieldLink:
    """An adapter plus reconnection with backoff.

    :param adapter: the protocol adapter.
    :param backoff_s: first wait after a failure, seconds (doubles per failure).
    :param max_backoff_s: longest wait between attempts, seconds.
    :param log: called with each one-line error (e.g. ``logging.warning``).
    """

    def __init__(self, adapter: ModbusAdapter, backoff_s: float = 0.1, max_backoff_s: float = 1.0,
                 log=None) -> None:
        self.adapter = adapter
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._wait = backoff_s
        self._next_try = 0.0
        self.history = LinkLog()
        self._log = log

    @property
    def up(self) -> bool:
        """True while connected."""
        return self.adapter.connected

    async def ensure(self) -> bool:
        """Connect if down and the backoff has passed; True when the link is up."""
        if self.adapter.connected:
            return True
        now = time.monotonic()
        if now < self._next_try:
            return False
        try:
            await self.adapter.connect()
        except FieldError as exc:
            self._note(str(exc))
            return False
        self._wait = self.backoff_s
        self.history.up.append(time.monotonic())
        return True

    def report(self, message: str) -> None:
        """Record (and log) an event that does not break the link, e.g. a controller that dropped to backup mode."""
        self.history.errors.append(message)
        if self._log is not None:
            self._log(message)

    async def failed(self, error: FieldError) -> None:
        """Record a failure, close the connection and schedule the next attempt."""
        self._note(str(error))
        if self.adapter.connected:
            self.history.down.append(time.monotonic())
        await self.adapter.close()

    def _note(self, message: str) -> None:
        self.history.errors.append(message)
        if self._log is not None:
            self._log(message)
        self._next_try = time.monotonic() + self._wait
        self._wait = min(self._wait * 2, self.max_backoff_s)


class CentralIntersection:
    """One field intersection driven by the core.

    :param intersection: its description (the same the cabinet runs).
    :param policy: the policy proposing phases.
    :param link: the link to the device.
    :param unit: the intersection's unit (Modbus device id).
    :param health: detector health watch (failed detectors masked, their phases recalled), or None.
    """

    def __init__(self, intersection: Intersection, policy: Policy, link: FieldLink, unit: int,
                 health: DetectorHealth | None = None) -> None:
        self.intersection = intersection
        self.controller = SignalController(intersection, policy, health=health)
        self.link, self.unit = link, unit
        self.heartbeat = 0
        self.last_clock: int | None = None
        #: per phase: it serves a crosswalk (a pedestrian call reported for it is mirrored)
        self._has_crosswalk = [any(intersection.links[i].kind == "pedestrian" for i in p.greens)
                               for p in intersection.phases]
        #: the cabinet's seconds, unwrapped: its clock register counts modulo 65536 s (18 h 12 min), but the core's
        #: timers (gap, detector health, radar) need a time that never goes back
        self.elapsed_s = 0
        self._counts = None
        #: (cabinet clock s, state the core commanded for that second, its green and yellow phase bitmasks)
        self.commanded: list[tuple[int, str, int, int]] = []
        #: (cabinet clock s, phase status the cabinet reported)
        self.reported: list[tuple[int, FieldInputs]] = []
        self.in_control = False
        #: times the controller dropped central control while the link was up (backup mode, fault)
        self.lost_control = 0
        #: called after every core step with the cabinet second it stands for and the poll's inputs (the daemon's
        #: event recorder: a late poll's catch-up steps are logged too)
        self.on_step = None
        #: preempt numbers the central system calls (:meth:`hw.daemon.Daemon.command_preempt`); the cabinet runs the
        #: sequence, and the core here mirrors it from these and the cabinet's reported preempt inputs
        self.preempt_commands: set[int] = set()
        #: the cabinet's transit priority detector inputs on at the last poll (1-based phase numbers)
        self.priority_inputs: frozenset[int] = frozenset()

    async def cycle(self) -> bool:
        """Poll once; when the cabinet's clock moved on, decide and command. True when a decision was sent.

        Never raises for field trouble: errors go to the link, which reconnects.
        """
        if not await self.link.ensure():
            self.in_control = False
            return False
        try:
            inputs = await self.link.adapter.read(self.unit, len(self.intersection.detectors))
            was, self.in_control = self.in_control, is_in_control(inputs)
            if was and not self.in_control:
                self.lost_control += 1
                self.link.report(f"{self.intersection.id} (unit {self.unit}): the controller no longer follows the "
                                 f"central commands (control status {inputs.status.control_status}, "
                                 f"{'fault flash' if inputs.in_fault else 'backup mode'}); it runs its own timing")
            if inputs.status.clock_s == self.last_clock:
                return False
            await self.decide_and_command(inputs)
            return True
        except FieldError as exc:
            await self.link.failed(exc)
            self.in_control = False
            return False

    def _follow_priority_inputs(self, on: frozenset[int]) -> None:
        """The cabinet's transit priority detector inputs drive the core's transit priority: an input turning on
        checks a bus in on that phase (lateness unknown: a detector does not know the timetable), one turning off
        checks it out. An input for a phase the intersection does not have is ignored."""
        tsp, now = self.controller.modes.priority, self.controller.modes.time_s
        phases = len(self.intersection.phases)
        on = frozenset(p for p in on if 1 <= p <= phases)
        for phase in sorted(self.priority_inputs - on):
            tsp.check_out(f"input {phase}", now)
        for phase in sorted(on - self.priority_inputs):
            tsp.check_in(f"input {phase}", phase - 1, now)
        self.priority_inputs = on

    async def decide_and_command(self, inputs: FieldInputs) -> str:
        """One core step on a poll's inputs and the write of the commands that realise it; returns the state the
        core decided.

        :raises FieldError: when the write fails (:meth:`cycle` hands it to the link).
        """
        clock = inputs.status.clock_s
        self.reported.append((clock, inputs))
        # a late poll (the cabinet's clock moved on by more than a second): step the core as many seconds, so its
        # phase machine keeps time with the cabinet's; after a long gap (a lost link) one step, the commands resync
        behind = (clock - self.last_clock) % 65536 if self.last_clock is not None else 1
        if self.last_clock is None:
            self.elapsed_s = clock
        else:
            self.elapsed_s += behind if behind <= MAX_CLOCK_JUMP_S else 1
        self.last_clock = clock
        readings = readings_from(inputs, self.intersection, self._counts, float(self.elapsed_s))
        self._counts = inputs.counts
        preemption = self.controller.modes.preemption
        if preemption is not None:
            preemption.set_inputs(set(inputs.unit.get("preempt_inputs", ())) | self.preempt_commands)
        if self.controller.modes.priority is not None:
            self._follow_priority_inputs(frozenset(inputs.unit.get("priority_inputs", ())))
        if inputs.status.ped_calls:  # the cabinet's push buttons: its machine times the walks, so does this core
            ped = inputs.status.ped_calls
            self.controller.call_pedestrians([p for p in range(len(self.intersection.phases)) if ped >> p & 1
                                              and self._has_crosswalk[p]])
        catch_up = behind - 1 if 1 < behind <= MAX_CATCH_UP_S else 0
        for k in range(catch_up):
            self.controller.step(readings)
            if self.on_step is not None:
                self.on_step((clock - catch_up + k) % 65536, inputs)
        state = self.controller.step(readings)
        if self.on_step is not None:
            self.on_step(clock, inputs)
        self.heartbeat = (self.heartbeat + 1) % 65536
        commands = commands_for(self.controller.machine, self.controller.flash.active)
        if self.preempt_commands:
            commands = replace(commands, preempt=frozenset(self.preempt_commands))
        await self.link.adapter.write(self.unit, commands, self.heartbeat)
        m = self.controller.machine
        green = 1 << m.phase if self.controller.interval is Interval.GREEN else 0
        yellow = 1 << m.phase if self.controller.interval is Interval.YELLOW else 0
        self.commanded.append((clock, state, green, yellow))
        return state
