"""``ondaverde check-log EVENTS.csv --network NET``: the independent consistency check of an exported event log
(:mod:`hw.logcheck`)."""

from __future__ import annotations

import argparse
import json


def add_check_log_command(sub) -> None:
    """Add ``check-log`` to the shell's subcommands."""
    p = sub.add_parser(
        "check-log", help="check an exported event log: clearances before every conflicting green, safe flash",
        description="Read an event log exported with `ondaverde events LOG --csv OUT` and check, per intersection, "
                    "that every green is followed by its yellow and red clearance (at least the intersection's "
                    "times) before a conflicting green begins, that flash begins only from red (fault flash "
                    "excepted) and ends with at least 2 s of red. Exit code 0 when consistent, 1 with the "
                    "problems listed, 2 for bad input.")
    p.add_argument("csv", help="the exported log (Timestamp,SignalId,EventCode,EventParam)")
    p.add_argument("--network", required=True, help="network name or folder the signal ids belong to")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_check_log(args: argparse.Namespace) -> int:
    """Check and report."""
    from envs.simulation import intersections_of
    from hw.logcheck import check_csv
    from networks.catalog import load_network

    report = check_csv(args.csv, intersections_of(load_network(args.network)))
    summary = {"events": report.events, "signals": report.signals, "greens": report.greens,
               "conflicting_changes": report.conflicting_changes, "flashes": report.flashes,
               "problems": len(report.problems), "consistent": report.consistent}
    if args.json:
        print(json.dumps({**summary, "first_problems": report.problems[:20]}))
    else:
        print(f"{report.events} events, {report.signals} signals: {report.greens} greens, "
              f"{report.conflicting_changes} changes between conflicting phases checked, {report.flashes} flash "
              f"entries; " + ("consistent" if report.consistent else f"{len(report.problems)} problems:"))
        for line in report.problems[:20]:
            print(f"  {line}")
    return 0 if report.consistent else 1
