"""Evaluation runs through the whole live loop (``ondaverde evaluate --through virtual``): SUMO <-> virtual Modbus
controllers <-> the daemon, in lock step (:mod:`hw.sil`), recorded as evaluate's core runs are."""

from __future__ import annotations

from pathlib import Path

from controller.errors import InputError
from envs.runner import LIGHT_OVERRIDE, RunResult, has_mode, split_controller
from envs.sumo_programs import SUMO_REFERENCE_CONTROLLERS
from networks.catalog import NetworkSpec, load_network


def loop_network_name(network: NetworkSpec) -> str:
    """The name (or folder) the loop's processes load ``network`` by.

    :raises InputError: for a network given as loose files (``--net/--routes``, a ``.sumocfg``), which the virtual
        controllers' process cannot load by name.
    """
    for candidate in (network.name, str(network.folder)):
        try:
            if load_network(candidate).net_file == network.net_file:
                return candidate
        except InputError:
            continue
    raise InputError(f"--through virtual needs a bundled network or a network folder; {network.net_file} was given "
                     "as loose files")


def check_loop(network: NetworkSpec, controllers: list[str]) -> None:
    """Refuse, before anything starts, what the loop cannot run: SUMO's own controllers (they are no policy a
    daemon can run) and a network it cannot load by name.

    :param network: the network.
    :param controllers: controller names (validated by :func:`envs.runner.check_controller`).
    """
    for name in controllers:
        if LIGHT_OVERRIDE in name:
            raise InputError(f"controller {name!r}: per-light controllers ({LIGHT_OVERRIDE}LIGHT=CONTROLLER) are for "
                             "core runs; --through virtual runs one controller at every light")
        if split_controller(name)[0] in SUMO_REFERENCE_CONTROLLERS:
            raise InputError(f"controller {name!r} runs inside SUMO and cannot be driven through the virtual "
                             "controllers; leave it out with --through virtual")
    loop_network_name(network)


def loop_record(network: NetworkSpec, scenario: str, controller: str, seed: int,
                policy_file: Path | None = None) -> dict:
    """One lock-step loop run, as evaluate's record (see :meth:`envs.runner.RunResult.record`) plus the loop's
    counters: ``unanswered`` seconds, ``lost_control``, ``preemptions`` (code 105 in the cabinets) and, with
    ``+tsp``, the daemon cores' ``tsp_services``. ``violations`` sums the cabinets' and the daemon cores' faults.

    :param network: the network.
    :param scenario: scenario name.
    :param controller: a core controller, optionally with ``+preempt`` / ``+tsp``.
    :param seed: SUMO seed.
    :param policy_file: the trained policy ``rl`` runs (default: the network folder's).
    """
    from envs.runner import GPS_PREEMPT_HORIZON_S
    from hw.sil import run_sumo_loop

    base, preempt, tsp = split_controller(controller)
    name = loop_network_name(network)
    # the loop's processes load the network by name: a horizon set on this run (--begin/--end) travels with it
    horizon = network.scenario(scenario)
    summary = run_sumo_loop(name, scenario, seed, base, None, None, preempt=preempt is not None,
                            begin_s=horizon.begin_s, end_s=horizon.end_s,
                            tsp=tsp, ped=has_mode(controller, "ped"), policy_file=str(policy_file) if policy_file is not None else None,
                            preempt_route_s=GPS_PREEMPT_HORIZON_S if preempt == "gps" else None)
    metrics = summary.get("metrics")
    if metrics is None:
        raise RuntimeError(f"the loop run of {controller} on {scenario} seed {seed} ended without SUMO's metrics "
                           f"after {summary.get('seconds')} s")
    counters = {k: summary[k] for k in ("unanswered", "lost_control", "preemptions", "tsp_services",
                                        "pedestrian_presses") if k in summary}
    # the daemon acts on each second's detector data in the next second (lock step): an input lag of 1 s
    record = RunResult(controller, network.name, scenario, seed, metrics, summary["faults"] + summary["core_faults"],
                       counters, summary["wall_s"], input_lag_s=1).record()
    record.update({k: summary[k] for k in ("emergency_intersection_delay", "emergency_intersection_control_delay",
                                           "emergency_passages", "wall_s")}, through="virtual")
    return record
