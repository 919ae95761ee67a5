"""Redraw time of a dashboard chart holding 100,000 points per series (offscreen), with the app's
settings (peak downsampling, clip-to-view) and, side by side, without them.

    .venv/bin/python bench/chart_render.py [--points 100000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def measure(chart, app, repeats: int) -> float:
    times = []
    for i in range(repeats):
        series = next(iter(chart.series.values()))
        series.append(series.x[-1] + 1, math.sin(i))  # new data, as during training
        start = time.perf_counter()
        chart.redraw()
        chart.repaint()
        app.processEvents()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from finetune_gui.gui.charts import LiveChart

    app = QApplication(sys.argv[:1])
    results = {}
    for label, optimised in (("app", True), ("plain", False)):
        chart = LiveChart("Loss", "loss")
        chart.resize(900, 400)
        chart.show()
        for name in ("train", "smoothed", "eval"):
            series = chart.add_series(name)
            if not optimised:
                series.curve.setDownsampling(auto=False)
                series.curve.setClipToView(False)
            xs = list(range(args.points))
            series.set(xs, [math.exp(-x / args.points) + 0.1 * math.sin(x / 7) for x in xs])
        chart.redraw()
        app.processEvents()
        results[label] = measure(chart, app, args.repeats)
        chart.close()
    print(
        json.dumps(
            {
                "benchmark": "chart_render",
                "points_per_series": args.points,
                "series": 3,
                "redraw_ms_median": round(results["app"], 2),
                "redraw_ms_without_downsampling": round(results["plain"], 2),
                "speedup": round(results["plain"] / results["app"], 2) if results["app"] else None,
            }
        )
    )


if __name__ == "__main__":
    main()
