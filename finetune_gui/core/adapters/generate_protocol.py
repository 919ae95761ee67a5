"""The playground's wire: JSON lines between the window and ``finetune-gui generate-server``.

Requests on the server's stdin, one a line::

    {"prompt": "...", "id": "base", "adapters": [["path", 1.0], ...], "max_new_tokens": 128,
     "temperature": 0.7, "top_p": 0.95, "system": "..." (optional)}
    {"stop": true}       ends the answer being written and every one still waiting

Replies on its stdout, each naming its kind under ``"event"``: ``ready`` (the base is loaded), ``token``
(a piece of an answer), ``done`` (how the answer ended: ``end``, ``length`` when cut at max_new_tokens,
``stopped``; with the tokens generated and the seconds they took, absent on answers stopped before they
started) and ``error`` (one sentence). Both sides use these records, so a field is spelled once. Fields
may be added, none renamed (docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class AnswerRequest:
    """Answer ``prompt`` with these adapters on the loaded base ([] for the base itself)."""

    prompt: str
    id: str = ""
    adapters: list[tuple[str, float]] = field(default_factory=list)
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0: greedy
    top_p: float = 0.95
    system: str | None = None  # None: the chat template's own

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["adapters"] = [[path, weight] for path, weight in self.adapters]
        return data


@dataclass(frozen=True)
class StopRequest:
    def to_dict(self) -> dict[str, Any]:
        return {"stop": True}


def parse_request(data: Any) -> AnswerRequest | StopRequest | None:
    """A decoded stdin line as a request; None for anything else (a bad line is skipped, not fatal)."""
    if not isinstance(data, dict):
        return None
    if data.get("stop"):
        return StopRequest()
    try:
        return AnswerRequest(
            prompt=str(data.get("prompt", "")),
            id=str(data.get("id") or ""),
            adapters=[(str(path), float(weight)) for path, weight in data.get("adapters") or []],
            max_new_tokens=int(data.get("max_new_tokens", 128)),
            temperature=float(data.get("temperature", 0.0)),
            top_p=float(data.get("top_p", 0.95)),
            system=str(data.get("system") or "") or None,
        )
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Reply:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


@dataclass(frozen=True)
class Ready(Reply):
    kind: ClassVar[str] = "ready"
    model: str = ""


@dataclass(frozen=True)
class Token(Reply):
    kind: ClassVar[str] = "token"
    id: str
    text: str


ENDS = ("end", "length", "stopped")


@dataclass(frozen=True)
class Done(Reply):
    kind: ClassVar[str] = "done"
    id: str
    stopped: bool = False
    end: str = "end"  # end | length | stopped
    tokens: int | None = None
    seconds: float | None = None

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.tokens and self.seconds else None


@dataclass(frozen=True)
class GenerateError(Reply):
    kind: ClassVar[str] = "error"
    message: str
    id: str | None = None  # the answer it ended, when one was being written


REPLIES: dict[str, type[Reply]] = {cls.kind: cls for cls in (Ready, Token, Done, GenerateError)}


def parse_reply(data: Any) -> Reply | None:
    """A decoded stdout line as a reply; None for anything else."""
    if not isinstance(data, dict) or data.get("event") not in REPLIES:
        return None
    cls = REPLIES[data["event"]]
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError:
        return None
