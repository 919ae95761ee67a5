"""Step 4: the method: one card per method with its trade-off, trainable parameters and estimated peak
memory against free VRAM; the recommended one preselected with its reason. Sequence length and batch
size re-estimate every card at once (pure arithmetic on the model's shape, no child process)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.config import field_help, in_words
from finetune_gui.core.errors import ConfigError
from finetune_gui.core.methods import METHODS
from finetune_gui.core.objectives import OBJECTIVES
from finetune_gui.gui.widgets import Card, MemoryBar, human_count, muted, title_label
from finetune_gui.gui.wizard.page import WizardPage
from finetune_gui.gui.wizard.state import WizardState


def _modes_tip(est) -> str:
    """What each memory mode would need, for methods that train every weight."""
    if est.lean_gib is None:
        return ""
    from finetune_gui.core.estimate.measured import lean_line

    tip = (
        f"Standard mode (fp32 master weights, AdamW): {est.standard_gib:.1f} GB. Lean mode (bf16 weights with "
        f"stochastic rounding, 8-bit AdamW, each weight updated in the backward pass): {est.lean_gib:.1f} GB, "
        "somewhat slower."
    )
    measured = lean_line()
    return tip + (f" {measured}." if measured else "")


class MethodCard(Card):
    def __init__(self, name: str, on_click, parent: QWidget | None = None):
        super().__init__(parent)
        self.name = name
        self.on_click = on_click
        method = METHODS[name]
        head = QHBoxLayout()
        head.addWidget(title_label(method.label, 1.1))
        head.addStretch(1)
        self.badge = QLabel("Recommended")
        self.badge.setObjectName("badge")
        self.badge.hide()
        head.addWidget(self.badge)
        self.layout_.addLayout(head)
        summary = muted(method.summary)
        summary.setMinimumHeight(34)
        self.layout_.addWidget(summary)
        from finetune_gui.core.estimate.measured import card_line

        self.measured = muted(card_line(name))
        self.measured.setVisible(bool(self.measured.text()))
        self.layout_.addWidget(self.measured)
        self.params = QLabel()
        self.layout_.addWidget(self.params)
        self.bar = MemoryBar()
        self.layout_.addWidget(self.bar)
        self.memory = QLabel()
        self.layout_.addWidget(self.memory)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def mousePressEvent(self, event) -> None:
        self.on_click(self.name)
        super().mousePressEvent(event)


class MethodPage(WizardPage):
    title = "Choose a method"

    def __init__(self, state: WizardState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.user_chose = False
        controls = QHBoxLayout()
        # The second axis: what the chosen method learns from (the dataset decides which are possible).
        controls.addWidget(QLabel("Learns from"))
        self.objective = QComboBox()
        self.objective.setToolTip(field_help("training.objective"))
        self.objective.activated.connect(self._on_objective)
        controls.addWidget(self.objective)
        controls.addSpacing(16)
        controls.addWidget(QLabel("Sequence length"))
        self.seq = QSpinBox()
        self.seq.setRange(32, 131072)
        self.seq.setSingleStep(128)
        self.seq.setValue(state.config.training.max_seq_len)
        self.seq.setToolTip(field_help("training.max_seq_len"))
        controls.addWidget(self.seq)
        controls.addSpacing(16)
        controls.addWidget(QLabel("Batch size"))
        self.batch = QSpinBox()
        self.batch.setRange(1, 512)
        self.batch.setValue(state.config.training.batch_size)
        self.batch.setToolTip(field_help("training.batch_size"))
        controls.addWidget(self.batch)
        controls.addStretch(1)
        self.budget = muted("", wrap=False)
        controls.addWidget(self.budget)
        self.body.addLayout(controls)
        self.objective_note = muted("")
        self.body.addWidget(self.objective_note)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.body.addWidget(self.reason)
        # The cards keep their natural height and scroll when the window is small; they reflow from four
        # columns to two on a narrow window (at 1024 px wide, four columns clipped their text).
        self.grid = QGridLayout()
        self.grid.setSpacing(8)
        self.cards: dict[str, MethodCard] = {}
        for name in METHODS:
            card = MethodCard(name, self.select)
            card.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
            self.cards[name] = card
        self.columns = 0
        self._reflow(4)
        inner = QWidget()
        column = QVBoxLayout(inner)
        column.setContentsMargins(0, 0, 4, 0)
        column.addLayout(self.grid)
        from finetune_gui.core.estimate.measured import source_note

        self.source = muted(source_note())
        column.addWidget(self.source)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(inner)
        self.body.addWidget(scroll, 1)
        self.seq.valueChanged.connect(self._on_controls)
        self.batch.valueChanged.connect(self._on_controls)
        state.estimate_changed.connect(self.refresh)

    def _reflow(self, columns: int) -> None:
        if columns == self.columns:
            return
        self.columns = columns
        for index, card in enumerate(self.cards.values()):
            self.grid.addWidget(card, index // columns, index % columns)

    def resizeEvent(self, event) -> None:
        self._reflow(4 if event.size().width() >= 1000 else 2)
        super().resizeEvent(event)

    def enter(self) -> None:
        # Show the config's values without writing them back half-set (each box's change handler writes
        # both boxes into the config).
        t = self.state.config.training
        for box, value in ((self.seq, t.max_seq_len), (self.batch, t.batch_size)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self._show_objectives()
        self.state.recompute()  # refreshes the cards

    def _show_objectives(self) -> None:
        self.objective.clear()
        for name in self.state.objectives():
            self.objective.addItem(OBJECTIVES[name].label, name)
            self.objective.setItemData(
                self.objective.count() - 1, OBJECTIVES[name].summary, Qt.ItemDataRole.ToolTipRole
            )
        index = self.objective.findData(self.state.config.training.objective)
        self.objective.setCurrentIndex(max(0, index))
        self.objective.setEnabled(self.objective.count() > 1)
        self._note_objective()
        if self.objective.count() == 1 and not OBJECTIVES[self.objective.currentData()].pairs:
            self.objective.setToolTip(
                "Supervised: your rows give one answer each. To tune on preferences, add a dataset of "
                "prompts with a chosen and a rejected answer."
            )
        else:
            self.objective.setToolTip(field_help("training.objective"))

    def _on_objective(self, _index: int) -> None:
        self.state.set_field("training.objective", self.objective.currentData())
        self._note_objective()

    def _note_objective(self) -> None:
        objective = OBJECTIVES[self.state.config.training.objective]
        self.objective_note.setText(
            f"{objective.label}: {objective.summary} Every method trains with it; the memory figures count "
            "both answers of each pair, the measured figures on the cards are of supervised runs."
            if objective.pairs
            else ""
        )
        self.objective_note.setVisible(objective.pairs)

    def _on_controls(self) -> None:
        self.state.set_field("training.max_seq_len", self.seq.value())
        self.state.set_field("training.batch_size", self.batch.value())

    def select(self, name: str) -> None:
        self.user_chose = True
        self._apply(name)

    def _apply(self, name: str) -> None:
        """Select ``name``: in the config (which re-estimates, and refreshes this page) and on the cards."""
        if name != self.state.config.method:
            try:
                self.state.set_field("method", name)
            except ConfigError as exc:  # a setting made for another method (DPO's adapter_off reference)
                self.reason.setText(in_words(str(exc)))
                return
        for key, card in self.cards.items():
            card.set_selected(key == name)
        self.completeness_changed.emit()

    def refresh(self) -> None:
        result = self.state.estimate
        budget = self.state.budget_gib()
        where = "VRAM" if self.state.device == "cuda" else "RAM"
        longest = self.state.longest
        self.budget.setText(
            (
                f"{budget:.1f} GB {where} free"
                if self.state.hardware_known
                else "Detecting this machine's memory…"
            )
            + (f" · longest example: {longest} tokens" if longest is not None else "")
        )
        self.budget.setToolTip(
            "Batches are padded to their longest example, so the data's longest example (cut at the "
            "sequence length) sets the memory needed."
        )
        if result is None:
            self.reason.setText("Choose a model first: the estimates come from its configuration.")
            return
        if self.state.hardware_known:
            scale = max([budget * 1.25] + [min(e.total_gib, budget * 3) for e in result.methods.values()])
        else:
            scale = max(e.total_gib for e in result.methods.values()) * 1.1
        total = (self.state.model_facts or {}).get("parameters") or 1
        for name, card in self.cards.items():
            est = result.methods[name]
            card.bar.set_values(est.total_gib, budget if self.state.hardware_known else None, scale)
            pct = 100.0 * est.trainable_parameters / total
            share = f"{pct:.0f}%" if pct >= 99.5 else f"{pct:.2g}%"
            card.params.setText(f"{human_count(est.trainable_parameters)} trainable ({share})")
            ckpt = " with checkpointing" if est.gradient_checkpointing and est.memory_mode != "lean" else ""
            mode = " in lean mode" if est.memory_mode == "lean" else ""
            fits = (" · fits" if est.fits else " · does not fit") if self.state.hardware_known else ""
            card.memory.setText(
                f"{est.total_gib:.1f} GB{mode}{ckpt}{fits}" + (f" · {est.note}" if est.note else "")
            )
            card.memory.setToolTip(_modes_tip(est))
            card.badge.setVisible(name == result.recommended and self.state.hardware_known)
        if not self.state.hardware_known:
            # Nothing to hold the figures against yet: no verdict, no recommendation.
            self.reason.setText("The recommendation follows once this machine's free memory is known.")
            self._apply(self.state.config.method)
            return
        text = result.reason
        if result.suggestions:
            text += " Try: " + " ".join(result.suggestions)
        if self.state.device == "cpu":
            text += " (No GPU: the estimate is of RAM, and training runs on the CPU.)"
        self.reason.setText(text)
        if not self.user_chose and result.recommended:
            self._apply(result.recommended)
        else:
            self._apply(self.state.config.method)
