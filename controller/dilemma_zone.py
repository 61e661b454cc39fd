"""Dilemma-zone protection: hold the current green while a tracked vehicle on a lane about to lose its green is
2.5-5.5 s from the stop bar, never beyond max green.

A driver 2.5-5.5 s from the stop line at the onset of yellow can neither stop comfortably nor be sure to clear
(the Type II dilemma zone, standards.md §E). The guard sits between the policy and the phase machine: when the
policy asks to end the green and a radar track on an approach whose movement would end has an ETA inside the
window, it asks the machine to extend instead. At max green it steps aside: the policy's change goes through and
the machine logs the max-out (Indiana 5), so protection never overrides the timing limits or the safety layer.

>>> from controller.testing import two_phase_intersection
>>> from controller.policies.base import DetectorReadings, Interval, SignalView
>>> from controller.radar import Track
>>> inter = two_phase_intersection()
>>> guard = DilemmaZoneGuard(inter)
>>> view = SignalView(inter, DetectorReadings.empty(16), 0, 0, Interval.GREEN, 12.0, True)
>>> guard.update([Track(2, 1, 50.0, 12.5)])   # radar zone of link 0 (served by phase 0): ETA 4 s
>>> guard.choose(view, 1), guard.holds
(0, 1)
>>> guard.update([Track(2, 1, 20.0, 12.5)])   # 1.6 s out: past the zone, it goes
>>> guard.choose(view, 1)
1
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.intersection import Intersection
from controller.policies.base import Interval, SignalView
from controller.radar import Track
from controller.timing import max_greens_s


@dataclass(frozen=True)
class DilemmaZoneSettings:
    """Where the dilemma zone is.

    :param eta_min_s: nearest edge, seconds of travel to the stop bar (Type II zone: 2.5 s).
    :param eta_max_s: farthest edge, seconds (5.5 s).
    :param min_speed_mps: slower vehicles can stop in time and are not protected, m/s (20 km/h).
    :param max_hold_s: longest the guard holds one green past the policy's first wish to end it, seconds (None:
        up to max green).
    :param final_end: once the policy decided to end a green and the guard held it, the green ends as soon as the
        zone is clear even if the policy meanwhile wants to extend it again (as a NEMA gap-out is final); False
        lets the policy take its decision back.
    """

    eta_min_s: float = 2.5
    eta_max_s: float = 5.5
    min_speed_mps: float = 20.0 / 3.6
    max_hold_s: float | None = None
    final_end: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.eta_min_s < self.eta_max_s:
            raise ValueError(f"dilemma zone {self.eta_min_s}-{self.eta_max_s} s is not a window")

    def caught(self, range_m: float, speed_mps: float) -> bool:
        """True when a vehicle ``range_m`` metres from the stop bar at ``speed_mps`` is inside the zone."""
        return speed_mps >= self.min_speed_mps and self.eta_min_s <= range_m / speed_mps <= self.eta_max_s


class DilemmaZoneGuard:
    """Dilemma-zone protection for one intersection.

    :param intersection: the intersection (its ``radar`` detectors give the tracks' lanes and links).
    :param settings: the zone.
    :param step_s: the controller's step, seconds (max green is counted in whole steps, as the machine does).
    """

    def __init__(self, intersection: Intersection, settings: DilemmaZoneSettings | None = None,
                 step_s: float = 1.0) -> None:
        self.intersection = intersection
        self.settings = settings or DilemmaZoneSettings()
        self.step_s = step_s
        vehicle = {l.index for l in intersection.links if l.kind == "vehicle"}
        self._links = {k: frozenset(d.links) & vehicle for k, d in enumerate(intersection.detectors)
                       if d.kind == "radar"}
        self._greens = [p.greens & vehicle for p in intersection.phases]
        self._max_s = max_greens_s(intersection.phases, step_s)
        self._tracks: list[Track] = []
        self._held_since: float | None = None  # green time at the first hold of the current green
        self._held_phase: int | None = None
        self._ending_for: int | None = None  # the phase the policy decided to end the held green for
        #: steps the guard held a green the policy wanted to end
        self.holds = 0

    def update(self, tracks: list[Track]) -> None:
        """This step's plausible tracks (see :class:`controller.radar.RadarWatch`)."""
        self._tracks = tracks

    def protecting(self, phase: int, target: int) -> bool:
        """True when ending ``phase`` for ``target`` would catch a tracked vehicle in the dilemma zone."""
        ending = self._greens[phase] - self._greens[target]
        s = self.settings
        return any(s.caught(t.range_m, t.speed_mps) for t in self._tracks
                   if self._links.get(t.channel, frozenset()) & ending)

    def choose(self, view: SignalView, choice: int) -> int:
        """The phase to request: the policy's ``choice``, or the current phase while it protects a vehicle.

        :param view: what the policy saw this step.
        :param choice: the policy's request (phase index).
        """
        p = view.phase
        if view.interval is not Interval.GREEN:
            return choice
        elapsed = view.green_elapsed_s
        if self._held_phase != p or elapsed < (self._held_since or 0.0):
            self._held_phase, self._held_since, self._ending_for = p, None, None  # a new green
        if choice == p:
            if self._ending_for is None or not self.settings.final_end:
                return choice
            choice = self._ending_for  # the end was decided: the hold only delays it, it is not taken back
        if elapsed + 1e-9 >= self._max_s[p]:
            return choice  # max green: the change goes through and is logged as a max-out
        limit = self.settings.max_hold_s
        if self._held_since is not None and limit is not None and elapsed - self._held_since + 1e-9 >= limit:
            return choice
        if self.protecting(p, choice):
            if self._held_since is None:
                self._held_since, self._ending_for = elapsed, choice
            self.holds += 1
            return p
        return choice
