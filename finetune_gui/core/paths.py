"""Where the app keeps its files: platformdirs, or everything under FINETUNE_GUI_HOME when it is set."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "finetune-gui"
HOME_ENV = "FINETUNE_GUI_HOME"


def _home_override() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Models, the adapter library and other things the user would back up."""
    home = _home_override()
    if home is not None:
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Things that can be rebuilt (tokenized datasets)."""
    home = _home_override()
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def config_dir() -> Path:
    home = _home_override()
    if home is not None:
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def runs_dir() -> Path:
    """The default parent of run folders that the wizard creates."""
    return data_dir() / "runs"


def models_dir() -> Path:
    return data_dir() / "models"


def resources_dir() -> Path:
    """The repository's resources/ folder (icons, the demo dataset)."""
    return Path(__file__).resolve().parents[2] / "resources"
