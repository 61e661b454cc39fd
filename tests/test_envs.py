"""The Gymnasium and PettingZoo environments pass their libraries' own API checkers, over SUMO and the core."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

from envs.gym_env import SignalEnv
from envs.pz_env import SignalParallelEnv
from networks.catalog import load_network

pytestmark = pytest.mark.sumo


def _short(name: str, end_s: float = 120.0):
    return load_network(name).with_horizon(None, end_s)


def test_gym_env_single_intersection_passes_check_env():
    env = SignalEnv(_short("single"))
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_gym_env_all_intersections_multidiscrete_passes_check_env():
    env = SignalEnv(_short("grid"))
    try:
        assert env.action_space.shape == (len(env.episodes.intersections),)
        check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_pettingzoo_parallel_env_passes_parallel_api_test():
    env = SignalParallelEnv(_short("grid", 60.0))
    try:
        parallel_api_test(env, num_cycles=20)
    finally:
        env.close()


def test_episode_runs_to_horizon_and_seeds_vary_per_episode():
    env = SignalEnv(_short("single", 200.0), delta_time_s=5)
    try:
        obs, info = env.reset(seed=7)
        assert env.observation_space.contains(obs)
        steps, truncated = 0, False
        while not truncated:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            steps += 1
            assert not terminated and np.isfinite(reward)
        assert steps == 40 and info["time_s"] == 200.0
        assert info["violations"] == 0
        first = env.episodes.sim.seed
        env.reset()
        assert env.episodes.sim.seed == first + 1  # SB3 seeds only the first reset: vary SUMO's seed ourselves
    finally:
        env.close()


def test_observations_come_only_from_detectors():
    env = SignalEnv(_short("single"))
    try:
        obs, _ = env.reset(seed=0)
        inter = env.episodes.intersections[0]
        # phase one-hot + 3 status values + 3 values per field detector: nothing else goes in
        assert obs.shape == (len(inter.phases) + 3 + 3 * len(inter.detectors),)
    finally:
        env.close()


def test_vectorised_observations_equal_the_per_intersection_ones():
    env = SignalEnv(_short("grid"))
    try:
        env.reset(seed=3)
        for k in range(12):
            env.step(np.full(env.action_space.shape, k % 2))
        ep = env.episodes
        batch = ep.observations()
        single = [ep.observation(a) for a in ep.agents]
        assert all(np.array_equal(b, s) for b, s in zip(batch, single))
        assert sum(float(s.sum()) for s in single) > 0  # detectors saw traffic: not comparing zeros
    finally:
        env.close()


def _rewards_over_decisions(reward: str, read) -> tuple[list[str], list, dict]:
    """30 decisions of every light of the grid (seed 6, phases alternating every three decisions); ``read(ep)``
    after each. Returns the agents, what was read, and the reward functions."""
    from envs.episode import Episodes

    ep = Episodes(_short("grid", 200.0), reward=reward)
    try:
        ep.start(seed=6)
        out = []
        for k in range(30):
            ep.decide({a: (k // 3 + i) % 2 for i, a in enumerate(ep.agents)})
            out.append(read(ep))
        return list(ep.agents), out, dict(ep.rewards)
    finally:
        ep.close()


@pytest.mark.parametrize("reward", ["diff-waiting-time", "queue", "pressure", "queue-neighbours"])
def test_batched_rewards_equal_the_per_intersection_ones(reward):
    """The rewards read in one pass over all lanes (what the environments use) are each intersection's own."""
    batched = _rewards_over_decisions(reward, lambda ep: ep.rewards_now())[1]
    single = _rewards_over_decisions(reward, lambda ep: [ep.reward(a) for a in ep.agents])[1]
    assert np.allclose(batched, single, rtol=0, atol=1e-9)
    assert any(r != 0 for row in single for r in row)  # traffic reached the lanes: not comparing zeros


def test_neighbour_queue_reward_adds_half_of_each_adjacent_lights_queue():
    """On the grid (lights joined by single edges) each light's neighbours are the lights next to it, and its
    reward is its own queue reward plus half of theirs, on the very same traffic."""
    agents, own, _ = _rewards_over_decisions("queue", lambda ep: ep.rewards_now())
    agents2, shared, rewards = _rewards_over_decisions("queue-neighbours", lambda ep: ep.rewards_now())
    own, shared = np.array(own), np.array(shared)
    neighbours = {a: sorted(b for b in agents if b != a and set(rewards[b].incoming) <= set(rewards[a].neighbour_lanes))
                  for a in agents}
    assert agents == agents2
    counts = sorted(len(n) for n in neighbours.values())
    assert counts[0] == 2 and counts[-1] == 4  # corners have two neighbours, inner lights four
    assert all(a in neighbours[b] for a in agents for b in neighbours[a])  # adjacency is mutual
    k = {a: i for i, a in enumerate(agents)}
    expected = np.stack([own[:, k[a]] + 0.5 * sum(own[:, k[b]] for b in neighbours[a]) for a in agents], axis=1)
    assert np.allclose(shared, expected, rtol=0, atol=1e-9)
    assert (own != 0).any() and not np.allclose(shared, own)


def test_flat_observation_of_all_agents_equals_the_concatenated_ones():
    env = SignalEnv(_short("grid"))
    try:
        obs, _ = env.reset(seed=4)
        for k in range(10):
            obs, *_ = env.step(np.full(env.action_space.shape, k % 2))
        ep = env.episodes
        assert np.array_equal(obs, np.concatenate([ep.observation(a) for a in ep.agents]))
    finally:
        env.close()


def test_skipping_quiet_controllers_between_decisions_changes_nothing():
    """Controllers known to hold their state are stepped lazily between reads: same observations, rewards and
    signal states as stepping every controller every second."""
    def episode(skip: bool):
        env = SignalEnv(_short("grid", 300.0))
        try:
            obs, _ = env.reset(seed=5)
            env.episodes.sim.skip_quiet = skip
            rng = np.random.default_rng(1)
            out = [obs]
            for _ in range(40):
                obs, reward, _, _, info = env.step(rng.integers(0, 2, env.action_space.shape))
                sim = env.episodes.sim
                out += [obs, np.array([reward, info["violations"]]),
                        np.array([c.machine.now for c in sim.controllers]),
                        np.array([hash(c.state) for c in sim.controllers])]
            return out
        finally:
            env.close()

    lazy, every = episode(True), episode(False)
    assert all(np.array_equal(a, b) for a, b in zip(lazy, every))
    assert len(lazy) == len(every) and sum(float(o.sum()) for o in lazy[1::4]) > 0  # observations saw traffic
