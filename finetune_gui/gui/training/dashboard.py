"""The Training page: status, progress and controls on top, live charts in the middle, log and sample
answers below.

Events arrive as signals from the TrainingController and go into the run's ``RunView`` and the chart
buffers; a timer redraws one chart per tick. Pause and "Stop and save" answer at once ("pausing…",
"stopping…") and take effect after the current step. Out of memory opens a dialog with the engine's
advice and one click to apply a fix and continue; a crash shows what the process said last and offers
to resume from the last checkpoint.
"""

from __future__ import annotations

import html
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

from finetune_gui.core.errors import FailureKind
from finetune_gui.core.events import (
    Alert,
    Checkpoint,
    Eval,
    Event,
    Failed,
    Finished,
    Fix,
    Forgetting,
    Learned,
    Log,
    Sample,
    Started,
    Step,
)
from finetune_gui.core.runs import RunFolder, run_state
from finetune_gui.gui.training.controller import TrainingController
from finetune_gui.gui.training.view import RunView
from finetune_gui.gui.widgets import AMBER, human_duration, metrics_sentence, muted, title_label, verdict_mark

PILL = {
    "starting": "#9aa0a6",
    "running": "#3d7be0",
    "pausing": "#d89a1d",
    "paused": "#d89a1d",
    "resuming": "#3d7be0",
    "stopping": "#6b6f75",
    "stopped": "#6b6f75",
    "completed": "#2e9d5b",
    "failed": "#d2473d",
    "interrupted": "#d2473d",
}
ACTIVE = ("starting", "running", "pausing", "paused", "resuming", "stopping")
SERIES = {
    "loss": [("train", "#9db9ec"), ("train (smoothed)", None), ("eval", "eval")],
    "lr": [("learning rate", None)],
    "grad": [("grad norm", None)],
    "speed": [("tokens/s", None)],
    "memory": [("peak", None), ("in use", "#7fb0f0"), ("reserved", "#b54ad6"), ("estimate", "estimate")],
    # Preference runs (DPO, ORPO) only: shown once a run reports them.
    "margin": [("train", None), ("eval", "eval")],
    "accuracy": [("train", None), ("eval", "eval")],
}
PREFERENCE_CHARTS = ("margin", "accuracy")


CHARTS_SHARE = 0.56  # of the page's height


class Dashboard(QWidget):
    run_started = Signal(str)  # run folder: its process has started training (Runs lists it now)
    run_ended = Signal(str, str)  # run folder, status
    status_text = Signal(str, int)  # for the window's status bar: text, milliseconds (0: until replaced)
    resume_requested = Signal(str)  # a run folder to resume (from the crash dialog)
    go_to = Signal(str)  # a section of the window ("Setup", from the empty page)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.controller: TrainingController | None = None
        self.active: RunView | None = None  # the run the controller drives
        self.shown: RunView | None = None  # the run on screen
        self.last_step: Step | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        head = QHBoxLayout()
        self.title = title_label("Training")
        head.addWidget(self.title)
        self.pill = QLabel()
        head.addWidget(self.pill)
        head.addStretch(1)
        self.back_button = QPushButton()
        self.back_button.clicked.connect(self.back_to_active)
        self.back_button.hide()
        head.addWidget(self.back_button)
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
        self.facts.setFixedHeight(2 * self.facts.fontMetrics().lineSpacing() + 2)  # grows by no line mid-run
        facts_row = QHBoxLayout()
        facts_row.addWidget(self.facts, 1)
        self.setup_button = QPushButton("Go to Setup")  # only while no run is on the page
        self.setup_button.clicked.connect(lambda: self.go_to.emit("Setup"))
        facts_row.addWidget(self.setup_button)
        layout.addLayout(facts_row)
        self.charts_box = QWidget()
        self.grid = QGridLayout(self.charts_box)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.charts: dict = {}
        # Nothing above the charts changes height while a run trains, and their height follows the page's:
        # the verdict and an alert appear under them and take their room from the Log. Resized or moved,
        # the five charts all repaint at once (a 60-140 ms stall of the window).
        layout.addWidget(self.charts_box)
        self.learned = QLabel()
        self.learned.setWordWrap(True)
        self.learned.setObjectName("learned")
        self.learned.hide()
        layout.addWidget(self.learned)
        # A health alert: its sentence, and one click to apply its fix and continue from the last checkpoint.
        alert_row = QHBoxLayout()
        self.alert = QLabel()
        self.alert.setWordWrap(True)
        self.alert.setStyleSheet(f"color: {AMBER}")
        alert_row.addWidget(self.alert, 1)
        self.alert_fix = QPushButton()
        self.alert_fix.clicked.connect(self._apply_alert_fix)
        alert_row.addWidget(self.alert_fix)
        layout.addLayout(alert_row)
        self.alert.hide()
        self.alert_fix.hide()
        self.shown_fix: Fix | None = None  # the fix the alert's button applies
        self.pending_fix: Fix | None = None  # an alert's fix, applied once the run has stopped and saved
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
        self.tabs.setMinimumHeight(70)
        layout.addWidget(self.tabs, 1)
        # Charts are redrawn by a timer, never per event, and one chart per tick: painting all five at
        # once held the event loop for 50 ms and more. Every 70 ms (each chart about three times a
        # second): at 40 ms two charts' paints (6-14 ms each) often fell into one pass, up to 20 ms.
        self.timer = QTimer(self)
        self.timer.setInterval(70)
        self.timer.timeout.connect(self._redraw_next)
        self._next_chart = 0
        self._render_controls()

    def resizeEvent(self, event) -> None:
        self.charts_box.setFixedHeight(max(200, int(event.size().height() * CHARTS_SHARE)))
        super().resizeEvent(event)

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
        from finetune_gui.gui.theme import ACCENT

        specials = {"eval": EVAL_COLOUR, "estimate": ESTIMATE_COLOUR, None: ACCENT}
        titles = {
            "loss": ("Loss", "loss"),
            "lr": ("Learning rate", "learning rate"),
            "grad": ("Gradient norm", "norm"),
            "speed": ("Speed", "tokens/s"),
            "memory": ("Memory", "GB"),
            "margin": ("Reward margin (chosen − rejected)", "margin"),
            "accuracy": ("Prefers the chosen answer", "share of pairs"),
        }
        for key, series in SERIES.items():
            chart = LiveChart(*titles[key])
            for name, colour in series:
                chart.add_series(
                    name,
                    specials.get(colour, colour),
                    dashed=colour == "estimate",
                    markers=colour == "eval",
                )
            self.charts[key] = chart
        self.grid.addWidget(self.charts["loss"], 0, 0, 1, 2)
        self.grid.addWidget(self.charts["memory"], 0, 2)
        self.grid.addWidget(self.charts["lr"], 1, 0)
        self.grid.addWidget(self.charts["grad"], 1, 1)
        self.grid.addWidget(self.charts["speed"], 1, 2)
        self.grid.addWidget(self.charts["margin"], 2, 0, 1, 2)
        self.grid.addWidget(self.charts["accuracy"], 2, 2)
        self._show_preference_charts(False)
        if self.shown is not None:
            self._display(self.shown)

    def _show_preference_charts(self, shown: bool) -> None:
        for key in PREFERENCE_CHARTS:
            self.charts[key].setVisible(shown)

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
        return self.charts[chart].series[series].n if self.charts else 0

    # -- starting, following, showing
    def start(
        self,
        config_path: str | Path,
        run_dir: str | Path,
        *,
        resume: bool = False,
        env: dict[str, str] | None = None,
    ) -> TrainingController:
        """Start a run (or resume one) in a training process and show it."""
        if self.is_running():
            raise RuntimeError("A run is already in progress.")
        view = self._history(Path(run_dir)) if resume else RunView(Path(run_dir))
        view.status = "starting"
        view.facts = "Starting the training process: loading the model and the data…"
        controller = self._new_controller(view)
        self._show(view)
        controller.start(config_path, resume=resume, env=env)
        return controller

    def attach(self, run_dir: str | Path) -> TrainingController:
        """Follow a run that trains in the background (started by an earlier window), with its controls."""
        view = RunView(
            Path(run_dir), status="running", facts="Following a run that trains in the background…"
        )
        controller = self._new_controller(view)
        self._show(view)
        self._log(view, f"Following {view.name}, which trains in the background. What it said so far:")
        controller.attach()
        self._log(view, "Following it live from here.")
        return controller

    def _new_controller(self, view: RunView) -> TrainingController:
        self._ensure_charts()
        controller = TrainingController(view.path, self)
        controller.started_run.connect(self._on_started)
        controller.step_logged.connect(self._on_step)
        controller.evaluated.connect(self._on_eval)
        controller.checkpointed.connect(self._on_checkpoint)
        controller.sampled.connect(self._on_sample)
        controller.learned.connect(self._on_learned)
        controller.forgetting.connect(self._on_forgetting)
        controller.alerted.connect(self._on_alert)
        controller.paused.connect(lambda _e: self._set_status(self.active, "paused"))
        controller.resumed.connect(lambda _e: self._set_status(self.active, "running"))
        controller.logged.connect(lambda line: self._log(self.active, line))
        controller.finished_run.connect(self._on_finished)
        controller.failed_run.connect(self._on_failed)
        self.controller, self.active = controller, view
        self.timer.start()
        return controller

    def show_run(self, run_dir: str | Path) -> None:
        """Show a run's charts: the live one, or a past run from its run folder (the live one trains on)."""
        path = Path(run_dir)
        if self.active is not None and path == self.active.path:
            self.back_to_active()
            return
        self._show(self._history(path, finished=True))

    def back_to_active(self) -> None:
        if self.active is not None:
            self._show(self.active)

    def _history(self, path: Path, finished: bool = False) -> RunView:
        """A run as its folder tells it: charts from metrics.jsonl, samples, status and results."""
        folder = RunFolder(path)
        info = folder.read()
        view = RunView(path, estimate_gib=info.estimate_gib)
        for event in folder.step_events():
            if isinstance(event, Eval):
                self._record_eval(view, event)
            else:
                self._record_step(view, event)
        for record in folder.samples():
            view.samples.append(_samples_text(record.get("step", 0), record.get("samples") or []))
        if info.learning is not None:
            view.learned, view.learned_verdict = info.learning.summary, info.learning.verdict
        view.alerts = [(alert.message, None) for alert in info.alerts]  # the run is over: no fix to apply
        if info.forgetting is not None:
            view.forgot, view.forgot_verdict = info.forgetting.summary, info.forgetting.verdict
        view.log = past_log(folder.events())
        if finished:
            state = run_state(info)
            view.status = state if state in PILL else "stopped"
            view.progress = int(info.metrics.get("steps") or view.progress)
            how = (info.method or "?") + (f" · {info.objective.upper()}" if info.objective != "sft" else "")
            what = f"{how} on {Path(info.model or '?').name}"
            said = metrics_sentence(info.metrics)
            view.facts = f"{what} · {view.status}" + (f" · {said}" if said else "")
            if info.error_message:
                view.facts += f" · {info.error_message}"
        return view

    def _show(self, view: RunView) -> None:
        self._ensure_charts()
        self.shown = view
        self._display(view)

    def _display(self, view: RunView) -> None:
        self.title.setText(view.name)
        for key, chart in self.charts.items():
            for name, series in chart.series.items():
                xs, ys = view.points.get((key, name), ([], []))
                series.set(xs, ys)
        self._show_preference_charts(any(key in PREFERENCE_CHARTS for key, _name in view.points))
        self._redraw()
        self.progress.setRange(0, max(1, view.max_steps))
        self.progress.setValue(view.progress)
        self.facts.setText(view.facts)
        self.log.setPlainText("\n".join(view.log))
        self._show_alert(view)
        self._show_learned(view)
        self.samples.setPlainText("\n".join(view.samples))
        self._render_controls()

    # -- controls
    def _toggle_pause(self) -> None:
        view = self.active
        if self.controller is None or view is None:
            return
        if view.status == "paused":
            self.controller.resume_run()
            self._set_status(view, "resuming")
        elif view.status == "running":
            self.controller.pause()
            self._set_status(view, "pausing")
            self._log(view, "Pausing after the current step…")

    def stop(self) -> None:
        view = self.active
        if self.controller is not None and view is not None and view.status in ACTIVE:
            self.controller.stop()
            self._set_status(view, "stopping")
            view.facts = "Stopping after the current step and saving…"
            if view is self.shown:
                self.facts.setText(view.facts)
            self._log(view, "Stopping after the current step and saving…")

    def is_running(self) -> bool:
        return self.controller is not None and self.controller.is_running()

    @property
    def status(self) -> str:
        return self.shown.status if self.shown else "idle"

    def _set_status(self, view: RunView | None, status: str) -> None:
        if view is None:
            return
        view.status = status
        if view is self.shown:
            self._render_controls()

    def _render_controls(self) -> None:
        view = self.shown
        status = view.status if view else "idle"
        self.pill.setText(
            f"  {status}…  " if status in ("pausing", "resuming", "stopping") else f"  {status}  "
        )
        self.pill.setStyleSheet(
            f"background:{PILL.get(status, '#9aa0a6')}; color:white; border-radius:9px; padding:2px 6px;"
        )
        self.pill.setVisible(status != "idle")
        self.setup_button.setVisible(view is None)
        live = view is not None and view is self.active and self.is_running()
        self.pause_button.setEnabled(live and status in ("running", "paused"))
        self.pause_button.setText("Resume" if status == "paused" else "Pause")
        self.stop_button.setEnabled(
            live and status in ("starting", "running", "paused", "pausing", "resuming")
        )
        away = self.active is not None and view is not self.active and self.is_running()
        self.back_button.setVisible(away)
        if away:
            self.back_button.setText(f"Back to {self.active.name}")

    # -- events of the active run
    def _on_started(self, event: Started) -> None:
        view = self.active
        assert view is not None
        view.estimate_gib = event.estimate_gib
        view.max_steps = max(1, event.max_steps)
        view.progress = event.start_step
        if view.keep_up_to(event.start_step) and view is self.shown:
            self._display(view)  # the steps after the checkpoint are logged again
        self._set_status(view, "running")
        self.run_started.emit(str(view.path))
        pct = 100.0 * event.trainable_parameters / max(1, event.total_parameters)
        self._log(
            view,
            f"{event.config.get('method')} on {event.device} ({event.precision}): "
            f"{event.trainable_parameters:,} trainable parameters ({pct:.2f}%), {event.train_rows:,} training rows",
        )
        if view is self.shown:
            self.progress.setRange(0, view.max_steps)
            self.progress.setValue(view.progress)

    def _record_step(self, view: RunView, event: Step) -> None:
        if event.loss is not None:
            view.add("loss", "train", event.step, event.loss)
            view.add("loss", "train (smoothed)", event.step, view.smooth(event.loss))
        if event.learning_rate is not None:
            view.add("lr", "learning rate", event.step, event.learning_rate)
        if event.grad_norm is not None:
            view.add("grad", "grad norm", event.step, event.grad_norm)
        if event.tokens_per_s:
            view.add("speed", "tokens/s", event.step, event.tokens_per_s)
        if event.reward_margin is not None:
            view.add("margin", "train", event.step, event.reward_margin)
        if event.preference_accuracy is not None:
            view.add("accuracy", "train", event.step, event.preference_accuracy)
        memory = event.memory or {}
        now = memory.get("allocated_gib", memory.get("rss_gib"))
        if now is not None:
            view.add("memory", "in use", event.step, now)
        if memory.get("reserved_gib") is not None:
            view.add("memory", "reserved", event.step, memory["reserved_gib"])
        if memory.get("peak_gib") is not None:
            view.add("memory", "peak", event.step, memory["peak_gib"])
            if view.estimate_gib:
                view.add("memory", "estimate", event.step, view.estimate_gib)
        view.progress = event.step
        view.max_steps = max(1, event.max_steps or view.max_steps)

    def _on_step(self, event: Step) -> None:
        view = self.active
        assert view is not None
        self.last_step = event
        before = {key: len(xs) for key, (xs, _ys) in view.points.items()}
        self._record_step(view, event)
        if view.status in ("starting", "resuming"):
            self._set_status(view, "running")
        view.facts = (
            f"step {event.step:,} of {event.max_steps:,} · epoch {event.epoch:.2f} · "
            f"elapsed {human_duration(event.elapsed_s)} · about {human_duration(event.eta_s, rough=True)} left"
        )
        if view is self.shown:
            self._append_new(view, before)
            self.progress.setRange(0, view.max_steps)
            self.progress.setValue(view.progress)
            if view.status not in ("stopping", "pausing"):
                self.facts.setText(view.facts)
        self.status_text.emit(f"Training {view.name}: {view.facts}", 0)

    def _append_new(self, view: RunView, before: dict) -> None:
        """Hand the charts the points the last event added."""
        for (chart, series), (xs, ys) in view.points.items():
            if before.get((chart, series), 0) == 0 and chart in PREFERENCE_CHARTS:
                self._show_preference_charts(True)
            for i in range(before.get((chart, series), 0), len(xs)):
                self.charts[chart].series[series].append(xs[i], ys[i])

    @staticmethod
    def _record_eval(view: RunView, event: Eval) -> None:
        view.add("loss", "eval", event.step, event.eval_loss)
        if event.reward_margin is not None:
            view.add("margin", "eval", event.step, event.reward_margin)
        if event.preference_accuracy is not None:
            view.add("accuracy", "eval", event.step, event.preference_accuracy)

    def _on_eval(self, event: Eval) -> None:
        view = self.active
        assert view is not None
        before = {key: len(xs) for key, (xs, _ys) in view.points.items()}
        self._record_eval(view, event)
        if view is self.shown:
            self._append_new(view, before)
        self._log_event(view, event)

    def _on_checkpoint(self, event: Checkpoint) -> None:
        self._log_event(self.active, event)

    def _on_sample(self, event: Sample) -> None:
        view = self.active
        assert view is not None
        text = _samples_text(event.step, event.samples)
        view.samples.append(text)
        if view is self.shown:
            self.samples.appendPlainText(text)

    def _on_learned(self, event) -> None:
        view = self.active
        assert view is not None
        view.learned, view.learned_verdict = event.summary, event.verdict
        self._log_event(view, event)
        if view is self.shown:
            self._show_learned(view)

    def _on_alert(self, event) -> None:
        view = self.active
        assert view is not None
        view.alerts.append((event.message, event.fixes[0] if event.fixes else None))
        self._log_event(view, event)
        if view is self.shown:
            self._show_alert(view)

    def _show_alert(self, view: RunView) -> None:
        message, fix = view.alerts[-1] if view.alerts else ("", None)
        self.alert.setText(f"⚠ {message}" if message else "")
        self.alert.setVisible(bool(message))
        running = view is self.active and view.status in ACTIVE
        self.alert_fix.setVisible(fix is not None and running)
        self.shown_fix = fix
        if fix is not None:
            self.alert_fix.setText(f"Apply “{fix.label}” and continue")

    def _apply_alert_fix(self) -> None:
        """Stop and save now; once the process has exited, write the fix and continue from the checkpoint."""
        fix = self.shown_fix
        if fix is None or self.active is None:
            return
        self.pending_fix = fix
        self.alert_fix.hide()
        self._log(self.active, f"Applying “{fix.label}”: stopping after this step, then continuing.")
        self.stop()

    def _continue_with_fix(self) -> None:
        if self.is_running():  # the process is still writing its last words
            QTimer.singleShot(100, self._continue_with_fix)
            return
        fix, self.pending_fix = self.pending_fix, None
        if fix is not None:
            self.apply_fix_and_continue(fix)

    def _on_forgetting(self, event) -> None:
        view = self.active
        assert view is not None
        view.forgot, view.forgot_verdict = event.summary, event.verdict
        self._log_event(view, event)
        if view is self.shown:
            self._show_learned(view)

    def _show_learned(self, view: RunView) -> None:
        lines = []
        for verdict, title, said in (
            (view.learned_verdict, "Did it learn?", view.learned),
            (view.forgot_verdict, "Did it forget?", view.forgot),
        ):
            if not said:
                continue
            icon, colour = verdict_mark(verdict)
            mark = f'<span style="color:{colour}; font-weight:bold">{icon}</span> ' if icon else ""
            lines.append(f"{mark}<b>{title}</b> {html.escape(said)}")
        self.learned.setText("<br>".join(lines))
        self.learned.setVisible(bool(lines))

    def _on_finished(self, event: Finished) -> None:
        view = self.active
        assert view is not None
        said = metrics_sentence(event.metrics)
        where = (
            f" The result is in {Path(event.output_path).parent.name}/{Path(event.output_path).name}."
            if event.output_path
            else ""
        )
        view.facts = f"Training {event.status}." + (f" {said}." if said else "") + where
        self._log_event(view, event)
        self._set_status(view, event.status)
        self._end(view, event.status)
        if self.pending_fix is not None and event.status == "stopped":
            QTimer.singleShot(0, self._continue_with_fix)

    def _on_failed(self, event: Failed) -> None:
        view = self.active
        assert view is not None
        view.facts = event.message
        self._log_event(view, event)
        lines = RunFolder(view.path).crash_lines() if event.kind_ == "crash" else []
        if lines:
            self._log(view, "What the training process wrote last:")
            for line in lines:
                self._log(view, "  " + line)
        self._set_status(view, "failed")
        self._end(view, "failed")
        if event.kind_ == FailureKind.OOM and event.fixes:
            self._offer_oom_fix(event)
        else:
            self._offer_resume(view, event, lines)

    def _offer_oom_fix(self, event: Failed) -> None:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Out of memory")
        box.setText(event.message)
        box.setInformativeText("What would help, best first:\n" + "\n".join(f"• {a}" for a in event.advice))
        apply = box.addButton(
            f"Apply “{event.fixes[0].short_label}” and continue",
            QMessageBox.ButtonRole.AcceptRole,
        )
        box.addButton(QMessageBox.StandardButton.Close)
        self.oom_dialog = box
        box.finished.connect(
            lambda _r: box.clickedButton() is apply and self.apply_fix_and_continue(event.fixes[0])
        )
        box.open()

    def _offer_resume(self, view: RunView, event: Failed, lines: list[str]) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, "Training stopped", event.message, parent=self)
        details = list(event.advice)
        if lines:
            details.append("Last lines it wrote:\n" + "\n".join(lines[-6:]))
        box.setInformativeText("\n".join(details))
        checkpoint = RunFolder(view.path).last_checkpoint()
        resume = None
        if checkpoint is not None and event.kind_ in (FailureKind.CRASH, FailureKind.DISK):
            resume = box.addButton(f"Resume from {checkpoint.name}", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Close)
        self.crash_dialog = box
        box.finished.connect(
            lambda _r: (
                resume is not None
                and box.clickedButton() is resume
                and self.resume_requested.emit(str(view.path))
            )
        )
        box.open()

    def apply_fix_and_continue(self, fix: Fix) -> None:
        """Write the fix into the run's config and resume from its last checkpoint (or start over)."""
        assert self.active is not None
        folder = RunFolder(self.active.path)
        config_path = folder.apply_fix(fix.settings)
        resume = folder.last_checkpoint() is not None
        env = self.controller.env if self.controller else None
        self.start(config_path, folder.path, resume=resume, env=env)
        self._log(
            self.active,
            f"Applied: {fix.label}. {'Continuing from the last checkpoint' if resume else 'Starting again'}.",
        )

    def _end(self, view: RunView, status: str) -> None:
        self._redraw()
        self._render_controls()
        if view is self.shown:
            self.facts.setText(view.facts)
            self._show_alert(view)
        self.status_text.emit(f"{view.name}: training {status}.", 10_000)
        self.run_ended.emit(str(view.path), status)

    def _log_event(self, view: RunView | None, event: Event) -> None:
        for line in event_log_lines(event):
            self._log(view, line)

    def _log(self, view: RunView | None, line: str) -> None:
        if view is None:
            return
        replayed = view is self.active and self.controller is not None and self.controller.replaying
        # A line replayed from an earlier window's run has no time of ours (the events carry none): the
        # time it was read would be wrong.
        text = line if replayed else f"{time.strftime('%H:%M:%S')}  {line}"
        view.log.append(text)
        if view is self.shown:
            self.log.appendPlainText(text)


def event_log_lines(event: Event) -> list[str]:
    """What the Log tab says for an event: the live log and a past run's (read from events.jsonl) alike."""
    if isinstance(event, Log):
        return [event.message]
    if isinstance(event, Checkpoint):
        return [f"step {event.step}: checkpoint saved"]
    if isinstance(event, Eval):
        said = f"step {event.step}: evaluation loss {event.eval_loss:.4f}"
        if event.preference_accuracy is not None:
            said += f", prefers the chosen answer on {event.preference_accuracy:.0%} of the validation pairs"
        return [said]
    if isinstance(event, Alert):
        return [f"⚠ Step {event.step}: {event.message}"]
    if isinstance(event, Learned):
        lines = [f"Did it learn? {event.summary}"]
        for example in event.examples:
            mark = "✓" if example.get("right") else "✗"
            lines.append(f"  {mark} {example['question']} → {example['tuned']} (base: {example['base']})")
            if example.get("answer"):
                lines.append(f"      it answers: {example['answer']}")
        return lines
    if isinstance(event, Forgetting):
        return [f"Did it forget? {event.summary}"] + [
            f"  {example['prompt']} → {example['tuned']} (base: {example['base']})"
            for example in event.examples
        ]
    if isinstance(event, Finished):
        said = metrics_sentence(event.metrics)
        return [f"Training {event.status}." + (f" {said}." if said else "")]
    if isinstance(event, Failed):
        return [f"Failed: {event.message}"] + [f"  - {line}" for line in event.advice]
    return []


def past_log(events: list[Event]) -> list[str]:
    """A past run's Log tab from its events.jsonl, without the clock times (events carry none)."""
    return [line for event in events for line in event_log_lines(event)]


def _samples_text(step: int, samples: list[dict]) -> str:
    lines = [f"— step {step} —"]
    for sample in samples:
        mark = {True: " ✓", False: " ✗"}.get(sample.get("right"), "")
        lines.append(f"Q: {str(sample.get('prompt', '')).strip()[:300]}")
        lines.append(f"A{mark}: {sample.get('answer', '')}")
        if sample.get("reference"):
            lines.append(f"   expected: {sample['reference']}")
        if sample.get("base") is not None:
            lines.append(f"   base model: {sample['base']}")
    return "\n".join(lines) + "\n"
