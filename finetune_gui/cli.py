"""The command line: ``finetune-gui`` opens the window; subcommands run the same core headless.

Only argparse is imported at module level, so ``finetune-gui --help`` stays fast; each command
(``finetune_gui/commands/``) imports what it needs. Errors a user can cause print one sentence on
stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from finetune_gui import __version__


def build_parser() -> argparse.ArgumentParser:
    from finetune_gui import commands
    from finetune_gui.commands import window

    parser = argparse.ArgumentParser(
        prog="finetune-gui",
        description="Fine-tune an open language model on your own data. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"finetune-gui {__version__}")
    parser.add_argument(
        "--smoke-test", action="store_true", help="open the window, print start-up timing as JSON, and exit"
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    parser.set_defaults(handler=window.run)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in commands.modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from finetune_gui.core.errors import UserError, error_line
    from finetune_gui.core.processes import share_cores

    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    share_cores(words[0] if words else "")

    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        if args.debug:
            raise
        print(error_line(str(exc)), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(error_line("interrupted."), file=sys.stderr)
        return 130
