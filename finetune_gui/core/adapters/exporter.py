"""Merge and export in one step, verified: what ``finetune-gui merge`` and the Adapters page run.

    adapters ──(svd/ties/dare: PEFT combines them into one adapter first)──► merge into the base
             ──► verify against the adapters applied by PEFT ──► safetensors folder
             ──► (gguf) convert / quantize, verify the GGUF, write the Ollama Modelfile
    or, for adapters that cannot merge: a copy of the adapter folder with a note of its base.

Each export format is one entry of ``EXPORT_FORMATS`` (its label, whether it merges first, what it
writes and verifies, its options): the merge command's choices, the Adapters page's and the model card
read it. Every export is written into a staging folder beside its output and moved into place when
complete, with a model card (README.md). An output folder that already holds files is refused, or with
``overwrite`` replaced whole: two exports never mix their files.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from finetune_gui.core.adapters.export_report import ExportReport, GgufCheck, MergeCheck
from finetune_gui.core.errors import UserError
from finetune_gui.core.events import Progress
from finetune_gui.core.files import disk_error_sentence, staged_folder


@dataclass(frozen=True)
class ExportJob:
    """What one export was asked for, as its format's writer reads it."""

    base: str
    adapters: list[tuple[str, float]]
    folder: Path  # where it writes (the staging folder)
    name: str  # the export's name: the folder's, the GGUF's general.name, Ollama's tag
    gguf_type: str
    combination: str
    density: float
    progress: Progress


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str  # the Adapters page's choice
    # Merges the adapters into the base first (then verifies the merge against PEFT); a format that does
    # not copies an adapter that cannot merge (prefix, prompt, bottleneck).
    merges: bool
    # Where the merged model goes inside the export folder ("" for the folder itself).
    model_subfolder: str
    # What the format writes beside (or instead of) the merged model, verified: the report so far in,
    # the report with its own part out.
    write: Callable[[ExportJob, ExportReport], ExportReport]
    options: tuple[str, ...] = ()  # the merge command's flags that apply to it


def _nothing_more(_job: ExportJob, report: ExportReport) -> ExportReport:
    return report


def _copy_adapter(job: ExportJob, report: ExportReport) -> ExportReport:
    from finetune_gui.core.adapters.merge import export_adapter_folder

    export_adapter_folder(job.base, job.adapters[0][0], job.folder)
    return report


def _write_gguf(job: ExportJob, report: ExportReport) -> ExportReport:
    """The GGUF of the merged model, its Modelfile, and the GGUF read back and compared."""
    from finetune_gui.core.adapters import model_card
    from finetune_gui.core.adapters.gguf_export import export_gguf, verify_gguf
    from finetune_gui.core.adapters.modelfile import modelfile
    from finetune_gui.core.adapters.own_data import own_examples, trained_system_prompt
    from finetune_gui.core.models import materialize, resolve_model

    model_dir = Path(report.output)
    job.progress(f"Writing the GGUF ({job.gguf_type})", 0.8)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(dir=job.folder, prefix=".reference-") as tmp:
        merged_f32 = Path(tmp) / "merged-f32.gguf"
        gguf = export_gguf(
            model_dir,
            job.folder / f"{job.name}-{job.gguf_type}.gguf",
            job.gguf_type,
            job.name,
            notes,
            merged_f32,
        )
        system = trained_system_prompt(job.adapters)
        modelfile_path = job.folder / "Modelfile"
        modelfile_path.write_text(modelfile(model_dir, gguf.name, system=system), encoding="utf-8")
        job.progress("Verifying the GGUF", 0.9)
        checked: GgufCheck = verify_gguf(
            model_dir,
            gguf,
            job.gguf_type,
            merged_f32=merged_f32,
            base_dir=materialize(resolve_model(job.base)).path,
            examples=own_examples(job.adapters),
        )
    return dataclasses.replace(
        report,
        gguf=dataclasses.replace(checked, notes=notes),
        modelfile=str(modelfile_path),
        ollama=f"ollama create {model_card.ollama_name(job.name)} -f Modelfile",
    )


EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("safetensors", "safetensors folder (transformers)", True, "", _nothing_more),
        ExportFormat("gguf", "GGUF + Ollama", True, "model", _write_gguf, options=("--gguf-type",)),
        ExportFormat("adapter", "adapter folder (this kind cannot merge)", False, "", _copy_adapter),
    )
}
FORMATS = tuple(EXPORT_FORMATS)


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
) -> ExportReport:
    """Write the export and return its report: paths and each verification's result and message."""
    from finetune_gui.core.adapters.gguf_types import GGUF_TYPES
    from finetune_gui.core.adapters.merge import COMBINATIONS

    report_progress = progress or (lambda _what, _fraction: None)
    if not adapters:
        raise UserError("Give at least one adapter to export (--adapter PATH[:WEIGHT]).")
    for path, _ in adapters:
        if not Path(path).is_dir():
            raise UserError(f"No adapter folder at {path}. Give the folder that holds adapter_config.json.")
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    if combination not in COMBINATIONS:
        raise UserError(f"Unknown combination {combination!r}; choose one of {', '.join(COMBINATIONS)}.")
    if "--gguf-type" in EXPORT_FORMATS[fmt].options and gguf_type not in GGUF_TYPES:
        raise UserError(f"GGUF type {gguf_type!r} is not offered; choose one of {', '.join(GGUF_TYPES)}.")
    if not EXPORT_FORMATS[fmt].merges and len(adapters) != 1:
        raise UserError(f"--format {fmt} exports one adapter folder; give one --adapter.")
    output = Path(output).expanduser().absolute()
    _check_output(output, overwrite)
    try:
        with staged_folder(output) as staging:
            job = ExportJob(
                base, adapters, staging, output.name, gguf_type, combination, density, report_progress
            )
            report = _write(EXPORT_FORMATS[fmt], job, output)
    except OSError as exc:
        sentence = disk_error_sentence(exc, f"the export in {output}")
        if sentence is None:
            raise
        raise UserError(sentence + " Nothing was left behind.") from None
    report_progress("Done", 1.0)
    return report.moved(staging, output)


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise UserError(f"{output} is a file. Choose a folder for the export.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise UserError(
            f"{output} already holds files; an export there would mix with them. Choose a new folder, or "
            "replace it whole with --overwrite."
        )


def _write(fmt: ExportFormat, job: ExportJob, final: Path) -> ExportReport:
    """Merge (for formats that merge) and verify it, the format's own files, then the model card."""
    from finetune_gui.core.adapters import model_card

    model_dir = job.folder / fmt.model_subfolder if fmt.model_subfolder else job.folder
    report = ExportReport(format=fmt.name, output=str(model_dir), folder=str(job.folder), name=job.name)
    if fmt.merges:
        report = dataclasses.replace(report, merge=_merge_and_verify(job, model_dir))
    report = fmt.write(job, report)
    card = model_card.write(
        job.folder,
        final=final,
        base=job.base,
        adapters=job.adapters,
        combination=job.combination,
        report=report,
    )
    return dataclasses.replace(report, model_card=str(card))


def _merge_and_verify(job: ExportJob, model_dir: Path) -> MergeCheck:
    from finetune_gui.core.adapters.merge import combine_with_peft, merge, verify

    stacked = job.adapters
    with tempfile.TemporaryDirectory() as tmp:
        if job.combination != "cat" and len(job.adapters) > 1:
            # svd/ties/dare build one adapter from the stack, once: it is what gets merged, and the
            # reference the merged model is verified against (not the exact weighted sum).
            job.progress(f"Combining {len(job.adapters)} adapters with '{job.combination}'", 0.0)
            combined = combine_with_peft(job.base, job.adapters, job.combination, Path(tmp), job.density)
            stacked = [(str(combined), 1.0)]
        merge(job.base, stacked, model_dir, progress=job.progress)
        job.progress("Verifying the merged model", 0.7)
        return verify(job.base, stacked, model_dir)
