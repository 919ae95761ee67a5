"""Read rows from dataset files one at a time, with the line or row each came from.

Every reader is a generator, so a 1 GB JSONL is scanned in constant memory. A row that cannot be
parsed is yielded as a ``RowError`` in its place, so validation can name the line and go on.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import DataError

_BINARY_PROBE = 8192


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None  # 1-based line in a text file
    row: int | None = None  # 1-based row in a table (csv, parquet, a JSON array)

    def describe(self, with_file: bool = False) -> str:
        where = f"line {self.line}" if self.line is not None else f"row {self.row}"
        return f"{Path(self.file).name} {where}" if with_file else where

    def to_dict(self) -> dict[str, Any]:
        key = "line" if self.line is not None else "row"
        return {key: self.line if self.line is not None else self.row, "file": self.file}


@dataclass(frozen=True)
class RowError:
    message: str


def dataset_files(path: Path) -> list[Path]:
    """The files a dataset path stands for: the file itself, or the supported files in a folder."""
    if not path.exists():
        raise DataError(f"{path} does not exist. Check the path, or drop the file onto the window.")
    if path.is_file():
        return [path]
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not p.name.startswith(".")
    )
    if not files:
        raise DataError(f"The folder {path} holds no dataset files. Expected {suffix_text(' or ')} files.")
    return files


def detect_encoding(path: Path) -> str:
    """utf-8-sig for UTF-8 with or without BOM, utf-16 when a UTF-16 BOM says so; refuse binary files."""
    with path.open("rb") as handle:
        head = handle.read(_BINARY_PROBE)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF32_LE) or head.startswith(codecs.BOM_UTF32_BE):
        return "utf-32"
    if b"\x00" in head:
        raise DataError(
            f"{path.name} looks like a binary file, not text. Expected JSON lines, JSON, CSV, Parquet or plain text."
        )
    return "utf-8-sig"


def _lines(path: Path) -> Iterator[tuple[int, str, int | None]]:
    """(line number, text, position of the first byte that is not valid UTF-8 or None) for every line.
    UTF-8 files are decoded line by line, so a bad byte is reported with its line, never trained on;
    UTF-16 and UTF-32 files (marked by their BOM) are decoded whole."""
    encoding = detect_encoding(path)
    if encoding != "utf-8-sig":
        with open(path, encoding=encoding, errors="replace", newline="") as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line, None
        return
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield number, raw.decode("utf-8"), None
            except UnicodeDecodeError as exc:
                yield number, raw.decode("utf-8", "replace"), exc.start


def bad_bytes(position: int) -> RowError:
    return RowError(
        f"has bytes that are not valid UTF-8 (byte {position + 1} of the line); save the file as UTF-8"
    )


def read_jsonl(path: Path) -> Iterator[tuple[Location, Any]]:
    for number, line, bad in _lines(path):
        text = line.strip()
        if not text:
            continue
        loc = Location(str(path), line=number)
        if bad is not None:
            yield loc, bad_bytes(bad)
            continue
        try:
            yield loc, json.loads(text)
        except json.JSONDecodeError as exc:
            yield loc, RowError(f"is not valid JSON ({json_problem(exc, text)})")


def json_problem(exc: json.JSONDecodeError, text: str) -> str:
    """What the JSON parser found, said once ('unterminated string starting at column 82'; the parser's
    own message ends in 'at' and was printed as 'at at')."""
    message = exc.msg[0].lower() + exc.msg[1:]
    message = message.removesuffix(" at")
    return f"{message} at column {exc.colno}"


def _json_hint(exc: json.JSONDecodeError, text: str) -> str:
    """The likely cause, from what stands where the parser stopped."""
    stopped = text[exc.pos : exc.pos + 1]
    before = text[: exc.pos].rstrip()[-1:]
    if stopped == "'" or "'" in text[max(0, exc.pos - 1) : exc.pos + 1]:
        return 'JSON takes double quotes (") around names and text, not single quotes.'
    if before == "," and stopped in "]}":
        return "JSON allows no comma after the last item of a list or object: remove it."
    # A string that never ends ran to the end of the file (JSON strings cannot hold a line break).
    if exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated string"):
        return "The file ends in the middle: it may be cut off. Expected a JSON array of objects, or one object per line (.jsonl)."
    return "Expected a JSON array of objects, or one object per line (.jsonl)."


def _rows_of_json(data: Any) -> list[Any] | None:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        lists = [
            v for v in data.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
        ]
        if len(lists) == 1:
            return lists[0]
    return None


def read_json(path: Path) -> Iterator[tuple[Location, Any]]:
    lines = []
    for number, line, bad in _lines(path):
        if bad is not None:
            raise DataError(
                f"{path.name} has bytes that are not valid UTF-8 on line {number}. Save the file as UTF-8 and "
                "try again."
            )
        lines.append(line)
    text = "".join(lines)
    if not text.strip():
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # A .json file holding JSON lines is common enough to accept.
        if exc.msg == "Extra data" and text.lstrip().startswith("{"):
            yield from read_jsonl(path)
            return
        raise DataError(
            f"{path.name} is not valid JSON: {json_problem(exc, text)}, line {exc.lineno}. "
            + _json_hint(exc, text)
        ) from None
    rows = _rows_of_json(data)
    if rows is None:
        kind = type(data).__name__
        keys = f" with keys {', '.join(map(str, data))}" if isinstance(data, dict) else ""
        raise DataError(
            f"{path.name} holds a JSON {kind}{keys}, not a list of rows. Expected an array of objects, "
            "or an object holding one array."
        )
    for number, row in enumerate(rows, start=1):
        yield Location(str(path), row=number), row


def read_delimited(path: Path, delimiter: str) -> Iterator[tuple[Location, Any]]:
    csv.field_size_limit(1 << 30)
    bad_lines: dict[int, int] = {}  # line number → first bad byte

    def text_lines() -> Iterator[str]:
        for number, line, bad in _lines(path):
            if bad is not None:
                bad_lines[number] = bad
            yield line

    reader = csv.DictReader(text_lines(), delimiter=delimiter)
    if not reader.fieldnames:
        return
    previous = reader.line_num
    for number, row in enumerate(reader, start=1):
        loc = Location(str(path), row=number)
        spanned = [bad_lines[n] for n in range(previous + 1, reader.line_num + 1) if n in bad_lines]
        previous = reader.line_num
        if spanned:
            yield loc, bad_bytes(spanned[0])
            continue
        if None in row:
            yield loc, RowError(f"has more fields than the header ({len(reader.fieldnames)} columns)")
            continue
        if all(v in (None, "") for v in row.values()):
            continue
        yield loc, {k: v for k, v in row.items() if k is not None}


def read_parquet(path: Path) -> Iterator[tuple[Location, Any]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise DataError(f"{path.name} is not a readable Parquet file ({exc}).") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            number += 1
            yield Location(str(path), row=number), row


def read_text_blocks(path: Path) -> Iterator[tuple[Location, Any]]:
    """Plain text: one document per block of lines separated by blank lines."""
    block: list[str] = []
    start, bad_in_block = 0, None

    def finished() -> tuple[Location, Any]:
        loc = Location(str(path), line=start)
        return (
            (loc, bad_bytes(bad_in_block)) if bad_in_block is not None else (loc, {"text": "\n".join(block)})
        )

    for number, line, bad in _lines(path):
        if line.strip():
            if not block:
                start, bad_in_block = number, None
            if bad is not None and bad_in_block is None:
                bad_in_block = bad
            block.append(line.rstrip("\r\n"))
        elif block:
            yield finished()
            block = []
    if block:
        yield finished()


READERS = {
    ".jsonl": read_jsonl,
    ".json": read_json,
    ".csv": lambda path: read_delimited(path, ","),
    ".tsv": lambda path: read_delimited(path, "\t"),
    ".parquet": read_parquet,
    ".txt": read_text_blocks,
    ".md": read_text_blocks,
}
# The one list of dataset file types: readers, drops, file dialogs and messages all use it.
SUFFIXES: tuple[str, ...] = tuple(READERS)


def suffix_text(last: str = ", ") -> str:
    """'.jsonl, .json, … or .md' for messages."""
    return ", ".join(SUFFIXES[:-1]) + last + SUFFIXES[-1]


def read_file(path: Path) -> Iterator[tuple[Location, Any]]:
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise DataError(
            f"{path.name} has an unsupported type ({suffix or 'no extension'}). Use {suffix_text(' or ')}."
        )
    return READERS[suffix](path)


def read_rows(path: Path) -> Iterator[tuple[Location, Any]]:
    for file in dataset_files(path):
        if file.suffix.lower() == ".parquet":
            yield from read_file(file)
            continue
        detect_encoding(file)  # refuse binary files up front, with their name
        yield from read_file(file)
