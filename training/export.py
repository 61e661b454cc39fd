"""Export a trained stable-baselines3 model as a policy file the core runs without torch (``.npz``)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from controller.intersection import Intersection
from controller.phase_features import DEFAULT_LAYOUT, FeatureLayout
from controller.policies.learned import intersection_signature


def _actor_layers(model) -> tuple[list, str]:
    """The actor's Linear layers, in order, and its activation name (PPO: policy net + action net; DQN: q net)."""
    import torch.nn as nn

    if hasattr(model.policy, "mlp_extractor"):  # PPO / A2C
        modules = list(model.policy.mlp_extractor.policy_net) + [model.policy.action_net]
    else:  # DQN
        modules = list(model.policy.q_net.q_net)
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    acts = {type(m).__name__ for m in modules if not isinstance(m, nn.Linear)}
    activation = {"Tanh": "tanh", "ReLU": "relu"}.get(acts.pop() if len(acts) == 1 else "", "")
    if not activation and len(linears) > 1:
        raise ValueError(f"cannot export an actor with activations {sorted(acts)}")
    return linears, activation or "tanh"


def export_policy(model, path: Path, intersections: list[Intersection], delta_time_s: float,
                  extra: dict | None = None, layout: FeatureLayout = DEFAULT_LAYOUT) -> Path:
    """Write ``path`` (``.npz``): the actor's weights, the observation layout, the decision interval and the
    signature of every intersection trained for.

    :param model: a stable-baselines3 PPO or DQN model (or sb3-contrib MaskablePPO) with an MLP policy.
    :param path: output file.
    :param intersections: the intersections the policy was trained on.
    :param delta_time_s: seconds between decisions in training.
    :param extra: more metadata to keep (training configuration, results).
    :param layout: the feature layout the policy was trained on.
    """
    linears, activation = _actor_layers(model)
    meta = {"layout": layout.description(), "delta_time_s": delta_time_s, "activation": activation,
            "layers": len(linears), "algo": type(model).__name__,
            # trained with action masking: only the light's own phase slots were ever chosen
            "action_mask": type(model).__name__.startswith("Maskable"),
            "intersections": {i.id: intersection_signature(i) for i in intersections}, **(extra or {})}
    arrays = {"meta": np.array(json.dumps(meta))}
    for k, layer in enumerate(linears):
        arrays[f"w{k}"] = layer.weight.detach().cpu().numpy().astype(np.float32)
        arrays[f"b{k}"] = layer.bias.detach().cpu().numpy().astype(np.float32)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path
