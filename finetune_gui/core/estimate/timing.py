"""The time per optimizer step, for the review page: measured on this machine when earlier runs of the same
model and method recorded theirs (run.json ``timing``), else a rough guess from the FLOPs, said so."""

from __future__ import annotations

import statistics

from finetune_gui.core.estimate.memory import Settings
from finetune_gui.core.estimate.shape import ModelShape
from finetune_gui.core.methods import METHODS
from finetune_gui.core.runs import RunRecord

# Sustained training throughput assumed: rough on purpose.
CPU_FLOPS_PER_CORE = 55e9  # measured here: SmolLM2-135M LoRA, batch 4 × 256, about 5 s a step on 2 cores
GPU_FLOPS = {"bf16": 60e12, "fp16": 40e12, "fp32": 12e12}


def seconds_per_step(
    method: str, shape: ModelShape, s: Settings, cpu_cores: int = 1, mean_tokens: float | None = None
) -> float:
    """2 FLOPs per parameter and token forward, about twice that backward (the weight-gradient half only
    when the base weights train), recomputation when checkpointing. ``mean_tokens``: the dataset's mean
    example length, when known (batches are padded to their longest, not to max_seq_len)."""
    per_example = min(s.seq_len, mean_tokens * 1.2) if mean_tokens else s.seq_len
    tokens = s.rows * per_example
    factor = 6.0 if METHODS[method].trains_all_weights else 4.0
    if s.gradient_checkpointing:
        factor += 2.0
    if s.reference_pass:
        factor += 2.0  # DPO's reference scores: one more forward pass, without gradients
    flops = factor * shape.per_token_parameters * tokens  # a mixture of experts: the active ones
    rate = GPU_FLOPS.get(s.dtype, 12e12) if s.device == "cuda" else CPU_FLOPS_PER_CORE * max(1, cpu_cores)
    return flops / rate


def measured_seconds_per_step(
    runs: list[RunRecord], model: str, method: str, device: str, tokens_per_step: float
) -> tuple[float, int] | None:
    """(seconds per step, how many runs it rests on) for ``tokens_per_step`` tokens a step, from earlier
    runs of ``model`` with ``method`` on ``device`` (their seconds per token, the median); None without
    any."""
    rates = []
    for run in runs:
        timing = run.timing
        if timing is None or (run.model, run.method, run.device) != (model, method, device):
            continue
        if timing.seconds_per_step and timing.tokens_per_step:
            rates.append(timing.seconds_per_step / timing.tokens_per_step)
    if not rates:
        return None
    return statistics.median(rates) * tokens_per_step, len(rates)
