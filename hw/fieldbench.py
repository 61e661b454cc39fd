"""A field bench in one process: a virtual Modbus controller (a real pymodbus server on loopback) on a scaled clock,
the live daemon driving it, and the means to inject faults between them: detector inputs, a radar feed, a link
that can be cut (a TCP relay), and direct access to the cabinet and the daemon's core. Used by the fault-injection
and flash-mode tests; every part is the production code, only the inputs are scripted.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import numpy as np

from controller.policies.base import DetectorReadings
from controller.policies.registry import make_policy
from hw.cabinet import FieldCabinet
from hw.daemon import Daemon, stop_tasks
from hw.daemon_config import parse_config
from hw.modbus_field import ModbusFieldServer
from hw.process import free_port


class Relay:
    """A TCP relay between the daemon and the controller: :meth:`cut` drops every connection and refuses new ones
    (a dead link) until :meth:`restore`.

    :param target_port: the controller's port on 127.0.0.1.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cut_now = False
        self._pairs: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self.server = None

    async def start(self) -> None:
        """Listen on :attr:`port`."""
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_now:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._pairs.append((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(4096):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        """Drop every connection; refuse new ones."""
        self.cut_now = True
        for a, b in self._pairs:
            a.close()
            b.close()
        self._pairs.clear()

    def restore(self) -> None:
        """Accept connections again."""
        self.cut_now = False

    async def stop(self) -> None:
        """Close the relay."""
        self.cut()
        if self.server is not None:
            self.server.close()


class FieldBench:
    """One intersection of a network: its virtual Modbus controller ticked at ``scale`` cabinet seconds per wall
    second, and the daemon driving it.

    :param folder: where the event log goes.
    :param network: network name (its first traffic light is used).
    :param scale: cabinet seconds per wall second.
    :param backup_s: the cabinet's backup timer, cabinet seconds.
    :param radar: give the daemon a radar feed (a :class:`~hw.radar_feed.VirtualRadar`; publish with
        :attr:`radar_words`).
    :param relay: put a :class:`Relay` between daemon and controller.
    :param status: serve the daemon's status endpoint (its address in :attr:`status`).
    :param policy: the daemon's policy.
    :param detector_health: the daemon's ``detector_health`` thresholds for the intersection (see
        :mod:`hw.daemon_config`), or None for the defaults.
    """

    def __init__(self, folder: Path, network: str = "single", scale: float = 40.0, backup_s: float = 10.0,
                 radar: bool = False, relay: bool = False, status: bool = False, policy: str = "actuated",
                 detector_health: dict | None = None) -> None:
        from envs.simulation import intersections_of
        from networks.catalog import load_network

        self.inter = intersections_of(load_network(network))[0]
        self.scale = scale
        self.cabinet = FieldCabinet(self.inter, make_policy("fixed"), 1.0, backup_s)
        self.field_port = free_port()
        self.server = ModbusFieldServer([self.cabinet], "127.0.0.1", self.field_port)
        self.relay = Relay(self.field_port) if relay else None
        self.radar = None
        self.log_file = folder / "events.sqlite"
        self.logs: list[str] = []
        #: per cabinet second: detector presence to feed the cabinet (None: no vehicle anywhere)
        self.presence = None
        #: per cabinet second: the radar's register block (None: leave it as it is)
        self.radar_words = None
        self.t = 0
        self._ticker: asyncio.Task | None = None
        self._daemon_task: asyncio.Task | None = None
        item = {"id": self.inter.id, "backend": "modbus", "unit": 1, "policy": policy, "timeout_s": 0.5,
                "address": f"127.0.0.1:{self.relay.port if relay else self.field_port}"}
        if detector_health is not None:
            item["detector_health"] = detector_health
        if radar:
            from hw.radar_feed import VirtualRadar

            self.radar = VirtualRadar(port=free_port())
            item["radar"] = f"127.0.0.1:{self.radar.port}"
        config = {"network": network, "cycle_s": 1.0 / scale, "event_log": str(self.log_file),
                  "intersections": [item]}
        if status:
            self.status = f"127.0.0.1:{free_port()}"
            config["status"] = self.status
        self.daemon = Daemon(parse_config(config, "bench"), log=self.logs.append)

    @property
    def central(self):
        """The daemon's side of the intersection (:class:`~hw.central.CentralIntersection`)."""
        return self.daemon.centrals[0]

    def status_row(self) -> dict:
        """The daemon's status of the intersection."""
        return self.daemon.status()["intersections"][0]

    async def run(self, script) -> None:
        """Start everything, await ``script(self)``, stop everything (the daemon releases the controller)."""
        await self.server.start()
        if self.radar is not None:
            await self.radar.start()
        if self.relay is not None:
            await self.relay.start()
        stop = asyncio.Event()
        ticker = self._ticker = asyncio.create_task(self._tick())
        daemon = self._daemon_task = asyncio.create_task(self.daemon.run(stop, handle_signals=False))
        try:
            await script(self)
        finally:
            stop.set()
            try:
                await asyncio.wait_for(daemon, 30)  # raises what ended the daemon, after the rest is stopped
            finally:
                await stop_tasks([ticker], timeout_s=5.0)
                if self.relay is not None:
                    await self.relay.stop()
                if self.radar is not None:
                    await self.radar.stop()
                await self.server.stop()

    async def _tick(self) -> None:
        n = len(self.inter.detectors)
        start = time.monotonic()
        before = np.zeros(n, dtype=bool)
        loops = np.array([d.kind in ("stopbar", "advance") for d in self.inter.detectors], dtype=bool)
        while True:
            readings = DetectorReadings.empty(n, float(self.t))
            if self.presence is not None:
                readings.occupied[:] = np.asarray(self.presence(self.t), dtype=bool)
                # the controller counts a vehicle at each rising edge of presence (its count registers)
                readings.count[:] = readings.occupied & ~before & loops
                before = readings.occupied.copy()
            if self.radar is not None and self.radar_words is not None:
                words = self.radar_words(self.t)
                if words is not None:
                    await self.radar.publish(words)
            await self.server.tick([readings])
            self.t += 1
            await asyncio.sleep(max(0.0, start + self.t / self.scale - time.monotonic()))

    def _check_running(self, wall_end: float) -> None:
        """Raise when the cabinet clock cannot move on: the ticker or the daemon ended (with its error as the
        cause), or the wall-clock bound passed."""
        for name, task in (("cabinet ticker", self._ticker), ("daemon", self._daemon_task)):
            if task is not None and task.done():
                error = None if task.cancelled() else task.exception()
                raise RuntimeError(f"the {name} stopped at cabinet second {self.t}: {error!r}") from error
        if time.monotonic() > wall_end:
            raise TimeoutError(f"cabinet clock stuck at {self.t} s")

    def _wall_bound(self, cabinet_s: float) -> float:
        """The latest monotonic time a wait of ``cabinet_s`` cabinet seconds may take: ten times its scaled length,
        and at least 60 s (a loaded machine runs the cabinet slower than its scale, never stops it)."""
        return time.monotonic() + max(60.0, 10.0 * max(0.0, cabinet_s) / self.scale)

    async def until(self, cabinet_s: float) -> None:
        """Wait until the cabinet clock reaches ``cabinet_s``.

        :raises TimeoutError: when the clock stops moving (see :meth:`_wall_bound`).
        :raises RuntimeError: when the ticker or the daemon ended.
        """
        wall_end = self._wall_bound(cabinet_s - self.t)
        while self.t < cabinet_s:
            self._check_running(wall_end)
            await asyncio.sleep(0.01)

    async def wait_for(self, predicate, cabinet_s: float) -> bool:
        """Wait until ``predicate()`` or ``cabinet_s`` more cabinet seconds; returns its last value.

        :raises TimeoutError: when the clock stops moving (see :meth:`_wall_bound`).
        :raises RuntimeError: when the ticker or the daemon ended.
        """
        end = self.t + cabinet_s
        wall_end = self._wall_bound(cabinet_s)
        while self.t < end:
            if predicate():
                return True
            self._check_running(wall_end)
            await asyncio.sleep(0.01)
        return bool(predicate())

    def events(self) -> list[tuple[float, int, int]]:
        """(timestamp, code, param) of the logged events, in order (read after :meth:`run`)."""
        db = sqlite3.connect(self.log_file)
        try:
            return db.execute("SELECT timestamp, code, param FROM events ORDER BY timestamp, id").fetchall()
        finally:
            db.close()
