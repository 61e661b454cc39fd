"""The field-side commands of the shell: ``ondaverde virtual-controller``."""

from __future__ import annotations

import argparse
import asyncio
import json

from controller.errors import InputError


def add_virtual_controller_command(sub) -> None:
    """Add ``virtual-controller`` to the shell's subcommands."""
    p = sub.add_parser(
        "virtual-controller", help="virtual field controllers (Modbus TCP or NTCIP 1202) for a network's intersections",
        description="Run a virtual signal cabinet for every intersection of a network behind one Modbus TCP "
                    "server (unit k+1 = intersection k; register map: docs/modbus-register-map.md) or behind one "
                    "NTCIP 1202 SNMP agent each (UDP ports PORT, PORT+1, ...). Each cabinet "
                    "runs its own phase machine and conflict monitor, follows the central system's holds, "
                    "force-offs and calls while its heartbeat keeps changing (Modbus) or its control objects are "
                    "re-sent within unitBackupTime (NTCIP), and falls back to its local timing when they stop. "
                    "With --sumo its signals drive a SUMO simulation and SUMO's detectors drive its inputs "
                    "(software in the loop).")
    p.add_argument("--protocol", choices=["modbus", "ntcip"], default="modbus",
                   help="modbus: one TCP server, unit k+1 = intersection k; ntcip: one NTCIP 1202 SNMP agent per "
                        "intersection on UDP ports PORT, PORT+1, ... (communities public/private, v3 user ntcip "
                        "with SHA/AES) (default: modbus)")
    p.add_argument("--port", type=int, default=15020, help="TCP port (default: 15020)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, loopback only)")
    p.add_argument("--network", default="single", help="network whose intersections the cabinets run "
                   "(default: single)")
    p.add_argument("--sumo", nargs="?", const=True, default=False, metavar="NETWORK",
                   help="couple to SUMO: the cabinets drive the simulation of --network (or of NETWORK)")
    p.add_argument("--scenario", default=None, help="demand scenario with --sumo (default: the network's)")
    p.add_argument("--seed", type=int, default=0, help="SUMO seed (default: 0)")
    p.add_argument("--begin", type=float, default=None, help="with --sumo: simulation begin, seconds (default: the "
                   "scenario's)")
    p.add_argument("--end", type=float, default=None, help="with --sumo: simulation end, seconds (default: the "
                   "scenario's)")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="cabinet seconds per wall second (default: 1, real time)")
    p.add_argument("--seconds", type=float, default=0.0,
                   help="stop after this many cabinet seconds (default: the scenario's end with --sumo, else never)")
    p.add_argument("--local-policy", default="fixed",
                   help="the cabinets' own timing without central control (default: fixed)")
    p.add_argument("--backup-time", type=float, default=3.0,
                   help="seconds without a heartbeat change before local timing takes over (default: 3)")
    p.add_argument("--intersection", action="append", default=[],
                   help="serve only this traffic-light id (repeat for more; default: all)")
    p.add_argument("--modbus-map", default=None, help="YAML file moving register blocks (default map otherwise)")
    p.add_argument("--preempt", action="store_true",
                   help="the cabinets run emergency-vehicle preemption, preempt k dwelling in phase k (Modbus preempt "
                        "coils / NTCIP preemptControlState call it; with --sumo an emergency vehicle within 300 m of "
                        "the stop bar on an approach lane turns that approach's preempt input on)")
    p.add_argument("--preempt-route", type=float, default=None, metavar="S",
                   help="with --preempt and --sumo: emergency vehicles' route-aware (GPS) units also call every signal "
                        "on their route they would reach within S seconds at the speed limits (default: receivers only)")
    p.add_argument("--tsp", action="store_true",
                   help="with --sumo: a bus within 150 m of the stop bar on an approach lane, with no stop left on it, "
                        "turns that phase's transit priority detector input on (Modbus discrete inputs 75-82); the "
                        "central system runs the priority (default: inputs stay off)")
    p.add_argument("--ped", action="store_true",
                   help="with --sumo: pedestrian push buttons: a person waiting at a signalised crosswalk presses its "
                        "button; the cabinet registers the call and times the walk at the phase's next green, and "
                        "reports it (Modbus input register 15, NTCIP phaseStatusGroupPedCalls) (default: no presses)")
    p.add_argument("--radar-port", type=int, default=0,
                   help="with --sumo: serve the vehicles in each approach radar zone as radar tracks over Modbus TCP "
                        "on this port (device k+1 = intersection k; layout hw/radar_feed.py) and count vehicles "
                        "caught in the dilemma zone at yellow onsets (default: no radar)")
    p.add_argument("--lock-step", action="store_true",
                   help="no wall clock: each cabinet second begins only after the central system answered the last "
                        "one at every intersection (a new Modbus heartbeat, a SET of the NTCIP control objects); "
                        "--time-scale is ignored (default: follow the wall clock)")
    p.add_argument("--lock-step-timeout", type=float, default=10.0, metavar="S",
                   help="with --lock-step: wall seconds to wait for the central system's answer before the second "
                        "goes on without it (counted as unanswered in the summary) (default: 10)")
    p.add_argument("--keep-output", default=None, metavar="DIR",
                   help="with --sumo: keep SUMO's tripinfo and statistics files in DIR (default: a temporary folder)")
    p.add_argument("--json", action="store_true", help="print a JSON summary at the end")


def cmd_virtual_controller(args: argparse.Namespace) -> int:
    """Run the virtual controllers until the end (or Ctrl-C)."""
    from hw.virtual import VirtualConfig, run_virtual

    if not 0 < args.port < 65536:
        raise InputError(f"port {args.port} is not a TCP port")
    if args.radar_port and (not 0 < args.radar_port < 65536 or args.radar_port == args.port or not args.sumo):
        raise InputError(f"--radar-port {args.radar_port} needs --sumo and a TCP port other than --port")
    network = args.sumo if isinstance(args.sumo, str) else args.network
    config = VirtualConfig(protocol=args.protocol, network=network, scenario=args.scenario, sumo=bool(args.sumo), seed=args.seed,
                           host=args.host, port=args.port, time_scale=args.time_scale, seconds=args.seconds,
                           local_policy=args.local_policy, backup_time_s=args.backup_time,
                           intersections=tuple(args.intersection), modbus_map=args.modbus_map,
                           preempt=args.preempt, preempt_route_s=args.preempt_route, tsp=args.tsp,
                           ped=args.ped, radar_port=args.radar_port, begin_s=args.begin, end_s=args.end, lock_step=args.lock_step,
                           lock_step_timeout_s=args.lock_step_timeout, work_dir=args.keep_output)
    if args.preempt_route is not None and not (args.preempt_route > 0 and args.preempt and args.sumo):
        raise InputError(f"--preempt-route {args.preempt_route} needs --preempt, --sumo and a positive number of "
                         "seconds")
    if args.tsp and not args.sumo:
        raise InputError("--tsp needs --sumo (the buses' check-ins come from SUMO)")
    if (args.begin is not None or args.end is not None) and not args.sumo:
        raise InputError("--begin and --end need --sumo (they set the simulation's horizon)")
    if args.ped and not args.sumo:
        raise InputError("--ped needs --sumo (the persons pressing the buttons come from SUMO)")
    if not args.lock_step_timeout > 0:
        raise InputError(f"--lock-step-timeout {args.lock_step_timeout} s must be positive")
    try:
        summary = asyncio.run(run_virtual(config, ready=lambda where: print(f"listening on {where}", flush=True)))
    except OSError as exc:  # the port is taken, the address is not ours
        raise InputError(f"cannot serve on {args.host}:{args.port} ({exc.strerror or exc})") from None
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"ran {summary['seconds']} cabinet seconds, {summary['faults']} safety faults"
              + (f", delay {summary['delay']:.1f} s" if summary["delay"] is not None else ""))
    return 0


def add_events_command(sub) -> None:
    """Add ``events`` (export the daemon's event log) to the shell's subcommands."""
    p = sub.add_parser("events", help="export the daemon's event log as ATSPM CSV",
                       description="Write the hi-res events of an ondaverde event log (SQLite) as CSV with the "
                                   "columns Timestamp,SignalId,EventCode,EventParam (Indiana codes, 0.1 s, UTC).")
    p.add_argument("log", help="event log file (SQLite, as written by ondaverde run)")
    p.add_argument("--csv", required=True, help="CSV file to write")
    p.add_argument("--signal", default=None, help="only this signal id")


def cmd_events(args: argparse.Namespace) -> int:
    """Export the event log."""
    from pathlib import Path

    from hw.eventlog import EventLog

    if not Path(args.log).is_file():
        raise InputError(f"{args.log}: event log not found")
    log = EventLog(args.log)
    try:
        n = log.export_csv(args.csv, args.signal)
    except Exception as exc:  # sqlite3.DatabaseError: a file that is not an event log
        raise InputError(f"{args.log}: not an event log ({exc})") from None
    finally:
        log.close()
    print(f"{n} events written to {args.csv}")
    return 0
