"""One config gives one number: the wizard's method page, `estimate --config` and the trainer's run.json
show the same peak-memory estimate, because all three call core.estimate.estimate_run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from finetune_gui.core.config import RunConfig

REPO_DATA = __import__("pathlib").Path(__file__).resolve().parents[1] / "resources" / "demo-dataset.jsonl"


@pytest.mark.gui
def test_method_page_estimate_command_and_run_json_agree(qtbot, tiny_model, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(REPO_DATA.read_text().splitlines()[:12]) + "\n")
    config = RunConfig(model=str(tiny_model), method="dora", output_dir=str(tmp_path / "run"))
    config.dataset.path = str(data)
    t = config.training
    t.max_steps, t.batch_size, t.max_seq_len, t.optimizer = 1, 3, 512, "adamw"
    config.lora.r = 4
    path = tmp_path / "run.yaml"
    config.save(path)

    command = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "estimate", "--config", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert command.returncode == 0, command.stderr
    from_command = json.loads(command.stdout)["methods"]["dora"]["total_gib"]

    from test_training import ListSink

    from finetune_gui.core.training.control import RunControl
    from finetune_gui.core.training.recipe import run_training

    assert (
        run_training(RunConfig.load(path), sink=ListSink(), control=RunControl()) == 0
    )  # as `train` runs it
    from_run = json.loads((tmp_path / "run" / "run.json").read_text())["estimate_gib"]

    from finetune_gui.core.hardware import detect

    hardware = detect().to_dict()  # what `hardware --json` prints: the window's hardware step
    from finetune_gui.gui.main_window import MainWindow

    window = MainWindow(detect_hardware=False)
    qtbot.addWidget(window)
    window.show()
    window.state.set_hardware(hardware)
    window.state.config = RunConfig.load(path)
    window.setup.go(1)
    window.setup.model.choose(str(tiny_model))
    qtbot.waitUntil(lambda: window.state.shape is not None, timeout=90_000)
    window.setup.dataset.load(str(data))  # token lengths: the data's longest example sets the batches
    qtbot.waitUntil(lambda: bool(window.state.dataset_report), timeout=90_000)
    window.setup.go(3)
    window.setup.method.select("dora")
    card = window.setup.method.cards["dora"].memory.text()
    from_page = window.state.estimate.methods["dora"].total_gib

    assert from_command == from_run == from_page, (from_command, from_run, from_page)
    # The data's longest example (well under max_seq_len) sets the length, not max_seq_len.
    assert window.state.settings().seq_len < 512
    assert card.startswith(f"{from_page:.1f} GB")


# Each field the estimate depends on, a value that moves it, and the method it belongs to.
FIELDS = [
    ("lora", "training.precision", "fp32"),
    ("lora", "training.gradient_checkpointing", "on"),
    ("lora", "training.optimizer", "adamw_8bit"),
    ("lora", "training.batch_size", "7"),
    ("lora", "training.max_seq_len", "64"),
    ("lora", "lora.r", "64"),
    ("lora", "lora.target_modules", "[q_proj, v_proj]"),
    ("full", "training.memory_mode", "lean"),
    ("full", "training.gradient_accumulation", "4"),  # in lean mode: no step in the backward pass
    ("prefix", "prefix.num_virtual_tokens", "200"),
    ("prompt", "prompt.num_virtual_tokens", "300"),
    ("bottleneck", "bottleneck.bottleneck", "512"),
]


@pytest.mark.gui
def test_the_review_pages_memory_figure_follows_every_field_the_estimate_depends_on(qtbot, tmp_path):
    """Typed in Settings, each field moves the Review page's figure to exactly what the one estimate
    (estimate --config's function) gives for the config the review shows. An 8 B model's shape (its
    config.json alone), so that every field moves the figure by more than its rounding."""
    from gui_helpers import type_into
    from known_models import write_config
    from test_gui_wizard import GPU_HARDWARE

    model = write_config("Llama-3.1-8B", tmp_path / "llama-8b")

    from finetune_gui.core.estimate import estimate_run
    from finetune_gui.core.hardware import Hardware
    from finetune_gui.gui.main_window import MainWindow

    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(REPO_DATA.read_text().splitlines()[:12]) + "\n")
    window = MainWindow(detect_hardware=False)
    qtbot.addWidget(window)
    window.show()
    state, setup = window.state, window.setup
    state.set_hardware(GPU_HARDWARE)
    setup.go(1)
    setup.model.choose(str(model))
    qtbot.waitUntil(lambda: state.shape is not None, timeout=90_000)
    setup.dataset.load(str(data))
    qtbot.waitUntil(lambda: bool(state.dataset_report) or bool(setup.dataset.error.text()), timeout=90_000)

    def enter(dotted, value):
        editor = setup.settings.editors[dotted]
        if hasattr(editor.widget, "setCurrentText"):
            editor.widget.setCurrentText(value)
        else:
            type_into(qtbot, editor.widget, value)
        return editor

    moved = []
    for method, dotted, value in FIELDS:
        setup.go(3)
        setup.method.select(method)
        setup.go(4)
        mode = enter("training.memory_mode", "lean") if dotted == "training.gradient_accumulation" else None
        before = state.estimate.methods[method].total_gib
        editor = enter(dotted, value)
        assert not setup.settings.errors, setup.settings.errors
        setup.go(5)
        expected = estimate_run(
            state.config, state.shape, Hardware.from_dict(GPU_HARDWARE), longest=state.longest
        ).methods[method]
        assert setup.review.rows["Memory"].text().startswith(f"{expected.total_gib:.1f} GB estimated"), dotted
        assert state.estimate.methods[method].total_gib == expected.total_gib, dotted
        moved.append(expected.total_gib != before)
        editor.reset()
        if mode is not None:
            mode.reset()
    assert all(moved), [d for (_m, d, _v), m in zip(FIELDS, moved, strict=True) if not m]
