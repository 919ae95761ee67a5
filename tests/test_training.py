"""The training engine on the tiny model: every method, events, run folder, stop, pause, resume, OOM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import cli

from finetune_gui.core.config import RunConfig
from finetune_gui.core.events import Eval, Failed, Finished, Started, Step, parse_event
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.recipe import run_training

REPO = Path(__file__).resolve().parents[1]


class ListSink:
    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)

    def close(self):
        pass

    def of(self, cls):
        return [e for e in self.events if isinstance(e, cls)]


def make_config(tiny_model, dataset, out, method="lora", **training):
    config = RunConfig(model=str(tiny_model), method=method, output_dir=str(out))
    config.dataset.path = str(dataset)
    config.dataset.validation_split = 0.25
    t = config.training
    t.max_steps, t.batch_size, t.max_seq_len, t.logging_steps = 6, 4, 96, 1
    t.eval_steps, t.save_steps, t.warmup_ratio, t.lr_scheduler = 3, 3, 0.0, "constant"
    # The random tiny model never says its end-of-text token: keep its few check answers short.
    t.check_questions, t.sample_max_new_tokens = 2, 8
    t.early_stopping = 0  # these runs test other things; tests/test_early_stop.py tests it
    t.check_forgetting = False  # tests/test_forgetting.py tests it
    for key, value in training.items():
        setattr(t, key, value)
    config.lora.r = 8
    config.bottleneck.bottleneck = 16
    config.prefix.num_virtual_tokens = config.prompt.num_virtual_tokens = 4
    return config


def base_logits(model_dir, ids):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir)(ids).logits


# Learning rates that make the tiny random model's loss move within 20 steps.
LEARNING_RATES = {"full": 3e-3, "lora": 1e-2, "qlora": 1e-2, "dora": 1e-2}


@pytest.mark.parametrize("method", ["full", "lora", "qlora", "dora"])
def test_method_learns_and_its_output_loads_in_plain_libraries(method, tiny_model, small_dataset, tmp_path):
    import torch

    config = make_config(
        tiny_model,
        small_dataset,
        tmp_path / "run",
        method,
        max_steps=20,
        learning_rate=LEARNING_RATES[method],
        save_steps=100,
        eval_steps=100,
    )
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 0
    losses = [e.loss for e in sink.of(Step)]
    assert len(losses) == 20
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.2, losses
    finished = sink.of(Finished)[0]
    assert finished.status == "completed"
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "completed" and run["world_size"] == 1 and run["metrics"]["steps"] == 20
    # This machine's step time, from the second step on, for the next run's estimate.
    timing = run["timing"]
    assert timing["steps"] == 19 and timing["seconds_per_step"] > 0
    assert 0 < timing["tokens_per_step"] <= 4 * config.training.max_seq_len
    ids = torch.tensor([[1, 5, 9, 20, 30, 40]])
    reference = base_logits(tiny_model, ids)
    from transformers import AutoModelForCausalLM

    if method == "full":
        tuned = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")
    else:
        from peft import PeftModel

        tuned = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(tiny_model), tmp_path / "run" / "adapter"
        )
    assert not torch.allclose(tuned(ids).logits, reference, atol=1e-4)


@pytest.mark.parametrize("method", ["ia3", "prefix", "prompt", "bottleneck"])
def test_light_methods_train_and_save(method, tiny_model, small_dataset, tmp_path):
    import torch

    config = make_config(tiny_model, small_dataset, tmp_path / "run", method, max_steps=4)
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 0
    started = sink.of(Started)[0]
    assert 0 < started.trainable_parameters < started.total_parameters
    assert [e.step for e in sink.of(Eval)] == [3, 4]  # on schedule, and once more at the end
    adapter = tmp_path / "run" / "adapter"
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    ids = torch.tensor([[1, 5, 9, 20, 30, 40]])
    before = base(ids).logits
    if method == "bottleneck":
        from finetune_gui.core.adapters.adapter_folder import describe_adapter
        from finetune_gui.core.tuners import bottleneck

        assert describe_adapter(adapter)["kind"] == "bottleneck"
        tuned = bottleneck.load(base, adapter)
        assert not torch.allclose(tuned(ids).logits, before, atol=1e-6)
    else:
        from peft import PeftModel

        tuned = PeftModel.from_pretrained(base, adapter)
        after = tuned(ids).logits[:, -ids.shape[1] :]  # prompt tuning prepends its virtual tokens
        assert after.shape == before.shape
        assert not torch.allclose(after, before, atol=1e-6), "the trained adapter changes nothing"


def test_events_metrics_and_run_json(tiny_model, small_dataset, tmp_path):
    config = make_config(tiny_model, small_dataset, tmp_path / "run")
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 0
    kinds = [e.kind for e in sink.events]
    assert kinds.index("started") < kinds.index("step") < kinds.index("finished")
    assert "eval" in kinds and "checkpoint" in kinds
    step = sink.of(Step)[-1]
    assert (
        step.max_steps == 6
        and step.learning_rate
        and step.grad_norm is not None
        and step.memory["peak_gib"] > 0
    )
    for event in sink.events:  # every event survives the JSON round trip the window relies on
        assert parse_event(event.to_json()) == event
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert any("eval_loss" in r for r in records)
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["versions"]["transformers"] and run["trainable_parameters"] > 0
    assert run["measured_peak_gib"] > 0
    # config.yaml is the resolved config that ran: the user's values, and the proposal where it was empty.
    saved = RunConfig.load(tmp_path / "run" / "config.yaml")
    proposed = run["proposal"]
    assert set(proposed) == {"training.learning_rate", "lora.alpha"}
    assert saved.training.learning_rate == proposed["training.learning_rate"]["value"]
    saved.training.learning_rate, saved.lora.alpha = None, None
    assert saved == config


def test_existing_run_folder_is_never_overwritten(tiny_model, small_dataset, tmp_path):
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=2)
    assert run_training(config, sink=ListSink(), control=RunControl()) == 0
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) != 0
    assert "already holds a run" in sink.of(Failed)[0].message


def test_stop_request_saves_a_loadable_adapter(tiny_model, small_dataset, tmp_path):
    control = RunControl()

    class StopAfterTwo(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, Step) and event.step == 2:
                control.request_stop()

    sink = StopAfterTwo()
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=50)
    assert run_training(config, sink=sink, control=control) == 0
    assert sink.of(Finished)[0].status == "stopped"
    # Requested while step 2 was being logged, the stop takes effect at the end of step 3.
    last = max(e.step for e in sink.of(Step))
    assert last == 3
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "stopped"
    assert (tmp_path / "run" / "checkpoints" / f"checkpoint-{last}").is_dir()
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), tmp_path / "run" / "adapter")


def test_simulated_oom_fails_with_advice(tiny_model, small_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("FINETUNE_GUI_SIMULATE_OOM_AT_STEP", "2")
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=6, batch_size=4)
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 3
    failed = sink.of(Failed)[0]
    assert failed.kind_ == "oom"
    assert any("batch 4 → 2 with gradient accumulation 2" in a for a in failed.advice)
    assert any(
        fix.settings == {"training.batch_size": 2, "training.gradient_accumulation": 2}
        for fix in failed.fixes
    )
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "failed" and run["error_kind"] == "oom"


def test_bad_dataset_fails_with_data_kind(tiny_model, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"foo": 1}\n')
    config = make_config(tiny_model, bad, tmp_path / "run")
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 2
    failed = sink.of(Failed)[0]
    assert failed.kind_ == "data" and "Found columns foo" in failed.message


def test_qlora_gradients_survive_an_eval_forward(tiny_model, small_dataset, tmp_path, monkeypatch):
    """The bitsandbytes AVX512-BF16 trap: an eval-mode, no-grad forward (an evaluation, a preview) repacks
    Linear4bit weights, after which gradients through them are silently wrong. The CPU feature is
    simulated, so the guard is exercised on any machine; without the guard this test fails."""
    import bitsandbytes.nn.modules as bnb_modules
    import torch

    from finetune_gui.core.models import resolve_model
    from finetune_gui.core.tuners import setup as method_setup

    monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    config = make_config(tiny_model, small_dataset, tmp_path / "run", "qlora")
    source = resolve_model(str(tiny_model))
    from finetune_gui.core.estimate import plan_memory
    from finetune_gui.core.hardware import DevicePlan

    plan = DevicePlan("cpu", "fp32")
    memory = plan_memory(config, plan, None)
    model = method_setup.apply_method(method_setup.load_base(config, source, plan, memory), config, source)
    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # non-zero B, so every LoRA weight gets a gradient
            torch.nn.init.normal_(parameter, std=0.02)
    ids = torch.tensor([[1, 5, 9, 20, 30, 40, 50, 60]])

    def gradients():
        model.zero_grad()
        model.train()
        model(input_ids=ids, labels=ids).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    before = gradients()
    assert all(g.abs().sum() > 0 for n, g in before.items() if "lora_" in n)
    model.eval()
    with torch.no_grad():
        model(ids)
    after = gradients()
    for name, grad in before.items():
        assert torch.allclose(grad, after[name], atol=1e-6), name


# ------------------------------------------------------------------------------- as a child process


def start_cli(config_path, *extra, env=None):
    return subprocess.Popen(
        [sys.executable, "-m", "finetune_gui", "train", str(config_path), "--events", "jsonl", *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or dict(os.environ),
    )


def read_until(proc, predicate, timeout=180):
    events = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        event = parse_event(line)
        assert event is not None, f"stdout carried a non-event line: {line!r}"
        events.append(event)
        if predicate(event):
            return events
    raise AssertionError(
        f"condition not met; got {[e.kind for e in events]}; stderr: {proc.stderr.read()[-2000:]}"
    )


def test_sigterm_stops_after_the_step_and_saves(tiny_model, small_dataset, tmp_path):
    path = tmp_path / "run.yaml"
    make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=500, save_steps=1000).save(path)
    proc = start_cli(path)
    read_until(proc, lambda e: isinstance(e, Step) and e.step >= 2)
    proc.send_signal(signal.SIGTERM)
    events = read_until(proc, lambda e: isinstance(e, Finished))
    assert events[-1].status == "stopped"
    assert proc.wait(timeout=60) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "stopped"
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_pause_holds_the_step_count(tiny_model, small_dataset, tmp_path):
    path = tmp_path / "run.yaml"
    make_config(
        tiny_model, small_dataset, tmp_path / "run", max_steps=40, save_steps=1000, eval_steps=1000
    ).save(path)
    proc = start_cli(path)
    read_until(proc, lambda e: isinstance(e, Step) and e.step >= 2)
    proc.stdin.write("pause\n")
    proc.stdin.flush()
    events = read_until(proc, lambda e: e.kind == "paused")
    paused_at = events[-1].step
    time.sleep(2.0)
    proc.stdin.write("resume\n")
    proc.stdin.flush()
    events = read_until(proc, lambda e: e.kind == "resumed")
    assert events[-1].step == paused_at and not [e for e in events if isinstance(e, Step)]  # nothing moved
    assert any(e.kind == "log" and f"Paused after step {paused_at}" in e.message for e in events)
    proc.stdin.write("stop\n")
    proc.stdin.flush()
    read_until(proc, lambda e: isinstance(e, Finished))
    assert proc.wait(timeout=60) == 0


def test_sigkill_then_resume_finishes_at_the_planned_step(tiny_model, small_dataset, tmp_path):
    path = tmp_path / "run.yaml"
    make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=9, save_steps=3, eval_steps=100).save(
        path
    )
    proc = start_cli(path, env=dict(os.environ, FINETUNE_GUI_TEST_STEP_DELAY="0.3"))
    read_until(proc, lambda e: e.kind == "checkpoint" and e.step >= 3)
    proc.kill()
    proc.wait(timeout=30)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"
    resumed = start_cli(path, "--resume")
    events = read_until(resumed, lambda e: isinstance(e, Finished))
    assert resumed.wait(timeout=60) == 0
    started = next(e for e in events if isinstance(e, Started))
    assert started.start_step >= 3
    steps = [e.step for e in events if isinstance(e, Step)]
    assert steps[0] == started.start_step + 1 and steps[-1] == 9
    assert events[-1].status == "completed" and events[-1].metrics["steps"] == 9
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 10))


def test_two_processes_train_together(tiny_model, small_dataset, tmp_path):
    path = tmp_path / "run.yaml"
    make_config(
        tiny_model, small_dataset, tmp_path / "run", max_steps=3, save_steps=100, eval_steps=100
    ).save(path)
    result = cli("train", path, "--num-processes", "2", "--events", "jsonl", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [parse_event(line) for line in result.stdout.splitlines()]
    assert all(events), result.stdout
    assert next(e for e in events if isinstance(e, Started)).world_size == 2
    assert sum(isinstance(e, Finished) for e in events) == 1  # only rank 0 reports
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["world_size"] == 2 and run["status"] == "completed"


def test_sample_answers_at_each_evaluation(tiny_model, small_dataset, tmp_path):
    from finetune_gui.core.events import Sample

    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=4, eval_steps=2)
    config.training.sample_prompts, config.training.sample_max_new_tokens = 2, 4
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 0
    samples = sink.of(Sample)
    assert [s.step for s in samples] == [2, 4]
    assert all(len(s.samples) == 2 and s.samples[0]["prompt"] and "answer" in s.samples[0] for s in samples)
    assert "<|im_start|>" not in samples[0].samples[0]["prompt"]  # the question as the user wrote it
    lines = (tmp_path / "run" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_an_unexpected_error_is_a_crash_with_its_traceback_in_error_log(
    tiny_model, small_dataset, tmp_path, monkeypatch
):
    monkeypatch.setenv("FINETUNE_GUI_SIMULATE_CRASH_AT_STEP", "2")
    config = make_config(tiny_model, small_dataset, tmp_path / "run", max_steps=6)
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 1
    failed = sink.of(Failed)[0]
    assert failed.kind_ == "crash" and "RuntimeError: simulated crash at step 2" in failed.message
    log = tmp_path / "run" / "error.log"
    assert failed.log_path == str(log) and "Traceback" in log.read_text()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "failed" and run["error_kind"] == "crash"
