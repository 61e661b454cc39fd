"""Run one controller on one scenario and seed, and measure it from SUMO's own output files."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import InputError
from controller.discharge_hold import DEFAULT_GAP_S
from controller.policies.learned import LearnedPolicy, PolicyFile
from controller.policies.registry import POLICIES, make_policy
from envs.simulation import SignalSimulation, check_input_lag_s, intersections_of
from envs.sumo_programs import SUMO_REFERENCE_CONTROLLERS
from networks.catalog import NetworkSpec


#: The learned controller: a policy file run by the core (``controller/policies/learned.py``).
LEARNED = "rl"
#: Policy file a network folder may hold, loaded by ``rl`` when no other file is given.
DEFAULT_POLICY_FILE = "rl-policy.npz"
#: modes a core controller's name may add, joined with ``+`` (``actuated+preempt+tsp``): emergency-vehicle
#: preemption called by the roadside receivers (``preempt``) or by them and the vehicle's route-aware GPS unit
#: (``preempt-gps``), transit signal priority (``tsp``), at every light (:mod:`envs.priority_vehicles`), pedestrian
#: push buttons (``ped``), and for the learned policy the discharge hold (``hold``, :mod:`controller.discharge_hold`;
#: a policy trained with the hold has it anyway)
MODES = ("preempt", "preempt-gps", "tsp", "ped", "hold")
#: how far ahead in time a route-aware (GPS) preempt calls the signals on the emergency vehicle's route, seconds at
#: the speed limits (measured on Miraflores am-peak, see the README)
GPS_PREEMPT_HORIZON_S = 30.0


#: puts lights under another core controller than the rest: ``rl@O=maxpressure@J3=actuated`` runs the learned
#: policy everywhere but at lights ``O`` (max-pressure) and ``J3`` (actuated); the modes (``+preempt``, ...) come
#: before the first ``@`` and apply at every light
LIGHT_OVERRIDE = "@"


def split_overrides(name: str) -> tuple[str, dict[str, str]]:
    """``"rl+ped@O=maxpressure"`` -> ``("rl+ped", {"O": "maxpressure"})``: the controller (with its modes) and the
    core controller each overridden light runs instead, by traffic-light id. Not validated: see
    :func:`check_controller`."""
    controller, *overrides = name.split(LIGHT_OVERRIDE)
    return controller, dict(o.partition("=")[::2] for o in overrides)


def split_controller(name: str) -> tuple[str, str | None, bool]:
    """``"actuated+preempt-gps+tsp"`` -> ``("actuated", "gps", True)``: the base controller, how preempts are
    called (None: no preemption, ``receivers``, ``gps``) and whether transit priority is on (per-light overrides,
    :data:`LIGHT_OVERRIDE`, are left out)."""
    base, *modes = split_overrides(name)[0].split("+")
    preempt = "gps" if "preempt-gps" in modes else "receivers" if "preempt" in modes else None
    return base, preempt, "tsp" in modes


def has_mode(name: str, mode: str) -> bool:
    """True when controller ``name`` adds ``mode`` (one of :data:`MODES`): ``has_mode("actuated+ped", "ped")``."""
    return mode in split_overrides(name)[0].split("+")[1:]


def controller_names() -> list[str]:
    """Every controller name ``--controller`` accepts."""
    return sorted(POLICIES) + [LEARNED] + sorted(SUMO_REFERENCE_CONTROLLERS)


def policy_file_for(network: NetworkSpec, policy_file: Path | None = None) -> Path:
    """The policy file ``rl`` runs on ``network``: the one given, else the network folder's ``rl-policy.npz``.

    :raises InputError: when there is none.
    """
    path = Path(policy_file) if policy_file is not None else network.folder / DEFAULT_POLICY_FILE
    if not path.is_file():
        if policy_file is not None:
            raise InputError(f"{path}: policy file not found")
        raise InputError(f"network {network.name!r} has no trained policy ({path} not found): train one with "
                         "`ondaverde train` and pass --policy FILE")
    return path


def check_controller(name: str) -> str:
    """Return ``name`` if it is a known controller (with ``+preempt`` / ``+tsp`` / ``+ped`` after a core controller,
    and ``@LIGHT=CONTROLLER`` overrides after that), else raise a one-line :class:`InputError`. Whether the
    overridden lights exist depends on the network: :func:`check_lights`."""
    controller, overrides = split_overrides(name)
    base, *modes = controller.split("+")
    if base not in POLICIES and base not in SUMO_REFERENCE_CONTROLLERS and base != LEARNED:
        raise InputError(f"unknown controller {base!r}; choose from: {', '.join(controller_names())}")
    if overrides and base in SUMO_REFERENCE_CONTROLLERS:
        raise InputError(f"controller {name!r}: {base} runs inside SUMO, not through the core; per-light "
                         f"controllers ({LIGHT_OVERRIDE}LIGHT=CONTROLLER) need a core controller")
    if len(overrides) != name.count(LIGHT_OVERRIDE):
        raise InputError(f"controller {name!r}: a light is given twice")
    for light, other in overrides.items():
        if not light or (other not in POLICIES and other != LEARNED):
            raise InputError(f"controller {name!r}: {LIGHT_OVERRIDE}{light}={other} is not LIGHT=CONTROLLER with "
                             f"a core controller ({', '.join(sorted(POLICIES) + [LEARNED])})")
    for mode in modes:
        if mode not in MODES or modes.count(mode) > 1:
            raise InputError(f"controller {name!r}: {mode!r} is not a mode to add once (choose from: "
                             f"{', '.join(MODES)}, e.g. actuated+preempt)")
    if "hold" in modes and base != LEARNED and LEARNED not in overrides.values():
        raise InputError(f"controller {name!r}: the discharge hold is for the learned policy ({LEARNED}+hold)")
    if "preempt" in modes and "preempt-gps" in modes:
        raise InputError(f"controller {name!r}: preempt-gps already includes preempt; add one of them")
    if modes and base in SUMO_REFERENCE_CONTROLLERS:
        raise InputError(f"controller {name!r}: {base} runs inside SUMO, not through the core; preemption, "
                         "priority and push buttons need a core controller")
    return name


def check_lights(network: NetworkSpec, name: str) -> None:
    """Refuse per-light overrides of controller ``name`` that name no traffic light of ``network``.

    :param network: the network.
    :param name: a controller name (as :func:`check_controller` takes it).
    :raises InputError: naming the first unknown light.
    """
    overrides = split_overrides(name)[1]
    if not overrides:  # nothing to look up (and a net without lights is refused where it is loaded)
        return
    lights = [i.id for i in intersections_of(network)]
    for light in overrides:
        if light not in lights:
            shown = ", ".join(lights[:12]) + (", ..." if len(lights) > 12 else "")
            raise InputError(f"controller {name!r}: network {network.name!r} has no traffic light {light!r} "
                             f"(its lights: {shown})")


def uses_learned_policy(name: str) -> bool:
    """True when controller ``name`` runs the learned policy at some light (itself, or a per-light override)."""
    controller, overrides = split_overrides(name)
    return split_controller(controller)[0] == LEARNED or LEARNED in overrides.values()


def input_lag_note(network: NetworkSpec, controllers: list[str], policy_file: Path | None, input_lag_s: int) -> str:
    """A line to show when the learned policy runs with another input lag than it was trained for ("" otherwise):
    the lag is the deployment's, so ``rl`` does not add it itself.

    :param network: the network (whose ``rl-policy.npz`` is the default policy).
    :param controllers: controller names of the command.
    :param policy_file: the policy file given, or None.
    :param input_lag_s: the command's input lag, whole seconds.
    """
    if not any(uses_learned_policy(c) for c in controllers):
        return ""
    trained = PolicyFile(policy_file_for(network, policy_file)).input_lag_s
    if trained == input_lag_s:
        return ""
    return (f"note: the learned policy was trained for an input lag of {trained} s and runs with {input_lag_s} s here "
            f"(--input-lag {trained} runs it as trained)")


def check_input_lag(controllers: list[str], input_lag_s: int) -> None:
    """Refuse an input lag that is not a whole number of seconds, or one given to SUMO's own controllers (they read
    their detectors inside SUMO).

    :param controllers: controller names (as :func:`check_controller` takes them).
    :param input_lag_s: whole seconds between a detector reading and the controllers acting on it.
    :raises InputError: naming the value or the controller.
    """
    check_input_lag_s(input_lag_s)
    for name in controllers if input_lag_s else ():
        if split_controller(name)[0] in SUMO_REFERENCE_CONTROLLERS:
            raise InputError(f"controller {name!r} reads its detectors inside SUMO: an input lag does not apply to it")


@dataclass
class RunResult:
    """One run's record: what ran, and the metrics SUMO's outputs give (seconds, vehicles).

    ``violations`` counts safety-monitor faults (each flashes its intersection); ``requests``,
    ``deferred`` and ``max_outs`` sum the phase machines' counters.
    """

    controller: str
    network: str
    scenario: str
    seed: int
    metrics: dict
    violations: int = 0
    machine: dict = field(default_factory=dict)
    wall_s: float = 0.0
    input_lag_s: int = 0

    def record(self) -> dict:
        """Flat JSON record: controller, network, scenario, seed, then the metrics."""
        by_class = self.metrics.get("delay_by_vclass") or {}
        return {"controller": self.controller, "network": self.network, "scenario": self.scenario,
                "seed": self.seed, **self.metrics, "bus_delay": by_class.get("bus"),
                "emergency_delay": by_class.get("emergency"), "violations": self.violations,
                "input_lag_s": self.input_lag_s, **self.machine}


def run_episode(network: NetworkSpec, scenario_name: str, controller: str, seed: int, gui: bool = False,
                work_dir: Path | None = None, progress=None, policy_file: Path | None = None,
                dilemma_zone: str | None = None, input_lag_s: int = 0, by_light: bool = False) -> RunResult:
    """Simulate ``scenario_name`` of ``network`` under ``controller`` with SUMO seed ``seed``.

    :param network: the network.
    :param scenario_name: a scenario of the network.
    :param controller: a name from :func:`controller_names`.
    :param seed: SUMO random seed.
    :param gui: show sumo-gui.
    :param work_dir: keep SUMO's output files there (a temporary folder otherwise).
    :param progress: called with simulated seconds as the run advances.
    :param policy_file: the trained policy ``rl`` runs (default: the network folder's ``rl-policy.npz``).
    :param dilemma_zone: ``count`` or ``protect`` (see :class:`envs.simulation.SignalSimulation`), or None.
    :param input_lag_s: whole seconds between a detector reading and the controllers acting on it (a central
        system's latency; the live loop in lock step has 1); SUMO's own controllers read inside SUMO and take none.
    :param by_light: add each light's share of the time loss to the metrics (``delay_by_light``, seconds per
        scheduled vehicle; :mod:`envs.light_delay`).
    """
    check_controller(controller)
    check_lights(network, controller)
    name, (controller, preempt, tsp) = controller, split_controller(controller)
    overrides = split_overrides(name)[1]
    modes = {"preempt": preempt is not None, "transit_priority": tsp,
             "preempt_route_s": GPS_PREEMPT_HORIZON_S if preempt == "gps" else None,
             "pedestrian_buttons": has_mode(name, "ped")}
    scenario = network.scenario(scenario_name)
    start = time.perf_counter()
    check_input_lag([name], input_lag_s)
    modes["input_lag_s"] = input_lag_s
    if controller in SUMO_REFERENCE_CONTROLLERS:
        sim = SignalSimulation(network, scenario, seed, reference=controller, work_dir=work_dir, gui=gui,
                               light_delay=by_light)
    else:
        loaded = PolicyFile(policy_file_for(network, policy_file)) if uses_learned_policy(name) else None
        policies = {}
        hold_s = DEFAULT_GAP_S if has_mode(name, "hold") else None  # None: as the policy file says
        for i in intersections_of(network):
            chosen = overrides.get(i.id, controller)
            if chosen == LEARNED:
                loaded.check(i)  # refuse a mismatch before SUMO starts
                policies[i.id] = LearnedPolicy(loaded, hold_s)
            else:
                policies[i.id] = make_policy(chosen)
        sim = SignalSimulation(network, scenario, seed, policies=policies, work_dir=work_dir, gui=gui,
                               dilemma_zone=dilemma_zone, light_delay=by_light, **modes)
    try:
        sim.run_to_end(progress)
        # every emergency vehicle's delay and each bus line type's, to compare runs with and without the modes
        metrics = sim.close_with_priority_delays()
        stats = [c.machine.stats for c in sim.controllers]
        machine = {"requests": sum(s.requests for s in stats), "deferred": sum(s.deferred for s in stats),
                   "max_outs": sum(s.max_outs for s in stats)} if stats else {}
        if sim.radar is not None:
            machine.update(dilemma_caught=sim.radar.caught, yellow_onsets=sim.radar.onsets,
                           dilemma_holds=sum(c.dilemma.holds for c in sim.controllers if c.dilemma is not None),
                           radar_dropped=sum(w.dropped for w in sim.radar.watches))
        if sim.priority_vehicles is not None:
            metrics["emergency_intersection_delay"] = sim.priority_vehicles.intersection_delays()
            metrics["emergency_intersection_control_delay"] = sim.priority_vehicles.intersection_delays(control=True)
            metrics["emergency_passages"] = [list(p) for p in sim.priority_vehicles.passages]
            machine.update(sim.priority_vehicles.counts)
            machine["tsp_services"] = sum(c.modes.priority.services for c in sim.controllers
                                          if c.modes.priority is not None)
        if sim.pedestrian_buttons is not None:
            machine["pedestrian_presses"] = sim.pedestrian_buttons.presses
        return RunResult(name, network.name, scenario.name, seed, metrics, sim.violations(), machine,
                         time.perf_counter() - start, input_lag_s)
    finally:
        sim.cleanup()
