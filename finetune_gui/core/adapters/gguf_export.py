"""Write a merged model as GGUF, and verify the file written.

f16, bf16, q8_0 and f32 come from llama.cpp's converter (PyPI); the 4- and 5-bit block types and the
k-quants from its f32 or f16 file (``gguf_types.py``). Every tensor is read back and compared with the
converter's f32 file of the merged model, and how much of the fine-tune's change it keeps; where
transformers reads the architecture's GGUF, its answers are compared with the merged model's too. The
Modelfile beside it is ``modelfile.py``'s.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from finetune_gui.core.adapters.export_report import GgufCheck
from finetune_gui.core.adapters.gguf_types import (
    CLOSE,
    GGUF_TYPES,
    k_quantize,
    llama_quantize,
    perplexity,
    requantize,
)
from finetune_gui.core.errors import UserError, parse_notes

# What a GGUF of each kind may lose against the merged model and still count as written right.
TOLERANCE = {"float": 1.02, "q8_0": 1.05, "5-bit": 1.35, "4-bit": 2.2}


def export_gguf(
    model_dir: str | Path,
    out_file: str | Path,
    outtype: str = "f16",
    name: str = "",
    notes: list[str] | None = None,
    f32_reference: Path | None = None,
) -> Path:
    """Write ``out_file`` as ``outtype``, its ``general.name`` set to ``name``; what the converter noted
    for the user is added to ``notes``. With ``f32_reference``, the converter's f32 file of the same
    model is left there too (the block types are quantized from it anyway), for ``verify_gguf``."""
    if outtype not in GGUF_TYPES:
        raise UserError(f"GGUF type {outtype!r} is not offered; choose one of {', '.join(GGUF_TYPES)}.")
    kind = GGUF_TYPES[outtype]
    if kind.k_quant and llama_quantize() is None:
        raise UserError(
            f"{outtype} needs llama.cpp's llama-quantize, which is not installed here. Choose q4_1 or q5_0 "
            "(written by this app), or install llama.cpp and try again."
        )
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    name = name or out_file.stem
    partial = out_file.with_name(out_file.name + ".partial")
    said = notes if notes is not None else []
    if kind.converter:
        said += _convert(model_dir, partial, outtype, name)
    else:
        intermediate = out_file.with_name(out_file.name + ".source.partial")
        try:
            said += _convert(model_dir, intermediate, "f32" if kind.block else "f16", name)
            if kind.block:
                requantize(intermediate, partial, outtype, name)
                if f32_reference is not None:
                    intermediate.replace(f32_reference)
            else:
                k_quantize(intermediate, partial, outtype)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            intermediate.unlink(missing_ok=True)
    partial.replace(out_file)
    if f32_reference is not None and not f32_reference.is_file():
        write_f32(model_dir, f32_reference, name)
    return out_file


CACHED_BASE_BYTES = 2 * 2**30  # bases up to this much safetensors keep their f32 reference in the cache


def base_f32(base_dir: Path, scratch: Path) -> Path:
    """The converter's f32 GGUF of a base model, for the check of how much of a fine-tune an export
    keeps. Small bases (the demo model: 0.5 GB as f32) keep it in the cache, keyed by their weights'
    path and times, so a second export of the same base does not convert it again; larger ones write it
    to ``scratch`` for this export only (an 8 B base would be 32 GB)."""
    import hashlib

    from finetune_gui.core.paths import cache_dir

    weights = sorted(base_dir.glob("*.safetensors"))
    size = sum(w.stat().st_size for w in weights)
    if not weights or size > CACHED_BASE_BYTES:
        return write_f32(base_dir, scratch / "base-f32.gguf")
    stamp = "|".join(f"{w.name}:{w.stat().st_mtime_ns}:{w.stat().st_size}" for w in weights)
    key = hashlib.sha1(f"{base_dir.resolve()}|{stamp}".encode()).hexdigest()[:16]
    cached = cache_dir() / "gguf-reference" / f"{key}-f32.gguf"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial")
        try:
            write_f32(base_dir, partial).replace(cached)
        finally:
            partial.unlink(missing_ok=True)
    return cached


def write_f32(model_dir: str | Path, target: Path, name: str = "") -> Path:
    """The converter's f32 GGUF of ``model_dir``: the reference a written GGUF is read back against."""
    _convert(model_dir, target, "f32", name or Path(model_dir).name)
    return target


def _convert(model_dir: str | Path, target: Path, outtype: str, name: str) -> list[str]:
    from finetune_gui.core.processes import self_command

    result = subprocess.run(
        self_command(
            "convert-gguf",
            str(model_dir),
            "--outtype",
            outtype,
            "--outfile",
            str(target),
            "--model-name",
            name,
        ),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not target.is_file():
        target.unlink(missing_ok=True)
        last = [line for line in result.stderr.splitlines() if line.strip()][-1:] or ["no message"]
        if "tokenizer.model" in last[0] and not (Path(model_dir) / "tokenizer.model").is_file():
            raise UserError(
                f"llama.cpp's converter writes this model's architecture only with a SentencePiece "
                f"tokenizer.model, and {model_dir} has none (its tokenizer is tokenizer.json only): export "
                "safetensors instead, or put the original model's tokenizer.model beside the adapter."
            )
        raise UserError(f"The GGUF converter could not convert {model_dir}: {last[0]}")
    return parse_notes(result.stderr)


def verify_gguf(
    model_dir: str | Path,
    gguf_file: str | Path,
    outtype: str = "f16",
    *,
    merged_f32: Path | None = None,
    base_dir: str | Path | None = None,
    examples: list[Any] | None = None,
) -> GgufCheck:
    """Is the written GGUF the fine-tuned model? Two levels, each named in the verdict:

    - tensors (any architecture): every tensor read back with the ``gguf`` package and compared with the
      converter's f32 file of the merged model (``merged_f32``, written here when not given), and, when
      ``base_dir`` is given, how much of the fine-tune's change to the weights it keeps;
    - answers (where transformers reads this architecture's GGUF): perplexity and the top next token on
      an ordinary paragraph, against the merged model; with the run's own ``examples`` and the base, the
      top next token on their answers, against the merged model and against the base.

    A type that snaps the fine-tune back toward the base is NOT verified, whatever perplexity says."""
    import tempfile

    from finetune_gui.core.adapters.gguf_check import KEEPS_AT, compare

    model_dir, gguf_file = Path(model_dir), Path(gguf_file)
    with tempfile.TemporaryDirectory(dir=gguf_file.parent, prefix=".verify-") as tmp:
        merged_reference = merged_f32 or write_f32(model_dir, Path(tmp) / "merged-f32.gguf")
        base_reference = base_f32(Path(base_dir), Path(tmp)) if base_dir else None
        tensors = compare(gguf_file, merged_reference, base_reference, _family(outtype))
    answers = _answers(model_dir, gguf_file, outtype, examples or [], base_dir)
    verified = tensors.matches and tensors.keeps_fine_tune and answers.get("verified", True)
    parts = [f"tensors: {tensors.sentence(outtype)}"]
    if not tensors.keeps_fine_tune:
        kept = tensors.kept or 0.0
        what = (
            f"keeps only {max(kept, 0.0):.0%} of your fine-tune's changes on this model (its rounding snaps "
            "them back toward the base)"
            if kept < KEEPS_AT
            else f"moves the weights {kept:.0%} as far as your fine-tune did (its rounding distorts it)"
        )
        parts.insert(0, f"{outtype} {what}: export q8_0 or f16 instead")
    parts.append(answers["sentence"])
    return GgufCheck(
        path=str(gguf_file),
        type=outtype,
        verified=verified,
        message=f"{'verified' if verified else 'NOT verified'}: " + "; ".join(parts),
        tensors=tensors,
        kept=tensors.kept,
        answers_checked="verified" in answers,
        size_bytes=gguf_file.stat().st_size,
        **{k: v for k, v in answers.items() if k not in ("sentence", "verified")},
    )


def _answers(
    model_dir: Path, gguf_file: Path, outtype: str, examples: list[Any], base_dir: str | Path | None
) -> dict[str, Any]:
    """Load the GGUF with transformers (which dequantizes it) and compare it with the merged model on an
    ordinary paragraph: perplexity, and the top next token at every position. Where transformers cannot
    read this architecture's GGUF the answers are not checked, and the verdict says so."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    try:
        exported = AutoModelForCausalLM.from_pretrained(
            str(gguf_file.parent), gguf_file=gguf_file.name, quantization_config=GgufConfig(dequantize=True)
        ).eval()
    except Exception:  # any reader failure means the same: no runtime for this architecture here
        return {
            "sentence": f"answers not checked: no GGUF runtime for {_architecture(gguf_file)} here "
            "(transformers cannot read it; llama.cpp can)"
        }
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    reference = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    base_ppl, base_top = perplexity(reference, tokenizer)
    ppl, top = perplexity(exported, tokenizer)
    agreement = (base_top == top).float().mean().item()
    ratio = ppl / base_ppl
    ok = ratio <= TOLERANCE[_family(outtype)]
    closeness = "" if ratio <= CLOSE else " (a large loss for this model: a larger type stays closer)"
    result: dict[str, Any] = {
        "perplexity": round(ppl, 3),
        "reference_perplexity": round(base_ppl, 3),
        "perplexity_ratio": round(ratio, 3),
        "top1_agreement": agreement,
        "positions": int(top.shape[0]),
    }
    sentence = (
        f"answers: perplexity on an ordinary paragraph {ppl:.2f} against {base_ppl:.2f} for the merged model "
        f"(×{ratio:.2f}){closeness}, top next token agrees on {agreement:.0%} of {int(top.shape[0])} positions"
    )
    if examples and base_dir:
        from finetune_gui.core.adapters.own_data import agreement, answer_tokens
        from finetune_gui.core.models import load_model, materialize, resolve_model

        base = load_model(materialize(resolve_model(str(base_dir))), dtype=torch.float32).eval()
        merged_top, exported_top, base_top_own = answer_tokens(
            [reference, exported, base], tokenizer, examples
        )
        own, like_base = agreement(exported_top, merged_top), agreement(exported_top, base_top_own)
        fine_tune_shows = agreement(base_top_own, merged_top) < 0.98
        result.update(own_agreement=own, own_base_agreement=like_base, own_examples=len(examples))
        sentence += (
            f"; on the answers of {len(examples)} of your run's own examples its top next token is the merged "
            f"model's at {own:.0%} of the tokens and the base model's at {like_base:.0%}"
        )
        # The fine-tune shows where the base and the merged model differ: an export that answers there
        # more like the base than like the fine-tune has lost it, whatever it reads elsewhere.
        if fine_tune_shows and like_base >= own + 0.1:
            ok = False
            sentence += ": it answers like the base, not like your fine-tune"
    result["verified"] = ok
    result["sentence"] = sentence
    return result


def _architecture(gguf_file: Path) -> str:
    from gguf import GGUFReader

    field = GGUFReader(str(gguf_file)).fields.get("general.architecture")
    return str(field.contents()) if field is not None else "this architecture"


def _family(outtype: str) -> str:
    if outtype in ("f16", "bf16", "f32"):
        return "float"
    if outtype.startswith("q8"):
        return "q8_0"
    return "5-bit" if outtype.startswith(("q5", "q6")) else "4-bit"
