"""``finetune-gui generate-server --model M``: the playground's generation process.

It loads the base once and answers JSON commands on stdin, one per line:
  {"prompt": "...", "adapters": [["path", 1.0], ...], "max_new_tokens": 128, "temperature": 0.7, "top_p": 0.95,
   "id": "base"}   → {"event": "token", "id": ..., "text": ...}… then {"event": "done", "id": ...}
  {"stop": true}   → ends the answer being generated
Adapters switch on the loaded base without reloading it. Errors are {"event": "error", "message": ...}.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from finetune_gui.core.errors import UserError


def serve(model: str) -> int:
    from finetune_gui.core.generate import Generator
    from finetune_gui.core.stdio import private_stdout

    out = private_stdout()

    def send(**event: Any) -> None:
        out.write(json.dumps(event, ensure_ascii=False) + "\n")
        out.flush()

    try:
        generator = Generator(model)
    except UserError as exc:
        send(event="error", message=str(exc))
        return 1
    send(event="ready", model=model)
    stop = threading.Event()
    requests: list[dict[str, Any]] = []
    arrived = threading.Condition()

    def reader() -> None:
        for line in sys.stdin:
            try:
                command = json.loads(line)
            except ValueError:
                continue
            if command.get("stop"):
                stop.set()
                continue
            with arrived:
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
        if command.get("quit"):
            return 0
        stop.clear()
        ident = command.get("id")
        try:
            generator.use_adapters([(str(p), float(w)) for p, w in command.get("adapters") or []])
            for piece in generator.stream(
                str(command.get("prompt", "")),
                max_new_tokens=int(command.get("max_new_tokens", 128)),
                temperature=float(command.get("temperature", 0.0)),
                top_p=float(command.get("top_p", 0.95)),
                stop=stop,
            ):
                send(event="token", id=ident, text=piece)
            send(event="done", id=ident, stopped=stop.is_set())
        except UserError as exc:
            send(event="error", id=ident, message=str(exc))
