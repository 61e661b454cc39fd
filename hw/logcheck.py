"""An independent check of an exported hi-res event log (ATSPM CSV ``Timestamp,SignalId,EventCode,EventParam``):
every green is followed by its yellow and red clearance, long enough, before a conflicting green begins, and flash
is entered only from red (fault flash excepted) and left through at least 2 s of red.

It reads only the log and the intersections' links (compatibility, yellow and red clearance times); it knows
nothing of the phase machine, the flash sequencer or the daemon that wrote the log. Phases *p* and *q* conflict
when a vehicle link green in *p* may not be green together with one green in *q*; the yellow required between them
is the longest yellow of those links of *p*, the red clearance the longest red clearance of them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from controller.errors import InputError
from controller.intersection import Intersection

#: timestamps carry 0.1 s; allow for that rounding
TOLERANCE_S = 0.11
#: shortest steady red on leaving programmed flash, seconds (standards.md §D)
FLASH_EXIT_S = 2.0
BEGIN_GREEN, BEGIN_YELLOW, BEGIN_RED_CLEARANCE, FLASH_STATUS = 1, 8, 10, 173
NOT_FLASHING, FAULT_FLASH = 2, (5, 6)


@dataclass
class LogCheck:
    """What the check found.

    :param events: rows read.
    :param signals: intersections seen.
    :param greens: begin-green events checked.
    :param conflicting_changes: greens that followed the termination of a conflicting phase (clearances checked).
    :param flashes: flash entries seen.
    :param problems: one line per inconsistency (empty: the log is consistent).
    """

    events: int = 0
    signals: int = 0
    greens: int = 0
    conflicting_changes: int = 0
    flashes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        """True when no problem was found."""
        return not self.problems


def _conflicts(inter: Intersection) -> dict[tuple[int, int], tuple[float, float]]:
    """(p, q) phase numbers that conflict → (yellow, red clearance) required after p before q, seconds."""
    vehicle = [{i for i in ph.greens if inter.links[i].kind == "vehicle"} for ph in inter.phases]
    out = {}
    for a in range(len(inter.phases)):
        for b in range(len(inter.phases)):
            if a == b:
                continue
            ending = [i for i in vehicle[a] if any(not inter.compatible[i][j] for j in vehicle[b])]
            if ending:
                out[(a + 1, b + 1)] = (max(inter.links[i].yellow_s for i in ending),
                                      max(inter.links[i].red_clearance_s for i in ending))
    return out


def _time(text: str) -> float:
    moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
    return moment.timestamp()


def read_csv(path: Path | str) -> list[tuple[float, str, int, int]]:
    """(seconds since 1970, signal id, code, param) rows of an exported log, in file order.

    :raises InputError: for a missing file, a wrong header or a malformed row (named by line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: event log CSV not found")
    rows = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header != ["Timestamp", "SignalId", "EventCode", "EventParam"]:
            raise InputError(f"{path}: header {header} is not Timestamp,SignalId,EventCode,EventParam")
        for line, row in enumerate(reader, start=2):
            try:
                rows.append((_time(row[0]), row[1], int(row[2]), int(row[3])))
            except (ValueError, IndexError):
                raise InputError(f"{path}: line {line}: {row!r} is not a timestamp, signal, code and parameter") \
                    from None
    return rows


def check_events(rows: list[tuple[float, str, int, int]], intersections: list[Intersection]) -> LogCheck:
    """Check a log's rows (in time order, ties in the order written) against the intersections' clearances.

    :param rows: (seconds, signal id, code, param).
    :param intersections: the intersections the signal ids refer to.
    :raises InputError: for a signal id with no intersection.
    """
    by_id = {i.id: i for i in intersections}
    report = LogCheck(events=len(rows))
    per_signal: dict[str, list[tuple[float, int, int]]] = {}
    for _, (t, sid, code, param) in sorted(enumerate(rows), key=lambda r: (r[1][0], r[0])):
        per_signal.setdefault(sid, []).append((t, code, param))
    report.signals = len(per_signal)
    for sid, events in per_signal.items():
        if sid not in by_id:
            raise InputError(f"signal {sid!r} in the log is not an intersection of the network")
        _check_signal(sid, events, by_id[sid], report)
    return report


def _check_signal(sid: str, events: list[tuple[float, int, int]], inter: Intersection, report: LogCheck) -> None:
    conflicts = _conflicts(inter)
    green: set[int] = set()  # phases green now (begun, no yellow since)
    yellow_at: dict[int, float] = {}
    cleared: dict[int, tuple[float, float]] = {}  # phase -> (yellow start, red clearance start) of its last ending
    flashing, flash_end = False, None

    def problem(t: float, text: str) -> None:
        if len(report.problems) < 200:
            report.problems.append(f"{sid} at {t:.1f}: {text}")

    for t, code, param in events:
        if code == BEGIN_GREEN:
            report.greens += 1
            q = param
            if flashing:
                problem(t, f"phase {q} green while flashing")
            if flash_end is not None and t - flash_end < FLASH_EXIT_S - TOLERANCE_S:
                problem(t, f"phase {q} green {t - flash_end:.1f} s after flash ended (needs {FLASH_EXIT_S:g} s red)")
            flash_end = None
            for p in sorted(green):
                if (p, q) in conflicts:
                    problem(t, f"phase {q} green while conflicting phase {p} is still green (no yellow)")
                else:
                    green.discard(p)  # nothing of p ends (its links go on green in q): no yellow is due
            for p in list(yellow_at):  # a yellow straight into a compatible green: its links turned red just now
                cleared[p] = (yellow_at.pop(p), t)
            for p, (t8, t10) in cleared.items():
                if (p, q) not in conflicts or p in green:
                    continue
                need_y, need_r = conflicts[(p, q)]
                if t - t10 > 600:
                    continue  # long ago: checked when it mattered
                report.conflicting_changes += 1
                if t10 - t8 < need_y - TOLERANCE_S:
                    problem(t, f"phase {p} yellow lasted {t10 - t8:.1f} s before conflicting phase {q} "
                               f"(needs {need_y:g} s)")
                if t - t10 < need_r - TOLERANCE_S:
                    problem(t, f"phase {p} red clearance lasted {t - t10:.1f} s before conflicting phase {q} "
                               f"(needs {need_r:g} s)")
            green.add(q)
        elif code == BEGIN_YELLOW:
            if param not in green:
                problem(t, f"phase {param} yellow without a green")
            green.discard(param)
            yellow_at[param] = t
        elif code == BEGIN_RED_CLEARANCE:
            if param not in yellow_at:
                problem(t, f"phase {param} red clearance without a yellow")
                continue
            cleared[param] = (yellow_at.pop(param), t)
        elif code == FLASH_STATUS:
            if param == NOT_FLASHING:
                if flashing:
                    flashing, flash_end = False, t
                continue
            if not flashing:
                report.flashes += 1
                if param not in FAULT_FLASH:
                    if green:
                        problem(t, f"flash ({param}) entered with phase {sorted(green)} green")
                    for p in yellow_at:
                        problem(t, f"flash ({param}) entered during phase {p}'s yellow")
            flashing = True
            green.clear()
            yellow_at.clear()
            cleared.clear()


def check_csv(path: Path | str, intersections: list[Intersection]) -> LogCheck:
    """:func:`check_events` on an exported CSV log."""
    return check_events(read_csv(path), intersections)
