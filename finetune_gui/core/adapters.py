"""The adapter library: every completed or stopped run's adapter, and imported PEFT adapter folders.

The index is one JSON file in the data folder (written atomically); the adapters themselves stay where
they are (a run's adapter/ folder, or the imported folder). ``describe_adapter`` reads what an adapter
folder is (PEFT or our bottleneck adapters) without loading any weights.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from finetune_gui.core.atomic import write_json
from finetune_gui.core.errors import UserError
from finetune_gui.core.paths import data_dir


def index_path() -> Path:
    return data_dir() / "adapters.json"


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def describe_adapter(folder: str | Path) -> dict[str, Any]:
    """kind (lora, dora, ia3, prefix, prompt, bottleneck), base model, rank, targets; UserError if not an adapter."""
    from finetune_gui.core import bottleneck

    folder = Path(folder)
    if bottleneck.is_bottleneck_dir(folder):
        config = json.loads((folder / bottleneck.CONFIG_NAME).read_text(encoding="utf-8"))
        return {
            "kind": "bottleneck",
            "base_model": config.get("base_model_name_or_path", ""),
            "rank": config.get("bottleneck"),
            "targets": ["attention", "mlp"],
        }
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise UserError(
            f"{folder} is not an adapter folder: it has no adapter_config.json. Choose the folder PEFT saved "
            "(it holds adapter_config.json and adapter_model.safetensors)."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{config_path} is not valid JSON ({exc}).") from None
    peft_type = str(config.get("peft_type", "")).upper()
    kind = {"LORA": "lora", "IA3": "ia3", "PREFIX_TUNING": "prefix", "PROMPT_TUNING": "prompt"}.get(peft_type)
    if kind is None:
        raise UserError(
            f"{folder} holds a {peft_type or 'unknown'} adapter; this app handles LoRA, DoRA, IA3, prefix and prompt tuning."
        )
    if kind == "lora" and config.get("use_dora"):
        kind = "dora"
    targets = config.get("target_modules")
    return {
        "kind": kind,
        "base_model": config.get("base_model_name_or_path") or "",
        "rank": config.get("r") or config.get("num_virtual_tokens"),
        "alpha": config.get("lora_alpha"),
        "targets": sorted(targets) if isinstance(targets, list) else targets,
    }


class AdapterLibrary:
    def __init__(self, path: Path | None = None):
        self.path = path or index_path()

    def entries(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        return [e for e in data.get("adapters", []) if isinstance(e, dict)]

    def _save(self, entries: list[dict[str, Any]]) -> None:
        write_json(self.path, {"version": 1, "adapters": entries})

    def get(self, key: str) -> dict[str, Any]:
        for entry in self.entries():
            if key in (entry["id"], entry["name"], entry["path"]):
                return entry
        raise UserError(f"No adapter named {key} in the library. `finetune-gui adapters list` shows them.")

    def add(self, folder: str | Path, name: str | None = None, **facts: Any) -> dict[str, Any]:
        folder = Path(folder).resolve()
        info = describe_adapter(folder)
        entries = [e for e in self.entries() if e["path"] != str(folder)]
        # A run's adapter lives in <run>/adapter: the run's name says more than "adapter".
        default_name = folder.parent.name if folder.name == "adapter" else folder.name
        entry = {
            "id": uuid.uuid4().hex[:8],
            "name": name or default_name,
            "path": str(folder),
            **info,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "size_bytes": _folder_size(folder),
            **{k: v for k, v in facts.items() if v is not None},
        }
        entries.append(entry)
        self._save(entries)
        return entry

    def register_run(self, run_folder: str | Path) -> dict[str, Any] | None:
        """Add a finished run's adapter (its run.json supplies the facts); full fine-tunes have none."""
        from finetune_gui.core.runs import RunFolder

        folder = RunFolder(run_folder)
        if not folder.adapter_dir.is_dir():
            return None
        info = folder.read()
        metrics = info.get("metrics") or {}
        return self.add(
            folder.adapter_dir,
            name=folder.path.name,
            base_model=info.get("model"),
            method=info.get("method"),
            dataset=info.get("dataset"),
            steps=metrics.get("steps"),
            final_loss=metrics.get("final_loss"),
            run=str(folder.path),
        )

    def rename(self, key: str, new_name: str) -> dict[str, Any]:
        if not new_name.strip():
            raise UserError("An adapter's name cannot be empty.")
        entries = self.entries()
        target = self.get(key)
        for entry in entries:
            if entry["id"] == target["id"]:
                entry["name"] = new_name.strip()
                target = entry
        self._save(entries)
        return target

    def remove(self, key: str, delete_files: bool = False) -> None:
        import shutil

        target = self.get(key)
        self._save([e for e in self.entries() if e["id"] != target["id"]])
        if delete_files:
            shutil.rmtree(target["path"], ignore_errors=True)
