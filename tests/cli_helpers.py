"""The command line as a user runs it: ``python -m finetune_gui ARGS`` in a child process."""

from __future__ import annotations

import subprocess
import sys


def cli(*args, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run ``finetune-gui ARGS`` (each argument passed through ``str``) and return what it printed."""
    return subprocess.run(
        [sys.executable, "-m", "finetune_gui", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
