"""The ``ondaverde`` command: simulate, evaluate and benchmark signal controllers on SUMO networks.

Every bad input (file, value, network) ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from controller.errors import InputError
from ondaverde.netargs import seed_list

EXIT_BAD_INPUT = 2


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be whole numbers separated by commas, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be at least 1, got {text!r}")
    return sizes


def _names(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _count(text: str) -> int:
    """A whole number, 1 or more (processes, repetitions, rounds)."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def _sumo_seed(text: str) -> int:
    """A SUMO random seed: a whole number from 0 to 2**31 - 1 (SUMO's own range)."""
    value = _whole(text)
    if not 0 <= value < 2 ** 31:
        raise argparse.ArgumentTypeError(f"{value} is outside SUMO's seed range 0 to 2147483647")
    return value


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (exit code 2), pointing at ``--help`` instead of printing the
    usage block: bad input is always one line naming what is wrong."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from envs.runner import controller_names
    from ondaverde.hw_commands import add_events_command, add_virtual_controller_command
    from ondaverde.checklog_command import add_check_log_command
    from ondaverde.flash_command import add_flash_command
    from ondaverde.replay_command import add_replay_command
    from ondaverde.run_command import add_run_command
    from ondaverde.netargs import add_network_args

    parser = _OneLineParser(
        prog="ondaverde",
        description="Adaptive traffic-signal control: one safe signal-timing core, trained and judged in SUMO.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    controllers = ", ".join(controller_names())
    _add_run_commands(sub, controllers, add_network_args)
    _add_network_commands(sub)
    _add_bench_commands(sub)
    _add_train_command(sub)
    add_virtual_controller_command(sub)
    add_run_command(sub)
    add_flash_command(sub)
    add_check_log_command(sub)
    add_events_command(sub)
    add_replay_command(sub)
    return parser


def _scale_range(text: str) -> tuple[float, float]:
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"demand scale must be LOW,HIGH or one number, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"demand scale must be LOW,HIGH or one number, got {text!r}")
    return parts[0], parts[1]


def _add_train_command(sub) -> None:
    """``train``."""
    p = sub.add_parser("train", help="train one policy shared by every light of a network (PPO or DQN)",
                       description="Train a signal-timing policy shared by all traffic lights of a network, over "
                                   "several SUMO processes, through the core's phase machine and safety monitor. "
                                   "Every --eval-every decisions the policy is exported and measured with the "
                                   "delay metric on held-out seeds and drawn in the run folder's learning-curve.png; "
                                   "the best and the final policy are kept in the run folder (load either with "
                                   "--controller rl --policy FILE).")
    p.add_argument("--network", default="miraflores",
                   help="network name, folder with network.yaml, or a .sumocfg (default: miraflores)")
    p.add_argument("--scenario", type=_names, default=None, dest="scenarios",
                   help="comma-separated scenarios drawn per episode (default: am-peak,pm-peak where the network "
                        "has them, else its default scenario)")
    p.add_argument("--algo", choices=["ppo", "dqn"], default="ppo", help="algorithm: ppo (masked to each light's own phases, sb3-contrib MaskablePPO) or dqn (default: ppo)")
    p.add_argument("--timesteps", type=int, default=1_000_000,
                   help="agent decisions in total, all lights together (default: 1000000)")
    p.add_argument("--n-envs", type=int, default=2, help="SUMO processes (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--demand-scale", type=_scale_range, default=(0.8, 1.2), metavar="LOW,HIGH",
                   help="per-episode demand scale range (default: 0.8,1.2)")
    p.add_argument("--eval-every", type=int, default=250_000, metavar="N",
                   help="decisions between evaluations on held-out seeds (default: 250000)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/NETWORK-ALGO-SEED)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--warm-start", default="", metavar="TEACHER",
                   help="before PPO, fit the policy to a classical controller's decisions recorded through the core "
                        "(actuated, maxpressure, ...; default: none)")
    p.add_argument("--warm-start-episodes", type=int, default=4, metavar="N",
                   help="teacher episodes recorded for --warm-start (default: 4)")
    p.add_argument("--warm-start-rounds", type=int, default=0, metavar="N",
                   help="DAgger rounds after the first fit: the fitted policy drives --warm-start-episodes more "
                        "episodes, the teacher labels them, the fit is repeated on all (default: 0)")
    p.add_argument("--decision-interval", type=float, default=5.0, metavar="S",
                   help="seconds between the policy's decisions, in training and at the curb (the policy file keeps "
                        "it); whole seconds, at least 1 (default: 5)")
    p.add_argument("--reward", default="diff-waiting-time",
                   help="training reward: diff-waiting-time, queue, pressure, queue-neighbours (own queue plus half of each "
                        "adjacent light's), or one a plug-in registered (default: diff-waiting-time)")
    p.add_argument("--features", default="phase-features-v2", metavar="LAYOUT",
                   help="what the policy observes: phase-features-v2 (per phase: queues, occupancy, flows, time "
                        "since last served, longest queue), phase-features-v1 (the committed policy's, without the "
                        "last two), phase-features-v3 (v2 plus the queue and stop-bar occupancy on the movements a "
                        "change to the phase would start and stop) or phase-features-v4 (v2 plus each phase's "
                        "max-pressure pressure and whether max-pressure would ask for it) (default: phase-features-v2)")
    p.add_argument("--learning-rate", type=float, default=5e-4,
                   help="optimiser step size; with --resume it replaces the run's (default: 0.0005)")
    p.add_argument("--clip-range", type=float, default=0.2,
                   help="PPO's clipping of the policy ratio; with --resume it replaces the run's (default: 0.2)")
    p.add_argument("--gamma", type=float, default=0.95,
                   help="discount per decision of the reward (0 < gamma <= 1; at a 5 s interval 0.95 looks about "
                        "100 s ahead, 0.99 about 500 s); with --resume it replaces the run's (default: 0.95)")
    p.add_argument("--ent-coef", type=float, default=0.01,
                   help="PPO's entropy bonus; with --resume it replaces the run's (default: 0.01)")
    p.add_argument("--discharge-hold", type=float, default=0.0, metavar="SECONDS",
                   help="pass the policy's phase changes through the discharge hold: a green is not ended while a "
                        "stop-bar loop of a movement the change would stop saw a vehicle less than SECONDS ago "
                        "(max-pressure's rule; 2 is its gap). The lights then step every second in training, as "
                        "at the curb, and the policy file keeps the hold (default: 0, none)")
    p.add_argument("--input-lag", type=int, default=0, metavar="S",
                   help="train for a central system's live loop: the lights act on detector readings S whole "
                        "seconds old, in training, in the warm start's recording and in the evaluations (the live "
                        "loop in lock step, `ondaverde run --sumo`, has 1; evaluate such a policy with "
                        "--input-lag S). The lights then step every second, as at the curb, and the policy file "
                        "records the lag (default: 0, none)")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="stop training after this wall time, minutes; the final policy is still exported and "
                        "evaluated (default: no limit)")


def _add_by_light(p: argparse.ArgumentParser) -> None:
    """--by-light of simulate and evaluate."""
    p.add_argument("--by-light", action="store_true",
                   help="also show where the delay is: the time loss on each traffic light's approaches, seconds per "
                        "scheduled vehicle, from SUMO's edge data output (in --json: delay_by_light)")


def _add_input_lag(p: argparse.ArgumentParser) -> None:
    """--input-lag of simulate and evaluate."""
    p.add_argument("--input-lag", type=int, default=0, metavar="S",
                   help="whole seconds between a detector reading and the controllers acting on it: a central system's "
                        "latency (the live loop in lock step, `ondaverde run --sumo`, has 1 and gives the same "
                        "delays as the core with 1); core controllers only (default: 0)")


def _add_run_commands(sub, controllers: str, add_network_args) -> None:
    """``simulate`` and ``evaluate``."""
    p = sub.add_parser("simulate", help="run one controller on one scenario and print its metrics",
                       description="Run one controller for one scenario and seed; metrics come from SUMO's "
                                   "tripinfo (delay = timeLoss + departDelay over every scheduled vehicle, "
                                   "never-inserted vehicles charged end - depart).")
    add_network_args(p)
    p.add_argument("--controller", default="actuated",
                   help=f"one of: {controllers}; a core controller may add +preempt (emergency-vehicle "
                        "preemption), +tsp (transit signal priority) and/or +ped (pedestrian push buttons: a "
                        "person waiting at a crosswalk calls its phase), e.g. actuated+preempt+tsp, and "
                        "@LIGHT=CONTROLLER puts a light under another core controller, e.g. rl@O=maxpressure "
                        "(default: actuated)")
    p.add_argument("--seed", type=_sumo_seed, default=0, help="SUMO random seed (default: 0)")
    p.add_argument("--gui", action="store_true", help="watch it in sumo-gui (TraCI)")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")
    p.add_argument("--keep-output", type=Path, default=None, metavar="DIR",
                   help="keep SUMO's tripinfo and statistics files in DIR")
    p.add_argument("--policy", type=Path, default=None, metavar="NPZ",
                   help="trained policy file for the rl controller (default: the network folder's rl-policy.npz)")
    _add_input_lag(p)
    _add_by_light(p)
    p.add_argument("--dilemma-zone", choices=["count", "protect"], default=None,
                   help="count: read SUMO radar tracks and report vehicles caught 2.5-5.5 s from the stop bar at "
                        "yellow onsets (dilemma_caught, yellow_onsets); protect: also hold greens while a tracked "
                        "vehicle is in that zone, never beyond max green (dilemma_holds) (default: neither)")

    p = sub.add_parser("evaluate", help="controllers side by side on the same seeds",
                       description="Run controllers side by side on the same scenarios and seeds, in parallel "
                                   "processes; print mean ± sd per controller, optionally plot and emit JSON.")
    add_network_args(p)
    p.add_argument("--controllers", type=_names, default=["fixed", "actuated", "maxpressure"],
                   help=f"comma-separated, from: {controllers}; a core controller may add +preempt "
                        "(emergency vehicles call preemption at every light) and/or +tsp (buses check in for "
                        "transit priority), e.g. actuated,actuated+preempt,actuated+tsp: run beside the plain "
                        "controller, the report compares every emergency vehicle's delay, each of its passages "
                        "through a signal, and each bus type's, and prints the issue-6 check lines; "
                        "@LIGHT=CONTROLLER after a core controller puts that light under another one, e.g. "
                        "rl,rl@O=maxpressure (default: fixed,actuated,maxpressure)")
    p.add_argument("--scenarios", type=_names, default=None,
                   help="comma-separated scenarios (default: --scenario, or the network's default)")
    p.add_argument("--seeds", type=seed_list, default=[0, 1, 2], help="comma-separated SUMO seeds (default: 0,1,2)")
    p.add_argument("--jobs", type=_count, default=None, help="parallel processes (default: CPU cores)")
    p.add_argument("--plot", type=Path, default=None, metavar="PNG", help="bar chart of delay per controller")
    p.add_argument("--policy", type=Path, default=None, metavar="NPZ",
                   help="trained policy file for the rl controller (default: the network folder's rl-policy.npz)")
    _add_input_lag(p)
    _add_by_light(p)
    p.add_argument("--through", choices=("core", "virtual"), default="core",
                   help="core: the core steps SUMO directly; virtual: every run goes through the whole live loop "
                        "(`ondaverde run --sumo`: SUMO <-> one virtual Modbus controller per light <-> the daemon, "
                        "in lock step), +preempt as the cabinets' emitter receivers and +tsp as their transit "
                        "priority detector inputs; SUMO's own controllers cannot run this way; about 6 min per "
                        "2-hour Miraflores run, two at a time on 2 cores (default: core)")
    p.add_argument("--json", action="store_true", help="print a JSON list with one record per run")


def _add_network_commands(sub) -> None:
    """``networks list|show|build|import-osm|calibrate``."""
    p = sub.add_parser("networks", help="list bundled networks, import your own from OpenStreetMap")
    nsub = p.add_subparsers(dest="networks", required=True, metavar="WHAT")
    nsub.add_parser("list", help="the bundled networks and their scenarios")
    from ondaverde.netargs import add_network_args

    sh = nsub.add_parser("show", help="what the core derives from a network: lights, phases, timings, detectors",
                         description="Derive the intersections of a network (bundled, a folder, a .sumocfg, or --net "
                                     "with --routes) and print, per light, its phases with their timings and its "
                                     "detectors by kind, saying whether they are the network's own (declared in its "
                                     "additional files) or placed automatically. --write saves the full description "
                                     "as an intersection file.")
    add_network_args(sh)
    sh.add_argument("--write", type=Path, default=None, metavar="FILE",
                    help="also write the intersection file (JSON) to FILE")
    o = nsub.add_parser("import-osm", help="build a controllable network from an OSM extract",
                        description="Build a SUMO network from your OpenStreetMap extract with Lima speeds for "
                                    "untagged roads (avenues 50 km/h, streets 30 km/h, expressways 80 km/h), "
                                    "guessed and joined signals, the derived intersection file, field-like "
                                    "detectors and random (uncalibrated) demand. The extract is not copied.")
    o.add_argument("osm", type=Path, help="the .osm file")
    o.add_argument("--name", required=True, help="network name (also the folder name)")
    o.add_argument("--out", type=Path, default=None, help="parent folder for the network (default: .)")
    o.add_argument("--seed", type=int, default=0, help="seed of the random demand (default: 0)")
    o.add_argument("--end", type=float, default=3600.0, help="demand horizon, seconds (default: 3600)")

    b = nsub.add_parser("build", help="rebuild a bundled network from its sources",
                        description="Regenerate a bundled network (net, intersection file, detectors, demand) from "
                                    "its plain-XML sources with fixed seeds; the result is byte-identical to what "
                                    "is committed.")
    b.add_argument("name", help="bundled network name")
    b.add_argument("--out", type=Path, default=None,
                   help="write into this folder instead of the package's (miraflores only)")

    c = nsub.add_parser("calibrate", help="demand from hourly edge or turn counts (routeSampler)",
                        description="Sample routes that reproduce counted flows with SUMO's routeSampler and report "
                                    "the GEH of every counted edge or turn. Counts CSV: begin_s,end_s,edge,count "
                                    "or begin_s,end_s,from_edge,to_edge,count (vehicles per interval).")
    c.add_argument("network", help="bundled network name or network folder")
    c.add_argument("--counts", type=Path, required=True, help="the counts CSV")
    c.add_argument("--out", type=Path, default=None,
                   help="folder for the calibrated route file (default: ./NETWORK-calibrated)")
    c.add_argument("--scenario", default="calibrated", help="name of the calibrated scenario (default: calibrated)")
    c.add_argument("--seed", type=int, default=0, help="routeSampler seed (default: 0)")


def _add_bench_target(parser: argparse.ArgumentParser) -> None:
    """--network/--scenario/--seed of a benchmark."""
    parser.add_argument("--network", default=None, help="network (default: the largest bundled one)")
    parser.add_argument("--scenario", default=None, help="scenario (default: the network's default)")
    parser.add_argument("--seed", type=_sumo_seed, default=0, help="SUMO seed (default: 0)")


def _add_bench_commands(sub) -> None:
    """``bench env|reads|hw``."""
    p = sub.add_parser("bench", help="performance benchmarks (ratios against a baseline run in the same command)")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="WHAT")
    b = bsub.add_parser("env", help="the environment stepped to the horizon vs a plain sumo process",
                        description="Step the Gymnasium env (all intersections, a trivial policy) from reset to "
                                    "the horizon, and run a plain sumo process on the same net, routes, "
                                    "detectors, seed and horizon showing the same signals (the states the env "
                                    "showed each second, recorded in an untimed env run first), so both carry the "
                                    "same traffic; print the wall-time ratio, the whole-process ratio, env steps "
                                    "per second and both sides' delay (equal when the traffic is the same).")
    _add_bench_target(b)
    b.add_argument("--repeats", type=_count, default=3, help="timed repetitions; the best of each is kept (default: 3)")
    b.add_argument("--side-by-side", action="store_true",
                   help="run each env run and its plain sumo run at the same time, one per core (a slow spell of "
                        "the machine then hits both alike); report the median of the --repeats pairs' ratios")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    r = bsub.add_parser("reads", help="detector reads: subscriptions vs direct getters vs none",
                        description="Three plain libsumo runs of the same hour: no detector reads, every "
                                    "detector read once per decision through subscriptions, and through direct "
                                    "getter calls (what the env does); prints each wall time.")
    _add_bench_target(r)
    r.add_argument("--repeats", type=_count, default=3, help="interleaved repetitions, best kept (default: 3)")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    h = bsub.add_parser("hw", help="field protocol round trips: read-decide-write cycles on loopback",
                        description="Start a virtual field controller in another process on a free loopback port "
                                    "and time full cycles of the central side (read status and detectors, run "
                                    "the core, write commands and heartbeat, read them back), for one "
                                    "intersection and for many polled concurrently; the baseline is a bare "
                                    "one-object read (one register, one SNMP object) in the same command.")
    h.add_argument("--protocol", choices=["modbus", "ntcip"], default="modbus", help="protocol (default: modbus)")
    h.add_argument("--network", default="miraflores", help="network of the virtual controller (default: miraflores)")
    h.add_argument("--sizes", type=_sizes, default=(1, 20), help="intersections per round, comma-separated (default: 1,20)")
    h.add_argument("--cycles", type=_count, default=300, help="rounds per size (default: 300)")
    h.add_argument("--json", action="store_true", help="print the result as JSON")
    from ondaverde.replay_command import add_replay_bench

    add_replay_bench(bsub)


def _note(line: str) -> None:
    """Show a note (on stderr: --json output stays clean)."""
    if line:
        print(line, file=sys.stderr)


def cmd_simulate(args: argparse.Namespace) -> int:
    from envs.runner import check_controller, input_lag_note, run_episode
    from ondaverde.netargs import resolve_network

    check_controller(args.controller)
    network, scenario = resolve_network(args)
    _note(input_lag_note(network, [args.controller], args.policy, args.input_lag))
    spec = network.scenario(scenario)
    from tqdm import tqdm

    with tqdm(total=round(spec.duration_s), unit="sim s", desc=f"{args.controller} on {network.name}",
              leave=False, disable=None) as bar:
        result = run_episode(network, scenario, args.controller, args.seed, gui=args.gui,
                             work_dir=args.keep_output, progress=bar.update, policy_file=args.policy,
                             dilemma_zone=args.dilemma_zone, input_lag_s=args.input_lag, by_light=args.by_light)
    record = result.record()
    if args.json:
        print(json.dumps(record))
    else:
        for key, value in record.items():
            if key == "delay_by_light":
                continue
            print(f"{key:>14}: {value:.2f}" if isinstance(value, float) else f"{key:>14}: {value}")
        if args.by_light:
            from training.light_report import format_by_light

            print(format_by_light([record]))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from envs.runner import check_controller, input_lag_note
    from ondaverde.netargs import resolve_network
    from training.evaluate import evaluate, format_table, plot_delay, summarise

    for c in args.controllers:
        check_controller(c)
    network, scenario = resolve_network(args)
    loop_lag = 1 if args.through == "virtual" else args.input_lag  # (the field loop's second of latency)
    _note(input_lag_note(network, args.controllers, args.policy, loop_lag))
    scenarios = args.scenarios or [scenario]
    records = evaluate(network, scenarios, args.controllers, args.seeds, args.jobs, policy_file=args.policy,
                       through=args.through, input_lag_s=args.input_lag, by_light=args.by_light)
    rows = summarise(records)
    if args.json:
        print(json.dumps(records))
    else:
        through = (" through the virtual controllers (lock step: input lag 1 s)" if args.through == "virtual"
                   else f", input lag {args.input_lag} s" if args.input_lag else "")
        print(f"network {network.name}{through}, seeds {','.join(map(str, args.seeds))}; delay = mean per scheduled "
              f"vehicle (timeLoss + departDelay, never-inserted charged), seconds")
        print(format_table(rows))
        from training.priority_report import format_report

        report = format_report(records)
        if report:
            print(report)
        if args.by_light:
            from training.light_report import format_by_light

            print(format_by_light(records))
    if args.plot is not None:
        plot_delay(rows, args.plot, f"{network.name}: delay by controller")
        print(f"plot written to {args.plot}", file=sys.stderr)
    return 0


def cmd_networks(args: argparse.Namespace) -> int:
    if args.networks == "calibrate":
        from networks.calibrate import calibrate, format_geh
        from networks.catalog import load_network

        spec = load_network(args.network)
        out = args.out or Path(f"{spec.name}-calibrated")
        result = calibrate(spec, args.counts, out, args.seed, args.scenario)
        print(format_geh(result))
        print(f"routes written to {result.route_file}")
        return 0
    if args.networks == "build":
        return _build_network(args.name, args.out)
    if args.networks == "show":
        return _show_network(args)
    from networks.osm_import import import_osm, list_networks

    if args.networks == "list":
        for name, scenarios, description in list_networks():
            print(f"{name:<12} scenarios: {', '.join(scenarios):<30} {description}")
        return 0
    folder = import_osm(args.osm, args.name, (args.out or Path(".")) / args.name, seed=args.seed, end_s=args.end)
    print(f"network written to {folder}; try: ondaverde simulate --network {folder}")
    return 0


def _show_network(args: argparse.Namespace) -> int:
    from envs.simulation import intersections_of
    from networks.layout_report import format_layout
    from networks.derive import write_intersection_file
    from ondaverde.netargs import resolve_network

    network, _ = resolve_network(args)
    inters = intersections_of(network)
    print(format_layout(inters, network.additional_files))
    if args.write is not None:
        path = write_intersection_file(inters, args.write, source=str(network.net_file))
        print(f"intersection file written to {path}")
    return 0


def _build_network(name: str, out: Path | None) -> int:
    from networks import build_bundled, build_miraflores
    from networks.catalog import bundled_networks

    if name == "miraflores":
        return build_miraflores.main(["--out", str(out)] if out else [])
    if name not in build_bundled.BUILDERS:
        raise InputError(f"no builder for network {name!r}; bundled: {', '.join(bundled_networks())}")
    if out is not None:
        raise InputError(f"--out is only supported for miraflores; {name} is rebuilt in place")
    return build_bundled.main([name])


def cmd_bench(args: argparse.Namespace) -> int:
    from envs.bench import bench_env, bench_reads, format_bench

    if args.bench == "replay":
        from ondaverde.replay_command import cmd_bench_replay

        return cmd_bench_replay(args)
    if args.bench == "hw":
        from hw.bench import bench_hw, format_bench_hw

        result = bench_hw(args.protocol, args.network, args.sizes, args.cycles)
        print(json.dumps(result) if args.json else format_bench_hw(result))
        return 0
    if args.bench == "reads":
        result = bench_reads(args.network, args.scenario, args.seed, repeats=args.repeats)
        text = (f"network {result['network']}, a read every {result['period_s']:g} s: no reads "
                f"{result['none_s']:.2f} s, subscriptions {result['subscriptions_s']:.2f} s "
                f"(+{result['subscriptions_extra_s']:.2f}), direct getters {result['direct_s']:.2f} s "
                f"(+{result['direct_extra_s']:.2f})")
    else:
        result = bench_env(args.network, args.scenario, args.seed, args.repeats, args.side_by_side)
        text = format_bench(result)
    print(json.dumps(result) if args.json else text)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from training.train import TrainConfig, train

    from networks.catalog import load_network

    scenarios = args.scenarios
    if scenarios is None:
        network = load_network(args.network)
        scenarios = [s for s in ("am-peak", "pm-peak") if s in network.scenarios] or [network.scenario(None).name]
    name = Path(args.network).name.removesuffix(".sumocfg")
    out = args.out or Path("runs") / f"{name}-{args.algo}-{args.seed}"
    config = TrainConfig(network=args.network, scenarios=tuple(scenarios), algo=args.algo,
                         timesteps=args.timesteps, n_envs=args.n_envs, seed=args.seed,
                         demand_scale=args.demand_scale, eval_every_steps=args.eval_every, out=out,
                         max_minutes=args.max_minutes, warm_start=args.warm_start,
                         warm_start_episodes=args.warm_start_episodes, warm_start_rounds=args.warm_start_rounds,
                         reward=args.reward, delta_time_s=args.decision_interval, features=args.features,
                         learning_rate=args.learning_rate, clip_range=args.clip_range, ent_coef=args.ent_coef,
                         gamma=args.gamma, discharge_hold_s=args.discharge_hold,
                         input_lag_s=args.input_lag)
    summary = train(config, resume=args.resume)
    final, best = summary["final"], summary["best"]
    print(f"trained {summary['timesteps']} decisions in {summary['train_wall_s']:.0f} s; final policy delay "
          f"{final['delay']:.1f} s" + (f", best {best['delay']:.1f} s" if best else "") + f"; run folder {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ondaverde`` console script."""
    from ondaverde.hw_commands import cmd_events, cmd_virtual_controller
    from ondaverde.checklog_command import cmd_check_log
    from ondaverde.flash_command import cmd_flash
    from ondaverde.replay_command import cmd_replay
    from ondaverde.run_command import cmd_run

    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"simulate": cmd_simulate, "evaluate": cmd_evaluate, "networks": cmd_networks, "bench": cmd_bench,
                "train": cmd_train, "virtual-controller": cmd_virtual_controller,
                "run": cmd_run, "flash": cmd_flash, "check-log": cmd_check_log, "events": cmd_events,
                "replay": cmd_replay}
    try:
        return handlers[args.command](args)
    except InputError as exc:
        print(f"ondaverde: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        print(f"ondaverde: error: {exc.filename or exc}: {exc.strerror or 'cannot open'}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("ondaverde: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (say, `| head`) went away: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
