"""Errors a user can cause, carried as one sentence that says what happened and what to do."""

from __future__ import annotations

from enum import Enum


class FailureKind(str, Enum):
    """How a run or command failed: the ``failed`` event's and run.json's ``error_kind`` (the value is the
    wire word), and the exit code the command ends with."""

    CONFIG = "config"
    DATA = "data"
    OOM = "oom"
    DISK = "disk"
    DIVERGED = "diverged"
    CRASH = "crash"

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self]

    def __str__(self) -> str:  # the wire word in f-strings and JSON alike
        return self.value


# What scripts around the commands branch on; 2 is also what `data inspect` exits with for unusable data.
EXIT_CODES = {
    FailureKind.CONFIG: 1,
    FailureKind.CRASH: 1,
    FailureKind.DATA: 2,
    FailureKind.OOM: 3,
    FailureKind.DIVERGED: 5,
    FailureKind.DISK: 6,
}


class UserError(Exception):
    """A problem the user can fix (bad path, bad file, bad config, a model that does not fit).

    The CLI prints ``str(error)`` on stderr and exits with ``exit_code``; the window shows it as is.
    ``kind`` names the class of failure for the training events; the exit code follows from it.
    """

    kind: FailureKind = FailureKind.CONFIG

    def __init__(self, message: str, *, kind: FailureKind | None = None, exit_code: int | None = None):
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self._exit_code = exit_code  # only where a command's own contract names another code

    @property
    def exit_code(self) -> int:
        return self._exit_code if self._exit_code is not None else self.kind.exit_code


class ConfigError(UserError):
    kind = FailureKind.CONFIG


class DataError(UserError):
    kind = FailureKind.DATA


class ModelError(UserError):
    kind = FailureKind.CONFIG


# How a command says a sentence on stderr, and how the window (or a parent command) reads it back: the
# one place the prefix is written and parsed.
PREFIX = "finetune-gui: "
NOTE_PREFIX = PREFIX + "note: "


def error_line(sentence: str) -> str:
    """``finetune-gui: <sentence>``: the one line a failed command ends with."""
    return PREFIX + sentence


def note_line(sentence: str) -> str:
    """``finetune-gui: note: <sentence>``: something the user should know, the command went on."""
    return NOTE_PREFIX + sentence


def parse_error(lines: list[str]) -> str:
    """The last error sentence among a command's stderr lines without its prefix, else the last line."""
    kept = [line.strip() for line in lines if line.strip()]
    for line in reversed(kept):
        if line.startswith(PREFIX) and not line.startswith(NOTE_PREFIX):
            return line[len(PREFIX) :]
    return kept[-1] if kept else ""


def parse_notes(text: str) -> list[str]:
    """Every note sentence a command printed, in order, without the prefix."""
    return [line[len(NOTE_PREFIX) :] for line in text.splitlines() if line.startswith(NOTE_PREFIX)]
