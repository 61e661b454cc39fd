"""The live daemon: configuration checked as a whole, many intersections in one process with one dead link not
stalling the others, status and metrics over HTTP, SIGTERM releasing every controller, and the whole loop against
SUMO through virtual controllers."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from hw.daemon_config import ConfigError, parse_config
from hw.modbus_map import ModbusMap
from hw.process import free_port, virtual_controller


def _light_ids(network: str) -> list[str]:
    from envs.simulation import intersections_of
    from networks.catalog import load_network

    return [i.id for i in intersections_of(load_network(network))]


def test_a_bad_configuration_lists_every_problem_with_its_path():
    grid = _light_ids("grid")
    bad = {"network": "grid", "cycle_s": 0, "colour": "red",
           "intersections": [{"id": grid[0], "backend": "bacnet", "address": "127.0.0.1"},
                             {"id": grid[0], "backend": "modbus", "address": "127.0.0.1:99999", "unit": 300},
                             {"id": "nowhere", "backend": "ntcip", "address": "h:161", "policy": "magic",
                              "snmp": {"version": "v4", "auth_key": "short"}}]}
    with pytest.raises(ConfigError) as exc:
        parse_config(bad, "daemon.yaml")
    problems = exc.value.problems
    for expected in ("colour: unknown setting", "cycle_s: 0", "intersections[0].backend: 'bacnet'",
                     "intersections[0].address: '127.0.0.1' is not host:port", "intersections[1].id:",
                     "listed twice", "intersections[1].address: '127.0.0.1:99999'", "intersections[1].unit: 300",
                     "intersections[2].id: no traffic light 'nowhere'", "intersections[2].policy: 'magic'",
                     "intersections[2].snmp.version", "intersections[2].snmp.auth_key"):
        assert any(expected in p for p in problems), (expected, problems)
    assert str(exc.value).startswith("daemon.yaml: ") and "\n" not in str(exc.value)


def test_ondaverde_run_refuses_a_bad_file_in_one_line_with_exit_2(tmp_path):
    f = tmp_path / "d.yaml"
    f.write_text("network: grid\nintersections: []\n")
    proc = subprocess.run([sys.executable, "-m", "ondaverde.cli", "run", str(f)], capture_output=True, text=True)
    assert proc.returncode == 2 and "intersections: required" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.sumo
def test_daemon_drives_several_intersections_serves_status_and_releases_them_on_sigterm(tmp_path):
    from pyModbusTCP.client import ModbusClient

    lights = _light_ids("grid")[:3]
    port, status_port, dead = free_port(), free_port(), free_port()
    config = {"network": "grid", "cycle_s": 0.1, "event_log": str(tmp_path / "events.sqlite"),
              "status": f"127.0.0.1:{status_port}",
              "intersections": [{"id": lights[0], "backend": "modbus", "address": f"127.0.0.1:{port}", "unit": 1,
                                 "policy": "fixed"},
                                {"id": lights[1], "backend": "modbus", "address": f"127.0.0.1:{port}", "unit": 2,
                                 "policy": "fixed"},
                                # nobody listens here: this link fails and must not stall the other two
                                {"id": lights[2], "backend": "modbus", "address": f"127.0.0.1:{dead}",
                                 "timeout_s": 0.5}]}
    (tmp_path / "daemon.yaml").write_text(json.dumps(config))
    args = ["--network", "grid", "--time-scale", "10", "--backup-time", "30"]
    args += [a for light in lights[:2] for a in ("--intersection", light)]
    with virtual_controller(port, *args):
        daemon = subprocess.Popen([sys.executable, "-m", "ondaverde.cli", "run", str(tmp_path / "daemon.yaml")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            status = None
            for _ in range(200):  # up to 40 s; a fixed cycle of the grid is about 15 s here
                time.sleep(0.2)
                try:
                    status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{status_port}/status", timeout=2))
                except OSError:
                    continue
                rows = status["intersections"]
                if rows[0]["decisions"] >= 150 and rows[1]["decisions"] >= 150:
                    break
            rows = status["intersections"]
            assert [r["in_control"] for r in rows] == [True, True, False]
            assert rows[2]["link_up"] is False and rows[2]["link_errors"] >= 1 and rows[2]["decisions"] == 0
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{status_port}/metrics", timeout=2).read().decode()
            assert f'ondaverde_decisions_total{{intersection="{lights[0]}"}}' in metrics
            c = ModbusClient(host="127.0.0.1", port=port, unit_id=1, auto_open=True, timeout=2)
            m = ModbusMap()
            assert any(c.read_coils(m.hold, 8)) or any(c.read_coils(m.force_off, 8))  # commands are in place
            daemon.send_signal(signal.SIGTERM)
            out, err = daemon.communicate(timeout=30)
            assert daemon.returncode == 0, err
            for unit in (1, 2):  # handed back: every command coil released
                c = ModbusClient(host="127.0.0.1", port=port, unit_id=unit, auto_open=True, timeout=2)
                assert not any(c.read_coils(m.hold, m.omit + 8 - m.hold))
        finally:
            if daemon.poll() is None:
                daemon.kill()
    db = sqlite3.connect(tmp_path / "events.sqlite")
    written = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    codes = {row[0] for row in db.execute("SELECT DISTINCT code FROM events")}
    assert f"stopped; {written} events" in out and written > 0
    assert {1, 8, 10} <= codes  # begin green, yellow, red clearance


@pytest.mark.sumo
def test_the_whole_loop_against_sumo_matches_the_core_in_simulation():
    # lock step (the default of run --sumo): every simulated second waits for the daemon's commands to reach the
    # virtual controller over Modbus, so the result does not depend on how busy the machine is
    proc = subprocess.run([sys.executable, "-m", "ondaverde.cli", "run", "--sumo", "single", "--json"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    through_field = json.loads(proc.stdout)
    direct = subprocess.run([sys.executable, "-m", "ondaverde.cli", "simulate", "--network", "single",
                             "--controller", "actuated", "--input-lag", "1", "--json"], capture_output=True, text=True,
                            timeout=600)
    core_only = json.loads(direct.stdout)["delay"]
    assert through_field["pacing"] == "lock step"
    assert through_field["seconds"] == 3600 and through_field["faults"] == 0 and through_field["events"] > 1000
    # every second was answered and the controller never fell back to its local timing
    assert through_field["unanswered"] == 0 and through_field["lost_control"] == 0, through_field
    # the same policy through adapters and virtual controllers: the daemon acts on each second's detector data a
    # second later, and with that lag the core alone gives the same run, to the last vehicle
    assert through_field["delay"] == pytest.approx(core_only, abs=1e-9), (through_field["delay"], core_only)


def test_detector_health_thresholds_are_read_per_intersection_over_the_top_level_and_checked():
    lights = _light_ids("grid")[:2]
    base = {"network": "grid", "detector_health": {"chatter_changes": 50, "recall": "max"},
            "intersections": [{"id": lights[0], "backend": "modbus", "address": "127.0.0.1:1502"},
                              {"id": lights[1], "backend": "modbus", "address": "127.0.0.1:1503",
                               "detector_health": {"stuck_on_s": 120}}]}
    first, second = parse_config(base).intersections
    assert (first.detector_health.chatter_changes, first.detector_health.recall) == (50, "max")
    assert (second.detector_health.chatter_changes, second.detector_health.stuck_on_s) == (50, 120.0)
    assert first.detector_health.stuck_on_s == 300.0  # the default where nothing is said
    mates = parse_config({**base, "detector_health": {"lane_mate_ratio": 4, "lane_mate_min_count": 60}})
    mate = mates.intersections[0].detector_health
    assert (mate.lane_mate_ratio, mate.lane_mate_min_count) == (4.0, 60)
    bad = {**base, "detector_health": {"chatter_changes": 2.5, "recall": "always", "stuck_on_s": -1, "colour": 1,
                                       "lane_mate_ratio": 0.5, "lane_mate_min_count": 2.5}}
    with pytest.raises(ConfigError) as exc:
        parse_config(bad, "daemon.yaml")
    for expected in ("detector_health.chatter_changes: 2.5", "detector_health.recall: 'always'",
                     "detector_health.stuck_on_s: -1", "detector_health.colour: unknown setting",
                     "detector_health.lane_mate_ratio: 0.5 is not a ratio above 1",
                     "detector_health.lane_mate_min_count: 2.5 is not a whole number of vehicles"):
        assert any(expected in p for p in exc.value.problems), (expected, exc.value.problems)


def test_night_flash_windows_are_checked():
    light = _light_ids("single")[0]
    base = {"network": "single", "intersections": [{"id": light, "backend": "modbus", "address": "127.0.0.1:1502"}]}
    assert parse_config({**base, "night_flash": "23:00-05:00"}).intersections[0].night_flash == (1380, 300)
    with pytest.raises(ConfigError, match="night_flash: '25:00-01:00' is not a time window"):
        parse_config({**base, "night_flash": "25:00-01:00"})


@pytest.mark.sumo
def test_scheduled_night_flash_reaches_the_field_and_ends(tmp_path):
    import asyncio

    from hw.daemon import Daemon

    light = _light_ids("single")[0]
    port = free_port()
    config = parse_config({"network": "single", "cycle_s": 0.1, "event_log": str(tmp_path / "e.sqlite"),
                           "night_flash": "23:00-05:00",
                           "intersections": [{"id": light, "backend": "modbus", "address": f"127.0.0.1:{port}"}]})
    clock = {"minute": 22 * 60}  # 22:00
    daemon = Daemon(config, log=lambda m: None, minute_of_day=lambda: clock["minute"])

    async def scenario() -> list[int]:
        stop = asyncio.Event()
        seen = []

        async def script() -> None:
            await asyncio.sleep(2)
            clock["minute"] = 23 * 60 + 30  # 23:30: inside the window
            for _ in range(60):
                await asyncio.sleep(0.1)
                seen.append(daemon.centrals[0].reported[-1][1].status.flash_status)
            clock["minute"] = 5 * 60 + 1  # 05:01: the window is over
            await asyncio.sleep(3)
            seen.append(daemon.centrals[0].reported[-1][1].status.flash_status)
            stop.set()

        await asyncio.gather(daemon.run(stop, handle_signals=False), script())
        return seen

    with virtual_controller(port, "--network", "single", "--time-scale", "10"):
        seen = asyncio.run(scenario())
    assert 3 in seen[:-1] and seen[-1] == 2  # flashing (automatic) inside the window, not after it
    db = sqlite3.connect(tmp_path / "e.sqlite")
    flash_events = [row[0] for row in db.execute("SELECT param FROM events WHERE code = 173 ORDER BY timestamp")]
    assert flash_events == [3, 2]


def test_a_preempt_the_ntcip_controller_does_not_have_is_refused_on_the_status_endpoint(tmp_path):
    """A call of preempt 3 on a controller whose maxPreempts is 2 would make every write of its commands fail: the
    status endpoint refuses it with 409 and says why; a preempt it has is taken, and a release is always taken."""
    from hw.daemon import Daemon
    from hw.daemon_config import parse_config

    config = parse_config({"network": "single", "event_log": str(tmp_path / "e.sqlite"),
                           "intersections": [{"id": "C", "backend": "ntcip", "address": "127.0.0.1:9",
                                              "preemption": {"min_dwell_s": 5}}]})
    daemon = Daemon(config, log=lambda m: None)
    adapter = daemon.centrals[0].link.adapter
    adapter.engine, adapter.preempts = object(), 2  # as connected to a controller with maxPreempts 2
    status, _, body = daemon._command("/preempt/C/3/on", "127.0.0.1")
    assert status.startswith("409") and "has 2 preempt(s)" in body
    assert daemon.centrals[0].preempt_commands == set()
    assert daemon._command("/preempt/C/1/on", "127.0.0.1")[0].startswith("200")
    assert daemon._command("/preempt/C/3/off", "127.0.0.1")[0].startswith("200")
    assert daemon.centrals[0].preempt_commands == {1}
    adapter.engine = None


def test_stopping_cancels_again_a_task_that_swallowed_its_first_cancellation():
    """Python 3.11's asyncio.wait_for (inside pymodbus) can lose a cancellation; the daemon's stop must still end
    its serving tasks before it releases the controllers, and name a task that never ends instead of hanging."""
    import asyncio

    from hw.daemon import stop_tasks

    async def main():
        swallowed, done = [], asyncio.Event()

        async def loses_one_cancellation():
            while True:
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    if swallowed:
                        raise
                    swallowed.append(True)  # a lost cancellation: it carries on

        async def ignores_cancellation():
            while not done.is_set():
                try:
                    await asyncio.sleep(0.05)
                except asyncio.CancelledError:
                    pass

        tasks = [asyncio.create_task(loses_one_cancellation()), asyncio.create_task(ignores_cancellation())]
        await asyncio.sleep(0.1)
        left = await stop_tasks(tasks, timeout_s=1.0)
        assert swallowed and tasks[0].cancelled()
        assert left == {tasks[1]}
        done.set()
        await asyncio.wait_for(tasks[1], 2)

    asyncio.run(main())


def test_serving_loops_that_end_on_the_stop_with_the_stop_task_are_no_crash(tmp_path):
    """With the stop already set, every serving loop ends at its first turn, in the same step as the task that waits
    for the stop: the daemon must stop cleanly, not report its own loops as having crashed (seen in CI as a race)."""
    import asyncio

    from hw.fieldbench import FieldBench

    bench = FieldBench(tmp_path)  # its field server is not started: the link is down, the release fails quickly

    async def main():
        stop = asyncio.Event()
        stop.set()
        await asyncio.wait_for(bench.daemon.run(stop, handle_signals=False), 30)

    asyncio.run(main())
    assert not any("internal error" in line for line in bench.logs), bench.logs
