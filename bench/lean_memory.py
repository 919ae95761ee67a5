"""Full fine-tuning of the demo model in standard and lean memory mode, side by side: same data, steps
and seed; peak memory, seconds per step and the loss curve of each.

    .venv/bin/python bench/lean_memory.py [--steps 30] [--out FILE]

Each run is its own process (peak memory is the process's, measured by the training itself: RSS on a
CPU, torch.cuda.max_memory_allocated on a GPU). Prints JSON: lean's peak as a share of standard's, and
its final loss against standard's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(model: str, mode: str, steps: int, out: Path) -> dict:
    config = {
        "model": model,
        "method": "full",
        "output_dir": str(out / mode),
        "dataset": {"path": str(REPO / "resources" / "demo-dataset.jsonl"), "validation_split": 0},
        "training": {
            "memory_mode": mode,
            "max_steps": steps,
            "batch_size": 4,
            "learning_rate": 5e-5,
            "max_seq_len": 256,
            "save_steps": 100000,
            "check_questions": 0,
            "sample_prompts": 0,
            "gradient_checkpointing": "on",
            "seed": 7,
        },
    }
    path = out / f"{mode}.yaml"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "train", str(path), "--events", "jsonl"],
        capture_output=True,
        text=True,
    )
    events = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    steps_ev = [e for e in events if e["event"] == "step"]
    info = json.loads((out / mode / "run.json").read_text())
    timed = steps_ev[2:] or steps_ev
    per_step = (timed[-1]["elapsed_s"] - (steps_ev[1]["elapsed_s"] if len(steps_ev) > 2 else 0)) / max(
        1, len(timed)
    )
    return {
        "memory_mode": info.get("memory_mode"),
        "status": info.get("status"),
        "peak_gib": info.get("measured_peak_gib"),
        "estimate_gib": info.get("estimate_gib"),
        "seconds_per_step": round(per_step, 2),
        "losses": [round(e["loss"], 4) for e in steps_ev],
        "final_loss": (info.get("metrics") or {}).get("smoothed_loss"),
        "error": info.get("error_message"),
    }


def _last5(run: dict) -> float | None:
    losses = run.get("losses") or []
    return sum(losses[-5:]) / len(losses[-5:]) if losses else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from finetune_gui.core.demo import prepare_demo_model

    model = str(prepare_demo_model())
    with tempfile.TemporaryDirectory() as tmp:
        standard = run(model, "standard", args.steps, Path(tmp))
        lean = run(model, "lean", args.steps, Path(tmp))
    result = {
        "benchmark": "lean_memory",
        "model": "SmolLM2-135M-Instruct",
        "machine": f"CPU ({os.cpu_count()} cores)",
        "steps": args.steps,
        "standard": standard,
        "lean": lean,
        "lean_peak_share": round(lean["peak_gib"] / standard["peak_gib"], 3)
        if standard["peak_gib"]
        else None,
        "lean_final_loss_ratio": round(lean["final_loss"] / standard["final_loss"], 3)
        if standard.get("final_loss") and lean.get("final_loss")
        else None,
        # The measure: the mean of the last five losses, lean over standard, at the same steps.
        "lean_last5_loss_ratio": round(_last5(lean) / _last5(standard), 3)
        if _last5(standard) and _last5(lean)
        else None,
        "lean_time_ratio": round(lean["seconds_per_step"] / standard["seconds_per_step"], 2)
        if standard["seconds_per_step"]
        else None,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
