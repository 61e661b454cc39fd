"""The live daemon: one asyncio process driving many field intersections through the core, with a durable event
log and a read-only status endpoint.

Each intersection is its own task with its own link (:class:`~hw.central.CentralIntersection`): a failing link
only makes that task log and reconnect, the others keep their cycle. On stop (SIGTERM, SIGINT, or the caller's
event) every controller is handed back to its local timing (holds, force-offs, calls and omits released, an
NTCIP pattern command cleared) and the log is flushed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from dataclasses import dataclass, field, replace

from controller.detector_health import DetectorHealth
from controller.events import EventRecorder
from controller.flash import major_vehicle_links
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
        self.states: list[IntersectionState] = []
        for cfg in config.intersections:
            inter = by_id[cfg.id]
            link = FieldLink(_adapter(cfg, inter, config.cycle_s), log=lambda m, i=cfg.id: self._log(f"{i}: {m}"))
            self.centrals.append(CentralIntersection(inter, _policy(cfg, network), link, cfg.unit,
                                                     DetectorHealth(inter)))
            self.recorders.append(EventRecorder(inter))
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
        False: the controllers are gone, as at the end of a simulation) and flush the log."""
        self.stop_event = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop_event.set)
        server = await self._status_server()
        tasks = [asyncio.create_task(self._serve(k)) for k in range(len(self.centrals))]
        tasks.append(asyncio.create_task(self._flush_every(1.0)))
        try:
            await self.stop_event.wait()
        finally:
            if server is not None:
                server.close()  # no new status requests while stopping
            for t in tasks:
                t.cancel()
            # every step of the stop is bounded: the daemon exits even if a link or a client hangs
            await asyncio.wait({*tasks}, timeout=5)
            if release:
                try:
                    await asyncio.wait_for(self.release(), timeout=15)
                except asyncio.TimeoutError:
                    self._log("stopping: releasing the controllers took over 15 s; the rest fall back to local "
                              "timing when their backup timers lapse")
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

    async def _serve(self, k: int) -> None:
        central, state = self.centrals[k], self.states[k]
        poll_s = self.config.cycle_s / 4  # see the controller's clock move within a quarter cycle
        while True:
            self._schedule(k)
            started = time.perf_counter()
            decided = await central.cycle()
            state.link_up = central.link.up
            state.in_control = central.in_control
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
            ctrl.request_flash(major_vehicle_links(ctrl.intersection))
            self._scheduled[k] = True
            self._log(f"{ctrl.intersection.id}: scheduled night flash begins")
        elif not inside and self._scheduled[k]:
            ctrl.release_flash()
            self._scheduled[k] = False
            self._log(f"{ctrl.intersection.id}: scheduled night flash ends")

    def _record(self, k: int) -> None:
        central, state = self.centrals[k], self.states[k]
        ctrl, m = central.controller, central.controller.machine
        clock, inputs = central.reported[-1]
        del central.reported[:-3]  # the daemon runs for days: keep only what the next cycle needs
        del central.commanded[:-3]
        # event times: wall time at the first decision plus the controller's own seconds since then; a clock
        # that went back (a restarted controller, a wrapped counter) starts a new base
        base = self._clock_base[k]
        if base is None or clock < base[0] + base[2]:
            base = (clock, time.time() if base is None else base[1] + base[2] + 1.0, 0)
        base = (base[0], base[1], clock - base[0])
        self._clock_base[k] = base
        at = base[1] + base[2]
        self._pending += self.recorders[k].observe(at, ctrl.interval, m.phase, ctrl.state, m.may_end_green(),
                                                   inputs.presence, m.stats.max_outs,
                                                   flash_code=5 if ctrl.monitor.in_flash else 3)
        if ctrl.events:  # detector faults and restores (their times are the controller's clock)
            self._pending += [replace(e, time_s=at) for e in ctrl.events]
            ctrl.events.clear()
        state.failed_detectors = int(ctrl.health.failed.sum()) if ctrl.health is not None else 0
        state.decisions += 1
        state.phase, state.interval, state.clock_s = m.phase + 1, ctrl.interval.value, clock
        state.faults = len(ctrl.monitor.violations)

    async def _flush_every(self, period_s: float) -> None:
        while True:
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

    # ------------------------------------------------------------------ status
    def status(self) -> dict:
        """Current mode, phase, link and counters per intersection."""
        out = []
        for s in self.states:
            ms = sorted(s.decision_ms)
            out.append({"id": s.id, "backend": s.backend, "address": s.address, "link_up": s.link_up,
                        "in_control": s.in_control,
                        "mode": ("flash" if s.interval == "flash" else "central") if s.in_control else "local",
                        "phase": s.phase, "interval": s.interval, "clock_s": s.clock_s, "decisions": s.decisions,
                        "link_errors": s.link_errors, "lost_control": s.lost_control, "faults": s.faults,
                        "failed_detectors": s.failed_detectors,
                        "decision_ms_p50": ms[len(ms) // 2] if ms else None})
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
                                ("ondaverde_decision_latency_ms_p50", "gauge", "decision_ms_p50")):
            lines.append(f"# TYPE {name} {kind}")
            for s in self.status()["intersections"]:
                value = s[key]
                if value is not None:
                    lines.append(f'{name}{{intersection="{s["id"]}"}} {float(value):g}')
        return "\n".join(lines) + "\n"

    async def _status_server(self):
        if self.config.status is None:
            return None
        host, port = self.config.status

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = (await asyncio.wait_for(reader.readline(), 5)).decode("latin-1").split()
                path = request[1] if len(request) > 1 else "/"
                if request[:1] != ["GET"]:
                    code, kind, body = "405 Method Not Allowed", "text/plain", "read-only\n"
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
