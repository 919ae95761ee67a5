"""Save screenshots of the window's pages, for docs/screenshots/. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshots.py docs/screenshots

Each page is shown in the real window (xcb platform) and grabbed after the event loop has painted it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from finetune_gui.gui.main_window import MainWindow
from finetune_gui.gui.theme import apply_theme


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    app.setApplicationName("finetune-gui")
    apply_theme(app)
    window = MainWindow()
    window.resize(1200, 760)
    window.show()
    shots = [("main-window", 0)]

    def take(index: int = 0) -> None:
        if index >= len(shots):
            app.quit()
            return
        name, page = shots[index]
        window.rail.setCurrentRow(page)
        QTimer.singleShot(1500, lambda: (window.grab().save(str(out / f"{name}.png")), take(index + 1)))

    def wait_for_hardware(tries: int = 0) -> None:
        if window.hardware_label.text().startswith("Detecting") and tries < 100:
            QTimer.singleShot(200, lambda: wait_for_hardware(tries + 1))
        else:
            take()

    QTimer.singleShot(500, wait_for_hardware)
    app.exec()


if __name__ == "__main__":
    main()
