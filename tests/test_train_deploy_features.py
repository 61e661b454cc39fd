"""What a learned policy sees at the curb is what it saw in training: the training environment's observation
and the deployed policy's features are the same vectors on the same SUMO run."""

from __future__ import annotations

import numpy as np
import pytest

from controller.phase_features import FLOW_SCALE_VPS, LAYOUTS, MAX_PHASES
from controller.policies.base import Policy, SignalView
from controller.policies.learned import IntervalFeatures

pytestmark = pytest.mark.sumo

DELTA_S = 5.0
DECISIONS = 120  # 600 simulated seconds


class _ScriptedLearner(Policy):
    """Asks for the scripted phases at the learner's cadence and records the features the curb computes."""

    name = "scripted"

    def __init__(self, script: list[int], layout) -> None:
        self.script = script
        self.layout = layout
        self.seen: list[np.ndarray] = []

    def reset(self, intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        self.interval_features = IntervalFeatures(intersection, step_s, DELTA_S, self.layout)

    def decide(self, view: SignalView) -> int:
        features = self.interval_features.update(view)
        if features is not None:
            self.seen.append(features)
        return self.script[min(len(self.seen), len(self.script)) - 1]


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
@pytest.mark.parametrize("network", ["single", "grid"])
def test_the_training_observation_is_the_feature_vector_the_deployed_policy_computes(network, layout):
    from envs.episode import Episodes
    from envs.phase_observation import OBSERVATION_OF_LAYOUT
    from envs.simulation import SignalSimulation, intersections_of
    from networks.catalog import load_network

    spec = load_network(network)
    rng = np.random.default_rng(3)
    inters = intersections_of(spec)
    scripts = {i.id: [int(p) for p in rng.integers(0, len(i.phases), DECISIONS)] for i in inters}

    episodes = Episodes(spec, observation=OBSERVATION_OF_LAYOUT[layout.name], reward="queue", delta_time_s=DELTA_S)
    # an earlier episode first: what an observation remembers (when each phase was last served) starts afresh
    episodes.start(5)
    for k in range(60):
        episodes.decide({a: (k // 3) % len(inters[episodes.agent_index[a]].phases) for a in episodes.agents})
        episodes.observations()
    episodes.start(11)
    trained = [np.stack(episodes.observations())]
    for k in range(DECISIONS - 1):
        episodes.decide({a: scripts[a][k] for a in episodes.agents})
        trained.append(np.stack(episodes.observations()))
    episodes.close()

    learners = {i.id: _ScriptedLearner(scripts[i.id], layout) for i in inters}
    sim = SignalSimulation(spec, spec.scenario(None), 11, policies=learners)
    while min(len(p.seen) for p in learners.values()) < DECISIONS:
        sim.advance()
    sim.cleanup()

    for k, inter in enumerate(inters):
        deployed = np.stack(learners[inter.id].seen[:DECISIONS])
        training = np.stack([obs[k] for obs in trained])
        assert deployed.shape == training.shape
        # detector features vary over the run (the comparison is not between two empty vectors)
        assert np.ptp(training[:, 2:], axis=0).max() > 0
        # everything but the advance-loop flow is the very same number
        flow = [layout.column(slot, "advance_flow") for slot in range(MAX_PHASES)]
        others = np.setdiff1d(np.arange(deployed.shape[1]), flow)
        bad = np.argwhere(~np.isclose(deployed[:, others], training[:, others], atol=1e-6))
        assert bad.size == 0, f"{inter.id}: first differences (decision, feature) {bad[:5].tolist()}"
        # SUMO counts a vehicle standing on a loop across an aggregation boundary in both periods: summed 1-s
        # counts (the curb) can exceed the 5-s count (training) by a vehicle now and then, never by more
        one_vehicle = 1.0 / (DELTA_S * FLOW_SCALE_VPS)
        diff = deployed[:, flow] - training[:, flow]
        assert diff.min() >= -1e-6 and diff.max() <= one_vehicle + 1e-6
        assert np.abs(diff).mean() < 0.1 * one_vehicle
