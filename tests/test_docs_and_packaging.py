"""The README's commands exist; the desktop entry, AppStream metainfo and icon are valid."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def readme_commands() -> list[list[str]]:
    """Every `finetune-gui …` line inside the README's code blocks, as words."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("finetune-gui"):
                commands.append(line.split())
    return commands


def help_text(words: list[str]) -> str:
    return subprocess.run(
        [sys.executable, "-m", "finetune_gui", *words, "--help"], capture_output=True, text=True, timeout=60
    ).stdout


def test_every_readme_command_and_flag_exists():
    commands = readme_commands()
    assert len(commands) >= 8
    for words in commands:
        path = [w for w in words[1:3] if re.fullmatch(r"[a-z][a-z-]*", w)]
        if path[:1] in (["data"], ["adapters"]):  # two-level commands
            path = path[:2]
        elif path:
            path = path[:1]
        text = help_text(path)
        assert text, f"`finetune-gui {' '.join(path)}` has no help"
        for flag in re.findall(r"--[a-z][a-z-]*", " ".join(words)):
            assert flag in text, (
                f"{flag} of `{' '.join(words)}` is not in `finetune-gui {' '.join(path)} --help`"
            )


@pytest.mark.skipif(
    shutil.which("desktop-file-validate") is None, reason="desktop-file-utils is not installed"
)
def test_desktop_entry_validates():
    result = subprocess.run(
        ["desktop-file-validate", str(REPO / "packaging" / "finetune-gui.desktop")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and "error" not in result.stdout.lower(), result.stdout


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstream is not installed")
def test_metainfo_validates():
    result = subprocess.run(
        [
            "appstreamcli",
            "validate",
            "--no-net",
            str(REPO / "packaging" / "io.github.finetune_gui.metainfo.xml"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_icon_sizes_exist():
    for size in (16, 32, 48, 64, 128, 256, 512):
        assert (REPO / "resources" / "icons" / f"finetune-gui-{size}.png").is_file()
    assert (REPO / "resources" / "finetune-gui.svg").read_text().startswith("<svg")
