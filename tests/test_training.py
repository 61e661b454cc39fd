"""Training end to end on the small bundled network: run folder, evaluation, export, resume, and the `rl` controller."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from controller.errors import InputError
from controller.policies.learned import PolicyFile
from training.learning_curve import read_evaluations
from training.train import TrainConfig, train

pytestmark = pytest.mark.sumo


def ondaverde(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ondaverde.cli", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    config = TrainConfig(network="single", scenarios=("base",), timesteps=64, n_envs=2, n_steps=32,
                         eval_every_steps=64, eval_seeds=(900001,), out=out)
    return config, train(config)


def test_a_run_folder_holds_config_versions_logs_checkpoint_and_policies(run):
    config, summary = run
    out = config.out
    for name in ("config.json", "versions.json", "last.zip", "policy-final.npz", "policy-best.npz",
                 "evaluations.jsonl", "final.json"):
        assert (out / name).is_file(), name
    assert any((out / "tb").rglob("events.out.tfevents*"))
    assert json.loads((out / "config.json").read_text())["network"] == "single"
    assert json.loads((out / "versions.json").read_text())["eclipse-sumo"] == "1.28.0"
    assert summary["timesteps"] >= 64
    assert summary["final"]["delay"] > 0 and summary["best"]["delay"] > 0
    overrides = summary["core_overrides"]
    assert overrides["requests"] == summary["timesteps"]  # every slot's decision went through the core
    assert overrides["not_a_phase_of_the_light"] == 0  # PPO is masked to each light's own phases
    assert summary["violations"] == 0
    assert PolicyFile(out / "policy-final.npz").meta["network"] == "single"
    assert PolicyFile(out / "policy-final.npz").layout.name == config.features == "phase-features-v2"


def test_the_learning_curve_holds_every_evaluation_and_the_final_one(run, tmp_path):
    config, summary = run
    records = read_evaluations(config.out / "evaluations.jsonl")
    assert [r["timesteps"] for r in records] == sorted(r["timesteps"] for r in records)
    assert any(not r.get("final") and r["timesteps"] >= 64 for r in records)  # the periodic evaluation
    assert records[-1]["final"] and records[-1]["delay"] == summary["final"]["delay"]
    assert records[-1]["timesteps"] == summary["timesteps"]
    assert (config.out / "learning-curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "evaluations.jsonl"
    for line in ('{"timesteps": 5}', '{"timesteps": 5, "delay": 1, "per_scenario": {"base": {}}}', "[1]", "{"):
        bad.write_text((config.out / "evaluations.jsonl").read_text() + line + "\n")
        with pytest.raises(InputError, match=rf"evaluations.jsonl:{len(records) + 1}: not an evaluation record"):
            read_evaluations(bad)


def test_the_trained_policy_runs_as_the_rl_controller(run):
    config, summary = run
    proc = ondaverde("simulate", "--network", "single", "--controller", "rl", "--policy",
                     str(config.out / "policy-final.npz"), "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["controller"] == "rl" and record["violations"] == 0
    # the same policy and seed give the same delay as the final evaluation measured
    proc = ondaverde("simulate", "--network", "single", "--controller", "rl", "--policy",
                     str(config.out / "policy-final.npz"), "--seed", "900001", "--json")
    assert json.loads(proc.stdout)["delay"] == pytest.approx(summary["final"]["delay"])


def test_resume_continues_from_the_checkpoint(run):
    config, summary = run
    from sb3_contrib import MaskablePPO

    config.timesteps = 32
    config.learning_rate, config.clip_range, config.ent_coef = 1e-4, 0.1, 0.0  # a gentler continuation
    config.gamma = 0.99  # a longer look ahead
    again = train(config, resume=True)
    assert again["timesteps"] > summary["timesteps"]
    model = MaskablePPO.load(config.out / "last.zip", device="cpu")
    assert model.learning_rate == 1e-4 and model.ent_coef == 0.0 and model.clip_range(1.0) == 0.1
    assert model.gamma == 0.99 and model.rollout_buffer.gamma == 0.99


def test_training_refuses_bad_input_with_one_line(run, tmp_path):
    config, _ = run
    for args, words in [(("--network", "single", "--scenario", "rush", "--out", str(tmp_path / "a")), "rush"),
                        (("--network", "single", "--scenario", "base", "--out", str(config.out)), "--resume"),
                        (("--network", "single", "--scenario", "base", "--demand-scale", "0,1",
                          "--out", str(tmp_path / "b")), "demand scale"),
                        (("--network", "single", "--scenario", "base", "--warm-start", "nobody",
                          "--out", str(tmp_path / "c")), "nobody"),
                        (("--network", "single", "--scenario", "base", "--reward", "smiles",
                          "--out", str(tmp_path / "d")), "smiles"),
                        (("--network", "single", "--scenario", "base", "--decision-interval", "2.5",
                          "--out", str(tmp_path / "e")), "decision interval 2.5 s"),
                        (("--network", "single", "--scenario", "base", "--features", "phase-features-v9",
                          "--out", str(tmp_path / "f")), "unknown feature layout 'phase-features-v9'"),
                        (("--network", "single", "--scenario", "base", "--gamma", "1.5",
                          "--out", str(tmp_path / "g")), "discount gamma 1.5"),
                        (("--network", "single", "--scenario", "base", "--discharge-hold", "-1",
                          "--out", str(tmp_path / "h")), "discharge hold -1.0 s"),
                        # the hold is part of what the policy learned to act through
                        (("--network", "single", "--scenario", "base", "--discharge-hold", "2",
                          "--out", str(config.out), "--resume"), "resume it with --discharge-hold 0"),
                        (("--network", "single", "--scenario", "base", "--input-lag", "-1",
                          "--out", str(tmp_path / "i")), "input lag -1"),
                        (("--network", "single", "--scenario", "base", "--input-lag", "1",
                          "--out", str(config.out), "--resume"), "resume it with --input-lag 0"),
                        # a run is resumed with the features it observes (its network's input size is fixed)
                        (("--network", "single", "--scenario", "base", "--features", "phase-features-v1",
                          "--out", str(config.out), "--resume"), "resume it with --features phase-features-v2")]:
        proc = ondaverde("train", *args)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr


def test_rl_without_a_policy_file_says_how_to_get_one():
    proc = ondaverde("simulate", "--network", "grid", "--controller", "rl")
    assert proc.returncode == 2
    assert "train" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("option, network", [({"delta_time_s": 2.0}, "single"),  # a shorter decision interval
                                              ({"discharge_hold_s": 2.0}, "grid"),  # the discharge hold
                                              ({"input_lag_s": 1}, "single")])  # a central system's input lag
def test_what_a_policy_was_trained_with_is_kept_in_its_file_and_run_at_the_curb(tmp_path, option, network):
    out = tmp_path / "run2"
    config = TrainConfig(network=network, scenarios=("base",), timesteps=64, n_envs=2, n_steps=32,
                         eval_every_steps=64, eval_seeds=(900001,), out=out, **option)
    summary = train(config)
    (name, value), = option.items()
    assert getattr(PolicyFile(out / "policy-final.npz"), name) == value
    assert json.loads((out / "config.json").read_text())[name] == value
    lag = ("--input-lag", str(option["input_lag_s"])) if "input_lag_s" in option else ()  # (the deployment's)
    proc = ondaverde("simulate", "--network", network, "--controller", "rl", "--policy", str(out / "policy-final.npz"),
                     "--seed", "900001", "--json", *lag)
    assert json.loads(proc.stdout)["delay"] == pytest.approx(summary["final"]["delay"])
    assert "note" not in proc.stderr
    if lag:  # run without the lag it was trained for: said, once
        proc = ondaverde("simulate", "--network", network, "--controller", "rl", "--policy",
                         str(out / "policy-final.npz"), "--seed", "900001", "--end", "60", "--json")
        assert proc.returncode == 0 and proc.stderr.count("trained for an input lag of 1 s") == 1, proc.stderr


def test_training_runs_on_a_sumocfg_with_no_code(tmp_path):
    """Bring your own network: `train --network city.sumocfg` (its one scenario chosen by default), and the policy
    runs as `rl` on the same configuration."""
    from networks.catalog import load_network

    single = load_network("single")
    cfg = tmp_path / "city.sumocfg"
    cfg.write_text(f'<configuration><input><net-file value="{single.net_file}"/>'
                   f'<route-files value="{single.scenario("base").route_files[0]}"/></input>'
                   '<time><begin value="0"/><end value="600"/></time></configuration>')
    out = tmp_path / "run"
    proc = ondaverde("train", "--network", str(cfg), "--timesteps", "256", "--eval-every", "100000", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "config.json").read_text())["scenarios"] == ["city"]
    final = json.loads((out / "final.json").read_text())
    proc = ondaverde("simulate", "--network", str(cfg), "--controller", "rl", "--policy", str(out / "policy-final.npz"),
                     "--seed", "900001", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["violations"] == 0
    assert final["final"]["delay"] > 0 and final["final"]["per_scenario"]["city"]["violations"] == 0
