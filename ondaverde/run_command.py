"""``ondaverde run``: the live daemon from a configuration file, or the whole loop against SUMO through virtual
controllers (software in the loop)."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from controller.errors import InputError


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
                    "drive them all, faster than real time, then print the delay (software in the loop).")
    p.add_argument("config", nargs="?", help="daemon configuration (YAML)")
    p.add_argument("--sumo", metavar="NETWORK", help="software in the loop on this network instead of a config")
    p.add_argument("--scenario", default=None, help="with --sumo: demand scenario (default: the network's)")
    p.add_argument("--seed", type=int, default=0, help="with --sumo: SUMO seed (default: 0)")
    p.add_argument("--policy", default="actuated", help="with --sumo: the policy of every light (default: actuated)")
    p.add_argument("--time-scale", type=float, default=10.0,
                   help="with --sumo: simulated seconds per wall second (default: 10)")
    p.add_argument("--events", default=None, help="with --sumo: event log file (default: a temporary one)")
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
    summary = run_sumo_loop(args.sumo, args.scenario, args.seed, args.policy, args.time_scale, args.events)
    if args.json:
        print(json.dumps(summary))
    else:
        delay = summary["delay"]
        print(f"{summary['network']} {summary['scenario']}: {summary['seconds']} simulated s through "
              f"{summary['intersections']} virtual Modbus controllers; delay "
              + (f"{delay:.1f} s" if delay is not None else "not measured (stopped early)")
              + f", {summary['faults']} safety faults, {summary['events']} events in {summary['event_log']}")
    return 0


def run_sumo_loop(network: str, scenario: str | None, seed: int, policy: str, time_scale: float,
                  events: str | None) -> dict:
    """The daemon driving every light of ``network`` through virtual Modbus controllers coupled to SUMO.

    :param network: network name or folder.
    :param scenario: demand scenario.
    :param seed: SUMO seed.
    :param policy: the policy of every light.
    :param time_scale: simulated seconds per wall second.
    :param events: event log file, or None for a temporary one.
    :return: the virtual controllers' summary (seconds, faults, delay) plus the event count.
    """
    from envs.simulation import intersections_of
    from hw.daemon import Daemon
    from hw.daemon_config import parse_config
    from hw.process import free_port, virtual_controller
    from networks.catalog import load_network

    if not 0 < time_scale <= 200:
        raise InputError(f"time scale {time_scale} must be in (0, 200]")
    spec = load_network(network)
    scenario_name = spec.scenario(scenario).name
    lights = [i.id for i in intersections_of(spec)]
    port = free_port()
    tmp = tempfile.TemporaryDirectory(prefix="ondaverde-run-")
    log = events or str(Path(tmp.name) / "events.sqlite")
    config = parse_config({"network": network, "cycle_s": 1.0 / time_scale, "event_log": log,
                           "intersections": [{"id": light, "backend": "modbus", "address": f"127.0.0.1:{port}",
                                              "unit": k + 1, "policy": policy, "timeout_s": 2.0}
                                             for k, light in enumerate(lights)]}, "--sumo")
    # a backup timer of 10 simulated s: at 10x the central side has 1 s of wall time to answer a busy moment
    args = ["--protocol", "modbus", "--sumo", network, "--seed", str(seed), "--time-scale", str(time_scale),
            "--backup-time", "10", "--json"] + (["--scenario", scenario] if scenario else [])

    async def drive(proc) -> Daemon:
        daemon = Daemon(config)
        stop = asyncio.Event()

        async def watch() -> None:
            while proc.poll() is None:
                await asyncio.sleep(0.2)
            stop.set()

        watcher = asyncio.create_task(watch())
        await daemon.run(stop, handle_signals=False, release=False)  # the controllers end with the simulation
        await watcher
        return daemon

    with virtual_controller(port, *args, timeout_s=120.0) as proc:
        daemon = asyncio.run(drive(proc))
        summary = json.loads(proc.stdout.read().strip().splitlines()[-1])
    tmp.cleanup() if events is None else None
    return {"network": spec.name, "scenario": scenario_name, "intersections": len(lights), **summary,
            "events": daemon.events_written, "event_log": log if events else "(temporary)"}
