"""How a run keeps its memory, decided once: standard or lean mode and everything that follows from it.

The decision used to be taken again in six places (the config, the estimate, the recipe three times,
the model set-up, the trainer, a callback). ``plan_memory`` takes it from the config, the device and the
one estimate of this run; the model set-up, the trainer's arguments and its optimizer read the plan
(``hardware.MemoryPlan``, beside the device plan, so that the set-up reads it without the estimate).
"""

from __future__ import annotations

from finetune_gui.core.config import RunConfig
from finetune_gui.core.estimate.memory import MethodEstimate, in_backward
from finetune_gui.core.hardware import DevicePlan, MemoryPlan
from finetune_gui.core.methods import METHODS


def plan_memory(
    config: RunConfig, device: DevicePlan, estimate: MethodEstimate | None, world_size: int = 1
) -> MemoryPlan:
    """The plan for ``config`` on ``device``; ``estimate`` is the one estimate of its method (None when
    the model's shape is unknown: then 'auto' means standard and checkpointing stays off)."""
    method = METHODS[config.method]
    t = config.training
    mode = "standard"
    if method.trains_all_weights and t.memory_mode != "standard":
        mode = "lean" if t.memory_mode == "lean" else (estimate.memory_mode if estimate else "standard")
    lean = mode == "lean"
    if lean:
        checkpointing = True  # lean mode keeps only each layer's input
    elif t.gradient_checkpointing in ("on", "off"):
        checkpointing = t.gradient_checkpointing == "on"
    else:
        checkpointing = bool(estimate and estimate.gradient_checkpointing)
    if lean:
        weight_dtype = "bf16"
    elif method.trains_all_weights or device.device != "cuda":
        weight_dtype = "fp32"  # fp32 master weights train; frozen bases on CPUs compute in fp32
    else:
        weight_dtype = device.precision
    needed = None
    if estimate is not None:
        needed = estimate.with_checkpointing_gib if checkpointing else estimate.without_checkpointing_gib
    return MemoryPlan(
        mode=mode,
        checkpointing=checkpointing,
        step_in_backward=lean and in_backward(t.gradient_accumulation, world_size),
        weight_dtype=weight_dtype,
        fp32_compute=lean and device.device == "cpu",
        autocast=device.precision if device.mixed_precision and not lean else None,
        estimate_gib=estimate.total_gib if estimate else None,
        needed_gib=needed,
        auto_lean=lean and t.memory_mode == "auto",
    )
