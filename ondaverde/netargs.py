"""Command-line selection of a network: a bundled name, a network folder, a .sumocfg, or --net + --routes."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from controller.errors import InputError
from networks.catalog import (DEFAULT_NETWORK, NetworkSpec, bundled_networks, load_network, network_from_files,
                              network_from_sumocfg)


def seed_list(text: str) -> list[int]:
    """An argparse type: comma-separated SUMO seeds (``0,1,2``) as a list of integers."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("give at least one seed")
    return seeds


def add_network_args(parser: argparse.ArgumentParser) -> None:
    """Add --network/--scenario/--net/--routes/--begin/--end to ``parser``."""
    g = parser.add_argument_group("network (bundled, your own folder, a .sumocfg, or --net with --routes)")
    g.add_argument("--network", default=None,
                   help=f"bundled network ({', '.join(bundled_networks())}), a folder with network.yaml, "
                        f"or a .sumocfg file (default: {DEFAULT_NETWORK})")
    g.add_argument("--scenario", default=None, help="demand scenario of the network (default: its default scenario)")
    g.add_argument("--net", type=Path, default=None, help="a SUMO .net.xml with tlLogic programs (bring your own)")
    g.add_argument("--routes", default=None, help="route file(s) for --net, comma-separated")
    g.add_argument("--begin", type=float, default=None, help="simulation begin, seconds")
    g.add_argument("--end", type=float, default=None, help="simulation end (horizon), seconds")
    g.add_argument("--intersections", type=Path, default=None, metavar="FILE",
                   help="override file (YAML/JSON) adjusting the intersections derived from the net: "
                        "per traffic light, phase min/max green, names, link clearances, major phase")


def resolve_network(args: argparse.Namespace) -> tuple[NetworkSpec, str]:
    """The network and scenario name the arguments select; InputError on contradictions or bad files."""
    if args.net is not None:
        if args.network is not None:
            raise InputError("give either --network or --net, not both")
        if not args.routes:
            raise InputError("--net needs --routes (a route file with the demand)")
        routes = [Path(r) for r in args.routes.split(",") if r]
        begin = 0.0 if args.begin is None else args.begin
        if args.end is None:
            raise InputError("--net needs --end (the simulation horizon in seconds)")
        network = network_from_files(args.net, routes, begin, args.end)
    elif args.routes is not None:
        raise InputError("--routes needs --net")
    else:
        name = args.network or DEFAULT_NETWORK
        if name.endswith(".sumocfg"):
            network = network_from_sumocfg(Path(name), args.begin, args.end)
        else:
            network = load_network(name)
            if args.begin is not None or args.end is not None:  # only the scenarios this command runs
                chosen = getattr(args, "scenarios", None) or [network.scenario(args.scenario).name]
                network = network.with_horizon(args.begin, args.end, only=chosen)
    if args.intersections is not None:
        if not args.intersections.is_file():
            raise InputError(f"{args.intersections}: intersection override file not found")
        network = dataclasses.replace(network, override_file=args.intersections)
    scenario = network.scenario(args.scenario).name
    _note_undetected(network)
    return network, scenario


def _note_undetected(network: NetworkSpec) -> None:
    """Tell the user, in one line on stderr, when some vehicle phases have no detector (only a network's own detector
    layout or an intersection file leaves such phases)."""
    import sys

    from envs.simulation import intersections_of
    from networks.layout_report import undetected_note

    note = undetected_note(intersections_of(network))
    if note:
        print(note, file=sys.stderr)
