"""The seed lesson's trade-off table, measured: every method trained on the demo model and the demo
dataset through the app's own training path (same data, steps and seed), then asked held-out questions.

    .venv/bin/python bench/method_comparison.py [--steps 120] [--methods lora,qlora,...]

Per method: trainable parameters (count and share), peak memory (CUDA when present, else process RSS),
seconds per step, tokens/s, held-out evaluation loss, and two task scores on the 50 held-out prompts
(resources/demo-heldout.jsonl, phrasings never trained on): **facts** — the answer contains the made-up
fact's key term; **style** — it opens with the dataset's greeting. The base model is scored too.
Prints JSON, then a Markdown table. Learning rates: each method's registry default (methods.py), except
full fine-tuning at 5e-5 (2e-5 is tuned for billion-parameter models; this one has 135 M).
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
METHODS = ["full", "lora", "qlora", "dora", "ia3", "bottleneck", "prefix", "prompt"]
LEARNING_RATES = {"full": 5e-5}


def train(model: str, method: str, steps: int, out: Path) -> dict:
    from finetune_gui.core.methods import METHODS as REGISTRY

    config = {
        "model": model,
        "method": method,
        "output_dir": str(out / "run"),
        "dataset": {"path": str(REPO / "resources" / "demo-dataset.jsonl"), "validation_split": 0.1},
        "training": {
            "max_steps": steps,
            "batch_size": 4,
            "learning_rate": LEARNING_RATES.get(method, REGISTRY[method].default_learning_rate),
            "eval_steps": steps,
            "save_steps": 100000,
            "sample_prompts": 0,
            "seed": 42,
            "max_seq_len": 256,
        },
        "lora": {"r": 16, "alpha": 32, "dropout": 0.0},
        "prompt": {"num_virtual_tokens": 20, "init_text": "Answer questions about the island of Veloria:"},
    }
    path = out / "run.yaml"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "train", str(path), "--events", "jsonl"],
        capture_output=True,
        text=True,
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    started = next((e for e in events if e["event"] == "started"), {})
    steps_ev = [e for e in events if e["event"] == "step"]
    run = json.loads((out / "run" / "run.json").read_text())
    speeds = [e["tokens_per_s"] for e in steps_ev[2:] if e.get("tokens_per_s")]
    timed = steps_ev[-1]["elapsed_s"] / max(1, len(steps_ev)) if steps_ev else None
    return {
        "status": run.get("status"),
        "trainable_parameters": started.get("trainable_parameters"),
        "trainable_share": (started.get("trainable_parameters") or 0)
        / max(1, started.get("total_parameters") or 1),
        "peak_gib": run.get("measured_peak_gib"),
        "seconds_per_step": round(timed, 2) if timed else None,
        "tokens_per_s": round(sum(speeds) / len(speeds), 1) if speeds else None,
        "eval_loss": (run.get("metrics") or {}).get("eval_loss"),
        "adapter": str(out / "run" / ("model" if method == "full" else "adapter")),
        "error": run.get("error_message"),
    }


def score(
    model: str, adapter: str | None, full_model: bool, prompts: list[dict], max_new_tokens: int
) -> dict:
    from finetune_gui.core.adapters.generate import Generator

    generator = Generator(adapter if full_model else model)
    if adapter and not full_model:
        generator.use_adapters([(adapter, 1.0)])
    facts = style = 0
    examples = []
    for item in prompts:
        answer = "".join(generator.stream(item["prompt"], max_new_tokens=max_new_tokens))
        facts += int(item["key"].lower() in answer.lower())
        style += int(answer.strip().lower().startswith("calm tides"))
        if len(examples) < 2:
            examples.append({"prompt": item["prompt"], "answer": answer.strip()})
    return {
        "facts": round(facts / len(prompts), 3),
        "style": round(style / len(prompts), 3),
        "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--prompts", type=int, default=50, help="held-out prompts to score (of 50)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from finetune_gui.core.demo import prepare_demo_model

    model = str(prepare_demo_model())
    prompts = [json.loads(x) for x in (REPO / "resources" / "demo-heldout.jsonl").read_text().splitlines()]
    prompts = prompts[: args.prompts]
    import torch

    machine = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    rows = {"base": {"method": "base", **score(model, None, False, prompts, args.max_new_tokens)}}
    print(json.dumps(rows["base"]), file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            out = Path(tmp) / method
            out.mkdir()
            row = {"method": method, **train(model, method, args.steps, out)}
            if row["status"] == "completed":
                row.update(score(model, row["adapter"], method == "full", prompts, args.max_new_tokens))
            row.pop("adapter")
            rows[method] = row
            print(json.dumps(row), file=sys.stderr, flush=True)
    result = {
        "benchmark": "method_comparison",
        "machine": machine,
        "model": "SmolLM2-135M-Instruct",
        "steps": args.steps,
        "batch_size": 4,
        "held_out_prompts": len(prompts),
        "methods": rows,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(
        "\n| method | trainable | peak GB | s/step | eval loss | facts | style |\n|---|---|---|---|---|---|---|"
    )
    for name, r in rows.items():
        trainable = (
            f"{r['trainable_parameters']:,} ({100 * r['trainable_share']:.2g}%)"
            if r.get("trainable_parameters")
            else "–"
        )
        print(
            f"| {name} | {trainable} | {r.get('peak_gib', '–')} | {r.get('seconds_per_step', '–')} | "
            f"{r.get('eval_loss') and round(r['eval_loss'], 3)} | {r.get('facts')} | {r.get('style')} |"
        )


if __name__ == "__main__":
    main()
