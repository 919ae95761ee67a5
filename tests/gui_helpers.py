"""Driving the real window as a user does: buttons found by their text, typing, real drop events,
dialog buttons clicked by their text."""

from __future__ import annotations

import itertools
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QAbstractButton, QApplication, QLineEdit, QMessageBox, QWidget


def button(root: QWidget, text: str) -> QAbstractButton:
    """The one visible, enabled-or-not button under ``root`` whose text is ``text``."""
    found = [b for b in root.findChildren(QAbstractButton) if b.text() == text and b.isVisible()]
    assert len(found) == 1, f"{len(found)} visible buttons say {text!r}"
    return found[0]


def click(qtbot, root: QWidget, text: str) -> None:
    target = button(root, text)
    assert target.isEnabled(), f"{text!r} is disabled"
    qtbot.mouseClick(target, Qt.MouseButton.LeftButton)


def type_into(qtbot, field: QLineEdit, text: str) -> None:
    """Replace a field's text by typing, then press Enter (which commits it, as a user would)."""
    field.setFocus()
    field.selectAll()
    qtbot.keyClick(field, Qt.Key.Key_Delete)
    qtbot.keyClicks(field, text)
    qtbot.keyClick(field, Qt.Key.Key_Return)


def drop(target: QWidget, path: str | Path) -> None:
    """Drag one file over ``target`` and drop it: the enter, move and drop events Qt delivers."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(QPoint(20, 20), *args)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted(), "the window refused the drag"
    QApplication.sendEvent(target, QDragMoveEvent(QPoint(22, 22), *args))
    dropped = QDropEvent(QPointF(22, 22), *args)
    QApplication.sendEvent(target, dropped)
    assert dropped.isAccepted(), "the drop was not taken"


def answer_next_dialog(text: str) -> None:
    """Click ``text`` on the next modal dialog to open (for dialogs run with exec())."""

    def press() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(50, press)
            return
        for candidate in box.buttons():
            if candidate.text() == text:
                candidate.click()
                return
        raise AssertionError(f"the dialog has no {text!r} button")

    QTimer.singleShot(50, press)


def click_in_dialog(qtbot, box: QMessageBox, text: str) -> None:
    for candidate in box.buttons():
        if candidate.text() == text:
            qtbot.mouseClick(candidate, Qt.MouseButton.LeftButton)
            return
    raise AssertionError(f"the dialog has no {text!r} button: {[b.text() for b in box.buttons()]}")


def click_card(qtbot, card: QWidget) -> None:
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton, pos=QPoint(20, 20))


def select_rows(qtbot, table, rows: list[int]) -> None:
    """Click the first row, Ctrl-click the others."""
    for index, row in enumerate(rows):
        rect = table.visualRect(table.model().index(row, 0))
        modifier = Qt.KeyboardModifier.ControlModifier if index else Qt.KeyboardModifier.NoModifier
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())


def rail(qtbot, window, section: str) -> None:
    """Click a section in the navigation rail."""
    items = window.rail.findItems(section, Qt.MatchFlag.MatchExactly)
    assert items, section
    rect = window.rail.visualItemRect(items[0])
    qtbot.mouseClick(window.rail.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def strictly_increasing(values) -> bool:
    values = list(values)
    return all(b > a for a, b in itertools.pairwise(values))
