"""The main window: a navigation rail, one page per section, and a status bar that says what is happening."""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QProcess, QSettings, QSize, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QStackedWidget,
    QStatusBar,
    QVBoxLayout,
    QWidget,
)

SECTIONS = [
    ("Setup", "Set up a run", "The wizard: hardware, model, dataset, method, settings, review."),
    ("Training", "Training", "No run yet. Start one from Setup."),
    ("Adapters", "Adapters", "No adapters yet. Every completed run adds its adapter here."),
    (
        "Playground",
        "Playground",
        "Chat with a base model and a tuned one side by side, once you have an adapter.",
    ),
    ("Runs", "Runs", "No runs yet. Start one from Setup."),
]


class EmptyPage(QWidget):
    """A page with its title and an empty state that says what to do."""

    def __init__(self, title: str, hint: str, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 16)
        heading = QLabel(title)
        heading.setObjectName("pageTitle")
        font = heading.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        heading.setFont(font)
        layout.addWidget(heading)
        self.hint = QLabel(hint)
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setObjectName("emptyState")
        layout.addWidget(self.hint, 1)


class MainWindow(QMainWindow):
    def __init__(self, detect_hardware: bool = True):
        super().__init__()
        self.setWindowTitle("finetune-gui")
        self._settings = QSettings()
        central = QWidget()
        row = QHBoxLayout(central)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(0)
        self.rail = QListWidget()
        self.rail.setObjectName("navRail")
        self.rail.setFixedWidth(150)
        self.pages = QStackedWidget()
        for name, title, hint in SECTIONS:
            item = QListWidgetItem(name)
            item.setSizeHint(QSize(0, 40))
            self.rail.addItem(item)
            self.pages.addWidget(EmptyPage(title, hint))
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
        self.resize(1100, 720)
        geometry = self._settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._hardware_process: QProcess | None = None
        if detect_hardware:
            self._start_hardware_detection()

    def _start_hardware_detection(self) -> None:
        # In a child process: detection imports torch, which the window itself never does.
        proc = QProcess(self)
        proc.finished.connect(self._on_hardware_detected)
        proc.start(sys.executable, ["-m", "finetune_gui", "hardware", "--json"])
        self._hardware_process = proc

    def _on_hardware_detected(self, exit_code: int, _status: QProcess.ExitStatus) -> None:
        proc = self._hardware_process
        if proc is None:
            return
        text = bytes(proc.readAllStandardOutput().data()).decode("utf-8", "replace")
        self.hardware_label.setText(hardware_summary(text) if exit_code == 0 else "GPU: unknown")

    def closeEvent(self, event):
        self._settings.setValue("window/geometry", self.saveGeometry())
        if (
            self._hardware_process is not None
            and self._hardware_process.state() != QProcess.ProcessState.NotRunning
        ):
            self._hardware_process.kill()
            self._hardware_process.waitForFinished(2000)
        super().closeEvent(event)


def hardware_summary(hardware_json: str) -> str:
    """The status bar's text from ``finetune-gui hardware --json``."""
    try:
        data = json.loads(hardware_json)
    except ValueError:
        return "GPU: unknown"
    gpus = data.get("gpus") or []
    if not gpus:
        return "CPU · no GPU found"
    best = max(gpus, key=lambda g: g["free_gib"])
    return f"▣ {best['name']} · {best['free_gib']:.1f} of {best['total_gib']:.1f} GB free"
