"""Merge and export in one step, verified: what ``finetune-gui merge`` and the Adapters page run.

    adapters ──(svd/ties/dare: PEFT combines them into one adapter first)──► merge into the base
             ──► verify against the adapters applied by PEFT ──► safetensors folder
             ──► (gguf) convert / quantize, verify the GGUF, write the Ollama Modelfile
    or, for adapters that cannot merge: a copy of the adapter folder with a note of its base.

Every export is written into a staging folder beside its output and moved into place when complete,
with a model card (README.md). An output folder that already holds files is refused, or with
``overwrite`` replaced whole: two exports never mix their files.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import UserError
from finetune_gui.core.events import Progress
from finetune_gui.core.files import disk_error_sentence

FORMATS = ("safetensors", "gguf", "adapter")


def export(
    base: str,
    adapters: list[tuple[str, float]],
    output: str | Path,
    *,
    fmt: str = "safetensors",
    gguf_type: str = "f16",
    combination: str = "cat",
    density: float = 0.5,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Write the export and return its report: paths and each verification's result and message."""
    from finetune_gui.core.adapters.gguf_types import GGUF_TYPES
    from finetune_gui.core.adapters.merge import COMBINATIONS

    report_progress = progress or (lambda _what, _fraction: None)
    if not adapters:
        raise UserError("Give at least one adapter to export (--adapter PATH[:WEIGHT]).")
    for path, _ in adapters:
        if not Path(path).is_dir():
            raise UserError(f"No adapter folder at {path}. Give the folder that holds adapter_config.json.")
    if combination not in COMBINATIONS:
        raise UserError(f"Unknown combination {combination!r}; choose one of {', '.join(COMBINATIONS)}.")
    if fmt == "gguf" and gguf_type not in GGUF_TYPES:
        raise UserError(f"GGUF type {gguf_type!r} is not offered; choose one of {', '.join(GGUF_TYPES)}.")
    if fmt == "adapter" and len(adapters) != 1:
        raise UserError("--format adapter exports one adapter folder; give one --adapter.")
    output = Path(output).expanduser().absolute()
    _check_output(output, overwrite)
    staging = output.with_name(f".{output.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        report = _write(
            base, adapters, staging, output, fmt, gguf_type, combination, density, report_progress
        )
        _move_into_place(staging, output)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        sentence = disk_error_sentence(exc, f"the export in {output}")
        if sentence is None:
            raise
        raise UserError(sentence + " Nothing was left behind.") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report_progress("Done", 1.0)
    return _relocated(report, staging, output)


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"{output} is a file. Choose a folder for the export.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise UserError(
            f"{output} already holds files; an export there would mix with them. Choose a new folder, or "
            "replace it whole with --overwrite."
        )


def _write(
    base: str,
    adapters: list[tuple[str, float]],
    folder: Path,
    output: Path,
    fmt: str,
    gguf_type: str,
    combination: str,
    density: float,
    report_progress: Progress,
) -> dict[str, Any]:
    from finetune_gui.core.adapters import model_card
    from finetune_gui.core.adapters.merge import combine_with_peft, export_adapter_folder, merge, verify

    name = output.name
    if fmt == "adapter":
        export_adapter_folder(base, adapters[0][0], folder)
        report: dict[str, Any] = {"output": str(folder), "format": "adapter"}
        model_card.write(
            folder,
            final=output,
            name=name,
            base=base,
            adapters=adapters,
            combination=combination,
            report=report,
        )
        return report
    model_dir = folder if fmt == "safetensors" else folder / "model"
    stacked = adapters
    with tempfile.TemporaryDirectory() as tmp:
        if combination != "cat" and len(adapters) > 1:
            # svd/ties/dare build one adapter from the stack, once: it is what gets merged, and the
            # reference the merged model is verified against (not the exact weighted sum).
            report_progress(f"Combining {len(adapters)} adapters with '{combination}'", 0.0)
            stacked = [(str(combine_with_peft(base, adapters, combination, Path(tmp), density)), 1.0)]
        merge(base, stacked, model_dir, progress=report_progress)
        report = {"output": str(model_dir), "format": fmt, "name": name}
        report_progress("Verifying the merged model", 0.7)
        report["merge"] = verify(base, stacked, model_dir)
    gguf_name = None
    if fmt == "gguf":
        from finetune_gui.core.adapters.export import export_gguf, modelfile, verify_gguf
        from finetune_gui.core.adapters.own_data import own_examples, trained_system_prompt
        from finetune_gui.core.models import materialize, resolve_model

        report_progress(f"Writing the GGUF ({gguf_type})", 0.8)
        notes: list[str] = []
        with tempfile.TemporaryDirectory(dir=folder, prefix=".reference-") as tmp:
            merged_f32 = Path(tmp) / "merged-f32.gguf"
            gguf = export_gguf(
                model_dir, folder / f"{name}-{gguf_type}.gguf", gguf_type, name, notes, merged_f32
            )
            gguf_name = gguf.name
            system = trained_system_prompt(adapters)
            (folder / "Modelfile").write_text(
                modelfile(model_dir, gguf.name, system=system), encoding="utf-8"
            )
            report_progress("Verifying the GGUF", 0.9)
            checked = verify_gguf(
                model_dir,
                gguf,
                gguf_type,
                merged_f32=merged_f32,
                base_dir=materialize(resolve_model(base)).path,
                examples=own_examples(adapters),
            )
        report["gguf"] = {"path": str(gguf), "type": gguf_type, **checked}
        report["gguf"]["notes"] = notes
        report["modelfile"] = str(folder / "Modelfile")
        report["ollama"] = f"ollama create {model_card.ollama_name(name)} -f Modelfile"
    card = model_card.write(
        folder,
        name=name,
        base=base,
        adapters=adapters,
        combination=combination,
        report=report,
        gguf_name=gguf_name,
    )
    report["model_card"] = str(card)
    report["verified"] = bool(report["merge"]["verified"] and report.get("gguf", {}).get("verified", True))
    return report


def _move_into_place(staging: Path, output: Path) -> None:
    """Put the finished export where it belongs; an old one there is replaced whole, never mixed."""
    if output.exists():
        old = output.with_name(f".{output.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        output.rename(old)
        staging.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(output)


def _relocated(value: Any, staging: Path, output: Path) -> Any:
    """The report's paths as they are after the move."""
    if isinstance(value, dict):
        return {k: _relocated(v, staging, output) for k, v in value.items()}
    if isinstance(value, str) and value.startswith(str(staging)):
        return str(output) + value[len(str(staging)) :]
    return value
