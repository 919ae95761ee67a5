"""The training recipe: one run from a RunConfig, top to bottom.

    open the folder (checks, lock, checkpoint) → setup (device, model source, tokenizer, data, proposal)
    → plan memory (estimate/plan.py) → build (model + method, the objective's collator and loss, the
    trainer and its callbacks) → fit → judge (best checkpoint, did it learn, did it forget) → save
    (adapter/ or model/, run.json) → register the adapter → report.

The CLI and the window's training process both run exactly this. Its parts take what they use (where to
emit, the control, the folder, the tokenizer…), never the recipe's own state (``RunContext``); the
objective's pieces come through one interface (``objectives/``). Only rank 0 writes the run folder and
events when several processes train together. Every way it ends is reported by one event and run.json
(``failures.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_gui.core.config import RunConfig, check_paths
from finetune_gui.core.errors import FailureKind, UserError
from finetune_gui.core.events import Event, EventSink, Failed, Finished, Fix, Log, Started
from finetune_gui.core.hardware import DevicePlan, Hardware, MemoryPlan
from finetune_gui.core.methods import METHODS, optimizer_for
from finetune_gui.core.runs import RunFolder, RunRecord
from finetune_gui.core.training import failures
from finetune_gui.core.training.control import RunControl, run_started_ns
from finetune_gui.core.training.inputs import Data, load_data

# A run is refused before loading anything when its estimate exceeds the free memory by this factor
# (the estimate is within about 10% of measured peaks).
MEMORY_TOLERANCE = 1.15


@dataclass
class RunContext:
    """The recipe's own state while it runs (its parts are given what they use, never this)."""

    config: RunConfig
    folder: RunFolder
    sink: EventSink
    control: RunControl
    rank: int = 0
    world_size: int = 1
    started_at: float = field(default_factory=time.time)
    shape: Any = None  # the model's ModelShape, once known (for the estimate and the advice)
    hardware: Hardware | None = None
    began: bool = False  # this session owns the run folder (its checks passed): failures are recorded
    previous: RunRecord = field(default_factory=RunRecord)  # run.json of earlier sessions (resume)
    checkpoint: Path | None = None  # what this session resumes from
    start_step: int = 0
    proposal: dict[str, Any] = field(default_factory=dict)  # what was proposed for empty fields, and why
    trainer: Any = None  # once built: its state says which step a failure came at

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def step(self) -> int:
        return int(self.trainer.state.global_step) if self.trainer is not None else 0

    @property
    def main_folder(self) -> RunFolder | None:
        """The run folder for the parts that record in it; None on the other ranks, which do not."""
        return self.folder if self.is_main else None

    def emit(self, event: Event) -> None:
        if self.is_main:
            self.sink.emit(event)

    def log(self, message: str, level: str = "info") -> None:
        self.emit(Log(message, level))


def run_training(
    config: RunConfig, *, sink: EventSink, control: RunControl, resume: bool = False, debug: bool = False
) -> int:
    """Run one training; returns the process exit code (0 for completed or stopped)."""
    from finetune_gui.core.training.distributed import world

    rank, world_size = world()
    ctx = RunContext(config, RunFolder(config.output_dir), sink, control, rank, world_size)
    lock = None
    try:
        lock = _open(ctx, resume)
        return _run(ctx)
    except UserError as exc:  # failures.Diverged among them
        return _fail(ctx, exc.kind, str(exc), [], code=exc.exit_code)
    except Exception as exc:
        if failures.is_oom(exc):
            from finetune_gui.core.training.advice import oom_fixes

            message = f"Out of memory at step {ctx.step} with batch {ctx.config.training.batch_size}."
            fixes = oom_fixes(ctx.config, ctx.shape, ctx.hardware)
            return _fail(ctx, FailureKind.OOM, message, [f.label for f in fixes], fixes=fixes)
        disk = failures.disk_failure(exc, ctx.step, ctx.folder.last_checkpoint() if ctx.began else None)
        if disk is not None:
            return _fail(ctx, FailureKind.DISK, disk, [])
        if debug:
            raise
        logged = ctx.began and failures.write_error_log(ctx.folder.error_log_path)
        message = (
            f"Training stopped at step {ctx.step} with an unexpected error: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ).rstrip(": ")
        advice = [f"The full error is in {ctx.folder.error_log_path}."] if logged else []
        log_path = str(ctx.folder.error_log_path) if logged else None
        return _fail(ctx, FailureKind.CRASH, message, advice, log_path)
    finally:
        failures.safely(ctx.sink.close)
        if lock is not None:
            lock.release()


def _fail(
    ctx: RunContext,
    kind: FailureKind,
    message: str,
    advice: list[str],
    log_path: str | None = None,
    fixes: list[Fix] | None = None,
    code: int | None = None,
) -> int:
    ctx.emit(Failed(kind_=kind.value, message=message, advice=advice, log_path=log_path, fixes=fixes or []))
    if ctx.is_main and ctx.began:
        # A failure before this session took over the folder (a refused output_dir, a wrong resume)
        # leaves the earlier run's record as it was.
        checkpoint = ctx.folder.last_checkpoint()
        failures.safely(
            lambda: ctx.folder.update(
                status="failed",
                error_kind=kind.value,
                error_message=message,
                advice=advice,
                finished_at=_now(),
                checkpoint=str(checkpoint) if checkpoint else None,
                **_durations(ctx),
            )
        )
    return kind.exit_code if code is None else code


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _durations(ctx: RunContext) -> dict[str, Any]:
    """started_at stays the first session's; duration_s adds every session's time."""
    earlier = ctx.previous.duration_s or 0.0
    this = round(time.time() - ctx.started_at, 1)
    sessions = list(ctx.previous.sessions)
    sessions.append({"started_at": _stamp(ctx.started_at), "duration_s": this})
    return {"duration_s": round(earlier + this, 1), "sessions": sessions}


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


# --------------------------------------------------------------------------------------------- recipe


def _open(ctx: RunContext, resume: bool) -> Any:
    """Check the config's paths and the run folder, take its lock and find the checkpoint to resume
    from (rank 0; the other ranks only find the checkpoint). Nothing in the folder changes yet."""
    from finetune_gui.core.training.opening import open_folder, resume_point
    from finetune_gui.core.training.sinks import TeeSink

    check_paths(ctx.config)
    folder = ctx.folder
    if not ctx.is_main:
        if resume:
            ctx.checkpoint, ctx.start_step = resume_point(folder)
        return None
    opening = open_folder(folder, ctx.config, resume, ctx.log)
    ctx.previous, ctx.checkpoint, ctx.start_step = opening.previous, opening.checkpoint, opening.start_step
    ctx.sink = TeeSink(ctx.sink, folder)
    return opening.lock


def _begin(ctx: RunContext) -> None:
    """The run takes over its folder: the resolved config, the metrics up to the checkpoint, the control
    file watched, the events file; from here on a failure is recorded in run.json."""
    from finetune_gui.core.training.sinks import TeeSink

    folder = ctx.folder
    # Not cleared first: a word the window wrote while the run loaded is this run's (Stop during loading);
    # the watcher itself ignores words older than the run.
    ctx.control.watch_file(folder.control_path, run_started_ns(int(ctx.started_at * 1e9)))
    if not ctx.is_main:
        return
    ctx.config.save(folder.config_path)
    if ctx.checkpoint is not None:
        folder.truncate_metrics(ctx.start_step)
    if isinstance(ctx.sink, TeeSink):
        ctx.sink.release()
    ctx.began = True


def _propose(ctx: RunContext, data: Data) -> None:
    """Fill what the config leaves empty (length, learning rate, LoRA rank…), and say what and why."""
    from finetune_gui.core.estimate.proposal import apply, propose

    parameters = ctx.shape.parameters if ctx.shape is not None else 0
    proposal = propose(ctx.config, parameters, data.rows, ctx.world_size)
    ctx.config = apply(ctx.config, proposal)
    ctx.proposal = proposal.to_dict()
    for line in proposal.lines():
        ctx.log(f"Proposed {line}.")
    max_steps = ctx.config.training.max_steps
    if ctx.checkpoint is not None and max_steps is not None and ctx.start_step >= max_steps:
        raise UserError(
            f"The run in {ctx.folder.path} already trained {ctx.start_step} of its {max_steps} steps. To train "
            f"it further, raise training.max_steps (e.g. --set training.max_steps={2 * max_steps})."
        )


def _run(ctx: RunContext) -> int:
    from finetune_gui.core import hardware
    from finetune_gui.core.data.encode import ensure_chat_template
    from finetune_gui.core.estimate import shape_for
    from finetune_gui.core.models import load_tokenizer, materialize, resolve_model
    from finetune_gui.core.training.objectives import training_objective
    from finetune_gui.core.tuners import setup as method_setup

    # -- setup: the machine, the model's files, the tokenizer, the data
    config, checkpoint = ctx.config, ctx.checkpoint
    for notice in config.notices:
        ctx.log(notice, "warning")
    if checkpoint is not None:
        ctx.log(f"Resuming from {checkpoint.name} (step {ctx.start_step}).")
    ctx.hardware = hardware.detect()
    device = hardware.plan_device(config.training.precision, ctx.hardware)
    ctx.log(f"Resolving the model {config.model}")
    source = resolve_model(config.model, allow_pickle=config.allow_pickle_weights)
    source = materialize(source, lambda what, _f: ctx.log(f"Converting the GGUF model: {what}"))
    tokenizer = load_tokenizer(source, config.trust_remote_code)
    base_dtype = _declared_dtype(source, config.trust_remote_code)
    if ensure_chat_template(tokenizer):
        ctx.log(
            "The tokenizer has no chat template; using a plain '### User / ### Assistant' layout.", "warning"
        )
    ctx.log(f"Reading the dataset {config.dataset.path}")
    t = config.training
    data = load_data(config.dataset, t.objective, t.max_seq_len, t.seed, tokenizer, ctx.log)
    if data.columns_applied:  # recorded in the run's config.yaml
        config.dataset.columns = dict(data.columns_applied)
    try:
        ctx.shape = shape_for(config)
    except Exception as exc:  # an unusual architecture: no estimate, no size-based proposal
        ctx.log(f"No memory estimate for this model ({type(exc).__name__}: {exc}).", "warning")
    _propose(ctx, data)
    _begin(ctx)
    config = ctx.config
    memory = _plan_memory(ctx, device, data.longest)

    # -- build: the model with its method, the objective's pieces, the trainer
    ctx.log(
        f"Loading the model on {device.device} "
        f"({'bf16 weights, lean memory mode' if memory.lean else device.precision})"
    )
    from transformers import set_seed

    # Before the method's weights are made (LoRA's A matrices are random): the same seed, the same run.
    set_seed(config.training.seed)
    model = method_setup.load_base(config, source, device, memory)
    model = method_setup.apply_method(model, config, source)
    trainable, total = method_setup.count_parameters(model)
    objective = training_objective(config)
    collator = objective.collator(model, tokenizer, 8 if device.device == "cuda" else None, ctx.log)
    trainer = ctx.trainer = _make_trainer(ctx, model, tokenizer, data, objective, collator, device, memory)
    objective.prepare(trainer, data, ctx.log)
    check, early, forgetting, timed = _add_callbacks(ctx, trainer, objective, tokenizer, data, collator)
    max_steps = trainer.args.max_steps if trainer.args.max_steps > 0 else _planned_steps(ctx, data)
    if ctx.is_main:
        ctx.folder.update(**_run_facts(ctx, device, memory, trainable, total, data))
    ctx.emit(
        Started(
            config=config.to_dict(),
            trainable_parameters=trainable,
            total_parameters=total,
            world_size=ctx.world_size,
            max_steps=max_steps,
            start_step=ctx.start_step,
            device=device.device,
            precision=device.precision,
            estimate_gib=memory.estimate_gib,
            train_rows=len(data.train.items),
            validation_rows=len(data.validation.items) if data.validation else 0,
            memory_mode=memory.mode,
        )
    )

    # -- fit
    from finetune_gui.core.training import packing

    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        packing.disable(trainer.model)  # the saved model names plain SDPA, not our packed attention
    status = "stopped" if ctx.control.stop_requested else "completed"
    metrics = _final_metrics(trainer, data, status)

    # -- judge: the best evaluation's weights are the result (the checks ask them too)
    stopped_early = early.restore_best(trainer.model, trainer.state.global_step) if early else None
    failures.check_weights(trainer.model, ctx.step, "nothing was saved")
    checks_began = time.monotonic()
    learned = (
        check.finish(trainer.model, trainer.state.global_step, trainer.state.log_history) if check else None
    )
    if learned is not None:
        metrics.update(objective.metrics(learned))
    forgot = forgetting.finish(trainer.model, trainer.state.global_step) if forgetting else None
    if forgot is not None:
        metrics.update(general_perplexity_ratio=forgot.ratio)
    if timed.seconds:
        spent = timed.seconds + time.monotonic() - checks_began
        ctx.log(f"The learning and forgetting checks took {spent:.0f} s in all.")

    # -- save, record, register
    output = _save_result(ctx, trainer.model, tokenizer, base_dtype)
    if ctx.is_main:
        ctx.folder.update(
            status=status,
            finished_at=_now(),
            metrics=metrics,
            measured_peak_gib=_peak_memory_gib(device.device),
            output=str(output),
            learning=learned,
            forgetting=forgot,
            early_stop=stopped_early.to_dict() if stopped_early else None,
            timing=_events_callback(trainer).timing,
            **_durations(ctx),
        )
        if METHODS[config.method].adapter_kind is not None:
            _register(ctx)
    ctx.emit(Finished(status=status, metrics=metrics, output_path=str(output)))
    from finetune_gui.core.training.distributed import barrier

    barrier()
    return 0


def _register(ctx: RunContext) -> None:
    """Add the adapter to the library; a library problem is reported, never a failed run."""
    from finetune_gui.core.adapters.library import AdapterLibrary

    try:
        AdapterLibrary().register_run(ctx.folder.path)
    except Exception as exc:  # the adapter is saved; a library problem must not fail a finished run
        ctx.log(f"The adapter was saved but could not be added to the library: {exc}", "warning")


def _declared_dtype(source: Any, trust_remote_code: bool) -> Any:
    import torch

    from finetune_gui.core.models import load_config

    declared = getattr(load_config(source, trust_remote_code), "dtype", None)
    if isinstance(declared, str):
        declared = getattr(torch, declared, None)
    return declared if isinstance(declared, torch.dtype) else None


def _plan_memory(ctx: RunContext, device: DevicePlan, longest: int) -> MemoryPlan:
    """The run's memory plan from the one estimate of this config and data on this machine (the number
    the wizard and ``estimate --config`` show). A run whose estimate is well beyond the free memory is
    refused here, before the weights load."""
    from finetune_gui.core.estimate import estimate_run, plan_memory

    config = ctx.config
    assert ctx.hardware is not None
    result = None
    if ctx.shape is not None:
        try:
            found = estimate_run(config, ctx.shape, ctx.hardware, methods=[config.method], longest=longest)
            result = found.methods[config.method]
        except Exception as exc:  # an estimate is advice; an unusual architecture must not stop the run
            ctx.log(f"No memory estimate for this model ({type(exc).__name__}: {exc}).", "warning")
    memory = plan_memory(config, device, result, ctx.world_size)
    if memory.auto_lean:
        ctx.log("Standard full fine-tuning would not fit; training in lean memory mode.", "warning")
    budget = ctx.hardware.budget_gib()
    if memory.needed_gib is not None and budget > 0 and memory.needed_gib > budget * MEMORY_TOLERANCE:
        _refuse_for_memory(ctx, memory.needed_gib, budget)
    return memory


def _refuse_for_memory(ctx: RunContext, needed: float, budget: float) -> None:
    from finetune_gui.core.training.advice import oom_fixes

    assert ctx.hardware is not None
    where = "GPU memory" if ctx.hardware.best_gpu is not None else "RAM"
    fixes = oom_fixes(ctx.config, ctx.shape, ctx.hardware)
    raise UserError(
        f"This run needs about {needed:.1f} GB but only {budget:.1f} GB of {where} is free, so it would run out "
        f"of memory. Try: {fixes[0].label if fixes else 'a smaller model'}.",
        kind=FailureKind.OOM,
    )


def _planned_steps(ctx: RunContext, data: Data) -> int:
    import math

    t = ctx.config.training
    per_step = t.batch_size * t.gradient_accumulation * ctx.world_size
    return max(1, math.ceil(len(data.train.items) / per_step * (t.epochs or 1)))


def _training_arguments(
    config: RunConfig, folder: RunFolder, device: DevicePlan, memory: MemoryPlan, has_eval: bool
) -> Any:
    """The Trainer's arguments for this config, device and memory plan."""
    from transformers import TrainingArguments

    t = config.training
    optim = {"adamw": "adamw_torch", "adamw_8bit": "adamw_bnb_8bit", "paged_adamw_8bit": "paged_adamw_8bit"}[
        optimizer_for(config.method, t.optimizer, device.device)
    ]
    return TrainingArguments(
        output_dir=str(folder.checkpoints_dir),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        learning_rate=config.resolved_learning_rate(),
        max_steps=t.max_steps if t.max_steps else -1,
        num_train_epochs=t.epochs or 1.0,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        # A step in the backward pass clips in the optimizer (core/tuners/lean.py), not in the Trainer.
        max_grad_norm=0.0 if memory.step_in_backward else t.max_grad_norm,
        optim=optim,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        bf16=memory.autocast == "bf16",
        fp16=memory.autocast == "fp16",
        use_cpu=device.device == "cpu",
        # QLoRA's base checkpoints through prepare_model_for_kbit_training instead.
        activation_checkpointing=memory.checkpointing and not METHODS[config.method].quantized_base,
        activation_checkpointing_kwargs={"use_reentrant": False},
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        include_num_input_tokens_seen="non_padding",
        prediction_loss_only=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        report_to="none",
        disable_tqdm=True,
        log_level="error",
    )


def _make_trainer(
    ctx: RunContext,
    model: Any,
    tokenizer: Any,
    data: Data,
    objective: Any,
    collator: Any,
    device: DevicePlan,
    memory: MemoryPlan,
) -> Any:
    """The trainer, with the callbacks that turn its progress into our events and apply stop and pause."""
    from transformers import PrinterCallback

    from finetune_gui.core.training.callbacks import EventsCallback
    from finetune_gui.core.training.faults import FaultInjection
    from finetune_gui.core.training.trainer import AppTrainer

    config = ctx.config
    faults = FaultInjection.from_environment()  # test-only switches; None in normal use
    trainer = AppTrainer(
        memory=memory,
        max_grad_norm=config.training.max_grad_norm,
        objective_loss=objective.loss(),
        on_loss_note=lambda note: ctx.log(
            f"The memory-saving loss is off ({note}): the model's own loss is used, which holds the full "
            "logits, so the peak can be above the estimate.",
            "warning",
        ),
        model=model,
        args=_training_arguments(config, ctx.folder, device, memory, data.validation is not None),
        train_dataset=objective.dataset(data.train),
        eval_dataset=objective.dataset(data.validation) if data.validation is not None else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[
            *([faults] if faults else []),
            EventsCallback(ctx.emit, ctx.control, ctx.main_folder),
        ],
    )
    trainer.remove_callback(PrinterCallback)  # our events replace the Trainer's printing of log dicts
    return trainer


def _events_callback(trainer: Any) -> Any:
    from finetune_gui.core.training.callbacks import EventsCallback

    return next(c for c in trainer.callback_handler.callbacks if isinstance(c, EventsCallback))


def _add_callbacks(
    ctx: RunContext, trainer: Any, objective: Any, tokenizer: Any, data: Data, collator: Any
) -> tuple[Any, Any, Any, Any]:
    """What watches the run and judges it: early stopping, the objective's "Did it learn?" and sample
    answers, "Did it forget?", the health alerts; the checks' measurements before training are timed.
    Returns (learning check, early stopping, forgetting check, their timing), each None when off."""
    from finetune_gui.core.estimate.proposal import learning_rate
    from finetune_gui.core.training.alerts import HealthWatch
    from finetune_gui.core.training.callbacks import TimedChecks
    from finetune_gui.core.training.objectives import CheckInputs

    t = ctx.config.training
    early = None
    if data.validation is not None and t.early_stopping:
        from finetune_gui.core.training.early_stop import EarlyStopping

        early = EarlyStopping(t.early_stopping, t.early_stopping_min_delta, ctx.log)
        trainer.add_callback(early)
    inputs = CheckInputs(ctx.emit, ctx.main_folder, tokenizer, data, t, collator, trainer.chunked)
    check, samples = objective.checks(inputs)
    proposed = learning_rate(ctx.config.method, ctx.shape.parameters if ctx.shape else 0, t.objective)
    rate = ctx.config.resolved_learning_rate()
    trainer.add_callback(HealthWatch(ctx.emit, ctx.main_folder, rate, t.early_stopping or 0, proposed))
    forgetting = None
    if t.check_forgetting:
        from finetune_gui.core.training.forgetting import ForgettingCheck

        trains_all = METHODS[ctx.config.method].trains_all_weights
        forgetting = ForgettingCheck(ctx.emit, ctx.main_folder, tokenizer, trains_all)
    timed = TimedChecks([c for c in (check, forgetting) if c is not None])
    trainer.add_callback(timed)
    if samples is not None:
        trainer.add_callback(samples)
    return check, early, forgetting, timed


def _final_metrics(trainer: Any, data: Data, status: str) -> dict[str, Any]:
    history = [r for r in trainer.state.log_history if "loss" in r]
    metrics: dict[str, Any] = {
        "steps": trainer.state.global_step,
        "epoch": round(trainer.state.epoch or 0.0, 4),
    }
    if history:
        metrics["final_loss"] = history[-1]["loss"]
        from finetune_gui.core.training.smoothing import smoothed

        metrics["smoothed_loss"] = round(smoothed(r["loss"] for r in history) or 0.0, 6)  # the chart's
    evals = [r for r in trainer.state.log_history if "eval_loss" in r]
    final_eval_missing = not evals or evals[-1].get("step") != trainer.state.global_step
    if data.validation is not None and status == "completed" and final_eval_missing:
        # The events callback reports this evaluation (event and metrics line) like any other.
        result = trainer.evaluate()
        evals.append({"eval_loss": result["eval_loss"], "step": trainer.state.global_step})
    if evals:
        metrics["eval_loss"] = evals[-1]["eval_loss"]
    return metrics


def _save_result(ctx: RunContext, model: Any, tokenizer: Any, base_dtype: Any) -> Path:
    """Write adapter/ (adapter methods) or model/ (full), whole or not at all (a full disk must not leave
    half a folder behind)."""
    from finetune_gui.core.files import staged_folder
    from finetune_gui.core.tuners.setup import save_trained

    folder = ctx.folder
    target = folder.adapter_dir if METHODS[ctx.config.method].adapter_kind else folder.model_dir
    if not ctx.is_main:
        return target
    with staged_folder(target) as staging:
        save_trained(model, ctx.config, staging, base_dtype)
        tokenizer.save_pretrained(staging)
    return target


def _peak_memory_gib(device: str) -> float:
    from finetune_gui.core.training.readings import peak_gib

    return round(peak_gib(device), 3)


def _run_facts(
    ctx: RunContext, device: DevicePlan, memory: MemoryPlan, trainable: int, total: int, data: Data
) -> dict[str, Any]:
    """run.json's fields for this session, written as it starts training."""
    import os

    from finetune_gui.core.training.readings import library_versions

    return {
        "status": "running",
        "pid": os.getpid(),
        "started_at": ctx.previous.started_at or _stamp(ctx.started_at),
        "session_started_at": _stamp(ctx.started_at),
        "method": ctx.config.method,
        "model": ctx.config.model,
        "dataset": ctx.config.dataset.path,
        "world_size": ctx.world_size,
        "device": device.device,
        "precision": device.precision,
        "gradient_checkpointing": memory.checkpointing,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "train_rows": len(data.train.items),
        "validation_rows": len(data.validation.items) if data.validation else 0,
        "skipped_rows": data.problems,
        "estimate_gib": memory.estimate_gib,
        "memory_mode": memory.mode,
        "objective": ctx.config.training.objective,
        "reference": ctx.config.reference_kind() or None,
        "proposal": ctx.proposal,
        "system_prompt": data.system_prompt,
        "versions": library_versions(),
        "error_kind": None,
        "error_message": None,
    }
