"""The wizard, driven as a user would: tiny model, a dataset dropped on the window, method, settings, review."""

from __future__ import annotations

import json

import pytest
import yaml
from gui_helpers import drop, type_into

pytestmark = pytest.mark.gui

CPU_HARDWARE = {
    "gpus": [],
    "ram_total_gib": 16.0,
    "ram_available_gib": 12.0,
    "cpu_count": 2,
    "bitsandbytes": True,
    "bitsandbytes_note": "bitsandbytes runs on the CPU here: QLoRA works, slowly.",
    "torch_version": "2",
    "methods": {m: True for m in ("full", "lora", "dora", "qlora", "ia3", "bottleneck", "prefix", "prompt")},
}
GPU_HARDWARE = CPU_HARDWARE | {
    "gpus": [
        {
            "index": 0,
            "name": "RTX 3060",
            "backend": "cuda",
            "total_gib": 12.0,
            "free_gib": 10.8,
            "compute_capability": "8.6",
            "bf16": True,
        }
    ],
}


@pytest.fixture
def window(qtbot):
    from finetune_gui.gui.main_window import MainWindow

    win = MainWindow(detect_hardware=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    for job in win.findChildren(__import__("finetune_gui.gui.core_client", fromlist=["CoreJob"]).CoreJob):
        job.cancel()


def write_dataset(tmp_path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i}."},
            ]
        }
        for i in range(30)
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"broken\n')
    return path


def test_whole_wizard_produces_the_expected_config(qtbot, window, tiny_model, tmp_path):
    setup, state = window.setup, window.state
    state.set_hardware(CPU_HARDWARE)
    assert (
        setup.hardware.is_complete()
        and "No GPU found" in setup.hardware.cards[0].findChildren(type(window.hardware_label))[0].text()
    )
    setup.go(1)
    setup.model.choose(str(tiny_model))
    qtbot.waitUntil(lambda: state.shape is not None, timeout=90_000)
    assert setup.model.fact_labels["Chat template"].text().startswith("✓")
    assert setup.next.isEnabled()
    dataset = write_dataset(tmp_path)
    drop(window, dataset)  # dropped anywhere on the window, routed to the dataset page
    assert setup.current is setup.dataset
    qtbot.waitUntil(lambda: bool(state.dataset_report), timeout=90_000)
    report = state.dataset_report
    assert report.rows == 30 and report.problem_count == 1
    assert setup.dataset.problems.rowCount() == 1 and "line 31" in setup.dataset.problems.item(0, 0).text()
    assert "messages" in setup.dataset.facts.text()
    assert "<span" in setup.dataset.preview.toHtml()
    # the trained part in the accent's blue (an 8-digit hex was read as #AARRGGBB: a green)
    assert "background-color:rgba(61,123,224,0.2)" in setup.dataset.preview.toHtml()
    setup.go(3)
    before = state.estimate.methods["lora"].total_gib
    setup.method.batch.setValue(64)
    assert state.estimate.methods["lora"].total_gib > before  # live, no child process
    setup.method.batch.setValue(4)
    setup.method.seq.setValue(256)
    # The data's longest example, not max_seq_len, sets the batches' length (and the estimate).
    assert state.settings().seq_len == report.token_stats.max < 256
    assert f"longest example: {report.token_stats.max} tokens" in setup.method.budget.text()
    setup.method.select("lora")
    assert state.config.method == "lora" and setup.method.cards["lora"].property("selected")
    setup.go(4)
    editor = setup.settings.editors["training.max_steps"]
    editor.widget.setText("12")
    editor.widget.editingFinished.emit()
    rank = setup.settings.editors["lora.r"]
    rank.widget.setText("8")
    rank.widget.editingFinished.emit()
    # alpha is left to the proposal, which follows the rank the user typed
    assert setup.settings.editors["lora.alpha"].widget.placeholderText() == "16 (proposed)"
    bad = setup.settings.editors["training.batch_size"]
    bad.widget.setText("0")
    bad.widget.editingFinished.emit()
    assert "at least 1" in setup.settings.error.text() and not setup.settings.is_complete()
    bad.reset()
    assert setup.settings.is_complete()
    # A learning rate far from the proposal: one sentence, and Next stays on (the user may mean it).
    rate = setup.settings.editors["training.learning_rate"]
    type_into(qtbot, rate.widget, "5")
    warning = setup.settings.warning
    assert not warning.isHidden() and "A learning rate of 5 is" in warning.text()
    assert "× what the app proposes" in warning.text() and setup.next.isEnabled()
    type_into(qtbot, rate.widget, "1e-9")
    assert "below what the app proposes" in warning.text()
    rate.reset()
    assert warning.isHidden()
    setup.go(5)
    said = setup.review.rows["Time"].text()
    assert "a rough guess: no run of this model and method has been timed here yet" in said
    # Once a run of this model and method has recorded its step time here, the time is measured.
    from finetune_gui.core.paths import runs_dir

    earlier = runs_dir() / "earlier-lora"
    earlier.mkdir(parents=True)
    timing = {"seconds_per_step": 90.0, "tokens_per_step": 300.0, "steps": 9}
    run = {"status": "completed", "model": str(tiny_model), "method": "lora", "device": state.device}
    (earlier / "run.json").write_text(json.dumps({**run, "timing": timing}))
    setup.go(4)
    setup.go(5)
    said = setup.review.rows["Time"].text()
    assert "measured on this machine: 1 earlier run of this model and method" in said, said
    from finetune_gui.gui.widgets import human_duration

    settings, mean = state.settings(), state.dataset_report.token_stats.mean
    per_step = 90.0 / 300.0 * settings.rows * min(settings.seq_len, mean)  # its rate, this run's tokens
    assert said.startswith(f"about {human_duration(per_step, rough=True)} per step"), said
    setup.review.name.setText("wizard-run")
    setup.review.name.editingFinished.emit()
    with qtbot.waitSignal(setup.review.start_requested, timeout=5000) as blocker:
        window.start_training = lambda config: None  # the dashboard has its own tests
        setup.review.start.click()
    config = blocker.args[0]
    expected = yaml.safe_load(
        f"""
        schema_version: 3
        model: {tiny_model}
        method: lora
        dataset: {{path: {dataset}, format: messages, validation_split: 0.05, validation_path: null, columns: null}}
        lora: {{r: 8, alpha: null, dropout: 0.0, target_modules: all-linear}}
        """
    )
    data = config.to_dict()
    for key, value in expected.items():
        assert data[key] == value, key
    t = data["training"]
    assert (t["max_steps"], t["max_seq_len"], t["batch_size"], t["learning_rate"]) == (12, 256, 4, None)
    assert data["output_dir"].endswith("wizard-run")
    from finetune_gui.core.config import RunConfig

    assert RunConfig.from_yaml(setup.review.yaml.toPlainText()) == config


def test_refused_drop_and_broken_file_say_why(qtbot, window, tmp_path):
    window.state.set_hardware(CPU_HARDWARE)
    strange = tmp_path / "notes.docx"
    strange.write_text("x")
    assert window.route_drop(str(strange)) == ""
    assert "neither a dataset nor a model" in window.statusBar().currentMessage()
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"foo": 1}\n{"foo": 2}\n')
    assert window.route_drop(str(broken)) == "dataset"
    page = window.setup.dataset
    qtbot.waitUntil(lambda: page.error.isVisible(), timeout=60_000)
    assert "Found columns foo" in page.error.text()
    assert not page.is_complete() and not window.setup.next.isEnabled()


def test_gpu_hardware_card_and_recommendation_reason(qtbot, window, tiny_model):
    state = window.state
    state.set_hardware(GPU_HARDWARE)
    assert (
        "10.8 of 12.0 GB free"
        in window.setup.hardware.cards[0]
        .findChild(__import__("PySide6.QtWidgets", fromlist=["QProgressBar"]).QProgressBar)
        .format()
    )
    window.setup.go(1)
    window.setup.model.choose(str(tiny_model))
    qtbot.waitUntil(lambda: state.shape is not None, timeout=90_000)
    window.setup.go(3)
    assert state.estimate.recommended == "full"
    assert window.setup.method.reason.text().startswith("Full fine-tuning fits in")
    assert window.setup.method.cards["full"].badge.isVisibleTo(window.setup.method)


def test_no_fits_verdict_before_the_machine_is_known_and_one_after(qtbot, window, tiny_model):
    """Hardware detection runs in a child process: until it answers, the figures have no budget to be
    held against, so no card says 'fits' or 'does not fit' and nothing is recommended."""
    state, setup = window.state, window.setup
    setup.go(1)
    setup.model.choose(str(tiny_model))
    qtbot.waitUntil(lambda: state.shape is not None, timeout=90_000)
    setup.go(3)
    page = setup.method
    assert page.budget.text().startswith("Detecting this machine's memory")
    assert not any("fit" in card.memory.text() for card in page.cards.values())
    assert "does not work on this machine" not in page.cards["qlora"].memory.text()  # not known either
    assert not any(card.badge.isVisibleTo(page) for card in page.cards.values())
    assert page.reason.text().startswith("The recommendation follows once")
    setup.go(5)
    assert "free memory is not known yet" in setup.review.rows["Memory"].text()
    setup.go(3)
    state.set_hardware(CPU_HARDWARE)  # detection answers
    assert page.budget.text().startswith(f"{state.budget_gib():.1f} GB RAM free")
    assert all(card.memory.text().split(" · ")[1] in ("fits", "does not fit") for card in page.cards.values())
    assert any(card.badge.isVisibleTo(page) for card in page.cards.values())
    setup.go(5)
    assert "GB RAM free" in setup.review.rows["Memory"].text()


def test_missing_model_path_shows_its_sentence(qtbot, window, tmp_path):
    window.state.set_hardware(CPU_HARDWARE)
    window.setup.go(1)
    window.setup.model.choose(str(tmp_path / "no-such-model"))
    qtbot.waitUntil(lambda: window.setup.model.error.isVisible(), timeout=60_000)
    assert "No model at" in window.setup.model.error.text()


def test_hub_id_offline_says_so(qtbot, window):
    window.state.set_hardware(CPU_HARDWARE)
    window.setup.go(1)
    window.setup.model.choose("someone/not-cached-model")
    qtbot.waitUntil(lambda: window.setup.model.error.isVisible(), timeout=60_000)
    assert "offline" in window.setup.model.error.text()


def choose(qtbot, box, text):
    """Pick an entry of a combo box as a user does (the box emits activated, as a click would)."""
    index = box.findText(text)
    assert index >= 0, (text, [box.itemText(i) for i in range(box.count())])
    box.setCurrentIndex(index)
    box.activated.emit(index)


def test_a_question_answer_csv_is_mapped_in_the_window_and_the_review_has_the_mapping(
    qtbot, window, tiny_model, tmp_path
):
    setup, state = window.setup, window.state
    state.set_hardware(CPU_HARDWARE)
    setup.go(1)
    setup.model.choose(str(tiny_model))
    qtbot.waitUntil(lambda: state.shape is not None, timeout=90_000)
    # Columns no format knows: refused in one sentence, and the page offers the mapping.
    odd = tmp_path / "odd.csv"
    odd.write_text("thema,wert\n" + "".join(f"Frage {i}?,Antwort {i}.\n" for i in range(20)))
    drop(window, odd)
    qtbot.waitUntil(lambda: bool(setup.dataset.error.text()), timeout=90_000)
    assert (
        "Found columns thema, wert" in setup.dataset.error.text() and "{{" not in setup.dataset.error.text()
    )
    mapping = setup.dataset.mapping
    assert not mapping.isHidden() and not setup.next.isEnabled()
    choose(qtbot, mapping.pickers[0], "thema")
    choose(qtbot, mapping.pickers[1], "wert")
    qtbot.waitUntil(lambda: bool(state.dataset_report), timeout=90_000)
    assert state.dataset_report.rows == 20 and setup.next.isEnabled()
    assert state.config.dataset.columns == {"instruction": "thema", "output": "wert"}
    assert (
        "Frage 0?" in setup.dataset.preview.toPlainText()
        and "Antwort 0." in setup.dataset.preview.toPlainText()
    )

    # question,answer: proposed at once, said on the page, and changeable there.
    qa = tmp_path / "qa.csv"
    qa.write_text(
        "question,answer,note\n"
        + "".join(f"What is fact {i}?,Fact {i} is true.,seen {i}\n" for i in range(20))
    )
    drop(window, qa)
    qtbot.waitUntil(
        lambda: bool(state.dataset_report) and state.config.dataset.path == str(qa), timeout=90_000
    )
    assert "Read column question as instruction and answer as output" in setup.dataset.facts.text()
    assert [p.currentText() for p in mapping.pickers if not p.isHidden()] == ["question", "answer"]
    assert "Fact 0 is true." in json.dumps(state.dataset_report.formatted_sample)
    choose(qtbot, mapping.pickers[1], "note")
    qtbot.waitUntil(lambda: bool(state.dataset_report), timeout=90_000)
    assert state.config.dataset.columns == {"instruction": "question", "output": "note"}
    assert "seen 0" in json.dumps(state.dataset_report.formatted_sample)
    setup.go(3)
    setup.method.select("lora")
    setup.go(5)
    review = yaml.safe_load(setup.review.yaml.toPlainText())
    assert review["dataset"]["columns"] == {"instruction": "question", "output": "note"}  # the user's pick
    assert review["dataset"]["format"] == "alpaca"


def test_a_file_with_many_broken_rows_is_called_out_and_a_clean_one_is_not(qtbot, window, tmp_path):
    setup, state = window.setup, window.state
    setup.go(2)
    good = [json.dumps({"prompt": f"Q{i}?", "completion": f"A{i}."}) for i in range(40)]
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        "\n".join(line if i % 10 >= 3 else '{"prompt": "cut' for i, line in enumerate(good)) + "\n"
    )
    drop(window, broken)
    qtbot.waitUntil(lambda: bool(state.dataset_report), timeout=90_000)
    assert "12 of 40 rows (30%) cannot be used" in setup.dataset.facts.text()
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(good) + "\n")
    drop(window, clean)
    qtbot.waitUntil(
        lambda: bool(state.dataset_report) and state.config.dataset.path == str(clean), timeout=90_000
    )
    assert "cannot be used" not in setup.dataset.facts.text() and "40 rows" in setup.dataset.facts.text()


def test_dark_mode_draws_disabled_buttons_unlike_enabled_ones(qtbot, window, monkeypatch):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from finetune_gui.gui.theme import THEME_ENV, apply_theme

    app = QApplication.instance()
    # The offscreen platform ignores a requested colour scheme: the app's own choice makes it dark.
    monkeypatch.setenv(THEME_ENV, "dark")
    try:
        apply_theme(app)
        back = window.setup.back  # disabled on the first step
        assert not back.isEnabled()
        palette = back.palette()
        assert palette.color(QPalette.ColorRole.Window).name() == "#202124"  # dark indeed
        role = QPalette.ColorRole.ButtonText
        assert palette.color(QPalette.ColorGroup.Disabled, role) != palette.color(
            QPalette.ColorGroup.Active, role
        )
    finally:
        monkeypatch.delenv(THEME_ENV, raising=False)
        apply_theme(app)


def test_the_theme_can_be_chosen_for_the_app_alone(qtbot, window, monkeypatch):
    """A desktop that gives Qt no colour-scheme hint still gets the dark palette when the user asks."""
    from PySide6.QtGui import QGuiApplication, QPalette
    from PySide6.QtWidgets import QApplication

    from finetune_gui.gui.settings import app_settings
    from finetune_gui.gui.theme import THEME_ENV, apply_theme

    app = QApplication.instance()
    before = QGuiApplication.styleHints().colorScheme()
    try:
        app_settings().setValue("theme", "dark")
        apply_theme(app)
        assert app.palette().color(QPalette.ColorRole.Window).name() == "#202124"
        monkeypatch.setenv(THEME_ENV, "light")  # the environment wins over the setting
        apply_theme(app)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 200
    finally:
        app_settings().remove("theme")
        monkeypatch.delenv(THEME_ENV, raising=False)
        QGuiApplication.styleHints().setColorScheme(before)
        apply_theme(app)
