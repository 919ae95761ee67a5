"""Did it learn your preference? Held-out pairs scored by the base and the tuned model.

A model prefers the chosen answer of a pair when it gives its tokens a higher mean log-probability than
the rejected one's (its margin is positive). The mean, not the sum: a sum prefers the shorter answer
whatever the model learned, and preferred answers are often the longer ones. Before training the base's margins are measured (kept in run.json, so a
resumed run compares with the same); after training the tuned model's. The verdict counts the held-out
pairs whose chosen answer each prefers, and rests on at least ``MIN_PAIRS`` of them; a sample of training
pairs tells what it absorbed apart from what carries over to new prompts. Two sample answers show the
tuned model's style in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

from finetune_gui.core.config import MIN_HELD_OUT
from finetune_gui.core.events import Emit, Learned, Log
from finetune_gui.core.runs import RunFolder

MIN_PAIRS = MIN_HELD_OUT  # held-out pairs a verdict on them needs
SAMPLE_ANSWERS = 2


def moved_by(count: int) -> int:
    """How many more pairs than the base's a change must win to count: one in seven, at least one."""
    return max(1, math.ceil(count / 7))


@dataclass
class Tally:
    pairs: int
    base_right: int
    tuned_right: int
    flipped: int
    gain: float  # mean change of the margin, tuned minus base

    def moved(self) -> bool:
        return self.pairs > 0 and self.tuned_right - self.base_right >= moved_by(self.pairs) and self.gain > 0

    def worse(self) -> bool:
        return self.pairs > 0 and self.base_right - self.tuned_right >= moved_by(self.pairs)


def tally(base: list[float], tuned: list[float]) -> Tally:
    n = min(len(base), len(tuned))
    return Tally(
        pairs=n,
        base_right=sum(1 for b in base[:n] if b > 0),
        tuned_right=sum(1 for t in tuned[:n] if t > 0),
        flipped=sum(1 for b, t in zip(base, tuned, strict=False) if (b > 0) != (t > 0)),
        gain=sum(t - b for b, t in zip(base, tuned, strict=False)) / n if n else 0.0,
    )


def margins(
    model: Any, pairs: list[Any], collator: Any, chunked: Any = None, base: bool = False
) -> list[float]:
    """Each pair's margin: the chosen answer's mean token log-probability minus the rejected one's;
    ``base`` switches a PEFT adapter off for the base model's."""
    import contextlib

    import torch

    from finetune_gui.core.training.objectives.preference import features, peft_of, scores

    peft = peft_of(model) if base else None
    device = next(model.parameters()).device
    found: list[float] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), peft.disable_adapter() if peft is not None else contextlib.nullcontext():
            for start in range(0, len(pairs), 4):
                part = pairs[start : start + 4]
                inputs = collator(features(part))
                inputs = {k: v.to(device) for k, v in inputs.items()}
                sums, counts = scores(peft or model, inputs, chunked)
                means = (sums.float() / counts.clamp(min=1)).cpu().tolist()
                found += [c - r for c, r in zip(means[: len(part)], means[len(part) :], strict=True)]
    finally:
        if was_training:
            model.train()
    return [round(m, 4) for m in found]


def judge(
    held: Tally,
    trained: Tally | None,
    step: int,
    *,
    held_out: bool,
    examples: list[dict[str, Any]],
    objective: str,
) -> Learned:
    absorbed = (
        f"on {trained.pairs} of its training pairs it prefers the chosen answer {trained.tuned_right} times "
        f"(the base model: {trained.base_right})"
        if trained is not None and trained.pairs
        else ""
    )
    advice = (
        "Try a higher learning rate (three times this one) or more passes, and check that the chosen answers "
        "differ from the rejected ones in what you want the model to learn."
    )
    if held_out and held.pairs >= MIN_PAIRS:
        said = (
            f"it prefers the chosen answer on {held.tuned_right} of {held.pairs} held-out pairs "
            f"(the base model: {held.base_right}; the mean margin moved {held.gain:+.2f})"
        )
        if held.moved():
            verdict, summary = "learned", f"It learned your preference: {said}."
        elif held.worse():
            verdict, summary = "changed, not right", f"It moved away from your preference: {said}. {advice}"
        else:
            verdict, summary = "did not move", f"Its preference did not move: {said}. {advice}"
        if absorbed:
            summary += f" On its training data: {absorbed}."
    else:
        reason = (
            f"only {held.pairs} held-out pair{'s' if held.pairs != 1 else ''}, too few to judge whether it carries "
            f"over to new prompts (it needs {MIN_PAIRS}: raise dataset.validation_split or give a validation file)"
            if held_out
            else "no held-out pairs to judge whether it carries over to new prompts (give a validation split)"
        )
        if trained is not None and trained.moved():
            verdict, summary = (
                "absorbed",
                f"It learned the preference of its training data: {absorbed}. Held-out: {reason}.",
            )
        elif trained is not None and trained.pairs and not trained.moved():
            verdict = "did not move"
            summary = f"Its preference did not move, even on its training data ({absorbed}). {advice}"
        else:
            verdict, summary = "cannot judge", f"Cannot judge: {reason}."
    return Learned(
        step=step,
        questions=held.pairs if held_out else 0,
        base_right=held.base_right if held_out else 0,
        tuned_right=held.tuned_right if held_out else 0,
        changed=held.flipped if held_out else 0,
        verdict=verdict,
        summary=summary,
        examples=examples,
        trained_questions=trained.pairs if trained else 0,
        trained_base_right=trained.base_right if trained else 0,
        trained_tuned_right=trained.tuned_right if trained else 0,
        min_held_out=MIN_PAIRS,
        objective=objective,
    )


def _side(margin: float) -> str:
    return f"prefers {'chosen' if margin > 0 else 'rejected'} ({margin:+.2f})"


class PreferenceCheck(TrainerCallback):
    """The base's margins at the start, the verdict at the end (``finish``); never stops the training."""

    def __init__(
        self,
        emit: Emit,
        folder: RunFolder | None,
        tokenizer: Any,
        collator: Any,
        held: list[
            tuple[Any, Any]
        ],  # (Example, EncodedPair) of held-out rows (training rows without a split)
        trained: list[tuple[Any, Any]],
        *,
        held_out: bool,
        max_new_tokens: int,
        objective: str,
        chunked: Any = None,
    ):
        self.emit, self.folder = emit, folder
        self.tokenizer, self.collator, self.chunked = tokenizer, collator, chunked
        self.objective = objective
        self.held, self.trained, self.held_out = held, trained, held_out
        self.max_new_tokens = max_new_tokens
        self.base: list[float] = []
        self.base_trained: list[float] = []

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.folder is None or model is None or not self.held:
            return
        stored = self.folder.read().base_preference_margins or {}
        if isinstance(stored, dict) and len(stored.get("held") or []) == len(self.held):
            self.base = [float(m) for m in stored["held"]]
            kept = stored.get("trained") or []
            self.base_trained = [float(m) for m in kept] if len(kept) == len(self.trained) else []
            if not self.base_trained:
                self.trained = []
            return
        self.emit(
            Log(f"Scoring {len(self.held) + len(self.trained)} pairs with the base model, to compare later.")
        )
        try:
            self.base = margins(model, [p for _, p in self.held], self.collator, self.chunked, base=True)
            self.base_trained = margins(
                model, [p for _, p in self.trained], self.collator, self.chunked, base=True
            )
        except Exception as exc:  # a check of the result must never stop the training
            self._give_up(exc)
            return
        self.folder.update(base_preference_margins={"held": self.base, "trained": self.base_trained})

    def finish(self, model: Any, step: int, history: list[dict[str, Any]] | None = None) -> Learned | None:
        """Score the pairs again with the tuned model; the verdict goes to the events. ``history`` (the
        Trainer's log, which the supervised check reads) is not needed: a preference is judged by pairs."""
        if self.folder is None or not self.base:
            return None
        from finetune_gui.core.training.learning import answer, questions_from

        try:
            tuned = margins(model, [p for _, p in self.held], self.collator, self.chunked)
            tuned_trained = margins(model, [p for _, p in self.trained], self.collator, self.chunked)
            shown = [e for e, _ in self.held[:SAMPLE_ANSWERS]]
            said = answer(
                model, self.tokenizer, questions_from(shown, self.tokenizer, len(shown)), self.max_new_tokens
            )
        except Exception as exc:
            self._give_up(exc)
            return None
        examples = []
        for index, ((example, _pair), b, t) in enumerate(zip(self.held, self.base, tuned, strict=False)):
            item = {
                "question": example.messages[-1][1],
                "reference": example.chosen,
                "rejected": example.rejected,
                "base": _side(b),
                "tuned": _side(t),
                "base_margin": b,
                "tuned_margin": t,
                "right": t > 0,
            }
            if index < len(said):
                item["answer"] = said[index]
            examples.append(item)
        trained = tally(self.base_trained, tuned_trained) if self.trained else None
        held = tally(self.base, tuned)
        if not self.held_out:  # the pairs were trained on: they tell what it absorbed
            held, trained = Tally(0, 0, 0, 0, 0.0), held
        result = judge(
            held,
            trained,
            step,
            held_out=self.held_out,
            examples=examples[: max(3, MIN_PAIRS)] if self.held_out else [],
            objective=self.objective,
        )
        self.emit(result)
        return result

    def _give_up(self, exc: Exception) -> None:
        self.held, self.base, self.trained, self.base_trained = [], [], [], []
        self.emit(
            Log(f"The preference check is off: scoring failed ({type(exc).__name__}: {exc}).", "warning")
        )
