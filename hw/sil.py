"""Software in the loop: the daemon driving every light of a network through virtual Modbus controllers coupled to
SUMO (``ondaverde run --sumo``, ``ondaverde evaluate --through virtual``)."""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from controller.errors import InputError

#: the daemon's decision cycle in lock-step runs (it polls every quarter cycle), seconds of wall time
LOCK_STEP_CYCLE_S = 0.01


def run_sumo_loop(network: str, scenario: str | None, seed: int, policy: str, time_scale: float | None,
                  events: str | None, night_flash: str | None = None, duration_s: float = 0.0,
                  preempt: bool = False, dilemma_zone: bool = False, lock_step_timeout_s: float = 10.0,
                  keep_output: str | None = None, tsp: bool = False, policy_file: str | None = None,
                  preempt_route_s: float | None = None, ped: bool = False, begin_s: float | None = None,
                  end_s: float | None = None) -> dict:
    """The daemon driving every light of ``network`` through virtual Modbus controllers coupled to SUMO.

    :param network: network name or folder.
    :param scenario: demand scenario.
    :param seed: SUMO seed.
    :param policy: the policy of every light.
    :param time_scale: simulated seconds per wall second, or None for lock step (each simulated second waits for
        the daemon's commands to reach the virtual controllers).
    :param events: event log file, or None for a temporary one.
    :param night_flash: scheduled flash window ``HH:MM-HH:MM`` on the simulated clock, or None.
    :param duration_s: stop after this many simulated seconds (0: at the scenario's end).
    :param preempt: emergency-vehicle preemption at every light (cabinets and daemon).
    :param tsp: transit signal priority at every light: the cabinets report buses' check-ins on their priority
        detector inputs, the daemon's core runs the priority (default settings, condition ``always``).
    :param ped: pedestrian push buttons at every signalised crosswalk: the cabinets register and report the
        calls, the daemon's core mirrors them.
    :param begin_s: simulation begin, seconds (None: the scenario's).
    :param end_s: simulation end, seconds (None: the scenario's).
    :param dilemma_zone: the daemon reads radar tracks from the virtual radar and protects the dilemma zone.
    :param lock_step_timeout_s: in lock step, wall seconds a virtual controller waits for the daemon's answer.
    :param keep_output: folder for SUMO's tripinfo and statistics files, or None.
    :param preempt_route_s: with ``preempt``: route-aware (GPS) calls too, this many seconds ahead (None: the
        receivers only).
    :param policy_file: the trained policy ``rl`` runs (default: the network folder's).
    :return: the virtual controllers' summary (seconds, faults, delay) plus the event count, the daemon core's
        safety faults and the wall time.
    """
    import time
    from envs.simulation import intersections_of
    from hw.daemon import Daemon
    from hw.daemon_config import parse_config
    from hw.process import free_port, virtual_controller
    from networks.catalog import load_network

    lock_step = time_scale is None
    if not lock_step and not 0 < time_scale <= 200:
        raise InputError(f"time scale {time_scale} must be in (0, 200]")
    if not lock_step_timeout_s > 0:
        raise InputError(f"lock-step timeout {lock_step_timeout_s} s must be positive")
    spec = load_network(network)
    if begin_s is not None or end_s is not None:
        spec = spec.with_horizon(begin_s, end_s, only=[spec.scenario(scenario).name])
    scenario_spec = spec.scenario(scenario)
    scenario_name = scenario_spec.name
    if preempt_route_s is not None and not (preempt and preempt_route_s > 0):
        raise InputError(f"a route-aware preempt horizon ({preempt_route_s} s) needs preemption and a positive "
                         "number of seconds")
    if duration_s < 0:
        raise InputError(f"duration {duration_s} s must not be negative")
    lights = [i.id for i in intersections_of(spec)]
    port, radar_port = free_port(), free_port()
    tmp = tempfile.TemporaryDirectory(prefix="ondaverde-run-")
    log = events or str(Path(tmp.name) / "events.sqlite")
    # in lock step the daemon polls every 2.5 ms: the loop's pace is the round trip, not a clock
    cycle_s = LOCK_STEP_CYCLE_S if lock_step else 1.0 / time_scale
    config = parse_config({"network": network, "cycle_s": cycle_s, "event_log": log,
                           "intersections": [{"id": light, "backend": "modbus", "address": f"127.0.0.1:{port}",
                                              "unit": k + 1, "policy": policy, "timeout_s": 2.0,
                                              **({"policy_file": str(policy_file)} if policy_file else {}),
                                              "preemption": preempt, "transit_priority": tsp,
                                              **({"radar": f"127.0.0.1:{radar_port}", "radar_unit": k + 1}
                                                 if dilemma_zone else {})}
                                             for k, light in enumerate(lights)],
                          **({"night_flash": night_flash} if night_flash else {})}, "--sumo")
    # a backup timer of 1 s of wall time (at least 10 simulated s): at any time scale the central side has a second
    # to answer a busy moment (on a loaded machine 0.2 s, 10 simulated s at 50x, lapsed every few minutes)
    # (in lock step the timer lapses only when the daemon stops answering: 10 simulated s)
    backup_s = 10.0 if lock_step else max(10.0, time_scale)
    pacing = (["--lock-step", "--lock-step-timeout", f"{lock_step_timeout_s:g}"] if lock_step
              else ["--time-scale", str(time_scale)])
    args = ["--protocol", "modbus", "--sumo", network, "--seed", str(seed), *pacing,
            "--backup-time", f"{backup_s:g}", "--json"] + (["--scenario", scenario] if scenario else [])
    if preempt:
        args.append("--preempt")
    if preempt and preempt_route_s is not None:
        args += ["--preempt-route", f"{preempt_route_s:g}"]
    if tsp:
        args.append("--tsp")
    if ped:
        args.append("--ped")
    if begin_s is not None:
        args += ["--begin", repr(float(begin_s))]
    if end_s is not None:
        args += ["--end", repr(float(end_s))]
    if duration_s:
        args += ["--seconds", f"{duration_s:g}"]
    if keep_output:
        args += ["--keep-output", str(keep_output)]
    # the virtual radar always counts dilemma-zone catches; the daemon reads it only with dilemma_zone
    args += ["--radar-port", str(radar_port)]

    async def drive(proc) -> Daemon:
        # scheduled flash follows the simulated clock: the scenario's begin plus the controllers' seconds (unwrapped
        # by the daemon: their clock register wraps at 65536 s)
        def minute_of_day() -> int:
            return int((scenario_spec.begin_s + daemon.centrals[0].elapsed_s) // 60) % 1440

        daemon = Daemon(config, minute_of_day=minute_of_day)
        stop = asyncio.Event()

        async def watch() -> None:
            while proc.poll() is None:
                await asyncio.sleep(0.2)
            stop.set()

        watcher = asyncio.create_task(watch())
        await daemon.run(stop, handle_signals=False, release=False)  # the controllers end with the simulation
        await watcher
        return daemon

    started = time.perf_counter()
    with virtual_controller(port, *args, timeout_s=120.0) as proc:
        daemon = asyncio.run(drive(proc))
        summary = json.loads(proc.stdout.read().strip().splitlines()[-1])
    tmp.cleanup() if events is None else None
    return {"network": spec.name, "scenario": scenario_name, "intersections": len(lights),
            "pacing": "lock step" if lock_step else f"{time_scale:g}x wall clock", **summary,
            "events": daemon.events_written, "event_log": log if events else "(temporary)",
            "core_faults": sum(len(c.controller.monitor.violations) for c in daemon.centrals),
            **({"tsp_services": sum(c.controller.modes.priority.services for c in daemon.centrals
                                    if c.controller.modes.priority is not None)} if tsp else {}),
            **({"radar_tracks": sum(w.accepted for _, w in daemon.radars.values()),
                "radar_dropped": sum(w.dropped for _, w in daemon.radars.values()),
                "dilemma_holds": sum(c.controller.dilemma.holds for c in daemon.centrals
                                     if c.controller.dilemma is not None)} if dilemma_zone else {}),
            "wall_s": time.perf_counter() - started}
