"""What the Trainer is fed: the dataset read, split, encoded and masked, and the prompts it answers
at every evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finetune_gui.core.data.encode import EncodedDataset, encode_all, split
from finetune_gui.core.data.scan import load_examples
from finetune_gui.core.errors import UserError


@dataclass
class Data:
    train: EncodedDataset
    validation: EncodedDataset | None
    rows: int
    problems: int
    sample_examples: list[Any] = field(default_factory=list)  # raw examples whose prompts are sampled

    @property
    def longest(self) -> int:
        """The longest example in tokens (cut at max_seq_len), over training and validation data."""
        return max(self.train.longest, self.validation.longest if self.validation else 0)


def load_data(ctx: Any, tokenizer: Any) -> Data:
    cfg = ctx.config.dataset
    examples, report = load_examples(cfg.path, cfg.format, cfg.columns)
    if report.problem_count:
        first = "; ".join(p.describe() for p in report.problems[:3])
        ctx.log(f"{report.problem_count:,} of {report.total:,} rows skipped. {first}", "warning")
    if cfg.validation_path:
        val_examples, _ = load_examples(cfg.validation_path, cfg.format, cfg.columns)
        train_examples = examples
    else:
        train_examples, val_examples = split(examples, cfg.validation_split, ctx.config.training.seed)
    max_len = ctx.config.training.max_seq_len
    train = encode_all(train_examples, tokenizer, max_len)
    if train.truncated or train.dropped:
        ctx.log(
            f"{train.truncated:,} examples are longer than max_seq_len {max_len} and were cut; "
            f"{train.dropped:,} lost their whole answer and were skipped.",
            "warning",
        )
    if not train.items:
        raise UserError(
            f"No training example keeps any answer tokens within max_seq_len {max_len}. "
            "Raise training.max_seq_len or shorten the prompts.",
            kind="data",
            exit_code=2,
        )
    validation = encode_all(val_examples, tokenizer, max_len) if val_examples else None
    samples = (val_examples or train_examples)[: ctx.config.training.sample_prompts]
    return Data(
        train,
        validation if validation and validation.items else None,
        report.rows,
        report.problem_count,
        samples,
    )


def to_dataset(encoded: EncodedDataset) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "input_ids": [e.input_ids for e in encoded.items],
            "labels": [e.labels for e in encoded.items],
            "length": [len(e.input_ids) for e in encoded.items],
        }
    )


def sample_prompt(example: Any, tokenizer: Any) -> tuple[str, str] | None:
    """(what the model is given, what the user reads) for a sample: a chat up to its last answer, or a
    completion's prompt; plain text has no question to ask."""
    if example.kind == "chat":
        turns = list(example.messages)
        while turns and turns[-1][0] == "assistant":
            turns.pop()
        if not turns:
            return None
        messages = [{"role": r, "content": c} for r, c in turns]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, turns[-1][1]
    if example.kind == "completion":
        return example.prompt, example.prompt
    return None
