"""What the wizard knows: the one RunConfig it edits, and the facts its pages gathered (as the core's own
typed objects: Hardware, ModelShape, DatasetReport, Estimate).

Pages change the config through ``set_field`` (checked by the core's one dotted-field accessor) and the
facts through ``set_*``; every change re-estimates, so no page decides which fields matter to the
estimate. Pages listen to the signals; no page talks to another.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from finetune_gui.core.config import RunConfig, get_field, set_field
from finetune_gui.core.data.formats import PREFERENCE_FORMATS
from finetune_gui.core.data.inspect import DatasetReport
from finetune_gui.core.estimate import Estimate, ModelShape, estimate_run, run_settings
from finetune_gui.core.estimate.memory import Settings
from finetune_gui.core.estimate.proposal import Proposal, apply, propose
from finetune_gui.core.hardware import DevicePlan, Hardware, plan_device
from finetune_gui.core.methods import METHODS
from finetune_gui.core.objectives import OBJECTIVES


class WizardState(QObject):
    hardware_changed = Signal()
    model_changed = Signal()
    estimate_changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.config = RunConfig()
        self.config.model = ""
        self.hardware: Hardware | None = None
        self.model_facts: dict[str, Any] | None = None
        self.shape: ModelShape | None = None
        self.dataset_report: DatasetReport | None = None
        self.estimate: Estimate | None = None

    # -- the config, a field at a time
    def field(self, dotted: str) -> Any:
        return get_field(self.config, dotted)

    def set_field(self, dotted: str, value: Any) -> Any:
        """Set one config field, checked as a YAML file's value is (a ConfigError changes nothing), then
        re-estimate: any field may move the figures (precision, checkpointing, memory mode, accumulation,
        virtual tokens…). Returns the value as set."""
        value = set_field(self.config, dotted, value)
        self.recompute()
        return value

    # -- hardware
    def set_hardware(self, hardware: Hardware | dict[str, Any]) -> None:
        self.hardware = hardware if isinstance(hardware, Hardware) else Hardware.from_dict(hardware)
        self.hardware_changed.emit()
        self.recompute()

    def _hardware(self) -> Hardware:
        # Until detection answers: no GPU and no memory to hold figures against, and no claim that a
        # library does not work here (QLoRA's card would say bitsandbytes is missing).
        return self.hardware or Hardware(bitsandbytes=True)

    @property
    def hardware_known(self) -> bool:
        """Whether this machine's free memory is known yet (detection runs in a child process): until
        then the figures have no 'fits' verdict, since there is nothing to hold them against."""
        return self.hardware is not None

    @property
    def plan(self) -> DevicePlan:
        return plan_device(self.config.training.precision, self._hardware())

    @property
    def device(self) -> str:
        return self.plan.device

    def budget_gib(self) -> float:
        return self._hardware().budget_gib()

    # -- model
    def set_model(self, spec: str, estimate_json: dict[str, Any]) -> None:
        self.config.model = spec
        self.model_facts = estimate_json.get("model")
        shape = estimate_json.get("shape")
        self.shape = ModelShape.from_dict(shape) if shape else None
        self.model_changed.emit()
        self.recompute()

    # -- dataset
    def set_dataset(self, path: str, report: DatasetReport | None) -> None:
        self.config.dataset.path = path
        self.dataset_report = report
        if report:
            self.config.dataset.format = report.format
            # The mapping the scan read the file with (chosen on the page, or proposed for its column
            # names) is the one the run uses and the review's YAML shows.
            self.config.dataset.columns = dict(report.columns_used) or None
            self._objective_for(report.format)
        self.recompute()

    def _objective_for(self, fmt: str) -> None:
        """Preference pairs propose DPO (a supervised objective cannot learn from them); answers to
        imitate bring a preference objective back to supervised tuning."""
        t = self.config.training
        pairs = fmt in PREFERENCE_FORMATS
        if pairs and not OBJECTIVES[t.objective].pairs:
            t.objective = "dpo"
        elif not pairs and OBJECTIVES[t.objective].pairs:
            t.objective = "sft"

    def objectives(self) -> list[str]:
        """The objectives the dataset allows: the preference ones for pairs, supervised otherwise."""
        pairs = self.dataset_report is not None and self.dataset_report.format in PREFERENCE_FORMATS
        return [name for name, o in OBJECTIVES.items() if o.pairs == pairs]

    # -- estimate
    @property
    def longest(self) -> int | None:
        """The dataset's longest example in tokens, once the dataset page has scanned it with the model."""
        stats = self.dataset_report.token_stats if self.dataset_report else None
        longest = stats.max if stats else 0
        return min(longest, self.config.training.max_seq_len) if longest else None

    def proposal(self) -> Proposal | None:
        """What the core proposes for the fields this config leaves empty, once model and data are known."""
        rows = self.dataset_report.rows if self.dataset_report else 0
        if self.shape is None or not rows:
            return None
        return propose(self.config, self.shape.parameters, rows)

    def resolved(self) -> RunConfig:
        """The config with the proposal filled in: what the run will train with."""
        proposal = self.proposal()
        return apply(self.config, proposal) if proposal else self.config

    def settings(self) -> Settings:
        return run_settings(self.config, self.plan, self.longest, self.shape.parameters if self.shape else 0)

    def recompute(self) -> None:
        """Re-estimate every method: the one estimate of this config on this hardware, pure arithmetic on
        the model's shape, fast enough for every slider move."""
        if self.shape is None:
            self.estimate = None
        else:
            self.estimate = estimate_run(
                self.config, self.shape, self._hardware(), model_facts=self.model_facts, longest=self.longest
            )
        self.estimate_changed.emit()

    def method_label(self) -> str:
        return METHODS[self.config.method].label
