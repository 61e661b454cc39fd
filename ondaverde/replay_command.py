"""``ondaverde replay``: a recorded hi-res log read, measured (ATSPM measures, plots) and replayed through the core."""

from __future__ import annotations

import argparse
import sys

from controller.errors import InputError


def _positive_minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bin length must be whole minutes, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"bin length must be at least 1 minute, got {value}")
    return value


def add_replay_command(sub) -> None:
    """Add ``replay`` to the shell's subcommands."""
    p = sub.add_parser(
        "replay", help="read a recorded controller event log: ATSPM measures, plots, decision replay",
        description="Read a recorded high-resolution controller event log (Indiana codes): CSV or Parquet in the "
                    "ATSPM 4 (SignalId,Timestamp,EventCode,EventParam or 'Signal Id, Timestamp, Event Code, Event "
                    "Parameter'), ATSPM 5 API (EventCode,EventParam,LocationIdentifier,Timestamp) or atspm package "
                    "(TimeStamp,DeviceId,EventId,Parameter) layouts, or ondaverde's own log (SQLite or its CSV "
                    "export). Prints what ingest found (duplicates, out-of-order rows, gaps, vendor codes, "
                    "chattering detectors, unreadable rows) and carries on; a file that is not a log exits with "
                    "code 2. Then, as asked: the standard ATSPM measures per signal and bin (--measures), plots "
                    "(--plots), the recorded detector actuations replayed through the core (--controller), and the "
                    "what-if in SUMO: recorded timing against an adaptive controller on demand rebuilt from the "
                    "log's counts (--whatif).")
    p.add_argument("log", help="the event log: .csv, .parquet, or the daemon's SQLite file")
    p.add_argument("--config", metavar="DETECTORS", default=None,
                   help="detector configuration, CSV or Parquet: SignalId,Phase,DetectorChannel,Function or the "
                        "atspm package's DeviceId,Phase,Parameter,Function; function advance, presence, "
                        "stop bar count or yellow_red (needed by --measures, --plots and --controller)")
    p.add_argument("--network", metavar="NAME", default=None,
                   help="for ondaverde's own logs: take the detector configuration from this network's intersections "
                        "(bundled name or folder; stop-bar loops as presence, advance loops as advance detectors, "
                        "channel = detector number in the log) instead of --config")
    p.add_argument("--signal", metavar="ID", default=None, help="only this signal of the log (default: all)")
    p.add_argument("--measures", metavar="DIR", default=None,
                   help="write the ATSPM measures into DIR, one CSV each: volumes, terminations, splits, "
                        "arrivals_on_green, split_failures, ped_delay, preemption (computed with the atspm package)")
    p.add_argument("--bin-minutes", type=_positive_minutes, default=15,
                   help="measure bin length, minutes (default: 15)")
    p.add_argument("--plots", metavar="DIR", default=None,
                   help="write a Purdue coordination diagram and a split monitor per signal (PNG) into DIR")
    p.add_argument("--gap-minutes", type=float, default=5.0,
                   help="report stretches without any event longer than this, minutes (default: 5)")
    # --- decision replay (--controller, --out, ...) is added by add_decision_args below ---
    add_decision_args(p)
    # --- what-if in SUMO (--whatif and its options): ondaverde/whatif_command.py ---
    from ondaverde.whatif_command import add_whatif_args

    add_whatif_args(p)


def _network_detector_config(name: str):
    """The detector configuration of every intersection of a network (ondaverde's own numbering)."""
    from envs.simulation import intersections_of
    from hw.replay.detector_config import detector_config_for
    from networks.catalog import load_network

    return [c for inter in intersections_of(load_network(name)) for c in detector_config_for(inter)]


def add_decision_args(p: argparse.ArgumentParser) -> None:
    """Options of decision replay (filled in with the decision-replay milestone)."""


def cmd_replay(args: argparse.Namespace) -> int:
    """Run ``ondaverde replay``."""
    from hw.replay.detector_config import load_detector_config
    from hw.replay.events import load_events

    table, report = load_events(args.log, signal=args.signal, gap_minutes=args.gap_minutes, progress=True)
    # with --json, stdout carries the JSON alone
    print(report.summary(), file=sys.stderr if getattr(args, "json", False) else sys.stdout)
    needs_config = [flag for flag, on in (("--measures", args.measures), ("--plots", args.plots)) if on]
    config = None
    if args.config is not None and args.network is not None:
        raise InputError("give either --config or --network, not both")
    if args.config is not None:
        config = load_detector_config(args.config)
    elif args.network is not None:
        config = _network_detector_config(args.network)
    elif needs_config:
        raise InputError(f"{' and '.join(needs_config)} need a detector configuration (--config DETECTORS, or "
                         f"--network NAME for ondaverde's own logs)")
    if args.measures:
        from hw.replay.measures import compute_measures, write_measures

        measures = compute_measures(table, config, args.bin_minutes)
        files = write_measures(measures, args.measures)
        print(f"measures ({args.bin_minutes}-minute bins, atspm package): "
              + ", ".join(f"{f.name} ({len(measures[f.stem])} rows)" for f in files) + f" in {args.measures}")
    if args.plots:
        from hw.replay.plots import write_plots

        files = write_plots(table, config, args.plots)
        print(f"plots: {', '.join(f.name for f in files) or 'none (no phase service in the log)'} in {args.plots}")
    if getattr(args, "whatif", False):
        from ondaverde.whatif_command import run_whatif_command

        return run_whatif_command(args, table, config)
    return 0
