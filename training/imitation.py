"""Warm start by imitation: record a classical policy's decisions through the core, fit the learner's actor to them.

A teacher (any registered classical policy: ``actuated``, ``maxpressure``, ...) drives every light of a training
episode through the core, exactly as in ``ondaverde simulate``. At the learner's decision cadence a
:class:`RecordingPolicy` writes down what the learner would see (the core's phase features, built by the same
:class:`controller.policies.learned.IntervalFeatures` the curb runs) and the phase the teacher asks for. The
actor is then fitted to those choices by cross-entropy under the lights' action masks, and the critic to the
discounted training reward that followed each decision, so PPO fine-tuning starts from a policy that already
works and a critic that already knows its value.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.intersection import Intersection
from controller.phase_features import DEFAULT_LAYOUT, LAYOUTS, MAX_PHASES, FeatureLayout
from controller.policies.base import Policy, SignalView
from controller.policies.learned import IntervalFeatures


class RecordingPolicy(Policy):
    """Records, every ``delta_time_s``, the learner's features and the teacher's choice. The teacher decides, or
    with a ``driver`` (the learner itself: DAgger) the driver decides and the teacher, shown the same data every
    step, only says what it would have asked for: so the learner is taught in the states its own control leads to.

    :param teacher: the classical policy whose choices are recorded.
    :param delta_time_s: the learner's decision interval, seconds.
    :param driver: the policy that controls the light (None: the teacher).
    :param layout: the learner's feature layout.
    """

    def __init__(self, teacher: Policy, delta_time_s: float, driver: Policy | None = None,
                 layout: FeatureLayout = DEFAULT_LAYOUT) -> None:
        self.teacher = teacher
        self.layout = layout
        self.driver = driver
        self.delta_time_s = delta_time_s
        self.name = f"recording-{teacher.name}"
        self.features: list[np.ndarray] = []
        self.choices: list[int] = []

    def reset(self, intersection: Intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        self.teacher.reset(intersection, step_s)
        if self.driver is not None:
            self.driver.reset(intersection, step_s)
        self.interval_features = IntervalFeatures(intersection, step_s, self.delta_time_s, self.layout)

    def decide(self, view: SignalView) -> int:
        choice = self.teacher.decide(view)
        features = self.interval_features.update(view)
        if features is not None:
            self.features.append(features)
            self.choices.append(int(choice))
        return choice if self.driver is None else self.driver.decide(view)


@dataclass(frozen=True)
class Demonstration:
    """One recorded teacher episode, every light's decisions stacked.

    :param observations: (decisions, layout size) phase features.
    :param actions: (decisions,) the teacher's phase index.
    :param masks: (decisions, MAX_PHASES) the light's own phase slots.
    :param returns: (decisions,) discounted sum of the training reward from each decision on.
    :param delay_s: the episode's delay (the project metric), seconds.
    :param reward_sum: the episode's summed reward over all lights.
    """

    observations: np.ndarray
    actions: np.ndarray
    masks: np.ndarray
    returns: np.ndarray
    delay_s: float
    reward_sum: float


def discounted(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted returns ``G_k = r_k + gamma * G_{k+1}`` (0 after the last reward).

    :param rewards: rewards in decision order.
    :param gamma: discount per decision.
    """
    out = np.zeros(len(rewards))
    acc = 0.0
    for k in range(len(rewards) - 1, -1, -1):
        acc = rewards[k] + gamma * acc
        out[k] = acc
    return out


def record_episode(network: str, scenario: str, teacher: str, seed: int, demand_scale: float,
                   delta_time_s: float, reward: str, gamma: float, driver: Path | None = None,
                   layout: str = DEFAULT_LAYOUT.name, input_lag_s: int = 0) -> Demonstration:
    """Run one episode with ``teacher`` at every light (through the core) and record it.

    :param network: network name or folder.
    :param scenario: scenario name.
    :param teacher: registered classical policy name.
    :param seed: SUMO seed.
    :param demand_scale: SUMO ``--scale``.
    :param delta_time_s: the learner's decision interval, seconds.
    :param reward: training reward name (``envs.rewards``), measured every decision interval.
    :param gamma: discount per decision for the returns.
    :param driver: a policy file that controls the lights while the teacher is recorded (None: the teacher
        controls them).
    :param layout: name of the learner's feature layout.
    :param input_lag_s: whole seconds between a detector reading and the lights acting on it: the teacher (and the
        features recorded) see the readings the lights act on, as the learner will.
    """
    from controller.policies.learned import LearnedPolicy, PolicyFile
    from controller.policies.registry import make_policy
    from envs.rewards import make_rewards
    from envs.simulation import SignalSimulation, intersections_of
    from networks.catalog import load_network

    spec = load_network(network)
    inters = intersections_of(spec)
    loaded = PolicyFile(driver) if driver is not None else None
    features = LAYOUTS[layout]
    recorders = {i.id: RecordingPolicy(make_policy(teacher), delta_time_s,
                                       LearnedPolicy(loaded) if loaded is not None else None, features)
                 for i in inters}
    sim = SignalSimulation(spec, spec.scenario(scenario), seed, policies=recorders, demand_scale=demand_scale,
                           input_lag_s=input_lag_s)
    try:
        reward_fns = make_rewards(reward, inters, sim.backend.fast)
        for f in reward_fns:
            f()
        rewards: list[list[float]] = [[] for _ in inters]
        every, t = max(1, round(delta_time_s)), 0
        while not sim.done:
            sim.advance()
            t += 1
            if t % every == 0:  # the state the decision taken every-1 steps ago led to
                for k, f in enumerate(reward_fns):
                    rewards[k].append(float(f()))
        delay = sim.close().delay_s
    finally:
        sim.cleanup()
    obs, acts, masks, rets, total = [], [], [], [], 0.0
    for k, i in enumerate(inters):
        rec = recorders[i.id]
        n = min(len(rec.choices), len(rewards[k]))
        obs.append(np.asarray(rec.features[:n], dtype=np.float32).reshape(n, features.size))
        acts.append(np.asarray(rec.choices[:n], dtype=np.int64))
        mask = np.zeros((n, MAX_PHASES), dtype=bool)
        mask[:, : len(i.phases)] = True
        masks.append(mask)
        r = np.asarray(rewards[k][:n])
        rets.append(discounted(r, gamma))
        total += float(r.sum())
    return Demonstration(np.concatenate(obs), np.concatenate(acts), np.concatenate(masks),
                         np.concatenate(rets).astype(np.float32), float(delay), total)


def record(network: str, scenarios: tuple[str, ...], teacher: str, seeds: list[int], demand_scales: list[float],
           delta_time_s: float, reward: str, gamma: float, jobs: int = 2,
           driver: Path | None = None, layout: str = DEFAULT_LAYOUT.name,
           input_lag_s: int = 0) -> list[Demonstration]:
    """Record teacher episodes in parallel processes (one SUMO each); scenario k is ``scenarios[k % len]``.

    :param network: network name or folder.
    :param scenarios: scenarios, cycled over the episodes.
    :param teacher: registered classical policy name.
    :param seeds: one SUMO seed per episode.
    :param demand_scales: one demand scale per episode.
    :param delta_time_s: the learner's decision interval, seconds.
    :param reward: training reward name.
    :param gamma: discount per decision.
    :param jobs: parallel processes.
    :param driver: a policy file that controls the lights while the teacher is recorded (None: the teacher).
    :param layout: name of the learner's feature layout.
    :param input_lag_s: whole seconds between a detector reading and the lights acting on it.
    """
    args = [(network, scenarios[k % len(scenarios)], teacher, s, d, delta_time_s, reward, gamma, driver, layout,
             input_lag_s)
            for k, (s, d) in enumerate(zip(seeds, demand_scales))]
    if jobs <= 1 or len(args) == 1:
        return [record_episode(*a) for a in args]
    with ProcessPoolExecutor(min(jobs, len(args)), mp_context=mp.get_context("spawn")) as pool:
        return list(pool.map(record_episode, *zip(*args)))


def fit(model, demos: list[Demonstration], epochs: int, batch_size: int = 512, value_weight: float = 0.5,
        seed: int = 0, layout: FeatureLayout = DEFAULT_LAYOUT) -> dict:
    """Fit a MaskablePPO model's actor to the teacher's choices (masked cross-entropy) and its critic to the
    recorded returns, with the model's own optimiser.

    :param model: an sb3-contrib MaskablePPO model (its policy is trained in place).
    :param demos: recorded episodes.
    :param epochs: passes over the data.
    :param batch_size: samples per gradient step.
    :param value_weight: weight of the critic's squared error against the cross-entropy.
    :param seed: shuffling seed.
    :param layout: the feature layout of the recorded observations.
    :return: the fit's final accuracy (share of decisions where the actor's choice is the teacher's), its
        cross-entropy and the critic's explained variance, all on the training data; for scale, the accuracy of
        always asking for the current phase (``keep_accuracy``) and of always naming the teacher's most frequent
        slot (``majority_accuracy``).
    """
    import torch

    obs = torch.as_tensor(np.concatenate([d.observations for d in demos]))
    act = torch.as_tensor(np.concatenate([d.actions for d in demos]))
    mask = np.concatenate([d.masks for d in demos])
    ret = torch.as_tensor(np.concatenate([d.returns for d in demos]))
    policy = model.policy
    policy.set_training_mode(True)
    rng = np.random.default_rng(seed)
    n = len(act)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            values, log_prob, _ = policy.evaluate_actions(obs[idx], act[idx], action_masks=mask[idx])
            loss = -log_prob.mean() + value_weight * torch.nn.functional.mse_loss(values.flatten(), ret[idx])
            policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), model.max_grad_norm)
            policy.optimizer.step()
    policy.set_training_mode(False)
    with torch.no_grad():
        values, log_prob, _ = policy.evaluate_actions(obs, act, action_masks=mask)
        chosen, _ = model.predict(obs.numpy(), deterministic=True, action_masks=mask)
    values = values.flatten().numpy()
    labels = act.numpy()
    current = obs.numpy()[:, [layout.column(k, "current") for k in range(MAX_PHASES)]].argmax(axis=1)
    explained = 1.0 - float(np.var(ret.numpy() - values) / max(np.var(ret.numpy()), 1e-12))
    return {"decisions": int(n), "accuracy": float(np.mean(chosen == labels)),
            "keep_accuracy": float(np.mean(current == labels)),
            "majority_accuracy": float(np.bincount(labels, minlength=MAX_PHASES).max() / max(n, 1)),
            "cross_entropy": float(-log_prob.mean()), "critic_explained_variance": explained}
