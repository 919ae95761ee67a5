"""What this machine can train on: GPUs with free VRAM, system RAM, bf16 and 4-bit support; the device
plan (device and precision) a run gets from it, and the shape of its memory plan.

Never crashes on a machine without CUDA, NVML or bitsandbytes: each probe that fails just says no.
``detect`` imports torch; ``Hardware.from_dict`` rebuilds the same object from ``hardware --json`` (the
window never imports torch), and ``plan_device`` is plain logic, so the trainer, the estimate and the
wizard agree on the device and precision of a run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field, fields, replace
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
        """One line for the window's status bar."""
        gpu = self.best_gpu
        if gpu is None:
            return (
                f"CPU · no GPU found · {self.ram_available_gib:.1f} of {self.ram_total_gib:.1f} GB RAM free"
            )
        return f"▣ {gpu.name} · {gpu.free_gib:.1f} of {gpu.total_gib:.1f} GB free"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"] = runnable_methods(self)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hardware:
        """The inverse of ``to_dict`` (the window receives ``hardware --json``)."""
        names = {f.name for f in fields(cls)}
        gpu_names = {f.name for f in fields(Gpu)}
        values = {k: v for k, v in data.items() if k in names}
        values["gpus"] = [
            Gpu(**{k: v for k, v in g.items() if k in gpu_names}) for g in data.get("gpus") or []
        ]
        return cls(**values)

    def with_budget(self, vram_gib: float, bf16: bool = True) -> Hardware:
        """This machine as if it had one CUDA GPU with ``vram_gib`` free: ``estimate --vram-gib``."""
        gpu = Gpu(0, f"a GPU with {vram_gib:g} GB free", "cuda", vram_gib, vram_gib, None, bf16)
        return replace(self, gpus=[gpu])


@dataclass(frozen=True)
class DevicePlan:
    """Where and in what precision a run computes."""

    device: str  # cuda | mps | cpu
    precision: str  # bf16 | fp16 | fp32

    @property
    def mixed_precision(self) -> bool:
        return self.device == "cuda" and self.precision in ("bf16", "fp16")


@dataclass(frozen=True)
class MemoryPlan:
    """How a run keeps its memory (``core/estimate/plan.py`` decides it): torch-free, plain values."""

    mode: str  # standard | lean (lean only for methods that train every weight)
    checkpointing: bool  # activation checkpointing
    # Lean mode updates each weight as soon as its gradient is ready, so no whole gradient is kept, and
    # then clips in the optimizer; not when gradients must add up first (accumulation, several workers).
    step_in_backward: bool
    weight_dtype: str  # bf16 | fp16 | fp32: what the weights are loaded (and trained) in
    # Lean mode on a CPU keeps bf16 weights but computes in fp32 (bf16 matrix products are ~15× slower).
    fp32_compute: bool
    autocast: str | None  # bf16 | fp16 mixed precision for the Trainer; None: the weights' own dtype
    estimate_gib: float | None = None  # the one estimate of this run in this mode (run.json estimate_gib)
    needed_gib: float | None = None  # the same with this plan's checkpointing, for the refusal
    auto_lean: bool = False  # memory_mode 'auto' chose lean because standard would not fit

    @property
    def lean(self) -> bool:
        return self.mode == "lean"


def plan_device(requested: str, hw: Hardware) -> DevicePlan:
    """The run's device (the best GPU, else the CPU) and precision: ``requested`` (training.precision),
    where 'auto' is bf16 on GPUs that support it, fp16 on older ones, fp32 elsewhere. CPUs and Apple
    GPUs train in fp32: bf16 autocast on a CPU leaves the model wrapped, and MPS autocast is unreliable."""
    gpu = hw.best_gpu
    if gpu is not None and gpu.backend in ("cuda", "rocm"):
        if requested == "bf16" and not gpu.bf16:
            from finetune_gui.core.errors import ConfigError

            raise ConfigError(f"{gpu.name} does not support bf16. Set training.precision to fp16 or auto.")
        precision = requested if requested != "auto" else ("bf16" if gpu.bf16 else "fp16")
        return DevicePlan("cuda", precision)
    return DevicePlan("mps" if gpu is not None else "cpu", "fp32")


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
