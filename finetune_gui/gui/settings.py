"""The window's preferences (recent models, window geometry): an INI file in the app's config folder,
so FINETUNE_GUI_HOME keeps them with everything else and tests never touch the real ones."""

from __future__ import annotations

from PySide6.QtCore import QSettings

from finetune_gui.core.paths import config_dir


def app_settings() -> QSettings:
    return QSettings(str(config_dir() / "settings.ini"), QSettings.Format.IniFormat)
