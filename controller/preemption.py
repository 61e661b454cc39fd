"""Emergency-vehicle preemption: call, delay, entry, track clearance, dwell, exit, as a NEMA controller runs it.

Sequence (standards.md §E): a preempt input (a detector or emitter receiver, a radar classification, a central
command) goes on → after the preempt *delay* (a call that drops before it never starts a sequence) the *entry*
ends the green being served early, but not below the preempt minimum green, and cuts a walk to the preempt
minimum walk; the yellow and red clearance of every ending green, and the pedestrian clearance, always run in
full (the phase machine times them, the safety monitor checks them) → optional *track clearance* green → *dwell*
on the emergency approach's phase while the call is present, for at least the minimum dwell (cut short once the
call has dropped when another preempt call is waiting: ``dwell_yields``) and beyond max green → *exit* to the exit
phase. *Maximum presence* ends a stuck call. A lower priority number wins; a call of equal
or lower priority waits until the preemption being served ends.

Every step is logged in the Indiana hi-res codes: 102 call on → 105 entry started → (106 track clearance) →
107 dwell → 104 call off → 111 exit begins (110 when maximum presence ended the call); the parameter is the
preempt number.

>>> from controller.testing import two_phase_intersection
>>> from controller.phase_machine import PhaseMachine
>>> m = PhaseMachine(two_phase_intersection(min_green_s=10))
>>> p = Preemption([PreemptPlan(number=1, dwell_phase=1, min_green_s=2.0)])
>>> _ = [m.tick() for _ in range(4)]          # start-up all-red, phase 0 green for 2 s
>>> p.call(1, True)
>>> shown = []
>>> for t in range(12):
...     _ = p.step(m, float(t))
...     shown.append(m.tick())
>>> shown[:6]                  # the green ends at once (2 s shown: its min green of 10 s is cut to 2 s), then
['yyrr', 'yyrr', 'yyrr', 'rrrr', 'rrrr', 'rrGG']
>>> [e.code for e in p.events]  # the full 3 s yellow and 2 s all-red; the emergency approach's phase dwells
[102, 105, 107]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from controller.errors import InputError
from controller.events import Event, EventCode
from controller.intersection import Intersection
from controller.phase_machine import PhaseMachine
from controller.policies.base import Interval


@dataclass(frozen=True)
class PreemptPlan:
    """One preempt input's programming (NTCIP 1202 preempt table, in seconds).

    :param number: preempt number, 1-based (the log parameter; Modbus preempt input / NTCIP row).
    :param dwell_phase: index of the phase serving the emergency approach, 0-based.
    :param priority: lower wins; default the preempt number (NTCIP: a lower preempt number has priority).
    :param delay_s: seconds the call must be present before the entry starts (0: at once).
    :param min_green_s: preempt minimum green: an ending green runs at least this long (or its own min green
        if shorter); 0 terminates at once.
    :param min_walk_s: preempt minimum walk: a walk is cut to this (a walk that ran longer ends now); the
        pedestrian clearance always runs in full.
    :param track_phase: index of a track (queue) clearance phase served before the dwell, or None.
    :param track_green_s: track clearance green, seconds (0 skips it).
    :param min_dwell_s: shortest dwell, seconds.
    :param dwell_yields: when the call has dropped (the emergency vehicle is through) and another preempt call is
        ready and waiting, end the dwell without running out ``min_dwell_s``: the minimum dwell is for the vehicle
        being served, and holding it would make a second emergency vehicle wait behind an empty green (two
        ambulances converging on one intersection). False keeps the full minimum dwell in every case.
    :param max_presence_s: a call present longer than this is taken as stuck and ends the preemption (log 110)
        until it drops and comes again; 0 disables.
    :param exit_phase: index of the phase served on exit, or None to hand back to the policy at once.
    """

    number: int
    dwell_phase: int
    priority: int | None = None
    delay_s: float = 0.0
    min_green_s: float = 2.0
    min_walk_s: float = 3.0
    track_phase: int | None = None
    track_green_s: float = 0.0
    min_dwell_s: float = 10.0
    dwell_yields: bool = True
    max_presence_s: float = 180.0
    exit_phase: int | None = None

    @property
    def rank(self) -> int:
        """The priority used to choose among calls (lower wins)."""
        return self.number if self.priority is None else self.priority

    def check(self, intersection: Intersection) -> None:
        """Refuse a plan that does not fit ``intersection``, naming the problem.

        :raises InputError: for phases the intersection lacks or negative times.
        """
        where = f"intersection {intersection.id!r}: preempt {self.number}"
        n = len(intersection.phases)
        if not 1 <= self.number <= 255:
            raise InputError(f"{where}: the preempt number must be in 1..255")
        for name in ("dwell_phase", "track_phase", "exit_phase"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < n:
                raise InputError(f"{where}: {name} index {value} is not a phase (it has {n})")
        for name in ("delay_s", "min_green_s", "min_walk_s", "track_green_s", "min_dwell_s", "max_presence_s"):
            if not getattr(self, name) >= 0:
                raise InputError(f"{where}: {name} {getattr(self, name)} must be >= 0 s")


class PreemptStage(enum.Enum):
    """Where the preemption sequence is."""

    IDLE = "idle"
    ENTRY = "entry"  # ending the green served, clearances, towards the track or dwell phase
    TRACK = "track"  # track clearance green
    DWELL = "dwell"
    EXIT = "exit"  # towards the exit phase


@dataclass
class _Call:
    on_since: float
    stuck: bool = False  # maximum presence exceeded: ignored until the input drops


class Preemption:
    """Preemption for one intersection; :meth:`step` runs once per controller step before the phase machine ticks.

    :param plans: one plan per preempt input (numbers unique).
    :param signal_id: the intersection id for the log records.
    """

    def __init__(self, plans: list[PreemptPlan], signal_id: str = "") -> None:
        numbers = [p.number for p in plans]
        if len(set(numbers)) != len(numbers):
            raise InputError(f"intersection {signal_id!r}: preempt numbers {numbers} are not unique")
        self.plans = {p.number: p for p in plans}
        self.signal_id = signal_id
        self.stage = PreemptStage.IDLE
        #: the plan being served (or exiting), None when idle
        self.active: PreemptPlan | None = None
        #: hi-res events not yet taken (the controller moves them to its own list)
        self.events: list[Event] = []
        self._inputs: set[int] = set()
        self._calls: dict[int, _Call] = {}
        self._now = 0.0
        self._stage_since = 0.0
        self._track_since: int | None = None
        #: preemption entries so far (105 events)
        self.entries = 0

    # ----------------------------------------------------------------- inputs
    def call(self, number: int, present: bool) -> None:
        """The preempt input ``number`` is on (``present``) or off now. Unknown numbers are refused.

        :param number: preempt number, 1-based.
        :param present: True while the input is on.
        :raises InputError: for a number without a plan.
        """
        if number not in self.plans:
            raise InputError(f"intersection {self.signal_id!r}: no preempt {number} "
                             f"(configured: {sorted(self.plans) or 'none'})")
        if present:
            self._inputs.add(number)
        else:
            self._inputs.discard(number)

    def set_inputs(self, numbers) -> None:
        """All preempt inputs at once: ``numbers`` are on, every other input is off (numbers without a plan are
        ignored, as an unprogrammed input is)."""
        self._inputs = {n for n in numbers if n in self.plans}

    # ----------------------------------------------------------------- status
    @property
    def engaged(self) -> bool:
        """True while the sequence is running (entry to exit): the policy and transit priority do not decide."""
        return self.stage is not PreemptStage.IDLE

    @property
    def waiting(self) -> bool:
        """True while a call is on (delay running or being served): a scheduled flash waits."""
        return self.engaged or any(n not in self._calls or not self._calls[n].stuck for n in self._inputs)

    def observe(self, time_s: float) -> None:
        """Keep the calls' times and events up to date while something else has the intersection (a flash)."""
        self._now = time_s
        self._update_calls()

    def abort(self, machine: PhaseMachine) -> None:
        """End the sequence at once (a flash that does not yield took the intersection): hold and preempt limits
        are cleared and the exit is logged; a call still present starts a new entry afterwards."""
        if self.engaged:
            if self.stage is not PreemptStage.EXIT:
                self._emit(EventCode.PREEMPT_EXIT, self.active.number)  # type: ignore[union-attr]
            machine.set_hold(False)
            machine.set_preempt_limits(None)
            self.stage, self.active = PreemptStage.IDLE, None

    # ----------------------------------------------------------------- the step
    def step(self, machine: PhaseMachine, time_s: float) -> bool:
        """Update calls and the sequence, and place this step's requests on ``machine``.

        :param machine: the intersection's phase machine (requests, hold and preempt limits are set on it).
        :param time_s: the controller clock, seconds.
        :return: True when preemption decides this step (the policy's choice is not used).
        """
        self._now = time_s
        self._update_calls()
        chosen = self._choose()
        if chosen is not None and (self.active is None or self.stage is PreemptStage.EXIT
                                   or chosen.rank < self.active.rank):
            if chosen is not self.active or self.stage is PreemptStage.EXIT:
                self._enter(chosen, machine)
        plan = self.active
        if plan is None:
            return False
        called = plan.number in self._calls and not self._calls[plan.number].stuck
        if self.stage in (PreemptStage.ENTRY, PreemptStage.TRACK) and not called:
            self._exit(machine)  # the call went (or got stuck) before the dwell: nothing to dwell for
        if self.stage is PreemptStage.ENTRY:
            self._in_entry(plan, machine)
        elif self.stage is PreemptStage.TRACK:
            self._in_track(plan, machine)
        elif self.stage is PreemptStage.DWELL:
            machine.request(plan.dwell_phase)
            if not called and (time_s - self._stage_since >= plan.min_dwell_s
                               or (plan.dwell_yields and self._another_waiting(plan))):
                self._exit(machine)
        if self.stage is PreemptStage.EXIT:
            self._in_exit(plan, machine)
        return self.stage is not PreemptStage.IDLE

    def after_tick(self, machine: PhaseMachine, time_s: float) -> None:
        """Note a track or dwell green that began in the tick just run (logged at the time it began).

        :param machine: the phase machine after its tick.
        :param time_s: the controller clock of that tick, seconds.
        """
        if self.stage is PreemptStage.ENTRY and self.active is not None:
            self._now = time_s
            self._arrive(self.active, machine)

    def _update_calls(self) -> None:
        for number in sorted(self._inputs - set(self._calls)):
            self._calls[number] = _Call(self._now)
            self._emit(EventCode.PREEMPT_CALL_ON, number)
        for number in sorted(set(self._calls) - self._inputs):
            del self._calls[number]
            self._emit(EventCode.PREEMPT_CALL_OFF, number)
        for number, call in self._calls.items():
            limit = self.plans[number].max_presence_s
            if not call.stuck and limit > 0 and self._now - call.on_since >= limit:
                call.stuck = True
                self._emit(EventCode.PREEMPT_MAX_PRESENCE, number)

    def _choose(self) -> PreemptPlan | None:
        """The call to serve: delay passed, not stuck; lowest rank, then the earliest call."""
        ready = [(self.plans[n].rank, c.on_since, n) for n, c in self._calls.items()
                 if not c.stuck and self._now - c.on_since >= self.plans[n].delay_s]
        return self.plans[min(ready)[2]] if ready else None

    def _another_waiting(self, plan: PreemptPlan) -> bool:
        """True when a call other than ``plan``'s is ready to be served (delay passed, not stuck)."""
        return any(n != plan.number and not c.stuck and self._now - c.on_since >= self.plans[n].delay_s
                   for n, c in self._calls.items())

    def _enter(self, plan: PreemptPlan, machine: PhaseMachine) -> None:
        self.active = plan
        self.stage = PreemptStage.ENTRY
        self._stage_since = self._now
        self._track_since = None
        machine.set_hold(False)
        machine.set_preempt_limits(plan.min_green_s, plan.min_walk_s)
        self.entries += 1
        self._emit(EventCode.PREEMPT_ENTRY_STARTED, plan.number)

    def _first_phase(self, plan: PreemptPlan) -> int:
        track = plan.track_phase is not None and plan.track_green_s > 0 and plan.track_phase != plan.dwell_phase
        return plan.track_phase if track else plan.dwell_phase  # type: ignore[return-value]

    def _in_entry(self, plan: PreemptPlan, machine: PhaseMachine) -> None:
        machine.request(self._target(plan))
        self._arrive(plan, machine)

    def _target(self, plan: PreemptPlan) -> int:
        return self._first_phase(plan) if self._track_since is None else plan.dwell_phase

    def _arrive(self, plan: PreemptPlan, machine: PhaseMachine) -> None:
        """Begin the track clearance or the dwell once the machine shows its phase green."""
        target = self._target(plan)
        if machine.interval is not Interval.GREEN or machine.phase != target:
            return
        if target == plan.dwell_phase:
            self._begin_dwell(plan, machine)
        else:
            self.stage, self._stage_since = PreemptStage.TRACK, self._now
            self._track_since = machine.now
            machine.set_hold(True)
            self._emit(EventCode.PREEMPT_TRACK_CLEARANCE, plan.number)

    def _in_track(self, plan: PreemptPlan, machine: PhaseMachine) -> None:
        if self._now - self._stage_since >= plan.track_green_s:
            machine.set_hold(False)
            self.stage = PreemptStage.ENTRY  # on to the dwell phase (the track green keeps the preempt limits)
            self._in_entry(plan, machine)
        else:
            machine.request(plan.track_phase)  # type: ignore[arg-type]

    def _begin_dwell(self, plan: PreemptPlan, machine: PhaseMachine) -> None:
        self.stage, self._stage_since = PreemptStage.DWELL, self._now
        machine.set_preempt_limits(None)
        machine.set_hold(True)
        self._emit(EventCode.PREEMPT_DWELL, plan.number)

    def _exit(self, machine: PhaseMachine) -> None:
        self.stage = PreemptStage.EXIT
        machine.set_hold(False)
        machine.set_preempt_limits(None)
        self._emit(EventCode.PREEMPT_EXIT, self.active.number)  # type: ignore[union-attr]

    def _in_exit(self, plan: PreemptPlan, machine: PhaseMachine) -> None:
        exit_phase = plan.exit_phase
        if exit_phase is None or (machine.interval is Interval.GREEN and machine.phase == exit_phase):
            self.stage, self.active = PreemptStage.IDLE, None
            return
        machine.request(exit_phase)

    def _emit(self, code: EventCode, number: int) -> None:
        self.events.append(Event(self._now, self.signal_id, int(code), int(number)))


def approach_phases(intersection: Intersection) -> dict[str, int]:
    """Per approach lane, the phase (index) that serves most of the lane's vehicle movements. Ties go to the phase
    that also serves most of the movements the lane's traffic meets next at the same signal (a joined signal's
    next stop line: a roundabout ring whose next section is red would stop an emergency vehicle a few metres on),
    then to the first.
    """
    lanes: dict[str, list[int]] = {}
    for link in intersection.links:
        if link.kind == "vehicle":
            lanes.setdefault(link.from_lane, []).append(link.index)
    out = {}
    for lane, links in lanes.items():
        following = [l for link in links for l in lanes.get(intersection.links[link].to_lane, [])]
        served = [(len(p.greens.intersection(links)), len(p.greens.intersection(following)))
                  for p in intersection.phases]
        if max(served)[0] > 0:
            out[lane] = served.index(max(served))
    return out
