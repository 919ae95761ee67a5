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


def test_playground_switches_adapters_without_reloading(qtbot, library_with_two, tiny_model):
    from finetune_gui.gui.playground_page import PlaygroundPage

    page = PlaygroundPage()
    qtbot.addWidget(page)
    entries = library_with_two.entries()
    page.open(str(tiny_model), [(entries[0]["path"], 1.0)])
    qtbot.waitUntil(lambda: page.ready, timeout=120_000)
    process = page.process
    page.prompt.setText("Hello")
    page.send()
    qtbot.waitUntil(lambda: page.status.text() == "Done.", timeout=120_000)
    assert (
        "You: Hello" in page.panes["base"].toPlainText() and "You: Hello" in page.panes["tuned"].toPlainText()
    )
    page.open(str(tiny_model), [(entries[0]["path"], 0.5), (entries[1]["path"], 0.5)])  # a stack, same base
    assert page.process is process  # switched on the loaded base, not reloaded
    page.prompt.setText("Again")
    page.send()
    qtbot.waitUntil(lambda: page.status.text() == "Done.", timeout=120_000)
    assert page.panes["tuned"].toPlainText().count("You:") == 2 and not page.error.isVisible()
    page.shutdown()
