"""Gymnasium environment: one agent driving one intersection, or all of them with a MultiDiscrete action.

The agent chooses the next phase; min/max green, yellow, all-red and pedestrian timing are enforced by
the core's phase machine, and the safety monitor checks every state, exactly as at the curb.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.episode import DEFAULT_DELTA_TIME_S, Episodes
from networks.catalog import DEFAULT_NETWORK


class SignalEnv(gym.Env):
    """Traffic-signal control on a SUMO network.

    :param network: network name or folder (bundled: ``miraflores``, the default, ``grid``, ``single``) or a NetworkSpec.
    :param scenario: scenario name (the network's default if None).
    :param traffic_light: one traffic-light id to control, or None for all (MultiDiscrete action).
    :param delta_time_s: seconds between decisions.
    :param observation: observation function name (see envs.observations).
    :param reward: reward function name (see envs.rewards); summed over intersections when controlling all.
    :param gui: show sumo-gui.
    """

    metadata = {"render_modes": []}

    def __init__(self, network=DEFAULT_NETWORK, scenario: str | None = None, traffic_light: str | None = None,
                 delta_time_s: float = DEFAULT_DELTA_TIME_S, observation: str = "detectors", reward: str = "diff-waiting-time",
                 gui: bool = False, use_traci: bool = False) -> None:
        agents = None if traffic_light is None else [traffic_light]
        self.episodes = Episodes(network, scenario, agents, delta_time_s, observation, reward, gui=gui,
                                 use_traci=use_traci)
        ep = self.episodes
        n_phases = [len(ep.intersections[ep.agent_index[a]].phases) for a in ep.agents]
        boxes = [ep.observe[a].space() for a in ep.agents]
        self.observation_space = spaces.Box(0.0, 1.0, shape=(sum(b.shape[0] for b in boxes),), dtype=np.float32)
        self.action_space = spaces.Discrete(n_phases[0]) if traffic_light else spaces.MultiDiscrete(n_phases)
        self._single = traffic_light is not None

    def _obs(self) -> np.ndarray:
        return self.episodes.observations_flat()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episodes.start(seed)
        return self._obs(), self.episodes.info()

    def step(self, action):
        ep = self.episodes
        acts = [int(action)] if self._single else [int(a) for a in np.asarray(action).ravel()]
        ep.decide(dict(zip(ep.agents, acts)))
        reward = sum(ep.rewards_now())
        truncated = ep.sim.done
        return self._obs(), reward, False, truncated, ep.info()

    def close(self) -> None:
        self.episodes.close()
