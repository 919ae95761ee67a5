"""Preference tuning in the window: a dropped file of chosen and rejected answers proposes DPO, the
method page offers DPO and ORPO, the settings show the preference strength, and the dashboard charts
the reward margin and how often the model prefers the chosen answer."""

from __future__ import annotations

import json

import preference_dataset
import pytest
import yaml
from gui_helpers import click, click_card, drop, rail, type_into
from test_gui_flows import open_window
from test_gui_wizard import choose

from finetune_gui.core.paths import runs_dir

pytestmark = pytest.mark.gui


def test_a_dropped_preference_file_trains_with_orpo_and_charts_its_preference(qtbot, tiny_model, tmp_path):
    train, _held = preference_dataset.write(tmp_path / "pairs")
    window = open_window(qtbot, detect_hardware=False)
    setup, state = window.setup, window.state
    drop(window, tiny_model)
    qtbot.waitUntil(lambda: state.shape is not None, timeout=90_000)
    click(qtbot, setup, "Next ▸")
    drop(window, train)
    qtbot.waitUntil(lambda: bool(state.dataset_report), timeout=90_000)
    page = setup.dataset
    assert "<b>preference</b> · 42 rows" in page.facts.text()
    assert "Preference pairs: the run learns which answer you prefer, with DPO;" in page.facts.text()
    assert "2 rows are held out" in page.facts.text() and "needs 8" in page.facts.text()
    shown = page.preview.toPlainText()
    assert "Aye, cook says:" in shown and "— or, rejected —" in shown
    html = page.preview.toHtml()
    assert "rgba(46,157,91,0.2)" in html and "rgba(210,71,61,0.2)" in html  # chosen green, rejected red
    assert state.config.training.objective == "dpo"
    page.split.setValue(0.3)  # hold out enough pairs for a verdict

    click(qtbot, setup, "Next ▸")
    method = setup.method
    offered = [method.objective.itemText(i) for i in range(method.objective.count())]
    assert offered == ["DPO (preferences)", "ORPO (preferences)"] and method.objective.isEnabled()
    choose(qtbot, method.objective, "ORPO (preferences)")
    assert state.config.training.objective == "orpo"
    click_card(qtbot, method.cards["lora"])
    click(qtbot, setup, "Next ▸")
    editors = setup.settings.editors
    assert "preference.beta" in editors and "preference.reference" not in editors  # ORPO has no reference
    assert editors["preference.beta"].widget.placeholderText() == "0.1 (proposed)"
    for key, value in (("training.max_steps", "8"), ("training.learning_rate", "0.01"), ("lora.r", "8")):
        type_into(qtbot, editors[key].widget, value)
    click(qtbot, setup.settings, "Advanced settings")
    type_into(qtbot, editors["training.eval_steps"].widget, "4")
    click(qtbot, setup, "Next ▸")
    review = yaml.safe_load(setup.review.yaml.toPlainText())
    assert review["training"]["objective"] == "orpo" and review["dataset"]["format"] == "preference"
    type_into(qtbot, setup.review.name, "orpo-run")
    click(qtbot, setup, "Start training")
    board = window.dashboard
    assert board.charts["margin"].isHidden()  # no preference numbers yet
    qtbot.waitUntil(lambda: board.point_count("accuracy", "train") >= 2, timeout=120_000)
    assert not board.charts["margin"].isHidden() and not board.charts["accuracy"].isHidden()
    qtbot.waitUntil(lambda: not board.is_running(), timeout=120_000)
    assert board.status == "completed"
    assert board.point_count("margin", "eval") >= 1
    run = json.loads((runs_dir() / "orpo-run" / "run.json").read_text())
    assert run["objective"] == "orpo" and run["learning"]["objective"] == "orpo"
    assert "Did it learn?" in board.learned.text() and "held-out pairs" in board.learned.text()
    assert "held-out pairs" in board.facts.text()
    assert "Did it forget?" in board.learned.text() and "General text perplexity" in board.learned.text()
    # Runs: both verdicts in their columns.
    rail(qtbot, window, "Runs")
    table = window.runs.table
    headers = [table.horizontalHeaderItem(i).text() for i in range(table.columnCount())]
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "orpo-run")
    assert "of" in table.item(row, headers.index("Learned")).text()
    assert table.item(row, headers.index("Forgot")).text().endswith("×")
    window.close()


# Slow (about 50 s): `make test` keeps the same apply-and-continue path through the out-of-memory fix
# (test_gui_dashboard) and every alert's firing in test_alerts.py.
@pytest.mark.slow
def test_a_flat_loss_alert_is_applied_in_one_click_and_the_run_continues_with_the_fix(
    qtbot, tiny_model, small_dataset, tmp_path, monkeypatch
):
    from finetune_gui.core.config import RunConfig

    monkeypatch.setenv("FINETUNE_GUI_TEST_STEP_DELAY", "0.2")  # the click lands while it trains
    window = open_window(qtbot, detect_hardware=False)
    config = RunConfig(model=str(tiny_model), method="lora", output_dir=str(runs_dir() / "flat-run"))
    config.dataset.path = str(small_dataset)
    t = config.training
    t.max_steps, t.learning_rate, t.batch_size, t.max_seq_len, t.warmup_ratio = 20, 1e-9, 4, 64, 0.0
    t.check_questions = t.sample_prompts = 0
    t.check_forgetting, t.save_steps, t.eval_steps = False, 2, 100
    path = tmp_path / "flat.yaml"
    config.save(path)
    board = window.dashboard
    window.pages.setCurrentWidget(board)
    board.start(path, runs_dir() / "flat-run")
    qtbot.waitUntil(lambda: board.alert_fix.isVisible(), timeout=120_000)
    assert "The training loss has not moved since warm-up" in board.alert.text()
    offered = board.alert_fix.text()
    assert (
        offered.startswith("Apply “Learning rate ") and "(three times the proposal)” and continue" in offered
    )
    fixed = board.shown_fix.settings["training.learning_rate"]
    click(qtbot, board, offered)
    qtbot.waitUntil(lambda: board.status == "running" and board.controller.is_running(), timeout=60_000)
    qtbot.waitUntil(lambda: not board.is_running(), timeout=120_000)
    assert board.status == "completed"
    saved = RunConfig.load(runs_dir() / "flat-run" / "config.yaml")
    assert saved.training.learning_rate == fixed > 1e-4
    run = json.loads((runs_dir() / "flat-run" / "run.json").read_text())
    assert len(run["sessions"]) == 2 and run["metrics"]["steps"] == 20
    records = [json.loads(x) for x in (runs_dir() / "flat-run" / "metrics.jsonl").read_text().splitlines()]
    rates = [r["learning_rate"] for r in records if "loss" in r]
    # The resumed session trains at the new rate (on the cosine schedule's position).
    assert rates[0] <= 1e-9 and max(rates) > 0.1 * fixed, rates
    window.close()
