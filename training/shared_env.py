"""Parameter sharing over intersections: every traffic light of every SUMO process is one slot of one VecEnv.

Each worker process runs one SUMO simulation (libsumo holds one per process) in which all lights take requests
from the agent through the core. A slot's observation is its light's fixed per-phase feature vector
(:mod:`controller.phase_features`) and its action is a phase slot. :meth:`SharedSignalVecEnv.action_masks` names each
light's own slots (for sb3-contrib's MaskablePPO); an unmasked learner's slot beyond the light's phases asks to keep
the current phase (counted as a request the core could not follow). Every episode draws its scenario, demand
scale and seed from the training configuration, so the policy does not memorise one route file.
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from controller.phase_features import DEFAULT_LAYOUT, LAYOUTS, MAX_PHASES


@dataclass(frozen=True)
class EpisodeDraw:
    """How each training episode is drawn.

    :param network: network name or folder.
    :param scenarios: scenarios to draw from, uniformly.
    :param demand_scales: (low, high) of the uniform demand scale (SUMO ``--scale``).
    :param base_seed: SUMO seeds of worker *w* are ``base_seed + 1000 * w + episode``.
    :param delta_time_s: seconds between decisions.
    :param reward: reward function name (``envs.rewards``).
    :param layout: name of the feature layout the slots observe (``controller.phase_features.LAYOUTS``).
    :param discharge_hold_s: the agents' requests pass the discharge hold with this gap, seconds (0: none;
        :class:`envs.episode.Episodes`).
    :param input_lag_s: whole seconds between a detector reading and the lights acting on it (0: the same second;
        :class:`envs.episode.Episodes`).
    """

    network: str
    scenarios: tuple[str, ...]
    demand_scales: tuple[float, float] = (1.0, 1.0)
    base_seed: int = 0
    delta_time_s: float = 5.0
    reward: str = "diff-waiting-time"
    layout: str = DEFAULT_LAYOUT.name
    discharge_hold_s: float = 0.0
    input_lag_s: int = 0


def _worker(conn, draw: EpisodeDraw, worker: int) -> None:
    """One SUMO process: answers ``reset``/``step``/``close`` from the parent (which runs the policy)."""
    from envs.episode import Episodes
    from envs.phase_observation import OBSERVATION_OF_LAYOUT

    rng = np.random.default_rng(draw.base_seed * 7919 + worker)
    episodes = Episodes(draw.network, draw.scenarios[0], delta_time_s=draw.delta_time_s,
                        observation=OBSERVATION_OF_LAYOUT[draw.layout],
                        reward=draw.reward, discharge_hold_s=draw.discharge_hold_s,
                        input_lag_s=draw.input_lag_s)
    agents = episodes.agents
    n_phases = np.array([len(episodes.intersections[episodes.agent_index[a]].phases) for a in agents])
    count = 0
    totals = {"requests": 0, "invalid": 0, "deferred": 0}  # over the worker's life

    def start() -> np.ndarray:
        nonlocal count
        scenario = str(rng.choice(draw.scenarios))
        scale = float(rng.uniform(*draw.demand_scales))
        episodes.start(draw.base_seed + 1000 * worker + count, scenario, scale)
        count += 1
        return np.stack(episodes.observations())

    try:
        while True:
            cmd, data = conn.recv()
            if cmd == "reset":
                conn.send(("ok", start()))
            elif cmd == "step":
                actions = np.asarray(data, dtype=int)
                invalid = actions >= n_phases
                current = np.array([c.machine.phase for c in episodes.sim.controllers])
                chosen = np.where(invalid, current, actions)
                totals["requests"] += len(actions)
                totals["invalid"] += int(invalid.sum())
                episodes.decide(dict(zip(agents, chosen.tolist())))
                obs = np.stack(episodes.observations())
                rewards = np.array(episodes.rewards_now(), dtype=np.float32)
                sim = episodes.sim
                done = sim.done
                deferred = sum(c.machine.stats.deferred for c in sim.controllers)
                info = {"counters": {**totals, "deferred": totals["deferred"] + deferred}}
                if done:
                    totals["deferred"] += deferred
                    metrics = sim.close()
                    info["episode"] = {"delay": metrics.delay_s, "scenario": episodes.scenario.name,
                                       "teleports": metrics.teleports or 0, "violations": sim.violations(),
                                       "deferred": deferred}
                    terminal = obs
                    obs = start()
                    info["terminal_observation"] = terminal
                conn.send(("ok", (obs, rewards, done, info)))
            elif cmd == "close":
                episodes.close()
                conn.send(("ok", None))
                return
    except Exception as exc:  # report, don't hang the parent
        conn.send(("error", f"worker {worker}: {exc!r}\n{traceback.format_exc()}"))


class SharedSignalVecEnv(VecEnv):
    """``n_workers`` SUMO processes × their traffic lights, as one VecEnv of ``n_workers * lights`` slots.

    :param draw: how episodes are drawn.
    :param n_workers: SUMO processes.
    """

    def __init__(self, draw: EpisodeDraw, n_workers: int = 2) -> None:
        from envs.simulation import intersections_of
        from networks.catalog import load_network

        inters = intersections_of(load_network(draw.network))
        self.lights = [i.id for i in inters]
        ctx = mp.get_context("spawn")
        self._conns, self._procs = [], []
        for w in range(n_workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(child, draw, w), daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)
        self.n_lights = len(self.lights)
        phases = [len(i.phases) for i in inters]
        #: per slot, which phase slots are phases of its light (the same in every worker)
        self.masks = np.tile(np.arange(MAX_PHASES)[None, :] < np.array(phases)[:, None], (n_workers, 1))
        self.episode_infos: list[dict] = []
        #: per worker, cumulative: decisions asked, slots that are not a phase of the light, requests the
        #: phase machine had to defer (min green, clearances)
        self.counters: list[dict] = [{} for _ in range(n_workers)]
        self._actions = None
        super().__init__(n_workers * self.n_lights, spaces.Box(0.0, 1.0, (LAYOUTS[draw.layout].size,), np.float32),
                         spaces.Discrete(MAX_PHASES))

    def _recv(self, conn):
        status, payload = conn.recv()
        if status != "ok":
            raise RuntimeError(payload)
        return payload

    def reset(self) -> np.ndarray:
        for c in self._conns:
            c.send(("reset", None))
        return np.concatenate([self._recv(c) for c in self._conns])

    def step_async(self, actions: np.ndarray) -> None:
        n = self.n_lights
        for w, c in enumerate(self._conns):
            c.send(("step", np.asarray(actions)[w * n:(w + 1) * n]))

    def step_wait(self):
        n = self.n_lights
        obs, rewards, dones, infos = [], [], [], []
        for w, c in enumerate(self._conns):
            o, r, done, info = self._recv(c)
            obs.append(o)
            rewards.append(r)
            dones.append(np.full(n, done))
            self.counters[w] = info["counters"]
            if done:
                self.episode_infos.append(info["episode"])
                terminal = info["terminal_observation"]
                # the horizon ends an episode by time, not by a terminal state: bootstrap from it
                infos += [{"terminal_observation": terminal[k], "TimeLimit.truncated": True} for k in range(n)]
            else:
                infos += [{} for _ in range(n)]
        return np.concatenate(obs), np.concatenate(rewards), np.concatenate(dones), infos

    def close(self) -> None:
        for c in self._conns:
            try:
                c.send(("close", None))
                c.recv()
            except (EOFError, BrokenPipeError, OSError):
                pass
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()

    # the VecEnv API beyond stepping: the slots are not separate gym envs
    def get_attr(self, attr_name, indices=None):
        return [getattr(self, attr_name, None) for _ in self._indices(indices)]

    def set_attr(self, attr_name, value, indices=None) -> None:
        setattr(self, attr_name, value)

    def action_masks(self) -> np.ndarray:
        """(slots, MAX_PHASES) booleans: True where the slot's action is a phase of its light."""
        return self.masks

    def env_method(self, method_name, *args, indices=None, **kwargs):
        if method_name == "action_masks":  # what sb3-contrib's MaskablePPO asks every step
            return list(self.masks[list(self._indices(indices))])
        raise NotImplementedError("the slots of a SharedSignalVecEnv are not separate environments")

    def env_is_wrapped(self, wrapper_class, indices=None):
        return [False for _ in self._indices(indices)]

    def _indices(self, indices):
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else indices
