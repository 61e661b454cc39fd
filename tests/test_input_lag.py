"""An input lag in simulation: controllers act on detector data a whole number of seconds old, as a central system
that reads its cabinets, decides and writes back does (the live loop in lock step has 1 s)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from controller.errors import InputError
from controller.policies.base import Policy
from controller.policies.registry import make_policy
from envs.simulation import SignalSimulation, intersections_of
from networks.catalog import load_network

pytestmark = pytest.mark.sumo


class _Seen(Policy):
    """Actuated, remembering the time stamp and the vehicle count of every reading it decided on."""

    def __init__(self) -> None:
        self.inner = make_policy("actuated")
        self.seen: list[tuple[float, float]] = []

    def reset(self, intersection, step_s):
        super().reset(intersection, step_s)
        self.inner.reset(intersection, step_s)

    def decide(self, view):
        self.seen.append((view.readings.time_s, float(view.readings.count.sum())))
        return self.inner.decide(view)


def _run(lag: int, seconds: int = 120) -> tuple[list[tuple[float, float]], list[float]]:
    spec = load_network("single").with_horizon(None, 600)
    inter = intersections_of(spec)[0]
    policy = _Seen()
    sim = SignalSimulation(spec, spec.scenario(None), 1, policies={inter.id: policy}, input_lag_s=lag)
    try:
        times = []
        for _ in range(seconds):
            times.append(sim.time_s)
            sim.advance()
        return policy.seen, times
    finally:
        sim.cleanup()


@pytest.mark.parametrize("lag", [1, 3])
def test_controllers_decide_on_readings_lag_seconds_old(lag):
    now, times = _run(0)
    late, late_times = _run(lag)
    assert times == late_times
    # without lag a decision at second t uses the reading taken at t; with it, the reading of t - lag
    assert [t for t, _ in now] == times
    assert [t for t, _ in late[lag:]] == times[:-lag]
    # the first seconds see nothing yet (empty readings), not a reading twice
    assert all(count == 0 for _, count in late[:lag])
    assert sum(count for _, count in now) > 0  # traffic was seen: the comparison is not of empty readings


def test_a_lag_is_refused_where_it_cannot_apply():
    spec = load_network("single").with_horizon(None, 60)
    with pytest.raises(InputError, match="whole number"):
        SignalSimulation(spec, spec.scenario(None), 0, policies={"x": None}, input_lag_s=-1)
    with pytest.raises(InputError, match="policies"):
        SignalSimulation(spec, spec.scenario(None), 0, input_lag_s=1)
    # refused before SUMO started: the process's one libsumo simulation is still free (else every later run in it
    # would fall back to TraCI, many times slower: this made the suite's SUMO tests after it take 100 s instead of 4)
    sim = SignalSimulation(spec, spec.scenario(None), 0)
    try:
        assert sim.backend._owns_libsumo
    finally:
        sim.cleanup()


@pytest.mark.parametrize("args, words", [
    (("evaluate", "--network", "single", "--controllers", "actuated", "--through", "virtual", "--input-lag", "1"),
     "the loop's lag is its own"),
    (("evaluate", "--network", "single", "--controllers", "actuated,sumo-delay-based", "--input-lag", "1"),
     "reads its detectors inside SUMO"),
    (("simulate", "--network", "single", "--controller", "sumo-actuated", "--input-lag", "2"),
     "reads its detectors inside SUMO"),
    (("simulate", "--network", "single", "--input-lag", "-1"), "whole number of seconds"),
])
def test_input_lag_refusals_are_one_line(args, words):
    proc = subprocess.run([sys.executable, "-m", "ondaverde", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr
