"""Merge and export in one step, verified: what ``finetune-gui merge`` and the Adapters page run.

adapters ──(svd/ties/dare: PEFT combines them into one adapter first)──► merge into the base
         ──► verify against the adapters applied by PEFT ──► safetensors folder
         ──► (gguf) convert, verify the GGUF, write the Ollama Modelfile
or, for adapters that cannot merge: a copy of the adapter folder with a note of its base.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import UserError

FORMATS = ("safetensors", "gguf", "adapter")
Progress = Callable[[str, float], None]


def export(
    base: str,
    adapters: list[tuple[str, float]],
    output: str | Path,
    *,
    fmt: str = "safetensors",
    gguf_type: str = "f16",
    combination: str = "cat",
    density: float = 0.5,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the export and return its report: paths and each verification's result and message."""
    from finetune_gui.core.adapters.merge import (
        COMBINATIONS,
        combine_with_peft,
        export_adapter_folder,
        merge,
        verify,
    )

    report_progress = progress or (lambda _what, _fraction: None)
    if not adapters:
        raise UserError("Give at least one adapter to export (--adapter PATH[:WEIGHT]).")
    for path, _ in adapters:
        if not Path(path).is_dir():
            raise UserError(f"No adapter folder at {path}. Give the folder that holds adapter_config.json.")
    if combination not in COMBINATIONS:
        raise UserError(f"Unknown combination {combination!r}; choose one of {', '.join(COMBINATIONS)}.")
    output = Path(output).expanduser()
    if fmt == "adapter":
        if len(adapters) != 1:
            raise UserError("--format adapter exports one adapter folder; give one --adapter.")
        return {"output": str(export_adapter_folder(base, adapters[0][0], output)), "format": "adapter"}
    model_dir = output if fmt == "safetensors" else output / "model"
    with tempfile.TemporaryDirectory() as tmp:
        if combination != "cat" and len(adapters) > 1:
            # svd/ties/dare build one adapter from the stack, once: it is what gets merged, and the
            # reference the merged model is verified against (not the exact weighted sum).
            report_progress(f"Combining {len(adapters)} adapters with '{combination}'", 0.0)
            adapters = [(str(combine_with_peft(base, adapters, combination, Path(tmp), density)), 1.0)]
        merge(base, adapters, model_dir, progress=report_progress)
        report: dict[str, Any] = {"output": str(model_dir), "format": fmt}
        report_progress("Verifying the merged model", 0.8)
        report["merge"] = verify(base, adapters, model_dir)
    if fmt == "gguf":
        from finetune_gui.core.adapters.export import export_gguf, modelfile, verify_gguf

        report_progress(f"Writing the GGUF ({gguf_type})", 0.85)
        gguf = export_gguf(model_dir, output / f"model-{gguf_type}.gguf", gguf_type)
        (output / "Modelfile").write_text(modelfile(model_dir, gguf.name), encoding="utf-8")
        report["gguf"] = {"path": str(gguf), **verify_gguf(model_dir, gguf)}
        report["modelfile"] = str(output / "Modelfile")
    report["verified"] = bool(report["merge"]["verified"] and report.get("gguf", {}).get("verified", True))
    report_progress("Done", 1.0)
    return report
