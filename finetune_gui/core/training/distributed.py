"""Several training processes on one machine: who we are, and a loopback-only rendezvous.

The launcher (``launch.py``) starts N copies of the training command with RANK/WORLD_SIZE set and a
rendezvous file. A file rendezvous (``init_method=file://``) never listens on a network interface,
unlike torchrun's TCP store, which binds all interfaces even when told 127.0.0.1. Under a plain
torchrun (e.g. several nodes), the usual env:// variables are used instead.
"""

from __future__ import annotations

import os

RDZV_ENV = "FINETUNE_GUI_RDZV_FILE"


def world() -> tuple[int, int]:
    """(rank, world_size), initialising the process group when launched as one of several."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1
    import torch
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        rdzv = os.environ.get(RDZV_ENV)
        init = f"file://{rdzv}" if rdzv else "env://"
        dist.init_process_group(backend, init_method=init, rank=rank, world_size=world_size)
    return rank, world_size


def barrier() -> None:
    import sys

    if "torch" not in sys.modules:
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any (a stop seen by one rank stops all at the same step)."""
    import torch
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return flag
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    value = torch.tensor([1 if flag else 0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
