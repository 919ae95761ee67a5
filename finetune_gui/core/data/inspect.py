"""What ``finetune-gui data inspect`` and the wizard's dataset page show: one pass over the dataset, and
with a model, token-length statistics and one example exactly as training sees it."""

from __future__ import annotations

from typing import Any

from finetune_gui.core.data.formats import FORMATS
from finetune_gui.core.errors import DataError

PREVIEW_CHARS = 4000  # what the window shows of one example; a 20 MB row is not sent whole


def shortened(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + f" … ({len(text):,} characters)"


def inspect(
    path: str,
    fmt: str = "auto",
    model: str | None = None,
    max_seq_len: int = 512,
    columns: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``columns`` maps the format's fields to the file's columns ({field: column}); without it, a file
    with none of the formats' fields is read through a mapping proposed for common column names."""
    from finetune_gui.core.data.scan import scan_dataset

    if fmt != "auto" and fmt not in FORMATS:
        raise DataError(f"Unknown format {fmt!r}; use auto or one of {', '.join(FORMATS)}.")
    report = scan_dataset(path, fmt, columns or None, keep_examples=bool(model))
    result = report.to_dict()
    result["columns_used"] = columns or report.columns_applied or {}
    result["columns_sentence"] = report.columns_sentence()
    result["sample"] = _short_values(result.get("sample"))
    result["token_stats"] = None
    if model:
        from finetune_gui.core.data.encode import ensure_chat_template, token_lengths, token_stats
        from finetune_gui.core.models import load_tokenizer, resolve_model

        tokenizer = load_tokenizer(resolve_model(model, require_weights=False))
        result["fallback_chat_template"] = ensure_chat_template(tokenizer)
        examples = report.examples or []
        result["token_stats"] = token_stats(token_lengths(examples, tokenizer, max_seq_len), max_seq_len)
        result["formatted_sample"] = formatted(examples[0], tokenizer) if examples else []
    return result


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
