"""The one registry of fine-tuning methods, read by the trainer, the estimator and the wizard.

Adding a method is one entry here, its branch in ``training_methods.py`` and its test.
Importing this module is cheap: it holds plain data only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    summary: str  # one sentence of trade-off, shown on the method card
    trains_all_weights: bool = False
    quantized_base: bool = False  # base weights in 4-bit NF4 (QLoRA)
    uses_lora_settings: bool = False
    mergeable: bool = True  # can the result be folded into the base weights
    memory_saver: bool = False  # recommended for its memory, not only as a choice
    default_learning_rate: float = 2e-4
    recommend_rank: int = 99  # order of preference among methods that fit; lower is better


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method(
            "full",
            "Full fine-tuning",
            "Updates every weight: the most adaptable, but needs the most memory and writes a whole model.",
            trains_all_weights=True,
            default_learning_rate=2e-5,
            recommend_rank=0,
        ),
        Method(
            "lora",
            "LoRA",
            "Trains small low-rank matrices beside frozen weights: near full quality at a fraction of "
            "the memory, and a small adapter file.",
            uses_lora_settings=True,
            memory_saver=True,
            default_learning_rate=2e-4,
            recommend_rank=1,
        ),
        Method(
            "dora",
            "DoRA",
            "LoRA that also learns each weight's magnitude: often a little better than LoRA at low rank, "
            "somewhat slower.",
            uses_lora_settings=True,
            memory_saver=True,
            default_learning_rate=2e-4,
            recommend_rank=2,
        ),
        Method(
            "qlora",
            "QLoRA",
            "LoRA on a base quantized to 4 bits: the least memory for large models, about a quarter "
            "slower, slightly lower quality.",
            quantized_base=True,
            uses_lora_settings=True,
            memory_saver=True,
            default_learning_rate=2e-4,
            recommend_rank=3,
        ),
        Method(
            "ia3",
            "IA3",
            "Learns one scaling vector per layer: the fewest trainable weights, a light touch that "
            "suits small style changes.",
            default_learning_rate=3e-3,
        ),
        Method(
            "adapter",
            "Bottleneck adapters",
            "Small down/up layers inserted after attention and MLP: modular, but they add latency and "
            "cannot be merged into the weights.",
            mergeable=False,
            default_learning_rate=5e-4,
        ),
        Method(
            "prefix",
            "Prefix tuning",
            "Learns key/value prefixes for every layer: tiny files, but weaker than LoRA and not mergeable.",
            mergeable=False,
            default_learning_rate=1e-2,
        ),
        Method(
            "prompt",
            "Prompt tuning",
            "Learns a few soft prompt tokens: the smallest adapter, the weakest effect, not mergeable.",
            mergeable=False,
            default_learning_rate=3e-2,
        ),
    ]
}

METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


def get_method(name: str) -> Method:
    return METHODS[name]
