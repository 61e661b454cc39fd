"""Radar in SUMO: per-vehicle tracks from the vehicles inside each approach radar zone, as a radar measures them
(range to the stop bar, speed), and the ground-truth count of vehicles caught in the dilemma zone at the onset of
yellow.

The tracks feed the same :class:`controller.radar.RadarWatch` and :class:`controller.dilemma_zone.DilemmaZoneGuard`
the live daemon uses. The dilemma count is a measurement, not an input: at every yellow onset it looks at every
vehicle on the lanes whose movement just turned yellow, inside the radar zone or not, and on the road upstream of
them through junctions without signals (a block shorter than the zone's reach, about 77 m at 50 km/h, puts the far
end of the zone on the lane before the approach; there SUMO's ``getNextTLS`` tells which of the light's links a
vehicle is heading for), and counts those between 2.5 and 5.5 s from the stop bar.
"""

from __future__ import annotations

from controller.dilemma_zone import DilemmaZoneSettings
from controller.intersection import Intersection
from controller.radar import RadarWatch, Track
from envs.upstream import feeding_lanes, lanes_upstream

#: the upstream search for the dilemma count covers this multiple of an approach's speed limit × the zone's longest
#: ETA (SUMO's drivers keep within 1.2-1.3 × the limit; an emergency vehicle may go faster)
REACH_SPEED_FACTOR = 2.0


class SumoRadar:
    """Tracks and dilemma-zone counts for a set of intersections in a running SUMO.

    :param api: libsumo or a TraCI connection.
    :param intersections: the intersections (their ``radar`` detectors are read).
    :param settings: the dilemma zone counted (and protected when the controllers carry a guard).
    """

    def __init__(self, api, intersections: list[Intersection], settings: DilemmaZoneSettings | None = None) -> None:
        self.api = api
        self.settings = settings or DilemmaZoneSettings()
        self.intersections = intersections
        self.watches = [RadarWatch(i) for i in intersections]
        self._zones = [[(k, d.id, d.lane, bool(d.placement)) for k, d in enumerate(i.detectors) if d.kind == "radar"]
                       for i in intersections]
        approaches = {l.from_lane for i in intersections for l in i.links if l.kind == "vehicle"}
        lanes = approaches | {lane for zones in self._zones for _, _, lane, _ in zones}
        self._length = {lane: api.lane.getLength(lane) for lane in lanes}
        self._edge = {lane: api.lane.getEdgeID(lane) for lane in lanes}
        feeding = feeding_lanes(api.lane)
        reach = {lane: self.settings.eta_max_s * REACH_SPEED_FACTOR * api.lane.getMaxSpeed(lane) for lane in approaches}
        #: approach lane -> lanes upstream of it (no signal between) within the dilemma zone's reach
        self._upstream = {lane: [up for up, _ in lanes_upstream(feeding, lane, reach[lane], api.lane.getLength,
                                                                approaches)]
                          for lane in approaches}
        self._ids: dict[str, int] = {}
        self._previous = [i.all_red_state() for i in intersections]
        self._lanes_of = [{i: l.from_lane for i, l in enumerate(inter.links) if l.kind == "vehicle"}
                          for inter in intersections]
        #: vehicles found in the dilemma zone at a yellow onset, and the yellow onsets seen
        self.caught = 0
        self.onsets = 0

    def _track_id(self, vehicle: str) -> int:
        return self._ids.setdefault(vehicle, len(self._ids) % 65536)

    def tracks(self) -> list[list[Track]]:
        """Per intersection, this step's tracks: every vehicle in each radar zone, range = lane length - position.

        A zone that extends upstream of a short approach lane (``Detector.placement``) gives the distance along the
        vehicle's route to the stop line. A vehicle already past the stop line is left out (SUMO counts a vehicle
        whose back is still in the zone; its position on the junction's internal lane is no range to this stop
        line)."""
        v, out = self.api.vehicle, []
        for zones in self._zones:
            tracks = []
            for channel, det, lane, along_road in zones:
                for vid in self.api.lanearea.getLastStepVehicleIDs(det):
                    distance = self._to_stop_line(vid, lane, along_road)
                    if distance is not None:
                        tracks.append(Track(channel, self._track_id(vid), distance, v.getSpeed(vid)))
            out.append(tracks)
        return out

    def _to_stop_line(self, vid: str, lane: str, along_road: bool) -> float | None:
        """Metres from vehicle ``vid`` to the stop line of approach ``lane``: lane length - position on it, or,
        ``along_road`` (a zone extending upstream of a short lane), along its route from wherever it is; None for
        one already past the stop line (SUMO keeps a vehicle whose back is still in the zone)."""
        v = self.api.vehicle
        if v.getLaneID(vid) == lane:
            return self._length[lane] - v.getLanePosition(vid)
        if not along_road:  # a zone on the approach lane alone: its front is past the stop line (on the junction)
            return None
        distance = v.getDrivingDistance(vid, self._edge[lane], self._length[lane])
        return distance if distance >= 0 else None  # negative: SUMO's invalid value, the lane is behind it

    def screened(self, time_s: float) -> list[list[Track]]:
        """Per intersection, this step's plausible tracks (implausible ones dropped and counted)."""
        return [w.receive(time_s, t) for w, t in zip(self.watches, self.tracks())]

    def count_onsets(self, states: list[str]) -> None:
        """Count vehicles caught in the dilemma zone by yellows beginning in ``states`` (the states about to be
        shown, one per intersection; call before SUMO steps, while positions are those at the onset)."""
        v, s = self.api.vehicle, self.settings
        for k, state in enumerate(states):
            before = self._previous[k]
            if state == before:
                continue
            links = {i for i, (a, b) in enumerate(zip(before, state)) if b == "y" and a in "Gg"}
            lanes = {self._lanes_of[k][i] for i in links if i in self._lanes_of[k]}
            if lanes:
                self.onsets += 1
            counted: set[str] = set()
            for lane in lanes:
                for vid in self.api.lane.getLastStepVehicleIDs(lane):
                    distance = self._length[lane] - v.getLanePosition(vid)
                    if vid not in counted and s.caught(distance, v.getSpeed(vid)):
                        counted.add(vid)
                for up in self._upstream[lane]:
                    for vid in self.api.lane.getLastStepVehicleIDs(up):
                        if vid in counted:
                            continue
                        ahead = v.getNextTLS(vid)  # (tls, link index, metres to it, state) of the signals ahead
                        if (ahead and ahead[0][0] == self.intersections[k].id and ahead[0][1] in links
                                and s.caught(ahead[0][2], v.getSpeed(vid))):
                            counted.add(vid)
            self.caught += len(counted)
            self._previous[k] = state
