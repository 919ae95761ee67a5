"""The layering rules of docs/architecture.md, checked from the outside."""

import subprocess
import sys
from pathlib import Path

import finetune_gui

PACKAGE = Path(finetune_gui.__file__).parent


def test_core_imports_no_qt():
    code = (
        "import sys, pkgutil, importlib, finetune_gui.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'finetune_gui.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(k for k in sys.modules if k.startswith(('PySide6', 'pyqtgraph'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_gui_modules_import_no_ml_library_at_module_level():
    code = (
        "import sys, pkgutil, importlib, finetune_gui.gui as gui\n"
        "for m in pkgutil.walk_packages(gui.__path__, 'finetune_gui.gui.'):\n"
        "    importlib.import_module(m.name)\n"
        "print(sorted(k for k in ('torch', 'transformers', 'peft', 'trl', 'datasets') if k in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_smoke_test_shows_the_window_without_torch(tmp_path):
    import json
    import os

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", FINETUNE_GUI_HOME=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "--smoke-test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["torch_imported"] is False
    assert data["window_shown_s"] > 0
