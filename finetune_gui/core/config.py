"""RunConfig: the one config object that flows wizard → YAML → training process → run folder.

Every field carries ``help`` metadata (the wizard's tooltips and labels read it) and optional
``choices``/``min``/``max`` that validation enforces. ``schema_version`` plus ``MIGRATIONS`` let old
YAML files load after fields change.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from finetune_gui.core.errors import ConfigError
from finetune_gui.core.methods import METHOD_NAMES, METHODS, RENAMED
from finetune_gui.core.objectives import OBJECTIVE_NAMES, OBJECTIVES

SCHEMA_VERSION = 3
# A config may expand (YAML aliases) to at most this many values, and an error message quotes at most
# this many characters of a value: a hostile file must not hang the loader or write gigabytes of error.
MAX_VALUES = 100_000
QUOTE_CHARS = 60
DATASET_FORMATS = ("auto", "alpaca", "sharegpt", "messages", "prompt_completion", "text", "preference")


def _f(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with help text (and optional choices/min/max) for tools to read."""
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class DatasetConfig:
    path: str = _f(
        "", "The training data: a file (JSON lines, JSON, CSV, TSV, Parquet, text or Markdown) or a folder."
    )
    format: str = _f(
        "auto", "How rows are read; 'auto' detects it from the columns.", choices=DATASET_FORMATS
    )
    validation_split: float = _f(
        0.05, "Share of rows held out to measure evaluation loss (0 turns evaluation off).", min=0.0, max=0.5
    )
    validation_path: str | None = _f(None, "A separate validation file; overrides validation_split.")
    columns: dict[str, str] | None = _f(
        None,
        "Column mapping for other layouts, e.g. {instruction: question, output: answer}: "
        "the format's field name → your column name.",
    )


@dataclass
class TrainingConfig:
    objective: str = _f(
        "sft",
        "What the model learns from: 'sft' imitates the answers of your examples; 'dpo' and 'orpo' learn "
        "which of two answers you prefer, from rows with a prompt, a chosen and a rejected answer.",
        choices=OBJECTIVE_NAMES,
    )
    max_steps: int | None = _f(
        None,
        "Optimizer steps to train; empty trains for 'epochs', or, when both are empty, for the proposed "
        "length (more passes for small datasets).",
        min=1,
    )
    epochs: float | None = _f(None, "Passes over the data; used when max_steps is empty.", min=0.01)
    batch_size: int = _f(4, "Examples per step on each device. Lower it first when memory runs out.", min=1)
    gradient_accumulation: int = _f(
        1, "Steps whose gradients add up before one update: batch × this = effective batch.", min=1
    )
    learning_rate: float | None = _f(
        None,
        "Step size of the optimizer; empty proposes one for the method and the model's size (an adapter needs "
        "about ten times full fine-tuning's; small models take larger steps).",
        min=0.0,
        label="Learning rate",
    )
    max_seq_len: int = _f(
        512, "Longest example in tokens; longer ones are cut at this length.", min=8, label="Sequence length"
    )
    gradient_checkpointing: str = _f(
        "auto",
        "Recompute activations in the backward pass: less memory, about 30% slower. "
        "'auto' turns it on when the estimate would not fit otherwise.",
        choices=("auto", "on", "off"),
        switch=True,
    )
    logging_steps: int = _f(1, "Report loss and speed every this many steps.", min=1)
    eval_steps: int | None = _f(
        None,
        "Measure evaluation loss every this many steps (with a validation set); empty: five times a run.",
        min=1,
    )
    save_steps: int | None = _f(
        None,
        "Write a checkpoint every this many steps, for resuming after a crash; empty: at each evaluation.",
        min=1,
    )
    save_total_limit: int = _f(2, "Checkpoints kept on disk; older ones are deleted.", min=1)
    early_stopping: int | None = _f(
        None,
        "Stop when the evaluation loss has not improved for this many evaluations, and keep the best "
        "evaluation's weights as the result (0 turns it off); empty: 2 for long runs with a validation set.",
        min=0,
        max=100,
    )
    early_stopping_min_delta: float = _f(
        0.0, "How much the evaluation loss must fall to count as an improvement.", min=0.0
    )
    seed: int = _f(42, "Random seed for the data order, the split and initialisation.")
    warmup_ratio: float | None = _f(
        None,
        "Share of steps over which the learning rate ramps up; empty: 3%, or 10% for runs under 100 steps.",
        min=0.0,
        max=0.5,
    )
    lr_scheduler: str = _f(
        "cosine",
        "How the learning rate falls after warm-up.",
        choices=("cosine", "linear", "constant"),
        label="Learning-rate schedule",
    )
    weight_decay: float = _f(0.0, "AdamW weight decay.", min=0.0, max=1.0)
    max_grad_norm: float = _f(1.0, "Gradients are clipped to this norm.", min=0.0)
    optimizer: str = _f(
        "auto",
        "'auto': AdamW, paged 8-bit AdamW for QLoRA on CUDA.",
        choices=("auto", "adamw", "adamw_8bit", "paged_adamw_8bit"),
    )
    memory_mode: str = _f(
        "auto",
        "How full fine-tuning keeps its state. 'standard': fp32 master weights, AdamW, whole gradients. "
        "'lean': bf16 weights with stochastic rounding, 8-bit AdamW, each weight updated as soon as its "
        "gradient is ready, activation checkpointing (about a third of the memory, somewhat slower). "
        "'auto': standard where it fits, lean where only lean fits.",
        choices=("auto", "standard", "lean"),
    )
    precision: str = _f(
        "auto",
        "'auto': bf16 where the GPU supports it, fp16 on older GPUs, fp32 on CPU.",
        choices=("auto", "bf16", "fp16", "fp32"),
    )
    group_by_length: bool = _f(
        True, "Batch examples of similar length together: less padding, faster steps on varied data."
    )
    padding_free: bool = _f(
        True,
        "Put each batch's examples side by side in one row, so no padding is computed (attention stays "
        "within each example; the loss is the padded batch's). Prefix and prompt tuning and the preference "
        "objectives stay padded.",
    )
    sample_prompts: int = _f(
        3,
        "Validation prompts the model answers at every evaluation, so you can watch its answers change "
        "(0 turns this off).",
        min=0,
        max=16,
    )
    sample_max_new_tokens: int = _f(48, "Longest sample answer, in tokens.", min=1, max=1024)
    check_questions: int = _f(
        12,
        "Held-out questions the base and the tuned model answer (before and after training), to tell "
        "whether the run learned what the data teaches (0 turns the check off).",
        min=0,
        max=64,
    )
    check_forgetting: bool = _f(
        True,
        "Before and after training, measure how well the model still reads a general text (and answers two "
        "everyday prompts), to tell whether the run cost it general ability.",
    )


@dataclass
class LoraSettings:
    r: int | None = _f(
        None,
        "LoRA rank: capacity of the adapter, 8-64 is typical; empty: 16, or 32 above 3 B parameters.",
        min=1,
        max=1024,
        label="LoRA rank",
    )
    alpha: int | None = _f(
        None,
        "LoRA scaling numerator (scale = alpha / r); empty: twice the rank.",
        min=1,
        label="LoRA alpha",
    )
    dropout: float = _f(
        0.0,
        "Dropout on the adapter's input. 0 is fastest (0.05 doubled the CPU step time in our measurements).",
        min=0.0,
        max=0.9,
    )
    target_modules: str | list[str] = _f(
        "all-linear", "Layers that get adapters: 'all-linear' or a list such as [q_proj, v_proj]."
    )


@dataclass
class PrefixSettings:
    num_virtual_tokens: int = _f(20, "Length of the learned key/value prefix in every layer.", min=1, max=512)


@dataclass
class PromptSettings:
    num_virtual_tokens: int = _f(20, "Number of learned soft-prompt tokens.", min=1, max=512)
    init_text: str | None = _f(
        None, "Start the soft prompt from this text (e.g. 'Answer as a pirate:'); empty starts at random."
    )


@dataclass
class BottleneckSettings:
    bottleneck: int = _f(64, "Width r of each bottleneck adapter: Linear(d→r) → GELU → Linear(r→d).", min=1)


@dataclass
class PreferenceSettings:
    beta: float | None = _f(
        None,
        "How strongly the preference counts: DPO's beta (higher stays closer to the model before training), "
        "ORPO's weight of the preference term beside learning the chosen answer; empty: 0.1.",
        min=0.0,
        max=10.0,
        label="Preference strength (beta)",
    )
    loss: str = _f(
        "sigmoid",
        "DPO's loss: 'sigmoid' (the paper's), 'ipo' (squared, steadier on small or noisy data) or 'hinge'.",
        choices=("sigmoid", "ipo", "hinge"),
    )
    reference: str = _f(
        "auto",
        "What DPO compares with: 'adapter_off' (the base, with the adapter switched off: no second copy), "
        "'precomputed' (the model's scores before training, computed once and kept in the run folder); "
        "'auto': adapter_off for PEFT adapters, precomputed for full fine-tuning and bottleneck adapters.",
        choices=("auto", "adapter_off", "precomputed"),
    )


@dataclass
class RunConfig:
    schema_version: int = _f(SCHEMA_VERSION, "Version of this file's layout; older files are migrated.")
    model: str = _f("", "A Hugging Face model folder, a .gguf file, or a hub id (downloaded when online).")
    method: str = _f("lora", "How the model is fine-tuned.", choices=METHOD_NAMES)
    dataset: DatasetConfig = field(default_factory=DatasetConfig, metadata={"help": "The training data."})
    training: TrainingConfig = field(default_factory=TrainingConfig, metadata={"help": "Training settings."})
    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "For lora, qlora and dora."})
    prefix: PrefixSettings = field(default_factory=PrefixSettings, metadata={"help": "For prefix tuning."})
    prompt: PromptSettings = field(default_factory=PromptSettings, metadata={"help": "For prompt tuning."})
    bottleneck: BottleneckSettings = field(
        default_factory=BottleneckSettings, metadata={"help": "For bottleneck adapters."}
    )
    preference: PreferenceSettings = field(
        default_factory=PreferenceSettings, metadata={"help": "For the preference objectives (dpo, orpo)."}
    )
    output_dir: str = _f("runs/my-run", "The run folder: config, metrics, checkpoints and the result.")
    trust_remote_code: bool = _f(False, "Run Python code shipped with the model. Only for models you trust.")
    allow_pickle_weights: bool = _f(
        False, "Allow .bin/.pt weights, which can run code when loaded. Prefer safetensors."
    )

    def resolved_learning_rate(self) -> float:
        lr = self.training.learning_rate
        if lr is not None:
            return lr
        return (
            METHODS[self.method].default_learning_rate
            * OBJECTIVES[self.training.objective].learning_rate_factor
        )

    def resolved_beta(self) -> float:
        beta = self.preference.beta
        return OBJECTIVES[self.training.objective].proposed_beta if beta is None else beta

    def reference_kind(self) -> str:
        """How DPO gets its reference: 'adapter_off' or 'precomputed' ('' for objectives without one)."""
        if not OBJECTIVES[self.training.objective].reference:
            return ""
        chosen = self.preference.reference
        if chosen != "auto":
            return chosen
        return "adapter_off" if peft_adapter(self.method) else "precomputed"

    # What loading this config changed on the way (migrations); not part of the file.
    notices: typing.ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path) -> None:
        from finetune_gui.core.files import write_text

        write_text(path, self.to_yaml())

    @classmethod
    def from_dict(cls, data: Any) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError(
                f"The config must be a mapping of keys to values, but it is a {type(data).__name__}."
            )
        check_size(data)
        data, notices = migrate(dict(data))
        config = _build(cls, data, "")
        validate(config)
        if notices:
            config.notices = tuple(notices)  # per instance, kept off config.yaml's fields
        return config

    @classmethod
    def from_yaml(cls, text: str, source: str = "the config") -> RunConfig:
        return cls.from_dict(_parse_yaml(text, source) or {})

    @classmethod
    def load(cls, path: str | Path, overrides: list[str] | None = None) -> RunConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"No config file at {path}. Check the path, or save one from the wizard.")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Could not read {path}: {exc}. Save it as UTF-8 text.") from None
        data = _parse_yaml(text, str(path)) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path} must hold a mapping of keys to values (model:, method:, ...).")
        for item in overrides or []:
            apply_override(data, item)
        return cls.from_dict(data)


def _v1_to_v2(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Version 2 calls the bottleneck-adapter method 'bottleneck' (version 1: 'adapter')."""
    method = data.get("method")
    if isinstance(method, str) and method in RENAMED:
        data["method"] = RENAMED[method]
        return data, [f"method '{method}' is now called '{RENAMED[method]}'; the config was migrated."]
    return data, []


# Sections older configs used: {old: new}.
RENAMED_SECTIONS = {"adapter": "bottleneck"}


def _v2_to_v3(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Version 3 calls the bottleneck adapters' section 'bottleneck:' (version 2: 'adapter:', a name every
    adapter method could claim)."""
    return _rename_sections(data)


def _rename_sections(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    notices = []
    for old, new in RENAMED_SECTIONS.items():
        if old not in data:
            continue
        section = data.pop(old)
        if isinstance(section, dict) and isinstance(data.get(new), dict):
            # Both names in one mapping: the old one came from a --set, which overrides the file.
            section = {**data[new], **section}
        data[new] = section
        notices.append(f"the section '{old}:' is now called '{new}:'; the config was migrated.")
    return data, notices


# Migrations from older schema versions: {old_version: function(dict) -> (dict of old_version + 1,
# notices for the user)}. A file without schema_version is read as version 1, the first layout.
MIGRATIONS: dict[int, typing.Callable[[dict[str, Any]], tuple[dict[str, Any], list[str]]]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
}


def migrate(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    version = data.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= SCHEMA_VERSION:
        raise ConfigError(
            f"This config has schema_version {quote(version)}; this app reads versions 1 to {SCHEMA_VERSION}. "
            "Update finetune-gui, or remove the key."
        )
    notices: list[str] = []
    while version < SCHEMA_VERSION:
        data, said = MIGRATIONS[version](data)
        notices += said
        version += 1
    # A current file given an old section name by ``--set adapter.bottleneck=32`` (a script written for
    # version 2) is read as its new name too.
    data, said = _rename_sections(data)
    notices += said
    data["schema_version"] = version
    return data, notices


def quote(value: Any) -> str:
    """A value as an error message may show it: its repr, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def check_size(data: Any) -> None:
    """Refuse a config that expands to more than MAX_VALUES values. YAML aliases share one object among
    many places, so a few lines can stand for billions of values; counting stops at the cap."""
    count = 0
    stack = [data]
    while stack:
        node = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(
                f"The config expands to more than {MAX_VALUES:,} values (YAML aliases repeating a list?). "
                "A run config has a few dozen keys: write the values out."
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and len(node) > 100_000:
            raise ConfigError(
                f"A value in the config is {len(node):,} characters long; no setting needs that."
            )


def _parse_yaml(text: str, source: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(
            f"{source} is not valid YAML{where}: {problem}. Fix that spot and try again."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}.") from None


def apply_override(data: dict[str, Any], item: str) -> None:
    """Apply one ``--set key.sub=value`` to the raw config mapping; the value is parsed as YAML."""
    import yaml

    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set takes KEY=VALUE (e.g. training.batch_size=2), not {quote(item)}.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    target = data
    for part in parts[:-1]:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: '{part}' is not a section.")
        target = node
    target[parts[-1]] = value


def _section_fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _unknown_key_message(key: str, path: str, known: list[str]) -> str:
    where = f"under '{path}'" if path else "at the top level"
    msg = f"Unknown key '{key}' {where}"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"{msg} — did you mean '{close[0]}'?"
    for name, sub in SECTIONS.items():
        if key in _section_fields(sub) and name != path:
            return f"{msg} — it belongs under '{name}:'."
    return f"{msg}. Known keys: {', '.join(known)}."


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = _section_fields(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(_unknown_key_message(str(key), path, list(fields)))
        name = f"{path}.{key}" if path else key
        hint = hints[key]
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(
                    f"'{name}' must be a section of keys (like {name}: {{...}}), not {quote(value)}."
                )
            kwargs[key] = _build(hint, value, name)
        else:
            if fields[key].metadata.get("switch") and isinstance(value, bool):
                value = "on" if value else "off"  # YAML reads on/off/yes/no as booleans
            kwargs[key] = coerce_value(value, hint, name)
    return cls(**kwargs)


def _type_name(hint: Any) -> str:
    names = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}
    if hint in names:
        return names[hint]
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint) if a is not type(None))
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping"
    return str(hint)


def coerce_value(value: Any, hint: Any, name: str) -> Any:
    """Check ``value`` against a field's type; accept the forgiving cases (1 for 1.0, '2e-4' for 2e-4)."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce_value(value, arg, name)
            except ConfigError:
                continue
        raise ConfigError(f"'{name}' must be {_type_name(hint)}, not {quote(value)}.")
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:  # YAML 1.1 reads 2e-4 (no dot) as text
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, list):
            return [coerce_value(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
    elif origin is dict and isinstance(value, dict):
        return {str(k): coerce_value(v, str, f"{name}.{k}") for k, v in value.items()}
    raise ConfigError(f"'{name}' must be {_type_name(hint)}, not {quote(value)}.")


SECTIONS: dict[str, type] = {
    "dataset": DatasetConfig,
    "training": TrainingConfig,
    "lora": LoraSettings,
    "prefix": PrefixSettings,
    "prompt": PromptSettings,
    "bottleneck": BottleneckSettings,
    "preference": PreferenceSettings,
}


def _check_ranges(obj: Any, path: str) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{path}.{f.name}" if path else f.name
        if dataclasses.is_dataclass(value):
            _check_ranges(value, name)
            continue
        meta = f.metadata
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"'{name}' is {value}; it must be a finite number.")
        choices = meta.get("choices")
        if choices and value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"'{name}' is {quote(value)}; it must be one of {', '.join(choices)}.{hint}")
        if "min" in meta and value < meta["min"]:
            raise ConfigError(f"'{name}' is {value}; it must be at least {meta['min']}.")
        if "max" in meta and value > meta["max"]:
            raise ConfigError(f"'{name}' is {value}; it must be at most {meta['max']}.")


def validate(config: RunConfig) -> None:
    """Check types' ranges and combinations; paths are checked by ``check_paths`` when a run starts."""
    _check_ranges(config, "")
    if config.preference.reference == "adapter_off" and not peft_adapter(config.method):
        raise ConfigError(
            f"preference.reference adapter_off needs an adapter to switch off, and {METHODS[config.method].label} "
            "has none that PEFT can; use 'precomputed' (or 'auto')."
        )
    targets = config.lora.target_modules
    if isinstance(targets, list) and not targets:
        raise ConfigError(
            "lora.target_modules is an empty list; use 'all-linear' or name layers like q_proj."
        )


def peft_adapter(method: str) -> bool:
    """The method trains a PEFT adapter, which can be switched off to see the base model."""
    return METHODS[method].adapter_kind not in (None, "bottleneck")


# Held-out rows (questions, or preference pairs) a verdict on new ones rests on: below it the learning
# check says it cannot judge (core/training/learning.py, objectives/preference_check.py), and the
# wizard's dataset page says how many rows are held out against it.
MIN_HELD_OUT = 8


def split_counts(rows: int, fraction: float) -> tuple[int, int]:
    """(training rows, validation rows) for a validation split: none is held out from fewer than 4 rows."""
    if fraction <= 0 or rows < 4:
        return rows, 0
    held = max(1, round(rows * fraction))
    return rows - held, held


def check_paths(config: RunConfig) -> None:
    """Fail early, with the path named, when the dataset or a local model is missing."""
    if not config.model:
        raise ConfigError("No model is set. Add 'model:' with a folder, a .gguf file or a hub id.")
    if not config.dataset.path:
        raise ConfigError("No dataset is set. Add 'dataset: {path: your-file.jsonl}'.")
    for label, value in (
        ("dataset.path", config.dataset.path),
        ("dataset.validation_path", config.dataset.validation_path),
    ):
        if value and not Path(value).expanduser().exists():
            raise ConfigError(
                f"{label} {value} does not exist. Check the path (relative paths start at the current folder)."
            )


# -- one dotted key ('training.batch_size') for a field: its metadata, its value, a checked change. The
# window's wizard state, the settings page and the tooltips use these; ``--set`` takes the same keys.


def config_field(dotted: str) -> tuple[dataclasses.Field[Any], Any]:
    """The field a dotted key names and its type; KeyError for a key that names none."""
    cls: type = RunConfig
    parts = dotted.split(".")
    for index, part in enumerate(parts):
        fields = _section_fields(cls)
        if part not in fields:
            raise KeyError(dotted)
        hint = typing.get_type_hints(cls)[part]
        if index == len(parts) - 1:
            return fields[part], hint
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            raise KeyError(dotted)
        cls = hint
    raise KeyError(dotted)


def get_field(config: RunConfig, dotted: str) -> Any:
    config_field(dotted)
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def set_field(config: RunConfig, dotted: str, value: Any) -> Any:
    """Set one field of ``config`` in place, checked as the same value in a YAML file would be (its type,
    range and the combinations ``validate`` checks): a ConfigError leaves the config as it was. Returns the
    value as set (e.g. 2e-4 for '2e-4')."""
    config_field(dotted)
    data = config.to_dict()
    *path, last = dotted.split(".")
    node = data
    for part in path:
        node = node[part]
    node[last] = value
    checked = get_field(RunConfig.from_dict(data), dotted)
    owner: Any = config
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, last, checked)
    return checked


def _metadata(dotted: str) -> Any:
    return config_field(dotted)[0].metadata or {}


def field_help(dotted: str) -> str:
    """The help text of a field, e.g. ``field_help('training.batch_size')``; the GUI's tooltips."""
    return str(_metadata(dotted).get("help", ""))


def field_label(dotted: str) -> str:
    """A field's name for people ('LoRA rank' for lora.r): its ``label`` metadata, else its key in words."""
    label = _metadata(dotted).get("label")
    if label:
        return str(label)
    return dotted.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def in_words(message: str) -> str:
    """A config error as the window shows it: field labels instead of quoted keys."""
    import re

    def label(match: re.Match[str]) -> str:
        try:
            return field_label(match.group(1))
        except KeyError:
            return match.group(0)

    return re.sub(r"'([a-z_]+(?:\.[a-z_]+)+)'", label, message)
