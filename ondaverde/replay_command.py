"""``ondaverde replay``: a recorded hi-res log read, measured (ATSPM measures, plots) and replayed through the core."""

from __future__ import annotations

import argparse
import json
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
    """Options of decision replay."""
    from hw.replay.decisions import CONTROLLERS

    p.add_argument("--controller", default=None, metavar="NAME",
                   help=f"decision replay with one of {', '.join(CONTROLLERS)} (with --whatif: the adaptive "
                        "controller of the what-if, see below): replay the recorded detector actuations, second by "
                        "second and faster than real time, through the core with this policy (the phase machine and the safety monitor included) "
                        "and print recorded vs replayed services, greens, splits and terminations per phase. The "
                        "recorded traffic does not react to the new timing. Field logs: the signal is modelled "
                        "from --config (one signal group per NEMA phase, dual-ring compatibility, the log's "
                        "yellow and all-red); ondaverde's own logs: with --network, on the intersection that "
                        "wrote them")
    p.add_argument("--out", metavar="FILE", default=None,
                   help="with --controller: write the replayed event log as CSV (Timestamp,SignalId,EventCode,"
                        "EventParam, NEMA phase numbers; the recorded detector events copied in)")
    p.add_argument("--policy", metavar="FILE", default=None,
                   help="with --controller rl: the policy file (trained for this signal's phases and detectors; "
                        "any other is refused)")


def _say(args: argparse.Namespace, text: str) -> None:
    """A line for the user: standard output, or standard error when --json keeps standard output for JSON."""
    print(text, file=sys.stderr if getattr(args, "json", False) else sys.stdout)


def cmd_replay(args: argparse.Namespace) -> int:
    """Run ``ondaverde replay``."""
    from hw.replay.detector_config import load_detector_config
    from hw.replay.events import load_events

    table, report = load_events(args.log, signal=args.signal, gap_minutes=args.gap_minutes, progress=True)
    # with --json, stdout carries the JSON alone
    _say(args, report.summary())
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
        _say(args, f"measures ({args.bin_minutes}-minute bins, atspm package): "
             + ", ".join(f"{f.name} ({len(measures[f.stem])} rows)" for f in files) + f" in {args.measures}")
    if args.plots:
        from hw.replay.plots import write_plots

        files = write_plots(table, config, args.plots)
        _say(args, f"plots: {', '.join(f.name for f in files) or 'none (no phase service in the log)'} in {args.plots}")
    if getattr(args, "whatif", False):
        from ondaverde.whatif_command import run_whatif_command

        return run_whatif_command(args, table, config)
    if args.controller:
        _decisions(args, table, config)
    elif args.out or args.policy:
        raise InputError("--out and --policy go with --controller")
    return 0


def _decisions(args: argparse.Namespace, table, config) -> None:
    """Decision replay of every signal in the table."""
    from tqdm import tqdm

    from hw.replay import decisions as dec

    if config is None:
        raise InputError("--controller needs a detector configuration (--config DETECTORS, or --network NAME for "
                         "ondaverde's own logs)")
    own = None
    if args.network is not None:
        from envs.simulation import intersections_of
        from networks.catalog import load_network

        own = {i.id: i for i in intersections_of(load_network(args.network))}
        missing = [s for s in table.signals() if s not in own]
        if missing:
            raise InputError(f"signal(s) {', '.join(missing[:5])} of the log are not traffic lights of "
                             f"{args.network}")
    signals = table.signals()
    if own is None:
        configured = {c.signal for c in config}
        skipped = [s for s in signals if s not in configured]
        signals = [s for s in signals if s in configured]
        if not signals:
            raise InputError(f"--controller: no signal of the log ({', '.join(skipped[:5])}) is in the detector "
                             "configuration")
        if skipped:
            _say(args, f"not replayed (no detector channel in the configuration): signal(s) {', '.join(skipped)}")
    span = sum(int(table.for_signal(s).time_s[-1] - table.for_signal(s).time_s[0]) + 2 for s in signals)
    results = []
    with tqdm(total=span, unit=" sim s", unit_scale=True, desc=f"replay {args.controller}", leave=False,
              disable=None) as bar:
        for sid in signals:
            log = table.for_signal(sid)
            if own is not None:
                results.append(dec.replay_own_signal(log, own[sid], args.controller, args.policy, bar.update))
            else:
                results.append(dec.replay_signal(log, config, args.controller, args.policy, bar.update))
    if getattr(args, "json", False):
        json.dump({"decisions": [dec.result_record(r) for r in results], "note": dec.NOTE}, sys.stdout)
        print()
    else:
        for r in results:
            print(dec.format_comparison(r))
        print(dec.NOTE)
    if args.out:
        n = dec.write_replayed_csv(results, args.out)
        _say(args, f"replayed event log: {n} events in {args.out}")
    if args.measures:
        from pathlib import Path

        from hw.replay.measures import compute_measures, write_measures

        out = Path(args.measures) / f"replayed-{args.controller}"
        write_measures(compute_measures(dec.replayed_table(results), config, args.bin_minutes), out)
        _say(args, f"measures of the replayed log in {out}")


def add_replay_bench(bsub) -> None:
    """Add ``bench replay`` to the ``bench`` subcommands."""
    b = bsub.add_parser(
        "replay", help="ingest and decision replay speed on a day of real hi-res data",
        description="Build a long log from the atspm package's real sample (signal 1136, two hours repeated back to "
                    "back), write it as CSV and Parquet, and time in fresh processes: ingest (load_events) against "
                    "a plain pyarrow read of the same file (events per second, the ratio, peak memory), and "
                    "decision replay of the whole log through the core with actuated and max-pressure control "
                    "(simulated hours per wall second).")
    b.add_argument("--hours", type=int, default=24, help="log length, hours (even; default: 24, ~446,000 events)")
    b.add_argument("--repeats", type=int, default=3, help="timed runs per measurement, fastest kept (default: 3)")
    b.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_bench_replay(args: argparse.Namespace) -> int:
    """Run ``ondaverde bench replay``."""
    import json

    from hw.replay.bench import bench_replay, format_bench_replay

    result = bench_replay(args.hours, args.repeats,
                          progress=None if args.json else lambda label: print(f"  {label} ...", file=sys.stderr))
    print(json.dumps(result) if args.json else format_bench_replay(result))
    return 0
