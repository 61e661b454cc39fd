"""SUMO side of the I/O port: start a simulation, read detectors in bulk, write signal states.

libsumo (in-process, fast) by default; TraCI for the GUI or when a second simulation is needed
in the same process (libsumo drives exactly one simulation per process, silently).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.errors import InputError
from controller.intersection import Intersection
from controller.policies.base import DetectorReadings
from envs.sumo_home import sumo_binary

# TraCI variable ids (traci.constants), spelled out so importing this module stays cheap.
_VEH_NUMBER, _MEAN_SPEED, _OCCUPANCY, _HALTING, _INTERVAL_NUMBER = 0x10, 0x11, 0x13, 0x14, 0x25
_E1_VARS = (_INTERVAL_NUMBER, _VEH_NUMBER, _OCCUPANCY, _MEAN_SPEED)
_E2_VARS = (_VEH_NUMBER, _HALTING, _OCCUPANCY, _MEAN_SPEED)
_E1_KINDS = ("stopbar", "advance")

_libsumo_busy = False
_labels = itertools.count()


@dataclass(frozen=True)
class SumoRun:
    """What one simulation run needs.

    :param net_file: the ``.net.xml``.
    :param route_files: demand files.
    :param additional_files: detectors, extra programs, etc.
    :param begin_s: simulation begin, seconds.
    :param end_s: simulation end (horizon), seconds.
    :param seed: SUMO's random seed.
    :param extra_args: further SUMO options (e.g. output files).
    :param gui: run ``sumo-gui`` through TraCI.
    """

    net_file: Path
    route_files: tuple[Path, ...]
    additional_files: tuple[Path, ...]
    begin_s: float
    end_s: float
    seed: int
    extra_args: tuple[str, ...] = ()
    gui: bool = False

    def command(self, binary: str | None = None) -> list[str]:
        """The full SUMO command line."""
        cmd = [binary or sumo_binary("sumo-gui" if self.gui else "sumo"),
               "-n", str(self.net_file), "--begin", f"{self.begin_s:g}", "--end", f"{self.end_s:g}",
               "--seed", str(self.seed), "--step-length", "1", "--no-step-log", "true", "--no-warnings", "true",
               "--time-to-teleport", "300", "--duration-log.disable", "true"]
        if self.route_files:
            cmd += ["-r", ",".join(map(str, self.route_files))]
        if self.additional_files:
            cmd += ["-a", ",".join(map(str, self.additional_files))]
        return cmd + list(self.extra_args)


class SumoBackend:
    """A running SUMO simulation plus bulk detector reading for a set of intersections.

    :param run: what to simulate.
    :param intersections: the intersections whose detectors are read and whose signals are written.
    :param use_traci: force TraCI (socket) instead of libsumo.
    """

    def __init__(self, run: SumoRun, intersections: list[Intersection], use_traci: bool = False) -> None:
        global _libsumo_busy
        self.run = run
        self.intersections = intersections
        self._owns_libsumo = False
        self.api = None
        if run.gui or use_traci or _libsumo_busy:
            import traci

            label = f"ondaverde-{next(_labels)}"
            try:
                traci.start(run.command(), label=label)
            except Exception as exc:  # TraCI reports a failed start as a generic exception
                raise InputError(f"SUMO could not start: {_first_line(exc)}") from None
            self.api = traci.getConnection(label)
        else:
            import libsumo

            try:
                libsumo.start(run.command())
            except Exception as exc:
                raise InputError(f"SUMO refused the run: {_first_line(exc)}") from None
            _libsumo_busy = self._owns_libsumo = True
            self.api = libsumo
        self.time_s = float(self.api.simulation.getTime())
        self._subscribe()
        self._last_states = {i.id: "" for i in intersections}

    # ------------------------------------------------------------------ detectors
    def _subscribe(self) -> None:
        ids = [(d.id, d.kind in _E1_KINDS) for inter in self.intersections for d in inter.detectors]
        self._det_ids = ids
        n = len(ids)
        self._occupied = np.zeros(n, dtype=bool)
        self._count = np.zeros(n)
        self._halting = np.zeros(n)
        self._occupancy = np.zeros(n)
        self._speed = -np.ones(n)
        self._e1_total = np.zeros(n)  # cumulative loop counts, to turn into counts since the last read
        self._slices = []
        start = 0
        for inter in self.intersections:
            self._slices.append(slice(start, start + len(inter.detectors)))
            start += len(inter.detectors)
        try:
            for det_id, is_e1 in ids:
                if is_e1:
                    self.api.inductionloop.subscribe(det_id, _E1_VARS)
                else:
                    self.api.lanearea.subscribe(det_id, _E2_VARS)
        except Exception as exc:
            self.close()
            raise InputError(f"detector missing from the simulation: {_first_line(exc)}") from None

    def read_detectors(self) -> list[DetectorReadings]:
        """All intersections' detector data for the last step, in one bulk read.

        Loop ``count`` is the number of vehicles that passed since the previous call of this method.
        """
        e1 = self.api.inductionloop.getAllSubscriptionResults()
        e2 = self.api.lanearea.getAllSubscriptionResults()
        occupied, count, halting, occ, speed, total = (self._occupied, self._count, self._halting, self._occupancy,
                                                       self._speed, self._e1_total)
        for k, (det_id, is_e1) in enumerate(self._det_ids):
            if is_e1:
                v = e1[det_id]
                cum = v[_INTERVAL_NUMBER]
                new = cum - total[k]
                count[k] = new if new >= 0 else cum  # the detector's aggregation interval restarted
                total[k] = cum
                occupied[k] = v[_VEH_NUMBER] > 0 or new > 0
                occ[k] = v[_OCCUPANCY] / 100.0
                speed[k] = v[_MEAN_SPEED]
            else:
                v = e2[det_id]
                n = v[_VEH_NUMBER]
                count[k] = n
                occupied[k] = n > 0
                halting[k] = v[_HALTING]
                occ[k] = v[_OCCUPANCY] / 100.0
                speed[k] = v[_MEAN_SPEED]
        t = self.time_s
        return [DetectorReadings(t, occupied[s], count[s], halting[s], occ[s], speed[s]) for s in self._slices]

    # ------------------------------------------------------------------ signals and time
    def set_state(self, tl_id: str, state: str) -> None:
        """Show ``state`` on traffic light ``tl_id`` (only sent to SUMO when it changed)."""
        if self._last_states[tl_id] != state:
            self.api.trafficlight.setRedYellowGreenState(tl_id, state)
            self._last_states[tl_id] = state

    def step(self) -> None:
        """Advance SUMO by one step."""
        self.api.simulationStep()
        self.time_s += 1.0

    @property
    def done(self) -> bool:
        """True when the horizon is reached."""
        return self.time_s >= self.run.end_s

    def close(self) -> None:
        """End the simulation (SUMO then writes its output files)."""
        global _libsumo_busy
        if self.api is None:
            return
        try:
            self.api.close()
        finally:
            if self._owns_libsumo:
                _libsumo_busy = False
            self.api = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
