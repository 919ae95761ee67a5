"""How this app starts its own child processes, and what they share with their parent.

- ``self_command``: ``python -m finetune_gui …`` from a Python install, or the executable itself in a
  frozen (PyInstaller) build, where ``-m`` does not exist.
- ``private_stdout``: a copy of stdout for machine-readable lines (events, the playground's tokens).
- ``child_env``: thread counts for a child, so the app's own torch processes do not starve each other.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

# Set by the window for every child it starts: how many torch processes of ours share the cores.
SHARE_ENV = "FINETUNE_GUI_CPU_SHARE"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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
