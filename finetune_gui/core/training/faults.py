"""Faults on demand, for the tests of what a user meets when a run goes wrong: the training process
reads these switches from its environment (never set in normal use) and this one callback applies them.

    FINETUNE_GUI_SIMULATE_OOM_AT_STEP=N    an out-of-memory error once step N is done
    FINETUNE_GUI_SIMULATE_CRASH_AT_STEP=N  an unexpected error once step N is done
    FINETUNE_GUI_SIMULATE_NAN_AT_STEP=N    the weights become NaN before step N (a far too high rate)
    FINETUNE_GUI_TEST_STEP_DELAY=S         every step takes S seconds longer (time to act between steps)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from transformers import TrainerCallback

SIMULATE_OOM_ENV = "FINETUNE_GUI_SIMULATE_OOM_AT_STEP"
SIMULATE_CRASH_ENV = "FINETUNE_GUI_SIMULATE_CRASH_AT_STEP"
SIMULATE_NAN_ENV = "FINETUNE_GUI_SIMULATE_NAN_AT_STEP"
STEP_DELAY_ENV = "FINETUNE_GUI_TEST_STEP_DELAY"


@dataclass
class FaultInjection(TrainerCallback):
    oom_at: int = 0
    crash_at: int = 0
    nan_at: int = 0
    step_delay_s: float = 0.0

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> FaultInjection | None:
        """The switches set in ``env``; None when none is (a normal run)."""
        found = cls(
            oom_at=int(env.get(SIMULATE_OOM_ENV, "0") or 0),
            crash_at=int(env.get(SIMULATE_CRASH_ENV, "0") or 0),
            nan_at=int(env.get(SIMULATE_NAN_ENV, "0") or 0),
            step_delay_s=float(env.get(STEP_DELAY_ENV, "0") or 0),
        )
        return found if found != cls() else None

    def on_step_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.nan_at and state.global_step + 1 == self.nan_at and model is not None:
            import torch

            with torch.no_grad():
                for parameter in model.parameters():
                    if parameter.requires_grad:
                        parameter.fill_(float("nan"))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.step_delay_s:
            time.sleep(self.step_delay_s)
        if self.oom_at and state.global_step >= self.oom_at:
            import torch

            raise torch.OutOfMemoryError(f"simulated out of memory at step {state.global_step}")
        if self.crash_at and state.global_step >= self.crash_at:
            raise RuntimeError(f"simulated crash at step {state.global_step}")
