"""How a run fails: one sentence and its kind for every way it can end badly, recorded without ever
raising again (a full disk must not turn the failure report into a second failure).

Kinds (the ``failed`` event's ``kind``): config, data, oom, disk, diverged, crash.
"""

from __future__ import annotations

import errno
import signal
import traceback
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import FailureKind, UserError
from finetune_gui.core.files import disk_error_sentence


class Diverged(UserError):
    """The loss or the weights became NaN or infinite."""

    kind = FailureKind.DIVERGED


def check_weights(model: Any, step: int, what_was_kept: str) -> None:
    """Raise Diverged when a trained weight is NaN or infinite: such weights are never checkpointed,
    saved or registered. ``what_was_kept`` says what that means for this moment of the run."""
    import torch

    for parameter in model.parameters():
        if parameter.requires_grad and not bool(torch.isfinite(parameter).all()):
            raise Diverged(
                f"The trained weights became NaN or infinite by step {step}; {what_was_kept}. Lower the learning "
                "rate (a tenth is a good first try) and start again."
            )


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        return isinstance(exc, torch.OutOfMemoryError)
    except ImportError:
        return False


def disk_failure(exc: BaseException, step: int, last_checkpoint: Path | None) -> str | None:
    """A sentence for a write that failed for lack of space or permission, or None."""
    while exc is not None and not isinstance(exc, OSError):  # libraries wrap the OSError
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    if not isinstance(exc, OSError) or exc.errno not in (
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
    ):
        return None
    sentence = disk_error_sentence(exc, f"the run's files at step {step}") or str(exc)
    if last_checkpoint is not None:
        sentence += f" The last good checkpoint is {last_checkpoint.name}: resume from it once there is room."
    return sentence


def write_error_log(path: Path) -> bool:
    """The traceback of the exception being handled, for 'crash' failures; False when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc(), encoding="utf-8")
        return True
    except OSError:
        return False


def exit_code_sentence(code: int | None) -> str:
    """What a training process's exit code means, for a process that ended without saying why (None: a
    process this one did not start, whose code is unknown)."""
    if code is None:
        return (
            "The training process ended without finishing: it was killed (most often because the system ran "
            "out of memory) or the computer went down. Resume it from the last checkpoint."
        )
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == getattr(signal, "SIGKILL", 9):
            return (
                f"The training process was killed ({name}). Most often the system ran out of memory and ended "
                "it: try a smaller batch or sequence length, or resume from the last checkpoint."
            )
        if -code == getattr(signal, "SIGSEGV", 11):
            return f"The training process crashed in native code ({name}). Resume from the last checkpoint."
        return f"The training process was ended by {name}. Resume it from the last checkpoint."
    if code == 137:
        return exit_code_sentence(-9)
    return f"The training process ended unexpectedly (exit code {code}). Resume it from the last checkpoint."


def safely(action: Any) -> None:
    """Run a bookkeeping write of the failure path; a second failure there changes nothing."""
    try:
        action()
    except OSError:
        pass
