"""Turn examples into token ids and labels exactly as training sees them, and describe the result.

The loss mask works with any chat template: each assistant turn's span is found by rendering the
conversation up to that turn (with and without the generation prompt) and comparing the prefixes, so
no ``{% generation %}`` markers are needed. Labels are -100 outside the trained spans.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from finetune_gui.core.data.formats import Example

IGNORE = -100

# For tokenizers without a chat template: plain, readable markers that any vocabulary can spell.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '### System:\n' + message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### User:\n' + message['content'] + '\n\n' }}"
    "{% else %}{{ '### Assistant:\n' + message['content'] + eos_token + '\n\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '### Assistant:\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False
    source_length: int = 0  # the whole example's length in tokens, before any cut

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give a tokenizer without a chat template the plain fallback; True when the fallback was set."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = FALLBACK_TEMPLATE
    return True


def is_chat_model(tokenizer: Any) -> bool:
    """A model with its own chat template (not the plain fallback): it is asked in chat format, by the
    playground, by an exported Modelfile, and so it is trained that way too."""
    template = getattr(tokenizer, "chat_template", None)
    return bool(template) and template != FALLBACK_TEMPLATE


def as_trained(example: Example, tokenizer: Any) -> Example:
    """Prompt/completion rows become a user turn and an assistant turn for a chat model: trained the way
    they will be asked. Chats stay chats; raw text stays raw (continued pre-training). A preference row
    reads as its prompt answered with the chosen answer (its question and reference)."""
    if example.kind == "preference":
        return example.answered("chosen")
    if example.kind == "completion" and is_chat_model(tokenizer):
        return Example("chat", messages=(("user", example.prompt), ("assistant", example.completion)))
    return example


def _render(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def segments(example: Example, tokenizer: Any) -> list[tuple[str, bool]]:
    """The text the model sees, cut into (text, carries_loss) pieces."""
    example = as_trained(example, tokenizer)
    eos = tokenizer.eos_token or ""
    if example.kind == "text":
        return [(example.text + eos, True)]
    if example.kind == "completion":
        return [(example.prompt, False), (example.completion + eos, True)]
    messages = [{"role": r, "content": c} for r, c in example.messages]
    full = _render(tokenizer, messages)
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:index], generation_prompt=True)
        upto = _render(tokenizer, messages[: index + 1])
        if full.startswith(upto) and upto.startswith(before) and len(before) >= pos:
            start, end = len(before), len(upto)
        else:
            # Templates that rewrite earlier turns (e.g. dropping reasoning) are not prefix-stable:
            # fall back to finding the answer's text, plus the end-of-turn token right after it.
            start = full.find(message["content"], pos)
            if start < 0:
                continue
            end = start + len(message["content"])
            if eos and full.startswith(eos, end):
                end += len(eos)
        pieces.append((full[pos:start], False))
        pieces.append((full[start:end], True))
        pos = end
    pieces.append((full[pos:], False))
    return [(text, trained) for text, trained in pieces if text]


def _add_special_tokens(example: Example, tokenizer: Any) -> bool:
    # Chat templates write their own BOS; raw text gets whatever the tokenizer adds by default.
    return as_trained(example, tokenizer).kind != "chat"


def tokenize_segments(
    pieces: list[tuple[str, bool]], tokenizer: Any, add_special: bool
) -> tuple[list[int], list[int]]:
    text = "".join(t for t, _ in pieces)
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=add_special, return_offsets_mapping=True)
        spans, pos = [], 0
        for piece, trained in pieces:
            if trained:
                spans.append((pos, pos + len(piece)))
            pos += len(piece)
        ids = list(enc["input_ids"])
        labels = []
        for token, (start, end) in zip(ids, enc["offset_mapping"], strict=True):
            inside = end > start and any(s <= start < e for s, e in spans)
            labels.append(token if inside else IGNORE)
        return ids, labels
    ids, labels = [], []
    for index, (piece, trained) in enumerate(pieces):
        part = tokenizer(piece, add_special_tokens=add_special and index == 0)["input_ids"]
        ids += part
        labels += part if trained else [IGNORE] * len(part)
    return ids, labels


# No tokenizer's token is this many characters long: text beyond max_seq_len × this is cut before
# tokenizing (it would be cut after anyway), so one enormous row cannot take gigabytes to tokenize.
CHARS_PER_TOKEN_CAP = 128
TEXT_WINDOW = 200_000  # plain text (all of which trains) is tokenized in windows of this many characters


def _capped(pieces: list[tuple[str, bool]], limit: int) -> list[tuple[str, bool]]:
    kept, total = [], 0
    for text, trained in pieces:
        if total + len(text) > limit:
            kept.append((text[: limit - total], trained))
            break
        kept.append((text, trained))
        total += len(text)
    return kept


def _tokens(example: Example, tokenizer: Any, max_seq_len: int) -> tuple[list[int], list[int]]:
    """Ids and labels of an example; long chats and completions are cut (in characters) first, long plain
    text is tokenized in windows split at whitespace."""
    if example.kind == "preference":  # its length is the prompt with the longer answer
        side = "chosen" if len(example.chosen) >= len(example.rejected) else "rejected"
        example = example.answered(side)
    pieces = segments(example, tokenizer)
    special = _add_special_tokens(example, tokenizer)
    if example.kind != "text" or len(pieces[0][0]) <= TEXT_WINDOW:
        return tokenize_segments(_capped(pieces, max_seq_len * CHARS_PER_TOKEN_CAP), tokenizer, special)
    text = pieces[0][0]
    ids: list[int] = []
    labels: list[int] = []
    while text:
        cut = len(text) if len(text) <= TEXT_WINDOW else (text.rfind(" ", 0, TEXT_WINDOW) + 1 or TEXT_WINDOW)
        part_ids, part_labels = tokenize_segments([(text[:cut], True)], tokenizer, special and not ids)
        ids += part_ids
        labels += part_labels
        text = text[cut:]
    return ids, labels


def encode(example: Example, tokenizer: Any, max_seq_len: int) -> list[Encoded]:
    """Token ids and labels; plain text longer than max_seq_len is split into several chunks."""
    ids, labels = _tokens(example, tokenizer, max_seq_len)
    if example.kind == "text" and len(ids) > max_seq_len:
        return [
            Encoded(ids[i : i + max_seq_len], labels[i : i + max_seq_len], source_length=len(ids))
            for i in range(0, len(ids), max_seq_len)
            if any(x != IGNORE for x in labels[i + 1 : i + max_seq_len])
        ]
    truncated = len(ids) > max_seq_len
    return [Encoded(ids[:max_seq_len], labels[:max_seq_len], truncated, source_length=len(ids))]


@dataclass(frozen=True)
class EncodedPair:
    """A preference row as training sees it: the prompt with the chosen answer, and with the rejected one
    (labels on the answer only), each cut at max_seq_len."""

    chosen: Encoded
    rejected: Encoded

    @property
    def truncated(self) -> bool:
        return self.chosen.truncated or self.rejected.truncated

    @property
    def source_length(self) -> int:
        return max(self.chosen.source_length, self.rejected.source_length)

    @property
    def trained_tokens(self) -> int:
        # Both answers must keep tokens: a pair with one side cut away compares nothing.
        return min(self.chosen.trained_tokens, self.rejected.trained_tokens)

    @property
    def input_ids(self) -> list[int]:  # the longer sequence: what lengths and batching see
        return max(self.chosen.input_ids, self.rejected.input_ids, key=len)


def encode_pair(example: Example, tokenizer: Any, max_seq_len: int) -> EncodedPair:
    chosen, rejected = (
        encode(example.answered(side), tokenizer, max_seq_len)[0] for side in ("chosen", "rejected")
    )
    return EncodedPair(chosen, rejected)


@dataclass
class EncodedDataset:
    items: list[Any]  # Encoded, or EncodedPair for preference rows
    truncated: int = 0  # examples cut at max_seq_len
    dropped: int = 0  # examples whose trained part was cut away entirely
    longest: int = 0  # the longest example cut at max_seq_len: what the memory estimate uses


def encode_all(examples: list[Example], tokenizer: Any, max_seq_len: int) -> EncodedDataset:
    result = EncodedDataset(items=[])
    for example in examples:
        found = (
            [encode_pair(example, tokenizer, max_seq_len)]
            if example.kind == "preference"
            else encode(example, tokenizer, max_seq_len)
        )
        for item in found:
            result.longest = max(result.longest, min(max_seq_len, item.source_length))
            if item.truncated:
                result.truncated += 1
            if item.trained_tokens == 0:
                result.dropped += 1
                continue
            result.items.append(item)
    return result


def token_lengths(examples: list[Example], tokenizer: Any, max_seq_len: int = 1 << 16) -> list[int]:
    """Each example's length in tokens (an enormous chat or completion counts up to max_seq_len × 128
    characters: enough to know it will be cut)."""
    return [len(_tokens(example, tokenizer, max_seq_len)[0]) for example in examples]


def token_stats(lengths: list[int], max_seq_len: int, bins: int = 30) -> dict[str, Any]:
    """Min, median, p95, max, how many would be truncated, and a histogram for the wizard."""
    import numpy as np

    if not lengths:
        return {"count": 0}
    arr = np.asarray(lengths)
    counts, edges = np.histogram(arr, bins=min(bins, max(1, len(set(lengths)))))
    truncated = int((arr > max_seq_len).sum())
    return {
        "count": len(lengths),
        "min": int(arr.min()),
        "median": float(np.median(arr)),
        "p95": float(np.percentile(arr, 95)),
        "max": int(arr.max()),
        "mean": float(arr.mean()),
        "total_tokens": int(arr.sum()),
        "max_seq_len": max_seq_len,
        "truncated": truncated,
        "truncated_pct": round(100.0 * truncated / len(lengths), 1),
        "histogram": {"counts": counts.tolist(), "edges": [float(e) for e in edges]},
    }


def split(items: list[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """A seeded train/validation split; no validation set when there are too few rows to spare."""
    from finetune_gui.core.config import split_counts

    _, n_val = split_counts(len(items), fraction)
    if n_val == 0:
        return list(items), []
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    val = set(order[:n_val])
    return [x for i, x in enumerate(items) if i not in val], [x for i, x in enumerate(items) if i in val]


def longest_example(examples: list[Example], tokenizer: Any, max_seq_len: int) -> int:
    """The longest example as training sees it (cut at max_seq_len), in tokens: what the estimate uses."""
    return min(max_seq_len, max(token_lengths(examples, tokenizer, max_seq_len), default=max_seq_len))
