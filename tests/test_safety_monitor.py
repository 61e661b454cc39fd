"""The safety monitor on hand-made sequences: each bad one must latch flash with the exact fault, each good one
must pass untouched (standards.md §C: conflict, dual indication, short yellow, clearance, red fail)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import controller.safety as safety
from controller.errors import InputError
from controller.intersection import Intersection, Phase, SignalLink
from controller.safety import Lamp, SafetyMonitor, Violation, flash_state, lamps_from_state
from controller.testing import crossroads_with_crosswalks, two_phase_intersection

# two_phase_intersection(): links 0-1 (NS) against 2-3 (EW); yellow 3 s, red clearance 2 s
START = ["rrrr"] * 2  # power-up: the 2 s red clearance before the first green
NS_GREEN = ["GGrr"] * 5
NS_CHANGE = ["yyrr"] * 3 + ["rrrr"] * 2
EW_GREEN = ["rrGG"] * 5
EW_CHANGE = ["rryy"] * 3 + ["rrrr"] * 2
CYCLE = NS_GREEN + NS_CHANGE + EW_GREEN + EW_CHANGE
FLASH = "ssss"


def feed(monitor: SafetyMonitor, states: list[str]) -> list[str]:
    return [monitor.check(s) for s in states]


def assert_latches(states: list[str], at: int, kind: str, links: list[tuple[int, ...]] | None = None,
                   inter: Intersection | None = None, step_s: float = 1.0) -> SafetyMonitor:
    """``states[at]`` is the first bad one: everything before passes, flash from ``at`` on, exactly ``kind``."""
    monitor = SafetyMonitor(inter or two_phase_intersection(), step_s)
    after = CYCLE[:4] if inter is None else [states[0]] * 4  # good states keep getting flash once latched
    out = feed(monitor, states + after)
    fault = monitor.fault_state
    assert out[:at] == states[:at], monitor.reason
    assert out[at:] == [fault] * (len(out) - at)
    assert monitor.in_flash
    assert {v.kind for v in monitor.violations} == {kind}, monitor.reason
    assert all(v.time_s == pytest.approx(at * step_s) for v in monitor.violations)
    if links is not None:
        assert [v.links for v in monitor.violations] == links
    assert monitor.reason.startswith(kind)
    return monitor


# ------------------------------------------------------------------ bad sequences
def test_conflicting_greens():
    assert_latches(START + ["GGrr", "GGGr"], 3, "conflict", [(0, 2), (1, 2)])


def test_conflicting_green_and_yellow():
    assert_latches(START + NS_GREEN + ["yyrr", "yyGr"], 8, "conflict", [(0, 2), (1, 2)])


def test_short_yellow():
    assert_latches(START + NS_GREEN + ["yyrr"] * 2 + ["rrrr"], 9, "short_yellow", [(0,), (1,)])


def test_short_yellow_counts_steps_of_step_length():
    # at 0.5 s steps a 3 s yellow needs 6 steps; 5 steps (2.5 s) are short
    states = ["rrrr"] * 4 + ["GGrr"] * 10 + ["yyrr"] * 5 + ["rrrr"]
    assert_latches(states, 19, "short_yellow", [(0,), (1,)], step_s=0.5)
    monitor = SafetyMonitor(two_phase_intersection(), 0.5)
    good = ["rrrr"] * 4 + ["GGrr"] * 10 + ["yyrr"] * 6 + ["rrrr"] * 4 + ["rrGG"]
    assert feed(monitor, good) == good and not monitor.in_flash


def test_yellow_back_to_green():
    m = assert_latches(START + NS_GREEN + ["yyrr", "GGrr"], 8, "short_yellow", [(0,), (1,)])
    assert "back to go" in m.violations[0].detail


def test_missing_all_red():
    states = START + NS_GREEN + ["yyrr"] * 3 + ["rrGG"]
    assert_latches(states, 10, "missing_red_clearance", [(2, 0), (2, 1), (3, 0), (3, 1)])


def test_all_red_one_second_short():
    states = START + NS_GREEN + ["yyrr"] * 3 + ["rrrr", "rrGG"]
    m = assert_latches(states, 11, "missing_red_clearance")
    assert "1 s after" in m.violations[0].detail


def test_startup_green_without_clearance():
    # power-up counts as a clearance just begun, as the phase machine's start-up all-red
    assert_latches(["rrrr", "GGrr"], 1, "missing_red_clearance", [(0, 2), (0, 3), (1, 2), (1, 3)])


def test_green_straight_to_red():
    assert_latches(START + NS_GREEN + ["rrrr"], 7, "green_to_red", [(0,), (1,)])


def test_green_straight_to_flashing_yellow():
    assert_latches(START + NS_GREEN + ["ooss"], 7, "green_to_red", [(0,), (1,)])


def _protected_left() -> Intersection:
    """Link 0 a left turn (yellow 3 s, red clearance 2 s) that may yield to the opposing through, link 1."""
    links = (SignalLink(0, "vehicle", "in0", "out0", 13.9, 3.0, 2.0), SignalLink(1, "vehicle", "in1", "out1",
                                                                                   13.9, 3.0, 1.0))
    return Intersection("protected-left", links, (Phase(1, "Gr"), Phase(2, "gG")), ((True, True), (True, True)))


PROTECTED_LEFT = ["rr"] * 2 + ["Gr"] * 5


def test_protected_green_straight_to_permissive():
    # the defect's show: the protected left turns permissive as the opposing through is released
    m = assert_latches(PROTECTED_LEFT + ["gG"], 7, "protected_to_permissive", [(0,)], inter=_protected_left())
    assert "without yellow" in m.reason
    assert_latches(PROTECTED_LEFT + ["gr"], 7, "protected_to_permissive", [(0,)], inter=_protected_left())


def test_protected_to_permissive_with_red_clearance_cut():
    states = PROTECTED_LEFT + ["yr"] * 3 + ["rr", "gG"]
    m = assert_latches(states, 11, "protected_to_permissive", [(0,)], inter=_protected_left())
    assert "1 s after" in m.reason and "needs 2 s" in m.reason


def test_protected_to_permissive_phases_later_with_red_clearance_cut():
    # the left ends, the opposing through runs alone for one step, then the left comes back permissive
    states = PROTECTED_LEFT + ["yr"] * 3 + ["rG", "gG"]
    assert_latches(states, 11, "protected_to_permissive", [(0,)], inter=_protected_left())


def test_protected_to_permissive_through_a_short_yellow():
    states = PROTECTED_LEFT + ["yr"] * 2 + ["rr"] * 2 + ["gG"]
    assert_latches(states, 9, "short_yellow", [(0,)], inter=_protected_left())


@pytest.mark.parametrize("extra", [Lamp.RED, Lamp.YELLOW], ids=["G+R", "G+Y"])
def test_dual_indication_on_a_green(extra):
    monitor = SafetyMonitor(two_phase_intersection())
    for s in START + NS_GREEN:
        assert monitor.check_lamps(lamps_from_state(s))
    lamps = list(lamps_from_state("GGrr"))
    lamps[1] = lamps[1] | extra
    assert monitor.check_lamps(lamps) is False
    assert [(v.kind, v.links) for v in monitor.violations] == [("dual_indication", (1,))]
    assert monitor.check_lamps(lamps_from_state("GGrr")) is False  # stays latched
    assert monitor.check("GGrr") == FLASH


def test_dual_indication_red_and_yellow_as_sets():
    monitor = SafetyMonitor(two_phase_intersection())
    assert monitor.check_lamps([{Lamp.RED}] * 4)
    assert not monitor.check_lamps([{Lamp.RED}, {Lamp.RED}, {Lamp.RED, Lamp.YELLOW}, {Lamp.RED}])
    assert [(v.kind, v.links) for v in monitor.violations] == [("dual_indication", (2,))]


def test_dark_link():
    assert_latches(START + ["GGrr", "GGrO"], 3, "dark", [(3,)])


def test_dark_readback():
    monitor = SafetyMonitor(two_phase_intersection())
    assert monitor.check_lamps([Lamp.RED] * 4)
    assert not monitor.check_lamps([Lamp.RED, Lamp.RED, 0, Lamp.RED])
    assert [(v.kind, v.links) for v in monitor.violations] == [("dark", (2,))]


def test_all_dark_is_not_a_flash_pattern():
    assert_latches(START + ["OOOO"], 2, "dark", [(0,), (1,), (2,), (3,)])


@pytest.mark.parametrize("bad, links", [("GGr", ()), ("GGrrr", ()), ("", ()), ("GGrx", (3,)), ("GRrr", (1,))])
def test_bad_state(bad, links):
    assert_latches(START + ["GGrr", bad], 3, "bad_state", [links])


def test_bad_lamp_value():
    monitor = SafetyMonitor(two_phase_intersection())
    assert not monitor.check_lamps([Lamp.RED, Lamp.RED, Lamp.RED, 9])
    assert monitor.violations[0].kind == "bad_state"


def test_walk_cut_and_short_pedestrian_clearance():
    inter = crossroads_with_crosswalks()  # crosswalk 2: walk 7 s, clearance 12 s
    start = ["rrrrrr"] * 2
    assert_latches(start + ["GgGrrr"] * 7 + ["Ggrrrr"], 9, "green_to_red", [(2,)], inter=inter)
    assert_latches(start + ["GgGrrr"] * 7 + ["Ggyrrr"] * 11 + ["Ggrrrr"], 20, "short_yellow", [(2,)], inter=inter)


def test_violation_record_and_reason():
    monitor = SafetyMonitor(two_phase_intersection())
    feed(monitor, START + ["GGrr", "GGrG"])
    first = monitor.violations[0]
    assert isinstance(first, Violation) and first == Violation(3.0, "conflict", (0, 3), first.detail)
    with pytest.raises(AttributeError):
        first.kind = "dark"  # frozen
    assert monitor.reason == str(first) + " (+1 more)"


# ------------------------------------------------------------------ good sequences
def test_normal_cycles_pass():
    monitor = SafetyMonitor(two_phase_intersection())
    states = START + CYCLE * 20
    assert feed(monitor, states) == states
    assert not monitor.in_flash and monitor.violations == () and monitor.reason == ""
    assert monitor.time_s == len(states)


def test_permissive_pair_green_together():
    # 0 northbound through, 1 southbound left turn yielding to it (permissive), 2 eastbound through
    links = tuple(SignalLink(i, "vehicle", f"in{i}", f"out{i}", 13.9, 3.0, 2.0) for i in range(3))
    phases = (Phase(1, "Ggr"), Phase(2, "rrG"))
    permissive = Intersection("permissive", links, phases, ((True, True, False), (True, True, False),
                                                            (False, False, True)))
    states = ["rrr"] * 2 + ["Ggr"] * 5 + ["yyr"] * 3 + ["rrr"] * 2 + ["rrG"] * 5
    monitor = SafetyMonitor(permissive)
    assert feed(monitor, states) == states and not monitor.in_flash
    # the same show without the permissive entry is a conflict
    protected_only = Intersection("protected", links, (Phase(1, "Grr"), Phase(2, "rGr"), Phase(3, "rrG")),
                                  ((True, False, False), (False, True, False), (False, False, True)))
    assert_latches(states, 2, "conflict", [(0, 1)], inter=protected_only)


def test_protected_left_cleared_before_permissive_and_lagging_protection_pass():
    # G -> yellow 3 s -> red clearance 2 s -> g with the opposing through; g -> G continues (a lagging left)
    states = (PROTECTED_LEFT + ["yr"] * 3 + ["rr"] * 2 + ["gG"] * 5 + ["gy"] * 3 + ["gr"] + ["Gr"] * 5
              + ["yr"] * 3 + ["rr"] * 2 + ["rG"] * 3 + ["gG"] * 3)
    monitor = SafetyMonitor(_protected_left())
    assert feed(monitor, states) == states and not monitor.in_flash, monitor.reason


def test_continuing_link_stays_green_across_phases():
    # 0 is compatible with 1 and 2; 1 and 2 conflict: 0 stays green from phase "GGr" into "GrG"
    links = tuple(SignalLink(i, "vehicle", f"in{i}", f"out{i}", 13.9, 3.0, 2.0) for i in range(3))
    inter = Intersection("continuing", links, (Phase(1, "GGr"), Phase(2, "GrG")),
                         ((True, True, True), (True, True, False), (True, False, True)))
    states = ["rrr"] * 2 + ["GGr"] * 5 + ["Gyr"] * 3 + ["Grr"] * 2 + ["GrG"] * 5 + ["yrG"] * 3 + ["rrG"]
    monitor = SafetyMonitor(inter)
    assert feed(monitor, states) == states and not monitor.in_flash


def test_pedestrian_walk_clearance_then_red():
    inter = crossroads_with_crosswalks()  # crosswalk 2: walk 7 s, clearance 12 s, red clearance 1 s
    ns = ["GgGrrr"] * 7 + ["Ggyrrr"] * 12 + ["Ggrrrr"] * 2 + ["yyrrrr"] * 3 + ["rrrrrr"] * 2
    ew = ["rrrGgG"] * 7 + ["rrrGgy"] * 10 + ["rrrGgr"] + ["rrryyr"] * 3 + ["rrrrrr"] * 2
    states = ["rrrrrr"] * 2 + (ns + ew) * 3
    monitor = SafetyMonitor(inter)
    assert feed(monitor, states) == states and not monitor.in_flash


def test_pedestrian_red_clearance_is_timed_from_the_end_of_flashing_dont_walk():
    # crosswalk 5 (clearance 10 s, red clearance 1 s) keeps flashing after its vehicles' change has ended;
    # NS through 0 and crosswalk 2 conflict with it and must wait 1 s after its clearance ends
    inter = crossroads_with_crosswalks()
    ew_end = ["rrrrrr"] * 2 + ["rrrGgG"] * 7 + ["rrrGgy"] * 5 + ["rrryyy"] * 3 + ["rrrrry"] * 2
    monitor = SafetyMonitor(inter)
    states = ew_end + ["rrrrrr", "GgGrrr"]
    assert feed(monitor, states) == states and not monitor.in_flash
    assert_latches(ew_end + ["GgGrrr"], len(ew_end), "missing_red_clearance", [(0, 5), (2, 5)], inter=inter)


def test_programmed_flash_from_and_back_to_all_red():
    inter = two_phase_intersection()
    night = flash_state(inter, {0, 1})
    states = START + NS_GREEN + NS_CHANGE + [night] * 10 + ["rrrr"] * 2 + ["GGrr"] * 5 + NS_CHANGE + EW_GREEN
    monitor = SafetyMonitor(inter)
    assert feed(monitor, states) == states and not monitor.in_flash
    # leaving flashing yellow counts as the end of a yellow: the conflicting street waits its red clearance
    assert_latches(START + [night] * 3 + ["rrrr", "rrGG"], 6, "missing_red_clearance")


def test_dark_pedestrian_heads_allowed_inside_a_flash_pattern():
    inter = crossroads_with_crosswalks()
    states = ["rrrrrr"] * 2 + ["ooOssO"] * 5
    monitor = SafetyMonitor(inter)
    assert feed(monitor, states) == states and not monitor.in_flash


def test_dual_indication_free_readback_passes():
    monitor = SafetyMonitor(two_phase_intersection())
    assert all(monitor.check_lamps(lamps_from_state(s)) for s in START + CYCLE * 3)


# ------------------------------------------------------------------ latch and reset
def test_fault_flash_is_all_flashing_red_and_ignores_any_later_proposal():
    monitor = SafetyMonitor(crossroads_with_crosswalks())
    monitor.check("GGGGGG")
    assert monitor.in_flash and monitor.fault_state == "ssssss" == flash_state(monitor.intersection)
    assert feed(monitor, ["rrrrrr", "ooOssO", "ssssss", "GgGrrr", "xx"]) == ["ssssss"] * 5


def test_reset_clears_the_latch():
    monitor = SafetyMonitor(two_phase_intersection())
    feed(monitor, START + ["GGrr", "GGGG"])
    assert monitor.in_flash
    monitor.reset()
    assert not monitor.in_flash and monitor.violations == () and monitor.reason == ""
    states = START + CYCLE * 2  # restarts as at power-up: red clearance first
    assert feed(monitor, states) == states and not monitor.in_flash
    monitor.reset()
    assert feed(monitor, ["GGrr"]) == [FLASH]
    assert monitor.violations[0].kind == "missing_red_clearance"


# ------------------------------------------------------------------ helpers and construction
def test_lamps_from_state():
    assert lamps_from_state("GgyrosO") == (Lamp.GREEN, Lamp.GREEN, Lamp.YELLOW, Lamp.RED, Lamp.YELLOW, Lamp.RED,
                                            Lamp(0))
    with pytest.raises(InputError):
        lamps_from_state("Gx")


def test_flash_state_patterns():
    inter = crossroads_with_crosswalks()
    assert flash_state(inter) == "ssssss"
    assert flash_state(inter, frozenset({0, 1})) == "oossss"
    with pytest.raises(InputError, match="conflicting links 0 and 3"):
        flash_state(inter, {0, 3})
    with pytest.raises(InputError, match="outside"):
        flash_state(inter, {6})


def test_step_must_be_positive():
    with pytest.raises(InputError):
        SafetyMonitor(two_phase_intersection(), step_s=0)


def test_monitor_does_not_use_the_phase_machine_or_the_phase_list():
    tree = ast.parse(Path(safety.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{a.name}" for a in node.names} | {node.module or ""}
    assert not any("phase_machine" in name or "policies" in name for name in imported), imported
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not attributes & {"phases", "greens", "major_phase", "signal_groups"}, attributes
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "PhaseMachine" not in names and "Phase" not in names


def test_verdict_does_not_depend_on_the_phase_list():
    base = two_phase_intersection()
    other = Intersection(base.id, base.links, (Phase(1, "GGrr"),), base.compatible)  # one phase only
    for states in (START + CYCLE * 2, START + ["GGrr", "GGGr"], START + NS_GREEN + ["rrrr"]):
        a, b = SafetyMonitor(base), SafetyMonitor(other)
        assert feed(a, states) == feed(b, states) and a.violations == b.violations


# ------------------------------------------------------------------ a held state judged at once
def _runs(states: list[str]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for s in states:
        if runs and runs[-1][0] == s:
            runs[-1] = (s, runs[-1][1] + 1)
        else:
            runs.append((s, 1))
    return runs


@pytest.mark.parametrize("states", [START + CYCLE * 2, START + NS_GREEN + ["yyrr"] * 2 + ["rrrr"] * 3 + EW_GREEN,
                                    START + NS_GREEN + ["yyrr"] * 3 + ["rrGG"] + CYCLE])
def test_check_held_judges_like_one_check_per_step(states):
    """Each run of equal states given once with its length gives the verdicts, time and reason of step-by-step."""
    stepwise, held = SafetyMonitor(two_phase_intersection()), SafetyMonitor(two_phase_intersection())
    feed(stepwise, states)
    shown = [held.check_held(s, n) for s, n in _runs(states)]
    assert held.in_flash == stepwise.in_flash and held.reason == stepwise.reason
    assert held.time_s == stepwise.time_s
    assert shown[-1] == (held.fault_state if held.in_flash else states[-1])
