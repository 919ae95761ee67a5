"""Application start-up: the QApplication, the theme, the main window, and the smoke test."""

from __future__ import annotations

import json
import sys
import time

_START = time.perf_counter()


def run_app(smoke_test: bool = False) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from finetune_gui.gui.main_window import MainWindow
    from finetune_gui.gui.theme import apply_theme

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("finetune-gui")
    app.setOrganizationName("finetune-gui")
    app.setDesktopFileName("finetune-gui")
    apply_theme(app)
    from PySide6.QtGui import QIcon

    from finetune_gui.core.paths import resources_dir

    app.setWindowIcon(QIcon(str(resources_dir() / "finetune-gui.svg")))
    window = MainWindow(detect_hardware=not smoke_test)
    window.show()
    if smoke_test:

        def report() -> None:
            print(
                json.dumps(
                    {
                        "window_shown_s": round(time.perf_counter() - _START, 3),
                        "torch_imported": "torch" in sys.modules,
                    }
                ),
                flush=True,
            )
            window.close()
            app.quit()

        # A zero-length timer fires once the event loop has processed the show and first paint.
        QTimer.singleShot(0, report)
    return app.exec()
