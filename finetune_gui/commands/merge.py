"""``finetune-gui merge``: merge weighted adapters into the base and export the result, verified."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from finetune_gui.core.adapters.exporter import EXPORT_FORMATS
    from finetune_gui.core.adapters.gguf_types import GGUF_TYPES
    from finetune_gui.core.adapters.merge import COMBINATIONS

    p = sub.add_parser("merge", help="merge weighted adapters into the base and write a standalone model")
    p.add_argument("--base", required=True, help="the base model the adapters were trained on")
    p.add_argument("--adapter", action="append", required=True, metavar="PATH[:WEIGHT]", help="W + Σ wᵢ·ΔWᵢ")
    p.add_argument("--output", required=True, help="a new folder for the merged model")
    p.add_argument(
        "--format",
        choices=list(EXPORT_FORMATS),
        default="safetensors",
        help="adapter: copy a prefix, prompt or bottleneck adapter (which cannot merge) with a note of its base",
    )
    p.add_argument(
        "--gguf-type",
        choices=list(GGUF_TYPES),
        default="f16",
        help="f16, bf16, q8_0 and f32 from llama.cpp's converter; q4_0, q4_1, q5_0, q5_1 quantized by this app; "
        "k-quants such as q4_k_m when llama.cpp's llama-quantize is installed",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an output folder that already holds files, whole"
    )
    p.add_argument(
        "--combination",
        default="cat",
        choices=list(COMBINATIONS),
        help="how several adapters combine: cat is the exact W + Σ wᵢ·ΔWᵢ; the others are PEFT's",
    )
    p.add_argument("--density", type=float, default=0.5, help="for ties, dare and magnitude_prune")
    p.set_defaults(handler=run)

    p = sub.add_parser("gguf-options", help="each GGUF type's size and quality loss for a model")
    p.add_argument("model", help="the (merged or base) model folder")
    p.add_argument("--types", help="comma-separated types (default: every type available here)")
    p.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="PATH[:WEIGHT]",
        help="measure on this fine-tune (the adapters merged) and say how much of it each type keeps",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=gguf_options)


def gguf_options(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapters.gguf_check import kept_words
    from finetune_gui.core.adapters.gguf_types import options_for
    from finetune_gui.core.adapters.merge import parse_adapter_arg

    adapters = [parse_adapter_arg(a) for a in args.adapter]
    report = options_for(args.model, args.types.split(",") if args.types else None, adapters or None)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name, entry in report["types"].items():
        mark = " (recommended)" if name == report["recommended"] else ""
        kept = f"  {kept_words(entry['kept'])}" if "kept" in entry else ""
        print(
            f"{name:<7} ~{entry['size_bytes'] / 2**20:7.1f} MB  perplexity ×{entry['perplexity_ratio']:.2f}{kept}"
            f"{mark}  {entry['note']}"
        )
    return 0


def run(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapters.exporter import export
    from finetune_gui.core.adapters.merge import parse_adapter_arg

    def progress(what: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {what}", file=sys.stderr)

    report = export(
        args.base,
        [parse_adapter_arg(a) for a in args.adapter],
        args.output,
        fmt=args.format,
        gguf_type=args.gguf_type,
        combination=args.combination,
        density=args.density,
        overwrite=args.overwrite,
        progress=progress,
    )
    for message in report.messages:
        print(message, file=sys.stderr)
    if report.ollama:
        print(f"Run it in Ollama: cd {args.output} && {report.ollama}", file=sys.stderr)
    print(json.dumps(report.to_dict(), indent=2))
    return 0 if report.verified else 4
