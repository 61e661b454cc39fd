"""``ondaverde run``: the live daemon from a configuration file, or the whole loop against SUMO through virtual
controllers (software in the loop)."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from controller.errors import InputError


#: the daemon's decision cycle in lock-step runs (it polls every quarter cycle), seconds of wall time
LOCK_STEP_CYCLE_S = 0.01


def add_run_command(sub) -> None:
    """Add ``run`` to the shell's subcommands."""
    p = sub.add_parser(
        "run", help="the live daemon: drive field controllers through the core (or SUMO via virtual controllers)",
        description="Drive the intersections of CONFIG.yaml (see hw/daemon_config.py for the layout) through the "
                    "core, once per cycle each, over NTCIP 1202 or Modbus TCP; log every signal change and "
                    "detector edge in Indiana hi-res codes to a SQLite event log; serve read-only status "
                    "(/status) and Prometheus metrics (/metrics) if configured. SIGTERM or Ctrl-C hands every "
                    "controller back to its local timing and flushes the log. With --sumo NETWORK instead of a "
                    "config: start virtual Modbus controllers for every light of NETWORK coupled to SUMO and "
                    "drive them all, faster than real time, then print the delay (software in the loop). The --sumo "
                    "loop runs in lock step unless --time-scale is given: SUMO advances one second only after the "
                    "daemon's decision for the last one has reached every virtual controller over Modbus, so the "
                    "result is the same on a quiet and on a busy machine; with --time-scale K it follows a wall "
                    "clock at K simulated seconds per wall second, as a field would, and a slow machine shows up as "
                    "late commands.")
    p.add_argument("config", nargs="?", help="daemon configuration (YAML)")
    p.add_argument("--sumo", metavar="NETWORK", help="software in the loop on this network instead of a config")
    p.add_argument("--scenario", default=None, help="with --sumo: demand scenario (default: the network's)")
    p.add_argument("--seed", type=int, default=0, help="with --sumo: SUMO seed (default: 0)")
    p.add_argument("--policy", default="actuated", help="with --sumo: the policy of every light (default: actuated)")
    p.add_argument("--time-scale", type=float, default=None, metavar="K",
                   help="with --sumo: pace the loop by the wall clock at K simulated seconds per wall second (a "
                        "demonstration at field-like timing; on a loaded machine decisions may come late and change "
                        "the result) (default: lock step, as fast as the loop goes and independent of machine load)")
    p.add_argument("--lock-step-timeout", type=float, default=10.0, metavar="S",
                   help="with --sumo in lock step: wall seconds a virtual controller waits for the daemon's answer "
                        "before its second goes on without it (counted as unanswered) (default: 10)")
    p.add_argument("--keep-output", default=None, metavar="DIR",
                   help="with --sumo: keep SUMO's tripinfo and statistics files in DIR (default: temporary)")
    p.add_argument("--events", default=None, help="with --sumo: event log file (default: a temporary one)")
    p.add_argument("--night-flash", metavar="HH:MM-HH:MM", default=None,
                   help="with --sumo: scheduled night flash window on the simulated clock (the scenario's begin is "
                        "taken as that many seconds after midnight), e.g. 23:00-05:00 (default: none)")
    p.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="with --sumo: stop after S simulated seconds (default: the scenario's end; a run stopped "
                        "early reports no delay)")
    p.add_argument("--preempt", action="store_true",
                   help="with --sumo: emergency-vehicle preemption at every light (the cabinets run it from their "
                        "emitter receivers; the daemon's core mirrors it and logs events 102-111)")
    p.add_argument("--dilemma-zone", action="store_true",
                   help="with --sumo: radar tracks of the vehicles in each approach radar zone go to the daemon over "
                        "Modbus (a virtual radar) and the daemon protects the dilemma zone; vehicles caught at yellow "
                        "onsets are counted either way (default: no radar)")
    p.add_argument("--json", action="store_true", help="with --sumo: print the summary as JSON")


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until stopped, or the SUMO loop to the scenario's end."""
    from hw.daemon import Daemon
    from hw.daemon_config import load_config

    if args.sumo is None:
        if args.config is None:
            raise InputError("give a configuration file, or --sumo NETWORK for the software-in-the-loop run")
        daemon = Daemon(load_config(args.config))
        asyncio.run(daemon.run())
        print(f"stopped; {daemon.events_written} events in {daemon.config.event_log}")
        return 0
    if args.config is not None:
        raise InputError("give either a configuration file or --sumo, not both")
    summary = run_sumo_loop(args.sumo, args.scenario, args.seed, args.policy, args.time_scale, args.events,
                            night_flash=args.night_flash, duration_s=args.duration, preempt=args.preempt,
                            dilemma_zone=args.dilemma_zone, lock_step_timeout_s=args.lock_step_timeout,
                            keep_output=args.keep_output)
    if args.json:
        print(json.dumps(summary))
    else:
        delay = summary["delay"]
        print(f"{summary['network']} {summary['scenario']}: {summary['seconds']} simulated s ({summary['pacing']}) "
              f"through "
              f"{summary['intersections']} virtual Modbus controllers; delay "
              + (f"{delay:.1f} s" if delay is not None else "not measured (stopped early)")
              + (f", {summary['dilemma_caught']} vehicles caught in the dilemma zone at {summary['yellow_onsets']} "
                 f"yellow onsets" if "dilemma_caught" in summary else "")
              + f", {summary['faults']} safety faults in the controllers, {summary['core_faults']} in the daemon's "
                f"core, {summary['events']} events in {summary['event_log']}, {summary['wall_s']:.0f} s of wall time")
    return 0


def run_sumo_loop(network: str, scenario: str | None, seed: int, policy: str, time_scale: float | None,
                  events: str | None, night_flash: str | None = None, duration_s: float = 0.0,
                  preempt: bool = False, dilemma_zone: bool = False, lock_step_timeout_s: float = 10.0,
                  keep_output: str | None = None) -> dict:
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
    :param dilemma_zone: the daemon reads radar tracks from the virtual radar and protects the dilemma zone.
    :param lock_step_timeout_s: in lock step, wall seconds a virtual controller waits for the daemon's answer.
    :param keep_output: folder for SUMO's tripinfo and statistics files, or None.
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
    scenario_spec = spec.scenario(scenario)
    scenario_name = scenario_spec.name
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
                                              "preemption": preempt,
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
            **({"radar_tracks": sum(w.accepted for _, w in daemon.radars.values()),
                "radar_dropped": sum(w.dropped for _, w in daemon.radars.values()),
                "dilemma_holds": sum(c.controller.dilemma.holds for c in daemon.centrals
                                     if c.controller.dilemma is not None)} if dilemma_zone else {}),
            "wall_s": time.perf_counter() - started}
