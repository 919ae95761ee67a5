"""The base of every wizard page: a title, a completeness signal, and enter/leave hooks."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from finetune_gui.gui.wizard.state import WizardState


class WizardPage(QWidget):
    title = ""
    completeness_changed = Signal()

    def __init__(self, state: WizardState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(0, 8, 0, 0)
        self.body.setSpacing(8)

    def is_complete(self) -> bool:
        return True

    def enter(self) -> None:
        """Called when the page is shown."""
