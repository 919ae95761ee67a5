"""The estimate against the measured peak on this CPU, for the demo model: what a user sees on the
Review page ("x GB estimated") next to what the training process really held (its peak RSS).

    .venv/bin/python bench/cpu_memory.py [--methods lora,full,...] [--seq-lens 256,512] [--steps 3]

Each method trains the real demo model as its own `finetune-gui train` process (batch 4, rows of exactly
the sequence length, the app's defaults otherwise, the checks off so the peak is training's); the
estimate is the one `estimate --config` gives for the same config (run.json `estimate_gib`). Prints one
JSON line per run, then a summary line with each run's estimate / measured ratio, then a Markdown table
for docs/memory-calibration.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

METHODS = ["full", "full-lean", "lora", "qlora", "dora", "ia3", "bottleneck", "prefix", "prompt"]


def write_data(path: Path, rows: int = 48) -> None:
    # Plain text is cut into pieces of exactly max_seq_len tokens: every batch has the full length.
    words = " ".join(f"word{i % 500}" for i in range(3000))
    path.write_text("\n\n".join(words for _ in range(rows)) + "\n", encoding="utf-8")


def run(model: str, data: Path, method: str, seq_len: int, steps: int, out: Path) -> dict:
    lean = method == "full-lean"
    config = {
        "model": model,
        "method": "full" if lean else method,
        "output_dir": str(out),
        "dataset": {"path": str(data), "format": "text", "validation_split": 0},
        "training": {
            "max_steps": steps,
            "batch_size": 4,
            "max_seq_len": seq_len,
            "memory_mode": "lean" if lean else "standard",
            "save_steps": 1000,
            "check_questions": 0,
            "check_forgetting": False,
            "sample_prompts": 0,
        },
    }
    path = out.with_suffix(".yaml")
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "train", str(path), "--events", "jsonl"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    record = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    estimate, measured = record.get("estimate_gib"), record.get("measured_peak_gib")
    return {
        "method": method,
        "seq_len": seq_len,
        "status": record.get("status"),
        "estimate_gib": estimate,
        "measured_gib": measured,
        "estimate_over_measured": round(estimate / measured, 3) if estimate and measured else None,
        "seconds_per_step": (record.get("timing") or {}).get("seconds_per_step"),
        "error": record.get("error_message") or (result.stderr[-300:] if result.returncode else None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seq-lens", default="256,512")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    from finetune_gui.core.demo import prepare_demo_model

    model = str(prepare_demo_model())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.txt"
        write_data(data)
        for seq_len in (int(s) for s in args.seq_lens.split(",")):
            for method in args.methods.split(","):
                rows.append(run(model, data, method, seq_len, args.steps, Path(tmp) / f"{method}-{seq_len}"))
                print(json.dumps(rows[-1]), flush=True)
    ratios = [r["estimate_over_measured"] for r in rows if r["estimate_over_measured"]]
    print(
        json.dumps(
            {
                "benchmark": "cpu_memory",
                "model": "SmolLM2-135M-Instruct (demo)",
                "batch_size": 4,
                "cpus": os.cpu_count(),
                "rows": rows,
                "furthest_ratio": max(ratios, key=lambda r: abs(r - 1.0), default=None),
            }
        )
    )
    print(
        "\n| method | tokens | estimate (GB) | measured peak RSS (GB) | estimate / measured |\n|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['method']} | 4×{r['seq_len']} | {r['estimate_gib']} | {r['measured_gib']} | {r['estimate_over_measured']} |"
        )


if __name__ == "__main__":
    main()
