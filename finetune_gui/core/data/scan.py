"""Scan a dataset: detect its format, validate every row by line, count what is usable.

``scan_dataset`` makes one streaming pass (constant memory but for 17 bytes a row for duplicate
detection, plus the examples when asked to keep them) that reports problems by line and, for training,
yields the usable examples; ``load_examples`` is that pass keeping the examples. Bad rows are skipped and
reported; a dataset with nothing usable is refused in one sentence.
"""

from __future__ import annotations

import hashlib
import itertools
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from finetune_gui.core.data.formats import Example, RowProblem, detect_format, to_example
from finetune_gui.core.data.readers import Location, RowError, dataset_files, read_rows
from finetune_gui.core.errors import DataError

DETECT_ROWS = 200
Cancelled = Callable[[], bool]


@dataclass(frozen=True)
class Problem:
    location: Location
    message: str
    with_file: bool = False  # name the file too (a folder of several files)

    def describe(self) -> str:
        where = self.location.describe(self.with_file)
        if not self.with_file:  # 'Line 3 …'; a file name keeps its own spelling
            where = where[:1].upper() + where[1:]
        return f"{where} {self.message}."

    def to_dict(self) -> dict[str, Any]:
        return {**self.location.to_dict(), "message": self.describe()}


LARGE_SHARE = 0.1  # a share of skipped rows worth a warning of its own


@dataclass
class ScanReport:
    path: str
    format: str
    rows: int = 0  # usable rows
    total: int = 0  # rows read
    columns: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # the first max_problems
    problem_count: int = 0
    problem_kinds: dict[str, int] = field(default_factory=dict)
    sample: dict[str, Any] | None = None
    files: int = 1
    examples: list[Example] | None = None  # with keep_examples: the usable rows, duplicates dropped
    columns_applied: dict[str, str] | None = None  # a mapping proposed for common column names, used
    # A folder whose files have different formats: each file's own ({file name: format}); ``format`` is
    # then 'auto', which reads every file in its own format again.
    file_formats: dict[str, str] | None = None

    def skipped_sentence(self) -> str:
        """'12 of 40 rows (30%) cannot be used: …' when a large share is skipped; '' otherwise."""
        if not self.total or self.problem_count < max(1, LARGE_SHARE * self.total):
            return ""
        share = self.problem_count / self.total
        return (
            f"{self.problem_count:,} of {self.total:,} rows ({share:.0%}) cannot be used, so training would see "
            f"only {self.rows:,}: check the file (the first problems are listed) before you train on it."
        )

    def columns_sentence(self) -> str:
        """'Read column question as instruction and answer as output (proposed for their names; set
        dataset.columns to change it).' or ''."""
        if not self.columns_applied:
            return ""
        pairs = " and ".join(f"{column} as {field}" for field, column in self.columns_applied.items())
        return f"Read column {pairs} (proposed for their names; set dataset.columns to change it)."

    @property
    def usable(self) -> bool:
        return self.rows > 0


def _kind_of(message: str) -> str:
    """A short bucket name for a problem message, for the summary counts."""
    for key, label in (
        ("not valid JSON", "malformed JSON"),
        ("duplicate", "duplicate"),
        ("no assistant", "no assistant turn"),
        ("turns in a row", "roles out of order"),
        ("does not follow", "roles out of order"),
        ("system turn", "roles out of order"),
        ("empty", "empty field"),
        ("has no", "missing field"),
        ("where text was expected", "non-text value"),
        ("not text", "non-text value"),
        ("not an object", "not an object"),
    ):
        if key in message:
            return label
    return "other"


def _fingerprint(example: Example) -> int:
    digest = hashlib.blake2b(repr(example).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _detect(
    path: Path, fmt: str, columns: dict[str, str] | None, rows: Iterator[tuple[Location, Any]]
) -> tuple[str, list[str], list[tuple[Location, Any]], dict[str, str] | None]:
    """The dataset's format (detected from the first rows when 'auto'), the columns seen there, those
    first rows (which the caller validates like the rest: the file is read once) and the column mapping
    to read them with: the given one, or one proposed for common names when the file needs one."""
    from finetune_gui.core.data.formats import apply_columns, propose_columns

    head = list(itertools.islice(rows, DETECT_ROWS))
    parsed = [row for _, row in head if not isinstance(row, RowError)]
    columns_seen: list[str] = []
    for row in parsed:
        if isinstance(row, dict):
            for key in row:
                if str(key) not in columns_seen:
                    columns_seen.append(str(key))
    if fmt != "auto":
        return fmt, columns_seen, head, columns
    if not parsed:
        raise DataError(_nothing_found(path))
    try:
        detected = detect_format(apply_columns(r, columns) if isinstance(r, dict) else r for r in parsed)
    except DataError:
        proposed = None if columns else propose_columns(columns_seen)
        if proposed is None:
            raise
        # question/answer, input/output, frage/antwort…: the same mapping the window proposes.
        detected = detect_format(apply_columns(r, proposed) if isinstance(r, dict) else r for r in parsed)
        return detected, columns_seen, head, proposed
    return detected, columns_seen, head, columns


def _nothing_found(path: Path) -> str:
    files = dataset_files(path)
    if all(f.stat().st_size == 0 for f in files):
        return f"{path.name} is empty. Add rows of instruction/output, messages, conversations, prompt/completion or text."
    return (
        f"{path.name} has no readable rows (only blank lines or unparseable ones). "
        "Expected one JSON object per line, a JSON array, a CSV with a header, or text."
    )


def _validated(
    rows: Iterable[tuple[Location, Any]],
    fmt: str,
    columns: dict[str, str] | None,
    cancelled: Cancelled | None,
) -> Iterator[tuple[Location, Example | Problem]]:
    for count, (loc, row) in enumerate(rows):
        if cancelled is not None and count % 256 == 0 and cancelled():
            raise DataError("The dataset scan was cancelled.")
        if isinstance(row, RowError):
            yield loc, Problem(loc, row.message)
            continue
        try:
            yield loc, to_example(row, fmt, columns)
        except RowProblem as exc:
            yield loc, Problem(loc, str(exc))


class _RowIndex:
    """Where each usable row came from, in flat arrays (17 bytes a row instead of a Python object), so
    duplicates can be named by line after the pass without memory growing like the file."""

    def __init__(self) -> None:
        self.hashes = array("Q")
        self.numbers = array("Q")  # line or row number
        self.is_line = array("b")
        self.file_index = array("H")
        self.files: dict[str, int] = {}

    def add(self, digest: int, loc: Location) -> None:
        self.hashes.append(digest)
        self.numbers.append(loc.line if loc.line is not None else (loc.row or 0))
        self.is_line.append(1 if loc.line is not None else 0)
        self.file_index.append(self.files.setdefault(loc.file, len(self.files)))

    def location(self, i: int) -> Location:
        file = next(name for name, index in self.files.items() if index == self.file_index[i])
        number = int(self.numbers[i])
        return Location(file, line=number) if self.is_line[i] else Location(file, row=number)


def scan_dataset(
    path: str | Path,
    fmt: str = "auto",
    columns: dict[str, str] | None = None,
    *,
    keep_examples: bool = False,
    max_problems: int = 500,
    cancelled: Cancelled | None = None,
    progress: Callable[[int], None] | None = None,
) -> ScanReport:
    """One pass over the dataset: detect, validate every row, find duplicates; with ``keep_examples`` the
    usable, de-duplicated examples are kept on the report (``report.examples``) for training."""
    path = Path(path).expanduser()
    files = dataset_files(path)
    if fmt == "auto" and not columns and len(files) > 1:
        report, validated = _per_file(path, files, cancelled)
    else:
        rows_in = read_rows(path)
        fmt, columns_seen, head, mapping = _detect(path, fmt, columns, rows_in)
        report = ScanReport(str(path), fmt, columns=columns_seen, files=len(files))
        if mapping and not columns:
            report.columns_applied = dict(mapping)
        validated = _validated(itertools.chain(head, rows_in), fmt, mapping, cancelled)
    kinds: Counter[str] = Counter()
    index = _RowIndex()
    examples: list[Example] = []
    for loc, item in validated:
        report.total += 1
        if progress is not None and report.total % 5000 == 0:
            progress(report.total)
        if isinstance(item, Problem):
            kinds[_kind_of(item.message)] += 1
            report.problem_count += 1
            if len(report.problems) < max_problems:
                report.problems.append(replace(item, with_file=report.files > 1))
            continue
        report.rows += 1
        if report.sample is None:
            report.sample = item.to_dict()
        index.add(_fingerprint(item), loc)
        if keep_examples:
            examples.append(item)
    duplicates = _report_duplicates(report, index, kinds, max_problems)
    report.problem_kinds = dict(kinds)
    if keep_examples:
        drop = set(duplicates)
        report.examples = [e for i, e in enumerate(examples) if i not in drop]
    if not report.usable:
        raise DataError(_nothing_usable(report))
    return report


def _per_file(
    path: Path, files: list[Path], cancelled: Cancelled | None
) -> tuple[ScanReport, Iterator[tuple[Location, Example | Problem]]]:
    """A folder read file by file, each in the format its own rows show (a messages JSONL beside a
    prompt/completion CSV): the report's format is the one they share, or 'auto' with each file's."""
    found: list[tuple[Path, str, list[tuple[Location, Any]], Iterator[tuple[Location, Any]], Any]] = []
    columns_seen: list[str] = []
    for file in files:
        rows = read_rows(file)
        try:
            fmt, seen, head, mapping = _detect(file, "auto", None, rows)
        except DataError as exc:  # a file no format fits: its rows are problems, named by file
            found.append((file, "", [], iter(()), str(exc)))
            continue
        columns_seen += [c for c in seen if c not in columns_seen]
        found.append((file, fmt, head, rows, mapping))
    formats = {file.name: fmt for file, fmt, *_ in found if fmt}
    if not formats:
        raise DataError(str(found[0][4]))
    shared = set(formats.values())
    report = ScanReport(
        str(path), shared.pop() if len(shared) == 1 else "auto", columns=columns_seen, files=len(files)
    )
    if len(set(formats.values())) > 1:
        report.file_formats = formats

    def validated() -> Iterator[tuple[Location, Example | Problem]]:
        for file, fmt, head, rows, mapping in found:
            if not fmt:
                yield (
                    Location(str(file), line=1),
                    Problem(Location(str(file), line=1), f"cannot be read: {mapping}"),
                )
                continue
            yield from _validated(itertools.chain(head, rows), fmt, mapping, cancelled)

    return report, validated()


def _report_duplicates(
    report: ScanReport, rows: _RowIndex, kinds: Counter[str], max_problems: int
) -> list[int]:
    """Count and describe every repeat of an earlier row; returns the repeats' positions among usable rows."""
    if len(rows.hashes) < 2:
        return []
    import numpy as np

    values = np.frombuffer(rows.hashes, dtype=np.uint64)
    _, first_index, counts = np.unique(values, return_index=True, return_counts=True)
    if (counts > 1).sum() == 0:
        return []
    is_first: Any = np.zeros(len(values), dtype=bool)
    is_first[first_index] = True
    first_of = {int(values[i]): int(i) for i in first_index[counts > 1]}
    repeats = [int(i) for i in np.flatnonzero(~is_first)]
    several_files = len(rows.files) > 1
    for index in repeats:
        report.rows -= 1
        report.problem_count += 1
        kinds["duplicate"] += 1
        if len(report.problems) < max_problems:
            original = rows.location(first_of[int(values[index])])
            report.problems.append(
                Problem(
                    rows.location(index),
                    f"is an exact duplicate of {original.describe(with_file=several_files)}",
                    with_file=several_files,
                )
            )
    report.problems.sort(key=lambda p: (p.location.file, p.location.line or p.location.row or 0))
    return repeats


def _nothing_usable(report: ScanReport) -> str:
    if report.total == 0:
        return f"{Path(report.path).name} has no rows. Add examples and try again."
    top = report.problems[0].describe() if report.problems else ""
    return (
        f"None of the {report.total:,} rows of {Path(report.path).name} can be used as {report.format}: {top} "
        "Fix the rows, or choose the format and column mapping that matches the file."
    )


def load_examples(
    path: str | Path,
    fmt: str = "auto",
    columns: dict[str, str] | None = None,
    cancelled: Cancelled | None = None,
) -> tuple[list[Example], ScanReport]:
    """The usable, de-duplicated examples for training, with their scan report (one pass)."""
    report = scan_dataset(path, fmt, columns, keep_examples=True, cancelled=cancelled)
    return report.examples or [], report


def columns_of(path: str | Path, rows: int = DETECT_ROWS) -> list[str]:
    """The column names of a dataset's first rows (what a mapping can choose from), in their order;
    [] when the rows are not objects or the file cannot be read. Reads only the head of the file."""
    names: list[str] = []
    try:
        for _, row in itertools.islice(read_rows(Path(path).expanduser()), rows):
            if isinstance(row, dict):
                names += [str(k) for k in row if str(k) not in names]
    except (OSError, DataError):
        return []
    return names
