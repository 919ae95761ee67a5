"""``finetune-gui estimate``: peak memory per method for a model, and the recommendation."""

from __future__ import annotations

import argparse
import json

from finetune_gui.core.errors import ConfigError


def run_estimate_command(args: argparse.Namespace) -> int:
    from finetune_gui.core import hardware
    from finetune_gui.core.estimate import Settings, estimate, model_shape
    from finetune_gui.core.methods import METHODS
    from finetune_gui.core.models import inspect_model, load_config, resolve_model

    for name in args.method or []:
        if name not in METHODS:
            raise ConfigError(f"Unknown method {name!r}; choose from {', '.join(METHODS)}.")
    for flag, value in (
        ("--batch-size", args.batch_size),
        ("--seq-len", args.seq_len),
        ("--lora-r", args.lora_r),
    ):
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1.")
    source = resolve_model(args.model, require_weights=False)
    shape = model_shape(load_config(source))
    hw = hardware.detect()
    gpu = hw.best_gpu
    device = (
        "cuda"
        if (gpu is not None and gpu.backend in ("cuda", "rocm")) or args.dtype in ("bf16", "fp16")
        else "cpu"
    )
    if args.vram_gib is not None:
        device = "cuda" if args.dtype != "fp32" else device
    dtype = args.dtype or (
        "bf16" if device == "cuda" and (gpu is None or gpu.bf16) else "fp16" if device == "cuda" else "fp32"
    )
    budget = args.vram_gib if args.vram_gib is not None else hw.budget_gib()
    targets = (
        args.lora_targets
        if args.lora_targets == "all-linear"
        else [t.strip() for t in args.lora_targets.split(",") if t.strip()]
    )
    settings = Settings(
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        dtype=dtype,
        device=device,
        gradient_checkpointing=args.gradient_checkpointing,
        lora_r=args.lora_r,
        lora_targets=targets,
        virtual_tokens=args.virtual_tokens,
    )
    info = inspect_model(source)
    facts = {**info.to_dict(), "source": source.spec}
    result = estimate(shape, settings, budget, args.method, bitsandbytes=hw.bitsandbytes, model_facts=facts)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    where = "VRAM" if device == "cuda" else "RAM"
    print(f"{info.architecture}: {info.parameters / 1e6:,.1f} M parameters · budget {budget:.1f} GB {where}")
    print(f"batch {settings.batch_size} × {settings.seq_len} tokens, {dtype}")
    for name, est in result.methods.items():
        mark = "fits" if est.fits else "does not fit"
        ckpt = " (checkpointing)" if est.gradient_checkpointing else ""
        print(f"  {METHODS[name].label:<22} {est.total_gib:8.2f} GB  {mark}{ckpt}")
    print(result.reason)
    for suggestion in result.suggestions:
        print(f"  - {suggestion}")
    return 0
