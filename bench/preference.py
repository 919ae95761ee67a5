"""Does preference tuning teach the demo model a house style? The figures in docs/methods.md.

    .venv/bin/python bench/preference.py [--runs lora:dpo,lora:orpo,full:dpo,full:orpo] [--model PATH]

Trains the demo model on made-up preference pairs (tools/preference_dataset.py: a ship's cook's style,
"Aye, cook says: … Fair winds!", chosen over a plain answer) through the app's own training path, with
only model, data, method and objective given (the proposal fills in the rest), and reads the run's own
verdict: on 18 held-out prompts (things never trained on), how often the base and the tuned model
prefer the chosen answer, and the tuned model's answers to two of them. Prints one JSON object per run,
then all of them as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))


def run(model: str, method: str, objective: str, train: Path, held: Path, out: Path) -> dict:
    config = {
        "model": model,
        "method": method,
        "output_dir": str(out / "run"),
        "dataset": {"path": str(train), "validation_path": str(held)},
        "training": {"objective": objective, "sample_prompts": 0},
    }
    path = out / "run.yaml"
    path.write_text(json.dumps(config))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "train", str(path)], capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    info = json.loads((out / "run" / "run.json").read_text())
    learning = info.get("learning") or {}
    return {
        "method": method,
        "objective": objective,
        "status": info.get("status"),
        "seconds": round(seconds, 1),
        "steps": (info.get("metrics") or {}).get("steps"),
        "learning_rate": (info.get("proposal") or {}).get("training.learning_rate", {}).get("value"),
        "held_out_pairs": learning.get("questions"),
        "base_prefers_chosen": learning.get("base_right"),
        "tuned_prefers_chosen": learning.get("tuned_right"),
        "verdict": learning.get("verdict"),
        "sample_answers": [e.get("answer") for e in learning.get("examples") or [] if e.get("answer")],
        "stderr": result.stderr[-300:] if result.returncode else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="lora:dpo,lora:orpo,full:dpo,full:orpo")
    parser.add_argument("--model", default=None, help="a model folder (default: the demo model)")
    parser.add_argument("--out", default=None, help="also write the JSON document to this file")
    args = parser.parse_args()
    import preference_dataset

    from finetune_gui.core import demo

    model = args.model or str(demo.prepare_demo_model())
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        train, held = preference_dataset.write(Path(tmp) / "data")
        for item in args.runs.split(","):
            method, objective = item.split(":")
            out = Path(tmp) / f"{method}-{objective}"
            out.mkdir()
            found = run(model, method, objective, train, held, out)
            print(json.dumps(found), flush=True)
            results.append(found)
    document = json.dumps({"model": model, "runs": results}, indent=2)
    print(document)
    if args.out:
        Path(args.out).write_text(document + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
