"""Software in the loop over Modbus TCP: the core drives a SUMO intersection through the Modbus adapter and a
virtual field controller in another process; and the link recovers by itself when that controller restarts."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from controller.policies.registry import make_policy
from envs.simulation import intersections_of
from hw.cabinet import CONTROL_SYSTEM
from hw.central import CentralIntersection, FieldLink
from hw.modbus_adapter import ModbusAdapter
from networks.catalog import load_network
from hw.process import free_port, virtual_controller

pytestmark = pytest.mark.sumo

SIL_SECONDS = 620
TIME_SCALE = 20  # cabinet seconds per wall second: 620 s in about 31 s


async def _drive(central: CentralIntersection, proc, until) -> None:
    while proc.poll() is None and not until():
        await central.cycle()
        await asyncio.sleep(0.005)


def test_core_drives_sumo_through_modbus_and_the_field_shows_what_it_commanded():
    inter = intersections_of(load_network("single"))[0]
    port = free_port()
    link = FieldLink(ModbusAdapter("127.0.0.1", port, timeout_s=2.0))
    central = CentralIntersection(inter, make_policy("actuated"), link, unit=1)
    with virtual_controller(port, "--sumo", "single", "--time-scale", str(TIME_SCALE), "--seconds",
                            str(SIL_SECONDS), "--json") as proc:
        asyncio.run(_drive(central, proc, lambda: False))
        summary = json.loads(proc.stdout.read().strip().splitlines()[-1])
    assert summary["seconds"] == SIL_SECONDS and summary["faults"] == 0
    # SUMO's vehicles reached the central side: detector presence came through the Modbus inputs
    assert sum(int(inputs.presence.sum()) for _, inputs in central.reported) > 100
    assert not central.controller.monitor.violations
    reported = {clock: inputs for clock, inputs in central.reported}
    # the cabinet starts on its own and runs local timing until the first heartbeat: it may be a second ahead of
    # the core's start-up then. From 10 s after it reports central control, every commanded second, the cabinet
    # showed the same phase colours one poll later
    first = min(c for c, inputs in reported.items() if inputs.status.control_status == CONTROL_SYSTEM)
    assert first <= 5
    commanded = [c for c in central.commanded if c[0] >= first + 10 and c[0] + 1 in reported]
    assert len(commanded) >= 600
    mismatched = [(clock, green, yellow) for clock, _, green, yellow in commanded
                  if (reported[clock + 1].status.greens, reported[clock + 1].status.yellows) != (green, yellow)]
    assert mismatched == []
    assert all(reported[c + 1].status.control_status == CONTROL_SYSTEM for c, *_ in commanded)
    # the policy really changed phases in those ten minutes
    assert len({green for _, _, green, _ in commanded if green}) >= 2


def test_the_link_recovers_within_5_s_of_a_restarted_controller():
    inter = intersections_of(load_network("single"))[0]
    port = free_port()
    link = FieldLink(ModbusAdapter("127.0.0.1", port, timeout_s=0.5))
    central = CentralIntersection(inter, make_policy("actuated"), link, unit=1)

    class Away:  # stands for the dead controller's process while the central side keeps polling
        def poll(self):
            return None

    async def scenario() -> float | None:
        async def until_in_control(proc, timeout_s: float) -> float | None:
            start = time.monotonic()
            await _drive(central, proc, lambda: central.in_control or time.monotonic() - start > timeout_s)
            return time.monotonic() - start if central.in_control else None

        with virtual_controller(port, "--network", "single", "--time-scale", "5") as proc:
            assert await until_in_control(proc, 10.0) is not None
            proc.kill()  # the controller dies mid-run
            proc.wait()
        # while it is away the central side keeps running: errors are logged, nothing raises
        await _drive(central, Away(), lambda: sum("cannot connect" in e for e in link.history.errors) >= 3)
        assert not central.in_control
        with virtual_controller(port, "--network", "single", "--time-scale", "5") as proc:
            return await until_in_control(proc, 10.0)

    back = asyncio.run(scenario())
    assert back is not None and back <= 5.0, back
    assert len(link.history.up) >= 2 and all("\n" not in e for e in link.history.errors)
