"""Step 2: the model: the demo model, recent ones, the Hugging Face cache, a folder or .gguf, a hub id.

Inspection runs ``finetune-gui estimate MODEL --json`` in a child process: it returns the model's
facts and its shape, from which the method page estimates memory live.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.models import is_hub_id
from finetune_gui.gui.core_client import CoreJob
from finetune_gui.gui.settings import app_settings
from finetune_gui.gui.widgets import BusyRow, Card, error_label, human_count, show_error, title_label
from finetune_gui.gui.wizard.page import WizardPage
from finetune_gui.gui.wizard.state import WizardState

DEMO = "__demo__"
RECENT_KEY = "recent/models"


class ModelPage(WizardPage):
    title = "Choose a model"

    def __init__(self, state: WizardState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.job: CoreJob | None = None
        self.demo_path: str | None = None
        self._fetched: set[str] = set()  # hub ids downloaded (or found in the cache) this session
        row = QHBoxLayout()
        left = QVBoxLayout()
        self.list = QListWidget()
        self.list.setMinimumWidth(320)
        self.list.itemActivated.connect(self._on_item)
        self.list.itemClicked.connect(self._on_item)
        left.addWidget(self.list, 1)
        buttons = QHBoxLayout()
        open_folder = QPushButton("Open folder…")
        open_folder.clicked.connect(self._browse_folder)
        open_gguf = QPushButton("Open .gguf…")
        open_gguf.clicked.connect(self._browse_gguf)
        buttons.addWidget(open_folder)
        buttons.addWidget(open_gguf)
        left.addLayout(buttons)
        hub = QHBoxLayout()
        self.hub = QLineEdit()
        self.hub.setPlaceholderText("Hub id, e.g. HuggingFaceTB/SmolLM2-360M-Instruct")
        self.hub.returnPressed.connect(self._use_hub_id)
        use = QPushButton("Use")
        use.clicked.connect(self._use_hub_id)
        hub.addWidget(self.hub, 1)
        hub.addWidget(use)
        left.addLayout(hub)
        row.addLayout(left, 2)
        self.facts = Card()
        self.facts_title = title_label("No model selected", 1.15)
        self.facts_title.setWordWrap(True)
        self.facts.layout_.addWidget(self.facts_title)
        self.form = QFormLayout()
        self.fact_labels = {}
        for key in ("Parameters", "Architecture", "Context length", "Chat template", "Folder"):
            label = QLabel("–")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fact_labels[key] = label
            self.form.addRow(key, label)
        self.facts.layout_.addLayout(self.form)
        self.facts.layout_.addStretch(1)
        row.addWidget(self.facts, 3)
        self.body.addLayout(row, 1)
        self.busy = BusyRow()
        self.busy.cancel_requested.connect(self._cancel)
        self.body.addWidget(self.busy)
        self.error = error_label()
        self.body.addWidget(self.error)
        self._fill_list()

    # -- the list
    def _fill_list(self) -> None:
        self.list.clear()
        item = QListWidgetItem("Demo model · SmolLM2-135M-Instruct (bundled)")
        item.setData(Qt.ItemDataRole.UserRole, DEMO)
        self.list.addItem(item)
        for path in recent_models():
            item = QListWidgetItem(f"Recent · {_display_name(path)}")
            item.setToolTip(path)
            item.setData(Qt.ItemDataRole.UserRole, path)
            self.list.addItem(item)
        self._cache_job: CoreJob | None = None  # listed when the page is first shown

    def _on_cache(self, data: dict) -> None:
        for entry in data.get("models", []):
            item = QListWidgetItem(f"Hugging Face cache · {entry['id']}")
            item.setData(Qt.ItemDataRole.UserRole, entry["id"])
            self.list.addItem(item)

    def _on_item(self, item: QListWidgetItem) -> None:
        self.choose(item.data(Qt.ItemDataRole.UserRole))

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (with config.json)")
        if folder:
            self.choose(folder)

    def _browse_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", "", "GGUF models (*.gguf)")
        if path:
            self.choose(path)

    def _use_hub_id(self) -> None:
        text = self.hub.text().strip()
        if text:
            self.choose(text)

    # -- choosing
    def is_complete(self) -> bool:
        return bool(self.state.config.model) and self.state.shape is not None

    def enter(self) -> None:
        if self._cache_job is None:
            self._cache_job = CoreJob(["hf-cache", "--json"], self)
            self._cache_job.succeeded.connect(self._on_cache)
            self._cache_job.start()
        if not self.state.config.model and self.job is None and self.state.device == "cpu":
            self.list.setCurrentRow(0)
            self.choose(DEMO)  # preselected on a machine without a GPU

    def choose(self, spec: str) -> None:
        self._cancel()
        show_error(self.error, "")
        if spec == DEMO:
            if self.demo_path:
                spec = self.demo_path
            else:
                self.busy.start("Preparing the demo model (once, about a minute)…")
                self.job = CoreJob(["demo-model", "--json"], self)
                self.job.succeeded.connect(lambda d: self._on_demo_ready(d["path"]))
                self.job.failed.connect(self._on_failed)
                self.job.start()
                return
        if is_hub_id(spec) and not self._downloaded(spec):
            self.busy.start(f"Downloading {spec}…")
            self.job = CoreJob(["download", spec, "--json"], self)
            self.job.progressed.connect(
                lambda f, what: self.busy.set_progress(f, f"Downloading {spec}: {f:.0%}")
            )
            self.job.succeeded.connect(lambda _d: self._on_downloaded(spec))
            self.job.failed.connect(self._on_failed)
            self.job.start()
            return
        self.busy.start(f"Reading {spec}…")
        budget = self.state.budget_gib()
        args = ["estimate", spec, "--json"]
        if budget:
            args += ["--vram-gib", f"{budget:.3f}"]
        self.job = CoreJob(args, self)
        self.job.succeeded.connect(lambda data: self._on_inspected(spec, data))
        self.job.failed.connect(self._on_failed)
        self.job.start()

    def _downloaded(self, spec: str) -> bool:
        return spec in self._fetched

    def _on_downloaded(self, spec: str) -> None:
        self._fetched.add(spec)
        self.job = None
        self.choose(spec)

    def _on_demo_ready(self, path: str) -> None:
        self.demo_path = path
        self.job = None
        self.choose(path)

    def _on_inspected(self, spec: str, data: dict) -> None:
        self.busy.stop()
        self.job = None
        facts = data.get("model") or {}
        self.facts_title.setText(_display_name(facts.get("source") or spec))
        self.facts_title.setToolTip(spec)
        self.fact_labels["Parameters"].setText(human_count(facts.get("parameters", 0)))
        self.fact_labels["Architecture"].setText(
            f"{facts.get('architecture', '?')} ({facts.get('model_type', '?')})"
        )
        context = facts.get("context_length")
        self.fact_labels["Context length"].setText(f"{context:,} tokens" if context else "unknown")
        self.fact_labels["Chat template"].setText(
            "✓ yes"
            if facts.get("has_chat_template")
            else "✗ no: a plain '### User / ### Assistant' layout is used"
        )
        self.fact_labels["Folder"].setText(spec)
        remember_model(spec)
        self.state.set_model(spec, data)
        self.completeness_changed.emit()

    def _on_failed(self, message: str) -> None:
        self.busy.stop()
        self.job = None
        show_error(self.error, message)
        self.completeness_changed.emit()

    def _cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.job = None
        self.busy.stop()


def _display_name(spec: str) -> str:
    """A model's name for the title: the folder's or file's name, or the hub id."""
    from pathlib import Path

    path = Path(spec)
    return path.name if path.exists() else spec


def recent_models() -> list[str]:
    value = app_settings().value(RECENT_KEY, [])
    return [str(v) for v in (value if isinstance(value, list) else [value]) if v]


def remember_model(spec: str) -> None:
    items = [spec] + [m for m in recent_models() if m != spec]
    app_settings().setValue(RECENT_KEY, items[:8])
