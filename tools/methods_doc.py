"""Render docs/methods.md from bench/method_comparison.py's JSON (resources/method-comparison.json), so the
document's numbers are exactly the ones the benchmark printed.  python tools/methods_doc.py"""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SEED = {
    "full": ("★★★★★", "100%", "highest"),
    "lora": ("★★★★☆", "0.1–1%", "low"),
    "qlora": ("★★★★☆", "0.1–1%", "lowest"),
    "dora": ("–", "–", "–"),
    "ia3": ("–", "–", "–"),
    "bottleneck": ('★★★☆☆ ("good")', "1–5%", "medium"),
    "prefix": ("★★★☆☆", "0.1%", "very low"),
    "prompt": ("lower", "0.01%", "minimal"),
}


def share_text(fraction: float) -> str:
    return "100%" if fraction >= 0.995 else f"{100 * fraction:.2g}%"


def forgetting_section() -> list[str]:
    """What each method learned beside what it kept of general ability (bench/forgetting.py)."""
    path = REPO / "resources" / "forgetting.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    lines = [
        "## Did it forget?",
        "",
        "The same runs at the proposal, with the app's own forgetting check (a general text about kitchens,",
        "weather, bicycles and sleep, nothing the data teaches): the tuned model's perplexity on it over the",
        "base's, beside the facts it learned. Under 1.15× it kept its general ability; from 1.5× it lost it",
        f"(docs/user-guide.md). Machine: {data['machine']}. Reproduce: `.venv/bin/python bench/forgetting.py "
        "--out resources/forgetting.json`.",
        "",
        "| method | proposed rate | facts (held-out) | general text perplexity vs base | verdict |",
        "|---|---|---|---|---|",
    ]
    for name, r in data["methods"].items():
        if r.get("status") != "completed":
            lines.append(f"| {name} | {r.get('learning_rate')} | failed: {r.get('error')} | | |")
            continue
        ratio = r.get("general_perplexity_ratio")
        lines.append(
            f"| {name} | {r.get('learning_rate')} | {r.get('facts', 0):.0%} | {f'{ratio:.2f}×' if ratio else '–'} | "
            f"{r.get('forgetting_verdict') or '–'} |"
        )
    lines += ["", *_forgetting_reading(data["methods"])]
    return [*lines, ""]


def _forgetting_reading(rows: dict) -> list[str]:
    """What the table says about the seed's claim "LoRA: no catastrophic forgetting", from its figures."""
    full, lora = rows.get("full") or {}, rows.get("lora") or {}
    full_ratio, lora_ratio = full.get("general_perplexity_ratio"), lora.get("general_perplexity_ratio")
    if not (full_ratio and lora_ratio):
        return []
    if lora_ratio <= full_ratio:
        return [
            f"LoRA kept more general ability than full fine-tuning here ({lora_ratio:.2f}× against {full_ratio:.2f}×)."
        ]
    learned = (
        "both learning the facts"
        if min(full.get("facts", 0), lora.get("facts", 0)) >= 0.9
        else "facts as in the table"
    )
    return [
        f"At the proposed rates LoRA lost more general ability than full fine-tuning ({lora_ratio:.2f}× against",
        f'{full_ratio:.2f}×, {learned}): the seed\'s "LoRA: no catastrophic forgetting" does not hold at',
        f"LoRA's proposed rate ({lora.get('learning_rate')}, against {full.get('learning_rate')}). LoRA's merit is elsewhere: the",
        "base stays as it was, and the adapter can be switched off for general questions.",
    ]


def main() -> None:
    data = json.loads((REPO / "resources" / "method-comparison.json").read_text())
    rows = data["methods"]
    lora = rows.get("lora", {})
    lines = [
        "# The methods, measured",
        "",
        f"Every method trained by this app on **{data['model']}** with the bundled demo dataset (made-up facts",
        "about a fictional island, answered in a recognisable voice) at the settings the app proposes: only",
        "the model, the data and the method were given, so the learning rate, the run's length, LoRA's rank",
        "and the rest are what a user who clicks through the wizard gets. Batch "
        f"{data['batch_size']}, seed 42, the app's own training path. Then {data['held_out_prompts']} held-out",
        "questions (the same facts asked in phrasings never trained on) answered greedily: **facts** counts",
        "answers containing the fact's made-up key term; **style** counts answers that open with the",
        "dataset's greeting. Where the proposal answered under 90% of the facts, the same run at ×3 (and ×⅓ when",
        "×3 did no better) the proposed learning rate shows what the method can do (**best of the sweep**).",
        "",
        f"Machine: {data['machine']}. Reproduce: `.venv/bin/python bench/method_comparison.py "
        "--out resources/method-comparison.json`, then `python tools/methods_doc.py`.",
        "",
        "| method | trainable parameters | proposed rate | steps | peak memory (GB) | s/step | vs LoRA's time | eval loss | facts | style | best of the sweep |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        if name == "base":
            lines.append(
                f"| base model (no training) | – | – | – | – | – | – | – | {r['facts']:.0%} | {r['style']:.0%} | – |"
            )
            continue
        if r.get("status") != "completed":
            lines.append(f"| {name} | – | – | – | – | – | – | – | failed: {r.get('error')} | | |")
            continue
        rel = r["seconds_per_step"] / lora["seconds_per_step"] if lora.get("seconds_per_step") else None
        best = r.get("best") or {}
        swept = (
            f"facts {best['facts']:.0%} at {best['learning_rate']:g}"
            if r.get("sweep") and best.get("facts") is not None
            else "(not needed)"
        )
        lines.append(
            f"| {name} | {r['trainable_parameters']:,} ({share_text(r['trainable_share'])}) | {r['learning_rate']:g} | "
            f"{r['steps']} | {r['peak_gib']:.2f} | {r['seconds_per_step']:.2f} | {rel:.2f}× | {r['eval_loss']:.3f} | "
            f"{r['facts']:.0%} | {r['style']:.0%} | {swept} |"
        )
    missing = (data.get("not_measured") or {}).get("methods") or []
    if missing:
        lines += [
            "",
            f"Not yet measured at the proposed settings: {', '.join(missing)}. "
            + (data.get("not_measured") or {}).get("why", ""),
        ]
    lines += [
        "",
        "Peak memory here is the training process's RSS on a CPU (weights in fp32, the Python process included),",
        "not GPU memory; the estimator covers GPUs (docs/memory-calibration.md).",
        "",
        *forgetting_section(),
        "## The lesson's table, side by side",
        "",
        "| method | lesson: quality | lesson: trainable | lesson: memory | measured here (proposed settings) |",
        "|---|---|---|---|---|",
    ]
    for name, (quality, share, memory) in SEED.items():
        r = rows.get(name, {})
        measured = (
            (
                f"facts {r['facts']:.0%}, style {r['style']:.0%}, {share_text(r['trainable_share'])} trainable, "
                f"{r['peak_gib']:.2f} GB"
            )
            if r.get("status") == "completed"
            else ("not yet re-measured" if name in missing else "–")
        )
        lines.append(f"| {name} | {quality} | {share} | {memory} | {measured} |")
    (REPO / "docs" / "methods.md").write_text(
        "\n".join(lines) + "\n\n" + READING + preferences(), encoding="utf-8"
    )
    print("wrote docs/methods.md")


def preferences() -> str:
    """The preference objectives' section, from bench/preference.py's JSON (resources/preference-comparison.json)."""
    path = REPO / "resources" / "preference-comparison.json"
    if not path.exists():
        return ""
    runs = json.loads(path.read_text())["runs"]
    lines = [
        "",
        "## Preferences: DPO and ORPO, measured",
        "",
        "The demo model trained on made-up preference pairs (`tools/preference_dataset.py`: 42 pairs in which a",
        "ship's cook's answer, \"Aye, cook says: … Fair winds!\", is chosen over a plain one with the same",
        "facts), with only model, data, method and objective given; then 18 held-out prompts about things",
        "never trained on. **Prefers chosen** counts the held-out pairs whose chosen answer the model gives the",
        "higher mean token log-probability (the run's own \"Did it learn?\"); the answer is the tuned model's",
        "to a held-out prompt. Reproduce: `.venv/bin/python bench/preference.py --out",
        "resources/preference-comparison.json`, then `python tools/methods_doc.py`.",
        "",
        "| method | objective | proposed rate | steps | s (whole run) | prefers chosen: base | tuned | verdict | a tuned answer |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        answer = (r.get("sample_answers") or ["–"])[0].replace("|", "\\|")
        if len(answer) > 90:
            answer = answer[:89] + "…"
        lines.append(
            f"| {r['method']}{' (' + r['note'] + ')' if r.get('note') else ''} | {r['objective'].upper()} | {r.get('learning_rate')} | {r.get('steps')} | "
            f"{r.get('seconds')} | {r.get('base_prefers_chosen')} of {r.get('held_out_pairs')} | "
            f"{r.get('tuned_prefers_chosen')} of {r.get('held_out_pairs')} | {r.get('verdict')} | {answer} |"
        )
    notes = REPO / "tools" / "preference_reading.md"
    return "\n".join(lines) + "\n\n" + (notes.read_text(encoding="utf-8") if notes.exists() else "")


READING = (
    (REPO / "tools" / "methods_reading.md").read_text(encoding="utf-8")
    if (REPO / "tools" / "methods_reading.md").exists()
    else ""
)

if __name__ == "__main__":
    main()
