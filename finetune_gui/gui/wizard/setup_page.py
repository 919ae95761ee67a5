"""The Setup section: the six wizard pages in order, with the step on top and Back / Next below.

Each page (and its module) is built the first time it is shown or asked for: the window then shows in
the time the first step takes to build, not all six (the dataset and settings pages and YAML are a
quarter of the start-up otherwise). A page built later reads the wizard state as it is then.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from finetune_gui.gui.widgets import replace_placeholder, title_label
from finetune_gui.gui.wizard.page import WizardPage
from finetune_gui.gui.wizard.state import WizardState

if TYPE_CHECKING:
    from finetune_gui.gui.wizard.dataset_page import DatasetPage
    from finetune_gui.gui.wizard.hardware_page import HardwarePage
    from finetune_gui.gui.wizard.method_page import MethodPage
    from finetune_gui.gui.wizard.model_page import ModelPage
    from finetune_gui.gui.wizard.review_page import ReviewPage
    from finetune_gui.gui.wizard.settings_page import SettingsPage

# (attribute, module, class) in the wizard's order
PAGES = (
    ("hardware", "hardware_page", "HardwarePage"),
    ("model", "model_page", "ModelPage"),
    ("dataset", "dataset_page", "DatasetPage"),
    ("method", "method_page", "MethodPage"),
    ("settings", "settings_page", "SettingsPage"),
    ("review", "review_page", "ReviewPage"),
)


class SetupPage(QWidget):
    start_requested = Signal(object)  # the Review page's RunConfig

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
        self._built: dict[int, WizardPage] = {}
        self.stack = QStackedWidget()
        for _ in PAGES:
            self.stack.addWidget(QWidget())  # placeholders until each page is built
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

    # -- the pages, built on first use
    def page_at(self, index: int) -> WizardPage:
        page = self._built.get(index)
        if page is None:
            _name, module, cls = PAGES[index]
            page = getattr(importlib.import_module(f"finetune_gui.gui.wizard.{module}"), cls)(self.state)
            self._built[index] = page
            replace_placeholder(self.stack, index, page)
            page.completeness_changed.connect(self._update_buttons)
            start = getattr(page, "start_requested", None)
            if start is not None:
                start.connect(self.start_requested)
        return page

    def _named(self, name: str) -> WizardPage:
        return self.page_at(next(i for i, (attribute, _m, _c) in enumerate(PAGES) if attribute == name))

    @property
    def pages(self) -> list[WizardPage]:
        return [self.page_at(i) for i in range(len(PAGES))]

    @property
    def hardware(self) -> HardwarePage:
        return cast("HardwarePage", self._named("hardware"))

    @property
    def model(self) -> ModelPage:
        return cast("ModelPage", self._named("model"))

    @property
    def dataset(self) -> DatasetPage:
        return cast("DatasetPage", self._named("dataset"))

    @property
    def method(self) -> MethodPage:
        return cast("MethodPage", self._named("method"))

    @property
    def settings(self) -> SettingsPage:
        return cast("SettingsPage", self._named("settings"))

    @property
    def review(self) -> ReviewPage:
        return cast("ReviewPage", self._named("review"))

    @property
    def current(self) -> WizardPage:
        return self.page_at(self.index)

    def go(self, index: int) -> None:
        if not 0 <= index < len(PAGES):
            return
        self.index = index
        page = self.page_at(index)
        self.stack.setCurrentIndex(index)
        self.title.setText(page.title)
        dots = "".join("●" if i <= index else "○" for i in range(len(PAGES)))
        self.step.setText(f"step {index + 1} of {len(PAGES)}  {dots}")
        page.enter()
        self._update_buttons()

    def show_page(self, page: WizardPage) -> None:
        self.go(next(i for i, built in self._built.items() if built is page))

    def _update_buttons(self) -> None:
        self.back.setEnabled(self.index > 0)
        last = self.index == len(PAGES) - 1
        self.next.setVisible(not last)
        self.next.setEnabled(self.current.is_complete())
