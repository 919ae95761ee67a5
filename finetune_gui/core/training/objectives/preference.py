"""Learning from preferences: DPO and ORPO on pairs of a chosen and a rejected answer.

Each batch of pairs runs through the model as one batch of sequences (the chosen answers, then the
rejected ones), and each sequence's answer is scored by its summed log-probability, a chunk of positions
at a time as the supervised loss is (``loss.py``), so the full logits never exist at once.

- **DPO** (Rafailov et al. 2023) compares with a reference: the same model before training. For PEFT
  adapters that is the base with the adapter switched off (no second copy, one forward pass without
  gradients a step); for full fine-tuning and bottleneck adapters the reference scores are computed
  once, before the first step, from the weights as loaded (``precompute_reference``; a resumed run loads
  its checkpoint after that, so it computes the same scores again).
- **ORPO** (Hong et al. 2024) needs no reference: the chosen answer's supervised loss minus beta times
  the log-sigmoid of the log odds ratio of the two answers' mean token probabilities.

The formulas are TRL's (``DPOTrainer._compute_loss``: sigmoid, hinge, and IPO on mean token
log-probabilities; ORPO as its former ``ORPOTrainer.odds_ratio_loss``), written here because TRL's
trainers are Trainer subclasses with their own tokenisation and data pipeline: our recipe's trainer
(lean memory mode, the chunked loss, our events and control) and our encoding (the loss mask of any
chat template) would have to be given up or duplicated to use them. TRL 1.16 keeps the loss inside the
trainer's forward, so tests check ours against the papers' formulas written out.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from finetune_gui.core.data.encode import IGNORE, EncodedDataset

REFERENCE_KEY = "reference_logps"  # a batch's precomputed reference scores: chosen rows, then rejected


class PairCollator:
    """A batch of pairs as one padded batch of sequences: the chosen answers first, then the rejected
    ones (labels on the answers only), with their precomputed reference scores when there are any."""

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None):
        self.pad_token_id = pad_token_id
        self.multiple = pad_to_multiple_of

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        sequences = [(f["chosen_input_ids"], f["chosen_labels"]) for f in features]
        sequences += [(f["rejected_input_ids"], f["rejected_labels"]) for f in features]
        longest = max(len(ids) for ids, _ in sequences)
        if self.multiple:
            longest = math.ceil(longest / self.multiple) * self.multiple
        ids, labels, mask = [], [], []
        for row_ids, row_labels in sequences:
            pad = longest - len(row_ids)
            ids.append(list(row_ids) + [self.pad_token_id] * pad)
            labels.append(list(row_labels) + [IGNORE] * pad)
            mask.append([1] * len(row_ids) + [0] * pad)
        batch = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }
        if features and "reference_chosen" in features[0]:
            batch[REFERENCE_KEY] = torch.tensor(
                [f["reference_chosen"] for f in features] + [f["reference_rejected"] for f in features],
                dtype=torch.float32,
            )
        return batch


def features(pairs: list[Any]) -> list[dict[str, Any]]:
    """EncodedPairs as the collator's features (the dataset's columns)."""
    return [
        {
            "chosen_input_ids": p.chosen.input_ids,
            "chosen_labels": p.chosen.labels,
            "rejected_input_ids": p.rejected.input_ids,
            "rejected_labels": p.rejected.labels,
        }
        for p in pairs
    ]


def pair_dataset(encoded: EncodedDataset, reference: list[tuple[float, float]] | None = None) -> Any:
    from datasets import Dataset

    columns: dict[str, list[Any]] = {
        "chosen_input_ids": [p.chosen.input_ids for p in encoded.items],
        "chosen_labels": [p.chosen.labels for p in encoded.items],
        "rejected_input_ids": [p.rejected.input_ids for p in encoded.items],
        "rejected_labels": [p.rejected.labels for p in encoded.items],
        "length": [len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in encoded.items],
    }
    if reference is not None:
        columns["reference_chosen"] = [c for c, _ in reference]
        columns["reference_rejected"] = [r for _, r in reference]
    return Dataset.from_dict(columns)


def scores(model: Any, inputs: dict[str, Any], chunked: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sequence's summed answer log-probability and its answer length, for a batch from PairCollator."""
    from finetune_gui.core.training.loss import sequence_logps

    labels = inputs["labels"]
    rest = {k: v for k, v in inputs.items() if k not in ("labels", REFERENCE_KEY)}
    if chunked is not None and chunked.active:
        found, _outputs = chunked.hidden_states(model, rest)
        if found is not None:
            head, hidden = found
            return sequence_logps(head, hidden, labels)
    return sequence_logps(None, model(**rest).logits, labels)


def peft_of(model: Any) -> Any:
    model = getattr(model, "module", model)  # DDP
    return model if hasattr(model, "disable_adapter") else None


def reference_scores(model: Any, inputs: dict[str, Any], chunked: Any) -> torch.Tensor:
    """The reference's summed log-probabilities: precomputed, or the base with the adapter switched off."""
    if REFERENCE_KEY in inputs:
        return inputs[REFERENCE_KEY].to(inputs["input_ids"].device)
    peft = peft_of(model)
    if peft is None:
        raise RuntimeError("DPO's reference needs precomputed scores or a PEFT adapter to switch off")
    with torch.no_grad(), peft.disable_adapter():
        return scores(peft, inputs, chunked)[0].detach()


@dataclass
class PreferenceLoss:
    """The loss of one batch of pairs, and its metrics (reward margin, preference accuracy)."""

    objective: str  # dpo | orpo
    beta: float
    loss_type: str = "sigmoid"  # DPO's: sigmoid | ipo | hinge
    metrics: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {"train": [], "eval": []})

    def __call__(
        self, model: Any, inputs: dict[str, Any], chunked: Any
    ) -> tuple[torch.Tensor, dict[str, float]]:
        logps, lengths = scores(model, inputs, chunked)
        half = logps.shape[0] // 2
        lengths = lengths.clamp(min=1).to(logps.dtype)
        if self.objective == "orpo":
            loss, chosen_rewards, rejected_rewards = self._orpo(logps, lengths, half)
        else:
            reference = reference_scores(model, inputs, chunked)
            if self.loss_type == "ipo":  # IPO compares mean token log-probabilities (TRL does the same)
                logps, reference = logps / lengths, reference / lengths
            loss, chosen_rewards, rejected_rewards = self._dpo(logps, reference, half)
        margins = (chosen_rewards - rejected_rewards).detach()
        found = {
            "reward_margin": float(margins.mean()),
            "preference_accuracy": float((margins > 0).float().mean()),
        }
        return loss, found

    def _dpo(self, logps: torch.Tensor, reference: torch.Tensor, half: int) -> tuple[torch.Tensor, ...]:
        chosen, rejected = logps[:half], logps[half:]
        ref_chosen, ref_rejected = reference[:half], reference[half:]
        logits = (chosen - rejected) - (ref_chosen - ref_rejected)
        if self.loss_type == "ipo":
            losses = (logits - 1 / (2 * self.beta)) ** 2
        elif self.loss_type == "hinge":
            losses = torch.relu(1 - self.beta * logits)
        else:
            losses = -F.logsigmoid(self.beta * logits)
        return losses.mean(), self.beta * (chosen - ref_chosen), self.beta * (rejected - ref_rejected)

    def _orpo(self, logps: torch.Tensor, lengths: torch.Tensor, half: int) -> tuple[torch.Tensor, ...]:
        # The chosen answers' supervised loss: their tokens' mean negative log-probability.
        nll = -logps[:half].sum() / lengths[:half].sum()
        mean = logps / lengths
        chosen, rejected = mean[:half], mean[half:]
        # log(p / (1 - p)) of each answer's mean token probability; log(1 - e^x) as log(-expm1(x)), which
        # stays finite where p is close to 1 (TRL's log1p(-exp(x)) does not).
        limit = -1e-6

        def log_odds(x: torch.Tensor) -> torch.Tensor:
            x = x.clamp(max=limit)
            return x - torch.log(-torch.expm1(x))

        ratio = F.logsigmoid(log_odds(chosen) - log_odds(rejected))
        return nll - self.beta * ratio.mean(), self.beta * chosen.detach(), self.beta * rejected.detach()

    def record(self, found: dict[str, float], training: bool) -> None:
        self.metrics["train" if training else "eval"].append(found)

    def take(self, training: bool) -> dict[str, float]:
        """The mean of each metric since the last take (the Trainer logs every logging_steps steps)."""
        kept = self.metrics["train" if training else "eval"]
        if not kept:
            return {}
        means = {key: round(sum(m[key] for m in kept) / len(kept), 6) for key in kept[0]}
        kept.clear()
        return means


def precompute_reference(trainer: Any, encoded: EncodedDataset, chunked: Any) -> list[tuple[float, float]]:
    """Every pair's reference scores (chosen, rejected) from the model as it is now: before training."""
    model = trainer.model
    collator = trainer.data_collator
    batch = max(1, trainer.args.per_device_eval_batch_size)
    found: list[tuple[float, float]] = []
    was_training = model.training
    model.eval()
    autocast = getattr(trainer.accelerator, "autocast", None)
    try:
        with torch.no_grad(), autocast() if callable(autocast) else nullcontext():
            for start in range(0, len(encoded.items), batch):
                pairs = encoded.items[start : start + batch]
                inputs = collator(features(pairs))
                inputs = {k: v.to(trainer.args.device) for k, v in inputs.items()}
                logps = scores(model, inputs, chunked)[0].float().cpu().tolist()
                found += list(zip(logps[: len(pairs)], logps[len(pairs) :], strict=True))
    finally:
        if was_training:
            model.train()
    return found
