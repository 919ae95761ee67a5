"""Training events: frozen dataclasses of plain values, one JSON object per line on the wire.

The training process writes them (``--events jsonl``); the window's controller parses them back into
the same dataclasses. Kinds and fields are a public contract (docs/architecture.md, "Training
events"): new fields may be added, none renamed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

# Where a run's parts send their events (the recipe's sink; a no-op on ranks other than the first).
Emit = Callable[["Event"], None]
# How long work outside training (preparing the demo model, a merge, an export) reports how far it is:
# (what is happening, fraction done 0..1).
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class Fix:
    """A change of settings that fixes what an event reports (out of memory, a health alert), offered in
    one click: the window writes it into the run's config and continues from the last checkpoint. On the
    wire ``{"label": …, "set": {"training.batch_size": 2, …}}``; the keys are ``--set`` keys."""

    label: str
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "set": dict(self.settings)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fix:
        settings = data.get("set")
        return cls(str(data.get("label", "")), dict(settings) if isinstance(settings, dict) else {})

    @property
    def short_label(self) -> str:
        """The label without its explanation in brackets, for a button."""
        return self.label.split(" (")[0]


def _plain(value: Any) -> Any:
    """An event field as JSON holds it (a Fix as its wire mapping)."""
    if isinstance(value, Fix):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            **{f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, allow_nan=False, default=str)


@dataclass(frozen=True)
class Started(Event):
    kind: ClassVar[str] = "started"
    config: dict[str, Any]
    trainable_parameters: int
    total_parameters: int
    world_size: int = 1
    max_steps: int = 0
    start_step: int = 0
    device: str = "cpu"
    precision: str = "fp32"
    estimate_gib: float | None = None
    train_rows: int = 0
    validation_rows: int = 0
    memory_mode: str = "standard"  # standard | lean (full fine-tuning's bf16, 8-bit, in-backward mode)


@dataclass(frozen=True)
class Step(Event):
    kind: ClassVar[str] = "step"
    step: int
    max_steps: int
    epoch: float
    loss: float | None
    learning_rate: float | None
    grad_norm: float | None
    tokens_per_s: float | None
    elapsed_s: float
    eta_s: float | None
    memory: dict[str, float] = field(default_factory=dict)
    # The preference objectives' (DPO, ORPO): chosen minus rejected reward, and how often it is above 0.
    reward_margin: float | None = None
    preference_accuracy: float | None = None


@dataclass(frozen=True)
class Eval(Event):
    kind: ClassVar[str] = "eval"
    step: int
    eval_loss: float
    reward_margin: float | None = None  # preference objectives, on the validation pairs
    preference_accuracy: float | None = None


@dataclass(frozen=True)
class Checkpoint(Event):
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str


@dataclass(frozen=True)
class Sample(Event):
    """The model's answers to a few validation prompts at an evaluation step."""

    kind: ClassVar[str] = "sample"
    step: int
    samples: list[dict[str, Any]] = field(default_factory=list)  # {prompt, answer, reference, right, base}


@dataclass(frozen=True)
class Learned(Event):
    """Did it learn? Held-out questions answered by the tuned and the base model, compared with the
    references (core/training/learning.py)."""

    kind: ClassVar[str] = "learned"
    step: int
    questions: int
    base_right: int
    tuned_right: int
    changed: int
    verdict: str  # learned | absorbed | did not move | changed, not right | cannot judge
    summary: str = ""
    examples: list[dict[str, Any]] = field(default_factory=list)  # {question, reference, base, tuned, right}
    # What it absorbed: a sample of training questions, base against tuned (extension, round 4).
    trained_questions: int = 0
    trained_base_right: int = 0
    trained_tuned_right: int = 0
    min_held_out: int = 0  # held-out questions a verdict on them needs
    # sft: questions answered against references; dpo/orpo: pairs, right when the chosen answer is preferred.
    objective: str = "sft"


@dataclass(frozen=True)
class Forgetting(Event):
    """Did it forget? A general text's perplexity, tuned over base, and two everyday answers of each
    (core/training/forgetting.py). Extension, round 5."""

    kind: ClassVar[str] = "forgetting"
    step: int
    base_perplexity: float
    tuned_perplexity: float
    ratio: float
    verdict: str  # kept | some | forgot
    summary: str = ""
    examples: list[dict[str, Any]] = field(default_factory=list)  # {prompt, base, tuned}


@dataclass(frozen=True)
class Alert(Event):
    """Something in the curves needs the user's attention (core/training/alerts.py): one sentence with
    what to do, and the settings that would fix it. Extension, round 5."""

    kind: ClassVar[str] = "alert"
    step: int
    alert: str  # flat loss | memorising | eval rising | gradient spike
    message: str
    fixes: list[Fix] = field(default_factory=list)


@dataclass(frozen=True)
class Paused(Event):
    kind: ClassVar[str] = "paused"
    step: int


@dataclass(frozen=True)
class Resumed(Event):
    kind: ClassVar[str] = "resumed"
    step: int


@dataclass(frozen=True)
class Log(Event):
    """A line for the dashboard's log pane (loading, data problems, notices)."""

    kind: ClassVar[str] = "log"
    message: str
    level: str = "info"


@dataclass(frozen=True)
class Finished(Event):
    kind: ClassVar[str] = "finished"
    status: str  # completed | stopped
    metrics: dict[str, Any] = field(default_factory=dict)
    output_path: str | None = None


@dataclass(frozen=True)
class Failed(Event):
    kind: ClassVar[str] = "failed"
    kind_: str = field(default="crash", metadata={"json": "kind"})  # oom | data | config | crash
    message: str = ""
    advice: list[str] = field(default_factory=list)
    log_path: str | None = None
    fixes: list[Fix] = field(default_factory=list)  # best first, for one-click apply

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["kind"] = data.pop("kind_")
        return data


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        Started,
        Step,
        Eval,
        Checkpoint,
        Sample,
        Learned,
        Forgetting,
        Alert,
        Paused,
        Resumed,
        Log,
        Finished,
        Failed,
    )
}


def parse_event(line: str) -> Event | None:
    """One JSON line back into its event; None for anything else (stray library output)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return event_from_dict(data) if isinstance(data, dict) else None


def event_from_dict(data: dict[str, Any]) -> Event | None:
    """A decoded JSON line back into its event; None when it is no event or lacks a required field."""
    if data.get("event") not in EVENT_TYPES:
        return None
    data = dict(data)
    cls = EVENT_TYPES[data.pop("event")]
    if cls is Failed and "kind" in data:
        data["kind_"] = data.pop("kind")
    names = {f.name for f in dataclasses.fields(cls)}
    if isinstance(data.get("fixes"), list):
        data["fixes"] = [Fix.from_dict(f) for f in data["fixes"] if isinstance(f, dict)]
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...
    def close(self) -> None: ...
