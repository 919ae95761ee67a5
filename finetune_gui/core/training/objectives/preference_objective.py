"""DPO and ORPO as the recipe runs them (the loss and its formulas are ``preference.py``'s, the check
``preference_check.py``'s)."""

from __future__ import annotations

from typing import Any

from finetune_gui.core.config import RunConfig
from finetune_gui.core.data.encode import EncodedDataset
from finetune_gui.core.events import Learned
from finetune_gui.core.training.inputs import Data
from finetune_gui.core.training.objectives import Check, CheckInputs, Log, sample_answers
from finetune_gui.core.training.objectives.preference import (
    PairCollator,
    PreferenceLoss,
    pair_dataset,
    precompute_reference,
)

PREFERENCE_TRAINED_PAIRS = 12  # training pairs the preference check scores beside the held-out ones


class Preference:
    """DPO and ORPO as the recipe runs them: pairs padded in one batch (each pair scores its two answers
    in rows of their own, so padding-free batches do not apply), the preference loss, DPO's reference
    precomputed where there is no adapter to switch off, and "Did it learn?" by held-out pairs."""

    def __init__(self, config: RunConfig):
        self.config = config

    def collator(self, model: Any, tokenizer: Any, pad_to: int | None, log: Log) -> Any:
        if self.config.training.padding_free:
            log("Batches are padded: the preference objectives score each pair in its own row.", "info")
        return PairCollator(tokenizer.pad_token_id, pad_to)

    def dataset(self, encoded: EncodedDataset) -> Any:
        return pair_dataset(encoded)

    def loss(self) -> Any | None:
        return PreferenceLoss(
            self.config.training.objective, self.config.resolved_beta(), self.config.preference.loss
        )

    def prepare(self, trainer: Any, data: Data, log: Log) -> None:
        """DPO without an adapter to switch off: every pair scored once by the weights as loaded (a resumed
        run loads its checkpoint only inside ``train``, so this is the base model then too)."""
        if self.config.reference_kind() != "precomputed":
            return
        count = len(data.train.items) + (len(data.validation.items) if data.validation else 0)
        log(f"Scoring {count:,} pairs with the model before training: DPO's reference.", "info")
        trainer.train_dataset = pair_dataset(
            data.train, precompute_reference(trainer, data.train, trainer.chunked)
        )
        if data.validation is not None:
            trainer.eval_dataset = pair_dataset(
                data.validation, precompute_reference(trainer, data.validation, trainer.chunked)
            )

    def checks(self, inputs: CheckInputs) -> tuple[Check | None, Any | None]:
        """Held-out pairs (training pairs without a split) and a sample of training pairs, each kept with
        its row for the verdict's examples; the samples answer held-out prompts, shown beside the chosen
        answer."""
        from finetune_gui.core.data.encode import encode_pair
        from finetune_gui.core.training.learning import questions_from, spread
        from finetune_gui.core.training.objectives.preference_check import PreferenceCheck

        t, data, tokenizer = inputs.training, inputs.data, inputs.tokenizer

        def encoded(rows: list[Any], limit: int) -> list[tuple[Any, Any]]:
            found = []
            for row in rows:
                pair = encode_pair(row, tokenizer, t.max_seq_len)
                if pair.trained_tokens:
                    found.append((row, pair))
                if len(found) >= limit:
                    break
            return found

        check = None
        if t.check_questions:
            held = encoded(data.check_examples, max(t.check_questions, 2 * PREFERENCE_TRAINED_PAIRS))
            trained = encoded(
                spread(data.trained_examples, PREFERENCE_TRAINED_PAIRS), PREFERENCE_TRAINED_PAIRS
            )
            if held:
                check = PreferenceCheck(
                    inputs.emit,
                    inputs.folder,
                    tokenizer,
                    inputs.collator,
                    held,
                    trained if data.held_out else [],
                    held_out=data.held_out,
                    max_new_tokens=t.sample_max_new_tokens,
                    objective=t.objective,
                    chunked=inputs.chunked,
                )
        questions = questions_from(data.check_examples, tokenizer, max(t.check_questions, t.sample_prompts))
        return check, sample_answers(inputs, questions)

    def metrics(self, learned: Learned) -> dict[str, Any]:
        return {
            "preferred_chosen": learned.tuned_right,
            "base_preferred_chosen": learned.base_right,
            "pairs": learned.questions,
        }
