"""Shared machinery of the Gymnasium and PettingZoo environments: episodes, seeds, decision steps."""

from __future__ import annotations

import numpy as np

from controller.errors import InputError
from controller.policies.agent import AgentPolicy
from controller.policies.registry import make_policy
from envs.observations import OBSERVATIONS
from envs import phase_observation  # noqa: F401  (registers the "phases" observation)
from envs.rewards import REWARDS, make_rewards
from envs.simulation import SignalSimulation, check_input_lag_s, intersections_of
from networks.catalog import DEFAULT_NETWORK, NetworkSpec, load_network


#: seconds between agent decisions by default (sumo-rl's default too)
DEFAULT_DELTA_TIME_S = 5.0


class Episodes:
    """Runs SUMO episodes in which some traffic lights take requests from agents every ``delta_time_s``.

    :param network: network name/folder or a :class:`NetworkSpec`.
    :param scenario: scenario name (the network's default if None).
    :param agents: traffic-light ids the agents control (all if None); the others run ``others``.
    :param delta_time_s: seconds between agent decisions.
    :param observation: observation function name.
    :param reward: reward function name.
    :param others: policy name for lights no agent controls.
    :param gui: show sumo-gui.
    :param use_traci: force TraCI.
    :param discharge_hold_s: pass the agents' requests through the discharge hold with this gap, seconds
        (:mod:`controller.discharge_hold`; 0: none). The agents' lights then run as at the curb: an
        :class:`~controller.policies.agent.AgentPolicy` stepped every second with its detector data, observations
        built by the curb's interval features (a ``phases`` observation is required).
    :param input_lag_s: whole seconds between a detector reading and the lights acting on it, as in a central
        system's live loop (:class:`~envs.simulation.SignalSimulation`; 0: the same second). The agents' lights then
        run as at the curb, as with the hold, and the agents observe the readings their requests are acted on with.
    """

    def __init__(self, network: str | NetworkSpec = DEFAULT_NETWORK, scenario: str | None = None,
                 agents: list[str] | None = None, delta_time_s: float = DEFAULT_DELTA_TIME_S, observation: str = "detectors",
                 reward: str = "diff-waiting-time", others: str = "fixed", gui: bool = False,
                 use_traci: bool = False, discharge_hold_s: float = 0.0, input_lag_s: int = 0) -> None:
        self.network = load_network(network) if isinstance(network, str) else network
        self.scenario = self.network.scenario(scenario)
        self.intersections = intersections_of(self.network)
        ids = [i.id for i in self.intersections]
        self.agents = list(ids) if agents is None else list(agents)
        for a in self.agents:
            if a not in ids:
                raise InputError(f"no traffic light {a!r} in {self.network.net_file}")
        if observation not in OBSERVATIONS:
            raise InputError(f"unknown observation {observation!r}; choose from: {', '.join(OBSERVATIONS)}")
        if reward not in REWARDS:
            raise InputError(f"unknown reward {reward!r}; choose from: {', '.join(REWARDS)}")
        if delta_time_s < 1:
            raise InputError(f"delta time {delta_time_s} s must be at least one simulation step (1 s)")
        self.delta_time_s = delta_time_s
        self.agent_index = {a: ids.index(a) for a in self.agents}
        self.observe = {a: OBSERVATIONS[observation](self.intersections[k], delta_time_s)
                        for a, k in self.agent_index.items()}
        self._reward_cls = REWARDS[reward]
        if not discharge_hold_s >= 0:
            raise InputError(f"discharge hold {discharge_hold_s} s must be 0 or more seconds")
        check_input_lag_s(input_lag_s)
        #: the agents' lights run as at the curb: stepped every second through an AgentPolicy
        self.at_curb = discharge_hold_s > 0 or input_lag_s > 0
        what = "the discharge hold" if discharge_hold_s > 0 else "an input lag"
        if self.at_curb and not float(delta_time_s).is_integer():
            raise InputError(f"with {what} the decision interval {delta_time_s} s must be whole seconds")
        layout = getattr(OBSERVATIONS[observation], "layout", None)
        if self.at_curb and layout is None:
            raise InputError(f"{what} needs a phases observation (the curb's features), not {observation!r}")
        self.discharge_hold_s, self._layout = float(discharge_hold_s), layout
        self.input_lag_s = input_lag_s
        self._others, self._gui, self._use_traci = others, gui, use_traci
        self.sim: SignalSimulation | None = None
        self._base_seed = 0
        self._episode = 0

    def start(self, seed: int | None, scenario: str | None = None, demand_scale: float = 1.0) -> None:
        """Begin a new episode. The SUMO seed changes every episode (base seed + episode number).

        :param seed: new base seed (None: keep counting from the last one).
        :param scenario: switch to this scenario of the network from now on (None: keep the current one).
        :param demand_scale: multiplies this episode's demand (SUMO ``--scale``).
        """
        self.close()
        if scenario is not None:
            self.scenario = self.network.scenario(scenario)
        if seed is not None:
            self._base_seed, self._episode = int(seed), 0
        sumo_seed = self._base_seed + self._episode
        self._episode += 1
        policies = {i.id: make_policy(self._others) for i in self.intersections if i.id not in self.agent_index}
        if self.at_curb:  # the agents' lights as at the curb: stepped every second (through the hold, if any)
            policies.update({a: AgentPolicy(self.delta_time_s, self._layout, self.discharge_hold_s)
                             for a in self.agent_index})
        self.sim = SignalSimulation(self.network, self.scenario, sumo_seed, policies=policies, gui=self._gui,
                                    use_traci=self._use_traci, read_period_s=self.delta_time_s,
                                    demand_scale=demand_scale, measure_priority_vehicles=False,
                                    input_lag_s=self.input_lag_s)
        functions = make_rewards(self._reward_cls.name, [self.intersections[k] for k in self.agent_index.values()],
                                 self.sim.backend.fast)
        self.rewards = dict(zip(self.agent_index, functions))
        for r in self.rewards.values():
            r()  # prime difference-based rewards
        for o in self.observe.values():
            o.reset()

    def decide(self, actions: dict[str, int]) -> None:
        """Pass the agents' phase requests to the core and run ``delta_time_s`` seconds."""
        sim = self.sim
        requests = {self.agent_index[a]: int(p) for a, p in actions.items()}
        steps = int(round(self.delta_time_s))
        read_always = len(self.agent_index) < len(self.intersections)  # classical policies need every step
        if self.at_curb:  # the agents' policies take the requests and need every step too
            for k, phase in requests.items():
                sim.controllers[k].policy.requested = phase
            requests, read_always = {}, True
        for s in range(steps):
            if sim.done:
                break
            sim.advance(requests if s == 0 else None, read=read_always or s == steps - 1)

    def observations(self) -> list:
        """Every agent's observation, in agent order (vectorised across agents where the function allows)."""
        fns = [self.observe[a] for a in self.agents]
        ks = [self.agent_index[a] for a in self.agents]
        sim = self.sim
        if self.at_curb:  # the curb's interval features, from the agents' own policies
            controllers, acted_on = [sim.controllers[k] for k in ks], sim.readings_acted_on_next
            return [c.policy.observe(c.view(acted_on[k]), final=sim.done) for c, k in zip(controllers, ks)]
        return type(fns[0]).batch(fns, [sim.controllers[k] for k in ks], [sim.readings[k] for k in ks])

    def observations_flat(self):
        """Every agent's observation concatenated, in agent order."""
        fns = [self.observe[a] for a in self.agents]
        cls = type(fns[0])
        if len(fns) < 2 or not hasattr(cls, "batch_flat") or self.at_curb:
            return np.concatenate(self.observations())
        ks = [self.agent_index[a] for a in self.agents]
        sim = self.sim
        return cls.batch_flat(fns, [sim.controllers[k] for k in ks], [sim.readings[k] for k in ks])

    def observation(self, agent: str):
        k = self.agent_index[agent]
        ctrl = self.sim.controllers[k]
        if self.at_curb:
            return ctrl.policy.observe(ctrl.view(self.sim.readings_acted_on_next[k]), final=self.sim.done)
        return self.observe[agent](ctrl, self.sim.readings[k])

    def reward(self, agent: str) -> float:
        return float(self.rewards[agent]())

    def rewards_now(self) -> list[float]:
        """Every agent's reward for the last decision interval, in agent order (one batched read of SUMO)."""
        return self._reward_cls.batch([self.rewards[a] for a in self.agents])

    def info(self) -> dict:
        sim = self.sim
        return {"time_s": sim.time_s, "violations": sim.violations()}

    def close(self) -> None:
        if self.sim is not None:
            self.sim.cleanup()
            self.sim = None
