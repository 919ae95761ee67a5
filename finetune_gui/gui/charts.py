"""pyqtgraph charts in the app's look: the window's background, antialiased lines, a faint grid, units.

Imported lazily (pyqtgraph costs about half a second), the first time a page needs a chart.
"""

from __future__ import annotations

import itertools

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from finetune_gui.gui.theme import ACCENT

pg.setConfigOptions(antialias=True)

EVAL_COLOUR = "#e07b39"
ESTIMATE_COLOUR = "#9aa0a6"


def _styled(plot: pg.PlotWidget, left: str, bottom: str) -> pg.PlotWidget:
    palette = QApplication.palette()
    plot.setBackground(palette.color(QPalette.ColorRole.Window))
    text = palette.color(QPalette.ColorRole.WindowText)
    for name, label in (("left", left), ("bottom", bottom)):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(text))
        axis.setTextPen(pg.mkPen(text))
        axis.setLabel(label, color=text.name())
        # Two tick levels, not three: grid lines of a third level doubled every axis repaint.
        axis.setStyle(maxTickLevel=1)
        # Plain values ("0.0002"), not pyqtgraph's scaled ones ("2 (x0.0001)") that read as jargon.
        axis.enableAutoSIPrefix(False)
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.setMenuEnabled(False)
    return plot


class WholeAxis(pg.AxisItem):
    """An axis of whole numbers (steps, tokens): no tick at step 2.5."""

    def tickValues(self, minVal, maxVal, size):  # pyqtgraph's names
        levels = [(s, v) for s, v in super().tickValues(minVal, maxVal, size) if s >= 1]
        if not levels:  # zoomed in to a few steps: a tick at each whole step in view
            return [(1.0, [float(v) for v in range(int(np.ceil(minVal)), int(np.floor(maxVal)) + 1)])]
        return levels


class HistogramPlot(pg.PlotWidget):
    """Token lengths with the cut-off line at max_seq_len."""

    def __init__(self) -> None:
        super().__init__()
        _styled(self, "rows", "tokens per example")
        self.setMinimumHeight(180)
        self.bars: pg.BarGraphItem | None = None
        self.cutoff = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(EVAL_COLOUR, width=2, style=pg.QtCore.Qt.PenStyle.DashLine)
        )
        self.addItem(self.cutoff)

    def set_histogram(self, edges: list[float], counts: list[int], cutoff: int) -> None:
        if self.bars is not None:
            self.removeItem(self.bars)
        widths = [b - a for a, b in itertools.pairwise(edges)]
        centres = [a + w / 2 for a, w in zip(edges[:-1], widths, strict=True)]
        self.bars = pg.BarGraphItem(
            x=centres, height=counts, width=[w * 0.9 for w in widths], brush=QColor(ACCENT)
        )
        self.addItem(self.bars)
        self.cutoff.setValue(cutoff)
        self.cutoff.setToolTip(f"max_seq_len = {cutoff}")


def histogram_plot() -> HistogramPlot:
    return HistogramPlot()


class Series:
    """One curve's data in growable numpy buffers (appends are O(1); a redraw hands pyqtgraph views,
    with no list-to-array conversion), drawn by the chart's timer."""

    def __init__(self, curve: pg.PlotDataItem):
        self.curve = curve
        self._x = np.empty(256)
        self._y = np.empty(256)
        self.n = 0
        self.dirty = False

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.n]

    def append(self, x: float, y: float) -> None:
        if self.n == len(self._x):
            self._x = np.concatenate([self._x, np.empty(len(self._x))])
            self._y = np.concatenate([self._y, np.empty(len(self._y))])
        self._x[self.n], self._y[self.n] = x, y
        self.n += 1
        self.dirty = True

    def set(self, xs, ys) -> None:
        self._x = np.array(xs, dtype=float)
        self._y = np.array(ys, dtype=float)
        self.n = len(self._x)
        if self.n == 0:
            self._x, self._y = np.empty(256), np.empty(256)
        self.dirty = True

    def keep_up_to(self, x: float) -> None:
        """Drop the points after ``x`` (a resumed run logs the steps after its checkpoint again)."""
        n = int(np.searchsorted(self.x, x, side="right"))
        if n < self.n:
            self.n = n
            self.dirty = True

    def draw(self) -> None:
        if self.dirty:
            self.curve.setData(self.x, self.y, skipFiniteCheck=True)  # events carry finite numbers only
            self.dirty = False


class LiveChart(pg.PlotWidget):
    """A chart of several series. Appending is cheap; ``redraw`` (called by a timer about ten times a
    second) pushes only changed series with ``setData``. Peak downsampling and clip-to-view keep
    100,000 points smooth; hovering shows the nearest value. The legend is a line of coloured names in
    the title, listing only series that have data: a legend inside the plot would sit on the curves."""

    def __init__(self, title: str, unit: str, x_label: str = "step"):
        super().__init__(axisItems={"bottom": WholeAxis("bottom")} if x_label == "step" else None)
        _styled(self, unit, x_label)
        self.title = title
        self.text_colour = QApplication.palette().color(QPalette.ColorRole.WindowText).name()
        self.colours: dict[str, str] = {}
        self._titled: tuple[str, ...] = ()
        self._one_line_width: float | None = None
        self._title_html = title
        self.setTitle(title, color=self.text_colour)
        self.setMinimumHeight(170)
        self.series: dict[str, Series] = {}
        self.setMouseTracking(True)
        self.scene().sigMouseMoved.connect(self._on_hover)

    def add_series(
        self, name: str, colour: str = ACCENT, *, dashed: bool = False, markers: bool = False
    ) -> Series:
        # One-pixel pens: antialiased wider pens made a 100,000-point redraw 50 times slower here.
        style = pg.QtCore.Qt.PenStyle.DashLine if dashed else pg.QtCore.Qt.PenStyle.SolidLine
        pen = pg.mkPen(colour, width=1, style=style)
        kwargs = {"symbol": "o", "symbolSize": 6, "symbolBrush": colour, "symbolPen": None} if markers else {}
        curve = self.plot([], [], pen=pen, **kwargs)
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        series = Series(curve)
        self.series[name] = series
        self.colours[name] = colour
        return series

    @property
    def dirty(self) -> bool:
        return any(series.dirty for series in self.series.values())

    def redraw(self) -> None:
        for series in self.series.values():
            series.draw()
        shown = tuple(name for name, series in self.series.items() if series.n)
        if shown != self._titled:
            self._titled = shown
            self._one_line_width = None
            self._fit_title()

    def _fit_title(self) -> None:
        """The title with its legend on one line where it fits, else the legend on a second line: the
        title's width is the plot's minimum, so a line wider than the chart pushed the plot's right
        part out of view (the Memory chart at 1024 pixels wide)."""
        if len(self._titled) < 2:
            self._set_title(self.title)
            return
        names = " ".join(
            f'<span style="color:{self.colours[name]}">■</span> {name}&nbsp;' for name in self._titled
        )
        title = f'<span style="color:{self.text_colour}">{self.title}</span>'
        legend = f'<span style="color:{self.text_colour}; font-size:9pt">{names}</span>'
        if self._one_line_width is None:  # measured once per legend: it does not depend on the size
            self._set_title(f"{title}&nbsp;&nbsp;{legend}")
            self._one_line_width = self.getPlotItem().titleLabel.item.boundingRect().width()
        # The title spans the plot's columns, not the left axis (about 60 pixels).
        self._set_title(
            f"{title}&nbsp;&nbsp;{legend}"
            if self._one_line_width <= self.width() - 60
            else f"{title}<br>{legend}"
        )

    def _set_title(self, html: str) -> None:
        if html != self._title_html:
            self._title_html = html
            self.setTitle(html, color=self.text_colour)
            # The plot keeps the geometry the wider title forced on it until the view is resized: fit
            # it to the view again now.
            pg.GraphicsView.resizeEvent(self, None)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)  # pyqtgraph calls this from its own constructor, before ours ran
        if getattr(self, "_one_line_width", None) is not None:
            self._fit_title()

    def _on_hover(self, pos) -> None:
        if not self.sceneBoundingRect().contains(pos):
            return
        point = self.getPlotItem().vb.mapSceneToView(pos)
        lines = []
        for name, series in self.series.items():
            if not series.n:
                continue
            index = _bisect_nearest(series.x, point.x())  # steps only grow, so x is sorted
            lines.append(f"{name}: {series.y[index]:.4g} at {series.x[index]:g}")
        self.setToolTip("\n".join(lines))


def _bisect_nearest(xs: np.ndarray, x: float) -> int:
    i = int(np.searchsorted(xs, x))
    if i <= 0:
        return 0
    if i >= len(xs):
        return len(xs) - 1
    return i if xs[i] - x < x - xs[i - 1] else i - 1
