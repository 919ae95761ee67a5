"""Padding-free batches: a batch's examples side by side in one row, no padding computed.

The collator puts the examples one after another in a single row, with positions that restart at 0 for
each example, the first label of each example ignored (it would be predicted from the previous example),
and the examples' boundaries (``cu_seq_lens_q``/``cu_seq_lens_k``, the names flash-attention's
variable-length path reads; transformers passes them down to every attention call, also when a layer is
recomputed under activation checkpointing). Attention never crosses a boundary:

- with flash-attention installed (GPUs), transformers' own variable-length path reads them;
- with SDPA (CPUs, and GPUs without flash-attention), ``packed_sdpa`` below runs SDPA once per example,
  causal within it, so attention costs what each example's own does (a block-diagonal mask over the
  whole row would cost the row's length squared), and no L × L mask is built.

The loss and the gradients are those of the padded batch (``tests/test_packing.py``). Prefix and prompt
tuning stay padded: their virtual tokens belong to each row, and one row would give them to the first
example only; so do the preference objectives, whose chosen and rejected answers are scored per row.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
import torch.nn.functional as F

from finetune_gui.core.data.encode import IGNORE
from finetune_gui.core.training.loss import unwrapped

ATTENTION = "finetune_packed_sdpa"  # our name in transformers' attention and mask registries
NATIVE = ("flash_attention_2", "flash_attention_3")  # read the boundaries themselves

# Set while a packed batch runs forward: the mask builder then returns no mask (attention reads the
# boundaries instead). A context variable, not an argument: transformers builds the mask from the model's
# own arguments, before any of ours reaches a layer.
_PACKED: ContextVar[bool] = ContextVar("finetune_gui_packed", default=False)


class PackedCollator:
    """A batch's examples in one row: ``input_ids``, ``labels`` and ``position_ids`` of shape 1 × total,
    the boundaries as cumulative lengths, and no attention mask."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        bounds = [0]
        longest = 0
        for f in features:
            length = len(f["input_ids"])
            ids.extend(f["input_ids"])
            labels.append(IGNORE)  # the first token is never a target (nothing before it in its example)
            labels.extend(f["labels"][1:])
            positions.extend(range(length))
            bounds.append(bounds[-1] + length)
            longest = max(longest, length)
        cumulative = torch.tensor(bounds, dtype=torch.int32)
        return {
            "input_ids": torch.tensor([ids], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
            "cu_seq_lens_q": cumulative,
            "cu_seq_lens_k": cumulative,
            "max_length_q": longest,
            "max_length_k": longest,
        }


def is_packed(inputs: dict[str, Any]) -> bool:
    return "cu_seq_lens_q" in inputs


@contextmanager
def packed_forward(inputs: dict[str, Any]) -> Iterator[None]:
    """Around a forward pass of ``inputs``: no attention mask is built when they are packed."""
    token = _PACKED.set(is_packed(inputs))
    try:
        yield
    finally:
        _PACKED.reset(token)


def _packed_mask(*args: Any, **kwargs: Any) -> Any:
    from transformers.masking_utils import sdpa_mask

    return None if _PACKED.get() else sdpa_mask(*args, **kwargs)


def packed_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA once per packed example (causal, within the layer's sliding window if it has one); any other
    call (generation, a padded evaluation) is transformers' own SDPA."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    bounds = kwargs.get("cu_seq_lens_q")
    if bounds is None or attention_mask is not None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    if kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None:
        raise ValueError("Padding-free batches do not support attention soft-capping or sinks.")
    groups = getattr(module, "num_key_value_groups", 1)
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    window = getattr(module, "sliding_window", None)
    edges = [int(b) for b in bounds.tolist()]
    parts = []
    for start, end in itertools.pairwise(edges):
        q, k, v = query[:, :, start:end], key[:, :, start:end], value[:, :, start:end]
        length = end - start
        if window and length > window:
            rows = torch.arange(length, device=query.device)
            distance = rows[:, None] - rows[None, :]
            allowed = (distance >= 0) & (distance < window)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout, scale=scaling)
        else:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling, is_causal=True)
        parts.append(out)
    output = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
    return output.transpose(1, 2).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(ATTENTION, packed_sdpa)
    AttentionMaskInterface.register(ATTENTION, _packed_mask)


def unsupported(model: Any, method_pads: bool) -> str | None:
    """Why this model and method cannot take padding-free batches (None: they can)."""
    if method_pads:
        return "prefix and prompt tuning give their virtual tokens to each row"
    implementation = getattr(unwrapped(model).config, "_attn_implementation", None)
    if implementation not in ("sdpa", ATTENTION, *NATIVE):
        return f"the model's attention ({implementation}) does not read example boundaries"
    return None


def enable(model: Any) -> None:
    """Switch the model's SDPA attention to the per-example one (flash-attention needs nothing)."""
    base = unwrapped(model)
    if base.config._attn_implementation == "sdpa":
        _register()
        base.set_attn_implementation(ATTENTION)


def disable(model: Any) -> None:
    """Back to plain SDPA (before saving, so no config names our function)."""
    base = unwrapped(model)
    if base.config._attn_implementation == ATTENTION:
        base.set_attn_implementation("sdpa")
