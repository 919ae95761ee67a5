"""The pieces the recipe plugs into transformers' Trainer: a padding collator, the events callback, the
sample answers at each evaluation, and the timing of the checks. Each takes what it uses (where to emit,
the run's control, its folder), so each can be tested without a training run."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from finetune_gui.core.data.encode import IGNORE
from finetune_gui.core.events import Checkpoint, Emit, Eval, Log, Paused, Resumed, Sample, Step
from finetune_gui.core.runs import RunFolder, StepTiming
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.failures import Diverged, check_weights
from finetune_gui.core.training.learning import RIGHT_AT, Question, answer, score, weights


class PadCollator:
    """Dynamic padding to the longest sequence of the batch (right side), labels padded with -100."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.multiple = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        if self.multiple:
            longest = math.ceil(longest / self.multiple) * self.multiple
        ids, labels, mask = [], [], []
        for f in features:
            pad = longest - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            labels.append(list(f["labels"]) + [IGNORE] * pad)
            mask.append([1] * len(f["input_ids"]) + [0] * pad)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class EventsCallback(TrainerCallback):
    """Turns the Trainer's logs into our events and metrics.jsonl lines, applies pause and stop requests
    between steps, and measures this machine's time per step (``timing``, for run.json). ``folder`` is
    None on ranks other than the first: they apply the requests but record nothing."""

    def __init__(self, emit: Emit, control: RunControl, folder: RunFolder | None):
        self.emit, self.control, self.folder = emit, control, folder
        self.device = "cpu"
        self.first_step: int | None = None
        self.paused_s = 0.0
        self.last_tokens = 0
        self.last_time = 0.0
        self.started = time.monotonic()
        # (step, active seconds, tokens) at the first logged step: the time per step is measured from it,
        # so the first step's warm-up and everything before training are left out.
        self.timing_from: tuple[int, float, int] | None = None
        self.timing: StepTiming | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.device = "cuda" if args.device.type == "cuda" else "cpu"
        self.started = time.monotonic()
        self.last_time = self.started
        self.last_tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)

    def _measure(self, step: int, elapsed: float, tokens: int) -> None:
        if self.timing_from is None:
            self.timing_from = (step, elapsed, tokens)
            return
        first, began, seen = self.timing_from
        if step > first:
            self.timing = StepTiming(
                seconds_per_step=round((elapsed - began) / (step - first), 3),
                tokens_per_step=round((tokens - seen) / (step - first), 1),
                steps=step - first,
            )

    def _active_elapsed(self) -> float:
        return time.monotonic() - self.started - self.paused_s

    def _log(self, message: str) -> None:
        self.emit(Log(message))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from finetune_gui.core.training.distributed import any_rank

        if self.first_step is None:
            self.first_step = state.global_step - 1
        if control.should_save and kwargs.get("model") is not None:
            check_weights(  # never checkpoint NaN weights
                kwargs["model"], state.global_step, "no checkpoint was written from then on"
            )
        if self.control.paused:
            self.emit(Paused(step=state.global_step))
            self._log(f"Paused after step {state.global_step}.")
            paused_at = time.monotonic()
            self.control.wait_while_paused()
            self.paused_s += time.monotonic() - paused_at
            self.last_time += time.monotonic() - paused_at
            self.emit(Resumed(step=state.global_step))
            self._log(f"Resumed at step {state.global_step}.")
        if any_rank(self.control.stop_requested):
            self.control.request_stop()
            control.should_save = True
            control.should_training_stop = True

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        from finetune_gui.core.training.readings import current

        logs = logs or {}
        if "eval_loss" in logs:
            loss = _finite(logs["eval_loss"])
            if loss is not None:
                preference = {
                    key: _finite(logs.get(f"eval_{key}"))
                    for key in ("reward_margin", "preference_accuracy")
                    if logs.get(f"eval_{key}") is not None
                }
                self.emit(Eval(step=state.global_step, eval_loss=loss, **preference))
                if self.folder is not None:
                    self.folder.append_metrics(
                        {
                            "step": state.global_step,
                            "epoch": round(state.epoch or 0.0, 4),
                            "eval_loss": loss,
                            **preference,
                        }
                    )
            return
        if "loss" not in logs:
            return  # the closing summary (train_runtime …) is not a step
        optimizer: Any = getattr(kwargs.get("optimizer"), "optimizer", kwargs.get("optimizer"))
        if getattr(optimizer, "in_backward", False):  # lean mode: gradients are gone; it measured them
            logs["grad_norm"] = optimizer.take_grad_norm()
        self._check_finite(logs, state.global_step)
        now = time.monotonic()
        tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        window = now - self.last_time
        tokens_per_s = (
            (tokens - self.last_tokens) / window if window > 0 and tokens > self.last_tokens else None
        )
        self.last_tokens, self.last_time = tokens, now
        done = state.global_step - (self.first_step or 0)
        elapsed = self._active_elapsed()
        self._measure(state.global_step, elapsed, tokens)
        eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
        event = Step(
            step=state.global_step,
            max_steps=state.max_steps,
            epoch=round(state.epoch or 0.0, 4),
            loss=_finite(logs.get("loss")),
            learning_rate=_finite(logs.get("learning_rate")),
            grad_norm=_finite(logs.get("grad_norm")),
            tokens_per_s=round(tokens_per_s, 1) if tokens_per_s else None,
            elapsed_s=round(elapsed, 2),
            eta_s=round(eta, 1) if eta is not None else None,
            memory=current(self.device),
            reward_margin=_finite(logs.get("reward_margin")),
            preference_accuracy=_finite(logs.get("preference_accuracy")),
        )
        self.emit(event)
        if self.folder is not None:
            record = event.to_dict()
            record.pop("event")
            self.folder.append_metrics(record)

    def _check_finite(self, logs: dict[str, Any], step: int) -> None:
        for key in ("loss", "grad_norm"):
            value = logs.get(key)
            if value is not None and not math.isfinite(float(value)):
                rate = logs.get("learning_rate")
                said = f" at learning rate {float(rate):.2g}" if rate is not None else ""
                raise Diverged(
                    f"The training diverged at step {step}: the {key.replace('_', ' ')} became {value}{said}. "
                    "Nothing from this step on was saved. Lower the learning rate (a tenth is a good first try) "
                    "and start again, or resume from the last checkpoint with a lower one."
                )

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"  # the Trainer's own naming
        self.emit(Checkpoint(step=state.global_step, path=str(path)))


class SamplesCallback(TrainerCallback):
    """At every evaluation, greedy answers to the first few held-out questions (rank 0 only), each with
    its reference, whether it matches it, and the base model's answer (``base_answers``: those the
    learning check asked before training), as ``sample`` events and lines of samples.jsonl. A failure to
    generate is reported once and sampling stops; it never stops the training."""

    def __init__(
        self,
        emit: Emit,
        folder: RunFolder | None,
        tokenizer: Any,
        questions: list[Question],
        max_new_tokens: int,
        base_answers: Callable[[], list[str]] = list,
        references: list[str] | None = None,
    ):
        self.emit, self.folder = emit, folder
        self.tokenizer = tokenizer
        self.questions = questions
        self.max_new_tokens = max_new_tokens
        self.base_answers = base_answers
        # Which words tell one reference from another, weighed over ``references`` (the learning check's,
        # when it asks more questions than are sampled), else over these questions' own.
        self.weight = weights(references or [q.reference for q in questions])

    def on_evaluate(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not self.questions or model is None or self.folder is None:
            return
        try:
            answers = answer(model, self.tokenizer, self.questions, self.max_new_tokens)
        except Exception as exc:
            self.emit(
                Log(
                    f"Sample answers are turned off: generation failed ({type(exc).__name__}: {exc}).",
                    "warning",
                )
            )
            self.questions = []
            return
        base = self.base_answers()
        samples = []
        for index, (question, said) in enumerate(zip(self.questions, answers, strict=True)):
            sample = {
                "prompt": question.question,
                "answer": said,
                "reference": question.reference,
                "right": score(said, question, self.weight) >= RIGHT_AT,
            }
            if index < len(base):
                sample["base"] = base[index]
            samples.append(sample)
        self.emit(Sample(step=state.global_step, samples=samples))
        self.folder.append_samples(state.global_step, samples)


class TimedChecks(TrainerCallback):
    """Runs the checks' measurements before training (the base model's answers and scores), timing them:
    the recipe logs what the checks cost in all at the end (``seconds``)."""

    def __init__(self, checks: list[Any]):
        self.checks = checks
        self.seconds = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        began = time.monotonic()
        for check in self.checks:
            check.on_train_begin(args, state, control, **kwargs)
        self.seconds = time.monotonic() - began
