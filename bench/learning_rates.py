"""Which learning rate makes each method learn new facts: the calibration behind the proposal's rule.

    .venv/bin/python bench/learning_rates.py --method lora --rates 2e-4,5e-4,1e-3 [--epochs 3] [--proposed]

Trains the demo model on made-up facts (tools/facts_dataset.py: 30 facts × 3 phrasings) through the
app's own training path, then asks the 60 held-out phrasings (never trained on) and counts answers that
contain the fact's key term. ``--proposed`` adds a run at the app's own proposal (only model, data and
method given). Prints one JSON object per run, then all of them as one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))


def run(model: str, method: str, rate: float | None, epochs: float | None, out: Path, train: Path) -> dict:
    training: dict = {"sample_prompts": 0, "save_steps": 100000}
    if rate is not None:
        training.update(learning_rate=rate, epochs=epochs, batch_size=4)
    config = {
        "model": model,
        "method": method,
        "output_dir": str(out / "run"),
        "dataset": {"path": str(train)},
    }
    if rate is not None:
        config["training"] = training
    path = out / "run.yaml"
    path.write_text(json.dumps(config))
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "train", str(path)], capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    info = json.loads((out / "run" / "run.json").read_text())
    return {
        "status": info.get("status"),
        "seconds": round(seconds, 1),
        "run": info,
        "stderr": result.stderr[-400:],
    }


def answers(model: str, adapter: Path | None, full: bool, heldout: Path) -> list[str]:
    from finetune_gui.core.adapters.generate import Generator

    generator = Generator(str(adapter) if full else model)
    if adapter is not None and not full:
        generator.use_adapters([(str(adapter), 1.0)])
    prompts = [json.loads(line)["prompt"] for line in heldout.read_text().splitlines()]
    return ["".join(generator.stream(p, max_new_tokens=24)) for p in prompts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="lora")
    parser.add_argument("--rates", default="", help="comma-separated learning rates")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--proposed", action="store_true", help="also run the app's own proposal")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import facts_dataset

    from finetune_gui.core.demo import prepare_demo_model
    from finetune_gui.core.methods import METHODS

    model = str(prepare_demo_model())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        train, heldout = facts_dataset.write(Path(tmp) / "data")
        plans: list[float | None] = [float(r) for r in args.rates.split(",") if r]
        if args.proposed:
            plans.append(None)
        for index, rate in enumerate(plans):
            out = Path(tmp) / f"run-{index}"
            out.mkdir()
            trained = run(model, args.method, rate, args.epochs, out, train)
            info = trained["run"]
            row = {
                "method": args.method,
                "learning_rate": rate
                if rate is not None
                else (info.get("proposal") or {}).get("training.learning_rate"),
                "proposed": rate is None,
                "status": trained["status"],
                "steps": (info.get("metrics") or {}).get("steps"),
                "seconds": trained["seconds"],
                "eval_loss": (info.get("metrics") or {}).get("eval_loss"),
            }
            if trained["status"] == "completed":
                full = METHODS[args.method].adapter_kind is None
                result = out / "run" / ("model" if full else "adapter")
                row["facts"] = facts_dataset.score(answers(model, result, full, heldout), heldout)
            else:
                row["error"] = info.get("error_message") or trained["stderr"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"benchmark": "learning_rates", "runs": rows}, indent=2))


if __name__ == "__main__":
    main()
