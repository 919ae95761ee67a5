"""Cooperative control of a training run: stop and pause requests, checked between steps.

Requests come from SIGINT/SIGTERM, from words on stdin (``pause``, ``resume``, ``stop``), or from the run
folder's ``control`` file (``pause``, ``run``, ``stop``), which lets a window that did not start the run
(it reattached after a restart) pause and stop it too. A stop always lets the current step finish, so
the run ends with a saved, loadable state.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

# Set by the launcher of several workers: when the run (not each worker) started, in ns.
STARTED_ENV = "FINETUNE_GUI_RUN_STARTED_NS"


class RunControl:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._pause = threading.Event()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return self._pause.is_set() and not self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    def pause(self) -> None:
        self._pause.set()

    def resume(self) -> None:
        self._pause.clear()

    def wait_while_paused(self, poll_s: float = 0.1) -> None:
        while self.paused:
            self._stop.wait(poll_s)

    def handle_word(self, word: str) -> None:
        word = word.strip().lower()
        if word == "stop":
            self.request_stop()
        elif word == "pause":
            self.pause()
        elif word == "resume":
            self.resume()

    def listen_to_stdin(self, stream: TextIO | None = None) -> threading.Thread:
        """Read control words on a daemon thread; end of input changes nothing."""
        source = stream or sys.stdin

        def reader() -> None:
            for line in source:
                self.handle_word(line)

        thread = threading.Thread(target=reader, name="control-stdin", daemon=True)
        thread.start()
        return thread

    def watch_file(self, path: Path, since_ns: int, poll_s: float = 0.3) -> threading.Thread:
        """Apply the word in ``path`` whenever it changes (the run folder's control file).

        A word written before ``since_ns`` (the run's start, ``run_started_ns``) is an earlier session's
        and is ignored: a run stopped from the window and resumed later found the old
        ``stop`` still in the file and stopped again after one step, unless the file happened to be
        deleted before the watcher's first look (the resume flow that waited 180 s in some runs)."""

        def watcher() -> None:
            seen: int | None = None
            while not self._stop.is_set():
                try:
                    changed: int | None = path.stat().st_mtime_ns
                except OSError:
                    changed = None
                if changed is not None and changed != seen and changed >= since_ns:
                    seen = changed
                    try:
                        word = path.read_text(encoding="utf-8").strip()
                    except OSError:
                        word = ""
                    self.handle_word("resume" if word == "run" else word)
                self._stop.wait(poll_s)

        thread = threading.Thread(target=watcher, name="control-file", daemon=True)
        thread.start()
        return thread

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM ask for a stop; a second SIGINT exits at once."""

        def on_signal(signum: int, _frame: object) -> None:
            if signum == signal.SIGINT and self.stop_requested:
                raise KeyboardInterrupt
            self.request_stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)


def run_started_ns(default_ns: int) -> int:
    """When this run started, in the clock file times use: the window sets it just before it spawns the
    run and the launcher of ``--num-processes`` passes its own to every worker (so all ranks agree on
    what is stale); otherwise ``default_ns``. File times lag the clock by up to a tick, so the mark is set
    a little earlier; an earlier session's words are seconds older."""
    inherited = os.environ.get(STARTED_ENV, "")
    started = int(inherited) if inherited.isdigit() else default_ns
    return started - 100_000_000
