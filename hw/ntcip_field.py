"""A virtual field controller over NTCIP 1202 (SNMP, pysnmp 7 agent): one :class:`~hw.cabinet.FieldCabinet`
behind one UDP agent.

The objects are a dict of current values refreshed every cabinet second (status groups, detectors, unit status)
plus the writable control objects, which go to the cabinet as its commands. As NTCIP specifies, every SET of a
system control object (phase control groups, systemPatternControl, preemptControlState) restarts the backup timer
(``unitBackupTime``, writable); when it lapses the cabinet runs local timing, reports backupMode and the control
objects read 0 again. A controller clears a force-off bit when that phase's green ends.

Access: community ``public`` reads, ``private`` reads and writes (v1/v2c), and an SNMPv3 user with SHA
authentication and AES privacy reads and writes. pysnmp 7.1.30 lets a user with an empty write view write
(lextudio/pysnmp#48), so the read-only community gets a write view that matches nothing, and writes are re-checked
against each object's access and range here.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from controller.errors import InputError
from controller.policies.base import DetectorReadings
from hw import ntcip_oids as O
from hw.cabinet import FieldCabinet, PhaseCommands, phases_of

#: the detectors an agent reports (8 groups of 8)
MAX_DETECTORS = 64
#: preempts 1-8 (maxPreempts), as the Modbus map's preempt coils and inputs: preempt k dwells in phase k
PREEMPTS = 8
_PREEMPT_NUMBERS = range(1, PREEMPTS + 1)


@dataclass(frozen=True)
class SnmpAccess:
    """Who may talk to an agent (or as whom an adapter talks).

    :param read_community: v1/v2c community that may read.
    :param write_community: v1/v2c community that may read and write.
    :param user: SNMPv3 user (SHA authentication, AES-128 privacy) that may read and write; empty: no v3.
    :param auth_key: its authentication pass phrase (8 characters or more).
    :param priv_key: its privacy pass phrase (8 characters or more).
    """

    read_community: str = "public"
    write_community: str = "private"
    user: str = "ntcip"
    auth_key: str = "ondaverde-auth"
    priv_key: str = "ondaverde-priv"


class _Store:
    """OID → [value, writable, (low, high)], ordered for GETNEXT."""

    def __init__(self) -> None:
        self.values: dict[tuple[int, ...], list] = {}
        self.keys: list[tuple[int, ...]] = []

    def define(self, oid: tuple[int, ...], value: int, writable: bool = False, span: tuple[int, int] = (0, 255)):
        if oid not in self.values:
            bisect.insort(self.keys, oid)
        self.values[oid] = [int(value), writable, span]

    def set(self, oid: tuple[int, ...], value: int) -> None:
        self.values[oid][0] = int(value)

    def get(self, oid: tuple[int, ...]) -> int:
        return self.values[oid][0]


class NtcipFieldAgent:
    """One intersection's cabinet behind an NTCIP 1202 SNMP agent.

    :param cabinet: the cabinet.
    :param host: address to bind (loopback by default).
    :param port: UDP port.
    :param access: communities and v3 user.
    """

    def __init__(self, cabinet: FieldCabinet, host: str = "127.0.0.1", port: int = 16161,
                 access: SnmpAccess | None = None) -> None:
        self.cabinet = cabinet
        self.host, self.port = host, port
        self.access = access or SnmpAccess()
        self.engine = None
        self.store = _Store()
        self.writes = 0
        #: the central system SET the control objects since the last tick (what a lock-step run waits for)
        self.answered = False
        n_det = min(len(cabinet.intersection.detectors), MAX_DETECTORS)
        self._n_det = n_det
        self._loops = np.array([d.kind in ("stopbar", "advance") for d in cabinet.intersection.detectors[:n_det]])
        self._sequence = 0
        self._period_s = 0  # seconds into the current volume/occupancy period
        self._volume = np.zeros(n_det)
        self._occupancy = np.zeros(n_det)
        s = self.store
        s.define(O.MAX_PHASES, 8)
        s.define(O.MAX_PHASE_GROUPS, 1)
        for col in (O.STATUS_REDS, O.STATUS_YELLOWS, O.STATUS_GREENS, O.STATUS_DONT_WALKS, O.STATUS_PED_CLEARS,
                    O.STATUS_WALKS, O.STATUS_VEH_CALLS, O.STATUS_PED_CALLS, O.STATUS_PHASE_ONS, O.STATUS_PHASE_NEXTS):
            s.define(col + (1,), 0)
        for col in (O.CONTROL_OMIT, O.CONTROL_PED_OMIT, *O.PHASE_CONTROLS):
            s.define(col + (1,), 0, writable=True)
        s.define(O.MAX_VEHICLE_DETECTORS, MAX_DETECTORS)
        s.define(O.MAX_DETECTOR_GROUPS, MAX_DETECTORS // 8)
        for g in range(1, MAX_DETECTORS // 8 + 1):
            s.define(O.DETECTOR_ACTIVE + (g,), 0)
        s.define(O.VOLUME_OCCUPANCY_SEQUENCE, 0)
        s.define(O.VOLUME_OCCUPANCY_PERIOD, 1, writable=True, span=(1, 255))
        for d in range(1, MAX_DETECTORS + 1):
            s.define(O.DETECTOR_VOLUME + (d,), 0)
            s.define(O.DETECTOR_OCCUPANCY + (d,), 0)
        s.define(O.UNIT_STARTUP_FLASH, 0)
        s.define(O.UNIT_BACKUP_TIME, int(cabinet.backup_time_s), writable=True, span=(0, 65535))
        s.define(O.UNIT_CONTROL_STATUS, 4)
        s.define(O.UNIT_FLASH_STATUS, 2)
        s.define(O.UNIT_ALARM_STATUS2, 0)
        s.define(O.UNIT_ALARM_STATUS1, 0)
        s.define(O.SHORT_ALARM_STATUS, 0)
        s.define(O.COORD_OPERATIONAL_MODE, 0, writable=True)
        s.define(O.COORD_PATTERN_STATUS, O.PATTERN_FREE)
        s.define(O.SYSTEM_PATTERN_CONTROL, 0, writable=True)
        s.define(O.GLOBAL_TIME, 0, span=(0, 2**32 - 1))
        s.define(O.MAX_PREEMPTS, PREEMPTS)
        for n in _PREEMPT_NUMBERS:
            s.define(O.PREEMPT_STATE + (n,), 2)
            s.define(O.PREEMPT_CONTROL_STATE + (n,), 0, writable=True, span=(0, 1))
        self._publish(None)

    # ------------------------------------------------------------------ SNMP side
    def start(self) -> None:
        """Open the agent on the running asyncio loop (call from inside it)."""
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import cmdrsp, context

        a = self.access
        eng = engine.SnmpEngine()
        try:
            config.add_transport(eng, udp.DOMAIN_NAME, udp.UdpTransport().open_server_mode((self.host, self.port)))
        except Exception as exc:  # pysnmp wraps the socket error in its own CarrierError
            raise InputError(f"cannot serve NTCIP on udp {self.host}:{self.port} ({str(exc).splitlines()[0]})") \
                from None
        config.add_v1_system(eng, "ro-area", a.read_community)
        config.add_v1_system(eng, "rw-area", a.write_community)
        for model in (1, 2):  # SNMPv1, SNMPv2c
            config.add_vacm_user(eng, model, "ro-area", "noAuthNoPriv", readSubTree=O.DEVICES,
                                 writeSubTree=O.DEVICES + (0,))  # a write view that matches nothing
            config.add_vacm_user(eng, model, "rw-area", "noAuthNoPriv", readSubTree=O.DEVICES,
                                 writeSubTree=O.DEVICES)
        if a.user:
            config.add_v3_user(eng, a.user, config.USM_AUTH_HMAC96_SHA, a.auth_key, config.USM_PRIV_CFB128_AES,
                               a.priv_key)
            config.add_vacm_user(eng, 3, a.user, "authPriv", readSubTree=O.DEVICES, writeSubTree=O.DEVICES)
        ctx = context.SnmpContext(eng)
        ctx.unregister_context_name(b"")
        ctx.register_context_name(b"", _instrumentation(self))
        for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder, cmdrsp.BulkCommandResponder,
                          cmdrsp.SetCommandResponder):
            responder(eng, ctx)
        eng.transport_dispatcher.job_started(1)
        self.engine = eng

    def stop(self) -> None:
        """Close the agent."""
        if self.engine is not None:
            self.engine.transport_dispatcher.job_finished(1)
            self.engine.close_dispatcher()
            self.engine = None

    def written(self, oids: list[tuple[int, ...]]) -> None:
        """A SET was committed: control objects restart the backup timer; unitBackupTime takes effect."""
        self.writes += 1
        controls = ({col + (1,) for col in O.PHASE_CONTROLS} | {O.SYSTEM_PATTERN_CONTROL}
                    | {O.PREEMPT_CONTROL_STATE + (n,) for n in _PREEMPT_NUMBERS})
        if O.UNIT_BACKUP_TIME in oids:  # NTCIP: 0 turns the backup timer off
            seconds = self.store.get(O.UNIT_BACKUP_TIME)
            self.cabinet.backup_time_s = float(seconds) if seconds > 0 else math.inf
        if any(oid in controls for oid in oids):
            self.cabinet.refresh()
            self.answered = True

    # ------------------------------------------------------------------ cabinet side
    def tick(self, readings: DetectorReadings) -> str:
        """One cabinet second: take the control objects, step, publish; returns the state to show."""
        s, cab = self.store, self.cabinet
        self.answered = False  # a lock-step run waits for the control objects' SET answering this second
        if cab.remote:
            flash = O.PATTERN_FLASH in (s.get(O.SYSTEM_PATTERN_CONTROL), s.get(O.COORD_OPERATIONAL_MODE))
            cab.receive(PhaseCommands(phases_of(s.get(O.CONTROL_HOLD + (1,))),
                                      phases_of(s.get(O.CONTROL_FORCE_OFF + (1,))),
                                      phases_of(s.get(O.CONTROL_VEH_CALL + (1,))),
                                      phases_of(s.get(O.CONTROL_PED_CALL + (1,))),
                                      phases_of(s.get(O.CONTROL_OMIT + (1,))), flash,
                                      frozenset(n for n in _PREEMPT_NUMBERS
                                                if s.get(O.PREEMPT_CONTROL_STATE + (n,)))))
        was_green = cab.status().greens
        state = cab.step(readings)
        if not cab.remote:  # backup mode: the control objects are zeroed (a central call of a preempt included)
            for col in O.PHASE_CONTROLS:
                s.set(col + (1,), 0)
            s.set(O.SYSTEM_PATTERN_CONTROL, 0)
            for n in _PREEMPT_NUMBERS:
                s.set(O.PREEMPT_CONTROL_STATE + (n,), 0)
        ended = was_green & ~cab.status().greens
        s.set(O.CONTROL_FORCE_OFF + (1,), s.get(O.CONTROL_FORCE_OFF + (1,)) & ~ended)
        self._publish(readings)
        return state

    def _publish(self, readings: DetectorReadings | None) -> None:
        s, st = self.store, self.cabinet.status()
        for col, value in ((O.STATUS_REDS, st.reds), (O.STATUS_YELLOWS, st.yellows), (O.STATUS_GREENS, st.greens),
                           (O.STATUS_DONT_WALKS, st.dont_walks), (O.STATUS_PED_CLEARS, st.ped_clears),
                           (O.STATUS_WALKS, st.walks), (O.STATUS_PHASE_ONS, st.phase_ons),
                           (O.STATUS_PHASE_NEXTS, st.phase_nexts), (O.STATUS_PED_CALLS, st.ped_calls)):
            s.set(col + (1,), value)
        s.set(O.UNIT_CONTROL_STATUS, st.control_status)
        s.set(O.GLOBAL_TIME, st.clock_s)
        s.set(O.UNIT_FLASH_STATUS, st.flash_status)
        s.set(O.SHORT_ALARM_STATUS, 0x80 if self.cabinet.controller.monitor.in_flash else 0)  # bit 7: critical
        s.set(O.COORD_PATTERN_STATUS, O.PATTERN_FLASH if st.flash_status != 2 else O.PATTERN_FREE)
        for n in _PREEMPT_NUMBERS:
            s.set(O.PREEMPT_STATE + (n,), self.cabinet.preempt_state(n))
        if readings is None:
            return
        n = self._n_det
        active = readings.occupied[:n]
        for g in range(MAX_DETECTORS // 8):
            bits = sum(1 << b for b in range(8) if g * 8 + b < n and active[g * 8 + b])
            s.set(O.DETECTOR_ACTIVE + (g + 1,), bits)
        # volume and occupancy over volumeOccupancyPeriod: loops count the vehicles of the period, zones report the
        # vehicles in them at its end; occupancy is the period's mean
        self._volume = np.where(self._loops, self._volume + readings.count[:n], readings.count[:n])
        self._occupancy += np.clip(readings.occupancy[:n], 0.0, 1.0)
        self._period_s += 1
        if self._period_s >= s.get(O.VOLUME_OCCUPANCY_PERIOD):
            for d in range(n):
                s.set(O.DETECTOR_VOLUME + (d + 1,), min(int(self._volume[d]), 255))
                s.set(O.DETECTOR_OCCUPANCY + (d + 1,), int(round(self._occupancy[d] / self._period_s
                                                                 * O.OCCUPANCY_FULL)))
            self._sequence = (self._sequence + 1) % 256
            s.set(O.VOLUME_OCCUPANCY_SEQUENCE, self._sequence)
            self._volume[:] = 0
            self._occupancy[:] = 0
            self._period_s = 0


def _instrumentation(agent: NtcipFieldAgent):
    """A pysnmp MIB instrumentation controller reading and writing the agent's store."""
    from pysnmp.proto.api import v2c
    from pysnmp.smi import error as smi_error
    from pysnmp.smi import exval, instrum

    store = agent.store

    def _value(oid, value):
        return v2c.Counter32(value) if oid == O.GLOBAL_TIME else v2c.Integer32(value)

    class AscInstrumentation(instrum.AbstractMibInstrumController):
        def _denied(self, view, oid, value, idx, **ctx) -> bool:
            check = ctx.get("acFun")  # VACM; idx must be passed or pysnmp's error path fails
            return check is not None and bool(check(view, (oid, value), idx=idx, **ctx))

        def read_variables(self, *var_binds, **ctx):
            out = []
            for idx, (oid, _) in enumerate(var_binds):
                key = tuple(oid)
                if key not in store.values or self._denied("read", oid, None, idx, **ctx):
                    out.append((oid, exval.noSuchObject))
                else:
                    out.append((oid, _value(key, store.get(key))))
            return out

        def read_next_variables(self, *var_binds, **ctx):
            out = []
            for idx, (oid, _) in enumerate(var_binds):
                i = bisect.bisect_right(store.keys, tuple(oid))
                while i < len(store.keys) and self._denied("read", v2c.ObjectIdentifier(store.keys[i]), None, idx,
                                                           **ctx):
                    i += 1
                if i < len(store.keys):
                    out.append((v2c.ObjectIdentifier(store.keys[i]), _value(store.keys[i], store.get(store.keys[i]))))
                else:
                    out.append((oid, exval.endOfMibView))
            return out

        def write_variables(self, *var_binds, **ctx):
            for idx, (oid, value) in enumerate(var_binds):  # check every binding, then commit all
                key = tuple(oid)
                if self._denied("write", oid, value, idx, **ctx):
                    raise smi_error.NoAccessError(name=oid, idx=idx)
                if key not in store.values:
                    raise smi_error.NoCreationError(name=oid, idx=idx)
                _, writable, (low, high) = store.values[key]
                if not writable:
                    raise smi_error.NotWritableError(name=oid, idx=idx)
                if not isinstance(value, v2c.Integer32):
                    raise smi_error.WrongTypeError(name=oid, idx=idx)
                if not low <= int(value) <= high:
                    raise smi_error.WrongValueError(name=oid, idx=idx)
            for oid, value in var_binds:
                store.set(tuple(oid), int(value))
            agent.written([tuple(oid) for oid, _ in var_binds])
            return [(oid, v2c.Integer32(store.get(tuple(oid)))) for oid, _ in var_binds]

    return AscInstrumentation()
