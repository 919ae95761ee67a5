"""The paths a user walks, end to end through the real window: wizard → train → pause → resume → stop
and save → resume from Runs in a new window; each bug found by using the app has the test that would
have caught it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from gui_helpers import (
    button,
    click,
    click_card,
    drop,
    rail,
    select_rows,
    strictly_increasing,
    type_into,
)

from finetune_gui.core.paths import runs_dir

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[1]


def dataset_file(tmp_path, rows=24):
    lines = (REPO / "resources" / "demo-dataset.jsonl").read_text().splitlines()[:rows]
    path = tmp_path / "facts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def open_window(qtbot, detect_hardware=True):
    from finetune_gui.gui.main_window import MainWindow

    window = MainWindow(detect_hardware=detect_hardware)
    qtbot.addWidget(window)
    window.show()
    if detect_hardware:
        qtbot.waitUntil(lambda: window.state.hardware is not None, timeout=90_000)
    return window


def close_idle(window):
    """Close a window that has no run in progress (no dialog appears)."""
    assert not window.dashboard.is_running()
    window.close()


def test_wizard_train_pause_resume_stop_then_resume_from_runs_in_a_new_window(
    qtbot, tiny_model, tmp_path, monkeypatch
):
    monkeypatch.setenv("FINETUNE_GUI_TEST_STEP_DELAY", "0.5")  # slow steps, so the clicks land mid-run
    window = open_window(qtbot)
    setup = window.setup
    assert "No GPU found" in " ".join(
        c.findChildren(type(window.hardware_label))[0].text() for c in setup.hardware.cards
    )
    # The model, dropped on the window, goes to the model step (before any Next: no demo model is made).
    drop(window, tiny_model)
    assert setup.current is setup.model
    qtbot.waitUntil(lambda: window.state.shape is not None, timeout=90_000)
    assert setup.model.facts_title.text() == tiny_model.name  # a name, not a path
    click(qtbot, setup, "Next ▸")
    assert setup.current is setup.dataset
    drop(window, dataset_file(tmp_path))
    qtbot.waitUntil(lambda: bool(window.state.dataset_report), timeout=90_000)
    click(qtbot, setup, "Next ▸")
    assert setup.current is setup.method
    click_card(qtbot, setup.method.cards["lora"])
    assert window.state.config.method == "lora"
    click(qtbot, setup, "Next ▸")
    editors = setup.settings.editors
    for key, value in (("training.max_steps", "12"), ("training.learning_rate", "0.01"), ("lora.r", "8")):
        type_into(qtbot, editors[key].widget, value)
    click(qtbot, setup.settings, "Advanced settings")
    for key, value in (("training.save_steps", "4"), ("training.eval_steps", "4")):
        type_into(qtbot, editors[key].widget, value)
    assert setup.settings.is_complete() and setup.next.isEnabled()
    click(qtbot, setup, "Next ▸")
    assert setup.current is setup.review
    type_into(qtbot, setup.review.name, "flow-run")
    click(qtbot, setup, "Start training")
    board = window.dashboard
    assert window.pages.currentWidget() is board
    qtbot.waitUntil(lambda: board.point_count("loss", "train") >= 2, timeout=120_000)
    # Runs lists the run while it trains, not only once it has ended.
    listed = {r.name: r for r in window.runs.runs}
    assert "flow-run" in listed and window.runs.table.rowCount() >= 1
    # A refused drop's notice outlives the next step's progress, which waits in its own label.
    strange = tmp_path / "notes.docx"
    strange.write_text("x")
    drop(window, strange)
    seen = board.point_count("loss", "train")
    qtbot.waitUntil(lambda: board.point_count("loss", "train") > seen, timeout=60_000)
    assert "neither a dataset nor a model" in window.statusBar().currentMessage()
    assert window.progress_label.text().startswith("Training flow-run")

    # Pause answers at once, then takes effect after the current step.
    click(qtbot, board, "Pause")
    assert "pausing" in board.pill.text() and not board.pause_button.isEnabled()
    qtbot.waitUntil(lambda: board.status == "paused", timeout=30_000)
    assert board.pause_button.text() == "Resume" and board.pause_button.isEnabled()
    held = board.point_count("loss", "train")
    qtbot.wait(1500)
    assert board.point_count("loss", "train") == held
    click(qtbot, board, "Resume")
    qtbot.waitUntil(lambda: board.status == "running", timeout=30_000)
    qtbot.waitUntil(lambda: board.point_count("loss", "train") >= 6, timeout=60_000)  # past checkpoint-4
    click(qtbot, board, "Stop and save")
    assert "stopping" in board.pill.text() and not board.stop_button.isEnabled()
    qtbot.waitUntil(lambda: board.status == "stopped", timeout=60_000)
    qtbot.waitUntil(lambda: not board.is_running(), timeout=30_000)
    run = runs_dir() / "flow-run"
    first = json.loads((run / "run.json").read_text())
    assert first["status"] == "stopped" and (run / "adapter" / "adapter_model.safetensors").is_file()
    stopped_at = first["metrics"]["steps"]
    log = board.log.toPlainText()
    assert "Paused after step" in log and "Resumed at step" in log
    # The status bar says the run ended; it does not keep the last step's line.
    assert "training stopped" in window.statusBar().currentMessage()
    close_idle(window)

    # A new window: Runs → select the run → Resume. The charts keep the history before the checkpoint
    # and never fold back over the steps that are done again.
    window = open_window(qtbot, detect_hardware=False)
    rail(qtbot, window, "Runs")
    assert window.pages.currentWidget() is window.runs
    row = [r.name for r in window.runs.runs].index("flow-run")
    select_rows(qtbot, window.runs.table, [row])
    click(qtbot, window.runs, "Resume")
    board = window.dashboard
    assert window.pages.currentWidget() is board
    assert board.point_count("loss", "train") >= 4  # the history is there before the first new step
    qtbot.waitUntil(lambda: board.status == "completed", timeout=180_000)
    qtbot.waitUntil(lambda: not board.is_running(), timeout=30_000)
    steps = board.charts["loss"].series["train"].x
    assert strictly_increasing(steps) and steps[0] == 1 and steps[-1] == 12
    assert "Resuming from checkpoint-" in board.log.toPlainText()
    second = json.loads((run / "run.json").read_text())
    assert second["status"] == "completed" and second["started_at"] == first["started_at"]
    assert len(second["sessions"]) == 2 and second["duration_s"] >= first["duration_s"]
    assert stopped_at >= 6
    close_idle(window)


def background_config(tiny_model, tmp_path, name="background-run", max_steps=300):
    from finetune_gui.core.config import RunConfig

    config = RunConfig(model=str(tiny_model), method="lora", output_dir=str(runs_dir() / name))
    config.dataset.path = str(dataset_file(tmp_path))
    t = config.training
    t.max_steps, t.batch_size, t.max_seq_len, t.learning_rate = max_steps, 4, 96, 1e-2
    t.save_steps, t.eval_steps = 3, 1000
    t.check_questions, t.sample_max_new_tokens = 2, 8  # the random tiny model never stops: short answers
    path = tmp_path / f"{name}.yaml"
    config.save(path)
    return path, runs_dir() / name


def wait_gone(pid, timeout_s=60):
    import time

    from finetune_gui.core.runs import process_alive

    deadline = time.monotonic() + timeout_s
    while process_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still alive"
        time.sleep(0.2)


def test_keep_training_exits_cleanly_and_the_next_window_can_pause_and_stop_it(qtbot, tiny_model, tmp_path):
    import os
    import subprocess
    import sys

    from finetune_gui.core.runs import process_alive

    config, run = background_config(tiny_model, tmp_path)
    env = dict(os.environ, FINETUNE_GUI_TEST_STEP_DELAY="0.5")
    window_process = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "keep_training_window.py"), str(config)],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    pid = json.loads((run / "run.json").read_text())["pid"]
    try:
        assert window_process.returncode == 0, window_process.stderr[-2000:]
        assert "QThread" not in window_process.stderr and "Traceback" not in window_process.stderr
        assert process_alive(pid), "the run should train on after 'Keep training'"

        # The next start reattaches: the Training page, following the run, with working controls.
        window = open_window(qtbot, detect_hardware=False)
        window.check_earlier_runs()
        board = window.dashboard
        assert window.pages.currentWidget() is board and board.is_running()
        qtbot.waitUntil(lambda: board.point_count("loss", "train") >= 3, timeout=60_000)
        assert board.charts["loss"].series["train"].x[0] == 1  # its history, from the start
        # What it said before this window came is read back without a clock time (the time it was read
        # would be wrong); what comes after is stamped.
        log = board.log.toPlainText().splitlines()
        live = next(i for i, line in enumerate(log) if line.endswith("Following it live from here."))
        stamped = re.compile(r"\d\d:\d\d:\d\d  ")
        assert live > 1 and not any(stamped.match(line) for line in log[1:live]), log[: live + 1]
        assert stamped.match(log[0]) and stamped.match(log[live])
        click(qtbot, board, "Pause")
        qtbot.waitUntil(lambda: board.status == "paused", timeout=30_000)
        click(qtbot, board, "Stop and save")
        qtbot.waitUntil(lambda: board.status == "stopped", timeout=60_000)
        assert "ETA" not in board.facts.text() and "left" not in board.facts.text()
        wait_gone(pid)
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "stopped" and (run / "adapter" / "adapter_model.safetensors").is_file()
        qtbot.waitUntil(lambda: not board.is_running(), timeout=10_000)
        window.close()
    finally:
        if process_alive(pid):
            os.kill(pid, 9)


def test_a_followed_run_that_dies_says_so_and_offers_to_resume(qtbot, tiny_model, tmp_path):
    import os
    import subprocess
    import sys

    from finetune_gui.core.runs import process_alive

    config, run = background_config(tiny_model, tmp_path, "dies-run")
    process = subprocess.Popen(
        [sys.executable, "-m", "finetune_gui", "train", str(config)],
        env=dict(os.environ, FINETUNE_GUI_TEST_STEP_DELAY="0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        qtbot.waitUntil(lambda: (run / "checkpoints" / "checkpoint-3").is_dir(), timeout=120_000)
        window = open_window(qtbot, detect_hardware=False)
        window.check_earlier_runs()
        board = window.dashboard
        assert board.is_running()
        process.kill()
        process.wait(30)
        qtbot.waitUntil(lambda: board.status == "failed", timeout=30_000)
        assert "killed" in board.facts.text() or "ended without finishing" in board.facts.text()
        qtbot.waitUntil(
            lambda: hasattr(board, "crash_dialog") and board.crash_dialog.isVisible(), timeout=10_000
        )
        resume = [b for b in board.crash_dialog.buttons() if b.text().startswith("Resume from checkpoint-")]
        assert resume, [b.text() for b in board.crash_dialog.buttons()]
        board.crash_dialog.close()
        window.close()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        assert not process_alive(process.pid)


def test_settings_list_every_invalid_value_and_keep_next_off_until_fixed(qtbot, tiny_model, tmp_path):
    window = open_window(qtbot, detect_hardware=False)
    window.state.set_hardware({"gpus": [], "ram_total_gib": 16.0, "ram_available_gib": 12.0, "cpu_count": 2})
    setup = window.setup
    drop(window, tiny_model)
    qtbot.waitUntil(lambda: window.state.shape is not None, timeout=90_000)
    setup.go(4)
    editors = setup.settings.editors
    type_into(qtbot, editors["training.batch_size"].widget, "0")
    assert not setup.next.isEnabled()
    assert "Batch size is 0" in setup.settings.error.text()  # words, not 'training.batch_size'
    type_into(qtbot, editors["training.max_seq_len"].widget, "two")
    errors = setup.settings.error.text()
    assert "Batch size" in errors and "Sequence length" in errors and not setup.next.isEnabled()
    type_into(qtbot, editors["training.batch_size"].widget, "2")
    assert "Batch size" not in setup.settings.error.text() and not setup.next.isEnabled()
    type_into(qtbot, editors["training.max_seq_len"].widget, "128")
    assert setup.next.isEnabled() and not setup.settings.error.isVisible()
    assert window.state.config.training.batch_size == 2 and window.state.config.training.max_seq_len == 128
    # A refused value is not applied, and going back leaves no stale error behind.
    type_into(qtbot, editors["training.batch_size"].widget, "-3")
    click(qtbot, setup, "Back")
    assert setup.next.isEnabled()
    click(qtbot, setup, "Next ▸")
    assert not setup.settings.error.isVisible() and setup.next.isEnabled()
    assert editors is not setup.settings.editors
    assert setup.settings.editors["training.batch_size"].widget.text() == "2"
    window.close()


def test_drops_go_where_they_belong_and_reimport_keeps_an_adapters_facts(qtbot, tiny_model, tmp_path):
    from test_adapters import make_lora

    from finetune_gui.core.adapters.library import AdapterLibrary

    window = open_window(qtbot, detect_hardware=False)
    window.state.set_hardware({"gpus": [], "ram_total_gib": 16.0, "ram_available_gib": 12.0, "cpu_count": 2})
    data = dataset_file(tmp_path)
    drop(window, data)
    qtbot.waitUntil(lambda: bool(window.state.dataset_report), timeout=90_000)
    adapter = make_lora(tiny_model, tmp_path / "my-adapter", 4, 1)
    drop(window, adapter)  # an adapter folder is not a dataset: it goes to the library
    assert window.pages.currentWidget() is window.adapters
    assert window.state.config.dataset.path == str(data)  # the chosen dataset is kept
    library = AdapterLibrary()
    entry = library.find_path(adapter)
    assert entry is not None and window.adapters.table.rowCount() == 1
    library.add(adapter, steps=40, final_loss=0.5, dataset="facts.jsonl")  # facts a run would have given
    drop(window, adapter)
    again = library.find_path(adapter)
    assert again["id"] == entry["id"] and again["steps"] == 40 and again["final_loss"] == 0.5
    assert "already in the library" in window.statusBar().currentMessage()
    rail(qtbot, window, "Setup")
    drop(window, tiny_model)
    assert window.pages.currentWidget() is window.setup and window.setup.current is window.setup.model
    qtbot.waitUntil(lambda: window.state.shape is not None, timeout=90_000)
    window.close()


def test_window_settings_stay_in_the_app_home(qtbot, isolated_home, tiny_model):
    from finetune_gui.gui.wizard.model_page import recent_models, remember_model

    remember_model(str(tiny_model))
    assert recent_models() == [str(tiny_model)]
    ini = isolated_home / "config" / "settings.ini"
    assert ini.is_file() and str(tiny_model) in ini.read_text()


def test_adapters_stack_merge_then_playground_send_and_stop(qtbot, tiny_model, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    from test_adapters import make_lora

    from finetune_gui.core.adapters.library import AdapterLibrary

    library = AdapterLibrary()
    for name, r, seed in (("style", 4, 1), ("facts", 8, 2)):
        library.add(make_lora(tiny_model, tmp_path / name, r, seed), name=name, base_model=str(tiny_model))
    window = open_window(qtbot, detect_hardware=False)
    rail(qtbot, window, "Adapters")
    page = window.adapters
    assert page.table.rowCount() == 2
    select_rows(qtbot, page.table, [0, 1])
    assert "stack of 2" in page.detail_title.text() and len(page.sliders) == 2
    assert page.export_name.text() in ("style-0.5+facts-0.5", "facts-0.5+style-0.5")  # proposed, editable
    # Moved weights: the proposed name follows them (it kept 0.5/0.5 before), and the figures are
    # measured again for this stack.
    names = {entry["path"]: entry["name"] for entry in page.entries}
    for slider, value in zip(page.sliders.values(), (70, 30), strict=True):
        slider.setValue(value)
    weights = {
        names[path]: value / 100 for (path, _), value in zip(page.sliders.items(), (70, 30), strict=True)
    }
    assert page.export_name.text() == "+".join(f"{n}-{w:g}" for n, w in weights.items())
    stack = dict(page.stack())
    assert sorted(stack.values()) == [0.3, 0.7]
    qtbot.waitUntil(
        lambda: (
            "recommended"
            in " ".join(page.export_choice.itemText(i) for i in range(page.export_choice.count()))
        ),
        timeout=120_000,
    )
    labels = [page.export_choice.itemText(i) for i in range(page.export_choice.count())]
    assert any(
        label.startswith("GGUF q4_1") and "MB · perplexity ×" in label and "% of the fine-tune" in label
        for label in labels
    ), labels
    assert tuple(page.stack()) in {key[1] for key in page.options}  # measured for these weights
    assert page.export_note.isHidden()  # safetensors writes only the merged model
    page.export_choice.setCurrentIndex(
        next(i for i, label in enumerate(labels) if label.startswith("GGUF q4_1"))
    )
    assert (
        not page.export_note.isHidden() and "merged model as safetensors in model/" in page.export_note.text()
    )
    page.export_name.setText("")
    qtbot.keyClicks(page.export_name, "blend")
    exports = tmp_path / "exports"
    exports.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_a, **_k: str(exports))  # the answer
    click(qtbot, page, "Merge and export…")
    qtbot.waitUntil(lambda: "Written to" in page.result.text() or page.error.isVisible(), timeout=240_000)
    assert "verified: max difference" in page.result.text(), page.error.text()
    text = page.result.text()
    assert "tensors: all" in text and "keeps" in text and "answers: perplexity" in text, text
    assert "ollama create blend" in text
    assert (exports / "blend" / "blend-q4_1.gguf").is_file() and (exports / "blend" / "README.md").is_file()
    assert (
        button(page, "Copy the ollama command").isVisible() and button(page, "Open export folder").isVisible()
    )
    click(qtbot, page, "Copy the ollama command")
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text().endswith("ollama create blend -f Modelfile")
    # Exporting into the same folder again asks, and replaces it whole.
    from PySide6.QtWidgets import QMessageBox

    asked = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Yes
    )
    page.export_choice.setCurrentIndex(0)  # safetensors this time
    click(qtbot, page, "Merge and export…")
    qtbot.waitUntil(lambda: "Written to" in page.result.text() or page.error.isVisible(), timeout=240_000)
    assert asked and not (exports / "blend" / "blend-q4_1.gguf").exists()
    assert (exports / "blend" / "model.safetensors").is_file()

    click(qtbot, page, "Open in playground")
    playground = window.playground
    assert window.pages.currentWidget() is playground
    qtbot.waitUntil(lambda: playground.ready, timeout=120_000)
    assert "0.7 × " in playground.boxes["tuned"].title() and "0.3 × " in playground.boxes["tuned"].title()
    from PySide6.QtCore import Qt

    qtbot.keyClicks(playground.prompt, "Hello")
    click(qtbot, playground, "Send")
    qtbot.waitUntil(lambda: playground.status.text().startswith("Done."), timeout=120_000)
    from test_gui_adapters import answer_of

    base = answer_of(playground.panes["base"].toPlainText())
    tuned = answer_of(playground.panes["tuned"].toPlainText())
    assert base != tuned
    qtbot.keyClick(playground.prompt, Qt.Key.Key_A)
    qtbot.keyClick(playground.prompt, Qt.Key.Key_Return)  # Enter sends too
    assert playground.stop_button.isEnabled()
    click(qtbot, playground, "Stop")
    qtbot.waitUntil(lambda: playground.status.text().startswith("Stopped."), timeout=60_000)
    assert not playground.stop_button.isEnabled()
    window.close()


def test_opening_another_runs_charts_while_one_trains(qtbot, tiny_model, tmp_path, monkeypatch):
    from test_gui_runs import fake_run

    fake_run("older-run", "completed", losses=(3.0, 2.0, 1.5, 1.0))
    monkeypatch.setenv("FINETUNE_GUI_TEST_STEP_DELAY", "0.4")
    config, _run = background_config(tiny_model, tmp_path, "live-run", max_steps=30)
    window = open_window(qtbot, detect_hardware=False)
    from finetune_gui.core.config import RunConfig

    window.start_training(RunConfig.load(config))
    board = window.dashboard
    qtbot.waitUntil(lambda: board.point_count("loss", "train") >= 2, timeout=120_000)
    rail(qtbot, window, "Runs")
    row = [r.name for r in window.runs.runs].index("older-run")
    select_rows(qtbot, window.runs.table, [row])
    click(qtbot, window.runs, "Open charts")
    assert board.title.text() == "older-run" and board.point_count("loss", "train") == 4
    assert not board.pause_button.isEnabled()  # the controls belong to the live run
    qtbot.wait(1500)
    assert board.point_count("loss", "train") == 4  # the live run's steps do not land here
    click(qtbot, board, "Back to live-run")
    assert board.title.text() == "live-run" and board.point_count("loss", "train") >= 3
    click(qtbot, board, "Stop and save")
    qtbot.waitUntil(lambda: board.status == "stopped", timeout=60_000)
    qtbot.waitUntil(lambda: not board.is_running(), timeout=30_000)
    window.close()


def test_a_crash_shows_what_the_process_said_not_a_library_warning(qtbot, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_SIMULATE_CRASH_AT_STEP", "2")
    config, run = background_config(tiny_model, tmp_path, "crash-run", max_steps=10)
    (run).mkdir(parents=True)
    (run / "train.log").write_text("UserWarning: bitsandbytes was compiled without kernels support\n")
    window = open_window(qtbot, detect_hardware=False)
    from finetune_gui.core.config import RunConfig

    window.start_training(RunConfig.load(config))
    board = window.dashboard
    qtbot.waitUntil(lambda: board.status == "failed", timeout=120_000)
    qtbot.waitUntil(lambda: hasattr(board, "crash_dialog") and board.crash_dialog.isVisible(), timeout=10_000)
    details = board.crash_dialog.informativeText()
    assert "RuntimeError: simulated crash at step 2" in details and "bitsandbytes" not in details
    assert (run / "error.log").is_file()
    assert "Resume from checkpoint-" not in " ".join(b.text() for b in board.crash_dialog.buttons())
    board.crash_dialog.close()
    qtbot.waitUntil(lambda: not board.is_running(), timeout=30_000)
    window.close()


def test_an_empty_training_page_leads_to_setup_and_no_label_says_it_is_detecting(qtbot):
    window = open_window(qtbot, detect_hardware=False)
    assert window.hardware_label.text() == "GPU: not checked"  # nothing detects: it must not say so
    rail(qtbot, window, "Training")
    assert window.pages.currentWidget() is window.dashboard
    click(qtbot, window.dashboard, "Go to Setup")
    assert window.pages.currentWidget() is window.setup
    close_idle(window)
