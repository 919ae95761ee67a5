"""Test set-up: offscreen Qt, no hub, an isolated app home, and a tiny Llama-style model built locally."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from tiny_model import build_tiny_model  # noqa: E402  (tools/ is not a package)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Never read or write the developer's real data, cache or settings."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("FINETUNE_GUI_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg-config"))
    return home


@pytest.fixture(autouse=True)
def no_leftover_threads_or_processes():
    """Fail a test that leaves a QThread, a child process of the app's client, or any child process of
    this test process running (napari's _dangling_qthreads, extended to processes)."""
    import psutil
    from PySide6.QtCore import QThread

    started: list[QThread] = []
    original = QThread.start

    def tracking_start(self, *args):
        started.append(self)
        return original(self, *args)

    QThread.start = tracking_start
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    try:
        yield
    finally:
        QThread.start = original
    left = []
    threads = [t for t in started if _alive_thread(t)]
    for thread in threads:
        thread.quit()
        thread.wait(5000)
        left.append(f"QThread {thread!r}")
    if "finetune_gui.gui.child" in sys.modules:
        from finetune_gui.gui.child import ChildProcess

        for child in list(ChildProcess.running):
            ChildProcess.running.discard(child)
            if child.wait(2):  # cancelled or closed with its window: it has exited
                continue
            child.kill()
            child.wait(10)
            left.append(f"child process {child.args[:2]}")
    for process in psutil.Process().children(recursive=True):
        if process.pid in before:
            continue
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            left.append(f"process {process.pid} {' '.join(process.cmdline()[:5])}")
            process.kill()
        except psutil.Error:
            continue
    assert not left, f"the test left these running: {left}"


def _alive_thread(thread) -> bool:
    try:
        return thread.isRunning()
    except RuntimeError:  # its C++ object is gone: it is not running
        return False


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama with a locally trained BPE tokenizer and a ChatML template (random weights)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """The real demo model, converted once into the repo's .cache (slow tests only)."""
    from finetune_gui.core import demo

    cache = REPO / ".cache" / "test-home"
    old = os.environ.get("FINETUNE_GUI_HOME")
    os.environ["FINETUNE_GUI_HOME"] = str(cache)
    try:
        return demo.prepare_demo_model()
    finally:
        if old is not None:
            os.environ["FINETUNE_GUI_HOME"] = old


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory):
    """16 rows of the demo dataset: chat rows with made-up facts."""
    lines = (REPO / "resources" / "demo-dataset.jsonl").read_text().splitlines()[:16]
    path = tmp_path_factory.mktemp("data") / "small.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path
