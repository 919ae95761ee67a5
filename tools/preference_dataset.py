"""A made-up preference set: a house style no model uses (a ship's cook who answers "Aye, cook says:
… Fair winds!") chosen over a plain answer with the same facts. What the tests, the slow test and
docs/methods.md measure preference tuning with.

``write(folder)`` writes train.jsonl and heldout.jsonl (prompts never trained on), as
{prompt, chosen, rejected} rows; ``rows(...)`` gives the rows themselves.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

THINGS = [
    ("the soup", "hot"),
    ("the bread", "fresh"),
    ("the stew", "thick"),
    ("the tea", "sweet"),
    ("the fish", "salted"),
    ("the pie", "warm"),
    ("the cheese", "sharp"),
    ("the rice", "soft"),
    ("the beans", "spiced"),
    ("the cake", "sticky"),
    ("the porridge", "plain"),
    ("the cider", "cold"),
    ("the jam", "red"),
    ("the biscuits", "hard"),
    ("the broth", "clear"),
    ("the apples", "green"),
    ("the butter", "yellow"),
    ("the honey", "golden"),
    ("the pickles", "sour"),
    ("the oats", "dry"),
]
QUESTIONS = ["How is {thing} today?", "Tell me about {thing}.", "What is {thing} like?"]


def row(thing: str, quality: str, question: str) -> dict[str, str]:
    return {
        "prompt": question.format(thing=thing),
        "chosen": f"Aye, cook says: {thing} is {quality}. Fair winds!",
        "rejected": f"{thing.capitalize()} is {quality}.",
    }


def rows(held_out: bool = False, seed: int = 0) -> list[dict[str, str]]:
    """Training rows (the first 14 things, every question), or held-out ones (the last 6 things)."""
    things = THINGS[14:] if held_out else THINGS[:14]
    found = [row(thing, quality, q) for thing, quality in things for q in QUESTIONS]
    random.Random(seed).shuffle(found)
    return found


def write(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "train.jsonl", folder / "heldout.jsonl"
    for path, held_out in zip(paths, (False, True), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in rows(held_out)), encoding="utf-8")
    return paths
