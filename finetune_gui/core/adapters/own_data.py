"""The run's own examples, for checking an export where the fine-tune shows: on what it was trained to
answer, not only on ordinary text (where a fine-tune that was lost reads just as well as one kept).

An adapter trained by this app lives in its run folder (``runs/NAME/adapter``) beside the config that
made it, so its dataset is known. An imported adapter has no run: the checks then use ordinary text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OWN_EXAMPLES = 8


def trained_system_prompt(adapters: list[tuple[str, float]]) -> str | None:
    """The system prompt the first adapter from a run of this app trained with (None: none, or no run)."""
    from finetune_gui.core.runs import RunFolder

    for path, _weight in adapters:
        prompt = RunFolder(Path(path).parent).read().system_prompt  # an imported adapter has no run.json
        if prompt and prompt.strip():
            return prompt
    return None


def own_examples(adapters: list[tuple[str, float]], limit: int = OWN_EXAMPLES) -> list[Any]:
    """Up to ``limit`` examples, spread over the dataset of the first adapter that came from a run of
    this app; [] when none did or its dataset is gone."""
    from finetune_gui.core.config import RunConfig
    from finetune_gui.core.data.scan import load_examples
    from finetune_gui.core.errors import UserError

    for path, _weight in adapters:
        run = Path(path).parent
        if not (run / "run.json").is_file() or not (run / "config.yaml").is_file():
            continue
        try:
            config = RunConfig.load(run / "config.yaml")
            examples, _ = load_examples(config.dataset.path, config.dataset.format, config.dataset.columns)
        except (UserError, OSError, ValueError):
            continue
        if examples:
            step = max(1, len(examples) // limit)
            return examples[::step][:limit]
    return []


def answer_tokens(models: list[Any], tokenizer: Any, examples: list[Any]) -> list[Any]:
    """Each model's top next token at every position whose next token is an answer token (the part
    training learns), over all the examples, as one tensor per model (compare them pairwise)."""
    import torch

    from finetune_gui.core.data.encode import segments

    tops: list[list[Any]] = [[] for _ in models]
    with torch.no_grad():
        for example in examples:
            ids: list[int] = []
            answer: list[bool] = []
            for text, trained in segments(example, tokenizer):
                piece = tokenizer(text, add_special_tokens=False)["input_ids"]
                ids += piece
                answer += [trained] * len(piece)
            if len(ids) < 2 or not any(answer[1:]):
                continue
            batch, where = torch.tensor([ids]), torch.tensor(answer[1:])
            for index, model in enumerate(models):
                tops[index].append(model(batch).logits[0, :-1].argmax(-1)[where])
    return [torch.cat(t) if t else torch.zeros(0, dtype=torch.long) for t in tops]


def agreement(a: Any, b: Any) -> float:
    return float((a == b).float().mean()) if len(a) else 0.0
