"""Model sources: a local HF folder, a .gguf file, an entry of the HF cache, or a hub id.

``resolve_model`` turns what the user typed into a ``ModelSource`` (failing fast with one sentence);
``inspect_model`` reads the facts the wizard shows from the config alone, never the weights;
``load_tokenizer``/``load_model`` do the heavy loading for training, generation and merging.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import ModelError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # folder | gguf | cache | hub
    path: str  # the folder holding config.json (or the .gguf's folder)
    gguf_file: str | None = None  # file name inside ``path`` for GGUF models
    spec: str = ""  # what the user gave

    @property
    def load_kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


@dataclass(frozen=True)
class ModelInfo:
    architecture: str
    model_type: str
    parameters: int
    context_length: int | None
    has_chat_template: bool
    vocab_size: int | None
    hidden_size: int | None
    num_layers: int | None
    torch_dtype: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def is_hub_id(spec: str) -> bool:
    """owner/name (e.g. HuggingFaceTB/SmolLM2-135M-Instruct) that is no path on this machine and no .gguf
    file: the window and the commands read a model the user typed by this one rule."""
    spec = spec.strip()
    if not _HUB_ID.match(spec) or spec.lower().endswith(".gguf"):
        return False
    return not Path(spec).expanduser().exists()


def _check_weights(folder: Path, allow_pickle: bool, require_weights: bool) -> None:
    names = [p.name for p in folder.iterdir()]
    safetensors = [n for n in names if n.endswith(".safetensors") or n == "model.safetensors.index.json"]
    pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
    if safetensors or not require_weights:
        return
    if pickles and not allow_pickle:
        raise ModelError(
            f"{folder} has only pickle weights ({pickles[0]}), which can run code when loaded. "
            "Convert them to safetensors, or allow pickle weights (allow_pickle_weights: true) if you trust the source."
        )
    if not pickles:
        raise ModelError(
            f"{folder} has a config.json but no weights (*.safetensors). Copy the weight files there."
        )


def resolve_model(
    spec: str,
    *,
    allow_pickle: bool = False,
    require_weights: bool = True,
    download: bool = True,
    tqdm_class: Any = None,
) -> ModelSource:
    """Find the model the user named, or raise ``ModelError`` with a sentence saying what to do."""
    spec = str(spec).strip()
    if not spec:
        raise ModelError("No model given. Pick the demo model, a model folder, a .gguf file or a hub id.")
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            ggufs = sorted(path.glob("*.gguf"))
            if ggufs:
                return ModelSource("gguf", str(path.resolve()), ggufs[0].name, spec)
            raise ModelError(
                f"{path} has no config.json, so it is not a Hugging Face model folder. "
                "Choose the folder that holds config.json and the *.safetensors files, or a .gguf file."
            )
        _check_weights(path, allow_pickle, require_weights)
        return ModelSource("folder", str(path.resolve()), None, spec)
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            _check_gguf_magic(path)
            return ModelSource("gguf", str(path.parent.resolve()), path.name, spec)
        if path.name == "config.json":
            return resolve_model(str(path.parent), allow_pickle=allow_pickle, require_weights=require_weights)
        raise ModelError(f"{path} is a file but not a .gguf model. Choose a model folder or a .gguf file.")
    if not is_hub_id(spec):
        raise ModelError(
            f"No model at {spec}. Check the path, or give a hub id like HuggingFaceTB/SmolLM2-135M-Instruct."
        )
    cached = _from_hf_cache(spec)
    if cached is not None:
        _check_weights(Path(cached), allow_pickle, require_weights)
        return ModelSource("cache", cached, None, spec)
    if hub_offline() or not download:
        raise ModelError(
            f"There is no folder {spec}, and as a hub id it is not in the Hugging Face cache while the app is "
            "offline (HF_HUB_OFFLINE=1). Check the path, or connect and unset HF_HUB_OFFLINE to download it."
        )
    return ModelSource(
        "hub", download_model(spec, allow_pickle=allow_pickle, tqdm_class=tqdm_class), None, spec
    )


def _check_gguf_magic(path: Path) -> None:
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelError(
                f"{path} is not a GGUF file (it lacks the GGUF header). It may be damaged or mis-named."
            )


def _from_hf_cache(repo_id: str) -> str | None:
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, local_files_only=True)
    except Exception:  # not cached, or a partial snapshot: treat as absent and let the caller decide
        return None
    return folder if (Path(folder) / "config.json").is_file() else None


def download_model(repo_id: str, *, allow_pickle: bool = False, tqdm_class: Any = None) -> str:
    """Download a hub model (safetensors, config, tokenizer) into the HF cache with progress."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    if allow_pickle:
        patterns.append("*.bin")
    try:
        return snapshot_download(repo_id, allow_patterns=patterns, tqdm_class=tqdm_class)
    except Exception as exc:
        raise ModelError(f"Could not download {repo_id}: {exc}. Check the id and your connection.") from None


def hf_cache_models() -> list[dict[str, Any]]:
    """Causal-LM-looking repos in the Hugging Face cache, for the wizard's model list."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache folder yet, or an unreadable one: nothing to offer
        return []
    found = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        for rev in repo.revisions:
            if any(f.file_name == "config.json" for f in rev.files):
                found.append({"id": repo.repo_id, "path": str(rev.snapshot_path), "size": repo.size_on_disk})
                break
    return sorted(found, key=lambda r: r["id"])


def load_config(source: ModelSource, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            source.path, trust_remote_code=trust_remote_code, **source.load_kwargs
        )
    except ValueError as exc:
        raise ModelError(f"Could not read the model's config in {source.path}: {exc}") from None
    except OSError as exc:
        raise ModelError(f"Could not read the model's config in {source.path}: {exc}") from None


def count_parameters(config: Any, trust_remote_code: bool = False) -> int:
    """Exact parameter count: build the model on the meta device (no memory, no weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    # Tied weights (embeddings = lm_head) are one tensor; parameters() already yields it once.
    return sum(p.numel() for p in model.parameters())


def _has_chat_template(source: ModelSource) -> bool:
    folder = Path(source.path)
    if source.gguf_file:
        try:
            from gguf import GGUFReader

            reader = GGUFReader(str(folder / source.gguf_file))
            return "tokenizer.chat_template" in reader.fields
        except Exception:  # an unreadable GGUF header just means we cannot tell
            return False
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    import json

    try:
        data = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(data.get("chat_template"))


def inspect_model(source: ModelSource, trust_remote_code: bool = False) -> ModelInfo:
    config = load_config(source, trust_remote_code)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    architectures = getattr(config, "architectures", None) or [config.__class__.__name__]
    context = None
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        context = getattr(text_config, attr, None)
        if context:
            break
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return ModelInfo(
        architecture=architectures[0],
        model_type=getattr(config, "model_type", "unknown"),
        parameters=count_parameters(config, trust_remote_code),
        context_length=context,
        has_chat_template=_has_chat_template(source),
        vocab_size=getattr(text_config, "vocab_size", None),
        hidden_size=getattr(text_config, "hidden_size", None),
        num_layers=getattr(text_config, "num_hidden_layers", None),
        torch_dtype=str(dtype).replace("torch.", "") if dtype is not None else None,
    )


def load_tokenizer(source: ModelSource, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source.path, trust_remote_code=trust_remote_code, **source.load_kwargs
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"Could not load the tokenizer of {source.spec or source.path}: {exc}") from None
    if tokenizer.pad_token is None:
        # Padding positions are masked by the attention mask and -100 labels, so any token will do.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_model(
    source: ModelSource, *, dtype: Any = None, trust_remote_code: bool = False, **kwargs: Any
) -> Any:
    """Load weights for training or generation. GGUF files are dequantized (trainable, saveable)."""
    from transformers import AutoModelForCausalLM

    extra: dict[str, Any] = dict(source.load_kwargs)
    if source.gguf_file and "quantization_config" not in kwargs:
        from transformers import GgufConfig

        # Without dequantize=True the model can be neither trained nor saved.
        extra["quantization_config"] = GgufConfig(dequantize=True)
    if dtype is not None:
        extra["dtype"] = dtype
    try:
        return AutoModelForCausalLM.from_pretrained(
            source.path, trust_remote_code=trust_remote_code, **extra, **kwargs
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"Could not load the model {source.spec or source.path}: {exc}") from None


def convert_gguf(gguf: Path, target: Path, progress: Any = None) -> Path:
    """Dequantize a GGUF into a safetensors folder at ``target``, atomically (staging folder + rename).

    Loading a GGUF takes tens of seconds and cannot be 4-bit quantized for QLoRA, so training and
    generation use this converted copy; it reloads in about a second.
    """
    import shutil
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    report = progress or (lambda _what, _fraction: None)
    report("Reading the tokenizer", 0.05)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    report("Dequantizing the weights", 0.35)
    # dequantize=True: otherwise the model can be neither trained nor saved. Kept in fp32 so merges and
    # their verification are exact.
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True)
    )
    report("Writing the safetensors folder", 0.85)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.config.name_or_path = target.name
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / READY_MARKER).write_text(f"converted from {gguf}\n", encoding="utf-8")
        if target.exists():  # an unfinished folder from an interrupted conversion
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if (target / READY_MARKER).is_file():  # another process finished first
            return target
        raise
    report("Ready", 1.0)
    return target


READY_MARKER = ".finetune-gui-ready"


def materialize(source: ModelSource, progress: Any = None) -> ModelSource:
    """A GGUF source becomes its converted safetensors folder (converted once, cached); others pass."""
    if not source.gguf_file:
        return source
    import hashlib

    from finetune_gui.core.paths import cache_dir

    gguf = Path(source.path) / source.gguf_file
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    target = cache_dir() / "gguf-models" / f"{gguf.stem}-{key}"
    if not (target / READY_MARKER).is_file():
        convert_gguf(gguf, target, progress)
    return ModelSource("folder", str(target), None, source.spec)


class _NullWriter:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def json_progress_class(stream: Any) -> Any:
    """A tqdm class that reports progress as JSON lines on ``stream`` (the window reads them)."""
    import json

    from tqdm.auto import tqdm

    class JsonProgress(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = _NullWriter()  # the bar itself draws nowhere; the JSON lines say it all
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            result = super().update(n)
            if self.total:
                stream.write(
                    json.dumps(
                        {
                            "event": "progress",
                            "fraction": min(1.0, self.n / self.total),
                            "what": str(self.desc or "Downloading"),
                        }
                    )
                    + "\n"
                )
                stream.flush()
            return result

    return JsonProgress
