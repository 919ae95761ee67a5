"""The Training page: status, progress and controls on top, live charts in the middle, the log below.

Events arrive as signals from the TrainingController and go into chart buffers; a 10 Hz timer
redraws. Out of memory opens a dialog with the engine's advice and one click to apply a fix and
continue from the last checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from finetune_gui.core.events import Failed, Finished, Started, Step
from finetune_gui.gui.training.controller import TrainingController
from finetune_gui.gui.widgets import human_duration, muted, title_label

PILL = {
    "starting": "#9aa0a6",
    "running": "#3d7be0",
    "paused": "#d89a1d",
    "stopped": "#6b6f75",
    "completed": "#2e9d5b",
    "failed": "#d2473d",
}
SMOOTHING = 0.9


class Dashboard(QWidget):
    run_ended = Signal(str, str)  # run folder, status
    status_text = Signal(str)  # for the window's status bar

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller: TrainingController | None = None
        self.run_dir: Path | None = None
        self.status = "idle"
        self.ema: float | None = None
        self.last_step: Step | None = None
        self.estimate_gib: float | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        head = QHBoxLayout()
        self.title = title_label("Training")
        head.addWidget(self.title)
        self.pill = QLabel()
        head.addWidget(self.pill)
        head.addStretch(1)
        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self._toggle_pause)
        self.stop_button = QPushButton("Stop and save")
        self.stop_button.clicked.connect(self.stop)
        head.addWidget(self.pause_button)
        head.addWidget(self.stop_button)
        layout.addLayout(head)
        self.progress = QProgressBar()
        layout.addWidget(self.progress)
        self.facts = muted("No run yet. Start one from Setup.")
        layout.addWidget(self.facts)
        self.charts_box = QWidget()
        self.grid = QGridLayout(self.charts_box)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.charts: dict = {}
        layout.addWidget(self.charts_box, 3)
        self.tabs = QTabWidget()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.tabs.addTab(self.log, "Log")
        self.samples = QPlainTextEdit()
        self.samples.setReadOnly(True)
        self.samples.setPlaceholderText(
            "At every evaluation the model answers a few validation prompts; its answers appear here."
        )
        self.tabs.addTab(self.samples, "Samples")
        layout.addWidget(self.tabs, 1)
        # Charts are redrawn by a timer, never per event, and one chart per tick: painting all five at
        # once held the event loop for 50 ms and more; each chart still refreshes several times a second.
        self.timer = QTimer(self)
        self.timer.setInterval(40)
        self.timer.timeout.connect(self._redraw_next)
        self._next_chart = 0
        self._set_status("idle")

    def showEvent(self, event) -> None:
        # Build the charts (and import pyqtgraph, about 0.5 s) once the window is up and idle, not at
        # start-up and not when the user presses Start.
        QTimer.singleShot(0, self._ensure_charts)
        super().showEvent(event)

    # -- charts (pyqtgraph is imported only when the page is first shown or a run starts)
    def _ensure_charts(self) -> None:
        if self.charts:
            return
        from finetune_gui.gui.charts import ESTIMATE_COLOUR, EVAL_COLOUR, LiveChart

        loss = LiveChart("Loss", "loss")
        loss.add_series("train", "#9db9ec")
        loss.add_series("train (smoothed)")
        loss.add_series("eval", EVAL_COLOUR, markers=True)
        lr = LiveChart("Learning rate", "learning rate")
        lr.add_series("learning rate")
        grad = LiveChart("Gradient norm", "norm")
        grad.add_series("grad norm")
        speed = LiveChart("Speed", "tokens/s")
        speed.add_series("tokens/s")
        memory = LiveChart("Memory", "GB")
        memory.add_series("peak")
        memory.add_series("now (allocated / RSS)", "#7fb0f0")
        memory.add_series("reserved", "#b54ad6")
        memory.add_series("estimate", ESTIMATE_COLOUR, dashed=True)
        self.charts = {"loss": loss, "lr": lr, "grad": grad, "speed": speed, "memory": memory}
        self.grid.addWidget(loss, 0, 0, 1, 2)
        self.grid.addWidget(memory, 0, 2)
        self.grid.addWidget(lr, 1, 0)
        self.grid.addWidget(grad, 1, 1)
        self.grid.addWidget(speed, 1, 2)

    def _redraw(self) -> None:
        for chart in self.charts.values():
            chart.redraw()

    def _redraw_next(self) -> None:
        charts = list(self.charts.values())
        for offset in range(len(charts)):
            chart = charts[(self._next_chart + offset) % len(charts)]
            if chart.dirty:
                chart.redraw()
                self._next_chart = (self._next_chart + offset + 1) % len(charts)
                return

    def point_count(self, chart: str, series: str) -> int:
        return len(self.charts[chart].series[series].x) if self.charts else 0

    # -- running
    def start(
        self,
        config_path: str | Path,
        run_dir: str | Path,
        *,
        resume: bool = False,
        env: dict[str, str] | None = None,
    ) -> TrainingController:
        if self.controller is not None and self.controller.isRunning():
            raise RuntimeError("A run is already in progress.")
        self._ensure_charts()
        self.run_dir = Path(run_dir)
        if not resume:
            for chart in self.charts.values():
                for series in chart.series.values():
                    series.set([], [])
            self.ema = None
            self.log.clear()
        self.title.setText(self.run_dir.name)
        controller = TrainingController(
            config_path, self.run_dir / "train.log", resume=resume, env=env, parent=self
        )
        controller.started_run.connect(self._on_started)
        controller.step_logged.connect(self._on_step)
        controller.evaluated.connect(lambda e: self.charts["loss"].series["eval"].append(e.step, e.eval_loss))
        controller.evaluated.connect(lambda e: self._log(f"step {e.step}: eval loss {e.eval_loss:.4f}"))
        controller.checkpointed.connect(lambda e: self._log(f"step {e.step}: checkpoint saved"))
        controller.sampled.connect(self._on_sample)
        controller.paused.connect(lambda e: self._set_status("paused"))
        controller.resumed.connect(lambda e: self._set_status("running"))
        controller.logged.connect(self._log)
        controller.finished_run.connect(self._on_finished)
        controller.failed_run.connect(self._on_failed)
        self.controller = controller
        self._set_status("starting")
        self.facts.setText("Starting the training process: loading the model and the data…")
        self.timer.start()
        controller.start()
        return controller

    def show_run(self, run_dir: str | Path, follow: bool = False) -> None:
        """Show a past run's charts from its metrics.jsonl; ``follow`` keeps reading a run that trains in
        the background (started by an earlier window), until its run.json says it ended."""
        from finetune_gui.core.events import Step
        from finetune_gui.core.runs import RunFolder, run_state

        if self.is_running():
            return
        self._ensure_charts()
        self.run_dir = Path(run_dir)
        folder = RunFolder(self.run_dir)
        for chart in self.charts.values():
            for series in chart.series.values():
                series.set([], [])
        self.ema = None
        self.title.setText(self.run_dir.name)
        info = folder.read()
        self.estimate_gib = info.get("estimate_gib")
        self._followed_lines = 0
        self._feed_metrics(folder, Step)
        state = run_state(info)
        self._set_status(state if state in PILL else "stopped")
        metrics = info.get("metrics") or {}
        summary = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
        )
        self.facts.setText(
            f"{info.get('method', '?')} on {info.get('model', '?')} · {state}"
            + (f" · {summary}" if summary else "")
        )
        self._redraw()
        if follow and state == "running":
            self.follow_timer = QTimer(self)
            self.follow_timer.setInterval(1000)
            self.follow_timer.timeout.connect(lambda: self._follow(folder, Step))
            self.follow_timer.start()
            self._log(f"Following {self.run_dir.name}, which trains in the background.")

    def _feed_metrics(self, folder, step_cls) -> None:
        from finetune_gui.core.events import Eval

        events = folder.step_events()
        for event in events[self._followed_lines :]:
            if isinstance(event, Eval):
                self.charts["loss"].series["eval"].append(event.step, event.eval_loss)
            else:
                self._on_step(event)
        self._followed_lines = len(events)

    def _follow(self, folder, step_cls) -> None:
        from finetune_gui.core.runs import run_state

        self._feed_metrics(folder, step_cls)
        self._redraw()
        state = run_state(folder.read())
        if state != "running":
            self.follow_timer.stop()
            self._set_status(state if state in PILL else "stopped")
            self.run_ended.emit(str(folder.path), state)

    def _toggle_pause(self) -> None:
        if self.controller is None:
            return
        if self.status == "paused":
            self.controller.resume_run()
        else:
            self.controller.pause()

    def stop(self) -> None:
        if self.controller is not None and self.status in ("running", "paused", "starting"):
            self.controller.stop()
            self.facts.setText("Stopping after the current step and saving…")

    def is_running(self) -> bool:
        return self.controller is not None and self.controller.isRunning()

    # -- events
    def _on_started(self, event: Started) -> None:
        self._set_status("running")
        self.estimate_gib = event.estimate_gib
        self.progress.setRange(0, max(1, event.max_steps))
        self.progress.setValue(event.start_step)
        pct = 100.0 * event.trainable_parameters / max(1, event.total_parameters)
        self._log(
            f"{event.config.get('method')} on {event.device} ({event.precision}): "
            f"{event.trainable_parameters:,} trainable parameters ({pct:.2f}%), {event.train_rows:,} training rows"
        )

    def _on_step(self, event: Step) -> None:
        self.last_step = event
        if self.status == "starting":
            self._set_status("running")
        c = self.charts
        if event.loss is not None:
            self.ema = event.loss if self.ema is None else SMOOTHING * self.ema + (1 - SMOOTHING) * event.loss
            c["loss"].series["train"].append(event.step, event.loss)
            c["loss"].series["train (smoothed)"].append(event.step, self.ema)
        if event.learning_rate is not None:
            c["lr"].series["learning rate"].append(event.step, event.learning_rate)
        if event.grad_norm is not None:
            c["grad"].series["grad norm"].append(event.step, event.grad_norm)
        if event.tokens_per_s:
            c["speed"].series["tokens/s"].append(event.step, event.tokens_per_s)
        peak = event.memory.get("peak_gib")
        now = event.memory.get("allocated_gib", event.memory.get("rss_gib"))
        if now is not None:
            c["memory"].series["now (allocated / RSS)"].append(event.step, now)
        if event.memory.get("reserved_gib") is not None:
            c["memory"].series["reserved"].append(event.step, event.memory["reserved_gib"])
        if peak is not None:
            c["memory"].series["peak"].append(event.step, peak)
            if self.estimate_gib:
                c["memory"].series["estimate"].append(event.step, self.estimate_gib)
        self.progress.setRange(0, max(1, event.max_steps))
        self.progress.setValue(event.step)
        text = (
            f"step {event.step:,} of {event.max_steps:,} · epoch {event.epoch:.2f} · "
            f"elapsed {human_duration(event.elapsed_s)} · ETA {human_duration(event.eta_s)}"
        )
        self.facts.setText(text)
        self.status_text.emit(f"Training {self.run_dir.name if self.run_dir else ''}: {text}")

    def _on_sample(self, event) -> None:
        lines = [f"— step {event.step} —"]
        for sample in event.samples:
            lines.append(f"Q: {sample['prompt'].strip()[:300]}")
            lines.append(f"A: {sample['answer']}")
        self.samples.appendPlainText("\n".join(lines) + "\n")

    def _on_finished(self, event: Finished) -> None:
        self._set_status(event.status)
        metrics = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in event.metrics.items()
        )
        self.facts.setText(f"Training {event.status}. {metrics}. Result in {event.output_path}.")
        self._log(f"Training {event.status}: {metrics}")
        self._end(event.status)

    def _on_failed(self, event: Failed) -> None:
        self._set_status("failed")
        self.facts.setText(event.message)
        self._log(f"Failed ({event.kind_}): {event.message}")
        for line in event.advice:
            self._log(f"  - {line}")
        if self.controller is not None and self.controller.stderr_tail:
            self._log("Last lines of the training process:")
            for line in list(self.controller.stderr_tail)[-15:]:
                self._log("  " + line)
        self._end("failed")
        if event.kind_ == "oom":
            self._offer_oom_fix(event)
        elif event.kind_ == "crash":
            box = QMessageBox(QMessageBox.Icon.Warning, "Training stopped", event.message, parent=self)
            box.setInformativeText("The log below shows what the training process wrote last.")
            self.crash_dialog = box
            box.open()

    def _offer_oom_fix(self, event: Failed) -> None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Out of memory")
        box.setText(event.message)
        box.setInformativeText("What would help, best first:\n" + "\n".join(f"• {a}" for a in event.advice))
        apply = None
        if event.fixes:
            apply = box.addButton(
                f"Apply “{event.fixes[0]['label'].split(' (')[0]}” and continue",
                QMessageBox.ButtonRole.AcceptRole,
            )
        box.addButton(QMessageBox.StandardButton.Close)
        self.oom_dialog = box
        box.finished.connect(lambda _r: self._after_oom_dialog(box, apply, event))
        box.open()

    def _after_oom_dialog(self, box: QMessageBox, apply, event: Failed) -> None:
        if apply is not None and box.clickedButton() is apply:
            self.apply_fix_and_continue(event.fixes[0])

    def apply_fix_and_continue(self, fix: dict) -> None:
        """Write the fix into the run's config and resume from its last checkpoint (or start over)."""
        from finetune_gui.core.runs import RunFolder

        assert self.run_dir is not None
        folder = RunFolder(self.run_dir)
        config_path = folder.apply_fix(fix["set"])
        resume = folder.last_checkpoint() is not None
        if not resume:
            folder.run_json.unlink(missing_ok=True)  # nothing to resume: start the same run again
        self._log(
            f"Applied: {fix['label']}. {'Continuing from the last checkpoint' if resume else 'Starting again'}."
        )
        self.start(
            config_path, self.run_dir, resume=resume, env=self.controller.env if self.controller else None
        )

    def _end(self, status: str) -> None:
        self.timer.stop()
        self._redraw()
        self.status_text.emit(f"Training {status}.")
        if self.run_dir is not None:
            self.run_ended.emit(str(self.run_dir), status)

    def _log(self, line: str) -> None:
        self.log.appendPlainText(f"{time.strftime('%H:%M:%S')}  {line}")

    def _set_status(self, status: str) -> None:
        self.status = status
        colour = PILL.get(status, "#9aa0a6")
        self.pill.setText(f"  {status}  ")
        self.pill.setStyleSheet(f"background:{colour}; color:white; border-radius:9px; padding:2px 6px;")
        self.pill.setVisible(status != "idle")
        active = status in ("running", "paused", "starting")
        self.pause_button.setEnabled(status in ("running", "paused"))
        self.pause_button.setText("Resume" if status == "paused" else "Pause")
        self.stop_button.setEnabled(active)
