"""The recipe's parts, each fed directly (no training run): the events callback, fault injection, the
timed checks, the sample answers, and the window's training controller fed a run folder with no process."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import pytest

from finetune_gui.core.events import (
    Checkpoint,
    Eval,
    Failed,
    Finished,
    Learned,
    Log,
    Paused,
    Resumed,
    Started,
    Step,
)
from finetune_gui.core.runs import RunFolder, StepTiming
from finetune_gui.core.training.callbacks import EventsCallback, SamplesCallback, TimedChecks
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.failures import Diverged


def trainer_state(step, max_steps=10, tokens=0):
    return SimpleNamespace(
        global_step=step, max_steps=max_steps, epoch=step / max_steps, num_input_tokens_seen=tokens
    )


def trainer_control():
    return SimpleNamespace(should_save=False, should_training_stop=False)


ARGS = SimpleNamespace(device=SimpleNamespace(type="cpu"), output_dir="/runs/r/checkpoints")


def test_the_events_callback_turns_logs_into_events_metrics_and_a_measured_step_time(tmp_path):
    emitted = []
    folder = RunFolder(tmp_path / "run")
    callback = EventsCallback(emitted.append, RunControl(), folder)
    callback.on_train_begin(ARGS, trainer_state(0), trainer_control())
    for step in (1, 2, 3):
        callback.on_step_end(ARGS, trainer_state(step, tokens=100 * step), trainer_control())
        callback.on_log(
            ARGS,
            trainer_state(step, tokens=100 * step),
            trainer_control(),
            logs={"loss": 3.0 - step, "learning_rate": 1e-4},
        )
    callback.on_log(ARGS, trainer_state(3), trainer_control(), logs={"eval_loss": 1.5})
    callback.on_log(ARGS, trainer_state(3), trainer_control(), logs={"train_runtime": 9.0})  # no step
    callback.on_save(ARGS, trainer_state(3), trainer_control())
    steps = [e for e in emitted if isinstance(e, Step)]
    assert [s.step for s in steps] == [1, 2, 3] and steps[-1].loss == 0.0 and steps[-1].eta_s is not None
    assert isinstance(emitted[-2], Eval) and emitted[-2].eval_loss == 1.5
    assert emitted[-1] == Checkpoint(step=3, path="/runs/r/checkpoints/checkpoint-3")
    assert [r.get("loss", r.get("eval_loss")) for r in folder.metrics()] == [2.0, 1.0, 0.0, 1.5]
    assert isinstance(callback.timing, StepTiming) and callback.timing.steps == 2
    assert callback.timing.tokens_per_step == 100.0
    # A NaN loss stops the run: nothing from it is kept.
    with pytest.raises(Diverged, match="the loss became nan"):
        callback.on_log(ARGS, trainer_state(4), trainer_control(), logs={"loss": float("nan")})


def test_another_rank_applies_the_controls_but_records_nothing(tmp_path):
    emitted, control = [], RunControl()
    callback = EventsCallback(emitted.append, control, None)
    callback.on_train_begin(ARGS, trainer_state(0), trainer_control())
    callback.on_log(ARGS, trainer_state(1), trainer_control(), logs={"loss": 2.0})
    control.request_stop()
    asked = trainer_control()
    callback.on_step_end(ARGS, trainer_state(1), asked)
    assert asked.should_save and asked.should_training_stop  # stop saves, then ends
    assert not (tmp_path / "run").exists() and [type(e) for e in emitted] == [Step]


def test_a_pause_holds_the_run_between_steps_until_resumed():
    emitted, control = [], RunControl()
    callback = EventsCallback(emitted.append, control, None)
    callback.on_train_begin(ARGS, trainer_state(0), trainer_control())
    control.pause()
    threading.Timer(0.3, control.resume).start()
    began = time.monotonic()
    callback.on_step_end(ARGS, trainer_state(2), trainer_control())
    assert time.monotonic() - began >= 0.25
    kinds = [type(e) for e in emitted]
    assert kinds == [Paused, Log, Resumed, Log] and emitted[0].step == 2
    assert callback.paused_s >= 0.25  # the pause is not counted as training time


def test_fault_injection_is_off_unless_switched_on_and_then_fails_as_asked():
    from finetune_gui.core.training.faults import SIMULATE_CRASH_ENV, STEP_DELAY_ENV, FaultInjection

    assert FaultInjection.from_environment({}) is None
    faults = FaultInjection.from_environment({SIMULATE_CRASH_ENV: "3", STEP_DELAY_ENV: "0.01"})
    assert faults == FaultInjection(crash_at=3, step_delay_s=0.01)
    faults.on_step_end(ARGS, trainer_state(2), trainer_control())
    with pytest.raises(RuntimeError, match="simulated crash at step 3"):
        faults.on_step_end(ARGS, trainer_state(3), trainer_control())


def test_timed_checks_run_each_check_before_training_and_say_how_long():
    ran = []

    class Slow:
        def on_train_begin(self, *args, **kwargs):
            time.sleep(0.05)
            ran.append(self)

    checks = [Slow(), Slow()]
    timed = TimedChecks(checks)
    timed.on_train_begin(ARGS, trainer_state(0), trainer_control())
    assert ran == checks and timed.seconds >= 0.1


def test_sample_answers_are_recorded_with_their_reference_and_the_base_answer(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune_gui.core.training.learning import Question

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    questions = [Question("Q: where?\nA:", "where?", "in Veloria"), Question("Q: who?\nA:", "who?", "Maren")]
    emitted, folder = [], RunFolder(tmp_path / "run")
    samples = SamplesCallback(emitted.append, folder, tokenizer, questions, 4, base_answers=lambda: ["b1"])
    samples.on_evaluate(ARGS, trainer_state(5), trainer_control(), model=model)
    (sample,) = emitted
    assert sample.step == 5 and [s["reference"] for s in sample.samples] == ["in Veloria", "Maren"]
    assert sample.samples[0]["base"] == "b1" and "base" not in sample.samples[1]
    assert all(isinstance(s["right"], bool) for s in sample.samples)
    assert folder.samples() == [{"step": 5, "samples": sample.samples}]
    # Generation that fails is said once and sampling stops; the run goes on.
    broken = SimpleNamespace(generate=None)
    samples.on_evaluate(ARGS, trainer_state(6), trainer_control(), model=broken)
    samples.on_evaluate(ARGS, trainer_state(7), trainer_control(), model=broken)
    warnings = [e for e in emitted[1:] if isinstance(e, Log)]
    assert len(warnings) == 1 and "Sample answers are turned off" in warnings[0].message


@pytest.mark.gui
def test_the_training_controller_follows_a_run_folder_with_no_process(qtbot, tmp_path):
    """Fed by a run folder alone (its events.jsonl, and run.json whose process is gone), the controller
    gives the same signals a live run gives, then ends."""
    from finetune_gui.gui.training.controller import TrainingController

    folder = RunFolder(tmp_path / "run")
    said = [
        Started(config={}, trainable_parameters=10, total_parameters=100, max_steps=2),
        Step(1, 2, 0.5, 2.0, 1e-4, 0.5, 100.0, 1.0, 1.0),
        Log("a line"),
        Learned(step=2, questions=8, base_right=0, tuned_right=7, changed=8, verdict="learned"),
        Finished(status="completed", metrics={"steps": 2}),
    ]
    folder.path.mkdir()
    folder.events_path.write_text("".join(e.to_json() + "\n" for e in said) + '{"torn": ')
    folder.update(status="completed", pid=None)
    controller = TrainingController(folder.path)
    got = {
        name: [] for name in ("started_run", "step_logged", "logged", "learned", "finished_run", "failed_run")
    }
    for name, seen in got.items():
        getattr(controller, name).connect(seen.append)
    with qtbot.waitSignal(controller.ended, timeout=5000):
        controller.attach()
    assert [len(got[n]) for n in got] == [1, 1, 1, 1, 1, 0]
    assert got["learned"][0].verdict == "learned" and got["logged"] == ["a line"]
    assert not controller.is_running() and isinstance(controller.terminal, Finished)


@pytest.mark.gui
def test_a_followed_run_that_died_without_a_word_ends_as_its_record_says(qtbot, tmp_path):
    from finetune_gui.gui.training.controller import TrainingController

    folder = RunFolder(tmp_path / "run")
    folder.update(status="failed", error_kind="oom", error_message="Out of memory at step 3 with batch 8.")
    controller = TrainingController(folder.path)
    with qtbot.waitSignal(controller.failed_run, timeout=5000) as blocker:
        controller.attach()
    failed = blocker.args[0]
    assert isinstance(failed, Failed) and failed.kind_ == "oom" and failed.message.startswith("Out of memory")
    # run.json says running, but nothing trains there any more: an unexplained end, said as one.
    gone = RunFolder(tmp_path / "gone")
    gone.update(status="running", pid=None)
    (gone.path / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (gone.path / "checkpoints" / "checkpoint-4" / "trainer_state.json").write_text(
        json.dumps({"global_step": 4})
    )
    controller = TrainingController(gone.path)
    with qtbot.waitSignal(controller.failed_run, timeout=5000) as blocker:
        controller.attach()
    assert blocker.args[0].kind_ == "crash" and "checkpoint-4" in blocker.args[0].advice[0]
