"""The dataset corpus: good, half-broken and broken files, each with its expected format, rows and lines."""

from __future__ import annotations

import codecs
import json
import subprocess
import sys

import pytest

from finetune_gui.core.data.scan import load_examples, scan_dataset
from finetune_gui.core.errors import DataError


def jl(*rows):
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)


CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}
CHAT2 = {
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
    ]
}
ALPACA = {"instruction": "Add", "input": "2 and 2", "output": "4"}
DOLLY = {"instruction": "Name a colour", "context": "", "response": "Blue", "category": "open_qa"}
SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "Pirate."},
        {"from": "human", "value": "Hi"},
        {"from": "gpt", "value": "Arr!"},
    ]
}
PC = {"prompt": "The sky is", "completion": " blue."}

# name: (file name, content (str or bytes), format, usable rows, {line or row: words in the message})
GOOD = {
    "messages": ("a.jsonl", jl(CHAT, CHAT2), "messages", 2, {}),
    "alpaca": ("a.jsonl", jl(ALPACA, {"instruction": "Say hi", "output": "hi"}), "alpaca", 2, {}),
    "dolly": ("d.jsonl", jl(DOLLY), "alpaca", 1, {}),
    "sharegpt": (
        "s.json",
        json.dumps([SHAREGPT, SHAREGPT | {"id": 2, "conversations": SHAREGPT["conversations"][1:]}]),
        "sharegpt",
        2,
        {},
    ),
    "prompt_completion": ("p.jsonl", jl(PC), "prompt_completion", 1, {}),
    "json_object_holding_array": ("o.json", json.dumps({"version": 1, "data": [ALPACA]}), "alpaca", 1, {}),
    "csv": ("c.csv", 'instruction,input,output\nAdd,"2, 2",4\nSay hi,,hi\n', "alpaca", 2, {}),
    "tsv": ("t.tsv", "prompt\tcompletion\nA\tB\nC\tD\n", "prompt_completion", 2, {}),
    "text": ("t.txt", "First document\nstill first.\n\n\nSecond document.\n\n", "text", 2, {}),
    "markdown": ("m.md", "# Title\n\nA paragraph.\n", "text", 2, {}),
    "utf8_bom_crlf": (
        "b.jsonl",
        codecs.BOM_UTF8 + jl(CHAT, ALPACA | {"x": 1}).replace("\n", "\r\n").encode(),
        "messages",
        1,
        {2: "has no 'messages'"},
    ),
    "utf16_bom": (
        "w.jsonl",
        codecs.BOM_UTF16_LE + jl(ALPACA, ALPACA | {"output": "5"}).encode("utf-16-le"),
        "alpaca",
        2,
        {},
    ),
    "trailing_blank_lines": ("t.jsonl", jl(PC) + "\n\n   \n", "prompt_completion", 1, {}),
    "json_lines_in_a_json_file": ("l.json", jl(PC, PC | {"completion": "x"}), "prompt_completion", 2, {}),
}

HALF_BROKEN = {
    "malformed_line": ("h.jsonl", jl(CHAT, '{"messages": [', CHAT2), "messages", 2, {2: "not valid JSON"}),
    "missing_and_empty": (
        "h.jsonl",
        jl(ALPACA, {"instruction": "x"}, {"instruction": "y", "output": "  "}),
        "alpaca",
        1,
        {2: "no 'output'", 3: "empty 'output'"},
    ),
    "non_string": (
        "h.jsonl",
        jl(PC, {"prompt": "a", "completion": 5}),
        "prompt_completion",
        1,
        {2: "int in 'completion'"},
    ),
    "no_assistant": (
        "h.jsonl",
        jl(CHAT, {"messages": [{"role": "user", "content": "Hi"}]}),
        "messages",
        1,
        {2: "no assistant turn"},
    ),
    "roles_out_of_order": (
        "h.jsonl",
        jl(
            CHAT,
            {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]},
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": "b"},
                    {"role": "assistant", "content": "c"},
                ]
            },
        ),
        "messages",
        1,
        {2: "does not follow a user turn", 3: "two 'user' turns in a row"},
    ),
    "duplicates": ("h.jsonl", jl(CHAT, CHAT2, CHAT), "messages", 2, {3: "exact duplicate of line 1"}),
    "not_an_object": ("h.jsonl", jl(PC, "[1, 2]"), "prompt_completion", 1, {2: "not an object"}),
    "csv_extra_field": (
        "h.csv",
        "prompt,completion\na,b\nc,d,e\n",
        "prompt_completion",
        1,
        {2: "more fields"},
    ),
    "sharegpt_bad_role": (
        "h.jsonl",
        jl(SHAREGPT, {"conversations": [{"from": "alien", "value": "x"}]}),
        "sharegpt",
        1,
        {2: "from 'alien'"},
    ),
}

BROKEN = {
    "empty_file": ("e.jsonl", "", "is empty"),
    "whitespace_only": ("w.jsonl", "  \n\n \n", "no readable rows"),
    "binary": ("b.jsonl", bytes(range(256)) * 4, "binary file"),
    "truncated_json": ("t.json", '[{"prompt": "a", "completion": "b"}, {"prompt": ', "not valid JSON"),
    "rows_not_objects": ("r.jsonl", jl("[1]", "2", '"x"'), "No row is a JSON object"),
    "unknown_columns": (
        "u.jsonl",
        jl({"foo": 1, "bar": 2}),
        "Found columns foo, bar; expected instruction/output",
    ),
    "json_scalar": ("s.json", "42", "not a list of rows"),
    "all_rows_bad": (
        "a.jsonl",
        jl({"prompt": "a", "completion": ""}, {"prompt": "b", "completion": " "}),
        "None of the 2 rows",
    ),
    "unsupported_type": ("x.docx", "hello", "unsupported type"),
}


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


@pytest.mark.parametrize("case", sorted(GOOD) + sorted(HALF_BROKEN))
def test_usable_files(case, tmp_path):
    name, content, fmt, rows, problems = (GOOD | HALF_BROKEN)[case]
    report = scan_dataset(write(tmp_path, name, content))
    assert report.format == fmt
    assert report.rows == rows
    found = {(p.location.line or p.location.row): p.message for p in report.problems}
    assert set(found) == set(problems), found
    for where, words in problems.items():
        assert words in found[where]
    examples, again = load_examples(tmp_path / name)
    assert len(examples) == rows and again.problem_count == report.problem_count


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_unusable_files_are_refused_in_one_sentence(case, tmp_path):
    name, content, words = BROKEN[case]
    with pytest.raises(DataError) as info:
        scan_dataset(write(tmp_path, name, content))
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "nope.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no dataset files"):
        scan_dataset(tmp_path / "empty")


def test_folder_of_files(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    write(folder, "a.jsonl", jl(CHAT))
    write(folder, "b.jsonl", jl(CHAT2, '{"broken'))
    report = scan_dataset(folder)
    assert report.files == 2 and report.rows == 2
    assert report.problems[0].location.file.endswith("b.jsonl") and report.problems[0].location.line == 2


def test_each_file_of_a_folder_is_read_in_its_own_format(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write(folder, "chats.jsonl", jl(CHAT, CHAT2))
    write(folder, "pairs.csv", 'prompt,completion\nWhat is 2+2?,4\nCapital of France?,Paris\n"broken,\n')
    report = scan_dataset(folder)
    assert report.rows == 4 and report.format == "auto"
    assert report.file_formats == {"chats.jsonl": "messages", "pairs.csv": "prompt_completion"}
    examples, _ = load_examples(folder)
    assert sorted(e.kind for e in examples) == ["chat", "chat", "completion", "completion"]
    # The Where of a problem names its file.
    assert report.problems and all("pairs.csv" in p.describe() for p in report.problems)
    same = tmp_path / "same"
    same.mkdir()
    write(same, "a.jsonl", jl(CHAT))
    write(same, "b.jsonl", jl(CHAT2))
    assert scan_dataset(same).format == "messages" and scan_dataset(same).file_formats is None


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"prompt": ["a", "b", ""], "completion": ["1", "2", "3"]}), tmp_path / "d.parquet"
    )
    report = scan_dataset(tmp_path / "d.parquet")
    assert report.format == "prompt_completion" and report.rows == 2
    assert report.problems[0].location.row == 3


def test_format_override_and_column_mapping(tmp_path):
    path = write(tmp_path, "q.jsonl", jl({"question": "What?", "answer": "That."}))
    proposed = scan_dataset(path)  # common names: the proposed mapping is applied and said
    assert proposed.columns_applied == {"instruction": "question", "output": "answer"}
    assert proposed.rows == 1 and proposed.sample["messages"][1]["content"] == "That."
    assert "Read column question as instruction and answer as output" in proposed.columns_sentence()
    odd = write(tmp_path, "odd.jsonl", jl({"thema": "What?", "wert": "That."}))
    with pytest.raises(DataError, match=r"Found columns thema, wert.*\{instruction: question"):
        scan_dataset(odd)
    report = scan_dataset(odd, "alpaca", {"instruction": "thema", "output": "wert"})
    assert report.rows == 1 and report.sample["messages"][1]["content"] == "That."
    assert report.columns_applied is None  # the user's own mapping, not a proposal
    inputs = write(tmp_path, "io.jsonl", jl({"input": "Hi?", "output": "Ho."}))
    assert scan_dataset(inputs).sample["messages"][0]["content"] == "Hi?"  # not said twice as context


def test_chat_preview_masks_only_the_answer(tiny_model):
    from finetune_gui.core.data.encode import IGNORE, encode, segments
    from finetune_gui.core.data.formats import to_example
    from finetune_gui.core.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(str(tiny_model)))
    example = to_example(CHAT2, "messages")
    pieces = segments(example, tokenizer)
    trained = "".join(t for t, flag in pieces if flag)
    assert trained == "4<|im_end|>\n"
    text = "".join(t for t, _ in pieces)
    assert text == tokenizer.apply_chat_template(
        [dict(role=r, content=c) for r, c in example.messages], tokenize=False
    )
    encoded = encode(example, tokenizer, 512)[0]
    assert (
        tokenizer.decode(
            [i for i, lab in zip(encoded.input_ids, encoded.labels, strict=True) if lab != IGNORE]
        )
        == trained
    )
    assert tokenizer.decode(encoded.input_ids) == text


def test_multi_turn_trains_every_assistant_turn(tiny_model):
    from finetune_gui.core.data.encode import segments
    from finetune_gui.core.data.formats import to_example
    from finetune_gui.core.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(str(tiny_model)))
    row = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
            {"role": "assistant", "content": "d"},
        ]
    }
    trained = [t for t, flag in segments(to_example(row, "messages"), tokenizer) if flag]
    assert trained == ["b<|im_end|>\n", "d<|im_end|>\n"]


def test_fallback_template_and_truncation(tiny_model):
    from finetune_gui.core.data.encode import encode, ensure_chat_template, segments, token_stats
    from finetune_gui.core.data.formats import to_example
    from finetune_gui.core.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(str(tiny_model)))
    tokenizer.chat_template = None
    assert ensure_chat_template(tokenizer)
    example = to_example(ALPACA, "alpaca")
    pieces = segments(example, tokenizer)
    assert pieces[0][0].startswith("### User:\nAdd\n\n2 and 2") and pieces[1] == ("4<|im_end|>\n\n", True)
    long = to_example({"prompt": "word " * 300, "completion": "end"}, "prompt_completion")
    encoded = encode(long, tokenizer, 32)[0]
    assert len(encoded.input_ids) == 32 and encoded.truncated and encoded.trained_tokens == 0
    stats = token_stats([10, 20, 30, 40, 100], 35)
    assert stats["truncated"] == 2 and stats["max"] == 100 and stats["median"] == 30
    assert sum(stats["histogram"]["counts"]) == 5


def test_text_documents_are_chunked_not_cut(tiny_model):
    from finetune_gui.core.data.encode import encode
    from finetune_gui.core.data.formats import Example
    from finetune_gui.core.models import load_tokenizer, resolve_model

    tokenizer = load_tokenizer(resolve_model(str(tiny_model)))
    chunks = encode(Example("text", text="word " * 200), tokenizer, 64)
    assert len(chunks) > 1 and all(len(c.input_ids) <= 64 for c in chunks)


def test_split_is_seeded():
    from finetune_gui.core.data.encode import split

    items = list(range(100))
    train, val = split(items, 0.1, 42)
    assert len(val) == 10 and sorted(train + val) == items
    assert split(items, 0.1, 42) == (train, val) and split(items, 0.1, 7) != (train, val)
    assert split(items[:3], 0.5, 1) == (items[:3], [])


def run_inspect(*args):
    return subprocess.run(
        [sys.executable, "-m", "finetune_gui", "data", "inspect", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_inspect_cli_usable_and_not(tmp_path, tiny_model):
    good = write(tmp_path, "g.jsonl", jl(CHAT, '{"oops', CHAT2))
    result = run_inspect(str(good), "--json", "--model", str(tiny_model))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["format"] == "messages" and data["rows"] == 2 and data["usable"]
    assert data["problems"][0]["line"] == 2 and "not valid JSON" in data["problems"][0]["message"]
    assert data["token_stats"]["count"] == 2
    assert any(piece["trained"] for piece in data["formatted_sample"])
    bad = write(tmp_path, "b.jsonl", jl({"foo": 1}))
    result = run_inspect(str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert run_inspect(str(tmp_path / "missing.csv")).returncode == 2


@pytest.mark.parametrize(
    ("text", "said", "not_said"),
    [
        ("[{'prompt': 'a', 'completion': 'b'}]", "double quotes", "cut off"),
        ('[{"prompt": "a", "completion": "b"},]', "no comma after the last item", "cut off"),
        ('[{"prompt": "a", "completion": "b"}, {"prompt": "c", "compl', "cut off", "double quotes"),
        ('[{"prompt": "a", "completion": "b"}, {"prompt": ', "cut off", "comma"),
    ],
)
def test_a_broken_json_file_says_what_is_wrong_with_it(tmp_path, text, said, not_said):
    path = write(tmp_path, "d.json", text)
    with pytest.raises(DataError) as caught:
        scan_dataset(path)
    message = str(caught.value)
    assert said in message and not_said not in message and " at at " not in message


def test_a_broken_json_line_says_its_column_once(tmp_path):
    path = write(tmp_path, "d.jsonl", jl({"prompt": "a", "completion": "b"}) + '{"prompt": "unterminated\n')
    problem = scan_dataset(path).problems[0].describe()
    assert problem == "Line 2 is not valid JSON (unterminated string starting at column 12)."
