"""The central side over Modbus TCP (pymodbus asyncio client): read a cabinet's status and detectors, write the
phase commands that realise the core's decision, and a heartbeat.

Every failure is a :class:`FieldError` with one line naming the unit, the block and the cause (timeout, link
down, a Modbus exception code with its name, a value out of range); the adapter never raises anything else from
a read or write. A command is only written after the same cycle's status read succeeded and passed the range
checks, and it is read back: a write that does not read back is reported, not assumed.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np

from hw.cabinet import PhaseCommands, PhaseStatus
from hw.errors import FieldError
from hw.field import FieldInputs
from hw.modbus_map import DETECTORS, PHASES, ModbusMap

#: Modbus exception codes by name (pymodbus.constants.ExcCodes values)
EXCEPTION_NAMES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                   4: "server device failure", 5: "acknowledge", 6: "server device busy", 7: "negative acknowledge",
                   8: "memory parity error", 10: "gateway path unavailable", 11: "gateway target no response"}
#: discrete inputs one read may ask for (Modbus application protocol, function code 2)
MAX_BITS_PER_READ = 2000
_FLASH_CODES = range(1, 9)
_CONTROL_CODES = range(1, 9)


class ModbusAdapter:
    """One connection to a Modbus TCP field device (one unit per intersection behind it).

    :param host: device address.
    :param port: TCP port.
    :param modbus_map: the site's register map.
    :param timeout_s: seconds to wait for an answer.
    :param retries: pymodbus retries per request.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 502, modbus_map: ModbusMap | None = None,
                 timeout_s: float = 1.0, retries: int = 0) -> None:
        self.host, self.port = host, port
        self.map = modbus_map or ModbusMap()
        self.timeout_s, self.retries = timeout_s, retries
        self.client = None

    @property
    def connected(self) -> bool:
        """True while the TCP connection is open."""
        return self.client is not None and self.client.connected

    async def connect(self) -> None:
        """Open the connection.

        :raises FieldError: when the device does not accept it.
        """
        from pymodbus.client import AsyncModbusTcpClient

        # its DEBUG dumps every frame and its ERROR lines repeat what FieldError says in one line
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        await self.close()
        # reconnect_delay=0: reconnection (with backoff) is the caller's loop, not a hidden background task
        self.client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=self.retries,
                                           reconnect_delay=0)
        try:
            ok = await self.client.connect()
        except OSError as exc:
            ok, why = False, str(exc)
        else:
            why = "connection refused or timed out"
        if not ok:
            await self.close()
            raise FieldError(f"modbus {self.host}:{self.port}: cannot connect ({why})")

    async def close(self) -> None:
        """Close the connection (safe to call twice)."""
        if self.client is not None:
            self.client.close()
            self.client = None

    async def _call(self, what: str, unit: int, method: str, address: int, **kw):
        from pymodbus.exceptions import ModbusException

        if not self.connected:
            raise FieldError(f"modbus {self.host}:{self.port} unit {unit}: link down ({what})")
        try:
            rr = await getattr(self.client, method)(address, device_id=unit, **kw)
        except ModbusException as exc:
            raise FieldError(f"modbus {self.host}:{self.port} unit {unit}: {what} failed "
                             f"({str(exc).strip().splitlines()[0]})") from None
        except (OSError, asyncio.TimeoutError) as exc:
            raise FieldError(f"modbus {self.host}:{self.port} unit {unit}: {what} failed ({exc!r})") from None
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            raise FieldError(f"modbus {self.host}:{self.port} unit {unit}: {what} refused with exception {code} "
                             f"({EXCEPTION_NAMES.get(code, 'unknown')})")
        return rr

    async def read(self, unit: int, n_detectors: int) -> FieldInputs:
        """Read status and detectors of one unit.

        :param unit: Modbus device id of the intersection.
        :param n_detectors: detector channels to read (the intersection's detectors).
        :raises FieldError: on any failure, or values no cabinet would report.
        """
        m = self.map
        names = ("greens", "yellows", "reds", "walks", "ped_clears", "dont_walks", "flash_status", "safety_state",
                 "last_fault", "heartbeat_echo", "control_status", "clock", "phase_ons", "phase_nexts",
                 "preempt_status", "ped_calls")
        first = min(getattr(m, name) for name in names)
        last = max(getattr(m, name) for name in names)
        regs = (await self._call("read of status registers", unit, "read_input_registers", first,
                                 count=last - first + 1)).registers
        r = {name: regs[getattr(m, name) - first] for name in names}
        self._check(unit, r)
        status = PhaseStatus(r["greens"], r["yellows"], r["reds"], r["walks"], r["ped_clears"], r["dont_walks"],
                             r["phase_ons"], r["phase_nexts"], r["flash_status"], r["control_status"], r["clock"],
                             ped_calls=r["ped_calls"])
        n = n_detectors
        # detector, preempt and priority inputs in one read when they lie within one request's reach (the default
        # map: 0..82), else one read per block
        blocks = {"detector": (m.detector, DETECTORS), "preempt": (m.preempt_input, 8),
                  "priority": (m.priority_input, 8)}
        low = min(a for a, _ in blocks.values())
        high = max(a + size for a, size in blocks.values())
        bits_of: dict[str, list] = {}
        if high - low <= MAX_BITS_PER_READ:
            bits = (await self._call("read of detector, preempt and priority inputs", unit, "read_discrete_inputs",
                                     low, count=high - low)).bits
            for name, (a, size) in blocks.items():
                bits_of[name] = list(bits[a - low:a - low + size])
        else:
            for name, (a, size) in blocks.items():
                if name != "detector" or n:
                    bits_of[name] = list((await self._call(f"read of {name} inputs", unit, "read_discrete_inputs",
                                                           a, count=size)).bits[:size])
        preempt_bits, priority_bits = bits_of["preempt"], bits_of["priority"]
        if n:
            presence = np.array(bits_of["detector"][:n], dtype=bool)
            counts = np.array((await self._call("read of detector counts", unit, "read_input_registers",
                                                m.detector_count, count=n)).registers, dtype=float)
            queue = np.array((await self._call("read of detector queues", unit, "read_input_registers",
                                               m.detector_queue, count=n)).registers, dtype=float)
            occ = np.array((await self._call("read of detector occupancy", unit, "read_input_registers",
                                             m.detector_occupancy, count=n)).registers, dtype=float)
            if (occ > 1000).any():
                raise FieldError(f"modbus {self.host}:{self.port} unit {unit}: detector occupancy above 1000 per "
                                 f"mille ({int(occ.max())})")
        else:
            presence, counts, queue, occ = (np.zeros(0, dtype=bool), np.zeros(0), np.zeros(0), np.zeros(0))
        unit_status = {"preempt_inputs": frozenset(k + 1 for k, b in enumerate(preempt_bits) if b),
                       "priority_inputs": frozenset(k + 1 for k, b in enumerate(priority_bits) if b),
                       "preempt_active": r["preempt_status"]}
        return FieldInputs(status, presence, counts, queue, occ / 1000.0, r["heartbeat_echo"],
                           bool(r["safety_state"]), unit_status)

    def _check(self, unit: int, r: dict) -> None:
        """Refuse status values no cabinet reports (garbage on the line, a wrong map)."""
        where = f"modbus {self.host}:{self.port} unit {unit}"
        for name in ("greens", "yellows", "reds", "walks", "ped_clears", "dont_walks", "phase_ons", "phase_nexts",
                     "ped_calls"):
            if r[name] >> PHASES:
                raise FieldError(f"{where}: {name} register {r[name]:#06x} names a phase above {PHASES}")
        if r["greens"] & r["yellows"] or r["greens"] & r["reds"] or r["yellows"] & r["reds"]:
            raise FieldError(f"{where}: a phase reported in two colours (greens {r['greens']:#x}, yellows "
                             f"{r['yellows']:#x}, reds {r['reds']:#x})")
        if r["flash_status"] not in _FLASH_CODES:
            raise FieldError(f"{where}: flash status {r['flash_status']} is not an NTCIP unitFlashStatus code")
        if r["control_status"] not in _CONTROL_CODES:
            raise FieldError(f"{where}: control status {r['control_status']} is not an NTCIP unitControlStatus code")
        if r["safety_state"] not in (0, 1):
            raise FieldError(f"{where}: safety state {r['safety_state']} is neither 0 nor 1")

    async def write(self, unit: int, commands: PhaseCommands, heartbeat: int) -> None:
        """Write the phase commands (hold, force-off, calls, omit and flash coils) and the heartbeat, then read the
        coils back.

        :param unit: Modbus device id.
        :param commands: the commands, phase indices 0-based.
        :param heartbeat: the heartbeat value (change it every period; kept to 0..65535).
        :raises FieldError: on any failure, or when the coils do not read back as written.
        """
        m = self.map
        blocks = [(m.hold, commands.hold), (m.force_off, commands.force_off), (m.vehicle_call, commands.vehicle_calls),
                  (m.pedestrian_call, commands.pedestrian_calls), (m.omit, commands.omit)]
        for phases in (s for _, s in blocks):
            if any(not 0 <= p < PHASES for p in phases):
                raise FieldError(f"modbus unit {unit}: phase index outside 0..{PHASES - 1} in {sorted(phases)}")
        start = min(a for a, _ in blocks)
        end = max(a for a, _ in blocks) + PHASES
        flash_in_run = m.flash_request == end  # the default map: the flash coil right after the omit block
        preempt_in_run = flash_in_run and m.preempt_request == m.flash_request + 1  # ... and the preempt coils
        if any(not 1 <= n <= PHASES for n in commands.preempt):
            raise FieldError(f"modbus unit {unit}: preempt numbers outside 1..{PHASES} in {sorted(commands.preempt)}")
        preempt = [n + 1 in commands.preempt for n in range(PHASES)]
        bits = [False] * (end - start)
        owned = [False] * (end - start)
        for address, phases in blocks:
            for p in range(PHASES):
                owned[address - start + p] = True
                bits[address - start + p] = p in phases
        tail = ([commands.flash] if flash_in_run else []) + (preempt if preempt_in_run else [])
        if not all(owned):  # the blocks are not one run of coils: write them one by one
            for address, phases in blocks:
                await self._call("write of command coils", unit, "write_coils", address,
                                 values=[p in phases for p in range(PHASES)])
        else:
            await self._call("write of command coils", unit, "write_coils", start, values=bits + tail)
        if not (all(owned) and flash_in_run):
            await self._call("write of the flash coil", unit, "write_coil", m.flash_request, value=commands.flash)
        if not (all(owned) and preempt_in_run):
            await self._call("write of the preempt coils", unit, "write_coils", m.preempt_request, values=preempt)
        if preempt_in_run:  # one read-back of the whole run
            back = (await self._call("read-back of command coils", unit, "read_coils", start,
                                     count=end - start + 1 + PHASES)).bits
            flash_back, preempt_back = back[end - start], back[end - start + 1:end - start + 1 + PHASES]
        else:
            back = (await self._call("read-back of command coils", unit, "read_coils", start, count=end - start)).bits
            flash_back = (await self._call("read-back of the flash coil", unit, "read_coils", m.flash_request,
                                           count=1)).bits[0]
            preempt_back = (await self._call("read-back of the preempt coils", unit, "read_coils",
                                             m.preempt_request, count=PHASES)).bits[:PHASES]
        if bool(flash_back) != bool(commands.flash):
            raise FieldError(f"modbus unit {unit}: flash coil reads back {bool(flash_back)}, written "
                             f"{bool(commands.flash)}")
        if [bool(b) for b in preempt_back] != preempt:
            raise FieldError(f"modbus unit {unit}: preempt coils read back "
                             f"{[k + 1 for k, b in enumerate(preempt_back) if b]}, written {sorted(commands.preempt)}")
        for address, phases in blocks:
            got = frozenset(p for p in range(PHASES) if back[address - start + p])
            if got != frozenset(phases):
                raise FieldError(f"modbus unit {unit}: command coils at {address} read back {sorted(got)}, "
                                 f"written {sorted(phases)}")
        await self._call("write of heartbeat", unit, "write_register", m.heartbeat, value=int(heartbeat) % 65536)
