"""Errors a user can cause, carried as one sentence that says what happened and what to do."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad path, bad file, bad config, a model that does not fit).

    The CLI prints ``str(error)`` on stderr and exits with ``exit_code``; the window shows it as is.
    ``kind`` names the class of failure for the training events (config, data, oom, crash).
    """

    exit_code = 1
    kind = "config"

    def __init__(self, message: str, *, exit_code: int | None = None, kind: str | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
        if kind is not None:
            self.kind = kind


class ConfigError(UserError):
    kind = "config"


class DataError(UserError):
    kind = "data"
    exit_code = 2


class ModelError(UserError):
    kind = "config"


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
