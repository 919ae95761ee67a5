"""What the Trainer is fed: the dataset read, split, encoded and masked, and the prompts it answers
at every evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from finetune_gui.core.config import DatasetConfig
from finetune_gui.core.data.encode import EncodedDataset, encode_all, split
from finetune_gui.core.data.scan import load_examples
from finetune_gui.core.errors import FailureKind, UserError


@dataclass
class Data:
    train: EncodedDataset
    validation: EncodedDataset | None
    rows: int
    problems: int
    check_examples: list[Any] = field(default_factory=list)  # asked before and after: did it learn?
    held_out: bool = True  # the check's questions are validation rows, never trained on
    trained_examples: list[Any] = field(default_factory=list)  # the training rows (what it absorbed)
    # The column mapping proposed for the file's column names and used (None: the config's own, or
    # none needed); the run records it in its config.yaml.
    columns_applied: dict[str, str] | None = None

    @property
    def system_prompt(self) -> str | None:
        return training_system_prompt(self.trained_examples)

    @property
    def longest(self) -> int:
        """The longest example in tokens (cut at max_seq_len), over training and validation data."""
        return max(self.train.longest, self.validation.longest if self.validation else 0)


def training_system_prompt(examples: list[Any]) -> str | None:
    """The system prompt the model trained with: the most common first system message of the chat
    rows, or None when none has one. The playground, ``generate`` and the Modelfile ask with it, since a
    model tuned under one system prompt answers differently under the template's default."""
    from collections import Counter

    found: Counter[str] = Counter()
    for example in examples:
        messages = getattr(example, "messages", ()) or ()
        if messages and messages[0][0] == "system" and messages[0][1].strip():
            found[messages[0][1]] += 1
    return found.most_common(1)[0][0] if found else None


def check_objective(examples: list[Any], objective: str, path: str) -> list[Any]:
    """The rows the objective learns from: preference pairs for DPO and ORPO, single answers otherwise.
    Rows of the other kind in a folder are left out (and said); a dataset of only those is refused in
    one sentence that says which objective it is for."""
    from finetune_gui.core.objectives import OBJECTIVES

    wanted = OBJECTIVES[objective]
    fitting = [e for e in examples if (e.kind == "preference") == wanted.pairs]
    if fitting or not examples:
        return fitting
    if wanted.pairs:
        raise UserError(
            f"{path} has rows with one answer each, but {wanted.label} learns from pairs: give rows with a "
            "prompt, a chosen and a rejected answer, or train with training.objective: sft.",
            kind=FailureKind.DATA,
        )
    raise UserError(
        f"{path} holds preference pairs (prompt, chosen, rejected), which supervised tuning cannot learn from: "
        "choose the DPO or ORPO objective (training.objective: dpo), or give rows with one answer each.",
        kind=FailureKind.DATA,
    )


def load_data(
    cfg: DatasetConfig,
    objective: str,
    max_len: int,
    seed: int,
    tokenizer: Any,
    log: Callable[[str, str], None],
) -> Data:
    """The dataset read, split (seeded) and encoded at ``max_len`` tokens for ``objective``; what it
    skipped or cut is said through ``log`` (message, level)."""
    examples, report = load_examples(cfg.path, cfg.format, cfg.columns)
    kept = check_objective(examples, objective, cfg.path)
    if len(kept) < len(examples):
        log(
            f"{len(examples) - len(kept):,} rows are of the other kind ("
            + ("one answer, not a pair" if objective != "sft" else "preference pairs")
            + ") and were left out.",
            "warning",
        )
        examples = kept
    columns = dict(report.columns_applied) if report.columns_applied else cfg.columns
    if report.columns_applied:
        log(report.columns_sentence(), "info")
    if report.problem_count:
        first = "; ".join(p.describe() for p in report.problems[:3])
        log(f"{report.problem_count:,} of {report.total:,} rows skipped. {first}", "warning")
        if report.skipped_sentence():
            log(report.skipped_sentence(), "warning")
    if cfg.validation_path:  # read with the same mapping as the training file
        val_examples, _ = load_examples(cfg.validation_path, cfg.format, columns)
        val_examples = check_objective(val_examples, objective, cfg.validation_path)
        train_examples = examples
    else:
        train_examples, val_examples = split(examples, cfg.validation_split, seed)
    train = encode_all(train_examples, tokenizer, max_len)
    pairs = any(e.kind == "preference" for e in train_examples)
    if train.truncated or train.dropped:
        lost = (
            "had a prompt longer than max_seq_len, leaving an answer nothing,"
            if pairs
            else "lost their whole answer"
        )
        log(
            f"{train.truncated:,} examples are longer than max_seq_len {max_len} and were cut; "
            f"{train.dropped:,} {lost} and were skipped.",
            "warning",
        )
    if not train.items:
        raise UserError(
            f"No training example keeps any answer tokens within max_seq_len {max_len}. "
            "Raise training.max_seq_len or shorten the prompts.",
            kind=FailureKind.DATA,
        )
    validation = encode_all(val_examples, tokenizer, max_len) if val_examples else None
    return Data(
        train,
        validation if validation and validation.items else None,
        report.rows,
        report.problem_count,
        list(val_examples or train_examples),
        held_out=bool(val_examples),
        trained_examples=list(train_examples),
        columns_applied=dict(report.columns_applied) if report.columns_applied else None,
    )
