"""The README.md every export folder carries: what the model is (base, adapters and their weights, how
they were trained and how well), and how to run it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from finetune_gui.core.adapters.export_report import ExportReport


def ollama_name(name: str) -> str:
    """A name Ollama accepts: lower case letters, digits, dashes."""
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._") or "finetuned"


def adapter_facts(path: str) -> dict[str, Any]:
    """What the library and the adapter's run know about it."""
    from finetune_gui.core.adapters.library import AdapterLibrary
    from finetune_gui.core.runs import RunFolder

    entry = AdapterLibrary().find_path(path) or {}
    facts = dict(entry)
    run = entry.get("run") or (str(Path(path).parent) if Path(path).name == "adapter" else None)
    if run and RunFolder(run).exists():
        info = RunFolder(run).read()
        facts.setdefault("method", info.method or None)
        facts.setdefault("dataset", info.dataset or None)
        facts.setdefault("steps", info.metrics.get("steps"))
        facts.setdefault("eval_loss", info.metrics.get("eval_loss"))
        facts["learning"] = info.learning.summary if info.learning else None
    return facts


def write(
    folder: Path,
    *,
    final: Path | None = None,
    base: str,
    adapters: list[tuple[str, float]],
    combination: str,
    report: ExportReport,
) -> Path:
    """README.md in ``folder``: the base, each adapter with its weight and how it was trained, what the
    verifications found, and how to run it (``final``: where the folder will be once in place)."""
    name = report.name
    gguf_name = Path(report.gguf.path).name if report.gguf else None
    merges = report.merge is not None
    lines = [f"# {name}", "", f"A fine-tune of **{Path(base).name or base}** made with finetune-gui.", ""]
    lines += ["## What it is", "", f"- Base model: `{base}`"]
    how = "merged into the weights" if merges else "kept as an adapter (it cannot merge)"
    if len(adapters) > 1:
        lines.append(f"- Adapters, {how} as a weighted stack ({combination}):")
    else:
        lines.append(f"- Adapter, {how}:")
    for path, weight in adapters:
        facts = adapter_facts(path)
        parts = [f"weight {weight:g}"]
        for key, label in (("method", "method"), ("dataset", "dataset"), ("steps", "steps")):
            if facts.get(key):
                value = Path(str(facts[key])).name if key == "dataset" else facts[key]
                parts.append(f"{label} {value}")
        if isinstance(facts.get("eval_loss"), (int, float)):
            parts.append(f"evaluation loss {facts['eval_loss']:.3f}")
        lines.append(f"  - `{facts.get('name') or Path(path).name}`: " + ", ".join(parts))
        if facts.get("learning"):
            lines.append(f"    - Did it learn? {facts['learning']}")
    lines += ["", "## Verification", ""]
    lines += [f"- {message}." for message in report.messages] or ["- Not merged: the adapter's own files."]
    lines += ["", "## How to run it", ""]
    if gguf_name:
        tag = ollama_name(name)
        lines += [
            "With [Ollama](https://ollama.com), from this folder:",
            "",
            "```bash",
            f"ollama create {tag} -f Modelfile",
            f"ollama run {tag}",
            "```",
            "",
            "With llama.cpp:",
            "",
            "```bash",
            f'llama-cli -m {gguf_name} -p "Hello"',
            "```",
            "",
        ]
    if not merges:
        lines += [
            "Load the adapter on its base model:",
            "",
            "```bash",
            f'finetune-gui generate --model {base} --adapter {final or folder} --prompt "Hello"',
            "```",
        ]
    else:
        model_dir = "model" if gguf_name else "."
        lines += [
            "With transformers:",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            f'model = AutoModelForCausalLM.from_pretrained("{model_dir}")',
            f'tokenizer = AutoTokenizer.from_pretrained("{model_dir}")',
            "```",
        ]
    card = folder / "README.md"
    card.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return card
