"""``finetune-gui data inspect``: exit 0 when the dataset is usable (problems listed), 2 when not."""

from __future__ import annotations

import argparse
import json

from finetune_gui.commands import usage_of


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("data", help="dataset tools")
    group.set_defaults(handler=usage_of(group))
    commands = group.add_subparsers(title="data commands", metavar="COMMAND")
    p = commands.add_parser("inspect", help="detect, validate and summarise a dataset")
    p.add_argument("path", help="a dataset file or folder")
    p.add_argument(
        "--format",
        default="auto",
        help="auto, alpaca, sharegpt, messages, prompt_completion, text or preference",
    )
    p.add_argument("--model", help="a model whose tokenizer gives token-length statistics")
    p.add_argument("--max-seq-len", type=int, default=512, help="cut-off for the truncation count")
    p.add_argument(
        "--columns",
        help="map the format's fields to your columns, e.g. instruction=question,output=answer "
        "(default: detected, or proposed for common column names)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=inspect)


def inspect(args: argparse.Namespace) -> int:
    from finetune_gui.core.data.inspect import inspect as inspect_dataset
    from finetune_gui.core.data.inspect import parse_columns

    columns = parse_columns(args.columns) if args.columns else None
    report = inspect_dataset(args.path, args.format, args.model, args.max_seq_len, columns)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
        return 0
    skipped = report.problem_count
    print(f"{report.path}: {report.format} · {report.rows:,} usable rows of {report.total_rows:,}")
    print(f"columns: {', '.join(report.columns) or '-'}")
    if report.skipped_sentence:
        print(report.skipped_sentence)
    if report.columns_sentence:
        print(report.columns_sentence)
    if skipped:
        kinds = ", ".join(f"{n} {k}" for k, n in report.problem_kinds.items())
        print(f"{skipped:,} rows skipped ({kinds}):")
        for problem in report.problems[:20]:
            print(f"  {problem['message']}")
        if skipped > 20:
            print(f"  … and {skipped - 20:,} more (use --json for all)")
    stats = report.token_stats
    if stats and stats.count:
        print(
            f"tokens: min {stats.min}, median {stats.median:.0f}, p95 {stats.p95:.0f}, max {stats.max}; "
            f"{stats.truncated} rows ({stats.truncated_pct}%) longer than {stats.max_seq_len}"
        )
    return 0
