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

    train = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "train", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr
    from_run = json.loads((tmp_path / "run" / "run.json").read_text())["estimate_gib"]

    hardware = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "hardware", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    from finetune_gui.gui.main_window import MainWindow

    window = MainWindow(detect_hardware=False)
    qtbot.addWidget(window)
    window.show()
    window.state.set_hardware(json.loads(hardware.stdout))
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
