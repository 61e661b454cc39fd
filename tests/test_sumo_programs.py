"""SUMO's own logics as reference controllers: the net's phases, with the same clearances as the core."""

import math
import xml.etree.ElementTree as ET

import pytest

from envs.simulation import intersections_of
from envs.sumo_programs import write_reference_program
from networks.catalog import load_network


@pytest.mark.parametrize("controller,kind", [("sumo-actuated", "actuated"), ("sumo-delay-based", "delay_based")])
def test_reference_program_keeps_the_phases_and_gets_the_core_clearances(tmp_path, controller, kind):
    network = load_network("single")
    inter = intersections_of(network)[0]
    path = write_reference_program(network.net_file, controller, tmp_path / "ref.add.xml", [inter])
    logic = ET.parse(path).getroot().find("tlLogic")
    assert logic.get("type") == kind
    phases = logic.findall("phase")
    # green phases (not the all-red phases inserted after a yellow, which may keep a permissive 'g') are actuated
    greens = [p for k, p in enumerate(phases) if set(p.get("state")) & set("Gg") and "y" not in p.get("state")
              and not (k and "y" in phases[k - 1].get("state"))]
    assert greens and all(float(p.get("minDur")) <= float(p.get("maxDur")) for p in greens)
    for k, p in enumerate(phases):
        state = p.get("state")
        if "y" not in state:
            continue
        ending = [i for i, c in enumerate(state) if c == "y"]
        assert float(p.get("duration")) == max(math.ceil(inter.links[i].yellow_s) for i in ending)
        red = max(math.ceil(inter.links[i].red_clearance_s) for i in ending)
        after = phases[k + 1]
        assert after.get("state") == state.replace("y", "r") and float(after.get("duration")) == red


def test_static_program_with_core_clearances_for_the_benchmark(tmp_path):
    network = load_network("single")
    inter = intersections_of(network)[0]
    path = write_reference_program(network.net_file, "static", tmp_path / "static.add.xml", [inter])
    logic = ET.parse(path).getroot().find("tlLogic")
    assert logic.get("type") == "static"
    phases = logic.findall("phase")
    assert not any(p.get("minDur") for p in phases)  # a fixed program: no actuation bounds
    yellows = [p for p in phases if "y" in p.get("state")]
    assert yellows and all(float(p.get("duration")) >= 4 for p in yellows)  # ITE 3.3 s, rounded up
