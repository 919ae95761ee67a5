"""What ``finetune-gui data inspect`` and the wizard's dataset page show: one pass over the dataset, and
with a model, token-length statistics and one example exactly as training sees it."""

from __future__ import annotations

from typing import Any

from finetune_gui.core.data.formats import FORMATS
from finetune_gui.core.errors import DataError


def inspect(path: str, fmt: str = "auto", model: str | None = None, max_seq_len: int = 512) -> dict[str, Any]:
    from finetune_gui.core.data.scan import scan_dataset

    if fmt != "auto" and fmt not in FORMATS:
        raise DataError(f"Unknown format {fmt!r}; use auto or one of {', '.join(FORMATS)}.")
    report = scan_dataset(path, fmt, keep_examples=bool(model))
    result = report.to_dict()
    result["token_stats"] = None
    if model:
        from finetune_gui.core.data.encode import ensure_chat_template, segments, token_lengths, token_stats
        from finetune_gui.core.models import load_tokenizer, resolve_model

        tokenizer = load_tokenizer(resolve_model(model, require_weights=False))
        result["fallback_chat_template"] = ensure_chat_template(tokenizer)
        examples = report.examples or []
        result["token_stats"] = token_stats(token_lengths(examples, tokenizer), max_seq_len)
        result["formatted_sample"] = [
            {"text": t, "trained": trained} for t, trained in segments(examples[0], tokenizer)
        ]
    return result
