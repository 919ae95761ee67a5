"""The one registry of fine-tuning methods: everything the rest of the app needs to know about a method.

Each entry says how it trains (which weights, on what base), where its settings live in the RunConfig,
what kind of adapter it writes and what can be done with that adapter (merge it, stack it with weights),
whether it may be recommended, and its terms in the memory estimate. No other module spells a method's
name: they ask the registry. Adding a method is one entry here, its set-up in ``core/tuners/setup.py``
and its test.

Importing this module is cheap: plain data and arithmetic only. The estimate terms take the model's
``ModelShape`` and the estimate's ``Settings`` (``core/estimate``) by duck typing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Terms = Callable[[Any, Any], float]  # (shape, settings) → a number


def targeted(shape: Any, targets: str | list[str]) -> list[tuple[int, int, int]]:
    """(in, out, count) of the Linear layers that ``targets`` ('all-linear' or name patterns) selects."""
    if targets == "all-linear":
        return list(shape.linear_shapes.values())
    names = [targets] if isinstance(targets, str) else targets
    return [
        dims for suffix, dims in shape.linear_shapes.items() if any(fnmatch.fnmatch(suffix, n) for n in names)
    ]


def _lora_trainable(shape: Any, s: Any) -> float:
    return sum(count * s.lora_r * (n_in + n_out) for n_in, n_out, count in targeted(shape, s.lora_targets))


def _dora_trainable(shape: Any, s: Any) -> float:
    return _lora_trainable(shape, s) + sum(
        count * n_out for _, n_out, count in targeted(shape, s.lora_targets)
    )


def _dora_step_bytes(shape: Any, s: Any) -> float:
    # Every forward pass composes each adapted weight's dense update B·A (fp32, the weight's full size) to
    # take the weight's norm, and autograd keeps it for the backward pass: measured on the demo model on
    # a CPU, the peak was ~0.4 GB (its decoder in fp32) above LoRA's at any length.
    return 4.0 * sum(count * n_in * n_out for n_in, n_out, count in targeted(shape, s.lora_targets))


def _ia3_trainable(shape: Any, _s: Any) -> float:
    # PEFT's defaults for decoder models: k_proj and v_proj outputs, down_proj input.
    total = 0
    for suffix, (n_in, n_out, count) in shape.linear_shapes.items():
        if suffix in ("k_proj", "v_proj"):
            total += count * n_out
        elif suffix == "down_proj":
            total += count * n_in
    return total


def _per_layer_io(shape: Any, targets: str | list[str]) -> tuple[int, int]:
    """(sum of in_features, sum of out_features) over one layer's adapted Linear modules."""
    dims = targeted(shape, targets)
    per_layer = [(n_in * count // shape.layers, n_out * count // shape.layers) for n_in, n_out, count in dims]
    return sum(i for i, _ in per_layer), sum(o for _, o in per_layer)


def _lora_activations(shape: Any, s: Any) -> float:
    # Each adapted module keeps its own copy of its input (PEFT casts it to the adapter's dtype).
    inputs, _ = _per_layer_io(shape, s.lora_targets)
    return (s.compute_bytes if s.dtype != "fp32" else 4) * inputs


def _dora_activations(shape: Any, s: Any) -> float:
    _, outputs = _per_layer_io(shape, s.lora_targets)
    return _lora_activations(shape, s) + s.compute_bytes * outputs  # the base output it rescales


def _full_activations(shape: Any, s: Any) -> float:
    # Every Linear's input and the norms' outputs are kept for the weight gradients.
    return s.compute_bytes * (4 * shape.hidden + shape.intermediate) + 2 * s.compute_bytes * shape.hidden


def _nothing(_shape: Any, _s: Any) -> float:
    return 0.0


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    summary: str  # one sentence of trade-off, shown on the method card
    default_learning_rate: float  # the rate for a 7B model; the proposal scales it by model size
    trainable: Terms  # trainable parameters
    activations: Terms = _nothing  # bytes per token and layer kept beyond the frozen block's own
    step_bytes: Terms = _nothing  # bytes kept for the backward pass once a step, whatever its length
    settings_section: str | None = None  # the RunConfig section that holds its settings
    adapter_kind: str | None = None  # what its output folder is (describe_adapter's kind); None: a model
    peft: bool = True  # set up and loaded by PEFT (else by this app: full models, bottleneck adapters)
    trains_all_weights: bool = False
    quantized_base: bool = False  # base weights in 4-bit NF4 (QLoRA)
    merges: bool = True  # its adapter can be folded into the base weights
    stacks_with_weights: bool = False  # several of its adapters combine as W + Σ wᵢ·ΔWᵢ
    recommend_rank: int | None = None  # order of preference among fitting methods; None: never recommended
    lighter: str | None = None  # the method to suggest when this one runs out of memory
    scales_with_size: bool = True  # its learning rate scales with model size (see the proposal's rule)
    virtual_tokens_in_sequence: bool = False  # its learned tokens lengthen every sequence (prompt tuning)
    virtual_keys: bool = False  # attention sees extra learned keys (prefix and prompt tuning)
    fused_experts: bool = True  # works on a mixture of experts' fused expert tensors (PEFT's DoRA does not)
    past_key_values: bool = False  # it keeps learned key/values for every layer (prefix tuning)


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "full",
            "Full fine-tuning",
            "Updates every weight: the most adaptable, but needs the most memory and writes a whole model.",
            default_learning_rate=2e-5,
            trainable=lambda shape, _s: shape.parameters,
            activations=_full_activations,
            peft=False,
            trains_all_weights=True,
            recommend_rank=0,
            lighter="qlora",
        ),
        Method(
            "lora",
            "LoRA",
            "Trains small low-rank matrices beside frozen weights: near full quality at a fraction of "
            "the memory, and a small adapter file.",
            default_learning_rate=2e-4,
            trainable=_lora_trainable,
            activations=_lora_activations,
            settings_section="lora",
            adapter_kind="lora",
            stacks_with_weights=True,
            recommend_rank=1,
            lighter="qlora",
        ),
        Method(
            "dora",
            "DoRA",
            "LoRA that also learns each weight's magnitude: often a little better than LoRA at low rank, "
            "somewhat slower.",
            default_learning_rate=2e-4,
            trainable=_dora_trainable,
            activations=_dora_activations,
            step_bytes=_dora_step_bytes,
            settings_section="lora",
            adapter_kind="dora",
            recommend_rank=2,
            lighter="qlora",
            fused_experts=False,
        ),
        Method(
            "qlora",
            "QLoRA",
            "LoRA on a base quantized to 4 bits: the least memory for large models, about a quarter "
            "slower, slightly lower quality.",
            default_learning_rate=2e-4,
            trainable=_lora_trainable,
            activations=_lora_activations,
            settings_section="lora",
            adapter_kind="lora",
            quantized_base=True,
            stacks_with_weights=True,
            recommend_rank=3,
        ),
        Method(
            "ia3",
            "IA3",
            "Learns one scaling vector per layer: the fewest trainable weights, a light touch that "
            "suits small style changes.",
            default_learning_rate=3e-3,
            trainable=_ia3_trainable,
            activations=lambda shape, s: s.compute_bytes * (2 * shape.kv_dim + shape.intermediate),
            adapter_kind="ia3",
        ),
        Method(
            "bottleneck",
            "Bottleneck adapters",
            "Small down/up layers inserted after attention and MLP: modular, but they add latency and "
            "cannot be merged into the weights.",
            default_learning_rate=5e-4,
            trainable=lambda shape, s: (
                2 * shape.layers * (2 * s.bottleneck * shape.hidden + s.bottleneck + shape.hidden)
            ),
            # each adapter's fp32 input and hidden activation
            activations=lambda shape, s: 2 * (4 * shape.hidden + 4 * s.bottleneck),
            settings_section="bottleneck",
            adapter_kind="bottleneck",
            peft=False,
            merges=False,
        ),
        Method(
            "prefix",
            "Prefix tuning",
            "Learns key/value prefixes for every layer: tiny files, but weaker than LoRA and not mergeable.",
            default_learning_rate=1e-2,
            trainable=lambda shape, s: s.virtual_tokens * shape.layers * 2 * shape.kv_dim,
            settings_section="prefix",
            adapter_kind="prefix",
            merges=False,
            scales_with_size=False,
            virtual_keys=True,
            past_key_values=True,
        ),
        Method(
            "prompt",
            "Prompt tuning",
            "Learns a few soft prompt tokens: the smallest adapter, the weakest effect, not mergeable.",
            default_learning_rate=3e-2,
            trainable=lambda shape, s: s.virtual_tokens * shape.hidden,
            settings_section="prompt",
            adapter_kind="prompt",
            merges=False,
            scales_with_size=False,
            virtual_tokens_in_sequence=True,
            virtual_keys=True,
        ),
    ]
}

METHOD_NAMES: tuple[str, ...] = tuple(METHODS)
# Names older configs used: {old: new}. Config migrations and the command line's --method read it.
RENAMED = {"adapter": "bottleneck"}
# Adapter kinds (what an adapter folder is) → the method that writes that kind.
KINDS: dict[str, Method] = {}
for _method in METHODS.values():
    if _method.adapter_kind is not None:
        KINDS.setdefault(_method.adapter_kind, _method)


def for_kind(kind: str) -> Method:
    """The method behind an adapter kind, for what can be done with it (merge, stack with weights)."""
    if kind not in KINDS:
        raise KeyError(kind)
    return KINDS[kind]


def optimizer_for(method: str, requested: str, device: str) -> str:
    """training.optimizer for this method: 'auto' is paged 8-bit AdamW for a 4-bit base on CUDA (QLoRA's
    recipe), plain AdamW otherwise."""
    if requested != "auto":
        return requested
    return "paged_adamw_8bit" if METHODS[method].quantized_base and device == "cuda" else "adamw"
