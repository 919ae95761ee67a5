"""Early stopping keeps the best evaluation's weights: unit-tested on a fake model, then on a tiny run
made to overfit, whose saved adapter must equal its best checkpoint's."""

from __future__ import annotations

import json
from types import SimpleNamespace

import torch

from finetune_gui.core.training.early_stop import EarlyStopping


def evaluate(callback, model, step, loss):
    control = SimpleNamespace(should_training_stop=False, should_save=False)
    with torch.no_grad():
        model.weight.fill_(float(step))  # the weights at this step, to tell them apart
    callback.on_evaluate(
        None, SimpleNamespace(global_step=step), control, model=model, metrics={"eval_loss": loss}
    )
    return control


def test_stops_after_patience_evaluations_without_improvement_and_restores_the_best():
    said = []
    model = torch.nn.Linear(2, 2)
    model.bias.requires_grad_(False)
    callback = EarlyStopping(patience=2, min_delta=0.01, log=said.append)
    assert not evaluate(callback, model, 10, 2.0).should_training_stop
    assert not evaluate(callback, model, 20, 1.5).should_training_stop  # the best
    assert not evaluate(callback, model, 30, 1.495).should_training_stop  # within min_delta: no better
    control = evaluate(callback, model, 40, 1.8)
    assert control.should_training_stop and control.should_save
    result = callback.restore_best(model, 40)
    assert torch.equal(model.weight, torch.full((2, 2), 20.0))
    assert (result.best_step, result.stopped_at, result.best_eval_loss) == (20, 40, 1.5)
    assert said == [
        "Stopped early at step 40: eval loss had not improved for 2 evaluations; the result is step 20's "
        "(eval loss 1.500)."
    ]


def test_a_run_that_keeps_improving_keeps_its_last_weights():
    model = torch.nn.Linear(2, 2)
    callback = EarlyStopping(patience=2, min_delta=0.0, log=lambda _m: None)
    for step, loss in ((10, 2.0), (20, 1.5), (30, 1.2)):
        assert not evaluate(callback, model, step, loss).should_training_stop
    result = callback.restore_best(model, 30)
    assert result.stopped_at is None and result.best_step == 30
    assert torch.equal(model.weight, torch.full((2, 2), 30.0))


def test_a_run_that_overfits_stops_early_and_saves_its_best_checkpoint(tiny_model, small_dataset, tmp_path):
    """Trained hard on a few rows and evaluated on unrelated text, the evaluation loss rises: the run
    stops early, and its adapter is exactly the best evaluation's checkpoint."""
    from safetensors.torch import load_file
    from test_training import ListSink, make_config

    from finetune_gui.core.training.control import RunControl
    from finetune_gui.core.training.recipe import run_training

    unrelated = tmp_path / "unrelated.jsonl"
    unrelated.write_text(
        "".join(
            json.dumps({"text": f"Granite {i} weathers slowly under rain and frost."}) + "\n"
            for i in range(8)
        )
    )
    out = tmp_path / "run"
    config = make_config(
        tiny_model, small_dataset, out, max_steps=60, eval_steps=2, save_steps=2, learning_rate=3e-2
    )
    config.dataset.validation_path = str(unrelated)
    config.training.early_stopping, config.training.save_total_limit = 2, 40
    config.training.check_questions = config.training.sample_prompts = 0
    assert run_training(config, sink=ListSink(), control=RunControl()) == 0
    record = json.loads((out / "run.json").read_text())
    early = record["early_stop"]
    assert record["status"] == "completed" and early["stopped_at"] < 60, early
    assert early["best_step"] < early["stopped_at"]
    best = load_file(
        str(out / "checkpoints" / f"checkpoint-{early['best_step']}" / "adapter_model.safetensors")
    )
    last = load_file(
        str(out / "checkpoints" / f"checkpoint-{early['stopped_at']}" / "adapter_model.safetensors")
    )
    saved = load_file(str(out / "adapter" / "adapter_model.safetensors"))
    assert all(torch.equal(saved[k], best[k]) for k in best)
    assert any(not torch.equal(saved[k], last[k]) for k in last)
