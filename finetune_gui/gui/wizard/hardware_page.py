"""Step 1: what this machine has: GPUs with free/total VRAM, RAM, and what it can run."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QWidget

from finetune_gui.core.hardware import runnable_methods
from finetune_gui.core.methods import METHODS
from finetune_gui.gui.widgets import Card, muted, title_label
from finetune_gui.gui.wizard.page import WizardPage
from finetune_gui.gui.wizard.state import WizardState


class HardwarePage(WizardPage):
    title = "Your hardware"

    def __init__(self, state: WizardState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.cards: list[Card] = []
        self.waiting = muted("Detecting your GPU…")
        self.body.addWidget(self.waiting)
        self.body.addStretch(1)
        state.hardware_changed.connect(self._rebuild)

    def is_complete(self) -> bool:
        return self.state.hardware is not None

    def _rebuild(self) -> None:
        for card in self.cards:
            card.deleteLater()
        self.cards = []
        hw = self.state.hardware
        if hw is None:
            return
        self.waiting.hide()
        insert_at = 1
        for gpu in hw.gpus:
            card = Card()
            card.layout_.addWidget(title_label(gpu.name, 1.15))
            bar = QProgressBar()
            bar.setRange(0, max(1, int(gpu.total_gib * 10)))
            bar.setValue(int((gpu.total_gib - gpu.free_gib) * 10))
            bar.setFormat(f"{gpu.free_gib:.1f} of {gpu.total_gib:.1f} GB free")
            card.layout_.addWidget(bar)
            bits = "yes" if hw.bitsandbytes else "no"
            card.layout_.addWidget(
                QLabel(f"bf16: {'yes' if gpu.bf16 else 'no'} · 4-bit (QLoRA): {bits} · {gpu.backend.upper()}")
            )
            self.cards.append(card)
        if not hw.gpus:
            card = Card()
            card.layout_.addWidget(title_label("No GPU found", 1.15))
            card.layout_.addWidget(
                muted(
                    "Training runs on the CPU: fine for the demo model, slow for anything larger. "
                    "The demo model is selected for you on the next page."
                )
            )
            self.cards.append(card)
        ram = Card()
        ram.layout_.addWidget(title_label("Memory", 1.15))
        ram.layout_.addWidget(
            QLabel(
                f"{hw.ram_available_gib:.1f} of {hw.ram_total_gib:.1f} GB RAM available · {hw.cpu_count} CPU cores"
            )
        )
        ram.layout_.addWidget(muted(hw.bitsandbytes_note))
        runnable = [METHODS[name].label for name, ok in runnable_methods(hw).items() if ok]
        ram.layout_.addWidget(muted("Methods that run here: " + ", ".join(runnable)))
        self.cards.append(ram)
        for offset, card in enumerate(self.cards):
            self.body.insertWidget(insert_at + offset, card)
        self.completeness_changed.emit()
