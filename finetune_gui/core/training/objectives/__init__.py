"""What each objective brings to a run (``core/objectives.py`` names them): its collator, its loss, what
it prepares before the first step, its "Did it learn?" and the final metrics that check gives.

The recipe asks ``training_objective(config)`` for these and branches on nothing: a new objective is a
new module with one class of this shape and one line in ``TRAINING_OBJECTIVES`` (a test checks that
every objective of the registry has one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from finetune_gui.core.config import RunConfig, TrainingConfig
from finetune_gui.core.data.encode import EncodedDataset
from finetune_gui.core.events import Emit, Learned
from finetune_gui.core.runs import RunFolder
from finetune_gui.core.training.inputs import Data

Log = Callable[[str, str], None]  # (message, level)


@dataclass(frozen=True)
class CheckInputs:
    """What an objective's checks are built from."""

    emit: Emit
    folder: RunFolder | None  # None on ranks other than the first: they ask and record nothing
    tokenizer: Any
    data: Data
    training: TrainingConfig
    collator: Any  # the run's collator (the preference check scores pairs with it)
    chunked: Any  # the trainer's ChunkedLoss (scores without the full logits)


class Check(Protocol):
    """A "Did it learn?": the base model measured before the first step, the verdict at the end."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None: ...

    def finish(
        self, model: Any, step: int, history: list[dict[str, Any]] | None = None
    ) -> Learned | None: ...


class TrainingObjective(Protocol):
    def collator(self, model: Any, tokenizer: Any, pad_to: int | None, log: Log) -> Any:
        """How a batch is put together (may switch the model's attention, for padding-free batches)."""
        ...

    def dataset(self, encoded: EncodedDataset) -> Any:
        """The encoded rows as the trainer's dataset (the columns the collator reads)."""
        ...

    def loss(self) -> Any | None:
        """The objective's own loss for the trainer; None: the language-model loss, in chunks."""
        ...

    def prepare(self, trainer: Any, data: Data, log: Log) -> None:
        """What must be computed with the model before training (DPO's precomputed reference)."""
        ...

    def checks(self, inputs: CheckInputs) -> tuple[Check | None, Any | None]:
        """The learning check (None when switched off) and the sample answers' callback (None: none)."""
        ...

    def metrics(self, learned: Learned) -> dict[str, Any]:
        """The final metrics (run.json, ``finished``) the learning check's verdict gives."""
        ...


def sample_answers(
    inputs: CheckInputs, questions: list[Any], base_answers: Callable[[], list[str]] = list
) -> Any | None:
    """The callback that answers the first ``sample_prompts`` of ``questions`` at each evaluation (a
    run with a validation set only), scored against their references; None when samples are off."""
    from finetune_gui.core.training.callbacks import SamplesCallback

    t = inputs.training
    if not (t.sample_prompts and inputs.data.validation is not None and questions):
        return None
    return SamplesCallback(
        inputs.emit,
        inputs.folder,
        inputs.tokenizer,
        questions[: t.sample_prompts],
        t.sample_max_new_tokens,
        base_answers=base_answers,
        references=[q.reference for q in questions],
    )


def training_objective(config: RunConfig) -> TrainingObjective:
    return TRAINING_OBJECTIVES[config.training.objective](config)


def _supervised(config: RunConfig) -> TrainingObjective:
    from finetune_gui.core.training.objectives.supervised import Supervised

    return Supervised(config)


def _preference(config: RunConfig) -> TrainingObjective:
    from finetune_gui.core.training.objectives.preference_objective import Preference

    return Preference(config)


TRAINING_OBJECTIVES: dict[str, Callable[[RunConfig], TrainingObjective]] = {
    "sft": _supervised,
    "dpo": _preference,
    "orpo": _preference,
}
