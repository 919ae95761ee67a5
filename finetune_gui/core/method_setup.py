"""Build the model each method trains: device and precision, loading (4-bit for QLoRA), and the adapter.

What is decided here (dtype, quantization, which weights train) is what ``estimate.py`` models, so a
change to one needs the same change to the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finetune_gui.core.config import RunConfig
from finetune_gui.core.errors import ConfigError
from finetune_gui.core.methods import METHODS
from finetune_gui.core.models import ModelSource, load_model


@dataclass(frozen=True)
class DevicePlan:
    device: str  # cuda | mps | cpu
    precision: str  # bf16 | fp16 | fp32

    @property
    def mixed_precision(self) -> bool:
        return self.device == "cuda" and self.precision in ("bf16", "fp16")


def plan_device(config: RunConfig) -> DevicePlan:
    import torch

    if torch.cuda.is_available():
        device = "cuda"
        supported = torch.cuda.is_bf16_supported()
        auto = "bf16" if supported else "fp16"
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        device, auto = "mps", "fp32"
    else:
        # On CPUs fp32 is the safe default: bf16 autocast is faster with AMX but leaves the model wrapped.
        device, auto = "cpu", "fp32"
    precision = auto if config.training.precision == "auto" else config.training.precision
    if device != "cuda" and precision != "fp32":
        precision = "fp32"
    if device == "cuda" and precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("This GPU does not support bf16. Set training.precision to fp16 or auto.")
    return DevicePlan(device, precision)


def torch_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def base_dtype(method: str, plan: DevicePlan) -> Any:
    """Frozen bases load in the compute dtype; a fully trained model keeps fp32 master weights."""
    import torch

    if METHODS[method].trains_all_weights or plan.device != "cuda":
        return torch.float32
    return torch_dtype(plan.precision)


def _disable_avx512_bf16_repack(model: Any) -> int:
    """bitsandbytes 0.50 on AVX512-BF16 CPUs repacks a Linear4bit's weight on its first eval-mode, no-grad
    forward; after that the LoRA layers above it get no gradient and QLoRA silently stops learning."""
    count = 0
    for module in model.modules():
        if type(module).__name__ == "Linear4bit" and hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def load_base(config: RunConfig, source: ModelSource, plan: DevicePlan, checkpointing: bool) -> Any:
    method = METHODS[config.method]
    kwargs: dict[str, Any] = {}
    if method.quantized_base:
        import torch
        from transformers import BitsAndBytesConfig

        compute = torch_dtype(plan.precision) if plan.device == "cuda" else torch.float32
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        if plan.device == "cuda":
            kwargs["device_map"] = {"": _local_rank()}
    model = load_model(
        source, dtype=base_dtype(config.method, plan), trust_remote_code=config.trust_remote_code, **kwargs
    )
    if method.quantized_base:
        from peft import prepare_model_for_kbit_training

        _disable_avx512_bf16_repack(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    model.config.use_cache = False  # the KV cache only costs memory in training
    return model


def _local_rank() -> int:
    import os

    return int(os.environ.get("LOCAL_RANK", "0"))


def lora_targets(config: RunConfig) -> str | list[str]:
    targets = config.lora.target_modules
    return targets if isinstance(targets, list) else str(targets)


def apply_method(model: Any, config: RunConfig, source: ModelSource) -> Any:
    """Wrap the base in the method's adapter; for full fine-tuning, make every weight trainable."""
    name = config.method
    if name == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        return model
    if name == "adapter":
        from finetune_gui.core import bottleneck

        for parameter in model.parameters():
            parameter.requires_grad_(False)
        text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        bottleneck.attach(
            model,
            bottleneck.BottleneckConfig(
                bottleneck=config.adapter.bottleneck,
                hidden_size=text.hidden_size,
                num_layers=text.num_hidden_layers,
                base_model_name_or_path=config.model,
            ),
        )
        return model
    from peft import get_peft_model

    peft_config = peft_config_for(config, source)
    try:
        model = get_peft_model(model, peft_config)
    except ValueError as exc:
        raise ConfigError(f"{METHODS[name].label} cannot be applied to this model: {exc}") from None
    return model


def peft_config_for(config: RunConfig, source: ModelSource) -> Any:
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig, PromptTuningInit, TaskType

    name = config.method
    if name in ("lora", "qlora", "dora"):
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=config.lora.r,
            lora_alpha=config.lora.alpha,
            lora_dropout=config.lora.dropout,
            target_modules=lora_targets(config),
            use_dora=name == "dora",
        )
    if name == "ia3":
        return IA3Config(task_type=TaskType.CAUSAL_LM)
    if name == "prefix":
        return PrefixTuningConfig(
            task_type=TaskType.CAUSAL_LM, num_virtual_tokens=config.prefix.num_virtual_tokens
        )
    if name == "prompt":
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
    raise ConfigError(f"Unknown method {name!r}.")


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
