"""SUMO side of the I/O port: start a simulation, read detectors in bulk, write signal states.

libsumo (in-process, fast) by default; TraCI for the GUI or when a second simulation is needed
in the same process (libsumo drives exactly one simulation per process, silently).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.errors import InputError
from controller.intersection import Intersection
from controller.policies.base import DetectorReadings
from envs.sumo_home import sumo_binary

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
                with _stdout_to_devnull():
                    libsumo.start(run.command())
            except Exception as exc:
                raise InputError(f"SUMO refused the run: {_first_line(exc)}") from None
            _libsumo_busy = self._owns_libsumo = True
            self.api = libsumo
        self.time_s = float(self.api.simulation.getTime())
        self._prepare_reading()
        self._last_states = {i.id: "" for i in intersections}

    # ------------------------------------------------------------------ detectors
    def _prepare_reading(self) -> None:
        ids = [(d.id, d.kind in _E1_KINDS) for inter in self.intersections for d in inter.detectors]
        self._e1_idx = np.array([k for k, (_, is_e1) in enumerate(ids) if is_e1], dtype=np.int64)
        self._e2_idx = np.array([k for k, (_, is_e1) in enumerate(ids) if not is_e1], dtype=np.int64)
        self._e1_ids = [i for i, is_e1 in ids if is_e1]
        self._e2_ids = [i for i, is_e1 in ids if not is_e1]
        n = len(ids)
        self._occupied = np.zeros(n, dtype=bool)
        self._count = np.zeros(n)
        self._halting = np.zeros(n)
        self._occupancy = np.zeros(n)
        self._speed = -np.ones(n)
        self._slices = []
        start = 0
        for inter in self.intersections:
            self._slices.append(slice(start, start + len(inter.detectors)))
            start += len(inter.detectors)
        known_e1 = set(self.api.inductionloop.getIDList())
        known_e2 = set(self.api.lanearea.getIDList())
        missing = [i for i in self._e1_ids if i not in known_e1] + [i for i in self._e2_ids if i not in known_e2]
        if missing:
            self.close()
            raise InputError(f"detector {missing[0]!r} is missing from the simulation ({len(missing)} missing)")

    def read_detectors(self) -> list[DetectorReadings]:
        """All intersections' detector data, read with direct getters (measured: ~0.3-1 µs a call with
        libsumo, against ~13 µs per detector for subscriptions and a cost that grows with the interval
        for SUMO's running interval counts).

        Loop ``count`` is SUMO's count over the loop's last aggregation period, which the detector file
        sets to the read interval, so it is the number of vehicles that passed since the previous read.
        Zone occupancy is not read (no policy uses it; it costs a call per zone per read).
        The returned arrays are views into buffers reused by the next call: copy what you keep.
        """
        il, la = self.api.inductionloop, self.api.lanearea
        e1, e2 = self._e1_ids, self._e2_ids
        # one list comprehension per variable: the per-call Python overhead is what costs here
        if e1:
            passed = np.array([il.getLastIntervalVehicleNumber(i) for i in e1], dtype=float)
            occ1 = np.array([il.getLastStepOccupancy(i) for i in e1]) / 100.0
            self._count[self._e1_idx] = passed
            self._occupancy[self._e1_idx] = occ1
            self._occupied[self._e1_idx] = (passed > 0) | (occ1 > 0)
        if e2:
            n = np.array([la.getLastStepVehicleNumber(i) for i in e2], dtype=float)
            self._count[self._e2_idx] = n
            self._occupied[self._e2_idx] = n > 0
            self._halting[self._e2_idx] = [la.getLastStepHaltingNumber(i) for i in e2]
            self._speed[self._e2_idx] = [la.getLastStepMeanSpeed(i) for i in e2]
        occupied, count, halting, occ, speed = (self._occupied, self._count, self._halting, self._occupancy,
                                                self._speed)
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
            with _stdout_to_devnull():
                self.api.close()
        finally:
            if self._owns_libsumo:
                _libsumo_busy = False
            self.api = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def _stdout_to_devnull():
    """Silence SUMO's banner and statistics on stdout (C level), so ``--json`` output stays clean.

    SUMO's errors go to stderr and stay visible.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)
