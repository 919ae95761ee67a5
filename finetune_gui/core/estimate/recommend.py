"""Which method to recommend, and why, in a sentence for the JSON and the wizard.

The best-quality method whose estimate fits the budget, in the registry's order of preference (full,
then LoRA, DoRA, QLoRA). Methods without a rank (IA3, bottleneck adapters, prefix and prompt tuning)
are offered as choices but never recommended: measured elsewhere, prefix and prompt tuning need about
as much memory as LoRA, since activations dominate. On a CPU an adapter method is preferred over
training every weight, which would fit in RAM but is several times slower there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from finetune_gui.core.estimate.memory import estimate_method, largest_fit
from finetune_gui.core.methods import METHODS


def _gb(value: float) -> str:
    return f"{value:.1f} GB"


def recommend(result: Any, shape: Any, settings: Any, budget_gib: float | None) -> None:
    """Fill ``result.recommended``, ``result.reason`` and, when nothing fits, ``result.suggestions``."""
    plain = next(
        (
            m
            for m in result.methods.values()
            if METHODS[m.method].adapter_kind == "lora" and not METHODS[m.method].quantized_base
        ),
        None,
    )

    def saves(m: Any) -> bool:
        """A quantized base is recommended only where its saving happens (not on the experts of a
        mixture of experts, which 4-bit does not reach)."""
        return not METHODS[m.method].quantized_base or plain is None or m.total_gib < 0.9 * plain.total_gib

    candidates = sorted(
        (
            m
            for m in result.methods.values()
            if METHODS[m.method].recommend_rank is not None and m.runnable and saves(m)
        ),
        key=lambda m: METHODS[m.method].recommend_rank or 0,
    )
    if budget_gib is None:
        if candidates:
            result.recommended = candidates[0].method
            result.reason = "No memory budget was given, so the highest-quality method is recommended."
        return
    fitting = [m for m in candidates if m.fits]
    whole = next((m for m in candidates if METHODS[m.method].trains_all_weights), None)
    if settings.device == "cpu" and fitting and METHODS[fitting[0].method].trains_all_weights:
        lighter = next((m for m in fitting if not METHODS[m.method].trains_all_weights), None)
        if lighter is not None:
            result.recommended = lighter.method
            result.reason = (
                f"{METHODS[lighter.method].label} fits in {_gb(lighter.total_gib)} of {_gb(budget_gib)} free "
                f"RAM. There is no GPU, and on a CPU {METHODS[fitting[0].method].label.lower()} (which would "
                "fit too) is several times slower and writes a whole model."
            )
            return
    if fitting:
        best = fitting[0]
        label = METHODS[best.method].label
        reason = f"{label} fits in {_gb(best.total_gib)} of {_gb(budget_gib)} free"
        if best.memory_mode == "lean":
            reason += " in lean memory mode (bf16 weights, 8-bit optimizer, each weight updated in the backward pass)"
        elif best.gradient_checkpointing:
            reason += " with gradient checkpointing"
        if whole is not None and best is not whole:
            reason += f"; {METHODS[whole.method].label.lower()} needs {_gb(whole.total_gib)}"
        elif best is whole:
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
    fallback = smallest.method if smallest else next(n for n, m in METHODS.items() if m.quantized_base)
    result.suggestions = suggestions(shape, settings, budget_gib, fallback)


def suggestions(shape: Any, settings: Any, budget_gib: float, method: str) -> list[str]:
    """What would fit: a shorter sequence, batch 1 with accumulation, checkpointing, a smaller model."""
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
        floor = estimate_method(method, shape, replace(base, batch_size=1), None).total_gib
        found.append(
            f"A smaller model: this one has {shape.parameters / 1e9:.1f} B parameters; "
            f"about {max(0.1, shape.parameters / 1e9 * budget_gib / max(0.1, floor)):.1f} B "
            f"would fit with {label} at these settings."
        )
    return found
