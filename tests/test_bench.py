"""``ondaverde bench env`` runs and reports its ratios (no timing assertions: performance is measured, not tested)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from envs.bench import _trivial_actions, bench_env

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.sumo


def test_bench_env_reports_every_documented_key():
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "bench", "env", "--network", "single", "--repeats",
                           "1", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"ratio", "process_ratio", "env_wall_s", "sumo_wall_s", "steps_per_s"} <= result.keys()
    assert result["env_steps"] == 720  # one hour at one decision every 5 s, reset to horizon
    assert result["ratio"] == pytest.approx(result["env_wall_s"] / result["sumo_wall_s"])
    assert all(result[k] > 0 for k in ("env_wall_s", "sumo_wall_s", "steps_per_s", "process_ratio"))
    # the plain sumo side replays the env's signals: the same traffic, to the last vehicle
    assert result["env_delay_s"] == pytest.approx(result["sumo_delay_s"], abs=1e-9)
    assert result["env_delay_s"] > 0


def test_bench_env_side_by_side_reports_the_median_of_its_pairs():
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "bench", "env", "--network", "single", "--repeats",
                           "3", "--side-by-side", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["side_by_side"] and len(result["pair_ratios"]) == 3 and result["env_steps"] == 720
    assert result["ratio"] == pytest.approx(sorted(result["pair_ratios"])[1])
    assert all(r > 0 for r in result["pair_ratios"]) and result["process_ratio"] > 0
    assert result["env_delay_s"] == pytest.approx(result["sumo_delay_s"], abs=1e-9)


def test_trivial_policy_runs_the_program_greens_in_order():
    from envs.gym_env import SignalEnv
    from networks.catalog import load_network

    env = SignalEnv(load_network("single").with_horizon(None, 600))
    try:
        env.reset(seed=0)
        phases = env.episodes.intersections[0].phases
        machine = env.episodes.sim.controllers[0].machine
        greens, truncated = [], False  # (phase, seconds of green) per green served
        phase, longest = machine.phase, 0.0
        while not truncated:
            _, _, _, truncated, _ = env.step(_trivial_actions(env))
            if machine.phase != phase:
                greens.append((phase, longest))
                phase, longest = machine.phase, 0.0
            longest = max(longest, machine.green_elapsed_s)
        assert len(greens) >= 6
        assert [p for p, _ in greens[1:]] == [(greens[0][0] + 1 + k) % len(phases) for k in range(len(greens) - 1)]
        for phase, green_s in greens[1:]:  # each green lasts its program time, to the nearest decision
            want = max(phases[phase].program_green_s, phases[phase].min_green_s)
            assert abs(green_s - want) <= env.episodes.delta_time_s
    finally:
        env.close()


def test_bench_refuses_an_unknown_network():
    from controller.errors import InputError

    with pytest.raises(InputError, match="atlantis"):
        bench_env("atlantis", repeats=1)


def test_bench_reads_reports_the_three_variants():
    from envs.bench import bench_reads

    result = bench_reads("single", repeats=1)
    assert {"none_s", "subscriptions_s", "direct_s", "subscriptions_extra_s", "direct_extra_s"} <= result.keys()
    assert result["subscriptions_extra_s"] == pytest.approx(result["subscriptions_s"] - result["none_s"])
    assert min(result["none_s"], result["subscriptions_s"], result["direct_s"]) > 0


@pytest.mark.parametrize("protocol", ["modbus", "ntcip"])
def test_bench_hw_reports_percentiles_for_each_size_against_a_bare_read(protocol):
    proc = subprocess.run([sys.executable, "-m", "ondaverde.cli", "bench", "hw", "--protocol", protocol, "--network",
                           "grid", "--sizes", "1,3", "--cycles", "20", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    for key in ("baseline_read", "1_intersections", "3_intersections"):
        assert r[key]["cycles"] == 20 and 0 < r[key]["p50_ms"] <= r[key]["p99_ms"] <= r[key]["max_ms"]
    assert r["3_intersections"]["ratio_p50_to_bare_read"] > 0


def test_bench_hw_refuses_more_intersections_than_the_network_has():
    proc = subprocess.run([sys.executable, "-m", "ondaverde.cli", "bench", "hw", "--network", "single", "--sizes", "2"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "cannot poll 2" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
