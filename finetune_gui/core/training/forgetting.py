"""Did it forget? How much of its general ability the model kept, base against tuned.

Before training the base model reads a short general text written for the app
(resources/general-text.txt: kitchens, weather, bicycles, plants, sleep; nothing a fine-tune teaches)
and answers two everyday prompts; after training the tuned model does the same. The verdict rests on
the text's perplexity, tuned over base: a run that leaves general language alone stays near 1×, one that
overwrote it climbs. The answers are shown beside it, not scored. The base's figures are kept in run.json,
so a resumed run compares with the same. One forward pass over a few hundred tokens and two short
answers each time: cheap beside the training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from finetune_gui.core.events import Emit, Forgetting, Log
from finetune_gui.core.runs import RunFolder

TEXT_TOKENS = 512  # of the general text, at most
EVERYDAY_PROMPTS = ("What should I pack for a day at the beach?", "Why is the sky blue?")
ANSWER_TOKENS = 40
# Tuned over base perplexity of the general text: up to KEPT_BELOW little was forgotten, from FORGOT_AT
# the model lost general ability. Measured on the demo model at the proposal (docs/methods.md, "Did it
# forget?"): full fine-tuning 1.04×; LoRA 1.82× (it also put the data's greeting on everyday answers).
KEPT_BELOW = 1.15
FORGOT_AT = 1.5


def general_text() -> str:
    from finetune_gui.core.paths import resources_dir

    return (resources_dir() / "general-text.txt").read_text(encoding="utf-8")


def verdict(ratio: float, trains_all_weights: bool = True) -> tuple[str, str]:
    """(kept | some | forgot, the sentence) for a perplexity ratio, tuned over base. LoRA is mentioned
    only to a run that trained every weight, and not as a cure: at the proposal on the demo model it lost
    more than full fine-tuning did; its merit is a base left as it was."""
    said = f"General text perplexity {ratio:.2f}× the base's"
    if ratio < KEPT_BELOW:
        return "kept", f"{said}: little forgotten."
    if ratio < FORGOT_AT:
        return "some", (
            f"{said}: it lost some general ability. If the model should stay a general assistant, try a lower "
            "learning rate or fewer passes."
        )
    last = (
        "LoRA, whose adapter can be switched off for general questions"
        if trains_all_weights
        else "mix some general chat rows into the data"
    )
    return "forgot", (
        f"{said}: the model lost general ability. Try a lower learning rate (a third of this one) or fewer "
        f"passes, or {last}."
    )


def perplexity(model: Any, tokenizer: Any, text: str, base: bool = False) -> float:
    """exp of the mean next-token loss over ``text`` (its first TEXT_TOKENS tokens); ``base`` switches a
    PEFT adapter off."""
    import contextlib

    import torch

    peft = getattr(model, "module", model)
    off = peft.disable_adapter() if base and hasattr(peft, "disable_adapter") else contextlib.nullcontext()
    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :TEXT_TOKENS].to(
        next(model.parameters()).device
    )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), off:
            loss = peft(input_ids=ids, labels=ids).loss
    finally:
        if was_training:
            model.train()
    return round(math.exp(min(float(loss), 50.0)), 4)


def _answers(model: Any, tokenizer: Any, base: bool) -> list[str]:
    import contextlib

    from finetune_gui.core.training.learning import Question, answer

    questions = [
        Question(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            ),
            p,
            "",
        )
        for p in EVERYDAY_PROMPTS
    ]
    peft = getattr(model, "module", model)
    off = peft.disable_adapter() if base and hasattr(peft, "disable_adapter") else contextlib.nullcontext()
    with off:
        return answer(peft, tokenizer, questions, ANSWER_TOKENS)


@dataclass
class ForgettingCheck(TrainerCallback):
    """The base's figures at the start of the first session (kept in ``folder``'s run.json), the verdict at
    the end (``finish``). ``folder`` is None on ranks other than the first, which measure nothing."""

    emit: Emit
    folder: RunFolder | None
    tokenizer: Any
    trains_all_weights: bool = True  # the run's method: what the advice may suggest
    answers: bool = True  # everyday answers beside the perplexity (off where generation is not wanted)
    base_perplexity: float | None = None
    base_answers: list[str] = field(default_factory=list)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.folder is None or model is None:
            return
        stored = self.folder.read().base_general or {}
        if isinstance(stored, dict) and isinstance(stored.get("perplexity"), (int, float)):
            self.base_perplexity = float(stored["perplexity"])
            self.base_answers = [str(a) for a in stored.get("answers") or []]
            return
        try:
            self.base_perplexity = perplexity(model, self.tokenizer, general_text(), base=True)
            self.base_answers = _answers(model, self.tokenizer, base=True) if self.answers else []
        except Exception as exc:  # a check of the result must never stop the training
            self._give_up(exc)
            return
        self.folder.update(base_general={"perplexity": self.base_perplexity, "answers": self.base_answers})

    def finish(self, model: Any, step: int) -> Forgetting | None:
        if self.folder is None or self.base_perplexity is None:
            return None
        try:
            tuned = perplexity(model, self.tokenizer, general_text())
            tuned_answers = _answers(model, self.tokenizer, base=False) if self.base_answers else []
        except Exception as exc:
            self._give_up(exc)
            return None
        ratio = round(tuned / self.base_perplexity, 3) if self.base_perplexity > 0 else 1.0
        kind, summary = verdict(ratio, self.trains_all_weights)
        result = Forgetting(
            step=step,
            base_perplexity=self.base_perplexity,
            tuned_perplexity=tuned,
            ratio=ratio,
            verdict=kind,
            summary=summary,
            examples=[
                {"prompt": p, "base": b, "tuned": t}
                for p, b, t in zip(EVERYDAY_PROMPTS, self.base_answers, tuned_answers, strict=False)
            ],
        )
        self.emit(result)
        return result

    def _give_up(self, exc: Exception) -> None:
        self.base_perplexity = None
        self.emit(Log(f"The forgetting check is off: {type(exc).__name__}: {exc}.", "warning"))
