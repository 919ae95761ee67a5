"""Memory readings for events and run.json: CUDA allocator figures on GPUs, process RSS on CPUs."""

from __future__ import annotations

import sys

from finetune_gui.core.hardware import GIB


def current(device: str) -> dict[str, float]:
    if device == "cuda":
        import torch

        return {
            "allocated_gib": round(torch.cuda.memory_allocated() / GIB, 3),
            "reserved_gib": round(torch.cuda.memory_reserved() / GIB, 3),
            "peak_gib": round(torch.cuda.max_memory_allocated() / GIB, 3),
        }
    import psutil

    return {
        "rss_gib": round(psutil.Process().memory_info().rss / GIB, 3),
        "peak_gib": round(peak_gib(device), 3),
    }


def peak_gib(device: str) -> float:
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / GIB
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / GIB if sys.platform == "darwin" else peak * 1024 / GIB


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in (
        "finetune-gui",
        "torch",
        "transformers",
        "peft",
        "trl",
        "datasets",
        "accelerate",
        "bitsandbytes",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
