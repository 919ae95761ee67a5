"""Every command of ``finetune-gui``: argparse and printing, one module per command or group.

Each module's ``register(subparsers)`` adds its parser and sets ``handler`` to a function of the parsed
arguments that returns the exit code. Handlers import the core lazily, so ``--help`` stays fast. The core
below never parses arguments or prints; errors a user can cause reach ``cli.main`` as ``UserError``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import ModuleType

Handler = Callable[[argparse.Namespace], int]


def modules() -> list[ModuleType]:
    from finetune_gui.commands import (
        adapters,
        data,
        estimate,
        generate,
        hardware,
        merge,
        models,
        train,
    )

    return [hardware, models, train, estimate, data, generate, merge, adapters]


def usage_of(parser: argparse.ArgumentParser) -> Handler:
    """For a command group named without its subcommand: print the group's help, exit 2."""

    def handler(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return handler
