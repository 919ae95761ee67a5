"""Peak-memory estimate per method, from a model's config alone, with its parts shown.

It models this app's own training path (``method_setup.py`` and ``training.py``): what dtype the base
is loaded in, which weights train (always fp32, as PEFT keeps adapters), the optimizer, activation
checkpointing per decoder layer, and the loss path (logits upcast to fp32). Terms, in bytes:

- weights: full fine-tuning keeps fp32 master weights (4/param) plus autocast's bf16 copies (2/param);
  LoRA-family bases sit in the compute dtype (2/param); QLoRA packs decoder linears in NF4 (0.5/param)
  with double-quantized constants (0.127 bit/param) while embeddings, norms and lm_head are upcast to
  fp32 by ``prepare_model_for_kbit_training``.
- trainable state: fp32 weight 4 + AdamW moments 8 (8-bit AdamW: 2) per trainable param, and its
  fp32 gradient (4), which is live in the backward pass when activations are being freed, so the peak
  takes the larger of the forward peak (activations + logits) and the gradients.
- activations per token and layer, from what autograd keeps for backward in a Llama-style block
  (see ``_layer_activation_bytes``); with checkpointing only each layer's input is kept, plus one
  layer recomputed at a time. Eager attention adds the heads × seq² score matrices.
- logits and loss: about 10 bytes × tokens × vocabulary (bf16 logits, their fp32 upcast, and the
  fp32 log-softmax).
- margin: CUDA context (0.5 GiB) and allocator fragmentation (8% of the rest).
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from finetune_gui.core.methods import METHODS

GIB = 1024**3
CUDA_CONTEXT_GIB = 0.5
FRAGMENTATION = 0.08
CPU_BASELINE_GIB = 0.6  # the Python process with torch and transformers imported, on CPU
NF4_BYTES = 0.5 + 0.127 / 8
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of a model, read from its config (parameters counted on the meta device)."""

    parameters: int
    embedding: int  # input embeddings
    lm_head: int  # 0 when tied to the embeddings
    decoder_linear: int  # weights of Linear layers inside decoder blocks (what NF4 quantizes)
    linear_shapes: dict[str, tuple[int, int, int]]  # suffix → (in, out, count), e.g. q_proj → (h, h, L)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_dim: int  # num_key_value_heads × head_dim
    vocab: int
    attention: str = "sdpa"  # sdpa | eager | flash

    @property
    def other(self) -> int:
        return self.parameters - self.embedding - self.lm_head - self.decoder_linear


@dataclass(frozen=True)
class Settings:
    batch_size: int = 4
    seq_len: int = 512
    dtype: str = "bf16"  # compute dtype: bf16 | fp16 on GPUs, fp32 on CPUs
    device: str = "cuda"
    gradient_checkpointing: bool | None = None  # None: on only when needed to fit
    lora_r: int = 16
    lora_targets: str | list[str] = "all-linear"
    virtual_tokens: int = 20
    bottleneck: int = 64
    optimizer_8bit_for_qlora: bool = True


@dataclass
class MethodEstimate:
    method: str
    total_gib: float  # what the device must have free: allocated peak + CUDA context + fragmentation
    allocated_gib: float  # comparable to torch.cuda.max_memory_allocated()
    breakdown: dict[str, float]
    trainable_parameters: int
    gradient_checkpointing: bool
    fits: bool = False
    without_checkpointing_gib: float = 0.0
    with_checkpointing_gib: float = 0.0
    needs_checkpointing: bool = False
    runnable: bool = True
    note: str = ""
    largest_seq_len: int | None = None  # at this batch size, within the budget
    largest_batch_size: int | None = None  # at this sequence length, within the budget

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shape_from_dict(data: dict[str, Any]) -> ModelShape:
    """The inverse of ``asdict(shape)``: the window re-estimates live from a shape it received as JSON."""
    fields = dict(data)
    fields["linear_shapes"] = {k: tuple(v) for k, v in fields["linear_shapes"].items()}
    return ModelShape(**fields)


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
            "shape": asdict(self.shape) if self.shape else None,
            "vram_gib": self.vram_gib,
            "settings": self.settings,
            "methods": {k: v.to_dict() for k, v in self.methods.items()},
            "recommended": self.recommended,
            "reason": self.reason,
            "suggestions": self.suggestions,
        }


# ------------------------------------------------------------------------------------------- shape


def model_shape(config: Any, trust_remote_code: bool = False) -> ModelShape:
    import torch
    from torch import nn
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = text.num_hidden_layers
    hidden = text.hidden_size
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    parameters = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings()
    embedding = embed.weight.numel() if embed is not None else 0
    head = model.get_output_embeddings()
    tied = head is not None and embed is not None and head.weight is embed.weight
    lm_head = 0 if (head is None or tied) else head.weight.numel()
    decoder_linear = 0
    shapes: dict[str, tuple[int, int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module is not head:
            decoder_linear += module.weight.numel()
            suffix = name.rsplit(".", 1)[-1]
            n_in, n_out, count = shapes.get(suffix, (module.in_features, module.out_features, 0))
            shapes[suffix] = (n_in, n_out, count + 1)
    return ModelShape(
        parameters=parameters,
        embedding=embedding,
        lm_head=lm_head,
        decoder_linear=decoder_linear,
        linear_shapes=shapes,
        hidden=hidden,
        intermediate=getattr(text, "intermediate_size", None) or 4 * hidden,
        layers=layers,
        heads=heads,
        kv_dim=kv_heads * head_dim,
        vocab=text.vocab_size,
        attention=getattr(config, "_attn_implementation", None) or "sdpa",
    )


# ------------------------------------------------------------------------------------- trainables


def _targeted(shape: ModelShape, targets: str | list[str]) -> list[tuple[int, int, int]]:
    if targets == "all-linear":
        return list(shape.linear_shapes.values())
    names = [targets] if isinstance(targets, str) else targets
    return [
        dims for suffix, dims in shape.linear_shapes.items() if any(fnmatch.fnmatch(suffix, n) for n in names)
    ]


def trainable_parameters(method: str, shape: ModelShape, s: Settings) -> int:
    if method == "full":
        return shape.parameters
    if method in ("lora", "qlora", "dora"):
        total = sum(
            count * s.lora_r * (n_in + n_out) for n_in, n_out, count in _targeted(shape, s.lora_targets)
        )
        if method == "dora":
            total += sum(count * n_out for _, n_out, count in _targeted(shape, s.lora_targets))
        return total
    if method == "ia3":
        # PEFT's defaults for decoder models: k_proj and v_proj outputs, down_proj input.
        total = 0
        for suffix, (n_in, n_out, count) in shape.linear_shapes.items():
            if suffix in ("k_proj", "v_proj"):
                total += count * n_out
            elif suffix == "down_proj":
                total += count * n_in
        return total
    if method == "adapter":
        per = 2 * s.bottleneck * shape.hidden + s.bottleneck + shape.hidden
        return 2 * shape.layers * per
    if method == "prefix":
        return s.virtual_tokens * shape.layers * 2 * shape.kv_dim
    if method == "prompt":
        return s.virtual_tokens * shape.hidden
    raise ValueError(method)


# ------------------------------------------------------------------------------------- activations


def _module_inputs(shape: ModelShape, targets: str | list[str]) -> tuple[int, int]:
    """(sum of in_features, sum of out_features) over one layer's adapted Linear modules."""
    dims = _targeted(shape, targets)
    per_layer = [(n_in * count // shape.layers, n_out * count // shape.layers) for n_in, n_out, count in dims]
    return sum(i for i, _ in per_layer), sum(o for _, o in per_layer)


def _layer_activation_bytes(shape: ModelShape, method: str, s: Settings, keys: int) -> float:
    """Bytes autograd keeps per token for one decoder layer (Llama-style block), for backward.

    Always kept, as gradients flow through every layer: both RMSNorms' fp32 inputs, the attention
    kernel's q, k, v and output, and the MLP's gate, up and SiLU(gate). When the base weights train
    (full), each Linear's input and the norms' outputs are kept too. Each LoRA-family module keeps
    its own copy of its input (PEFT casts it to the adapter's dtype, autocast back to the compute
    dtype); DoRA also keeps the base output it rescales.
    """
    c = DTYPE_BYTES[s.dtype]
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_dim
    if shape.attention == "eager":
        kv = h  # eager attention repeats k and v to every head
    total = 2 * 4 * h + c * (2 * h + 2 * kv) + 3 * c * i
    if method == "full":
        total += c * (4 * h + i) + 2 * c * h
    elif method in ("lora", "qlora", "dora"):
        inputs, outputs = _module_inputs(shape, s.lora_targets)
        adapter_input = c if s.dtype != "fp32" else 4
        total += adapter_input * inputs
        if method == "dora":
            total += c * outputs
    elif method == "ia3":
        total += c * (2 * kv + i)  # the scaled k, v and down_proj input
    elif method == "adapter":
        total += 2 * (4 * h + 4 * s.bottleneck)  # each adapter's fp32 input and hidden activation
    if shape.attention == "eager":
        total += (4 + c) * shape.heads * keys  # fp32 softmax and its compute-dtype copy
    return float(total)


def activation_bytes(method: str, shape: ModelShape, s: Settings, checkpointing: bool) -> tuple[float, float]:
    """(activations, logits and loss) in bytes for one step."""
    virtual = s.virtual_tokens if method == "prompt" else 0
    tokens = s.batch_size * (s.seq_len + virtual)
    keys = s.seq_len + (s.virtual_tokens if method in ("prefix", "prompt") else 0)
    per_layer = _layer_activation_bytes(shape, method, s, keys) * tokens
    c = DTYPE_BYTES[s.dtype]
    if checkpointing:
        activations = shape.layers * c * shape.hidden * tokens + per_layer
    else:
        activations = shape.layers * per_layer
    if method == "prefix":  # past key/values for every layer and sequence of the batch
        activations += shape.layers * 2 * s.batch_size * s.virtual_tokens * shape.kv_dim * c
    logits = 10.0 * tokens * shape.vocab if s.dtype != "fp32" else 12.0 * tokens * shape.vocab
    return activations, logits


# ----------------------------------------------------------------------------------------- weights


def weight_bytes(method: str, shape: ModelShape, s: Settings) -> float:
    c = DTYPE_BYTES[s.dtype]
    if method == "full":
        return 4.0 * shape.parameters  # fp32 master weights; autocast's copies are a forward-pass term
    if METHODS[method].quantized_base:
        return NF4_BYTES * shape.decoder_linear + 4.0 * (shape.parameters - shape.decoder_linear)
    return float(c * shape.parameters)


def estimate_method(method: str, shape: ModelShape, s: Settings, budget_gib: float | None) -> MethodEstimate:
    """Peak = persistent state + the larger of the forward peak (activations and logits, plus autocast's
    weight copies when fp32 weights train) and the backward peak (gradients), plus the margin."""
    trainable = trainable_parameters(method, shape, s)
    optimizer_bytes = 2 if (method == "qlora" and s.device == "cuda" and s.optimizer_8bit_for_qlora) else 8
    c = DTYPE_BYTES[s.dtype]
    persistent = {
        "weights": weight_bytes(method, shape, s),
        # Full fine-tuning's weights are the trainable ones; adapters add their own fp32 copies.
        "trainable_weights": 0.0 if method == "full" else 4.0 * trainable,
        "optimizer": float(optimizer_bytes * trainable),
    }
    autocast_copies = c * shape.parameters if method == "full" and s.dtype != "fp32" else 0.0

    def total_for(checkpointing: bool) -> tuple[float, dict[str, float]]:
        activations, logits = activation_bytes(method, shape, s, checkpointing)
        forward = {
            "autocast_weight_copies": autocast_copies,
            "activations": activations,
            "logits_and_loss": logits,
        }
        backward = {"gradients": 4.0 * trainable}
        phase = forward if sum(forward.values()) >= sum(backward.values()) else backward
        parts = {**persistent, **{k: v for k, v in phase.items() if v}}
        allocated = sum(parts.values())
        if s.device == "cuda":
            parts["cuda_context"] = CUDA_CONTEXT_GIB * GIB
            parts["fragmentation"] = FRAGMENTATION * allocated
        else:
            parts["process_baseline"] = CPU_BASELINE_GIB * GIB
        return sum(parts.values()) / GIB, {k: round(v / GIB, 3) for k, v in parts.items()}

    without, parts_without = total_for(False)
    with_ckpt, parts_with = total_for(True)
    if s.gradient_checkpointing is None:
        use = budget_gib is not None and without > budget_gib and with_ckpt <= budget_gib
    else:
        use = s.gradient_checkpointing
    total, breakdown = (with_ckpt, parts_with) if use else (without, parts_without)
    margin = {"cuda_context", "fragmentation", "process_baseline"}
    return MethodEstimate(
        method=method,
        total_gib=round(total, 3),
        allocated_gib=round(sum(v for k, v in breakdown.items() if k not in margin), 3),
        breakdown=breakdown,
        trainable_parameters=trainable,
        gradient_checkpointing=use,
        fits=budget_gib is None or total <= budget_gib,
        without_checkpointing_gib=round(without, 3),
        with_checkpointing_gib=round(with_ckpt, 3),
        needs_checkpointing=budget_gib is not None and without > budget_gib >= with_ckpt,
    )


# ------------------------------------------------------------------------------------ the estimate


def estimate(
    shape: ModelShape,
    settings: Settings,
    budget_gib: float | None,
    methods: list[str] | None = None,
    bitsandbytes: bool = True,
    model_facts: dict[str, Any] | None = None,
) -> Estimate:
    from finetune_gui.core.recommend import recommend

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
        elif budget_gib is not None:
            with_ckpt = replace(settings, gradient_checkpointing=est.gradient_checkpointing)
            est.largest_seq_len = largest_fit(name, shape, with_ckpt, budget_gib, "seq_len")
            est.largest_batch_size = largest_fit(name, shape, with_ckpt, budget_gib, "batch_size")
        result.methods[name] = est
    recommend(result, shape, settings, budget_gib)
    return result


def estimate_for_config(config: Any, source: Any, plan: Any, seq_len: int | None = None) -> MethodEstimate:
    """The estimate of one configured run, used by the trainer for 'auto' checkpointing and advice;
    ``seq_len``: the longest example of the data, when shorter than max_seq_len."""
    from finetune_gui.core import hardware
    from finetune_gui.core.models import load_config

    shape = model_shape(load_config(source, config.trust_remote_code), config.trust_remote_code)
    s = settings_for_config(config, plan.device, plan.precision)
    if seq_len is not None:
        s = replace(s, seq_len=min(s.seq_len, seq_len))
    budget = hardware.detect().budget_gib() if plan.device == "cuda" else None
    return estimate_method(config.method, shape, s, budget)


def settings_for_config(config: Any, device: str, precision: str) -> Settings:
    gc = {"on": True, "off": False}.get(config.training.gradient_checkpointing)
    return Settings(
        batch_size=config.training.batch_size,
        seq_len=config.training.max_seq_len,
        dtype=precision if device == "cuda" else "fp32",
        device=device,
        gradient_checkpointing=gc,
        lora_r=config.lora.r,
        lora_targets=config.lora.target_modules,
        virtual_tokens=config.prompt.num_virtual_tokens
        if config.method == "prompt"
        else config.prefix.num_virtual_tokens,
        bottleneck=config.adapter.bottleneck,
        optimizer_8bit_for_qlora=config.training.optimizer in ("auto", "paged_adamw_8bit", "adamw_8bit"),
    )


def largest_fit(method: str, shape: ModelShape, s: Settings, budget_gib: float, what: str) -> int | None:
    """The largest seq_len (multiple of 64) or batch size that fits ``budget_gib``, or None."""

    def fits(value: int) -> bool:
        trial = replace(s, **{what: value})
        return estimate_method(method, shape, trial, budget_gib).fits

    step = 64 if what == "seq_len" else 1
    low, high = 1, (131072 // 64 if what == "seq_len" else 1024)
    if not fits(low * step):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid * step):
            low = mid
        else:
            high = mid - 1
    return low * step


# Sustained training throughput assumed for the time estimate: rough on purpose, it is labelled so.
CPU_FLOPS_PER_CORE = 55e9  # measured here: SmolLM2-135M LoRA, batch 4 × 256, about 5 s a step on 2 cores
GPU_FLOPS = {"bf16": 60e12, "fp16": 40e12, "fp32": 12e12}


def seconds_per_step(
    method: str, shape: ModelShape, s: Settings, cpu_cores: int = 1, mean_tokens: float | None = None
) -> float:
    """A rough time per optimizer step: 2 FLOPs per parameter and token forward, about twice that
    backward (the weight-gradient half only when the base weights train), recomputation when
    checkpointing. ``mean_tokens``: the dataset's mean example length, when known (batches are
    padded to their longest, not to max_seq_len)."""
    per_example = min(s.seq_len, mean_tokens * 1.2) if mean_tokens else s.seq_len
    tokens = s.batch_size * per_example
    factor = 6.0 if method == "full" else 4.0
    if s.gradient_checkpointing:
        factor += 2.0
    flops = factor * shape.parameters * tokens
    rate = GPU_FLOPS.get(s.dtype, 12e12) if s.device == "cuda" else CPU_FLOPS_PER_CORE * max(1, cpu_cores)
    return flops / rate
