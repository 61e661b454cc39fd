"""The Modbus TCP register map of a signal cabinet (documented in ``docs/modbus-register-map.md``).

There is no standard Modbus map for traffic controllers, so this one is ours; every start address can be moved
per site with a YAML file (:meth:`ModbusMap.load`). One Modbus unit (device id) per intersection. Addresses are
0-based protocol addresses. Phase *k* on the wire is phase index *k - 1* in the core; bit 0 of a bitmask register
is phase 1, as in NTCIP's status groups.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

from controller.errors import InputError

#: phase slots on the wire (8 coils per command kind, 8 bits per status register)
PHASES = 8
#: detector channels
DETECTORS = 64
#: command word values (holding register ``command``)
COMMAND_RUN, COMMAND_FLASH, COMMAND_ALL_RED = 0, 1, 2


@dataclass(frozen=True)
class ModbusMap:
    """Start addresses of each block.

    Coils (read/write, function codes 1/5/15): ``hold`` 8 coils (phases 1-8), ``force_off`` 8, ``vehicle_call`` 8,
    ``pedestrian_call`` 8, ``omit`` 8, ``flash_request`` 1, ``preempt_request`` 8 (preempts 1-8).
    Discrete inputs (read-only, FC 2): ``detector`` 64 presence bits (channel *k* = the intersection's detector
    *k*), ``preempt_input`` 8, ``mmu_flash`` 1, ``cabinet_door`` 1, ``local_flash`` 1, ``priority_input`` 8 (transit
    priority detector inputs: input *k* on while a bus is checked in on phase *k*'s approach).
    Holding registers (read/write, FC 3/6/16): ``heartbeat`` (the central system changes it every period),
    ``command`` (0 run, 1 flash, 2 all-red), ``pattern``, ``sequence``.
    Input registers (read-only, FC 4): ``greens``, ``yellows``, ``reds``, ``walks``, ``ped_clears``, ``dont_walks``
    (phase bitmasks), ``flash_status`` (NTCIP unitFlashStatus), ``safety_state`` (0 normal, 1 fault flash),
    ``last_fault`` (0 none, 1 conflict monitor), ``heartbeat_echo``, ``control_status`` (NTCIP unitControlStatus:
    2 system control, 4 backup mode), ``clock`` (cabinet seconds mod 65536), ``phase_ons``, ``phase_nexts``,
    ``preempt_status`` (preempts being served, bit *k - 1* = preempt *k*), ``ped_calls`` (phases with a pedestrian
    push-button call registered and not yet served, as NTCIP phaseStatusGroupPedCalls),
    ``detector_count`` 64 registers (vehicles counted per channel, running, mod 65536), ``detector_queue`` 64
    (halted vehicles in a radar zone), ``detector_occupancy`` 64 (stop-bar occupancy of the last second, per mille).
    """

    hold: int = 0
    force_off: int = 8
    vehicle_call: int = 16
    pedestrian_call: int = 24
    omit: int = 32
    flash_request: int = 40
    preempt_request: int = 41
    detector: int = 0
    preempt_input: int = 64
    mmu_flash: int = 72
    cabinet_door: int = 73
    local_flash: int = 74
    priority_input: int = 75
    heartbeat: int = 0
    command: int = 1
    pattern: int = 2
    sequence: int = 3
    greens: int = 0
    yellows: int = 1
    reds: int = 2
    walks: int = 3
    ped_clears: int = 4
    dont_walks: int = 5
    flash_status: int = 6
    safety_state: int = 7
    last_fault: int = 8
    heartbeat_echo: int = 9
    control_status: int = 10
    clock: int = 11
    phase_ons: int = 12
    phase_nexts: int = 13
    preempt_status: int = 14
    ped_calls: int = 15
    detector_count: int = 16
    detector_queue: int = 80
    detector_occupancy: int = 144

    #: sizes of the blocks that are longer than one address
    SIZES = {"hold": PHASES, "force_off": PHASES, "vehicle_call": PHASES, "pedestrian_call": PHASES,
             "omit": PHASES, "detector": DETECTORS, "preempt_input": 8, "preempt_request": 8, "priority_input": 8,
             "detector_count": DETECTORS,
             "detector_queue": DETECTORS, "detector_occupancy": DETECTORS}
    TABLES = {"coils": ("hold", "force_off", "vehicle_call", "pedestrian_call", "omit", "flash_request",
                        "preempt_request"),
              "discrete_inputs": ("detector", "preempt_input", "mmu_flash", "cabinet_door", "local_flash",
                                  "priority_input"),
              "holding_registers": ("heartbeat", "command", "pattern", "sequence"),
              "input_registers": ("greens", "yellows", "reds", "walks", "ped_clears", "dont_walks", "flash_status",
                                  "safety_state", "last_fault", "heartbeat_echo", "control_status", "clock",
                                  "phase_ons", "phase_nexts", "preempt_status", "ped_calls", "detector_count", "detector_queue",
                                  "detector_occupancy")}

    def __post_init__(self) -> None:
        for table, names in self.TABLES.items():
            spans = sorted((getattr(self, n), getattr(self, n) + self.SIZES.get(n, 1), n) for n in names)
            for (a0, a1, n0), (b0, _, n1) in zip(spans, spans[1:]):
                if b0 < a1:
                    raise InputError(f"Modbus map: {n0} ({a0}..{a1 - 1}) overlaps {n1} (from {b0}) in the {table}")
            if spans[0][0] < 0 or spans[-1][1] > 65536:
                raise InputError(f"Modbus map: {table} addresses must lie in 0..65535")

    def size(self, table: str) -> int:
        """Addresses the table needs (its highest used address + 1)."""
        return max(getattr(self, n) + self.SIZES.get(n, 1) for n in self.TABLES[table])

    @classmethod
    def load(cls, path: Path | str | None) -> "ModbusMap":
        """The default map, with the start addresses a YAML file names (``{name: address}``) moved.

        :raises InputError: for a missing or malformed file, an unknown name, a bad address or overlapping blocks.
        """
        if path is None:
            return cls()
        from hw.yamlfile import read_yaml

        path = Path(path)
        data = read_yaml(path, "Modbus map file")
        if not isinstance(data, dict):
            raise InputError(f"{path}: a Modbus map is a mapping of block name to start address")
        known = {f.name for f in fields(cls)}
        for name, value in data.items():
            if name not in known:
                raise InputError(f"{path}: unknown Modbus block {name!r}; known: {', '.join(sorted(known))}")
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"{path}: {name} must be an integer address, not {value!r}")
        return cls(**{**asdict(cls()), **data})
