"""The learner's seat in the core during training: the agent's latest request, seen and filtered exactly as the
curb's :class:`~controller.policies.learned.LearnedPolicy` sees and filters its own choice.

A training environment whose agents' requests must go through the discharge hold (:mod:`controller.discharge_hold`)
steps every light every second with its detector data, as the curb does, and attaches this policy: at each decision
step the environment takes :meth:`AgentPolicy.observe` (the same :class:`~controller.policies.learned.IntervalFeatures`
vector the curb's policy decides on), the agent answers, :attr:`AgentPolicy.requested` is set, and every second
:meth:`AgentPolicy.decide` passes that request through the hold.
"""

from __future__ import annotations

import numpy as np

from controller.discharge_hold import DischargeHold
from controller.intersection import Intersection
from controller.phase_features import DEFAULT_LAYOUT, FeatureLayout
from controller.policies.base import Policy, SignalView
from controller.policies.learned import IntervalFeatures


class AgentPolicy(Policy):
    """Asks for the phase an outside agent requested (the current one until it requests), through the hold.

    :param delta_time_s: seconds between the agent's decisions (the features' interval).
    :param layout: the feature layout the agent observes.
    :param discharge_hold_s: the hold's gap, seconds (0: no hold).
    """

    name = "agent"

    def __init__(self, delta_time_s: float, layout: FeatureLayout = DEFAULT_LAYOUT,
                 discharge_hold_s: float = 0.0) -> None:
        self.delta_time_s = delta_time_s
        self.layout = layout
        self.discharge_hold_s = float(discharge_hold_s)

    def reset(self, intersection: Intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        self.interval_features = IntervalFeatures(intersection, step_s, self.delta_time_s, self.layout)
        self.hold = DischargeHold(intersection, self.discharge_hold_s, step_s) if self.discharge_hold_s > 0 else None
        #: the phase the agent asks for (index), or None before its first request
        self.requested: int | None = None
        self._observed: np.ndarray | None = None

    def observe(self, view: SignalView, final: bool = False) -> np.ndarray:
        """The features of this decision step (call it before the step's :meth:`decide`; again on the same step it
        returns the same vector).

        :param final: the episode ended, perhaps inside an interval: the features of the steps it had.
        :raises RuntimeError: when this step is not a decision step of the features' interval (and not final).
        """
        if self._observed is None:
            features = self.interval_features.update(view, now=final)
            if features is None:
                raise RuntimeError("the agent observed between its decision steps")
            self._observed = features
        return self._observed

    def decide(self, view: SignalView) -> int:
        if self._observed is not None:  # this step's readings were taken when the agent observed
            self._observed = None
        elif self.interval_features.update(view) is not None:
            raise RuntimeError("a decision step passed without the agent observing it")
        choice = view.phase if self.requested is None else self.requested
        if self.hold is None:
            return choice
        self.hold.update(view.readings)
        return self.hold.choose(view, choice)
