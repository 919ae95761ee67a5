"""The app's training run against a plain TRL SFTTrainer + PEFT script, side by side.

Same model (the demo model unless --model), same variable-length chat data, same hyperparameters
(LoRA r 16, alpha 32, dropout 0, all linear layers, lr 2e-4, batch 4, max length 512, the same steps),
each timed end to end as its own process (start-up, data preparation and training), alternating
app/reference --repeats times. Prints JSON with the ratio reference_time / app_time (above 1: the app
is faster).

    .venv/bin/python bench/train_throughput.py --steps 8 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

REFERENCE = r"""
import json, sys
from datasets import Dataset
from peft import LoraConfig
from trl import SFTConfig, SFTTrainer
model, data, out, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rows = [json.loads(line) for line in open(data, encoding="utf-8")]
dataset = Dataset.from_list(rows)
args = SFTConfig(output_dir=out, max_length=512, per_device_train_batch_size=4, gradient_accumulation_steps=1,
                 learning_rate=2e-4, max_steps=steps, logging_steps=1, save_strategy="no", report_to="none",
                 lr_scheduler_type="cosine", warmup_steps=0.03, seed=42, use_cpu=not __import__("torch").cuda.is_available(),
                 bf16=__import__("torch").cuda.is_available() and __import__("torch").cuda.is_bf16_supported())
peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, peft_config=peft)
trainer.train()
trainer.save_model(out + "/adapter")
"""


def make_data(path: Path, rows: int, seed: int = 0) -> None:
    """Chat rows of very different lengths (a few tokens to several hundred), like real instruction data."""
    demo = [json.loads(x) for x in (REPO / "resources" / "demo-dataset.jsonl").read_text().splitlines()]
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            base = demo[i % len(demo)]["messages"]
            repeat = rng.choice([1, 1, 1, 2, 3, 6, 12, 20])
            answer = " ".join([base[1]["content"]] * repeat)
            row = {
                "messages": [
                    {"role": "user", "content": base[0]["content"]},
                    {"role": "assistant", "content": answer},
                ]
            }
            handle.write(json.dumps(row) + "\n")


def run_app(model: str, data: Path, out: Path, steps: int) -> float:
    config = out / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "model": model,
                "method": "lora",
                "dataset": {"path": str(data), "validation_split": 0},
                "training": {
                    "max_steps": steps,
                    "batch_size": 4,
                    "learning_rate": 2e-4,
                    "max_seq_len": 512,
                    "save_steps": 100000,
                    "logging_steps": 1,
                    "lr_scheduler": "cosine",
                    "warmup_ratio": 0.03,
                },
                "lora": {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
                "output_dir": str(out / "run"),
            }
        )
    )
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "finetune_gui", "train", str(config), "--events", "jsonl"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def run_reference(model: str, data: Path, out: Path, steps: int) -> float:
    script = out / "reference.py"
    script.write_text(REFERENCE)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(script), model, str(data), str(out / "ref"), str(steps)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder (default: the demo model)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rows", type=int, default=400)
    args = parser.parse_args()
    if args.model is None:
        from finetune_gui.core.demo import prepare_demo_model

        args.model = str(prepare_demo_model())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    app_times, ref_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "chat.jsonl"
        make_data(data, args.rows)
        for i in range(args.repeats):
            for name, runner, times in (("app", run_app, app_times), ("reference", run_reference, ref_times)):
                out = Path(tmp) / f"{name}-{i}"
                out.mkdir()
                times.append(runner(args.model, data, out, args.steps))
    app, ref = statistics.median(app_times), statistics.median(ref_times)
    print(
        json.dumps(
            {
                "benchmark": "train_throughput",
                "model": args.model,
                "steps": args.steps,
                "batch_size": 4,
                "max_seq_len": 512,
                "app_s": [round(t, 2) for t in app_times],
                "reference_s": [round(t, 2) for t in ref_times],
                "ratio": round(ref / app, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
