"""The Qt binding itself: PySide6 6.12.0 dropped a reference to None on every void-returning call, which
crashed the app on Python 3.11 after a few thousand chart paints. Guard against such a release."""

import subprocess
import sys

PROBE = """
import gc, os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPen
app = QGuiApplication([])
image = QImage(64, 64, QImage.Format.Format_ARGB32)
painter = QPainter(image)
pen = QPen(QColor("red"))
gc.disable()
before = sys.getrefcount(None)
for _ in range(500):
    painter.setPen(pen)
    painter.drawLine(QPointF(0, 0), QPointF(10, 10))
print(sys.getrefcount(None) - before)
painter.end()
"""


def test_void_calls_keep_none_alive():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    delta = int(out.stdout.strip().splitlines()[-1])
    assert delta > -50, f"the Qt binding drops references to None ({delta} after 1,000 calls)"
