"""Software in the loop over Modbus TCP and over NTCIP 1202: the core drives a SUMO intersection through the
protocol adapter and a virtual field controller in another process; and the link recovers by itself when that
controller restarts."""

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
from hw.ntcip_adapter import NtcipAdapter
from networks.catalog import load_network
from hw.process import free_port, virtual_controller

pytestmark = pytest.mark.sumo

SIL_SECONDS = 620
PROTOCOLS = ["modbus", "ntcip"]


def _adapter(protocol: str, port: int, inter, timeout_s: float):
    if protocol == "modbus":
        return ModbusAdapter("127.0.0.1", port, timeout_s=timeout_s)
    return NtcipAdapter("127.0.0.1", port, timeout_s=timeout_s,
                        loop_detectors=[d.kind in ("stopbar", "advance") for d in inter.detectors])


def _central(protocol: str, timeout_s: float) -> tuple[int, FieldLink, CentralIntersection]:
    """A free port, and the core (actuated) at the centre of the `single` intersection linked to it."""
    inter = intersections_of(load_network("single"))[0]
    port = free_port()
    link = FieldLink(_adapter(protocol, port, inter, timeout_s))
    return port, link, CentralIntersection(inter, make_policy("actuated"), link, unit=1)


async def _drive(central: CentralIntersection, proc, until) -> None:
    while proc.poll() is None and not until():
        await central.cycle()
        await asyncio.sleep(0.005)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_core_drives_sumo_through_the_field_protocol_and_the_field_shows_what_it_commanded(protocol):
    port, link, central = _central(protocol, timeout_s=2.0)
    # lock step: each cabinet second (and SUMO step) begins once the core's commands for the last one arrived over
    # the protocol, so nothing here depends on how busy the machine is
    with virtual_controller(port, "--protocol", protocol, "--sumo", "single", "--lock-step", "--seconds",
                            str(SIL_SECONDS), "--backup-time", "3", "--json") as proc:
        asyncio.run(_drive(central, proc, lambda: False))
        summary = json.loads(proc.stdout.read().strip().splitlines()[-1])
    assert summary["seconds"] == SIL_SECONDS and summary["faults"] == 0
    # every second was answered in time and the cabinet never fell back to its local timing
    assert summary["unanswered"] == 0 and summary["lost_control"] == 0, summary
    # SUMO's vehicles reached the central side: detector presence came through the protocol's inputs
    assert sum(int(inputs.presence.sum()) for _, inputs in central.reported) > 100
    assert not central.controller.monitor.violations
    reported = {clock: inputs for clock, inputs in central.reported}
    # the core saw every cabinet second, from the first (clock 0, before any command) to the last one shown
    assert sorted(reported) == list(range(SIL_SECONDS)), sorted(set(range(SIL_SECONDS)) - set(reported))[:10]
    # the cabinet runs local timing until the central system's first commands refresh its backup timer (Modbus: the
    # heartbeat's first change, seen at its first tick; NTCIP: the first SET of the control objects), then never
    # leaves central control
    first = min(c for c, inputs in reported.items() if inputs.status.control_status == CONTROL_SYSTEM)
    assert 1 <= first <= 2
    assert all(reported[c].status.control_status == CONTROL_SYSTEM for c in range(first, SIL_SECONDS))
    # from then on, every commanded second, the cabinet showed the same phase colours at its next second
    commanded = [c for c in central.commanded if first - 1 <= c[0] < SIL_SECONDS - 1]
    assert [c[0] for c in commanded] == list(range(first - 1, SIL_SECONDS - 1))

    def shown(clock: int):
        inputs = reported[clock]
        return inputs.status.greens, inputs.status.yellows

    mismatched = [(clock, green, yellow, shown(clock + 1)) for clock, _, green, yellow in commanded
                  if (green, yellow) != shown(clock + 1)]
    assert mismatched == []
    # the policy really changed phases in those ten minutes
    assert len({green for _, _, green, _ in commanded if green}) >= 4


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_link_recovers_within_5_s_of_a_restarted_controller(protocol):
    port, link, central = _central(protocol, timeout_s=0.5)

    class Away:  # stands for the dead controller's process while the central side keeps polling
        def poll(self):
            return None

    async def scenario() -> float | None:
        async def until_in_control(proc, timeout_s: float) -> float | None:
            start = time.monotonic()
            await _drive(central, proc, lambda: central.in_control or time.monotonic() - start > timeout_s)
            return time.monotonic() - start if central.in_control else None

        with virtual_controller(port, "--protocol", protocol, "--network", "single", "--time-scale", "5") as proc:
            assert await until_in_control(proc, 10.0) is not None
            proc.kill()  # the controller dies mid-run
            proc.wait()
        # while it is away the central side keeps running: errors are logged, nothing raises
        await _drive(central, Away(), lambda: sum("cannot" in e for e in link.history.errors) >= 3)
        assert not central.in_control
        with virtual_controller(port, "--protocol", protocol, "--network", "single", "--time-scale", "5") as proc:
            return await until_in_control(proc, 10.0)

    back = asyncio.run(scenario())
    assert back is not None and back <= 5.0, back
    assert len(link.history.up) >= 2 and all("\n" not in e for e in link.history.errors)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_lapsed_backup_timer_is_reported_as_lost_control_and_control_is_regained(protocol):
    port, link, central = _central(protocol, timeout_s=0.5)

    async def scenario() -> None:
        with virtual_controller(port, "--protocol", protocol, "--network", "single", "--time-scale", "10",
                                "--backup-time", "3") as proc:
            start = time.monotonic()
            await _drive(central, proc, lambda: central.in_control or time.monotonic() - start > 10)
            assert central.in_control
            await asyncio.sleep(1.0)  # the central side stalls: 10 cabinet seconds without a command
            await central.cycle()
            assert not central.in_control and central.lost_control == 1
            assert any("backup mode" in e for e in link.history.errors)
            start = time.monotonic()
            await _drive(central, proc, lambda: central.in_control or time.monotonic() - start > 10)
            assert central.in_control  # the next commands put it back under central control

    asyncio.run(scenario())


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_programmed_flash_reaches_the_field_controller_and_ends_back_under_central_control(protocol):
    port, link, central = _central(protocol, timeout_s=0.5)

    def latest():
        return central.reported[-1][1].status if central.reported else None

    async def scenario() -> None:
        with virtual_controller(port, "--protocol", protocol, "--network", "single", "--time-scale", "10") as proc:
            start = time.monotonic()
            await _drive(central, proc, lambda: central.in_control or time.monotonic() - start > 10)
            central.controller.request_flash()
            start = time.monotonic()
            await _drive(central, proc, lambda: latest().flash_status == 3 or time.monotonic() - start > 15)
            assert latest().flash_status == 3 and latest().greens == 0  # flashing, by its own safe entry
            start = time.monotonic()
            await _drive(central, proc, lambda: time.monotonic() - start > 2)  # 20 cabinet seconds of flash
            central.controller.release_flash()
            start = time.monotonic()
            await _drive(central, proc, lambda: (latest().greens and central.in_control)
                         or time.monotonic() - start > 15)
            assert latest().greens and latest().flash_status == 2 and central.in_control

    asyncio.run(scenario())
    flash_seconds = [clock for clock, inputs in central.reported if inputs.status.flash_status == 3]
    assert len(flash_seconds) >= 10  # at least the minimum flash
    first = flash_seconds[0]
    before = [inputs.status for clock, inputs in central.reported if first - 2 <= clock < first]
    assert before and all(s.greens == 0 and s.yellows == 0 for s in before[-1:])  # entered from all red
    assert not central.controller.monitor.violations
