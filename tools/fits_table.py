"""Prints the README's "what fits on your GPU" table from the estimator:

    .venv/bin/python tools/fits_table.py

For each model and free-memory budget: the method the app recommends at batch 1 × 1,024 tokens in bf16
(LoRA rank 16 on all linear layers, memory mode auto), its peak, and whether it needs gradient
checkpointing or lean memory mode.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from known_models import MODELS, write_config

BUDGETS = (8, 12, 16, 24)


def main() -> None:
    from finetune_gui.core.config import RunConfig
    from finetune_gui.core.estimate import estimate_run, shape_for
    from finetune_gui.core.hardware import Hardware
    from finetune_gui.core.methods import METHODS

    print("| model | " + " | ".join(f"{b} GB" for b in BUDGETS) + " |")
    print("|---|" + "---|" * len(BUDGETS))
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            config = RunConfig(model=str(write_config(name, Path(tmp) / name)), method="lora")
            config.training.batch_size, config.training.max_seq_len, config.training.precision = (
                1,
                1024,
                "bf16",
            )
            shape = shape_for(config)
            cells = []
            for budget in BUDGETS:
                result = estimate_run(config, shape, Hardware(bitsandbytes=True).with_budget(budget))
                best = result.methods.get(result.recommended) if result.recommended else None
                if best is None:
                    cells.append("—")
                    continue
                notes = [
                    " lean" if best.memory_mode == "lean" else "",
                    " +ckpt" if best.gradient_checkpointing and best.memory_mode != "lean" else "",
                ]
                cells.append(f"{METHODS[best.method].label} ({best.total_gib:.1f}){''.join(notes)}")
            print(f"| {name} ({shape.parameters / 1e9:.1f} B) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
