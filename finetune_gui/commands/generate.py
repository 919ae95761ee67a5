"""``finetune-gui generate`` (one completion) and ``generate-server`` (the playground's process).

The server loads the base once and answers requests on stdin, one JSON line each, with replies on
stdout (``core/adapters/generate_protocol.py`` holds both); adapters switch on the loaded base without
reloading it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time


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
    from finetune_gui.core.adapters.generate_protocol import (
        AnswerRequest,
        Done,
        GenerateError,
        Ready,
        Reply,
        StopRequest,
        Token,
        parse_request,
    )
    from finetune_gui.core.errors import UserError
    from finetune_gui.core.processes import private_stdout

    out = private_stdout()
    writing = threading.Lock()

    def send(reply: Reply) -> None:
        with writing:
            out.write(reply.to_json() + "\n")
            out.flush()

    try:
        generator = Generator(args.model)
    except UserError as exc:
        send(GenerateError(message=str(exc)))
        return 1
    send(Ready(model=args.model))
    stop = threading.Event()
    requests: list[AnswerRequest | None] = []  # None: stdin closed, the server ends
    arrived = threading.Condition()

    def reader() -> None:
        for line in sys.stdin:
            try:
                request = parse_request(json.loads(line))
            except ValueError:
                continue
            with arrived:
                if isinstance(request, StopRequest):
                    # A stop ends the answer being written and every one still waiting.
                    stop.set()
                    for waiting in requests:
                        if waiting is not None:
                            send(Done(id=waiting.id, stopped=True, end="stopped"))
                    requests.clear()
                elif request is not None:
                    requests.append(request)
                    arrived.notify()
        with arrived:
            requests.append(None)
            arrived.notify()

    threading.Thread(target=reader, daemon=True).start()
    while True:
        with arrived:
            while not requests:
                arrived.wait()
            request = requests.pop(0)
            stop.clear()
        if request is None:
            return 0
        try:
            generator.use_adapters(request.adapters)
            began = time.perf_counter()  # the answer's time, not the adapter switch's
            for piece in generator.stream(
                request.prompt,
                max_new_tokens=request.max_new_tokens,
                temperature=request.temperature,
                top_p=request.top_p,
                stop=stop,
                system=request.system,
            ):
                send(Token(id=request.id, text=piece))
            send(
                Done(
                    id=request.id,
                    stopped=stop.is_set(),
                    end=generator.last_end,
                    tokens=generator.last_tokens,
                    seconds=round(time.perf_counter() - began, 3),
                )
            )
        except UserError as exc:
            send(GenerateError(message=str(exc), id=request.id))
