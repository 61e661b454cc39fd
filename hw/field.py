"""What a central system reads from a field controller, whatever the protocol, and how it becomes the core's
detector readings."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from controller.intersection import Intersection
from controller.policies.base import DetectorReadings
from hw.cabinet import CONTROL_SYSTEM, PhaseStatus


@dataclass(frozen=True)
class FieldInputs:
    """One poll of a cabinet: its phase status, unit status and detector registers.

    :param status: phase and unit status.
    :param presence: detector presence bits (per channel).
    :param counts: loop channels: running vehicle count (mod 65536); zone channels: vehicles in the zone.
    :param queue: halted vehicles per radar zone channel.
    :param occupancy: stop-bar occupancy of the last second, 0..1.
    :param heartbeat_echo: the last heartbeat the cabinet took.
    :param in_fault: the cabinet's safety layer latched flash.
    :param unit: further unit status by name, as the protocol gives it (NTCIP: ``alarm1``, ``alarm2``,
        ``short_alarm`` bytes, ``preempt_state`` of preempt 1, ``pattern`` = coordPatternStatus; both protocols:
        ``preempt_inputs``, the preempts called at the cabinet itself, and ``preempt_active``, a mask of those being
        served, bit *k - 1* = preempt *k*).
    """

    status: PhaseStatus
    presence: np.ndarray
    counts: np.ndarray
    queue: np.ndarray
    occupancy: np.ndarray
    heartbeat_echo: int
    in_fault: bool
    unit: dict = field(default_factory=dict)


def readings_from(inputs: FieldInputs, intersection: Intersection, previous_counts: np.ndarray | None,
                  time_s: float) -> DetectorReadings:
    """The core's detector readings from one poll: loop counts become vehicles since the previous poll.

    :param inputs: this poll.
    :param intersection: the intersection (detector kinds).
    :param previous_counts: the previous poll's count registers (None: first poll, loops count 0).
    :param time_s: the cabinet clock, seconds.
    """
    loops = np.array([d.kind in ("stopbar", "advance") for d in intersection.detectors], dtype=bool)
    counts = inputs.counts
    if previous_counts is None or len(previous_counts) != len(counts):
        delta = np.zeros_like(counts)
    else:
        delta = (counts - previous_counts) % 65536
    count = np.where(loops, delta, counts)
    occupied = inputs.presence | (count > 0) | (inputs.occupancy > 0)
    return DetectorReadings(time_s, occupied, count, np.where(loops, 0.0, inputs.queue),
                            inputs.occupancy, -np.ones(len(counts)))


def is_in_control(inputs: FieldInputs) -> bool:
    """True when the cabinet reports it follows the central system (not backup mode, not in fault)."""
    return inputs.status.control_status == CONTROL_SYSTEM and not inputs.in_fault

