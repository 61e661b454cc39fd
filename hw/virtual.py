"""``ondaverde virtual-controller``: virtual field controllers for a network's intersections, on their own clock,
optionally coupled to SUMO (software in the loop: the cabinets' outputs drive SUMO's signals and SUMO's detectors
drive the cabinets' inputs).

The clock runs ``time_scale`` cabinet seconds per wall second (1 = real time), so a test can run ten simulated
minutes in a few wall seconds through a real TCP server. In lock step (``lock_step``) there is no wall clock: each
cabinet second begins only once the central system has answered the previous one over the protocol (a new
heartbeat on Modbus, a SET of the control objects on NTCIP) at every intersection, so what the cabinets and SUMO do
no longer depends on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from controller.policies.base import DetectorReadings
from controller.policies.registry import make_policy
from hw.cabinet import FieldCabinet
from hw.modbus_field import ModbusFieldServer
from hw.modbus_map import ModbusMap


@dataclass
class VirtualConfig:
    """How the virtual controllers run.

    :param protocol: ``modbus`` (one TCP server, unit k+1 = intersection k) or ``ntcip`` (one SNMP agent per
        intersection, on UDP ports ``port``, ``port + 1``, ...).
    :param network: network name or folder (its intersections become cabinets).
    :param scenario: demand scenario (with ``sumo``).
    :param sumo: couple to a SUMO simulation of the network.
    :param seed: SUMO seed.
    :param host: address to bind.
    :param port: TCP port.
    :param time_scale: cabinet seconds per wall second.
    :param seconds: stop after this many cabinet seconds (0: at the scenario's end with SUMO, else never).
    :param local_policy: the cabinets' own timing when not under central control.
    :param backup_time_s: cabinet seconds without a heartbeat change before falling back to local timing.
    :param intersections: only these traffic-light ids (default: all).
    :param modbus_map: register map file (YAML) or None for the default.
    :param preempt: the cabinets run emergency-vehicle preemption, one preempt per approach phase (preempt *k*
        dwells in phase *k*); with SUMO, an emergency vehicle detected on an approach lane turns that preempt
        input on (:mod:`envs.priority_vehicles`).
    :param preempt_route_s: with ``preempt`` and ``sumo``: the emergency vehicles' route-aware (GPS) units also call
        every signal on their route they would reach within this many seconds (None: the receivers only).
    :param tsp: with ``sumo``: a bus checked in on an approach (:mod:`envs.priority_vehicles`) turns that phase's
        transit priority detector input on; the central system runs the priority from the inputs it reads.
    :param ped: with ``sumo``: pedestrian push buttons: a person waiting at a signalised crosswalk presses its
        button (:mod:`envs.pedestrian_buttons`); the cabinet registers the call, times the walk at the phase's next
        green and reports the call (phaseStatusGroupPedCalls; Modbus input register ``ped_calls``).
    :param radar_port: with ``sumo``: also serve the vehicles in each approach radar zone as radar tracks on this
        TCP port (Modbus, one device per intersection, ids 1, 2, ...; layout :mod:`hw.radar_feed`) and count
        vehicles caught in the dilemma zone at yellow onsets (0: no radar).
    :param lock_step: no wall clock: the next cabinet second begins once every intersection's central system has
        answered the last one (``time_scale`` is ignored).
    :param lock_step_timeout_s: in lock step, wall seconds to wait for an answer before the second goes on without
        one (counted as ``unanswered``; the cabinet's backup timer, in cabinet seconds, then runs as in the field).
    :param first_answer_timeout_s: in lock step, wall seconds to wait for the very first answer (the central system
        may still be starting).
    :param begin_s: with ``sumo``: simulation begin, seconds (None: the scenario's).
    :param end_s: with ``sumo``: simulation end, seconds (None: the scenario's).
    :param work_dir: with ``sumo``: keep SUMO's tripinfo and statistics files in this folder (None: temporary).
    """

    protocol: str = "modbus"
    network: str = "single"
    scenario: str | None = None
    sumo: bool = False
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 15020
    time_scale: float = 1.0
    seconds: float = 0.0
    local_policy: str = "fixed"
    backup_time_s: float = 3.0
    intersections: tuple[str, ...] = ()
    modbus_map: str | None = None
    preempt: bool = False
    preempt_route_s: float | None = None
    tsp: bool = False
    ped: bool = False
    begin_s: float | None = None
    end_s: float | None = None
    radar_port: int = 0
    lock_step: bool = False
    lock_step_timeout_s: float = 10.0
    first_answer_timeout_s: float = 120.0
    work_dir: str | None = None


async def run_virtual(config: VirtualConfig, ready=None) -> dict:
    """Serve until the end; returns a summary (seconds run, states shown, safety faults).

    :param config: the configuration.
    :param ready: called with the listening address once the server is up.
    """
    from controller.errors import InputError
    from envs.simulation import SignalSimulation, intersections_of
    from networks.catalog import load_network

    logging.getLogger("pymodbus").setLevel(logging.WARNING)
    if config.time_scale <= 0:
        raise InputError(f"time scale {config.time_scale} must be positive")
    network = load_network(config.network)
    if config.begin_s is not None or config.end_s is not None:
        network = network.with_horizon(config.begin_s, config.end_s, only=[network.scenario(config.scenario).name])
    inters = intersections_of(network)
    if config.intersections:
        unknown = set(config.intersections) - {i.id for i in inters}
        if unknown:
            raise InputError(f"no traffic light {sorted(unknown)[0]!r} in {network.name}")
        inters = [i for i in inters if i.id in config.intersections]
    from envs.priority_vehicles import preempt_plans_for

    cabinets = [FieldCabinet(i, make_policy(config.local_policy), 1.0, config.backup_time_s,
                             preempt_plans_for(i) if config.preempt else None) for i in inters]
    sim = None
    if config.sumo:
        from pathlib import Path

        work_dir = None
        if config.work_dir is not None:
            work_dir = Path(config.work_dir)
            work_dir.mkdir(parents=True, exist_ok=True)
        sim = SignalSimulation(network, network.scenario(config.scenario), config.seed, work_dir=work_dir,
                               preempt_route_s=config.preempt_route_s if config.preempt else None)
        index = {i.id: k for k, i in enumerate(sim.intersections)}
    buttons = None
    if sim is not None and config.ped:
        from envs.pedestrian_buttons import SumoPedestrianButtons

        buttons = SumoPedestrianButtons(sim.backend.api, cabinets)
    radar = radar_server = None
    if sim is not None and config.radar_port:
        from envs.radar_tracks import SumoRadar
        from hw.radar_feed import VirtualRadar

        radar = SumoRadar(sim.backend.api, inters)
        radar_server = VirtualRadar(config.host, config.radar_port, units=len(inters))
        await radar_server.start()
    tick, stop, where, answered = await _serve(config, cabinets)
    if ready is not None:
        ready(where)
    period = 1.0 / config.time_scale
    start, ticks, unanswered, waiting = time.monotonic(), 0, 0, True
    idle = [DetectorReadings.empty(len(i.detectors)) for i in inters]
    try:
        while True:
            if config.seconds and ticks >= config.seconds:
                break
            if sim is not None and sim.done:
                break
            if config.lock_step:
                # the central system's answer to the second just shown must be in before the next one begins; once
                # it failed to come, the seconds go on without waiting (the cabinets' backup timers run out as in
                # the field) until the central system answers again
                wait_s = (config.lock_step_timeout_s if ticks else config.first_answer_timeout_s) if waiting else 0.0
                waiting = await answered(wait_s)
                unanswered += not waiting
            if sim is not None:
                readings = [sim.readings[index[i.id]] for i in inters]
                if sim.priority_vehicles is not None:  # the cabinets' emitter receivers (measured always)
                    sim.priority_vehicles.update()
                    if config.preempt:
                        for cab, inter in zip(cabinets, inters):
                            cab.set_preempt_inputs(sim.priority_vehicles.calls[index[inter.id]])
                    if config.tsp:
                        buses = sim.priority_vehicles.checked_in_phases()
                        for cab, inter in zip(cabinets, inters):
                            cab.set_priority_inputs(buses[index[inter.id]])
                if buttons is not None:
                    buttons.update()
            else:
                readings = [DetectorReadings.empty(len(i.detectors), float(ticks)) for i in inters] if ticks else idle
            states = await tick(readings)
            if sim is not None:
                for inter, state in zip(inters, states):
                    sim.backend.set_state(inter.id, state)
                if radar is not None:
                    radar.count_onsets(states)
                sim.backend.step()
                sim.readings = sim.backend.read_detectors()
                if radar is not None:
                    await _publish_tracks(radar, radar_server)
            ticks += 1
            if config.lock_step:
                await asyncio.sleep(0)  # let the protocol side answer the requests that came in
                continue
            delay = start + ticks * period - time.monotonic()
            if delay < -period:
                # behind schedule (a slow SUMO step, a busy machine): the clock slows down rather than catching up
                # in a burst of seconds no central system could follow, as a real cabinet's clock never bursts
                start, delay = time.monotonic() - ticks * period, 0.0
            await asyncio.sleep(max(delay, 0.0))
    finally:
        await stop()
        if radar_server is not None:
            await radar_server.stop()
        metrics = None
        if sim is not None:
            # SUMO's trip metrics need the whole horizon; a run stopped early reports none
            if sim.done:  # as evaluate's records have them
                metrics = sim.close_with_priority_delays()
            sim.cleanup()
    vehicles = sim.priority_vehicles if sim is not None else None
    summary = {"seconds": ticks, "unanswered": unanswered,
               # times a cabinet's backup timer lapsed and it fell back to local timing
               "lost_control": sum(len(c.log.lost_control) for c in cabinets), "faults": sum(len(c.controller.monitor.violations) for c in cabinets),
               "delay": None if metrics is None else metrics["delay"],
               **({"pedestrian_presses": buttons.presses} if buttons is not None else {}),
               # SUMO's whole record of the run (evaluate's metrics), None when stopped early
               "metrics": metrics,
               "preemptions": sum(e.code == 105 for c in cabinets for e in c.controller.events),
               "emergency_passages": [list(p) for p in vehicles.passages] if vehicles is not None else [],
               # per emergency vehicle, time loss through its signals: the same field as evaluate's records
               "emergency_intersection_delay": vehicles.intersection_delays() if vehicles is not None else {},
               "emergency_intersection_control_delay": (vehicles.intersection_delays(control=True)
                                                        if vehicles is not None else {})}
    if radar is not None:
        summary.update(dilemma_caught=radar.caught, yellow_onsets=radar.onsets)
    return summary


async def _publish_tracks(radar, server) -> None:
    """Every intersection's radar tracks, nearest to the stop bar in time first (the block holds 30)."""
    from hw.radar_feed import encode_tracks

    for k, tracks in enumerate(radar.tracks()):
        await server.publish(encode_tracks(sorted(tracks, key=lambda t: t.eta_s)), k)


async def _serve(config: VirtualConfig, cabinets: list[FieldCabinet]):
    """Open the protocol side; returns (tick coroutine function, stop coroutine function, where it listens,
    ``answered(timeout_s)``: waits until every cabinet has had the central system's answer to its last second,
    True when it came within ``timeout_s`` wall seconds)."""
    from controller.errors import InputError

    if config.protocol == "modbus":
        server = ModbusFieldServer(cabinets, config.host, config.port, ModbusMap.load(config.modbus_map))
        await server.start()
        return server.tick, server.stop, f"{config.host}:{config.port}", server.answered
    if config.protocol != "ntcip":
        raise InputError(f"unknown protocol {config.protocol!r}; choose from: modbus, ntcip")
    from hw.ntcip_field import NtcipFieldAgent

    if config.port + len(cabinets) > 65536:
        raise InputError(f"ports {config.port}..{config.port + len(cabinets) - 1} do not all exist")
    agents = []
    try:
        for k, cab in enumerate(cabinets):
            agent = NtcipFieldAgent(cab, config.host, config.port + k)
            agent.start()
            agents.append(agent)
    except InputError:
        for agent in agents:
            agent.stop()
        raise

    async def tick(readings):
        return [agent.tick(r) for agent, r in zip(agents, readings)]

    async def stop():
        for agent in agents:
            agent.stop()

    async def answered(timeout_s: float) -> bool:
        return await _wait_for(lambda: all(agent.answered for agent in agents), timeout_s)

    return tick, stop, f"udp {config.host}:{config.port}..{config.port + len(cabinets) - 1}", answered


async def _wait_for(predicate, timeout_s: float, poll_s: float = 0.0005) -> bool:
    """Serve the event loop until ``predicate()`` holds or ``timeout_s`` wall seconds pass; its last value."""
    if predicate():
        return True
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        await asyncio.sleep(poll_s)
        if predicate():
            return True
    return bool(predicate())
