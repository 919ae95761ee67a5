"""What this machine can train on: GPUs with free VRAM, system RAM, bf16 and 4-bit support.

Never crashes on a machine without CUDA, NVML or bitsandbytes: each probe that fails just says no.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import Any

GIB = 1024**3


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    backend: str  # cuda | rocm | mps
    total_gib: float
    free_gib: float
    compute_capability: str | None
    bf16: bool


@dataclass(frozen=True)
class Hardware:
    gpus: list[Gpu] = field(default_factory=list)
    ram_total_gib: float = 0.0
    ram_available_gib: float = 0.0
    cpu_count: int = 1
    bitsandbytes: bool = False
    bitsandbytes_note: str = ""
    torch_version: str | None = None

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    @property
    def best_gpu(self) -> Gpu | None:
        return max(self.gpus, key=lambda g: g.free_gib) if self.gpus else None

    @property
    def bf16(self) -> bool:
        return bool(self.gpus) and all(g.bf16 for g in self.gpus)

    def budget_gib(self) -> float:
        """The memory a run may use: free VRAM of the best GPU, else available RAM."""
        gpu = self.best_gpu
        return gpu.free_gib if gpu else self.ram_available_gib

    def summary(self) -> str:
        gpu = self.best_gpu
        if gpu is None:
            return f"CPU · {self.ram_available_gib:.1f} of {self.ram_total_gib:.1f} GB RAM free"
        return f"{gpu.name} · {gpu.free_gib:.1f} of {gpu.total_gib:.1f} GB free"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"] = runnable_methods(self)
        return data


def _torch_gpus() -> tuple[list[Gpu], str | None]:
    try:
        import torch
    except ImportError:
        return [], None
    gpus: list[Gpu] = []
    try:
        if torch.cuda.is_available():
            backend = "rocm" if getattr(torch.version, "hip", None) else "cuda"
            for i in range(torch.cuda.device_count()):
                props = torch.cuda.get_device_properties(i)
                free, total = torch.cuda.mem_get_info(i)
                cc = f"{props.major}.{props.minor}"
                bf16 = backend == "rocm" or props.major >= 8
                gpus.append(Gpu(i, props.name, backend, total / GIB, free / GIB, cc, bf16))
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            import psutil

            # Apple GPUs share system memory; what is available to the process is the budget.
            vm = psutil.virtual_memory()
            gpus.append(Gpu(0, "Apple GPU (MPS)", "mps", vm.total / GIB, vm.available / GIB, None, True))
    except RuntimeError:  # a broken driver reports as no GPU rather than crashing the app
        return [], torch.__version__
    return gpus, torch.__version__


def _bitsandbytes(gpus: list[Gpu]) -> tuple[bool, str]:
    if importlib.util.find_spec("bitsandbytes") is None:
        return False, "bitsandbytes is not installed: QLoRA is unavailable."
    if any(g.backend == "mps" for g in gpus):
        return False, "bitsandbytes does not support Apple GPUs: QLoRA is unavailable."
    if not gpus:
        return True, "bitsandbytes runs on the CPU here: QLoRA works, slowly."
    return True, "bitsandbytes works: QLoRA and 8-bit optimizers are available."


def detect() -> Hardware:
    import os

    import psutil

    gpus, torch_version = _torch_gpus()
    ok, note = _bitsandbytes(gpus)
    vm = psutil.virtual_memory()
    return Hardware(
        gpus=gpus,
        ram_total_gib=vm.total / GIB,
        ram_available_gib=vm.available / GIB,
        cpu_count=os.cpu_count() or 1,
        bitsandbytes=ok,
        bitsandbytes_note=note,
        torch_version=torch_version,
    )


def runnable_methods(hw: Hardware) -> dict[str, bool]:
    from finetune_gui.core.methods import METHODS

    return {name: (hw.bitsandbytes if m.quantized_base else True) for name, m in METHODS.items()}


def describe(hw: Hardware) -> str:
    lines = []
    if not hw.gpus:
        lines.append(
            "No GPU found. Training runs on the CPU: fine for the demo model, slow for anything larger."
        )
    for g in hw.gpus:
        cc = f", compute {g.compute_capability}" if g.compute_capability else ""
        lines.append(
            f"GPU {g.index}: {g.name} ({g.backend}{cc}) · {g.free_gib:.1f} of {g.total_gib:.1f} GB free · "
            f"bf16 {'yes' if g.bf16 else 'no'}"
        )
    lines.append(
        f"RAM: {hw.ram_available_gib:.1f} of {hw.ram_total_gib:.1f} GB available · {hw.cpu_count} CPU cores"
    )
    lines.append(hw.bitsandbytes_note)
    runnable = [name for name, ok in runnable_methods(hw).items() if ok]
    lines.append("Methods that run here: " + ", ".join(runnable))
    return "\n".join(lines)
