"""The training recipe: one run from a RunConfig, top to bottom.

    open the folder (checks, lock, checkpoint) → plan (device, memory) → load (model source, tokenizer,
    data) → build (model + method) → fit (AppTrainer, with our events and control callback) → save
    (adapter/ or model/, run.json) → register the adapter → report.

The CLI and the window's training process both run exactly this. Only rank 0 writes the run folder
and events when several processes train together. Every way it ends is reported by one event and
run.json (``failures.py``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_gui.core.config import RunConfig, check_paths
from finetune_gui.core.errors import FailureKind, UserError
from finetune_gui.core.events import EventSink, Failed, Finished, Fix, Log, Started
from finetune_gui.core.hardware import DevicePlan
from finetune_gui.core.methods import METHODS, optimizer_for
from finetune_gui.core.objectives import OBJECTIVES
from finetune_gui.core.runs import RunFolder, RunRecord, StepTiming
from finetune_gui.core.training import failures
from finetune_gui.core.training.control import RunControl, run_started_ns
from finetune_gui.core.training.inputs import Data, load_data, to_dataset

# Test-only switches: raise an out-of-memory error, or an unexpected one, at this step; sleep this long
# after every step.
SIMULATE_OOM_ENV = "FINETUNE_GUI_SIMULATE_OOM_AT_STEP"
SIMULATE_CRASH_ENV = "FINETUNE_GUI_SIMULATE_CRASH_AT_STEP"
SIMULATE_NAN_ENV = "FINETUNE_GUI_SIMULATE_NAN_AT_STEP"
STEP_DELAY_ENV = "FINETUNE_GUI_TEST_STEP_DELAY"
TRAINED_QUESTIONS = 6  # training questions the learning check asks beside the held-out ones
# A run is refused before loading anything when its estimate exceeds the free memory by this factor
# (the estimate is within about 10% of measured peaks).
MEMORY_TOLERANCE = 1.15


@dataclass
class RunContext:
    config: RunConfig
    folder: RunFolder
    sink: EventSink
    control: RunControl
    rank: int = 0
    world_size: int = 1
    started_at: float = field(default_factory=time.time)
    estimate_gib: float | None = None
    step: int = 0
    base_dtype: Any = None  # the base model's own dtype, which a full fine-tune saves in
    shape: Any = None  # the model's ModelShape, once known (for the estimate and the advice)
    hardware: Any = None  # the machine's Hardware
    began: bool = False  # this session owns the run folder (its checks passed): failures are recorded
    previous: RunRecord = field(default_factory=RunRecord)  # run.json of earlier sessions (resume)
    checkpoint: Path | None = None  # what this session resumes from
    start_step: int = 0
    proposal: dict[str, Any] = field(default_factory=dict)  # what was proposed for empty fields, and why
    check: Any = None  # the LearningCheck: did it learn?
    early: Any = None  # the EarlyStopping callback, when the run stops early and keeps its best
    memory_mode: str = "standard"  # what the run uses: lean only for methods that train every weight
    forgetting: Any = None  # the ForgettingCheck: did it forget?
    checks_s: float = 0.0  # seconds the checks took before training (the base's answers and scores)
    step_timing: StepTiming | None = None  # measured seconds and tokens per step (run.json timing)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def emit(self, event: Any) -> None:
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
        return _run(ctx, resume)
    except UserError as exc:  # failures.Diverged among them
        return _fail(ctx, exc.kind, str(exc), [], code=exc.exit_code)
    except Exception as exc:
        if failures.is_oom(exc):
            from finetune_gui.core.training.advice import oom_fixes

            message = f"Out of memory at step {ctx.step} with batch {config.training.batch_size}."
            fixes = oom_fixes(config, ctx.shape, ctx.hardware)
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
    from finetune_gui.core.training.folder import open_folder, resume_point
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


def _run(ctx: RunContext, resume: bool) -> int:
    from finetune_gui.core import hardware
    from finetune_gui.core.models import load_tokenizer, materialize, resolve_model
    from finetune_gui.core.tuners import setup as method_setup

    config, checkpoint = ctx.config, ctx.checkpoint
    for notice in config.notices:
        ctx.log(notice, "warning")
    if checkpoint is not None:
        ctx.log(f"Resuming from {checkpoint.name} (step {ctx.start_step}).")
    ctx.hardware = hardware.detect()
    plan = hardware.plan_device(config.training.precision, ctx.hardware)
    ctx.log(f"Resolving the model {config.model}")
    source = resolve_model(config.model, allow_pickle=config.allow_pickle_weights)
    source = materialize(source, lambda what, _f: ctx.log(f"Converting the GGUF model: {what}"))
    tokenizer = load_tokenizer(source, config.trust_remote_code)
    ctx.base_dtype = _declared_dtype(source, config.trust_remote_code)
    from finetune_gui.core.data.encode import ensure_chat_template

    if ensure_chat_template(tokenizer):
        ctx.log(
            "The tokenizer has no chat template; using a plain '### User / ### Assistant' layout.", "warning"
        )
    ctx.log(f"Reading the dataset {config.dataset.path}")
    data = load_data(ctx, tokenizer)
    from finetune_gui.core.estimate import shape_for

    try:
        ctx.shape = shape_for(config)
    except Exception as exc:  # an unusual architecture: no estimate, no size-based proposal
        ctx.log(f"No memory estimate for this model ({type(exc).__name__}: {exc}).", "warning")
    _propose(ctx, data)
    _begin(ctx)
    config = ctx.config
    checkpointing, ctx.estimate_gib = _plan_memory(ctx, data.longest)
    lean = ctx.memory_mode == "lean"
    mode = "bf16 weights, lean memory mode" if lean else plan.precision
    ctx.log(f"Loading the model on {plan.device} ({mode})")
    from transformers import set_seed

    # Before the method's weights are made (LoRA's A matrices are random): the same seed, the same run.
    set_seed(config.training.seed)
    model = method_setup.load_base(config, source, plan, checkpointing, lean)
    model = method_setup.apply_method(model, config, source)
    trainable, total = method_setup.count_parameters(model)
    trainer = _make_trainer(ctx, model, tokenizer, data, plan, checkpointing)
    max_steps = trainer.args.max_steps if trainer.args.max_steps > 0 else _planned_steps(ctx, data)
    if ctx.is_main:
        ctx.folder.update(**_run_facts(ctx, plan, trainable, total, data, checkpointing))
    ctx.emit(
        Started(
            config=config.to_dict(),
            trainable_parameters=trainable,
            total_parameters=total,
            world_size=ctx.world_size,
            max_steps=max_steps,
            start_step=ctx.start_step,
            device=plan.device,
            precision=plan.precision,
            estimate_gib=ctx.estimate_gib,
            train_rows=len(data.train.items),
            validation_rows=len(data.validation.items) if data.validation else 0,
            memory_mode=ctx.memory_mode,
        )
    )
    from finetune_gui.core.training import packing

    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    finally:
        packing.disable(trainer.model)  # the saved model names plain SDPA, not our packed attention
    status = "stopped" if ctx.control.stop_requested else "completed"
    metrics = _final_metrics(ctx, trainer, data, status)
    # The best evaluation's weights are the result (the learning check asks them too).
    early = ctx.early.restore_best(trainer.model, trainer.state.global_step) if ctx.early else None
    _check_finite(trainer.model, ctx.step)
    from finetune_gui.core.training.learning import eval_trend

    checks_began = time.monotonic()
    if ctx.check is None:
        learned = None
    elif OBJECTIVES[config.training.objective].pairs:
        learned = ctx.check.finish(trainer.model, trainer.state.global_step, config.training.objective)
    else:
        learned = ctx.check.finish(
            trainer.model, trainer.state.global_step, eval_trend(trainer.state.log_history)
        )
    forgot = ctx.forgetting.finish(trainer.model, trainer.state.global_step) if ctx.forgetting else None
    if forgot is not None:
        metrics.update(general_perplexity_ratio=forgot.ratio)
    if ctx.checks_s:
        ctx.log(
            f"The learning and forgetting checks took {ctx.checks_s + time.monotonic() - checks_began:.0f} s in all."
        )
    if learned is not None and learned.objective != "sft":
        metrics.update(
            preferred_chosen=learned.tuned_right,
            base_preferred_chosen=learned.base_right,
            pairs=learned.questions,
        )
    elif learned is not None:
        metrics.update(
            answers_right=learned.tuned_right,
            base_answers_right=learned.base_right,
            questions=learned.questions,
        )
    output = _save_result(ctx, trainer.model, tokenizer)
    if ctx.is_main:
        ctx.folder.update(
            status=status,
            finished_at=_now(),
            metrics=metrics,
            measured_peak_gib=_peak_memory_gib(plan.device),
            output=str(output),
            learning=learned,
            forgetting=forgot,
            early_stop=early.to_dict() if early else None,
            timing=ctx.step_timing,
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


def _check_finite(model: Any, step: int) -> None:
    """Never save or register weights that are NaN or infinite."""
    import torch

    for parameter in model.parameters():
        if parameter.requires_grad and not bool(torch.isfinite(parameter).all()):
            raise failures.Diverged(
                f"The trained weights became NaN or infinite by step {step}; nothing was saved. "
                "Lower the learning rate (a tenth is a good first try) and start again."
            )


def _declared_dtype(source: Any, trust_remote_code: bool) -> Any:
    import torch

    from finetune_gui.core.models import load_config

    declared = getattr(load_config(source, trust_remote_code), "dtype", None)
    if isinstance(declared, str):
        declared = getattr(torch, declared, None)
    return declared if isinstance(declared, torch.dtype) else None


def _plan_memory(ctx: RunContext, longest: int) -> tuple[bool, float | None]:
    """Gradient checkpointing on/off ('auto' asks the estimate), and the estimated peak in GiB: the one
    estimate of this config and data on this machine, the number the wizard and ``estimate --config``
    show. A run whose estimate is well beyond the free memory is refused here, before the weights load."""
    from finetune_gui.core.estimate import estimate_run

    config = ctx.config
    result = None
    if ctx.shape is not None:
        try:
            found = estimate_run(config, ctx.shape, ctx.hardware, methods=[config.method], longest=longest)
            result = found.methods[config.method]
        except Exception as exc:  # an estimate is advice; an unusual architecture must not stop the run
            ctx.log(f"No memory estimate for this model ({type(exc).__name__}: {exc}).", "warning")
    setting = config.training.gradient_checkpointing
    wanted = config.training.memory_mode
    if METHODS[config.method].trains_all_weights and wanted != "standard":
        ctx.memory_mode = "lean" if wanted == "lean" else (result.memory_mode if result else "standard")
    if ctx.memory_mode == "lean":
        checkpointing = True  # lean mode keeps only each layer's input
        if wanted == "auto":
            ctx.log("Standard full fine-tuning would not fit; training in lean memory mode.", "warning")
    elif setting == "on":
        checkpointing = True
    elif setting == "off":
        checkpointing = False
    else:
        checkpointing = bool(result and result.gradient_checkpointing)
    budget = ctx.hardware.budget_gib()
    if result is not None and budget > 0:
        needed = result.with_checkpointing_gib if checkpointing else result.without_checkpointing_gib
        if needed > budget * MEMORY_TOLERANCE:
            _refuse_for_memory(ctx, needed, budget)
    return checkpointing, result.total_gib if result is not None else None


def _refuse_for_memory(ctx: RunContext, needed: float, budget: float) -> None:
    from finetune_gui.core.training.advice import oom_fixes

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


def _make_trainer(
    ctx: RunContext, model: Any, tokenizer: Any, data: Data, plan: DevicePlan, checkpointing: bool
) -> Any:
    from transformers import PrinterCallback, TrainingArguments

    from finetune_gui.core.training.callbacks import EventsCallback
    from finetune_gui.core.training.trainer import AppTrainer

    config, t = ctx.config, ctx.config.training
    optim = {"adamw": "adamw_torch", "adamw_8bit": "adamw_bnb_8bit", "paged_adamw_8bit": "paged_adamw_8bit"}[
        optimizer_for(config.method, t.optimizer, plan.device)
    ]
    has_eval = data.validation is not None
    lean = ctx.memory_mode == "lean"
    # Lean mode updates each weight in the backward pass, unless gradients must add up first; it then
    # clips in the optimizer (core/tuners/lean.py), not in the Trainer.
    in_backward = lean and t.gradient_accumulation == 1 and ctx.world_size == 1
    args = TrainingArguments(
        output_dir=str(ctx.folder.checkpoints_dir),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation,
        learning_rate=config.resolved_learning_rate(),
        max_steps=t.max_steps if t.max_steps else -1,
        num_train_epochs=t.epochs or 1.0,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        max_grad_norm=0.0 if in_backward else t.max_grad_norm,
        optim=optim,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        bf16=plan.mixed_precision and plan.precision == "bf16" and not lean,  # lean weights are bf16 already
        fp16=plan.mixed_precision and plan.precision == "fp16" and not lean,
        use_cpu=plan.device == "cpu",
        activation_checkpointing=checkpointing and not METHODS[config.method].quantized_base,
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
    pad_to = 8 if plan.device == "cuda" else None
    pairs = OBJECTIVES[t.objective].pairs
    preference = None
    if pairs:
        from finetune_gui.core.training.objectives.preference import PairCollator, PreferenceLoss

        collator: Any = PairCollator(tokenizer.pad_token_id, pad_to)
        preference = PreferenceLoss(t.objective, config.resolved_beta(), config.preference.loss)
    else:
        collator = _supervised_collator(ctx, model, tokenizer, pad_to)
    trainer = AppTrainer(
        lean=lean,
        in_backward=in_backward,
        clip_in_backward=t.max_grad_norm,
        preference=preference,
        on_loss_note=lambda note: ctx.log(
            f"The memory-saving loss is off ({note}): the model's own loss is used, which holds the full "
            "logits, so the peak can be above the estimate.",
            "warning",
        ),
        model=model,
        args=args,
        train_dataset=to_dataset(data.train),
        eval_dataset=to_dataset(data.validation) if data.validation is not None else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[
            EventsCallback(
                ctx,
                simulate_oom_at=int(os.environ.get(SIMULATE_OOM_ENV, "0") or 0),
                simulate_crash_at=int(os.environ.get(SIMULATE_CRASH_ENV, "0") or 0),
                simulate_nan_at=int(os.environ.get(SIMULATE_NAN_ENV, "0") or 0),
                step_delay_s=float(os.environ.get(STEP_DELAY_ENV, "0") or 0),
            )
        ],
    )
    if config.reference_kind() == "precomputed":
        _precompute_reference(ctx, trainer, data)
    # Our events replace the Trainer's own printing of log dicts.
    trainer.remove_callback(PrinterCallback)
    if has_eval and t.early_stopping:
        from finetune_gui.core.training.early_stop import EarlyStopping

        ctx.early = EarlyStopping(t.early_stopping, t.early_stopping_min_delta, ctx.log)
        trainer.add_callback(ctx.early)
    _add_checks(ctx, trainer, tokenizer, collator, data)
    return trainer


def _supervised_collator(ctx: RunContext, model: Any, tokenizer: Any, pad_to: int | None) -> Any:
    """Padding-free batches where the method, the objective and the model's attention allow them (the
    model's attention is switched to the per-example one here), else padded ones; the log says which."""
    from finetune_gui.core.training import packing
    from finetune_gui.core.training.callbacks import PadCollator

    config = ctx.config
    if not config.training.padding_free:
        return PadCollator(tokenizer.pad_token_id, pad_to)
    why_not = packing.unsupported(
        model, METHODS[config.method].virtual_keys, OBJECTIVES[config.training.objective].pairs
    )
    if why_not is not None:
        ctx.log(f"Batches are padded: {why_not}.")
        return PadCollator(tokenizer.pad_token_id, pad_to)
    packing.enable(model)
    ctx.log("Padding-free batches: each batch's examples side by side in one row, no padding computed.")
    return packing.PackedCollator()


def _add_checks(ctx: RunContext, trainer: Any, tokenizer: Any, collator: Any, data: Data) -> None:
    """What watches the run and judges it: did it learn (questions, or pairs), did it forget, the health
    alerts, and the sample answers at each evaluation."""
    from finetune_gui.core.training.callbacks import SamplesCallback, TimedChecks
    from finetune_gui.core.training.learning import LearningCheck, questions_from, reference_texts

    config, t = ctx.config, ctx.config.training
    pairs = OBJECTIVES[t.objective].pairs
    has_eval = data.validation is not None
    questions = questions_from(data.check_examples, tokenizer, max(t.check_questions, t.sample_prompts))
    checks: list[Any] = []  # their measurements before training run (and are timed) in TimedChecks
    if pairs:
        ctx.check = _preference_check(ctx, tokenizer, collator, trainer, data)
        if ctx.check is not None:
            checks.append(ctx.check)
    else:
        # A few training questions too, so the verdict tells what it absorbed from what carries over.
        trained = (
            questions_from(_spread(data.trained_examples, TRAINED_QUESTIONS), tokenizer, TRAINED_QUESTIONS)
            if data.held_out and t.check_questions
            else []
        )
        ctx.check = LearningCheck(
            ctx,
            tokenizer,
            questions[: t.check_questions] or [],
            t.sample_max_new_tokens,
            trained=trained,
            held_out=data.held_out,
            corpus=reference_texts(data.trained_examples + data.check_examples, tokenizer),
        )
        if t.check_questions and questions:
            checks.append(ctx.check)
            if not data.held_out:
                ctx.log(
                    "No validation rows: the learning check asks questions from the training data.", "warning"
                )
    from finetune_gui.core.estimate.proposal import learning_rate
    from finetune_gui.core.training.alerts import HealthWatch

    proposed = learning_rate(config.method, ctx.shape.parameters if ctx.shape else 0, t.objective)
    trainer.add_callback(HealthWatch(ctx, config.resolved_learning_rate(), t.early_stopping or 0, proposed))
    if t.check_forgetting:
        from finetune_gui.core.training.forgetting import ForgettingCheck

        ctx.forgetting = ForgettingCheck(ctx, tokenizer)
        checks.append(ctx.forgetting)
    trainer.add_callback(TimedChecks(ctx, checks))
    if t.sample_prompts and has_eval and questions:
        # A preference run's samples answer held-out prompts; the reference shown is the chosen answer.
        samples = (
            ctx.check if t.check_questions and not pairs else LearningCheck(ctx, tokenizer, questions, 0)
        )
        trainer.add_callback(
            SamplesCallback(ctx, tokenizer, samples, t.sample_prompts, t.sample_max_new_tokens)
        )


PREFERENCE_TRAINED_PAIRS = 12  # training pairs the preference check scores beside the held-out ones


def _precompute_reference(ctx: RunContext, trainer: Any, data: Data) -> None:
    """DPO without an adapter to switch off: every pair scored once by the weights as loaded (a resumed
    run loads its checkpoint only inside ``train``, so this is the base model then too)."""
    from finetune_gui.core.training.objectives.preference import pair_dataset, precompute_reference

    count = len(data.train.items) + (len(data.validation.items) if data.validation else 0)
    ctx.log(f"Scoring {count:,} pairs with the model before training: DPO's reference.")
    trainer.train_dataset = pair_dataset(
        data.train, precompute_reference(trainer, data.train, trainer.chunked)
    )
    if data.validation is not None:
        trainer.eval_dataset = pair_dataset(
            data.validation, precompute_reference(trainer, data.validation, trainer.chunked)
        )


def _preference_check(ctx: RunContext, tokenizer: Any, collator: Any, trainer: Any, data: Data) -> Any:
    """Did it learn the preference? Held-out pairs (training pairs without a split) and a sample of
    training pairs, each kept with its row for the verdict's examples."""
    from finetune_gui.core.data.encode import encode_pair
    from finetune_gui.core.training.objectives.preference_check import PreferenceCheck

    t = ctx.config.training
    if not t.check_questions:
        return None

    def encoded(rows: list[Any], limit: int) -> list[tuple[Any, Any]]:
        found = []
        for row in rows:
            pair = encode_pair(row, tokenizer, t.max_seq_len)
            if pair.trained_tokens:
                found.append((row, pair))
            if len(found) >= limit:
                break
        return found

    held = encoded(data.check_examples, max(t.check_questions, 2 * PREFERENCE_TRAINED_PAIRS))
    trained = encoded(_spread(data.trained_examples, PREFERENCE_TRAINED_PAIRS), PREFERENCE_TRAINED_PAIRS)
    if not held:
        return None
    return PreferenceCheck(
        ctx,
        tokenizer,
        collator,
        held,
        trained if data.held_out else [],
        held_out=data.held_out,
        max_new_tokens=t.sample_max_new_tokens,
        chunked=trainer.chunked,
    )


def _spread(rows: list[Any], count: int) -> list[Any]:
    """``count`` rows spread evenly over ``rows`` (not its first few, which may all teach one thing)."""
    if len(rows) <= count:
        return list(rows)
    return [rows[round(i * (len(rows) - 1) / (count - 1))] for i in range(count)] if count > 1 else rows[:1]


def _final_metrics(ctx: RunContext, trainer: Any, data: Data, status: str) -> dict[str, Any]:
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


def _save_result(ctx: RunContext, model: Any, tokenizer: Any) -> Path:
    """Write adapter/ (adapter methods) or model/ (full), whole or not at all (a full disk must not leave
    half a folder behind)."""
    from finetune_gui.core.files import staged_folder
    from finetune_gui.core.tuners.setup import save_trained

    folder = ctx.folder
    target = folder.adapter_dir if METHODS[ctx.config.method].adapter_kind else folder.model_dir
    if not ctx.is_main:
        return target
    with staged_folder(target) as staging:
        save_trained(model, ctx.config, staging, ctx.base_dtype)
        tokenizer.save_pretrained(staging)
    return target


def _peak_memory_gib(device: str) -> float:
    from finetune_gui.core.training.readings import peak_gib

    return round(peak_gib(device), 3)


def _run_facts(
    ctx: RunContext, plan: DevicePlan, trainable: int, total: int, data: Data, checkpointing: bool
) -> dict[str, Any]:
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
        "device": plan.device,
        "precision": plan.precision,
        "gradient_checkpointing": checkpointing,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "train_rows": len(data.train.items),
        "validation_rows": len(data.validation.items) if data.validation else 0,
        "skipped_rows": data.problems,
        "estimate_gib": ctx.estimate_gib,
        "memory_mode": ctx.memory_mode,
        "objective": ctx.config.training.objective,
        "reference": ctx.config.reference_kind() or None,
        "proposal": ctx.proposal,
        "system_prompt": data.system_prompt,
        "versions": library_versions(),
        "error_kind": None,
        "error_message": None,
    }
