"""What ``finetune-gui data inspect`` and the wizard's dataset page show: one pass over the dataset, and
with a model, token-length statistics and one example exactly as training sees it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from finetune_gui.core.data.formats import FORMATS
from finetune_gui.core.errors import DataError

PREVIEW_CHARS = 4000  # what the window shows of one example; a 20 MB row is not sent whole


@dataclass(frozen=True)
class TokenStats:
    """Token lengths of the examples as training encodes them (``data inspect --model``)."""

    count: int
    min: int = 0
    median: float = 0.0
    p95: float = 0.0
    max: int = 0
    mean: float = 0.0
    total_tokens: int = 0
    max_seq_len: int = 0
    truncated: int = 0  # examples longer than max_seq_len
    truncated_pct: float = 0.0
    histogram: dict[str, list[float]] = field(default_factory=dict)  # {counts, edges}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if self.count else {"count": 0}


@dataclass(frozen=True)
class DatasetReport:
    """What ``data inspect --json`` prints and the wizard's dataset page reads back: the format found,
    the usable rows, the problems by row, the column mapping used, and with a model the token lengths and
    one example as training sees it. Keys may be added, none renamed (docs/architecture.md)."""

    path: str
    format: str
    rows: int  # usable rows
    total_rows: int
    files: int = 1
    columns: list[str] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)  # {line or row, file?, message}
    problem_count: int = 0
    problem_kinds: dict[str, int] = field(default_factory=dict)
    usable: bool = False
    sample: Any = None
    columns_applied: dict[str, str] | None = None  # proposed for common column names
    skipped_sentence: str = ""
    file_formats: dict[str, str] | None = None  # a folder of files in different formats
    columns_used: dict[str, str] = field(default_factory=dict)  # the mapping the rows were read with
    columns_sentence: str = ""
    token_stats: TokenStats | None = None
    fallback_chat_template: bool | None = None
    formatted_sample: list[dict[str, Any]] | None = None  # {text, trained, side?, label?}

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["token_stats"] = self.token_stats.to_dict() if self.token_stats else None
        for key in ("fallback_chat_template", "formatted_sample"):  # only when a model was given
            if data[key] is None:
                del data[key]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetReport:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        stats = known.get("token_stats")
        stats_names = {f.name for f in dataclasses.fields(TokenStats)}
        known["token_stats"] = (
            TokenStats(**{k: v for k, v in stats.items() if k in stats_names})
            if isinstance(stats, dict)
            else None
        )
        known["columns_used"] = dict(known.get("columns_used") or {})
        return cls(**known)


def shortened(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + f" … ({len(text):,} characters)"


def inspect(
    path: str,
    fmt: str = "auto",
    model: str | None = None,
    max_seq_len: int = 512,
    columns: dict[str, str] | None = None,
) -> DatasetReport:
    """``columns`` maps the format's fields to the file's columns ({field: column}); without it, a file
    with none of the formats' fields is read through a mapping proposed for common column names."""
    from finetune_gui.core.data.scan import scan_dataset

    if fmt != "auto" and fmt not in FORMATS:
        raise DataError(f"Unknown format {fmt!r}; use auto or one of {', '.join(FORMATS)}.")
    scan = scan_dataset(path, fmt, columns or None, keep_examples=bool(model))
    report = DatasetReport(
        path=scan.path,
        format=scan.format,
        rows=scan.rows,
        total_rows=scan.total,
        files=scan.files,
        columns=scan.columns,
        problems=[p.to_dict() for p in scan.problems],
        problem_count=scan.problem_count,
        problem_kinds=scan.problem_kinds,
        usable=scan.usable,
        sample=_short_values(scan.sample),
        columns_applied=scan.columns_applied,
        skipped_sentence=scan.skipped_sentence(),
        file_formats=scan.file_formats,
        columns_used=columns or scan.columns_applied or {},
        columns_sentence=scan.columns_sentence(),
    )
    if not model:
        return report
    from finetune_gui.core.data.encode import ensure_chat_template, token_lengths, token_stats
    from finetune_gui.core.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(model, require_weights=False))
    fallback = ensure_chat_template(tokenizer)
    examples = scan.examples or []
    stats = token_stats(token_lengths(examples, tokenizer, max_seq_len), max_seq_len)
    return dataclasses.replace(
        report,
        fallback_chat_template=fallback,
        token_stats=TokenStats(**stats),
        formatted_sample=formatted(examples[0], tokenizer) if examples else [],
    )


def formatted(example: Any, tokenizer: Any) -> list[dict[str, Any]]:
    """One example as training sees it, in pieces: {text, trained}. A preference pair is its prompt with
    the chosen answer, then the rejected answer as it follows the same prompt; each answer's pieces say
    which ``side`` they are."""
    from finetune_gui.core.data.encode import segments

    if example.kind != "preference":
        return [{"text": shortened(t), "trained": trained} for t, trained in segments(example, tokenizer)]
    pieces = [
        {"text": shortened(t), "trained": trained, **({"side": "chosen"} if trained else {})}
        for t, trained in segments(example.answered("chosen"), tokenizer)
    ]
    rejected = segments(example.answered("rejected"), tokenizer)
    first = next((i for i, (_t, trained) in enumerate(rejected) if trained), len(rejected))
    pieces.append({"text": "\n— or, rejected —\n", "trained": False, "label": True})
    pieces += [
        {"text": shortened(t), "trained": trained, **({"side": "rejected"} if trained else {})}
        for t, trained in rejected[first:]
    ]
    return pieces


def _short_values(value: Any) -> Any:
    if isinstance(value, str):
        return shortened(value)
    if isinstance(value, dict):
        return {k: _short_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_short_values(v) for v in value]
    return value


def parse_columns(text: str) -> dict[str, str]:
    """``instruction=question,output=answer`` (what --columns takes) as {field: column}."""
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        field, sep, column = part.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise DataError(
                f"--columns takes FIELD=COLUMN pairs separated by commas (e.g. instruction=question,"
                f"output=answer); {part!r} is not one."
            )
        mapping[field.strip()] = column.strip()
    return mapping
