"""Read a written GGUF back, tensor by tensor, and say whether it still holds the fine-tune.

This check needs only the ``gguf`` package, so it works for every architecture llama.cpp's converter
writes (transformers' GGUF reader loads only some: Qwen3 fails, others are "not supported yet"). Every
tensor of the export is dequantized and compared with the same tensor of two f32 references written
by the same converter: the merged model, and the base model. The references share the export's names
and layouts (the converter's permutations and fusions included), so nothing is mapped by hand.

Two numbers come out:
- ``error``: how far the export is from the merged model (relative, over all tensors), against what
  the type's rounding allows: a wrong or damaged file fails here;
- ``kept``: how much of the fine-tune's change survives, the projection of (export − base) on
  (merged − base). Rounding noise is unbiased and averages out, so a faithful export keeps about 100%;
  an export whose grid snaps the small changes back onto the base's values keeps little. The demo model
  is itself a dequantized Q4_1 file: its q4_1 export of a fine-tune kept a small share and answered
  like the base, while perplexity on ordinary text looked fine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What each kind of type may differ from the merged model, relative (square root of the summed squares),
# measured on random and on real weights with room to spare: f16 ~3e-4, bf16 ~3e-3, q8_0 ~4e-3,
# q5_x ~2.5e-2, q4_x ~6e-2.
ERROR_LIMIT = {"float": 1e-2, "q8_0": 2e-2, "5-bit": 8e-2, "4-bit": 0.16}
KEEPS_AT = 0.8  # an export keeps the fine-tune when at least this share of its change survives
OVERSHOOT_AT = 1.25  # and moves the weights no more than this far along it (rounding that distorts it)


def keeps(kept: float | None) -> bool:
    return kept is None or KEEPS_AT <= kept <= OVERSHOOT_AT


def kept_words(kept: float) -> str:
    """'keeps 6% of the fine-tune's change', or 'moves the weights 160% as far as the fine-tune did'."""
    if kept > OVERSHOOT_AT:
        return f"moves the weights {kept:.0%} as far as the fine-tune did (its rounding distorts it)"
    return f"keeps {min(max(kept, 0.0), 1.0):.0%} of the fine-tune's change"


@dataclass(frozen=True)
class TensorCheck:
    tensors: int  # tensors compared
    missing: tuple[str, ...]  # in the merged reference, not in the export (or another shape)
    error: float  # ‖export − merged‖ / ‖merged‖ over all tensors
    error_limit: float
    kept: float | None  # share of the fine-tune's change that survives; None without a base reference
    changed_tensors: int  # tensors the fine-tune changed

    @property
    def matches(self) -> bool:
        return not self.missing and self.tensors > 0 and self.error <= self.error_limit

    @property
    def keeps_fine_tune(self) -> bool:
        return keeps(self.kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensors": self.tensors,
            "missing": list(self.missing),
            "error": self.error,
            "error_limit": self.error_limit,
            "kept": self.kept,
            "changed_tensors": self.changed_tensors,
            "matches": self.matches,
            "keeps_fine_tune": self.keeps_fine_tune,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorCheck:
        kept = data.get("kept")
        return cls(
            tensors=int(data.get("tensors", 0)),
            missing=tuple(str(m) for m in data.get("missing") or ()),
            error=float(data.get("error", 0.0)),
            error_limit=float(data.get("error_limit", 0.0)),
            kept=float(kept) if kept is not None else None,
            changed_tensors=int(data.get("changed_tensors", 0)),
        )

    def sentence(self, outtype: str) -> str:
        if not self.tensors:
            return "the GGUF holds no tensors"
        if self.missing:
            return (
                f"{len(self.missing)} of the merged model's tensors are missing from the GGUF or have another "
                f"shape (e.g. {self.missing[0]})"
            )
        text = (
            f"all {self.tensors} tensors read back {'within' if self.matches else 'outside'} {outtype}'s "
            f"rounding (difference {self.error:.1e}, allowed {self.error_limit:.0e})"
        )
        if self.kept is not None:
            text += f"; it {kept_words(self.kept)} to the weights"
        elif self.changed_tensors == 0:
            text += "; the adapters change no weight"
        return text


def _values(tensor: Any) -> Any:
    import numpy as np
    from gguf import GGMLQuantizationType, quants

    kind = GGMLQuantizationType(int(tensor.tensor_type))
    if kind in (GGMLQuantizationType.F32, GGMLQuantizationType.F16):
        return np.asarray(tensor.data, dtype=np.float32).reshape(-1)
    return np.asarray(quants.dequantize(np.asarray(tensor.data), kind), dtype=np.float32).reshape(-1)


def compare(
    exported: str | Path, merged_f32: str | Path, base_f32: str | Path | None, family: str
) -> TensorCheck:
    """Compare ``exported`` with the converter's f32 files of the merged model and (for ``kept``) of
    the base. ``family`` is the type's kind: float, q8_0, 5-bit or 4-bit."""
    import numpy as np
    from gguf import GGUFReader

    export_tensors = {t.name: t for t in GGUFReader(str(exported)).tensors}
    base_tensors = {t.name: t for t in GGUFReader(str(base_f32)).tensors} if base_f32 else {}
    missing: list[str] = []
    error_sq = norm_sq = 0.0
    kept_num = kept_den = 0.0
    changed = count = 0
    base_usable = bool(base_tensors)
    for reference in GGUFReader(str(merged_f32)).tensors:
        target = export_tensors.get(reference.name)
        merged = _values(reference)
        if target is None or int(target.n_elements) != merged.size:
            missing.append(reference.name)
            continue
        values = _values(target).astype(np.float64)
        merged64 = merged.astype(np.float64)
        error_sq += float(np.sum((values - merged64) ** 2))
        norm_sq += float(np.sum(merged64**2))
        count += 1
        base = base_tensors.get(reference.name)
        if base is None or int(base.n_elements) != merged.size:
            base_usable = False
            continue
        base64 = _values(base).astype(np.float64)
        delta = merged64 - base64
        delta_sq = float(np.sum(delta**2))
        if delta_sq > 0.0:
            changed += 1
            kept_num += float(np.sum((values - base64) * delta))
            kept_den += delta_sq
    kept = kept_num / kept_den if base_usable and kept_den > 0.0 else None
    return TensorCheck(
        tensors=count,
        missing=tuple(missing),
        error=math.sqrt(error_sq / norm_sq) if norm_sq > 0 else 0.0,
        error_limit=ERROR_LIMIT[family],
        kept=kept,
        changed_tensors=changed,
    )
