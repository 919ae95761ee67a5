"""Measured trade-offs per method, from ``bench/method_comparison.py`` (resources/method-comparison.json):
what the method cards show instead of made-up stars."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from finetune_gui.core.paths import resources_dir


@lru_cache(maxsize=1)
def measured() -> dict[str, Any]:
    try:
        return json.loads((resources_dir() / "method-comparison.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def card_line(method: str) -> str:
    """'Demo model: 64% of facts right, 1.4× LoRA's step time' — or '' when not measured."""
    data = measured()
    rows = data.get("methods") or {}
    row, lora = rows.get(method), rows.get("lora")
    if not row or row.get("status") != "completed":
        return ""
    parts = [f"{100 * row['facts']:.0f}% of held-out facts right"]
    if lora and lora.get("seconds_per_step") and row.get("seconds_per_step"):
        parts.append(f"{row['seconds_per_step'] / lora['seconds_per_step']:.1f}× LoRA's step time")
    return "Measured on the demo model: " + ", ".join(parts)


def source_note() -> str:
    data = measured()
    if not data:
        return ""
    base = (data.get("methods") or {}).get("base", {})
    return (
        f"Measured figures: {data.get('model')}, {data.get('steps')} steps on the demo dataset, "
        f"{data.get('held_out_prompts')} held-out questions (base model: {100 * base.get('facts', 0):.0f}% right), "
        f"on {data.get('machine')}; see docs/methods.md."
    )
