"""transformers' Trainer, with what this app needs on top: a learning rate that is right on the first
step after a resume (also when max_steps changed)."""

from __future__ import annotations

from typing import Any

from transformers import Trainer


class AppTrainer(Trainer):
    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None or self.lr_scheduler is None or not hasattr(self.lr_scheduler, "lr_lambdas"):
            return
        # The optimizer's saved learning rate is the old schedule's last value (0 at the end of a cosine
        # schedule). Recompute it from the schedule at the current step, which follows the new max_steps.
        scheduler: Any = self.lr_scheduler
        rates = [
            base * fn(scheduler.last_epoch)
            for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
        ]
        for group, rate in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = rate
        scheduler._last_lr = rates
