"""``finetune-gui merge``, ``generate`` and ``adapters list``: the adapter manager's core on the command line."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from finetune_gui.core.errors import UserError


def run_merge_command(args: argparse.Namespace) -> int:
    from finetune_gui.core.merge import merge, parse_adapter_arg, verify

    adapters = [parse_adapter_arg(a) for a in args.adapter]
    for path, _ in adapters:
        if not Path(path).is_dir():
            raise UserError(f"No adapter folder at {path}. Give the folder that holds adapter_config.json.")
    output = Path(args.output)
    fmt = args.format
    if fmt == "adapter":
        from finetune_gui.core.merge import export_adapter_folder

        if len(adapters) != 1:
            raise UserError("--format adapter exports one adapter folder; give one --adapter.")
        folder = export_adapter_folder(args.base, adapters[0][0], output)
        print(json.dumps({"output": str(folder), "format": "adapter"}, indent=2))
        return 0
    model_dir = output if fmt == "safetensors" else output / "model"

    def progress(what: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {what}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        if args.combination != "cat" and len(adapters) > 1:
            # svd/ties/dare build one adapter from the stack, once: it is what gets merged, and the
            # reference the merged model is verified against (not the exact weighted sum).
            from finetune_gui.core.merge import combine_with_peft

            adapters = [
                (str(combine_with_peft(args.base, adapters, args.combination, Path(tmp), args.density)), 1.0)
            ]
        merge(args.base, adapters, model_dir, progress=progress)
        report = {"output": str(model_dir), "merge": verify(args.base, adapters, model_dir)}
    print(report["merge"]["message"], file=sys.stderr)
    if fmt == "gguf":
        from finetune_gui.core.export import export_gguf, modelfile, verify_gguf

        gguf = export_gguf(model_dir, output / f"model-{args.gguf_type}.gguf", args.gguf_type)
        (output / "Modelfile").write_text(modelfile(model_dir, gguf.name), encoding="utf-8")
        report["gguf"] = {"path": str(gguf), **verify_gguf(model_dir, gguf)}
        report["modelfile"] = str(output / "Modelfile")
        print(report["gguf"]["message"], file=sys.stderr)
    print(json.dumps(report, indent=2))
    verified = report["merge"]["verified"] and report.get("gguf", {}).get("verified", True)
    return 0 if verified else 4


def run_generate_command(args: argparse.Namespace) -> int:
    from finetune_gui.core.generate import Generator
    from finetune_gui.core.merge import parse_adapter_arg

    generator = Generator(args.model)
    if args.adapter:
        generator.use_adapters([parse_adapter_arg(a) for a in args.adapter])
    for piece in generator.stream(
        args.prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature
    ):
        print(piece, end="", flush=True)
    print()
    return 0


def run_adapters_list_command(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapters import AdapterLibrary

    entries = AdapterLibrary().entries()
    if args.json:
        print(json.dumps({"adapters": entries}, indent=2))
        return 0
    if not entries:
        print("No adapters yet. Every completed run adds its adapter; `finetune-gui train` makes one.")
    for e in entries:
        loss = f"loss {e['final_loss']:.3f}" if isinstance(e.get("final_loss"), float) else ""
        print(f"{e['name']:<32} {e['kind']:<10} r={e.get('rank')}  {loss}  {e['path']}")
    return 0
