"""Runs from earlier sessions: the Runs page, overlays, and the offer to resume an interrupted run."""

from __future__ import annotations

import json

import pytest
from gui_helpers import select_rows

from finetune_gui.core.paths import runs_dir

pytestmark = pytest.mark.gui


def fake_run(name, status, pid=None, losses=(2.0, 1.5, 1.0), checkpoint=True, learning=None, forgetting=None):
    folder = runs_dir() / name
    folder.mkdir(parents=True)
    info = {
        "status": status,
        "method": "lora",
        "model": "/models/tiny",
        "started_at": f"2026-11-28T10:0{len(name) % 10}:00",
        "metrics": {"final_loss": losses[-1], "steps": len(losses)},
        "duration_s": 120.0,
    }
    if pid is not None:
        info["pid"] = pid
    if learning is not None:
        info["learning"] = learning
    if forgetting is not None:
        info["forgetting"] = forgetting
    (folder / "run.json").write_text(json.dumps(info))
    (folder / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": i + 1, "loss": loss}) + "\n" for i, loss in enumerate(losses))
    )
    if checkpoint:
        (folder / "checkpoints" / "checkpoint-2").mkdir(parents=True)
        (folder / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (folder / "config.yaml").write_text("model: /models/tiny\n")
    return folder


def dead_pid():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_interrupted_run_is_offered_for_resume(qtbot):
    from finetune_gui.core.runs import list_runs
    from finetune_gui.gui.main_window import MainWindow

    fake_run("done-run", "completed")
    fake_run("crashed-run", "running", pid=dead_pid())
    states = {r.name: r.state for r in list_runs(runs_dir())}
    assert states == {"done-run": "completed", "crashed-run": "interrupted"}
    window = MainWindow(detect_hardware=False)
    qtbot.addWidget(window)
    window.check_earlier_runs()
    assert window.resume_dialog is not None and window.resume_dialog.isVisible()
    assert "crashed-run" in window.resume_dialog.text()
    started = []
    window.dashboard.start = lambda config, run_dir, resume=False, env=None: started.append((run_dir, resume))
    window.resume_run(str(runs_dir() / "crashed-run"))
    assert started == [(runs_dir() / "crashed-run", True)]
    window.resume_dialog.close()


def test_runs_page_lists_opens_and_overlays(qtbot):
    from finetune_gui.gui.main_window import MainWindow

    # As the training process writes them (a record missing a required field reads as no verdict).
    learning = {
        "step": 30,
        "changed": 12,
        "questions": 12,
        "tuned_right": 11,
        "base_right": 0,
        "verdict": "learned",
        "summary": "It learned.",
    }
    forgetting = {
        "step": 30,
        "base_perplexity": 10.0,
        "tuned_perplexity": 34.0,
        "ratio": 3.4,
        "verdict": "forgot",
        "summary": "General text perplexity 3.40× the base's.",
    }
    fake_run("first", "completed", losses=(3.0, 2.0, 1.0), learning=learning, forgetting=forgetting)
    second = fake_run("second", "stopped", losses=(3.0, 2.5))
    from finetune_gui.core.events import Checkpoint, Finished, Log

    said = [Log("Reading the dataset /data/notes.jsonl"), Checkpoint(2, "c-2"), Finished("stopped")]
    (second / "events.jsonl").write_text("".join(e.to_json() + "\n" for e in said) + '{"torn": \n')
    window = MainWindow(detect_hardware=False)
    qtbot.addWidget(window)
    page = window.runs
    assert page.table.rowCount() == 2 and not page.empty.isVisible()
    headers = [page.table.horizontalHeaderItem(c).text() for c in range(page.table.columnCount())]
    learned = sorted(page.table.item(r, headers.index("Learned")).text() for r in range(2))
    assert learned == ["–", "✓ 11 of 12 (base 0)"]  # the held-out check, or a dash for a run without one
    forgot = sorted(page.table.item(r, headers.index("Forgot")).text() for r in range(2))
    assert forgot == ["–", "✗ 3.40×"]
    select_rows(qtbot, page.table, [0, 1])
    assert page.overlay is not None and len(page.overlay.series) == 2
    assert "first: learned ✓ 11 of 12 (base 0), forgot ✗ 3.40×" in page.hint.text()
    assert {len(s.x) for s in page.overlay.series.values()} == {2, 3}
    page.table.clearSelection()
    page.table.selectRow(0)
    page.open_button.click()
    assert window.pages.currentWidget() is window.dashboard
    assert window.dashboard.point_count("loss", "train") in (2, 3)
    # The Log tab tells the opened run's story from its events, not an empty pane.
    assert window.dashboard.title.text() == "second"
    assert window.dashboard.log.toPlainText().splitlines() == [
        "Reading the dataset /data/notes.jsonl",
        "step 2: checkpoint saved",
        "Training stopped.",
    ]


def test_empty_runs_folder_says_what_to_do(qtbot):
    from finetune_gui.gui.runs_page import RunsPage

    page = RunsPage()
    qtbot.addWidget(page)
    page.show()
    assert page.empty.isVisible() and "Start one from Setup" in page.empty.text()
