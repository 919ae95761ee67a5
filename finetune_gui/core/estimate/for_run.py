"""The one estimate of a run: a RunConfig and the machine's hardware in, every method's peak memory and
the recommendation out. The wizard's method page, ``finetune-gui estimate --config``, the trainer (run.json
``estimate_gib``) and the out-of-memory advice all call ``estimate_run``, so one config gives one number
everywhere."""

from __future__ import annotations

from typing import Any

from finetune_gui.core.config import RunConfig
from finetune_gui.core.estimate.compare import Estimate, estimate
from finetune_gui.core.estimate.memory import Settings
from finetune_gui.core.estimate.proposal import rank_of
from finetune_gui.core.estimate.shape import ModelShape, model_shape
from finetune_gui.core.hardware import DevicePlan, Hardware, plan_device
from finetune_gui.core.methods import METHODS
from finetune_gui.core.objectives import OBJECTIVES


def run_settings(
    config: RunConfig, plan: DevicePlan, longest: int | None = None, parameters: int = 0
) -> Settings:
    """The estimate's inputs for this config. ``longest``: the data's longest example in tokens, when
    known: batches are padded to their own longest, never beyond the data's, so a dataset of short
    examples needs far less than max_seq_len would."""
    t = config.training
    return Settings(
        batch_size=t.batch_size,
        seq_len=min(t.max_seq_len, longest) if longest else t.max_seq_len,
        dtype=plan.precision,
        device=plan.device,
        gradient_checkpointing={"on": True, "off": False}.get(t.gradient_checkpointing),
        lora_r=rank_of(config, parameters),
        lora_targets=config.lora.target_modules,
        virtual_tokens=_virtual_tokens(config),
        bottleneck=config.bottleneck.bottleneck,
        optimizer=t.optimizer,
        memory_mode=t.memory_mode,
        accumulation=t.gradient_accumulation,
        sequences=2 if OBJECTIVES[t.objective].pairs else 1,
        reference_pass=config.reference_kind() == "adapter_off",
    )


def _virtual_tokens(config: RunConfig) -> int:
    """The learned tokens of the configured method (prefix or prompt tuning), else prefix tuning's."""
    own = getattr(config, METHODS[config.method].settings_section or "", None)
    return int(getattr(own, "num_virtual_tokens", config.prefix.num_virtual_tokens))


def estimate_run(
    config: RunConfig,
    shape: ModelShape,
    hardware: Hardware,
    *,
    methods: list[str] | None = None,
    model_facts: dict[str, Any] | None = None,
    longest: int | None = None,
) -> Estimate:
    """Every method (or ``methods``) at this config's settings on this hardware; the budget is the best
    GPU's free memory, else the available RAM. ``longest``: the data's longest example (tokens)."""
    plan = plan_device(config.training.precision, hardware)
    return estimate(
        shape,
        run_settings(config, plan, longest, shape.parameters),
        hardware.budget_gib(),
        methods,
        bitsandbytes=hardware.bitsandbytes,
        model_facts=model_facts,
    )


def shape_for(config: RunConfig) -> ModelShape:
    """The configured model's shape, from its config file alone (no weights are read)."""
    from finetune_gui.core.models import load_config, resolve_model

    source = resolve_model(config.model, require_weights=False)
    return model_shape(load_config(source, config.trust_remote_code), config.trust_remote_code)
