"""The adapter library: every completed or stopped run's adapter, and imported adapter folders.

Each entry is one small JSON record in ``<data>/adapters/`` (written atomically, its own file), so two
processes registering at once never lose each other's entries and a damaged record costs one entry, not
the library. ``adapters.json`` beside it is a snapshot of all records, rewritten under a lock after every
change, for other tools to read; when it is missing or damaged it is rebuilt from the records. The
adapters themselves stay where they are (a run's adapter/ folder, or the imported folder).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from finetune_gui.core.adapters.adapter_folder import describe_adapter
from finetune_gui.core.errors import UserError
from finetune_gui.core.files import FileLock, write_json
from finetune_gui.core.paths import data_dir


def index_path() -> Path:
    return data_dir() / "adapters.json"


def _absolute(folder: str | Path) -> str:
    """The folder's absolute path as given (links are not followed: two links are two entries)."""
    import os

    return os.path.abspath(os.path.expanduser(str(folder)))


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class AdapterLibrary:
    def __init__(self, path: Path | None = None):
        self.path = path or index_path()
        self.records = self.path.with_suffix("")  # <data>/adapters/, one <id>.json per entry

    # -- reading
    def entries(self) -> list[dict[str, Any]]:
        self._adopt_legacy_index()
        found = []
        if self.records.is_dir():
            for record in self.records.glob("*.json"):
                try:
                    entry = json.loads(record.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue  # a damaged record costs its own entry only
                if isinstance(entry, dict) and {"id", "name", "path"} <= entry.keys():
                    found.append(entry)
        return sorted(found, key=lambda e: (str(e.get("created", "")), str(e["id"])))

    def get(self, key: str) -> dict[str, Any]:
        for entry in self.entries():
            if key in (entry["id"], entry["name"], entry["path"]):
                return entry
        raise UserError(f"No adapter named {key} in the library. `finetune-gui adapters list` shows them.")

    def find_path(self, folder: str | Path) -> dict[str, Any] | None:
        wanted = _absolute(folder)
        return next((e for e in self.entries() if e["path"] == wanted), None)

    # -- writing
    def add(self, folder: str | Path, name: str | None = None, **facts: Any) -> dict[str, Any]:
        """Add an adapter folder; one already in the library keeps its entry (its name and facts), and
        only gains facts given here."""
        folder = Path(_absolute(folder))
        info = describe_adapter(folder)
        known = {k: v for k, v in facts.items() if v is not None}
        existing = self.find_path(folder)
        if existing is not None:
            if known:
                existing.update(known, size_bytes=_folder_size(folder))
                self._write(existing)
            return existing
        # A run's adapter lives in <run>/adapter: the run's name says more than "adapter".
        default_name = folder.parent.name if folder.name == "adapter" else folder.name
        entry = {
            "id": uuid.uuid4().hex[:8],
            "name": name or default_name,
            "path": str(folder),
            **info,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "size_bytes": _folder_size(folder),
            **known,
        }
        self._write(entry)
        return entry

    def register_run(self, run_folder: str | Path) -> dict[str, Any] | None:
        """Add a finished run's adapter (its run.json supplies the facts); full fine-tunes have none."""
        from finetune_gui.core.runs import RunFolder

        folder = RunFolder(run_folder)
        if not folder.adapter_dir.is_dir():
            return None
        info = folder.read()
        metrics = info.metrics
        return self.add(
            folder.adapter_dir,
            name=folder.path.name,
            base_model=info.model or None,
            method=info.method or None,
            dataset=info.dataset or None,
            steps=metrics.get("steps"),
            final_loss=metrics.get("final_loss"),
            eval_loss=metrics.get("eval_loss"),
            smoothed_loss=metrics.get("smoothed_loss"),
            run=str(folder.path),
        )

    def rename(self, key: str, new_name: str) -> dict[str, Any]:
        if not new_name.strip():
            raise UserError("An adapter's name cannot be empty.")
        entry = self.get(key)
        entry["name"] = new_name.strip()
        self._write(entry)
        return entry

    def remove(self, key: str, delete_files: bool = False, typed_name: str | None = None) -> None:
        """Take an adapter out of the library; with ``delete_files``, delete its folder too. A folder the
        app did not create (outside its data folder: an imported adapter, the user's own checkpoint) is
        deleted only when ``typed_name`` is that folder's name, as the user typed it to confirm."""
        import shutil

        target = self.get(key)
        folder = Path(target["path"])
        if delete_files and not made_by_app(folder) and typed_name != folder.name:
            raise UserError(
                f"{folder} is not in this app's data folder, so it is deleted only when you type its name "
                f"({folder.name}) to confirm. It stays where it is."
            )
        (self.records / f"{target['id']}.json").unlink(missing_ok=True)
        self._write_snapshot()
        if delete_files:
            shutil.rmtree(folder, ignore_errors=True)

    def _write(self, entry: dict[str, Any]) -> None:
        write_json(self.records / f"{entry['id']}.json", entry)
        self._write_snapshot()

    def _write_snapshot(self) -> None:
        with FileLock(self.path.with_name(self.path.name + ".lock")):
            write_json(self.path, {"version": 2, "adapters": self.entries()})

    def _adopt_legacy_index(self) -> None:
        """Version 1 kept entries only in adapters.json: turn a readable one into records, once."""
        if self.records.is_dir() or not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            legacy = [e for e in data.get("adapters", []) if isinstance(e, dict) and "id" in e]
        except (OSError, ValueError, AttributeError):
            legacy = []
        self.records.mkdir(parents=True, exist_ok=True)
        for entry in legacy:
            write_json(self.records / f"{entry['id']}.json", entry)


def made_by_app(folder: str | Path) -> bool:
    """Whether ``folder`` lies inside the app's data folder (a run's adapter), so the app made it."""
    from finetune_gui.core.paths import data_dir

    try:
        Path(folder).resolve().relative_to(data_dir().resolve())
    except ValueError:
        return False
    return True
