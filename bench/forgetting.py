"""Did it forget? Per method, at the settings the app proposes: the demo model trained on the demo
dataset (only model, data and method given), then what it learned (the 50 held-out questions, as in
bench/method_comparison.py) beside what it kept (the app's own forgetting check: a general text's
perplexity, tuned over base, and its verdict), so the seed lesson's "LoRA: no catastrophic forgetting"
is measured rather than repeated.

    .venv/bin/python bench/forgetting.py [--methods full,full-lean,lora,qlora] [--out resources/forgetting.json]

(full-lean: full fine-tuning in lean memory mode, which must learn what the standard mode learns.)

Prints one JSON line per method, then the whole JSON; tools/methods_doc.py renders it into docs/methods.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from method_comparison import demo_model_and_prompts, earlier_rows, measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="full,full-lean,lora,qlora")
    parser.add_argument("--prompts", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    model, prompts = demo_model_and_prompts(args.prompts)
    rows = earlier_rows(args.out, args.methods.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            out = Path(tmp) / method
            row = measured(model, method, out, prompts, args.max_new_tokens)  # trained and scored
            row.pop("examples", None)
            forgetting = json.loads((out / "run" / "run.json").read_text()).get("forgetting") or {}
            row.update(
                general_perplexity_ratio=forgetting.get("ratio"),
                forgetting_verdict=forgetting.get("verdict"),
                forgetting_summary=forgetting.get("summary"),
                everyday_answers=forgetting.get("examples"),
            )
            rows[method] = row
            print(json.dumps({"method": method, **row}), flush=True)
            # Written after every method: a whole pass takes an hour on a CPU, and an interrupted one
            # keeps what it measured.
            _write(rows, len(prompts), args.out)
    print(_write(rows, len(prompts), args.out))


def _write(rows: dict, prompts: int, out: str | None) -> str:
    text = json.dumps(
        {
            "benchmark": "forgetting",
            "model": "SmolLM2-135M-Instruct (the demo model)",
            "machine": f"CPU ({os.cpu_count()} cores)",
            "held_out_prompts": prompts,
            "methods": rows,
        },
        indent=2,
    )
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
