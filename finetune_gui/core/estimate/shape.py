"""What the estimate needs of a model, read from its config alone: parameters counted on the meta device
(no memory, no weights), and the shapes of its Linear layers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ModelShape:
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
    # Mixture of experts: weights in the experts' fused tensors (no Linear layers, so 4-bit quantization
    # does not reach them), and the parameters one token uses (what time, not memory, follows).
    expert_parameters: int = 0
    active_parameters: int = 0

    @property
    def per_token_parameters(self) -> int:
        return self.active_parameters or self.parameters

    @property
    def other(self) -> int:
        return self.parameters - self.embedding - self.lm_head - self.decoder_linear

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelShape:
        """The inverse of ``to_dict``: the window re-estimates live from a shape it received as JSON."""
        fields = dict(data)
        fields["linear_shapes"] = {k: tuple(v) for k, v in fields["linear_shapes"].items()}
        return cls(**fields)


def model_shape(config: Any, trust_remote_code: bool = False) -> ModelShape:
    import torch
    from torch import nn
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = text.hidden_size
    heads = text.num_attention_heads
    head_dim = getattr(text, "head_dim", None) or hidden // heads
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    embed = model.get_input_embeddings()
    head = model.get_output_embeddings()
    tied = head is not None and embed is not None and head.weight is embed.weight
    decoder_linear = 0
    shapes: dict[str, tuple[int, int, int]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module is not head:
            decoder_linear += module.weight.numel()
            suffix = name.rsplit(".", 1)[-1]
            n_in, n_out, count = shapes.get(suffix, (module.in_features, module.out_features, 0))
            shapes[suffix] = (n_in, n_out, count + 1)
    parameters = sum(p.numel() for p in model.parameters())
    experts = sum(
        p.numel() for name, p in model.named_parameters() if p.ndim == 3 and ".experts." in f".{name}"
    )
    total_experts = next(
        (
            getattr(text, k)
            for k in ("num_experts", "num_local_experts", "n_routed_experts")
            if getattr(text, k, None)
        ),
        0,
    )
    per_token = getattr(text, "num_experts_per_tok", None) or 0
    active = parameters - experts + experts * per_token // total_experts if experts and total_experts else 0
    return ModelShape(
        parameters=parameters,
        embedding=embed.weight.numel() if embed is not None else 0,
        lm_head=0 if (head is None or tied) else head.weight.numel(),
        decoder_linear=decoder_linear,
        linear_shapes=shapes,
        hidden=hidden,
        intermediate=getattr(text, "intermediate_size", None) or 4 * hidden,
        layers=text.num_hidden_layers,
        heads=heads,
        kv_dim=kv_heads * head_dim,
        vocab=text.vocab_size,
        attention=getattr(config, "_attn_implementation", None) or "sdpa",
        expert_parameters=experts,
        active_parameters=active,
    )
