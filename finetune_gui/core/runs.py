"""The run folder (docs/architecture.md, "Run folder"), and everything that reads or writes it.

    config.yaml    the resolved config that ran          run.json       status, timings, results
    metrics.jsonl  one line per logged step / eval       samples.jsonl  sample answers per evaluation
    events.jsonl   every event the run emitted           control        pause / run / stop, for a run
    adapter/ or model/, checkpoints/, train.log, error.log                  this window did not start

``RunFolder`` is the one owner of these paths. config.yaml and run.json are written atomically;
the JSON-lines files are appended a line at a time and readers skip a torn last line. A run holds
``.lock`` while it trains, so two processes never train into one folder.
"""

from __future__ import annotations

import dataclasses
import json
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_gui.core.events import (
    Alert,
    Eval,
    Event,
    Forgetting,
    Learned,
    Step,
    event_from_dict,
    parse_event,
)
from finetune_gui.core.files import FileLock, write_json, write_text

CONTROL_WORDS = ("run", "pause", "stop")
ENDED = ("completed", "stopped", "failed")


@dataclass(frozen=True)
class StepTiming:
    """This machine's measured time per optimizer step (run.json ``timing``), from the second logged step
    on: the Review page's time estimate reads it for later runs of the same model and method."""

    seconds_per_step: float
    tokens_per_step: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> StepTiming | None:
        try:
            return cls(float(data["seconds_per_step"]), float(data["tokens_per_step"]), int(data["steps"]))
        except (TypeError, KeyError, ValueError):
            return None


def _event_record(event: Event) -> dict[str, Any]:
    record = event.to_dict()
    record.pop("event")
    return record


def _as_event(cls: type[Event], data: Any) -> Any:
    return event_from_dict({**data, "event": cls.kind}) if isinstance(data, dict) else None


@dataclass(frozen=True)
class RunRecord:
    """run.json, typed: what the run is, where it stands and what it found (docs/architecture.md, "Run
    folder" and its extensions). The training process writes it (``RunFolder.update``), the window, the
    adapter library and the next session read it. Keys a newer version wrote are kept in ``extra`` and
    written back, so an older app never drops them; a value of the wrong type reads as unknown."""

    status: str = "unknown"  # running | completed | stopped | failed
    error_kind: str | None = None  # a FailureKind's word
    error_message: str | None = None
    advice: list[str] = field(default_factory=list)
    pid: int | None = None
    started_at: str | None = None  # the first session's start
    session_started_at: str | None = None
    finished_at: str | None = None
    updated_at: str | None = None
    duration_s: float | None = None  # every session's time added
    sessions: list[dict[str, Any]] = field(default_factory=list)  # {started_at, duration_s}
    method: str = ""
    model: str = ""
    dataset: str = ""
    objective: str = "sft"
    reference: str | None = None  # DPO's reference: adapter_off | precomputed
    world_size: int = 1
    device: str = ""
    precision: str = ""
    memory_mode: str = ""
    gradient_checkpointing: bool | None = None
    trainable_parameters: int | None = None
    total_parameters: int | None = None
    train_rows: int | None = None
    validation_rows: int | None = None
    skipped_rows: int | None = None
    estimate_gib: float | None = None
    measured_peak_gib: float | None = None
    proposal: dict[str, Any] = field(default_factory=dict)  # {key: {value, why}}
    system_prompt: str | None = None  # the one the run trained with (the playground asks with it)
    versions: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # a failed run's last checkpoint
    output: str | None = None  # adapter/ or model/
    metrics: dict[str, Any] = field(default_factory=dict)  # the final ones: steps, losses, answers…
    learning: Learned | None = None  # did it learn?
    forgetting: Forgetting | None = None  # did it forget?
    alerts: list[Alert] = field(default_factory=list)
    early_stop: dict[str, Any] | None = None  # {best_step, best_eval_loss, stopped_at, patience}
    timing: StepTiming | None = None
    # What the checks measured on the base model before training, so a resumed run compares with it.
    base_answers: list[str] | None = None
    base_trained_answers: list[str] | None = None
    base_general: dict[str, Any] | None = None  # {perplexity, answers}
    base_preference_margins: dict[str, Any] | None = None  # {held, trained}
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def replace(self, **fields: Any) -> RunRecord:
        """This record with ``fields`` changed; an unknown name is a TypeError (a typo, not a new key)."""
        return dataclasses.replace(self, **fields)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if isinstance(value, Event):
                value = _event_record(value)
            elif isinstance(value, StepTiming):
                value = value.to_dict()
            elif f.name == "alerts":
                value = [_event_record(a) for a in value]
            data[f.name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        hints = typing.get_type_hints(cls)
        known: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key == "extra" or key not in hints:
                extra[key] = value
            elif key == "learning":
                known[key] = _as_event(Learned, value)
            elif key == "forgetting":
                known[key] = _as_event(Forgetting, value)
            elif key == "alerts":
                found = [_as_event(Alert, a) for a in value] if isinstance(value, list) else []
                known[key] = [a for a in found if a is not None]
            elif key == "timing":
                known[key] = StepTiming.from_dict(value)
            elif _fits(value, hints[key]):
                known[key] = value
        return cls(**known, extra=extra)


def _fits(value: Any, hint: Any) -> bool:
    """Does a JSON value fit a field's type (loosely: the container, not its items)?"""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    for option in options:
        base = typing.get_origin(option) or option
        if option is type(None) and value is None:
            return True
        if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return True
        if base in (str, bool, list, dict) and isinstance(value, base):
            return True
    return False


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def launch_config_path(self) -> Path:
        """The config the window writes before starting a run: beside the folder, which the run creates."""
        return self.path.with_suffix(".yaml")

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def samples_path(self) -> Path:
        return self.path / "samples.jsonl"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    @property
    def control_path(self) -> Path:
        return self.path / "control"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def error_log_path(self) -> Path:
        return self.path / "error.log"

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    def exists(self) -> bool:
        return self.run_json.is_file()

    def lock(self) -> FileLock:
        return FileLock(self.path / ".lock")

    # -- run.json
    def read(self) -> RunRecord:
        """run.json as a record; an empty one when the file is missing or unreadable."""
        try:
            data = json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return RunRecord()
        return RunRecord.from_dict(data) if isinstance(data, dict) else RunRecord()

    def update(self, **fields: Any) -> RunRecord:
        """Change these fields of run.json (atomically); the others stay as they are."""
        record = self.read().replace(**fields, updated_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_json(self.run_json, record.to_dict())
        return record

    # -- metrics, samples and events
    def append_metrics(self, record: dict[str, Any]) -> None:
        self._append(self.metrics_path, record)

    def append_samples(self, step: int, samples: list[dict[str, Any]]) -> None:
        self._append(self.samples_path, {"step": step, "samples": samples})

    def append_event(self, event: Event) -> None:
        with self.events_path.open("a", encoding="utf-8") as handle:
            handle.write(event.to_json() + "\n")

    def events(self) -> list[Event]:
        """events.jsonl read back, in order (a torn or unknown line is skipped)."""
        found = (event_from_dict(record) for record in _read_lines(self.events_path))
        return [event for event in found if event is not None]

    def _append(self, path: Path, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, allow_nan=False, ensure_ascii=False, default=str) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        return _read_lines(self.metrics_path)

    def samples(self) -> list[dict[str, Any]]:
        return _read_lines(self.samples_path)

    def step_events(self, up_to: int | None = None) -> list[Event]:
        """metrics.jsonl read back as the Step and Eval events that wrote it (charts replay them)."""
        found: list[Event] = []
        # A line written by an older version may lack newer fields: they read as unknown.
        blank: dict[str, Any] = {f.name: None for f in dataclasses.fields(Step)}
        blank.update(max_steps=0, epoch=0.0, elapsed_s=0.0, memory={})
        for record in self.metrics():
            step = record.get("step")
            if not isinstance(step, int) or (up_to is not None and step > up_to):
                continue
            if "loss" in record:
                event = parse_event(json.dumps({**blank, **record, "event": "step"}))
            else:
                event = (
                    parse_event(json.dumps({**record, "event": "eval"})) if "eval_loss" in record else None
                )
            if isinstance(event, (Step, Eval)):
                found.append(event)
        return found

    def truncate_metrics(self, after_step: int) -> None:
        """On resume: drop records past the checkpoint, which the resumed run will log again."""
        for path in (self.metrics_path, self.samples_path):
            if path.is_file():
                kept = [r for r in _read_lines(path) if int(r.get("step", 0)) <= after_step]
                write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))

    def crash_lines(self, count: int = 15) -> list[str]:
        """What a crashed run last said: its traceback when it wrote one, else the end of train.log
        without the warnings every run prints (they explain nothing about this one)."""
        for path, keep in ((self.error_log_path, lambda _line: True), (self.log_path, _not_noise)):
            try:
                lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            lines = [line.rstrip() for line in lines if line.strip() and keep(line)]
            if lines:
                return lines[-count:]
        return []

    # -- control of a run by a process that did not start it
    def request(self, word: str) -> None:
        """Ask the training process to pause, run on or stop (it checks between steps)."""
        if word not in CONTROL_WORDS:
            raise ValueError(word)
        write_text(self.control_path, word + "\n")

    def requested(self) -> str | None:
        try:
            word = self.control_path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return word if word in CONTROL_WORDS else None

    def clear_request(self) -> None:
        self.control_path.unlink(missing_ok=True)

    # -- checkpoints
    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints (the Trainer writes trainer_state.json last), newest first."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for child in self.checkpoints_dir.iterdir():
            name = child.name
            complete = (child / "trainer_state.json").is_file()
            if child.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit() and complete:
                found.append((int(name[11:]), child))
        return sorted(found, reverse=True)

    def last_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[0][1] if found else None

    # -- the out-of-memory advice, applied
    def apply_fix(self, overrides: dict[str, Any]) -> Path:
        """Write the run's config with ``overrides`` applied (e.g. a smaller batch) as its launch config,
        for resuming it; returns that file."""
        from finetune_gui.core.config import RunConfig, set_field

        config = RunConfig.load(self.config_path)
        for key, value in overrides.items():
            set_field(config, key, value)  # checked: a fix never writes a config the run would refuse
        config.save(self.launch_config_path)
        return self.launch_config_path


NOISE = ("warning", "warn(", "loading weights", "writing model", "%|", "it/s]", "bitsandbytes", "kernels")


def _not_noise(line: str) -> bool:
    lowered = line.lower()
    return not any(word in lowered for word in NOISE)


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash
        if isinstance(record, dict):
            records.append(record)
    return records


@dataclass(frozen=True)
class ListedRun:
    """A run folder found under the runs folder: where it is, its record, and where it stands now."""

    path: Path
    record: RunRecord
    state: str  # the record's status, or 'interrupted' for a 'running' run whose process is gone

    @property
    def name(self) -> str:
        return self.path.name


def list_runs(root: str | Path) -> list[ListedRun]:
    """Every run folder under ``root`` (newest first), with its run.json and where it stands now."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        folder = RunFolder(child)
        if not child.is_dir() or not folder.exists():
            continue
        record = folder.read()
        runs.append(ListedRun(child, record, run_state(record)))
    return sorted(runs, key=lambda r: r.record.started_at or "", reverse=True)


def run_state(record: RunRecord) -> str:
    """run.json's status, except that a 'running' run whose process is gone is 'interrupted'."""
    if record.status != "running":
        return record.status
    return "running" if record.pid is not None and process_alive(record.pid) else "interrupted"


def process_alive(pid: int) -> bool:
    """Is ``pid`` one of this app's training processes (not a process that reused the number)?"""
    import psutil

    try:
        process = psutil.Process(pid)
        command = " ".join(process.cmdline()) + " " + process.name()
        return (
            process.is_running()
            and process.status() != psutil.STATUS_ZOMBIE
            and ("finetune_gui" in command or "finetune-gui" in command)
        )
    except (psutil.Error, OSError):
        return False
