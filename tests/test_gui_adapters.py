"""The Adapters and Playground pages: the library table, stacking with weights, merge-and-export, and
switching adapters on one loaded base."""

from __future__ import annotations

import re

import pytest
from gui_helpers import button, click
from test_adapters import make_lora

pytestmark = pytest.mark.gui


@pytest.fixture
def library_with_two(tiny_model, tmp_path):
    from finetune_gui.core.adapters.library import AdapterLibrary

    library = AdapterLibrary()
    for name, r, seed in (("style", 4, 1), ("facts", 8, 2)):
        library.add(make_lora(tiny_model, tmp_path / name, r, seed), name=name, base_model=str(tiny_model))
    return library


def test_adapters_table_stack_and_verified_export(qtbot, library_with_two, tmp_path):
    from finetune_gui.gui.adapters_page import AdaptersPage

    page = AdaptersPage()
    qtbot.addWidget(page)
    page.show()
    assert page.table.rowCount() == 2 and not page.empty.isVisible()
    page.table.selectAll()
    assert len(page.sliders) == 2 and "stack of 2" in page.detail_title.text()
    first, second = page.sliders.values()
    first.setValue(70)
    second.setValue(30)
    assert [w for _, w in page.stack()] == [0.7, 0.3]
    job = page.export(str(tmp_path / "merged"))
    with qtbot.waitSignal(job.succeeded, timeout=120_000):
        pass
    assert "verified: max difference" in page.result.text()
    assert (tmp_path / "merged" / "README.md").is_file()
    assert (tmp_path / "merged" / "model.safetensors").is_file()


def test_refused_import_says_why(qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from finetune_gui.gui.adapters_page import AdaptersPage

    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text: shown.append(text))
    page = AdaptersPage()
    qtbot.addWidget(page)
    assert not page.import_folder(str(tmp_path))
    assert "not an adapter folder" in shown[0]


def answer_of(pane_text: str) -> str:
    """The last answer in a playground pane (under the last 'You: …' line and the [what answered] line)."""
    _question, label, *answer = pane_text.rsplit("You: ", 1)[-1].split("\n", 2)
    assert label.startswith("[") and label.endswith("]"), label
    return answer[0].strip() if answer else ""


def test_playground_send_compares_base_and_tuned_and_stop_ends_both(qtbot, library_with_two, tiny_model):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication

    from finetune_gui.gui.playground_page import ENDINGS, PlaygroundPage

    page = PlaygroundPage()
    qtbot.addWidget(page)
    page.show()
    entries = {e["name"]: e for e in library_with_two.entries()}
    page.open(str(tiny_model), [(entries["style"]["path"], 1.0)])
    qtbot.waitUntil(lambda: page.ready, timeout=120_000)
    child = page.child
    assert "Tuned · style" in page.boxes["tuned"].title() and "Base · " in page.boxes["base"].title()
    assert not page.send_button.isEnabled()  # nothing typed yet
    qtbot.keyClicks(page.prompt, "Hello")
    assert page.send_button.isEnabled(), "Send must be enabled once the model is loaded"
    qtbot.mouseClick(page.send_button, Qt.MouseButton.LeftButton)
    assert page.stop_button.isEnabled() and not page.send_button.isEnabled()
    qtbot.waitUntil(lambda: page.status.text().startswith("Done."), timeout=120_000)
    base, tuned = answer_of(page.panes["base"].toPlainText()), answer_of(page.panes["tuned"].toPlainText())
    assert base and tuned and base != tuned  # the adapter changes what the model says
    # Each answer says what gave it; the status how fast each came.
    assert f"[{tiny_model.name}]" in page.panes["base"].toPlainText()
    assert "[style]" in page.panes["tuned"].toPlainText()
    assert re.search(r"Done\. Base [\d.]+ tokens/s · Tuned [\d.]+ tokens/s\.", page.status.text())
    # The next question starts level in both panes, however long each answer was.
    from finetune_gui.gui.playground_page import _screen_lines

    qtbot.waitUntil(lambda: _screen_lines(page.panes["base"]) == _screen_lines(page.panes["tuned"]))
    qtbot.mouseClick(button(page.boxes["tuned"], "Copy answer"), Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert copied and tuned.removesuffix(ENDINGS["length"]).strip() == copied.strip()  # the answer alone

    # The same question again at temperature 0: the base's answer is shown again, not generated again.
    qtbot.keyClicks(page.prompt, "Hello")
    qtbot.mouseClick(page.send_button, Qt.MouseButton.LeftButton)
    assert [r.id for r in page.pending] == ["tuned"] or page.answering == {"tuned"}
    qtbot.waitUntil(lambda: page.status.text().startswith("Done."), timeout=120_000)
    assert answer_of(page.panes["base"].toPlainText()) == f"{base} [the same answer as before]"
    assert answer_of(page.panes["tuned"].toPlainText()) == tuned
    click(qtbot, page, "Clear")
    assert not page.panes["base"].toPlainText() and not page.panes["tuned"].toPlainText()

    # A stack on the same base: switched on the loaded model, not reloaded.
    page.open(str(tiny_model), [(entries["style"]["path"], 0.5), (entries["facts"]["path"], 0.5)])
    assert page.child is child and "stack" in page.picker.currentText()
    page.max_tokens.setValue(400)
    qtbot.keyClicks(page.prompt, "Again")
    qtbot.mouseClick(page.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "You: Again" in page.panes["base"].toPlainText(), timeout=10_000)
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.status.text().startswith("Stopped."), timeout=60_000)
    # Both answers ended: the one being written and the one that was waiting.
    assert (
        "[stopped]" in page.panes["base"].toPlainText() and "[stopped]" in page.panes["tuned"].toPlainText()
    )
    assert page.send_button.isEnabled() is False and not page.stop_button.isEnabled()
    qtbot.keyClicks(page.prompt, "Once more")
    assert page.send_button.isEnabled() and not page.error.isVisible()
    page.shutdown()


def test_removing_an_adapter_never_deletes_a_folder_the_user_made_without_its_name_typed(
    qtbot, tiny_model, tmp_path, monkeypatch
):
    from gui_helpers import answer_next_dialog, select_rows
    from PySide6.QtWidgets import QInputDialog

    from finetune_gui.core.adapters.library import AdapterLibrary
    from finetune_gui.core.paths import runs_dir
    from finetune_gui.gui.adapters_page import AdaptersPage

    library = AdapterLibrary()
    own = make_lora(tiny_model, tmp_path / "checkpoint-72", 4, 1)  # the user's folder, imported
    library.add(own, base_model=str(tiny_model))
    page = AdaptersPage()
    qtbot.addWidget(page)
    page.show()
    select_rows(qtbot, page.table, [0])
    answer_next_dialog("Remove from the library")  # the default
    click(qtbot, page, "Delete…")
    assert "Its folder stays where it is" in page.delete_dialog.text()
    assert page.table.rowCount() == 0 and (own / "adapter_config.json").is_file()

    library.add(own, base_model=str(tiny_model))
    page.refresh()
    select_rows(qtbot, page.table, [0])
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("checkpoint", True))  # a wrong name
    answer_next_dialog("Delete its folder too…")
    click(qtbot, page, "Delete…")
    assert (own / "adapter_config.json").is_file() and page.table.rowCount() == 1
    assert "Nothing was deleted" in page.error.text()
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: ("checkpoint-72", True))  # its name
    answer_next_dialog("Delete its folder too…")
    click(qtbot, page, "Delete…")
    assert not own.exists() and page.table.rowCount() == 0

    # A run's adapter in the app's data folder: the second button deletes it, no name to type.
    run_adapter = make_lora(tiny_model, runs_dir() / "my-run" / "adapter", 4, 2)
    library.add(run_adapter, base_model=str(tiny_model))
    page.refresh()
    select_rows(qtbot, page.table, [0])
    monkeypatch.setattr(QInputDialog, "getText", lambda *_a, **_k: pytest.fail("no name is asked"))
    answer_next_dialog("Delete its folder too")
    click(qtbot, page, "Delete…")
    assert not run_adapter.exists() and page.table.rowCount() == 0
    page.close()  # a GGUF measurement the selections started is cancelled with the page
    qtbot.waitUntil(lambda: page.options_job is None or not page.options_job.is_running(), timeout=10_000)


def test_the_library_refuses_to_delete_a_users_folder_without_its_name(tiny_model, tmp_path):
    from finetune_gui.core.adapters.library import AdapterLibrary
    from finetune_gui.core.errors import UserError

    library = AdapterLibrary()
    entry = library.add(make_lora(tiny_model, tmp_path / "mine", 4, 1))
    with pytest.raises(UserError, match="type its name \\(mine\\)"):
        library.remove(entry["id"], delete_files=True)
    assert (tmp_path / "mine").is_dir() and library.entries()


def test_an_empty_playground_offers_neither_send_nor_stop(qtbot):
    from PySide6.QtCore import Qt

    from finetune_gui.gui.playground_page import PlaygroundPage

    page = PlaygroundPage()
    qtbot.addWidget(page)
    page.show()
    assert not page.send_button.isEnabled() and not page.stop_button.isEnabled()
    qtbot.keyClicks(page.prompt, "Hello?")
    assert not page.send_button.isEnabled()  # nothing to ask yet
    qtbot.keyClick(page.prompt, Qt.Key.Key_Return)
    assert not page.answering and page.child is None


def test_a_merge_from_the_adapters_page_beside_a_training_run_takes_its_share_of_the_cores(
    qtbot, library_with_two, tmp_path, monkeypatch
):
    """The torch-process flag comes from the command: a merge started beside a training run gets half
    the threads (it once took every core, 10-30x slower for both)."""
    import subprocess

    from finetune_gui.core.processes import thread_count
    from finetune_gui.gui import child as child_module
    from finetune_gui.gui.adapters_page import AdaptersPage
    from finetune_gui.gui.child import ChildProcess

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    training = ChildProcess(["train", "run.yaml", "--events", "jsonl"])
    assert training.torch_process and not ChildProcess(["hardware", "--json"]).torch_process
    seen = []
    real = subprocess.Popen

    def spy(command, **kwargs):
        seen.append((command, kwargs.get("env") or {}))
        return real(command, **kwargs)

    monkeypatch.setattr(child_module.subprocess, "Popen", spy)
    monkeypatch.setattr("finetune_gui.core.processes.others_running", lambda: 0)  # no runs outside
    ChildProcess.running.add(training)  # a run the window is training
    try:
        page = AdaptersPage()
        qtbot.addWidget(page)
        page.show()
        page.table.selectAll()
        job = page.export(str(tmp_path / "merged"))
        with qtbot.waitSignal(job.succeeded, timeout=120_000):
            pass
    finally:
        ChildProcess.running.discard(training)
    merges = [env for command, env in seen if "merge" in command]
    assert merges and merges[0]["OMP_NUM_THREADS"] == str(thread_count(2))
