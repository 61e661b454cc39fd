"""PettingZoo parallel environment: one agent per intersection, over the same core as the Gymnasium env."""

from __future__ import annotations

import functools

from gymnasium import spaces
from pettingzoo import ParallelEnv

from envs.episode import DEFAULT_DELTA_TIME_S, Episodes
from networks.catalog import DEFAULT_NETWORK


class SignalParallelEnv(ParallelEnv):
    """One agent per traffic light; each chooses its intersection's next phase every ``delta_time_s``.

    Parameters as :class:`envs.gym_env.SignalEnv`, with ``agents`` a list of traffic-light ids (all if None).
    """

    metadata = {"render_modes": [], "name": "ondaverde_signals_v0"}

    def __init__(self, network=DEFAULT_NETWORK, scenario: str | None = None, agents: list[str] | None = None,
                 delta_time_s: float = DEFAULT_DELTA_TIME_S, observation: str = "detectors", reward: str = "diff-waiting-time",
                 gui: bool = False, use_traci: bool = False) -> None:
        self.episodes = Episodes(network, scenario, agents, delta_time_s, observation, reward, gui=gui,
                                 use_traci=use_traci)
        self.possible_agents = list(self.episodes.agents)
        self.agents: list[str] = []
        ep = self.episodes
        self._obs_spaces = {a: ep.observe[a].space() for a in self.possible_agents}
        self._act_spaces = {a: spaces.Discrete(len(ep.intersections[ep.agent_index[a]].phases))
                            for a in self.possible_agents}

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str) -> spaces.Discrete:
        return self._act_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.episodes.start(seed)
        self.agents = list(self.possible_agents)
        info = self.episodes.info()
        return {a: self.episodes.observation(a) for a in self.agents}, {a: dict(info) for a in self.agents}

    def step(self, actions: dict):
        ep = self.episodes
        ep.decide({a: int(actions[a]) for a in self.agents if a in actions})
        obs = {a: ep.observation(a) for a in self.agents}
        batch = dict(zip(ep.agents, ep.rewards_now()))
        rewards = {a: batch[a] for a in self.agents}
        done = ep.sim.done
        info = ep.info()
        terminations = {a: False for a in self.agents}
        truncations = {a: done for a in self.agents}
        infos = {a: dict(info) for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def close(self) -> None:
        self.episodes.close()
