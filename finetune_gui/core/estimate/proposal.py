"""The settings the app proposes for a run, and why: what a config leaves empty (the run's length, the
learning rate, LoRA rank and alpha, warm-up, evaluation and save intervals) is filled in here, the same
way for the wizard and the command line. A config that names only the model, the dataset and the
method is complete.

The rules, from published recipes and measured here (docs/methods.md):
- Learning rate: each method's rate for a 7 B model (the registry: full 2e-5 and LoRA 2e-4 as in the
  QLoRA and Alpaca recipes; an adapter takes about ten times full fine-tuning's step) scaled by
  (7 B / parameters)^0.35, between ×0.5 and ×6: small models take larger steps. On the 135 M demo model
  that is 8e-4 for LoRA; 2e-4 learned none of 30 new facts there, 1e-3 all of them. QLoRA's published
  65 B rate (1e-4) is what the rule gives there. Prefix and prompt tuning use fixed rates.
- Length: 3 passes over the data (Alpaca, most SFT recipes); more for small datasets, which must be seen
  more often to be remembered (3 × √(300 / rows), at most 8); fewer for large ones (2 passes from
  2,000 rows, 1 from 20,000). At least 20 steps.
- Warm-up 3% of the steps, 10% for runs under 100 steps (a few steps, not a fraction of one).
- Evaluation five times a run, a checkpoint at each evaluation.
- LoRA rank 16 (32 above 3 B parameters), alpha twice the rank.
- Preference objectives (DPO, ORPO): at most 3 passes, beta 0.1 (the DPO and ORPO papers' and TRL's
  default), and a tenth (DPO) or half (ORPO) of the supervised learning rate (``core/objectives.py``
  says why; docs/methods.md has what it measured).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from finetune_gui.core.config import RunConfig, split_counts
from finetune_gui.core.methods import METHODS
from finetune_gui.core.objectives import OBJECTIVES

REFERENCE_PARAMETERS = 7e9
SIZE_EXPONENT = 0.35
SIZE_FACTOR_RANGE = (0.5, 6.0)


@dataclass
class Proposal:
    values: dict[str, Any] = field(default_factory=dict)  # dotted key → proposed value (only empty fields)
    reasons: dict[str, str] = field(default_factory=dict)  # dotted key → why, in words

    def to_dict(self) -> dict[str, Any]:
        return {key: {"value": value, "why": self.reasons.get(key, "")} for key, value in self.values.items()}

    def lines(self) -> list[str]:
        return [f"{key} = {_shown(value)}: {self.reasons.get(key, '')}" for key, value in self.values.items()]


def _shown(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def learning_rate(method: str, parameters: int, objective: str = "sft") -> float:
    """The proposed rate for ``method`` on a model of ``parameters``, learning from ``objective``."""
    m = METHODS[method]
    base = m.default_learning_rate * OBJECTIVES[objective].learning_rate_factor
    if not m.scales_with_size or parameters <= 0:
        return float(f"{base:.2g}")
    low, high = SIZE_FACTOR_RANGE
    factor = min(high, max(low, (REFERENCE_PARAMETERS / parameters) ** SIZE_EXPONENT))
    return float(f"{base * factor:.2g}")


IMPLAUSIBLE_RATE = 10.0  # a typed rate this many times above (or below) the proposal is worth a word


def rate_warning(config: RunConfig, parameters: int) -> str:
    """One sentence when a learning rate the user typed is far from the proposal (it stays allowed:
    the user may mean it); '' when it is close, or left to the proposal."""
    rate = config.training.learning_rate
    if rate is None or rate <= 0:
        return ""
    proposed = learning_rate(config.method, parameters, config.training.objective)
    label = METHODS[config.method].label
    if rate >= IMPLAUSIBLE_RATE * proposed:
        return (
            f"A learning rate of {rate:g} is {rate / proposed:,.0f}× what the app proposes for {label} on this "
            f"model ({proposed:g}): the loss will likely jump or turn into NaN. Keep it only if you mean it."
        )
    if rate <= proposed / IMPLAUSIBLE_RATE:
        return (
            f"A learning rate of {rate:g} is {proposed / rate:,.0f}× below what the app proposes for {label} on "
            f"this model ({proposed:g}): the run will likely learn nothing. Keep it only if you mean it."
        )
    return ""


PREFERENCE_PASSES = 3.0  # at most, for DPO and ORPO (see ``epochs``)


def epochs(train_rows: int, pairs: bool = False) -> float:
    """Passes over the data. Preference runs take at most three: on the demo model DPO's loss was near 0
    (2e-4) after three passes over 42 pairs, and more passes only push the margins further apart."""
    if pairs:
        return min(PREFERENCE_PASSES, epochs(train_rows))
    if train_rows >= 20_000:
        return 1.0
    if train_rows >= 2_000:
        return 2.0
    if train_rows >= 300:
        return 3.0
    return round(min(8.0, 3.0 * math.sqrt(300 / max(1, train_rows))), 1)


def lora_rank(parameters: int) -> int:
    return 32 if parameters > 3e9 else 16


LONG_RUN_STEPS = 100  # runs this long get early stopping proposed (with a validation set)
EARLY_STOPPING_PATIENCE = 2  # evaluations without improvement; the proposal evaluates five times a run


def propose(config: RunConfig, parameters: int, rows: int, world_size: int = 1) -> Proposal:
    """What to fill into the fields ``config`` leaves empty, for a model of ``parameters`` and a dataset of
    ``rows`` usable rows (before the validation split)."""
    p = Proposal()
    t = config.training
    train_rows, _ = split_counts(
        rows, config.dataset.validation_split if not config.dataset.validation_path else 0
    )
    per_step = t.batch_size * t.gradient_accumulation * world_size
    size = f"{parameters / 1e9:.2g} B" if parameters >= 1e9 else f"{parameters / 1e6:.3g} M"
    if t.learning_rate is None:
        objective = OBJECTIVES[t.objective]
        rate = learning_rate(config.method, parameters, t.objective)
        label = METHODS[config.method].label
        if METHODS[config.method].scales_with_size:
            why = f"{label}'s rate for a 7 B model ({METHODS[config.method].default_learning_rate:g}), scaled for {size} parameters"
        else:
            why = f"{label}'s usual rate"
        if objective.learning_rate_factor != 1.0:
            why += f", ×{objective.learning_rate_factor:g} for {objective.name.upper()}: a preference loss needs smaller steps"
        p.values["training.learning_rate"], p.reasons["training.learning_rate"] = rate, why
    steps = t.max_steps
    if t.max_steps is None and t.epochs is None:
        passes = epochs(train_rows, OBJECTIVES[t.objective].pairs)
        steps = max(20, math.ceil(passes * train_rows / per_step))
        p.values["training.max_steps"] = steps
        p.reasons["training.max_steps"] = (
            f"{passes:g} passes over {train_rows:,} training rows at {per_step} rows a step"
            + (" (small datasets need more passes)" if passes > 3 else "")
            + (
                " (at most 3 for preferences)"
                if OBJECTIVES[t.objective].pairs and passes < epochs(train_rows)
                else ""
            )
        )
    elif steps is None:
        steps = max(1, math.ceil((t.epochs or 1.0) * train_rows / per_step))
    if t.warmup_ratio is None:
        ratio = 0.1 if steps < 100 else 0.03
        p.values["training.warmup_ratio"] = ratio
        p.reasons["training.warmup_ratio"] = f"{ratio:.0%} of {steps} steps"
    if t.eval_steps is None:
        every = max(1, steps // 5)
        p.values["training.eval_steps"] = every
        p.reasons["training.eval_steps"] = "five evaluations a run"
    if t.save_steps is None:
        every = t.eval_steps or p.values.get("training.eval_steps") or max(1, steps // 5)
        p.values["training.save_steps"] = every
        p.reasons["training.save_steps"] = "a checkpoint at each evaluation"
    if t.early_stopping is None:
        validated = bool(config.dataset.validation_path) or config.dataset.validation_split > 0
        long_run = steps is not None and steps >= LONG_RUN_STEPS
        p.values["training.early_stopping"] = EARLY_STOPPING_PATIENCE if validated and long_run else 0
        p.reasons["training.early_stopping"] = (
            f"stop after {EARLY_STOPPING_PATIENCE} evaluations without a better eval loss, keep the best"
            if validated and long_run
            else (
                "off: no validation set"
                if not validated
                else f"off: a short run (under {LONG_RUN_STEPS} steps)"
            )
        )
    if OBJECTIVES[t.objective].pairs and config.preference.beta is None:
        p.values["preference.beta"] = OBJECTIVES[t.objective].proposed_beta
        p.reasons["preference.beta"] = "the DPO and ORPO papers' strength"
    if METHODS[config.method].settings_section == "lora":
        rank = config.lora.r
        if rank is None:
            rank = lora_rank(parameters)
            p.values["lora.r"] = rank
            p.reasons["lora.r"] = f"the usual rank for a {size}-parameter model"
        if config.lora.alpha is None:
            p.values["lora.alpha"] = 2 * rank
            p.reasons["lora.alpha"] = "twice the rank"
    return p


def apply(config: RunConfig, proposal: Proposal) -> RunConfig:
    """A copy of ``config`` with the proposal filled in."""
    resolved = dataclasses.replace(
        config,
        training=dataclasses.replace(config.training),
        lora=dataclasses.replace(config.lora),
        preference=dataclasses.replace(config.preference),
    )
    for key, value in proposal.values.items():
        section, name = key.split(".")
        setattr(getattr(resolved, section), name, value)
    resolved.notices = config.notices  # type: ignore[misc]  # per instance, kept off config.yaml's fields
    return resolved


def rank_of(config: RunConfig, parameters: int) -> int:
    """The LoRA rank this config trains with: its own, or the proposed one."""
    return config.lora.r or lora_rank(parameters)
