"""transformers' Trainer, with what this app needs on top:

- the loss in chunks of the sequence (``loss.py``), so full fp32 logits never exist at once;
- lean memory mode (``core/tuners/lean.py``): bf16 weights, 8-bit AdamW with stochastic rounding, each
  weight updated in the backward pass;
- a learning rate that is right on the first step after a resume (also when max_steps or the rate changed);
- an objective's own loss and metrics (``objectives/``: the preference objectives') in place of the
  language-model loss;
- padding-free batches (``packing.py``): no attention mask is built for a packed batch's forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import Trainer

from finetune_gui.core.hardware import MemoryPlan


class AppTrainer(Trainer):
    def __init__(
        self,
        *args: Any,
        memory: MemoryPlan | None = None,
        max_grad_norm: float = 0.0,
        objective_loss: Any = None,
        on_loss_note: Callable[[str], None] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.lean = memory is not None and memory.lean
        self.in_backward = memory is not None and memory.step_in_backward
        self.clip_in_backward = max_grad_norm  # the optimizer clips when it steps in the backward pass
        from finetune_gui.core.training.loss import ChunkedLoss

        self.chunked = ChunkedLoss(self.model)
        # Told once when the chunked loss gives way to the model's own: the run then holds the full
        # logits, more memory than the estimate (which assumes chunks) counted.
        self.on_loss_note = on_loss_note
        # The objective's own loss (a PreferenceLoss), or None for the language-model loss.
        self.objective_loss = objective_loss
        if objective_loss is not None:
            # A mean over pairs, not a sum over tokens: the Trainer divides it for gradient accumulation.
            self.model_accepts_loss_kwargs = False

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        from finetune_gui.core.training.packing import packed_forward

        with packed_forward(inputs):
            return self._compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool, num_items_in_batch: Any
    ) -> Any:
        if self.objective_loss is not None:
            loss, found = self.objective_loss(model, inputs, self.chunked)
            self.objective_loss.record(found, model.training)
            return (loss, {}) if return_outputs else loss
        if self.chunked.active:
            loss, outputs = self.chunked(model, inputs, num_items_in_batch)
            if loss is not None:
                return (loss, outputs) if return_outputs else loss
        # No chunks (none found, or the check failed): the model's own loss, told once.
        if not self.chunked.active and self.on_loss_note is not None:
            self.on_loss_note(self.chunked.note)
            self.on_loss_note = None
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.objective_loss is not None:  # its metrics since the last log (a preference's margin…)
            if "eval_loss" in logs:
                logs.update({f"eval_{k}": v for k, v in self.objective_loss.take(training=False).items()})
            elif "loss" in logs:
                logs.update(self.objective_loss.take(training=True))
        super().log(logs, start_time)

    def create_optimizer(self, model: Any = None) -> Any:
        if not self.lean:
            return super().create_optimizer(model)
        from finetune_gui.core.tuners.lean import LeanAdamW

        args = self.args
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = LeanAdamW(
            params,
            lr=args.learning_rate,
            betas=(args.adam_beta1, args.adam_beta2),
            eps=args.adam_epsilon,
            weight_decay=args.weight_decay,
            # The Trainer clips when the step follows the backward pass; in it, the optimizer does.
            max_grad_norm=self.clip_in_backward if self.in_backward else 0.0,
        )
        if self.in_backward:
            self.optimizer.attach()
        return self.optimizer

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None or self.lr_scheduler is None or not hasattr(self.lr_scheduler, "lr_lambdas"):
            return
        # The optimizer's saved learning rate is the old schedule's last value (0 at the end of a cosine
        # schedule). Recompute it from the schedule at the current step, which follows the new max_steps.
        scheduler: Any = self.lr_scheduler
        # The base rate is this session's: a learning rate changed for the resume (an alert's fix) applies.
        scheduler.base_lrs = [self.args.learning_rate for _ in scheduler.base_lrs]
        rates = [
            base * fn(scheduler.last_epoch)
            for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas, strict=True)
        ]
        for group, rate in zip(self.optimizer.param_groups, rates, strict=True):
            group["lr"] = rate
        scheduler._last_lr = rates
