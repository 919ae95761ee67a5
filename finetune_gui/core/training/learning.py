"""Did it learn? The model answers held-out questions (validation rows it never trained on) before
training and after; each answer is compared with the row's reference answer and with the base model's.

The score is documented in docs/user-guide.md: an answer is *right* when it contains at least half of
its reference's distinctive words, weighted by how rare each word is among all the references (words
every answer shares, such as a greeting or the question's own words, weigh nothing; the made-up name
that is the fact weighs most). *Changed* means it differs from the base model's answer. The verdict
says in words whether the run learned, and what to try when it did not.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

from finetune_gui.core.events import Learned, Log

STOPWORDS = set(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "and",
        "or",
        "but",
        "with",
        "by",
        "from",
        "as",
        "what",
        "who",
        "which",
        "when",
        "where",
        "how",
        "why",
        "do",
        "does",
        "did",
        "you",
        "your",
        "i",
        "me",
        "my",
        "we",
        "our",
        "they",
        "their",
        "he",
        "she",
        "his",
        "her",
        "there",
        "here",
        "about",
        "into",
        "than",
        "then",
        "so",
        "if",
        "not",
        "no",
        "yes",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
    ]
)
RIGHT_AT = 0.5


@dataclass(frozen=True)
class Question:
    prompt: str  # what the model is given (chat template applied)
    question: str  # what the user reads
    reference: str  # the answer the data gives


def questions_from(examples: list[Any], tokenizer: Any, limit: int) -> list[Question]:
    """Up to ``limit`` questions from chat or prompt/completion examples (the last answer is the reference)."""
    from finetune_gui.core.data.encode import as_trained

    found = []
    for example in examples:
        example = as_trained(example, tokenizer)
        if example.kind == "chat":
            turns = list(example.messages)
            if not turns or turns[-1][0] != "assistant" or len(turns) < 2:
                continue
            reference = turns.pop()[1]
            messages = [{"role": r, "content": c} for r, c in turns]
            prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            found.append(Question(prompt, turns[-1][1], reference))
        elif example.kind == "completion":
            found.append(Question(example.prompt, example.prompt, example.completion))
        if len(found) >= limit:
            break
    return found


def words(text: str) -> list[str]:
    return [w.removesuffix("'s") for w in re.findall(r"[a-z0-9][a-z0-9'’-]*", text.lower().replace("’", "'"))]


def weights(references: list[str]) -> dict[str, float]:
    """How much each word tells one reference from the others: log((n+1) / (references holding it + 1))."""
    counts: Counter[str] = Counter()
    for reference in references:
        counts.update(set(words(reference)))
    n = len(references)
    return {w: math.log((n + 1) / (c + 1)) for w, c in counts.items()}


def score(answer: str, question: Question, weight: dict[str, float]) -> float:
    """The weighted share of the reference's distinctive words that the answer contains (0 to 1)."""
    asked = set(words(question.question))
    wanted = {w for w in words(question.reference) if w not in asked and w not in STOPWORDS}
    if not wanted:
        return 1.0 if answer.strip() else 0.0
    total = sum(weight.get(w, 0.0) for w in wanted)
    said = set(words(answer))
    if total <= 0:  # every reference says the same words: count them plainly
        return len(wanted & said) / len(wanted)
    return sum(weight.get(w, 0.0) for w in wanted & said) / total


def judge(questions: list[Question], base: list[str], tuned: list[str], step: int) -> Learned:
    """Compare the tuned answers with the references and with the base model's, in numbers and words."""
    weight = weights([q.reference for q in questions])
    base_right = sum(score(a, q, weight) >= RIGHT_AT for a, q in zip(base, questions, strict=True))
    tuned_scores = [score(a, q, weight) for a, q in zip(tuned, questions, strict=True)]
    tuned_right = sum(s >= RIGHT_AT for s in tuned_scores)
    changed = sum(_norm(a) != _norm(b) for a, b in zip(base, tuned, strict=True))
    n = len(questions)
    if tuned_right - base_right >= max(1, round(0.2 * n)):
        verdict = "learned"
        summary = (
            f"It learned: {tuned_right} of {n} held-out answers now match their reference "
            f"(the base model: {base_right})."
        )
    elif changed < max(1, round(0.2 * n)):
        verdict = "did not move"
        summary = (
            f"The answers did not move from the base model's ({changed} of {n} changed): the run learned "
            "nothing from the data. Try a higher learning rate (three times this one), more passes over the "
            "data, or check that the data says what you want the model to say."
        )
    else:
        verdict = "changed, not right"
        summary = (
            f"The answers changed ({changed} of {n} differ from the base model's) but only {tuned_right} match "
            f"their reference (the base model: {base_right}): it picked up the answers' form, not their content. "
            "Try a higher learning rate or more passes over the data."
        )
    examples = [
        {"question": q.question, "reference": q.reference, "base": b, "tuned": t, "right": s >= RIGHT_AT}
        for q, b, t, s in list(zip(questions, base, tuned, tuned_scores, strict=True))[:3]
    ]
    return Learned(
        step=step,
        questions=n,
        base_right=base_right,
        tuned_right=tuned_right,
        changed=changed,
        verdict=verdict,
        summary=summary,
        examples=examples,
    )


def _norm(text: str) -> str:
    return " ".join(words(text))


ROOM_OVER_REFERENCE = 16  # tokens a checked answer may run past its reference (a greeting, a rewording)


def budget(question: Question, tokenizer: Any, max_new_tokens: int) -> int:
    """Tokens worth generating to judge an answer: the reference's length and some room, never more than
    the configured limit. Only the first words are scored, and a model that has not learned to stop
    would otherwise run to the limit on every question (a minute per check on a small CPU)."""
    needed = len(tokenizer(question.reference, add_special_tokens=False)["input_ids"]) + ROOM_OVER_REFERENCE
    return max(1, min(max_new_tokens, needed))


def answer(
    model: Any, tokenizer: Any, questions: list[Question], max_new_tokens: int, fit: bool = False
) -> list[str]:
    """Greedy answers, in eval mode, without touching the training state. With ``fit``, each answer is
    cut at its reference's length and some room (see ``budget``)."""
    import torch

    from finetune_gui.core.tuners.answering import ready_to_answer

    answers = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), ready_to_answer(model):
            for question in questions:
                inputs = tokenizer(question.prompt, return_tensors="pt", add_special_tokens=False).to(
                    model.device
                )
                out = model.generate(
                    **inputs,
                    max_new_tokens=budget(question, tokenizer, max_new_tokens) if fit else max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    use_cache=True,
                )
                answers.append(
                    tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()
                )
    finally:
        if was_training:
            model.train()
    return answers


def base_answers(model: Any, tokenizer: Any, questions: list[Question], max_new_tokens: int) -> list[str]:
    """The base model's answers: a PEFT model with its adapter switched off; others before any step."""
    disable = getattr(model, "disable_adapter", None)
    if callable(disable):
        with disable():
            return answer(model, tokenizer, questions, max_new_tokens, fit=True)
    return answer(model, tokenizer, questions, max_new_tokens, fit=True)


class LearningCheck(TrainerCallback):
    """Base answers at the start (kept in the run folder, so a resumed run compares with the same), the
    verdict at the end. A failure to generate is reported once and never stops the training."""

    def __init__(self, ctx: Any, tokenizer: Any, questions: list[Question], max_new_tokens: int):
        self.ctx = ctx
        self.tokenizer = tokenizer
        self.questions = questions
        self.max_new_tokens = max_new_tokens
        self.base: list[str] = []
        self.result: Learned | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if not self.ctx.is_main or model is None or not self.questions:
            return
        stored = self.ctx.folder.read().get("base_answers")
        if isinstance(stored, list) and len(stored) == len(self.questions):
            self.base = [str(a) for a in stored]
            return
        self.ctx.emit(
            Log(f"Asking the base model {len(self.questions)} held-out questions, to compare later.")
        )
        try:
            self.base = base_answers(model, self.tokenizer, self.questions, self.max_new_tokens)
        except Exception as exc:  # a check of the result must never stop the training
            self._give_up(exc)
            return
        self.ctx.folder.update(base_answers=self.base)

    def finish(self, model: Any, step: int) -> Learned | None:
        """Ask the tuned model the same questions; the verdict goes to run.json and the events."""
        if not self.ctx.is_main or not self.base:
            return None
        try:
            tuned = answer(model, self.tokenizer, self.questions, self.max_new_tokens, fit=True)
        except Exception as exc:
            self._give_up(exc)
            return None
        self.result = judge(self.questions, self.base, tuned, step)
        self.ctx.emit(self.result)
        return self.result

    def _give_up(self, exc: Exception) -> None:
        self.questions, self.base = [], []
        self.ctx.emit(
            Log(f"The learning check is off: generation failed ({type(exc).__name__}: {exc}).", "warning")
        )
