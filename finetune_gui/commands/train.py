"""``finetune-gui train``: load the config, choose the event sink and control, and run the recipe (or
several workers of it with ``--num-processes``)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train headless from a run config (YAML)")
    p.add_argument("config", help="the run config, e.g. run.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    p.add_argument("--events", choices=["jsonl"], help="write machine-readable events to stdout")
    p.add_argument(
        "--num-processes", type=int, default=1, metavar="N", help="data-parallel workers on this machine"
    )
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks")
    p.set_defaults(handler=run)


def _quiet_libraries() -> None:
    """Library chatter goes to stderr at warning level; our events and progress bar say what matters."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*past_key_values.*")
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


def run(args: argparse.Namespace) -> int:
    from finetune_gui.core.config import RunConfig
    from finetune_gui.core.errors import ConfigError

    if args.num_processes < 1:
        raise ConfigError("--num-processes must be 1 or more.")
    config = RunConfig.load(args.config, args.set)
    if args.num_processes > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        from finetune_gui.core.training.launch import launch

        child = [args.config, *[f"--set={item}" for item in args.set]]
        if args.resume:
            child.append("--resume")
        if args.events:
            child += ["--events", args.events]
        return launch(child, args.num_processes)

    from finetune_gui.core.processes import private_stdout
    from finetune_gui.core.training.control import RunControl
    from finetune_gui.core.training.recipe import run_training
    from finetune_gui.core.training.sinks import JsonlSink, ProgressBarSink

    control = RunControl()
    control.install_signal_handlers()
    if args.events == "jsonl":
        sink = JsonlSink(private_stdout())
        control.listen_to_stdin()
    else:
        sink = ProgressBarSink(sys.stderr)
    _quiet_libraries()
    return run_training(
        config, sink=sink, control=control, resume=args.resume, debug=getattr(args, "debug", False)
    )
