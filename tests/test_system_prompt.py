"""The system prompt a model trained with goes with it: recorded by the run, used by generate (and
--system), the playground and the exported Modelfile."""

from __future__ import annotations

import json

import pytest
from cli_helpers import cli

from finetune_gui.core.data.formats import Example
from finetune_gui.core.training.inputs import training_system_prompt

SYSTEM = "You are the Quellmark town guide."


def chat(system, question="Q?", answer="A."):
    turns = ((("system", system),) if system else ()) + (("user", question), ("assistant", answer))
    return Example("chat", messages=turns)


def test_the_training_system_prompt_is_the_most_common_one_or_none():
    assert training_system_prompt([chat(SYSTEM), chat("Other."), chat(SYSTEM), chat(None)]) == SYSTEM
    assert training_system_prompt([chat(None), Example("completion", prompt="p", completion="c")]) is None


def test_a_run_records_its_system_prompt_and_generate_and_the_modelfile_use_it(tiny_model, tmp_path):
    rows = [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Where is place {i}?"},
                {"role": "assistant", "content": f"Place {i} is by the river."},
            ]
        }
        for i in range(12)
    ]
    data = tmp_path / "guide.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    from test_training import ListSink, make_config

    from finetune_gui.core.training.control import RunControl
    from finetune_gui.core.training.recipe import run_training

    run = tmp_path / "run"
    config = make_config(tiny_model, data, run, max_steps=2)
    config.training.check_questions = config.training.sample_prompts = 0
    assert run_training(config, sink=ListSink(), control=RunControl()) == 0
    assert json.loads((run / "run.json").read_text())["system_prompt"] == SYSTEM

    from finetune_gui.core.adapters.generate import Generator
    from finetune_gui.core.adapters.modelfile import modelfile
    from finetune_gui.core.adapters.own_data import trained_system_prompt

    adapter = str(run / "adapter")
    assert trained_system_prompt([(adapter, 1.0)]) == SYSTEM
    generator = Generator(str(tiny_model))
    text = generator.tokenizer.decode(generator.prompt_ids("Hi?", SYSTEM)["input_ids"][0])
    assert text.index(SYSTEM) < text.index("Hi?")
    assert f'SYSTEM """{SYSTEM}"""' in modelfile(tiny_model, "m.gguf", system=SYSTEM)

    said = cli(
        "generate", "--model", tiny_model, "--adapter", adapter, "--prompt", "Hi?", "--max-new-tokens", "2"
    )
    assert said.returncode == 0 and f"the system prompt the adapter trained with: {SYSTEM}" in said.stderr


@pytest.mark.gui
def test_the_playground_asks_with_the_runs_system_prompt_shown_and_editable(qtbot, tiny_model, tmp_path):
    from PySide6.QtCore import Qt
    from test_adapters import make_lora

    from finetune_gui.core.adapters.library import AdapterLibrary
    from finetune_gui.gui.playground_page import PlaygroundPage

    run = tmp_path / "guide-run"
    adapter = make_lora(tiny_model, run / "adapter", 4, 1)
    (run / "run.json").write_text(json.dumps({"status": "completed", "system_prompt": SYSTEM}))
    AdapterLibrary().add(adapter, base_model=str(tiny_model))
    page = PlaygroundPage()
    qtbot.addWidget(page)
    page.show()
    page.picker.setCurrentIndex(0)
    page.picker.activated.emit(0)  # the user picks the adapter
    assert page.system.text() == SYSTEM  # shown, as trained
    qtbot.keyClicks(page.prompt, "Where is the mill?")
    qtbot.mouseClick(page.send_button, Qt.MouseButton.LeftButton)
    assert [r.system for r in page.pending] == [SYSTEM, SYSTEM]  # both panes ask under it
    page.stop()
    page.pending.clear()
    page.answering.clear()
    page.system.clear()
    qtbot.keyClicks(page.system, "Answer in French.")
    qtbot.keyClicks(page.prompt, "Again?")
    qtbot.mouseClick(page.send_button, Qt.MouseButton.LeftButton)
    assert [r.system for r in page.pending] == ["Answer in French."] * 2
    page.shutdown()
