"""What the Training page shows of one run, kept apart from the widgets: the chart points, the log, the
sample answers, the status and the facts line. The dashboard keeps one view for the run it drives and
one for a past run the user opened, and shows either, so opening another run's charts never loses the
live one's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from finetune_gui.core.events import Fix
from finetune_gui.core.training.smoothing import Smoother


@dataclass
class RunView:
    path: Path
    status: str = "idle"
    facts: str = ""
    progress: int = 0
    max_steps: int = 1
    estimate_gib: float | None = None
    smoother: Smoother = field(default_factory=Smoother)  # the smoothed loss so far
    points: dict[tuple[str, str], tuple[list[float], list[float]]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    learned: str = ""  # the learning check's verdict, in words
    learned_verdict: str = ""  # its one word (learned, absorbed, did not move…)
    forgot: str = ""  # the forgetting check's sentence
    forgot_verdict: str = ""  # kept | some | forgot
    alerts: list[tuple[str, Fix | None]] = field(default_factory=list)  # (sentence, its first fix)

    @property
    def name(self) -> str:
        return self.path.name

    def add(self, chart: str, series: str, x: float, y: float) -> None:
        xs, ys = self.points.setdefault((chart, series), ([], []))
        xs.append(x)
        ys.append(y)

    def smooth(self, loss: float) -> float:
        return self.smoother.add(loss)

    def keep_up_to(self, step: int) -> bool:
        """Drop points after ``step`` (a resumed run logs them again); True when any were dropped."""
        dropped = False
        for xs, ys in self.points.values():
            while xs and xs[-1] > step:
                xs.pop()
                ys.pop()
                dropped = True
        self.smoother = Smoother()  # from the kept raw losses again
        for loss in self.points.get(("loss", "train"), ([], []))[1]:
            self.smoother.add(loss)
        return dropped

    def last(self, chart: str, series: str) -> float | None:
        ys = self.points.get((chart, series), ([], []))[1]
        return ys[-1] if ys else None
