"""Opening the run folder for a run: refuse what would overwrite someone's files, take the folder's lock,
pick the checkpoint to resume from (the newest intact one), or start over when an earlier attempt died
before its first checkpoint. Nothing in the folder is changed until every check has passed."""

from __future__ import annotations

import json
import os
import shutil
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.config import RunConfig
from finetune_gui.core.errors import ConfigError
from finetune_gui.core.files import FileLock, disk_error_sentence
from finetune_gui.core.runs import RunFolder, RunRecord

# What a folder may hold before its first run: the window creates the log and the lock first.
BEFORE_A_RUN = {"train.log", ".lock"}
# What an attempt that never reached a checkpoint leaves, and starting over removes.
ATTEMPT_FILES = ("run.json", "metrics.jsonl", "samples.jsonl", "events.jsonl", "control", "error.log")


@dataclass
class Opening:
    checkpoint: Path | None = None
    start_step: int = 0
    previous: RunRecord = field(default_factory=RunRecord)  # the run.json of earlier sessions
    lock: FileLock | None = None


def open_folder(
    folder: RunFolder, config: RunConfig, resume: bool, log: Callable[[str, str], None]
) -> Opening:
    _check_writable(folder.path)
    if not folder.exists():
        foreign = sorted({p.name for p in folder.path.iterdir()} - BEFORE_A_RUN)
        if foreign:
            shown = ", ".join(foreign[:4]) + (", …" if len(foreign) > 4 else "")
            raise ConfigError(
                f"{folder.path} already holds files that are not a finetune-gui run ({shown}). Choose a new "
                "output_dir; nothing in that folder was changed."
            )
    lock = folder.lock()
    if not lock.acquire(wait=False):
        raise ConfigError(
            f"Another training process is writing into {folder.path}. Wait for it to finish, or choose "
            "another output_dir."
        )
    try:
        opening = _resume(folder, config, log) if resume else _start(folder, log)
    except BaseException:
        lock.release()
        raise
    opening.lock = lock
    return opening


def _check_writable(path: Path) -> None:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(
                f"output_dir {path} cannot be a folder: {parent} is a file. Choose another path for the run."
            )
        if parent.exists():
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            disk_error_sentence(exc, f"the run folder {path}")
            or f"The run folder {path} cannot be created: {exc.strerror}."
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"No permission to write in {path}. Choose an output_dir you can write to.")


def _start(folder: RunFolder, log: Callable[[str, str], None]) -> Opening:
    if not folder.exists():
        return Opening()
    info = folder.read()
    if folder.checkpoints() or folder.adapter_dir.exists() or folder.model_dir.exists():
        raise ConfigError(
            f"{folder.path} already holds a run (status {info.status}). Continue it with "
            "--resume, or choose another output_dir (e.g. --set output_dir=runs/new-run)."
        )
    # An earlier attempt died before its first checkpoint: there is nothing to continue, so start over.
    for name in ATTEMPT_FILES:
        (folder.path / name).unlink(missing_ok=True)
    shutil.rmtree(folder.checkpoints_dir, ignore_errors=True)
    log("Starting over: the earlier attempt in this folder stopped before its first checkpoint.", "warning")
    return Opening()


def resume_point(folder: RunFolder, log: Callable[[str, str], None] | None = None) -> tuple[Path | None, int]:
    """The newest intact checkpoint and its step; damaged newer ones are named in the log."""
    for number, path in folder.checkpoints():
        problem = damage(path)
        if problem is None:
            return path, number
        if log is not None:
            log(f"{path.name} is damaged ({problem}); trying the one before it.", "warning")
    return None, 0


def _resume(folder: RunFolder, config: RunConfig, log: Callable[[str, str], None]) -> Opening:
    info = folder.read()
    _check_same_run(folder, config)
    checkpoint, step = resume_point(folder, log)
    for number, path in folder.checkpoints():
        if number > step:  # damaged: kept for the user to look at, out of the Trainer's way
            path.rename(path.with_name(f"damaged-{path.name}"))
    if checkpoint is None:
        if info.status == "completed":
            raise ConfigError(f"The run in {folder.path} already completed; there is nothing to resume.")
        raise ConfigError(
            f"There is no intact checkpoint in {folder.path} to resume from: the run stopped before its first "
            "one. Start it again without --resume; it starts over in the same folder."
        )
    max_steps = config.training.max_steps
    if max_steps is not None and step >= max_steps:
        raise ConfigError(
            f"The run in {folder.path} already trained {step} of its {max_steps} steps. To train it further, "
            f"raise training.max_steps (e.g. --set training.max_steps={2 * max_steps})."
        )
    return Opening(checkpoint, step, info)


def _check_same_run(folder: RunFolder, config: RunConfig) -> None:
    if not folder.config_path.is_file():
        return
    try:
        earlier = RunConfig.load(folder.config_path)
    except ConfigError:
        return
    for key, label in (("method", "method"), ("model", "model")):
        before, now = getattr(earlier, key), getattr(config, key)
        if before != now:
            raise ConfigError(
                f"This run was trained with {label} {before}; resuming it with {now} would not continue it. "
                "Resume with the same method and model, or start a new run in another output_dir. Nothing was changed."
            )


def damage(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (a truncated or unreadable file), or None when intact."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        if not isinstance(state, dict) or "global_step" not in state:
            return "trainer_state.json is incomplete"
    except (OSError, ValueError):
        return "trainer_state.json is unreadable"
    weights = [p for p in checkpoint.iterdir() if p.suffix == ".safetensors"]
    if not weights:
        return "it holds no weights"
    for path in weights:
        if not _safetensors_intact(path):
            return f"{path.name} is truncated or damaged"
    for path in checkpoint.iterdir():
        if path.suffix in (".pt", ".pth", ".bin"):
            try:
                with zipfile.ZipFile(path):  # torch.save writes a zip; a cut file loses its directory
                    pass
            except (OSError, zipfile.BadZipFile):
                return f"{path.name} is truncated or damaged"
    return None


def _safetensors_intact(path: Path) -> bool:
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > size - 8:
                return False
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return False
    ends = [spec["data_offsets"][1] for key, spec in header.items() if key != "__metadata__"]
    return 8 + length + max(ends, default=0) <= size
