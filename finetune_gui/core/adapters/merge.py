"""Merge adapters into a standalone model, tensor by tensor.

``merge`` writes W' = W + Σ wᵢ·sᵢ·BᵢAᵢ for LoRA adapters of any ranks (sᵢ = alpha/r, or alpha/√r for
rsLoRA), exactly, in fp32 and cast once to the base's dtype. A single DoRA adapter merges with its
magnitude rescaling, a single IA3 adapter with its scaling vectors. Prefix, prompt and bottleneck
adapters change activations, not weights, and cannot be merged.

Memory stays near one tensor: each output shard is written as a stream (the safetensors header is
known up front, since a merge never changes a tensor's shape), never as a whole model in memory.
``verify`` then compares the merged model's logits with the adapters applied on the base by PEFT.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_gui.core.adapters.adapter_folder import describe_adapter
from finetune_gui.core.adapters.export_report import MergeCheck
from finetune_gui.core.errors import UserError
from finetune_gui.core.events import Progress
from finetune_gui.core.files import staged_folder
from finetune_gui.core.methods import for_kind

PEFT_PREFIX = "base_model.model."
DTYPE_NAMES = {
    "float32": "F32",
    "float16": "F16",
    "bfloat16": "BF16",
    "float64": "F64",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


@dataclass
class AdapterDelta:
    """One adapter's per-module changes, keyed by the base weight's name (``…q_proj.weight``)."""

    path: str
    kind: str
    weight: float
    lora: dict[str, tuple[Any, Any, float]] = field(default_factory=dict)  # key → (A, B, scale)
    magnitude: dict[str, Any] = field(default_factory=dict)  # DoRA: key → m
    ia3: dict[str, Any] = field(default_factory=dict)  # key → l (broadcasts over the weight)


def parse_adapter_arg(text: str) -> tuple[str, float]:
    """``PATH[:WEIGHT]``; a colon only counts when what follows is a number (Windows paths have colons)."""
    head, sep, tail = text.rpartition(":")
    if sep and head:
        try:
            return head, float(tail)
        except ValueError:
            pass
    return text, 1.0


def _pattern_value(module: str, patterns: dict[str, Any], default: Any) -> Any:
    for pattern, value in (patterns or {}).items():
        if re.fullmatch(f"(.*\\.)?{pattern}", module):
            return value
    return default


def load_delta(path: str | Path, weight: float) -> AdapterDelta:
    from safetensors.torch import load_file

    folder = Path(path)
    kind = describe_adapter(folder)["kind"]
    if not for_kind(kind).merges:
        raise UserError(
            f"{folder} is a {kind} adapter: it changes activations, not weights, so it cannot be merged into the "
            "model. Export it as an adapter folder and load it on the base instead."
        )
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    weights_file = folder / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise UserError(f"{folder} has no adapter_model.safetensors; only safetensors adapters are merged.")
    tensors = load_file(str(weights_file))
    delta = AdapterDelta(str(folder), kind, weight)
    scalings = {k: v for k, v in tensors.items() if k.endswith(".ia3_l")}
    if scalings:  # IA3: one scaling vector per module
        for key, value in scalings.items():
            module = key.removeprefix(PEFT_PREFIX).removesuffix(".ia3_l")
            delta.ia3[f"{module}.weight"] = value.float()
        return delta
    r, alpha = config.get("r", 8), config.get("lora_alpha", 8)
    for key, a in tensors.items():
        if not key.endswith(".lora_A.weight"):
            continue
        module = key.removeprefix(PEFT_PREFIX).removesuffix(".lora_A.weight")
        b = tensors[f"{PEFT_PREFIX}{module}.lora_B.weight"]
        rank = _pattern_value(module, config.get("rank_pattern"), r)
        module_alpha = _pattern_value(module, config.get("alpha_pattern"), alpha)
        scale = module_alpha / math.sqrt(rank) if config.get("use_rslora") else module_alpha / rank
        delta.lora[f"{module}.weight"] = (a.float(), b.float(), scale)
        magnitude = tensors.get(f"{PEFT_PREFIX}{module}.lora_magnitude_vector")
        if magnitude is None:
            magnitude = tensors.get(f"{PEFT_PREFIX}{module}.lora_magnitude_vector.weight")
        if magnitude is not None:
            delta.magnitude[f"{module}.weight"] = magnitude.float()
    if not delta.lora:
        raise UserError(f"{folder} has no LoRA weights (no lora_A/lora_B tensors).")
    return delta


def check_stack(deltas: list[AdapterDelta]) -> None:
    for d in deltas:
        if not for_kind(d.kind).stacks_with_weights and d.weight != 1.0:
            raise UserError(
                f"{d.path} is a {d.kind} adapter, which merges only whole (weight 1), not scaled."
            )
    if len(deltas) > 1:
        odd = [d for d in deltas if not for_kind(d.kind).stacks_with_weights]
        if odd:
            raise UserError(
                f"{odd[0].path} is a {odd[0].kind} adapter; only LoRA adapters combine as a weighted sum of "
                "their changes. Merge it on its own."
            )


def merged_tensor(key: str, tensor: Any, deltas: list[AdapterDelta]) -> Any:
    """The merged value of one base tensor, computed in fp32 and cast back to its dtype once."""
    touched = [d for d in deltas if key in d.lora or key in d.ia3]
    if not touched:
        return tensor
    w = tensor.float()
    for d in touched:
        if key in d.lora:
            a, b, scale = d.lora[key]
            if b.shape[0] != w.shape[0] or a.shape[1] != w.shape[1]:
                raise UserError(
                    f"{d.path} was trained for another base model: its {key} is {b.shape[0]}×{a.shape[1]}, the "
                    f"base's is {w.shape[0]}×{w.shape[1]}. Merge it into the model it was trained on."
                )
            update = w + scale * (b @ a)
            if key in d.magnitude:  # DoRA: rescale each output row to its learned magnitude
                norm = update.norm(p=2, dim=1, keepdim=True)
                w = (d.magnitude[key].view(-1, 1) / norm) * update
            else:
                w = w + d.weight * scale * (b @ a)
        else:
            w = w * d.ia3[key]
    return w.to(tensor.dtype)


CHUNK = 16 * 2**20


def _read_header(handle: Any) -> tuple[dict[str, Any], int]:
    (length,) = struct.unpack("<Q", handle.read(8))
    return json.loads(handle.read(length)), 8 + length


def _write_streaming(source: Path, target: Path, deltas: list[AdapterDelta], used: set[str]) -> None:
    """Copy ``source`` to ``target``, merging the tensors an adapter changes. The file is read with plain
    reads (not a memory map, whose pages would all count as resident): untouched tensors are copied in
    16 MB chunks, and only a changed tensor is held in memory, in fp32, while it is merged."""
    import torch

    changed = {k for d in deltas for k in (*d.lora, *d.ia3)}
    with source.open("rb") as reader, target.open("wb") as out:
        header, data_start = _read_header(reader)
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * ((8 - len(raw) % 8) % 8)  # shapes never change, so the header is known up front
        out.write(struct.pack("<Q", len(raw)))
        out.write(raw)
        tensors = sorted((k, v) for k, v in header.items() if k != "__metadata__")
        for key, spec in sorted(tensors, key=lambda kv: kv[1]["data_offsets"][0]):
            begin, end = spec["data_offsets"]
            reader.seek(data_start + begin)
            if key not in changed:
                remaining = end - begin
                while remaining:
                    chunk = reader.read(min(CHUNK, remaining))
                    out.write(chunk)
                    remaining -= len(chunk)
                continue
            buffer = bytearray(reader.read(end - begin))
            tensor = torch.frombuffer(buffer, dtype=_torch_dtype(spec["dtype"])).reshape(spec["shape"])
            merged = merged_tensor(key, tensor, deltas)
            used.add(key)
            out.write(merged.contiguous().view(-1).view(torch.uint8).numpy().tobytes())


def _torch_dtype(name: str) -> Any:
    import torch

    table = {v: getattr(torch, k) for k, v in DTYPE_NAMES.items()}
    return table[name]


# How several adapters combine: {name: label}. 'cat' is the exact W + Σ wᵢ·ΔWᵢ; the others are PEFT's.
COMBINATIONS = {
    "cat": "exact weighted sum (cat)",
    "svd": "SVD",
    "ties": "TIES",
    "dare_ties": "DARE + TIES",
    "dare_linear": "DARE linear",
    "linear": "linear (equal ranks)",
    "ties_svd": "TIES + SVD",
    "magnitude_prune": "magnitude pruning",
}


def combine_with_peft(
    base: str, adapters: list[tuple[str, float]], combination: str, target: Path, density: float = 0.5
) -> Path:
    """PEFT's other combinations (svd, ties, dare, …) build one new LoRA adapter from the stack; it is
    then merged like any single adapter. ('cat', the exact weighted sum, needs no such step.)"""
    try:
        import torch
        from peft import PeftModel

        from finetune_gui.core.models import load_model, materialize, resolve_model

        model = load_model(materialize(resolve_model(base)), dtype=torch.float32)
        peft = PeftModel.from_pretrained(model, adapters[0][0], adapter_name="a0")
        names = ["a0"]
        for index, (path, _w) in enumerate(adapters[1:], start=1):
            peft.load_adapter(path, adapter_name=f"a{index}")
            names.append(f"a{index}")
        extra = {"density": density} if combination.startswith(("ties", "dare", "magnitude")) else {}
        peft.add_weighted_adapter(
            names, [w for _, w in adapters], "combined", combination_type=combination, **extra
        )
    except ValueError as exc:
        raise UserError(f"The '{combination}' combination cannot combine these adapters: {exc}") from None
    peft.save_pretrained(str(target), selected_adapters=["combined"])
    return target / "combined"


def merge(
    base: str,
    adapters: list[tuple[str, float]],
    output: str | Path,
    *,
    progress: Progress | None = None,
    allow_pickle: bool = False,
) -> Path:
    """Merge ``adapters`` (path, weight) into ``base`` and write a standalone safetensors folder."""
    from finetune_gui.core.models import materialize, resolve_model

    report = progress or (lambda _what, _fraction: None)
    if not adapters:
        raise UserError("Give at least one adapter to merge (--adapter PATH[:WEIGHT]).")
    source = materialize(resolve_model(base, allow_pickle=allow_pickle))
    base_dir = Path(source.path)
    shards = sorted(base_dir.glob("*.safetensors"))
    if not shards:
        raise UserError(
            f"{base_dir} has no safetensors weights to merge into; convert the model to safetensors first."
        )
    fused = [path for path, _ in adapters if adapts_parameters(path)]
    deltas = [] if fused else [load_delta(path, weight) for path, weight in adapters]
    check_stack(deltas)
    output = Path(output).expanduser()
    if output.exists() and any(output.iterdir()):
        raise UserError(
            f"{output} already exists and is not empty. Choose a new folder for the merged model."
        )
    used: set[str] = set()
    with staged_folder(output) as staging:
        if fused:
            report("Merging the adapters (experts included) in memory", 0.0)
            _merge_with_peft(base_dir, adapters, staging)
        for index, shard in enumerate(shards if not fused else []):
            report(f"Merging {shard.name}", index / len(shards))
            _write_streaming(shard, staging / shard.name, deltas, used)
        expected = {k for d in deltas for k in (*d.lora, *d.ia3)}
        missing = sorted(expected - used)
        if missing:
            raise UserError(
                f"{len(missing)} of the adapter's layers are not in the base model (e.g. {missing[0]}): the adapter "
                "was trained for another base. Merge it into the model it was trained on."
            )
        _copy_side_files(base_dir, [Path(p) for p, _ in adapters], staging)
    report("Merged", 1.0)
    return output


def adapts_parameters(path: str | Path) -> bool:
    """A LoRA adapter that also adapts bare parameters (``target_parameters``): a mixture-of-experts
    model's fused experts, which are no Linear layers, so their change is no B·A of a stored tensor."""
    try:
        config = json.loads((Path(path) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(config.get("target_parameters"))


def _merge_with_peft(base_dir: Path, adapters: list[tuple[str, float]], target: Path) -> None:
    """Adapters of fused experts merge through PEFT, in memory: transformers fuses the per-expert weights
    on load and splits them again on save (the saved names are the base's), and PEFT knows the fused
    layout of each family's experts. Each adapter's weight scales its B matrices (ΔW = s·B·A is linear
    in B). This holds the whole model in fp32, unlike the streaming merge."""
    import torch
    from peft import PeftModel

    from finetune_gui.core.models import load_model, materialize, resolve_model

    source = materialize(resolve_model(str(base_dir)))
    model = load_model(source, dtype=torch.float32)
    names = [f"a{i}" for i in range(len(adapters))]
    peft = PeftModel.from_pretrained(model, adapters[0][0], adapter_name=names[0])
    for name, (path, _weight) in zip(names[1:], adapters[1:], strict=True):
        peft.load_adapter(path, adapter_name=name)
    _scale_b(peft, names, [w for _, w in adapters])
    merged = peft.merge_and_unload(adapter_names=names)
    dtype = getattr(merged.config, "dtype", None)
    if isinstance(dtype, torch.dtype) and dtype != torch.float32:
        merged = merged.to(dtype)
    merged.save_pretrained(str(target))


MODEL_FILES = ("config.json", "generation_config.json", "model.safetensors.index.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "added_tokens.json",
)


def _copy_side_files(base_dir: Path, adapter_dirs: list[Path], target: Path) -> None:
    """The base's config; the tokenizer and chat template the first adapter was trained with (saved
    beside it by this app, and possibly a fallback template), else the base's."""
    for name in MODEL_FILES:
        if (base_dir / name).is_file():
            shutil.copy2(base_dir / name, target / name)
    tokenizer_home = adapter_dirs[0] if (adapter_dirs[0] / "tokenizer_config.json").is_file() else base_dir
    for name in TOKENIZER_FILES:
        if (tokenizer_home / name).is_file():
            shutil.copy2(tokenizer_home / name, target / name)


# ------------------------------------------------------------------------------------------- verify


VERIFY_PROMPT = [{"role": "user", "content": "Write one sentence about the sea."}]


def reference_model(base: str, adapters: list[tuple[str, float]]) -> Any:
    """The adapters applied on the base by PEFT itself, at their weights: one adapter at weight 1 as it
    is, anything else (a stack, or one adapter scaled) as PEFT's weighted 'cat' combination. A scaled
    single adapter was once compared at full weight, so every right 0.7 merge said "NOT verified"."""
    import torch
    from peft import PeftModel

    from finetune_gui.core.models import load_model, materialize, resolve_model

    model = load_model(materialize(resolve_model(base)), dtype=torch.float32)
    if len(adapters) == 1 and adapters[0][1] == 1.0:
        return PeftModel.from_pretrained(model, adapters[0][0]).eval()
    names = [f"a{i}" for i in range(len(adapters))]
    peft = PeftModel.from_pretrained(model, adapters[0][0], adapter_name=names[0])
    for name, (path, _weight) in zip(names[1:], adapters[1:], strict=True):
        peft.load_adapter(path, adapter_name=name)
    if any(adapts_parameters(path) for path, _ in adapters):
        # PEFT cannot combine adapters of bare parameters: all stay active (their changes add up in the
        # forward pass, not through a merge), each scaled by its weight.
        _scale_b(peft, names, [w for _, w in adapters])
        peft.base_model.set_adapter(names)
        return peft.eval()
    peft.add_weighted_adapter(names, [w for _, w in adapters], "stack", combination_type="cat")
    peft.set_adapter("stack")
    return peft.eval()


def _scale_b(peft: Any, names: list[str], weights: list[float]) -> None:
    """Scale each named adapter's B matrices by its weight: ΔW = s·B·A is linear in B."""
    import torch

    with torch.no_grad():
        for param_name, param in peft.named_parameters():
            for name, weight in zip(names, weights, strict=True):
                if f"lora_B.{name}." in param_name and weight != 1.0:
                    param.mul_(weight)


def verify(base: str, adapters: list[tuple[str, float]], merged: str | Path) -> MergeCheck:
    """Logits of a fixed prompt through adapter-on-base (PEFT) and through the merged model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(merged))
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(VERIFY_PROMPT, tokenize=False, add_generation_prompt=True)
    else:
        text = VERIFY_PROMPT[0]["content"]
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    merged_model = AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32).eval()
    reference = reference_model(base, adapters)
    with torch.no_grad():
        a = reference(ids).logits.float()
        b = merged_model(ids).logits.float()
    diff = (a - b).abs().max().item()
    agreement = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
    dtype = str(getattr(merged_model.config, "dtype", "float32"))
    half = any(k in dtype for k in ("16",))
    ok = agreement >= 0.98 if half else diff <= 1e-3
    return MergeCheck(
        verified=ok,
        message=f"verified: max difference {diff:.1e}, top token agrees on {agreement:.0%} of positions"
        if ok
        else f"NOT verified: max difference {diff:.2e}, top token agrees on {agreement:.0%} of positions",
        max_abs_diff=diff,
        top1_agreement=agreement,
        tokens=int(ids.shape[1]),
    )


def export_adapter_folder(base: str, adapter: str | Path, output: str | Path) -> Path:
    """For adapters that cannot be merged (prefix, prompt, bottleneck): a copy of the adapter folder with
    a note of its base model (the model card, written beside, shows how to use it)."""
    adapter, output = Path(adapter), Path(output).expanduser()
    describe_adapter(adapter)  # refuses a folder that is no adapter, in one sentence
    shutil.copytree(adapter, output, dirs_exist_ok=True)
    (output / "BASE_MODEL.txt").write_text(f"{base}\n", encoding="utf-8")
    return output
