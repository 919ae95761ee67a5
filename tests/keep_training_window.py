"""A window run as its own process: start a run, close the window, answer "Keep training".

    python tests/keep_training_window.py RUN.yaml

Exits with the application's exit code; the test checks it is 0 and that the run trains on."""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from finetune_gui.core.config import RunConfig
from finetune_gui.gui.main_window import MainWindow


def main() -> int:
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from gui_helpers import answer_next_dialog

    app = QApplication(sys.argv[:1])
    window = MainWindow(detect_hardware=False)
    window.show()
    window.start_training(RunConfig.load(sys.argv[1]))

    def close_when_training() -> None:
        if window.dashboard.point_count("loss", "train") < 2:
            QTimer.singleShot(200, close_when_training)
            return
        answer_next_dialog("Keep training")
        window.close()

    QTimer.singleShot(200, close_when_training)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
