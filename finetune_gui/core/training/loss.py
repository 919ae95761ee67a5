"""The training loss in chunks of the sequence, for every method: the full logits (batch × length ×
vocabulary, 10 bytes an entry once upcast to fp32 for the loss) never exist at once.

The model runs with ``logits_to_keep=1`` (only the last position's logits) while a hook keeps the
decoder's final hidden states; the loss then computes logits a chunk of positions at a time, each chunk but
the last under activation checkpointing, so its logits are recomputed in the backward pass instead of kept.
Same loss and gradients as the model's own loss (a test checks it); the first batch checks that the
hook found the right hidden states and otherwise switches back to the model's own loss.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from finetune_gui.core.data.encode import IGNORE
from finetune_gui.core.estimate.memory import CHUNK_ENTRIES

FINAL_NORMS = ("norm", "final_layernorm", "ln_f", "norm_f", "final_norm")


def chunk_positions(batch: int, vocab: int) -> int:
    return max(1, CHUNK_ENTRIES // max(1, batch * vocab))


def unwrapped(model: Any) -> Any:
    """The transformers model under DDP's and PEFT's wrappers."""
    model = getattr(model, "module", model)  # DDP
    get_base = getattr(model, "get_base_model", None)  # PEFT
    return get_base() if callable(get_base) else model


def final_norm(model: Any) -> torch.nn.Module | None:
    """The module whose output the language-model head reads: the decoder's final norm."""
    base = unwrapped(model)
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else getattr(base, "model", None)
    for name in FINAL_NORMS:
        module = getattr(decoder, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    return None


def _chunk_loss(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
    )


def chunked_loss(
    head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor, num_items: Any = None
) -> torch.Tensor:
    """Next-token cross-entropy of ``hidden`` (batch × length × width) against ``labels``, normalised as
    transformers does: by ``num_items`` (the batch's trained tokens across gradient accumulation) when
    given, else by this batch's trained tokens."""
    if labels.shape[1] < hidden.shape[1]:  # prompt tuning prepends its virtual tokens
        pad = labels.new_full((labels.shape[0], hidden.shape[1] - labels.shape[1]), IGNORE)
        labels = torch.cat([pad, labels], dim=1)
    hidden, labels = hidden[:, :-1], labels[:, 1:]
    step = chunk_positions(hidden.shape[0], head.weight.shape[0])
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[1], step):
        part = labels[:, start : start + step]
        if not bool((part != IGNORE).any()):
            continue
        if start + step >= hidden.shape[1]:
            # The last chunk's logits are the first thing the backward pass needs: recomputing them would
            # save nothing, so they are kept (a sequence in one chunk costs no more than the usual loss).
            total = total + _chunk_loss(head, hidden[:, start:], part)
        else:
            total = total + checkpoint(
                _chunk_loss, head, hidden[:, start : start + step], part, use_reentrant=False
            )
    if num_items is None:
        num_items = (labels != IGNORE).sum()
    if torch.is_tensor(num_items):
        num_items = num_items.to(total.device)
    return total / num_items


def _chunk_logps(head: torch.nn.Module, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    taken = -F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="none"
    )
    return taken.view(labels.shape).sum(dim=1)


def sequence_logps(
    head: torch.nn.Module | None, hidden: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's summed log-probability of its labelled tokens, and how many there are, computed a chunk
    of positions at a time as the loss is. ``head`` None: ``hidden`` are the logits already."""
    if labels.shape[1] < hidden.shape[1]:  # prompt tuning prepends its virtual tokens
        pad = labels.new_full((labels.shape[0], hidden.shape[1] - labels.shape[1]), IGNORE)
        labels = torch.cat([pad, labels], dim=1)
    hidden, labels = hidden[:, :-1], labels[:, 1:]
    apply = head if head is not None else torch.nn.Identity()
    step = chunk_positions(hidden.shape[0], hidden.shape[-1] if head is None else head.weight.shape[0])
    total = hidden.new_zeros((hidden.shape[0],), dtype=torch.float32)
    for start in range(0, hidden.shape[1], step):
        part = labels[:, start : start + step]
        if not bool((part != IGNORE).any()):
            continue
        if start + step >= hidden.shape[1] or not torch.is_grad_enabled():
            total = total + _chunk_logps(apply, hidden[:, start : start + step], part)
        else:
            total = total + checkpoint(
                _chunk_logps, apply, hidden[:, start : start + step], part, use_reentrant=False
            )
    return total, (labels != IGNORE).sum(dim=1)


class ChunkedLoss:
    """Computes a batch's loss in chunks; ``active`` turns off when the check on the first batch fails."""

    def __init__(self, model: Any):
        self.norm = final_norm(model)
        self.active = self.norm is not None
        self.checked = False
        self.note = "" if self.active else "no final norm found"

    def __call__(self, model: Any, inputs: dict[str, Any], num_items: Any) -> tuple[torch.Tensor, Any]:
        labels = inputs["labels"]
        rest = {k: v for k, v in inputs.items() if k != "labels"}
        found, outputs = self.hidden_states(model, rest)
        if found is None:
            return None, outputs
        head, hidden = found
        return chunked_loss(head, hidden, labels, num_items), outputs

    def hidden_states(self, model: Any, inputs: dict[str, Any]) -> tuple[Any, Any]:
        """((head, final hidden states), outputs) of a forward pass that computes only the last position's
        logits; (None, outputs) when the first batch's check fails (``active`` is then off)."""
        captured: dict[str, torch.Tensor] = {}
        assert self.norm is not None
        handle = self.norm.register_forward_hook(
            lambda _m, _i, output: captured.__setitem__("hidden", output)
        )
        try:
            outputs = model(**inputs, logits_to_keep=1)
        finally:
            handle.remove()
        head = unwrapped(model).get_output_embeddings()
        hidden = captured.get("hidden")
        if not self.checked:
            self.checked = True
            if hidden is None or not self._agrees(head, hidden, outputs):
                self.active = False
                self.note = "the final hidden states did not match the model's own logits"
                return None, outputs
        return (head, hidden), outputs

    @staticmethod
    def _agrees(head: torch.nn.Module, hidden: torch.Tensor, outputs: Any) -> bool:
        logits = getattr(outputs, "logits", None)
        if logits is None or logits.shape[1] != 1:
            return False
        with torch.no_grad():
            mine = head(hidden[:, -1:]).float()
        return bool(torch.allclose(mine, logits.float(), atol=1e-3, rtol=1e-3))
