"""The safety monitor: an independent check of every signal state, in the role of a NEMA MMU / conflict monitor.

It is built only from the intersection's links (``kind``, ``yellow_s``, ``red_clearance_s``) and the
compatibility matrix, plus the step length. It never looks at the phase list or the phase machine: it
judges what is *shown*, so a bug in the sequencing cannot hide itself (standards.md §C, "Conflict
monitor / MMU"). Each step it receives either the state string (SUMO alphabet: ``G`` protected green,
``g`` permissive green, ``y`` yellow — for a crosswalk, flashing don't walk —, ``r`` red, ``o``
flashing yellow, ``s`` flashing red, ``O`` dark) or the lamps read back from a cabinet.

On the first fault it latches flash like an MMU (standards.md §C "Reaction": the fault latches until an
external reset) and from then on answers the fault-flash state, all links flashing red (standards.md
§D: malfunction flash is all-red).

>>> from controller.testing import two_phase_intersection
>>> monitor = SafetyMonitor(two_phase_intersection(), step_s=1.0)
>>> [monitor.check(s) for s in ("rrrr", "rrrr", "GGrr", "yyrr")]  # 2 s start-up clearance, then green
['rrrr', 'rrrr', 'GGrr', 'yyrr']
>>> monitor.check("rrrr")  # the 3 s yellow lasted only 1 s
'ssss'
>>> monitor.in_flash, [v.kind for v in monitor.violations]
(True, ['short_yellow', 'short_yellow'])
>>> monitor.check("GGrr")  # latched: the proposed state no longer reaches the signals
'ssss'
>>> monitor.reset(); monitor.in_flash
False
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from controller.errors import InputError
from controller.intersection import Intersection

__all__ = ["EPS_S", "FAULT_FLASH_CHAR", "STATE_CHARS", "Lamp", "SafetyMonitor", "Violation", "ViolationKind",
           "flash_state", "lamps_from_state"]

ViolationKind = Literal["conflict", "green_to_red", "short_yellow", "missing_red_clearance",
                        "protected_to_permissive", "dual_indication", "dark", "bad_state"]

#: Every character a state string may contain (SUMO's tlLogic alphabet as far as the core uses it).
STATE_CHARS = "GgyrosO"
#: Tolerance when comparing a shown duration (k steps of ``step_s``) with a required one, seconds.
#: One millisecond: far below an MMU's own timing resolution (its fault timers count in 100s of ms, §C).
EPS_S = 1e-3
#: Character of the fault flash: flashing red on every link (standards.md §D, malfunction flash is all-red).
FAULT_FLASH_CHAR = "s"


class Lamp(enum.IntFlag):
    """Lamps of one signal head as read back from a field cabinet; several may be lit at once."""

    RED = 1
    YELLOW = 2
    GREEN = 4


@dataclass(frozen=True)
class Violation:
    """One fault found by the monitor.

    :param time_s: start of the step in which the fault was shown, seconds on the monitor's clock.
    :param kind: which rule was broken.
    :param links: the links involved (two for a conflict or a missing clearance: the link turning green
        first, the conflicting link second; empty when the whole state is malformed).
    :param detail: one line of explanation.
    """

    time_s: float
    kind: ViolationKind
    links: tuple[int, ...]
    detail: str

    def __str__(self) -> str:
        return f"{self.kind} at {self.time_s:g} s (links {', '.join(map(str, self.links)) or '-'}): {self.detail}"


_Fault = tuple[ViolationKind, tuple[int, ...], str]


class _Shape(NamedTuple):
    """One state as bit masks (link i is bit ``n - 1 - i``) plus its step-independent faults."""

    go: int | None  # G, g and o: traffic may enter (None: the state is malformed)
    green: int  # steady G, g
    protected: int  # steady G
    yellow: int  # steady y
    fyellow: int  # flashing o
    faults: tuple[_Fault, ...]


_ALL_RED = _Shape(0, 0, 0, 0, 0, ())


def lamps_from_state(state: str) -> tuple[Lamp, ...]:
    """The lamps a state string lights, per link (a flashing lamp counts as lit; ``O`` lights none).

    >>> [int(lamp) for lamp in lamps_from_state("Ggyrso")]
    [4, 4, 2, 1, 1, 2]
    >>> lamps_from_state("O") == (Lamp(0),)
    True

    :param state: one character per link from ``STATE_CHARS``.
    :raises InputError: on a character outside ``STATE_CHARS``.
    """
    try:
        return tuple(_CHAR_LAMP[c] for c in state)
    except KeyError as err:
        raise InputError(f"signal state {state!r}: unknown character {err.args[0]!r} "
                         f"(expected one of {STATE_CHARS!r})") from None


def flash_state(intersection: Intersection, major_links: Iterable[int] | None = None) -> str:
    """A flash pattern: flashing yellow (``o``) on ``major_links``, flashing red (``s``) everywhere else.

    With ``major_links=None`` every link flashes red: the malfunction flash an MMU forces; scheduled night
    flash usually shows yellow to the major street and red to the minor one (standards.md §D, TxDOT).
    Flashing yellow lets traffic through without stopping, so the major links must be mutually compatible.

    >>> from controller.testing import two_phase_intersection
    >>> flash_state(two_phase_intersection()), flash_state(two_phase_intersection(), frozenset({0, 1}))
    ('ssss', 'ooss')
    >>> flash_state(two_phase_intersection(), {0, 2})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    controller.errors.InputError: intersection 'two-phase': ... flashing yellow on conflicting links 0 and 2

    :param intersection: the intersection.
    :param major_links: indices of the links that flash yellow, or None for all-red flash.
    :raises InputError: for an index outside the intersection or conflicting flashing-yellow links.
    """
    n = intersection.n_links
    if major_links is None:
        return FAULT_FLASH_CHAR * n
    major = sorted(set(major_links))
    where = f"intersection {intersection.id!r}"
    for i in major:
        if not 0 <= i < n:
            raise InputError(f"{where}: flash pattern names link {i}, outside 0..{n - 1}")
    for a in major:
        for b in major:
            if a < b and not intersection.compatible[a][b]:
                raise InputError(f"{where}: flash pattern shows flashing yellow on conflicting links {a} and {b}")
    chosen = frozenset(major)
    return "".join("o" if i in chosen else FAULT_FLASH_CHAR for i in range(n))


class SafetyMonitor:
    """Conflict monitor for one intersection; call :meth:`check` (or :meth:`check_lamps`) once per step.

    Rules, each as a NEMA TS 2 MMU applies it (standards.md §C):

    * ``conflict``: two links that are not compatible both show green or yellow (the MMU treats G, Y and
      walk alike; permissive pairs are the compatible entries of the matrix, its "program card").
      A flashing yellow ``o`` counts as go too: it lets traffic proceed without stopping.
    * ``green_to_red``: a green ends without a yellow (MUTCD: a yellow follows every green; for a
      crosswalk, walk must be followed by flashing don't walk). Green to flashing yellow counts too.
    * ``short_yellow``: a yellow ends before the link's ``yellow_s`` (the MMU's minimum-yellow check),
      or goes back to green. The monitor checks the configured yellow, stricter than the MMU's 2.7 s floor.
    * ``missing_red_clearance``: a link turns green while a conflicting link's yellow ended less than that
      conflicting link's ``red_clearance_s`` ago (the MMU's minimum yellow + red clearance check).
    * ``protected_to_permissive``: a protected green ``G`` turns into a permissive green ``g`` without first
      showing yellow for its ``yellow_s`` and then red for its ``red_clearance_s`` — straight ``G`` -> ``g``,
      or a ``g`` after the protected green's yellow too soon (MUTCD protected/permissive operation: a steady
      yellow arrow ends the protected arrow; the movements it then yields to may already be released, so the
      turning vehicles caught in the junction need the clearance). Judged per link, from what it showed.
    * ``dual_indication``: more than one lamp lit on one link (lamp readback only; G+Y, G+R, Y+R).
    * ``dark``: no lamp lit on a link outside a flash pattern (the MMU's red-fail check).
    * ``bad_state``: wrong length or an unknown character: the output cannot be trusted.

    The monitor starts, and restarts after :meth:`reset`, as after power-up: every link red with its red
    clearance just begun, so the first green waits out its conflicts' red clearance like the phase
    machine's start-up all-red. A flash pattern (only ``o``, ``s``, ``O``) proposed while running is the
    programmed flash of standards.md §D: legal when entered from red (no green cut, no yellow short).

    Not judged: ``g`` -> ``G`` on one link (permissive to protected, a lagging left: it continues), min/max
    green and walk length (controller timing, not MMU checks), and flashing and ``G``/``g`` in lamp readback
    (each lamp is read as steady, a green lamp as ``G``).

    Cost: an unchanged state is one string comparison; a changed one works on integer bit masks, with
    each distinct state analysed once and cached.

    :param intersection: the intersection; only its links and compatibility matrix are used.
    :param step_s: length of one step, seconds.
    :raises InputError: for a step that is not positive.
    """

    def __init__(self, intersection: Intersection, step_s: float = 1.0) -> None:
        if not step_s > 0:
            raise InputError(f"step length {step_s} s must be positive")
        self.intersection = intersection
        self.step_s = float(step_s)
        n = intersection.n_links
        self._n = n
        compatible = intersection.compatible
        # bit of link i in a state mask: int(translated state, 2) puts char 0 in the highest bit
        self._conflicts = [tuple(j for j in range(n) if j != i and not compatible[i][j]) for i in range(n)]
        self._conflict_mask = [sum(1 << (n - 1 - j) for j in conf) for conf in self._conflicts]
        ticks = lambda seconds: max(0, math.ceil((seconds - EPS_S) / self.step_s))  # noqa: E731
        self._yellow_ticks = [ticks(link.yellow_s) for link in intersection.links]
        self._clear_ticks = [ticks(link.red_clearance_s) for link in intersection.links]
        self._flash = flash_state(intersection)
        self._full = (1 << n) - 1
        self._shapes: dict[str, _Shape] = {}
        self._now = 0
        self.reset()

    # ------------------------------------------------------------------ status
    @property
    def in_flash(self) -> bool:
        """True once a fault has latched flash (until :meth:`reset`)."""
        return self._latched

    @property
    def violations(self) -> tuple[Violation, ...]:
        """The faults that latched flash (all those found in the faulty step), empty while running."""
        return self._violations

    @property
    def reason(self) -> str:
        """One line naming the first fault ('' while running)."""
        if not self._violations:
            return ""
        more = len(self._violations) - 1
        return str(self._violations[0]) + (f" (+{more} more)" if more else "")

    @property
    def time_s(self) -> float:
        """Monitor clock: seconds since construction (steps checked × ``step_s``)."""
        return self._now * self.step_s

    @property
    def fault_state(self) -> str:
        """The fault-flash state the monitor answers once latched (every link flashing red)."""
        return self._flash

    def reset(self) -> None:
        """Clear the latch and the recorded faults: the external reset of an MMU.

        History restarts as at power-up (all red, every red clearance just begun); the clock keeps running.
        """
        self._latched = False
        self._violations: tuple[Violation, ...] = ()
        self._prev_state: str | None = None
        self._prev = _ALL_RED
        self._yellow_start = [self._now] * self._n
        self._yellow_end = [self._now] * self._n
        self._last_protected = 0  # links whose last green was protected (G), as a bit mask

    # ------------------------------------------------------------------ the checks
    def check(self, state: str) -> str:
        """Judge the state proposed for this step and return the one to show (it, or the fault flash).

        :param state: one character per link from ``STATE_CHARS``.
        :return: ``state`` when it is safe, else the fault-flash state (also on every later step).
        """
        if self._latched:
            self._now += 1
            return self._flash
        if state == self._prev_state:  # nothing changed: no transition, and the state passed last time
            self._now += 1
            return state
        self._judge(state, 0)
        return self._flash if self._latched else state

    def check_held(self, state: str, steps: int) -> str:
        """Judge ``state`` shown for ``steps`` consecutive steps: the same as ``steps`` calls of :meth:`check`.

        :param state: one character per link from ``STATE_CHARS``.
        :param steps: number of steps the state is shown (0 does nothing).
        :return: ``state`` when it is safe, else the fault-flash state.
        """
        if steps <= 0:
            return self._flash if self._latched else state
        shown = self.check(state)
        if steps > 1:
            self._now += steps - 1  # a repeated state adds no transition (see check)
        return shown

    def check_lamps(self, lamps: Sequence[int] | Sequence[Iterable[Lamp]]) -> bool:
        """Judge one step of lamp readback (per link an int bitmask of :class:`Lamp`, or a set of lamps).

        Readback has no flash pattern nor G/g distinction: each lamp is taken as steady. Use one call per
        step, either this or :meth:`check`.

        >>> from controller.testing import two_phase_intersection
        >>> monitor = SafetyMonitor(two_phase_intersection())
        >>> monitor.check_lamps(lamps_from_state("rrrr"))
        True
        >>> monitor.check_lamps([Lamp.RED, {Lamp.RED, Lamp.YELLOW}, Lamp.RED, Lamp.RED])
        False
        >>> monitor.reason
        'dual_indication at 1 s (links 1): lamps RED+YELLOW lit together'

        :param lamps: one entry per link; a value outside 0..7 is a ``bad_state``.
        :return: True when the readback is safe and the monitor is not in flash.
        """
        if self._latched:
            self._now += 1
            return False
        raw = None
        if isinstance(lamps, (list, tuple)):  # not arrays: bytes() of an int64 array is its memory
            try:
                raw = bytes(lamps)
            except (TypeError, ValueError):  # sets of lamps, or values outside a byte
                pass
        if raw is None:
            raw = bytes(_lamp_value(entry) for entry in lamps)
        state = raw.translate(_LAMP_TO_CHAR).decode("ascii")
        dual = int(raw.translate(_LAMP_DUAL), 2) if raw else 0
        if not dual and state == self._prev_state:
            self._now += 1
            return True
        self._judge(state, dual, raw)
        return not self._latched

    # ------------------------------------------------------------------ internals
    def _judge(self, state: str, dual: int, raw: bytes = b"") -> None:
        """Full check of a state that differs from the last one; latches on any fault."""
        shape = self._shapes.get(state)
        if shape is None:
            shape = self._shape(state)
            if len(self._shapes) > 4096:  # random input must not grow memory without bound
                self._shapes.clear()
            self._shapes[state] = shape
        faults = list(shape.faults)
        for i in self._links_of(dual):  # §C dual indication: two colours on one channel
            lit = "+".join(lamp.name or "" for lamp in Lamp if raw[i] & lamp)
            faults.append(("dual_indication", (i,), f"lamps {lit} lit together"))
        if shape.go is not None:  # a malformed state has no colours to follow
            self._transitions(state, shape, faults)
        if faults:
            self._latch(faults)
            return
        self._prev = shape
        self._prev_state = state
        self._now += 1

    def _transitions(self, state: str, shape: _Shape, faults: list[_Fault]) -> None:
        """Judge each link's change from the last state; keep yellow start/end times (committed even on a
        fault: once latched, history no longer matters)."""
        now, step, links = self._now, self.step_s, self.intersection.links
        go, green, yellow, fyellow = shape.go, shape.green, shape.yellow, shape.fyellow
        permissive = green & ~shape.protected
        before = self._prev
        yellow_start, yellow_end = self._yellow_start, self._yellow_end
        # §C / MUTCD: a yellow follows every green (for a crosswalk, flashing don't walk follows walk)
        for i in self._links_of(before.green & ~green & ~yellow):
            faults.append(("green_to_red", (i,), f"green ended without yellow ({state[i]!r} follows green)"))
        # §C short yellow: the yellow must last its full time and end in red, never back in green
        for i in self._links_of(before.yellow & ~yellow):
            shown = now - yellow_start[i]
            if go >> (self._n - 1 - i) & 1:
                faults.append(("short_yellow", (i,), f"yellow went back to go ({state[i]!r}) after {shown * step:g} s"))
            elif shown < self._yellow_ticks[i]:
                faults.append(("short_yellow", (i,), f"yellow lasted {shown * step:g} s, "
                                                     f"needs {links[i].yellow_s:g} s"))
            yellow_end[i] = now
        # leaving flashing yellow (flash exit, §D): traffic that did not stop may still be inside
        for i in self._links_of(before.fyellow & ~fyellow & ~go & ~yellow):
            yellow_end[i] = now
        for i in self._links_of(yellow & ~before.yellow):
            yellow_start[i] = now
        # MUTCD protected/permissive: G -> g only through a full yellow and the link's red clearance
        for i in self._links_of(before.protected & permissive):
            faults.append(("protected_to_permissive", (i,), "protected green turned permissive ('g') without "
                                                            "yellow and red clearance"))
        released = go & ~before.go & ~before.yellow
        for i in self._links_of(released & permissive & self._last_protected):
            if yellow_end[i] + self._clear_ticks[i] > now:
                faults.append(("protected_to_permissive", (i,),
                               f"permissive green {(now - yellow_end[i]) * step:g} s after its protected green's "
                               f"yellow ended, needs {links[i].red_clearance_s:g} s of red clearance"))
        self._last_protected = (self._last_protected & ~green) | shape.protected
        # §C minimum yellow + red clearance between a green and the next conflicting green
        if released:
            clear = self._clear_ticks
            for i in self._links_of(released):
                for j in self._conflicts[i]:
                    if yellow_end[j] + clear[j] > now:
                        faults.append(("missing_red_clearance", (i, j),
                                       f"link {i} released {(now - yellow_end[j]) * step:g} s after conflicting "
                                       f"link {j} left yellow, needs {links[j].red_clearance_s:g} s of red clearance"))

    def _latch(self, faults: list[_Fault]) -> None:
        t = self._now * self.step_s
        self._violations = tuple(Violation(t, kind, links, detail) for kind, links, detail in faults)
        self._latched = True
        self._now += 1

    def _shape(self, state: str) -> _Shape:
        """Colour masks and step-independent faults of one state (cached: an intersection shows few states)."""
        n = self._n
        if len(state) != n:  # §C: output the monitor cannot read is a fault, as a failed readback is
            return _Shape(None, 0, 0, 0, 0, (("bad_state", (), f"state {state!r} has {len(state)} chars, needs {n}"),))
        unknown = state.translate(_DROP_KNOWN)
        if unknown:
            links = tuple(i for i, c in enumerate(state) if c not in STATE_CHARS)
            return _Shape(None, 0, 0, 0, 0, (("bad_state", links, f"state {state!r}: unknown characters {unknown!r}"),))
        shape = _Shape(int(state.translate(_GO), 2), int(state.translate(_GREEN), 2),
                       int(state.translate(_PROTECTED), 2), int(state.translate(_YELLOW), 2),
                       int(state.translate(_FYELLOW), 2), ())
        faults: list[_Fault] = []
        dark = int(state.translate(_DARK), 2)
        flash_pattern = int(state.translate(_FLASHING), 2) == self._full and dark != self._full
        if dark and not flash_pattern:  # §C red fail: every lamp of a channel off
            faults += [("dark", (i,), "no lamp lit outside flash") for i in self._links_of(dark)]
        active = shape.go | shape.yellow  # §C conflict: the MMU treats green, yellow and walk alike
        for i in self._links_of(active):
            for j in self._links_of(self._conflict_mask[i] & active):
                if i < j:
                    faults.append(("conflict", (i, j), f"conflicting links {i} ({state[i]!r}) "
                                                       f"and {j} ({state[j]!r}) both go"))
        return shape._replace(faults=tuple(faults))

    def _links_of(self, mask: int) -> list[int]:
        """Link indices whose bits are set in ``mask``, ascending."""
        out = []
        n = self._n
        while mask:
            low = mask & -mask
            out.append(n - low.bit_length())
            mask ^= low
        out.reverse()
        return out


def _lamp_value(entry: int | Iterable[Lamp]) -> int:
    """One readback entry as a lamp bitmask (8, never a valid mask, for anything unreadable)."""
    try:
        if isinstance(entry, Iterable):
            value = 0
            for lamp in entry:
                value |= int(lamp)
        else:
            value = int(entry)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 8
    return value if 0 <= value <= 7 else 8


def _mask_table(ones: str) -> dict[int, str]:
    return str.maketrans({c: ("1" if c in ones else "0") for c in STATE_CHARS})


_GO = _mask_table("Ggo")
_GREEN = _mask_table("Gg")
_PROTECTED = _mask_table("G")
_YELLOW = _mask_table("y")
_FYELLOW = _mask_table("o")
_DARK = _mask_table("O")
_FLASHING = _mask_table("osO")
_DROP_KNOWN = str.maketrans(dict.fromkeys(STATE_CHARS))
_CHAR_LAMP = {"G": Lamp.GREEN, "g": Lamp.GREEN, "y": Lamp.YELLOW, "r": Lamp.RED,
              "o": Lamp.YELLOW, "s": Lamp.RED, "O": Lamp(0)}
# readback -> the state char the monitor judges; a dual indication is judged by its most permissive lamp
# (the MMU counts any lit green/yellow as go), '?' (a bad_state) for values that are no lamp mask
_LAMP_TO_CHAR = b"OryyGGGG" + b"?" * 248  # index: RED=1 | YELLOW=2 | GREEN=4
_LAMP_DUAL = b"00010111" + b"0" * 248  # 1 where two or more lamps are lit
