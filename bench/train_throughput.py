"""The app's training run against a plain TRL SFTTrainer + PEFT script, side by side, on the same work.

Same model (the demo model unless --model), the same variable-length chat rows (distinct, so neither side
skips any), the same hyperparameters (LoRA r 16, alpha 32, dropout 0, all linear layers, lr 2e-4, batch 4,
max length 512) and the same work: one pass over the rows (rows / 4 steps), because the app batches rows of
similar length together and its first steps hold the longest rows, so N steps of each side are not the
same rows unless N steps are the whole pass. Each side is timed end to end as its own process (start-up,
data preparation and training), alternating app/reference --repeats times; the app runs with its
learning check, forgetting check and samples off (the reference has none), and once more as a user runs
it (--defaults). Prints JSON: the ratio reference_time / app_time (above 1: the app is faster), the app
with padding-free batches off beside it, and the app's matrix-multiply work per second against this
machine's GEMM peak measured in the same run.

    .venv/bin/python bench/train_throughput.py --rows 48 --repeats 2
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
print(json.dumps({"train_s": trainer.train().metrics["train_runtime"]}))
trainer.save_model(out + "/adapter")
"""


def make_data(path: Path, rows: int, seed: int = 0) -> None:
    """Distinct chat rows of very different lengths (a few tokens to several hundred), like real
    instruction data: each demo question once, its answer repeated 1 to 20 times."""
    demo = [json.loads(x) for x in (REPO / "resources" / "demo-dataset.jsonl").read_text().splitlines()]
    if rows > len(demo):
        raise SystemExit(f"--rows is at most {len(demo)} (the demo dataset's distinct questions).")
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for base in rng.sample(demo, rows):
            messages = base["messages"]
            repeat = rng.choice([1, 1, 1, 2, 3, 6, 12, 20])
            answer = " ".join([messages[1]["content"]] * repeat)
            row = {
                "messages": [
                    {"role": "user", "content": messages[0]["content"]},
                    {"role": "assistant", "content": answer},
                ]
            }
            handle.write(json.dumps(row) + "\n")


def run_app(
    model: str, data: Path, out: Path, steps: int, defaults: bool = False, padding_free: bool = True
) -> dict:
    """The app's ``train`` on the rows; its wall time and its training time (the last step's elapsed)."""
    training = {
        "max_steps": steps,
        "batch_size": 4,
        "learning_rate": 2e-4,
        "max_seq_len": 512,
        "logging_steps": 1,
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.03,
        "padding_free": padding_free,
    }
    dataset: dict = {"path": str(data)}
    if not defaults:  # the same work as the reference: no checks, samples, evaluations or checkpoints
        training.update(check_questions=0, check_forgetting=False, sample_prompts=0, save_steps=100000)
        dataset["validation_split"] = 0
    config = out / "run.yaml"
    config.write_text(
        json.dumps(
            {
                "model": model,
                "method": "lora",
                "dataset": dataset,
                "training": training,
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
    wall = time.perf_counter() - start
    events = [json.loads(line) for line in (out / "run" / "events.jsonl").read_text().splitlines()]
    steps_seen = [e for e in events if e.get("event") == "step"]
    return {"wall_s": wall, "train_s": steps_seen[-1]["elapsed_s"] if steps_seen else None}


def run_reference(model: str, data: Path, out: Path, steps: int) -> dict:
    script = out / "reference.py"
    script.write_text(REFERENCE)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(script), model, str(data), str(out / "ref"), str(steps)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    last = [line for line in done.stdout.splitlines() if line.startswith("{")][-1]
    return {"wall_s": wall, "train_s": json.loads(last)["train_s"]}


def matmul_work(model: str, data: Path, max_len: int = 512) -> tuple[float, int]:
    """The run's matrix-multiply work: 4 × (the weights every token goes through: the linear layers and
    the output head) × the tokens trained (forward, and the backward pass to the inputs; LoRA's frozen
    weights need no weight gradients, and its own matrices are too small to count). Attention's own
    products are left out, so this is a lower bound."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    tokens = 0
    for line in data.read_text().splitlines():
        ids = tokenizer.apply_chat_template(json.loads(line)["messages"], tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        tokens += min(len(ids), max_len)
    with torch.device("meta"):
        from transformers import AutoConfig

        net = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model))
    weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Linear))
    return 4.0 * weights * tokens, tokens


def gemm_peak() -> float:
    """This machine's fp32 (CPU) or bf16 (GPU) matrix-multiply rate, FLOP/s, on a large square product."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    n = 4096 if device == "cuda" else 2048
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = 0.0
    for _ in range(5):
        if device == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 / (time.perf_counter() - began))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder (default: the demo model)")
    parser.add_argument("--rows", type=int, default=48, help="rows trained once each (a multiple of 4)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--defaults", action="store_true", help="also time the app as a user runs it")
    args = parser.parse_args()
    if args.model is None:
        from finetune_gui.core.demo import prepare_demo_model

        args.model = str(prepare_demo_model())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    steps = max(1, args.rows // 4)
    runs: dict[str, list[dict]] = {"app": [], "reference": [], "app_padded": []}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "chat.jsonl"
        make_data(data, args.rows)
        work, tokens = matmul_work(args.model, data)
        peak = gemm_peak()
        for i in range(args.repeats):
            for name in runs:
                out = Path(tmp) / f"{name}-{i}"
                out.mkdir()
                if name == "reference":
                    runs[name].append(run_reference(args.model, data, out, steps))
                else:
                    runs[name].append(run_app(args.model, data, out, steps, padding_free=name == "app"))
        default = None
        if args.defaults:
            out = Path(tmp) / "app-defaults"
            out.mkdir()
            default = run_app(args.model, data, out, steps, defaults=True)

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    app_train = median("app", "train_s")
    result = {
        "benchmark": "train_throughput",
        "model": args.model,
        "rows": args.rows,
        "steps": steps,
        "batch_size": 4,
        "max_seq_len": 512,
        "tokens": tokens,
        "app_s": [round(r["wall_s"], 2) for r in runs["app"]],
        "reference_s": [round(r["wall_s"], 2) for r in runs["reference"]],
        "app_padded_s": [round(r["wall_s"], 2) for r in runs["app_padded"]],
        "ratio": round(median("reference", "wall_s") / median("app", "wall_s"), 3),
        "train_ratio": round(median("reference", "train_s") / app_train, 3),
        "padding_free_ratio": round(median("app_padded", "wall_s") / median("app", "wall_s"), 3),
        "app_gflops": round(work / app_train / 1e9, 1),
        "gemm_peak_gflops": round(peak / 1e9, 1),
        "fraction_of_peak": round(work / app_train / peak, 3),
    }
    if default is not None:
        result["app_defaults_s"] = round(default["wall_s"], 2)
        result["defaults_ratio"] = round(median("reference", "wall_s") / default["wall_s"], 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
