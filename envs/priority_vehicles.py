"""Emergency vehicles and buses in SUMO as a field system sees them: preempt calls from emitter detection and transit
check-in/check-out on the approach lanes, fed to the core's preemption and transit priority.

What is used of SUMO's state is only what the roadside would report:

* **Preemption.** An emergency vehicle (vClass ``emergency``) carries an emitter; each approach of a signal has a
  receiver that detects it within ``preempt_range_m`` metres of the stop bar along the road: on the approach lane,
  and upstream of it through junctions without signals (SUMO splits a road at every lane-count change), never past
  another signal. While an emitter is detected, the preempt input of the approach's phase is on; preempt *k* of an
  intersection dwells in its phase *k* (index *k - 1*): on the approach lane the phase that serves most of the
  lane's movements, upstream the phase of most of the approach lanes the road feeds (the receiver cannot know
  where the vehicle will turn). The input drops when the vehicle crosses the stop bar (it leaves the lane).
  A joined signal (the Óvalo: one light over several junctions) is called from its own approaches only; inside
  it (on a ring segment between its junctions) a vehicle places no call, the circulating greens carry it.
* **Route-aware preemption (GPS).** With ``route_horizon_s`` the vehicle's onboard unit also calls, as a GPS-based
  preemption system does from the vehicle's position, heading and planned route, every signal on its route it
  would reach within ``route_horizon_s`` seconds at the roads' speed limits (SUMO's ``getNextTLS``, which follows
  the route), also beyond the next signal: the preempt a receiver on the approach lane the vehicle will use calls
  (at that signal it replaces the receivers' call, whose guess upstream of the approach may differ). A joined
  signal (the Óvalo) is left to its receivers: holding a roundabout's entry green ahead of the vehicle stops its
  ring, which then blocks the entry (measured: ambulances lost 80-280 s there with 30 s calls). The receivers'
  calls at the other signals still come too.
* **Transit priority.** A bus (vClass ``bus``: Corredor Azul and combi lines) checks in when it is within
  ``checkin_range_m`` of the stop bar on an approach lane (the approach radar zone) and has no stop left on that
  lane (a near-side stop first: it checks in once its doors closed), and checks out when it leaves the lane (at the
  stop bar). Lateness: the bundled demand has no timetable (stops carry a dwell time, no ``until``), so the
  lateness sent is unknown (None) and the condition to use is ``always``.

Measured (ground truth, never an input): each emergency vehicle's *delay through a signal*: SUMO's time loss
(``vehicle.getTimeLoss``, the basis of the project's delay metric) from entering the receiver's reach until it is
through the junction (on the next edge). It counts against the vehicle's desired speed (1.3 × the limit for the
bundled ambulances), so an ambulance following traffic at the limit on a green loses time no signal can give back.
The *control delay* over the same stretch (the HCM's notion: the time taken minus the time at the approach's speed
limit, never below 0) is kept beside it. The whole-trip delay also holds time lost between signals. Per-vehicle trip delays come from SUMO's tripinfo, with the project's delay
contract (:func:`priority_delays`).
"""

from __future__ import annotations

from pathlib import Path

from controller.intersection import Intersection
from controller.preemption import PreemptPlan, approach_phases
from controller.signal_controller import SignalController
from controller.transit_priority import TransitSettings
from envs.metrics import SUMO_DEFAULT_VTYPE_CLASSES, iter_vehicle_records
from envs.upstream import feeding_lanes, lanes_upstream

#: emitter receivers' reach along the approach lane, metres (optical/radio emitters: typically 300+ m; the lane
#: itself is the limit on city blocks)
PREEMPT_RANGE_M = 300.0
#: below this speed a vehicle counts as stopped, m/s (5 km/h, the HCM's stopped-vehicle threshold)
STOPPED_MPS = 5 / 3.6
#: transit check-in distance, metres (the 150 m approach radar zone of the automatic detectors)
CHECKIN_RANGE_M = 150.0


def preempt_plans_for(intersection: Intersection, **settings) -> list[PreemptPlan]:
    """One preempt per phase that serves an approach lane: preempt *k* dwells in phase index *k - 1*.

    :param intersection: the intersection.
    :param settings: further :class:`PreemptPlan` fields (delay, minimum green, dwell, ...).
    """
    phases = sorted(set(approach_phases(intersection).values()))
    return [PreemptPlan(number=k + 1, dwell_phase=k, **settings) for k in phases]


def configure(controller: SignalController, preempt: bool, transit: bool) -> None:
    """Turn on preemption (one plan per approach phase, default timing) and/or transit priority (default
    settings, condition ``always``) on a controller."""
    controller.modes.configure(preempt_plans_for(controller.intersection) if preempt else None,
                               TransitSettings() if transit else None)


class SumoPriorityVehicles:
    """Preempt inputs and transit check-ins for a set of controllers in a running SUMO.

    :param api: libsumo or a TraCI connection.
    :param controllers: the controllers (their modes must be configured for what is fed).
    :param preempt_range_m: emitter detection reach upstream of the stop bar, metres.
    :param checkin_range_m: transit check-in distance from the stop bar, metres.
    :param route_horizon_s: route-aware (GPS) preemption: also call every signal on the vehicle's route it would
        reach within this many seconds at the speed limits; None: the roadside receivers only.
    """

    def __init__(self, api, controllers: list[SignalController], preempt_range_m: float = PREEMPT_RANGE_M,
                 checkin_range_m: float = CHECKIN_RANGE_M, route_horizon_s: float | None = None) -> None:
        self.api = api
        self.controllers = controllers
        self.preempt_range_m, self.checkin_range_m = preempt_range_m, checkin_range_m
        if route_horizon_s is not None and not route_horizon_s > 0:
            raise ValueError(f"route horizon {route_horizon_s} s must be positive")
        self.route_horizon_s = route_horizon_s
        self._index = {ctrl.intersection.id: k for k, ctrl in enumerate(controllers)}
        #: approach lane -> (controller index, phase index, lane length m)
        self.lanes: dict[str, tuple[int, int, float]] = {}
        #: approach lanes inside a joined signal (a ring segment of a signalised roundabout: a lane its own links
        #: feed) -> controller index; they place no calls (the receivers sit on the cluster's own approaches)
        self.inside: dict[str, int] = {}
        for k, ctrl in enumerate(controllers):
            fed = {_edge(link.to_lane) for link in ctrl.intersection.links if link.kind == "vehicle"}
            for lane, phase in approach_phases(ctrl.intersection).items():
                if _edge(lane) in fed:
                    self.inside[lane] = k
                else:
                    self.lanes[lane] = (k, phase, api.lane.getLength(lane))
        #: controllers of joined signals (a ring between their junctions): no route-aware calls
        self._joined = set(self.inside.values())
        #: lane upstream of an approach (no signal between) -> (controller index, phase, reach from its end m)
        self.upstream = self._upstream_lanes(preempt_range_m) if self.lanes else {}
        self.emergency: set[str] = set()
        self.buses: set[str] = set()
        self._checked_in: dict[str, tuple[int, int]] = {}  # bus -> (controller index, phase)
        #: emergency vehicles seen, preempt calls placed (rising edges), bus check-ins
        self.counts = {"emergency_vehicles_seen": 0, "preempt_calls": 0, "bus_check_ins": 0}
        #: per controller, the preempt numbers whose input is on now (an emitter detected on one of its approaches)
        self.calls: list[set[int]] = [set() for _ in controllers]
        # emergency vehicle -> [controller index, (time, odometer, time loss) at entry, ... now, speed limit,
        # arrived on red]
        self._passing: dict[str, list] = {}
        #: emergency vehicles' passages: (vehicle, traffic-light id, SUMO time loss s, control delay s, arrived on
        #: red): *arrived on red*: the signal of the vehicle's own link showed red or yellow when it reached the
        #: stop bar (SUMO's blue-light device lets an emergency vehicle cross a red at 20 km/h and yield inside the
        #: junction), or while it stood (below :data:`STOPPED_MPS`) in the receiver's reach (in the queue)
        self.passages: list[tuple[str, str, float, float, bool]] = []
        # the reference speed of an approach: the fastest of its phase's approach lanes' speed limits
        self._speed_limit: dict[tuple[int, int], float] = {}
        for lane, (k, phase, _) in self.lanes.items():
            limit = api.lane.getMaxSpeed(lane)
            self._speed_limit[k, phase] = max(self._speed_limit.get((k, phase), 0.0), limit)

    def update(self) -> None:
        """Read this step's departures, arrivals and the tracked vehicles' lanes; set the controllers' inputs."""
        v, sim = self.api.vehicle, self.api.simulation
        for vid in sim.getDepartedIDList():
            vclass = v.getVehicleClass(vid)
            if vclass == "emergency":
                self.emergency.add(vid)
                self.counts["emergency_vehicles_seen"] += 1
            elif vclass == "bus":
                self.buses.add(vid)
        for vid in sim.getArrivedIDList():
            self.emergency.discard(vid)
            self.buses.discard(vid)
            if vid in self._passing:
                self._passed(vid)
        calls: list[set[int]] = [set() for _ in self.controllers]
        for vid in sorted(self.emergency):
            where = self._near(vid, self.preempt_range_m)
            # the route-aware unit knows the lane the vehicle will arrive on: at a signal it calls, its call replaces
            # the receivers' guess (upstream of an approach a receiver calls the phase of most lanes the road feeds)
            ahead = dict(self._route_calls(vid)) if self.route_horizon_s is not None else {}
            for k, phase in ahead.items():
                calls[k].add(phase + 1)
            if where is not None:
                if where[0] not in ahead:
                    calls[where[0]].add(where[1] + 1)
            else:  # inside a joined signal: no call, but its passage through the cluster goes on
                k = self.inside.get(v.getLaneID(vid))
                where = (k, -1) if k is not None else None
            self._measure(vid, where)
        for k, ctrl in enumerate(self.controllers):
            p = ctrl.modes.preemption
            if p is not None:
                self.counts["preempt_calls"] += len(calls[k] - self.calls[k])
                p.set_inputs(calls[k])
        self.calls = calls
        present: dict[str, tuple[int, int]] = {}
        for vid in sorted(self.buses):  # check-in order must not depend on the string hash seed
            where = self._near(vid, self.checkin_range_m)
            if where is not None and not self._stop_ahead(vid):
                present[vid] = where
        for vid, where in list(self._checked_in.items()):
            if present.get(vid) != where:
                del self._checked_in[vid]
                tsp = self.controllers[where[0]].modes.priority
                if tsp is not None:
                    tsp.check_out(vid, self.controllers[where[0]].modes.time_s)
        for vid, where in present.items():
            if vid not in self._checked_in:
                self._checked_in[vid] = where
                ctrl = self.controllers[where[0]]
                if ctrl.modes.priority is not None:
                    ctrl.modes.priority.check_in(vid, where[1], ctrl.modes.time_s, None)
                    self.counts["bus_check_ins"] += 1

    def _route_calls(self, vid: str) -> list[tuple[int, int]]:
        """(controller index, phase) of every signal on ``vid``'s route it would reach within the route horizon at
        the speed limits of the lanes ahead (the one it is on, then each signal's approach), the first passage
        through each; none for a joined signal. The phase is the one a receiver on the approach lane it will use
        calls."""
        v = self.api.vehicle
        limit = max(v.getAllowedSpeed(vid), 1.0)
        out = []
        for tls, link, distance, _ in v.getNextTLS(vid):
            k = self._index.get(tls)
            if k is None:
                continue
            approach = self.lanes.get(self.controllers[k].intersection.links[link].from_lane)
            if approach is not None:  # the slower of here and that approach: never an early ETA on a fast road
                limit = min(limit, self._speed_limit.get((k, approach[1]), limit))
            if distance / limit > self.route_horizon_s:
                break
            if approach is not None and k not in self._joined and all(k != kk for kk, _ in out):
                out.append((k, approach[1]))
        return out

    def checked_in_phases(self) -> list[set[int]]:
        """Per controller, the phases (1-based) with a bus checked in now: a cabinet's transit priority detector
        inputs (:mod:`hw.virtual`)."""
        out: list[set[int]] = [set() for _ in self.controllers]
        for k, phase in self._checked_in.values():
            out[k].add(phase + 1)
        return out

    def _measure(self, vid: str, where: tuple[int, int] | None) -> None:
        """Follow an emergency vehicle from the receiver's reach through the junction (time, odometer, time loss)."""
        passing = self._passing.get(vid)
        v = self.api.vehicle
        if passing is not None and (where is None or where[0] != passing[0]):
            if where is not None or not v.getLaneID(vid).startswith(":"):  # through the junction
                self._passed(vid)
                passing = None
        if where is None and passing is None:
            return
        now = (self.api.simulation.getTime(), v.getDistance(vid), v.getTimeLoss(vid))
        if passing is None:
            passing = self._passing[vid] = [where[0], now, now, self._speed_limit.get((where[0], where[1]), 13.89),
                                            False]
        else:
            passing[2] = now
        if not passing[4] and where is not None and where[1] >= 0:
            red, distance = self._signal_ahead(vid, self.controllers[where[0]].intersection.id)
            # the stop bar is reached within this step (or the vehicle stands in the queue) while red
            passing[4] = red and (distance <= max(v.getSpeed(vid), 1.0) or v.getSpeed(vid) < STOPPED_MPS)

    def _signal_ahead(self, vid: str, tls: str) -> tuple[bool, float]:
        """(the link of ``vid`` at ``tls`` shows red or yellow, metres to its stop bar); (False, inf) when the next
        signal on its route is another one."""
        ahead = self.api.vehicle.getNextTLS(vid)
        if not ahead or ahead[0][0] != tls:
            return False, float("inf")
        return ahead[0][3] in "rRyYu", float(ahead[0][2])

    def _passed(self, vid: str) -> None:
        k, (t0, d0, loss0), (t1, d1, loss1), limit, red = self._passing.pop(vid)
        control = max(0.0, (t1 - t0) - (d1 - d0) / limit)
        self.passages.append((vid, self.controllers[k].intersection.id, round(loss1 - loss0, 2), round(control, 2),
                              red))

    def intersection_delays(self, control: bool = False) -> dict[str, float]:
        """Per emergency vehicle, its delay through the signals it passed: SUMO's time loss summed over the
        passages, or with ``control`` the control delay (s)."""
        out: dict[str, float] = {}
        for vid, _, loss, delay, _ in self.passages:
            out[vid] = round(out.get(vid, 0.0) + (delay if control else loss), 2)
        return dict(sorted(out.items()))

    def _upstream_lanes(self, reach_m: float) -> dict[str, tuple[int, int, float]]:
        """Lanes feeding the approach lanes through junctions without signals, within ``reach_m`` of the stop bar."""
        lane_api = self.api.lane
        feeding = feeding_lanes(lane_api)
        stop = set(self.lanes) | set(self.inside)  # a signal: the reach ends there
        found: dict[str, list[tuple[int, int, float]]] = {}
        for lane, (k, phase, _) in self.lanes.items():
            for up, left in lanes_upstream(feeding, lane, reach_m, lane_api.getLength, stop):
                found.setdefault(up, []).append((k, phase, left))
        out = {}
        for up, entries in found.items():
            phases = [(k, phase) for k, phase, _ in entries]
            k, phase = max(phases, key=phases.count)  # the phase of most approach lanes it feeds
            out[up] = (k, phase, max(left for kk, p, left in entries if (kk, p) == (k, phase)))
        return out

    def _near(self, vid: str, reach_m: float) -> tuple[int, int] | None:
        """(controller index, phase) when ``vid`` is on an approach lane within ``reach_m`` of its stop bar, or (for
        the emitter receivers' reach) on a lane upstream of one within the reach."""
        v = self.api.vehicle
        lane = v.getLaneID(vid)
        entry = self.lanes.get(lane)
        if entry is None:
            up = self.upstream.get(lane) if reach_m >= self.preempt_range_m else None
            if up is None:
                return None
            k, phase, left = up
            return (k, phase) if self.api.lane.getLength(lane) - v.getLanePosition(vid) <= left else None
        k, phase, length = entry
        if length - v.getLanePosition(vid) > reach_m:
            return None
        return k, phase

    def _stop_ahead(self, vid: str) -> bool:
        """True while the bus has a stop still to serve on the lane it is on (it checks in after the stop)."""
        stops = self.api.vehicle.getNextStops(vid)
        if not stops:
            return False
        first = stops[0]
        lane = first.lane if hasattr(first, "lane") else first[0]  # libsumo: a record; TraCI: a tuple
        return lane == self.api.vehicle.getLaneID(vid)


def priority_delays(tripinfo: Path, vtype_classes: dict[str, str], begin_s: float, end_s: float) -> dict:
    """Per-vehicle delay of the emergency vehicles and mean delay per bus type, over vehicles scheduled in
    ``[begin_s, end_s)``, with the delay contract (``timeLoss + departDelay``, unfinished and never-inserted
    vehicles included).

    :param tripinfo: SUMO tripinfo written with :func:`envs.metrics.sumo_output_args`.
    :param vtype_classes: vType id -> vClass (:func:`envs.metrics.read_vtype_classes`).
    :param begin_s: horizon start, seconds.
    :param end_s: horizon end, seconds.
    :return: ``{"emergency_vehicles": {id: delay s}, "bus_delay_by_type": {vType: mean delay s}}``.
    """
    classes = {**SUMO_DEFAULT_VTYPE_CLASSES, **vtype_classes}
    emergency: dict[str, float] = {}
    buses: dict[str, list[float]] = {}
    for rec in iter_vehicle_records(tripinfo, assumed_end_s=end_s):
        if not begin_s <= rec.scheduled_depart_s < end_s:
            continue
        vtype = rec.vtype.split("@", 1)[0]
        vclass = classes.get(vtype, vtype)
        if vclass == "emergency":
            emergency[rec.id] = round(rec.delay_s, 2)
        elif vclass == "bus":
            buses.setdefault(vtype, []).append(rec.delay_s)
    return {"emergency_vehicles": dict(sorted(emergency.items())),
            "bus_delay_by_type": {t: sum(d) / len(d) for t, d in sorted(buses.items())}}


def _edge(lane: str) -> str:
    """The edge of a SUMO lane id (``edge_index``)."""
    return lane.rsplit("_", 1)[0]
