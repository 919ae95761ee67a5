"""Bottleneck adapters (Houlsby-style): Linear(d→r) → GELU → Linear(r→d) with a residual, after each
decoder layer's attention output and MLP output.

PEFT has no such method and AdapterHub's package pins an old transformers, so this is our own small
module. Adapters hang off forward hooks, so the base model's own weights and state-dict keys are
untouched. Saved as ``bottleneck_config.json`` + ``adapter_model.safetensors``. Being nonlinear, these
adapters cannot be merged into the base weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from finetune_gui.core.tuners import BOTTLENECK_CONFIG as CONFIG_NAME

WEIGHTS_NAME = "adapter_model.safetensors"
ATTENTION_NAMES = ("self_attn", "attn", "attention", "self_attention")
MLP_NAMES = ("mlp", "feed_forward", "ffn")


@dataclass
class BottleneckConfig:
    bottleneck: int
    hidden_size: int
    num_layers: int
    activation: str = "gelu"
    base_model_name_or_path: str = ""
    adapter_type: str = "bottleneck"

    def save(self, folder: Path) -> None:
        (folder / CONFIG_NAME).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BottleneckConfig:
        data = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
        data.pop("adapter_type", None)
        return cls(**data)


class Bottleneck(nn.Module):
    def __init__(self, hidden_size: int, bottleneck: int):
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = nn.GELU()
        self.up = nn.Linear(bottleneck, hidden_size)
        # Zero up-projection: the adapted model starts exactly as the base.
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        delta = self.up(self.act(self.down(hidden.to(self.down.weight.dtype))))
        return hidden + delta.to(hidden.dtype)


def decoder_layers(model: nn.Module, num_layers: int) -> nn.ModuleList:
    """The model's list of decoder layers, found by shape rather than by architecture name."""
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == num_layers:
            first = module[0]
            if any(hasattr(first, n) for n in ATTENTION_NAMES) and any(hasattr(first, n) for n in MLP_NAMES):
                return module
    raise ValueError(
        "Could not find the decoder layers (attention + MLP) of this model for bottleneck adapters."
    )


def _child(layer: nn.Module, names: tuple[str, ...]) -> nn.Module:
    for name in names:
        if hasattr(layer, name):
            return getattr(layer, name)
    raise ValueError(f"Layer {type(layer).__name__} has none of {names}.")


def _hook(adapter: Bottleneck):
    def apply(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (adapter(output[0]), *output[1:])
        return adapter(output)

    return apply


def attach(model: nn.Module, config: BottleneckConfig) -> nn.ModuleDict:
    """Add adapters to ``model`` (as ``model.bottleneck_adapters``) and hook them in; returns them."""
    layers = decoder_layers(model, config.num_layers)
    adapters = nn.ModuleDict()
    for index, layer in enumerate(layers):
        for place, names in (("attn", ATTENTION_NAMES), ("mlp", MLP_NAMES)):
            adapter = Bottleneck(config.hidden_size, config.bottleneck)
            adapters[f"{index}_{place}"] = adapter
            _child(layer, names).register_forward_hook(_hook(adapter))
    device = next(model.parameters()).device
    adapters.to(device=device, dtype=torch.float32)  # trainable weights stay fp32 whatever the base dtype
    model.bottleneck_adapters = adapters
    model.bottleneck_config = config
    return adapters


def save(model: nn.Module, folder: Path) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model.bottleneck_config.save(folder)
    state = {k: v.detach().cpu().contiguous() for k, v in model.bottleneck_adapters.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "adapter_type": "bottleneck"})


def load(model: nn.Module, folder: Path) -> nn.Module:
    """Attach adapters saved by ``save`` to a freshly loaded base model."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = BottleneckConfig.load(folder)
    adapters = attach(model, config)
    adapters.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
    return model
