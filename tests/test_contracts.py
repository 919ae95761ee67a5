"""The typed records that cross a process or file boundary: each round-trips through its JSON form, reads
the wire format other programs write, and keeps what it does not know."""

from __future__ import annotations

import json

from finetune_gui.core.events import Alert, Failed, Fix, Learned, event_from_dict, parse_event
from finetune_gui.core.runs import RunFolder, RunRecord, StepTiming


def test_a_fix_reads_and_writes_its_wire_form_inside_events():
    fix = Fix("batch 4 → 2 (half the activations)", {"training.batch_size": 2})
    assert fix.to_dict() == {"label": "batch 4 → 2 (half the activations)", "set": {"training.batch_size": 2}}
    assert fix.short_label == "batch 4 → 2"
    failed = Failed(kind_="oom", message="Out of memory.", advice=[fix.label], fixes=[fix])
    wire = json.loads(failed.to_json())
    assert wire["kind"] == "oom" and wire["fixes"] == [fix.to_dict()]
    back = parse_event(failed.to_json())
    assert back == failed and isinstance(back.fixes[0], Fix)
    alert = event_from_dict(
        {"event": "alert", "step": 3, "alert": "flat loss", "message": "m", "fixes": [fix.to_dict()]}
    )
    assert isinstance(alert, Alert) and alert.fixes == [fix]


def test_the_run_record_round_trips_and_keeps_keys_it_does_not_know(tmp_path):
    learned = Learned(
        step=9, questions=8, base_right=0, tuned_right=7, changed=8, verdict="learned", summary="s"
    )
    alert = Alert(
        step=4, alert="gradient spike", message="m", fixes=[Fix("half", {"training.learning_rate": 1e-4})]
    )
    record = RunRecord(
        status="completed",
        pid=12,
        method="lora",
        model="m",
        metrics={"steps": 9, "eval_loss": 1.5},
        learning=learned,
        alerts=[alert],
        timing=StepTiming(2.5, 300.0, 7),
        base_answers=["a", "b"],
    )
    data = record.to_dict()
    assert data["learning"]["verdict"] == "learned" and "event" not in data["learning"]
    assert data["alerts"][0]["fixes"][0]["set"] == {"training.learning_rate": 1e-4}
    assert data["timing"] == {"seconds_per_step": 2.5, "tokens_per_step": 300.0, "steps": 7}
    assert RunRecord.from_dict(json.loads(json.dumps(data))) == record
    # A newer app's key survives an update by this one; a wrongly typed value reads as unknown.
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    folder.run_json.write_text(json.dumps({**data, "pid": "not a pid", "from_the_future": {"x": 1}}))
    read = folder.read()
    assert read.pid is None and read.extra == {"from_the_future": {"x": 1}} and read.learning == learned
    folder.update(status="stopped")
    on_disk = json.loads(folder.run_json.read_text())
    assert on_disk["from_the_future"] == {"x": 1} and on_disk["status"] == "stopped" and on_disk["updated_at"]
    # A misspelt field is an error in the code, not a new key in the file.
    try:
        folder.update(stauts="failed")
    except TypeError:
        pass
    else:
        raise AssertionError("an unknown field was written")


def test_a_missing_or_broken_run_json_reads_as_an_empty_record(tmp_path):
    folder = RunFolder(tmp_path / "none")
    assert folder.read() == RunRecord() and folder.read().status == "unknown"
    folder.path.mkdir()
    folder.run_json.write_text("[1, 2")
    assert folder.read() == RunRecord()
    folder.run_json.write_text(
        json.dumps({"learning": "not a record", "alerts": [1, {"nope": 2}], "timing": {}})
    )
    read = folder.read()
    assert read.learning is None and read.alerts == [] and read.timing is None


def test_the_generate_protocol_round_trips_both_ways():
    from finetune_gui.core.adapters.generate_protocol import (
        AnswerRequest,
        Done,
        GenerateError,
        Ready,
        StopRequest,
        Token,
        parse_reply,
        parse_request,
    )

    request = AnswerRequest("Hi", id="tuned", adapters=[("/a", 0.7)], temperature=0.5, system="Be brief.")
    wire = json.loads(json.dumps(request.to_dict()))
    assert wire["adapters"] == [["/a", 0.7]] and parse_request(wire) == request
    assert parse_request({"stop": True}) == StopRequest() and StopRequest().to_dict() == {"stop": True}
    # What an older window sent: no system, no id; a line of nonsense is skipped.
    assert parse_request({"prompt": "x"}) == AnswerRequest("x")
    assert parse_request({"prompt": "x", "max_new_tokens": "lots"}) is None and parse_request([1]) is None
    for reply in (
        Ready("m"),
        Token("base", "Hel"),
        Done("base", end="length", tokens=12, seconds=0.5),
        GenerateError("No model at m.", id="tuned"),
    ):
        assert parse_reply(json.loads(reply.to_json())) == reply
    assert json.loads(Done("x").to_json())["event"] == "done"
    assert Done("b", tokens=12, seconds=0.5).tokens_per_s == 24.0 and Done("b").tokens_per_s is None
    assert parse_reply({"event": "token", "id": "b"}) is None  # a required field is missing
    assert parse_reply({"event": "unknown"}) is None


def test_the_export_report_round_trips_and_moves_with_its_folder(tmp_path):
    from finetune_gui.core.adapters.export_report import ExportReport, GgufCheck, MergeCheck
    from finetune_gui.core.adapters.gguf_check import TensorCheck

    staging, final = tmp_path / ".out.partial", tmp_path / "out"
    tensors = TensorCheck(12, (), 1e-3, 5e-2, 0.97, 10)
    report = ExportReport(
        format="gguf",
        output=str(staging / "model"),
        folder=str(staging),
        name="out",
        merge=MergeCheck(True, "verified: max difference 1e-6", 1e-6, 1.0, 20),
        gguf=GgufCheck(
            str(staging / "out-q8_0.gguf"), "q8_0", False, "NOT verified: …", tensors, 0.97, notes=["n"]
        ),
        modelfile=str(staging / "Modelfile"),
        ollama="ollama create out -f Modelfile",
    )
    assert not report.verified and report.messages == ["verified: max difference 1e-6", "NOT verified: …"]
    wire = json.loads(json.dumps(report.to_dict()))
    assert wire["verified"] is False and wire["gguf"]["tensors"]["keeps_fine_tune"] is True
    assert "perplexity" not in wire["gguf"]  # answers not checked: no figures, rather than nulls
    assert ExportReport.from_dict(wire) == report
    moved = report.moved(staging, final)
    assert moved.folder == str(final) and moved.output == str(final / "model")
    assert moved.gguf.path == str(final / "out-q8_0.gguf") and moved.modelfile == str(final / "Modelfile")
    # An adapter copy merges nothing and runs no check: verified is what it says of the files it copied.
    copy = ExportReport(format="adapter", output=str(final), folder=str(final))
    assert copy.verified and copy.messages == [] and "merge" not in copy.to_dict()


def test_every_export_format_is_offered_by_the_merge_command():
    from finetune_gui.cli import build_parser
    from finetune_gui.core.adapters.exporter import EXPORT_FORMATS

    parser = build_parser()
    merge = next(
        a for a in parser._subparsers._group_actions[0].choices["merge"]._actions if a.dest == "format"
    )
    assert list(merge.choices) == list(EXPORT_FORMATS) == ["safetensors", "gguf", "adapter"]
    assert [f.name for f in EXPORT_FORMATS.values() if not f.merges] == ["adapter"]


def test_the_dataset_report_round_trips(tmp_path):
    from finetune_gui.core.data.inspect import DatasetReport, inspect

    data = tmp_path / "qa.csv"
    data.write_text("question,answer\nWhat is 2+2?,4\nCapital of France?,Paris\n,missing\n")
    report = inspect(str(data))
    assert (
        report.columns_used == {"instruction": "question", "output": "answer"} and report.problem_count == 1
    )
    wire = json.loads(json.dumps(report.to_dict()))
    assert wire["total_rows"] == 3 and wire["token_stats"] is None and "formatted_sample" not in wire
    assert DatasetReport.from_dict(wire) == report
