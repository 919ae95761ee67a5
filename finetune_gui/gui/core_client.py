"""Run a core command in a child process and get its JSON back as a Qt signal.

The window never imports torch: model inspection, dataset scans with token statistics and hardware
detection run as ``python -m finetune_gui … --json`` in a QProcess. That also keeps their imports
from stalling the event loop, and cancelling is killing the process.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from PySide6.QtCore import QObject, QProcess, Signal

from finetune_gui.core.processes import self_command


class CoreJob(QObject):
    """One command. Signals: ``succeeded(dict)``, ``failed(str)`` (the command's one sentence), ``cancelled()``."""

    succeeded = Signal(dict)
    failed = Signal(str)
    cancelled = Signal()
    progressed = Signal(float, str)  # from {"event": "progress", "fraction", "what"} lines, while it runs

    def __init__(self, args: list[str], parent: QObject | None = None):
        super().__init__(parent)
        self.args = args
        self._cancelled = False
        self.process = QProcess(self)
        self.process.finished.connect(self._on_finished)
        self.process.errorOccurred.connect(self._on_error)
        self.process.readyReadStandardOutput.connect(self._on_output)
        self._out = b""

    def start(self) -> CoreJob:
        program, *arguments = self_command(*self.args)
        self.process.start(program, arguments)
        return self

    def is_running(self) -> bool:
        return self.process.state() != QProcess.ProcessState.NotRunning

    def cancel(self) -> None:
        if self.is_running():
            self._cancelled = True
            self.process.kill()
            self.process.waitForFinished(2000)

    def _on_output(self) -> None:
        self._out += bytes(self.process.readAllStandardOutput().data())
        for line in self._out.splitlines()[-8:]:
            if line.startswith(b'{"event": "progress"'):
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                self.progressed.emit(float(event["fraction"]), str(event.get("what", "")))

    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.failed.emit(f"Could not start {sys.executable}: the Python environment may be broken.")

    def _on_finished(self, exit_code: int, _status: QProcess.ExitStatus) -> None:
        if self._cancelled:
            self.cancelled.emit()
            return
        self._out += bytes(self.process.readAllStandardOutput().data())
        out = self._out.decode("utf-8", "replace")
        err = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        if exit_code != 0:
            self.failed.emit(last_sentence(err) or f"The command stopped with exit code {exit_code}.")
            return
        try:
            data: Any = json.loads(out)
        except ValueError:
            try:  # JSON lines (progress, then the result): the answer is the last line
                data = json.loads(out.strip().splitlines()[-1])
            except (ValueError, IndexError):
                self.failed.emit("The command's answer could not be read. " + last_sentence(err))
                return
        self.succeeded.emit(data if isinstance(data, dict) else {"value": data})


def last_sentence(stderr: str) -> str:
    """The CLI's one-sentence error (``finetune-gui: …``), without the prefix."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("finetune-gui: "):
            return line[len("finetune-gui: ") :]
    return lines[-1] if lines else ""
