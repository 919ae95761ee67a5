"""How to start this app's own commands in a child process: ``python -m finetune_gui …`` from a Python
install, or the executable itself in a frozen (PyInstaller) build, where ``-m`` does not exist."""

from __future__ import annotations

import sys


def self_command(*args: str) -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "finetune_gui", *args]
