"""A field controller cabinet as the core models it: its own phase machine and conflict monitor, local timing,
and remote phase commands honoured only through its own safety rules.

Both virtual field controllers (Modbus and NTCIP) put a protocol in front of this class; the central side
(:mod:`hw.commands`) turns the core's decisions into the same commands. Remote commands are requests: the local
phase machine decides when (min green, yellow, all-red, pedestrian clearance), and the local monitor flashes the
intersection on a fault. When the central system stops refreshing its commands for ``backup_time_s`` (NTCIP's
``unitBackupTime``, a Modbus heartbeat), the cabinet drops every remote hold, force-off and call and runs its own
local policy, as a real cabinet falls back to its local plan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from controller.flash import major_vehicle_links
from controller.intersection import Intersection
from controller.policies.base import DetectorReadings, Interval, Policy
from controller.preemption import PreemptPlan, PreemptStage
from controller.signal_controller import SignalController

#: NTCIP 1202 unitFlashStatus codes used here.
FLASH_NOT = 2
FLASH_AUTOMATIC = 3
FLASH_FAULT_MONITOR = 5
#: NTCIP 1202 unitControlStatus codes used here.
CONTROL_SYSTEM = 2
CONTROL_BACKUP = 4


@dataclass(frozen=True)
class PhaseCommands:
    """What a central system asks of a field controller (NTCIP phase control groups, Modbus coils).

    Phase indices are 0-based (phase *k* here is NEMA-style phase number *k + 1* on the wire).

    :param hold: keep this phase green while it is green.
    :param force_off: end this phase's green (after its min green) and go to the next called phase.
    :param vehicle_calls: phases with a vehicle call from the central system.
    :param pedestrian_calls: phases with a pedestrian call from the central system.
    :param omit: phases not to serve.
    :param flash: go to programmed flash (safe entry and exit by the cabinet's own core); False leaves it.
    :param preempt: preempt numbers (1-based) the central system calls (Modbus preempt coils, NTCIP
        preemptControlState); the cabinet's own core runs the preemption sequence.
    """

    hold: frozenset[int] = frozenset()
    force_off: frozenset[int] = frozenset()
    vehicle_calls: frozenset[int] = frozenset()
    pedestrian_calls: frozenset[int] = frozenset()
    omit: frozenset[int] = frozenset()
    flash: bool = False
    preempt: frozenset[int] = frozenset()


def phase_mask(phases) -> int:
    """Bitmask of phase indices: bit *k* = phase index *k* (NTCIP group packing: bit 0 = phase 1)."""
    mask = 0
    for p in phases:
        mask |= 1 << int(p)
    return mask


def phases_of(mask: int) -> frozenset[int]:
    """Phase indices set in a bitmask (inverse of :func:`phase_mask`)."""
    return frozenset(k for k in range(int(mask).bit_length()) if mask >> k & 1)


@dataclass(frozen=True)
class PhaseStatus:
    """What a field controller reports of its phases (NTCIP phase status groups), as bitmasks of phase indices,
    plus its unit status.

    :param greens: phases timing green.
    :param yellows: phases timing yellow.
    :param reds: phases red (all others).
    :param walks: phases whose crosswalks show walk.
    :param ped_clears: phases whose crosswalks show flashing don't walk (pedestrian clearance).
    :param dont_walks: phases with crosswalks showing don't walk.
    :param phase_ons: the active phase (green, yellow or its red clearance).
    :param phase_nexts: the phase committed next during a change.
    :param flash_status: NTCIP unitFlashStatus (2 not flashing, 5 fault monitor).
    :param control_status: NTCIP unitControlStatus (2 system control, 4 backup mode).
    :param clock_s: the cabinet's clock, whole seconds.
    :param preempt_active: preempts being served (entry to exit), bit *k - 1* = preempt *k*.
    :param ped_calls: phases with a pedestrian call registered and not yet served (NTCIP
        phaseStatusGroupPedCalls): the cabinet's push buttons.
    """

    greens: int = 0
    yellows: int = 0
    reds: int = 0
    walks: int = 0
    ped_clears: int = 0
    dont_walks: int = 0
    phase_ons: int = 0
    phase_nexts: int = 0
    flash_status: int = FLASH_NOT
    control_status: int = CONTROL_BACKUP
    clock_s: int = 0
    preempt_active: int = 0
    ped_calls: int = 0


@dataclass
class CabinetLog:
    """What happened to the cabinet's remote control (for the operator and for tests).

    :param took_control: times the central system (re)gained control, clock seconds.
    :param lost_control: times the backup timer lapsed, clock seconds.
    """

    took_control: list[float] = field(default_factory=list)
    lost_control: list[float] = field(default_factory=list)


class FieldCabinet:
    """One intersection's field controller.

    :param intersection: the intersection it runs.
    :param local_policy: its local timing (e.g. the network's fixed program, or actuated), used whenever the
        central system is not in control.
    :param step_s: tick length, seconds.
    :param backup_time_s: seconds without a refresh from the central system before the cabinet falls back to
        local timing (0: never under remote control).
    :param preempt_plans: the cabinet's preempt programming (one plan per preempt input), or None for none.
        Its preempt inputs (:meth:`set_preempt_inputs`) and the central system's preempt commands both call
        them; while a preemption runs, the cabinet's own core decides (remote commands and local timing wait).
    """

    def __init__(self, intersection: Intersection, local_policy: Policy, step_s: float = 1.0,
                 backup_time_s: float = 3.0, preempt_plans: list[PreemptPlan] | None = None) -> None:
        self.intersection = intersection
        self.controller = SignalController(intersection, None, step_s)
        self.controller.modes.configure(preempt_plans)
        #: preempt inputs on now (the cabinet's own emitter receivers / preempt detectors), 1-based numbers
        self.preempt_inputs: frozenset[int] = frozenset()
        #: transit priority detector inputs on now, 1-based phase numbers (a bus checked in on that phase's
        #: approach): reported to the central system, which runs the priority; local timing ignores them
        self.priority_inputs: frozenset[int] = frozenset()
        self.local = local_policy
        self.local.reset(intersection, step_s)
        self.step_s = step_s
        self.backup_time_s = backup_time_s
        self.commands = PhaseCommands()
        self.time_s = 0.0
        self._remote_until = -math.inf
        self._was_remote = False
        self.log = CabinetLog()
        self._ped_links = {k: sorted(i for i in p.greens if intersection.links[i].kind == "pedestrian")
                           for k, p in enumerate(intersection.phases)}
        self._ped_phases = frozenset(k for k, links in self._ped_links.items() if links)

    @property
    def remote(self) -> bool:
        """True while the central system's commands are fresh (its backup timer has not lapsed)."""
        return self.time_s < self._remote_until

    def receive(self, commands: PhaseCommands) -> None:
        """New commands from the central system (phase indices beyond this intersection are ignored)."""
        n = len(self.intersection.phases)

        def own(s: frozenset[int]) -> frozenset[int]:
            return frozenset(p for p in s if 0 <= p < n)

        self.commands = PhaseCommands(own(commands.hold), own(commands.force_off), own(commands.vehicle_calls),
                                      own(commands.pedestrian_calls), own(commands.omit), bool(commands.flash),
                                      frozenset(commands.preempt))

    def set_preempt_inputs(self, numbers) -> None:
        """The cabinet's preempt inputs now on (1-based preempt numbers; others are off)."""
        self.preempt_inputs = frozenset(int(n) for n in numbers)

    def press_pedestrian_buttons(self, phases) -> None:
        """Pedestrian push buttons pressed now on the crosswalks of ``phases`` (indices): the cabinet registers the
        calls itself, as a field controller does (its phase machine times the walk at the phase's next green), and
        reports them (:attr:`PhaseStatus.ped_calls`) for the central system to see. Phases without crosswalks are
        ignored."""
        self.controller.call_pedestrians([p for p in phases if p in self._ped_phases])

    #: the name the SUMO push-button model calls (:class:`envs.pedestrian_buttons.SumoPedestrianButtons`)
    call_pedestrians = press_pedestrian_buttons

    def set_priority_inputs(self, phases) -> None:
        """The cabinet's transit priority detector inputs now on (1-based phase numbers; others are off)."""
        self.priority_inputs = frozenset(int(n) for n in phases)

    @property
    def preempting(self) -> bool:
        """True while the cabinet's core runs a preemption sequence."""
        p = self.controller.modes.preemption
        return p is not None and p.engaged

    def refresh(self) -> None:
        """The central system showed it is alive (a new heartbeat, a re-sent control object): restart the
        backup timer."""
        if self.backup_time_s > 0:
            self._remote_until = self.time_s + self.backup_time_s

    def step(self, readings: DetectorReadings) -> str:
        """One tick of local timing with this tick's detector data; returns the checked state to show."""
        remote = self.remote
        if remote != self._was_remote:
            (self.log.took_control if remote else self.log.lost_control).append(self.time_s)
            if not remote:
                self.commands = PhaseCommands()  # a lapsed master's holds and calls are dropped
            self._was_remote = remote
        ctrl = self.controller
        wants_flash = remote and self.commands.flash
        if wants_flash and not ctrl.flash.active:
            ctrl.request_flash(major_vehicle_links(self.intersection))
        elif not wants_flash and ctrl.flash.active:
            ctrl.release_flash()  # the central system let go, or it is gone: local timing resumes after the exit
        preemption = ctrl.modes.preemption
        if preemption is not None:  # its own inputs, and the central system's calls while it is in control
            preemption.set_inputs(self.preempt_inputs | (self.commands.preempt if remote else frozenset()))
        if not ctrl.monitor.in_flash and not ctrl.flash.active and not self.preempting:
            if remote:
                self._apply(self.commands)
            else:
                ctrl.request(self.local.decide(ctrl.view(readings)))
        # under remote control the central system places the calls; its own detectors place them otherwise
        state = ctrl.step(None if remote else readings)
        self.time_s += self.step_s
        return state

    def _apply(self, c: PhaseCommands) -> None:
        m = self.controller.machine
        allowed = [p for p in range(len(self.intersection.phases)) if p not in c.omit]
        m.set_vehicle_calls([p for p in c.vehicle_calls if p in allowed])  # the central calls, as they are now
        for p in c.pedestrian_calls:
            if p in allowed and p in self._ped_phases:
                m.call_pedestrian(p)
        if m.interval is not Interval.GREEN:
            return  # a change is under way: the machine finishes it
        if m.phase in c.hold and m.phase not in c.force_off and m.phase not in c.omit:
            m.request(m.phase)  # hold: extend (also withdraws a change asked for but not begun)
            return
        # not held (or forced off, or omitted): give way to the next called phase in sequence, if any
        called = c.vehicle_calls | c.pedestrian_calls
        n = len(self.intersection.phases)
        for k in range(1, n):
            q = (m.phase + k) % n
            if q in called and q in allowed:
                m.request(q)
                return

    def status(self) -> PhaseStatus:
        """The phase status as a field controller reports it."""
        ctrl, m = self.controller, self.controller.machine
        if ctrl.monitor.in_flash or ctrl.interval is Interval.FLASH:
            n = len(self.intersection.phases)
            return PhaseStatus(reds=(1 << n) - 1, dont_walks=phase_mask(self._ped_phases),
                               flash_status=FLASH_FAULT_MONITOR if ctrl.monitor.in_flash else FLASH_AUTOMATIC,
                               control_status=self._control(),
                               clock_s=int(self.time_s))
        n = len(self.intersection.phases)
        green = yellow = 0
        interval = ctrl.interval  # the flash sequencer's clearance and exit too, not only the machine's
        if interval is Interval.GREEN:
            green = 1 << m.phase
        elif interval is Interval.YELLOW:
            yellow = 1 << m.phase
        all_phases = (1 << n) - 1
        walks = clears = 0
        state = ctrl.state
        for p in self._ped_phases:  # crosswalk links show G (walk), y (pedestrian clearance) or r (don't walk)
            shown = {state[i] for i in self._ped_links[p]}
            if "G" in shown or "g" in shown:
                walks |= 1 << p
            elif "y" in shown:
                clears |= 1 << p
        upcoming = m.pending if m.pending is not None else m.target
        nexts = 1 << upcoming if upcoming != m.phase else 0
        return PhaseStatus(greens=green, yellows=yellow, reds=all_phases & ~(green | yellow), walks=walks,
                           ped_clears=clears, dont_walks=phase_mask(self._ped_phases) & ~(walks | clears),
                           phase_ons=1 << m.phase, phase_nexts=nexts, flash_status=FLASH_NOT,
                           control_status=self._control(), clock_s=int(self.time_s),
                           preempt_active=self._preempt_mask(), ped_calls=phase_mask(m.pedestrian_calls))

    def preempt_state(self, number: int) -> int:
        """NTCIP 1202 preemptState of preempt ``number``: 2 not active, 3 not active with call, 4 entry started,
        5 track service, 6 dwell, 8 exit started (7 linkActive and 9 maxPresence are not reported)."""
        p = self.controller.modes.preemption
        if p is None or number not in p.plans:
            return 2
        if p.active is not None and p.active.number == number:
            return {PreemptStage.ENTRY: 4, PreemptStage.TRACK: 5, PreemptStage.DWELL: 6,
                    PreemptStage.EXIT: 8}.get(p.stage, 2)
        called = number in self.preempt_inputs or (self.remote and number in self.commands.preempt)
        return 3 if called else 2

    def _preempt_mask(self) -> int:
        p = self.controller.modes.preemption
        if p is None or p.active is None or p.stage is PreemptStage.IDLE:
            return 0
        return 1 << (p.active.number - 1) if p.active.number <= 16 else 0

    def _control(self) -> int:
        return CONTROL_SYSTEM if self.remote else CONTROL_BACKUP
