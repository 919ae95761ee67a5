"""How this app starts its own child processes, and what they share with their parent.

- ``self_command``: ``python -m finetune_gui …`` from a Python install, or the executable itself in a
  frozen (PyInstaller) build, where ``-m`` does not exist.
- ``private_stdout``: a copy of stdout for machine-readable lines (events, the playground's tokens).
- ``child_env``: thread counts for a child, so the app's own torch processes do not starve each other;
  ``share_cores`` does the same for a command started from a terminal beside other runs of the app.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

# Set by the window for every child it starts: how many torch processes of ours share the cores.
SHARE_ENV = "FINETUNE_GUI_CPU_SHARE"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Commands that keep the cores busy with torch (the playground's server, merges and GGUF checks too).
TORCH_COMMANDS = ("train", "generate", "generate-server", "merge", "gguf-options")


def self_command(*args: str) -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "finetune_gui", *args]


def private_stdout() -> TextIO:
    """A copy of stdout for our JSON lines; fd 1 itself is pointed at stderr, so anything a library prints
    (even from C code) cannot corrupt them."""
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)


def thread_count(sharing: int, cores: int | None = None) -> int:
    """Threads for one of ``sharing`` busy torch processes of ours. OpenMP threads spin while they wait, so
    two processes that each take every core ran 20-30 times slower here than with one thread each."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, sharing))


def _is_torch_command(cmdline: list[str]) -> bool:
    """``python -m finetune_gui train …``, ``finetune-gui train …`` or the frozen app's ``… train``."""
    for index, part in enumerate(cmdline[:-1]):
        name = os.path.basename(part).removesuffix(".exe")
        if name in ("finetune_gui", "finetune-gui") and cmdline[index + 1] in TORCH_COMMANDS:
            return True
    return False


def others_running() -> int:
    """Torch processes of this app that are not this process or its children: a run left training when its
    window closed, a command-line run in a terminal. They share the cores as much as our own children."""
    return len(other_torch_pids())


def other_torch_pids() -> set[int]:
    import psutil

    me = psutil.Process()
    ours = {me.pid} | {p.pid for p in me.children(recursive=True)}
    found = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.info["pid"] not in ours and _is_torch_command(process.info["cmdline"] or []):
                found.add(process.info["pid"])
        except (psutil.Error, TypeError):
            continue
    return found


def share_cores(command: str) -> None:
    """For a torch command started from a terminal (not by the window, which sets the threads itself):
    when other runs of the app are busy, take only this process's share of the cores. Call before torch
    is imported; a thread count the user set is left alone."""
    if command not in TORCH_COMMANDS or SHARE_ENV in os.environ:
        return
    if any(name in os.environ for name in THREAD_VARIABLES):
        return
    try:
        others = others_running()
    except (ImportError, OSError):  # a process table we cannot read: keep torch's own default
        return
    if others:
        threads = str(thread_count(1 + others))
        for name in THREAD_VARIABLES:
            os.environ[name] = threads


def child_env(sharing: int = 1, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process that is one of ``sharing`` torch processes at work at once.
    A thread count the user set explicitly is left alone."""
    env = dict(os.environ if base is None else base)
    threads = str(thread_count(sharing))
    for name in THREAD_VARIABLES:
        if name not in os.environ:
            env[name] = threads
    env[SHARE_ENV] = str(max(1, sharing))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
