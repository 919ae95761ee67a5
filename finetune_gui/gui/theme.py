"""Fusion style with a palette that follows the system's dark or light mode, and one accent colour.

The scheme can be set for the app alone: ``theme = dark`` or ``light`` in settings.ini, or the
``FINETUNE_GUI_THEME`` environment variable (which wins): for desktops that give Qt no colour-scheme hint
(many Linux window managers, Xvfb), and for screenshots of both."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#3d7be0"
THEME_ENV = "FINETUNE_GUI_THEME"
SCHEMES = {"dark": Qt.ColorScheme.Dark, "light": Qt.ColorScheme.Light}


def chosen_scheme() -> str:
    """'dark', 'light', or '' to follow the system."""
    from finetune_gui.gui.settings import app_settings

    wanted = os.environ.get(THEME_ENV) or str(app_settings().value("theme", "") or "")
    return wanted.strip().lower() if wanted.strip().lower() in SCHEMES else ""


def translucent(colour: str, alpha: float) -> str:
    """'rgba(61, 123, 224, 0.2)' for '#3d7be0': Qt's rich text reads '#3d7be033' as #AARRGGBB (a green)."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def is_dark() -> bool:
    """The app's own choice when it has one (some platforms, offscreen among them, ignore a requested
    scheme), else the system's."""
    scheme = chosen_scheme()
    if scheme:
        return scheme == "dark"
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication) -> None:
    scheme = chosen_scheme()
    if scheme:  # Qt's own drawing (title bars, dialogs) follows too where the platform allows it
        app.styleHints().setColorScheme(SCHEMES[scheme])
    app.setStyle("Fusion")
    palette = app.style().standardPalette()
    if is_dark():
        palette = QPalette()
        for role, colour in (
            (QPalette.ColorRole.Window, "#202124"),
            (QPalette.ColorRole.WindowText, "#e8eaed"),
            (QPalette.ColorRole.Base, "#171819"),
            (QPalette.ColorRole.AlternateBase, "#26282b"),
            (QPalette.ColorRole.Text, "#e8eaed"),
            (QPalette.ColorRole.Button, "#2b2d31"),
            (QPalette.ColorRole.ButtonText, "#e8eaed"),
            (QPalette.ColorRole.ToolTipBase, "#2b2d31"),
            (QPalette.ColorRole.ToolTipText, "#e8eaed"),
            (QPalette.ColorRole.PlaceholderText, "#9aa0a6"),
        ):
            palette.setColor(role, QColor(colour))
        # setColor(role, …) paints every group alike, so a disabled button looked enabled: the Disabled
        # group gets dimmed text and a flatter button of its own.
        disabled = QPalette.ColorGroup.Disabled
        for role, colour in (
            (QPalette.ColorRole.WindowText, "#6f7378"),
            (QPalette.ColorRole.Text, "#6f7378"),
            (QPalette.ColorRole.ButtonText, "#6f7378"),
            (QPalette.ColorRole.Button, "#232427"),
            (QPalette.ColorRole.Base, "#1d1e20"),
        ):
            palette.setColor(disabled, role, QColor(colour))
    palette.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    palette.setColor(QPalette.ColorRole.HighlightedText, QColor("#ffffff"))
    palette.setColor(QPalette.ColorRole.Link, QColor(ACCENT))
    app.setPalette(palette)
    app.setStyleSheet(STYLE)


# Only what the palette cannot say: the navigation rail's spacing and selection, the page titles.
STYLE = f"""
QListWidget#navRail {{ border: none; padding-top: 8px; background: palette(alternate-base); }}
QListWidget#navRail::item {{ padding-left: 12px; border-radius: 6px; margin: 2px 8px; }}
QListWidget#navRail::item:selected {{ background: {ACCENT}; color: white; }}
QLabel#emptyState, QLabel#muted {{ color: palette(placeholder-text); }}
QLabel#error {{ color: #d2473d; }}
QLabel#badge {{ background: {ACCENT}; color: white; border-radius: 8px; padding: 2px 8px; }}
QFrame#card {{ background: palette(base); border: 1px solid palette(mid); border-radius: 8px; }}
QFrame#card[selected="true"] {{ border: 2px solid {ACCENT}; }}
QFrame#dropZone {{ border: 2px dashed palette(mid); border-radius: 10px; }}
QPushButton#primary {{ background: {ACCENT}; color: white; border-radius: 6px; padding: 6px 18px; }}
QPushButton#primary:disabled {{ background: palette(mid); }}
"""
