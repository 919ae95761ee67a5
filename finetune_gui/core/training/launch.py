"""``--num-processes N``: start N data-parallel workers of the same training command on this machine.

Each worker gets RANK/WORLD_SIZE/LOCAL_RANK and a rendezvous file (see ``distributed.py``), so nothing
listens on a network interface; gloo is pinned to the loopback device. Control words on our stdin and
SIGINT/SIGTERM are forwarded to every worker, so they all stop at the same step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from finetune_gui.core.processes import self_command
from finetune_gui.core.training.control import STARTED_ENV
from finetune_gui.core.training.distributed import RDZV_ENV


def worker_env(rank: int, world_size: int, rdzv_file: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        GLOO_SOCKET_IFNAME="lo0" if sys.platform == "darwin" else "lo",
        PYTHONUNBUFFERED="1",
    )
    env[RDZV_ENV] = rdzv_file
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // world_size)))
    return env


def launch(child_args: list[str], world_size: int) -> int:
    """Run ``python -m finetune_gui train <child_args>`` as ``world_size`` ranks; rank 0 owns stdout."""
    folder = Path(tempfile.mkdtemp(prefix="finetune-gui-rdzv-"))
    rdzv = str(folder / "rendezvous")
    command = self_command("train", *child_args)
    os.environ.setdefault(STARTED_ENV, str(time.time_ns()))  # every rank: the run's start, not its own
    workers = [
        subprocess.Popen(
            command,
            env=worker_env(rank, world_size, rdzv),
            stdin=subprocess.PIPE,
            stdout=None if rank == 0 else subprocess.DEVNULL,
            text=True,
        )
        for rank in range(world_size)
    ]

    def forward_signal(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    signal.signal(signal.SIGINT, forward_signal)
    signal.signal(signal.SIGTERM, forward_signal)

    def forward_stdin() -> None:
        for line in sys.stdin:
            for worker in workers:
                try:
                    assert worker.stdin is not None  # every worker is started with stdin=PIPE
                    worker.stdin.write(line)
                    worker.stdin.flush()
                except (BrokenPipeError, OSError, ValueError):
                    continue

    if sys.stdin is not None and not sys.stdin.closed:
        threading.Thread(target=forward_stdin, daemon=True).start()
    codes = _wait_all(workers)
    for path in folder.iterdir():
        path.unlink(missing_ok=True)
    folder.rmdir()
    return codes[0] if codes[0] != 0 else next((c for c in codes if c != 0), 0)


def _wait_all(workers: list[subprocess.Popen[str]]) -> list[int]:
    """Wait for every worker; when one fails, the others cannot finish a collective, so end them."""
    failed_at: float | None = None
    while True:
        codes = [w.poll() for w in workers]
        if all(c is not None for c in codes):
            return [int(c) for c in codes if c is not None]
        if failed_at is None and any(c not in (None, 0) for c in codes):
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > 10:
            for worker in workers:
                if worker.poll() is None:
                    worker.terminate()
        time.sleep(0.2)
