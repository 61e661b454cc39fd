"""Pre-timed control: the network's own program, and Webster splits re-computed from measured counts.

Both policies serve the phases in their listed order and only decide *how long* each green lasts;
the phase machine adds the yellow and all-red itself, so one cycle is the sum of the greens plus
every change interval.

Webster's method (F. V. Webster, "Traffic signal settings", Road Research Technical Paper 39,
HMSO, London, 1958), as used here:

* critical flow ratio of phase *i*: ``y_i = max over its lanes of q / s`` with *q* the measured flow
  (veh/h/lane) and *s* the saturation flow (1800 veh/h/lane by default);
* lost time per cycle: ``L = sum over phases of (yellow + all-red after the phase) + start-up lost
  time (2 s) per phase``;
* optimum cycle: ``C0 = (1.5 L + 5) / (1 - Y)`` with ``Y = sum y_i``, clamped to [40, 150] s; when
  ``Y >= 0.95`` the formula is meaningless (the intersection is at or over capacity) and the
  maximum cycle is used;
* effective greens in proportion to the ratios: ``g_i = (C0 - L) y_i / Y``; the displayed green adds
  back the start-up lost time, ``G_i = g_i + 2 s``, clamped to the phase's [min, max] green.

>>> round(webster_cycle_s(lost_time_s=14.0, total_ratio=0.5), 6)   # (1.5*14 + 5) / 0.5
52.0
"""

from __future__ import annotations

import numpy as np

from controller.intersection import Intersection
from controller.policies.base import Interval, Policy, SignalView
from controller.timing import ceil_to_step

#: Saturation flow per lane (veh/h of green), the usual planning value (HCM base 1900 less typical adjustments).
SATURATION_FLOW_VPH = 1800.0
#: Start-up lost time per phase (s), Webster 1958 / HCM default of 2 s.
STARTUP_LOST_S = 2.0
#: Cycle bounds (s): below 40 s pedestrians and lost time dominate; above 150 s delay grows with little capacity gain.
MIN_CYCLE_S = 40.0
MAX_CYCLE_S = 150.0
#: Above this total flow ratio Webster's formula diverges; the maximum cycle is used instead.
MAX_FLOW_RATIO = 0.95


def webster_cycle_s(lost_time_s: float, total_ratio: float, min_cycle_s: float = MIN_CYCLE_S,
                    max_cycle_s: float = MAX_CYCLE_S, max_ratio: float = MAX_FLOW_RATIO) -> float:
    """Webster's optimum cycle ``C0 = (1.5 L + 5) / (1 - Y)``, clamped to [min, max].

    :param lost_time_s: total lost time per cycle L, seconds.
    :param total_ratio: sum Y of the phases' critical flow ratios (dimensionless).
    :param min_cycle_s: shortest cycle allowed, seconds.
    :param max_cycle_s: longest cycle allowed (used whenever ``Y >= max_ratio``), seconds.
    :param max_ratio: the flow ratio above which the maximum cycle is used.
    """
    if total_ratio >= max_ratio:
        return max_cycle_s
    return min(max((1.5 * lost_time_s + 5.0) / (1.0 - total_ratio), min_cycle_s), max_cycle_s)


def webster_greens_s(cycle_s: float, lost_time_s: float, ratios: np.ndarray, min_green_s: np.ndarray,
                     max_green_s: np.ndarray, startup_lost_s: float = STARTUP_LOST_S) -> np.ndarray:
    """Displayed greens ``G_i = (C - L) y_i / Y + start-up lost``, each clamped to [min, max] green.

    With no measured flow at all (``Y == 0``) the effective green is shared equally.

    :param cycle_s: cycle length C, seconds.
    :param lost_time_s: lost time per cycle L, seconds.
    :param ratios: critical flow ratio y_i per phase.
    :param min_green_s: minimum green per phase, seconds.
    :param max_green_s: maximum green per phase, seconds.
    :param startup_lost_s: start-up lost time per phase, seconds (added back to the effective green).
    """
    ratios = np.asarray(ratios, dtype=float)
    total = float(ratios.sum())
    shares = ratios / total if total > 0 else np.full(len(ratios), 1.0 / len(ratios))
    greens = max(cycle_s - lost_time_s, 0.0) * shares + startup_lost_s
    return np.clip(greens, min_green_s, max_green_s)


class FixedTimePolicy(Policy):
    """The network's own fixed program: phases in order, each green for its ``program_green_s``.

    When the program's cycle is known (every phase has ``program_change_s``), the policy keeps the program's cycle
    length and offset, as a coordinated controller keeps its force-off points: each green ends where the program's
    green ends in its cycle (``Intersection.program_offset_s`` + k x cycle), so where the core's yellow and all-red
    are longer than the program's, the greens after them are shorter by as much, the cycle stays the program's and
    neighbouring lights keep their coordination. A green that started late (after a longer clearance, or at start-up
    out of step with the program) still gets its minimum green from the phase machine and the next force-off
    catches up. Without a known cycle, each green runs its program duration and the cycle grows by the difference.
    Greens are rounded up to whole steps, as the phase machine rounds every interval.

    The program's clock is the readings' ``time_s`` (simulation seconds in SUMO; the controller clock in the field).
    """

    name = "fixed"

    def reset(self, intersection: Intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        phases = intersection.phases
        self.greens_s = np.array([p.program_green_s for p in phases], dtype=float)
        #: the program's cycle, seconds (None: unknown, greens run their durations one after another)
        self.program_cycle_s: float | None = None
        #: per phase, where its green starts in the program's cycle, seconds from the cycle's start
        self.starts_s = np.zeros(len(phases))
        if all(p.program_change_s is not None for p in phases):
            t = 0.0
            for k, p in enumerate(phases):
                self.starts_s[k] = t
                t += p.program_green_s + p.program_change_s
            self.program_cycle_s = t if t > 0 else None

    def green_due_s(self, view: SignalView) -> float:
        """How long the current green lasts, seconds from its start (before rounding to the step).

        :param view: a decision during green.
        """
        p = view.phase
        if self.program_cycle_s is None:
            return float(self.greens_s[p])
        cycle = self.program_cycle_s
        start = view.readings.time_s - view.green_elapsed_s
        planned = self.intersection.program_offset_s + self.starts_s[p]
        k = round((start - planned) / cycle)  # the program's cycle this green belongs to
        return max(planned + k * cycle + float(self.greens_s[p]) - start, 0.0)  # up to the program's force-off

    def decide(self, view: SignalView) -> int:
        self._observe(view)
        if view.interval is not Interval.GREEN:
            return view.next_phase  # a change is under way; asking for anything else would only queue it
        due = ceil_to_step(self.green_due_s(view), self.step_s)
        if view.green_elapsed_s + 1e-9 < due:
            return view.phase
        nxt = (view.phase + 1) % len(self.intersection.phases)
        if nxt == 0:
            self._cycle_end(view)
        return nxt

    def _observe(self, view: SignalView) -> None:
        """Hook for subclasses that measure traffic (called on every decision, in every interval)."""

    def _cycle_end(self, view: SignalView) -> None:
        """Hook for subclasses: the last phase's green is ending, a new cycle starts."""


class WebsterPolicy(FixedTimePolicy):
    """Fixed time with Webster (1958) cycle and splits computed from counts measured at the loops.

    Each lane is counted at its advance loop (or, without one, its stop-bar loop). Once a
    measurement window of ``period_s`` is complete, the plan is recomputed at the next cycle
    boundary and the window restarts; until the first window completes, the program greens run.
    Loops count served vehicles, so an over-saturated approach is under-measured (capped near its
    capacity); the plan then tends to the maximum cycle through ``Y`` rather than tracking demand.

    The policy must be asked every step: a loop's ``count`` covers only the step just ended.

    :param period_s: measurement window between plan updates, seconds (15-min counts by default).
    :param saturation_flow_vph: saturation flow, vehicles per hour of green per lane.
    :param startup_lost_s: start-up lost time per phase, seconds.
    :param min_cycle_s: shortest cycle, seconds.
    :param max_cycle_s: longest cycle, seconds.
    """

    name = "webster"

    def __init__(self, period_s: float = 900.0, saturation_flow_vph: float = SATURATION_FLOW_VPH,
                 startup_lost_s: float = STARTUP_LOST_S, min_cycle_s: float = MIN_CYCLE_S,
                 max_cycle_s: float = MAX_CYCLE_S) -> None:
        self.period_s = period_s
        self.saturation_flow_vph = saturation_flow_vph
        self.startup_lost_s = startup_lost_s
        self.min_cycle_s = min_cycle_s
        self.max_cycle_s = max_cycle_s

    def reset(self, intersection: Intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        phases = intersection.phases
        vehicle = [lk.kind == "vehicle" for lk in intersection.links]
        # one counting loop per lane: the advance loop if the lane has one, else the stop-bar loop
        dets = intersection.detectors
        chosen: dict[str, int] = {}
        for k, det in enumerate(dets):
            if det.kind not in ("advance", "stopbar"):
                continue
            prev = chosen.get(det.lane)
            if prev is None or (det.kind == "advance" and dets[prev].kind == "stopbar"):
                chosen[det.lane] = k
        self._count_idx = np.array(list(chosen.values()), dtype=int)
        # serves[i, j]: counted lane j feeds a vehicle link green in phase i
        self._serves = np.array([[any(vehicle[l] and l in p.greens for l in dets[k].links)
                                  for k in self._count_idx] for p in phases], dtype=bool).reshape(len(phases), -1)
        # change interval after each phase: the longest yellow + all-red among its vehicle links (approximation:
        # the machine clears only the links that end, and all-red depends on which links conflict next)
        clearance = [max([intersection.links[l].yellow_s + intersection.links[l].red_clearance_s
                          for l in p.greens if vehicle[l]] or [0.0]) for p in phases]
        self.lost_time_s = float(sum(clearance)) + self.startup_lost_s * len(phases)
        self._min = np.array([p.min_green_s for p in phases], dtype=float)
        self._max = np.array([p.max_green_s for p in phases], dtype=float)
        self._counts = np.zeros(len(self._count_idx))
        self._window_s = 0.0
        self._last_time: float | None = None
        self.cycle_s: float | None = None  # None while the program greens run
        self.program_cycle_s = None  # its greens run one after another, its own cycle replacing the program's
        self.ratios = np.zeros(len(phases))

    def _observe(self, view: SignalView) -> None:
        t = view.readings.time_s
        self._window_s += self.step_s if self._last_time is None else max(t - self._last_time, 0.0)
        self._last_time = t
        self._counts += view.readings.count[self._count_idx]

    def _cycle_end(self, view: SignalView) -> None:
        if self._window_s + 1e-9 >= self.period_s:
            self.update_plan(self._counts * 3600.0 / self._window_s)
            self._counts[:] = 0.0
            self._window_s = 0.0

    def update_plan(self, lane_flows_vph: np.ndarray) -> None:
        """Recompute cycle and greens from per-lane flows (veh/h, ordered like the counted lanes).

        :param lane_flows_vph: measured flow of each counted lane, vehicles per hour.
        """
        lane_ratios = np.asarray(lane_flows_vph, dtype=float) / self.saturation_flow_vph
        masked = np.where(self._serves, lane_ratios[None, :], 0.0)
        self.ratios = masked.max(axis=1) if masked.shape[1] else np.zeros(len(self._min))
        self.cycle_s = webster_cycle_s(self.lost_time_s, float(self.ratios.sum()), self.min_cycle_s,
                                       self.max_cycle_s)
        self.greens_s = webster_greens_s(self.cycle_s, self.lost_time_s, self.ratios, self._min, self._max,
                                         self.startup_lost_s)

    @property
    def counted_lanes(self) -> tuple[str, ...]:
        """Lane of each counting loop, in the order :meth:`update_plan` expects."""
        return tuple(self.intersection.detectors[k].lane for k in self._count_idx)


__all__ = ["FixedTimePolicy", "WebsterPolicy", "webster_cycle_s", "webster_greens_s"]
