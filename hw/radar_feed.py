"""Radar tracks over Modbus TCP: the daemon's reader of an approach radar's vehicle tracks, and a virtual radar
(a pymodbus server) that publishes tracks, or garbage, for tests and software in the loop.

Layout (ours, as for the cabinet map: there is no standard one): input registers from ``address``, 30 track slots (120 registers: one read; Modbus allows 125) of
4 registers each: detector channel (1-based, the intersection's radar detector; 0 = empty slot), track id, range to
the stop bar in 0.1 m and speed in 0.01 m/s, both signed 16-bit (two's complement). The reader decodes whatever it
finds; judging a track plausible is the core's job (:class:`controller.radar.RadarWatch`).
"""

from __future__ import annotations

import logging

from controller.radar import Track
from hw.errors import FieldError
from hw.modbus_adapter import ModbusAdapter

#: track slots in the block, and registers per slot
SLOTS = 30
WORDS = 4


def _signed(word: int) -> int:
    return word - 65536 if word >= 32768 else word


def _word(value: float) -> int:
    """A signed 16-bit register value (clamped)."""
    return int(max(-32768, min(32767, round(value)))) % 65536


def encode_tracks(tracks: list[Track]) -> list[int]:
    """The register block for ``tracks`` (the first :data:`SLOTS`; the rest empty: give them nearest first)."""
    words = []
    for t in tracks[:SLOTS]:
        words += [t.channel + 1, t.track_id % 65536, _word(10 * t.range_m), _word(100 * t.speed_mps)]
    return words + [0] * (SLOTS * WORDS - len(words))


def decode_tracks(words: list[int]) -> list[Track]:
    """Tracks from a register block (empty slots skipped; values taken as they are)."""
    out = []
    for k in range(0, min(len(words), SLOTS * WORDS) - WORDS + 1, WORDS):
        channel, track_id, range_dm, speed_cms = words[k:k + WORDS]
        if channel:
            out.append(Track(channel - 1, track_id, _signed(range_dm) / 10.0, _signed(speed_cms) / 100.0))
    return out


class ModbusRadarFeed:
    """Reads one radar's tracks.

    :param host: radar (or cabinet) address.
    :param port: TCP port.
    :param unit: Modbus device id.
    :param address: first input register of the track block.
    :param timeout_s: seconds to wait for an answer.
    """

    def __init__(self, host: str, port: int, unit: int = 1, address: int = 0, timeout_s: float = 1.0) -> None:
        self.unit, self.address = unit, address
        self.adapter = ModbusAdapter(host, port, timeout_s=timeout_s)
        #: failed reads so far
        self.errors = 0

    async def read(self) -> list[Track]:
        """One scan: every track in the block.

        :raises FieldError: when the radar cannot be reached or refuses (the connection is closed; the next read
            reconnects).
        """
        try:
            if not self.adapter.connected:
                await self.adapter.connect()
            rr = await self.adapter._call("read of radar tracks", self.unit, "read_input_registers", self.address,
                                          count=SLOTS * WORDS)
        except FieldError:
            self.errors += 1
            await self.adapter.close()
            raise
        return decode_tracks(list(rr.registers))

    async def close(self) -> None:
        """Close the connection."""
        await self.adapter.close()


class VirtualRadar:
    """Radars as a Modbus TCP server on loopback, one device per intersection (ids ``unit``, ``unit + 1``, ...):
    :meth:`publish` puts tracks (or any words) in a device's block.

    :param host: address to bind.
    :param port: TCP port.
    :param unit: the first device id.
    :param units: how many devices.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 15030, unit: int = 1, units: int = 1) -> None:
        self.host, self.port, self.unit, self.units = host, port, unit, units
        self.server = None

    async def start(self) -> None:
        """Listen (returns once it does)."""
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        devices = [SimDevice(id=self.unit + k, simdata=(
            [SimData(0, count=1, values=False, datatype=DataType.BITS)],
            [SimData(0, count=1, values=False, datatype=DataType.BITS)],
            [SimData(0, count=1, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=SLOTS * WORDS, values=0, datatype=DataType.REGISTERS)])) for k in range(self.units)]
        self.server = ModbusTcpServer(devices, address=(self.host, self.port))
        await self.server.serve_forever(background=True)

    async def publish(self, words: list[int], device: int = 0) -> None:
        """Put ``words`` (e.g. :func:`encode_tracks`) in the track block of the ``device``-th radar (0-based)."""
        await self.server.async_setValues(self.unit + device, 4, 0,
                                          [int(w) % 65536 for w in words[:SLOTS * WORDS]])

    async def stop(self) -> None:
        """Close the server."""
        if self.server is not None:
            await self.server.shutdown()
            self.server = None
