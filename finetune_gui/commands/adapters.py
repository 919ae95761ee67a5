"""``finetune-gui adapters list``: the adapter library."""

from __future__ import annotations

import argparse
import json

from finetune_gui.commands import usage_of


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("adapters", help="the adapter library")
    group.set_defaults(handler=usage_of(group))
    commands = group.add_subparsers(title="adapters commands", metavar="COMMAND")
    p = commands.add_parser("list", help="every adapter in the library")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=list_adapters)


def list_adapters(args: argparse.Namespace) -> int:
    from finetune_gui.core.adapters.library import AdapterLibrary

    entries = AdapterLibrary().entries()
    if args.json:
        print(json.dumps({"adapters": entries}, indent=2))
        return 0
    if not entries:
        print("No adapters yet. Every completed run adds its adapter; `finetune-gui train` makes one.")
    for e in entries:
        loss = f"loss {e['final_loss']:.3f}" if isinstance(e.get("final_loss"), float) else ""
        rank = f"r={e['rank']}" if e.get("rank") else ""
        print(f"{e['name']:<32} {e['kind']:<10} {rank:<6} {loss}  {e['path']}")
    return 0
