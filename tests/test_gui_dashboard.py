"""The training dashboard over a real tiny run: signals, charts, stop, pause, out of memory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from finetune_gui.core.config import RunConfig

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def dashboard(qtbot):
    from finetune_gui.gui.training.dashboard import Dashboard

    board = Dashboard()
    qtbot.addWidget(board)
    board.show()
    yield board
    if board.controller is not None and board.controller.is_running():
        board.controller.kill()
        board.controller.wait(30)


def write_run(tmp_path, tiny_model, **training):
    lines = (REPO / "resources" / "demo-dataset.jsonl").read_text().splitlines()[:16]
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(lines) + "\n")
    config = RunConfig(model=str(tiny_model), method="lora", output_dir=str(tmp_path / "run"))
    config.dataset.path = str(data)
    config.dataset.validation_split = 0.25
    t = config.training
    t.batch_size, t.max_seq_len, t.eval_steps, t.save_steps, t.learning_rate = 4, 96, 3, 3, 1e-2
    t.check_questions, t.sample_max_new_tokens = 2, 8  # the random tiny model never stops: short answers
    for key, value in training.items():
        setattr(t, key, value)
    path = tmp_path / "run.yaml"
    config.save(path)
    return path, tmp_path / "run"


# Slow: the window walks (test_gui_flows, test_gui_preference) stream real runs into the charts.
@pytest.mark.slow
def test_a_real_run_streams_into_the_charts(qtbot, dashboard, tiny_model, tmp_path):
    config, run = write_run(tmp_path, tiny_model, max_steps=6)
    controller = dashboard.start(config, run)
    steps = []
    controller.step_logged.connect(lambda e: steps.append(e.step))
    with qtbot.waitSignal(controller.finished_run, timeout=180_000) as blocker:
        pass
    assert blocker.args[0].status == "completed"
    qtbot.waitUntil(lambda: not controller.is_running(), timeout=30_000)
    assert steps == [1, 2, 3, 4, 5, 6]
    assert dashboard.point_count("loss", "train") == 6
    assert dashboard.point_count("loss", "eval") >= 2
    assert dashboard.point_count("memory", "peak") == 6
    assert dashboard.status == "completed" and dashboard.progress.value() == 6
    assert (run / "adapter" / "adapter_model.safetensors").is_file()
    # Did it learn? The held-out check's verdict, in words, above the charts and in run.json.
    verdict = json.loads((run / "run.json").read_text())["learning"]
    assert not dashboard.learned.isHidden() and "Did it learn?" in dashboard.learned.text()
    assert verdict["summary"] in dashboard.learned.text() and verdict["questions"] == 2


# Slow: test_gui_flows' wizard walk pauses and stops a run through the same buttons in make test.
@pytest.mark.slow
def test_stop_leaves_a_loadable_adapter(qtbot, dashboard, tiny_model, tmp_path):
    config, run = write_run(tmp_path, tiny_model, max_steps=400, save_steps=1000, eval_steps=1000)
    controller = dashboard.start(config, run)
    qtbot.waitUntil(lambda: dashboard.point_count("loss", "train") >= 2, timeout=120_000)
    with qtbot.waitSignal(controller.finished_run, timeout=120_000) as blocker:
        dashboard.stop_button.click()
    assert blocker.args[0].status == "stopped"
    qtbot.waitUntil(lambda: not controller.is_running(), timeout=30_000)
    assert json.loads((run / "run.json").read_text())["status"] == "stopped"
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), run / "adapter")


# Slow: test_gui_flows' wizard walk pauses and stops a run through the same buttons in make test.
@pytest.mark.slow
def test_pause_holds_the_step_count(qtbot, dashboard, tiny_model, tmp_path):
    config, run = write_run(tmp_path, tiny_model, max_steps=400, save_steps=1000, eval_steps=1000)
    controller = dashboard.start(config, run)
    qtbot.waitUntil(lambda: dashboard.point_count("loss", "train") >= 2, timeout=120_000)
    with qtbot.waitSignal(controller.paused, timeout=30_000):
        dashboard.pause_button.click()
    assert dashboard.status == "paused" and dashboard.pause_button.text() == "Resume"
    held = dashboard.point_count("loss", "train")
    qtbot.wait(1500)
    assert dashboard.point_count("loss", "train") == held
    with qtbot.waitSignal(controller.resumed, timeout=30_000):
        dashboard.pause_button.click()
    qtbot.waitUntil(lambda: dashboard.point_count("loss", "train") > held, timeout=60_000)
    with qtbot.waitSignal(controller.finished_run, timeout=120_000):
        dashboard.stop()
    qtbot.waitUntil(lambda: not controller.is_running(), timeout=30_000)


def test_out_of_memory_shows_the_advice_and_applies_a_fix(qtbot, dashboard, tiny_model, tmp_path):
    config, run = write_run(tmp_path, tiny_model, max_steps=6, save_steps=2, eval_steps=100)
    env = dict(os.environ, FINETUNE_GUI_SIMULATE_OOM_AT_STEP="3")
    controller = dashboard.start(config, run, env=env)
    with qtbot.waitSignal(controller.failed_run, timeout=180_000) as blocker:
        pass
    event = blocker.args[0]
    assert event.kind_ == "oom" and dashboard.status == "failed"
    qtbot.waitUntil(
        lambda: hasattr(dashboard, "oom_dialog") and dashboard.oom_dialog.isVisible(), timeout=10_000
    )
    assert "batch 4 → 2 with gradient accumulation 2" in dashboard.oom_dialog.informativeText()
    dashboard.oom_dialog.close()
    qtbot.waitUntil(lambda: not controller.is_running(), timeout=30_000)
    # "Apply and continue": the fix goes into the config and the run resumes from its checkpoint.
    env.pop("FINETUNE_GUI_SIMULATE_OOM_AT_STEP")  # the resumed process inherits this environment
    dashboard.apply_fix_and_continue(event.fixes[0])
    controller = dashboard.controller
    with qtbot.waitSignal(controller.finished_run, timeout=180_000) as done:
        pass
    assert done.args[0].status == "completed"
    qtbot.waitUntil(lambda: not controller.is_running(), timeout=30_000)
    from finetune_gui.core.runs import RunFolder

    saved = RunConfig.load(RunFolder(run).launch_config_path)
    assert (saved.training.batch_size, saved.training.gradient_accumulation) == (2, 2)
    assert controller.resume


def test_a_crashing_process_is_reported_with_its_log(qtbot, dashboard, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model: x\ntraining: {max_steps: 2}\n")
    controller = dashboard.start(config, tmp_path / "run")
    with qtbot.waitSignal(controller.failed_run, timeout=60_000) as blocker:
        pass
    assert blocker.args[0].kind_ in ("crash", "config")
    qtbot.waitUntil(lambda: not controller.is_running(), timeout=30_000)
    assert dashboard.status == "failed" and dashboard.facts.text()


def test_charts_read_plainly_whole_steps_plain_values_and_a_smoothed_loss_that_follows(dashboard, qtbot):
    """Steps are whole numbers on the axis, a learning rate reads 0.0002 (not '2 (x0.0001)'), and the
    smoothed loss follows a falling loss from the first steps instead of sitting above it."""
    from finetune_gui.core.events import Step
    from finetune_gui.gui.training.view import RunView

    view = RunView(Path("a-run"), status="running")
    dashboard.active = view
    dashboard._show(view)
    losses = [4.0, 3.0, 2.2, 1.6, 1.2]
    for step, loss in enumerate(losses, start=1):
        event = Step(
            step=step,
            max_steps=5,
            epoch=0.1 * step,
            loss=loss,
            learning_rate=2e-4,
            grad_norm=0.001,
            tokens_per_s=100.0,
            elapsed_s=float(step),
            eta_s=1.0,
        )
        dashboard._on_step(event)
    dashboard._redraw()
    smoothed = view.points[("loss", "train (smoothed)")][1]
    assert smoothed[0] == losses[0] and all(s < losses[0] for s in smoothed[1:])
    assert smoothed[-1] < 2.5  # a plain average started at 4.0 would still be at 3.6
    bottom = dashboard.charts["loss"].getAxis("bottom")
    ticks = [v for _spacing, values in bottom.tickValues(1, 5, 400) for v in values]
    assert ticks and all(float(v).is_integer() for v in ticks)
    ticks = [v for _spacing, values in bottom.tickValues(1, 2, 400) for v in values]  # zoomed in
    assert ticks == [1.0, 2.0]
    left = dashboard.charts["lr"].getAxis("left")
    assert "x1e" not in left.labelString() and "(x" not in left.labelString()
    spacing = 5e-5
    strings = left.tickStrings([1e-4, 1.5e-4, 2e-4], left.scale, spacing)
    assert strings == ["0.0001", "0.00015", "0.0002"]


def test_a_chart_whose_legend_is_wider_than_it_keeps_the_whole_plot_in_view(qtbot):
    """At 1024 pixels the Memory chart's title and legend were one line wider than the chart: the plot
    grew past the view and its right part (the last steps) was cut off. The legend moves to a second
    line where one does not fit, and back where it does."""
    from finetune_gui.gui.charts import LiveChart

    chart = LiveChart("Memory", "GB")
    qtbot.addWidget(chart)
    for name in ("peak", "in use", "estimate"):
        series = chart.add_series(name)
        series.append(1, 0.5)
        series.append(24, 0.6)
    chart.resize(270, 200)
    chart.show()
    chart.redraw()
    qtbot.wait(200)  # the layouts settle on posted events
    title = chart.getPlotItem().titleLabel
    assert chart.getPlotItem().width() <= chart.width()
    assert "<br>" in title.text
    chart.resize(700, 200)
    qtbot.wait(200)
    assert "<br>" not in title.text and "estimate" in title.text
    assert chart.getPlotItem().width() <= chart.width()
