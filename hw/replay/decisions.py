"""Decision replay: a recorded signal's detector actuations fed, in time order and faster than real time, through
the core (:class:`controller.signal_controller.SignalController`: policy -> phase machine -> safety monitor), and
what it decided set beside what the field controller did.

The recorded traffic does not react to the new timing: vehicles arrive as they did under the field's signal,
so queues, delays and arrivals on green under the replayed timing are not what they would have been. The
comparison is of the decisions (phase durations, splits, terminations), not of their effect; the what-if in
SUMO answers the second question.

The replayed event log speaks NEMA phases, as the recorded one does: the core's phases here are ring
combinations (:mod:`hw.replay.nema`), so the events are written per signal group (one per NEMA phase) from the
states the monitor passed, with the codes of :class:`controller.events.EventCode`. Terminations: a green the
phase machine ended at max green is a max-out (5); otherwise actuated control's end is a gap-out (4) and every
other policy's a force-off (6), the policy ending the phase as a central system's force-off would. The
recorded detector events (81/82) of the configured channels are copied into it, so the replayed log can be
measured like the recorded one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from controller.errors import InputError
from controller.events import Event, EventCode, policy_termination_code
from controller.policies.base import Interval
from controller.policies.registry import make_policy
from controller.signal_controller import SignalController
from controller.timing import ceil_to_step
from hw.replay.backend import PointQueues, RecordedDetectors
from hw.replay.detector_config import DetectorChannel
from hw.replay.events import EventTable
from hw.replay.nema import NemaIntersection, nema_intersection

#: policies decision replay offers (``rl`` also needs a policy file trained for the signal)
CONTROLLERS = ("actuated", "maxpressure", "fixed", "webster", "rl")
NOTE = ("note: the recorded traffic does not react to the replayed timing (vehicles arrive as they did under the "
        "field's signal); this compares decisions, not their effect on delay")


@dataclass
class PhaseStats:
    """One NEMA phase's services in a log.

    :param services: greens begun (1).
    :param green_s: mean green, begin green (1) to begin yellow (8), seconds.
    :param split_s: mean split, begin green to phase inactive (12, after its yellow and red clearance), seconds;
        a green the same phase continues into (no 12 before its next green) is not counted.
    :param gap_outs: gap-outs (4).
    :param max_outs: max-outs (5).
    :param force_offs: force-offs (6).
    """

    services: int = 0
    green_s: float = float("nan")
    split_s: float = float("nan")
    gap_outs: int = 0
    max_outs: int = 0
    force_offs: int = 0


def phase_stats(log: EventTable) -> dict[int, PhaseStats]:
    """Per NEMA phase, its services, mean green and split and terminations, from one signal's events.

    :param log: one signal's events (recorded or replayed).
    """
    out = {}
    for phase in sorted(set(log.param[log.code == 1].tolist())):
        mine = log.param == phase
        starts = log.time_s[(log.code == 1) & mine]
        yellows = log.time_s[(log.code == 8) & mine]
        ends = log.time_s[(log.code == 12) & mine]  # phase inactive: after its yellow and red clearance
        nxt = np.r_[starts[1:], np.inf]
        greens, splits = [], []
        for a, b in zip(starts, nxt):
            y = yellows[np.searchsorted(yellows, a):]
            c = ends[np.searchsorted(ends, a, side="right"):]
            if len(y) and y[0] < b:
                greens.append(y[0] - a)
            if len(c) and c[0] <= b:
                splits.append(c[0] - a)
        out[phase] = PhaseStats(len(starts), float(np.mean(greens)) if greens else float("nan"),
                                float(np.mean(splits)) if splits else float("nan"),
                                int(((log.code == 4) & mine).sum()), int(((log.code == 5) & mine).sum()),
                                int(((log.code == 6) & mine).sum()))
    return out


@dataclass
class ReplayResult:
    """One signal replayed.

    :param signal: the signal id.
    :param controller: the policy name.
    :param layout: the phases replayed, for the report (e.g. ``2+5  2+6  8``).
    :param events: the replayed event log (signal events and the recorded detector events).
    :param recorded: per NEMA phase, the recorded services.
    :param replayed: per NEMA phase, the replayed services.
    :param seconds: simulated seconds replayed.
    :param wall_s: wall time of the replay loop, seconds.
    :param violations: safety-monitor faults (0 expected).
    """

    signal: str
    controller: str
    layout: str
    events: list[Event]
    recorded: dict[int, PhaseStats]
    replayed: dict[int, PhaseStats]
    seconds: int
    wall_s: float
    violations: int = 0


class _GroupRecorder:
    """Signal-group (NEMA phase) events from the states the controller shows."""

    def __init__(self, model: NemaIntersection, step_s: float, policy: str) -> None:
        inter = model.intersection
        self.model, self.sid = model, inter.id
        self.prev = "r" * inter.n_links
        self.red_ends: dict[int, float] = {}
        self.red_s = [ceil_to_step(l.red_clearance_s, step_s) for l in inter.links]
        self.ended_by = EventCode.GAP_OUT if policy == "actuated" else EventCode.FORCE_OFF
        self.flashing = False
        self.max_outs = 0

    def observe(self, t: float, state: str, interval: Interval, max_outs: int) -> list[Event]:
        out: list[Event] = []
        sid, phases = self.sid, self.model.phases

        def emit(code: EventCode, link: int) -> None:
            out.append(Event(t, sid, int(code), int(phases[link])))

        for link, end in list(self.red_ends.items()):
            if end <= t + 1e-9:
                emit(EventCode.END_RED_CLEARANCE, link)
                emit(EventCode.PHASE_INACTIVE, link)
                del self.red_ends[link]
        if interval is Interval.FLASH:
            if not self.flashing:
                out.append(Event(t, sid, int(EventCode.UNIT_FLASH_STATUS_CHANGE), 5))
                self.flashing = True
            return out
        maxed = max_outs > self.max_outs
        self.max_outs = max_outs
        if state == self.prev:
            return out
        for link, (was, now) in enumerate(zip(self.prev, state)):
            if was == now:
                continue
            if now in "Gg" and was not in "Gg":
                if link in self.red_ends:  # served again before its own red clearance was logged as ended
                    emit(EventCode.END_RED_CLEARANCE, link)
                    emit(EventCode.PHASE_INACTIVE, link)
                    del self.red_ends[link]
                emit(EventCode.PHASE_ON, link)
                emit(EventCode.BEGIN_GREEN, link)
            elif now == "y" and was in "Gg":
                emit(EventCode.MAX_OUT if maxed else self.ended_by, link)
                emit(EventCode.GREEN_TERMINATION, link)
                emit(EventCode.BEGIN_YELLOW, link)
            elif now == "r" and was == "y":
                emit(EventCode.END_YELLOW, link)
                emit(EventCode.BEGIN_RED_CLEARANCE, link)
                self.red_ends[link] = t + self.red_s[link]
        self.prev = state
        return out


def _make_policy(name: str, policy_file: str | None):
    if name not in CONTROLLERS:
        raise InputError(f"unknown controller {name!r} for replay; choose from: {', '.join(CONTROLLERS)}")
    if policy_file is not None and name != "rl":
        raise InputError(f"--policy goes with --controller rl, not {name}")
    if name == "rl":
        if policy_file is None:
            raise InputError("--controller rl needs --policy FILE (a policy trained for this signal's phases and "
                             "detectors)")
        from controller.policies.learned import LearnedPolicy

        return LearnedPolicy(policy_file)
    if name == "maxpressure":
        # no discharge hold: the recorded stop-bar actuations followed the field's signal, not the replayed one
        # (the same reason the phases' queues are point queues), so they cannot tell whether a replayed green
        # still discharges
        return make_policy("maxpressure-varaiya")
    return make_policy(name)


def replay_signal(log: EventTable, channels: Sequence[DetectorChannel], controller: str,
                  policy_file: str | None = None, progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Replay one signal's recorded detector actuations through the core.

    :param log: the signal's recorded events (one signal).
    :param channels: its detector configuration.
    :param controller: policy name (see :data:`CONTROLLERS`).
    :param policy_file: the policy file for ``rl``.
    :param progress: called with the number of seconds replayed since the last call (every simulated hour).
    :raises InputError: an unknown policy, a signal the model cannot be built for, a policy file that does not fit.
    """
    sid = str(log.signal[0])
    mine = [c for c in channels if c.signal == sid]
    if not mine:
        raise InputError(f"signal {sid}: no detector channel in the configuration")
    queues = controller == "maxpressure"
    model = nema_intersection(sid, mine, log, queue_zones=queues)
    inter = model.intersection
    policy = _make_policy(controller, policy_file)
    ctrl = SignalController(inter, policy, 1.0, 1.0)
    inputs = RecordedDetectors(log, model.channels)
    zones = [k for k, ch in enumerate(model.channels) if ch == 0]
    point = PointQueues(_arrival_loops(model, mine), inputs) if queues else None
    rec = _GroupRecorder(model, 1.0, controller)
    events: list[Event] = []
    started = time.perf_counter()
    last = 0
    machine = ctrl.machine
    green = np.zeros(inter.n_links, dtype=bool)
    for s in range(inputs.seconds):
        readings = inputs.reading(s)
        if point is not None:  # the zones show the point queues as they stand after the second just ended
            q = point.update(s, green)
            readings.count = readings.count.copy()
            readings.occupied = readings.occupied.copy()
            readings.count[zones] = q
            readings.occupied[zones] = q > 0.5
        state = ctrl.step(readings)
        green = np.fromiter((c in "Gg" for c in state), bool, len(state))
        events += rec.observe(readings.time_s, state, ctrl.interval, machine.stats.max_outs)
        if progress is not None and s - last >= 3600:
            progress(s - last)
            last = s
    if progress is not None:
        progress(inputs.seconds - last)
    wall = time.perf_counter() - started
    det = np.isin(log.code, (81, 82)) & np.isin(log.param, np.array(model.channels))
    events += [Event(float(t), sid, int(c), int(p)) for t, c, p in zip(log.time_s[det], log.code[det], log.param[det])]
    events.sort(key=lambda e: (e.time_s, e.code, e.param))
    replayed = _table(events)
    layout = "  ".join("+".join(map(str, c)) for c in model.combos)
    return ReplayResult(sid, controller, layout, events, phase_stats(log), phase_stats(replayed), inputs.seconds,
                        wall, len(ctrl.monitor.violations))


def replay_own_signal(log: EventTable, intersection, controller: str, policy_file: str | None = None,
                      progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Replay a signal of ondaverde's own log through the core, on the intersection model that wrote it.

    The detectors are the intersection's own (channel ``k + 1`` is detector ``k``), the events come from
    :class:`controller.events.EventRecorder` as in the daemon, and the replay starts one second before the log's
    first event (the daemon logs a second's decision with the readings taken at its end). The log holds each
    detector's presence per second, not its counts or occupancy: counts are rebuilt as one per detector-on event
    and occupancy from the on/off times. A log begins with the controller's start-up when the daemon started
    with it: the replay starts as many seconds before the first begin green (1) as a fresh controller takes to
    show its first green, so the two run in step from the first second. A policy that reads presence only (``actuated``, ``fixed``) therefore
    sees what the logging controller saw and repeats its decisions (a test checks this on a simulated run);
    max-pressure and webster read counts and see an approximation.

    :param log: one signal's events, written by ondaverde (SQLite or its CSV export).
    :param intersection: the :class:`controller.intersection.Intersection` that wrote it.
    :param controller: policy name (see :data:`CONTROLLERS`).
    :param policy_file: the policy file for ``rl``.
    :param progress: called with the seconds replayed since the last call.
    """
    from controller.events import EventRecorder

    sid = intersection.id
    policy = _make_policy(controller, policy_file)
    ctrl = SignalController(intersection, policy, 1.0, 1.0)
    channels = list(range(1, len(intersection.detectors) + 1))
    greens = log.time_s[log.code == 1]
    if len(greens):  # align the fresh controller's start-up (all red, then its first green) with the log's
        start = float(np.floor(greens[0])) - _startup_steps(intersection, controller, policy_file)
        start = min(start, float(np.floor(log.time_s[0])) - 1.0)
    else:
        start = float(np.floor(log.time_s[0])) - 1.0
    last = float(np.ceil(log.time_s[-1]))
    inputs = RecordedDetectors(log, channels, start_s=start, end_s=last + 1.0)  # + the presence read at the end
    rec = EventRecorder(intersection, policy_termination_code(controller))
    machine = ctrl.machine
    events: list[Event] = []
    started = time.perf_counter()
    done = 0
    for s in range(inputs.seconds - 1):
        readings = inputs.reading(s)
        state = ctrl.step(readings)
        events += rec.observe(readings.time_s, ctrl.interval, machine.phase, state, machine.may_end_green(),
                              inputs.occupied[s + 1], machine.stats.max_outs)
        if progress is not None and s - done >= 3600:
            progress(s - done)
            done = s
    if progress is not None:
        progress(inputs.seconds - 1 - done)
    wall = time.perf_counter() - started
    events.sort(key=lambda e: (e.time_s, e.code, e.param))
    layout = f"1-{len(intersection.phases)} of the intersection that wrote the log"
    return ReplayResult(sid, controller, layout, events, phase_stats(log), phase_stats(_table(events)),
                        inputs.seconds - 1, wall, len(ctrl.monitor.violations))


def _startup_steps(intersection, controller: str, policy_file: str | None) -> int:
    """Steps a fresh controller with this policy and no traffic takes to show its first green (at most 60)."""
    from controller.policies.base import DetectorReadings

    ctrl = SignalController(intersection, _make_policy(controller, policy_file), 1.0, 1.0)
    empty = DetectorReadings.empty(len(intersection.detectors))
    for n in range(1, 61):
        empty.time_s = float(n)
        if any(c in "Gg" for c in ctrl.step(empty)):
            return n
    return 1


def _arrival_loops(model: NemaIntersection, channels: Sequence[DetectorChannel]) -> list[list[int]]:
    """Per link (NEMA phase), the detector indices whose actuations count its arrivals: advance loops, else
    stop-bar count loops, else presence loops."""
    index = {ch: k for k, ch in enumerate(model.channels) if ch}
    out = []
    for phase in model.phases:
        mine = [c for c in channels if c.phase == phase]
        for function in ("advance", "stop_bar_count", "presence"):
            chosen = [index[c.channel] for c in mine if c.function == function]
            if chosen:
                break
        out.append(chosen)
    return out


def _table(events: Sequence[Event]) -> EventTable:
    if not events:
        return EventTable.empty()
    return EventTable(np.array([e.time_s for e in events]), np.array([e.signal_id for e in events]),
                      np.array([e.code for e in events], np.int16), np.array([e.param for e in events], np.int16))


def replayed_table(results: Sequence[ReplayResult]) -> EventTable:
    """The replayed events of all signals as one table (sorted by signal, time, code, param)."""
    return _table([e for r in results for e in r.events]).sorted()


def write_replayed_csv(results: Sequence[ReplayResult], path) -> int:
    """Write the replayed event logs as ``Timestamp,SignalId,EventCode,EventParam`` (the daemon's CSV layout);
    returns the number of events.

    :param results: the replayed signals.
    :param path: the CSV file.
    """
    import csv

    from hw.eventlog import CSV_HEADER, format_timestamp

    n = 0
    try:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for r in results:
                for e in r.events:
                    w.writerow((format_timestamp(e.time_s), e.signal_id, e.code, e.param))
                    n += 1
    except OSError as exc:
        raise InputError(f"{path}: cannot write the replayed log ({exc.strerror})") from None
    return n


def result_record(result: ReplayResult) -> dict:
    """One replayed signal as a JSON-ready record (per phase: recorded and replayed stats; NaN as None)."""
    from dataclasses import asdict

    def stats(d: dict[int, PhaseStats]) -> dict:
        return {str(k): {f: (None if isinstance(v, float) and v != v else v) for f, v in asdict(x).items()}
                for k, x in d.items()}

    return {"signal": result.signal, "controller": result.controller, "phases": result.layout,
            "simulated_s": result.seconds, "wall_s": result.wall_s, "safety_faults": result.violations,
            "recorded": stats(result.recorded), "replayed": stats(result.replayed)}


def _f(x: float) -> str:
    return "-" if x != x else f"{x:.1f}"


def format_comparison(result: ReplayResult) -> str:
    """Recorded vs replayed, per NEMA phase, as a text table."""
    r = result
    lines = [f"signal {r.signal}: {r.seconds / 3600:.2f} h replayed with {r.controller} in {r.wall_s:.2f} s "
             f"({r.seconds / 3600 / max(r.wall_s, 1e-9):.1f} simulated hours per wall second), "
             f"{r.violations} safety faults; phases {r.layout}",
             f"{'phase':>5} | {'services':>15} | {'mean green s':>15} | {'mean split s':>15} | "
             f"{'gap/max/force-off recorded':>26} -> replayed"]
    for phase in sorted(set(r.recorded) | set(r.replayed)):
        a, b = r.recorded.get(phase, PhaseStats()), r.replayed.get(phase, PhaseStats())
        lines.append(f"{phase:>5} | {a.services:>6} -> {b.services:<6} | {_f(a.green_s):>6} -> {_f(b.green_s):<6} | "
                     f"{_f(a.split_s):>6} -> {_f(b.split_s):<6} | "
                     f"{f'{a.gap_outs}/{a.max_outs}/{a.force_offs}':>26} -> {b.gap_outs}/{b.max_outs}/{b.force_offs}")
    return "\n".join(lines)
