"""A SUMO simulation whose signals are all decided by the core, one :class:`SignalController` per light.

The building block under the runner, the Gymnasium env and the PettingZoo env.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

from controller.dilemma_zone import DilemmaZoneGuard
from controller.errors import InputError
from controller.intersection import Intersection
from controller.policies.base import DetectorReadings
from controller.signal_controller import SignalController
from envs.priority_vehicles import SumoPriorityVehicles, configure as configure_priority
from envs.radar_tracks import SumoRadar
from envs.metrics import RunMetrics, read_metrics, read_vtype_classes, sumo_output_args
from envs.light_delay import time_loss_by_light, write_edge_data_additional
from envs.sumo_backend import SumoBackend, SumoRun
from envs.sumo_programs import SUMO_REFERENCE_CONTROLLERS, write_reference_program
from networks.catalog import NetworkSpec, ScenarioSpec
from networks.derive import derive_intersections
from networks.detectors import write_detector_additional


@lru_cache(maxsize=8)
def _intersections(net_file: Path, override_file: Path | None, mtime: float, program_files: tuple[Path, ...] = (),
                   program_mtimes: tuple[float, ...] = ()) -> tuple[Intersection, ...]:
    return tuple(derive_intersections(net_file, override_file, program_files))


@lru_cache(maxsize=8)
def _vtype_classes(route_files: tuple[Path, ...], mtimes: tuple[float, ...]) -> dict[str, str]:
    return read_vtype_classes(list(route_files))


def intersections_of(network: NetworkSpec) -> list[Intersection]:
    """The network's intersections (derived from the net, with its override file), cached per process."""
    if not network.net_file.is_file():
        raise InputError(f"{network.net_file}: network file not found")
    for f in network.additional_files:
        if not Path(f).is_file():
            raise InputError(f"{f}: additional file not found")
    return list(_intersections(network.net_file, network.override_file, network.net_file.stat().st_mtime,
                               tuple(network.additional_files),
                               tuple(Path(f).stat().st_mtime for f in network.additional_files)))


def check_input_lag_s(input_lag_s) -> None:
    """Refuse an input lag that is not a whole number of seconds, 0 or more (:class:`SignalSimulation`)."""
    if isinstance(input_lag_s, bool) or not isinstance(input_lag_s, int) or input_lag_s < 0:
        raise InputError(f"input lag {input_lag_s!r} must be a whole number of seconds, 0 or more")


class SignalSimulation:
    """SUMO plus the core: every traffic light driven through phase machine and safety monitor.

    :param network: the network.
    :param scenario: the demand scenario (route files and horizon).
    :param seed: SUMO random seed.
    :param policies: per traffic-light id, a policy factory result or None (requests come from
        :meth:`advance`); ignored for SUMO's reference controllers.
    :param reference: ``sumo-actuated`` / ``sumo-delay-based`` to let SUMO's own logic run instead of the core.
    :param work_dir: where SUMO writes tripinfo/statistics (a temporary folder if None).
    :param gui: show sumo-gui (TraCI).
    :param use_traci: force TraCI.
    :param decision_period_s: how often attached policies decide, seconds.
    :param read_period_s: how often detectors are read, seconds (loop counts cover this period); every
        second whenever a policy is attached.
    :param demand_scale: multiplies the scenario's demand (SUMO ``--scale``; 1.0 = as written).
    :param dilemma_zone: ``count`` reads radar tracks and counts vehicles caught in the dilemma zone at yellow
        onsets (:attr:`radar`); ``protect`` also gives every controller dilemma-zone protection; None: neither.
    :param preempt: emergency-vehicle preemption at every light, called by emitter detection on the approach
        lanes (:mod:`envs.priority_vehicles`).
    :param preempt_route_s: with ``preempt``, route-aware (GPS) calls too: every signal on an emergency vehicle's
        route it would reach within this many seconds (:class:`envs.priority_vehicles.SumoPriorityVehicles`); None:
        the roadside receivers only.
    :param transit_priority: transit signal priority at every light, buses checking in on the approach lanes.
    :param pedestrian_buttons: pedestrian push buttons: a person waiting at a signalised crosswalk calls its phase
        (:mod:`envs.pedestrian_buttons`; the call reaches the cabinet directly, with no input lag).
    :param input_lag_s: whole seconds between a detector reading and the controllers acting on it (0: the same
        second). A central system that reads its cabinets, decides and writes back acts a second later: the live
        loop in lock step (``ondaverde run --sumo``) has a lag of 1, which this reproduces with the core alone.
    :param measure_priority_vehicles: follow emergency vehicles and buses to measure their delay through each signal
        even with neither mode on (the comparison with and without them needs it); off for the learning
        environments, whose episodes are not reported this way (it costs a few per cent of the step time).
    :param light_delay: have SUMO write edge data, so :meth:`close_with_priority_delays` adds each light's share
        of the time loss (``delay_by_light``, :mod:`envs.light_delay`).
    """

    def __init__(self, network: NetworkSpec, scenario: ScenarioSpec, seed: int, policies=None,
                 reference: str | None = None, work_dir: Path | None = None, gui: bool = False,
                 use_traci: bool = False, decision_period_s: float = 1.0, read_period_s: float = 1.0,
                 demand_scale: float = 1.0, dilemma_zone: str | None = None, preempt: bool = False,
                 transit_priority: bool = False, measure_priority_vehicles: bool = True,
                 preempt_route_s: float | None = None, input_lag_s: int = 0,
                 pedestrian_buttons: bool = False, light_delay: bool = False) -> None:
        if dilemma_zone not in (None, "count", "protect"):
            raise InputError(f"dilemma zone {dilemma_zone!r} is not count or protect")
        # (checked before SUMO starts: libsumo holds one simulation per process, and a refused run must not keep it)
        check_input_lag_s(input_lag_s)
        if input_lag_s and not policies:  # the lag counts reads, which are every second only with policies
            raise InputError("an input lag needs controllers with policies (they read detectors every second)")
        self.network, self.scenario, self.seed = network, scenario, seed
        self.intersections = intersections_of(network)
        self._tmp = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ondaverde-")
            work_dir = Path(self._tmp.name)
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = work_dir
        for f in scenario.route_files:
            if not Path(f).is_file():
                raise InputError(f"{f}: route file not found")
        # reading the vehicle types also checks each route file is well-formed XML, naming a bad one
        typed = (*network.additional_files, *scenario.route_files)  # vehicle types may sit in additional files
        self._vtype_classes = _vtype_classes(tuple(Path(f) for f in typed), tuple(Path(f).stat().st_mtime for f in typed))
        # loops aggregate over the read interval: every second with policies, else every decision
        read_period = 1.0 if (policies or reference is not None) else read_period_s
        # the network's own additional files first: a reference program loaded after them is the one that runs
        additional = [*network.additional_files,
                      write_detector_additional(self.intersections, work_dir / "detectors.add.xml", read_period)]
        if reference is not None:
            if reference not in SUMO_REFERENCE_CONTROLLERS:
                raise InputError(f"unknown SUMO reference controller {reference!r}")
            additional.append(write_reference_program(network.net_file, reference, work_dir / "reference.add.xml",
                                                      self.intersections))
        self.tripinfo = work_dir / "tripinfo.xml"
        self.statistics = work_dir / "statistics.xml"
        self.edge_data = work_dir / "edgedata.xml" if light_delay else None
        if self.edge_data is not None:
            additional.append(write_edge_data_additional(work_dir / "edgedata.add.xml", self.edge_data))
        if demand_scale <= 0:
            raise InputError(f"demand scale {demand_scale} must be positive")
        scale = ("--scale", f"{demand_scale:g}") if demand_scale != 1.0 else ()
        self.run = SumoRun(network.net_file, tuple(scenario.route_files), tuple(additional), scenario.begin_s,
                           scenario.end_s, seed, (*sumo_output_args(self.tripinfo, self.statistics), *scale), gui)
        self.controlled = reference is None
        self.controllers: list[SignalController] = []
        if self.controlled:
            policies = policies or {}
            self.controllers = [SignalController(i, policies.get(i.id), 1.0, decision_period_s,
                                                 dilemma=DilemmaZoneGuard(i) if dilemma_zone == "protect" else None)
                                for i in self.intersections]
        #: skip controllers known to hold their state between detector reads (off: step every one, every second)
        self.skip_quiet = True
        n = len(self.controllers)
        self._tick = 0  # seconds simulated under the core so far
        self._clock = [0] * n  # seconds each controller has run (behind ``_tick`` while its steps are owed)
        self._wake = [0] * n  # the second each controller must next be stepped, absent new input
        self._due: dict[int, list[int]] = {0: list(range(n))}  # second -> controllers to step then
        self._horizon_ticks = int(round(scenario.end_s - scenario.begin_s))
        self.backend = SumoBackend(self.run, self.intersections if self.controlled else [], use_traci)
        try:  # a run refused from here on must not keep SUMO (libsumo holds one simulation per process)
            #: radar tracks and dilemma-zone counts (with ``dilemma_zone``)
            self.radar = SumoRadar(self.backend.api, self.intersections) if dilemma_zone and self.controlled else None
            #: emergency vehicles' preempt calls and buses' check-ins (with ``preempt`` / ``transit_priority``)
            # (on under the core whenever the demand has emergency vehicles or buses: their delay through each signal
            # is measured with or without the modes)
            self.priority_vehicles = None
            classes = set(self._vtype_classes.values())
            if self.controlled and (preempt or transit_priority
                                    or (measure_priority_vehicles and {"emergency", "bus"} & classes)):
                for ctrl in self.controllers:
                    configure_priority(ctrl, preempt, transit_priority)
                self.priority_vehicles = SumoPriorityVehicles(self.backend.api, self.controllers,
                                                              route_horizon_s=preempt_route_s)
                if preempt or transit_priority:
                    self.skip_quiet = False  # a preempt call or check-in may arrive any second
            #: push buttons of the signalised crosswalks (with ``pedestrian_buttons``)
            self.pedestrian_buttons = None
            if pedestrian_buttons and self.controlled:
                from envs.pedestrian_buttons import SumoPedestrianButtons

                self.pedestrian_buttons = SumoPedestrianButtons(self.backend.api, self.controllers)
                self.skip_quiet = False  # a button may be pressed any second
            self._lag = input_lag_s
            # readings not yet acted on, oldest first; at the start, as many seconds of nothing seen yet
            self._lagged: list[list[DetectorReadings]] = [
                [DetectorReadings.empty(len(i.detectors), scenario.begin_s) for i in self.intersections]] * input_lag_s
            self.readings: list[DetectorReadings] = (self.backend.read_detectors() if self.controlled else [])
            self._feed_radar()
        except BaseException:
            self.backend.close()
            raise
        self._fresh = self.controlled
        self._closed = False

    @property
    def readings_acted_on_next(self) -> list[DetectorReadings]:
        """The detector data the controllers act on at the next :meth:`advance` after a fresh read: the last
        reading, or with an input lag the one ``input_lag_s`` reads older (what a learning agent whose requests the
        controllers act on must observe)."""
        return self._lagged[0] if self._lag else self.readings

    @property
    def time_s(self) -> float:
        """Simulation clock, seconds."""
        return self.backend.time_s

    @property
    def done(self) -> bool:
        """True once the horizon is reached."""
        return self.backend.done

    def advance(self, requests: dict[int, int] | None = None, read: bool = True) -> None:
        """Run one second: controllers decide (or take ``requests``: intersection index → phase index),
        states are checked and shown, SUMO steps, detectors are read.

        :param requests: phase requests from outside (a learning agent), by intersection index.
        :param read: read detectors after the step (policies attached need it every step).
        """
        if requests:
            for k, phase in requests.items():
                self._settle(k)
                self.controllers[k].request(int(phase))
                self._schedule(k, self._tick)
        backend = self.backend
        if self.priority_vehicles is not None:
            self.priority_vehicles.update()
        if self.pedestrian_buttons is not None:
            self.pedestrian_buttons.update()
        # detector data reach the controllers only when fresh: calls and policies never see a reading twice
        readings = self.readings if self._fresh else None
        if readings and self._lag:  # act on the readings of ``lag`` reads ago (none yet at the start)
            self._lagged.append([DetectorReadings(r.time_s, r.occupied.copy(), r.count.copy(), r.halting.copy(),
                                                  r.occupancy.copy(), r.speed_mps.copy()) for r in readings])
            readings = self._lagged.pop(0)
        if readings:  # (every clock is current: a fresh read ended the last step with a settle)
            self._due.pop(self._tick, None)  # every controller is stepped now
            skip_quiet = self.skip_quiet
            for k, ctrl in enumerate(self.controllers):
                if skip_quiet and ctrl.policy is None:  # no decision to make: only calls to place
                    ctrl.take_readings(readings[k])
                    quiet = ctrl.quiet_steps
                    if quiet:  # holds its state through this step too: owed, like the steps between reads
                        self._schedule(k, self._tick + quiet)
                        continue
                    state = ctrl.step(None)
                else:
                    state = ctrl.step(readings[k])
                backend.set_state(ctrl.intersection.id, state)
                self._stepped(k)  # the steps until the next reading need not run one by one
        else:
            self._step_unread()
        self._tick += 1
        if self.radar is not None:
            self.radar.count_onsets([c.state for c in self.controllers])
        backend.step()
        self._fresh = read and self.controlled
        if self._fresh:
            self.readings = backend.read_detectors()
            self._feed_radar()
        if self._fresh or self.done:
            self.settle()

    def _feed_radar(self) -> None:
        """Give each controller's dilemma-zone guard this second's plausible radar tracks."""
        if self.radar is None:
            return
        for ctrl, tracks in zip(self.controllers, self.radar.screened(self.time_s)):
            if ctrl.dilemma is not None:
                ctrl.dilemma.update(tracks)

    def _step_unread(self) -> None:
        """One step with no detector data (agents between decisions): only the controllers due now are stepped;
        one known to hold its state is left alone, its owed steps run at once (and judged) before it is next used."""
        due = self._due.pop(self._tick, None)
        if not due:
            return
        now, wake, backend = self._tick, self._wake, self.backend
        for k in due:
            if wake[k] != now:  # rescheduled since (stepped earlier, or due again for a request)
                continue
            self._settle(k)
            ctrl = self.controllers[k]
            backend.set_state(ctrl.intersection.id, ctrl.step(None))
            self._stepped(k)

    def _stepped(self, k: int) -> None:
        """Controller ``k`` has just been stepped at this second: schedule its next step."""
        self._clock[k] = self._tick + 1
        quiet = self.controllers[k].quiet_steps if self.skip_quiet else 0
        self._schedule(k, self._tick + 1 + quiet)

    def _schedule(self, k: int, second: int) -> None:
        """Step controller ``k`` at ``second`` (simulation steps since the start) unless new input comes first."""
        self._wake[k] = second
        if second <= self._horizon_ticks:
            self._due.setdefault(second, []).append(k)

    def _settle(self, k: int) -> None:
        owed = self._tick - self._clock[k]
        if owed:
            state = self.controllers[k].skip(owed)
            self._clock[k] = self._tick
            self.backend.set_state(self.controllers[k].intersection.id, state)

    def settle(self) -> None:
        """Bring every controller's clocks up to the simulation time (steps skipped while quiet)."""
        for k in range(len(self.controllers)):
            self._settle(k)

    def run_to_end(self, progress=None) -> None:
        """Advance until the horizon; ``progress(seconds)`` is called every simulated 60 s if given."""
        last = self.time_s
        while not self.done:
            self.advance()
            if progress is not None and self.time_s - last >= 60:
                progress(self.time_s - last)
                last = self.time_s

    def violations(self) -> int:
        """Safety-monitor violations recorded so far (over all intersections)."""
        return sum(len(c.monitor.violations) for c in self.controllers)

    def close(self) -> RunMetrics:
        """Stop SUMO and compute the run's metrics from its own output files."""
        if not self._closed:
            self.backend.close()
            self._closed = True
        return read_metrics(self.tripinfo, self.statistics, self.scenario.begin_s, self.scenario.end_s,
                            self._vtype_classes)

    def close_with_priority_delays(self) -> dict:
        """:meth:`close`, as a JSON-ready dict with every emergency vehicle's trip delay and each bus type's mean
        delay added (:func:`envs.priority_vehicles.priority_delays`): the metrics of evaluate's records."""
        from envs.priority_vehicles import priority_delays

        metrics = self.close().to_dict()
        metrics.update(priority_delays(self.tripinfo, self._vtype_classes, self.scenario.begin_s, self.scenario.end_s))
        if self.edge_data is not None:
            metrics["delay_by_light"] = time_loss_by_light(self.edge_data, self.intersections, metrics["scheduled"])
        return metrics

    def cleanup(self) -> None:
        """Close SUMO if needed and delete the temporary work folder."""
        if not self._closed:
            self.backend.close()
            self._closed = True
        if self._tmp is not None:
            self._tmp.cleanup()
