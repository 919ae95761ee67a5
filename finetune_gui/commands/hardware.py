"""``finetune-gui hardware``: GPUs, free VRAM, RAM and the methods this machine can run."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("hardware", help="GPUs, free VRAM, RAM and the methods this machine can run")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from finetune_gui.core import hardware

    hw = hardware.detect()
    print(json.dumps(hw.to_dict(), indent=2) if args.json else describe(hw))
    return 0


def describe(hw) -> str:
    from finetune_gui.core.hardware import runnable_methods

    lines = []
    if not hw.gpus:
        lines.append(
            "No GPU found. Training runs on the CPU: fine for the demo model, slow for anything larger."
        )
    for g in hw.gpus:
        cc = f", compute {g.compute_capability}" if g.compute_capability else ""
        lines.append(
            f"GPU {g.index}: {g.name} ({g.backend}{cc}) · {g.free_gib:.1f} of {g.total_gib:.1f} GB free · "
            f"bf16 {'yes' if g.bf16 else 'no'}"
        )
    lines.append(
        f"RAM: {hw.ram_available_gib:.1f} of {hw.ram_total_gib:.1f} GB available · {hw.cpu_count} CPU cores"
    )
    lines.append(hw.bitsandbytes_note)
    runnable = [name for name, ok in runnable_methods(hw).items() if ok]
    lines.append("Methods that run here: " + ", ".join(runnable))
    return "\n".join(lines)
