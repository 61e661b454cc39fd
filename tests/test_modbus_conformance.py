"""Modbus against software nobody here wrote: the virtual controller driven by `mbpoll` (Debian, libmodbus) and by
pyModbusTCP's client; our adapter reading and commanding pyModbusTCP's server; bad values and exceptions."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time

import numpy as np
import pytest

from hw.cabinet import CONTROL_SYSTEM, PhaseCommands
from hw.errors import FieldError
from hw.modbus_adapter import ModbusAdapter
from hw.modbus_map import ModbusMap
from hw.process import free_port, virtual_controller

MAP = ModbusMap()


@pytest.fixture(scope="module")
def port():
    p = free_port()
    with virtual_controller(p, "--network", "single", "--time-scale", "10"):
        yield p


def mbpoll(port: int, *args: str) -> subprocess.CompletedProcess:
    if shutil.which("mbpoll") is None:
        pytest.fail("mbpoll is not installed (apt-get install mbpoll; .ci/run installs it)")
    return subprocess.run(["mbpoll", "-m", "tcp", "-p", str(port), "-a", "1", "-0", "-1", *args],
                          capture_output=True, text=True, timeout=20)


def _values(out: str) -> dict[int, int]:
    vals = {}
    for line in out.splitlines():
        if line.startswith("[") and "]:" in line:
            k, v = line.split("]:")
            vals[int(k[1:])] = int(v.strip())
    return vals


def test_mbpoll_reads_a_consistent_phase_status(port):
    proc = mbpoll(port, "-t", "3", "-r", str(MAP.greens), "-c", "14", "127.0.0.1")
    assert proc.returncode == 0, proc.stderr
    v = _values(proc.stdout)
    greens, yellows, reds = v[MAP.greens], v[MAP.yellows], v[MAP.reds]
    assert greens & yellows == greens & reds == yellows & reds == 0
    assert greens | yellows | reds == 0b1111  # the single network's four phases, each in exactly one colour
    assert v[MAP.flash_status] == 2 and v[MAP.safety_state] == 0


def test_mbpoll_heartbeat_puts_the_cabinet_under_central_control_and_holds_read_back(port):
    for beat in range(1, 8):
        assert mbpoll(port, "-t", "4", "-r", str(MAP.heartbeat), "127.0.0.1", str(beat)).returncode == 0
        time.sleep(0.05)
    control = _values(mbpoll(port, "-t", "3", "-r", str(MAP.control_status), "127.0.0.1").stdout)
    assert control[MAP.control_status] == CONTROL_SYSTEM
    assert mbpoll(port, "-t", "0", "-r", str(MAP.hold + 1), "127.0.0.1", "1").returncode == 0
    coils = _values(mbpoll(port, "-t", "0", "-r", str(MAP.hold), "-c", "4", "127.0.0.1").stdout)
    assert coils == {0: 0, 1: 1, 2: 0, 3: 0}
    assert mbpoll(port, "-t", "0", "-r", str(MAP.hold + 1), "127.0.0.1", "0").returncode == 0


def test_mbpoll_gets_modbus_exceptions_for_a_bad_command_and_a_bad_address(port):
    bad_value = mbpoll(port, "-t", "4", "-r", str(MAP.command), "127.0.0.1", "7")
    assert bad_value.returncode != 0 and "Illegal data value" in bad_value.stderr + bad_value.stdout
    bad_address = mbpoll(port, "-t", "3", "-r", "5000", "127.0.0.1")
    assert bad_address.returncode != 0 and "Illegal data address" in bad_address.stderr + bad_address.stdout


def test_pymodbustcp_client_reads_writes_and_sees_exceptions(port):
    from pyModbusTCP.client import ModbusClient

    c = ModbusClient(host="127.0.0.1", port=port, unit_id=1, auto_open=True, timeout=2)
    regs = c.read_input_registers(MAP.greens, 14)
    assert regs is not None and regs[MAP.flash_status] == 2
    assert c.read_discrete_inputs(MAP.detector, 8) is not None
    assert c.write_multiple_coils(MAP.vehicle_call, [False, False, True, False])
    assert c.read_coils(MAP.vehicle_call, 4) == [False, False, True, False]
    assert c.write_multiple_coils(MAP.vehicle_call, [False] * 4)
    assert not c.write_single_register(MAP.command, 9) and "illegal data value" in c.last_except_as_txt.lower()
    assert c.read_input_registers(5000, 1) is None and "illegal data address" in c.last_except_as_txt.lower()
    c.close()


# ------------------------------------------------------------------ our adapter against pyModbusTCP's server
@pytest.fixture()
def third_party_server():
    from pyModbusTCP.server import DataBank, ModbusServer

    bank = DataBank()
    p = free_port()
    server = ModbusServer(host="127.0.0.1", port=p, no_block=True, data_bank=bank)
    server.start()
    try:
        yield p, bank
    finally:
        server.stop()


def _status(bank, **values) -> None:
    regs = {"greens": 0b0001, "yellows": 0, "reds": 0b1110, "walks": 0, "ped_clears": 0, "dont_walks": 0,
            "flash_status": 2, "safety_state": 0, "last_fault": 0, "heartbeat_echo": 0, "control_status": 2,
            "clock": 42, "phase_ons": 1, "phase_nexts": 0, "ped_calls": 0, **values}
    for name, value in regs.items():
        bank.set_input_registers(getattr(MAP, name), [value])


def _run(coro):
    return asyncio.run(coro)


def test_adapter_reads_and_commands_a_third_party_server(third_party_server):
    port, bank = third_party_server
    _status(bank, greens=0b0100, reds=0b1011, clock=77, ped_calls=0b1000)
    bank.set_discrete_inputs(MAP.detector, [True, False, True])
    bank.set_input_registers(MAP.detector_count, [5, 0, 9])
    bank.set_input_registers(MAP.detector_occupancy, [250, 0, 1000])

    async def go():
        a = ModbusAdapter("127.0.0.1", port, timeout_s=1.0)
        await a.connect()
        inputs = await a.read(1, 3)
        await a.write(1, PhaseCommands(hold=frozenset({2}), vehicle_calls=frozenset({0, 3})), heartbeat=1234)
        await a.close()
        return inputs

    inputs = _run(go())
    assert inputs.status.greens == 0b0100 and inputs.status.clock_s == 77
    assert inputs.status.ped_calls == 0b1000  # input register ped_calls: a push-button call on phase 4
    assert inputs.presence.tolist() == [True, False, True]
    assert inputs.counts.tolist() == [5, 0, 9] and np.allclose(inputs.occupancy, [0.25, 0.0, 1.0])
    assert bank.get_coils(MAP.hold, 8) == [False, False, True] + [False] * 5
    assert bank.get_coils(MAP.vehicle_call, 8) == [True, False, False, True] + [False] * 4
    assert bank.get_holding_registers(MAP.heartbeat, 1) == [1234]


@pytest.mark.parametrize("garbage, words", [
    ({"greens": 0x100}, "greens"),
    ({"greens": 0b0001, "yellows": 0b0001}, "two colours"),
    ({"flash_status": 99}, "flash status 99"),
    ({"control_status": 0}, "control status 0"),
    ({"safety_state": 3}, "safety state 3"),
    ({"ped_calls": 0x100}, "ped_calls register 0x0100"),
])
def test_adapter_refuses_values_no_cabinet_reports(third_party_server, garbage, words):
    port, bank = third_party_server
    _status(bank, **garbage)

    async def go():
        a = ModbusAdapter("127.0.0.1", port, timeout_s=1.0)
        await a.connect()
        try:
            await a.read(1, 0)
        finally:
            await a.close()

    with pytest.raises(FieldError, match=words) as exc:
        _run(go())
    assert "\n" not in str(exc.value)


def test_adapter_reports_an_occupancy_out_of_range(third_party_server):
    port, bank = third_party_server
    _status(bank)
    bank.set_input_registers(MAP.detector_occupancy, [1001])

    async def go():
        a = ModbusAdapter("127.0.0.1", port)
        await a.connect()
        try:
            await a.read(1, 1)
        finally:
            await a.close()

    with pytest.raises(FieldError, match="occupancy"):
        _run(go())


def test_adapter_surfaces_exception_responses_with_their_code(port):
    async def go():
        a = ModbusAdapter("127.0.0.1", port, timeout_s=1.0)
        await a.connect()
        try:
            await a.read(9, 0)  # no unit 9 behind the single network's controller
        finally:
            await a.close()

    with pytest.raises(FieldError, match=r"exception 4 \(server device failure\)"):
        _run(go())


def test_adapter_to_a_closed_port_is_a_one_line_error_not_a_crash():
    async def go():
        a = ModbusAdapter("127.0.0.1", free_port(), timeout_s=0.5)
        await a.connect()

    with pytest.raises(FieldError, match="cannot connect"):
        _run(go())


def test_a_write_that_does_not_read_back_is_reported(third_party_server):
    from pyModbusTCP.server import DataBank

    port, bank = third_party_server
    real = DataBank.set_coils

    def stuck(self, address, bit_list, srv_info=None):  # a device that acknowledges but does not latch coils
        return True

    DataBank.set_coils = stuck
    try:
        async def go():
            a = ModbusAdapter("127.0.0.1", port)
            await a.connect()
            try:
                await a.write(1, PhaseCommands(hold=frozenset({1})), heartbeat=1)
            finally:
                await a.close()

        with pytest.raises(FieldError, match="read back"):
            _run(go())
    finally:
        DataBank.set_coils = real


@pytest.mark.parametrize("moved", [{}, {"priority_input": 5000}])
def test_adapter_reads_preempt_and_priority_inputs_joined_or_apart(third_party_server, moved):
    """The default map reads detectors, preempt and transit priority inputs in one request; a map that moves the
    priority inputs beyond one request's reach reads them apart, with the same result."""
    port, bank = third_party_server
    m = ModbusMap(**moved)
    _status(bank)
    bank.set_discrete_inputs(m.detector, [True, False])
    bank.set_discrete_inputs(m.preempt_input, [False, False, True])
    bank.set_discrete_inputs(m.priority_input, [False, True, False, True])

    async def go():
        a = ModbusAdapter("127.0.0.1", port, timeout_s=1.0, modbus_map=m)
        await a.connect()
        inputs = await a.read(1, 2)
        await a.close()
        return inputs

    inputs = _run(go())
    assert inputs.presence.tolist() == [True, False]
    assert inputs.unit["preempt_inputs"] == {3} and inputs.unit["priority_inputs"] == {2, 4}
