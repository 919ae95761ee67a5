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
