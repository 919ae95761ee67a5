"""Writes that never leave half a file, and locks that end with their process.

- ``write_text``/``write_json``: a temporary file in the same folder, fsynced, then renamed over the
  target: a crash or a full disk mid-write leaves the old file.
- ``staged_folder``: the same for a folder (a run's adapter/ or model/, a merged model, an export):
  written beside its target and moved into place whole when complete.
- ``FileLock``: an OS lock on a file (flock / msvcrt), released when its process ends however it ends,
  so a crashed run never leaves a stale lock behind (a status in a JSON file would lie).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from finetune_gui.core.errors import UserError


def write_text(path: str | os.PathLike[str], text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextmanager
def staged_folder(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty folder beside ``target`` (``.NAME.partial``) to write into; when the block ends it
    becomes ``target``, replacing an earlier one whole (the two never mix). When the block fails (a full
    disk, a crash of the writer, Ctrl-C), ``target`` stays as it was and the staging folder is removed."""
    target = Path(target)
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
            staging.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def disk_error_sentence(exc: OSError, what: str) -> str | None:
    """One sentence for the write errors a user can fix, or None for others."""
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"The disk is full: {what} could not be written{where}. Free some space and try again."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"No permission to write {what}{where}. Choose a folder you can write to."
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"{what.capitalize()} cannot be written{where}: a file stands where a folder is needed. Choose another path."
    return None


class FileLock:
    """An exclusive lock on ``path`` (created if missing). ``acquire(wait=False)`` returns False when another
    process holds it; ``wait=True`` blocks up to ``timeout_s``."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._handle: IO[bytes] | None = None

    def acquire(self, wait: bool = True, timeout_s: float = 30.0) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+b")  # noqa: SIM115 (held open for the lock's lifetime)
        deadline = time.monotonic() + timeout_s
        while True:
            if _try_lock(handle):
                self._handle = handle
                return True
            if not wait or time.monotonic() > deadline:
                handle.close()
                if wait:
                    raise UserError(f"{self.path} stayed locked by another process for {timeout_s:.0f} s.")
                return False
            time.sleep(0.02)

    def release(self) -> None:
        if self._handle is not None:
            _unlock(self._handle)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _try_lock(handle: IO[bytes]) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _unlock(handle: IO[bytes]) -> None:
    if sys.platform == "win32":
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
