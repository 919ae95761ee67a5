"""Calibrate the estimator: the real CUDA peak of this app's own training path, per method, next to
the estimate, for random-initialised models built from configs (no downloads, no real weights).

    .venv/bin/python bench/measure_memory.py [--configs smollm2-135m,qwen2.5-0.5b] [--seq-len 512]

Each method runs as its own `finetune-gui train` process (3 steps, batch 4, sequences of exactly
--seq-len tokens, checkpointing off; "full-lean" is full fine-tuning in lean memory mode, which always
checkpoints); run.json's measured peak (torch.cuda.max_memory_allocated) is
compared with the estimate's allocated_gib. Prints JSON, then a Markdown table for
docs/memory-calibration.md. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = {
    "smollm2-135m": dict(
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        vocab_size=49152,
        tie_word_embeddings=True,
    ),
    "qwen2.5-0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "llama-3.2-1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
        head_dim=64,
    ),
}
METHODS = ["full", "lora", "qlora", "dora", "ia3", "bottleneck", "prefix", "prompt"]


def build_model(name: str, folder: Path) -> None:
    """A random-initialised Llama of the named shape, with a byte-level tokenizer from the demo model
    when available (vocabulary size follows the config; ids beyond the tokenizer are never used)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(max_position_embeddings=4096, torch_dtype="bfloat16", **CONFIGS[name])
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    from transformers import AutoTokenizer

    from finetune_gui.core.demo import prepare_demo_model

    AutoTokenizer.from_pretrained(prepare_demo_model()).save_pretrained(folder)
    del model
    torch.cuda.empty_cache()


def write_data(path: Path, rows: int = 64) -> None:
    # Plain text is chunked into pieces of exactly max_seq_len tokens, so every batch has full length.
    words = " ".join(f"word{i % 500}" for i in range(4000))
    path.write_text("\n\n".join(words for _ in range(rows)) + "\n", encoding="utf-8")


LEAN = "full-lean"  # full fine-tuning in lean memory mode (every other row pins standard mode)


def run_method(model: Path, data: Path, method: str, seq_len: int, out: Path) -> dict:
    lean = method == LEAN
    config = {
        "model": str(model),
        "method": "full" if lean else method,
        "output_dir": str(out),
        "dataset": {"path": str(data), "format": "text", "validation_split": 0},
        "training": {
            "max_steps": 3,
            "batch_size": 4,
            "max_seq_len": seq_len,
            "gradient_checkpointing": "on" if lean else "off",
            "memory_mode": "lean" if lean else "standard",
            "save_steps": 1000,
            "logging_steps": 1,
        },
    }
    path = out.with_suffix(".yaml")
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [sys.executable, "-m", "finetune_gui", "train", str(path), "--events", "jsonl"],
        capture_output=True,
        text=True,
    )
    run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
    return {
        "status": run.get("status"),
        "measured_gib": run.get("measured_peak_gib"),
        "error": run.get("error_message") or (result.stderr[-300:] if result.returncode else None),
    }


def estimate_allocated(model: Path, method: str, seq_len: int) -> float:
    from finetune_gui.core.estimate import Settings, estimate_method, model_shape
    from finetune_gui.core.models import load_config, resolve_model

    shape = model_shape(load_config(resolve_model(str(model))))
    import torch

    dtype = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    lean = method == LEAN
    settings = Settings(
        batch_size=4,
        seq_len=seq_len,
        dtype=dtype,
        device="cuda",
        gradient_checkpointing=lean,
        memory_mode="lean" if lean else "standard",
    )
    return estimate_method("full" if lean else method, shape, settings, None).allocated_gib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--methods", default=",".join([*METHODS, LEAN]))
    parser.add_argument("--seq-len", type=int, default=512)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("measure_memory needs a CUDA GPU; none was found, so nothing was measured.", file=sys.stderr)
        raise SystemExit(2)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.txt"
        write_data(data)
        for name in args.configs.split(","):
            model = Path(tmp) / name
            build_model(name, model)
            for method in args.methods.split(","):
                measured = run_method(model, data, method, args.seq_len, Path(tmp) / f"{name}-{method}")
                estimate = estimate_allocated(model, method, args.seq_len)
                ratio = estimate / measured["measured_gib"] if measured["measured_gib"] else None
                rows.append(
                    {
                        "model": name,
                        "method": method,
                        "estimate_gib": round(estimate, 3),
                        **measured,
                        "estimate_over_measured": round(ratio, 3) if ratio else None,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    print(
        json.dumps(
            {
                "benchmark": "measure_memory",
                "gpu": torch.cuda.get_device_name(0),
                "seq_len": args.seq_len,
                "batch_size": 4,
                "rows": rows,
            }
        )
    )
    print(
        "\n| model | method | estimate (GiB) | measured (GiB) | estimate / measured |\n|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['model']} | {r['method']} | {r['estimate_gib']} | {r['measured_gib']} | {r['estimate_over_measured']} |"
        )


if __name__ == "__main__":
    main()
