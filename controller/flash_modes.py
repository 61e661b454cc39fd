"""Why an intersection flashes: scheduled, manual and fault flash requests from several sources, the one that wins,
its pattern, and the NTCIP unitFlashStatus code its 173 events carry.

Sources, highest first (standards.md §D): the safety monitor latched a fault (``monitor``, code 5 faultMonitor);
the field controller reports MMU or fault flash (``mmu``, 6); every detector that places calls has failed
(``detection``, 1 other: NTCIP has no code of its own for it); an operator's command (``manual``, 4 localManual);
the time-of-day schedule (``scheduled``, 3 automatic). Fault flash is all flashing red (malfunction flash is
all-red); manual and scheduled flash show flashing yellow to the major street and flashing red elsewhere. Entry
and exit are always the :class:`~controller.flash.FlashSequencer`'s: full yellow and red clearance before, steady
all-red into the major phase after, a minimum flash time.

>>> from controller.testing import two_phase_intersection
>>> modes = FlashModes(two_phase_intersection())
>>> modes.set("scheduled", True); modes.set("mmu", True, "unitFlashStatus 5")
>>> modes.reason, modes.code, modes.describe()
('mmu', 6, 'controller reports fault flash (unitFlashStatus 5)')
>>> modes.set("mmu", False); modes.reason, modes.pattern_links()
('scheduled', [0, 1])
"""

from __future__ import annotations

from controller.flash import major_vehicle_links
from controller.intersection import Intersection

#: flash sources, highest priority first
SOURCES = ("monitor", "mmu", "detection", "manual", "scheduled")
#: NTCIP 1202 unitFlashStatus of each source (2 = not flashing)
FLASH_CODES = {"monitor": 5, "mmu": 6, "detection": 1, "manual": 4, "scheduled": 3}
NOT_FLASHING = 2
#: sources that flash all red
FAULT_SOURCES = frozenset({"monitor", "mmu", "detection"})
_TEXT = {"monitor": "safety monitor fault", "mmu": "controller reports fault flash",
         "detection": "loss of all detection", "manual": "manual flash by command", "scheduled": "scheduled flash"}


class FlashModes:
    """The flash requests of one intersection and the one in force.

    :param intersection: the intersection (its major phase flashes yellow in manual and scheduled flash).
    """

    def __init__(self, intersection: Intersection) -> None:
        self.intersection = intersection
        self._on: dict[str, str] = {}
        self._applied: str | None = None

    def set(self, source: str, on: bool, detail: str = "") -> None:
        """Raise or drop one source's request.

        :param source: one of :data:`SOURCES`.
        :param on: True to request flash, False to withdraw.
        :param detail: a few words for the status (e.g. the monitor's reason).
        :raises ValueError: for an unknown source.
        """
        if source not in SOURCES:
            raise ValueError(f"unknown flash source {source!r}; known: {', '.join(SOURCES)}")
        if on:
            self._on[source] = detail
        else:
            self._on.pop(source, None)

    def requested(self, source: str) -> bool:
        """True while ``source`` asks for flash."""
        return source in self._on

    @property
    def reason(self) -> str | None:
        """The source in force (highest priority), or None."""
        return next((s for s in SOURCES if s in self._on), None)

    @property
    def code(self) -> int:
        """NTCIP unitFlashStatus of the source in force (2 when none)."""
        reason = self.reason
        return FLASH_CODES[reason] if reason is not None else NOT_FLASHING

    def describe(self) -> str | None:
        """One line for the status: what flashes the intersection and why, or None."""
        reason = self.reason
        if reason is None:
            return None
        detail = self._on[reason]
        return f"{_TEXT[reason]} ({detail})" if detail else _TEXT[reason]

    def pattern_links(self) -> list[int] | None:
        """Links flashing yellow in the flash in force (None: all flashing red)."""
        reason = self.reason
        return None if reason is None or reason in FAULT_SOURCES else major_vehicle_links(self.intersection)

    def apply(self, controller) -> bool:
        """Bring ``controller`` (a :class:`~controller.signal_controller.SignalController`) in line: request flash
        with the pattern in force, or release it; returns True when something was asked of it."""
        reason = self.reason
        if reason == self._applied:
            return False
        if reason is None:
            controller.release_flash()
        else:
            # a scheduled flash waits for a preemption under way; manual and fault flash do not
            controller.request_flash(self.pattern_links(), yields_to_preempt=reason == "scheduled")
        self._applied = reason
        return True
