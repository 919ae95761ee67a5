"""Which method to recommend, and why, in a sentence for the JSON and the wizard.

The best-quality method whose estimate fits the budget: full, then LoRA, DoRA, QLoRA. IA3, bottleneck
adapters, prefix and prompt tuning are offered as choices but never sold as memory savers: measured
elsewhere, prefix and prompt tuning need about as much memory as LoRA, since activations dominate.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from finetune_gui.core.methods import METHODS


def _gb(value: float) -> str:
    return f"{value:.1f} GB"


def recommend(result: Any, shape: Any, settings: Any, budget_gib: float | None) -> None:
    """Fill ``result.recommended``, ``result.reason`` and, when nothing fits, ``result.suggestions``."""
    candidates = sorted(
        (m for m in result.methods.values() if METHODS[m.method].recommend_rank < 99 and m.runnable),
        key=lambda m: METHODS[m.method].recommend_rank,
    )
    if budget_gib is None:
        if candidates:
            result.recommended = candidates[0].method
            result.reason = "No memory budget was given, so the highest-quality method is recommended."
        return
    fitting = [m for m in candidates if m.fits]
    full = result.methods.get("full")
    if settings.device == "cpu" and len(fitting) > 1 and fitting[0].method == "full":
        # Without a GPU the budget is RAM, where full fine-tuning usually fits, but it is several times
        # slower than LoRA on a CPU and writes a whole model; LoRA is the better first run there.
        lora = next((m for m in fitting if m.method == "lora"), None)
        if lora is not None:
            result.recommended = "lora"
            result.reason = (
                f"LoRA fits in {_gb(lora.total_gib)} of {_gb(budget_gib)} free RAM. There is no GPU, and on a CPU "
                "full fine-tuning (which would fit too) is several times slower and writes a whole model."
            )
            return
    if fitting:
        best = fitting[0]
        label = METHODS[best.method].label
        reason = f"{label} fits in {_gb(best.total_gib)} of {_gb(budget_gib)} free"
        if best.gradient_checkpointing:
            reason += " with gradient checkpointing"
        if best.method != "full" and full is not None:
            reason += f"; full fine-tuning needs {_gb(full.total_gib)}"
        elif best.method == "full":
            reason += ", so every weight can be trained"
        result.recommended = best.method
        result.reason = reason + "."
        return
    result.recommended = None
    smallest = min(candidates, key=lambda m: m.with_checkpointing_gib) if candidates else None
    result.reason = f"No method fits in {_gb(budget_gib)}" + (
        f": even {METHODS[smallest.method].label} needs {_gb(smallest.with_checkpointing_gib)}."
        if smallest
        else "."
    )
    result.suggestions = suggestions(shape, settings, budget_gib, smallest.method if smallest else "qlora")


def suggestions(shape: Any, settings: Any, budget_gib: float, method: str) -> list[str]:
    """What would fit: a shorter sequence, batch 1 with accumulation, checkpointing, a smaller model."""
    from finetune_gui.core.estimate import estimate_method, largest_fit

    found = []
    base = replace(settings, gradient_checkpointing=True)
    label = METHODS[method].label
    seq = largest_fit(method, shape, base, budget_gib, "seq_len")
    if seq is not None and seq < settings.seq_len:
        found.append(
            f"{label} with sequences of {seq} tokens (instead of {settings.seq_len}) and gradient checkpointing."
        )
    if settings.batch_size > 1:
        one = replace(base, batch_size=1)
        est = estimate_method(method, shape, one, budget_gib)
        if est.fits:
            found.append(
                f"{label} with batch 1 and gradient accumulation {settings.batch_size} "
                f"(the same effective batch): {_gb(est.total_gib)}."
            )
    if not found:
        found.append(
            f"A smaller model: this one has {shape.parameters / 1e9:.1f} B parameters; "
            f"about {max(0.1, shape.parameters / 1e9 * budget_gib / max(0.1, _floor(shape, base, method))):.1f} B "
            "would fit with QLoRA at these settings."
        )
    return found


def _floor(shape: Any, settings: Any, method: str) -> float:
    from finetune_gui.core.estimate import estimate_method

    return estimate_method(method, shape, replace(settings, batch_size=1), None).total_gib
