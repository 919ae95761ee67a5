"""Supervised tuning: answers to imitate. Padding-free batches where the method and the model's attention
allow them, the language-model loss in chunks (``loss.py``, the trainer's default), and "Did it learn?"
from held-out questions answered by the base and the tuned model (``learning.py``)."""

from __future__ import annotations

from typing import Any

from finetune_gui.core.config import RunConfig
from finetune_gui.core.data.encode import EncodedDataset
from finetune_gui.core.events import Learned
from finetune_gui.core.methods import METHODS
from finetune_gui.core.training.inputs import Data
from finetune_gui.core.training.objectives import Check, CheckInputs, Log, sample_answers

TRAINED_QUESTIONS = 6  # training questions the learning check asks beside the held-out ones


class Supervised:
    def __init__(self, config: RunConfig):
        self.config = config

    def collator(self, model: Any, tokenizer: Any, pad_to: int | None, log: Log) -> Any:
        """Padding-free batches where the method and the model's attention allow them (the model's
        attention is switched to the per-example one here), else padded ones; the log says which."""
        from finetune_gui.core.training import packing
        from finetune_gui.core.training.callbacks import PadCollator

        if not self.config.training.padding_free:
            return PadCollator(tokenizer.pad_token_id, pad_to)
        why_not = packing.unsupported(model, METHODS[self.config.method].virtual_keys)
        if why_not is not None:
            log(f"Batches are padded: {why_not}.", "info")
            return PadCollator(tokenizer.pad_token_id, pad_to)
        packing.enable(model)
        log(
            "Padding-free batches: each batch's examples side by side in one row, no padding computed.",
            "info",
        )
        return packing.PackedCollator()

    def dataset(self, encoded: EncodedDataset) -> Any:
        from datasets import Dataset

        return Dataset.from_dict(
            {
                "input_ids": [e.input_ids for e in encoded.items],
                "labels": [e.labels for e in encoded.items],
                "length": [len(e.input_ids) for e in encoded.items],
            }
        )

    def loss(self) -> Any | None:
        return None

    def prepare(self, trainer: Any, data: Data, log: Log) -> None:
        return None

    def checks(self, inputs: CheckInputs) -> tuple[Check | None, Any | None]:
        from finetune_gui.core.events import Log as LogEvent
        from finetune_gui.core.training.learning import LearningCheck, questions_from, reference_texts, spread

        t, data, tokenizer = inputs.training, inputs.data, inputs.tokenizer
        questions = questions_from(data.check_examples, tokenizer, max(t.check_questions, t.sample_prompts))
        check = None
        if t.check_questions and questions:
            # A few training questions too, so the verdict tells what it absorbed from what carries over.
            trained = (
                questions_from(spread(data.trained_examples, TRAINED_QUESTIONS), tokenizer, TRAINED_QUESTIONS)
                if data.held_out
                else []
            )
            check = LearningCheck(
                inputs.emit,
                inputs.folder,
                tokenizer,
                questions[: t.check_questions],
                t.sample_max_new_tokens,
                trained=trained,
                held_out=data.held_out,
                corpus=reference_texts(data.trained_examples + data.check_examples, tokenizer),
            )
            if not data.held_out:
                inputs.emit(
                    LogEvent(
                        "No validation rows: the learning check asks questions from the training data.",
                        "warning",
                    )
                )
        if check is None:
            return None, sample_answers(inputs, questions)
        # The samples are the check's first questions, shown beside the base's answers it asked.
        return check, sample_answers(inputs, check.questions, lambda: check.base)

    def metrics(self, learned: Learned) -> dict[str, Any]:
        return {
            "answers_right": learned.tuned_right,
            "base_answers_right": learned.base_right,
            "questions": learned.questions,
        }
