"""Dataset formats: detect which one a file uses, and turn each row into an ``Example`` or a problem.

Every format becomes one of four shapes: a chat (alpaca, sharegpt, messages), a prompt/completion
pair, plain text, or a preference (a prompt with a chosen and a rejected answer, for DPO and ORPO). A
column mapping renames a file's columns to a format's field names first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from finetune_gui.core.config import DATASET_FORMATS
from finetune_gui.core.errors import DataError

# The formats a dataset can be read as (the config also accepts "auto": detect one from the columns).
FORMATS = tuple(name for name in DATASET_FORMATS if name != "auto")
# Formats whose rows teach a preference between two answers (the preference objectives' data).
PREFERENCE_FORMATS = ("preference",)
# The fields a column mapping fills for each format, the one it needs first (the window's pickers).
MAPPED_FIELDS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "output", "input", "system"),
    "prompt_completion": ("prompt", "completion"),
    "text": ("text",),
    "messages": ("messages",),
    "sharegpt": ("conversations",),
    "preference": ("prompt", "chosen", "rejected", "system"),
}
EXPECTED = "instruction/output, messages, conversations, prompt/completion, text or prompt/chosen/rejected"

# The fields that identify each format (any one set of them is enough). Preference comes first: its
# rows may also carry a 'prompt' or 'messages' field.
SIGNATURES: dict[str, list[set[str]]] = {
    "preference": [{"chosen", "rejected"}],
    "messages": [{"messages"}],
    "sharegpt": [{"conversations"}],
    "alpaca": [{"instruction", "output"}, {"instruction", "response"}],
    "prompt_completion": [{"prompt", "completion"}],
    "text": [{"text"}],
}

SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "system": "system",
}
CHAT_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Example:
    """One training example. ``kind`` is chat, completion, text or preference (``messages`` then holds
    the prompt's turns, ending with a user turn, and ``chosen``/``rejected`` the two answers)."""

    kind: str
    messages: tuple[tuple[str, str], ...] = ()
    prompt: str = ""
    completion: str = ""
    text: str = ""
    chosen: str = ""
    rejected: str = ""

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "chat":
            return {"messages": [{"role": r, "content": c} for r, c in self.messages]}
        if self.kind == "completion":
            return {"prompt": self.prompt, "completion": self.completion}
        if self.kind == "preference":
            return {
                "prompt": [{"role": r, "content": c} for r, c in self.messages],
                "chosen": self.chosen,
                "rejected": self.rejected,
            }
        return {"text": self.text}

    def answered(self, side: str = "chosen") -> Example:
        """A preference row as the chat of its prompt and one answer ('chosen' or 'rejected')."""
        return Example("chat", messages=(*self.messages, ("assistant", getattr(self, side))))


class RowProblem(Exception):
    """A row that cannot be used; the message completes 'line N …'."""


def apply_columns(row: dict[str, Any], columns: dict[str, str] | None) -> dict[str, Any]:
    """Rename the user's columns to the format's field names: columns = {field: column}."""
    if not columns:
        return row
    renamed = dict(row)
    for field_name, column in columns.items():
        if column in row:
            renamed[field_name] = row[column]
    for column in set(columns.values()) - set(columns):
        # A column read under another name is gone under its own: 'input' mapped to the instruction
        # must not come back as alpaca's context and say the question twice.
        renamed.pop(column, None)
    return renamed


def matches(row: dict[str, Any], fmt: str) -> bool:
    return any(sig <= row.keys() for sig in SIGNATURES[fmt])


def detect_format(rows: Iterable[Any]) -> str:
    """The format most of the first rows match; DataError naming the columns found when none does."""
    votes: Counter[str] = Counter()
    seen_columns: Counter[str] = Counter()
    objects = 0
    for row in rows:
        if not isinstance(row, dict):
            continue
        objects += 1
        seen_columns.update(map(str, row.keys()))
        for fmt in SIGNATURES:
            if matches(row, fmt):
                votes[fmt] += 1
                break
    if votes:
        return votes.most_common(1)[0][0]
    if objects == 0:
        raise DataError("No row is a JSON object with named fields. Expected rows with " + EXPECTED + ".")
    found = ", ".join(c for c, _ in seen_columns.most_common(12))
    raise DataError(
        f"Found columns {found}; expected {EXPECTED}. Choose a format and map your columns to it "
        "(dataset.columns, e.g. {instruction: question, output: answer})."
    )


# Common names for a question and its answer, proposed as a mapping onto alpaca's instruction/output
# when a file has none of the formats' own fields. Lower-cased; the first pair found wins.
QUESTION_NAMES = (
    "question",
    "query",
    "input",
    "prompt",
    "human",
    "user",
    "instruction",
    "q",
    "source",
    "frage",
    "pregunta",
    "domanda",
    "vraag",
    "pergunta",
    "context",
)
ANSWER_NAMES = (
    "answer",
    "response",
    "output",
    "completion",
    "assistant",
    "gpt",
    "bot",
    "reply",
    "a",
    "target",
    "antwort",
    "respuesta",
    "risposta",
    "antwoord",
    "resposta",
    "label",
)
SYSTEM_NAMES = ("system", "system_prompt", "instructions")


def propose_columns(columns: list[str]) -> dict[str, str] | None:
    """A mapping {field: column} onto alpaca's instruction/output for a file whose header names a
    question and an answer in common words (question/answer, input/output, query/response, frage/antwort…);
    None when no such pair is there."""
    by_name = {c.strip().lower(): c for c in columns}
    question = next((by_name[n] for n in QUESTION_NAMES if n in by_name), None)
    answer = next((by_name[n] for n in ANSWER_NAMES if n in by_name and by_name[n] != question), None)
    if question is None or answer is None:
        return None
    mapping = {"instruction": question, "output": answer}
    system = next((by_name[n] for n in SYSTEM_NAMES if n in by_name), None)
    if system is not None and system not in (question, answer):
        mapping["system"] = system
    return mapping


def _text(row: dict[str, Any], key: str, *, required: bool = True) -> str:
    if key not in row or row[key] is None:
        if required:
            raise RowProblem(f"has no '{key}'")
        return ""
    value = row[key]
    if not isinstance(value, str):
        raise RowProblem(f"has a {type(value).__name__} in '{key}' where text was expected")
    if required and not value.strip():
        raise RowProblem(f"has an empty '{key}'")
    return value


def _check_turns(turns: list[tuple[str, str]], what: str) -> tuple[tuple[str, str], ...]:
    if not turns:
        raise RowProblem(f"has an empty '{what}' list")
    previous = None
    for index, (role, _content) in enumerate(turns, start=1):
        if role == "system" and index != 1:
            raise RowProblem(f"has a system turn at position {index}; it may only come first")
        if role in ("user", "assistant") and role == previous:
            raise RowProblem(f"has two '{role}' turns in a row at position {index}")
        if role == "assistant" and previous not in ("user",):
            raise RowProblem(f"has an assistant turn at position {index} that does not follow a user turn")
        previous = role
    if not any(role == "assistant" for role, _ in turns):
        raise RowProblem("has no assistant turn, so there is nothing to learn from it")
    return tuple(turns)


def _chat_from_messages(row: dict[str, Any]) -> Example:
    messages = row["messages"]
    if not isinstance(messages, list):
        raise RowProblem(
            f"has 'messages' of type {type(messages).__name__}; expected a list of {{role, content}}"
        )
    turns = []
    for index, m in enumerate(messages, start=1):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise RowProblem(f"has message {index} without 'role' and 'content'")
        role, content = m["role"], m["content"]
        if role not in CHAT_ROLES:
            raise RowProblem(f"has message {index} with role {role!r}; expected system, user or assistant")
        if not isinstance(content, str):
            raise RowProblem(f"has message {index} whose content is a {type(content).__name__}, not text")
        if not content.strip():
            raise RowProblem(f"has message {index} with empty content")
        turns.append((role, content))
    return Example("chat", messages=_check_turns(turns, "messages"))


def _chat_from_sharegpt(row: dict[str, Any]) -> Example:
    conversations = row["conversations"]
    if not isinstance(conversations, list):
        raise RowProblem(f"has 'conversations' of type {type(conversations).__name__}; expected a list")
    turns = []
    for index, m in enumerate(conversations, start=1):
        if not isinstance(m, dict) or "from" not in m or "value" not in m:
            raise RowProblem(f"has turn {index} without 'from' and 'value'")
        role = SHAREGPT_ROLES.get(str(m["from"]).lower())
        if role is None:
            raise RowProblem(f"has turn {index} from {m['from']!r}; expected human, gpt or system")
        if not isinstance(m["value"], str):
            raise RowProblem(f"has turn {index} whose value is a {type(m['value']).__name__}, not text")
        if not m["value"].strip():
            raise RowProblem(f"has turn {index} with an empty value")
        turns.append((role, m["value"]))
    if (
        "system" in row
        and isinstance(row["system"], str)
        and row["system"].strip()
        and turns[0][0] != "system"
    ):
        turns.insert(0, ("system", row["system"]))
    return Example("chat", messages=_check_turns(turns, "conversations"))


def _chat_from_alpaca(row: dict[str, Any]) -> Example:
    instruction = _text(row, "instruction")
    dolly = "output" not in row and "response" in row
    context = _text(row, "context" if dolly else "input", required=False)
    output = _text(row, "response" if dolly else "output")
    prompt = f"{instruction}\n\n{context}" if context.strip() else instruction
    turns: list[tuple[str, str]] = []
    system = row.get("system")
    if isinstance(system, str) and system.strip():
        turns.append(("system", system))
    turns += [("user", prompt), ("assistant", output)]
    return Example("chat", messages=tuple(turns))


def _turns_of(value: Any, what: str) -> list[tuple[str, str]]:
    """A list of {role, content} messages as (role, content) turns, each checked."""
    turns = []
    for index, m in enumerate(value, start=1):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise RowProblem(f"has message {index} of '{what}' without 'role' and 'content'")
        role, content = m["role"], m["content"]
        if role not in CHAT_ROLES:
            raise RowProblem(
                f"has message {index} of '{what}' with role {role!r}; expected system, user or assistant"
            )
        if not isinstance(content, str) or not content.strip():
            raise RowProblem(f"has message {index} of '{what}' without text")
        turns.append((role, content))
    return turns


def _answer_of(value: Any, side: str, prefix: list[tuple[str, str]]) -> str:
    """The answer one side gives: text, or the conversation's last assistant turn after the prompt."""
    if value is None or (isinstance(value, (str, list)) and not value):
        raise RowProblem(f"has no '{side}' answer")
    if isinstance(value, str):
        if not value.strip():
            raise RowProblem(f"has an empty '{side}' answer")
        return value
    if not isinstance(value, list):
        raise RowProblem(
            f"has a {type(value).__name__} in '{side}' where text or a list of messages was expected"
        )
    turns = _turns_of(value, side)
    rest = turns[len(prefix) :] if turns[: len(prefix)] == prefix else turns
    if len(rest) != 1 or rest[0][0] != "assistant":
        raise RowProblem(
            f"has a '{side}' conversation that does not end in one assistant answer after the prompt"
        )
    return rest[0][1]


def _shared_prefix(chosen: list[Any], rejected: list[Any]) -> list[tuple[str, str]]:
    prefix = []
    for a, b in zip(_turns_of(chosen, "chosen"), _turns_of(rejected, "rejected"), strict=False):
        if a != b:
            break
        prefix.append(a)
    return prefix


def _preference(row: dict[str, Any]) -> Example:
    """{prompt, chosen, rejected} as text, or chosen/rejected conversations that share their prompt, with
    an optional system prompt."""
    for side in ("chosen", "rejected"):
        if side not in row or row[side] is None:
            raise RowProblem(f"has no '{side}' answer; a preference row needs a chosen and a rejected one")
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        turns = [("user", prompt)]
    elif isinstance(prompt, list) and prompt:
        turns = _turns_of(prompt, "prompt")
    elif prompt in (None, "") and isinstance(chosen, list) and isinstance(rejected, list):
        turns = _shared_prefix(chosen, rejected)
    else:
        raise RowProblem("has no 'prompt' (text, or messages the chosen and rejected conversations share)")
    chosen_text = _answer_of(chosen, "chosen", turns)
    rejected_text = _answer_of(rejected, "rejected", turns)
    if chosen_text.strip() == rejected_text.strip():
        raise RowProblem(
            "has the same chosen and rejected answer, so there is no preference to learn from it"
        )
    system = row.get("system")
    if isinstance(system, str) and system.strip() and (not turns or turns[0][0] != "system"):
        turns.insert(0, ("system", system))
    if not turns or turns[-1][0] != "user":
        raise RowProblem("has a prompt that does not end with a user turn")
    return Example("preference", messages=tuple(turns), chosen=chosen_text, rejected=rejected_text)


def to_example(row: Any, fmt: str, columns: dict[str, str] | None = None) -> Example:
    """Validate one row of a known format; raises RowProblem with the reason."""
    if not isinstance(row, dict):
        raise RowProblem(f"is a {type(row).__name__}, not an object with named fields")
    row = apply_columns(row, columns)
    if fmt == "messages":
        if "messages" not in row:
            raise RowProblem("has no 'messages'")
        return _chat_from_messages(row)
    if fmt == "sharegpt":
        if "conversations" not in row:
            raise RowProblem("has no 'conversations'")
        return _chat_from_sharegpt(row)
    if fmt == "alpaca":
        return _chat_from_alpaca(row)
    if fmt == "preference":
        return _preference(row)
    if fmt == "prompt_completion":
        return Example("completion", prompt=_text(row, "prompt"), completion=_text(row, "completion"))
    if fmt == "text":
        return Example("text", text=_text(row, "text"))
    raise DataError(f"Unknown dataset format {fmt!r}; use auto or one of {', '.join(FORMATS)}.")
