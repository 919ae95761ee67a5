"""The run folder (docs/architecture.md §3.3): config.yaml, run.json, metrics.jsonl, adapter/ or model/,
checkpoints/. Every write of config.yaml and run.json is atomic; metrics.jsonl is appended a line at a time
and readers skip a torn last line."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from finetune_gui.core.atomic import write_json

STATUSES = ("running", "completed", "stopped", "failed")


class RunFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

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

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.run_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def update(self, **fields: Any) -> dict[str, Any]:
        data = self.read()
        data.update(fields)
        data["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        write_json(self.run_json, data)
        return data

    def append_metrics(self, record: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, allow_nan=False, default=str) + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.is_file():
            return []
        records = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line torn by a crash
        return records

    def truncate_metrics(self, after_step: int) -> None:
        """On resume: drop records past the checkpoint, which the resumed run will log again."""
        kept = [r for r in self.metrics() if int(r.get("step", 0)) <= after_step]
        from finetune_gui.core.atomic import write_text

        write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept))

    def last_checkpoint(self) -> Path | None:
        if not self.checkpoints_dir.is_dir():
            return None
        found = []
        for child in self.checkpoints_dir.iterdir():
            name = child.name
            complete = (child / "trainer_state.json").is_file()  # written last by the Trainer
            if child.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit() and complete:
                found.append((int(name[11:]), child))
        return max(found)[1] if found else None

    def result_dir(self) -> Path | None:
        for candidate in (self.adapter_dir, self.model_dir):
            if candidate.is_dir():
                return candidate
        return None


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """Every run folder under ``root`` (newest first), with its run.json and where it stands now."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        folder = RunFolder(child)
        if not child.is_dir() or not folder.exists():
            continue
        info = folder.read()
        info["path"] = str(child)
        info["name"] = child.name
        info["state"] = run_state(info)
        runs.append(info)
    return sorted(runs, key=lambda r: r.get("started_at") or "", reverse=True)


def run_state(info: dict[str, Any]) -> str:
    """run.json's status, except that a 'running' run whose process is gone is 'interrupted'."""
    status = info.get("status", "unknown")
    if status != "running":
        return status
    pid = info.get("pid")
    return "running" if pid and _training_process_alive(int(pid)) else "interrupted"


def _training_process_alive(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.is_running() and "finetune_gui" in " ".join(process.cmdline())
    except (psutil.Error, OSError):
        return False
