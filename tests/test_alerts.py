"""Health alerts: each fires on a run made to show it, with its fix, and a healthy run hears none."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_training import ListSink, make_config

from finetune_gui.core.events import Alert, Step
from finetune_gui.core.runs import RunFolder
from finetune_gui.core.training.alerts import HealthWatch
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.recipe import run_training


def train(tiny_model, dataset, out, method, rate, steps):
    config = make_config(
        tiny_model, dataset, out, method, max_steps=steps, learning_rate=rate, eval_steps=max(1, steps // 10)
    )
    config.training.save_steps, config.training.check_forgetting = 1000, False
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 0
    return sink


@pytest.mark.parametrize(
    ("method", "rate", "steps", "expected", "fix"),
    [
        ("lora", 1e-9, 30, "flat loss", "three times the proposal"),
        ("full", 1e-2, 80, "memorising", "Early stopping after 2 evaluations"),
        ("lora", 1e-2, 20, None, None),  # healthy: the loss falls, evaluation with it
    ],
)
def test_an_alert_fires_on_the_run_that_shows_it_and_on_no_other(
    method, rate, steps, expected, fix, tiny_model, small_dataset, tmp_path
):
    sink = train(tiny_model, small_dataset, tmp_path / "run", method, rate, steps)
    alerts = sink.of(Alert)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    if expected is None:
        assert alerts == [] and not run.get("alerts")
        losses = [e.loss for e in sink.of(Step)]
        assert losses[-1] < losses[0] - 0.2  # healthy indeed
        return
    assert [a.alert for a in alerts] == [expected], [a.message for a in alerts]
    assert fix in alerts[0].fixes[0].label and "\n" not in alerts[0].message
    if expected == "flat loss":  # three times the proposal for LoRA on this model, not three times 1e-9
        from finetune_gui.core.estimate import shape_for
        from finetune_gui.core.estimate.proposal import learning_rate

        config = make_config(tiny_model, small_dataset, tmp_path / "x", method)
        proposed = learning_rate("lora", shape_for(config).parameters)
        assert alerts[0].fixes[0].settings["training.learning_rate"] == pytest.approx(3 * proposed, rel=0.05)
    assert run["alerts"][0]["alert"] == expected and run["alerts"][0]["message"] == alerts[0].message


def watch_with(logs, folder=None):
    """A HealthWatch fed these logs directly, no training run (its alerts recorded in ``folder``)."""
    emitted = []
    folder = folder or RunFolder(Path(tempfile.mkdtemp()) / "run")
    watch = HealthWatch(emitted.append, folder, learning_rate=2e-4, early_stopping=0)
    args = SimpleNamespace(warmup_steps=0.0)
    for step, entry in enumerate(logs, start=1):
        watch.on_log(args, SimpleNamespace(global_step=step, max_steps=len(logs)), None, logs=entry)
    return emitted


def test_rising_evaluations_and_a_gradient_spike_are_told_once_with_their_fixes():
    falling = [{"loss": 3.0 - 0.05 * i, "grad_norm": 1.0} for i in range(12)]
    evals = [{"eval_loss": v} for v in (2.0, 2.1, 2.2, 2.3, 2.4)]
    folder = RunFolder(Path(tempfile.mkdtemp()) / "run")
    said = watch_with(falling + evals, folder)
    assert [a.alert for a in said] == ["eval rising"] and folder.read().alerts == said  # run.json too
    assert "rose at the last 3 evaluations (2.000 → 2.100 → 2.200 → 2.300)" in said[0].message
    assert [f.to_dict() for f in said[0].fixes] == [
        {"label": "Early stopping after 2 evaluations", "set": {"training.early_stopping": 2}}
    ]
    spiky = [*falling, {"loss": 2.3, "grad_norm": 40.0}, {"loss": 2.2, "grad_norm": 50.0}]
    said = watch_with(spiky)
    assert [a.alert for a in said] == ["gradient spike"] and said[0].fixes[0].settings == {
        "training.learning_rate": 0.0001
    }
    assert watch_with([*falling, {"eval_loss": 2.0}, {"eval_loss": 1.9}]) == []
    # Memorising, then the evaluation loss rising on: one story, told once.
    learned_by_heart = [{"loss": 0.3 - 0.02 * i, "grad_norm": 1.0} for i in range(12)]
    said = watch_with(learned_by_heart + [{"eval_loss": v} for v in (1.0, 1.1, 1.2, 1.3, 1.4)])
    assert [a.alert for a in said] == ["memorising"]
