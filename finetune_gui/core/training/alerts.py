"""Health alerts while a run trains: one sentence each with what to do, and a setting that fixes it
where there is one (the window applies it and continues from the last checkpoint).

Each alert fires at most once a run, from the curves the dashboard draws, so its advice never
contradicts them:

- **flat loss**: after warm-up and a fifth of the run, the smoothed training loss has fallen by less
  than 2%: the learning rate is too low for this method and size (fix: three times the proposal, or
  three times the rate when it is above the proposal already);
- **memorising**: the training loss is far below the best evaluation loss (under 30% of it) while the
  evaluation loss has risen above its best (fix: early stopping);
- **eval rising**: the evaluation loss rose at three evaluations in a row (fix: early stopping);
- **gradient spike**: a gradient norm ten times the run's median so far (fix: half the learning rate).

Non-finite losses and weights stop the run (``failures.Diverged``); they are not alerts.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from transformers import TrainerCallback

from finetune_gui.core.events import Alert, Emit, Fix
from finetune_gui.core.runs import RunFolder
from finetune_gui.core.training.smoothing import Smoother

FLAT_SHARE = 0.02  # the smoothed loss must fall by at least this share after warm-up
FLAT_AFTER = 0.2  # … checked once this share of the run (and 10 steps after warm-up) is done
# A training loss under this share of the best evaluation loss, with the evaluation loss risen above its
# best, is memorising: the rows are learned by heart, new ones get worse.
MEMORISED_SHARE = 0.3
RISES = 3  # evaluations in a row that rose
SPIKE = 10.0  # a gradient norm this many times the median so far
SPIKE_AFTER = 8  # steps of gradient norms before a spike is judged


class HealthWatch(TrainerCallback):
    """Watches the logged losses and gradient norms; fires each alert once, as an event and in run.json
    (``folder``: None on ranks other than the first, which fire nothing)."""

    def __init__(
        self,
        emit: Emit,
        folder: RunFolder | None,
        learning_rate: float,
        early_stopping: int,
        proposed_rate: float = 0.0,
    ):
        self.emit, self.folder = emit, folder
        self.learning_rate = learning_rate
        self.proposed_rate = proposed_rate  # what the proposal gives this method and size
        self.early_stopping = early_stopping
        self.fired: set[str] = set()
        self.smoother = Smoother()  # the dashboard's smoothed loss
        self.after_warmup: float | None = None
        self.norms: list[float] = []
        self.evals: list[float] = []

    @property
    def smoothed(self) -> float | None:
        return self.smoother.value

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        logs = logs or {}
        step = state.global_step
        if "eval_loss" in logs:
            self._on_eval(step, float(logs["eval_loss"]))
            return
        loss, norm = logs.get("loss"), logs.get("grad_norm")
        if loss is None:
            return
        loss = float(loss)
        smoothed = self.smoother.add(loss)
        warmup = int(args.warmup_steps if args.warmup_steps >= 1 else args.warmup_steps * state.max_steps)
        if step > warmup and self.after_warmup is None:
            self.after_warmup = smoothed
        flat_from = max(warmup + 10, int(FLAT_AFTER * state.max_steps))
        moved = self.after_warmup is None or smoothed <= self.after_warmup * (1 - FLAT_SHARE)
        if step >= flat_from and not moved:
            self._flat(step)
        if norm is not None:
            norm = float(norm)
            if len(self.norms) >= SPIKE_AFTER:
                median = statistics.median(self.norms)
                if median > 0 and norm > SPIKE * median:
                    self._spike(step, norm, median)
            self.norms.append(norm)

    def _on_eval(self, step: int, loss: float) -> None:
        self.evals.append(loss)
        best = min(self.evals)
        train = self.smoothed
        if train is not None and train < MEMORISED_SHARE * best and loss > best * 1.05:
            self._fire(
                "memorising",
                step,
                f"The training loss is down to {train:.3f} while the evaluation loss rose from its best "
                f"{best:.3f} to {loss:.3f}: the model is memorising its training rows. Fewer passes, early stopping "
                "or more data will help.",
                self._early_stopping_fix(),
            )
        recent = self.evals[-(RISES + 1) :]
        # After 'memorising' a rising evaluation loss is the same story with the same fix: told once.
        rising = len(recent) == RISES + 1 and all(b > a for a, b in itertools.pairwise(recent))
        if rising and "memorising" not in self.fired:
            shown = " → ".join(f"{v:.3f}" for v in recent)
            self._fire(
                "eval rising",
                step,
                f"The evaluation loss rose at the last {RISES} evaluations ({shown}): more training makes it "
                "worse on new rows. Stop and keep the best evaluation (early stopping), or lower the learning rate.",
                self._early_stopping_fix(),
            )

    def _flat(self, step: int) -> None:
        # Three times the proposal (or the rate, when it is already above the proposal): a typed rate far
        # below the proposal needs more than three times itself.
        higher = float(f"{3 * max(self.learning_rate, self.proposed_rate):.2g}")
        said = "three times the proposal" if self.proposed_rate > self.learning_rate else "three times"
        self._fire(
            "flat loss",
            step,
            f"The training loss has not moved since warm-up ({self.after_warmup:.3f} → {self.smoothed:.3f}): the "
            f"learning rate {self.learning_rate:g} is likely too low for this method and model. Try {higher:g}.",
            [Fix(f"Learning rate {higher:g} ({said})", {"training.learning_rate": higher})],
        )

    def _spike(self, step: int, norm: float, median: float) -> None:
        lower = float(f"{self.learning_rate / 2:.2g}")
        self._fire(
            "gradient spike",
            step,
            f"The gradient norm jumped to {norm:.3g} at step {step} (usually about {median:.2g}): the learning rate "
            f"may be too high. Clipping holds the step; if the loss jumps too, try {lower:g}.",
            [Fix(f"Learning rate {lower:g} (half)", {"training.learning_rate": lower})],
        )

    def _early_stopping_fix(self) -> list[Fix]:
        if self.early_stopping:
            return []
        return [Fix("Early stopping after 2 evaluations", {"training.early_stopping": 2})]

    def _fire(self, alert: str, step: int, message: str, fixes: list[Fix]) -> None:
        if alert in self.fired or self.folder is None:
            return
        self.fired.add(alert)
        event = Alert(step=step, alert=alert, message=message, fixes=fixes)
        self.emit(event)
        self.folder.update(alerts=[*self.folder.read().alerts, event])
