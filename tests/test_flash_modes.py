"""Flash modes: which request wins and its pattern; manual flash by command (`ondaverde flash ID on|off` against the
running daemon), safe entry and exit, 173 events with the reason; commands only from the loopback address."""

from __future__ import annotations

import asyncio
import sys

import pytest

from controller.flash_modes import FlashModes
from controller.policies.base import DetectorReadings
from controller.policies.registry import make_policy
from controller.signal_controller import SignalController
from controller.testing import two_phase_intersection
from hw.fieldbench import FieldBench
from hw.logcheck import check_events


def test_the_highest_request_wins_and_fault_flash_is_all_red():
    inter = two_phase_intersection()
    modes = FlashModes(inter)
    assert modes.reason is None and modes.code == 2 and modes.describe() is None
    modes.set("manual", True)
    assert (modes.reason, modes.code, modes.pattern_links()) == ("manual", 4, [0, 1])
    modes.set("detection", True, "16 detectors failed")
    assert (modes.reason, modes.code, modes.pattern_links()) == ("detection", 1, None)
    modes.set("monitor", True, "conflict")
    assert modes.describe() == "safety monitor fault (conflict)" and modes.code == 5
    with pytest.raises(ValueError):
        modes.set("weather", True)


def test_modes_drive_the_flash_sequencer_and_a_stronger_request_changes_the_pattern():
    inter = two_phase_intersection()
    ctrl = SignalController(inter, make_policy("fixed"))
    modes = FlashModes(inter)
    modes.set("scheduled", True)
    states = []
    for t in range(80):
        if t == 40:
            modes.set("detection", True)
        modes.apply(ctrl)
        states.append(ctrl.step(DetectorReadings.empty(len(inter.detectors), float(t))))
    assert "oo" in states[39][:2] and states[-1] == "ssss"  # yellow-red night flash, then all-red fault flash
    modes.set("detection", False)
    modes.set("scheduled", False)
    for t in range(80, 120):
        modes.apply(ctrl)
        states.append(ctrl.step(DetectorReadings.empty(len(inter.detectors), float(t))))
    assert "G" in states[-1] and not ctrl.monitor.violations


def test_manual_flash_by_command_enters_and_leaves_safely_and_is_logged(tmp_path):
    bench = FieldBench(tmp_path, scale=20.0, status=True)
    seen = {}

    async def flash(state: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "ondaverde.cli", "flash", bench.inter.id,
                                                    state, "--status", bench.status,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode, out.decode(), err.decode()

    async def script(b: FieldBench) -> None:
        assert await b.wait_for(lambda: b.central.in_control, 30)
        seen["on"] = await flash("on")
        assert await b.wait_for(lambda: b.status_row()["interval"] == "flash", 60)
        seen["flashing"] = b.status_row()
        seen["unknown"] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ondaverde.cli", "flash", "nowhere", "on", "--status", b.status,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        seen["unknown_out"] = await seen["unknown"].communicate()
        seen["remote"] = b.daemon._command(f"/flash/{b.inter.id}/off", "10.0.0.7")
        seen["off"] = await flash("off")
        assert await b.wait_for(lambda: b.status_row()["interval"] == "green", 60)
        seen["after"] = b.status_row()

    asyncio.run(bench.run(script))
    code, out, _ = seen["on"]
    assert code == 0 and "manual flash on" in out and "manual flash by command" in out
    assert seen["flashing"]["mode"] == "flash" and seen["flashing"]["flash_reason"] == "manual flash by command"
    assert seen["unknown"].returncode == 2 and "no intersection 'nowhere'" in seen["unknown_out"][1].decode()
    assert seen["remote"][0].startswith("403")
    assert seen["off"][0] == 0 and seen["after"]["flash_reason"] is None and seen["after"]["mode"] == "central"
    events = bench.events()
    assert [(c, p) for _, c, p in events if c == 173] == [(173, 4), (173, 2)]
    report = check_events([(t, bench.inter.id, c, p) for t, c, p in events], [bench.inter])
    assert report.consistent and report.flashes == 1, report.problems
    assert not bench.cabinet.controller.monitor.violations
