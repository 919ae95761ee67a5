"""Planning a run: peak memory per method from the model's shape, the recommendation, rough timing.

shape.py     the model's shape from its config alone (meta device)
memory.py    one method's peak memory with its parts (terms from the method registry)
compare.py   every method side by side and the recommendation (recommend.py)
for_run.py   the one estimate of a RunConfig on this hardware, used everywhere
plan.py      the run's memory plan (standard or lean, checkpointing, dtypes), decided once
timing.py    seconds per step, rough
measured.py  measured trade-offs per method, for the method cards
"""

from finetune_gui.core.estimate.compare import Estimate, estimate
from finetune_gui.core.estimate.for_run import estimate_run, run_settings, shape_for
from finetune_gui.core.estimate.memory import MethodEstimate, Settings, estimate_method, largest_fit
from finetune_gui.core.estimate.plan import plan_memory
from finetune_gui.core.estimate.proposal import Proposal, propose
from finetune_gui.core.estimate.shape import ModelShape, model_shape
from finetune_gui.core.estimate.timing import measured_seconds_per_step, seconds_per_step

__all__ = [
    "Estimate",
    "MethodEstimate",
    "ModelShape",
    "Proposal",
    "Settings",
    "estimate",
    "estimate_method",
    "estimate_run",
    "largest_fit",
    "measured_seconds_per_step",
    "model_shape",
    "plan_memory",
    "propose",
    "run_settings",
    "seconds_per_step",
    "shape_for",
]
