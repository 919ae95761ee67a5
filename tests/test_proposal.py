"""The proposal: what a config leaves empty is filled in by one core rule, the same for the wizard and
the command line, and the run records what was proposed and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import cli

from finetune_gui.core.config import RunConfig
from finetune_gui.core.estimate.proposal import apply, epochs, learning_rate, propose

REPO = Path(__file__).resolve().parents[1]


def test_learning_rates_follow_the_published_recipes_and_scale_with_size():
    assert learning_rate("lora", 7_000_000_000) == pytest.approx(2e-4)  # QLoRA's 7B recipe
    assert learning_rate("full", 7_000_000_000) == pytest.approx(2e-5)  # Alpaca's
    assert 0.8e-4 <= learning_rate("lora", 65_000_000_000) <= 1.2e-4  # QLoRA's 65B rate
    small = learning_rate("lora", 135_000_000)
    assert 6e-4 <= small <= 1e-3  # 2e-4 learned nothing on the demo model; 1e-3 learned everything
    for method in ("lora", "qlora", "dora"):
        assert learning_rate(method, 135_000_000) == pytest.approx(
            10 * learning_rate("full", 135_000_000), rel=0.1
        )
    assert learning_rate("prompt", 135_000_000) == learning_rate("prompt", 7_000_000_000)  # fixed


def test_small_datasets_get_more_passes_and_large_ones_fewer():
    assert epochs(90) > 3 and epochs(50) <= 8
    assert epochs(1_000) == 3 and epochs(5_000) == 2 and epochs(50_000) == 1


def test_a_preference_run_is_proposed_its_strength_a_smaller_step_and_at_most_three_passes():
    config = RunConfig.from_dict({"model": "m", "method": "lora", "training": {"objective": "dpo"}})
    proposal = propose(config, 135_000_000, 42)
    assert proposal.values["preference.beta"] == 0.1
    assert proposal.values["training.learning_rate"] == pytest.approx(
        learning_rate("lora", 135_000_000) / 10, rel=0.05
    )
    assert "a preference loss needs smaller steps" in proposal.reasons["training.learning_rate"]
    assert epochs(42, pairs=True) == 3 < epochs(42)
    assert "at most 3 for preferences" in proposal.reasons["training.max_steps"]
    resolved = apply(config, proposal)
    assert resolved.resolved_beta() == 0.1 and config.preference.beta is None  # a copy, the original kept
    supervised = propose(RunConfig(model="m", method="lora"), 135_000_000, 42)
    assert "preference.beta" not in supervised.values


def test_only_empty_fields_are_proposed_each_with_a_reason():
    config = RunConfig(model="m", method="lora")
    proposal = propose(config, 135_000_000, 100)
    assert set(proposal.values) == {
        "training.learning_rate",
        "training.max_steps",
        "training.warmup_ratio",
        "training.eval_steps",
        "training.save_steps",
        "training.early_stopping",
        "lora.r",
        "lora.alpha",
    }
    assert all(proposal.reasons[key] for key in proposal.values)
    # Early stopping: on (keeping the best) for a long run with a validation set, off for a short one
    # or without a validation set.
    assert proposal.values["training.max_steps"] >= 100 and proposal.values["training.early_stopping"] == 2
    assert "keep the best" in proposal.reasons["training.early_stopping"]
    short = propose(config, 135_000_000, 20)
    assert (
        short.values["training.early_stopping"] == 0
        and "short run" in short.reasons["training.early_stopping"]
    )
    config.dataset.validation_split = 0.0
    assert propose(config, 135_000_000, 5_000).values["training.early_stopping"] == 0
    config.dataset.validation_split = 0.05
    train_rows = 100 - 5  # the validation split holds 5% out
    assert proposal.values["training.max_steps"] == -(-epochs(train_rows) * train_rows // 4)
    assert proposal.values["lora.alpha"] == 2 * proposal.values["lora.r"] == 32
    config.training.learning_rate, config.training.max_steps, config.lora.r = 1e-3, 40, 8
    again = propose(config, 135_000_000, 100)
    assert "training.learning_rate" not in again.values and "training.max_steps" not in again.values
    assert again.values["lora.alpha"] == 16 and again.values["training.eval_steps"] == 8
    resolved = apply(config, again)
    assert resolved.training.max_steps == 40 and resolved.lora.alpha == 16 and config.lora.alpha is None


def test_a_config_naming_only_model_data_and_method_trains_with_the_proposal(tiny_model, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(
        "\n".join((REPO / "resources" / "demo-dataset.jsonl").read_text().splitlines()[:10]) + "\n"
    )
    path = tmp_path / "run.yaml"
    path.write_text(
        f"model: {tiny_model}\nmethod: lora\ndataset: {{path: {data}}}\noutput_dir: {tmp_path / 'run'}\n"
    )
    result = cli("train", path, "--set", "training.sample_prompts=0", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    expected = propose(RunConfig.load(path), run["total_parameters"] - run["trainable_parameters"], 10)
    assert run["proposal"]["training.max_steps"]["value"] == expected.values["training.max_steps"]
    assert run["metrics"]["steps"] == expected.values["training.max_steps"]
    assert run["proposal"]["training.learning_rate"]["why"]
    assert "Proposed training.learning_rate" in result.stderr
    saved = RunConfig.load(tmp_path / "run" / "config.yaml")  # the resolved config that ran
    assert saved.training.max_steps == expected.values["training.max_steps"] and saved.lora.r == 16
