"""Step 6: the summary, estimated memory and time, the YAML and the equivalent CLI command, and Start."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QWidget,
)

from finetune_gui.core.config import RunConfig
from finetune_gui.core.data.inspect import DatasetReport
from finetune_gui.core.estimate import measured_seconds_per_step, seconds_per_step
from finetune_gui.core.paths import runs_dir
from finetune_gui.core.runs import RunFolder, RunRecord, list_runs
from finetune_gui.gui.widgets import Card, error_label, human_duration, show_error, title_label
from finetune_gui.gui.wizard.page import WizardPage
from finetune_gui.gui.wizard.state import WizardState


def annotated_yaml(config, proposal) -> str:
    """The config as it will be saved; each field it leaves empty says what the run will propose."""
    text = config.to_yaml()
    if proposal is None:
        return text
    lines = text.splitlines()
    section = ""
    for index, line in enumerate(lines):
        if line and not line.startswith(" "):
            section = line.split(":", 1)[0]
        key = f"{section}.{line.strip().split(':', 1)[0]}"
        if line.startswith(" ") and line.rstrip().endswith(": null") and key in proposal.values:
            value = proposal.values[key]
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            lines[index] = f"{line}  # proposed: {shown}, {proposal.reasons.get(key, '')}"
    return "\n".join(lines) + "\n"


class ReviewPage(WizardPage):
    title = "Review and start"
    start_requested = Signal(object)  # the RunConfig

    def __init__(self, state: WizardState, parent: QWidget | None = None):
        super().__init__(state, parent)
        self.past_runs: list[RunRecord] = []  # earlier runs' run.json (their step times), read on each visit
        card = Card()
        card.layout_.addWidget(title_label("Summary", 1.1))
        self.form = QFormLayout()
        self.rows: dict[str, QLabel] = {}
        for key in ("Model", "Dataset", "Method", "Steps", "Memory", "Time"):
            label = QLabel()
            label.setWordWrap(True)
            self.rows[key] = label
            self.form.addRow(key, label)
        card.layout_.addLayout(self.form)
        self.body.addWidget(card)
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Run name"))
        self.name = QLineEdit()
        self.name.editingFinished.connect(self._on_name)
        name_row.addWidget(self.name, 1)
        self.body.addLayout(name_row)
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.yaml = QPlainTextEdit()
        self.yaml.setReadOnly(True)
        self.yaml.setFont(mono)
        self.body.addWidget(self.yaml, 1)
        self.command = QLineEdit()
        self.command.setReadOnly(True)
        self.command.setFont(mono)
        self.body.addWidget(self.command)
        buttons = QHBoxLayout()
        copy_yaml = QPushButton("Copy YAML")
        copy_yaml.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.yaml.toPlainText()))
        copy_cmd = QPushButton("Copy command")
        copy_cmd.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.command.text()))
        save = QPushButton("Save YAML…")
        save.clicked.connect(self._save)
        buttons.addWidget(copy_yaml)
        buttons.addWidget(copy_cmd)
        buttons.addWidget(save)
        buttons.addStretch(1)
        self.start = QPushButton("Start training")
        self.start.setObjectName("primary")
        self.start.setMinimumHeight(40)
        self.start.clicked.connect(self._start)
        buttons.addWidget(self.start)
        self.body.addLayout(buttons)
        self.error = error_label()
        self.body.addWidget(self.error)

    def enter(self) -> None:
        config = self.state.config
        if not config.output_dir or config.output_dir == "runs/my-run" or Path(config.output_dir).exists():
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.state.set_field("output_dir", str(runs_dir() / f"{config.method}-{stamp}"))
        self.name.setText(Path(config.output_dir).name)
        self.past_runs = [run.record for run in list_runs(runs_dir())]  # their step times, once per visit
        self.refresh()

    def _on_name(self) -> None:
        name = self.name.text().strip().replace("/", "-")
        if name:
            self.state.set_field("output_dir", str(Path(self.state.config.output_dir).with_name(name)))
            self.refresh()

    def refresh(self) -> None:
        config = self.state.config
        report = self.state.dataset_report
        self.rows["Model"].setText(Path(config.model).name or config.model)
        self.rows["Model"].setToolTip(config.model)
        self.rows["Dataset"].setText(
            f"{Path(config.dataset.path).name} ({report.format if report else '?'}, "
            f"{report.rows if report else 0:,} rows)"
        )
        self.rows["Dataset"].setToolTip(config.dataset.path)
        resolved = self.state.resolved()
        proposal = self.state.proposal()
        proposed = proposal.values if proposal else {}

        def mark(key: str) -> str:
            return " (proposed)" if key in proposed else ""

        self.rows["Method"].setText(
            f"{self.state.method_label()} · learning rate {resolved.resolved_learning_rate():g}"
            + mark("training.learning_rate")
        )
        t = resolved.training
        steps = t.max_steps or 0
        self.rows["Steps"].setText(
            f"{steps:,} steps of batch {t.batch_size}{mark('training.max_steps')}"
            if steps
            else f"{t.epochs} epochs"
        )
        est = self.state.estimate.methods.get(config.method) if self.state.estimate else None
        where = "VRAM" if self.state.device == "cuda" else "RAM"
        if est is not None and not self.state.hardware_known:
            self.rows["Memory"].setText(
                f"{est.total_gib:.1f} GB estimated (this machine's free memory is not known yet)"
            )
        elif est is not None:
            self.rows["Memory"].setText(
                f"{est.total_gib:.1f} GB estimated of {self.state.budget_gib():.1f} GB {where} free"
                + ("" if est.fits else " — it may not fit; see the method page")
            )
        if est is not None:
            self.rows["Time"].setText(self._time_text(config, report, steps))
        self.yaml.setPlainText(annotated_yaml(config, proposal))
        path = RunFolder(config.output_dir).launch_config_path
        self.command.setText(f"finetune-gui train {shlex.quote(str(path))}")

    def _time_text(self, config: RunConfig, report: DatasetReport | None, steps: int) -> str:
        """Measured on this machine when earlier runs of this model and method recorded their step time
        (scaled to this run's tokens a step), else the rough guess, and which it is."""
        settings = self.state.settings()
        mean = (report.token_stats.mean if report and report.token_stats else 0.0) or None
        tokens = settings.rows * (min(settings.seq_len, mean) if mean else settings.seq_len)
        found = measured_seconds_per_step(
            self.past_runs, config.model, config.method, self.state.device, tokens
        )
        if found is not None:
            per_step, runs = found
            said = f"measured on this machine: {runs} earlier run{'s' if runs > 1 else ''} of this model and method"
        else:
            cores = self.state.hardware.cpu_count if self.state.hardware else 1
            per_step = seconds_per_step(config.method, self.state.shape, settings, cores, mean)
            said = "a rough guess: no run of this model and method has been timed here yet"
        total = f", about {human_duration(per_step * steps, rough=True)} in all" if steps else ""
        return f"about {human_duration(per_step, rough=True)} per step{total} ({said})"

    def _save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the run config", "run.yaml", "YAML (*.yaml *.yml)")
        if path:
            self.state.config.save(path)

    def _start(self) -> None:
        from finetune_gui.core.config import RunConfig, check_paths, in_words
        from finetune_gui.core.errors import ConfigError

        try:
            config = RunConfig.from_dict(self.state.config.to_dict())
            check_paths(config)
        except ConfigError as exc:
            show_error(self.error, in_words(str(exc)))
            return
        show_error(self.error, "")
        self.start_requested.emit(config)
