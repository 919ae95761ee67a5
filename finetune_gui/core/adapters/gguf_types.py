"""GGUF types a merged model can be exported as: what each costs in size and quality, and the block
quantizers (q4_0, q4_1, q5_0, q5_1) that the ``gguf`` package provides itself.

llama.cpp's converter writes f32, f16, bf16 and q8_0. The 4- and 5-bit block types are written here:
the converter's f32 file is read back and every 2-D weight (linear layers and embeddings) is quantized
in blocks of 32 along its rows, 1-D tensors (norms) stay f32. K-quants (q4_k_m …) need llama.cpp's
``llama-quantize``, used when it is on the PATH. The quality of each type on a given model is measured
by quantizing its weights in memory and comparing perplexity on an ordinary paragraph
(``quality_report``): small models lose much more than large ones (on the 135 M demo model q4_0 raised
perplexity ×1.76, q4_1 only ×1.09).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import UserError


@dataclass(frozen=True)
class GgufType:
    name: str
    bits: float  # bits per weight of the quantized tensors, block scales included
    note: str
    converter: bool = False  # written by llama.cpp's converter directly
    block: bool = False  # quantized here with the gguf package
    k_quant: bool = False  # needs llama-quantize


GGUF_TYPES: dict[str, GgufType] = {
    t.name: t
    for t in [
        GgufType("f16", 16, "half precision: the reference, twice the size of q8_0", converter=True),
        GgufType("bf16", 16, "bfloat16: as f16, for models trained in bf16", converter=True),
        GgufType("q8_0", 8.5, "8-bit: indistinguishable from f16 in practice", converter=True),
        GgufType("q5_1", 6.0, "5-bit with offsets", block=True),
        GgufType("q5_0", 5.5, "5-bit: close to f16 on most models", block=True),
        GgufType("q4_1", 5.0, "4-bit with offsets: a quarter of f16's size", block=True),
        GgufType("q4_0", 4.5, "4-bit: the smallest; small models lose a lot", block=True),
        GgufType("q6_k", 6.56, "6-bit k-quant (needs llama.cpp's llama-quantize)", k_quant=True),
        GgufType("q5_k_m", 5.69, "5-bit k-quant (needs llama.cpp's llama-quantize)", k_quant=True),
        GgufType(
            "q4_k_m", 4.85, "4-bit k-quant, the usual recommendation (needs llama-quantize)", k_quant=True
        ),
        GgufType("f32", 32, "full precision: the largest", converter=True),
    ]
}
CLOSE = 1.15  # a type "stays close" when it raises perplexity by at most this factor
PARAGRAPH = (
    "The museum opens at nine in the morning and closes at six in the evening. Visitors can buy tickets at "
    "the entrance or online, and children under twelve enter for free. The first floor holds paintings from "
    "the eighteenth century, while the second floor is given to photography and modern sculpture. A small "
    "cafe near the garden serves coffee, tea and sandwiches, and guided tours leave from the main hall every "
    "hour. Please keep your bags in the lockers and do not touch the works of art."
)


def llama_quantize() -> str | None:
    return shutil.which("llama-quantize")


def available(name: str) -> bool:
    return name in GGUF_TYPES and (not GGUF_TYPES[name].k_quant or llama_quantize() is not None)


def _ggml(name: str) -> Any:
    from gguf import GGMLQuantizationType

    return getattr(GGMLQuantizationType, name.upper())


def quantizable(shape: tuple[int, ...]) -> bool:
    """2-D weights whose rows split into whole blocks of 32."""
    return len(shape) == 2 and shape[-1] % 32 == 0


def requantize(source: Path, target: Path, name: str, model_name: str) -> Path:
    """Write ``target``: the f32 GGUF ``source`` with its 2-D weights quantized as ``name`` (a block type)."""
    import numpy as np
    from gguf import GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType, quants

    qtype = _ggml(name)
    reader = GGUFReader(str(source))
    arch = str(reader.fields["general.architecture"].contents())
    writer = GGUFWriter(str(target), arch)
    for key, entry in reader.fields.items():
        if key.startswith("GGUF.") or key in ("general.architecture", "general.name", "general.file_type"):
            continue
        main = entry.types[0]
        sub = entry.types[-1] if main == GGUFValueType.ARRAY else None
        writer.add_key_value(key, entry.contents(), main, sub)
    writer.add_name(model_name)
    writer.add_file_type(getattr(LlamaFileType, f"MOSTLY_{name.upper()}"))
    for tensor in reader.tensors:
        data = np.asarray(tensor.data, dtype=np.float32)
        if quantizable(data.shape):
            writer.add_tensor(tensor.name, quants.quantize(data, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(tensor.name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return target


def k_quantize(source: Path, target: Path, name: str) -> Path:
    import subprocess

    program = llama_quantize()
    if program is None:
        raise UserError(
            f"{name} needs llama.cpp's llama-quantize, which is not installed here. Choose q4_1 or q5_0, "
            "or install llama.cpp and try again."
        )
    result = subprocess.run([program, str(source), str(target), name.upper()], capture_output=True, text=True)
    if result.returncode != 0 or not target.is_file():
        last = [line for line in result.stderr.splitlines() if line.strip()][-1:] or ["no message"]
        raise UserError(f"llama-quantize could not write {name}: {last[0]}")
    return target


def size_estimate(state: dict[str, Any], name: str) -> int:
    """Bytes of a GGUF of this type, from the model's tensors (2-D weights quantized, the rest f32). A
    tensor shared by two names (tied embeddings) is written once, so it is counted once."""
    bits = GGUF_TYPES[name].bits
    total = 0.0
    seen: set[int] = set()
    for tensor in state.values():
        pointer = tensor.untyped_storage().data_ptr() if hasattr(tensor, "untyped_storage") else id(tensor)
        if pointer in seen:
            continue
        seen.add(pointer)
        shape = tuple(tensor.shape)
        count = tensor.numel()
        total += count * bits / 8 if quantizable(shape) or name in ("f16", "bf16", "f32") else count * 4
    return int(total)


def perplexity(model: Any, tokenizer: Any, text: str = PARAGRAPH) -> tuple[float, Any]:
    """Perplexity of ``text`` and the model's top next-token at each position."""
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits.float()
    loss = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:])
    return float(torch.exp(loss)), logits[0, :-1].argmax(-1)


def quality_report(
    model_dir: str | Path, names: list[str] | None = None, adapters: list[tuple[str, float]] | None = None
) -> dict[str, Any]:
    """For each available type: its estimated size and the perplexity it gives this model (weights
    quantized and dequantized in memory), relative to the model's own; with ``adapters``, on the merged
    fine-tune, and how much of the fine-tune's change each type keeps (``kept``). The smallest type that
    stays within ×1.15 and keeps at least 80% of the fine-tune is recommended."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune_gui.core.adapters.gguf_check import keeps

    model_dir = Path(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    original = _merged_state(base, adapters) if adapters else base
    if adapters:
        model.load_state_dict(original)
    reference, _ = perplexity(model, tokenizer)
    report: dict[str, Any] = {"reference_perplexity": reference, "types": {}, "fine_tune": bool(adapters)}
    for name in names or [n for n in GGUF_TYPES if available(n) and not GGUF_TYPES[n].k_quant]:
        kind = GGUF_TYPES[name]
        entry: dict[str, Any] = {"size_bytes": size_estimate(original, name), "note": kind.note}
        rounded = _rounded(original, name)
        if rounded is not None:
            model.load_state_dict({**original, **rounded})
            value, _ = perplexity(model, tokenizer)
            model.load_state_dict(original)
            entry["perplexity_ratio"] = round(value / reference, 3)
            if adapters:
                entry["kept"] = _kept(base, original, rounded)
        else:
            entry["perplexity_ratio"] = 1.0
            if adapters:
                entry["kept"] = 1.0
        entry["close"] = entry["perplexity_ratio"] <= CLOSE and keeps(entry.get("kept"))
        report["types"][name] = entry
    close = [(e["size_bytes"], n) for n, e in report["types"].items() if e["close"]]
    report["recommended"] = min(close)[1] if close else "q8_0"
    return report


def _rounded(state: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The tensors a GGUF of this type rounds, as they read back; None for f32 (nothing rounded)."""
    import numpy as np
    import torch
    from gguf import quants

    kind = GGUF_TYPES[name]
    if kind.block or name == "q8_0":
        qtype = _ggml(name)
        return {
            key: torch.from_numpy(
                quants.dequantize(quants.quantize(t.numpy().astype(np.float32), qtype), qtype)
            )
            for key, t in state.items()
            if quantizable(tuple(t.shape))
        }
    if name in ("f16", "bf16"):
        dtype = torch.float16 if name == "f16" else torch.bfloat16
        return {k: v.to(dtype).float() for k, v in state.items()}
    return None


def _merged_state(base: dict[str, Any], adapters: list[tuple[str, float]]) -> dict[str, Any]:
    from finetune_gui.core.adapters.merge import check_stack, load_delta, merged_tensor

    deltas = [load_delta(path, weight) for path, weight in adapters]
    check_stack(deltas)
    return {key: merged_tensor(key, tensor, deltas) for key, tensor in base.items()}


def _kept(base: dict[str, Any], merged: dict[str, Any], rounded: dict[str, Any]) -> float:
    """The share of the fine-tune's change that the rounded weights keep (gguf_check's measure)."""
    num = den = 0.0
    for key, value in merged.items():
        delta = (value - base[key]).double()
        size = float((delta * delta).sum())
        if size == 0.0:
            continue
        after = rounded.get(key, value).double() - base[key].double()
        num += float((after * delta).sum())
        den += size
    return round(num / den, 3) if den else 1.0


def options_for(
    model: str, names: list[str] | None = None, adapters: list[tuple[str, float]] | None = None
) -> dict[str, Any]:
    """``quality_report`` for a model the user names (a folder, a .gguf, a hub id), with the adapters
    about to be merged, measured once and kept in the cache: the export dialog asks it before every
    export."""
    import hashlib
    import json

    from finetune_gui.core.files import write_json
    from finetune_gui.core.models import materialize, resolve_model
    from finetune_gui.core.paths import cache_dir

    for name in names or []:
        if name not in GGUF_TYPES:
            raise UserError(f"GGUF type {name!r} is not offered; choose from {', '.join(GGUF_TYPES)}.")
    folder = Path(materialize(resolve_model(model)).path)
    stamp = max((p.stat().st_mtime_ns for p in folder.glob("*.safetensors")), default=0)
    for path, _weight in adapters or []:
        weights = Path(path) / "adapter_model.safetensors"
        stamp = max(stamp, weights.stat().st_mtime_ns if weights.is_file() else 0)
    stack = ",".join(f"{Path(p).resolve()}:{w:g}" for p, w in adapters or [])
    key = hashlib.sha1(f"{folder.resolve()}|{stamp}|{','.join(names or [])}|{stack}".encode()).hexdigest()[
        :16
    ]
    cached = cache_dir() / "gguf-options" / f"{key}.json"
    if cached.is_file():
        try:
            return json.loads(cached.read_text(encoding="utf-8"))
        except ValueError:
            pass
    report = quality_report(folder, names, adapters)
    report["model"] = str(folder)
    write_json(cached, report)
    return report
