"""Small widgets the pages share: titles, cards, a memory bar with a budget line, a drop zone, busy rows."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

GREEN, AMBER, RED = "#2e9d5b", "#d89a1d", "#d2473d"
# The learning and forgetting checks' verdicts as the window marks them: an icon and a colour each.
VERDICT_MARKS = {
    "learned": ("✓", GREEN),
    "absorbed": ("◐", AMBER),
    "cannot judge": ("?", AMBER),
    "changed, not right": ("✗", RED),
    "did not move": ("✗", RED),
    # Did it forget? (core/training/forgetting.py)
    "kept": ("✓", GREEN),
    "some": ("◐", AMBER),
    "forgot": ("✗", RED),
}


def verdict_mark(verdict: str) -> tuple[str, str]:
    return VERDICT_MARKS.get(verdict, ("", ""))


def title_label(text: str, scale: float = 1.5) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * scale)
    font.setBold(True)
    label.setFont(font)
    return label


def muted(text: str = "", wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(wrap)
    label.setObjectName("muted")
    return label


class Card(QFrame):
    """A rounded panel; ``selected`` draws it in the accent colour."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("card")
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(16, 12, 16, 12)
        self.layout_.setSpacing(6)
        self.set_selected(False)

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", selected)
        self.style().unpolish(self)
        self.style().polish(self)


class MemoryBar(QWidget):
    """A horizontal bar of estimated memory against a vertical line at the budget (free VRAM or RAM).

    Green when the estimate fits with 10% to spare, amber when tight, red when it does not fit; grey with
    no line while the budget is not known (``None``).
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.value = 0.0
        self.budget: float | None = 0.0
        self.scale = 1.0
        self.setMinimumHeight(14)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_values(self, value: float, budget: float | None, scale: float) -> None:
        self.value, self.budget, self.scale = value, budget, max(scale, 1e-6)
        free = f"{budget:.1f} GB free" if budget is not None else "free memory not known yet"
        self.setToolTip(f"{value:.1f} GB estimated · {free}")
        self.update()

    def colour(self) -> str:
        if self.budget is None:
            return "#9aa0a6"
        if self.value > self.budget:
            return RED
        return AMBER if self.value > 0.9 * self.budget else GREEN

    def paintEvent(self, _event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(0, 2, -1, -2)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.palette().color(QPalette.ColorRole.AlternateBase).darker(108))
        painter.drawRoundedRect(rect, 4, 4)
        width = rect.width() * min(1.0, self.value / self.scale)
        painter.setBrush(QColor(self.colour()))
        painter.drawRoundedRect(QRectF(rect.left(), rect.top(), width, rect.height()), 4, 4)
        if self.budget is None:
            return
        x = rect.left() + rect.width() * min(1.0, self.budget / self.scale)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.WindowText), 2))
        painter.drawLine(int(x), 0, int(x), self.height())


class DropZone(QFrame):
    """A large dashed area that accepts dropped files; the window routes drops here too."""

    dropped = Signal(str)

    def __init__(self, text: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        self.setMinimumHeight(110)
        layout = QVBoxLayout(self)
        self.label = QLabel(text)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = QFont(self.label.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.label.setFont(font)
        layout.addWidget(self.label)

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.dropped.emit(urls[0].toLocalFile())
            event.acceptProposedAction()


class BusyRow(QWidget):
    """'Working…' with an indeterminate bar and a Cancel button; hidden when idle."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setMaximumWidth(160)
        self.bar.setTextVisible(False)
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.cancel_requested)
        row.addWidget(self.label)
        row.addWidget(self.bar)
        row.addWidget(self.cancel)
        row.addStretch(1)
        self.hide()

    def start(self, text: str) -> None:
        self.label.setText(text)
        self.bar.setRange(0, 0)
        self.show()

    def set_progress(self, fraction: float, text: str = "") -> None:
        self.bar.setRange(0, 1000)
        self.bar.setValue(int(fraction * 1000))
        if text:
            self.label.setText(text)

    def stop(self) -> None:
        self.hide()


class EmptyState(QWidget):
    """What a page shows when it has nothing yet: what to do, and a button that goes there."""

    def __init__(self, text: str, action: str, on_click, parent: QWidget | None = None):
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.addStretch(1)
        self.label = QLabel(text)
        self.label.setObjectName("emptyState")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setWordWrap(True)
        column.addWidget(self.label)
        row = QHBoxLayout()
        row.addStretch(1)
        self.button = QPushButton(action)
        self.button.clicked.connect(on_click)
        row.addWidget(self.button)
        row.addStretch(1)
        column.addLayout(row)
        column.addStretch(1)

    def text(self) -> str:
        return self.label.text()


def empty_state(text: str, action: str, on_click) -> EmptyState:
    return EmptyState(text, action, on_click)


def error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setObjectName("error")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def show_error(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))


def human_count(n: float) -> str:
    for limit, suffix in ((1e9, " B"), (1e6, " M"), (1e3, " k")):
        if n >= limit:
            return f"{n / limit:.1f}{suffix}"
    return f"{int(n)}"


def human_duration(seconds: float | None, rough: bool = False) -> str:
    """'4 min 05 s' for a running clock, or '4 min' for an estimate (``rough``)."""
    if seconds is None:
        return "–"
    if rough:
        if seconds < 90:
            return f"{seconds:.0f} s"
        return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def fill_table(table, rows: list[list[str]], empty: QWidget | None = None) -> None:
    """Replace a QTableWidget's rows with these texts; with no rows, show ``empty`` instead of the table."""
    from PySide6.QtWidgets import QTableWidgetItem

    if empty is not None:
        empty.setVisible(not rows)
        table.setVisible(bool(rows))
    table.setRowCount(len(rows))
    for row, values in enumerate(rows):
        for column, value in enumerate(values):
            table.setItem(row, column, QTableWidgetItem(str(value)))


def selected_items(table, items: list) -> list:
    """The items behind a table's selected rows, in row order."""
    rows = sorted({index.row() for index in table.selectionModel().selectedRows()})
    return [items[r] for r in rows if r < len(items)]


def quality_loss(metrics: dict) -> float | None:
    """The loss to show for a finished run: the evaluation loss, else the smoothed training loss (the
    last raw step's loss says little: one batch)."""
    for key in ("eval_loss", "smoothed_loss", "final_loss"):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            return float(value)
    return None


def metrics_sentence(metrics: dict) -> str:
    """'120 steps, evaluation loss 1.234' for a run's metrics, in words rather than keys."""
    parts = []
    if metrics.get("steps"):
        parts.append(f"{metrics['steps']:,} steps")
    if isinstance(metrics.get("eval_loss"), (int, float)):
        parts.append(f"evaluation loss {metrics['eval_loss']:.3f}")
    elif isinstance(metrics.get("smoothed_loss"), (int, float)):
        parts.append(f"training loss {metrics['smoothed_loss']:.3f} (smoothed)")
    if metrics.get("pairs"):
        parts.append(
            f"prefers the chosen answer on {metrics.get('preferred_chosen', 0)} of {metrics['pairs']} held-out pairs "
            f"(base: {metrics.get('base_preferred_chosen', 0)})"
        )
    return ", ".join(parts)


def replace_placeholder(stack: QStackedWidget, index: int, page: QWidget) -> None:
    """Put a page built on first use where its placeholder stood, still shown if the placeholder was."""
    placeholder = stack.widget(index)
    showing = stack.currentIndex() == index
    stack.removeWidget(placeholder)
    placeholder.deleteLater()
    stack.insertWidget(index, page)
    if showing:
        stack.setCurrentIndex(index)
