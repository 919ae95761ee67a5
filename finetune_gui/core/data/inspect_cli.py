"""``finetune-gui data inspect``: exit 0 when the dataset is usable (problems listed), 2 when not."""

from __future__ import annotations

import argparse
import json
from typing import Any

from finetune_gui.core.data.formats import FORMATS
from finetune_gui.core.errors import DataError


def inspect(path: str, fmt: str = "auto", model: str | None = None, max_seq_len: int = 512) -> dict[str, Any]:
    from finetune_gui.core.data.scan import load_examples, scan_dataset

    if fmt != "auto" and fmt not in FORMATS:
        raise DataError(f"Unknown format {fmt!r}; use auto or one of {', '.join(FORMATS)}.")
    report = scan_dataset(path, fmt)
    result = report.to_dict()
    result["token_stats"] = None
    if model:
        from finetune_gui.core.data.encode import ensure_chat_template, segments, token_lengths, token_stats
        from finetune_gui.core.models import load_tokenizer, resolve_model

        tokenizer = load_tokenizer(resolve_model(model, require_weights=False))
        result["fallback_chat_template"] = ensure_chat_template(tokenizer)
        examples, _ = load_examples(path, report.format)
        result["token_stats"] = token_stats(token_lengths(examples, tokenizer), max_seq_len)
        result["formatted_sample"] = [
            {"text": t, "trained": trained} for t, trained in segments(examples[0], tokenizer)
        ]
    return result


def run_inspect_command(args: argparse.Namespace) -> int:
    result = inspect(args.path, args.format, args.model, args.max_seq_len)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    skipped = result["problem_count"]
    print(
        f"{result['path']}: {result['format']} · {result['rows']:,} usable rows of {result['total_rows']:,}"
    )
    print(f"columns: {', '.join(result['columns']) or '-'}")
    if skipped:
        kinds = ", ".join(f"{n} {k}" for k, n in result["problem_kinds"].items())
        print(f"{skipped:,} rows skipped ({kinds}):")
        for problem in result["problems"][:20]:
            print(f"  {problem['message']}")
        if skipped > 20:
            print(f"  … and {skipped - 20:,} more (use --json for all)")
    stats = result.get("token_stats")
    if stats:
        print(
            f"tokens: min {stats['min']}, median {stats['median']:.0f}, p95 {stats['p95']:.0f}, max {stats['max']}; "
            f"{stats['truncated']} rows ({stats['truncated_pct']}%) longer than {stats['max_seq_len']}"
        )
    return 0
