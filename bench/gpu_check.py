"""One GPU check, prepared for the few minutes a CUDA machine is at hand: every figure only a GPU shows,
from a fresh checkout (`make dev demo` first), in at most --budget-s seconds (default 8 minutes).

    .venv/bin/python bench/gpu_check.py [--budget-s 480] [--out FILE]

Stages, each its own process with its own share of the budget, run in order of value, so a cut-off run
still reports the first ones:
  1. environment: the GPU, its memory, torch, CUDA and bitsandbytes versions;
  2. the CUDA-only tests (`pytest -m gpu`: QLoRA's paged 8-bit optimizer, bf16, lean mode's peak);
  3. LoRA and QLoRA train the demo model and answer held-out facts (bench/method_comparison.py);
  4. measured peaks against the estimate for full (standard and lean), LoRA, QLoRA, DoRA and prefix
     tuning at two sequence lengths (bench/measure_memory.py);
  5. the app's bf16 training against the plain TRL script on the same rows, and the app with padding-free
     batches on and off (bench/train_throughput.py);
  6. SDPA against eager attention: forward and backward of the demo model, in this process.
Prints one JSON object; every stage records its seconds, its result or why it has none.
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
PY = sys.executable


def first_json(text: str) -> object | None:
    """The first JSON object a benchmark printed (some print a Markdown table after it)."""
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char == "{":
            try:
                return decoder.raw_decode(text[index:])[0]
            except json.JSONDecodeError:
                continue
    return None


def run_stage(command: list[str], timeout_s: float, parse_json: bool = True) -> dict:
    start = time.monotonic()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "QT_QPA_PLATFORM": "offscreen"}
    try:
        done = subprocess.run(
            command, cwd=REPO, env=env, capture_output=True, text=True, timeout=max(1.0, timeout_s)
        )
    except subprocess.TimeoutExpired:
        return {"seconds": round(time.monotonic() - start, 1), "error": f"cut off after {timeout_s:.0f} s"}
    record: dict = {"seconds": round(time.monotonic() - start, 1), "exit_code": done.returncode}
    if parse_json:
        record["result"] = first_json(done.stdout)
    else:
        record["summary"] = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
    if done.returncode != 0:
        record["stderr_tail"] = done.stderr[-1500:]
    return record


def environment() -> dict:
    import torch

    info: dict = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "bf16": torch.cuda.is_bf16_supported(),
        }
    try:
        import bitsandbytes

        info["bitsandbytes"] = bitsandbytes.__version__
    except Exception as error:  # the check reports a missing or broken bitsandbytes; QLoRA needs it
        info["bitsandbytes"] = f"unavailable: {error}"
    return info


def attention_step_times(model_path: Path, seq_len: int = 512, batch: int = 4, repeats: int = 5) -> dict:
    """Seconds per forward+backward of the demo model in bf16 with each attention implementation."""
    import torch
    from transformers import AutoModelForCausalLM

    times = {}
    for implementation in ("sdpa", "eager"):
        model = AutoModelForCausalLM.from_pretrained(
            model_path, dtype=torch.bfloat16, attn_implementation=implementation
        ).cuda()
        ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), device="cuda")
        for _ in range(2):  # warm-up: kernels chosen, memory pooled
            model(input_ids=ids, labels=ids).loss.backward()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            model(input_ids=ids, labels=ids).loss.backward()
        torch.cuda.synchronize()
        times[implementation] = round((time.perf_counter() - start) / repeats, 4)
        del model
        torch.cuda.empty_cache()
    return {"seconds_per_step": times, "eager_over_sdpa": round(times["eager"] / times["sdpa"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=480.0)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget_s
    report: dict = {"benchmark": "gpu_check", "environment": environment()}
    if not report["environment"]["cuda_available"]:
        report["error"] = "No CUDA GPU here: this check measures only what a GPU shows."
        print(json.dumps(report, indent=1))
        return

    def left(share: float) -> float:
        return max(0.0, deadline - time.monotonic()) * share

    from finetune_gui.core.demo import demo_model_dir

    model = demo_model_dir()
    bench = REPO / "bench"
    # The shares are of what is left, so an early stage that finishes quickly gives its time to the rest.
    report["gpu_tests"] = run_stage(
        [PY, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests/test_gpu.py"],
        left(0.2),
        parse_json=False,
    )
    with tempfile.TemporaryDirectory() as tmp:
        report["learns_facts"] = run_stage(
            [
                PY,
                str(bench / "method_comparison.py"),
                "--methods",
                "lora,qlora",
                "--prompts",
                "20",
                "--out",
                str(Path(tmp) / "methods.json"),
            ],
            left(0.35),
        )
    report["memory"] = {}
    for seq_len in (256, 1024):
        report["memory"][str(seq_len)] = run_stage(
            [
                PY,
                str(bench / "measure_memory.py"),
                "--configs",
                "smollm2-135m",
                "--seq-len",
                str(seq_len),
                "--methods",
                "full,full-lean,lora,qlora,dora,prefix",
            ],
            left(0.3),
        )
    report["throughput_bf16"] = run_stage(
        [PY, str(bench / "train_throughput.py"), "--rows", "96", "--repeats", "1"], left(0.7)
    )
    found = report["throughput_bf16"].get("result") or {}
    report["padding_free"] = {
        "padded_over_padding_free": found.get("padding_free_ratio"),
        "app_s": found.get("app_s"),
        "app_padded_s": found.get("app_padded_s"),
    }
    start = time.monotonic()
    try:
        report["attention"] = attention_step_times(model)
    except Exception as error:  # reported in the JSON: one stage failing must not lose the others' figures
        report["attention"] = {"error": f"{type(error).__name__}: {error}"}
    report["attention"]["seconds"] = round(time.monotonic() - start, 1)
    report["total_s"] = round(args.budget_s - max(0.0, deadline - time.monotonic()), 1)
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
