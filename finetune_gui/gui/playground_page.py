"""The Playground: one prompt, answered side by side by the base and by the tuned model (an adapter from
the library, or a weighted stack opened from the Adapters page), streamed token by token from a
generation process that keeps the base loaded while adapters switch. Each answer is labelled with what
gave it, the panes' questions stay level, each pane's last answer can be copied, and the base's answer to a
question it already answered greedily is shown again rather than generated again."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextDocumentLayout,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.adapters.generate_protocol import (
    AnswerRequest,
    Done,
    GenerateError,
    Ready,
    StopRequest,
    Token,
    parse_reply,
)
from finetune_gui.gui.child import ChildProcess
from finetune_gui.gui.widgets import error_label, muted, show_error, title_label

ENDINGS = {"length": "[cut: it reached the token limit]", "stopped": "[stopped]"}


def adapter_name(path: str) -> str:
    """A short name for an adapter folder: the run's name for <run>/adapter."""
    folder = Path(path)
    return folder.parent.name if folder.name == "adapter" else folder.name


def stack_label(adapters: list[tuple[str, float]]) -> str:
    if len(adapters) == 1 and adapters[0][1] == 1.0:
        return adapter_name(adapters[0][0])
    return " + ".join(f"{w:g} × {adapter_name(p)}" for p, w in adapters)


class PlaygroundPage(QWidget):
    go_to = Signal(str)  # a section of the window ("Adapters")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.base_model = ""
        self.adapters: list[tuple[str, float]] = []
        self.child: ChildProcess | None = None
        self.ready = False
        self.pending: list[AnswerRequest] = []
        self.answering: set[str] = set()  # ids of answers asked for and not done
        self.stopped = False
        self.answers: dict[str, str] = {}  # each pane's answer so far (the one being written, or the last)
        self.rates: dict[str, float] = {}  # each pane's last answer's tokens/s
        # The base's greedy answers by (question, system prompt, token limit): asking it again gives the
        # same words, so they are shown again instead of generated again.
        self.base_answers: dict[tuple[str, str, int], tuple[str, str]] = {}  # → (answer, how it ended)
        self.asked: tuple[str, str, int] | None = None  # the base's question being answered, when greedy
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        head = QHBoxLayout()
        head.addWidget(title_label("Playground"))
        head.addStretch(1)
        head.addWidget(QLabel("Tuned with"))
        self.picker = QComboBox()
        self.picker.setMinimumWidth(260)
        self.picker.setToolTip("The adapter the Tuned pane answers with; the base stays loaded.")
        self.picker.activated.connect(self._on_pick)
        head.addWidget(self.picker)
        layout.addLayout(head)
        self.what = muted("")
        layout.addWidget(self.what)
        self.empty = QWidget()
        empty_row = QHBoxLayout(self.empty)
        empty_row.addWidget(
            muted("No adapter yet: train one from Setup, or import one on the Adapters page.")
        )
        to_adapters = QPushButton("Go to Adapters")
        to_adapters.clicked.connect(lambda: self.go_to.emit("Adapters"))
        empty_row.addWidget(to_adapters)
        empty_row.addStretch(1)
        layout.addWidget(self.empty)
        panes = QHBoxLayout()
        self.panes: dict[str, QPlainTextEdit] = {}
        self.boxes: dict[str, QGroupBox] = {}
        self.copy_buttons: dict[str, QPushButton] = {}
        for key, label in (("base", "Base"), ("tuned", "Tuned")):
            box = QGroupBox(label)
            inner = QVBoxLayout(box)
            pane = QPlainTextEdit()
            pane.setReadOnly(True)
            inner.addWidget(pane)
            copy = QPushButton("Copy answer")
            copy.setToolTip(f"Copy the {label.lower()} model's last answer.")
            copy.clicked.connect(lambda _c=False, k=key: self.copy_answer(k))
            copy_row = QHBoxLayout()
            copy_row.addStretch(1)
            copy_row.addWidget(copy)
            inner.addLayout(copy_row)
            self.copy_buttons[key] = copy
            self.panes[key] = pane
            self.boxes[key] = box
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
        self.system = QLineEdit()
        self.system.setPlaceholderText("the model's own default")
        self.system.setToolTip(
            "The system prompt both models answer under. It starts as the one the adapter's run trained "
            "with (a model tuned under one system prompt answers differently under another); edit it freely."
        )
        form.addRow("System prompt", self.system)
        row = QHBoxLayout()
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("Ask both models the same question…")
        self.prompt.returnPressed.connect(self.send)
        self.prompt.textChanged.connect(lambda _t: self._update_buttons())
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("primary")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Empty both panes.")
        self.clear_button.clicked.connect(self.clear)
        row.addWidget(self.prompt, 1)
        row.addWidget(self.clear_button)
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
        self.library: list[dict] = []
        self.refresh()
        self._update_buttons()  # nothing loaded yet: no Send, no Stop

    # -- what is compared
    def refresh(self) -> None:
        """The picker lists the library's adapters (those of the loaded base first)."""
        from finetune_gui.core.adapters.library import AdapterLibrary

        self.library = AdapterLibrary().entries()
        self.picker.blockSignals(True)
        self.picker.clear()
        for entry in self.library:
            base = Path(str(entry.get("base_model", ""))).name
            self.picker.addItem(f"{entry['name']}  ({entry.get('kind', '?')} on {base})", entry["path"])
        if self.adapters and len(self.adapters) > 1:
            self.picker.addItem(f"stack: {stack_label(self.adapters)}", "")
            self.picker.setCurrentIndex(self.picker.count() - 1)
        elif self.adapters:
            self.picker.setCurrentIndex(max(0, self.picker.findData(self.adapters[0][0])))
        else:
            self.picker.setCurrentIndex(-1)
        self.picker.blockSignals(False)
        self.empty.setVisible(not self.library and not self.adapters)
        self._describe()

    def _on_pick(self, index: int) -> None:
        path = self.picker.itemData(index)
        entry = next((e for e in self.library if e["path"] == path), None)
        if entry is not None:
            self.open(str(entry.get("base_model") or self.base_model), [(entry["path"], 1.0)])

    def open(self, base_model: str, adapters: list[tuple[str, float]]) -> None:
        """Compare ``adapters`` (one, or a weighted stack) with ``base_model``; the base loads once. The
        system prompt becomes the one the adapters' run trained with (empty: the model's default)."""
        from finetune_gui.core.adapters.own_data import trained_system_prompt

        self.adapters = list(adapters)
        self.system.setText(trained_system_prompt(self.adapters) or "")
        if base_model != self.base_model or self.child is None:
            self._start(base_model)
        self.refresh()

    def _describe(self) -> None:
        base = Path(self.base_model).name if self.base_model else "–"
        tuned = stack_label(self.adapters) if self.adapters else "–"
        self.boxes["base"].setTitle(f"Base · {base}")
        self.boxes["tuned"].setTitle(f"Tuned · {tuned}")
        self.what.setText(
            f"Both answer the same question: the base model {base}, and the same model with {tuned}."
            if self.adapters
            else "Pick an adapter above, or open one from the Adapters page, to compare it with its base."
        )

    def _start(self, base_model: str) -> None:
        self.shutdown()
        self.base_model = base_model
        self.ready = False
        self.child = ChildProcess(["generate-server", "--model", base_model], self, stdin=True)
        child = self.child
        child.line_received.connect(lambda event: child is self.child and self._on_line(event))
        child.ended.connect(lambda code, sentence: self._on_ended(child, code, sentence))
        child.start()
        self.status.setText(f"Loading {Path(base_model).name}…")
        self._update_buttons()

    # -- asking
    def send(self) -> None:
        text = self.prompt.text().strip()
        if not text or self.child is None or not self.adapters or self.answering:
            return
        show_error(self.error, "")
        self.stopped = False
        self.rates.clear()
        system = self.system.text().strip() or None
        greedy = self.temperature.value() == 0
        self.asked = (text, system or "", self.max_tokens.value()) if greedy else None
        labels = {"base": Path(self.base_model).name, "tuned": stack_label(self.adapters)}
        for key, pane in self.panes.items():
            pane.appendPlainText(f"You: {text}\n[{labels[key]}]")
            self.answers[key] = ""
            if key == "base" and self.asked in self.base_answers:
                self.answers[key], end = self.base_answers[self.asked]
                ending = f" {ENDINGS[end]}" if end in ENDINGS else ""
                pane.appendPlainText(f"{self.answers[key]}{ending} [the same answer as before]\n")
                continue
            self.pending.append(
                AnswerRequest(
                    prompt=text,
                    id=key,
                    adapters=[] if key == "base" else list(self.adapters),
                    max_new_tokens=self.max_tokens.value(),
                    temperature=self.temperature.value(),
                    top_p=self.top_p.value(),
                    system=system,
                )
            )
            self.answering.add(key)
        self.prompt.clear()
        self._flush()

    def clear(self) -> None:
        """Empty both panes (an answer being written goes on in an empty pane)."""
        for pane in self.panes.values():
            pane.clear()

    def copy_answer(self, key: str) -> None:
        from PySide6.QtGui import QGuiApplication

        if self.answers.get(key):
            QGuiApplication.clipboard().setText(self.answers[key])
            self.status.setText(f"Copied the {key} model's answer.")

    def _flush(self) -> None:
        if not self.ready or self.child is None:
            self.status.setText("Waiting for the model to load…")
            self._update_buttons()
            return
        while self.pending:
            self.child.write(self.pending.pop(0).to_dict())
        if self.answering:
            self.status.setText("Generating…")
        self._update_buttons()

    def stop(self) -> None:
        """End both answers: the one being written and the one waiting."""
        if self.child is not None and self.answering:
            self.stopped = True
            self.pending.clear()
            self.child.write(StopRequest().to_dict())
            self.status.setText("Stopping…")

    def _on_line(self, data: dict) -> None:
        reply = parse_reply(data)
        if isinstance(reply, Ready):
            self.ready = True
            self.status.setText("Ready.")
            self._flush()
        elif isinstance(reply, Token) and reply.id in self.panes:
            pane = self.panes[reply.id]
            if not self.answers.get(reply.id):
                pane.appendPlainText("")  # the answer starts on the line under its label
            pane.moveCursor(pane.textCursor().MoveOperation.End)
            pane.insertPlainText(reply.text)
            self.answers[reply.id] = self.answers.get(reply.id, "") + reply.text
        elif isinstance(reply, Done) and reply.id in self.panes:
            key = reply.id
            ending = ENDINGS.get(reply.end, "")
            self.panes[key].appendPlainText((f" {ending}" if ending else "") + "\n")
            self.answering.discard(key)
            if reply.tokens_per_s is not None:
                self.rates[key] = reply.tokens_per_s
            if key == "base" and self.asked is not None and reply.end in ("end", "length"):
                self.base_answers[self.asked] = (self.answers.get(key, ""), reply.end)
            if not self.answering:
                self.status.setText(("Stopped." if self.stopped else "Done.") + self._rates_text())
                # Once the panes are laid out (a scroll bar that just appeared narrows a pane and
                # rewraps its lines).
                QTimer.singleShot(0, self._align)
            self._update_buttons()
        elif isinstance(reply, GenerateError):
            show_error(self.error, reply.message or "Generation failed.")
            self.answering.discard(str(reply.id))
            self._update_buttons()

    def _rates_text(self) -> str:
        names = {"base": "Base", "tuned": "Tuned"}
        rates = [f"{names[k]} {self.rates[k]:.1f} tokens/s" for k in ("base", "tuned") if k in self.rates]
        return f" {' · '.join(rates)}." if rates else ""

    def _align(self) -> None:
        """Pad the pane with fewer lines (as wrapped on screen) so the next question starts level in both."""
        heights = {key: _screen_lines(pane) for key, pane in self.panes.items()}
        tallest = max(heights.values())
        for key, pane in self.panes.items():
            if heights[key] < tallest:
                pane.moveCursor(pane.textCursor().MoveOperation.End)
                pane.insertPlainText("\n" * (tallest - heights[key]))

    def _on_ended(self, child: ChildProcess, code: int, sentence: str) -> None:
        child.deleteLater()
        if child is not self.child:
            return  # one that was shut down to load another base
        if code != 0 and not child.cancelled:
            show_error(self.error, sentence or "The generation process ended.")
        self.ready = False
        self.answering.clear()
        self.child = None
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = bool(self.answering)
        can_ask = self.child is not None and bool(self.adapters)
        self.send_button.setEnabled(can_ask and not busy and bool(self.prompt.text().strip()))
        self.stop_button.setEnabled(busy)
        for key, button in self.copy_buttons.items():
            button.setEnabled(bool(self.answers.get(key)) and key not in self.answering)
        self.prompt.setEnabled(can_ask)

    def shutdown(self) -> None:
        if self.child is not None:
            child, self.child = self.child, None
            child.cancel()
            child.wait(5)
        self.ready = False
        self.answering.clear()
        self.pending.clear()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.stop()
        super().keyPressEvent(event)


def _screen_lines(pane: QPlainTextEdit) -> int:
    """The lines ``pane`` shows, counting a wrapped line as the lines it takes on screen."""
    layout = pane.document().documentLayout()
    block, lines = pane.document().firstBlock(), 0
    while block.isValid():
        if isinstance(layout, QPlainTextDocumentLayout):
            layout.ensureBlockLayout(block)  # blocks out of view are laid out only when scrolled to
        lines += max(1, block.lineCount())
        block = block.next()
    return lines
