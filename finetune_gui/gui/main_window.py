"""The main window: a navigation rail, one page per section, and a status bar that says what is happening.

Drops anywhere on the window are routed: datasets to the dataset page, model folders and .gguf files
to the model page; anything else is refused with the reason in the status bar.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QSize, QTimer
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
from finetune_gui.gui.adapters_page import AdaptersPage
from finetune_gui.gui.core_client import CoreJob
from finetune_gui.gui.playground_page import PlaygroundPage
from finetune_gui.gui.runs_page import RunsPage
from finetune_gui.gui.training.dashboard import Dashboard
from finetune_gui.gui.widgets import file_kind
from finetune_gui.gui.wizard.setup_page import SetupPage
from finetune_gui.gui.wizard.state import WizardState

SECTIONS = ["Setup", "Training", "Adapters", "Playground", "Runs"]


class MainWindow(QMainWindow):
    def __init__(self, detect_hardware: bool = True):
        super().__init__()
        self.setWindowTitle("finetune-gui")
        self.setAcceptDrops(True)
        self._settings = QSettings()
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
        self.runs = RunsPage()
        self.adapters = AdaptersPage()
        self.playground = PlaygroundPage()
        for name in SECTIONS:
            item = QListWidgetItem(name)
            item.setSizeHint(QSize(0, 40))
            self.rail.addItem(item)
            if name == "Setup":
                self.pages.addWidget(self.setup)
            elif name == "Training":
                self.pages.addWidget(self.dashboard)
            elif name == "Runs":
                self.pages.addWidget(self.runs)
            elif name == "Adapters":
                self.pages.addWidget(self.adapters)
            else:
                self.pages.addWidget(self.playground)
        self.rail.currentRowChanged.connect(self.pages.setCurrentIndex)
        self.rail.setCurrentRow(0)
        row.addWidget(self.rail)
        row.addWidget(self.pages, 1)
        self.setCentralWidget(central)
        self.hardware_label = QLabel("Detecting GPU…")
        status = QStatusBar()
        status.addPermanentWidget(self.hardware_label)
        status.showMessage("Ready")
        self.setStatusBar(status)
        self.setup.review.start_requested.connect(self.start_training)
        self.dashboard.status_text.connect(lambda text: self.statusBar().showMessage(text))
        self.dashboard.run_ended.connect(
            lambda _path, _status: (self.runs.refresh(), self.adapters.refresh())
        )
        self.adapters.open_in_playground.connect(self.open_playground)
        self.runs.open_requested.connect(self.open_run)
        self.runs.resume_requested.connect(self.resume_run)
        self.resize(1200, 800)
        geometry = self._settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.hardware_job: CoreJob | None = None
        self.resume_dialog: QMessageBox | None = None
        if detect_hardware:
            self._start_hardware_detection()
            QTimer.singleShot(0, self.check_earlier_runs)

    # -- runs from earlier sessions
    def check_earlier_runs(self) -> None:
        """Reattach to a run still training in the background; offer to resume an interrupted one."""
        from finetune_gui.core.runs import list_runs

        runs = list_runs(self.runs.root)
        running = [r for r in runs if r["state"] == "running"]
        if running and not self.dashboard.is_running():
            self.dashboard.show_run(running[0]["path"], follow=True)
            self.statusBar().showMessage(f"{running[0]['name']} is still training in the background.", 10000)
        interrupted = [r for r in runs if r["state"] == "interrupted"]
        if interrupted:
            run = interrupted[0]
            box = QMessageBox(self)
            box.setWindowTitle("An interrupted run")
            box.setText(f"The run {run['name']} stopped unexpectedly (the app or the computer went down).")
            box.setInformativeText("Resume it from its last checkpoint?")
            resume = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
            box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
            box.finished.connect(lambda _r: box.clickedButton() is resume and self.resume_run(run["path"]))
            self.resume_dialog = box
            box.open()

    def open_playground(self, request: list) -> None:
        base, adapters = request
        self.rail.setCurrentRow(SECTIONS.index("Playground"))
        self.playground.open(base, adapters)

    def open_run(self, path: str) -> None:
        self.rail.setCurrentRow(SECTIONS.index("Training"))
        self.dashboard.show_run(path)

    def resume_run(self, path: str) -> None:
        run_dir = Path(path)
        folder = RunFolder(run_dir)
        config_path = folder.launch_config_path
        if not config_path.is_file():
            config_path = folder.config_path
        if folder.last_checkpoint() is None:
            self.statusBar().showMessage(
                f"{run_dir.name} has no checkpoint to resume from; start it again from Setup.", 10000
            )
            return
        self.rail.setCurrentRow(SECTIONS.index("Training"))
        self.dashboard.start(config_path, run_dir, resume=True)

    # -- hardware
    def _start_hardware_detection(self) -> None:
        # In a child process: detection imports torch, which the window itself never does.
        self.hardware_job = CoreJob(["hardware", "--json"], self)
        self.hardware_job.succeeded.connect(self._on_hardware)
        self.hardware_job.failed.connect(lambda msg: self.hardware_label.setText("GPU: unknown"))
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
        """Send a dropped path to the page that takes it; returns 'model', 'dataset' or '' (refused)."""
        kind = file_kind(path) if path and Path(path).exists() else ""
        if kind == "dataset":
            self.rail.setCurrentRow(0)
            self.setup.show_page(self.setup.dataset)
            self.setup.dataset.load(path)
        elif kind == "model":
            self.rail.setCurrentRow(0)
            self.setup.show_page(self.setup.model)
            self.setup.model.choose(path)
        else:
            name = Path(path).name or path
            why = "it does not exist" if not Path(path).exists() else "it is neither a dataset nor a model"
            from finetune_gui.core.data.readers import suffix_text

            self.statusBar().showMessage(
                f"Cannot use {name}: {why}. Drop a dataset ({suffix_text()}) or a model folder / .gguf file.",
                10000,
            )
        return kind

    # -- training
    def start_training(self, config) -> None:
        run_dir = Path(config.output_dir)
        config_path = RunFolder(run_dir).launch_config_path
        config.save(config_path)
        self.rail.setCurrentRow(SECTIONS.index("Training"))
        self.dashboard.start(config_path, run_dir)

    def closeEvent(self, event) -> None:
        if self.dashboard.is_running():
            box = QMessageBox(self)
            box.setWindowTitle("A run is training")
            box.setText("Training is still running.")
            box.setInformativeText(
                "Stop it after the current step and save the adapter, or keep it training in the background? "
                "A background run's results appear under Runs when it is done."
            )
            stop = box.addButton("Stop and save", QMessageBox.ButtonRole.DestructiveRole)
            keep = box.addButton("Keep training", QMessageBox.ButtonRole.AcceptRole)
            box.addButton(QMessageBox.StandardButton.Cancel)
            box.exec()
            if box.clickedButton() is stop:
                self.dashboard.stop()
                self.dashboard.controller.wait(120_000)
            elif box.clickedButton() is keep:
                self.dashboard.controller.detach()
            else:
                event.ignore()
                return
        self._settings.setValue("window/geometry", self.saveGeometry())
        for job in self.findChildren(CoreJob):
            job.cancel()
        self.playground.shutdown()
        super().closeEvent(event)
