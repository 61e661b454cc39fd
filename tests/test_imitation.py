"""Warm start by imitation: the teacher's decisions recorded through the core, the learner fitted to them."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
    from training.train import TrainConfig, train

    config = TrainConfig(network="single", scenarios=("base",), timesteps=0, n_envs=1, eval_seeds=(900001,),
                         warm_start="actuated", warm_start_episodes=1, warm_start_epochs=200, warm_start_rounds=1,
                         reward="queue", out=tmp_path / "run")
    summary = train(config)
    warm = json.loads((config.out / "warm_start.json").read_text())
    assert warm["teacher"] == "actuated" and warm["episodes"] == 2 and warm["decisions"] >= 1400
    # DAgger: the second round was driven by the fitted policy, and the fit ran on both rounds' decisions
    first, second = warm["rounds"]
    assert (first["driver"], second["driver"]) == ("actuated", "policy")
    assert second["decisions"] == 2 * first["decisions"]
    # the fitted actor reproduces the teacher better than "always extend" or "always the commonest phase" would
    assert warm["accuracy"] > max(warm["keep_accuracy"], warm["majority_accuracy"])
    # the warm-start policy ran through the core on a held-out seed: safely, and without the gridlock of a policy
    # that has learned nothing (it decides every 5 s where its teacher decides every second: 1.6x its delay at
    # training seed 3)
    evaluations = [json.loads(line) for line in (config.out / "evaluations.jsonl").read_text().splitlines()]
    assert evaluations[0]["timesteps"] == 0 and evaluations[0]["warm_start"]
    assert evaluations[0]["per_scenario"]["base"]["violations"] == 0
    assert evaluations[0]["delay"] < 2.0 * np.mean(first["driver_delay_s"])
    assert summary["timesteps"] == 0 and summary["final"]["delay"] == evaluations[0]["delay"]
    assert PolicyFile(config.out / "policy-final.npz").action_mask
