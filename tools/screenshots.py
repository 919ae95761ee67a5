"""Take the README's screenshots from a real run of the app under Xvfb:

    xvfb-run -a -s "-screen 0 1400x1000x24" .venv/bin/python tools/screenshots.py docs/screenshots [STEPS [START [STOP]]]

It walks the wizard with the demo model and the demo dataset (as a user would click), starts a short
training run, and grabs each page once the event loop has painted it.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from finetune_gui.gui.main_window import MainWindow
from finetune_gui.gui.theme import apply_theme

Step = tuple[str, Callable[[], bool], Callable[[], None]]  # (screenshot name or "", ready?, then do)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    steps_to_train = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    app.setApplicationName("finetune-gui")
    app.setOrganizationName("finetune-gui")
    apply_theme(app)
    window = MainWindow()
    window.resize(1280, 860)
    window.show()
    setup, state = window.setup, window.state

    def configure_run() -> None:
        state.config.training.max_steps = steps_to_train
        state.config.training.eval_steps = 15
        state.config.training.save_steps = 30
        setup.go(5)

    def show_adapters() -> None:
        window.adapters.refresh()
        window.rail.setCurrentRow(2)
        window.adapters.table.selectRow(0)

    def open_playground() -> None:
        window.adapters._open_in_playground()

    def quit_all() -> None:
        window.playground.shutdown()
        app.quit()

    def ask() -> None:
        window.playground.prompt.setText("What is the capital of Veloria?")
        window.playground.max_tokens.setValue(40)
        window.playground.send()

    plan: list[Step] = [
        ("wizard-hardware", lambda: state.hardware is not None, lambda: setup.go(1)),
        ("wizard-model", lambda: state.shape is not None, lambda: setup.go(2)),
        ("", lambda: True, setup.dataset._use_demo),
        ("wizard-dataset", lambda: bool(state.dataset_report), lambda: setup.go(3)),
        ("wizard-method", lambda: state.estimate is not None, lambda: setup.go(4)),
        ("wizard-settings", lambda: True, configure_run),
        ("wizard-review", lambda: True, setup.review._start),
        (
            "training-running",
            lambda: window.dashboard.point_count("loss", "train") >= steps_to_train // 3,
            lambda: None,
        ),
        (
            "training-finished",
            lambda: window.dashboard.status in ("completed", "failed", "stopped"),
            show_adapters,
        ),
        ("adapters", lambda: window.adapters.table.rowCount() > 0, open_playground),
        ("", lambda: window.playground.ready, ask),
        ("playground", lambda: window.playground.status.text() in ("Done.", "Stopped."), quit_all),
    ]
    start_at = sys.argv[3] if len(sys.argv) > 3 else ""  # "adapters": begin there, with the runs already made
    stop_after = sys.argv[4] if len(sys.argv) > 4 else ""  # a screenshot name to end the tour at
    position = {"index": 0, "waited": 0}
    if start_at == "adapters":  # the pages after training, from the runs already there
        position["index"] = [n for n, _, _ in plan].index("adapters")
        show_adapters()

    def tick() -> None:
        if position["index"] >= len(plan):
            return
        name, ready, then = plan[position["index"]]
        if not ready() and position["waited"] < 3000:
            position["waited"] += 1
            QTimer.singleShot(200, tick)
            return
        position["waited"] = 0

        def shoot_and_go() -> None:
            if name:
                window.grab().save(str(out / f"{name}.png"))
                print(f"saved {name}", flush=True)
                if name == stop_after:
                    quit_all()
                    return
            position["index"] += 1
            try:
                then()
            except Exception:  # a tour step that fails must say so, not stall the tour
                traceback.print_exc()
                app.quit()
                return
            QTimer.singleShot(300, tick)

        QTimer.singleShot(800, shoot_and_go)  # let the page paint (and charts redraw) first

    QTimer.singleShot(500, tick)
    app.exec()


if __name__ == "__main__":
    main()
