"""Early stopping on the evaluation loss, with the best evaluation's weights as the result.

A run that overfits (training loss falling to nothing while the evaluation loss rises) used to keep its
last step's weights, the worst ones by the only measure of new data it has. This callback remembers the
trainable weights at the best evaluation (in memory, on the CPU: an adapter is a few MB; for full
fine-tuning it is a copy of the model), stops the run after ``patience`` evaluations without an
improvement larger than ``min_delta``, and puts the best weights back before the result is saved.

It takes what it uses (a log function, the patience and the margin), not the run's context, so it is
tested without a training run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback


@dataclass(frozen=True)
class EarlyStop:
    """What run.json records (``early_stop``): where the best result is and why the run ended."""

    best_step: int
    best_eval_loss: float
    stopped_at: int | None  # the step it stopped at early; None when the run reached its end
    patience: int

    def sentence(self) -> str:
        if self.stopped_at is not None:
            return (
                f"Stopped early at step {self.stopped_at}: eval loss had not improved for {self.patience} "
                f"evaluations; the result is step {self.best_step}'s (eval loss {self.best_eval_loss:.3f})."
            )
        return f"The result is step {self.best_step}'s, the best evaluation (eval loss {self.best_eval_loss:.3f})."

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_step": self.best_step,
            "best_eval_loss": self.best_eval_loss,
            "stopped_at": self.stopped_at,
            "patience": self.patience,
        }


class EarlyStopping(TrainerCallback):
    def __init__(self, patience: int, min_delta: float, log: Callable[[str], None]):
        self.patience = patience
        self.min_delta = min_delta
        self.log = log
        self.best_loss: float | None = None
        self.best_step = 0
        self.best_weights: dict[str, Any] | None = None
        self.waited = 0
        self.stopped_at: int | None = None

    def on_evaluate(
        self, args: Any, state: Any, control: Any, model: Any = None, metrics: Any = None, **kwargs: Any
    ) -> None:
        loss = (metrics or {}).get("eval_loss")
        if loss is None or model is None:
            return
        loss = float(loss)
        if self.best_loss is None or loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_step, self.waited = loss, state.global_step, 0
            self.best_weights = _trainable_copy(model)
            return
        self.waited += 1
        if self.waited >= self.patience:
            self.stopped_at = state.global_step
            control.should_training_stop = True
            control.should_save = True  # the run's last state stays resumable

    def restore_best(self, model: Any, step: int) -> EarlyStop | None:
        """Put the best evaluation's weights back (when they are not the last step's) and say so."""
        if self.best_weights is None or self.best_loss is None:
            return None
        if self.best_step != step:
            named = dict(model.named_parameters())
            import torch

            with torch.no_grad():
                for name, value in self.best_weights.items():
                    named[name].copy_(value.to(named[name].device))
        result = EarlyStop(self.best_step, round(self.best_loss, 4), self.stopped_at, self.patience)
        self.log(result.sentence())
        return result


def _trainable_copy(model: Any) -> dict[str, Any]:
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}
