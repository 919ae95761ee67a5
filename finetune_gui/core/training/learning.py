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

from finetune_gui.core.config import MIN_HELD_OUT
from finetune_gui.core.events import Emit, Learned, Log
from finetune_gui.core.runs import RunFolder

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


def spread(rows: list[Any], count: int) -> list[Any]:
    """``count`` rows spread evenly over ``rows`` (not its first few, which may all teach one thing)."""
    if len(rows) <= count:
        return list(rows)
    return [rows[round(i * (len(rows) - 1) / (count - 1))] for i in range(count)] if count > 1 else rows[:1]


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
        share = len(wanted & said) / len(wanted)
    else:
        share = sum(weight.get(w, 0.0) for w in wanted & said) / total
    # Numbers are facts (a temperature, a count, a year): an answer that gets the wording and not its
    # numbers is not right, however rare the wording's words are among the references.
    numbers = {w for w in wanted if any(ch.isdigit() for ch in w)}
    if numbers:
        share = min(share, len(numbers & said) / len(numbers))
    return share


@dataclass(frozen=True)
class Tally:
    """One set of questions answered by the base and the tuned model."""

    questions: int
    base_right: int
    tuned_right: int
    changed: int
    scores: tuple[float, ...]

    def moved(self) -> bool:
        return self.tuned_right - self.base_right >= max(1, round(0.2 * self.questions))

    def still(self) -> bool:
        return self.changed < max(1, round(0.2 * self.questions))


def tally(questions: list[Question], base: list[str], tuned: list[str], weight: dict[str, float]) -> Tally:
    base_scores = [score(a, q, weight) for a, q in zip(base, questions, strict=True)]
    tuned_scores = [score(a, q, weight) for a, q in zip(tuned, questions, strict=True)]
    return Tally(
        questions=len(questions),
        base_right=sum(s >= RIGHT_AT for s in base_scores),
        tuned_right=sum(s >= RIGHT_AT for s in tuned_scores),
        changed=sum(_norm(a) != _norm(b) for a, b in zip(base, tuned, strict=True)),
        scores=tuple(tuned_scores),
    )


def judge(
    questions: list[Question],
    base: list[str],
    tuned: list[str],
    step: int,
    *,
    held_out: bool = True,
    corpus: list[str] | None = None,
    trained: tuple[list[Question], list[str], list[str]] | None = None,
    overfitting: str = "",
) -> Learned:
    """Compare the tuned answers with the references and with the base model's, in numbers and words.

    ``questions`` are held-out rows (``held_out``) or, without a validation split, training rows;
    ``trained`` is a sample of training questions with both models' answers (what the model absorbed);
    ``corpus`` holds the dataset's answers, so that words every answer shares (a template) weigh
    nothing; ``overfitting`` says how eval loss rose, so the advice never asks for more of the same."""
    weight = weights(
        corpus or [q.reference for q in questions] + [q.reference for q in (trained or ([],))[0]]
    )
    part = tally(questions, base, tuned, weight)
    absorbed = tally(trained[0], trained[1], trained[2], weight) if trained and trained[0] else None
    if not held_out:  # the questions were trained on: they tell what it absorbed, not what carries over
        absorbed, part = part, Tally(0, 0, 0, 0, ())
    n = part.questions
    learned_words = "It learned"
    if absorbed is not None:
        measured = (
            f"{absorbed.tuned_right} of {absorbed.questions} training questions answered as taught "
            f"(the base model: {absorbed.base_right})"
        )
    else:
        measured = ""
    if n >= MIN_HELD_OUT:
        verdict, summary = _held_out_verdict(part, overfitting)
        if measured:
            summary += f" On its training data: {measured}."
    else:
        reason = (
            f"only {n} held-out question{'s' if n != 1 else ''}, too few to judge whether it carries over to "
            f"new questions (it needs {MIN_HELD_OUT}: raise dataset.validation_split or give a validation file)"
            if held_out or n
            else "no held-out rows to judge whether it carries over to new questions (give a validation split)"
        )
        if absorbed is not None and absorbed.moved():
            verdict = "absorbed"
            summary = f"{learned_words} its training data: {measured}. Held-out: {reason}."
        elif absorbed is not None and absorbed.still():
            verdict = "did not move"
            summary = (
                f"The answers did not move from the base model's, even on its training data ({measured}). "
                "Try a higher learning rate (three times this one) or more passes over the data."
            )
        else:
            verdict = "cannot judge"
            summary = f"Cannot judge: {reason}" + (
                f". On its training data: {measured}." if measured else "."
            )
    right_flags = [s >= RIGHT_AT for s in part.scores]
    examples = (
        [
            {"question": q.question, "reference": q.reference, "base": b, "tuned": t, "right": r}
            for q, b, t, r in list(zip(questions, base, tuned, right_flags, strict=False))[: max(3, n)]
        ]
        if held_out
        else []
    )
    return Learned(
        step=step,
        questions=n,
        base_right=part.base_right,
        tuned_right=part.tuned_right,
        changed=part.changed,
        verdict=verdict,
        summary=summary,
        examples=examples,
        trained_questions=absorbed.questions if absorbed else 0,
        trained_base_right=absorbed.base_right if absorbed else 0,
        trained_tuned_right=absorbed.tuned_right if absorbed else 0,
        min_held_out=MIN_HELD_OUT,
    )


def _held_out_verdict(part: Tally, overfitting: str) -> tuple[str, str]:
    n = part.questions
    if part.moved():
        return "learned", (
            f"It learned: {part.tuned_right} of {n} held-out answers now match their reference "
            f"(the base model: {part.base_right})."
        )
    if overfitting:
        advice = (
            f"{overfitting}: it memorised its training rows. Try fewer passes (or early stopping), a lower "
            "learning rate, or more data."
        )
    else:
        advice = "Try a higher learning rate (three times this one), or more passes over the data."
    if part.still():
        return "did not move", (
            f"The answers did not move from the base model's ({part.changed} of {n} changed): the run learned "
            f"nothing it could use on new questions. {advice}"
            + ("" if overfitting else " Or check that the data says what you want the model to say.")
        )
    return "changed, not right", (
        f"The answers changed ({part.changed} of {n} differ from the base model's) but only {part.tuned_right} "
        f"match their reference (the base model: {part.base_right}): it picked up the answers' form, not their "
        f"content. {advice}"
    )


def reference_texts(examples: list[Any], tokenizer: Any, limit: int = 4000) -> list[str]:
    """The answers of up to ``limit`` rows: the corpus that says which words every answer shares."""
    from finetune_gui.core.data.encode import as_trained

    found = []
    for example in examples[:limit]:
        example = as_trained(example, tokenizer)
        if example.kind == "chat" and example.messages and example.messages[-1][0] == "assistant":
            found.append(example.messages[-1][1])
        elif example.kind == "completion":
            found.append(example.completion)
    return found


def eval_trend(history: list[dict[str, Any]]) -> str:
    """'eval loss rose from 2.73 to 3.59 while the training loss fell to 0.10' when the last evaluations
    rose above the best one; '' otherwise."""
    evals = [float(r["eval_loss"]) for r in history if "eval_loss" in r]
    losses = [float(r["loss"]) for r in history if "loss" in r]
    if len(evals) < 2 or not losses:
        return ""
    best = min(evals)
    if evals[-1] <= best * 1.05 or evals[-1] <= evals[-2] * 0.999:
        return ""
    return (
        f"eval loss rose from {best:.2f} to {evals[-1]:.2f} while the training loss fell to {losses[-1]:.2f}"
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


ANSWER_BATCH = 8  # questions answered together: a small model's decoding step costs about the same for 8


def answer(
    model: Any, tokenizer: Any, questions: list[Question], max_new_tokens: int, fit: bool = False
) -> list[str]:
    """Greedy answers, in eval mode, without touching the training state. With ``fit``, each answer is
    cut at its reference's length and some room (see ``budget``). Questions are answered in batches
    (left-padded, each cut at its own budget and end: greedy decoding gives the same words as one at a
    time, tested), one at a time for prefix and prompt tuning, whose learned tokens go into generate's
    cache for one question."""
    import torch

    from finetune_gui.core.tuners.answering import ready_to_answer

    config = getattr(model, "active_peft_config", None)
    size = 1 if getattr(config, "is_prompt_learning", False) else ANSWER_BATCH
    ends = _end_ids(model, tokenizer)
    answers = []
    was_training = model.training
    side = tokenizer.padding_side
    model.eval()
    try:
        tokenizer.padding_side = "left"  # the answers all start where the batch's prompts end
        with torch.no_grad(), ready_to_answer(model):
            for start in range(0, len(questions), size):
                batch = questions[start : start + size]
                limits = [budget(q, tokenizer, max_new_tokens) if fit else max_new_tokens for q in batch]
                inputs = tokenizer(
                    [q.prompt for q in batch], return_tensors="pt", padding=True, add_special_tokens=False
                ).to(model.device)
                out = model.generate(
                    **inputs,
                    max_new_tokens=max(limits),
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    use_cache=True,
                )
                for row, limit in zip(out, limits, strict=True):
                    new = row[inputs["input_ids"].shape[1] :][:limit].tolist()
                    cut = next((i for i, t in enumerate(new) if t in ends), len(new))
                    answers.append(tokenizer.decode(new[:cut], skip_special_tokens=True).strip())
    finally:
        tokenizer.padding_side = side
        if was_training:
            model.train()
    return answers


def _end_ids(model: Any, tokenizer: Any) -> set[int]:
    """The tokens that end an answer (generate pads a batch's finished rows with the pad token)."""
    found = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ends = set(found if isinstance(found, list) else [found] if found is not None else [])
    ends.update(t for t in (tokenizer.eos_token_id, tokenizer.pad_token_id) if t is not None)
    return ends


def base_answers(model: Any, tokenizer: Any, questions: list[Question], max_new_tokens: int) -> list[str]:
    """The base model's answers: a PEFT model with its adapter switched off; others before any step."""
    disable = getattr(model, "disable_adapter", None)
    if callable(disable):
        with disable():
            return answer(model, tokenizer, questions, max_new_tokens, fit=True)
    return answer(model, tokenizer, questions, max_new_tokens, fit=True)


class LearningCheck(TrainerCallback):
    """Base answers at the start (kept in the run folder, so a resumed run compares with the same), the
    verdict at the end. ``questions`` are held-out rows when ``held_out``; ``trained`` a small sample of
    training rows (what the model absorbed, told apart from what carries over). A failure to generate is
    reported once and never stops the training. ``folder`` is None on ranks other than the first, which
    ask nothing."""

    def __init__(
        self,
        emit: Emit,
        folder: RunFolder | None,
        tokenizer: Any,
        questions: list[Question],
        max_new_tokens: int,
        *,
        trained: list[Question] | None = None,
        held_out: bool = True,
        corpus: list[str] | None = None,
    ):
        self.emit, self.folder = emit, folder
        self.tokenizer = tokenizer
        self.questions = questions
        self.trained = trained or []
        self.held_out = held_out
        self.corpus = corpus
        self.max_new_tokens = max_new_tokens
        self.base: list[str] = []
        self.base_trained: list[str] = []
        self.result: Learned | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.folder is None or model is None or not self.questions:
            return
        record = self.folder.read()
        stored, stored_trained = record.base_answers, record.base_trained_answers or []
        if isinstance(stored, list) and len(stored) == len(self.questions):
            self.base = [str(a) for a in stored]
            if isinstance(stored_trained, list) and len(stored_trained) == len(self.trained):
                self.base_trained = [str(a) for a in stored_trained]
            else:
                self.trained = []
            return
        asked = len(self.questions) + len(self.trained)
        self.emit(Log(f"Asking the base model {asked} questions, to compare later."))
        try:
            self.base = base_answers(model, self.tokenizer, self.questions, self.max_new_tokens)
            self.base_trained = base_answers(model, self.tokenizer, self.trained, self.max_new_tokens)
        except Exception as exc:  # a check of the result must never stop the training
            self._give_up(exc)
            return
        self.folder.update(base_answers=self.base, base_trained_answers=self.base_trained)

    def finish(self, model: Any, step: int, history: list[dict[str, Any]] | None = None) -> Learned | None:
        """Ask the tuned model the same questions; the verdict goes to the events (and, from the recipe,
        run.json). ``history``: the Trainer's log history, which says whether eval loss rose."""
        if self.folder is None or not self.base:
            return None
        try:
            tuned = answer(model, self.tokenizer, self.questions, self.max_new_tokens, fit=True)
            tuned_trained = answer(model, self.tokenizer, self.trained, self.max_new_tokens, fit=True)
        except Exception as exc:
            self._give_up(exc)
            return None
        self.result = judge(
            self.questions,
            self.base,
            tuned,
            step,
            held_out=self.held_out,
            corpus=self.corpus,
            trained=(self.trained, self.base_trained, tuned_trained) if self.trained else None,
            overfitting=eval_trend(history or []),
        )
        self.emit(self.result)
        return self.result

    def _give_up(self, exc: Exception) -> None:
        self.questions, self.base, self.trained, self.base_trained = [], [], [], []
        self.emit(
            Log(f"The learning check is off: generation failed ({type(exc).__name__}: {exc}).", "warning")
        )
