"""``finetune-gui generate`` (one completion) and ``generate-server`` (the playground's process).

The server loads the base once and answers JSON commands on stdin, one per line:
  {"prompt": "...", "adapters": [["path", 1.0], ...], "max_new_tokens": 128, "temperature": 0.7, "top_p": 0.95,
   "system": "..." (optional), "id": "base"}   → {"event": "token", "id": ..., "text": ...}… then {"event": "done", "id": ..., "stopped": bool}
  {"stop": true}   → ends the answer being generated, and every answer still waiting
Each answer ends with {"event": "done", "id": ..., "stopped": bool, "end": "end" | "length" | "stopped",
"tokens": N, "seconds": S} ("length": cut at max_new_tokens; tokens and seconds: what it generated, and
how long that took, for a tokens/s figure; absent on answers stopped before they started).
Adapters switch on the loaded base without reloading it. Errors are {"event": "error", "message": ...}.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="one completion from a model, with adapters if given")
    p.add_argument("--model", required=True, help="the base model (folder, .gguf or hub id)")
    p.add_argument(
        "--adapter", action="append", default=[], metavar="PATH[:WEIGHT]", help="an adapter to apply"
    )
    p.add_argument("--prompt", required=True, help="the user's message (the chat template is applied)")
    p.add_argument(
        "--system",
        help="the system prompt (default: the one the adapter's run trained with, else the template's)",
    )
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 for greedy decoding")
    p.set_defaults(handler=generate)

    p = sub.add_parser(
        "generate-server", help="the playground's generation process (JSON lines on stdin/stdout)"
    )
    p.add_argument("--model", required=True)
    p.set_defaults(handler=serve)


def generate(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapters.generate import Generator
    from finetune_gui.core.adapters.merge import parse_adapter_arg
    from finetune_gui.core.adapters.own_data import trained_system_prompt
    from finetune_gui.core.errors import note_line

    adapters = [parse_adapter_arg(a) for a in args.adapter]
    system = args.system if args.system is not None else trained_system_prompt(adapters)
    if args.system is None and system:
        print(
            note_line(f"asking with the system prompt the adapter trained with: {system}"),
            file=sys.stderr,
        )
    generator = Generator(args.model)
    if adapters:
        generator.use_adapters(adapters)
    for piece in generator.stream(
        args.prompt, max_new_tokens=args.max_new_tokens, temperature=args.temperature, system=system or None
    ):
        print(piece, end="", flush=True)
    print()
    return 0


def serve(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapters.generate import Generator
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.processes import private_stdout

    out = private_stdout()
    writing = threading.Lock()

    def send(**event: Any) -> None:
        with writing:
            out.write(json.dumps(event, ensure_ascii=False) + "\n")
            out.flush()

    try:
        generator = Generator(args.model)
    except UserError as exc:
        send(event="error", message=str(exc))
        return 1
    send(event="ready", model=args.model)
    stop = threading.Event()
    requests: list[dict[str, Any]] = []
    arrived = threading.Condition()

    def reader() -> None:
        for line in sys.stdin:
            try:
                command = json.loads(line)
            except ValueError:
                continue
            with arrived:
                if isinstance(command, dict) and command.get("stop"):
                    # A stop ends the answer being written and every one still waiting.
                    stop.set()
                    for waiting in requests:
                        send(event="done", id=waiting.get("id"), stopped=True, end="stopped")
                    requests.clear()
                    continue
                requests.append(command)
                arrived.notify()
        with arrived:
            requests.append({"quit": True})
            arrived.notify()

    threading.Thread(target=reader, daemon=True).start()
    while True:
        with arrived:
            while not requests:
                arrived.wait()
            command = requests.pop(0)
            stop.clear()
        if command.get("quit"):
            return 0
        ident = command.get("id")
        try:
            generator.use_adapters([(str(p), float(w)) for p, w in command.get("adapters") or []])
            began = time.perf_counter()  # the answer's time, not the adapter switch's
            for piece in generator.stream(
                str(command.get("prompt", "")),
                max_new_tokens=int(command.get("max_new_tokens", 128)),
                temperature=float(command.get("temperature", 0.0)),
                top_p=float(command.get("top_p", 0.95)),
                stop=stop,
                system=str(command.get("system") or "") or None,
            ):
                send(event="token", id=ident, text=piece)
            send(
                event="done",
                id=ident,
                stopped=stop.is_set(),
                end=generator.last_end,
                tokens=generator.last_tokens,
                seconds=round(time.perf_counter() - began, 3),
            )
        except UserError as exc:
            send(event="error", id=ident, message=str(exc))
