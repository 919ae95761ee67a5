"""The layering rules of docs/architecture.md, checked from the outside."""

import re
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


def test_the_core_is_grouped_by_stage():
    """At most 12 modules directly in core/; the stages are packages; no argparse or print in the core
    (it reports through its event sinks; the progress-bar sink is the one that writes text)."""
    import ast

    core = PACKAGE / "core"
    top = sorted(p.name for p in core.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 12, top
    for stage in ("data", "estimate", "training", "tuners", "adapters"):
        assert (core / stage / "__init__.py").is_file(), stage
    for path in core.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                assert path.name == "sinks.py", f"{path} prints"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert "argparse" not in names, f"{path} imports argparse"


def test_no_module_outside_the_registry_spells_a_method_name():
    """Method names live in core/methods.py and the per-method set-up (core/tuners/setup.py); the GUI,
    merge, advice and recommendation ask the registry."""
    import re

    from finetune_gui.core.methods import METHODS

    pattern = re.compile(r"""method\s*(==|!=|in)\s*\(?\s*["']({})["']""".format("|".join(METHODS)))
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).as_posix() in ("core/methods.py", "core/tuners/setup.py"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not pattern.search(text), f"{path} branches on a method name"


def test_the_error_sentence_is_written_and_read_in_one_place():
    from finetune_gui.core.errors import error_line, note_line, parse_error, parse_notes

    said = "The dataset has no rows: add rows or choose another file."
    stderr = [note_line("first note"), "Traceback (most recent call last):", error_line(said), ""]
    assert parse_error(stderr) == said
    assert parse_error([note_line("only a note"), "last words"]) == "last words"  # a note is not the error
    assert parse_notes("\n".join(stderr)) == ["first note"]
    # Nothing else spells the prefix: a second spelling would be a second format to keep in step.
    spelled = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "errors.py" and re.search(r'(?<!"")"finetune-gui: ', path.read_text(encoding="utf-8"))
    ]
    assert spelled == []


def test_each_failure_kind_has_its_wire_word_and_exit_code():
    from finetune_gui.core.errors import ConfigError, DataError, FailureKind, UserError
    from finetune_gui.core.training.failures import Diverged

    words = {kind.value: kind.exit_code for kind in FailureKind}
    assert words == {"config": 1, "data": 2, "oom": 3, "disk": 6, "diverged": 5, "crash": 1}
    assert (ConfigError("x").exit_code, DataError("x").exit_code, Diverged("x").exit_code) == (1, 2, 5)
    assert UserError("x", kind=FailureKind.OOM).exit_code == 3
    assert UserError("x", kind=FailureKind.DATA, exit_code=4).exit_code == 4  # a command's own code wins
    assert f"{FailureKind.DISK}" == "disk" and FailureKind("oom") is FailureKind.OOM
