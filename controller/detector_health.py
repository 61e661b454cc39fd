"""Detector health, per channel, from presence alone: stuck on, stuck off, chattering; and what a failed
detector's phase does instead (recall).

A loop that reports presence without a break for longer than any vehicle stops on it is *stuck on* (Indiana 87,
"shorted"); one that has not seen a vehicle for many times the gap its own measured flow leads to expect is
*stuck off* (86, "open"); one that changes state more often than traffic can make it is *chattering* (88,
"excessive changes"). A failed channel recovers (83) after a run of plausible behaviour. Pure: the live daemon,
replay and simulation share it.

Read once a second, a loop flickering faster than the poll looks like a lane at capacity (on, off, on, ...): its
change rate cannot tell the two apart. Its vehicle count can, against the loop's *lane-mate*: a stop-bar loop and
the advance loop on the same lane count the same vehicles within a few tens of per cent (measured on the bundled
Miraflores model: at most 1.2 times over 5 minutes on lanes with 40 or more vehicles in them, 1.9 times from 20),
while a loop that counts several times what its lane-mate saw is counting what is not there. That loop is
chattering too (judged only against a lane-mate that has not failed, and in both halves of the window,
so that a mate gone dead is no reference).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from controller.events import Event, EventCode
from controller.intersection import Intersection


@dataclass(frozen=True)
class HealthSettings:
    """Thresholds.

    :param stuck_on_s: continuous presence beyond this is a fault, seconds.
    :param stuck_off_min_s: never call a detector stuck off before this long without an actuation, seconds.
    :param stuck_off_gaps: ... nor before this many mean gaps of its own measured flow.
    :param chatter_changes: more on/off changes than this within ``chatter_window_s`` is chattering. The default,
        80 a minute (40 actuations), is more than a lane at capacity (~2,400 veh/h) can make; presence read once a
        second changes at most 60 times a minute, so at a 1 s poll only a lower setting can fire, and then busy
        uninterrupted streams (a roundabout entry in the peak: over 40 a minute seen on Miraflores) trip it too.
    :param chatter_window_s: the chattering window, seconds.
    :param lane_mate_window_s: the window over which a stop-bar loop's count is compared with the advance loop's
        on the same lane, seconds.
    :param lane_mate_ratio: a loop that counts more than this many times its lane-mate's vehicles in the window
        is chattering...
    :param lane_mate_min_count: ... once it has counted at least this many (quiet lanes are never judged: a few
        vehicles changing lanes between the two loops make a large ratio of small counts).
    :param recover_s: seconds of plausible behaviour before a failed channel is trusted again.
    :param recall: what a failed detector's phase gets: ``min`` (a call every cycle) or ``max`` (a call and
        constant presence, so actuated control extends it to max green).
    """

    stuck_on_s: float = 300.0
    stuck_off_min_s: float = 600.0
    stuck_off_gaps: float = 20.0
    chatter_changes: int = 80
    chatter_window_s: float = 60.0
    lane_mate_window_s: float = 300.0
    lane_mate_ratio: float = 3.0
    lane_mate_min_count: int = 40
    recover_s: float = 120.0
    recall: str = "min"


class DetectorHealth:
    """Watches every detector of one intersection.

    :param intersection: the intersection (its detectors are the channels, channel *k* = detector *k*, 1-based in
        events).
    :param settings: thresholds.
    """

    FAULT_CODES = {"stuck_on": EventCode.DETECTOR_FAULT_SHORTED, "stuck_off": EventCode.DETECTOR_FAULT_OPEN,
                   "chatter": EventCode.DETECTOR_FAULT_EXCESSIVE_CHANGE}

    def __init__(self, intersection: Intersection, settings: HealthSettings | None = None) -> None:
        self.intersection = intersection
        self.settings = s = settings or HealthSettings()
        if s.recall not in ("min", "max"):
            raise ValueError(f"recall {s.recall!r} must be 'min' or 'max'")
        n = len(intersection.detectors)
        #: zones (radar, exit) see standing queues for long: only loops are judged for stuck on
        self._loops = np.array([d.kind in ("stopbar", "advance") for d in intersection.detectors], dtype=bool)
        self._on_since = np.full(n, np.nan)
        self._last_on = np.zeros(n)
        self._actuations = np.zeros(n)
        self._changes: list[list[float]] = [[] for _ in range(n)]
        self._previous = np.zeros(n, dtype=bool)
        self._fault: list[str | None] = [None] * n
        self._good_since = np.zeros(n)
        self._start: float | None = None
        #: (stop-bar, advance) detector indices of lanes with exactly one of each
        by_lane: dict[str, dict[str, list[int]]] = {}
        for k, d in enumerate(intersection.detectors):
            if d.kind in ("stopbar", "advance"):
                by_lane.setdefault(d.lane, {"stopbar": [], "advance": []})[d.kind].append(k)
        self._pairs = np.array([(kinds["stopbar"][0], kinds["advance"][0]) for kinds in by_lane.values()
                                if len(kinds["stopbar"]) == 1 and len(kinds["advance"]) == 1],
                               dtype=np.int64).reshape(-1, 2)
        # (time, the paired loops' counts) per poll, in the window's recent half and its older half, with sums
        self._halves: tuple[deque, deque] = (deque(), deque())
        self._half_sums = (np.zeros(self._pairs.shape), np.zeros(self._pairs.shape))
        self._overcounting = np.zeros(n, dtype=bool)

    @property
    def failed(self) -> np.ndarray:
        """Per detector, True while it is considered failed."""
        return np.array([f is not None for f in self._fault], dtype=bool)

    def fault(self, channel: int) -> str | None:
        """The fault of detector index ``channel`` (``stuck_on``, ``stuck_off``, ``chatter``) or None."""
        return self._fault[channel]

    def update(self, time_s: float, occupied: np.ndarray, counts: np.ndarray | None = None) -> list[Event]:
        """One poll of presence (and loop counts); returns fault and restore events (param = channel, 1-based).

        :param time_s: the poll's time, seconds (never going back).
        :param occupied: per detector, presence.
        :param counts: per detector, vehicles counted since the previous poll (loops; other entries unused), or
            None where the source gives no counts (the lane-mate comparison then waits).
        """
        s, out = self.settings, []
        if self._start is None:
            self._start = time_s
            self._last_on[:] = time_s
            self._good_since[:] = time_s
        occupied = np.asarray(occupied, dtype=bool)
        rising = occupied & ~self._previous
        changed = occupied != self._previous
        self._on_since[rising] = time_s
        self._on_since[~occupied] = np.nan
        self._last_on[occupied] = time_s
        self._actuations += rising
        for d in np.flatnonzero(changed).tolist():
            window = self._changes[d]
            window.append(time_s)
            while window and window[0] < time_s - s.chatter_window_s:
                window.pop(0)
        self._previous = occupied.copy()
        if counts is not None and len(self._pairs):
            self._compare_lane_mates(time_s, np.asarray(counts, dtype=float))
        elapsed = max(time_s - self._start, 1.0)
        for d in range(len(occupied)):
            problem = self._diagnose(d, time_s, elapsed)
            current = self._fault[d]
            if problem is not None and current is None:
                self._fault[d] = problem
                out.append(Event(time_s, self.intersection.id, int(self.FAULT_CODES[problem]), d + 1))
            elif problem is None and current is not None:
                if time_s - self._good_since[d] >= s.recover_s:
                    self._fault[d] = None
                    out.append(Event(time_s, self.intersection.id, int(EventCode.DETECTOR_RESTORED), d + 1))
            if problem is not None:
                self._good_since[d] = time_s
        return out

    def _diagnose(self, d: int, time_s: float, elapsed: float) -> str | None:
        s = self.settings
        window = self._changes[d]
        while window and window[0] < time_s - s.chatter_window_s:  # a channel gone quiet leaves the window too
            window.pop(0)
        if len(window) > s.chatter_changes or self._overcounting[d]:
            return "chatter"
        if self._loops[d] and not np.isnan(self._on_since[d]) and time_s - self._on_since[d] > s.stuck_on_s:
            return "stuck_on"
        mean_gap = elapsed / self._actuations[d] if self._actuations[d] else elapsed
        quiet = time_s - self._last_on[d]
        if self._actuations[d] and quiet > max(s.stuck_off_min_s, s.stuck_off_gaps * mean_gap):
            return "stuck_off"
        return None

    def _compare_lane_mates(self, time_s: float, counts: np.ndarray) -> None:
        """Add this poll's counts to the window; mark each loop counting far more than its lane-mate.

        The comparison must hold in both halves of the window: a mate that went dead a while ago still has its
        old counts in the window, and only its silent recent half must not make its lane-mate look chattering.
        """
        s = self.settings
        half = s.lane_mate_window_s / 2
        recent, older = self._halves
        recent_sum, older_sum = self._half_sums
        now = counts[self._pairs]
        recent.append((time_s, now))
        recent_sum += now
        while recent and recent[0][0] <= time_s - half:
            entry = recent.popleft()
            recent_sum -= entry[1]
            older.append(entry)
            older_sum += entry[1]
        while older and older[0][0] <= time_s - s.lane_mate_window_s:
            older_sum -= older.popleft()[1]
        failed = self.failed
        self._overcounting[:] = False
        for me, mate in ((0, 1), (1, 0)):
            loops, mates = self._pairs[:, me], self._pairs[:, mate]
            judged = ((recent_sum[:, me] + older_sum[:, me] >= s.lane_mate_min_count) & ~failed[mates])
            for sums in (recent_sum, older_sum):
                # a mate that counted nothing is no reference: a dead advance loop must not make its stop bar
                # look chattering (it is found stuck off on its own)
                judged &= (sums[:, mate] > 0) & (sums[:, me] > s.lane_mate_ratio * sums[:, mate])
            self._overcounting[loops] = judged

    def mask(self, occupied: np.ndarray) -> np.ndarray:
        """Presence as the policy should see it: a failed detector reads as present under max recall, as empty
        under min recall (its phase gets its call from :meth:`recall_phases` instead)."""
        out = np.asarray(occupied, dtype=bool).copy()
        failed = self.failed
        out[failed] = self.settings.recall == "max"
        return out

    def recall_phases(self) -> list[int]:
        """Phases (indices) with a failed detector on their approach: they get a standing call."""
        failed = self.failed
        if not failed.any():
            return []
        vehicle = {l.index for l in self.intersection.links if l.kind == "vehicle"}
        return [p for p, phase in enumerate(self.intersection.phases)
                if any(failed[k] and (phase.greens & vehicle).intersection(det.links)
                       for k, det in enumerate(self.intersection.detectors) if det.kind != "exit")]
