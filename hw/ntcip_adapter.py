"""The central side over NTCIP 1202 (pysnmp 7 asyncio manager): read a controller's phase, detector and unit status,
and realise the core's decision with the phase control groups (hold, force-off, vehicle/pedestrian call, omit).

The control objects are re-written every cycle (once a second), well inside ``unitBackupTime``, which the adapter
reads when it connects and refuses when it is too short to be kept alive. Each SET's response is compared with
what was written. Every failure is a :class:`~hw.errors.FieldError` of one line: timeouts, SNMP error statuses
with the object, noSuchObject answers, values no controller reports.
"""

from __future__ import annotations

import logging

import numpy as np

from hw import ntcip_oids as O
from hw.cabinet import PhaseCommands, PhaseStatus, phase_mask
from hw.errors import FieldError
from hw.field import FieldInputs
from hw.ntcip_field import MAX_DETECTORS, SnmpAccess

#: the scalars and group-1 columns read every cycle, in this order
_STATUS = (O.STATUS_GREENS + (1,), O.STATUS_YELLOWS + (1,), O.STATUS_REDS + (1,), O.STATUS_WALKS + (1,),
           O.STATUS_PED_CLEARS + (1,), O.STATUS_DONT_WALKS + (1,), O.STATUS_PHASE_ONS + (1,),
           O.STATUS_PHASE_NEXTS + (1,), O.UNIT_FLASH_STATUS, O.UNIT_CONTROL_STATUS, O.SHORT_ALARM_STATUS,
           O.GLOBAL_TIME, O.VOLUME_OCCUPANCY_SEQUENCE, O.UNIT_ALARM_STATUS1, O.UNIT_ALARM_STATUS2,
           O.PREEMPT_STATE + (1,), O.COORD_PATTERN_STATUS, O.STATUS_PED_CALLS + (1,))
#: preempts whose preemptState is read every cycle, at most (the virtual controller and the Modbus map have 8)
MAX_PREEMPTS_READ = 8
#: variable bindings per request (keeps every PDU small)
_CHUNK = 40


class NtcipAdapter:
    """One NTCIP 1202 controller (one agent address).

    :param host: controller address.
    :param port: UDP port.
    :param access: community names or v3 credentials.
    :param version: ``v1``, ``v2c`` or ``v3`` (SHA authentication, AES privacy).
    :param timeout_s: seconds to wait for each answer.
    :param retries: retransmissions per request.
    :param period_s: how often the central side re-writes its control objects, seconds.
    :param volume_period_s: the controller's volumeOccupancyPeriod the adapter sets at connect, seconds; detector
        volume and occupancy are read once per period, presence every cycle.
    :param loop_detectors: per detector, True for a loop (its volume counts vehicles per period) and False for a
        zone (its volume is the vehicles in it now); default: all loops.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 161, access: SnmpAccess | None = None,
                 version: str = "v2c", timeout_s: float = 1.0, retries: int = 0, period_s: float = 1.0,
                 volume_period_s: int = 5, loop_detectors=None) -> None:
        if version not in ("v1", "v2c", "v3"):
            raise FieldError(f"SNMP version {version!r}; choose from: v1, v2c, v3")
        self.host, self.port = host, port
        self.access = access or SnmpAccess()
        self.version = version
        self.timeout_s, self.retries, self.period_s = timeout_s, retries, period_s
        if not 1 <= volume_period_s <= 255:
            raise FieldError(f"volume period {volume_period_s} s must be 1..255 (NTCIP volumeOccupancyPeriod)")
        self.volume_period_s = int(volume_period_s)
        self._volume = self._occupancy = None
        self.engine = self.target = None
        self.backup_time_s: float | None = None
        self._running: np.ndarray | None = None
        self._sequence: int | None = None
        self._preempt_written: frozenset[int] = frozenset()  # preempts whose preemptControlState was last written 1
        #: preempts the controller has (maxPreempts, read at connect; at most 8 are read), 1 when it does not say
        self.preempts = 1
        self._loops = None if loop_detectors is None else np.asarray(loop_detectors, dtype=bool)
        #: resolved variable bindings, reused: pysnmp resolves every new one against its MIB tree (~1 ms each)
        self._bindings: dict[tuple, object] = {}

    @property
    def connected(self) -> bool:
        """True once :meth:`connect` reached the agent (SNMP has no connection: the last exchange worked)."""
        return self.engine is not None

    def _auth(self, write: bool):
        from pysnmp.hlapi.v3arch.asyncio import (USM_AUTH_HMAC96_SHA, USM_PRIV_CFB128_AES, CommunityData,
                                                 UsmUserData)

        a = self.access
        if self.version == "v3":
            return UsmUserData(a.user, a.auth_key, a.priv_key, authProtocol=USM_AUTH_HMAC96_SHA,
                               privProtocol=USM_PRIV_CFB128_AES)
        return CommunityData(a.write_community if write else a.read_community, mpModel=0 if self.version == "v1" else 1)

    async def connect(self) -> None:
        """Reach the agent and read ``unitBackupTime``.

        :raises FieldError: no answer, or a backup time too short to re-send the control objects within.
        """
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine, UdpTransportTarget

        await self.close()
        logging.getLogger("pysnmp").setLevel(logging.WARNING)
        self.engine = SnmpEngine()
        try:
            self.target = await UdpTransportTarget.create((self.host, self.port), timeout=self.timeout_s,
                                                          retries=self.retries)
            (backup,) = await self._get([O.UNIT_BACKUP_TIME], "read of unitBackupTime")
        except FieldError as exc:
            await self.close()
            raise FieldError(f"ntcip {self.host}:{self.port}: cannot reach the controller "
                             f"({getattr(exc, 'reason', exc)})") from None
        except Exception as exc:  # name resolution and socket errors surface from pysnmp as its own types
            await self.close()
            raise FieldError(f"ntcip {self.host}:{self.port}: cannot reach the controller "
                             f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        self.backup_time_s = float(backup)
        if 0 < backup < 2 * self.period_s:
            await self.close()
            raise FieldError(f"ntcip {self.host}:{self.port}: unitBackupTime {backup} s is too short to re-send the "
                             f"control objects every {self.period_s:g} s within it")
        self._running, self._sequence = None, None
        try:
            (most,) = await self._get([O.MAX_PREEMPTS], "read of maxPreempts")
            self.preempts = max(1, min(int(most), MAX_PREEMPTS_READ))
        except _Failure as exc:
            if exc.reason not in ("NoSuchObject", "NoSuchInstance"):
                raise
            self.preempts = 1  # a controller that does not say: preempt 1, whose state is read with the status
        await self._set({O.VOLUME_OCCUPANCY_PERIOD: self.volume_period_s}, "write of volumeOccupancyPeriod")

    async def close(self) -> None:
        """Forget the agent (safe to call twice)."""
        if self.engine is not None:
            try:
                self.engine.close_dispatcher()
            except RuntimeError:  # its loop is gone already
                pass
        self.engine = self.target = None

    def _binding(self, oid: tuple[int, ...], value: int | None = None):
        from pysnmp.hlapi.v3arch.asyncio import Integer32, ObjectIdentity, ObjectType

        key = (oid, value)
        found = self._bindings.get(key)
        if found is None:
            args = (ObjectIdentity(O.dotted(oid)),) + (() if value is None else (Integer32(value),))
            found = self._bindings[key] = ObjectType(*args)
        return found

    async def _get(self, oids: list[tuple[int, ...]], what: str) -> list[int]:
        from pysnmp.hlapi.v3arch.asyncio import ContextData, get_cmd

        if self.engine is None:
            raise FieldError(f"ntcip {self.host}:{self.port}: link down ({what})")
        out: list[int] = []
        for start in range(0, len(oids), _CHUNK):
            chunk = oids[start:start + _CHUNK]
            error, status, index, binds = await get_cmd(
                self.engine, self._auth(False), self.target, ContextData(),
                *(self._binding(o) for o in chunk), lookupMib=False)
            out += self._values(what, error, status, index, binds, chunk)
        return out

    def _values(self, what, error, status, index, binds, oids) -> list[int]:
        where = f"ntcip {self.host}:{self.port}"
        if error:
            raise _Failure(f"{where}: {what} failed ({error})", str(error))
        if status:
            bad = O.dotted(oids[int(index) - 1]) if 0 < int(index) <= len(oids) else "?"
            raise _Failure(f"{where}: {what} refused: {status.prettyPrint()} at {bad}", status.prettyPrint())
        values = []
        for (oid, value), wanted in zip(binds, oids):
            kind = type(value).__name__
            if kind in ("NoSuchObject", "NoSuchInstance", "EndOfMibView", "Null"):
                raise _Failure(f"{where}: {what}: the agent has no object {O.dotted(wanted)} ({kind})", kind)
            try:
                values.append(int(value))
            except (TypeError, ValueError):
                raise _Failure(f"{where}: {what}: {O.dotted(wanted)} is not a number ({value!r})", "type") from None
        return values

    async def _set(self, values: dict[tuple[int, ...], int], what: str) -> None:
        """One SET of integer objects; the response must echo every value."""
        from pysnmp.hlapi.v3arch.asyncio import ContextData, set_cmd

        if self.engine is None:
            raise FieldError(f"ntcip {self.host}:{self.port}: link down ({what})")
        oids = list(values)
        error, status, index, binds = await set_cmd(
            self.engine, self._auth(True), self.target, ContextData(),
            *(self._binding(o, values[o]) for o in oids), lookupMib=False)
        echoed = self._values(what, error, status, index, binds, oids)
        if echoed != [values[o] for o in oids]:
            raise FieldError(f"ntcip {self.host}:{self.port}: {what} answered {echoed}, written "
                             f"{[values[o] for o in oids]}")

    async def read(self, unit: int, n_detectors: int) -> FieldInputs:
        """Read phase, unit and detector status (``unit`` is ignored: one controller per agent).

        :param unit: unused (kept so the central loop drives every protocol alike).
        :param n_detectors: detectors to read (at most 64).
        :raises FieldError: on any failure or a value no controller reports.
        """
        n = min(n_detectors, MAX_DETECTORS)
        groups = (n + 7) // 8
        more = [O.PREEMPT_STATE + (k,) for k in range(2, self.preempts + 1)]
        values = await self._get(list(_STATUS) + more + [O.DETECTOR_ACTIVE + (g + 1,) for g in range(groups)],
                                 "read of status")
        (greens, yellows, reds, walks, clears, dont_walks, ons, nexts, flash, control, alarms, clock,
         sequence, alarm1, alarm2, preempt, pattern, ped_calls) = values[:len(_STATUS)]
        preempt_states = {1: preempt, **{k + 2: v for k, v in enumerate(values[len(_STATUS):len(_STATUS) + len(more)])}}
        active = values[len(_STATUS) + len(more):]
        where = f"ntcip {self.host}:{self.port}"
        for name, v in (("greens", greens), ("yellows", yellows), ("reds", reds), ("walks", walks),
                        ("ped clears", clears), ("don't walks", dont_walks), ("phase ons", ons), ("phase nexts", nexts),
                        ("ped calls", ped_calls)):
            if not 0 <= v <= 255:
                raise FieldError(f"{where}: phase status group {name} = {v} is not an 8-bit group")
        if greens & yellows or greens & reds or yellows & reds:
            raise FieldError(f"{where}: a phase reported in two colours (greens {greens:#x}, yellows {yellows:#x}, "
                             f"reds {reds:#x})")
        if flash not in range(1, 9) or control not in range(1, 9):
            raise FieldError(f"{where}: unitFlashStatus {flash} / unitControlStatus {control} is not an NTCIP code")
        presence = np.array([bool(active[d // 8] >> (d % 8) & 1) for d in range(n)], dtype=bool)
        if self._running is None or len(self._running) != n:
            self._running, self._volume, self._occupancy = np.zeros(n), np.zeros(n), np.zeros(n)
        if n and sequence != self._sequence:  # a new volume/occupancy period closed: read it
            period = await self._get([O.DETECTOR_VOLUME + (d + 1,) for d in range(n)]
                                     + [O.DETECTOR_OCCUPANCY + (d + 1,) for d in range(n)], "read of volumes")
            volume, occupancy = np.array(period[:n], dtype=float), np.array(period[n:], dtype=float)
            if (volume < 0).any() or (volume > 255).any() or (occupancy < 0).any() or (occupancy > 255).any():
                raise FieldError(f"{where}: detector volume or occupancy outside 0..255")
            self._running = (self._running + volume) % 65536
            self._volume = volume
            # 201..255 are detector fault codes, not occupancies
            self._occupancy = np.where(occupancy <= O.OCCUPANCY_FULL, occupancy, 0.0) / O.OCCUPANCY_FULL
            self._sequence = sequence
        # loops: the running count of the periods' volumes; zones: the vehicles in them at the last period's end
        loops = self._loops[:n] if self._loops is not None and len(self._loops) >= n else np.ones(n, dtype=bool)
        counts = np.where(loops, self._running, self._volume)
        status = PhaseStatus(greens, yellows, reds, walks, clears, dont_walks, ons, nexts, flash, control, clock,
                             ped_calls=ped_calls)
        for number, state in preempt_states.items():
            if not 1 <= state <= 9:
                raise FieldError(f"{where}: preemptState.{number} = {state} is not an NTCIP code")
        # preemptState: 3 a call not (yet) served, 4 entry, 5 track, 6 dwell, 7 link active, 8 exit, 9 max presence
        unit_status = {"alarm1": alarm1, "alarm2": alarm2, "short_alarm": alarms, "preempt_state": preempt,
                       "pattern": pattern,
                       # a call this adapter did not command: the cabinet's own preempt input
                       "preempt_inputs": frozenset(n for n, st in preempt_states.items()
                                                   if 3 <= st <= 7 and n not in self._preempt_written),
                       "preempt_active": sum(1 << (n - 1) for n, st in preempt_states.items() if 4 <= st <= 9)}
        return FieldInputs(status, presence, counts, np.zeros(n), self._occupancy.copy(), 0,
                           bool(alarms & 0x80) or flash == 5, unit_status)

    async def write(self, unit: int, commands: PhaseCommands, heartbeat: int) -> None:
        """Write the phase control groups and systemPatternControl (255 for flash, 0 otherwise) in one SET, which
        also restarts the controller's backup timer, and compare
        the response with what was written (``unit`` and ``heartbeat`` are unused by NTCIP).

        :raises FieldError: on any failure, or when the response differs.
        """
        values = {O.CONTROL_HOLD + (1,): phase_mask(commands.hold),
                  O.CONTROL_FORCE_OFF + (1,): phase_mask(commands.force_off),
                  O.CONTROL_VEH_CALL + (1,): phase_mask(commands.vehicle_calls),
                  O.CONTROL_PED_CALL + (1,): phase_mask(commands.pedestrian_calls),
                  O.CONTROL_OMIT + (1,): phase_mask(commands.omit),
                  O.SYSTEM_PATTERN_CONTROL: O.PATTERN_FLASH if commands.flash else 0}
        if any(v > 255 for v in values.values()):
            raise FieldError(f"ntcip {self.host}:{self.port}: a commanded phase is above 8")
        # a preempt's preemptControlState rides along only while it is or was just commanded (a controller without
        # preempt objects is never sent one)
        preempts = frozenset(commands.preempt)
        for n in sorted(preempts | self._preempt_written):
            if not 1 <= n <= self.preempts:
                raise FieldError(f"ntcip {self.host}:{self.port}: preempt {n} commanded, the controller has "
                                 f"{self.preempts} (maxPreempts)")
            values[O.PREEMPT_CONTROL_STATE + (n,)] = int(n in preempts)
        await self._set(values, "write of phase control")
        self._preempt_written = preempts


    async def command_pattern(self, pattern: int) -> None:
        """Write ``systemPatternControl`` and ``coordOperationalMode``: :data:`~hw.ntcip_oids.PATTERN_FREE` (254)
        for free operation, :data:`~hw.ntcip_oids.PATTERN_FLASH` (255) for flash, 1..253 a coordination pattern,
        0 to release (standby / automatic)."""
        if not 0 <= pattern <= 255:
            raise FieldError(f"ntcip {self.host}:{self.port}: pattern {pattern} is not 0..255")
        await self._set({O.SYSTEM_PATTERN_CONTROL: pattern, O.COORD_OPERATIONAL_MODE: pattern},
                        "write of systemPatternControl")

    async def command_preempt(self, number: int, active: bool) -> None:
        """Write ``preemptControlState.number``: 1 activates preempt ``number``, 0 leaves it to its input."""
        if not 1 <= number <= 255:
            raise FieldError(f"ntcip {self.host}:{self.port}: preempt {number} is not 1..255")
        await self._set({O.PREEMPT_CONTROL_STATE + (number,): int(active)}, "write of preemptControlState")


class _Failure(FieldError):
    """A FieldError that keeps the short cause for messages that wrap it."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
