"""Pedestrian push buttons in SUMO: a person standing at a signalised crosswalk presses its button.

SUMO's persons are the pedestrians; a push button is a field input of the cabinet (no radar or loop sees a
person). A person standing still on a walking area of a signalised junction whose next edge is one of the
light's crosswalks places a pedestrian call on every phase that serves that crosswalk (its walk comes at that
phase's next green, and the call is demand for the phase: :meth:`controller.signal_controller.SignalController.
call_pedestrians`). Without buttons a crosswalk walks only when its phase is green for vehicles anyway.
"""

from __future__ import annotations

#: a person slower than this (m/s) on a walking area is waiting, not walking
WAITING_SPEED_MPS = 0.1


class SumoPedestrianButtons:
    """Push buttons of every signalised crosswalk of the controllers' intersections.

    :param api: libsumo or a TraCI connection.
    :param controllers: the simulation's signal controllers (their intersections' crosswalk links).
    """

    def __init__(self, api, controllers) -> None:
        self.api = api
        self.controllers = controllers
        #: crosswalk edge -> (controller index, phases serving it)
        self.crosswalks: dict[str, list[tuple[int, tuple[int, ...]]]] = {}
        for k, ctrl in enumerate(controllers):
            inter = ctrl.intersection
            for link in inter.links:
                if link.kind != "pedestrian" or not link.from_lane.startswith(":"):
                    continue
                phases = tuple(p for p, phase in enumerate(inter.phases) if link.index in phase.greens)
                if phases:
                    self.crosswalks.setdefault(link.from_lane.rsplit("_", 1)[0], []).append((k, phases))
        junctions = {edge.rsplit("_", 1)[0] for edge in self.crosswalks}
        self.walking_areas = sorted(e for e in api.edge.getIDList()
                                    if e.startswith(":") and e.rsplit("_", 1)[0] in junctions
                                    and e.rsplit("_", 1)[1].startswith("w"))
        #: button presses that placed calls so far (one per waiting person per second)
        self.presses = 0

    def update(self) -> None:
        """One second: every waiting person at a signalised crosswalk presses its button."""
        persons_on, person = self.api.edge.getLastStepPersonIDs, self.api.person
        for area in self.walking_areas:
            for pid in persons_on(area):
                targets = self.crosswalks.get(person.getNextEdge(pid))
                if targets and person.getSpeed(pid) < WAITING_SPEED_MPS:
                    for k, phases in targets:
                        self.controllers[k].call_pedestrians(phases)
                    self.presses += 1
