"""What a path the user gives is: an adapter folder, a model (a folder with config.json, a .gguf file or a
folder holding one), a dataset (a data file, or a folder of them), a hub id, or none of these. The window
routes a dropped or typed path by this one rule, the same the commands load it by."""

from __future__ import annotations

from pathlib import Path

from finetune_gui.core.data.readers import SUFFIXES
from finetune_gui.core.models import is_hub_id
from finetune_gui.core.tuners import BOTTLENECK_CONFIG

ADAPTER = "adapter"
MODEL = "model"
DATASET = "dataset"
HUB_ID = "hub id"


def path_kind(spec: str) -> str:
    """'adapter', 'model', 'dataset', 'hub id', or '' for anything else (a missing path, a .docx)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        if (path / "adapter_config.json").is_file() or (path / BOTTLENECK_CONFIG).is_file():
            return ADAPTER
        if (path / "config.json").is_file() or any(path.glob("*.gguf")):
            return MODEL
        return DATASET  # a folder of data files (its files are checked when it is read)
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return MODEL
        return DATASET if path.suffix.lower() in SUFFIXES else ""
    return HUB_ID if is_hub_id(spec) else ""
