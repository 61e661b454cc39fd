"""The day run: the independent log checker catches planted inconsistencies, and a scaled run of the whole loop
(daemon → Modbus → virtual controller → SUMO) across a night-flash window leaves a consistent log with no safety
fault. The full 24-hour run is a command (README); this is its short form for CI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from controller.testing import two_phase_intersection
from hw.logcheck import check_events

INTER = two_phase_intersection()  # 3 s yellow, 2 s red clearance; phases 1 (links 0-1) and 2 (links 2-3) conflict
SID = INTER.id


def _check(events: list[tuple[float, int, int]]):
    return check_events([(t, SID, code, param) for t, code, param in events], [INTER])


CLEAN = [(0, 1, 1), (20, 8, 1), (23, 10, 1), (25, 1, 2), (40, 8, 2), (43, 10, 2), (45, 1, 1)]


def test_a_clean_log_is_consistent():
    report = _check(CLEAN)
    assert report.consistent, report.problems
    assert report.greens == 3 and report.conflicting_changes == 2


@pytest.mark.parametrize("planted, expected", [
    ([(0, 1, 1), (20, 8, 1), (21, 10, 1), (25, 1, 2)], "yellow lasted 1.0 s"),  # yellow cut to 1 s
    ([(0, 1, 1), (20, 8, 1), (23, 10, 1), (24, 1, 2)], "red clearance lasted 1.0 s"),  # red clearance cut
    ([(0, 1, 1), (20, 1, 2)], "still green (no yellow)"),  # conflicting green straight after green
    ([(0, 1, 1), (20, 173, 3)], "flash (3) entered with phase [1] green"),  # programmed flash from green
    ([(0, 1, 1), (20, 8, 1), (21, 173, 4)], "during phase 1's yellow"),  # manual flash cutting a yellow
    ([(0, 173, 3), (30, 173, 2), (31, 1, 1)], "1.0 s after flash ended"),  # flash exit without 2 s of red
    ([(0, 8, 1)], "yellow without a green"),
])
def test_planted_inconsistencies_are_caught(planted, expected):
    report = _check(planted)
    assert not report.consistent and any(expected in p for p in report.problems), report.problems


def test_fault_flash_may_cut_a_green_and_a_compatible_change_needs_no_yellow():
    # the MMU cuts outputs to flash at any time (standards.md §D); a change to a compatible phase has no yellow
    assert _check([(0, 1, 1), (10, 173, 5)]).consistent
    assert _check([(0, 1, 1), (10, 173, 6), (40, 173, 2), (43, 1, 1)]).consistent
    assert _check([(0, 1, 1), (10, 1, 1)]).consistent


@pytest.mark.sumo
def test_a_scaled_day_run_across_a_night_flash_window_leaves_a_consistent_log(tmp_path):
    log, csv = tmp_path / "day.sqlite", tmp_path / "day.csv"
    run = subprocess.run([sys.executable, "-m", "ondaverde.cli", "run", "--sumo", "single", "--scenario", "day",
                          "--duration", "2400", "--night-flash", "00:10-00:25",  # lock step: no wall clock
                          "--events", str(log), "--json"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["seconds"] == 2400 and summary["faults"] == 0 and summary["core_faults"] == 0
    # in lock step every second is answered, so the result does not depend on how busy the machine is
    assert summary["pacing"] == "lock step" and summary["unanswered"] == 0 and summary["lost_control"] == 0
    assert "scheduled night flash begins" in run.stderr and "scheduled night flash ends" in run.stderr
    export = subprocess.run([sys.executable, "-m", "ondaverde.cli", "events", str(log), "--csv", str(csv)],
                            capture_output=True, text=True)
    assert export.returncode == 0, export.stderr
    check = subprocess.run([sys.executable, "-m", "ondaverde.cli", "check-log", str(csv), "--network", "single",
                            "--json"], capture_output=True, text=True)
    report = json.loads(check.stdout)
    print("scaled day run:", summary, report)
    assert check.returncode == 0 and report["consistent"], report["first_problems"]
    assert report["flashes"] == 1 and report["greens"] >= 30 and report["conflicting_changes"] >= 30
