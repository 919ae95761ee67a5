"""The Adapters and Playground pages: the library table, stacking with weights, merge-and-export, and
switching adapters on one loaded base."""

from __future__ import annotations

import pytest
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
    """The last answer in a playground pane (after the last 'You: …' line)."""
    return pane_text.rsplit("You: ", 1)[-1].split("\n", 1)[-1].strip()


def test_playground_send_compares_base_and_tuned_and_stop_ends_both(qtbot, library_with_two, tiny_model):
    from PySide6.QtCore import Qt

    from finetune_gui.gui.playground_page import PlaygroundPage

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
    qtbot.waitUntil(lambda: page.status.text() == "Done.", timeout=120_000)
    base, tuned = answer_of(page.panes["base"].toPlainText()), answer_of(page.panes["tuned"].toPlainText())
    assert base and tuned and base != tuned  # the adapter changes what the model says

    # A stack on the same base: switched on the loaded model, not reloaded.
    page.open(str(tiny_model), [(entries["style"]["path"], 0.5), (entries["facts"]["path"], 0.5)])
    assert page.child is child and "stack" in page.picker.currentText()
    page.max_tokens.setValue(400)
    qtbot.keyClicks(page.prompt, "Again")
    qtbot.mouseClick(page.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "You: Again" in page.panes["base"].toPlainText(), timeout=10_000)
    qtbot.mouseClick(page.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.status.text() == "Stopped.", timeout=60_000)
    # Both answers ended: the one being written and the one that was waiting.
    assert (
        "[stopped]" in page.panes["base"].toPlainText() and "[stopped]" in page.panes["tuned"].toPlainText()
    )
    assert page.send_button.isEnabled() is False and not page.stop_button.isEnabled()
    qtbot.keyClicks(page.prompt, "Once more")
    assert page.send_button.isEnabled() and not page.error.isVisible()
    page.shutdown()
