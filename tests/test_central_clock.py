"""The central side keeps a time that never goes back although a field controller's clock register wraps (Modbus:
65536 s, 18 h 12 min after the controller started): detectors stay healthy and actuated greens still gap out after
the wrap. A 24-hour run of the whole loop collapsed from 18:12 on: with the core's time jumping back by 65536 s,
detector health never aged its chattering window, flagged the busy loops as chattering (88), masked them and put
their phases on recall, and the greens ran to max green."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np

from controller.detector_health import DetectorHealth
from controller.policies.registry import make_policy
from controller.testing import two_phase_intersection
from hw.cabinet import FieldCabinet
from hw.central import CentralIntersection, FieldLink
from hw.field import FieldInputs

#: the cabinet has run for 18 h 2 min when the test starts: its clock register wraps ten minutes later
START_S = 65536 - 600


class CabinetOnAWire:
    """An adapter that talks to an in-process cabinet and reports its clock modulo 65536, as the Modbus map does
    (no protocol: this test is about the clock)."""

    connected = True

    def __init__(self, cabinet: FieldCabinet) -> None:
        self.cabinet = cabinet
        self.presence = np.zeros(len(cabinet.intersection.detectors), dtype=bool)
        self.counts = np.zeros(len(cabinet.intersection.detectors), dtype=np.int64)

    async def connect(self) -> None:
        self.connected = True

    async def close(self) -> None:
        pass

    async def read(self, unit: int, n_detectors: int) -> FieldInputs:
        status = self.cabinet.status()
        return FieldInputs(replace(status, clock_s=status.clock_s % 65536), self.presence.copy(),
                           self.counts % 65536, np.zeros(n_detectors), self.presence.astype(float), 0, False)

    async def write(self, unit: int, commands, heartbeat: int) -> None:
        self.cabinet.receive(commands)
        self.cabinet.refresh()


def _run(seconds: int, jump_at: int | None = None, start_s: int = START_S
         ) -> tuple[CentralIntersection, list[int], list[int]]:
    """Light demand on both phases' stop-bar loops (a vehicle every 9 s and every 11 s) for ``seconds``; returns the
    central side, its readings' times, and the second of every max-out. ``jump_at``: the controller restarts then
    (its clock goes back to 0). ``start_s``: the cabinet clock at the start."""
    inter = two_phase_intersection(min_green_s=5.0, max_green_s=40.0)
    cabinet = FieldCabinet(inter, make_policy("fixed"), 1.0, backup_time_s=5.0)
    cabinet.time_s = float(start_s)
    wire = CabinetOnAWire(cabinet)
    central = CentralIntersection(inter, make_policy("actuated"), FieldLink(wire), unit=1,
                                  health=DetectorHealth(inter))  # as the daemon runs it
    stopbars = {p: [k for k, d in enumerate(inter.detectors) if d.kind == "stopbar" and set(d.links) <= set(
        i for i, c in enumerate(ph.state) if c in "Gg")] for p, ph in enumerate(inter.phases)}
    times, max_outs = [], []

    async def drive() -> None:
        for t in range(seconds):
            if t == jump_at:
                cabinet.time_s = 0.0
            wire.presence[:] = False
            for p, every in ((0, 9), (1, 11)):
                if t % every == 0:
                    wire.presence[stopbars[p]] = True
                    wire.counts[stopbars[p]] += 1
            before = central.controller.machine.stats.max_outs
            assert await central.cycle()
            times.append(central.elapsed_s)
            if central.controller.machine.stats.max_outs > before:
                max_outs.append(t)
            cabinet.step(None)

    asyncio.run(drive())
    return central, times, max_outs


def test_greens_still_gap_out_after_the_controller_clock_wraps():
    central, times, max_outs = _run(1800)
    # the core's time runs on through the wrap, one second per cabinet second
    assert times == list(range(START_S, START_S + 1800))
    assert central.last_clock == (START_S + 1799) % 65536
    # no detector fault (the bug: the busy loops were flagged chattering within three minutes of the wrap)
    assert not central.controller.health.failed.any()
    # light demand: no green runs to max green, before or after the wrap (the bug: every green after it did)
    assert max_outs == []
    assert central.controller.machine.stats.max_outs == 0
    greens = [clock for clock, state, green, _ in central.commanded if green]
    assert len(set(c for c in greens if c < 600)) > 100 and len(set(c for c in greens if c > 700)) > 100
    assert not central.controller.monitor.violations


def test_a_restarted_controller_clock_counts_as_one_second():
    # five hours in, the controller restarts: its clock going back to 0 is no 60,000 s jump of the core's time
    _, times, max_outs = _run(300, jump_at=200, start_s=18000)
    assert times == list(range(18000, 18300))
    assert max_outs == []
