"""The command line under faults and bad input: every failure is one sentence and a non-zero exit, and
nothing the user made is changed or lost."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli
from test_training import ListSink, make_config

from finetune_gui.core.events import Failed, Finished, Log, Step
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.recipe import run_training

REPO = Path(__file__).resolve().parents[1]


def one_sentence(result):
    """A refusal: non-zero, no traceback, one line on stderr after the progress chatter."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = [x for x in result.stderr.splitlines() if x.startswith("finetune-gui: ")][-1]
    return line


def fingerprint(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def save(config, tmp_path, name="run.yaml"):
    path = tmp_path / name
    config.save(path)
    return path


# -- data lost or corrupted ----------------------------------------------------------------------------


def test_an_output_dir_that_is_not_a_run_is_never_written_into(tiny_model, small_dataset, tmp_path):
    theirs = tmp_path / "my-project"
    (theirs / "adapter").mkdir(parents=True)
    (theirs / "adapter" / "weights.bin").write_bytes(b"precious")
    (theirs / "config.yaml").write_text("mine: true\n")
    (theirs / "metrics.jsonl").write_text('{"step": 1}\n')
    before = fingerprint(theirs)
    config = make_config(tiny_model, small_dataset, theirs, max_steps=2)
    line = one_sentence(cli("train", save(config, tmp_path)))
    assert "not a finetune-gui run" in line and "nothing in that folder was changed" in line
    assert fingerprint(theirs) == before


def test_resume_with_another_method_leaves_the_finished_run_as_it_was(tiny_model, small_dataset, tmp_path):
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=4, save_steps=2)
    assert run_training(config, sink=ListSink(), control=RunControl()) == 0
    before = fingerprint(tmp_path / "run")
    config.method = "dora"
    line = one_sentence(cli("train", save(config, tmp_path), "--resume"))
    assert "trained with method lora" in line and "Nothing was changed" in line
    assert fingerprint(tmp_path / "run") == before


def test_the_library_survives_a_damaged_index_and_concurrent_writers(tiny_model, tmp_path):
    from test_adapters import make_lora

    from finetune_gui.core.adapters.library import AdapterLibrary, index_path

    first = make_lora(tiny_model, tmp_path / "first", 4, 1)
    AdapterLibrary().add(first, name="first", steps=12, final_loss=0.3)
    index_path().write_text(index_path().read_text()[:40])  # truncated by a crash of another tool
    listed = cli("adapters", "list", "--json")
    assert listed.returncode == 0 and [a["name"] for a in json.loads(listed.stdout)["adapters"]] == ["first"]
    index_path().write_text('{"adapters": {"not": "a list"}}')  # the wrong shape
    AdapterLibrary().add(make_lora(tiny_model, tmp_path / "second", 4, 2), name="second")
    names = sorted(e["name"] for e in AdapterLibrary().entries())
    assert names == ["first", "second"]
    snapshot = {e["name"]: e for e in json.loads(index_path().read_text())["adapters"]}
    assert snapshot["first"]["steps"] == 12 and "second" in snapshot  # rebuilt whole, facts kept

    # Two processes registering 100 adapters each at once lose none (the library keys an entry by its
    # folder, so each registration names a folder of its own: links to one adapter each).
    copies = [make_lora(tiny_model, tmp_path / f"copy{k}", 4, 3 + k) for k in range(2)]
    jobs = []
    for k in range(2):
        folders = [tmp_path / f"w{k}-{i}" for i in range(100)]
        for folder in folders:
            folder.symlink_to(copies[k], target_is_directory=True)
        body = (
            "import sys\nfrom finetune_gui.core.adapters.library import AdapterLibrary\n"
            "library = AdapterLibrary()\n"
            f"for i in range(100):\n    library.add('{tmp_path}/w{k}-' + str(i), name=f'w{k}-{{i}}')\n"
        )
        jobs.append(subprocess.Popen([sys.executable, "-c", body]))
    assert all(job.wait(timeout=300) == 0 for job in jobs)
    entries = AdapterLibrary().entries()
    assert len(entries) == 202
    assert len(json.loads(index_path().read_text())["adapters"]) == 202


def test_a_diverging_run_stops_saves_nothing_and_is_not_registered(
    tiny_model, small_dataset, tmp_path, monkeypatch
):
    from finetune_gui.core.adapters.library import AdapterLibrary

    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=8, save_steps=100)
    inf = save(config, tmp_path)
    line = one_sentence(cli("train", inf, "--set", "training.learning_rate=.inf"))
    assert "finite" in line
    monkeypatch.setenv("FINETUNE_GUI_SIMULATE_NAN_AT_STEP", "3")
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 5
    failed = sink.of(Failed)[0]
    assert failed.kind_ == "diverged" and "learning rate" in failed.message
    assert not (tmp_path / "run" / "adapter").exists() and not sink.of(Finished)
    assert AdapterLibrary().entries() == []
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


# -- stuck or misleading -------------------------------------------------------------------------------


def test_a_full_disk_during_a_checkpoint_is_one_sentence_and_the_record_survives(
    tiny_model, small_dataset, tmp_path, monkeypatch
):
    import torch

    real_save = torch.save

    def full_disk(obj, path, *args, **kwargs):
        if str(path).endswith("optimizer.pt") and "checkpoint-4" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=8, save_steps=2)
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 6
    failed = sink.of(Failed)[0]
    assert (
        failed.kind_ == "disk" and "The disk is full" in failed.message and "checkpoint-2" in failed.message
    )
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "failed" and run["error_kind"] == "disk"


def test_the_failure_report_never_fails_itself(tiny_model, small_dataset, tmp_path, monkeypatch):
    from finetune_gui.core.runs import RunFolder

    monkeypatch.setenv("FINETUNE_GUI_SIMULATE_CRASH_AT_STEP", "2")
    real_update = RunFolder.update

    def failing_update(self, **fields):
        if fields.get("status") == "failed":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_update(self, **fields)

    monkeypatch.setattr(RunFolder, "update", failing_update)
    sink = ListSink()
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=6)
    assert run_training(config, sink=sink, control=RunControl()) == 1
    assert sink.of(Failed)[0].kind_ == "crash"


def test_merge_on_a_full_disk_is_one_sentence(tiny_model, tmp_path, monkeypatch):
    from test_adapters import make_lora

    from finetune_gui.core.adapters import merge as merge_module
    from finetune_gui.core.adapters.exporter import export
    from finetune_gui.core.errors import UserError

    adapter = make_lora(tiny_model, tmp_path / "a", 4, 1)

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))

    monkeypatch.setattr(merge_module, "_write_streaming", full)
    with pytest.raises(UserError, match="The disk is full"):
        export(str(tiny_model), [(str(adapter), 1.0)], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize("where", ["file", "below-a-file"])
def test_an_output_dir_that_cannot_be_a_folder_is_one_sentence(tiny_model, small_dataset, tmp_path, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = blocker if where == "file" else blocker / "run"
    config = make_config(tiny_model, small_dataset, out, max_steps=2)
    line = one_sentence(cli("train", save(config, tmp_path)))
    assert "is a file" in line and "crash" not in line and "error.log" not in line


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tiny_model, small_dataset, tmp_path):
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=6, save_steps=2)
    config.training.save_total_limit = 3
    assert run_training(config, sink=ListSink(), control=RunControl()) == 0
    newest = tmp_path / "run" / "checkpoints" / "checkpoint-6" / "adapter_model.safetensors"
    newest.write_bytes(newest.read_bytes()[:200])  # cut short by a crash
    config.training.max_steps = 8
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl(), resume=True) == 0
    logs = " ".join(e.message for e in sink.of(Log))
    assert "checkpoint-6 is damaged (adapter_model.safetensors is truncated or damaged)" in logs
    assert "Resuming from checkpoint-4" in logs
    steps = [e.step for e in sink.of(Step)]
    assert steps[0] == 5 and steps[-1] == 8
    assert (tmp_path / "run" / "checkpoints" / "damaged-checkpoint-6").is_dir()  # kept, out of the way


def test_killed_before_the_first_checkpoint_starts_over(tiny_model, small_dataset, tmp_path):
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=60, save_steps=1000)
    path = save(config, tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "finetune_gui", "train", str(path)],
        env=dict(os.environ, FINETUNE_GUI_TEST_STEP_DELAY="0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "run" / "metrics.jsonl").is_file():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    process.kill()
    process.wait(30)
    resume = cli("train", path, "--resume")
    assert "Start it again without --resume" in one_sentence(resume)
    again = cli("train", path, "--set", "training.max_steps=3")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Starting over" in again.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "completed"


def test_an_adapter_for_another_base_is_refused(tiny_model, tmp_path):
    import sys as _sys

    from test_adapters import make_lora

    _sys.path.insert(0, str(REPO / "tools"))
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig.from_pretrained(tiny_model)
    config.num_hidden_layers = 3  # same width, more layers
    other = tmp_path / "other-base"
    AutoModelForCausalLM.from_config(config).save_pretrained(other)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        if (tiny_model / name).is_file():
            (other / name).write_bytes((tiny_model / name).read_bytes())
    adapter = make_lora(tiny_model, tmp_path / "for-tiny", 4, 1)
    line = one_sentence(
        cli("generate", "--model", other, "--adapter", adapter, "--prompt", "Hi", "--max-new-tokens", 2)
    )
    assert "trained for a model with 2 layers" in line and "this base has 3" in line
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    line = one_sentence(cli("generate", "--model", tiny_model, "--adapter", adapter, "--prompt", "Hi"))
    assert "damaged or cut short" in line
    (adapter / "adapter_config.json").write_text("{not json")
    assert "not valid JSON" in one_sentence(
        cli("generate", "--model", tiny_model, "--adapter", adapter, "--prompt", "Hi")
    )


def test_a_batch_that_cannot_fit_is_refused_before_loading(tiny_model, small_dataset, tmp_path):
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=2, batch_size=1_000_000)
    started = time.monotonic()
    result = cli("train", save(config, tmp_path))
    line = one_sentence(result)
    assert result.returncode == 3 and "needs about" in line and "of RAM is free" in line
    assert time.monotonic() - started < 120


def test_huge_lines_bad_bytes_and_cross_file_duplicates(tiny_model, tmp_path):
    import resource

    data = tmp_path / "data"
    data.mkdir()
    rows = [
        {"messages": [{"role": "user", "content": f"Q{i}"}, {"role": "assistant", "content": f"A{i}"}]}
        for i in range(6)
    ]
    huge = {
        "messages": [{"role": "user", "content": "word " * 4_000_000}, {"role": "assistant", "content": "ok"}]
    }
    with (data / "a.jsonl").open("wb") as handle:
        for row in rows:
            handle.write((json.dumps(row) + "\n").encode())
        handle.write((json.dumps(huge) + "\n").encode())
        handle.write(
            b'{"messages": [{"role": "user", "content": "caf\xe9"}, {"role": "assistant", "content": "x"}]}\n'
        )
    (data / "b.jsonl").write_text(json.dumps(rows[0]) + "\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = cli("data", "inspect", data, "--model", tiny_model, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    peak_gib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20
    assert peak_gib < 2.0, f"peak {peak_gib:.1f} GiB for a 20 MB line"
    report = json.loads(result.stdout)
    messages = [p["message"] for p in report["problems"]]
    assert any("a.jsonl line 8 has bytes that are not valid UTF-8" in m for m in messages), messages
    assert any("b.jsonl line 1 is an exact duplicate of a.jsonl line 1" in m for m in messages), messages
    assert report["token_stats"]["truncated"] >= 1


def test_resume_with_a_longer_run_starts_at_a_real_learning_rate(tiny_model, small_dataset, tmp_path):
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=6, save_steps=3)
    config.training.lr_scheduler = "cosine"
    config.training.learning_rate = 1e-2
    assert run_training(config, sink=ListSink(), control=RunControl()) == 0
    path = save(config, tmp_path)
    before = fingerprint(tmp_path / "run")
    at_end = cli("train", path, "--resume")
    assert "already trained 6 of its 6 steps" in one_sentence(at_end)
    assert fingerprint(tmp_path / "run") == before
    longer = cli("train", path, "--resume", "--set", "training.max_steps=12", "--events", "jsonl")
    assert longer.returncode == 0, longer.stderr[-2000:]
    steps = [json.loads(x) for x in longer.stdout.splitlines() if '"event": "step"' in x]
    assert steps[0]["step"] == 7 and steps[0]["learning_rate"] > 1e-3
    assert steps[-1]["step"] == 12


def test_one_run_per_output_folder(tiny_model, small_dataset, tmp_path):
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=200, save_steps=2)
    path = save(config, tmp_path)
    first = subprocess.Popen(
        [sys.executable, "-m", "finetune_gui", "train", str(path)],
        env=dict(os.environ, FINETUNE_GUI_TEST_STEP_DELAY="0.5"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "run" / "checkpoints" / "checkpoint-2").is_dir():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        line = one_sentence(cli("train", path, "--resume"))
        assert "Another training process is writing into" in line
    finally:
        first.kill()
        first.wait(30)


def test_child_processes_share_the_cores(monkeypatch):
    from finetune_gui.core.processes import child_env, thread_count

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert thread_count(2, cores=2) == 1 and thread_count(1, cores=8) == 8 and thread_count(3, cores=8) == 2
    env = child_env(2)
    assert env["OMP_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # the user's own choice is kept
    assert child_env(2)["OMP_NUM_THREADS"] == "7"


def test_runs_started_outside_the_window_share_the_cores_too(tmp_path, monkeypatch):
    """A run left training when its window closed, or a command-line run beside the window: a new torch
    process counts it and takes its share of the cores."""
    from finetune_gui.core import processes

    assert processes._is_torch_command(["/usr/bin/python3", "-m", "finetune_gui", "train", "run.yaml"])
    assert processes._is_torch_command(["/home/me/.venv/bin/finetune-gui", "generate-server", "--model", "m"])
    assert not processes._is_torch_command(["/usr/bin/python3", "-m", "finetune_gui", "estimate", "m"])
    assert not processes._is_torch_command(["vim", "finetune_gui"])
    # A stand-in for another run: a process whose command line reads like one (it only sleeps).
    script = tmp_path / "finetune_gui"
    script.write_text("import time\ntime.sleep(60)\n")
    other = subprocess.Popen([sys.executable, str(script), "train", "elsewhere.yaml"], start_new_session=True)
    try:
        assert other.pid not in processes.other_torch_pids()  # our own child: the window counts it
        # Seen from another process (a sibling, as a new command in a terminal is), it counts.
        seen = subprocess.run(
            [
                sys.executable,
                "-c",
                "from finetune_gui.core.processes import other_torch_pids as o; print(*o())",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert str(other.pid) in seen.stdout.split()
        for name in processes.THREAD_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(processes.SHARE_ENV, raising=False)
        monkeypatch.setattr(processes, "others_running", lambda: 1)
        monkeypatch.setattr(processes.os, "cpu_count", lambda: 4)
        processes.share_cores("train")
        assert os.environ["OMP_NUM_THREADS"] == "2"
    finally:
        other.kill()
        other.wait(10)
