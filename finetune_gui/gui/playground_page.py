"""The Playground: one prompt, answered side by side by the base and by the tuned model (an adapter or
a weighted stack), streamed token by token from a generation process that keeps the base loaded."""

from __future__ import annotations

import json

from PySide6.QtCore import QProcess
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.processes import self_command
from finetune_gui.gui.widgets import error_label, muted, show_error, title_label


class PlaygroundPage(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.base_model = ""
        self.adapters: list[tuple[str, float]] = []
        self.process: QProcess | None = None
        self.ready = False
        self.pending: list[dict] = []
        self.buffer = b""
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        layout.addWidget(title_label("Playground"))
        self.what = muted("Open an adapter from the Adapters page to compare it with its base model.")
        layout.addWidget(self.what)
        panes = QHBoxLayout()
        self.panes: dict[str, QPlainTextEdit] = {}
        for key, label in (("base", "Base"), ("tuned", "Tuned")):
            box = QGroupBox(label)
            inner = QVBoxLayout(box)
            pane = QPlainTextEdit()
            pane.setReadOnly(True)
            inner.addWidget(pane)
            self.panes[key] = pane
            panes.addWidget(box)
        layout.addLayout(panes, 1)
        settings = QGroupBox("Generation")
        form = QFormLayout(settings)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(0.0)
        self.temperature.setToolTip("0 picks the most likely token every time (repeatable answers).")
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(0.95)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 4096)
        self.max_tokens.setValue(128)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top-p", self.top_p)
        form.addRow("Max new tokens", self.max_tokens)
        row = QHBoxLayout()
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("Ask both models the same question…")
        self.prompt.returnPressed.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        row.addWidget(self.prompt, 1)
        row.addWidget(self.stop_button)
        row.addWidget(self.send_button)
        bottom = QHBoxLayout()
        left = QVBoxLayout()
        left.addLayout(row)
        self.status = QLabel()
        left.addWidget(self.status)
        self.error = error_label()
        left.addWidget(self.error)
        bottom.addLayout(left, 3)
        bottom.addWidget(settings, 1)
        layout.addLayout(bottom)
        self._update_buttons()

    def open(self, base_model: str, adapters: list[tuple[str, float]]) -> None:
        """Compare ``adapters`` (one, or a weighted stack) with ``base_model``; the base loads once."""
        names = " + ".join(f"{w:g}×{p}" for p, w in adapters) if adapters else "no adapter"
        self.what.setText(f"Base: {base_model}\nTuned: {names}")
        self.adapters = adapters
        if base_model != self.base_model or self.process is None:
            self._start(base_model)

    def _start(self, base_model: str) -> None:
        self.shutdown()
        self.base_model = base_model
        self.ready = False
        self.process = QProcess(self)
        self.process.readyReadStandardOutput.connect(self._on_output)
        self.process.finished.connect(self._on_finished)
        program, *arguments = self_command("generate-server", "--model", base_model)
        self.process.start(program, arguments)
        self.status.setText("Loading the base model…")
        self._update_buttons()

    def send(self) -> None:
        text = self.prompt.text().strip()
        if not text or self.process is None:
            return
        show_error(self.error, "")
        for key, pane in self.panes.items():
            pane.appendPlainText(f"You: {text}\n")
            common = {
                "prompt": text,
                "max_new_tokens": self.max_tokens.value(),
                "temperature": self.temperature.value(),
                "top_p": self.top_p.value(),
                "id": key,
            }
            self.pending.append(
                {**common, "adapters": [] if key == "base" else [list(a) for a in self.adapters]}
            )
        self.prompt.clear()
        self._flush()

    def _flush(self) -> None:
        if self.ready and self.process is not None:
            while self.pending:
                command = self.pending.pop(0)
                self.process.write((json.dumps(command) + "\n").encode("utf-8"))
            self.status.setText("Generating…")
            self._update_buttons(busy=True)

    def stop(self) -> None:
        if self.process is not None:
            self.pending.clear()
            self.process.write(b'{"stop": true}\n')

    def _on_output(self) -> None:
        assert self.process is not None
        self.buffer += bytes(self.process.readAllStandardOutput().data())
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = event.get("event")
            if kind == "ready":
                self.ready = True
                self.status.setText("Ready.")
                self._flush()
            elif kind == "token":
                pane = self.panes[event["id"]]
                pane.moveCursor(pane.textCursor().MoveOperation.End)
                pane.insertPlainText(event["text"])
            elif kind == "done":
                self.panes[event["id"]].appendPlainText("\n")
                if event["id"] == "tuned":
                    self.status.setText("Stopped." if event.get("stopped") else "Done.")
                    self._update_buttons()
            elif kind == "error":
                show_error(self.error, event.get("message", "Generation failed."))
                self._update_buttons()

    def _on_finished(self, code: int, _status) -> None:
        if code != 0 and self.process is not None:
            err = (
                bytes(self.process.readAllStandardError().data())
                .decode("utf-8", "replace")
                .strip()
                .splitlines()
            )
            show_error(
                self.error,
                (err[-1] if err else "The generation process ended.").removeprefix("finetune-gui: "),
            )
        self.ready = False
        self._update_buttons()

    def _update_buttons(self, busy: bool = False) -> None:
        self.send_button.setEnabled(self.process is not None and not busy)
        self.stop_button.setEnabled(busy)

    def shutdown(self) -> None:
        if self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.kill()
            self.process.waitForFinished(3000)
        self.process = None
