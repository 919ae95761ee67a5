"""Concrete advice when a run runs out of memory: numbers the user can apply, best first."""

from __future__ import annotations

from typing import Any


def oom_fixes(config: Any) -> list[dict[str, Any]]:
    """Each fix: a sentence and the config overrides that apply it (the window offers them in one click)."""
    t = config.training
    fixes: list[dict[str, Any]] = []
    if t.batch_size > 1:
        half = max(1, t.batch_size // 2)
        accumulation = t.gradient_accumulation * (t.batch_size // half)
        fixes.append(
            {
                "label": f"batch {t.batch_size} → {half} with gradient accumulation {accumulation} "
                "(the same effective batch, about half the activation memory)",
                "set": {"training.batch_size": half, "training.gradient_accumulation": accumulation},
            }
        )
    if t.gradient_checkpointing != "on":
        fixes.append(
            {
                "label": "turn on gradient checkpointing (much less activation memory, about 30% slower)",
                "set": {"training.gradient_checkpointing": "on"},
            }
        )
    if t.max_seq_len > 256:
        shorter = max(256, t.max_seq_len // 2)
        fixes.append(
            {
                "label": f"max_seq_len {t.max_seq_len} → {shorter} (longer examples are cut)",
                "set": {"training.max_seq_len": shorter},
            }
        )
    if config.method in ("full", "lora", "dora"):
        qlora = _qlora_estimate(config)
        figure = f": estimated {qlora:.1f} GiB" if qlora is not None else ""
        fixes.append({"label": f"switch to QLoRA{figure}", "set": {"method": "qlora"}})
    return fixes


def _qlora_estimate(config: Any) -> float | None:
    try:
        from dataclasses import replace

        from finetune_gui.core import method_setup
        from finetune_gui.core.estimate import estimate_method, model_shape, settings_for_config
        from finetune_gui.core.models import load_config, resolve_model

        source = resolve_model(config.model, require_weights=False)
        plan = method_setup.plan_device(config)
        shape = model_shape(load_config(source, config.trust_remote_code), config.trust_remote_code)
        settings = replace(
            settings_for_config(config, plan.device, plan.precision), gradient_checkpointing=None
        )
        return estimate_method("qlora", shape, settings, None).total_gib
    except Exception:  # advice must never fail the failure report
        return None
