"""The learned policy as the core runs it: export from stable-baselines3, numpy forward pass, layout checks."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from controller.errors import InputError
from controller.phase_features import DEFAULT_LAYOUT, LAYOUT_V1, LAYOUTS, MAX_PHASES, PhaseFeatures
from controller.policies.base import DetectorReadings
from controller.policies.learned import LearnedPolicy, PolicyFile
from controller.signal_controller import SignalController
from controller.testing import crossroads_with_crosswalks, two_phase_intersection
from training.export import export_policy


class _Features(gym.Env):
    observation_space = spaces.Box(0.0, 1.0, (DEFAULT_LAYOUT.size,), np.float32)
    action_space = spaces.Discrete(MAX_PHASES)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, False, False, {}


@pytest.fixture(scope="module", params=["ppo", "maskable-ppo", "dqn"])
def model(request):
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import DQN, PPO

    cls = {"ppo": PPO, "maskable-ppo": MaskablePPO, "dqn": DQN}[request.param]
    return cls("MlpPolicy", _Features(), policy_kwargs={"net_arch": [16, 8]}, seed=1, device="cpu")


def _torch_logits(model, obs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        x = torch.as_tensor(obs)
        if hasattr(model.policy, "mlp_extractor"):
            return model.policy.action_net(model.policy.mlp_extractor.forward_actor(x)).numpy()
        return model.policy.q_net(x).numpy()


def test_exported_policy_computes_the_trained_network_without_torch(model, tmp_path):
    inter = two_phase_intersection()
    path = export_policy(model, tmp_path / "p.npz", [inter], 5.0)
    loaded = PolicyFile(path)
    obs = np.random.default_rng(0).random((50, DEFAULT_LAYOUT.size)).astype(np.float32)
    assert np.allclose(loaded.logits(obs), _torch_logits(model, obs), atol=1e-5)
    # the greedy action of the file is the model's own deterministic action
    actions, _ = model.predict(obs, deterministic=True)
    assert np.array_equal(np.argmax(loaded.logits(obs), axis=1), actions)


def test_a_masked_policy_chooses_among_the_lights_own_phases_as_in_training(tmp_path):
    from sb3_contrib import MaskablePPO

    model = MaskablePPO("MlpPolicy", _Features(), policy_kwargs={"net_arch": [16, 8]}, seed=2, device="cpu")
    inter = two_phase_intersection()
    loaded = PolicyFile(export_policy(model, tmp_path / "p.npz", [inter], 5.0))
    assert loaded.action_mask
    obs = np.random.default_rng(1).random((200, DEFAULT_LAYOUT.size)).astype(np.float32)
    masks = np.zeros((200, MAX_PHASES), dtype=bool)
    masks[:, : len(inter.phases)] = True
    actions, _ = model.predict(obs, deterministic=True, action_masks=masks)
    assert np.array_equal(np.argmax(loaded.logits(obs)[:, : len(inter.phases)], axis=1), actions)
    # unmasked, the same network would often name a slot the light does not have
    assert (np.argmax(loaded.logits(obs), axis=1) >= len(inter.phases)).any()


def test_a_policy_refuses_a_light_it_was_not_trained_for(model, tmp_path):
    path = export_policy(model, tmp_path / "p.npz", [two_phase_intersection()], 5.0)
    loaded = PolicyFile(path)
    with pytest.raises(InputError, match="not one of them|other phases|other detectors"):
        loaded.check(crossroads_with_crosswalks())


def test_a_changed_detector_layout_is_refused(model, tmp_path):
    inter = two_phase_intersection()
    path = export_policy(model, tmp_path / "p.npz", [inter], 5.0)
    meta = PolicyFile(path).meta
    meta["intersections"][inter.id]["detectors"] = meta["intersections"][inter.id]["detectors"][:-1] + [["x", "radar", []]]
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "q.npz", **arrays)
    with pytest.raises(InputError, match="other detectors"):
        PolicyFile(tmp_path / "q.npz").check(inter)


def test_bad_policy_files_give_one_line_errors(model, tmp_path):
    with pytest.raises(InputError, match="not found"):
        PolicyFile(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_text("not numpy")
    with pytest.raises(InputError, match="not a policy file"):
        PolicyFile(tmp_path / "junk.npz")
    path = export_policy(model, tmp_path / "p.npz", [two_phase_intersection()], 5.0)
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    meta["layout"]["size"] = DEFAULT_LAYOUT.size + 1
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(InputError, match="layout"):
        PolicyFile(tmp_path / "old.npz")


def test_learned_policy_decides_every_interval_and_only_its_own_phases(model, tmp_path):
    inter = two_phase_intersection()
    path = export_policy(model, tmp_path / "p.npz", [inter], 5.0)
    policy = LearnedPolicy(path)
    ctrl = SignalController(inter, policy)
    n = len(inter.detectors)
    rng = np.random.default_rng(3)
    choices = []
    for t in range(200):
        count = rng.integers(0, 2, n).astype(float)
        readings = DetectorReadings(float(t), count > 0, count, rng.integers(0, 5, n).astype(float),
                                    rng.random(n), -np.ones(n))
        ctrl.step(readings)
        choices.append(policy._choice)
        assert 0 <= policy._choice < len(inter.phases)
    # the choice only changes on decision steps (every 5 s after the first)
    changes = [t for t in range(1, len(choices)) if choices[t] != choices[t - 1]]
    assert all(t % 5 == 0 for t in changes)
    assert not ctrl.monitor.in_flash


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_features_are_the_same_size_for_every_intersection(layout):
    for inter in (two_phase_intersection(), crossroads_with_crosswalks()):
        f = PhaseFeatures(inter, layout)
        n = len(inter.detectors)
        r = DetectorReadings(0.0, np.zeros(n, bool), np.ones(n), np.ones(n), np.ones(n) * 0.5, np.ones(n))
        x = f(0, None, True, 3.0, False, r, 5.0)
        assert x.shape == (layout.size,) and x.dtype == np.float32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert x[2:].reshape(MAX_PHASES, -1)[:, 0].sum() == len(inter.phases)  # the valid flags


def test_a_policy_of_the_first_layout_still_loads_and_decides_on_its_own_features(tmp_path):
    from sb3_contrib import MaskablePPO

    class _V1(_Features):
        observation_space = spaces.Box(0.0, 1.0, (LAYOUT_V1.size,), np.float32)

    model = MaskablePPO("MlpPolicy", _V1(), policy_kwargs={"net_arch": [16, 8]}, seed=4, device="cpu")
    inter = two_phase_intersection()
    loaded = PolicyFile(export_policy(model, tmp_path / "v1.npz", [inter], 5.0, layout=LAYOUT_V1))
    assert loaded.layout is LAYOUT_V1
    policy = LearnedPolicy(loaded)
    ctrl = SignalController(inter, policy)
    n = len(inter.detectors)
    for t in range(30):
        ctrl.step(DetectorReadings(float(t), np.zeros(n, bool), np.zeros(n), np.zeros(n), np.zeros(n), -np.ones(n)))
    assert policy.features.layout is LAYOUT_V1 and 0 <= policy._choice < len(inter.phases)
