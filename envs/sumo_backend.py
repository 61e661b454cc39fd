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
from controller.policies.base import DetectorReadings, presence
from networks.sumo_home import sumo_binary

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
        if self.gui:  # run at once and close with the horizon, as the headless run does
            cmd += ["--start", "true", "--quit-on-end", "true"]
        if self.route_files:
            cmd += ["-r", ",".join(map(str, self.route_files))]
        if self.additional_files:
            cmd += ["-a", ",".join(map(str, self.additional_files))]
        return cmd + list(self.extra_args)


def import_simulator(use_traci: bool = False) -> None:
    """Import libsumo (or TraCI) now rather than at the first simulation's start (loading libsumo's module takes
    ~0.2 s, which a benchmark that excludes imports must not time)."""
    import importlib

    importlib.import_module("traci" if use_traci else "libsumo")


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

            said: list[str] = []
            try:
                with _stdout_to_devnull(), _stderr_kept(said):
                    libsumo.start(run.command())
            except Exception as exc:  # SUMO's own message names the problem; libsumo's exception often does not
                reason = _sumo_errors(said) or _first_line(exc)
                raise InputError(f"SUMO refused the run: {reason}") from None
            if said:  # started: what SUMO said on the way (warnings) is shown after all
                sys.stderr.write("\n".join(said) + "\n")
            _libsumo_busy = self._owns_libsumo = True
            self.api = libsumo
        self.time_s = float(self.api.simulation.getTime())
        self.fast = _FastCalls(self.api)
        self._prepare_reading()
        self._last_states = {i.id: "" for i in intersections}

    # ------------------------------------------------------------------ detectors
    def _prepare_reading(self) -> None:
        kinds = [(d.id, d.kind) for inter in self.intersections for d in inter.detectors]

        def of(*wanted: str) -> tuple[list[str], np.ndarray]:
            picked = [(k, i) for k, (i, kind) in enumerate(kinds) if kind in wanted]
            return [i for _, i in picked], np.array([k for k, _ in picked], dtype=np.int64)

        self._loops, self._loops_idx = of("stopbar", "advance")
        self._stopbars, self._stopbars_idx = of("stopbar")
        self._zones, self._zones_idx = of("radar", "exit")
        self._radars, self._radars_idx = of("radar")
        n = len(kinds)
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
        missing = [i for i in self._loops if i not in known_e1] + [i for i in self._zones if i not in known_e2]
        if missing:
            self.close()
            raise InputError(f"detector {missing[0]!r} is missing from the simulation ({len(missing)} missing)")

    def read_detectors(self) -> list[DetectorReadings]:
        """All intersections' detector data, read with direct getters (measured: ~0.3-1 µs a call with
        libsumo, against ~13 µs per detector for subscriptions and a cost that grows with the interval
        for SUMO's running interval counts).

        What each detector gives, as in the field: every loop its count (SUMO's count over the loop's
        last aggregation period, which the detector file sets to the read interval, so: vehicles that
        passed since the previous read), stop-bar loops also their occupancy; every zone its vehicles
        and queue (halting vehicles), approach radar zones also the mean speed. Presence (``occupied``)
        is a count or occupancy above zero. Each value not read saves a call per detector per read.
        The returned arrays are views into buffers reused by the next call: copy what you keep.
        """
        f = self.fast
        # one map() per variable: the per-call Python overhead is what costs here
        if self._loops:
            self._count[self._loops_idx] = list(map(f.loop_count, self._loops))
        if self._stopbars:
            self._occupancy[self._stopbars_idx] = list(map(f.loop_occupancy, self._stopbars))
            self._occupancy[self._stopbars_idx] /= 100.0
        if self._zones:
            self._count[self._zones_idx] = list(map(f.zone_vehicles, self._zones))
            self._halting[self._zones_idx] = list(map(f.zone_halting, self._zones))
        if self._radars:
            self._speed[self._radars_idx] = list(map(f.zone_speed, self._radars))
        presence(self._count, self._occupancy, out=self._occupied)
        occupied, count, halting, occ, speed = (self._occupied, self._count, self._halting, self._occupancy,
                                                self._speed)
        t = self.time_s
        return [DetectorReadings(t, occupied[s], count[s], halting[s], occ[s], speed[s]) for s in self._slices]

    # ------------------------------------------------------------------ signals and time
    def set_state(self, tl_id: str, state: str) -> None:
        """Show ``state`` on traffic light ``tl_id`` (only sent to SUMO when it changed)."""
        if self._last_states[tl_id] != state:
            self.fast.set_state(tl_id, state)
            self._last_states[tl_id] = state

    def step(self) -> None:
        """Advance SUMO by one step."""
        self.fast.step()
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


class _FastCalls:
    """The handful of calls made every step or every read, bound once.

    With libsumo they are the compiled functions themselves: the Python wrapper libsumo puts around
    each one doubles the cost of a call, and these run hundreds of times per simulated second.
    """

    #: attribute → (TraCI domain, method)
    CALLS = {"loop_count": ("inductionloop", "getLastIntervalVehicleNumber"),
             "loop_occupancy": ("inductionloop", "getLastStepOccupancy"),
             "zone_vehicles": ("lanearea", "getLastStepVehicleNumber"),
             "zone_halting": ("lanearea", "getLastStepHaltingNumber"),
             "zone_speed": ("lanearea", "getLastStepMeanSpeed"),
             "lane_halting": ("lane", "getLastStepHaltingNumber"),
             "lane_vehicles": ("lane", "getLastStepVehicleNumber"),
             "lane_waiting_time": ("lane", "getWaitingTime"),
             "set_state": ("trafficlight", "setRedYellowGreenState")}

    def __init__(self, api) -> None:
        raw = getattr(getattr(api, "libsumo", None), "_libsumo", None)
        for attr, (domain, method) in self.CALLS.items():
            compiled = getattr(raw, f"{domain}_{method}", None) if raw is not None else None
            setattr(self, attr, compiled or getattr(getattr(api, domain), method))
        if raw is not None:
            step = raw.simulation_step
            self.step = lambda: step(0.0)
        else:
            self.step = api.simulationStep


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


@contextlib.contextmanager
def _redirected(fd: int, stream, target_fd: int):
    """Point file descriptor ``fd`` (C level: what SUMO writes) at ``target_fd`` while inside; ``stream`` is its
    Python side, flushed first so nothing written before lands in the target."""
    stream.flush()
    saved = os.dup(fd)
    os.dup2(target_fd, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@contextlib.contextmanager
def _stderr_kept(lines: list[str]):
    """Collect what SUMO writes to stderr (C level) into ``lines`` instead of showing it, so a refused start gives
    one line (ours, naming SUMO's reason) and not SUMO's lines followed by ours."""
    import tempfile

    with tempfile.TemporaryFile(mode="w+b") as buffer:
        try:
            with _redirected(2, sys.stderr, buffer.fileno()):
                yield lines
        finally:
            buffer.seek(0)
            lines.extend(buffer.read().decode("utf-8", "replace").splitlines())


def _sumo_errors(lines: list[str]) -> str:
    """SUMO's error messages in one line: each ``Error:`` line with the indented lines that continue it."""
    errors: list[str] = []
    for line in lines:
        if line.startswith("Error:"):
            errors.append(line.removeprefix("Error:").strip())
        elif errors and line[:1].isspace() and line.strip():
            errors[-1] += " " + line.strip()
    return "; ".join(dict.fromkeys(e for e in errors if e))


@contextlib.contextmanager
def _stdout_to_devnull():
    """Silence SUMO's banner and statistics on stdout (C level), so ``--json`` output stays clean (its errors go
    to stderr)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with _redirected(1, sys.stdout, devnull):
            yield
    finally:
        os.close(devnull)
