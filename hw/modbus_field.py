"""A virtual field controller over Modbus TCP: :class:`~hw.cabinet.FieldCabinet` s behind a pymodbus server, one
unit (device id *k + 1*) per intersection, laid out by :class:`~hw.modbus_map.ModbusMap`.

Each :meth:`ModbusFieldServer.tick` is one second of the cabinets' local timing: the commands and heartbeat the
central system wrote are taken, each cabinet steps with its detector data, and status and detector registers are
published. A heartbeat register that changed restarts the cabinet's backup timer; a command word other than
run/flash/all-red, or a heartbeat echo write, is refused with Modbus exception 3 (illegal data value).
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from controller.errors import InputError
from controller.policies.base import DetectorReadings
from hw.cabinet import FieldCabinet, PhaseCommands
from hw.modbus_map import COMMAND_ALL_RED, COMMAND_FLASH, COMMAND_RUN, DETECTORS, PHASES, ModbusMap

#: Modbus function codes that write holding registers
_WRITE_REGISTERS = (6, 16, 22, 23)


class ModbusFieldServer:
    """Virtual field controllers for several intersections behind one Modbus TCP server.

    :param cabinets: one cabinet per intersection (unit id = position + 1).
    :param host: address to bind (loopback by default).
    :param port: TCP port.
    :param modbus_map: register map.
    """

    def __init__(self, cabinets: list[FieldCabinet], host: str = "127.0.0.1", port: int = 15020,
                 modbus_map: ModbusMap | None = None) -> None:
        self.cabinets = cabinets
        self.host, self.port = host, port
        self.map = modbus_map or ModbusMap()
        self.server = None
        self._heartbeats: list[int | None] = [None] * len(cabinets)
        self._counts = [np.zeros(len(c.intersection.detectors), dtype=np.int64) for c in cabinets]
        self._loops = [np.array([d.kind in ("stopbar", "advance") for d in c.intersection.detectors], dtype=bool)
                       for c in cabinets]

    async def start(self) -> None:
        """Open the server (returns once it listens)."""
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        m = self.map
        devices = []
        for k in range(len(self.cabinets)):
            devices.append(SimDevice(
                id=k + 1, action=functools.partial(self._validate, k),
                simdata=([SimData(0, count=m.size("coils"), values=False, datatype=DataType.BITS)],
                         [SimData(0, count=m.size("discrete_inputs"), values=False, datatype=DataType.BITS)],
                         [SimData(0, count=m.size("holding_registers"), values=0, datatype=DataType.REGISTERS)],
                         [SimData(0, count=m.size("input_registers"), values=0, datatype=DataType.REGISTERS)])))
        self.server = ModbusTcpServer(devices, address=(self.host, self.port))
        log = logging.getLogger("pymodbus")
        level = log.level
        log.setLevel(logging.CRITICAL)  # a port in use is our one-line error, not pymodbus' log and traceback
        try:
            await self.server.serve_forever(background=True)
        except (RuntimeError, OSError) as exc:
            self.server = None
            raise InputError(f"cannot serve Modbus on {self.host}:{self.port} (in use, or not an address of this "
                             f"machine: {str(exc).splitlines()[0]})") from None
        finally:
            log.setLevel(level)
        for k in range(len(self.cabinets)):
            await self._publish(k, None)

    async def stop(self) -> None:
        """Close the server."""
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def _validate(self, unit: int, fc: int, start: int, address: int, count: int, registers, values):
        from pymodbus.constants import ExcCodes

        if fc in _WRITE_REGISTERS and values is not None:
            cmd = self.map.command
            if address <= cmd < address + len(values) and values[cmd - address] not in (
                    COMMAND_RUN, COMMAND_FLASH, COMMAND_ALL_RED):
                return ExcCodes.ILLEGAL_VALUE
        return None

    async def tick(self, readings: list[DetectorReadings]) -> list[str]:
        """One second of every cabinet: take commands, step, publish; returns the states to show."""
        states = []
        for k, cab in enumerate(self.cabinets):
            await self._take_commands(k)
            states.append(cab.step(readings[k]))
            await self._publish(k, readings[k])
        return states

    async def answered(self, timeout_s: float, poll_s: float = 0.0005) -> bool:
        """Wait until the central system wrote a new heartbeat at every unit since its last tick (the heartbeat is
        the last write of a decision's commands: :meth:`hw.modbus_adapter.ModbusAdapter.write`), serving requests
        meanwhile; True when that happened within ``timeout_s`` wall seconds (lock-step runs)."""
        import asyncio
        import time

        end = time.monotonic() + timeout_s
        pending = set(range(len(self.cabinets)))
        while True:
            for k in sorted(pending):
                heartbeat = (await self.server.async_getValues(k + 1, 3, self.map.heartbeat, 1))[0]
                if heartbeat != (self._heartbeats[k] or 0):
                    pending.discard(k)
            if not pending:
                return True
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(poll_s)

    async def _take_commands(self, k: int) -> None:
        m, s, unit = self.map, self.server, k + 1
        heartbeat = (await s.async_getValues(unit, 3, m.heartbeat, 1))[0]
        if self._heartbeats[k] is not None and heartbeat != self._heartbeats[k]:
            self.cabinets[k].refresh()
        self._heartbeats[k] = heartbeat

        async def phases(start: int) -> frozenset[int]:
            bits = await s.async_getValues(unit, 1, start, PHASES)
            return frozenset(p for p, b in enumerate(bits) if b)

        flash = bool((await s.async_getValues(unit, 1, m.flash_request, 1))[0])
        preempt = frozenset(p + 1 for p in await phases(m.preempt_request))  # coil k-1: preempt k
        self.cabinets[k].receive(PhaseCommands(await phases(m.hold), await phases(m.force_off),
                                               await phases(m.vehicle_call), await phases(m.pedestrian_call),
                                               await phases(m.omit), flash, preempt))

    async def _publish(self, k: int, readings: DetectorReadings | None) -> None:
        m, s, unit, cab = self.map, self.server, k + 1, self.cabinets[k]
        st = cab.status()
        registers = {m.greens: st.greens, m.yellows: st.yellows, m.reds: st.reds, m.walks: st.walks,
                     m.ped_clears: st.ped_clears, m.dont_walks: st.dont_walks, m.flash_status: st.flash_status,
                     m.safety_state: int(cab.controller.monitor.in_flash),
                     m.last_fault: int(bool(cab.controller.monitor.violations)),
                     m.heartbeat_echo: self._heartbeats[k] or 0, m.control_status: st.control_status,
                     m.phase_ons: st.phase_ons, m.phase_nexts: st.phase_nexts, m.preempt_status: st.preempt_active,
                     m.ped_calls: st.ped_calls}
        for address, value in registers.items():
            await s.async_setValues(unit, 4, address, [int(value)])
        await s.async_setValues(unit, 2, m.preempt_input, [n in cab.preempt_inputs for n in range(1, 9)])
        await s.async_setValues(unit, 2, m.priority_input, [n in cab.priority_inputs for n in range(1, 9)])
        if readings is not None:
            await self._publish_detectors(k, readings)
        # the clock last: a central system that sees the new second finds the whole second published
        await s.async_setValues(unit, 4, m.clock, [int(st.clock_s % 65536)])

    async def _publish_detectors(self, k: int, readings: DetectorReadings) -> None:
        m, s, unit = self.map, self.server, k + 1
        n = min(len(readings.count), DETECTORS)
        loops = self._loops[k][:n]
        self._counts[k][:n] += np.where(loops, readings.count[:n], 0).astype(np.int64)
        shown = np.where(loops, self._counts[k][:n], readings.count[:n]).astype(np.int64) % 65536
        await s.async_setValues(unit, 2, m.detector, [bool(b) for b in readings.occupied[:n]])
        await s.async_setValues(unit, 4, m.detector_count, [int(v) for v in shown])
        await s.async_setValues(unit, 4, m.detector_queue, [int(v) for v in readings.halting[:n]])
        await s.async_setValues(unit, 4, m.detector_occupancy,
                                [int(round(1000 * v)) for v in np.clip(readings.occupancy[:n], 0, 1)])

