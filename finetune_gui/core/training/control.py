"""Cooperative control of a training run: stop and pause requests, checked between steps.

Requests come from SIGINT/SIGTERM, from words on stdin (``pause``, ``resume``, ``stop``), or from the run
folder's ``control`` file (``pause``, ``run``, ``stop``), which lets a window that did not start the run
(it reattached after a restart) pause and stop it too. A stop always lets the current step finish, so
the run ends with a saved, loadable state.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TextIO


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

    def watch_file(self, path: Path, poll_s: float = 0.3) -> threading.Thread:
        """Apply the word in ``path`` whenever it changes (the run folder's control file)."""

        def watcher() -> None:
            seen: float | None = None
            while not self._stop.is_set():
                try:
                    changed = path.stat().st_mtime_ns
                except OSError:
                    changed = None
                if changed is not None and changed != seen:
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
