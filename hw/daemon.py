"""The live daemon: one asyncio process driving many field intersections through the core, with a durable event
log and a read-only status endpoint.

Each intersection is its own task with its own link (:class:`~hw.central.CentralIntersection`): a failing link
only makes that task log and reconnect, the others keep their cycle. On stop (SIGTERM, SIGINT, or the caller's
event) every controller is handed back to its local timing (holds, force-offs, calls and omits released, an
NTCIP pattern command cleared) and the log is flushed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import sys
import time
import urllib.parse
from dataclasses import dataclass, field, replace

import numpy as np

from controller.detector_health import DetectorHealth
from controller.events import Event, EventCode, EventRecorder, policy_termination_code
from controller.dilemma_zone import DilemmaZoneGuard
from controller.flash_modes import FlashModes
from controller.radar import RadarWatch
from controller.intersection import Intersection
from hw.cabinet import PhaseCommands
from hw.central import CentralIntersection, FieldLink
from hw.daemon_config import DaemonConfig, IntersectionConfig
from hw.errors import FieldError
from hw.eventlog import EventLog


@dataclass
class IntersectionState:
    """What the status endpoint shows of one intersection."""

    id: str
    backend: str
    address: str
    link_up: bool = False
    in_control: bool = False
    phase: int | None = None
    interval: str | None = None
    clock_s: int | None = None
    decisions: int = 0
    link_errors: int = 0
    lost_control: int = 0
    faults: int = 0
    failed_detectors: int = 0
    flash_reason: str | None = None
    radar_dropped: int = 0
    radar_failed: int = 0
    radar_errors: int = 0
    dilemma_holds: int = 0
    decision_ms: list[float] = field(default_factory=list)


def _adapter(cfg: IntersectionConfig, intersection: Intersection, cycle_s: float):
    if cfg.backend == "modbus":
        from hw.modbus_adapter import ModbusAdapter
        from hw.modbus_map import ModbusMap

        return ModbusAdapter(cfg.host, cfg.port, ModbusMap.load(cfg.modbus_map), cfg.timeout_s, cfg.retries)
    from hw.ntcip_adapter import NtcipAdapter
    from hw.ntcip_field import SnmpAccess

    s = cfg.snmp
    return NtcipAdapter(cfg.host, cfg.port, SnmpAccess(s.read_community, s.write_community, s.user, s.auth_key,
                                                       s.priv_key), s.version, cfg.timeout_s, cfg.retries,
                        period_s=max(cycle_s, 0.5),
                        loop_detectors=[d.kind in ("stopbar", "advance") for d in intersection.detectors])


def _policy(cfg: IntersectionConfig, network):
    from controller.policies.learned import LearnedPolicy
    from controller.policies.registry import make_policy
    from envs.runner import policy_file_for

    if cfg.policy == "rl":
        from pathlib import Path

        return LearnedPolicy(policy_file_for(network, Path(cfg.policy_file) if cfg.policy_file else None))
    return make_policy(cfg.policy)


async def stop_tasks(tasks: list[asyncio.Task], timeout_s: float) -> set[asyncio.Task]:
    """Cancel ``tasks`` and wait for them to end, cancelling again while any still runs: on Python 3.11
    ``asyncio.wait_for`` (used inside pymodbus) can swallow a cancellation that arrives as its awaited reply does,
    and the task then carries on. Returns the tasks still running after ``timeout_s`` seconds (wall clock)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    pending = {t for t in tasks if not t.done()}
    while pending and loop.time() < end:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.2, max(0.0, end - loop.time())))
    return pending


class Daemon:
    """Drives the configured intersections until stopped.

    :param config: the checked configuration.
    :param log: called with each one-line message (default: standard error).
    :param minute_of_day: the local time, minutes after midnight (for scheduled flash; default: the wall clock).
    """

    def __init__(self, config: DaemonConfig, log=None, minute_of_day=None) -> None:
        from envs.simulation import intersections_of
        from networks.catalog import load_network

        self.config = config
        self._minute_of_day = minute_of_day or (lambda: (lambda t: 60 * t.tm_hour + t.tm_min)(time.localtime()))
        self._scheduled = [False] * len(config.intersections)
        self._log = log or (lambda message: print(f"ondaverde run: {message}", file=sys.stderr, flush=True))
        network = load_network(config.network)
        by_id = {i.id: i for i in intersections_of(network)}
        self.centrals: list[CentralIntersection] = []
        self.recorders: list[EventRecorder] = []
        #: per intersection, why it flashes (scheduled, manual, fault): :mod:`controller.flash_modes`
        self.modes: list[FlashModes] = []
        self._calling: list[np.ndarray] = []
        #: per intersection with a radar: its feed and the watch that screens its tracks
        self.radars: dict[int, tuple] = {}
        self._radar_read = [0.0] * len(config.intersections)
        self._was_in_control: list[bool | None] = [None] * len(config.intersections)
        self._last_at: list[float | None] = [None] * len(config.intersections)
        self.states: list[IntersectionState] = []
        for cfg in config.intersections:
            inter = by_id[cfg.id]
            link = FieldLink(_adapter(cfg, inter, config.cycle_s), log=lambda m, i=cfg.id: self._log(f"{i}: {m}"))
            self.centrals.append(CentralIntersection(inter, _policy(cfg, network), link, cfg.unit,
                                                     DetectorHealth(inter, cfg.detector_health)))
            self.centrals[-1].on_step = functools.partial(self._observe, len(self.centrals) - 1)
            self.centrals[-1].controller.modes.configure(list(cfg.preemption or ()), cfg.transit_priority)
            self.recorders.append(EventRecorder(inter, policy_termination_code(cfg.policy)))
            self.modes.append(FlashModes(inter))
            # the detectors that place calls: when every one has failed, the intersection flashes
            self._calling.append(np.array([d.kind != "exit" for d in inter.detectors], dtype=bool))
            if cfg.radar is not None:  # tracks feed dilemma-zone protection and approach-speed records
                from hw.radar_feed import ModbusRadarFeed

                self.radars[len(self.centrals) - 1] = (ModbusRadarFeed(cfg.radar[0], cfg.radar[1], cfg.radar_unit,
                                                                       timeout_s=cfg.timeout_s), RadarWatch(inter))
                self.centrals[-1].controller.dilemma = DilemmaZoneGuard(inter)
            self.states.append(IntersectionState(cfg.id, cfg.backend, f"{cfg.host}:{cfg.port}"))
        self.events = EventLog(config.event_log)
        self.events_written = 0
        self._pending: list = []
        #: per intersection: (controller clock at the base, wall time at the base, seconds since the base)
        self._clock_base: list[tuple[int, float, int] | None] = [None] * len(self.centrals)
        self.stop_event: asyncio.Event | None = None

    # ------------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event | None = None, handle_signals: bool = True,
                  release: bool = True) -> None:
        """Serve until ``stop`` is set (or SIGTERM/SIGINT); then release every controller (unless ``release`` is
        False: the controllers are gone, as at the end of a simulation) and flush the log.

        :raises Exception: what ended one of the daemon's own tasks early (a defect, never field trouble, which the
            links absorb), after the same orderly stop: the controllers go back to their local timing rather than
            wait for their backup timers with nobody driving them.
        """
        self.stop_event = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop_event.set)
        server = await self._status_server()
        tasks = [asyncio.create_task(self._serve(k)) for k in range(len(self.centrals))]
        tasks.append(asyncio.create_task(self._flush_every(1.0)))
        stopping = asyncio.create_task(self.stop_event.wait())
        crashed: BaseException | None = None
        try:
            # a task that ends before the stop is a defect: the daemon stops (releasing every controller to its
            # local timing) and raises it, rather than keep running with an intersection nobody drives
            done, _ = await asyncio.wait({stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is stopping or t.cancelled():
                    continue
                error = t.exception()
                if error is None and self.stop_event.is_set():
                    continue  # a serving loop that saw the stop at once with the stop task: as asked
                crashed = error or RuntimeError("a daemon task ended on its own")
                self._log(f"stopping: internal error in the daemon ({crashed!r}); releasing the controllers")
                break
        finally:
            stopping.cancel()
            if server is not None:
                server.close()  # no new status requests while stopping
            self.stop_event.set()  # the serving loops end at their next turn even if a cancellation is lost
            # every step of the stop is bounded: the daemon exits even if a link or a client hangs
            left = await stop_tasks(tasks, timeout_s=5.0)
            if left:
                self._log(f"stopping: {len(left)} daemon task(s) still running after 5 s; releasing anyway")
            if release:
                try:
                    await asyncio.wait_for(self.release(), timeout=15)
                except asyncio.TimeoutError:
                    self._log("stopping: releasing the controllers took over 15 s; the rest fall back to local "
                              "timing when their backup timers lapse")
            for feed, watch in self.radars.values():
                await feed.close()
                self.events.append_speeds(watch.records + watch.speeds.flush())  # the period under way too
            self.flush()
            self.events.close()
            if server is not None:
                try:
                    await asyncio.wait_for(server.wait_closed(), timeout=2)
                except asyncio.TimeoutError:
                    pass
            if handle_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        if crashed is not None:
            raise crashed

    async def _serve(self, k: int) -> None:
        central, state = self.centrals[k], self.states[k]
        poll_s = self.config.cycle_s / 4  # see the controller's clock move within a quarter cycle
        while not self.stop_event.is_set():
            self._schedule(k)
            self._fault_flash(k)
            await self._radar(k)
            started = time.perf_counter()
            decided = await central.cycle()
            state.link_up = central.link.up
            state.in_control = central.in_control
            self._control_change(k)
            state.link_errors = len(central.link.history.errors)
            state.lost_control = central.lost_control
            if decided:
                state.decision_ms.append(1000 * (time.perf_counter() - started))
                del state.decision_ms[:-200]
                self._record(k)
            await asyncio.sleep(poll_s)

    def _schedule(self, k: int) -> None:
        """Scheduled night flash: yellow to the major street, red to the minor (the core times entry and exit)."""
        window = self.config.intersections[k].night_flash
        if window is None:
            return
        start, end = window
        now = self._minute_of_day()
        inside = start <= now < end if start < end else (now >= start or now < end)
        ctrl = self.centrals[k].controller
        if inside and not self._scheduled[k]:
            self._scheduled[k] = True
            self._log(f"{ctrl.intersection.id}: scheduled night flash begins")
        elif not inside and self._scheduled[k]:
            self._scheduled[k] = False
            self._log(f"{ctrl.intersection.id}: scheduled night flash ends")
        self.modes[k].set("scheduled", self._scheduled[k])
        self._apply_flash(k)

    def _fault_flash(self, k: int) -> None:
        """Fault flash: the core's safety monitor latched, the controller reports MMU/fault flash, or every detector
        that places calls has failed (all red; the core times the entry and exit)."""
        central, modes = self.centrals[k], self.modes[k]
        ctrl = central.controller
        modes.set("monitor", ctrl.monitor.in_flash, ctrl.monitor.reason if ctrl.monitor.in_flash else "")
        inputs = central.reported[-1][1] if central.reported else None
        if central.link.up and inputs is not None:  # with the link down the last report stands
            mmu = inputs.in_fault
            modes.set("mmu", mmu, f"unitFlashStatus {inputs.status.flash_status}" if mmu else "")
        health, calling = ctrl.health, self._calling[k]
        lost = health is not None and calling.any() and bool(health.failed[calling].all())
        modes.set("detection", lost, f"{int(calling.sum())} detectors failed" if lost else "")
        self._apply_flash(k)

    async def _radar(self, k: int) -> None:
        """Once a cycle: read the radar's tracks, drop and count implausible ones, give the rest to dilemma-zone
        protection; log radar channel faults (84/83) and keep approach-speed records. A radar that cannot be read
        only leaves protection without tracks."""
        if k not in self.radars or time.monotonic() - self._radar_read[k] < 0.9 * self.config.cycle_s:
            return
        self._radar_read[k] = time.monotonic()
        feed, watch = self.radars[k]
        ctrl, state = self.centrals[k].controller, self.states[k]
        try:
            tracks = await asyncio.wait_for(feed.read(), timeout=max(2 * feed.adapter.timeout_s, 0.5))
        except Exception as exc:  # noqa: BLE001 - whatever the radar does, it never stops the intersection's control
            if not isinstance(exc, FieldError):
                feed.errors += 1
            if feed.errors in (1, 10) or feed.errors % 100 == 0:
                self._log(f"{ctrl.intersection.id}: radar: {exc or 'no answer'} (dilemma-zone protection without "
                          f"tracks; {feed.errors} failed reads)")
            await feed.close()
            ctrl.dilemma.update([])
            state.radar_errors = feed.errors
            return
        clock = self.centrals[k].elapsed_s  # unwrapped: the watch's windows need a time that never goes back
        ctrl.dilemma.update(watch.receive(float(clock), tracks))
        if watch.events:
            at = self._last_at[k] if self._last_at[k] is not None else time.time()
            self._pending += [replace(e, time_s=at) for e in watch.events]
            watch.events.clear()
        if watch.records:
            self.events.append_speeds(watch.records)
            watch.records.clear()
        state.radar_dropped, state.radar_failed = watch.dropped, len(watch.failed)
        state.dilemma_holds = ctrl.dilemma.holds

    def set_manual_flash(self, signal_id: str, on: bool) -> bool:
        """Manual flash by command (on or off) for intersection ``signal_id``; False when there is no such one."""
        for k, cfg in enumerate(self.config.intersections):
            if cfg.id == signal_id:
                self.modes[k].set("manual", on)
                self._log(f"{signal_id}: manual flash {'on' if on else 'off'} by command")
                self._apply_flash(k)
                return True
        return False

    def _apply_flash(self, k: int) -> None:
        modes = self.modes[k]
        if modes.apply(self.centrals[k].controller):
            described = modes.describe()
            self._log(f"{self.config.intersections[k].id}: "
                      + (f"flash requested: {described}" if described else "flash released"))
        self.states[k].flash_reason = modes.describe()

    def _control_change(self, k: int) -> None:
        """Log unit control status changes (155): 2 when the controller follows the central system, 4 (backup)
        when it stops (link lost, backup timer lapsed, fault)."""
        now, was = self.centrals[k].in_control, self._was_in_control[k]
        if now != was and (was is not None or now):
            at = self._last_at[k] if self._last_at[k] is not None else time.time()
            self._pending.append(Event(at, self.config.intersections[k].id,
                                       int(EventCode.UNIT_CONTROL_STATUS_CHANGE), 2 if now else 4))
        self._was_in_control[k] = now

    def _record(self, k: int) -> None:
        central, state = self.centrals[k], self.states[k]
        ctrl, m = central.controller, central.controller.machine
        clock = central.reported[-1][0]
        del central.reported[:-3]  # the daemon runs for days: keep only what the next cycle needs
        del central.commanded[:-3]
        state.failed_detectors = int(ctrl.health.failed.sum()) if ctrl.health is not None else 0
        state.decisions += 1
        state.phase, state.interval, state.clock_s = m.phase + 1, ctrl.interval.value, clock
        state.faults = len(ctrl.monitor.violations)

    def _observe(self, k: int, clock: int, inputs) -> None:
        """After each core step (catch-up steps of a late poll too): the events of that cabinet second."""
        ctrl = self.centrals[k].controller
        m = ctrl.machine
        # event times: wall time at the first decision plus the controller's own seconds since then; a clock
        # that went back (a restarted controller, a wrapped counter) starts a new base
        base = self._clock_base[k]
        if base is None or clock < base[0] + base[2]:
            base = (clock, time.time() if base is None else base[1] + base[2] + 1.0, 0)
        base = (base[0], base[1], clock - base[0])
        self._clock_base[k] = base
        at = base[1] + base[2]
        self._last_at[k] = at
        modes = self.modes[k]
        # no source in force while still flashing: a released flash timing its minimum or exit keeps its code
        code = modes.code if modes.reason is not None else (5 if ctrl.monitor.in_flash else None)
        self._pending += self.recorders[k].observe(at, ctrl.interval, m.phase, ctrl.state, m.may_end_green(),
                                                   inputs.presence, m.stats.max_outs, flash_code=code)
        if ctrl.events:  # detector faults and restores (their times are the controller's clock)
            self._pending += [replace(e, time_s=at) for e in ctrl.events]
            ctrl.events.clear()

    async def _flush_every(self, period_s: float) -> None:
        while not self.stop_event.is_set():
            await asyncio.sleep(period_s)
            self.flush()

    def flush(self) -> None:
        """Commit the events recorded so far."""
        if self._pending:
            pending, self._pending = self._pending, []
            self.events_written += self.events.append(pending)

    async def release(self) -> None:
        """Hand every reachable controller back to its local timing."""
        async def one(central: CentralIntersection) -> None:
            adapter = central.link.adapter
            for attempt in (1, 2):
                try:
                    # a fresh connection: the cycle cancelled on stop may have left a request in flight on the old one
                    await adapter.connect()
                    await adapter.write(central.unit, PhaseCommands(), central.heartbeat)
                    if hasattr(adapter, "command_pattern"):
                        await adapter.command_pattern(0)
                    break
                except FieldError as exc:
                    if attempt == 2:
                        self._log(f"{central.intersection.id}: could not release ({exc}); it falls back to local "
                                  f"timing when its backup timer lapses")
                finally:
                    await adapter.close()

        await asyncio.gather(*(one(c) for c in self.centrals))

    def command_preempt(self, intersection_id: str, number: int, active: bool) -> None:
        """Call (``active``) or release preempt ``number`` at an intersection: sent with its commands every cycle
        (Modbus preempt coil, NTCIP preemptControlState); the cabinet runs the sequence.

        :raises KeyError: for an intersection the daemon does not drive.
        """
        central = next(c for c in self.centrals if c.intersection.id == intersection_id)
        (central.preempt_commands.add if active else central.preempt_commands.discard)(int(number))

    def transit_check_in(self, intersection_id: str, bus: str, phase: int, lateness_s: float | None = None) -> None:
        """A bus checks in for priority on ``phase`` (1-based) at an intersection configured for it."""
        ctrl = next(c for c in self.centrals if c.intersection.id == intersection_id).controller
        if ctrl.modes.priority is not None:
            ctrl.modes.priority.check_in(bus, phase - 1, ctrl.modes.time_s, lateness_s)

    def transit_check_out(self, intersection_id: str, bus: str) -> None:
        """A bus checks out (passed the stop bar) at an intersection."""
        ctrl = next(c for c in self.centrals if c.intersection.id == intersection_id).controller
        if ctrl.modes.priority is not None:
            ctrl.modes.priority.check_out(bus, ctrl.modes.time_s)

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        """Current mode, phase, link and counters per intersection."""
        out = []
        for s in self.states:
            ms = sorted(s.decision_ms)
            flashing = s.interval == "flash" or s.flash_reason is not None
            out.append({"id": s.id, "backend": s.backend, "address": s.address, "link_up": s.link_up,
                        "in_control": s.in_control,
                        "mode": "flash" if flashing else "central" if s.in_control else "local",
                        "flashing": flashing, "flash_reason": s.flash_reason,
                        "radar_dropped": s.radar_dropped, "radar_failed_channels": s.radar_failed,
                        "radar_errors": s.radar_errors, "dilemma_holds": s.dilemma_holds,
                        "phase": s.phase, "interval": s.interval, "clock_s": s.clock_s, "decisions": s.decisions,
                        "link_errors": s.link_errors, "lost_control": s.lost_control, "faults": s.faults,
                        "failed_detectors": s.failed_detectors,
                        "decision_ms_p50": ms[len(ms) // 2] if ms else None})
        for entry, central in zip(out, self.centrals):  # preemption and transit priority, where configured
            modes = central.controller.modes
            p, t = modes.preemption, modes.priority
            entry.update(preempt=p.stage.value if p is not None else None,
                         preemptions=p.entries if p is not None else None,
                         tsp_services=t.services if t is not None else None)
        return {"intersections": out, "events_written": self.events_written}

    def metrics(self) -> str:
        """Prometheus text exposition of the counters."""
        lines = []
        for name, kind, key in (("ondaverde_decisions_total", "counter", "decisions"),
                                ("ondaverde_link_errors_total", "counter", "link_errors"),
                                ("ondaverde_lost_control_total", "counter", "lost_control"),
                                ("ondaverde_safety_faults_total", "counter", "faults"),
                                ("ondaverde_link_up", "gauge", "link_up"),
                                ("ondaverde_failed_detectors", "gauge", "failed_detectors"),
                                ("ondaverde_flash", "gauge", "flashing"),
                                ("ondaverde_radar_dropped_tracks_total", "counter", "radar_dropped"),
                                ("ondaverde_radar_failed_channels", "gauge", "radar_failed_channels"),
                                ("ondaverde_dilemma_zone_holds_total", "counter", "dilemma_holds"),
                                ("ondaverde_preemptions_total", "counter", "preemptions"),
                                ("ondaverde_tsp_services_total", "counter", "tsp_services"),
                                ("ondaverde_decision_latency_ms_p50", "gauge", "decision_ms_p50")):
            lines.append(f"# TYPE {name} {kind}")
            for s in self.status()["intersections"]:
                value = s[key]
                if value is not None:
                    lines.append(f'{name}{{intersection="{s["id"]}"}} {float(value):g}')
        return "\n".join(lines) + "\n"

    def _command(self, path: str, peer: str) -> tuple[str, str, str]:
        """A command on the status endpoint: ``POST /flash/ID/on`` or ``/off``, taken only from this machine
        (the loopback address is the authentication: the endpoint reads everything else only)."""
        if peer not in ("127.0.0.1", "::1"):
            return "403 Forbidden", "text/plain", "commands are taken from this machine (loopback) only\n"
        parts = path.strip("/").split("/")
        if parts[0] == "preempt":
            return self._preempt_command(parts)
        if len(parts) != 3 or parts[0] != "flash" or parts[2] not in ("on", "off"):
            return "404 Not Found", "text/plain", "POST /flash/ID/on or /flash/ID/off\n"
        parts[1] = urllib.parse.unquote(parts[1])
        if not self.set_manual_flash(parts[1], parts[2] == "on"):
            return "404 Not Found", "text/plain", f"no intersection {parts[1]!r} in this daemon\n"
        k = [c.id for c in self.config.intersections].index(parts[1])
        return "200 OK", "application/json", json.dumps({"id": parts[1], "manual_flash": parts[2] == "on",
                                                          "flash_reason": self.modes[k].describe()}) + "\n"

    def _preempt_command(self, parts: list[str]) -> tuple[str, str, str]:
        """``POST /preempt/ID/N/on`` or ``/off``: call or release preempt N at intersection ID."""
        usage = "POST /preempt/ID/N/on or /preempt/ID/N/off (N: a configured preempt number)\n"
        if len(parts) != 4 or parts[3] not in ("on", "off") or not parts[2].isdigit():
            return "404 Not Found", "text/plain", usage
        light, number = urllib.parse.unquote(parts[1]), int(parts[2])
        central = next((c for c in self.centrals if c.intersection.id == light), None)
        preemption = central.controller.modes.preemption if central is not None else None
        if preemption is None or number not in preemption.plans:
            return "404 Not Found", "text/plain", f"no preempt {number} configured at {light!r}\n"
        most = getattr(central.link.adapter, "preempts", None)  # NTCIP: the controller's maxPreempts, once connected
        if most is not None and central.link.adapter.connected and number > most and parts[3] == "on":
            return ("409 Conflict", "text/plain",
                    f"preempt {number} at {light!r}: its controller has {most} preempt(s) (NTCIP maxPreempts)\n")
        self.command_preempt(light, number, parts[3] == "on")
        return "200 OK", "application/json", json.dumps({"id": light, "preempt": number,
                                                          "called": parts[3] == "on"}) + "\n"

    async def _status_server(self):
        if self.config.status is None:
            return None
        host, port = self.config.status

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1").split()
                path = request[1] if len(request) > 1 else "/"
                if request[:1] == ["POST"]:
                    peer = writer.get_extra_info("peername")
                    code, kind, body = self._command(path, peer[0] if peer else "")
                elif request[:1] != ["GET"]:
                    code, kind, body = "405 Method Not Allowed", "text/plain", "GET or POST /flash/ID/on|off\n"
                elif path == "/metrics":
                    code, kind, body = "200 OK", "text/plain; version=0.0.4", self.metrics()
                elif path in ("/", "/status"):
                    code, kind, body = "200 OK", "application/json", json.dumps(self.status()) + "\n"
                else:
                    code, kind, body = "404 Not Found", "text/plain", "try /status or /metrics\n"
                data = body.encode()
                writer.write(f"HTTP/1.0 {code}\r\nContent-Type: {kind}\r\nContent-Length: {len(data)}\r\n\r\n"
                             .encode() + data)
                await writer.drain()
            except (asyncio.TimeoutError, ConnectionError):
                pass
            finally:
                writer.close()

        try:
            return await asyncio.start_server(answer, host, port)
        except OSError as exc:
            raise FieldError(f"status endpoint {host}:{port}: cannot listen ({exc.strerror or exc})") from None
