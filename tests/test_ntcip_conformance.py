"""NTCIP 1202 against software nobody here wrote: net-snmp's snmpget/snmpset/snmpwalk drive the virtual controller's
pysnmp agent (v2c communities, v3 SHA+AES, access control, backup timer); our adapter reads and commands net-snmp's
snmpd with a pass_persist backend, and reports its errors in one line."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hw import ntcip_oids as O
from hw.cabinet import PhaseCommands
from hw.errors import FieldError
from hw.ntcip_adapter import NtcipAdapter
from hw.ntcip_field import SnmpAccess
from hw.process import free_port, virtual_controller

BACKEND = Path(__file__).parent / "support" / "ntcip_pass_persist.py"
V3 = ["-v3", "-l", "authPriv", "-u", "ntcip", "-a", "SHA", "-A", SnmpAccess().auth_key, "-x", "AES", "-X",
      SnmpAccess().priv_key]


def _tool(name: str, *args: str) -> subprocess.CompletedProcess:
    if shutil.which(name) is None:
        pytest.fail(f"{name} is not installed (apt-get install snmp snmpd; .ci/run installs them)")
    return subprocess.run([name, "-On", "-t", "2", "-r", "1", *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "MIBS": ""})


def _int(out: str) -> int:
    return int(out.strip().splitlines()[-1].split(":")[-1])


@pytest.fixture(scope="module")
def agent():
    port = free_port()
    with virtual_controller(port, "--protocol", "ntcip", "--network", "single", "--time-scale", "10"):
        yield f"127.0.0.1:{port}"


def test_snmpget_reads_consistent_phase_and_unit_status(agent):
    proc = _tool("snmpget", "-v2c", "-c", "public", agent, O.dotted(O.STATUS_GREENS + (1,)),
                 O.dotted(O.STATUS_YELLOWS + (1,)), O.dotted(O.STATUS_REDS + (1,)), O.dotted(O.MAX_PHASES),
                 O.dotted(O.UNIT_FLASH_STATUS), O.dotted(O.UNIT_CONTROL_STATUS))
    assert proc.returncode == 0, proc.stderr
    greens, yellows, reds, max_phases, flash, control = [int(line.split(":")[-1]) for line in proc.stdout.splitlines()]
    assert greens & yellows == greens & reds == yellows & reds == 0 and greens | yellows | reds == 0b1111
    assert max_phases == 8 and flash == 2 and control in (2, 4)


def test_preempts_one_to_eight_are_called_and_reported_through_snmpset_and_snmpget():
    """The virtual controller has 8 preempts (maxPreempts), each called by its preemptControlState and reported in
    its preemptState with the MIB's codes: 4 entry, 6 dwell, 8 exit, 2 not active. Preempt 3 dwells in phase 3."""
    port = free_port()
    with virtual_controller(port, "--protocol", "ntcip", "--network", "single", "--time-scale", "10", "--preempt"):
        agent = f"127.0.0.1:{port}"
        assert _int(_tool("snmpget", "-v2c", "-c", "public", agent, O.dotted(O.MAX_PREEMPTS)).stdout) == 8
        walk = _tool("snmpwalk", "-v2c", "-c", "public", agent, O.dotted(O.PREEMPT_STATE)).stdout.splitlines()
        assert [int(l.split(" = ")[0].rsplit(".", 1)[1]) for l in walk] == list(range(1, 9))
        control = O.dotted(O.PREEMPT_CONTROL_STATE + (3,))
        state = O.dotted(O.PREEMPT_STATE + (3,))
        assert _tool("snmpset", "-v2c", "-c", "private", agent, control, "i", "1").returncode == 0
        seen: list[int] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and 6 not in seen:
            _tool("snmpset", "-v2c", "-c", "private", agent, control, "i", "1")  # within the backup time
            seen.append(_int(_tool("snmpget", "-v2c", "-c", "public", agent, state).stdout))
            time.sleep(0.1)
        assert 6 in seen and set(seen) <= {2, 3, 4, 5, 6}, seen
        greens = _int(_tool("snmpget", "-v2c", "-c", "public", agent, O.dotted(O.STATUS_GREENS + (1,))).stdout)
        assert greens == 1 << 2  # phase 3 (bit 2) dwells
        assert _int(_tool("snmpget", "-v2c", "-c", "public", agent, O.dotted(O.PREEMPT_STATE + (1,))).stdout) == 2
        assert _tool("snmpset", "-v2c", "-c", "private", agent, control, "i", "0").returncode == 0
        deadline = time.monotonic() + 20
        after: list[int] = []
        while time.monotonic() < deadline and (not after or after[-1] != 2):
            after.append(_int(_tool("snmpget", "-v2c", "-c", "public", agent, state).stdout))
            time.sleep(0.1)
        assert after[-1] == 2 and set(after) <= {2, 6, 8}, after
        too_big = _tool("snmpset", "-v2c", "-c", "private", agent, control, "i", "2")
        assert too_big.returncode != 0 and "wrongValue" in too_big.stderr + too_big.stdout


def test_snmpwalk_lists_the_asc_objects_and_global_time(agent):
    proc = _tool("snmpwalk", "-v2c", "-c", "public", agent, O.dotted(O.DEVICES))
    assert proc.returncode == 0, proc.stderr
    oids = [line.split(" = ")[0] for line in proc.stdout.splitlines()]
    assert "." + O.dotted(O.CONTROL_HOLD + (1,)) in oids and "." + O.dotted(O.GLOBAL_TIME) in oids
    assert sum(o.startswith("." + O.dotted(O.DETECTOR_VOLUME)) for o in oids) == 64
    assert oids == sorted(oids, key=lambda o: tuple(int(x) for x in o.strip(".").split(".")))  # GETNEXT order


def test_only_the_write_community_and_the_v3_user_may_set(agent):
    hold = O.dotted(O.CONTROL_HOLD + (1,))
    denied = _tool("snmpset", "-v2c", "-c", "public", agent, hold, "i", "2")
    assert denied.returncode != 0 and "noAccess" in denied.stderr + denied.stdout
    ok = _tool("snmpset", "-v2c", "-c", "private", agent, hold, "i", "2")
    assert ok.returncode == 0 and _int(ok.stdout) == 2
    v3 = _tool("snmpset", *V3, agent, hold, "i", "4")
    assert v3.returncode == 0 and _int(v3.stdout) == 4
    assert _int(_tool("snmpget", *V3, agent, hold).stdout) == 4
    wrong_key = _tool("snmpget", *V3[:-1], "not-the-key", agent, hold)
    assert wrong_key.returncode != 0


def test_bad_sets_get_snmp_errors(agent):
    status = _tool("snmpset", "-v2c", "-c", "private", agent, O.dotted(O.STATUS_GREENS + (1,)), "i", "1")
    assert status.returncode != 0 and "notWritable" in status.stderr + status.stdout
    too_big = _tool("snmpset", "-v2c", "-c", "private", agent, O.dotted(O.CONTROL_HOLD + (1,)), "i", "999")
    assert too_big.returncode != 0 and "wrongValue" in too_big.stderr + too_big.stdout
    text = _tool("snmpset", "-v2c", "-c", "private", agent, O.dotted(O.CONTROL_HOLD + (1,)), "s", "hello")
    assert text.returncode != 0 and "wrongType" in text.stderr + text.stdout


def test_control_objects_lapse_into_backup_mode_after_unit_backup_time(agent):
    assert _tool("snmpset", "-v2c", "-c", "private", agent, O.dotted(O.UNIT_BACKUP_TIME), "i", "3").returncode == 0
    hold = O.dotted(O.CONTROL_HOLD + (1,))
    deadline = time.monotonic() + 5
    control = 0
    while time.monotonic() < deadline and control != 2:  # a SET of a control object puts it under system control
        assert _tool("snmpset", "-v2c", "-c", "private", agent, hold, "i", "1").returncode == 0
        control = _int(_tool("snmpget", "-v2c", "-c", "public", agent, O.dotted(O.UNIT_CONTROL_STATUS)).stdout)
    assert control == 2
    time.sleep(1.0)  # 3 cabinet seconds are 0.3 s at time scale 10: the timer lapses
    assert _int(_tool("snmpget", "-v2c", "-c", "public", agent, O.dotted(O.UNIT_CONTROL_STATUS)).stdout) == 4
    assert _int(_tool("snmpget", "-v2c", "-c", "public", agent, hold).stdout) == 0  # the control objects are zeroed


# ------------------------------------------------------------------ our adapter against net-snmp's snmpd
def _state(overrides: dict | None = None) -> dict:
    values = {O.STATUS_GREENS + (1,): 0b0100, O.STATUS_YELLOWS + (1,): 0, O.STATUS_REDS + (1,): 0b1011,
              O.STATUS_WALKS + (1,): 0b0100, O.STATUS_PED_CLEARS + (1,): 0, O.STATUS_DONT_WALKS + (1,): 0b0001,
              O.STATUS_PHASE_ONS + (1,): 0b0100, O.STATUS_PHASE_NEXTS + (1,): 0, O.STATUS_PED_CALLS + (1,): 0b0001,
              O.UNIT_FLASH_STATUS: 2,
              O.UNIT_CONTROL_STATUS: 2, O.SHORT_ALARM_STATUS: 0, O.GLOBAL_TIME: 1000, O.VOLUME_OCCUPANCY_SEQUENCE: 3,
              O.UNIT_BACKUP_TIME: 5, O.DETECTOR_ACTIVE + (1,): 0b101, O.DETECTOR_VOLUME + (1,): 4,
              O.DETECTOR_VOLUME + (2,): 0, O.DETECTOR_VOLUME + (3,): 7, O.DETECTOR_OCCUPANCY + (1,): 100,
              O.DETECTOR_OCCUPANCY + (2,): 0, O.DETECTOR_OCCUPANCY + (3,): 255, O.VOLUME_OCCUPANCY_PERIOD: 1,
              O.UNIT_ALARM_STATUS1: 0x10, O.UNIT_ALARM_STATUS2: 0, O.PREEMPT_STATE + (1,): 2,
              O.COORD_PATTERN_STATUS: 254, O.SYSTEM_PATTERN_CONTROL: 0, O.COORD_OPERATIONAL_MODE: 0,
              O.PREEMPT_CONTROL_STATE + (1,): 0}
    values.update({c + (1,): 0 for c in O.PHASE_CONTROLS})
    values.update(overrides or {})
    writable = {*(c + (1,) for c in O.PHASE_CONTROLS), O.VOLUME_OCCUPANCY_PERIOD, O.SYSTEM_PATTERN_CONTROL,
                O.COORD_OPERATIONAL_MODE, O.PREEMPT_CONTROL_STATE + (1,)}
    return {O.dotted(k): [v, k in writable] for k, v in values.items() if v is not None}


@pytest.fixture()
def snmpd(tmp_path):
    """net-snmp's snmpd on a free loopback port, with the pass_persist backend on the NTCIP devices subtree."""
    binary = shutil.which("snmpd") or "/usr/sbin/snmpd"
    if not Path(binary).exists():
        pytest.fail("snmpd is not installed (apt-get install snmpd; .ci/run installs it)")

    def start(state: dict, subtree: tuple[int, ...] = O.DEVICES) -> str:
        port = free_port()
        (tmp_path / "state.json").write_text(json.dumps(state))
        conf = tmp_path / "snmpd.conf"
        conf.write_text(f"agentaddress udp:127.0.0.1:{port}\n"
                        f"rocommunity public 127.0.0.1 .{O.dotted(O.DEVICES)}\n"
                        f"rwcommunity private 127.0.0.1 .{O.dotted(O.DEVICES)}\n"
                        f"pass_persist .{O.dotted(subtree)} {sys.executable} {BACKEND} {tmp_path / 'state.json'}\n"
                        f"createUser ntcip SHA {SnmpAccess().auth_key} AES {SnmpAccess().priv_key}\n"
                        f"rwuser ntcip priv .{O.dotted(O.DEVICES)}\n")
        persist = tmp_path / "persist"
        persist.mkdir(exist_ok=True)
        proc = subprocess.Popen([binary, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(tmp_path / "pid")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(persist)})
        procs.append(proc)
        where = f"127.0.0.1:{port}"
        for _ in range(100):
            if _tool("snmpget", "-v2c", "-c", "public", where, O.dotted(O.UNIT_BACKUP_TIME)).returncode == 0:
                return where
            time.sleep(0.1)
        raise RuntimeError("snmpd did not answer")

    procs: list[subprocess.Popen] = []
    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _adapter(where: str, **kw) -> NtcipAdapter:
    host, port = where.split(":")
    return NtcipAdapter(host, int(port), timeout_s=1.0, **kw)


@pytest.mark.parametrize("version", ["v2c", "v3"])
def test_adapter_reads_and_commands_snmpd(snmpd, version):
    where = snmpd(_state())

    async def go():
        a = _adapter(where, version=version, loop_detectors=[True, True, False])
        await a.connect()
        inputs = await a.read(1, 3)
        await a.write(1, PhaseCommands(hold=frozenset({2}), vehicle_calls=frozenset({0, 3})), heartbeat=0)
        await a.command_pattern(O.PATTERN_FLASH)
        await a.command_preempt(1, True)
        await a.close()
        return a, inputs

    adapter, inputs = asyncio.run(go())
    assert adapter.backup_time_s == 5
    s = inputs.status
    assert (s.greens, s.reds, s.walks, s.dont_walks, s.clock_s, s.control_status) == (0b0100, 0b1011, 0b0100, 1, 1000, 2)
    assert s.ped_calls == 0b0001  # phaseStatusGroupPedCalls: a push-button call on phase 1
    assert inputs.presence.tolist() == [True, False, True]
    assert inputs.counts.tolist() == [4, 0, 7]  # loops: running count; the zone: its vehicles
    assert inputs.occupancy.tolist() == [0.5, 0.0, 0.0]  # 255 is a detector fault code, not an occupancy
    assert inputs.unit == {"alarm1": 0x10, "alarm2": 0, "short_alarm": 0, "preempt_state": 2, "pattern": 254,
                           "preempt_inputs": frozenset(), "preempt_active": 0}
    assert adapter.preempts == 1  # this agent has no maxPreempts: preempt 1 only
    got = _tool("snmpget", "-v2c", "-c", "public", where, O.dotted(O.CONTROL_HOLD + (1,)),
                O.dotted(O.CONTROL_VEH_CALL + (1,)), O.dotted(O.VOLUME_OCCUPANCY_PERIOD),
                O.dotted(O.SYSTEM_PATTERN_CONTROL), O.dotted(O.COORD_OPERATIONAL_MODE),
                O.dotted(O.PREEMPT_CONTROL_STATE + (1,)))
    assert [int(line.split(":")[-1]) for line in got.stdout.splitlines()] == [0b0100, 0b1001, 5, 255, 255, 1]


def _fails(where: str, words: str, **kw) -> str:
    async def go():
        a = _adapter(where, **kw)
        try:
            await a.connect()
            await a.read(1, 3)
            await a.write(1, PhaseCommands(hold=frozenset({0})), heartbeat=0)
        finally:
            await a.close()

    with pytest.raises(FieldError, match=words) as exc:
        asyncio.run(go())
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_a_read_only_community_cannot_command_and_says_so(snmpd):
    where = snmpd(_state())
    _fails(where, "noAccess|notWritable", access=SnmpAccess(write_community="public"))


def test_an_agent_without_an_object_is_named(snmpd):
    where = snmpd(_state(), subtree=O.ASC)  # globalTime (NTCIP 1201) is outside what the backend serves
    _fails(where, r"no object 1\.3\.6\.1\.4\.1\.1206\.4\.2\.6\.3\.1\.0")


def test_a_backup_time_too_short_to_keep_alive_is_refused(snmpd):
    where = snmpd(_state({O.UNIT_BACKUP_TIME: 1}))
    _fails(where, "unitBackupTime 1 s is too short")


@pytest.mark.parametrize("garbage, words", [({O.UNIT_FLASH_STATUS: 0}, "not an NTCIP code"),
                                            ({O.STATUS_YELLOWS + (1,): 0b0100}, "two colours"),
                                            ({O.STATUS_GREENS + (1,): 300}, "not an 8-bit group"),
                                            ({O.STATUS_PED_CALLS + (1,): 256}, "ped calls = 256 is not an 8-bit")])
def test_values_no_controller_reports_are_refused(snmpd, garbage, words):
    where = snmpd(_state(garbage))
    _fails(where, words)


def test_no_agent_is_a_timeout_in_one_line():
    message = _fails(f"127.0.0.1:{free_port()}", "cannot reach the controller")
    assert "timeout" in message.lower()
