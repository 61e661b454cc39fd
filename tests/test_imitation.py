"""Warm start by imitation: the teacher's decisions recorded through the core, the learner fitted to them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from controller.phase_features import MAX_PHASES, SIZE
from controller.policies.actuated import ActuatedPolicy
from controller.policies.base import DetectorReadings
from controller.policies.learned import IntervalFeatures, PolicyFile
from controller.signal_controller import SignalController
from controller.testing import two_phase_intersection
from training.imitation import RecordingPolicy, discounted


def _readings(rng, t: int, n: int) -> DetectorReadings:
    count = rng.integers(0, 2, n).astype(float)
    return DetectorReadings(float(t), count > 0, count, rng.integers(0, 5, n).astype(float), rng.random(n),
                            -np.ones(n))


def test_recording_leaves_the_teachers_control_unchanged_and_sees_what_the_learner_sees():
    inter = two_phase_intersection()
    recorder = RecordingPolicy(ActuatedPolicy(), 5.0)
    recorded = SignalController(inter, recorder)
    alone = SignalController(inter, ActuatedPolicy())
    learner_view = IntervalFeatures(inter, 1.0, 5.0)
    expected = []
    rng = np.random.default_rng(7)
    for t in range(300):
        r = _readings(rng, t, len(inter.detectors))
        x = learner_view.update(recorded.view(r))
        if x is not None:
            expected.append(x)
        assert recorded.step(r) == alone.step(r)  # the teacher decides exactly as it does on its own
    assert len(recorder.features) == len(expected) == 60  # one per 5 s decision, the first at t = 0
    assert np.array_equal(np.stack(recorder.features), np.stack(expected))
    assert set(recorder.choices) <= {0, 1} and len(set(recorder.choices)) == 2


def test_discounted_returns():
    assert np.allclose(discounted(np.array([1.0, 0.0, 2.0]), 0.5), [1.5, 1.0, 2.0])
    assert discounted(np.array([]), 0.9).size == 0


@pytest.mark.sumo
def test_warm_start_imitates_the_teacher_and_runs_as_the_rl_controller(tmp_path):
    from envs.runner import run_episode
    from networks.catalog import load_network
    from training.imitation import record
    from training.train import TrainConfig, train

    config = TrainConfig(network="single", scenarios=("base",), timesteps=0, n_envs=1, eval_seeds=(900001,),
                         warm_start="maxpressure", warm_start_episodes=1, warm_start_epochs=30, warm_start_rounds=1,
                         out=tmp_path / "run")
    summary = train(config)
    warm = json.loads((config.out / "warm_start.json").read_text())
    assert warm["teacher"] == "maxpressure" and warm["episodes"] == 2 and warm["decisions"] >= 1400
    # DAgger: the second round was driven by the fitted policy, and the fit ran on both rounds' decisions
    first, second = warm["rounds"]
    assert (first["driver"], second["driver"]) == ("maxpressure", "policy")
    assert second["decisions"] == 2 * first["decisions"]
    # the fitted actor reproduces the teacher on the data it saw far better than chance (2-4 phases per light)
    assert warm["accuracy"] > 0.8
    evaluations = [json.loads(line) for line in (config.out / "evaluations.jsonl").read_text().splitlines()]
    assert evaluations[0]["timesteps"] == 0 and evaluations[0]["warm_start"]
    assert summary["timesteps"] == 0 and summary["violations"] == 0
    policy = config.out / "policy-warm-start.npz"
    assert PolicyFile(policy).action_mask
    # on a held-out seed the imitation runs through the core, safely, near the teacher
    network = load_network("single")
    learner = run_episode(network, "base", "rl", 900001, policy_file=policy)
    teacher = run_episode(network, "base", "maxpressure", 900001)
    assert learner.violations == 0
    assert learner.metrics["delay"] < 1.5 * teacher.metrics["delay"]
    # a recorded episode holds one decision per light per 5 s, masks of the light's own phases, finite returns
    demo = record("single", ("base",), "actuated", [5], [1.0], 5.0, "queue", 0.95, jobs=1)[0]
    assert demo.observations.shape == (len(demo.actions), SIZE) and demo.masks.shape[1] == MAX_PHASES
    assert demo.masks[np.arange(len(demo.actions)), demo.actions].all()
    assert np.isfinite(demo.returns).all() and demo.reward_sum < 0
