"""``ondaverde run``: the live daemon from a configuration file, or the whole loop against SUMO through virtual
controllers (software in the loop)."""

from __future__ import annotations

import argparse
import asyncio
import json

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
    p.add_argument("--preempt-route", type=float, default=None, metavar="S",
                   help="with --sumo --preempt: each ambulance's route-aware (GPS) unit also calls every signal on its "
                        "route it would reach within S seconds at the speed limits, beyond the next signal too "
                        "(the Óvalo is left to its receivers) (default: the roadside receivers only)")
    p.add_argument("--ped", action="store_true",
                   help="with --sumo: pedestrian push buttons at every signalised crosswalk: the cabinets register "
                        "the calls of waiting persons and report them, the daemon's core mirrors them")
    p.add_argument("--tsp", action="store_true",
                   help="with --sumo: transit signal priority at every light: a bus checked in on an approach turns "
                        "the cabinet's priority detector input on, the daemon reads it over Modbus and its core gives "
                        "early green or a green extension (at most 10 s, condition 'always'), logging events 112-119")
    p.add_argument("--dilemma-zone", action="store_true",
                   help="with --sumo: radar tracks of the vehicles in each approach radar zone go to the daemon over "
                        "Modbus (a virtual radar) and the daemon protects the dilemma zone; vehicles caught at yellow "
                        "onsets are counted either way (default: no radar)")
    p.add_argument("--json", action="store_true", help="with --sumo: print the summary as JSON")


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until stopped, or the SUMO loop to the scenario's end."""
    from hw.daemon import Daemon
    from hw.daemon_config import load_config
    from hw.sil import run_sumo_loop

    if args.sumo is None:
        if args.config is None:
            raise InputError("give a configuration file, or --sumo NETWORK for the software-in-the-loop run")
        given = [flag for flag, on in (("--preempt", args.preempt), ("--tsp", args.tsp), ("--ped", args.ped)) if on]
        if given:
            raise InputError(f"{' and '.join(given)} {'applies' if len(given) == 1 else 'apply'} to --sumo runs; a daemon configuration sets preemption and "
                             "transit priority per intersection, and push buttons are the cabinets' own inputs")
        daemon = Daemon(load_config(args.config))
        asyncio.run(daemon.run())
        print(f"stopped; {daemon.events_written} events in {daemon.config.event_log}")
        return 0
    if args.config is not None:
        raise InputError("give either a configuration file or --sumo, not both")
    summary = run_sumo_loop(args.sumo, args.scenario, args.seed, args.policy, args.time_scale, args.events,
                            night_flash=args.night_flash, duration_s=args.duration, preempt=args.preempt,
                            tsp=args.tsp, ped=args.ped, preempt_route_s=args.preempt_route, dilemma_zone=args.dilemma_zone,
                            lock_step_timeout_s=args.lock_step_timeout,
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
