"""A private stdout for machine-readable output (events, the playground's tokens)."""

from __future__ import annotations

import os
import sys
from typing import TextIO


def private_stdout() -> TextIO:
    """A copy of stdout for our JSON lines; fd 1 itself is pointed at stderr, so anything a library prints
    (even from C code) cannot corrupt them."""
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(events_fd, "w", encoding="utf-8", buffering=1)
