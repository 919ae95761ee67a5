"""The Adapters page: the library as a table, details of the selected adapter, and its actions:
open in the playground, stack with weights, merge and export (verified), rename, delete, import."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSlider,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.adapters.export_report import ExportReport
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


def format_export(name: str) -> tuple[str, list[str]]:
    """An export format's choice as the page offers it: its label and the merge command's flags."""
    from finetune_gui.core.adapters.exporter import EXPORT_FORMATS

    return EXPORT_FORMATS[name].label, ["--format", name]


def gguf_exports(options: dict | None) -> list[tuple[str, list[str]]]:
    """One choice per GGUF type this machine can write, with its size and measured quality loss for this
    model once known (``gguf-options``), the recommended one marked."""
    from finetune_gui.core.adapters.exporter import EXPORT_FORMATS
    from finetune_gui.core.adapters.gguf_check import kept_words
    from finetune_gui.core.adapters.gguf_types import GGUF_TYPES, available

    found = []
    measured = (options or {}).get("types") or {}
    for name in GGUF_TYPES:
        if not available(name) or name == "f32":
            continue
        label = EXPORT_FORMATS["gguf"].label.replace("GGUF", f"GGUF {name}", 1)
        entry = measured.get(name)
        if entry:
            # Sizes are estimated from the tensors; quality is measured on this fine-tune when the report
            # was made with its adapters (on the base otherwise, and then said so).
            label += f" · ~{megabytes(entry['size_bytes'])} · perplexity ×{entry['perplexity_ratio']:.2f}"
            if "kept" in entry:
                label += f" · {kept_words(entry['kept'])}"
            elif not options.get("fine_tune"):
                label += " (the base's)"
            if name == options.get("recommended"):
                label += " · recommended"
        elif options is None:
            label += " · measuring…"
        found.append((label, ["--format", "gguf", "--gguf-type", name]))
    return found


def megabytes(size: int) -> str:
    """'86 MB', or '0.3 MB' for what is smaller than 10 MB (a tiny model's export is not 0 MB)."""
    value = size / 2**20
    return f"{value:,.1f} MB" if value < 10 else f"{value:,.0f} MB"


def export_name(entries: list[dict], stack: list[tuple[str, float]]) -> str:
    """'style' for one adapter, 'style-0.7+facts-0.3' for a weighted stack."""
    names = {e["path"]: e["name"] for e in entries}
    if len(stack) == 1:
        return names.get(stack[0][0], Path(stack[0][0]).name)
    return "+".join(f"{names.get(p, Path(p).name)}-{w:g}" for p, w in stack)


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
        self.detail.layout_.addLayout(actions)
        export_row = QHBoxLayout()
        export_row.addWidget(QLabel("Export as"))
        export_row.addWidget(self.export_choice, 2)
        export_row.addWidget(self.combination)
        export_row.addWidget(QLabel("named"))
        self.export_name = QLineEdit()
        self.export_name.setToolTip("The export's folder, the GGUF's name, and the name Ollama knows it by.")
        export_row.addWidget(self.export_name, 1)
        export_row.addWidget(self.merge)
        self.detail.layout_.addLayout(export_row)
        # What else the export writes, said before it does (a GGUF export keeps the merged model too).
        self.export_note = muted("")
        self.export_note.hide()
        self.detail.layout_.addWidget(self.export_note)
        self.export_choice.currentIndexChanged.connect(self._on_export_choice)
        self.options: dict[tuple, dict] = {}  # (base, stack) → its gguf-options report
        self.options_pending = False
        self.proposed_name = ""
        # Sliders move in many small steps: the figures are measured once the weights rest.
        self.measure_later = QTimer(self)
        self.measure_later.setSingleShot(True)
        self.measure_later.setInterval(600)
        self.measure_later.timeout.connect(self._measure_gguf_options)
        self.options_job: CoreJob | None = None
        self.busy = BusyRow()
        self.busy.cancel_requested.connect(self._cancel)
        self.detail.layout_.addWidget(self.busy)
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.layout_.addWidget(self.result)
        after = QHBoxLayout()
        self.copy_ollama = QPushButton("Copy the ollama command")
        self.copy_ollama.clicked.connect(self._copy_ollama)
        self.open_export = QPushButton("Open export folder")
        self.open_export.clicked.connect(self._open_export)
        after.addWidget(self.copy_ollama)
        after.addWidget(self.open_export)
        after.addStretch(1)
        self.detail.layout_.addLayout(after)
        self.exported: ExportReport | None = None  # the last export's report
        self.mergeable = True
        self._show_export_actions()
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
        self.exported = None
        self._show_export_actions()
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
                slider.valueChanged.connect(self._on_weights)
                line.addWidget(slider, 3)
                line.addWidget(value)
                self.weights_box.addWidget(row)
                self.sliders[e["path"]] = slider
        mergeable = all(_merges(e) for e in chosen)
        stackable = len(chosen) == 1 or all(_weighted(e) for e in chosen)
        self.mergeable = mergeable
        self._fill_exports()
        if mergeable and stackable:
            self.measure_later.start()  # once the selection and its weights rest
        self.proposed_name = export_name(self.entries, self.stack()) if stackable else ""
        self.export_name.setText(self.proposed_name)
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

    def _options_key(self) -> tuple:
        chosen = self.selected()
        base = str(chosen[0].get("base_model", "")) if chosen else ""
        return (base, tuple(self.stack()) if chosen else ())

    def _on_weights(self, _value: int) -> None:
        """New weights: a new proposed name (unless the user typed their own), and each type's figures
        measured again for this stack."""
        if self.export_name.text() == self.proposed_name:
            self.proposed_name = export_name(self.entries, self.stack())
            self.export_name.setText(self.proposed_name)
        self._fill_exports()
        self.measure_later.start()

    def closeEvent(self, event) -> None:
        """A measurement still running is no longer wanted."""
        self.measure_later.stop()
        self.options_pending = False
        if self.options_job is not None and self.options_job.is_running():
            self.options_job.cancel()
        super().closeEvent(event)

    def _fill_exports(self) -> None:
        options = self.options.get(self._options_key())
        if self.mergeable:
            self.exports = [format_export("safetensors"), *gguf_exports(options)]
        else:
            self.exports = [format_export("adapter")]
        previous = self.export_choice.currentText().split(" ·")[0]
        self.export_choice.clear()
        self.export_choice.addItems([label for label, _ in self.exports])
        for index, (label, _args) in enumerate(self.exports):
            if previous and label.split(" ·")[0] == previous:
                self.export_choice.setCurrentIndex(index)
        self._on_export_choice(self.export_choice.currentIndex())

    def _on_export_choice(self, index: int) -> None:
        args = self.exports[index][1] if 0 <= index < len(self.exports) else []
        note = ""
        if "gguf" in args:
            f16 = ((self.options.get(self._options_key()) or {}).get("types") or {}).get("f16")
            size = f" (about {megabytes(f16['size_bytes'])})" if f16 else ""
            note = (
                f"The folder also keeps the merged model as safetensors in model/{size}: the GGUF is made "
                "from it, and transformers loads it. Delete model/ after the export if you need only the GGUF."
            )
        self.export_note.setText(note)
        self.export_note.setVisible(bool(note))

    def _measure_gguf_options(self) -> None:
        """Each GGUF type's size, quality loss and share of the fine-tune kept, for this base and stack,
        measured once per stack in a child process (a stack asked for while one is measured waits)."""
        key = self._options_key()
        base, stack = key
        if not base or key in self.options:
            return
        if self.options_job is not None and self.options_job.is_running():
            self.options_pending = True
            return
        self.options_pending = False
        args = ["gguf-options", base, "--json"]
        for path, weight in stack:
            args += ["--adapter", f"{path}:{weight:g}"]
        self.options_job = CoreJob(args, self)
        self.options_job.succeeded.connect(lambda report: self._on_options(key, report))
        self.options_job.failed.connect(lambda _message: self._on_options(key, {"types": {}}))
        self.options_job.start()

    def _on_options(self, key: tuple, report: dict) -> None:
        self.options[key] = report
        if self.selected():
            self._fill_exports()
        if self.options_pending:
            self._measure_gguf_options()

    def _merge_dialog(self) -> None:
        name = self.export_name.text().strip().replace("/", "-")
        if not name:
            show_error(self.error, "Give the export a name.")
            return
        folder = QFileDialog.getExistingDirectory(self, f"Choose where to write {name}")
        if not folder:
            return
        output = Path(folder) / name
        overwrite = False
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            answer = QMessageBox.question(
                self,
                "Replace the earlier export?",
                f"{output} already holds files. Replace the folder whole with this export? "
                "(Nothing of the old one is kept, so the two never mix.)",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
            overwrite = True
        self.export(str(output), overwrite=overwrite)

    def export(self, output: str, overwrite: bool = False) -> CoreJob | None:
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
        if overwrite:
            args.append("--overwrite")
        self.exported = None
        self.result.setText("")  # the earlier export's message must not read as this one's
        show_error(self.error, "")
        self._show_export_actions()
        self.busy.start("Merging, exporting and verifying…")
        self.job = CoreJob(args, self)
        self.job.succeeded.connect(self._on_exported)
        self.job.failed.connect(self._on_failed)
        return self.job.start()

    def _on_exported(self, data: dict) -> None:
        self.busy.stop()
        report = self.exported = ExportReport.from_dict(data)
        folder = Path(report.folder)
        if report.merge is None:
            self.result.setText(f"Written to {folder.name}, with a model card naming its base model.")
            self._show_export_actions()
            return
        lines = [f"Written to {folder.name}, with a model card (README.md)."]
        lines += [message + "." for message in report.messages]
        if report.gguf is not None:
            lines += [f"Note: {note}" for note in report.gguf.notes]
        if report.ollama:
            lines.append(f"Run it in Ollama from that folder: {report.ollama}")
        self.result.setText("\n".join(lines))
        self._show_export_actions()

    def _show_export_actions(self) -> None:
        self.copy_ollama.setVisible(self.exported is not None and self.exported.ollama is not None)
        self.open_export.setVisible(self.exported is not None)

    def _copy_ollama(self) -> None:
        from PySide6.QtGui import QGuiApplication

        assert self.exported is not None and self.exported.ollama is not None
        QGuiApplication.clipboard().setText(f"cd {self.exported.folder} && {self.exported.ollama}")
        self.parent_status("Copied: paste it into a terminal to add the model to Ollama.")

    def _open_export(self) -> None:
        if self.exported is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self.exported.folder))

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
        """Remove from the library (the default, nothing deleted), or delete the files too: at once for a
        run's adapter in the app's data folder, only after typing the folder's name for anything else."""
        from finetune_gui.core.adapters.library import made_by_app

        chosen = self.selected()
        if len(chosen) != 1:
            return
        entry, folder = chosen[0], Path(chosen[0]["path"])
        ours = made_by_app(folder)
        box = QMessageBox(self)
        box.setWindowTitle("Remove adapter")
        box.setText(
            f"Remove {entry['name']} from the library? Its folder stays where it is:\n{folder}"
            if not ours
            else f"Remove {entry['name']} from the library, or delete its folder too?\n{folder}"
        )
        remove = box.addButton("Remove from the library", QMessageBox.ButtonRole.AcceptRole)
        delete = box.addButton(
            "Delete its folder too" if ours else "Delete its folder too…",
            QMessageBox.ButtonRole.DestructiveRole,
        )
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(remove)
        self.delete_dialog = box
        box.exec()
        clicked = box.clickedButton()
        if clicked is remove:
            self.library.remove(entry["id"])
        elif clicked is delete:
            typed = None
            if not ours:
                typed, ok = QInputDialog.getText(
                    self,
                    "Delete a folder you made",
                    f"{folder} is not in this app's data folder. Type its name ({folder.name}) to delete it "
                    "with everything in it.",
                )
                if not ok or typed != folder.name:
                    show_error(self.error, f"Nothing was deleted: the name typed was not {folder.name}.")
                    return
            self.library.remove(entry["id"], delete_files=True, typed_name=typed)
        else:
            return
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
