"""The main window: a navigation rail, one page per section, and a status bar that says what is happening.

Drops anywhere on the window are routed: datasets to the dataset step, model folders and .gguf files to
the model step, adapter folders to the adapter library; anything else is refused with the reason in the
status bar. At start it reattaches to a run still training in the background and offers to resume an
interrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QStatusBar,
    QWidget,
)

from finetune_gui.core.runs import RunFolder
from finetune_gui.gui.child import ChildProcess
from finetune_gui.gui.core_client import CoreJob
from finetune_gui.gui.settings import app_settings
from finetune_gui.gui.training.dashboard import Dashboard
from finetune_gui.gui.widgets import replace_placeholder
from finetune_gui.gui.wizard.setup_page import SetupPage
from finetune_gui.gui.wizard.state import WizardState

if TYPE_CHECKING:
    from finetune_gui.gui.adapters_page import AdaptersPage
    from finetune_gui.gui.playground_page import PlaygroundPage
    from finetune_gui.gui.runs_page import RunsPage

SECTIONS = ["Setup", "Training", "Adapters", "Playground", "Runs"]


class MainWindow(QMainWindow):
    def __init__(self, detect_hardware: bool = True):
        super().__init__()
        self.setWindowTitle("finetune-gui")
        self.setAcceptDrops(True)
        self._settings = app_settings()
        self.state = WizardState(self)
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self.rail = QListWidget()
        self.rail.setObjectName("navRail")
        self.rail.setFixedWidth(150)
        self.pages = QStackedWidget()
        self.setup = SetupPage(self.state)
        self.dashboard = Dashboard()
        # The window opens with the two pages a user starts on; Adapters, Playground and Runs (their
        # imports and widgets) are built the first time they are shown or used (see _page).
        self._built: dict[str, QWidget] = {"Setup": self.setup, "Training": self.dashboard}
        for name in SECTIONS:
            item = QListWidgetItem(name)
            item.setSizeHint(QSize(0, 40))
            self.rail.addItem(item)
            self.pages.addWidget(self._built.get(name) or QWidget())
        self.rail.currentRowChanged.connect(self._show_section)
        self.rail.setCurrentRow(0)
        row.addWidget(self.rail)
        row.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.hardware_label = QLabel("Detecting GPU…")
        # A running run's progress sits in a label of its own: a notice (a refused drop, a finished
        # export) shows over it for its seconds and the progress comes back, instead of the next step's
        # progress wiping the notice at once.
        self.progress_label = QLabel()
        status = QStatusBar()
        status.addWidget(self.progress_label, 1)
        status.addPermanentWidget(self.hardware_label)
        self.progress_label.setText("Ready")  # a label, not a message: a message drew over the progress
        self.setStatusBar(status)
        self.setup.start_requested.connect(self.start_training)
        self.dashboard.status_text.connect(self._show_status)
        self.dashboard.run_ended.connect(self._on_run_ended)
        self.dashboard.run_started.connect(lambda _path: self._refresh_built("Runs"))
        self.dashboard.resume_requested.connect(self.resume_run)
        self.dashboard.go_to.connect(self.go_to)
        self.resize(1200, 800)
        geometry = self._settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.hardware_job: CoreJob | None = None
        self.resume_dialog: QMessageBox | None = None
        self._close_decided = False
        if detect_hardware:
            self._start_hardware_detection()
            QTimer.singleShot(0, self.check_earlier_runs)
        else:  # nothing is detecting: the label must not say it is
            self.hardware_label.setText("GPU: not checked")

    def _show_status(self, text: str, ms: int) -> None:
        """The dashboard's lines: 0 ms is the run's standing progress, a timeout a notice over it."""
        if ms == 0:
            self.progress_label.setText(text)
        else:
            self.progress_label.clear()  # the run ended (its notice says how): no stale progress after it
            self.statusBar().showMessage(text, ms)

    def go_to(self, section: str) -> None:
        self.rail.setCurrentRow(SECTIONS.index(section))

    # -- pages built on first use
    @property
    def adapters(self) -> AdaptersPage:
        return self._page("Adapters")  # type: ignore[return-value]

    @property
    def playground(self) -> PlaygroundPage:
        return self._page("Playground")  # type: ignore[return-value]

    @property
    def runs(self) -> RunsPage:
        return self._page("Runs")  # type: ignore[return-value]

    def _page(self, section: str) -> QWidget:
        page = self._built.get(section)
        if page is None:
            page = self._build(section)
            self._built[section] = page
            replace_placeholder(self.pages, SECTIONS.index(section), page)
        return page

    def _build(self, section: str) -> QWidget:
        if section == "Adapters":
            from finetune_gui.gui.adapters_page import AdaptersPage

            adapters = AdaptersPage()
            adapters.open_in_playground.connect(self.open_playground)
            adapters.go_to.connect(self.go_to)
            return adapters
        if section == "Playground":
            from finetune_gui.gui.playground_page import PlaygroundPage

            playground = PlaygroundPage()
            playground.go_to.connect(self.go_to)
            return playground
        from finetune_gui.gui.runs_page import RunsPage

        runs = RunsPage()
        runs.open_requested.connect(self.open_run)
        runs.resume_requested.connect(self.resume_run)
        runs.go_to.connect(self.go_to)
        return runs

    def _show_section(self, index: int) -> None:
        self._page(SECTIONS[index])
        self.pages.setCurrentIndex(index)

    def _refresh_built(self, *sections: str) -> None:
        """Refresh pages that exist; one not built yet reads the current state when it is."""
        for section in sections:
            page = self._built.get(section)
            if page is not None:
                page.refresh()  # type: ignore[attr-defined]

    # -- runs from earlier sessions
    def check_earlier_runs(self) -> None:
        """Reattach to a run still training in the background; offer to resume an interrupted one."""
        from finetune_gui.core.runs import list_runs

        runs = list_runs(self.runs.root)
        running = [r for r in runs if r.state == "running"]
        if running and not self.dashboard.is_running():
            self.dashboard.attach(running[0].path)
            self.go_to("Training")
            self.statusBar().showMessage(f"{running[0].name} is still training in the background.", 10_000)
        interrupted = [r for r in runs if r.state == "interrupted"]
        if interrupted:
            run = interrupted[0]
            box = QMessageBox(self)
            box.setWindowTitle("An interrupted run")
            box.setText(f"The run {run.name} stopped unexpectedly (the app or the computer went down).")
            checkpoint = RunFolder(run.path).last_checkpoint()
            box.setInformativeText(
                f"Resume it from {checkpoint.name}?"
                if checkpoint
                else "It stopped before its first checkpoint."
            )
            resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole) if checkpoint else None
            box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
            box.finished.connect(
                lambda _r: (
                    resume is not None and box.clickedButton() is resume and self.resume_run(str(run.path))
                )
            )
            self.resume_dialog = box
            box.open()

    def open_playground(self, request: list) -> None:
        base, adapters = request
        self.go_to("Playground")
        self.playground.open(base, adapters)

    def open_run(self, path: str) -> None:
        self.go_to("Training")
        self.dashboard.show_run(path)

    def resume_run(self, path: str) -> None:
        folder = RunFolder(path)
        if folder.last_checkpoint() is None:
            self.statusBar().showMessage(
                f"{folder.name} has no checkpoint to resume from; start it again from Setup.", 10_000
            )
            return
        if self.dashboard.is_running():
            self.statusBar().showMessage(
                f"{self.dashboard.active.name if self.dashboard.active else 'A run'} is training; resume "
                f"{folder.name} when it has finished.",
                10_000,
            )
            return
        config_path = folder.launch_config_path if folder.launch_config_path.is_file() else folder.config_path
        self.go_to("Training")
        self.dashboard.start(config_path, folder.path, resume=True)

    def _on_run_ended(self, _path: str, _status: str) -> None:
        self._refresh_built("Runs", "Adapters")

    # -- hardware
    def _start_hardware_detection(self) -> None:
        # In a child process: detection imports torch, which the window itself never does.
        self.hardware_job = CoreJob(["hardware", "--json"], self)
        self.hardware_job.succeeded.connect(self._on_hardware)
        self.hardware_job.failed.connect(lambda _message: self.hardware_label.setText("GPU: unknown"))
        self.hardware_job.start()

    def _on_hardware(self, data: dict) -> None:
        from finetune_gui.core.hardware import Hardware

        hardware = Hardware.from_dict(data)
        self.hardware_label.setText(hardware.summary())
        self.state.set_hardware(hardware)
        if self.setup.current is self.setup.hardware:
            self.setup.go(0)

    # -- drag and drop anywhere
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.route_drop(urls[0].toLocalFile())
            event.acceptProposedAction()

    def route_drop(self, path: str) -> str:
        """Send a dropped path where it belongs; returns 'adapter', 'model', 'dataset' or '' (refused)."""
        from finetune_gui.core.adapters.path_kinds import path_kind

        kind = path_kind(path) if path and Path(path).exists() else ""
        if kind == "adapter":
            self.go_to("Adapters")
            self.adapters.import_folder(path)
        elif kind == "dataset":
            self.go_to("Setup")
            self.setup.show_page(self.setup.dataset)
            self.setup.dataset.load(path)
        elif kind == "model":
            self.go_to("Setup")
            self.setup.model.choose(path)  # first, so the page does not preselect the demo model
            self.setup.show_page(self.setup.model)
        else:
            from finetune_gui.core.data.readers import suffix_text

            name = Path(path).name or path
            why = "it does not exist" if not Path(path).exists() else "it is neither a dataset nor a model"
            self.statusBar().showMessage(
                f"Cannot use {name}: {why}. Drop a dataset ({suffix_text()}), a model folder or .gguf file, "
                "or an adapter folder.",
                10_000,
            )
        return kind

    # -- training
    def start_training(self, config) -> None:
        folder = RunFolder(config.output_dir)
        config.save(folder.launch_config_path)
        self.go_to("Training")
        self.dashboard.start(folder.launch_config_path, folder.path)

    def closeEvent(self, event) -> None:
        if self.dashboard.is_running() and not self._close_decided:
            # Ask without a nested event loop; the answer closes the window again, decided.
            event.ignore()
            self._ask_before_closing()
            return
        self._settings.setValue("window/geometry", self.saveGeometry())
        self._settings.sync()
        for child in self.findChildren(ChildProcess):
            if not child.is_running():
                continue
            if child.survives_window:
                child.detach()
            else:
                child.cancel()
                child.wait(5)
        if "Playground" in self._built:
            self.playground.shutdown()
        super().closeEvent(event)

    def _ask_before_closing(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("A run is training")
        box.setText("Training is still running.")
        box.setInformativeText(
            "Stop it after the current step and save the adapter, or keep it training in the background? "
            "The next time you open the app it shows the run again, with Pause and Stop."
        )
        stop = box.addButton("Stop and save", QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton("Keep training", QMessageBox.ButtonRole.AcceptRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        self.close_dialog = box

        def decided(_result: int) -> None:
            controller = self.dashboard.controller
            if box.clickedButton() is stop and controller is not None:
                self.statusBar().showMessage("Stopping after the current step and saving…")
                self.dashboard.stop()
                controller.wait(300)
            elif box.clickedButton() is keep and controller is not None:
                controller.detach()
            else:
                return  # Cancel: the window stays
            self._close_decided = True
            self.close()

        box.finished.connect(decided)
        box.open()
