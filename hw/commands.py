"""The central side of phase commands: what a field controller must be told so that it shows what the core's
phase machine decided (hold the green it is in, or force it off towards the phase the core changes to)."""

from __future__ import annotations

from controller.phase_machine import PhaseMachine
from controller.policies.base import Interval
from hw.cabinet import PhaseCommands


def commands_for(machine: PhaseMachine, flash: bool = False) -> PhaseCommands:
    """Commands that make a field controller running the same timing follow ``machine``.

    In green with nothing asked for: hold the phase and call it (a cabinet showing another phase, as after a
    period of local control, then changes to it, since an unheld green gives way to a called phase). Otherwise (a change asked for, or under way): force the
    phase off and call the phase the core changes to; the field controller's own phase machine then times the
    yellow and all-red.

    :param machine: the core's phase machine for the intersection.
    :param flash: the core has the intersection in programmed flash (the controller's own core then times the
        entry and exit).
    """
    if flash:
        return PhaseCommands(flash=True)
    upcoming = machine.pending if machine.pending is not None else machine.target
    if machine.interval is Interval.GREEN and upcoming == machine.phase:
        return PhaseCommands(hold=frozenset({machine.phase}), vehicle_calls=frozenset({machine.phase}))
    return PhaseCommands(force_off=frozenset({machine.phase}), vehicle_calls=frozenset({upcoming}))
