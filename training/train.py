"""Train one signal-timing policy shared by every traffic light of a network (stable-baselines3 PPO or DQN).

Read top to bottom: the configuration is :class:`TrainConfig`; :func:`train` builds the shared VecEnv (several
SUMO processes, every light a slot), the model, and a callback that every ``eval_every_steps`` exports the policy
as the core runs it and measures it with the project's delay metric on held-out seeds (never trained on),
keeping the best. The run folder holds the configuration, versions, TensorBoard logs, checkpoints (resumable),
the evaluations (``evaluations.jsonl``, drawn as ``learning-curve.png``) and the final policy with its evaluation.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from controller.errors import InputError

#: Seeds used by the periodic and final evaluations: never used by a training episode (those count from 0).
EVAL_SEEDS = (900001, 900002)


@dataclass
class TrainConfig:
    """Everything a training run depends on (written to ``config.json`` in the run folder).

    :param network: network name or folder.
    :param scenarios: scenarios episodes are drawn from (uniformly).
    :param eval_scenarios: scenarios of the periodic evaluation (default: the training ones).
    :param algo: ``ppo`` or ``dqn``.
    :param timesteps: total agent decisions (one per light per decision interval, all lights together).
    :param n_envs: SUMO processes.
    :param seed: training seed (SUMO seeds of the episodes and the network initialisation).
    :param demand_scale: (low, high) of the uniform per-episode demand scale.
    :param delta_time_s: seconds between decisions.
    :param reward: reward function name.
    :param features: name of the feature layout the policy observes (``controller.phase_features.LAYOUTS``).
    :param net_arch: hidden layer sizes of the (small) MLP.
    :param learning_rate: optimiser step size.
    :param n_steps: PPO rollout length per slot, decisions (small: many slots fill a rollout quickly).
    :param n_epochs: PPO passes over each rollout.
    :param gamma: discount per decision.
    :param discharge_hold_s: pass the policy's requests through the discharge hold with this gap, seconds, in
        training and at the curb (the policy file records it; 0: none; :mod:`controller.discharge_hold`).
    :param input_lag_s: whole seconds between a detector reading and the lights acting on it, in training, the warm
        start's recording and the evaluations: a policy for a central system's live loop, which acts a second
        after it reads (``ondaverde run``; 0: the same second). The policy file records it.
    :param clip_range: PPO's clipping of the probability ratio.
    :param ent_coef: PPO's entropy bonus.
    :param warm_start: a classical policy (``actuated``, ``maxpressure``, ...) whose decisions, recorded through the
        core, the actor imitates before PPO starts; its critic is fitted to the reward that followed ("": none).
    :param warm_start_episodes: teacher episodes recorded for the warm start.
    :param warm_start_epochs: passes of the warm start's fit over the recorded decisions.
    :param warm_start_rounds: DAgger rounds after the first fit: the fitted policy drives ``warm_start_episodes``
        more episodes while the teacher says what it would have asked for, and the fit is repeated on everything
        recorded.
    :param eval_every_steps: agent decisions between evaluations.
    :param eval_seeds: SUMO seeds of the evaluations.
    :param max_minutes: stop training after this wall time, minutes (0: no limit); the final export and
        evaluation still run.
    :param out: run folder.
    """

    network: str = "miraflores"
    scenarios: tuple[str, ...] = ("am-peak", "pm-peak")
    eval_scenarios: tuple[str, ...] = ()
    algo: str = "ppo"
    timesteps: int = 1_000_000
    n_envs: int = 2
    seed: int = 0
    demand_scale: tuple[float, float] = (0.8, 1.2)
    delta_time_s: float = 5.0
    reward: str = "diff-waiting-time"
    features: str = "phase-features-v2"
    net_arch: tuple[int, ...] = (64, 64)
    learning_rate: float = 5e-4
    n_steps: int = 64
    n_epochs: int = 10
    gamma: float = 0.95
    discharge_hold_s: float = 0.0
    input_lag_s: int = 0
    clip_range: float = 0.2
    ent_coef: float = 0.01
    warm_start: str = ""
    warm_start_episodes: int = 4
    warm_start_epochs: int = 10
    warm_start_rounds: int = 0
    eval_every_steps: int = 250_000
    eval_seeds: tuple[int, ...] = EVAL_SEEDS
    max_minutes: float = 0.0
    out: Path = field(default_factory=lambda: Path("runs/latest"))

    def check(self) -> None:
        """Refuse a configuration that cannot run, with a one-line error."""
        if self.algo not in ("ppo", "dqn"):
            raise InputError(f"unknown algorithm {self.algo!r}; choose from: ppo, dqn")
        if self.timesteps < 0 or (self.timesteps == 0 and not self.warm_start) or self.n_envs <= 0 \
                or self.eval_every_steps <= 0:
            raise InputError("timesteps (0 only with a warm start), n-envs and eval-every must be positive")
        from controller.phase_features import LAYOUTS
        from envs.rewards import REWARDS

        if self.features not in LAYOUTS:
            raise InputError(f"unknown feature layout {self.features!r}; choose from: {', '.join(LAYOUTS)}")
        if self.reward not in REWARDS:
            raise InputError(f"unknown reward {self.reward!r}; choose from: {', '.join(REWARDS)}")
        if self.warm_start:
            from controller.policies.registry import POLICIES

            if self.warm_start not in POLICIES:
                raise InputError(f"unknown warm-start teacher {self.warm_start!r}; choose from: "
                                 f"{', '.join(sorted(POLICIES))}")
            if self.algo != "ppo":
                raise InputError("a warm start needs --algo ppo")
            if self.warm_start_episodes <= 0 or self.warm_start_epochs <= 0 or self.warm_start_rounds < 0:
                raise InputError("warm-start episodes and epochs must be positive, rounds not negative")
        if not 0 < self.gamma <= 1:
            raise InputError(f"discount gamma {self.gamma} must be above 0 and at most 1")
        if not 0 <= self.discharge_hold_s <= 10:
            raise InputError(f"discharge hold {self.discharge_hold_s} s must be 0 (none) to 10 seconds")
        from envs.simulation import check_input_lag_s

        check_input_lag_s(self.input_lag_s)
        if self.input_lag_s > 10:
            raise InputError(f"input lag {self.input_lag_s} s must be at most 10 seconds")
        if not (self.delta_time_s >= 1 and float(self.delta_time_s).is_integer()):
            raise InputError(f"decision interval {self.delta_time_s} s must be a whole number of seconds, at least 1")
        low, high = self.demand_scale
        if not 0 < low <= high:
            raise InputError(f"demand scale range {low}..{high} must be positive and increasing")
        if set(self.eval_seeds) & (set(range(self.seed, self.seed + 1000 * self.n_envs))
                                   | set(self.warm_start_seeds())):
            raise InputError("evaluation seeds overlap the training seeds")


    def warm_start_seeds(self) -> list[int]:
        """SUMO seeds of the warm start's teacher episodes (training seeds too: never evaluated on)."""
        n = self.warm_start_episodes * (1 + self.warm_start_rounds) if self.warm_start else 0
        return [self.seed + 1000 * self.n_envs + k for k in range(n)]


def versions() -> dict:
    """Versions of what a result depends on."""
    out = {"python": platform.python_version()}
    for pkg in ("eclipse-sumo", "libsumo", "stable-baselines3", "torch", "numpy", "gymnasium"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def _model(config: TrainConfig, env, resume: Path | None):
    """PPO with action masking (sb3-contrib's MaskablePPO: only a light's own phases can be asked for), or DQN."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import DQN

    cls = MaskablePPO if config.algo == "ppo" else DQN
    if resume is not None:
        # the step sizes are this configuration's (a warm-started run continues more gently, say)
        custom: dict = {"learning_rate": config.learning_rate, "gamma": config.gamma}
        if cls is MaskablePPO:
            custom.update(clip_range=config.clip_range, ent_coef=config.ent_coef)
        return cls.load(resume, env=env, tensorboard_log=str(config.out / "tb"), custom_objects=custom)
    common = dict(learning_rate=config.learning_rate, seed=config.seed, verbose=0, device="cpu",
                  tensorboard_log=str(config.out / "tb"), policy_kwargs={"net_arch": list(config.net_arch)})
    if cls is MaskablePPO:
        batch = config.n_steps * env.num_envs // 4  # four minibatches per epoch
        return MaskablePPO("MlpPolicy", env, n_steps=config.n_steps, batch_size=batch, n_epochs=config.n_epochs,
                           gamma=config.gamma, clip_range=config.clip_range, ent_coef=config.ent_coef, **common)
    return DQN("MlpPolicy", env, buffer_size=200_000, learning_starts=10_000, train_freq=4, gamma=config.gamma,
               exploration_fraction=0.2, target_update_interval=2_000, **common)


def evaluate_policy_file(config: TrainConfig, policy: Path) -> dict:
    """Mean delay (s) of a policy file per evaluation scenario, on the evaluation seeds, through the core (with the
    run's input lag)."""
    from networks.catalog import load_network
    from training.evaluate import evaluate, summarise

    network = load_network(config.network)
    scenarios = list(config.eval_scenarios or config.scenarios)
    rows = summarise(evaluate(network, scenarios, ["rl"], list(config.eval_seeds), progress=False,
                              policy_file=policy, input_lag_s=config.input_lag_s))
    by = {r["scenario"]: {"delay": r["delay"], "delay_sd": r["delay_sd"], "teleports": r["teleports"],
                          "violations": r["violations"]} for r in rows}
    return {"per_scenario": by, "delay": float(np.mean([v["delay"] for v in by.values()]))}


def _warm_start(config: TrainConfig, model, export, evaluations: Path) -> dict:
    """Record the teacher's episodes, fit the model to them, export and evaluate the result (``warm_start.json``,
    ``policy-warm-start.npz`` and a line of ``evaluations.jsonl`` at 0 decisions)."""
    from controller.phase_features import LAYOUTS
    from training.imitation import fit, record

    start = time.perf_counter()
    rng = np.random.default_rng(config.seed + 17)
    seeds = config.warm_start_seeds()
    scales = [float(rng.uniform(*config.demand_scale)) for _ in seeds]
    n = config.warm_start_episodes
    policy = config.out / "policy-warm-start.npz"
    demos, rounds, recorded_s = [], [], 0.0
    for r in range(1 + config.warm_start_rounds):  # round 0: the teacher drives; then the fitted policy does
        t = time.perf_counter()
        new = record(config.network, tuple(config.scenarios), config.warm_start, seeds[r * n:(r + 1) * n],
                     scales[r * n:(r + 1) * n], config.delta_time_s, config.reward, config.gamma, jobs=config.n_envs,
                     driver=policy if r else None, layout=config.features, input_lag_s=config.input_lag_s)
        recorded_s += time.perf_counter() - t
        demos += new
        fitted = fit(model, demos, config.warm_start_epochs, seed=config.seed + r, layout=LAYOUTS[config.features])
        rounds.append({**fitted, "driver": "policy" if r else config.warm_start,
                       "driver_delay_s": [d.delay_s for d in new]})
        export(policy)
    result = {**rounds[-1], "teacher": config.warm_start, "episodes": len(demos), "rounds": rounds,
              "record_wall_s": round(recorded_s, 1),
              "fit_wall_s": round(time.perf_counter() - start - recorded_s, 1)}
    evaluation = evaluate_policy_file(config, policy)
    evaluation.update(timesteps=0, wall_s=round(time.perf_counter() - start, 1), warm_start=True)
    _record_evaluation(evaluations, evaluation)
    result["evaluation"] = evaluation
    (config.out / "warm_start.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _record_evaluation(evaluations: Path, record: dict) -> None:
    """Append one evaluation to ``evaluations.jsonl`` and redraw ``learning-curve.png`` beside it."""
    from training.learning_curve import plot_learning_curve, read_evaluations

    with evaluations.open("a") as f:
        f.write(json.dumps(record) + "\n")
    plot_learning_curve(read_evaluations(evaluations), evaluations.parent / "learning-curve.png",
                        f"run {evaluations.parent.name}: policy on held-out seeds")


def train(config: TrainConfig, resume: bool = False) -> dict:
    """Train, evaluate periodically, export; return the final summary (also in ``final.json``)."""
    import torch
    from stable_baselines3.common.callbacks import BaseCallback
    from tqdm import tqdm

    from controller.phase_features import LAYOUTS
    from envs.simulation import intersections_of
    from networks.catalog import load_network
    from training.export import export_policy
    from training.shared_env import EpisodeDraw, SharedSignalVecEnv

    config.check()
    torch.set_num_threads(1)
    network = load_network(config.network)
    for s in (*config.scenarios, *config.eval_scenarios):
        network.scenario(s)
    inters = intersections_of(network)
    out = config.out
    checkpoint = out / "last.zip"
    if out.exists() and any(out.iterdir()) and not resume:
        raise InputError(f"{out}: run folder exists; pass --resume to continue it or choose another --out")
    if resume and not checkpoint.is_file():
        raise InputError(f"{checkpoint}: nothing to resume")
    if resume and (out / "config.json").is_file():
        try:  # runs from before the layouts were named observed the first one, and had no hold
            saved = json.loads((out / "config.json").read_text())
            trained_on = saved.get("features", "phase-features-v1")
            held = float(saved.get("discharge_hold_s", 0.0))
            lag = int(saved.get("input_lag_s", 0))
        except (ValueError, TypeError, AttributeError):
            raise InputError(f"{out / 'config.json'}: not a run configuration") from None
        if trained_on != config.features:
            raise InputError(f"{out}: the run observes feature layout {trained_on!r}; resume it with "
                             f"--features {trained_on}")
        if held != config.discharge_hold_s:
            raise InputError(f"{out}: the run was trained with discharge hold {held:g} s; resume it with "
                             f"--discharge-hold {held:g}")
        if lag != config.input_lag_s:
            raise InputError(f"{out}: the run was trained with an input lag of {lag} s; resume it with "
                             f"--input-lag {lag}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(config), default=str, indent=2) + "\n")
    (out / "versions.json").write_text(json.dumps(versions(), indent=2) + "\n")

    # the workers load the network again: a .sumocfg by its own (absolute) path, else the network's folder
    source = (str(Path(config.network).expanduser().resolve()) if str(config.network).endswith(".sumocfg")
              else str(network.folder))
    draw = EpisodeDraw(source, tuple(config.scenarios), tuple(config.demand_scale), config.seed,
                       config.delta_time_s, config.reward, config.features, config.discharge_hold_s, config.input_lag_s)
    env = SharedSignalVecEnv(draw, config.n_envs)
    model = _model(config, env, checkpoint if resume else None)
    evaluations = out / "evaluations.jsonl"
    best = json.loads((out / "best.json").read_text())["delay"] if (out / "best.json").is_file() else float("inf")
    start = time.perf_counter()

    def export(path: Path) -> Path:
        return export_policy(model, path, inters, config.delta_time_s,
                             {"network": network.name, "scenarios": list(config.scenarios),
                              "timesteps": int(model.num_timesteps), "discharge_hold_s": config.discharge_hold_s,
                              "input_lag_s": config.input_lag_s},
                             layout=LAYOUTS[config.features])

    if config.warm_start and not resume:
        warm = _warm_start(config, model, export, evaluations)
        if warm["evaluation"]["delay"] < best:
            best = warm["evaluation"]["delay"]
            shutil.copyfile(out / "policy-warm-start.npz", out / "policy-best.npz")
            (out / "best.json").write_text(json.dumps(warm["evaluation"], indent=2) + "\n")

    class Progress(BaseCallback):
        """Progress bar, episode records for TensorBoard, periodic evaluation and checkpoints."""

        def _on_training_start(self) -> None:
            self.bar = tqdm(total=config.timesteps, initial=0, unit="decision", desc="training", disable=None)
            self.next_eval = config.eval_every_steps
            self.seen = 0

        def _on_step(self) -> bool:
            nonlocal best
            self.bar.update(env.num_envs)
            for info in env.episode_infos[self.seen:]:
                for key in ("delay", "teleports", "deferred"):
                    self.logger.record_mean(f"episode/{key}", info[key])
                self.bar.set_postfix(delay=f"{info['delay']:.0f}s", scenario=info["scenario"])
            self.seen = len(env.episode_infos)
            if self.num_timesteps >= self.next_eval:
                self.next_eval += config.eval_every_steps
                model.save(checkpoint)
                result = evaluate_policy_file(config, export(out / "policy-latest.npz"))
                result.update(timesteps=int(self.num_timesteps), wall_s=round(time.perf_counter() - start, 1))
                _record_evaluation(evaluations, result)
                self.logger.record("eval/delay", result["delay"])
                if result["delay"] < best:
                    best = result["delay"]
                    shutil.copyfile(out / "policy-latest.npz", out / "policy-best.npz")
                    (out / "best.json").write_text(json.dumps(result, indent=2) + "\n")
                self.bar.write(f"evaluation at {self.num_timesteps} decisions: delay {result['delay']:.1f} s "
                               f"(best {best:.1f} s)")
            if config.max_minutes and time.perf_counter() - start > 60 * config.max_minutes:
                self.bar.write(f"time budget of {config.max_minutes:g} min reached at {self.num_timesteps} decisions")
                return False
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    try:
        if config.timesteps > 0:
            model.learn(config.timesteps, callback=Progress(), reset_num_timesteps=not resume,
                        tb_log_name=config.algo)
        model.save(checkpoint)
    finally:
        env.close()
    wall = time.perf_counter() - start
    if config.timesteps == 0 and not resume:  # only the warm start ran: its policy is the final one
        shutil.copyfile(out / "policy-warm-start.npz", out / "policy-final.npz")
        final = json.loads((out / "warm_start.json").read_text())["evaluation"]
    else:
        final = evaluate_policy_file(config, export(out / "policy-final.npz"))
        _record_evaluation(evaluations, {**final, "timesteps": int(model.num_timesteps), "wall_s": round(wall, 1),
                                         "final": True})
    if final["delay"] < best:  # the final policy is a candidate like any periodic one
        shutil.copyfile(out / "policy-final.npz", out / "policy-best.npz")
        (out / "best.json").write_text(json.dumps({**final, "timesteps": int(model.num_timesteps),
                                                   "wall_s": round(wall, 1)}, indent=2) + "\n")
    episodes = env.episode_infos
    summary = {"final": final, "best": json.loads((out / "best.json").read_text()) if (out / "best.json").is_file()
               else None, "train_wall_s": round(wall, 1), "timesteps": int(model.num_timesteps),
               "episodes": len(episodes),
               "core_overrides": {"requests": sum(c.get("requests", 0) for c in env.counters),
                                  "deferred_by_phase_machine": sum(c.get("deferred", 0) for c in env.counters),
                                  "not_a_phase_of_the_light": sum(c.get("invalid", 0) for c in env.counters)},
               "violations": sum(e["violations"] for e in episodes)}
    (out / "final.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
