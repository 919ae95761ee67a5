"""``finetune-gui estimate``: peak memory per method for a model or a run config, and the recommendation.

With ``--config`` the numbers are the ones the trainer records for that config (run.json ``estimate_gib``)
and the wizard shows: all three call ``core.estimate.estimate_run``. Flags and ``--set`` override the
config; without a config, the model and the flags make one.
"""

from __future__ import annotations

import argparse
import json

from finetune_gui.core.errors import note_line


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="peak memory per method, and the recommended one")
    p.add_argument("model", nargs="?", help="model folder (config.json is enough), .gguf file or hub id")
    p.add_argument("--config", help="a run config (YAML): estimate exactly that run; MODEL is then optional")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--method", action="append", metavar="M", help="estimate only these methods")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seq-len", type=int)
    p.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force activation checkpointing on or off (default: on only where needed to fit)",
    )
    p.add_argument("--lora-r", type=int)
    p.add_argument("--lora-targets", help="all-linear or a comma-separated list")
    p.add_argument("--virtual-tokens", type=int)
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], help="compute dtype (default: the device's)")
    p.add_argument("--vram-gib", type=float, help="memory budget (default: free VRAM of the best GPU)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run)


def _config(args: argparse.Namespace):
    """The run config this estimate is of: the file (if any), then --set, then the flags."""
    from finetune_gui.core.config import RunConfig, apply_override
    from finetune_gui.core.errors import ConfigError

    if args.config:
        config = RunConfig.load(args.config, args.set)
    else:
        data: dict = {}
        for item in args.set:
            apply_override(data, item)
        config = RunConfig.from_dict(data)
    if args.model:
        config.model = args.model
    if not config.model:
        raise ConfigError("Name a model: `finetune-gui estimate MODEL`, or a config whose 'model:' is set.")
    flags = {
        "training.batch_size": args.batch_size,
        "training.max_seq_len": args.seq_len,
        "training.precision": args.dtype,
        "lora.r": args.lora_r,
        "prefix.num_virtual_tokens": args.virtual_tokens,
        "prompt.num_virtual_tokens": args.virtual_tokens,
    }
    if args.gradient_checkpointing is not None:
        flags["training.gradient_checkpointing"] = "on" if args.gradient_checkpointing else "off"
    if args.lora_targets:
        targets = args.lora_targets
        flags["lora.target_modules"] = (
            targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
        )
    data = config.to_dict()
    for key, value in flags.items():
        if value is not None:
            section, name = key.split(".")
            data[section][name] = value
    return RunConfig.from_dict(data)


def _methods(names: list[str] | None) -> list[str] | None:
    from finetune_gui.core.errors import ConfigError
    from finetune_gui.core.methods import METHODS, RENAMED

    if not names:
        return None
    chosen = [RENAMED.get(name, name) for name in names]
    for name in chosen:
        if name not in METHODS:
            raise ConfigError(f"Unknown method {name!r}; choose from {', '.join(METHODS)}.")
    return chosen


def _longest_example(config, source) -> int | None:
    """The config's data, as the trainer will see it: its longest example sets the batches' length."""
    from pathlib import Path

    paths = [p for p in (config.dataset.path, config.dataset.validation_path) if p]
    if not paths or not all(Path(p).expanduser().exists() for p in paths):
        return None
    from finetune_gui.core.data.encode import ensure_chat_template, longest_example
    from finetune_gui.core.data.scan import load_examples
    from finetune_gui.core.models import load_tokenizer

    tokenizer = load_tokenizer(source, config.trust_remote_code)
    ensure_chat_template(tokenizer)
    examples = [e for p in paths for e in load_examples(p, config.dataset.format, config.dataset.columns)[0]]
    return longest_example(examples, tokenizer, config.training.max_seq_len)


def run(args: argparse.Namespace) -> int:
    import sys

    from finetune_gui.core import hardware
    from finetune_gui.core.estimate import estimate_run, model_shape
    from finetune_gui.core.methods import METHODS
    from finetune_gui.core.models import inspect_model, load_config, resolve_model

    config = _config(args)
    methods = _methods(args.method)
    for notice in config.notices:
        print(note_line(notice), file=sys.stderr)
    source = resolve_model(config.model, require_weights=False)
    shape = model_shape(load_config(source, config.trust_remote_code), config.trust_remote_code)
    hw = hardware.detect()
    gpu = hw.best_gpu
    if args.vram_gib is not None:
        hw = hw.with_budget(args.vram_gib, bf16=args.dtype != "fp16")
    elif args.dtype in ("bf16", "fp16") and (gpu is None or gpu.backend not in ("cuda", "rocm")):
        hw = hw.with_budget(hw.budget_gib(), bf16=args.dtype == "bf16")  # a GPU's estimate was asked for
    info = inspect_model(source, config.trust_remote_code)
    facts = {**info.to_dict(), "source": source.spec}
    longest = _longest_example(config, source)
    result = estimate_run(config, shape, hw, methods=methods, model_facts=facts, longest=longest)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    plan = hardware.plan_device(config.training.precision, hw)
    where = "VRAM" if plan.device == "cuda" else "RAM"
    budget = hw.budget_gib()
    print(f"{info.architecture}: {info.parameters / 1e6:,.1f} M parameters · budget {budget:.1f} GB {where}")
    t = config.training
    print(f"batch {t.batch_size} × {t.max_seq_len} tokens, {plan.precision}")
    for name, est in result.methods.items():
        mark = "fits" if est.fits else "does not fit"
        ckpt = " (checkpointing)" if est.gradient_checkpointing else ""
        print(f"  {METHODS[name].label:<22} {est.total_gib:8.2f} GB  {mark}{ckpt}")
    print(result.reason)
    for suggestion in result.suggestions:
        print(f"  - {suggestion}")
    return 0
