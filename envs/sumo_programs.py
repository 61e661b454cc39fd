"""SUMO's own adaptive signal logics applied to a network's phases: the reference controllers.

``sumo-actuated`` and ``sumo-delay-based`` are what a SUMO user reaches for first, and they are strong
baselines. They run inside SUMO, not through our core: they are yardsticks, not candidates for the curb.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from controller.errors import InputError
from controller.intersection import Intersection

#: command-line name → SUMO tlLogic type
SUMO_REFERENCE_CONTROLLERS = {"sumo-actuated": "actuated", "sumo-delay-based": "delay_based"}
#: pseudo-controller name: the net's own static program, given the core's clearance intervals
STATIC_PROGRAM = "static"
#: min green given to SUMO's logics, seconds (its own default minDur for actuated lights)
REFERENCE_MIN_GREEN_S = 5.0
#: max green: at least this, seconds, or 1.5 × the program's green
REFERENCE_MAX_GREEN_S = 45.0


def write_reference_program(net_file: Path, controller: str, out_path: Path,
                            intersections: list[Intersection] | None = None) -> Path:
    """Write an additional file that switches every traffic light of ``net_file`` to SUMO's own logic.

    The phases are the network's own; green phases get ``minDur``/``maxDur`` (without them SUMO's
    actuated logic behaves as fixed time). With ``intersections`` given, every change interval gets the
    same clearance the core enforces: each yellow phase lasts the longest yellow of the links it turns
    yellow, and is followed by an all-red phase as long as their longest red clearance (both rounded up
    to whole seconds, as the core does). Otherwise SUMO's logics would be judged with shorter clearances
    than the controllers they are compared with. Loaded last, the new program is the active one.

    :param net_file: the ``.net.xml``.
    :param controller: ``sumo-actuated``, ``sumo-delay-based`` or ``static`` (the program itself).
    :param out_path: where to write the additional file.
    :param intersections: the derived intersections (their links' yellow and red clearance, seconds).
    :return: ``out_path``.
    """
    # "static": the network's own fixed program with the core's clearances (the benchmark's baseline)
    kind = "static" if controller == STATIC_PROGRAM else SUMO_REFERENCE_CONTROLLERS[controller]
    try:
        logics = [el for _, el in ET.iterparse(net_file) if el.tag == "tlLogic"]
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{net_file}: cannot read network ({exc})") from None
    by_id = {i.id: i for i in intersections or []}
    root = ET.Element("additional")
    for logic in logics:
        inter = by_id.get(logic.get("id"))
        new = ET.SubElement(root, "tlLogic", id=logic.get("id"), type=kind, programID=f"ondaverde-{kind}",
                            offset=logic.get("offset", "0"))
        for phase in logic.findall("phase"):
            state = phase.get("state")
            attrs = {"duration": phase.get("duration"), "state": state}
            if kind != "static" and any(c in "Gg" for c in state) and "y" not in state:
                dur = float(attrs["duration"])
                attrs["minDur"] = f"{min(REFERENCE_MIN_GREEN_S, dur):g}"
                attrs["maxDur"] = f"{max(REFERENCE_MAX_GREEN_S, 1.5 * dur):g}"
            elif "y" in state and inter is not None:
                ending = [i for i, c in enumerate(state) if c == "y" and i < inter.n_links]
                yellow = max(math.ceil(inter.links[i].yellow_s - 1e-6) for i in ending)
                red = max(math.ceil(inter.links[i].red_clearance_s - 1e-6) for i in ending)
                attrs["duration"] = f"{yellow:g}"
                ET.SubElement(new, "phase", attrs)
                if red > 0:
                    ET.SubElement(new, "phase", {"duration": f"{red:g}", "state": state.replace("y", "r")})
                continue
            ET.SubElement(new, "phase", attrs)
    ET.ElementTree(root).write(out_path)
    return out_path
