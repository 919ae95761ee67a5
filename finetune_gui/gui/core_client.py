"""Run a core command in a child process and get its JSON answer back as a Qt signal.

The window never imports torch: model inspection, dataset scans with token statistics, hardware
detection, downloads and merges run as ``finetune-gui … --json`` children (``ChildProcess``). That also
keeps their imports from stalling the event loop, and cancelling is killing the process.
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QObject, Signal

from finetune_gui.gui.child import ChildProcess


class CoreJob(QObject):
    """One command. Signals: ``succeeded(dict)``, ``failed(str)`` (the command's one sentence),
    ``cancelled()``, and ``progressed(fraction, what)`` from its progress lines while it runs."""

    succeeded = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()
    progressed = Signal(float, str)

    def __init__(self, args: list[str], parent: QObject | None = None):
        super().__init__(parent)
        self.args = args
        self.child = ChildProcess(args, self, collect=True)
        self.child.line_received.connect(self._on_line)
        self.child.ended.connect(self._on_ended)

    def start(self) -> CoreJob:
        self.child.start()
        return self

    def is_running(self) -> bool:
        return self.child.is_running()

    def cancel(self) -> None:
        self.child.cancel()

    def _on_line(self, data: dict) -> None:
        if data.get("event") == "progress":
            self.progressed.emit(float(data.get("fraction", 0.0)), str(data.get("what", "")))

    def _on_ended(self, code: int, sentence: str) -> None:
        if self.child.cancelled:
            self.cancelled.emit()
            return
        if code != 0:
            self.failed.emit(sentence or f"The command stopped with exit code {code}.")
            return
        text = "\n".join(self.child.stdout_text)
        data: Any
        try:
            data = json.loads(text)
        except ValueError:
            try:  # JSON lines (progress, then the result): the answer is the last line
                data = json.loads(text.strip().splitlines()[-1])
            except (ValueError, IndexError):
                self.failed.emit("The command's answer could not be read. " + sentence)
                return
        self.succeeded.emit(data if isinstance(data, dict) else {"value": data})
