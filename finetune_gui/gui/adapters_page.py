"""The Adapters page: the library as a table, details of the selected adapter, and its actions:
open in the playground, stack with weights, merge and export (verified), rename, delete, import."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.adapters.library import AdapterLibrary
from finetune_gui.core.adapters.merge import COMBINATIONS as MERGE_COMBINATIONS
from finetune_gui.core.errors import UserError
from finetune_gui.core.methods import for_kind
from finetune_gui.gui.core_client import CoreJob
from finetune_gui.gui.widgets import (
    BusyRow,
    Card,
    empty_state,
    error_label,
    fill_table,
    muted,
    quality_loss,
    selected_items,
    show_error,
    title_label,
)

COLUMNS = ["Name", "Base model", "Kind", "Rank", "Merges", "Loss", "Date", "Size"]
EXPORTS = [
    ("safetensors folder", ["--format", "safetensors"]),
    ("GGUF f16 + Ollama Modelfile", ["--format", "gguf", "--gguf-type", "f16"]),
    ("GGUF bf16 + Ollama Modelfile", ["--format", "gguf", "--gguf-type", "bf16"]),
    ("GGUF q8_0 + Ollama Modelfile", ["--format", "gguf", "--gguf-type", "q8_0"]),
]
ADAPTER_EXPORT = ("adapter folder (this kind cannot merge)", ["--format", "adapter"])
COMBINATIONS = [(label, name) for name, label in MERGE_COMBINATIONS.items()]


def _merges(entry: dict) -> bool:
    try:
        return for_kind(str(entry.get("kind"))).merges
    except KeyError:
        return False


def _weighted(entry: dict) -> bool:
    try:
        return for_kind(str(entry.get("kind"))).stacks_with_weights
    except KeyError:
        return False


def merge_ability(entry: dict) -> str:
    """What the Merges column says: weighted stacks, whole only, or not at all."""
    if _weighted(entry):
        return "yes, with weights"
    return "yes, alone" if _merges(entry) else "no (use on its base)"


class AdaptersPage(QWidget):
    open_in_playground = Signal(list)  # [base model, [(path, weight)]]
    go_to = Signal(str)  # a section of the window

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.library = AdapterLibrary()
        self.entries: list[dict] = []
        self.job: CoreJob | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        head = QHBoxLayout()
        head.addWidget(title_label("Adapters"))
        head.addStretch(1)
        import_button = QPushButton("Import folder…")
        import_button.clicked.connect(self._import_dialog)
        head.addWidget(import_button)
        layout.addLayout(head)
        self.empty = empty_state(
            "No adapters yet. Every completed run adds its adapter here; or import a PEFT adapter folder.",
            "Go to Setup",
            lambda: self.go_to.emit("Setup"),
        )
        layout.addWidget(self.empty)
        self.notice = muted("")
        layout.addWidget(self.notice)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._on_selection)
        layout.addWidget(self.table, 2)
        self.detail = Card()
        self.detail_title = title_label("", 1.1)
        self.detail.layout_.addWidget(self.detail_title)
        self.detail_text = muted("")
        self.detail_text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.layout_.addWidget(self.detail_text)
        self.weights_box = QVBoxLayout()
        self.detail.layout_.addLayout(self.weights_box)
        self.sliders: dict[str, QSlider] = {}
        actions = QHBoxLayout()
        self.play = QPushButton("Open in playground")
        self.play.clicked.connect(self._open_in_playground)
        self.export_choice = QComboBox()
        self.combination = QComboBox()
        self.combination.addItems([label for label, _ in COMBINATIONS])
        self.combination.setToolTip("How the stacked adapters combine into one model.")
        self.merge = QPushButton("Merge and export…")
        self.merge.setObjectName("primary")
        self.merge.clicked.connect(self._merge_dialog)
        rename = QPushButton("Rename…")
        rename.clicked.connect(self._rename)
        delete = QPushButton("Delete…")
        delete.clicked.connect(self._delete)
        folder = QPushButton("Open folder")
        folder.clicked.connect(self._open_folder)
        for widget in (self.play, rename, delete, folder):
            actions.addWidget(widget)
        actions.addStretch(1)
        actions.addWidget(self.combination)
        actions.addWidget(self.export_choice)
        actions.addWidget(self.merge)
        self.detail.layout_.addLayout(actions)
        self.busy = BusyRow()
        self.busy.cancel_requested.connect(self._cancel)
        self.detail.layout_.addWidget(self.busy)
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.detail.layout_.addWidget(self.result)
        self.error = error_label()
        self.detail.layout_.addWidget(self.error)
        layout.addWidget(self.detail, 1)
        self.setAcceptDrops(True)
        self.refresh()

    # -- the table
    def refresh(self) -> None:
        self.entries = self.library.entries()
        table_rows = []
        for e in self.entries:
            loss = quality_loss(e)
            values = [
                e["name"],
                Path(str(e.get("base_model", ""))).name,
                e.get("kind", ""),
                str(e.get("rank") or "–"),
                merge_ability(e),
                f"{loss:.3f}" if loss is not None else "–",
                (e.get("created") or "")[:16].replace("T", " "),
                f"{e.get('size_bytes', 0) / 2**20:.1f} MB",
            ]
            table_rows.append(values)
        fill_table(self.table, table_rows, self.empty)
        self._on_selection()

    def selected(self) -> list[dict]:
        return selected_items(self.table, self.entries)

    def _on_selection(self) -> None:
        chosen = self.selected()
        self.detail.setVisible(bool(chosen))
        for slider in self.sliders.values():
            slider.parent().deleteLater()
        self.sliders = {}
        show_error(self.error, "")
        self.result.setText("")
        if not chosen:
            return
        if len(chosen) == 1:
            e = chosen[0]
            self.detail_title.setText(e["name"])
            facts = [
                f"{e.get('kind')} · rank {e.get('rank') or '–'} · merges: {merge_ability(e)}",
                f"base model: {Path(str(e.get('base_model', ''))).name or '–'}",
                f"dataset: {Path(str(e.get('dataset') or '–')).name} · steps {e.get('steps', '–')}",
                f"folder: {e['path']}",
            ]
            if not _merges(e):
                facts.append(
                    "This kind changes activations, not weights: it cannot be merged; use it on its base."
                )
            self.detail_text.setText("\n".join(facts))
        elif not all(_weighted(e) for e in chosen):
            alone = [e["name"] for e in chosen if not _weighted(e)]
            self.detail_title.setText(f"{len(chosen)} adapters")
            self.detail_text.setText(
                f"{', '.join(alone)} cannot be stacked with weights: "
                "only LoRA adapters combine as W + Σ wᵢ·ΔWᵢ. Select it alone to merge or export it."
            )
        else:
            self.detail_title.setText(f"A stack of {len(chosen)} adapters")
            self.detail_text.setText("The stack means W + Σ wᵢ·ΔWᵢ: set each adapter's weight.")
            for e in chosen:
                row = QWidget()
                line = QHBoxLayout(row)
                line.setContentsMargins(0, 0, 0, 0)
                line.addWidget(QLabel(e["name"]), 2)
                slider = QSlider(Qt.Orientation.Horizontal)
                slider.setRange(0, 200)
                slider.setValue(100 // len(chosen))
                value = QLabel(f"{slider.value() / 100:.2f}")
                slider.valueChanged.connect(lambda v, label=value: label.setText(f"{v / 100:.2f}"))
                line.addWidget(slider, 3)
                line.addWidget(value)
                self.weights_box.addWidget(row)
                self.sliders[e["path"]] = slider
        mergeable = all(_merges(e) for e in chosen)
        stackable = len(chosen) == 1 or all(_weighted(e) for e in chosen)
        self.exports = EXPORTS if mergeable else [ADAPTER_EXPORT]
        self.export_choice.clear()
        self.export_choice.addItems([label for label, _ in self.exports])
        self.merge.setText("Merge and export…" if mergeable else "Export…")
        self.merge.setEnabled(stackable and (mergeable or len(chosen) == 1))
        self.play.setEnabled(stackable)
        self.combination.setVisible(len(chosen) > 1 and stackable)

    def stack(self) -> list[tuple[str, float]]:
        chosen = self.selected()
        if len(chosen) == 1:
            return [(chosen[0]["path"], 1.0)]
        return [(e["path"], self.sliders[e["path"]].value() / 100) for e in chosen]

    # -- actions
    def _open_in_playground(self) -> None:
        chosen = self.selected()
        if chosen:
            self.open_in_playground.emit([chosen[0].get("base_model", ""), self.stack()])

    def _merge_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose where to write the merged model")
        if folder:
            name = "-".join(
                Path(p).parent.name if Path(p).name == "adapter" else Path(p).name for p, _ in self.stack()
            )
            self.export(str(Path(folder) / f"{name}-merged"))

    def export(self, output: str) -> CoreJob | None:
        """Merge the selected adapter (or stack) and export it; the verification appears below."""
        chosen = self.selected()
        bases = {e.get("base_model") for e in chosen}
        if len(bases) != 1:
            show_error(
                self.error, "These adapters were trained on different base models, so they cannot be stacked."
            )
            return None
        args = ["merge", "--base", str(bases.pop()), "--output", output]
        for path, weight in self.stack():
            args += ["--adapter", f"{path}:{weight:g}"]
        args += self.exports[self.export_choice.currentIndex()][1]
        if len(chosen) > 1:
            args += ["--combination", COMBINATIONS[self.combination.currentIndex()][1]]
        self.busy.start("Merging, exporting and verifying…")
        self.job = CoreJob(args, self)
        self.job.succeeded.connect(self._on_exported)
        self.job.failed.connect(self._on_failed)
        return self.job.start()

    def _on_exported(self, report: dict) -> None:
        self.busy.stop()
        if report.get("format") == "adapter":
            self.result.setText(f"Written to {report['output']}, with a note of its base model.")
            return
        lines = [f"Written to {report['output']}", report["merge"]["message"]]
        if "gguf" in report:
            lines += [
                f"GGUF: {report['gguf']['path']}",
                report["gguf"]["message"],
                f"Ollama: {report['modelfile']}",
            ]
        self.result.setText("\n".join(lines))

    def _on_failed(self, message: str) -> None:
        self.busy.stop()
        show_error(self.error, message)

    def _cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
        self.busy.stop()

    def _rename(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            return
        name, ok = QInputDialog.getText(self, "Rename adapter", "New name", text=chosen[0]["name"])
        if ok and name.strip():
            self.library.rename(chosen[0]["id"], name)
            self.refresh()

    def _delete(self) -> None:
        chosen = self.selected()
        if len(chosen) != 1:
            return
        answer = QMessageBox.question(
            self,
            "Delete adapter",
            f"Remove {chosen[0]['name']} from the library and delete its folder?\n{chosen[0]['path']}",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.library.remove(chosen[0]["id"], delete_files=True)
            self.refresh()

    def _open_folder(self) -> None:
        chosen = self.selected()
        if chosen:
            QDesktopServices.openUrl(QUrl.fromLocalFile(chosen[0]["path"]))

    def _import_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Choose a PEFT adapter folder (with adapter_config.json)"
        )
        if folder:
            self.import_folder(folder)

    def import_folder(self, folder: str) -> bool:
        known = self.library.find_path(folder)
        if known is not None:
            self.refresh()
            self.result.setText("")
            self.parent_status(f"{known['name']} is already in the library; nothing changed.")
            return True
        try:
            entry = self.library.add(folder)
        except UserError as exc:
            QMessageBox.warning(self, "Not an adapter", str(exc))
            return False
        self.refresh()
        self.parent_status(f"Added {entry['name']} to the library.")
        return True

    def parent_status(self, text: str) -> None:
        window = self.window()
        if hasattr(window, "statusBar"):
            window.statusBar().showMessage(text, 10_000)
        self.notice.setText(text)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            self.import_folder(url.toLocalFile())
        event.acceptProposedAction()
