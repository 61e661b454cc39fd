"""The discharge hold between a policy and the phase machine, and training with it being what runs at the curb."""

from __future__ import annotations

import numpy as np
import pytest

from controller.discharge_hold import DischargeHold
from controller.phase_features import LAYOUT_V1, MAX_PHASES
from controller.policies.base import DetectorReadings, Interval, SignalView
from controller.policies.learned import LearnedPolicy, PolicyFile
from controller.testing import two_phase_intersection


def _view(inter, t: float, phase: int = 0, elapsed: float = 12.0, min_done: bool = True,
          interval: Interval = Interval.GREEN, on=()) -> SignalView:
    readings = DetectorReadings.empty(len(inter.detectors), t)
    readings.occupied[list(on)] = True
    return SignalView(inter, readings, phase, phase, interval, elapsed, min_done)


def _stopbars(inter, links) -> list[int]:
    return [k for k, d in enumerate(inter.detectors) if d.kind == "stopbar" and set(d.links) & set(links)]


def test_a_change_waits_while_the_queue_it_would_stop_crosses_its_stop_bar_and_goes_after_the_gap():
    inter = two_phase_intersection()
    hold = DischargeHold(inter, gap_s=2.0)
    ns = _stopbars(inter, inter.phases[0].greens)
    for t in range(10, 15):  # a vehicle over phase 0's stop bars every second
        view = _view(inter, t, on=ns)
        hold.update(view.readings)
        assert hold.choose(view, 1) == 0
    view = _view(inter, 15.0)
    hold.update(view.readings)
    assert hold.choose(view, 1) == 0  # 1 s gap: still discharging
    view = _view(inter, 16.0)
    hold.update(view.readings)
    assert hold.choose(view, 1) == 1 and hold.holds == 6


def test_loops_of_the_phase_asked_for_and_of_movements_that_stay_green_do_not_hold():
    inter = two_phase_intersection()
    hold = DischargeHold(inter, gap_s=2.0)
    ew = _stopbars(inter, inter.phases[1].greens)
    view = _view(inter, 10.0, on=ew)  # vehicles waiting on the phase asked for: no reason to keep phase 0
    hold.update(view.readings)
    assert hold.choose(view, 1) == 1 and hold.holds == 0


def test_the_hold_steps_aside_at_max_green_and_outside_green_and_keeps_the_green_during_min_green():
    inter = two_phase_intersection(min_green_s=5.0, max_green_s=40.0)
    hold = DischargeHold(inter, gap_s=2.0)
    ns = _stopbars(inter, inter.phases[0].greens)
    busy = _view(inter, 50.0, elapsed=40.0, on=ns)
    hold.update(busy.readings)
    assert hold.choose(busy, 1) == 1  # max green: the machine ends it anyway
    assert hold.choose(_view(inter, 50.0, interval=Interval.YELLOW, on=ns), 1) == 1
    assert hold.choose(_view(inter, 60.0, elapsed=2.0, min_done=False), 1) == 0  # the request waits for min green
    assert hold.choose(_view(inter, 60.0), 0) == 0


def test_a_hold_gap_of_zero_or_less_is_refused():
    with pytest.raises(ValueError, match="discharge hold gap"):
        DischargeHold(two_phase_intersection(), gap_s=0.0)


def test_rl_plus_hold_is_a_learned_controller_only():
    from controller.errors import InputError
    from envs.runner import check_controller

    assert check_controller("rl+hold") == "rl+hold"
    assert check_controller("maxpressure+hold@O=rl") == "maxpressure+hold@O=rl"
    with pytest.raises(InputError, match="discharge hold is for the learned policy"):
        check_controller("actuated+hold")


class _ScriptedFile(PolicyFile):
    """A policy file whose "network" answers a script of phase choices, one per decision."""

    def __init__(self, script: list[int], delta_time_s: float, hold_s: float) -> None:
        self.script, self.delta_time_s, self.discharge_hold_s = script, delta_time_s, hold_s
        self.layout, self.action_mask, self.calls = LAYOUT_V1, True, 0
        self.seen: list[np.ndarray] = []  # the features the curb decided on

    def check(self, intersection) -> None:
        pass

    def logits(self, features: np.ndarray) -> np.ndarray:
        self.seen.append(np.array(features))
        out = np.zeros(MAX_PHASES)
        out[self.script[min(self.calls, len(self.script) - 1)]] = 1.0
        self.calls += 1
        return out


@pytest.mark.sumo
@pytest.mark.parametrize("hold_s, lag_s", [(2.0, 0), (2.0, 1), (0.0, 2)])
def test_training_with_the_hold_sees_and_does_exactly_what_the_curb_does(hold_s, lag_s):
    """The same scripted requests through the training environment (agents, hold, input lag) and through the curb's
    learned policy (its file says hold; the run has the same input lag): the same observations at every decision,
    the same holds and the same traffic."""
    from envs.episode import Episodes
    from envs.simulation import SignalSimulation, intersections_of
    from networks.catalog import load_network

    spec = load_network("grid")
    inters = intersections_of(spec)
    delta, decisions = 5.0, 100
    rng = np.random.default_rng(7)
    scripts = {i.id: [int(p) for p in rng.integers(0, len(i.phases), decisions)] for i in inters}

    episodes = Episodes(spec, observation="phases-v1", reward="queue", delta_time_s=delta, discharge_hold_s=hold_s,
                        input_lag_s=lag_s)
    episodes.start(11)
    trained = [np.stack(episodes.observations())]
    for k in range(decisions - 1):
        episodes.decide({a: scripts[a][k] for a in episodes.agents})
        trained.append(np.stack(episodes.observations()))
    sim = episodes.sim
    trained_states = [c.state for c in sim.controllers]
    trained_holds = [c.policy.hold.holds if hold_s else 0 for c in sim.controllers]
    trained_time = sim.time_s
    episodes.close()

    files = {i.id: _ScriptedFile(scripts[i.id], delta, hold_s) for i in inters}
    learners = {i.id: LearnedPolicy(files[i.id]) for i in inters}
    deployed = SignalSimulation(spec, spec.scenario(None), 11, policies=learners, input_lag_s=lag_s)
    while deployed.time_s < trained_time:
        deployed.advance()
    assert all((p.hold is not None) == (hold_s > 0) for p in learners.values())  # the file's hold is the curb's
    curb_states = [c.state for c in deployed.controllers]
    curb_holds = [p.hold.holds if hold_s else 0 for p in learners.values()]
    deployed.advance()  # the curb decides on the last observation at the next step
    deployed.cleanup()

    assert (sum(trained_holds) > 0) == (hold_s > 0)  # the hold did act in this run
    assert curb_holds == trained_holds
    assert curb_states == trained_states
    for k, inter in enumerate(inters):
        curb = np.stack(files[inter.id].seen)
        training = np.stack([obs[k] for obs in trained])
        assert curb.shape == training.shape == (decisions, LAYOUT_V1.size)
        assert np.ptp(training[:, 2:], axis=0).max() > 0
        np.testing.assert_array_equal(curb, training)


@pytest.mark.sumo
def test_an_episode_ending_inside_a_decision_interval_is_observed_to_its_end():
    """A horizon that is not a whole number of intervals: the last observation covers the seconds there were."""
    from envs.episode import Episodes
    from networks.catalog import load_network

    spec = load_network("single")
    horizon = spec.scenario(None).end_s - spec.scenario(None).begin_s
    delta = next(d for d in (7.0, 11.0, 13.0) if horizon % d)
    episodes = Episodes(spec, observation="phases-v1", reward="queue", delta_time_s=delta, discharge_hold_s=2.0)
    episodes.start(3)
    episodes.observations()
    decisions = 0
    while not episodes.sim.done:
        episodes.decide({a: 0 for a in episodes.agents})
        last = episodes.observations()
        decisions += 1
    assert decisions == -(-horizon // delta) and len(last) == len(episodes.agents)
    episodes.close()
