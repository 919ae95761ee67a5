"""Did it forget? A base that reads general text well, tuned gently and hard: the verdict tells them apart."""

from __future__ import annotations

import json

import pytest
from test_training import ListSink, make_config

from finetune_gui.core.events import Forgetting
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.forgetting import FORGOT_AT, KEPT_BELOW, general_text, verdict
from finetune_gui.core.training.recipe import run_training


@pytest.fixture(scope="module")
def literate_model(tiny_model, tmp_path_factory):
    """The tiny model trained on the general text itself, so that it has general ability to lose."""
    folder = tmp_path_factory.mktemp("literate")
    text = folder / "general.txt"
    text.write_text(general_text())
    config = make_config(tiny_model, text, folder / "run", "full", max_steps=40, learning_rate=3e-3)
    config.dataset.validation_split = 0.0
    config.training.check_questions = config.training.sample_prompts = 0
    config.training.check_forgetting = False
    assert run_training(config, sink=ListSink(), control=RunControl()) == 0
    return folder / "run" / "model"


@pytest.mark.parametrize(
    ("method", "rate", "steps", "expected"), [("lora", 1e-8, 3, "kept"), ("full", 1e-2, 30, "forgot")]
)
def test_a_run_that_barely_changed_the_model_kept_it_and_one_that_overwrote_it_forgot(
    method, rate, steps, expected, literate_model, small_dataset, tmp_path
):
    sink = ListSink()
    config = make_config(
        literate_model, small_dataset, tmp_path / "run", method, max_steps=steps, learning_rate=rate
    )
    config.training.eval_steps = config.training.save_steps = 100
    config.training.check_forgetting = True
    assert run_training(config, sink=sink, control=RunControl()) == 0
    found = sink.of(Forgetting)[0]
    assert found.verdict == expected, found.summary
    if expected == "kept":
        assert abs(found.ratio - 1.0) < 0.02 and "little forgotten" in found.summary
    else:
        assert found.ratio >= FORGOT_AT and "lower learning rate" in found.summary and "LoRA" in found.summary
    assert [e["prompt"] for e in found.examples] and all("tuned" in e for e in found.examples)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (
        run["forgetting"]["verdict"] == expected
        and run["base_general"]["perplexity"] == found.base_perplexity
    )
    assert run["metrics"]["general_perplexity_ratio"] == found.ratio
    logged = " ".join(e.message for e in sink.events if getattr(e, "kind", "") == "log")
    assert "The learning and forgetting checks took" in logged


def test_the_verdict_follows_the_ratio():
    assert verdict(1.02)[0] == "kept" and verdict(KEPT_BELOW)[0] == "some" and verdict(3.4)[0] == "forgot"
    assert verdict(3.4)[1].startswith(
        "General text perplexity 3.40× the base's: the model lost general ability"
    )
    # The advice never asks an adapter run to use an adapter: measured, LoRA at a high rate forgets too.
    assert "LoRA" in verdict(1.8)[1] and "LoRA" not in verdict(1.8, trains_all_weights=False)[1]
    assert "lower learning rate" in verdict(1.8, trains_all_weights=False)[1]
