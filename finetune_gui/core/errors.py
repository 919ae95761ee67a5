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
