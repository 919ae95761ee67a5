"""Build the model each method trains: load the base (4-bit for QLoRA) and attach the method's adapter.

Each method of the registry has its set-up function here (``SETUPS``). What is decided here (dtype,
quantization, which weights train) is what ``core/estimate/memory.py`` models, so a change to one needs
the same change to the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from finetune_gui.core.config import RunConfig
from finetune_gui.core.errors import ConfigError
from finetune_gui.core.hardware import DevicePlan, MemoryPlan
from finetune_gui.core.methods import METHODS
from finetune_gui.core.models import ModelSource, load_model


def torch_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def _disable_avx512_bf16_repack(model: Any) -> int:
    """bitsandbytes 0.50 on AVX512-BF16 CPUs repacks a Linear4bit's weight on its first eval-mode, no-grad
    forward; after that the LoRA layers above it get no gradient and QLoRA silently stops learning."""
    count = 0
    for module in model.modules():
        if type(module).__name__ == "Linear4bit" and hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def load_base(config: RunConfig, source: ModelSource, plan: DevicePlan, memory: MemoryPlan) -> Any:
    """The base model as the memory plan has it: in its weight dtype (frozen bases in the compute dtype,
    fp32 master weights for full fine-tuning, bf16 in lean mode), 4-bit for QLoRA."""
    method = METHODS[config.method]
    kwargs: dict[str, Any] = {}
    if method.quantized_base:
        from transformers import BitsAndBytesConfig

        compute = torch_dtype(plan.precision) if plan.device == "cuda" else torch_dtype("fp32")
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        if plan.device == "cuda":
            kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = load_model(
        source,
        dtype=torch_dtype(memory.weight_dtype),
        trust_remote_code=config.trust_remote_code,
        **kwargs,
    )
    if method.quantized_base:
        from peft import prepare_model_for_kbit_training

        _disable_avx512_bf16_repack(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=memory.checkpointing)
    if memory.fp32_compute:
        from finetune_gui.core.tuners.lean import compute_in_float32

        compute_in_float32(model)  # bf16 arithmetic is slow on CPUs; bf16 storage is what saves memory
    model.config.use_cache = False  # the KV cache only costs memory in training
    return model


def apply_method(model: Any, config: RunConfig, source: ModelSource) -> Any:
    """Make the method's weights trainable: every weight, or an adapter on the frozen base."""
    return SETUPS[config.method](model, config, source)


def _train_everything(model: Any, _config: RunConfig, _source: ModelSource) -> Any:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


def _bottleneck(model: Any, config: RunConfig, _source: ModelSource) -> Any:
    from finetune_gui.core.tuners import bottleneck

    for parameter in model.parameters():
        parameter.requires_grad_(False)
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    bottleneck.attach(
        model,
        bottleneck.BottleneckConfig(
            bottleneck=config.bottleneck.bottleneck,
            hidden_size=text.hidden_size,
            num_layers=text.num_hidden_layers,
            base_model_name_or_path=config.model,
        ),
    )
    return model


def _peft(
    make_config: Callable[[RunConfig, ModelSource], Any],
) -> Callable[[Any, RunConfig, ModelSource], Any]:
    def apply(model: Any, config: RunConfig, source: ModelSource) -> Any:
        from peft import get_peft_model

        try:
            return get_peft_model(model, make_config(config, source))
        except ValueError as exc:
            raise ConfigError(
                f"{METHODS[config.method].label} cannot be applied to this model: {exc}"
            ) from None

    return apply


def _lora_config(config: RunConfig, _source: ModelSource, dora: bool = False) -> Any:
    from peft import LoraConfig, TaskType

    targets = config.lora.target_modules
    # A run's proposal fills in rank and alpha; a config used directly gets the usual 16 and twice that.
    rank = config.lora.r or 16
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=rank,
        lora_alpha=config.lora.alpha or 2 * rank,
        lora_dropout=config.lora.dropout,
        target_modules=targets if isinstance(targets, list) else str(targets),
        use_dora=dora,
    )


def _ia3_config(_config: RunConfig, _source: ModelSource) -> Any:
    from peft import IA3Config, TaskType

    return IA3Config(task_type=TaskType.CAUSAL_LM)


def _prefix_config(config: RunConfig, _source: ModelSource) -> Any:
    from peft import PrefixTuningConfig, TaskType

    return PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.prefix.num_virtual_tokens
    )


def _prompt_config(config: RunConfig, source: ModelSource) -> Any:
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    init_text = config.prompt.init_text
    if init_text:
        return PromptTuningConfig(
            task_type=TaskType.CAUSAL_LM,
            num_virtual_tokens=config.prompt.num_virtual_tokens,
            prompt_tuning_init=PromptTuningInit.TEXT,
            prompt_tuning_init_text=init_text,
            tokenizer_name_or_path=source.path,
        )
    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.prompt.num_virtual_tokens
    )


SETUPS: dict[str, Callable[[Any, RunConfig, ModelSource], Any]] = {
    "full": _train_everything,
    "lora": _peft(_lora_config),
    "qlora": _peft(_lora_config),
    "dora": _peft(lambda config, source: _lora_config(config, source, dora=True)),
    "ia3": _peft(_ia3_config),
    "bottleneck": _bottleneck,
    "prefix": _peft(_prefix_config),
    "prompt": _peft(_prompt_config),
}


def save_trained(model: Any, config: RunConfig, target: Any, base_dtype_: Any) -> None:
    """Write what the method trained: a whole model (in the base's own dtype), a PEFT adapter, or our
    bottleneck adapters."""
    method = METHODS[config.method]
    if method.adapter_kind == "bottleneck":
        from finetune_gui.core.tuners import bottleneck

        bottleneck.save(model, target)
        return
    if method.trains_all_weights and base_dtype_ is not None:
        model.to(base_dtype_)  # fp32 master weights were trained; the base's dtype is often bf16
    model.save_pretrained(target)


def count_parameters(model: Any) -> tuple[int, int]:
    """(trainable, total), counting 4-bit packed weights at their real number of parameters."""
    trainable = total = 0
    for parameter in model.parameters():
        n = parameter.numel()
        if getattr(parameter, "quant_storage", None) is not None or type(parameter).__name__ == "Params4bit":
            n *= 2  # two 4-bit values per stored byte
        total += n
        if parameter.requires_grad:
            trainable += n
    return trainable, total
