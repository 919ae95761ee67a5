"""What a run learns from: the objective, the second axis of fine-tuning beside the method.

The method says *what trains* (every weight, LoRA, a soft prompt…); the objective says *what it learns
from*: answers to imitate (supervised), or pairs of a chosen and a rejected answer (preferences). Every
method combines with every objective; the training pieces of each live in
``core/training/objectives/``. Light on purpose: the config, the estimate and the window read this
without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Objective:
    name: str
    label: str
    summary: str  # one line for the window and the docs
    pairs: bool  # learns from preference pairs (two sequences per row)
    reference: bool  # compares with a frozen reference model's log-probabilities
    proposed_beta: float = 0.0  # the preference strength proposed when preference.beta is empty
    # The proposed learning rate is the supervised one times this: a preference loss pushes the two
    # answers apart from the first step. DPO recipes train at a tenth to a fortieth of the supervised rate
    # (TRL: 1e-6 against SFT's 2e-5; LoRA DPO 5e-6 to 5e-5 at 7 B); on the demo model half the rate
    # learned the preference but its answers repeated the chosen style's words (docs/methods.md). ORPO
    # also learns the chosen answers, as supervised tuning does: its paper trains at 0.4× SFT's rate.
    learning_rate_factor: float = 1.0


OBJECTIVES: dict[str, Objective] = {
    "sft": Objective(
        "sft",
        "Supervised",
        "Learns to answer like your examples: questions with the answers to imitate.",
        pairs=False,
        reference=False,
    ),
    "dpo": Objective(
        "dpo",
        "DPO (preferences)",
        "Learns which of two answers you prefer, relative to the model before training "
        "(direct preference optimisation).",
        pairs=True,
        reference=True,
        proposed_beta=0.1,
        learning_rate_factor=0.1,
    ),
    "orpo": Objective(
        "orpo",
        "ORPO (preferences)",
        "Learns your chosen answers and, in the same loss, to prefer them over the rejected ones; "
        "no reference model (odds-ratio preference optimisation).",
        pairs=True,
        reference=False,
        proposed_beta=0.1,
        learning_rate_factor=0.5,
    ),
}
OBJECTIVE_NAMES = tuple(OBJECTIVES)
PREFERENCE_OBJECTIVES = tuple(name for name, o in OBJECTIVES.items() if o.pairs)
