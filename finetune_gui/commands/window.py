"""``finetune-gui`` with no command: the window; ``--smoke-test`` opens it, reports start-up time, exits."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from finetune_gui.gui.app import run_app

    return run_app(smoke_test=args.smoke_test)
