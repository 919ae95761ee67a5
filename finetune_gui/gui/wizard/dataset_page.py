"""Step 3: the dataset: a drop zone, a file dialog or the demo dataset; then the facts, the problems by
line, a formatted sample with the trained part highlighted, and a token-length histogram.

The scan runs ``finetune-gui data inspect PATH --model M --json`` in a child process.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.config import MIN_HELD_OUT, field_help
from finetune_gui.core.data.formats import FORMATS, MAPPED_FIELDS, PREFERENCE_FORMATS
from finetune_gui.core.data.inspect import DatasetReport, TokenStats
from finetune_gui.core.data.readers import SUFFIXES
from finetune_gui.gui.core_client import CoreJob
from finetune_gui.gui.theme import ACCENT, translucent
from finetune_gui.gui.widgets import AMBER, GREEN, RED, BusyRow, DropZone, error_label, muted, show_error
from finetune_gui.gui.wizard.page import WizardPage


class DatasetPage(WizardPage):
    title = "Add your dataset"

    def __init__(self, state, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.job: CoreJob | None = None
        self.drop = DropZone("Drop a dataset file or folder here\n" + " · ".join(SUFFIXES))
        self.drop.dropped.connect(self.load)
        self.body.addWidget(self.drop)
        buttons = QHBoxLayout()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        demo = QPushButton("Use the demo dataset")
        demo.clicked.connect(self._use_demo)
        buttons.addWidget(browse)
        buttons.addWidget(demo)
        buttons.addStretch(1)
        buttons.addWidget(QLabel("Validation split"))
        self.split = QDoubleSpinBox()
        self.split.setRange(0.0, 0.5)
        self.split.setSingleStep(0.05)
        self.split.setValue(state.config.dataset.validation_split)
        self.split.setToolTip(field_help("dataset.validation_split"))
        self.split.valueChanged.connect(self._on_split)
        buttons.addWidget(self.split)
        self.body.addLayout(buttons)
        self.busy = BusyRow()
        self.busy.cancel_requested.connect(self._cancel)
        self.body.addWidget(self.busy)
        self.error = error_label()
        self.body.addWidget(self.error)
        self.facts = QLabel()
        self.facts.setWordWrap(True)
        self.body.addWidget(self.facts)
        self.mapping = ColumnMapping()
        self.mapping.changed.connect(self._on_mapping)
        self.mapping.hide()
        self.body.addWidget(self.mapping)
        self.split_view = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(
            muted("One example exactly as the model sees it; the highlighted part carries the loss.")
        )
        self.preview = QTextEdit()
        self.preview.setReadOnly(True)
        left_layout.addWidget(self.preview)
        self.problems = QTableWidget(0, 2)
        self.problems.setHorizontalHeaderLabels(["Where", "Problem"])
        self.problems.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.problems.verticalHeader().hide()
        self.problems.setMaximumHeight(150)
        self.problems.hide()
        left_layout.addWidget(self.problems)
        self.split_view.addWidget(left)
        self.histogram_box = QWidget()
        self.histogram_layout = QVBoxLayout(self.histogram_box)
        self.histogram_layout.setContentsMargins(0, 0, 0, 0)
        self.truncation = muted("")
        self.histogram_layout.addWidget(self.truncation)
        self.plot = None
        self.split_view.addWidget(self.histogram_box)
        self.split_view.setStretchFactor(0, 3)
        self.split_view.setStretchFactor(1, 2)
        self.split_view.setSizes([600, 420])
        self.split_view.hide()
        self.body.addWidget(self.split_view, 100)
        # Without a preview (a refused file) the rows above stay together at the top.
        self.body.addStretch(1)
        # Token lengths depend on the model's tokenizer: a new model means a new scan.
        state.model_changed.connect(self._rescan)

    def _rescan(self) -> None:
        if self.state.config.dataset.path and self.state.dataset_report is not None:
            self.load(self.state.config.dataset.path)

    def is_complete(self) -> bool:
        report = self.state.dataset_report
        return bool(report and report.usable)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a dataset",
            "",
            f"Datasets ({' '.join('*' + s for s in SUFFIXES)});;All files (*)",
        )
        if path:
            self.load(path)

    def _use_demo(self) -> None:
        from finetune_gui.core.paths import resources_dir

        self.load(str(resources_dir() / "demo-dataset.jsonl"))

    def _on_split(self, value: float) -> None:
        self.state.set_field("dataset.validation_split", round(value, 3))

    def load(self, path: str, fmt: str = "auto", columns: dict[str, str] | None = None) -> None:
        """Scan ``path``: as detected (a new file), or with the format and columns chosen on the page."""
        self._cancel()
        show_error(self.error, "")
        if path != self.state.config.dataset.path:
            self.mapping.hide()
        self.state.set_dataset(path, None)
        self.completeness_changed.emit()
        args = [
            "data",
            "inspect",
            path,
            "--json",
            "--max-seq-len",
            str(self.state.config.training.max_seq_len),
            "--format",
            fmt,
        ]
        if columns:
            args += ["--columns", ",".join(f"{k}={v}" for k, v in columns.items())]
        if self.state.config.model:
            args += ["--model", self.state.config.model]
        self.busy.start(f"Scanning {path}…")
        self.job = CoreJob(args, self)
        self.job.succeeded.connect(lambda report: self._on_report(path, report))
        self.job.failed.connect(self._on_failed)
        self.job.start()

    def _cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.job = None
        self.busy.stop()

    def _on_failed(self, message: str) -> None:
        self.busy.stop()
        self.job = None
        show_error(self.error, message)
        self.split_view.hide()
        self.facts.setText("")
        from finetune_gui.core.data.scan import columns_of

        columns = columns_of(self.state.config.dataset.path)  # a mapping may make the file usable
        if columns:
            self.mapping.show_for(columns, self.mapping.format(), self.mapping.chosen())
        self.completeness_changed.emit()

    def _on_mapping(self) -> None:
        self.load(self.state.config.dataset.path, self.mapping.format(), self.mapping.chosen())

    def _on_report(self, path: str, data: dict) -> None:
        self.busy.stop()
        self.job = None
        report = DatasetReport.from_dict(data)
        self.state.set_dataset(path, report)
        skipped = report.problem_count
        per_file = report.file_formats or {}
        shown = (
            ", ".join(f"{fmt} ({html.escape(name)})" for name, fmt in per_file.items())
            if per_file
            else report.format
        )
        text = f"<b>{shown}</b> · {report.rows:,} rows"
        if skipped:
            kinds = ", ".join(f"{n} {k}" for k, n in report.problem_kinds.items())
            text += f" · {skipped:,} skipped ({kinds}); they are listed below and training uses the rest"
        if report.skipped_sentence:
            text += f'<br><span style="color:{AMBER}">⚠ {html.escape(report.skipped_sentence)}</span>'
        if report.columns_sentence:
            text += "<br>" + html.escape(report.columns_sentence)
        if report.format in PREFERENCE_FORMATS:
            name = self.state.config.training.objective.upper()
            text += (
                f"<br>Preference pairs: the run learns which answer you prefer, with {name}; "
                "the next page also offers ORPO, which needs no reference model."
                if name == "DPO"
                else f"<br>Preference pairs: the run learns which answer you prefer, with {name}."
            )
        held = _held_out(report.rows, self.state.config.dataset.validation_split)
        text += f"<br>{held} rows are held out to check what the run learned"
        text += (
            "."
            if held >= MIN_HELD_OUT
            else f"; a verdict on new questions needs {MIN_HELD_OUT} (raise the split)."
        )
        self.facts.setText(text)
        if report.columns and report.format in MAPPED_FIELDS:
            self.mapping.show_for(report.columns, report.format, report.columns_used)
        self._show_problems(report.problems)
        self._show_preview(report)
        self._show_histogram(report.token_stats, report.format in PREFERENCE_FORMATS)
        self.split_view.show()
        self.completeness_changed.emit()

    def _show_problems(self, problems: list[dict]) -> None:
        self.problems.setRowCount(len(problems))
        for row, problem in enumerate(problems):
            where = f"line {problem['line']}" if "line" in problem else f"row {problem.get('row')}"
            self.problems.setItem(row, 0, QTableWidgetItem(where))
            self.problems.setItem(row, 1, QTableWidgetItem(problem["message"]))
        self.problems.setVisible(bool(problems))

    def _show_preview(self, report: DatasetReport) -> None:
        pieces = report.formatted_sample
        if not pieces:
            self.preview.setPlainText(str(report.sample or {}))
            return
        parts = []
        sides = {"chosen": GREEN, "rejected": RED}
        for piece in pieces:
            text = html.escape(piece["text"]).replace("\n", "↵<br>")
            if piece.get("label"):
                parts.append(f'<br><b style="color:{RED}">{html.escape(piece["text"].strip())}</b><br>')
            elif piece.get("side") in sides:
                colour = sides[piece["side"]]
                parts.append(
                    f'<span style="background:{translucent(colour, 0.2)}; border-bottom: 2px solid {colour}">'
                    f"{text}</span>"
                )
            elif piece["trained"]:
                parts.append(
                    f'<span style="background:{translucent(ACCENT, 0.2)}; border-bottom: 2px solid {ACCENT}">'
                    f"{text}</span>"
                )
            else:
                parts.append(f'<span style="color:#777">{text}</span>')
        self.preview.setHtml(f'<div style="font-family:monospace">{"".join(parts)}</div>')

    def _show_histogram(self, stats: TokenStats | None, pairs: bool = False) -> None:
        if not stats or not stats.count:
            self.truncation.setText("Token lengths appear once a model is chosen.")
            return
        from finetune_gui.gui.charts import histogram_plot

        if self.plot is None:
            self.plot = histogram_plot()
            self.histogram_layout.addWidget(self.plot, 1)
        self.plot.set_histogram(stats.histogram["edges"], stats.histogram["counts"], stats.max_seq_len)
        what = "Tokens per pair (the prompt with its longer answer)" if pairs else "Tokens per example"
        self.truncation.setText(
            f"{what}: median {stats.median:.0f}, 95% under {stats.p95:.0f}, longest {stats.max}. "
            f"{stats.truncated} rows ({stats.truncated_pct}%) will be truncated at {stats.max_seq_len}."
        )


NONE = "—"


def _held_out(rows: int, split: float) -> int:
    from finetune_gui.core.config import split_counts

    return split_counts(int(rows or 0), split)[1]


PICKERS = {"preference": 3}  # fields given a picker (the first ones of MAPPED_FIELDS); others: 2


class ColumnMapping(QWidget):
    """The format and which column fills each of its fields; ``changed`` when the user picks another."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Format"))
        self.format_box = QComboBox()
        self.format_box.addItems(list(FORMATS))
        self.format_box.setToolTip(field_help("dataset.format"))
        row.addWidget(self.format_box)
        self.labels: list[QLabel] = []
        self.pickers: list[QComboBox] = []
        for _ in range(3):
            label = QLabel()
            picker = QComboBox()
            picker.setToolTip(field_help("dataset.columns"))
            row.addWidget(label)
            row.addWidget(picker)
            self.labels.append(label)
            self.pickers.append(picker)
            picker.activated.connect(lambda _i: self.changed.emit())
        row.addStretch(1)
        self.format_box.activated.connect(self._on_format)
        self.columns: list[str] = []

    def show_for(self, columns: list[str], fmt: str, mapping: dict[str, str]) -> None:
        self.columns = list(columns)
        self.format_box.setCurrentText(fmt if fmt in MAPPED_FIELDS else "alpaca")
        self._fill(mapping)
        self.show()

    def format(self) -> str:
        return self.format_box.currentText()

    def chosen(self) -> dict[str, str]:
        """{field: column} for the fields given a column other than the field's own name."""
        fields = MAPPED_FIELDS.get(self.format(), ())
        mapping = {}
        for field, picker in zip(fields, self.pickers, strict=False):
            column = picker.currentText()
            if not picker.isHidden() and column not in ("", NONE) and column != field:
                mapping[field] = column
        return mapping

    def _fill(self, mapping: dict[str, str]) -> None:
        fields = MAPPED_FIELDS.get(self.format(), ())
        for index, (label, picker) in enumerate(zip(self.labels, self.pickers, strict=True)):
            visible = index < min(PICKERS.get(self.format(), 2), len(fields))
            label.setVisible(visible)
            picker.setVisible(visible)
            if not visible:
                continue
            field = fields[index]
            label.setText(f"{field.replace('_', ' ').capitalize()} column")
            picker.clear()
            picker.addItems([NONE, *self.columns])
            wanted = mapping.get(field) or (field if field in self.columns else NONE)
            picker.setCurrentText(wanted)

    def _on_format(self, _index: int) -> None:
        self._fill({})
        self.changed.emit()
