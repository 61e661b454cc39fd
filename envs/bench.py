"""``ondaverde bench env``: the environment's cost as a ratio against a plain sumo process.

Both sides simulate the same net, routes, detectors, outputs, seed and horizon. The env side is timed
from ``reset()`` to the end of the horizon (imports and process start excluded), each run in a fresh process
(as each plain sumo run is); the whole-process ratio times that process, imports included. Best of ``repeats``
on each side, interleaved; the CPU-time ratio beside it is steadier on a shared machine. The env runs a trivial
policy: the network's own fixed program followed through the core (:func:`_trivial_actions`). The plain sumo
side shows, second by second, the signal states the env showed (recorded in an untimed env run first,
:func:`record_signal_plan`), so both sides carry exactly the same traffic: the two delays reported beside the
ratio are equal, and the ratio measures the env, not a difference in congestion. With ``side_by_side`` each env run
and its plain sumo run start together, one per core, and the median of the pairs' ratios is reported.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from controller.policies.base import Interval
from envs.episode import DEFAULT_DELTA_TIME_S
from networks.catalog import largest_bundled_network, load_network


def _trivial_actions(env) -> np.ndarray:
    """The network's own fixed program, followed through the core: each light keeps its green for the
    program's green time (to the nearest decision), then asks for the next phase in program order; the core
    times the yellow and all-red, as the plain sumo side's program does (the net's phases with the core's
    clearances). Both sides then carry the same traffic, and SUMO's own cost, which grows with the vehicles
    in the network, is the same on both."""
    ep = env.episodes
    half = ep.delta_time_s / 2
    actions = []
    for agent in ep.agents:
        k = ep.agent_index[agent]
        machine = ep.sim.controllers[k].machine
        phases = ep.intersections[k].phases
        if machine.interval is not Interval.GREEN:  # changing: keep asking for the phase it changes to
            actions.append(machine.target)
        elif machine.green_elapsed_s + half >= phases[machine.phase].program_green_s:
            actions.append((machine.phase + 1) % len(phases))
        else:
            actions.append(machine.phase)
    return np.array(actions)


def _env_run(network: str, scenario: str | None, seed: int) -> tuple[float, float, int]:
    """Step the all-intersection env with the trivial policy from reset to the horizon (run in a fresh process by
    :func:`bench_env`).

    :return: wall seconds, CPU seconds of this process, env steps.
    """
    from envs.gym_env import SignalEnv
    from envs.sumo_backend import import_simulator

    env = SignalEnv(network, scenario)
    import_simulator()  # imports are excluded from the timing (the env imports libsumo at its first reset)
    start, cpu = time.perf_counter(), time.process_time()
    env.reset(seed=seed)
    steps, truncated = 0, False
    while not truncated:
        _, _, _, truncated, _ = env.step(_trivial_actions(env))
        steps += 1
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    env.close()
    return wall, cpu, steps


def record_signal_plan(network: str, scenario: str | None, seed: int, out_path: Path) -> tuple[Path, float]:
    """Run the env once (untimed) with the trivial policy and write the signal states it showed, second by
    second, as one static SUMO program per light covering the whole horizon: the plain sumo side then shows
    exactly the same signals and carries exactly the same traffic (the trivial policy follows the program only
    to the nearest decision, which alone made SUMO's own work differ by a few per cent).

    :param network: network name or folder.
    :param scenario: scenario name (None: the network's default).
    :param seed: SUMO seed.
    :param out_path: the additional file to write.
    :return: the file and the env run's delay (seconds per vehicle, the project's metric).
    """
    import xml.etree.ElementTree as ET

    from envs.gym_env import SignalEnv

    env = SignalEnv(network, scenario)
    changes: dict[str, list[tuple[float, str]]] = {}
    try:
        env.reset(seed=seed)
        sim = env.episodes.sim
        begin, end = sim.scenario.begin_s, sim.scenario.end_s
        fast = sim.backend.fast
        show = fast.set_state

        def recorded(tl_id: str, state: str) -> None:
            changes.setdefault(tl_id, []).append((sim.backend.time_s, state))
            show(tl_id, state)

        fast.set_state = recorded
        truncated = False
        while not truncated:
            _, _, _, truncated, _ = env.step(_trivial_actions(env))
        delay = sim.close().delay_s
    finally:
        env.close()
    root = ET.Element("additional")
    for tl_id, shown in changes.items():
        # at the begin, the program's first phase starts (SUMO places a static program by its offset)
        logic = ET.SubElement(root, "tlLogic", id=tl_id, type="static", programID="ondaverde-bench",
                              offset=f"{begin:g}")
        for (t, state), (t_next, _) in zip(shown, [*shown[1:], (end + 1.0, "")]):
            if t_next > t:  # a state replaced within the same second was never shown
                ET.SubElement(logic, "phase", duration=f"{t_next - t:g}", state=state)
    ET.ElementTree(root).write(out_path)
    return out_path, delay


def _sumo_command(network: str, scenario: str | None, seed: int, work: Path,
                  read_period_s: float = DEFAULT_DELTA_TIME_S, plan: Path | None = None) -> list[str]:
    """The plain sumo side: the env's detectors and outputs, and ``plan`` (:func:`record_signal_plan`) as the
    signal program, else the net's own program with the core's clearances."""
    from envs.metrics import sumo_output_args
    from envs.simulation import intersections_of
    from envs.sumo_backend import SumoRun
    from envs.sumo_programs import STATIC_PROGRAM, write_reference_program
    from networks.detectors import write_detector_additional

    spec = load_network(network)
    sc = spec.scenario(scenario)
    # the same detector file the env loads (loops aggregated over its decision interval)
    inters = intersections_of(spec)
    det = write_detector_additional(inters, work / "detectors.add.xml", read_period_s)
    # without a recorded plan (bench reads): the net's own program with the core's yellow and all-red
    program = plan or write_reference_program(spec.net_file, STATIC_PROGRAM, work / "program.add.xml", inters)
    run = SumoRun(spec.net_file, tuple(sc.route_files), (*spec.additional_files, det, program), sc.begin_s, sc.end_s, seed,
                  tuple(sumo_output_args(work / "tripinfo.xml", work / "statistics.xml")))
    return run.command()


def bench_env(network: str | None = None, scenario: str | None = None, seed: int = 0, repeats: int = 3,
              side_by_side: bool = False) -> dict:
    """Measure the env against plain sumo; returns ratio, process_ratio, env_wall_s, sumo_wall_s, steps_per_s.

    :param network: network name or folder (default: the largest bundled one).
    :param scenario: scenario name (default: the network's default).
    :param seed: SUMO seed.
    :param repeats: repetitions per side; the fastest is kept (least disturbed by other load).
    :param side_by_side: run each env run and its plain sumo run at the same time, one per core, so a slow spell of
        the machine hits both alike; the ratio is then the median of the pairs' ratios (``pair_ratios``).
    """
    network = network or largest_bundled_network()
    load_network(network).scenario(scenario)  # fail early, with a clear message, on a bad name
    with tempfile.TemporaryDirectory(prefix="ondaverde-bench-") as tmp:
        plan, env_delay = record_signal_plan(network, scenario, seed, Path(tmp) / "plan.add.xml")
        cmd = _sumo_command(network, scenario, seed, Path(tmp), plan=plan)
        sumo_walls, sumo_cpus, env_walls, env_cpus, proc_walls = [], [], [], [], []
        steps = 0
        # each env run is a fresh process, as each plain sumo run is: libsumo runs one after another in one process
        # need not repeat each other (trip-based demand, see evaluate), and the plan was recorded in a first run
        result = Path(tmp) / "env-run.json"  # a file, not stdout: SUMO writes there too
        code = ("import json, pathlib; from envs.bench import _env_run; "
                f"pathlib.Path({str(result)!r}).write_text(json.dumps(_env_run({network!r}, {scenario!r}, {seed})))")
        if side_by_side:
            return _side_by_side(cmd, code, result, max(1, repeats), network, env_delay,
                                 lambda: _delay_of(network, scenario, Path(tmp)))
        for _ in range(max(1, repeats)):  # interleaved, so a slow spell of the machine hits both sides
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            sumo_walls.append(time.perf_counter() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            sumo_cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
            proc_walls.append(time.perf_counter() - t)  # the whole process, imports and start included
            wall, cpu, steps = json.loads(result.read_text())
            env_walls.append(wall)
            env_cpus.append(cpu)
        sumo_delay = _delay_of(network, scenario, Path(tmp))
    sumo_wall, env_wall, proc_wall = min(sumo_walls), min(env_walls), min(proc_walls)
    return {"ratio": env_wall / sumo_wall, "process_ratio": proc_wall / sumo_wall, "env_wall_s": env_wall,
            "sumo_wall_s": sumo_wall, "steps_per_s": steps / env_wall, "cpu_ratio": min(env_cpus) / min(sumo_cpus),
            "network": network, "env_steps": steps, "repeats": max(1, repeats),
            "env_delay_s": env_delay, "sumo_delay_s": sumo_delay}


def _side_by_side(cmd: list[str], code: str, result: Path, pairs: int, network: str, env_delay: float,
                  sumo_delay) -> dict:
    """``pairs`` times: the env run (its own process) and the plain sumo process started together, one per core;
    each pair's ratio is its env wall time over its sumo wall time (process start included on the sumo side, as in
    :func:`bench_env`); the ratio reported is their median."""
    import statistics

    ratios, env_walls, sumo_walls, proc_ratios, steps = [], [], [], [], 0
    for _ in range(pairs):
        t = time.perf_counter()
        env = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
        sumo = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if sumo.wait():
            env.kill()
            raise subprocess.CalledProcessError(sumo.returncode, cmd)
        sumo_walls.append(time.perf_counter() - t)
        if env.wait():
            raise subprocess.CalledProcessError(env.returncode, "the env run")
        proc_ratios.append((time.perf_counter() - t) / sumo_walls[-1])  # the env's whole process, imports included
        wall, _, steps = json.loads(result.read_text())
        env_walls.append(wall)
        ratios.append(wall / sumo_walls[-1])
    ratio = statistics.median(ratios)
    return {"ratio": ratio, "pair_ratios": ratios, "process_ratio": statistics.median(proc_ratios),
            "env_wall_s": statistics.median(env_walls),
            "sumo_wall_s": statistics.median(sumo_walls), "steps_per_s": steps / statistics.median(env_walls),
            "network": network, "env_steps": steps, "repeats": pairs, "side_by_side": True,
            "env_delay_s": env_delay, "sumo_delay_s": sumo_delay()}


def _delay_of(network: str, scenario: str | None, work: Path) -> float:
    """The plain sumo side's delay (seconds per vehicle), from the tripinfo it wrote in ``work``."""
    from envs.metrics import read_metrics

    sc = load_network(network).scenario(scenario)
    return read_metrics(work / "tripinfo.xml", work / "statistics.xml", sc.begin_s, sc.end_s, {}).delay_s


def format_bench(r: dict) -> str:
    """Human-readable bench result."""
    if r.get("side_by_side"):
        pairs = ", ".join(f"{x:.2f}x" for x in r["pair_ratios"])
        return (f"network {r['network']}: env and plain sumo side by side, {r['repeats']} pairs: {pairs} -> median "
                f"ratio {r['ratio']:.2f}x (whole process {r['process_ratio']:.2f}x; env {r['env_wall_s']:.2f} s, "
                f"plain sumo {r['sumo_wall_s']:.2f} s, medians), "
                f"{r['steps_per_s']:.0f} env steps/s; same signals, same traffic: delay {r['env_delay_s']:.2f} s in "
                f"the env, {r['sumo_delay_s']:.2f} s in sumo")
    return (f"network {r['network']}: env {r['env_wall_s']:.2f} s vs plain sumo {r['sumo_wall_s']:.2f} s "
            f"(best of {r['repeats']}) -> ratio {r['ratio']:.2f}x (CPU time {r['cpu_ratio']:.2f}x, "
            f"whole process {r['process_ratio']:.2f}x), {r['steps_per_s']:.0f} env steps/s ({r['env_steps']} steps); "
            f"same signals, same traffic: delay {r['env_delay_s']:.2f} s in the env, {r['sumo_delay_s']:.2f} s in sumo")


def bench_reads(network: str | None = None, scenario: str | None = None, seed: int = 0,
                period_s: float | None = None, repeats: int = 3) -> dict:
    """Cost of reading every detector once per decision, two ways, against not reading at all.

    Plain libsumo loops over the horizon: ``none`` (no reads), ``subscriptions`` (SUMO evaluates the
    subscribed values every step, fetched once per decision with ``getAllSubscriptionResults``) and
    ``direct`` (the backend's way: one getter call per value, only at decisions). Run in a fresh process
    per variant, since libsumo holds one simulation per process.

    :param network: network name (default: the largest bundled one).
    :param scenario: scenario (default: the network's default).
    :param seed: SUMO seed.
    :param period_s: decision (read) interval, seconds (default: the env's).
    :param repeats: interleaved repetitions; the fastest run of each variant is kept.
    :return: wall seconds per variant and the extra seconds of each reading way over ``none``.
    """
    network = network or largest_bundled_network()
    period_s = period_s or DEFAULT_DELTA_TIME_S
    load_network(network).scenario(scenario)
    out: dict[str, float] = {}
    for _ in range(max(1, repeats)):
        for variant in ("none", "subscriptions", "direct"):
            code = (f"from envs.bench import _reads_once; print(_reads_once({network!r}, {scenario!r}, {seed}, "
                    f"{period_s!r}, {variant!r}))")
            proc = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
            wall = float(proc.stdout.strip().splitlines()[-1])
            out[variant] = min(out.get(variant, wall), wall)
    return {"network": network, "period_s": period_s, **{f"{k}_s": v for k, v in out.items()},
            "subscriptions_extra_s": out["subscriptions"] - out["none"], "direct_extra_s": out["direct"] - out["none"]}


def _reads_once(network: str, scenario: str | None, seed: int, period_s: float, variant: str) -> float:
    import os

    import libsumo

    with tempfile.TemporaryDirectory(prefix="ondaverde-bench-") as tmp:
        cmd = _sumo_command(network, scenario, seed, Path(tmp), period_s)
        saved = os.dup(1)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # SUMO's banner would mix with the result on stdout
        try:
            libsumo.start(cmd)
            loops, zones = libsumo.inductionloop.getIDList(), libsumo.lanearea.getIDList()
            if variant == "subscriptions":
                for i in loops:
                    libsumo.inductionloop.subscribe(i, (0x29, 0x13))  # last interval count, occupancy
                for z in zones:
                    libsumo.lanearea.subscribe(z, (0x10, 0x14, 0x11))  # vehicles, halting, mean speed
            il, la = libsumo.inductionloop, libsumo.lanearea
            every = max(1, round(period_s))
            end = float(cmd[cmd.index("--end") + 1])
            start, k = time.perf_counter(), 0
            while libsumo.simulation.getTime() < end:
                libsumo.simulationStep()
                k += 1
                if k % every:
                    continue
                if variant == "subscriptions":
                    il.getAllSubscriptionResults()
                    la.getAllSubscriptionResults()
                elif variant == "direct":
                    for f in (il.getLastIntervalVehicleNumber, il.getLastStepOccupancy):
                        list(map(f, loops))
                    for f in (la.getLastStepVehicleNumber, la.getLastStepHaltingNumber, la.getLastStepMeanSpeed):
                        list(map(f, zones))
            wall = time.perf_counter() - start
            libsumo.close()
        finally:
            os.dup2(saved, 1)
    return wall
