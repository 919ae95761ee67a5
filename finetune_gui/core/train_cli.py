"""``finetune-gui train``: load the config, set up events and control, and run the recipe (or the launcher)."""

from __future__ import annotations

import argparse
import os
import warnings


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


def run_train_command(args: argparse.Namespace) -> int:
    from finetune_gui.core.config import RunConfig

    if args.num_processes < 1:
        from finetune_gui.core.errors import ConfigError

        raise ConfigError("--num-processes must be 1 or more.")
    config = RunConfig.load(args.config, args.set)
    if args.num_processes > 1 and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        from finetune_gui.core.launch import launch

        child = [args.config, *[f"--set={item}" for item in args.set]]
        if args.resume:
            child.append("--resume")
        if args.events:
            child += ["--events", args.events]
        return launch(child, args.num_processes)

    from finetune_gui.core.control import RunControl
    from finetune_gui.core.sinks import JsonlSink, ProgressBarSink
    from finetune_gui.core.stdio import private_stdout
    from finetune_gui.core.training import run_training

    control = RunControl()
    control.install_signal_handlers()
    if args.events == "jsonl":
        sink = JsonlSink(private_stdout())
        control.listen_to_stdin()
    else:
        sink = ProgressBarSink()
    _quiet_libraries()
    return run_training(
        config, sink=sink, control=control, resume=args.resume, debug=getattr(args, "debug", False)
    )
