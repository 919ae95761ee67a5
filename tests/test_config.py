from pathlib import Path

import pytest

from finetune_gui.core.config import SCHEMA_VERSION, RunConfig, apply_override, check_paths, field_help
from finetune_gui.core.errors import ConfigError

EXAMPLE = """
model: path/to/model
method: lora
dataset:
  path: data/train.jsonl
  format: auto
  validation_split: 0.05
training:
  max_steps: 200
  batch_size: 4
  gradient_accumulation: 1
  learning_rate: 2.0e-4
  max_seq_len: 512
  gradient_checkpointing: auto
  logging_steps: 1
  eval_steps: 50
  save_steps: 50
  seed: 42
lora: {r: 16, alpha: 32, dropout: 0.05, target_modules: all-linear}
prefix: {num_virtual_tokens: 20}
prompt: {num_virtual_tokens: 20, init_text: null}
adapter: {bottleneck: 64}
output_dir: runs/my-run
"""


def test_architecture_example_loads():
    config = RunConfig.from_yaml(EXAMPLE)
    assert config.method == "lora"
    assert config.training.learning_rate == pytest.approx(2e-4)
    assert config.lora.dropout == pytest.approx(0.05)
    assert config.dataset.path == "data/train.jsonl"


def test_yaml_round_trip(tmp_path):
    config = RunConfig.from_yaml(EXAMPLE)
    config.lora.target_modules = ["q_proj", "v_proj"]
    config.dataset.columns = {"instruction": "question", "output": "answer"}
    path = tmp_path / "run.yaml"
    config.save(path)
    again = RunConfig.load(path)
    assert again == config
    assert again.to_yaml() == config.to_yaml()


def test_defaults_round_trip():
    assert RunConfig.from_yaml(RunConfig().to_yaml()) == RunConfig()


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        RunConfig.from_yaml("training: {lerning_rate: 0.1}")


def test_key_in_the_wrong_section_says_where_it_belongs():
    with pytest.raises(ConfigError, match="belongs under 'training:'"):
        RunConfig.from_yaml("batch_size: 4")


@pytest.mark.parametrize(
    "text, message",
    [
        ("training: {batch_size: four}", "'training.batch_size' must be a whole number"),
        ("training: {batch_size: 0}", "at least 1"),
        ("method: lorra", "Did you mean 'lora'"),
        ("dataset: {validation_split: 0.9}", "at most 0.5"),
        ("training: 5", "must be a section"),
        ("- a\n- b", "mapping"),
        ("lora: {target_modules: []}", "empty list"),
        ("schema_version: 99", "schema_version 99"),
    ],
)
def test_invalid_values_get_one_clear_sentence(text, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_yaml(text)


def test_yaml_1_1_exponent_without_dot_is_a_number():
    assert RunConfig.from_yaml("training: {learning_rate: 2e-4}").training.learning_rate == pytest.approx(
        2e-4
    )


def test_broken_yaml_names_line_and_column():
    with pytest.raises(ConfigError, match=r"line 4, column 7: expected .,. or .\]."):
        RunConfig.from_yaml("model: x\ntraining:\n  batch_size: [4\n  seed: 1\n", "run.yaml")


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="No config file"):
        RunConfig.load(tmp_path / "nope.yaml")


def test_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(EXAMPLE)
    config = RunConfig.load(path, ["training.batch_size=2", "method=qlora", "lora.target_modules=[q_proj]"])
    assert config.training.batch_size == 2
    assert config.method == "qlora"
    assert config.lora.target_modules == ["q_proj"]
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_override({}, "training.batch_size")


def test_check_paths_names_the_missing_path(tmp_path):
    config = RunConfig(model="m")
    config.dataset.path = str(tmp_path / "missing.jsonl")
    with pytest.raises(ConfigError, match=r"missing\.jsonl does not exist"):
        check_paths(config)
    (tmp_path / "missing.jsonl").write_text("{}\n")
    check_paths(config)


def test_every_field_has_help():
    import dataclasses

    def walk(cls, prefix=""):
        for f in dataclasses.fields(cls):
            name = f"{prefix}{f.name}"
            assert field_help(name), f"{name} has no help text"
            if dataclasses.is_dataclass(f.type) or (
                isinstance(f.default_factory, type) and dataclasses.is_dataclass(f.default_factory)
            ):
                walk(f.default_factory, name + ".")

    walk(RunConfig)
    assert "Examples per step" in field_help("training.batch_size")


def test_method_default_learning_rate():
    assert RunConfig(method="full").resolved_learning_rate() == pytest.approx(2e-5)
    config = RunConfig(method="prompt")
    config.training.learning_rate = 0.1
    assert config.resolved_learning_rate() == pytest.approx(0.1)


def test_paths_follow_home_override(tmp_path, monkeypatch):
    from finetune_gui.core import paths

    monkeypatch.setenv("FINETUNE_GUI_HOME", str(tmp_path))
    assert paths.data_dir() == Path(tmp_path) / "data"
    assert paths.cache_dir().is_relative_to(tmp_path)
    assert paths.config_dir().is_relative_to(tmp_path)


def test_version_1_method_adapter_is_migrated_with_a_notice(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("schema_version: 1\nmodel: m\nmethod: adapter\nadapter: {bottleneck: 32}\n")
    config = RunConfig.load(path)
    assert config.method == "bottleneck" and config.schema_version == SCHEMA_VERSION
    assert config.bottleneck.bottleneck == 32
    assert any("'adapter' is now called 'bottleneck'" in n for n in config.notices)
    assert any("section 'adapter:' is now called 'bottleneck:'" in n for n in config.notices)
    without_version = tmp_path / "unversioned.yaml"
    without_version.write_text("model: m\nmethod: adapter\n")
    assert RunConfig.load(without_version).method == "bottleneck"
    assert RunConfig.from_yaml(RunConfig(method="lora").to_yaml()).notices == ()


def test_version_2_adapter_section_becomes_bottleneck_and_old_set_keys_still_apply(tmp_path):
    path = tmp_path / "v2.yaml"
    path.write_text("schema_version: 2\nmodel: m\nmethod: bottleneck\nadapter: {bottleneck: 24}\n")
    config = RunConfig.load(path)
    assert config.bottleneck.bottleneck == 24 and config.schema_version == SCHEMA_VERSION == 3
    assert "adapter" not in config.to_dict() and config.to_dict()["bottleneck"] == {"bottleneck": 24}
    # A script written for version 2 still sets the width on a current file.
    current = tmp_path / "v3.yaml"
    RunConfig(model="m", method="bottleneck").save(current)
    config = RunConfig.load(current, ["adapter.bottleneck=40"])
    assert config.bottleneck.bottleneck == 40
    assert any("'adapter:' is now called 'bottleneck:'" in n for n in config.notices)
    # Without the old name, nothing is said.
    assert RunConfig.load(current, ["bottleneck.bottleneck=40"]).notices == ()


def test_switches_accept_yaml_booleans():
    for text, expected in (("off", "off"), ("no", "off"), ("false", "off"), ("on", "on"), ("yes", "on")):
        config = RunConfig.from_yaml(f"model: m\ntraining: {{gradient_checkpointing: {text}}}\n")
        assert config.training.gradient_checkpointing == expected


def test_alias_bomb_is_refused_quickly_with_a_short_message():
    import time

    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 10) + "]")
    bomb = "\n".join(lines).replace("i: &i", "i: &i")
    for key in ("model", "lora: {target_modules", "dataset: {columns"):
        text = f"{bomb}\n{key}: *i" + ("}" * key.count("{")) + "\n"
        started = time.monotonic()
        with pytest.raises(ConfigError) as info:
            RunConfig.from_yaml(text)
        assert time.monotonic() - started < 5
        assert len(str(info.value)) < 400


def test_non_finite_numbers_are_refused():
    with pytest.raises(ConfigError, match="finite"):
        RunConfig.from_yaml("model: m\ntraining: {learning_rate: .inf}\n")
    with pytest.raises(ConfigError, match="finite"):
        RunConfig.from_yaml("model: m\ntraining: {learning_rate: .nan}\n")


def test_one_dotted_accessor_reads_sets_and_checks_a_field():
    from finetune_gui.core.config import config_field, get_field, set_field
    from finetune_gui.core.errors import ConfigError

    config = RunConfig(model="m")
    field, hint = config_field("training.learning_rate")
    assert field.metadata["label"] == "Learning rate" and hint == float | None
    assert get_field(config, "training.learning_rate") is None
    assert set_field(config, "training.learning_rate", "2e-4") == 2e-4 == config.training.learning_rate
    assert set_field(config, "method", "dora") == "dora" and config.method == "dora"
    for dotted, bad in (("training.batch_size", 0), ("training.batch_size", "four"), ("method", "nope")):
        before = get_field(config, dotted)
        with pytest.raises(ConfigError):
            set_field(config, dotted, bad)
        assert get_field(config, dotted) == before  # a refused value changes nothing
    for unknown in ("training.nope", "training.batch_size.x", "nope"):
        with pytest.raises(KeyError):
            config_field(unknown)
