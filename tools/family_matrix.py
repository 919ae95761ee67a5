"""What each model family can do in this app, as the family matrix (tests/test_families.py) checks it on
a tiny model of that family built from its own transformers config class, and the table of
docs/user-guide.md's "Which models work" that is rendered from it:

    .venv/bin/python tools/family_matrix.py        # rewrites the table between its markers

A cell is "works" or the start of the one sentence the app says instead (the matrix asserts it).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tiny_model import FAMILIES

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "user-guide.md"
COLUMNS = ["lora", "qlora", "dora", "full", "merge", "gguf"]
HEADINGS = {
    "lora": "LoRA",
    "qlora": "QLoRA",
    "dora": "DoRA",
    "full": "Full",
    "merge": "Merge (1, 0.7, a stack)",
    "gguf": "GGUF q4_1 (and f16), verified",
}
NAMES = {
    "llama": "Llama 3.x, SmolLM2",
    "qwen2": "Qwen2 / Qwen2.5",
    "qwen3": "Qwen3",
    "gemma3": "Gemma 3",
    "mistral": "Mistral, Ministral",
    "phi3": "Phi-3, Phi-4",
    "qwen3_moe": "Qwen3-MoE (mixture of experts)",
}
WORKS = "works"
LIMITS: dict[str, dict[str, str]] = {
    "phi3": {
        "gguf": "llama.cpp's converter writes this model's architecture only with a SentencePiece tokenizer.model",
    },
    "qwen3_moe": {"dora": "DoRA cannot be applied to this model"},
}


def cell(family: str, column: str) -> str:
    return LIMITS.get(family, {}).get(column, WORKS)


def table() -> str:
    lines = [
        "| family | " + " | ".join(HEADINGS[c] for c in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for family in FAMILIES:
        cells = ["✓" if cell(family, c) == WORKS else f"✗ {cell(family, c)}" for c in COLUMNS]
        lines.append(f"| {NAMES[family]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


START, END = "<!-- family-matrix -->", "<!-- /family-matrix -->"


def rewrite(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    GUIDE.write_text(rewrite(GUIDE.read_text(encoding="utf-8")), encoding="utf-8")
    sys.stdout.write(table() + "\n")
