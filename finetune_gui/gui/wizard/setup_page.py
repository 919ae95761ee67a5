"""The Setup section: the six wizard pages in order, with the step on top and Back / Next below."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from finetune_gui.gui.widgets import title_label
from finetune_gui.gui.wizard.dataset_page import DatasetPage
from finetune_gui.gui.wizard.hardware_page import HardwarePage
from finetune_gui.gui.wizard.method_page import MethodPage
from finetune_gui.gui.wizard.model_page import ModelPage
from finetune_gui.gui.wizard.page import WizardPage
from finetune_gui.gui.wizard.review_page import ReviewPage
from finetune_gui.gui.wizard.settings_page import SettingsPage
from finetune_gui.gui.wizard.state import WizardState


class SetupPage(QWidget):
    def __init__(self, state: WizardState, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        head = QHBoxLayout()
        self.title = title_label("")
        head.addWidget(self.title)
        head.addStretch(1)
        self.step = QLabel()
        head.addWidget(self.step)
        layout.addLayout(head)
        self.hardware = HardwarePage(state)
        self.model = ModelPage(state)
        self.dataset = DatasetPage(state)
        self.method = MethodPage(state)
        self.settings = SettingsPage(state)
        self.review = ReviewPage(state)
        self.pages: list[WizardPage] = [
            self.hardware,
            self.model,
            self.dataset,
            self.method,
            self.settings,
            self.review,
        ]
        self.stack = QStackedWidget()
        for page in self.pages:
            self.stack.addWidget(page)
            page.completeness_changed.connect(self._update_buttons)
        layout.addWidget(self.stack, 1)
        nav = QHBoxLayout()
        nav.addStretch(1)
        self.back = QPushButton("Back")
        self.back.clicked.connect(lambda: self.go(self.index - 1))
        self.next = QPushButton("Next ▸")
        self.next.setObjectName("primary")
        self.next.setDefault(True)
        self.next.clicked.connect(lambda: self.go(self.index + 1))
        nav.addWidget(self.back)
        nav.addWidget(self.next)
        layout.addLayout(nav)
        self.index = 0
        self.go(0)

    @property
    def current(self) -> WizardPage:
        return self.pages[self.index]

    def go(self, index: int) -> None:
        if not 0 <= index < len(self.pages):
            return
        self.index = index
        self.stack.setCurrentIndex(index)
        page = self.pages[index]
        self.title.setText(page.title)
        dots = "".join("●" if i <= index else "○" for i in range(len(self.pages)))
        self.step.setText(f"step {index + 1} of {len(self.pages)}  {dots}")
        page.enter()
        self._update_buttons()

    def show_page(self, page: WizardPage) -> None:
        self.go(self.pages.index(page))

    def _update_buttons(self) -> None:
        self.back.setEnabled(self.index > 0)
        last = self.index == len(self.pages) - 1
        self.next.setVisible(not last)
        self.next.setEnabled(self.current.is_complete())
