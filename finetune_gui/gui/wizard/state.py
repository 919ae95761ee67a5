"""What the wizard knows: the one RunConfig it edits, and the facts its pages gathered.

Pages write the config and the facts here and listen to the signals; no page talks to another.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from finetune_gui.core.config import RunConfig
from finetune_gui.core.estimate import Estimate, ModelShape, Settings, estimate, shape_from_dict
from finetune_gui.core.methods import METHODS


class WizardState(QObject):
    hardware_changed = Signal()
    model_changed = Signal()
    dataset_changed = Signal()
    estimate_changed = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.config = RunConfig()
        self.config.model = ""
        self.hardware: dict[str, Any] | None = None
        self.model_facts: dict[str, Any] | None = None
        self.shape: ModelShape | None = None
        self.dataset_report: dict[str, Any] | None = None
        self.estimate: Estimate | None = None

    # -- hardware
    def set_hardware(self, data: dict[str, Any]) -> None:
        self.hardware = data
        self.hardware_changed.emit()
        self.recompute()

    @property
    def gpu(self) -> dict[str, Any] | None:
        gpus = (self.hardware or {}).get("gpus") or []
        return max(gpus, key=lambda g: g["free_gib"]) if gpus else None

    @property
    def device(self) -> str:
        gpu = self.gpu
        return "cuda" if gpu and gpu.get("backend") in ("cuda", "rocm") else "cpu"

    def budget_gib(self) -> float:
        gpu = self.gpu
        if gpu:
            return float(gpu["free_gib"])
        return float((self.hardware or {}).get("ram_available_gib") or 0.0)

    # -- model
    def set_model(self, spec: str, estimate_json: dict[str, Any]) -> None:
        self.config.model = spec
        self.model_facts = estimate_json.get("model")
        shape = estimate_json.get("shape")
        self.shape = shape_from_dict(shape) if shape else None
        self.model_changed.emit()
        self.recompute()

    # -- dataset
    def set_dataset(self, path: str, report: dict[str, Any] | None) -> None:
        self.config.dataset.path = path
        self.dataset_report = report
        if report:
            self.config.dataset.format = report.get("format", "auto")
        self.dataset_changed.emit()

    # -- estimate
    def settings(self) -> Settings:
        t, c = self.config.training, self.config
        dtype = "fp32"
        if self.device == "cuda":
            dtype = "bf16" if (self.gpu or {}).get("bf16") else "fp16"
        gc = {"on": True, "off": False}.get(t.gradient_checkpointing)
        virtual = c.prompt.num_virtual_tokens if c.method == "prompt" else c.prefix.num_virtual_tokens
        return Settings(
            batch_size=t.batch_size,
            seq_len=t.max_seq_len,
            dtype=dtype,
            device=self.device,
            gradient_checkpointing=gc,
            lora_r=c.lora.r,
            lora_targets=c.lora.target_modules,
            virtual_tokens=virtual,
            bottleneck=c.adapter.bottleneck,
        )

    def recompute(self) -> None:
        """Re-estimate every method from the shape: pure arithmetic, fast enough for every slider move."""
        if self.shape is None:
            self.estimate = None
        else:
            bnb = bool((self.hardware or {}).get("bitsandbytes", True))
            self.estimate = estimate(self.shape, self.settings(), self.budget_gib(), bitsandbytes=bnb)
        self.estimate_changed.emit()

    def method_label(self) -> str:
        return METHODS[self.config.method].label
