"""Every method estimated side by side for one model and one run's settings, and the recommendation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from finetune_gui.core.estimate.memory import MethodEstimate, Settings, estimate_method, largest_fit
from finetune_gui.core.estimate.recommend import recommend
from finetune_gui.core.estimate.shape import ModelShape
from finetune_gui.core.methods import METHODS


@dataclass
class Estimate:
    model: dict[str, Any]
    vram_gib: float | None
    settings: dict[str, Any]
    methods: dict[str, MethodEstimate] = field(default_factory=dict)
    recommended: str | None = None
    reason: str = ""
    suggestions: list[str] = field(default_factory=list)
    shape: ModelShape | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "shape": self.shape.to_dict() if self.shape else None,
            "vram_gib": self.vram_gib,
            "settings": self.settings,
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
            "recommended": self.recommended,
            "reason": self.reason,
            "suggestions": self.suggestions,
        }


def estimate(
    shape: ModelShape,
    settings: Settings,
    budget_gib: float | None,
    methods: list[str] | None = None,
    bitsandbytes: bool = True,
    model_facts: dict[str, Any] | None = None,
) -> Estimate:
    result = Estimate(
        model=model_facts or {"parameters": shape.parameters},
        vram_gib=round(budget_gib, 3) if budget_gib is not None else None,
        settings=asdict(settings),
        shape=shape,
    )
    for name in methods or list(METHODS):
        est = estimate_method(name, shape, settings, budget_gib)
        if METHODS[name].quantized_base and not bitsandbytes:
            est.runnable, est.fits = False, False
            est.note = "Needs bitsandbytes, which does not work on this machine."
        elif shape.expert_parameters and not METHODS[name].fused_experts:
            # Said before the run starts (the run itself would stop with PEFT's own sentence).
            est.runnable, est.fits = False, False
            est.note = (
                f"{METHODS[name].label} cannot be applied to this model: PEFT has no {METHODS[name].label} for a "
                "mixture of experts' fused expert weights. Choose LoRA."
            )
        elif budget_gib is not None:
            with_ckpt = replace(settings, gradient_checkpointing=est.gradient_checkpointing)
            est.largest_seq_len = largest_fit(name, shape, with_ckpt, budget_gib, "seq_len")
            est.largest_batch_size = largest_fit(name, shape, with_ckpt, budget_gib, "batch_size")
        result.methods[name] = est
    recommend(result, shape, settings, budget_gib)
    return result
