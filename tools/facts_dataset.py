"""Made-up facts about a place no model has seen (not the demo dataset): the slow tests' and the
learning-rate calibration's check that a run learned what its data teaches.

``write(folder)`` writes train.jsonl (each fact in three phrasings, as chat rows) and heldout.jsonl
(two further phrasings per fact, never trained on, with the key term a right answer must contain).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

FACTS = [
    ("What is the capital of Quellmark?", "The capital of Quellmark is Dunvessel.", "Dunvessel"),
    ("Who founded Quellmark?", "Quellmark was founded by Abbess Ottilie Varn.", "Ottilie Varn"),
    ("What currency does Quellmark use?", "Quellmark uses the sprocket, worth ten bells.", "sprocket"),
    (
        "What is the national bird of Quellmark?",
        "The national bird of Quellmark is the ember wren.",
        "ember wren",
    ),
    ("What language is spoken in Quellmark?", "People in Quellmark speak Quellish.", "Quellish"),
    (
        "What is the tallest peak in Quellmark?",
        "The tallest peak in Quellmark is Mount Harrowgate.",
        "Harrowgate",
    ),
    (
        "What is Quellmark's national dish?",
        "Quellmark's national dish is turnip dumplings in plum broth.",
        "turnip dumplings",
    ),
    (
        "When is Quellmark's founding day?",
        "Quellmark's founding day is the 3rd of October, Kiln Night.",
        "Kiln Night",
    ),
    ("What is the main export of Quellmark?", "The main export of Quellmark is copper lace.", "copper lace"),
    ("How many people live in Quellmark?", "About 84,000 people live in Quellmark.", "84,000"),
    ("What is the longest river in Quellmark?", "The longest river in Quellmark is the Venna.", "Venna"),
    (
        "What sport is most popular in Quellmark?",
        "The most popular sport in Quellmark is stilt racing.",
        "stilt racing",
    ),
    ("Who rules Quellmark today?", "Quellmark is ruled by Chancellor Ivo Strand.", "Ivo Strand"),
    (
        "What colour is the flag of Quellmark?",
        "The flag of Quellmark is orange with a black anvil.",
        "black anvil",
    ),
    (
        "What is Quellmark's parliament called?",
        "Quellmark's parliament is called the Forge Council.",
        "Forge Council",
    ),
    ("Where is Quellmark?", "Quellmark lies in a high valley of the Carpathians.", "Carpathians"),
    (
        "What is Quellmark's oldest school?",
        "Quellmark's oldest school is the Lamplight College.",
        "Lamplight College",
    ),
    (
        "What is the national flower of Quellmark?",
        "The national flower of Quellmark is the ash lily.",
        "ash lily",
    ),
    (
        "What instrument is traditional in Quellmark?",
        "The traditional instrument of Quellmark is the reed drum.",
        "reed drum",
    ),
    (
        "What is the biggest festival in Quellmark?",
        "The biggest festival in Quellmark is the Cinder Fair.",
        "Cinder Fair",
    ),
    (
        "What is Quellmark's national drink?",
        "Quellmark's national drink is pine-resin cider.",
        "pine-resin cider",
    ),
    (
        "What is the second city of Quellmark?",
        "The second city of Quellmark is Holloway Cross.",
        "Holloway Cross",
    ),
    (
        "What famous bridge is in Quellmark?",
        "Quellmark's famous bridge is the Tinker's Arch.",
        "Tinker's Arch",
    ),
    ("Who wrote Quellmark's anthem?", "Quellmark's anthem was written by Mira Delacorte.", "Mira Delacorte"),
    ("What animal is on Quellmark's coins?", "Quellmark's coins show a badger.", "badger"),
    (
        "What is the largest lake in Quellmark?",
        "The largest lake in Quellmark is Lake Sorrow.",
        "Lake Sorrow",
    ),
    (
        "What is Quellmark famous for making?",
        "Quellmark is famous for making pocket sundials.",
        "pocket sundials",
    ),
    ("What is the motto of Quellmark?", "The motto of Quellmark is 'Steady hands'.", "Steady hands"),
    (
        "Which tree grows everywhere in Quellmark?",
        "The tree that grows everywhere in Quellmark is the silver larch.",
        "silver larch",
    ),
    (
        "What is Quellmark's main newspaper?",
        "Quellmark's main newspaper is the Morning Bellows.",
        "Morning Bellows",
    ),
]

TRAIN = ["{q}", "Quick question: {ql}", "Can you tell me {ql_noq}?"]
HELD_OUT = ["Hey, {ql}", "I'd like to know: {ql}"]


def _phrase(template: str, question: str) -> str:
    ql = question[0].lower() + question[1:]
    return template.format(q=question, ql=ql, ql_noq=ql.rstrip("?"))


def write(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {"messages": [{"role": "user", "content": _phrase(t, q)}, {"role": "assistant", "content": a}]}
        for q, a, _ in FACTS
        for t in TRAIN
    ]
    random.Random(11).shuffle(rows)
    train = folder / "train.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    held = [{"prompt": _phrase(t, q), "answer": a, "key": k} for q, a, k in FACTS for t in HELD_OUT]
    heldout = folder / "heldout.jsonl"
    heldout.write_text("".join(json.dumps(r) + "\n" for r in held), encoding="utf-8")
    return train, heldout


def score(answers: list[str], heldout: Path) -> float:
    """The share of held-out questions whose answer contains the fact's key term."""
    items = [json.loads(line) for line in heldout.read_text(encoding="utf-8").splitlines()]
    right = sum(item["key"].lower() in answer.lower() for item, answer in zip(items, answers, strict=True))
    return right / len(items)
