"""The seed lesson's trade-off table, measured: every method trained on the demo model and the demo
dataset through the app's own training path at the settings the app proposes (only model, data and
method given), then asked held-out questions; where the proposal falls short, a small learning-rate
sweep shows what the method can do.

    .venv/bin/python bench/method_comparison.py [--methods lora,qlora,...] [--out FILE]

With --out, the rows of methods not measured this time are kept from FILE (a long sweep can be run in parts).

Per method: trainable parameters (count and share), proposed learning rate and steps, peak memory (CUDA
when present, else process RSS), seconds per step, held-out evaluation loss,
and two task scores on the 50 held-out prompts (resources/demo-heldout.jsonl, phrasings never
trained on): **facts**: the answer contains the made-up fact's key term; **style**: it opens with the
dataset's greeting. The base model is scored too. The sweep (×3 the proposed rate, then ×⅓ when ×3 did no
better) runs only for methods whose proposal answers under 90% of the facts. Prints JSON; tools/methods_doc.py
turns it into docs/methods.md.
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
SWEEP = (3.0, 1 / 3)


LEAN = "full-lean"  # full fine-tuning in lean memory mode


def whole_model(method: str) -> bool:
    """Whether the method's result is a whole model (model/), not an adapter."""
    return method in ("full", LEAN)


def demo_model_and_prompts(count: int) -> tuple[str, list[dict]]:
    """The demo model's folder and the first ``count`` held-out questions (resources/demo-heldout.jsonl)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from finetune_gui.core.demo import prepare_demo_model

    lines = (REPO / "resources" / "demo-heldout.jsonl").read_text().splitlines()
    return str(prepare_demo_model()), [json.loads(x) for x in lines][:count]


def earlier_rows(out: str | None, measured_now: list[str]) -> dict:
    """The rows of an earlier output file for the methods not measured now: measuring some methods keeps
    the others' rows."""
    if not (out and Path(out).is_file()):
        return {}
    earlier = json.loads(Path(out).read_text(encoding="utf-8")).get("methods") or {}
    return {k: v for k, v in earlier.items() if k not in measured_now}


def train(model: str, method: str, out: Path, learning_rate: float | None = None) -> dict:
    config: dict = {
        "model": model,
        "method": "full" if method == LEAN else method,
        "output_dir": str(out / "run"),
        "dataset": {"path": str(REPO / "resources" / "demo-dataset.jsonl")},
        "training": {"sample_prompts": 0, "check_questions": 0, "seed": 42},  # scored below instead
    }
    if method == LEAN:
        config["training"]["memory_mode"] = "lean"
    if learning_rate is not None:
        config["training"]["learning_rate"] = learning_rate
    if method == "prompt":
        config["prompt"] = {"init_text": "Answer questions about the island of Veloria:"}
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
    proposal = run.get("proposal") or {}
    return {
        "status": run.get("status"),
        "learning_rate": learning_rate or (proposal.get("training.learning_rate") or {}).get("value"),
        "steps": (run.get("metrics") or {}).get("steps"),
        "trainable_parameters": started.get("trainable_parameters"),
        "trainable_share": (started.get("trainable_parameters") or 0)
        / max(1, started.get("total_parameters") or 1),
        "peak_gib": run.get("measured_peak_gib"),
        "seconds_per_step": round(timed, 2) if timed else None,
        "minutes": round((run.get("duration_s") or 0) / 60, 1),
        "tokens_per_s": round(sum(speeds) / len(speeds), 1) if speeds else None,
        "eval_loss": (run.get("metrics") or {}).get("eval_loss"),
        "adapter": str(out / "run" / ("model" if whole_model(method) else "adapter")),
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


def measured(
    model: str, method: str, out: Path, prompts: list[dict], tokens: int, rate: float | None = None
) -> dict:
    out.mkdir(parents=True)
    row = train(model, method, out, rate)
    if row["status"] == "completed":
        row.update(score(model, row["adapter"], whole_model(method), prompts, tokens))
    row.pop("adapter")
    print(json.dumps({"method": method, **row}), file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--prompts", type=int, default=50, help="held-out prompts to score (of 50)")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    model, prompts = demo_model_and_prompts(args.prompts)
    import torch

    machine = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    rows = {"base": {"method": "base", **score(model, None, False, prompts, args.max_new_tokens)}}
    earlier = earlier_rows(args.out, args.methods.split(","))
    rows.update({k: v for k, v in earlier.items() if k in METHODS})
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods.split(","):
            proposed = measured(model, method, Path(tmp) / method, prompts, args.max_new_tokens)
            row = {"method": method, **proposed, "sweep": []}
            if proposed.get("facts", 0) < 0.9 and proposed.get("learning_rate"):
                # Three times the rate first (a proposal falls short mostly by being too timid); a third
                # of it only when that did no better.
                for factor in SWEEP:
                    rate = float(f"{proposed['learning_rate'] * factor:.2g}")
                    tried = measured(
                        model, method, Path(tmp) / f"{method}-{rate:g}", prompts, args.max_new_tokens, rate
                    )
                    row["sweep"].append(
                        {k: tried.get(k) for k in ("learning_rate", "status", "facts", "style", "eval_loss")}
                    )
                    if (tried.get("facts") or 0) > (proposed.get("facts") or 0):
                        break
            best = max([proposed, *row["sweep"]], key=lambda r: (r.get("facts") or 0, r.get("style") or 0))
            row["best"] = {
                "learning_rate": best.get("learning_rate"),
                "facts": best.get("facts"),
                "style": best.get("style"),
            }
            rows[method] = row
            _write(rows, machine, len(prompts), args.out)  # so far: a long run stopped midway keeps its rows
    print(_write(rows, machine, len(prompts), args.out))


def _write(rows: dict, machine: str, prompts: int, out: str | None) -> str:
    result = {
        "benchmark": "method_comparison",
        "machine": machine,
        "model": "SmolLM2-135M-Instruct",
        "settings": "proposed by the app (model, data and method given)",
        "batch_size": 4,
        "held_out_prompts": prompts,
        "methods": rows,
    }
    missing = [m for m in METHODS if m not in rows]
    if missing:
        result["not_measured"] = {
            "methods": missing,
            "why": f"`bench/method_comparison.py --methods {','.join(missing)} --out …` measures them.",
        }
    text = json.dumps(result, indent=2)
    if out:
        Path(out).write_text(text + "\n", encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
