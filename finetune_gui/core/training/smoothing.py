"""The smoothed training loss, one rule for the dashboard's chart, the flat-loss and memorising alerts
and run.json's ``smoothed_loss``: an exponential moving average, bias-corrected as Adam's moments are.
Started from zero and divided by the weight the points so far carry, its first values follow the first
losses (a plain average started at the first loss stays above a falling loss for about 20 steps)."""

from __future__ import annotations

from collections.abc import Iterable

SMOOTHING = 0.9  # the weight of the history at each point


class Smoother:
    def __init__(self, factor: float = SMOOTHING):
        self.factor = factor
        self.raw = 0.0
        self.count = 0

    def add(self, value: float) -> float:
        self.raw = self.factor * self.raw + (1 - self.factor) * value
        self.count += 1
        return self._corrected()

    @property
    def value(self) -> float | None:
        return self._corrected() if self.count else None

    def _corrected(self) -> float:
        return self.raw / (1 - self.factor**self.count)


def smoothed(values: Iterable[float], factor: float = SMOOTHING) -> float | None:
    """The last smoothed value of ``values`` (None for none)."""
    smoother = Smoother(factor)
    for value in values:
        smoother.add(value)
    return smoother.value
