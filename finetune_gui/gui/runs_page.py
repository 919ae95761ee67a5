"""The Runs page: every run in the runs folder; open one's charts, or overlay two runs' loss curves."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.events import Forgetting, Learned
from finetune_gui.core.paths import runs_dir
from finetune_gui.core.runs import ListedRun, RunFolder, list_runs
from finetune_gui.gui.widgets import (
    empty_state,
    fill_table,
    muted,
    quality_loss,
    selected_items,
    title_label,
    verdict_mark,
)

COLUMNS = ["Run", "Status", "Method", "Model", "Loss", "Learned", "Forgot", "Time", "Started"]
HINT = "Select two runs (Ctrl-click) to overlay their loss curves and compare their verdicts."
OVERLAY_COLOURS = ["#3d7be0", "#e07b39", "#2e9d5b", "#b54ad6"]


def learned_text(learning: Learned | None) -> str:
    """'✓ 11 of 12 (base 0)' for the Runs table: held-out answers that match their reference, marked
    with the verdict; with too few held-out rows, what it absorbed from its training questions."""
    if learning is None:
        return "–"
    icon, _ = verdict_mark(learning.verdict)
    prefix = f"{icon} " if icon else ""
    if learning.min_held_out and learning.questions < learning.min_held_out:
        if not learning.trained_questions:
            return f"{prefix}too few held-out rows"
        return (
            f"{prefix}training {learning.trained_tuned_right} of {learning.trained_questions} "
            f"(base {learning.trained_base_right}); too few held-out"
        )
    if not learning.questions:
        return "–"
    return f"{prefix}{learning.tuned_right} of {learning.questions} (base {learning.base_right})"


def forgot_text(forgetting: Forgetting | None) -> str:
    """'✓ 1.04×' for the Runs table: the general text's perplexity, tuned over base, marked."""
    if forgetting is None:
        return "–"
    icon, _ = verdict_mark(forgetting.verdict)
    return f"{icon} {forgetting.ratio:.2f}×".strip()


class RunsPage(QWidget):
    open_requested = Signal(str)  # a run folder to show on the Training page
    resume_requested = Signal(str)
    go_to = Signal(str)  # a section of the window

    def __init__(self, root: str | Path | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.root = Path(root) if root else runs_dir()
        self.runs: list[dict] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        head = QHBoxLayout()
        head.addWidget(title_label("Runs"))
        head.addStretch(1)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.open_button = QPushButton("Open charts")
        self.open_button.clicked.connect(self._open)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self._resume)
        for button in (refresh, self.resume_button, self.open_button):
            head.addWidget(button)
        layout.addLayout(head)
        self.empty = empty_state(
            "No runs yet. Start one from Setup.", "Go to Setup", lambda: self.go_to.emit("Setup")
        )
        layout.addWidget(self.empty)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeaderItem(COLUMNS.index("Learned")).setToolTip(
            "Held-out questions answered right after training, and by the base model before it"
        )
        self.table.horizontalHeaderItem(COLUMNS.index("Forgot")).setToolTip(
            "A general text's perplexity after training over the base model's: near 1× kept its general "
            "ability, 1.5× and more lost it"
        )
        self.table.horizontalHeaderItem(COLUMNS.index("Loss")).setToolTip(
            "The evaluation loss, or the smoothed training loss when there is no validation set"
        )
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.doubleClicked.connect(lambda _i: self._open())
        layout.addWidget(self.table, 2)
        self.hint = muted(HINT)
        layout.addWidget(self.hint)
        self.overlay = None
        self.overlay_box = QVBoxLayout()
        layout.addLayout(self.overlay_box, 3)
        self.refresh()

    def refresh(self) -> None:
        self.runs = list_runs(self.root)
        table_rows = []
        for run in self.runs:
            record = run.record
            loss = quality_loss(record.metrics)
            values = [
                run.name,
                run.state,
                record.method,
                Path(record.model).name,
                f"{loss:.3f}" if loss is not None else "–",
                learned_text(record.learning),
                forgot_text(record.forgetting),
                f"{record.duration_s / 60:.1f} min" if record.duration_s else "–",
                (record.started_at or "")[:16].replace("T", " "),
            ]
            table_rows.append(values)
        fill_table(self.table, table_rows, self.empty)
        self._on_selection()

    def selected(self) -> list[ListedRun]:
        return selected_items(self.table, self.runs)

    def _on_selection(self) -> None:
        chosen = self.selected()
        self.open_button.setEnabled(len(chosen) == 1)
        self.resume_button.setEnabled(
            len(chosen) == 1 and chosen[0].state in ("interrupted", "stopped", "failed")
        )
        if len(chosen) >= 2:
            self.show_overlay(chosen[:4])
        else:
            self.hint.setText(HINT)

    def show_overlay(self, runs: list[ListedRun]) -> None:
        from finetune_gui.gui.charts import LiveChart

        if self.overlay is None:
            self.overlay = LiveChart("Training loss", "loss")
            self.overlay_box.addWidget(self.overlay)
        self.overlay.clear()
        self.overlay.series = {}
        # Both verdicts of each run beside the curves: what it learned, what it forgot.
        self.hint.setText(
            " · ".join(
                f"{run.name}: learned {learned_text(run.record.learning)}, "
                f"forgot {forgot_text(run.record.forgetting)}"
                for run in runs
            )
        )
        for colour, run in zip(OVERLAY_COLOURS, runs, strict=False):
            records = [r for r in RunFolder(run.path).metrics() if "loss" in r]
            series = self.overlay.add_series(run.name, colour)
            series.set([r["step"] for r in records], [r["loss"] for r in records])
        self.overlay.redraw()

    def _open(self) -> None:
        chosen = self.selected()
        if len(chosen) == 1:
            self.open_requested.emit(str(chosen[0].path))

    def _resume(self) -> None:
        chosen = self.selected()
        if len(chosen) == 1:
            self.resume_requested.emit(str(chosen[0].path))
