"""The recorded signal timing of a log as a sequence of served phase combinations, and the field's clearances.

From the phase events (1 begin green, 8 begin yellow, 10 begin red clearance, 11 end red clearance) the log's
timing is cut into **served greens**: a set of NEMA phases green together (e.g. 2+5), from the moment its first
phase turned green in the change to it (a phase that stays green, like 2 from 2+5 to 2+6, does not count) to the moment its first phase began yellow, and the moment the change *to* it began (the
previous set's first yellow). A set that is not one of the program's combos (e.g. phase 6 green alone while
ring 1 rests in red) is mapped to the combo holding it with the fewest extra phases and counted as
approximated; a set no combo holds (phases of two barriers green together) is counted as not representable and
left out. A phase that turns green while a phase it excludes (same ring, other barrier) still shows green
ends that phase there: the log lost its yellow (counted). The yellow and red clearance of each phase are the medians of its recorded intervals.

>>> import numpy as np
>>> t = np.array([0.0, 0.0, 20.0, 20.0, 24.0, 25.5, 25.5, 40.0, 44.0, 45.5])
>>> code = np.array([1, 1, 8, 8, 10, 11, 1, 8, 10, 11])
>>> phase = np.array([2, 6, 2, 6, 2, 2, 4, 4, 4, 4])
>>> plan = recorded_plan(t, code, phase, [(2, 6), (4,)], begin_s=0.0)
>>> [(g.combo, g.change_s, g.green_s, g.end_s) for g in plan.greens]
[(0, 0.0, 0.0, 20.0), (1, 20.0, 25.5, 40.0)]
>>> plan.yellow_s[2], plan.red_clearance_s[2]
(4.0, 1.5)
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from networks.whatif import BARRIER, RING
#: Indiana event codes used here
BEGIN_GREEN, BEGIN_YELLOW, BEGIN_RED_CLEARANCE, END_RED_CLEARANCE = 1, 8, 10, 11


@dataclass(frozen=True)
class ServedGreen:
    """One served phase combination, times in seconds from the what-if's start.

    :param combo: index of the combo (SUMO green phase) it was mapped to.
    :param phases: the NEMA phases the log shows green.
    :param change_s: when the change to it began (the previous set's first yellow; its green start if none).
    :param green_s: when its first phase turned green in this change.
    :param end_s: when its first phase began yellow.
    """

    combo: int
    phases: tuple[int, ...]
    change_s: float
    green_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        """Green time of the whole set, seconds."""
        return self.end_s - self.green_s


@dataclass
class RecordedPlan:
    """The log's timing: served greens in time order, the field's clearances and what could not be mapped.

    :param greens: the served greens.
    :param yellow_s: NEMA phase -> median recorded yellow, seconds.
    :param red_clearance_s: NEMA phase -> median recorded red clearance, seconds.
    :param approximated: served sets mapped to a larger combo.
    :param unrepresentable: served sets no combo holds (left out).
    :param missing_yellows: phases that turned green while a phase they exclude (same ring, other barrier)
        had no recorded yellow: the log lost an event; the stale phase is ended there.
    """

    greens: list[ServedGreen]
    yellow_s: dict[int, float] = field(default_factory=dict)
    red_clearance_s: dict[int, float] = field(default_factory=dict)
    approximated: int = 0
    unrepresentable: int = 0
    missing_yellows: int = 0

    def combo_at(self, time_s: float) -> int | None:
        """The combo the field was serving or changing to at ``time_s`` (s from the start); None before the
        first served green."""
        starts = [g.change_s for g in self.greens]
        k = int(np.searchsorted(starts, time_s, side="right")) - 1
        return self.greens[k].combo if k >= 0 else None

    def durations_by_combo(self) -> dict[int, list[float]]:
        """Combo -> recorded green durations, seconds."""
        out: dict[int, list[float]] = {}
        for g in self.greens:
            out.setdefault(g.combo, []).append(g.duration_s)
        return out


def _match(phases: frozenset[int], combos: Sequence[tuple[int, ...]]) -> tuple[int | None, bool]:
    exact = [k for k, c in enumerate(combos) if set(c) == phases]
    if exact:
        return exact[0], False
    holders = sorted((len(c), k) for k, c in enumerate(combos) if phases <= set(c))
    return (holders[0][1], True) if holders else (None, False)


def recorded_plan(time_s: np.ndarray, code: np.ndarray, param: np.ndarray, combos: Sequence[tuple[int, ...]],
                  begin_s: float, end_s: float | None = None) -> RecordedPlan:
    """Cut a signal's phase events into served greens (see the module docstring).

    :param time_s: event times, epoch seconds, sorted (one signal).
    :param code: event codes.
    :param param: event parameters (the phase for codes 1, 8, 10, 11).
    :param combos: the program's phase combos (:func:`networks.whatif.phase_combos`).
    :param begin_s: epoch second that becomes time 0.
    :param end_s: epoch second after which events are ignored (None: all).
    """
    code = np.asarray(code)
    sel = np.isin(code, (BEGIN_GREEN, BEGIN_YELLOW, BEGIN_RED_CLEARANCE, END_RED_CLEARANCE))
    t = np.asarray(time_s, dtype=float)[sel] - begin_s
    c = code[sel].astype(int)
    p = np.asarray(param)[sel].astype(int)
    order = np.lexsort((c, t))  # equal times: begin green before begin yellow before red clearance
    t, c, p = t[order], c[order], p[order]
    limit = np.inf if end_s is None else end_s - begin_s
    # a phase whose first event is its yellow was green when the log began
    green: dict[int, float] = {}
    first_seen: set[int] = set()
    for ti, ci, pi in zip(t.tolist(), c.tolist(), p.tolist()):
        if pi not in first_seen:
            first_seen.add(pi)
            if ci == BEGIN_YELLOW:
                green[pi] = float(t[0])
    yellows: dict[int, list[float]] = {}
    reds: dict[int, list[float]] = {}
    yellow_at: dict[int, float] = {}
    red_at: dict[int, float] = {}
    plan = RecordedPlan([])
    grown = bool(green)
    change = min(green.values()) if green else None
    for ti, ci, pi in zip(t.tolist(), c.tolist(), p.tolist()):
        ti = float(ti)
        if ti >= limit:
            break
        if ci == BEGIN_GREEN:
            # a phase of the same ring or the other barrier still "green": its yellow is missing from the log
            stale = [q for q in green if q != pi and (RING.get(q) == RING.get(pi) or BARRIER.get(q) != BARRIER.get(pi))]
            for q in stale:
                del green[q]
            plan.missing_yellows += len(stale)
            green[pi] = ti
            grown = True
            if change is None:
                change = ti
        elif ci == BEGIN_YELLOW:
            if grown and green:
                combo, approx = _match(frozenset(green), combos)
                if combo is None:
                    plan.unrepresentable += 1
                elif ti > 0:
                    plan.approximated += approx
                    started = max(change, 0.0) if change is not None else min(green.values())
                    # the set's green begins with the first phase that turned green in this change
                    fresh = [g for g in green.values() if g >= started] or [max(green.values())]
                    plan.greens.append(ServedGreen(combo, tuple(sorted(int(x) for x in green)), started, min(fresh), ti))
                grown = False
                change = ti
            green.pop(pi, None)
            yellow_at[pi] = ti
        elif ci == BEGIN_RED_CLEARANCE:
            if pi in yellow_at:
                yellows.setdefault(pi, []).append(ti - yellow_at.pop(pi))
            red_at[pi] = ti
        elif ci == END_RED_CLEARANCE and pi in red_at:
            reds.setdefault(pi, []).append(ti - red_at.pop(pi))
    plan.yellow_s = {int(ph): statistics.median(v) for ph, v in sorted(yellows.items())}
    plan.red_clearance_s = {int(ph): statistics.median(v) for ph, v in sorted(reds.items())}
    return plan


def green_phases(code: np.ndarray, param: np.ndarray) -> set[int]:
    """NEMA phases the log shows green (code 1).

    :param code: event codes.
    :param param: event parameters.
    """
    code = np.asarray(code)
    return {int(x) for x in np.unique(np.asarray(param)[code == BEGIN_GREEN])}
