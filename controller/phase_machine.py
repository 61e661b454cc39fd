"""The phase machine: turns "serve phase P next" into step-by-step signal states that are safe by construction.

Guarantees (checked independently by :mod:`controller.safety`):

* a green is never ended before its minimum green (or before walk + pedestrian clearance when
  pedestrians were served), and is forced to end at maximum green when another phase is waiting
  (a request or a detector call), as NEMA's max timer does; with nobody waiting it rests in green;
* every green that ends is followed by a full yellow, and no conflicting link turns green until
  that link's yellow plus red clearance have elapsed;
* a protected green (``G``) that the next phase shows permissive (``g``) ends like any green: yellow,
  then red for its red clearance (at least one step), and it comes back as ``g`` only when the new
  phase's green starts, together with the movements it will yield to (MUTCD protected/permissive
  operation: a steady yellow arrow ends the protected arrow); a protected green that comes back
  permissive phases later waits for its red clearance too. ``g`` -> ``G``, ``G`` -> ``G`` and
  ``g`` -> ``g`` continue without a break;
* a permissive pair of the matrix (a link that yields as ``g`` to a movement it is never green with as ``G``)
  conflicts while the yielding link is protected: its ``G`` (also a ``g`` -> ``G``, a lagging left) waits for
  that movement's red clearance, and that movement waits for the red clearance of its protected green. The
  phase list says which pairs these are; the safety monitor, which sees only the matrix, cannot check this;
* a request arriving during a protected interval is kept and served as soon as it may be.

Time is counted in whole steps: every interval is rounded *up* to the step, never down.

>>> from controller.testing import two_phase_intersection
>>> m = PhaseMachine(two_phase_intersection(), step_s=1.0)
>>> [m.tick() for _ in range(3)][-1]     # start-up all-red, then phase 0 green
'GGrr'
>>> m.request(1)
>>> states = [m.tick() for _ in range(12)]
>>> states[2], states[5], states[-1]      # min green (5 s) runs out, then yellow, all-red, phase 1
('GGrr', 'yyrr', 'rrGG')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from controller.errors import InputError
from controller.intersection import Intersection
from controller.policies.base import Interval

_FOREVER = 1 << 30


@dataclass
class MachineStats:
    """Counters of how the machine treated requests (reported by training and the daemon).

    :param requests: change requests received (a request for the phase already green is not counted).
    :param deferred: change requests that had to wait for min green, a clearance or pedestrian timing.
    :param superseded: waiting requests replaced by a newer, different request before being served.
    :param max_outs: greens ended by maximum green.
    :param changes: phase changes started.
    """

    requests: int = 0
    deferred: int = 0
    superseded: int = 0
    max_outs: int = 0
    changes: int = 0


class PhaseMachine:
    """Sequencer for one intersection.

    :param intersection: the intersection to run.
    :param step_s: length of one tick, seconds.
    :param initial_phase: phase index served first after the start-up all-red (default: the major phase).
    :param ped_recall: serve the walk every time a phase with crosswalks is green (True), or only on a
        pedestrian call (:meth:`call_pedestrian`).
    """

    def __init__(self, intersection: Intersection, step_s: float = 1.0, initial_phase: int | None = None,
                 ped_recall: bool = True) -> None:
        if step_s <= 0:
            raise InputError(f"step length {step_s} s must be positive")
        self.intersection = intersection
        self.step_s = step_s
        self.ped_recall = ped_recall
        self.stats = MachineStats()
        links = intersection.links
        self._ticks = lambda seconds: int(math.ceil(round(seconds / step_s, 6)))
        self._yellow = [self._ticks(l.yellow_s) for l in links]
        self._red_clear = [self._ticks(l.red_clearance_s) for l in links]
        self._walk = [self._ticks(l.walk_s) for l in links]
        self._is_ped = [l.kind == "pedestrian" for l in links]
        self._greens = [p.greens for p in intersection.phases]
        # red as shown: "s" (stop, then go) on links that may turn on red, "r" elsewhere; each phase's green state
        # with that red
        self._red = ["s" if l.turn_on_red and l.kind == "vehicle" else "r" for l in links]
        self._shown = [p.state if "s" not in self._red else
                       "".join(self._red[i] if c == "r" else c for i, c in enumerate(p.state))
                       for p in intersection.phases]
        # vehicle links shown G (protected) / g (permissive) per phase; crosswalks show their own walk
        self._protected = [frozenset(i for i, c in enumerate(p.state) if c == "G" and not self._is_ped[i])
                           for p in intersection.phases]
        self._permissive = [frozenset(i for i, c in enumerate(p.state) if c == "g" and not self._is_ped[i])
                            for p in intersection.phases]
        self._conflicts = [frozenset(j for j in range(len(links)) if not intersection.compatible[i][j])
                           for i in range(len(links))]
        # the movements a vehicle link yields to: compatible, green with it while it shows g, never while it shows
        # G. The matrix lets them go together because it yields; while it is protected they conflict with it
        self._yields = [frozenset(j for j in range(len(links)) if j != i and intersection.compatible[i][j]
                                  and any(p.state[i] == "g" and p.state[j] != "r" for p in intersection.phases)
                                  and not any(p.state[i] == "G" and p.state[j] != "r" for p in intersection.phases))
                        if not self._is_ped[i] else frozenset() for i in range(len(links))]
        self._yielded_by = [frozenset(i for i in range(len(links)) if j in self._yields[i]) for j in range(len(links))]
        self._ped_links = [sorted(i for i in g if self._is_ped[i]) for g in self._greens]
        self._min = [self._ticks(p.min_green_s) for p in intersection.phases]
        self._max = [max(self._ticks(p.max_green_s), m) for p, m in zip(intersection.phases, self._min)]

        first = intersection.major_phase if initial_phase is None else initial_phase
        self._check_phase(first)
        self.now = 0  # ticks elapsed
        self.phase = first
        self.target = first
        self.interval = Interval.ALL_RED
        self.interval_ticks = 0
        self.green_ticks = 0
        self.pending: int | None = None
        self._ped_calls: set[int] = set()
        self._calls: set[int] = set()
        self._ped_served = False
        self._ped_start: dict[int, int] = {}
        self._ped_need = 0
        self._steady = 0
        self._green_start = 0
        self._ending: frozenset[int] = frozenset()
        self._yellow_ticks = 0
        self._starting = True  # the start-up all-red: nothing is green yet
        # tick at which each link's last yellow ended; start-up counts as a clearance just begun
        self._yellow_end = [0] * len(links)
        # per link: its last green ended as protected (G), so it may come back permissive only after its clearance
        self._ended_protected = [False] * len(links)
        self._state = intersection.all_red_state()
        self._ready = self._ready_tick(first)
        #: preemption dwell (and track clearance): no max-out while set (:mod:`controller.preemption`)
        self._hold = False
        #: preemption entry: (min green, min walk) in ticks that greens and walks may be cut to, or None
        self._cut: tuple[int, int] | None = None
        self._walk_cut: dict[int, int] = {}  # this service's shortened walks, per crosswalk link

    # ----------------------------------------------------------------- inputs
    def request(self, phase: int) -> None:
        """Ask for ``phase`` to be served next (index). Asking for the current green phase means "extend".

        :param phase: phase index, 0-based.
        :raises InputError: for an index that is not a phase of this intersection.
        """
        self._check_phase(phase)
        if self.interval is Interval.GREEN and phase == self.phase and self.pending is None:
            return
        if self.interval is not Interval.GREEN and phase == self.target and self.pending is None:
            return
        self._steady = 0
        if self.pending is not None and self.pending != phase:
            self.stats.superseded += 1
        if self.pending != phase:
            self.stats.requests += 1
            if not self.may_end_green():
                self.stats.deferred += 1
        self.pending = phase

    def call_vehicle(self, phase: int) -> None:
        """Register a (locking) vehicle call on ``phase``: a detector saw demand there. Calls on the phase now
        green are ignored; a call is cleared when its phase turns green. Calls only matter at max green."""
        self._check_phase(phase)
        if not (self.interval is Interval.GREEN and phase == self.phase) and phase not in self._calls:
            self._calls.add(phase)
            self._steady = 0

    def call_vehicles(self, phases: list[int]) -> None:
        """:meth:`call_vehicle` for several phases at once (one detector scan places them all)."""
        for phase in phases:
            if phase not in self._calls:
                self.call_vehicle(phase)

    def set_vehicle_calls(self, phases) -> None:
        """Replace the vehicle calls by ``phases`` (non-locking calls, as a central system's call bits: a call
        withdrawn is gone). Calls on the phase now green are ignored, as in :meth:`call_vehicle`."""
        for phase in phases:
            self._check_phase(phase)
        calls = {p for p in phases if not (self.interval is Interval.GREEN and p == self.phase)}
        if calls != self._calls:
            self._calls = calls
            self._steady = 0

    def set_hold(self, hold: bool) -> None:
        """Preemption dwell: while ``hold`` is True the green is never ended by max green (a dwell lasts while
        the emergency call is present); requests are still served after min green."""
        if hold != self._hold:
            self._hold = hold
            self._steady = 0

    def set_preempt_limits(self, min_green_s: float | None, min_walk_s: float = 0.0) -> None:
        """Preemption entry: greens (the one showing and any served before the preempt phase) may end after
        ``min(min green, min_green_s)``, and walks are cut to ``min(walk, min_walk_s)``; a walk that has already
        run longer ends now. Pedestrian clearance, yellow and red clearance are never shortened. ``None`` clears
        the limits (greens started later get their normal timing).

        :param min_green_s: preempt minimum green, seconds, or None to clear.
        :param min_walk_s: preempt minimum walk, seconds.
        """
        self._steady = 0
        if min_green_s is None:
            self._cut = None
            return
        self._cut = (self._ticks(max(min_green_s, 0.0)), self._ticks(max(min_walk_s, 0.0)))
        if self.interval is Interval.GREEN and self._ped_served:
            self._cut_walks()

    def _cut_walks(self) -> None:
        """Shorten this service's walks to the preempt minimum walk (never below the walk already shown)."""
        limit = self._cut[1]
        for i in self._ped_links[self.phase]:
            shown = self.green_ticks - self._ped_start[i]
            walk = self._walk_eff(i)
            if shown < walk:  # at least one step of walk: a crosswalk never goes from don't walk to clearance
                self._walk_cut[i] = min(walk, max(limit, shown, 1))
        self._ped_need = max([self._ped_start[i] + self._walk_eff(i) + self._yellow[i]
                              for i in self._ped_links[self.phase]] or [0])

    def _walk_eff(self, i: int) -> int:
        """The walk of crosswalk link ``i`` in this service, ticks (shortened by a preemption entry)."""
        return self._walk_cut.get(i, self._walk[i])

    def _min_green(self, phase: int) -> int:
        """Min green of ``phase`` in ticks, cut to the preempt minimum green during a preemption entry."""
        return self._min[phase] if self._cut is None else min(self._min[phase], self._cut[0])

    def call_pedestrian(self, phase: int) -> None:
        """Register a pedestrian push-button call for the crosswalks of ``phase``: they walk at its next green
        (also without pedestrian recall), and, like a vehicle call, it makes the phase one that waits (max green
        then ends the green showing). Cleared when the phase turns green."""
        self._check_phase(phase)
        if phase not in self._ped_calls:
            self._ped_calls.add(phase)
            self._steady = 0

    @property
    def pedestrian_calls(self) -> frozenset[int]:
        """Phases (indices) with a pedestrian call waiting."""
        return frozenset(self._ped_calls)

    # ----------------------------------------------------------------- status
    @property
    def time_s(self) -> float:
        """Machine clock, seconds since start."""
        return self.now * self.step_s

    @property
    def green_elapsed_s(self) -> float:
        """Seconds the current phase has shown green (0 outside green)."""
        return self.green_ticks * self.step_s if self.interval is Interval.GREEN else 0.0

    def may_end_green(self) -> bool:
        """True when the current green may be ended now (min green and pedestrian timing done)."""
        if self.interval is not Interval.GREEN:
            return False
        need = self._min_green(self.phase)
        if self._ped_served:
            need = max(need, self._ped_need)
        return self.green_ticks >= need

    # ----------------------------------------------------------------- the tick
    def tick(self) -> str:
        """Advance one step and return the signal state to show during it (one char per link)."""
        if self._steady > 0:  # known to change nothing: only the clocks run (a hot path in simulation)
            self._steady -= 1
            self.now += 1
            self.interval_ticks += 1
            if self.interval is Interval.GREEN:
                self.green_ticks += 1
            return self._state
        if self.interval is Interval.GREEN:
            self._in_green()
        elif self.interval is Interval.YELLOW:
            if self.interval_ticks >= self._yellow_ticks:
                self._begin_all_red()
        if self.interval is Interval.ALL_RED and self.now >= self._ready:
            self._begin_green(self.target)
        state = self._render()
        if state != self._state and "y" in self._state:
            self._note_yellow_ends(self._state, state)
        self._state = state
        self.now += 1
        self.interval_ticks += 1
        if self.interval is Interval.GREEN:
            self.green_ticks += 1
        self._steady = self._steady_ticks()
        return self._state

    def _note_yellow_ends(self, before: str, now: str) -> None:
        """Record, from what is shown, the tick each yellow ended. The intervals record the planned ends too, and
        must: the all-red's length is worked out from them before the tick is shown (tried without them, the
        property tests release conflicting links early). This also catches a crosswalk whose clearance was
        carried into a phase that does not serve it (shown red from that green's first tick on, with no change
        interval of its own), whose end no interval saw."""
        for i, (a, b) in enumerate(zip(before, now)):
            if a == "y" and b != "y":
                self._yellow_end[i] = max(self._yellow_end[i], self.now)

    @property
    def state(self) -> str:
        """The state shown during the last tick (all red before the first)."""
        return self._state

    @property
    def quiet_ticks(self) -> int:
        """How many next ticks are known to show the current state with only the clocks running, absent
        new requests or calls: :meth:`skip` may take that many at once."""
        return self._steady

    def skip(self, ticks: int) -> None:
        """Run ``ticks`` quiet ticks at once: exactly what that many :meth:`tick` calls would do (they
        would all return the current state).

        :param ticks: number of steps, at most :attr:`quiet_ticks`.
        :raises ValueError: when more ticks are asked than are known to be quiet.
        """
        if not 0 <= ticks <= self._steady:
            raise ValueError(f"cannot skip {ticks} ticks: only {self._steady} are known to be quiet")
        self._steady -= ticks
        self.now += ticks
        self.interval_ticks += ticks
        if self.interval is Interval.GREEN:
            self.green_ticks += ticks

    def _steady_ticks(self) -> int:
        """How many next ticks are sure to show the same state with no transition, absent new inputs.

        Any request or call resets it to 0, so a full tick re-decides. Underestimating is always
        correct (a full tick does the same); the property tests guard against overestimating.
        """
        if self.interval is Interval.YELLOW:
            return max(0, self._yellow_ticks - self.interval_ticks)
        if self.interval is Interval.ALL_RED:
            return max(0, self._ready - self.now)
        g, p = self.green_ticks, self.phase
        if self.pending == p:
            return 0
        need = self._min_green(p)
        if self._ped_served:
            need = max(need, self._ped_need)
        if self.pending is not None:
            steady = need - g
        elif (self._calls or self._ped_calls) and not self._hold:
            steady = max(need, self._max[p]) - g
        else:
            steady = _FOREVER
        if self._ped_served:
            for i in self._ped_links[p]:
                start, walk = self._ped_start[i], self._walk_eff(i)
                for boundary in (start, start + walk, start + walk + self._yellow[i]):
                    if boundary >= g:
                        steady = min(steady, boundary - g)
        return max(0, steady)

    def _in_green(self) -> None:
        p = self.phase
        if self.pending == p:
            self.pending = None  # an "extend" is served by staying green
        wants = self.pending
        if wants is None and not self._hold and self.green_ticks >= self._max[p] and self.may_end_green():
            n = len(self._greens)
            waiting = [q for q in ((p + k) % n for k in range(1, n)) if q in self._calls or q in self._ped_calls]
            if waiting:  # max-out: the next phase in sequence that has a call
                self.stats.max_outs += 1
                self._begin_change(waiting[0])
                return
        if wants is not None and self.may_end_green():
            if self.green_ticks >= self._max[p]:
                self.stats.max_outs += 1
            self._begin_change(wants)

    def _begin_change(self, target: int) -> None:
        self.stats.changes += 1
        if self._ped_served:  # record when each served crosswalk's clearance ended (it ended within this green)
            for i in self._ped_links[self.phase]:
                end = self._green_start + self._ped_start[i] + self._walk_eff(i) + self._yellow[i]
                self._yellow_end[i] = max(self._yellow_end[i], min(end, self.now))
        if self.pending == target:
            self.pending = None
        self.target = target
        # G -> g is no continuing green: the protected movement gets its yellow and red clearance first
        demoted = self._protected[self.phase] & self._permissive[target]
        ending = (self._greens[self.phase] - self._greens[target]) | demoted
        ending_vehicles = [i for i in ending if not self._is_ped[i]]
        self._ending = frozenset(ending)
        for i in ending:
            self._ended_protected[i] = i in self._protected[self.phase]
        self._yellow_ticks = max([self._yellow[i] for i in ending_vehicles] or [0])
        self.interval = Interval.YELLOW
        self.interval_ticks = 0
        self.green_ticks = 0
        if self._yellow_ticks == 0:  # nothing ends: straight on, nobody needs clearing
            self._begin_all_red()

    def _begin_all_red(self) -> None:
        for i in self._ending:
            if not self._is_ped[i]:
                self._yellow_end[i] = self.now
        self.interval = Interval.ALL_RED
        self.interval_ticks = 0
        self._ready = self._ready_tick(self.target)  # every clearance it waits for has ended by now

    def _ready_tick(self, target: int) -> int:
        """First tick at which every link conflicting with ``target``'s greens has cleared."""
        ready = 0
        continuing = self._continuing()
        for j in self._greens[target]:
            if j in continuing:
                continue
            for i in self._conflicts[j]:
                ready = max(ready, self._yellow_end[i] + self._red_clear[i])
            if self._ended_protected[j] and j in self._permissive[target]:
                # a protected green that comes back permissive (at once, G -> g, or phases later) first shows
                # red for its own red clearance, at least one step (a yellow never goes straight back to green)
                ready = max(ready, self._yellow_end[j] + max(self._red_clear[j], 1))
            for i in self._yielded_by[j]:  # a protected green it was kept from ended: that link's clearance first
                if self._ended_protected[i]:
                    ready = max(ready, self._yellow_end[i] + self._red_clear[i])
        if not self._starting:
            # a link becoming protected (starting as G, or g -> G, a lagging left) waits for the red clearance of
            # the movements it yields to when permissive (the opposing through), as for a conflicting green
            for i in self._protected[target] - (continuing & self._protected[self.phase]):
                for j in self._yields[i]:
                    ready = max(ready, self._yellow_end[j] + self._red_clear[j])
        return ready

    def _continuing(self) -> frozenset[int]:
        """Links green both before and after the change in progress that never stop (not a ``G`` -> ``g``)."""
        if self.interval is Interval.GREEN or self._starting:
            return frozenset()
        return (self._greens[self.phase] & self._greens[self.target]) - self._ending

    def _begin_green(self, target: int) -> None:
        continuing = self._continuing()
        self._starting = False
        self.phase = target
        self._green_start = self.now
        self.interval = Interval.GREEN
        self.interval_ticks = 0
        self.green_ticks = 0
        self._ped_served = bool(self._ped_links[target]) and (self.ped_recall or target in self._ped_calls)
        self._ped_calls.discard(target)
        self._calls.discard(target)
        # every crosswalk of the phase starts a fresh walk, also one that was green in the previous phase
        # too; one whose clearance was still showing gets one step of don't walk first (a clearance
        # always ends in red)
        self._ped_start = {i: (1 if i in continuing and self._state[i] != "r" else 0)
                           for i in self._ped_links[target]}
        self._walk_cut = {}
        self._ped_need = max([self._ped_start[i] + self._walk[i] + self._yellow[i]
                              for i in self._ped_links[target]] or [0])
        if self._cut is not None and self._ped_served:
            self._cut_walks()

    def _render(self) -> str:
        inter = self.intersection
        if self.interval is Interval.GREEN:
            if not self._ped_served:  # crosswalks (if any) stay at don't walk: the phase's state as it is
                state = self._shown[self.phase]
                return "".join("r" if self._is_ped[i] else c for i, c in enumerate(state)) \
                    if self._ped_links[self.phase] else state
            chars = list(self._shown[self.phase])
            for i in self._ped_links[self.phase]:
                chars[i] = self._ped_char(i)
            return "".join(chars)
        chars = list(self._red)
        before = self._shown[self.phase]
        for i in self._continuing():
            chars[i] = self._state[i] if self._is_ped[i] else before[i]
        if self.interval is Interval.YELLOW:
            for i in self._ending:
                if not self._is_ped[i]:
                    chars[i] = "y"
        return "".join(chars)

    def _ped_char(self, i: int) -> str:
        if not self._ped_served:
            return "r"
        t = self.green_ticks - self._ped_start[i]
        if t < 0:
            return "r"
        walk = self._walk_eff(i)
        if t < walk:
            return "G"
        if t < walk + self._yellow[i]:
            return "y"
        return "r"

    def _check_phase(self, phase: int) -> None:
        if not (isinstance(phase, int) or hasattr(phase, "__index__")) or not 0 <= int(phase) < len(self._greens):
            raise InputError(f"intersection {self.intersection.id!r}: no phase index {phase!r} "
                             f"(it has {len(self._greens)} phases)")
