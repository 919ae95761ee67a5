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
    """'Measured on the demo model at the proposed settings: 96% of held-out facts right, 1.4× LoRA's step
    time' (and the sweep's best when it found more) — or '' when not measured."""
    data = measured()
    rows = data.get("methods") or {}
    row, lora = rows.get(method), rows.get("lora")
    if not row or row.get("status") != "completed":
        return ""
    parts = [f"{100 * row['facts']:.0f}% of held-out facts right"]
    best = row.get("best") or {}
    if best.get("facts") is not None and best["facts"] > row["facts"] and best.get("learning_rate"):
        parts[0] += f" ({100 * best['facts']:.0f}% at learning rate {best['learning_rate']:g})"
    if lora and lora.get("seconds_per_step") and row.get("seconds_per_step"):
        parts.append(f"{row['seconds_per_step'] / lora['seconds_per_step']:.1f}× LoRA's step time")
    where = "at the proposed settings" if data.get("settings") else ""
    return f"Measured on the demo model {where}: ".replace("  ", " ").replace(" :", ":") + ", ".join(parts)


@lru_cache(maxsize=1)
def lean() -> dict[str, Any]:
    """bench/lean_memory.py's figures (resources/lean-memory.json), when measured."""
    try:
        return json.loads((resources_dir() / "lean-memory.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def lean_line() -> str:
    """'Lean mode measured on the demo model: 45% of standard's memory, 1.3× its step time' — or ''."""
    data = lean()
    if not data.get("lean_peak_share") or not data.get("lean_time_ratio"):
        return ""
    return (
        f"Lean mode, measured on the demo model: {data['lean_peak_share']:.0%} of standard's memory, "
        f"{data['lean_time_ratio']:.1f}× its step time"
    )


def source_note() -> str:
    data = measured()
    if not data:
        return ""
    base = (data.get("methods") or {}).get("base", {})
    length = f"{data['steps']} steps" if data.get("steps") else "the proposed settings"
    return (
        f"Measured figures: {data.get('model')}, {length} on the demo dataset, "
        f"{data.get('held_out_prompts')} held-out questions (base model: {100 * base.get('facts', 0):.0f}% right), "
        f"on {data.get('machine')}; see docs/methods.md."
    )
