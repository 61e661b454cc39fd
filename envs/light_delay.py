"""Where the delay is: each traffic light's share of a run's time loss, from SUMO's own edge data output.

SUMO sums, per edge, the time loss of every vehicle that drove on it (``edgeData``, attribute ``timeLoss``:
time lost against each vehicle's desired speed). A light's share is the time loss on the edges whose lanes
feed its signal links (its approaches), divided by the run's scheduled vehicles, so the shares are in the unit
of the project's delay metric (seconds per scheduled vehicle) and add up, with ``elsewhere`` (every other
edge) and the time vehicles waited to enter the network, to about that delay.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from xml.sax.saxutils import quoteattr
from pathlib import Path

from controller.errors import InputError
from controller.intersection import Intersection

#: Key of the time loss on edges that are no light's approach.
ELSEWHERE = "elsewhere"


def write_edge_data_additional(path: Path, output: Path) -> Path:
    """Write a SUMO additional file asking for one edge data interval over the whole run.

    :param path: the additional file to write.
    :param output: where SUMO writes the edge data.
    """
    path.write_text(f'<additional>\n    <edgeData id="ondaverde-by-light" file={quoteattr(str(output))} '
                    f'excludeEmpty="true"/>\n</additional>\n')
    return path


def approach_edges(intersections: Iterable[Intersection]) -> dict[str, str]:
    """Edge id -> id of the light whose signal links leave it (vehicle links; a SUMO lane id is its edge id
    and ``_`` and the lane index)."""
    out: dict[str, str] = {}
    for inter in intersections:
        for link in inter.links:
            if link.kind == "vehicle" and link.from_lane:
                out[link.from_lane.rsplit("_", 1)[0]] = inter.id
    return out


def time_loss_by_light(edge_data: Path, intersections: list[Intersection], scheduled: int) -> dict[str, float]:
    """Seconds of time loss per scheduled vehicle on each light's approaches, and :data:`ELSEWHERE`.

    :param edge_data: SUMO's edge data output of the run (one interval).
    :param intersections: the run's lights.
    :param scheduled: vehicles scheduled in the run's horizon (the delay metric's denominator).
    :raises InputError: when the file is missing or not edge data.
    """
    owner = approach_edges(intersections)
    totals = {i.id: 0.0 for i in intersections}
    totals[ELSEWHERE] = 0.0
    try:
        root = ET.parse(edge_data).getroot()
    except (OSError, ET.ParseError) as exc:
        raise InputError(f"{edge_data}: no edge data from SUMO ({exc})") from None
    for edge in root.iter("edge"):
        totals[owner.get(edge.get("id", ""), ELSEWHERE)] += float(edge.get("timeLoss", 0.0))
    n = max(scheduled, 1)
    return {k: v / n for k, v in totals.items()}
