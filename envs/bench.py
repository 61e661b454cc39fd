"""``ondaverde bench env``: the environment's cost as a ratio against a plain sumo process.

Both sides simulate the same net, routes, detectors, outputs, seed and horizon. The env side is timed
from ``reset()`` to the end of the horizon (imports and process start excluded); the whole-process
ratio times a fresh Python process doing the same, imports included. Best of ``repeats`` on each side.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from networks.catalog import largest_bundled_network, load_network


#: the trivial policy's green per phase, seconds: a plain fixed cycle, so the traffic (and SUMO's own
#: cost, which grows with the vehicles in the network) stays comparable to the plain sumo run
TRIVIAL_GREEN_S = 40.0


def _env_run(network: str, scenario: str | None, seed: int) -> tuple[float, int]:
    """Step the all-intersection env with a trivial policy (every light cycles its phases, 40 s each)."""
    from envs.gym_env import SignalEnv

    env = SignalEnv(network, scenario)
    n_phases = np.asarray(env.action_space.nvec)
    per_phase = max(1, round(TRIVIAL_GREEN_S / env.episodes.delta_time_s))
    start = time.perf_counter()
    env.reset(seed=seed)
    steps, truncated = 0, False
    while not truncated:
        _, _, _, truncated, _ = env.step((steps // per_phase) % n_phases)
        steps += 1
    wall = time.perf_counter() - start
    env.close()
    return wall, steps


def _sumo_command(network: str, scenario: str | None, seed: int, work: Path) -> list[str]:
    from envs.metrics import sumo_output_args
    from envs.simulation import intersections_of
    from envs.sumo_backend import SumoRun
    from networks.detectors import write_detector_additional

    spec = load_network(network)
    sc = spec.scenario(scenario)
    det = write_detector_additional(intersections_of(spec), work / "detectors.add.xml")
    run = SumoRun(spec.net_file, tuple(sc.route_files), (det,), sc.begin_s, sc.end_s, seed,
                  tuple(sumo_output_args(work / "tripinfo.xml", work / "statistics.xml")))
    return run.command()


def bench_env(network: str | None = None, scenario: str | None = None, seed: int = 0, repeats: int = 3) -> dict:
    """Measure the env against plain sumo; returns ratio, process_ratio, env_wall_s, sumo_wall_s, steps_per_s.

    :param network: network name or folder (default: the largest bundled one).
    :param scenario: scenario name (default: the network's default).
    :param seed: SUMO seed.
    :param repeats: repetitions per side; the fastest is kept (least disturbed by other load).
    """
    network = network or largest_bundled_network()
    load_network(network).scenario(scenario)  # fail early, with a clear message, on a bad name
    with tempfile.TemporaryDirectory(prefix="ondaverde-bench-") as tmp:
        cmd = _sumo_command(network, scenario, seed, Path(tmp))
        sumo_walls, env_walls, proc_walls = [], [], []
        steps = 0
        code = ("import sys, time; t=time.perf_counter(); from envs.bench import _env_run; "
                f"_env_run({network!r}, {scenario!r}, {seed}); print(time.perf_counter()-t)")
        for _ in range(max(1, repeats)):
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            sumo_walls.append(time.perf_counter() - t)
            wall, steps = _env_run(network, scenario, seed)
            env_walls.append(wall)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
            proc_walls.append(time.perf_counter() - t)
    sumo_wall, env_wall, proc_wall = min(sumo_walls), min(env_walls), min(proc_walls)
    return {"ratio": env_wall / sumo_wall, "process_ratio": proc_wall / sumo_wall, "env_wall_s": env_wall,
            "sumo_wall_s": sumo_wall, "steps_per_s": steps / env_wall, "network": network, "env_steps": steps}


def format_bench(r: dict) -> str:
    """Human-readable bench result."""
    return (f"network {r['network']}: env {r['env_wall_s']:.2f} s vs plain sumo {r['sumo_wall_s']:.2f} s "
            f"-> ratio {r['ratio']:.2f}x (whole process {r['process_ratio']:.2f}x), "
            f"{r['steps_per_s']:.0f} env steps/s ({r['env_steps']} steps)")
