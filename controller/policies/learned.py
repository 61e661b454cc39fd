"""A learned policy at the curb: the trained network's forward pass in numpy, on the core's phase features.

The policy file (``.npz``, written by ``training/export.py``) holds the actor's weights, the observation layout
it was trained on, the decision interval and a signature of every intersection it was trained for. Loading it
for an intersection whose signature differs — other phases, other detectors, another layout — is refused with
a one-line :class:`InputError`, never a silent mismatch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from controller.discharge_hold import DischargeHold
from controller.errors import InputError
from controller.intersection import Intersection
from controller.phase_features import DEFAULT_LAYOUT, LAYOUTS, FeatureLayout, PhaseFeatures
from controller.policies.base import Interval, Policy, SignalView, presence

_ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}


def intersection_signature(intersection: Intersection) -> dict:
    """What must not change between training and use: phases (green links) and detectors (id, kind, links)."""
    return {"phases": [sorted(p.greens) for p in intersection.phases],
            "detectors": [[d.id, d.kind, sorted(d.links)] for d in intersection.detectors]}


class PolicyFile:
    """A loaded policy file.

    :param path: the ``.npz`` file.
    :raises InputError: when the file is missing, unreadable or not a policy of this layout.
    """

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                self.weights = [(data[f"w{k}"], data[f"b{k}"]) for k in range(int(meta["layers"]))]
        except FileNotFoundError:
            raise InputError(f"{path}: policy file not found") from None
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path}: not a policy file ({exc})") from None
        stored = meta.get("layout") if isinstance(meta.get("layout"), dict) else {}
        known = LAYOUTS.get(stored.get("name"))
        if known is None or stored != known.description():
            raise InputError(f"{path}: observation layout {stored.get('name')!r} is not one this version knows "
                             f"({', '.join(LAYOUTS)})")
        #: the feature layout the policy was trained on
        self.layout: FeatureLayout = known
        self.path = path
        self.meta = meta
        self.delta_time_s = float(meta["delta_time_s"])
        self.activation = _ACTIVATIONS[meta["activation"]]
        self.signatures: dict[str, dict] = meta["intersections"]
        #: trained with action masking: choose among the light's own phases only
        self.action_mask = bool(meta.get("action_mask", False))
        #: trained with the discharge hold between policy and phase machine (its gap, seconds; 0: without)
        self.discharge_hold_s = float(meta.get("discharge_hold_s", 0.0))
        if not self.discharge_hold_s >= 0:
            raise InputError(f"{path}: discharge hold {self.discharge_hold_s!r} s is not 0 or more seconds")
        #: trained for detector readings this many whole seconds old (a central system's input lag; 0: none). The
        #: lag is the deployment's, not the policy's: ``rl`` does not add it (evaluate with ``--input-lag``).
        self.input_lag_s = meta.get("input_lag_s", 0)
        if isinstance(self.input_lag_s, bool) or not isinstance(self.input_lag_s, int) or self.input_lag_s < 0:
            raise InputError(f"{path}: input lag {self.input_lag_s!r} is not a whole number of seconds, 0 or more")

    def logits(self, features: np.ndarray) -> np.ndarray:
        """The actor's action logits for one feature vector (or a batch, one per row)."""
        x = np.asarray(features, dtype=np.float64)
        for w, b in self.weights[:-1]:
            x = self.activation(x @ w.T + b)
        w, b = self.weights[-1]
        return x @ w.T + b

    def check(self, intersection: Intersection) -> None:
        """Refuse an intersection this policy was not trained for (one line naming what differs)."""
        sig = self.signatures.get(intersection.id)
        if sig is None:
            raise InputError(f"{self.path}: trained for traffic lights {', '.join(sorted(self.signatures))}; "
                             f"{intersection.id!r} is not one of them")
        mine = intersection_signature(intersection)
        for key in ("phases", "detectors"):
            if sig[key] != mine[key]:
                raise InputError(f"{self.path}: traffic light {intersection.id!r} has other {key} than the policy "
                                 f"was trained on ({len(mine[key])} here, {len(sig[key])} in training)")


class IntervalFeatures:
    """The phase features a learned policy decides on, built every ``every`` steps: loop counts summed over the
    steps in between (and presence from them), everything else (stop-bar occupancy, vehicles and queues in radar
    and exit zones) as read on the decision step. That is what the training environment reads when it reads
    detectors once per decision interval (SUMO's loops count over their aggregation period; occupancy, queue and
    zone vehicles are last-step values). Shared by :class:`LearnedPolicy` and by whatever records a teacher's
    decisions for imitation, so both see the very same vector as training.

    :param intersection: the intersection.
    :param step_s: controller step, seconds.
    :param delta_time_s: seconds between decisions.
    :param layout: the feature layout.
    """

    def __init__(self, intersection: Intersection, step_s: float, delta_time_s: float,
                 layout: FeatureLayout = DEFAULT_LAYOUT) -> None:
        self.features = PhaseFeatures(intersection, layout)
        self.step_s = step_s
        self.every = max(1, round(delta_time_s / step_s))
        self._steps = 0
        #: loops count vehicles passing (summed over the interval); radar and exit zones count vehicles present
        self._is_loop = np.array([d.kind in ("stopbar", "advance") for d in intersection.detectors], dtype=bool)
        self._count = np.zeros(len(intersection.detectors))
        self._started = False

    def update(self, view: SignalView, now: bool = False) -> np.ndarray | None:
        """Take one step's view; return the feature vector on decision steps (the first step, then every
        ``every`` steps), else None.

        :param now: return the features of the steps taken so far even between decision steps (an episode that
            ends inside an interval).
        """
        r = view.readings
        self._count += r.count
        self._steps += 1
        if self._started and self._steps < self.every and not now:
            return None
        self._started = True
        n = self._steps
        count = np.where(self._is_loop, self._count, r.count)
        # presence as the training environment reads it once per interval: over the interval's counts
        summed = type(r)(r.time_s, presence(count, r.occupancy), count, r.halting, r.occupancy, r.speed_mps)
        features = self.features(view.phase, view.next_phase, view.interval is Interval.GREEN,
                                 view.green_elapsed_s, view.min_green_done, summed, n * self.step_s)
        self._count = np.zeros_like(self._count)
        self._steps = 0
        return features


class LearnedPolicy(Policy):
    """Asks for the phase slot with the highest logit (among the light's own phases when the policy was trained
    with action masking), every ``delta_time_s`` (the interval it was trained with), on the features of
    :class:`IntervalFeatures`; with a discharge hold (:mod:`controller.discharge_hold`) a change it asks for waits
    while the queue it would stop is still crossing the stop bar.

    :param path: the policy file, or one already loaded (shared by all lights of a run).
    :param discharge_hold_s: the hold's gap, seconds (0: no hold; None: as the policy was trained).
    """

    name = "rl"

    def __init__(self, path: Path | str | PolicyFile, discharge_hold_s: float | None = None) -> None:
        self.file = path if isinstance(path, PolicyFile) else PolicyFile(path)
        self.discharge_hold_s = self.file.discharge_hold_s if discharge_hold_s is None else float(discharge_hold_s)

    def reset(self, intersection: Intersection, step_s: float) -> None:
        super().reset(intersection, step_s)
        self.file.check(intersection)
        self.interval_features = IntervalFeatures(intersection, step_s, self.file.delta_time_s, self.file.layout)
        self.features = self.interval_features.features
        self.hold = DischargeHold(intersection, self.discharge_hold_s, step_s) if self.discharge_hold_s > 0 else None
        self._choice: int | None = None

    def decide(self, view: SignalView) -> int:
        choice = self._decide(view)
        if self.hold is None:
            return choice
        self.hold.update(view.readings)
        return self.hold.choose(view, choice)

    def _decide(self, view: SignalView) -> int:
        features = self.interval_features.update(view)
        if features is not None:
            logits = self.file.logits(features)
            if self.file.action_mask:  # as in training: only the light's own phases
                slot = int(np.argmax(logits[: self.features.n_phases]))
            else:
                slot = int(np.argmax(logits))
            # as in unmasked training: a slot beyond this light's phases asks to keep the current one
            self._choice = slot if slot < self.features.n_phases else view.phase
        return self._choice
