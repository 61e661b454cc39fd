"""Radar tracks: per-vehicle range, speed and ETA on an approach radar zone; plausibility screening with counts and
channel faults; approach-speed records per 15 minutes.

A track is what an advance radar (e.g. Wavetronix SmartSensor Advance) reports of one vehicle: its distance to the
stop bar and its speed; ETA = range / speed (standards.md §E "Radar and detectors"). Tracks arrive on a *channel*:
the index of one of the intersection's ``radar`` detectors (its approach lane). A track that cannot be a vehicle
(negative or non-finite range, speed below zero, above 200 km/h or not finite, a channel that is not a radar zone)
is dropped and counted, never used. A channel that keeps sending such tracks is reported failed (Indiana 84,
"detector fault: other") and restored (83) after a quiet spell. Pure: SUMO, the field adapters and replay feed it.

>>> from controller.testing import two_phase_intersection
>>> radar = RadarWatch(two_phase_intersection())
>>> good = radar.receive(0.0, [Track(2, 7, 60.0, 12.0), Track(2, 8, -3.0, 12.0), Track(6, 9, 40.0, 70.0)])
>>> [(t.track_id, t.eta_s) for t in good], radar.dropped, dict(radar.dropped_by_reason)
([(7, 5.0)], 2, {'negative range': 1, 'speed over limit': 1})
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from controller.events import Event, EventCode
from controller.intersection import Intersection

#: Fastest plausible vehicle, m/s (200 km/h): faster is a radar artefact (issue 6).
MAX_SPEED_MPS = 200.0 / 3.6
#: Longest plausible range, metres: beyond any approach radar's reach (SmartSensor Advance: about 270 m).
MAX_RANGE_M = 1000.0


@dataclass(frozen=True)
class Track:
    """One vehicle as the radar sees it.

    :param channel: the radar zone it is on (index into ``Intersection.detectors``, a ``radar`` detector).
    :param track_id: the radar's id for this vehicle (stable while it is tracked).
    :param range_m: distance to the stop bar, metres.
    :param speed_mps: speed towards the stop bar, metres per second.
    """

    channel: int
    track_id: int
    range_m: float
    speed_mps: float

    @property
    def eta_s(self) -> float:
        """Seconds to the stop bar at the current speed (infinite when stopped)."""
        return self.range_m / self.speed_mps if self.speed_mps > 0 else math.inf


def implausible(track: Track, radar_channels: frozenset[int]) -> str | None:
    """Why ``track`` cannot be a real vehicle, or None when it is plausible.

    :param track: the track.
    :param radar_channels: indices of the intersection's radar detectors.
    """
    r, v = track.range_m, track.speed_mps
    if track.channel not in radar_channels:
        return "unknown channel"
    if not (isinstance(r, (int, float)) and math.isfinite(r)) or not (isinstance(v, (int, float)) and math.isfinite(v)):
        return "not a number"
    if r < 0:
        return "negative range"
    if r > MAX_RANGE_M:
        return "range beyond reach"
    if v < 0:
        return "negative speed"
    if v > MAX_SPEED_MPS:
        return "speed over limit"
    return None


@dataclass(frozen=True)
class SpeedRecord:
    """Approach speeds on one radar channel over one period.

    :param start_s: period start, controller clock seconds.
    :param signal_id: the intersection.
    :param channel: the radar detector (1-based channel, as in events).
    :param vehicles: vehicles measured.
    :param mean_mps: mean speed, m/s.
    :param p85_mps: 85th-percentile speed, m/s.
    """

    start_s: float
    signal_id: str
    channel: int
    vehicles: int
    mean_mps: float
    p85_mps: float


class SpeedRecorder:
    """Approach-speed records: each vehicle's speed when the radar first sees it moving, summarised per channel
    and period (mean and 85th percentile, as ATSPM's approach-speed measure).

    :param signal_id: the intersection.
    :param period_s: record period, seconds (15 min by default).
    :param min_speed_mps: slower first sightings (a vehicle joining a standing queue) are not a free approach
        speed and are not recorded, m/s.
    :param forget_s: a track id unseen this long may be a new vehicle, seconds.
    """

    def __init__(self, signal_id: str, period_s: float = 900.0, min_speed_mps: float = 1.0,
                 forget_s: float = 60.0) -> None:
        self.signal_id = signal_id
        self.period_s, self.min_speed_mps, self.forget_s = period_s, min_speed_mps, forget_s
        self._seen: dict[tuple[int, int], float] = {}
        self._bin: float | None = None
        self._speeds: dict[int, list[float]] = {}

    def observe(self, time_s: float, tracks: list[Track]) -> list[SpeedRecord]:
        """Take one scan of plausible tracks; returns the records of periods that ended before ``time_s``."""
        out = []
        start = math.floor(time_s / self.period_s) * self.period_s
        if self._bin is not None and start > self._bin:
            out = self.flush()
        if self._bin is None:
            self._bin = start
        for t in tracks:
            key = (t.channel, t.track_id)
            if key not in self._seen and t.speed_mps >= self.min_speed_mps:
                self._speeds.setdefault(t.channel, []).append(t.speed_mps)
            if key in self._seen or t.speed_mps >= self.min_speed_mps:
                self._seen[key] = time_s
        if len(self._seen) > 256:
            self._seen = {k: s for k, s in self._seen.items() if time_s - s <= self.forget_s}
        return out

    def flush(self) -> list[SpeedRecord]:
        """Close the current period: its records (one per channel that measured a vehicle)."""
        out = []
        if self._bin is not None:
            for channel, speeds in sorted(self._speeds.items()):
                a = np.asarray(speeds)
                out.append(SpeedRecord(self._bin, self.signal_id, channel + 1, len(a), float(a.mean()),
                                       float(np.percentile(a, 85))))
        self._bin, self._speeds = None, {}
        return out


class RadarWatch:
    """Screens one intersection's radar tracks, watches each radar channel and records approach speeds.

    :param intersection: the intersection (its ``radar`` detectors are the channels).
    :param fault_after: implausible tracks on one channel within ``window_s`` that fail it.
    :param window_s: the counting window, seconds.
    :param restore_s: seconds without an implausible track before a failed channel is trusted again.
    :param speed_period_s: approach-speed record period, seconds.
    """

    def __init__(self, intersection: Intersection, fault_after: int = 10, window_s: float = 60.0,
                 restore_s: float = 60.0, speed_period_s: float = 900.0) -> None:
        self.intersection = intersection
        self.channels = frozenset(k for k, d in enumerate(intersection.detectors) if d.kind == "radar")
        self.fault_after, self.window_s, self.restore_s = fault_after, window_s, restore_s
        #: implausible tracks dropped so far, and by reason
        self.dropped = 0
        self.dropped_by_reason: Counter[str] = Counter()
        #: plausible tracks passed on so far
        self.accepted = 0
        self._bad: dict[int, list[float]] = {}
        self._last_bad: dict[int, float] = {}
        #: radar channels now failed (their tracks are dropped too)
        self.failed: set[int] = set()
        self.speeds = SpeedRecorder(intersection.id, speed_period_s)
        #: fault and restore events not yet taken (the caller logs and clears them)
        self.events: list[Event] = []
        #: finished approach-speed records not yet taken
        self.records: list[SpeedRecord] = []

    def receive(self, time_s: float, tracks: list[Track]) -> list[Track]:
        """One radar scan: returns the plausible tracks on healthy channels; drops and counts the rest.

        :param time_s: controller clock, seconds.
        :param tracks: every track reported this scan.
        """
        good = []
        for t in tracks:
            reason = implausible(t, self.channels)
            if reason is None:
                good.append(t)
                continue
            self.dropped += 1
            self.dropped_by_reason[reason] += 1
            if t.channel in self.channels:
                window = self._bad.setdefault(t.channel, [])
                window.append(time_s)
                self._last_bad[t.channel] = time_s
        sid = self.intersection.id
        for channel, window in self._bad.items():
            while window and window[0] < time_s - self.window_s:
                window.pop(0)
            if channel not in self.failed and len(window) >= self.fault_after:
                self.failed.add(channel)
                self.events.append(Event(time_s, sid, int(EventCode.DETECTOR_FAULT_OTHER), channel + 1))
        for channel in sorted(self.failed):
            if time_s - self._last_bad.get(channel, -math.inf) >= self.restore_s:
                self.failed.discard(channel)
                self._bad[channel] = []  # judged afresh from here
                self.events.append(Event(time_s, sid, int(EventCode.DETECTOR_RESTORED), channel + 1))
        good = [t for t in good if t.channel not in self.failed]
        self.accepted += len(good)
        self.records += self.speeds.observe(time_s, good)
        return good
