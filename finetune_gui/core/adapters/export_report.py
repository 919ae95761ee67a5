"""What an export reports (``finetune-gui merge``'s JSON, which the Adapters page reads back): where it
was written and what each verification compared and found. The merge command writes it, the window
reads it, the model card quotes it: one record for all three. Keys may be added, none renamed
(docs/architecture.md, "Contract extensions")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_gui.core.adapters.gguf_check import TensorCheck


@dataclass(frozen=True)
class MergeCheck:
    """The merged model against the adapters applied by PEFT, on a fixed prompt."""

    verified: bool
    message: str
    max_abs_diff: float
    top1_agreement: float
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MergeCheck:
        return cls(
            bool(data["verified"]),
            str(data["message"]),
            float(data.get("max_abs_diff", 0.0)),
            float(data.get("top1_agreement", 0.0)),
            int(data.get("tokens", 0)),
        )


@dataclass(frozen=True)
class GgufCheck:
    """The GGUF file read back: its tensors against the merged model's (and how much of the fine-tune
    they keep), and, where a runtime reads it, its answers against the merged model and the base."""

    path: str
    type: str
    verified: bool
    message: str
    tensors: TensorCheck | None = None
    kept: float | None = None
    answers_checked: bool = False
    size_bytes: int = 0
    notes: list[str] = field(default_factory=list)  # what the converter said for the user
    # The answers, where transformers reads this architecture's GGUF (an ordinary paragraph):
    perplexity: float | None = None
    reference_perplexity: float | None = None
    perplexity_ratio: float | None = None
    top1_agreement: float | None = None
    positions: int | None = None
    # … and on the run's own examples: the export's top next token against the merged model's and the base's.
    own_agreement: float | None = None
    own_base_agreement: float | None = None
    own_examples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tensors"] = self.tensors.to_dict() if self.tensors else None
        # Answers that were not checked have no figures: their keys are left out, not written as null.
        return {k: v for k, v in data.items() if v is not None or k in ("kept", "tensors")}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GgufCheck:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        tensors = known.get("tensors")
        known["tensors"] = TensorCheck.from_dict(tensors) if isinstance(tensors, dict) else None
        return cls(**known)


@dataclass(frozen=True)
class ExportReport:
    format: str  # a name in exporter.EXPORT_FORMATS
    output: str  # the model folder (a GGUF export's merged safetensors in model/) or the adapter copy
    folder: str  # the export folder the user chose
    name: str = ""
    merge: MergeCheck | None = None  # formats that merge
    gguf: GgufCheck | None = None
    modelfile: str | None = None
    ollama: str | None = None  # the command that adds it to Ollama, run from the folder
    model_card: str | None = None

    @property
    def verified(self) -> bool:
        """Every verification it ran passed (an adapter copy runs none: it is the trained file)."""
        return all(check.verified for check in (self.merge, self.gguf) if check is not None)

    @property
    def messages(self) -> list[str]:
        """Each verification's verdict, in words."""
        return [check.message for check in (self.merge, self.gguf) if check is not None]

    def moved(self, staging: Path, final: Path) -> ExportReport:
        """The report's paths as they are once the staging folder has become ``final``."""

        def where(path: str | None) -> str | None:
            if path is None or not path.startswith(str(staging)):
                return path
            return str(final) + path[len(str(staging)) :]

        gguf = dataclasses.replace(self.gguf, path=where(self.gguf.path) or "") if self.gguf else None
        return dataclasses.replace(
            self,
            output=where(self.output) or "",
            folder=where(self.folder) or "",
            modelfile=where(self.modelfile),
            model_card=where(self.model_card),
            gguf=gguf,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"format": self.format, "output": self.output, "folder": self.folder}
        data["name"] = self.name
        if self.merge is not None:
            data["merge"] = self.merge.to_dict()
        if self.gguf is not None:
            data["gguf"] = self.gguf.to_dict()
        for key in ("modelfile", "ollama", "model_card"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        data["verified"] = self.verified
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportReport:
        output = str(data["output"])
        return cls(
            format=str(data["format"]),
            output=output,
            folder=str(data.get("folder") or output),
            name=str(data.get("name") or ""),
            merge=MergeCheck.from_dict(data["merge"]) if isinstance(data.get("merge"), dict) else None,
            gguf=GgufCheck.from_dict(data["gguf"]) if isinstance(data.get("gguf"), dict) else None,
            modelfile=data.get("modelfile"),
            ollama=data.get("ollama"),
            model_card=data.get("model_card"),
        )
