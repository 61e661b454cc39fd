"""``ondaverde replay LOG --config DETECTORS --whatif``: the recorded timing and an adaptive controller in SUMO on
demand rebuilt from the log's counts (:mod:`networks.whatif_scenario`, :mod:`training.whatif`)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from controller.errors import InputError
from ondaverde.netargs import seed_list


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"hours must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"hours must be positive, got {text}")
    return value


def _has(parser: argparse.ArgumentParser, flag: str) -> bool:
    return any(flag in action.option_strings for action in parser._actions)


def add_whatif_args(p: argparse.ArgumentParser) -> None:
    """Add ``--whatif`` and its options to the ``replay`` parser (``--controller``, ``--policy`` and ``--json``
    only if decision replay has not added them: both uses mean the same thing)."""
    g = p.add_argument_group(
        "what-if in SUMO (--whatif)",
        "Rebuild demand from the recorded detector counts (per approach and 15-minute bin; assumed turning "
        "shares), build a SUMO model of the intersection (a generic crossing from the detector configuration's "
        "NEMA phases, or --net with --mapping), and simulate the recorded signal timing (replayed from the log's "
        "phase events through the core, with the field's yellow and red clearance) and the adaptive controller "
        "on the same demand and seeds. Reports delay with the project's metric, the count match (GEH per "
        "approach) and recorded vs replayed greens.")
    g.add_argument("--whatif", action="store_true", help="run the what-if (needs --config)")
    if not _has(p, "--controller"):
        g.add_argument("--controller", default=None,
                       help="the adaptive controller: actuated (default), maxpressure, webster, fixed, rl (with "
                            "--policy), sumo-actuated, sumo-delay-based")
    if not _has(p, "--policy"):
        g.add_argument("--policy", type=Path, default=None, metavar="FILE",
                       help="trained policy file for --controller rl (it must match the intersection's layout)")
    if not _has(p, "--net"):
        g.add_argument("--net", type=Path, default=None, metavar="FILE",
                       help="simulate on this SUMO net instead of the generic crossing (needs --mapping)")
    g.add_argument("--mapping", type=Path, default=None, metavar="FILE",
                   help="with --net: YAML naming the light ('tl: ID', optional with one light) and the incoming "
                        "edge of each through phase ('approaches: {2: west_in, 6: east_in, ...}')")
    if not _has(p, "--seeds"):
        g.add_argument("--seeds", type=seed_list, default=[0, 1, 2], help="comma-separated SUMO seeds (default: 0,1,2)")
    g.add_argument("--arrivals", choices=("counts", "recorded"), default="counts",
                   help="demand: 'counts' (default) draws Poisson arrivals at each 15-minute bin's recorded count; "
                        "'recorded' sends one vehicle per recorded detector actuation (advance detectors where a "
                        "phase has them), timed to pass the simulated detector when the real one fired, so the "
                        "recorded timing meets the vehicles it served")
    g.add_argument("--hours", type=_hours, default=None,
                   help="simulate at most this many hours from the log's first whole 15-minute bin (default: all)")
    g.add_argument("--whatif-dir", type=Path, default=None, metavar="DIR",
                   help="keep the scenario (net, demand, timing overrides, network.yaml) in DIR, one folder per "
                        "signal, e.g. to rerun it with `ondaverde evaluate --network DIR/SIGNAL`; default: a "
                        "temporary folder, deleted")
    if not _has(p, "--json"):
        g.add_argument("--json", action="store_true", help="print the result as JSON (stdout) instead of tables")


def run_whatif_command(args: argparse.Namespace, table, config) -> int:
    """Run the what-if for every signal of ``table`` that the detector configuration describes; with several
    signals, one that cannot be modelled is skipped with a note on stderr (and in the JSON's ``skipped``).

    :param args: parsed ``replay`` arguments.
    :param table: the ingested events (``hw.replay.events.EventTable``).
    :param config: the detector channels (``hw.replay.detector_config.load_detector_config``), or None.
    :raises InputError: no configuration, no configured signal in the log, bad options.
    """
    from hw.replay.detector_config import channels_for
    from networks.whatif_scenario import build_whatif
    from training.whatif import check_whatif_controller, format_whatif, run_whatif

    if getattr(args, "network", None) is not None:
        # ondaverde's own logs number phases in the order of the net's program, not NEMA's rings and barriers
        raise InputError("--whatif models field logs from a NEMA detector configuration (--config); for ondaverde's "
                         "own logs (--network) run `ondaverde evaluate` on that network instead")
    if config is None:
        raise InputError("--whatif needs a detector configuration (--config DETECTORS)")
    if (args.net is None) != (args.mapping is None):
        raise InputError("--net and --mapping go together for --whatif (the mapping names each phase's approach edge)")
    signals = [s for s in table.signals() if channels_for(config, s)]
    if not signals:
        raise InputError(f"--whatif: no signal of the log ({', '.join(table.signals()[:5]) or 'none'}) is in the "
                         "detector configuration")
    controller = check_whatif_controller(args.controller or "actuated", args.policy)
    results, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="ondaverde-whatif-") as tmp:
        root = Path(args.whatif_dir) if args.whatif_dir is not None else Path(tmp)
        for signal in signals:
            events = table.for_signal(signal)
            try:
                scenario = build_whatif(events.time_s, events.code, events.param, channels_for(config, signal),
                                        signal, root / str(signal), net=args.net, mapping=args.mapping,
                                        hours=args.hours, demand=args.arrivals)
            except InputError as exc:
                if len(signals) == 1:
                    raise
                # one signal of many that cannot be modelled (no phase events, phases the model lacks): say so
                # and go on with the others
                skipped.append({"signal": signal, "reason": str(exc)})
                print(f"ondaverde: what-if skips signal {signal}: {exc}", file=sys.stderr)
                continue
            result = run_whatif(scenario, controller, args.seeds, policy_file=args.policy)
            if args.whatif_dir is None:
                result["folder"] = None
            results.append(result)
            if not args.json:
                print(format_whatif(result))
                if args.whatif_dir is not None:
                    print(f"scenario kept in {scenario.network.folder}")
    if not results:
        raise InputError(f"--whatif: no signal could be modelled ({skipped[0]['signal']}: {skipped[0]['reason']})")
    if args.json:
        json.dump({"whatif": results, "skipped": skipped}, sys.stdout)
        print()
    return 0
