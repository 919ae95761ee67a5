"""What an adapter folder is, read from its config files alone (no weights are loaded): PEFT adapters
(LoRA, DoRA, IA3, prefix and prompt tuning) and our bottleneck adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import UserError

PEFT_KINDS = {"LORA": "lora", "IA3": "ia3", "PREFIX_TUNING": "prefix", "PROMPT_TUNING": "prompt"}


def describe_adapter(folder: str | Path) -> dict[str, Any]:
    """kind (lora, dora, ia3, prefix, prompt, bottleneck), base model, rank, targets; UserError if not an adapter."""
    from finetune_gui.core.tuners import bottleneck

    folder = Path(folder)
    if bottleneck.is_bottleneck_dir(folder):
        config = json.loads((folder / bottleneck.CONFIG_NAME).read_text(encoding="utf-8"))
        return {
            "kind": "bottleneck",
            "base_model": config.get("base_model_name_or_path", ""),
            "rank": config.get("bottleneck"),
            "targets": ["attention", "mlp"],
        }
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise UserError(
            f"{folder} is not an adapter folder: it has no adapter_config.json. Choose the folder PEFT saved "
            "(it holds adapter_config.json and adapter_model.safetensors)."
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{config_path} is not valid JSON ({exc}).") from None
    peft_type = str(config.get("peft_type", "")).upper()
    kind = PEFT_KINDS.get(peft_type)
    if kind is None:
        raise UserError(
            f"{folder} holds a {peft_type or 'unknown'} adapter; this app handles LoRA, DoRA, IA3, prefix and prompt tuning."
        )
    if kind == "lora" and config.get("use_dora"):
        kind = "dora"
    targets = config.get("target_modules")
    return {
        "kind": kind,
        "base_model": config.get("base_model_name_or_path") or "",
        "rank": config.get("r") or config.get("num_virtual_tokens"),
        "alpha": config.get("lora_alpha"),
        "targets": sorted(targets) if isinstance(targets, list) else targets,
    }
