"""Fully actuated control, NEMA style: extend on actuations, gap out, skip phases without a call.

The logic of NEMA TS 2 phase timing and of SUMO's ``actuated`` traffic lights, expressed as
requests to the phase machine (which owns min green, max green and every clearance):

* **Extension.** While the current phase is green, each actuation on a loop of a lane it serves with
  a protected green restarts the passage (gap) timer (a lane served only permissively never extends:
  its stop-bar loop sits under left turners waiting for a gap and would hold every green to max-out); the policy requests the current phase as long as the last actuation is
  less than ``passage_s`` old (SUMO's ``max-gap``, 3 s by default; NEMA "passage time").
* **Only the movements that would be stopped extend.** The passage timer of phase P, about to give way to the
  next phase Q with a call, watches the loops of the movements green in P and not in Q: ending P stops those,
  while a movement green in both (a roundabout's circulating lanes, a right-turn lane green in two phases)
  keeps flowing and must not hold P's green (at the Óvalo de Miraflores its continuous ring traffic held every
  phase close to its maximum green). A P whose movements all continue in Q does not extend; stopped movements no
  loop watches fall back to all of P's loops.
* **Gap-out.** Once ``passage_s`` has passed without an actuation, the policy requests the next
  phase *in sequence that has a call*, skipping the others. With no call anywhere it rests in the
  current green (NEMA "rest in green"), so an isolated approach does not cycle for nobody.
* **Calls.** A phase has a call while one of its loops shows presence (unless every movement over that loop
  has a protected green now: its vehicles are being served), or when a *locked* call is
  pending: an actuation seen while none of the loop's movements was green or yellow locks a call on
  the loop's phases until they are next served (NEMA "locking memory", so a vehicle that stopped past
  a short stop-bar loop is not forgotten). A phase that was still being extended when it ended
  (maxed out) keeps a call, as NEMA controllers re-service a maxed-out phase.
* **Max-out.** The machine ends a green at maximum green and, left alone, goes to the next phase in
  the list. One step before that happens the policy already asks for the next phase with a call,
  so a max-out never lands on a phase nobody is waiting for (unless no phase has a call).

Detector → phase: a stop-bar or advance loop serves a phase when one of its links is a vehicle link
green in that phase; exit zones are never used. A phase with no such loop uses its radar zones as
presence detectors. A phase with no detector at all is on recall: always called. The major phase then holds
its green to max green (NEMA max recall, a non-actuated phase: the main street of a semi-actuated layout, where only
the side street is detected; it rests there when nobody else calls); any other (a turning phase nobody detects, a
crosswalk-only phase) ends at min green (minimum recall).

The policy must be asked every step: presence is read from the step just ended.
"""

from __future__ import annotations

import numpy as np

from controller.intersection import Intersection
from controller.policies.base import (GapTimers, Interval, Policy, SignalView, green_in, loops_on_stopped_movements,
                                     undetected_phases)
from controller.timing import max_greens_s

#: Passage (gap) time, seconds: SUMO's default ``max-gap`` for actuated lights and a common NEMA setting.
PASSAGE_S = 3.0
_EPS = 1e-9


class ActuatedPolicy(Policy):
    """Gap-out / max-out actuated control with phase skipping and locking memory.

    :param passage_s: passage (gap) time, seconds: the green is extended while the last actuation on
        the phase's loops is younger than this.
    :param lock_calls: keep calls registered during red until the phase is served (NEMA locking memory).
    """

    name = "actuated"

    def __init__(self, passage_s: float = PASSAGE_S, lock_calls: bool = True) -> None:
        self.passage_s = passage_s
        self.lock_calls = lock_calls

    def reset(self, intersection: Intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        dets = intersection.detectors
        phases = intersection.phases
        vehicle_greens = [frozenset(l for l in p.greens if intersection.links[l].kind == "vehicle") for p in phases]

        def serving(kinds: tuple[str, ...]) -> np.ndarray:
            return np.array([[d.kind in kinds and bool(vehicle_greens[i] & set(d.links)) for d in dets]
                             for i in range(len(phases))], dtype=bool).reshape(len(phases), len(dets))

        serves = serving(("stopbar", "advance"))
        radar = serving(("radar",))
        for i in range(len(phases)):
            if not serves[i].any():  # no loop for this phase: fall back to its radar zones as presence
                serves[i] = radar[i]
        #: serves[i, k]: detector k places calls on phase i
        self.serves = serves
        # extends[i, k]: detector k extends phase i: the loops of lanes the phase serves with a protected
        # green ('G'). A lane served only permissively ('g', e.g. left turners waiting for a gap in the
        # opposing flow) is left out: its stop-bar loop sits under a standing queue and would hold every
        # green to max-out. A phase with only permissive movements falls back to all its loops.
        protected = [frozenset(l for l in g if p.state[l] == "G") for g, p in zip(vehicle_greens, phases)]
        extends = serves & np.array([[bool(protected[i] & set(d.links)) for d in dets]
                                     for i in range(len(phases))], dtype=bool).reshape(len(phases), len(dets))
        for i in range(len(phases)):
            if not extends[i].any():
                extends[i] = serves[i]
        self.extends = extends
        # extends_into[p, q, k]: detector k extends phase p when q is the phase that would follow: the loops of the
        # movements p's end would stop (green in p, not in q)
        self.extends_into = loops_on_stopped_movements(intersection, extends, serves)
        self.recall = ~serves.any(axis=1)  # phases without detectors are always called
        #: the major phase when no detector watches its vehicle movements: held to max green (max recall)
        self.max_recall = undetected_phases(intersection) & (np.arange(len(phases)) == intersection.major_phase)
        self._used = serves.any(axis=0)
        # links[i] as a mask over detectors: which detectors have a link green in phase i (any kind of link);
        # an actuation on such a detector while phase i is green is a vehicle being served, not a waiting one
        self._green_in = green_in(intersection)
        # kept_green[i, j, k]: detector k has a link green in phase i and in phase j (green through the change)
        self._kept_green = np.array([[[bool(p.greens & q.greens & set(d.links)) for d in dets] for q in phases]
                                     for p in phases], dtype=bool).reshape(len(phases), len(phases), len(dets))
        # served_by[i, k]: every movement over detector k has a protected green in phase i: while i is green,
        # presence there is a vehicle being served, never one waiting for another phase (a circulating lane green in
        # several phases). A permissive movement's vehicle may be waiting for a gap: it still calls its arrow
        self._served_by = np.array([[bool(d.links) and all(p.state[l] == "G" for l in d.links) for d in dets]
                                    for p in phases], dtype=bool).reshape(len(phases), len(dets))
        self._max_s = max_greens_s(phases, step_s)
        self.gaps = GapTimers(len(dets))
        self.locked = np.zeros(len(phases), dtype=bool)
        self._served_phase: int | None = None

    # ---------------------------------------------------------------- helpers
    def _actuations(self, view: SignalView) -> np.ndarray:
        r = view.readings
        return (np.asarray(r.occupied, dtype=bool) | (np.asarray(r.count) > 0)) & self._used

    def calls(self, view: SignalView) -> np.ndarray:
        """Which phases have a call now (presence on a serving loop, a locked call, or recall).

        :param view: the current signal view.
        :return: boolean array over phases.
        """
        occupied = np.asarray(view.readings.occupied, dtype=bool)
        if view.interval is Interval.GREEN:
            occupied = occupied & ~self._served_by[view.phase]
        presence = (self.serves & occupied[None, :]).any(axis=1)
        calls = presence | self.locked | self.recall
        if view.pedestrian_calls:  # a push button calls its phase too
            calls[list(view.pedestrian_calls)] = True
        return calls

    def _next_called(self, current: int, calls: np.ndarray) -> int | None:
        """The first phase after ``current`` in sequence with a call, or None."""
        n = len(calls)
        for k in range(1, n):
            i = (current + k) % n
            if calls[i]:
                return i
        return None

    # ---------------------------------------------------------------- decision
    def decide(self, view: SignalView) -> int:
        now = view.readings.time_s
        act = self._actuations(view)
        self.gaps.actuated(act, now)
        green = view.interval is Interval.GREEN
        if green and view.phase != self._served_phase:
            self._begin_service(view.phase)
        if self.lock_calls and act.any():
            # an actuation locks a call on every phase the detector serves, unless one of its movements is green
            # or yellow right now (then the vehicle is being served or clearing); during all-red only the movements
            # green both before and after the change still move
            if green or view.interval is Interval.YELLOW:
                moving = self._green_in[view.phase]
            elif view.interval is Interval.ALL_RED:
                moving = self._kept_green[view.phase, view.next_phase]
            else:
                moving = np.zeros_like(act)
            waiting = act & ~moving
            self.locked |= (self.serves & waiting[None, :]).any(axis=1)
        if not green:
            return view.next_phase  # a change is under way; another request would only queue behind it

        p = view.phase
        calls = self.calls(view)
        nxt = self._next_called(p, calls)
        if nxt is None:
            return p  # rest in green: nobody else is waiting
        gap_s = self.gaps.gap_s(self.extends_into[p, nxt], now)
        extending = gap_s + _EPS < self.passage_s or bool(self.max_recall[p])
        maxing_out = view.green_elapsed_s + _EPS >= self._max_s[p]
        if extending and not maxing_out:
            return p
        if maxing_out and extending:
            self.locked[p] = True  # still demand here: come back next cycle even if the loops fall silent
        return nxt

    def _begin_service(self, phase: int) -> None:
        """A new green began: its locked call is answered."""
        self._served_phase = phase
        self.locked[phase] = False

    @property
    def detectors_of(self) -> tuple[tuple[int, ...], ...]:
        """Per phase, the indices of the detectors that call and extend it (for reports and tests)."""
        return tuple(tuple(int(k) for k in np.flatnonzero(row)) for row in self.serves)
