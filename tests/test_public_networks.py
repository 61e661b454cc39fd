"""Public SUMO benchmark networks nobody here wrote: the RESCO scenarios (Cologne and Ingolstadt cut-outs, grids),
as shipped in the sumo-rl wheel (a dev dependency; read at run time, never copied into the repository)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from controller.policies.base import Interval
from controller.policies.registry import make_policy
from envs.simulation import SignalSimulation, intersections_of
from networks.catalog import network_from_sumocfg

pytestmark = pytest.mark.sumo

RESCO = ("cologne1", "cologne3", "cologne8", "ingolstadt1", "ingolstadt7", "ingolstadt21", "grid4x4", "arterial4x4")


def _resco(name: str) -> Path:
    spec = importlib.util.find_spec("sumo_rl")
    assert spec is not None, "the dev extra installs sumo-rl, whose wheel carries the RESCO networks"
    cfg = Path(next(iter(spec.submodule_search_locations))) / "nets" / "RESCO" / name / f"{name}.sumocfg"
    assert cfg.is_file(), cfg
    return cfg


@pytest.mark.parametrize("name", RESCO)
def test_every_resco_network_derives_with_its_program_cycle(name):
    network = network_from_sumocfg(_resco(name))
    inters = intersections_of(network)
    assert inters
    for inter in inters:  # each RESCO program runs every green once per cycle, with yellow between
        assert all(p.program_change_s is not None and p.program_change_s > 0 for p in inter.phases), inter.id


def test_fixed_keeps_each_programs_cycle_and_offset_in_sumo():
    """On the Ingolstadt corridor (7 lights, 3 s yellows, no all-red: the core clears longer), every light's major
    green starts once per program cycle, at the same point of the program's cycle, from the second cycle on."""
    full = network_from_sumocfg(_resco("ingolstadt7"))
    network = full.with_horizon(None, full.scenario(None).begin_s + 900.0)  # the first 15 minutes
    scenario = network.scenario(None)
    inters = intersections_of(network)
    sim = SignalSimulation(network, scenario, 0, policies={i.id: make_policy("fixed") for i in inters})
    starts: dict[int, list[float]] = {k: [] for k in range(len(inters))}
    try:
        was_green = [False] * len(inters)
        while not sim.done:
            sim.advance()
            for k, ctrl in enumerate(sim.controllers):
                green = ctrl.machine.interval is Interval.GREEN and ctrl.machine.phase == 0
                if green and not was_green[k]:
                    starts[k].append(sim.time_s)
                was_green[k] = green
        assert sim.violations() == 0
    finally:
        sim.cleanup()
    for k, inter in enumerate(inters):
        cycle = sum(p.program_green_s + p.program_change_s for p in inter.phases)
        steady = starts[k][1:]
        assert len(steady) >= 3, (inter.id, starts[k])
        gaps = [b - a for a, b in zip(steady, steady[1:])]
        assert gaps == [cycle] * len(gaps), (inter.id, cycle, starts[k])
        # the same point of the program's cycle every time (the change before it is the core's, not the program's)
        phases = {round((t - inter.program_offset_s) % cycle, 6) for t in steady}
        assert len(phases) == 1, (inter.id, phases)


def test_a_run_gives_the_same_result_whatever_ran_before_it_in_the_command():
    """RESCO cologne1's demand is trips, routed at departure: consecutive libsumo runs in one process alternate
    between two results there. evaluate runs each simulation in a fresh process, so the same run repeated in one
    command, one job after another, gives one result."""
    from training.evaluate import evaluate

    network = network_from_sumocfg(_resco("cologne1"))
    records = evaluate(network, [network.scenario(None).name], ["fixed", "webster"], [0, 0, 0], jobs=1, progress=False)
    by_controller: dict[str, set[float]] = {}
    for r in records:
        by_controller.setdefault(r["controller"], set()).add(r["delay"])
    assert all(len(delays) == 1 for delays in by_controller.values()), by_controller


def test_max_pressure_with_its_discharge_hold_beats_the_program_on_sumo_rls_single_intersection():
    """sumo-rl's two one-way streets: Varaiya's max-pressure ends every green at its minimum while the queue still
    flows and collapses (786 s in the hour); held while its stop-bar loops see the queue crossing, it beats the
    network's own program by far."""
    from training.evaluate import evaluate

    spec = importlib.util.find_spec("sumo_rl")
    cfg = Path(next(iter(spec.submodule_search_locations))) / "nets" / "single-intersection" / "single-intersection.sumocfg"
    network = network_from_sumocfg(cfg, end_s=1800.0)
    records = evaluate(network, [network.scenario(None).name], ["fixed", "maxpressure", "maxpressure-varaiya"], [0],
                       jobs=2, progress=False)
    delay = {r["controller"]: r["delay"] for r in records}
    assert all(r["violations"] == 0 for r in records)
    assert delay["maxpressure"] < 0.5 * delay["fixed"] < delay["maxpressure-varaiya"], delay


def test_detectors_of_short_approach_lanes_sit_on_the_road_upstream_and_see_the_queue(tmp_path):
    """Ingolstadt's OSM-derived nets split many approaches a few metres before the stop line (22 of ingolstadt7's 59
    approach lanes are shorter than 20 m; some 0.9 m): detectors on those stubs saw nothing, the first car waiting
    upstream of them, so max-pressure starved their phases (207 s against the program's 122 s). Placed along the
    road upstream (21 of them; the 22nd begins where two roads merge), every such stop-bar loop sees vehicles
    standing and the detector-driven controllers beat the program."""
    from networks.derive import load_intersection_file, write_intersection_file
    from training.evaluate import evaluate

    full = network_from_sumocfg(_resco("ingolstadt7"))
    inters = intersections_of(full)
    moved = [(k, i, d) for k, inter in enumerate(inters) for i, d in enumerate(inter.detectors) if d.placement]
    assert len({(k, d.lane) for k, _, d in moved}) == 21
    assert load_intersection_file(write_intersection_file(inters, tmp_path / "ingolstadt7.yaml")) == inters
    network = full.with_horizon(None, full.scenario(None).begin_s + 900.0)
    sim = SignalSimulation(network, network.scenario(None), 0,
                           policies={i.id: make_policy("maxpressure") for i in inters}, dilemma_zone="count")
    stood = {(k, i): 0 for k, i, d in moved if d.kind == "stopbar"}
    zones = {(k, i): d.length_m for k, i, d in moved if d.kind == "radar"}
    ranges = []
    try:
        while not sim.done:
            sim.advance()
            for k, i in stood:
                stood[k, i] += bool(sim.readings[k].occupied[i])
            for k, tracks in enumerate(sim.radar.tracks()):
                ranges += [(t.range_m, zones[k, t.channel]) for t in tracks if (k, t.channel) in zones]
        assert sim.violations() == 0
        # radar on those zones: the range along the road to the stop line, never past it, never beyond the zone
        assert len(ranges) > 1000 and all(0 <= r <= length + 10.0 for r, length in ranges)
        assert sum(w.dropped for w in sim.radar.watches) == 0
    finally:
        sim.cleanup()
    # on the 0.9 m stubs none ever did; now all but one (a lane nobody used in these 15 minutes) see vehicles standing
    assert sum(n > 0 for n in stood.values()) >= len(stood) - 1, stood
    records = evaluate(full, [full.scenario(None).name], ["fixed", "actuated", "maxpressure"], [0], jobs=2,
                       progress=False)
    delay = {r["controller"]: r["delay"] for r in records}
    assert delay["maxpressure"] < delay["actuated"] < 0.5 * delay["fixed"], delay


#: SUMO's own example scenarios (tools/game of the eclipse-sumo wheel) whose signal programs show foes green together
GAME_REFUSED = {"fkk_in": "gneJ21", "fokr_bs_demo": "'38'"}


def test_sumos_own_example_scenarios_derive_or_are_refused_in_one_line_naming_the_conflict():
    """Every traffic-light scenario SUMO ships as an example (tools/game): the core derives it, or, where a program
    phase shows links green together that the junction marks as foes neither of which yields (a right and a left turn
    merging into one lane; two crossing streams), refuses it in one line naming the file, the light and the links."""
    from controller.errors import InputError
    from networks.sumo_home import sumo_home

    configs = sorted((sumo_home() / "tools" / "game").glob("*.sumocfg"))
    assert len(configs) >= 10
    derived, refused = [], {}
    for cfg in configs:
        try:
            network = network_from_sumocfg(cfg)
        except InputError:
            continue  # a configuration without a net or routes of its own
        try:
            inters = intersections_of(network)
        except InputError as exc:
            refused[cfg.stem] = str(exc)
            continue
        if inters:
            derived.append(cfg.stem)
    assert {"cross", "corridor", "grid6", "square", "A10KW"} <= set(derived)
    for name, light in GAME_REFUSED.items():
        message = refused.pop(name)
        assert "\n" not in message and light in message and "shows conflicting links" in message, message
    assert all("no traffic lights" in m for m in refused.values()), refused  # rail_demo: no signals at all


def test_sumos_cross_example_runs_under_every_core_controller_without_a_fault():
    from networks.sumo_home import sumo_home

    network = network_from_sumocfg(sumo_home() / "tools" / "game" / "cross.sumocfg", end_s=900)
    for name in ("fixed", "actuated", "maxpressure"):
        sim = SignalSimulation(network, network.scenario(), 0,
                               policies={i.id: make_policy(name) for i in intersections_of(network)})
        try:
            sim.run_to_end()
            assert sim.violations() == 0
            assert sim.close().throughput > 0
        finally:
            sim.cleanup()
