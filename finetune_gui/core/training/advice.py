"""Concrete advice when a run runs out of memory: numbers the user can apply, best first."""

from __future__ import annotations

from typing import Any

from finetune_gui.core.events import Fix
from finetune_gui.core.methods import METHODS


def oom_fixes(config: Any, shape: Any = None, hardware: Any = None) -> list[Fix]:
    """Each fix: a sentence and the config overrides that apply it (the window offers them in one click)."""
    t = config.training
    fixes: list[Fix] = []
    if t.batch_size > 1:
        half = max(1, t.batch_size // 2)
        accumulation = t.gradient_accumulation * (t.batch_size // half)
        fixes.append(
            Fix(
                f"batch {t.batch_size} → {half} with gradient accumulation {accumulation} "
                "(the same effective batch, about half the activation memory)",
                {"training.batch_size": half, "training.gradient_accumulation": accumulation},
            )
        )
    if t.gradient_checkpointing != "on":
        fixes.append(
            Fix(
                "turn on gradient checkpointing (much less activation memory, about 30% slower)",
                {"training.gradient_checkpointing": "on"},
            )
        )
    if t.max_seq_len > 256:
        shorter = max(256, t.max_seq_len // 2)
        fixes.append(
            Fix(
                f"max_seq_len {t.max_seq_len} → {shorter} (longer examples are cut)",
                {"training.max_seq_len": shorter},
            )
        )
    lighter = METHODS[config.method].lighter
    runnable = lighter is not None and not (
        METHODS[lighter].quantized_base and hardware is not None and not hardware.bitsandbytes
    )
    if lighter is not None and runnable:
        figure = _estimate_gib(config, lighter, shape, hardware)
        said = f": estimated {figure:.1f} GB" if figure is not None else ""
        fixes.append(Fix(f"switch to {METHODS[lighter].label}{said}", {"method": lighter}))
    return fixes


def _estimate_gib(config: Any, method: str, shape: Any, hardware: Any) -> float | None:
    """The one estimate of this config with ``method`` instead, checkpointing as configured."""
    if shape is None or hardware is None:
        return None
    import dataclasses

    from finetune_gui.core.estimate import estimate_run

    other = dataclasses.replace(config, method=method)
    return estimate_run(other, shape, hardware, methods=[method]).methods[method].total_gib
