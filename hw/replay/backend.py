"""A recorded log as a backend of the port: the detector inputs a live controller would have read, second by
second, rebuilt from the log's detector on (82) and off (81) events.

For each detector channel and each second ``[t, t + 1)`` of the log:

* ``occupied`` — the detector was on at some moment of the second (on at its start, or an 82 within it);
* ``count`` — the 82 events within it (vehicles arriving on the loop);
* ``occupancy`` — the fraction of the second it was on (an 82 without its 81 stays on until the next 82 or the
  end of the log);
* ``halting`` 0 and ``speed_mps`` -1: loops measure neither.

A detector's state before its first event is taken as off. Everything is computed up front with numpy, so the
replay loop only slices arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from controller.policies.base import DetectorReadings, presence
from hw.replay.events import EventTable


class RecordedDetectors:
    """Per-second detector readings of one signal's log.

    :param log: the signal's events.
    :param channels: detector channel number of each detector, in the order of the intersection's detectors.
    :param start_s: first second, seconds since the epoch (default: the log's first event, rounded down).
    :param end_s: end, seconds since the epoch (default: the log's last event, rounded up).
    """

    def __init__(self, log: EventTable, channels: Sequence[int], start_s: float | None = None,
                 end_s: float | None = None) -> None:
        self.start_s = float(np.floor(log.time_s[0] if start_s is None else start_s))
        end = float(np.ceil(log.time_s[-1] if end_s is None else end_s))
        self.seconds = max(1, int(end - self.start_s))
        n, d = self.seconds, len(channels)
        self.count = np.zeros((n, d))
        self.occupancy = np.zeros((n, d))
        for k, ch in enumerate(channels):
            self.count[:, k], self.occupancy[:, k] = self._channel(log, int(ch))
        self.occupied = presence(self.count, self.occupancy)
        self._zeros = np.zeros(d)
        self._speed = -np.ones(d)

    def _channel(self, log: EventTable, channel: int) -> tuple[np.ndarray, np.ndarray]:
        mine = log.param == channel
        on = log.time_s[(log.code == 82) & mine] - self.start_s
        off = log.time_s[(log.code == 81) & mine] - self.start_s
        n = self.seconds
        inside = (on >= 0) & (on < n)
        count = np.bincount(on[inside].astype(np.int64), minlength=n)[:n].astype(float)
        if not len(on):
            return count, np.zeros(n)
        # each on lasts until the first off after it, else until the next on, else until the end
        k = np.searchsorted(off, on, side="left")
        end = np.full(len(on), np.inf)
        has_off = k < len(off)
        end[has_off] = off[k[has_off]]
        nxt = np.r_[on[1:], float(n)]
        end = np.minimum(end, nxt)
        a, b = np.clip(on, 0, n), np.clip(end, 0, n)
        # on-time up to each whole second: F(x) = sum of min(max(x - a, 0), b - a)
        lengths = b - a
        csum = np.r_[0.0, np.cumsum(lengths)]
        grid = np.arange(n + 1, dtype=float)
        done = np.searchsorted(b, grid, side="right")  # intervals wholly before x (b sorted: intervals in order)
        started = np.searchsorted(a, grid, side="right")
        partial = np.zeros(n + 1)
        live = started > done
        j = started[live] - 1
        partial[live] = np.minimum(grid[live] - a[j], lengths[j])
        on_time = csum[done] + partial
        return count, np.clip(np.diff(on_time), 0.0, 1.0)

    def reading(self, second: int) -> DetectorReadings:
        """The readings of second ``second`` (0-based from :attr:`start_s`), stamped with its end."""
        return DetectorReadings(self.start_s + second + 1, self.occupied[second], self.count[second],
                                self._zeros, self.occupancy[second], self._speed)

    def __iter__(self) -> Iterator[DetectorReadings]:
        for s in range(self.seconds):
            yield self.reading(s)


#: saturation flow per lane, vehicles per second of green (HCM base 1,900 veh/h/lane)
SATURATION_VPS = 1900 / 3600


class PointQueues:
    """Queues per NEMA phase in the replay's own world: recorded arrivals in, departures by the replayed signal.

    Max-pressure needs vehicle counts per movement; a recorded log gives loop actuations, and its stop-bar
    departures followed the field's signal, not the replayed one (input-output counting against them would see a
    queue drain under a replayed red). So each phase gets a point queue (vertical queue, no spatial extent):
    ``q(t+1) = max(0, q(t) + arrivals(t) - lanes * 1900 veh/h * green(t))``, where arrivals are the phase's
    advance-loop actuations in that second (stop-bar count loops when it has no advance loop, presence loops
    when it has neither), lanes the number of those loops, and green(t) 1 while the replayed signal shows the
    phase green. The queue is what the policy reads as its approach radar zone count.

    :param detectors: per NEMA phase index (link), the indices of the arrival loops in ``inputs``.
    :param inputs: the recorded per-second readings.
    """

    def __init__(self, detectors: list[list[int]], inputs: RecordedDetectors) -> None:
        self.arrivals = np.stack([inputs.count[:, idx].sum(axis=1) if idx else np.zeros(inputs.seconds)
                                  for idx in detectors], axis=1)
        self.capacity = np.array([SATURATION_VPS * max(len(idx), 1) for idx in detectors])
        self.queue = np.zeros(len(detectors))

    def update(self, second: int, green: np.ndarray) -> np.ndarray:
        """Advance one second: ``green`` (bool per phase) is what the replayed signal showed during it."""
        self.queue = np.maximum(self.queue + self.arrivals[second] - self.capacity * green, 0.0)
        return self.queue
