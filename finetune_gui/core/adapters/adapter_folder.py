"""What an adapter folder is, read from its config files alone (no weights are loaded): PEFT adapters
(LoRA, DoRA, IA3, prefix and prompt tuning) and our bottleneck adapters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import UserError
from finetune_gui.core.tuners import BOTTLENECK_CONFIG

PEFT_KINDS = {"LORA": "lora", "IA3": "ia3", "PREFIX_TUNING": "prefix", "PROMPT_TUNING": "prompt"}


def describe_adapter(folder: str | Path) -> dict[str, Any]:
    """kind (lora, dora, ia3, prefix, prompt, bottleneck), base model, rank, targets; UserError if not an adapter."""
    folder = Path(folder)
    if (folder / BOTTLENECK_CONFIG).is_file():
        try:
            config = json.loads((folder / BOTTLENECK_CONFIG).read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UserError(f"{folder / BOTTLENECK_CONFIG} is not valid JSON ({exc}).") from None
        return {
            "kind": "bottleneck",
            "base_model": config.get("base_model_name_or_path", ""),
            "rank": config.get("bottleneck"),
            "targets": ["attention", "mlp"],
            "layers": config.get("num_layers"),
            "hidden_size": config.get("hidden_size"),
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
        "peft_type": peft_type,
        "base_model": config.get("base_model_name_or_path") or "",
        "rank": config.get("r") or config.get("num_virtual_tokens"),
        "alpha": config.get("lora_alpha"),
        "targets": sorted(targets) if isinstance(targets, list) else targets,
    }


def weight_shapes(folder: Path) -> dict[str, list[int]]:
    """The adapter's tensors and their shapes, from its safetensors header (no weights are read); a
    truncated or damaged file is refused in one sentence."""
    import struct

    path = folder / "adapter_model.safetensors"
    if not path.is_file():
        raise UserError(f"{folder} has no adapter_model.safetensors. Choose the folder the training wrote.")
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length)) if length <= size - 8 else None
    except (OSError, ValueError, struct.error):
        header = None
    ends = [v["data_offsets"][1] for k, v in (header or {}).items() if k != "__metadata__"]
    if header is None or 8 + length + max(ends, default=0) > size:
        raise UserError(f"{path} is damaged or cut short. Train the adapter again, or copy it again.")
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def check_fits(
    folder: str | Path, layers: int, linear: dict[str, tuple[int, int]], base_name: str = ""
) -> None:
    """Refuse an adapter trained for another base: its layer count (an adapter for 30 layers on a model
    of 2 would silently apply 2 of them) and its modules' shapes must match the base's. ``linear``:
    each Linear module's suffix → (in_features, out_features)."""
    import re

    folder = Path(folder)
    info = describe_adapter(folder)
    trained_on = Path(str(info.get("base_model") or "")).name
    said = f" (it was trained on {trained_on})" if trained_on and trained_on != Path(base_name).name else ""
    if info["kind"] == "bottleneck":
        if info.get("layers") not in (None, layers):
            raise UserError(
                f"{folder.name} was trained for a model with {info['layers']} layers{said}; this base has {layers}. "
                "Use it with the model it was trained on."
            )
        return
    shapes = weight_shapes(folder)
    found = {int(m.group(1)) for key in shapes if (m := re.search(r"\.layers\.(\d+)\.", key))}
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    contiguous = found == set(range(max(found, default=-1) + 1))
    if (
        found
        and not config.get("layers_to_transform")
        and (max(found) >= layers or (contiguous and max(found) + 1 != layers))
    ):
        raise UserError(
            f"{folder.name} was trained for a model with {max(found) + 1} layers{said}; this base has {layers}. "
            "Use it with the model it was trained on."
        )
    for key, shape in shapes.items():
        match = re.search(r"\.([A-Za-z0-9_]+)\.lora_([AB])(?:\.[A-Za-z0-9_]+)?\.weight$", key)
        if not match or match.group(1) not in linear:
            continue
        n_in, n_out = linear[match.group(1)]
        expected, actual = (n_in, shape[1]) if match.group(2) == "A" else (n_out, shape[0])
        if expected != actual:
            raise UserError(
                f"{folder.name} does not fit this base{said}: its {match.group(1)} layers are {actual} wide, the "
                f"base's are {expected}. Use it with the model it was trained on."
            )
