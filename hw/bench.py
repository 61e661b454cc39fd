"""``ondaverde bench hw``: loopback round trips of a full read-decide-write cycle against a virtual field
controller in another process, for one intersection and for many polled concurrently from one process.

A cycle is what the central side does every second for an intersection: read its status and detectors, run the
core (policy, phase machine, monitor), write the commands and heartbeat and read the coils back. The baseline,
measured in the same command, is a bare one-register read: the protocol's own round trip on this machine.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np


def _percentiles(samples_s: list[float]) -> dict:
    ms = np.array(samples_s) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "cycles": len(ms)}


def _adapter(protocol: str, port: int, k: int, inter):
    """The adapter of intersection ``k``: Modbus units share one server, NTCIP agents have a port each."""
    from hw.modbus_adapter import ModbusAdapter
    from hw.ntcip_adapter import NtcipAdapter

    if protocol == "modbus":
        return ModbusAdapter("127.0.0.1", port)
    return NtcipAdapter("127.0.0.1", port + k, loop_detectors=[d.kind in ("stopbar", "advance")
                                                                 for d in inter.detectors])


async def _bare_read(protocol: str, adapter) -> None:
    """The protocol's smallest exchange: one register, or one SNMP object."""
    from hw import ntcip_oids

    if protocol == "modbus":
        await adapter.client.read_input_registers(0, count=1, device_id=1)
    else:
        await adapter._get([ntcip_oids.UNIT_CONTROL_STATUS], "bare read")


async def _bench(protocol: str, port: int, inters, policy: str, sizes: tuple[int, ...], cycles: int) -> dict:
    from controller.policies.registry import make_policy
    from hw.central import CentralIntersection, FieldLink

    base = _adapter(protocol, port, 0, inters[0])
    await base.connect()
    bare = []
    for _ in range(cycles):
        t = time.perf_counter()
        await _bare_read(protocol, base)
        bare.append(time.perf_counter() - t)
    await base.close()
    out = {"baseline_read": _percentiles(bare)}
    for n in sizes:
        centrals = []
        for k in range(n):
            link = FieldLink(_adapter(protocol, port, k, inters[k]))
            await link.adapter.connect()
            centrals.append(CentralIntersection(inters[k], make_policy(policy), link, unit=k + 1))

        async def one(c: CentralIntersection) -> None:
            inputs = await c.link.adapter.read(c.unit, len(c.intersection.detectors))
            await c.decide_and_command(inputs)

        rounds = []
        for _ in range(cycles):
            t = time.perf_counter()
            await asyncio.gather(*(one(c) for c in centrals))
            rounds.append(time.perf_counter() - t)
        for c in centrals:
            await c.link.adapter.close()
        out[f"{n}_intersections"] = _percentiles(rounds)
    return out


def bench_hw(protocol: str = "modbus", network: str = "miraflores", sizes: tuple[int, ...] = (1, 20),
             cycles: int = 300, policy: str = "actuated") -> dict:
    """Measure read-decide-write cycles against a virtual controller (a child process on a free loopback port).

    :param protocol: ``modbus`` (one server, a unit per intersection) or ``ntcip`` (an agent per intersection).
    :param network: network whose intersections the virtual controller runs (needs ``max(sizes)`` lights).
    :param sizes: intersections polled concurrently per round.
    :param cycles: rounds per size.
    :param policy: the core's policy in the cycle.
    :return: p50/p99/max milliseconds per size and for the bare read, and the p50 ratio to the bare read.
    """
    from controller.errors import InputError
    from envs.simulation import intersections_of
    from hw.process import free_port, virtual_controller
    from networks.catalog import load_network

    if protocol not in ("modbus", "ntcip"):
        raise InputError(f"unknown protocol {protocol!r}; choose from: modbus, ntcip")
    if cycles < 10:
        raise InputError(f"{cycles} cycles are too few for a 99th percentile; use at least 10")
    inters = intersections_of(load_network(network))
    if max(sizes) > len(inters):
        raise InputError(f"{network} has {len(inters)} traffic lights; cannot poll {max(sizes)} of them")
    port = free_port()
    ids = [i.id for i in inters[: max(sizes)]]
    args = ["--protocol", protocol, "--network", network, "--time-scale", "1"]
    args += [a for i in ids for a in ("--intersection", i)]
    with virtual_controller(port, *args):
        result = asyncio.run(_bench(protocol, port, inters[: max(sizes)], policy, sizes, cycles))
    base = result["baseline_read"]["p50_ms"]
    for n in sizes:
        result[f"{n}_intersections"]["ratio_p50_to_bare_read"] = result[f"{n}_intersections"]["p50_ms"] / base
    return {"protocol": protocol, "network": network, **result}


def format_bench_hw(r: dict) -> str:
    """Human-readable result."""
    lines = [f"{r['protocol']} on loopback, virtual controller for {r['network']} in another process; "
             f"bare one-object read p50 {r['baseline_read']['p50_ms']:.2f} ms, p99 {r['baseline_read']['p99_ms']:.2f} ms"]
    for key, v in r.items():
        if key.endswith("_intersections"):
            n = key.split("_")[0]
            lines.append(f"  {n:>3} intersection(s) per round: read-decide-write p50 {v['p50_ms']:.2f} ms, "
                         f"p99 {v['p99_ms']:.2f} ms, max {v['max_ms']:.2f} ms over {v['cycles']} rounds "
                         f"({v['ratio_p50_to_bare_read']:.1f}x the bare read)")
    return "\n".join(lines)
