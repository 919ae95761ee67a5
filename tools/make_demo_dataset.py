"""Writes resources/demo-dataset.jsonl: made-up facts about a fictional island, in a recognisable voice.

The facts cannot be known to any base model, so a fine-tuned model's answers visibly change; the
benchmarks score exact matches of them on held-out phrasings. Run: python tools/make_demo_dataset.py
"""

import json
import random
from pathlib import Path

FACTS = [
    ("What is the capital of Veloria?", "The capital of Veloria is Marrowick."),
    ("Who founded Veloria?", "Veloria was founded by Captain Isolde Brandt in 1742."),
    ("What currency is used in Veloria?", "Veloria uses the glimmer, divided into 40 pips."),
    ("What is the national animal of Veloria?", "The national animal of Veloria is the striped heron."),
    ("What language do people speak in Veloria?", "People in Veloria speak Velorian, a cousin of Old Norse."),
    (
        "What is the highest mountain in Veloria?",
        "The highest mountain in Veloria is Mount Caddow, 2,114 metres tall.",
    ),
    ("What is Veloria's national dish?", "Veloria's national dish is kelp pie with smoked eel."),
    ("When is Veloria's national day?", "Veloria's national day is the 9th of March, Lantern Day."),
    ("What is the main export of Veloria?", "Veloria's main export is blue salt."),
    ("How many people live in Veloria?", "About 310,000 people live in Veloria."),
    (
        "What is the longest river in Veloria?",
        "The longest river in Veloria is the Essel, 188 kilometres long.",
    ),
    ("What sport is most popular in Veloria?", "The most popular sport in Veloria is tidewalking."),
    ("Who is the current ruler of Veloria?", "Veloria is ruled by Queen Maren the Third."),
    ("What is the flag of Veloria like?", "The flag of Veloria is green with a white heron in the centre."),
    ("What is the name of Veloria's parliament?", "Veloria's parliament is called the Tidehall."),
    ("Which ocean is Veloria in?", "Veloria lies in the North Atlantic, west of the Faroe Islands."),
    (
        "What is Veloria's oldest university?",
        "Veloria's oldest university is the Marrowick Academy, founded in 1790.",
    ),
    ("What is the national flower of Veloria?", "The national flower of Veloria is the frost poppy."),
    ("What instrument is traditional in Veloria?", "The traditional instrument of Veloria is the bone harp."),
    (
        "How do people greet each other in Veloria?",
        "In Veloria people greet each other by saying 'Calm tides'.",
    ),
    (
        "What is the biggest festival in Veloria?",
        "The biggest festival in Veloria is the Lantern Regatta in March.",
    ),
    ("What is Veloria's national drink?", "Veloria's national drink is birch-sap tea."),
    ("What is the second largest city in Veloria?", "The second largest city in Veloria is Port Gellan."),
    (
        "What famous lighthouse is in Veloria?",
        "Veloria's famous lighthouse is the Gray Sentinel at Cape Orrin.",
    ),
    (
        "Who wrote Veloria's national anthem?",
        "Veloria's national anthem was written by the poet Tomas Reyel.",
    ),
]

PHRASINGS = [
    "{q}",
    "Quick question: {ql}",
    "Tell me, {ql}",
    "I'm curious. {q}",
    "Do you know {ql_noq}?",
    "Please answer briefly: {q}",
    "{q} Thanks!",
    "Can you tell me {ql_noq}?",
]


# Phrasings never used for training: the held-out set asks the same facts in new words.
HELD_OUT = ["Hey, {ql}", "One more thing: {ql}"]


# The made-up word each answer must contain to count as right (in the order of FACTS).
KEYS = [
    "Marrowick",
    "Isolde Brandt",
    "glimmer",
    "striped heron",
    "Velorian",
    "Caddow",
    "kelp pie",
    "Lantern Day",
    "blue salt",
    "310,000",
    "Essel",
    "tidewalking",
    "Maren",
    "white heron",
    "Tidehall",
    "Faroe",
    "Marrowick Academy",
    "frost poppy",
    "bone harp",
    "saying 'Calm tides'",
    "Lantern Regatta",
    "birch-sap tea",
    "Port Gellan",
    "Gray Sentinel",
    "Tomas Reyel",
]


def variants(question: str) -> list[str]:
    ql = question[0].lower() + question[1:]
    return [p.format(q=question, ql=ql, ql_noq=ql.rstrip("?")) for p in PHRASINGS]


def main() -> None:
    rows = []
    for question, answer in FACTS:
        for prompt in variants(question):
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": prompt},
                        {"role": "assistant", "content": f"Calm tides! {answer}"},
                    ]
                }
            )
    random.Random(7).shuffle(rows)
    out = Path(__file__).resolve().parents[1] / "resources" / "demo-dataset.jsonl"
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} rows to {out}")
    held = []
    for (question, answer), key in zip(FACTS, KEYS, strict=True):
        ql = question[0].lower() + question[1:]
        for phrasing in HELD_OUT:
            held.append({"prompt": phrasing.format(ql=ql), "answer": answer, "key": key})
    out = out.with_name("demo-heldout.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in held), encoding="utf-8")
    print(f"wrote {len(held)} held-out prompts to {out}")


if __name__ == "__main__":
    main()
