"""The training recipe: one run from a RunConfig, top to bottom.

    setup (folder, device, model source, tokenizer, data) → build (model + method) → fit (transformers'
    Trainer, with our events and control callback) → save (adapter/ or model/, run.json) → report.

The CLI and the window's training process both run exactly this. Only rank 0 writes the run folder
and events when several processes train together.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_gui.core.config import RunConfig, check_paths
from finetune_gui.core.data.encode import EncodedDataset, encode_all, ensure_chat_template, split
from finetune_gui.core.data.scan import load_examples
from finetune_gui.core.errors import ConfigError, UserError
from finetune_gui.core.events import EventSink, Failed, Finished, Log, Started
from finetune_gui.core.hardware import DevicePlan
from finetune_gui.core.methods import METHODS, optimizer_for
from finetune_gui.core.runs import RunFolder
from finetune_gui.core.training.control import RunControl

# Test-only switches: raise an out-of-memory error at this step; sleep this long after every step.
SIMULATE_OOM_ENV = "FINETUNE_GUI_SIMULATE_OOM_AT_STEP"
STEP_DELAY_ENV = "FINETUNE_GUI_TEST_STEP_DELAY"


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
    try:
        return _run(ctx, resume)
    except UserError as exc:
        return _fail(ctx, exc.kind, str(exc), [], exc.exit_code)
    except Exception as exc:
        if _is_oom(exc):
            from finetune_gui.core.training.advice import oom_fixes

            message = f"Out of memory at step {ctx.step} with batch {config.training.batch_size}."
            fixes = oom_fixes(config, ctx.shape, ctx.hardware)
            return _fail(ctx, "oom", message, [f["label"] for f in fixes], 3, fixes=fixes)
        if debug:
            raise
        log_path = _write_error_log(ctx.folder)
        message = (
            f"Training stopped at step {ctx.step} with an unexpected error: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ).rstrip(": ")
        return _fail(ctx, "crash", message, ["The full error is in " + str(log_path)], 1, str(log_path))
    finally:
        ctx.sink.close()


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        return isinstance(exc, torch.OutOfMemoryError)
    except ImportError:
        return False


def _write_error_log(folder: RunFolder) -> Path:
    path = folder.path / "error.log"
    try:
        folder.path.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError:
        pass  # the folder itself may be the problem; the event still carries the message
    return path


def _fail(
    ctx: RunContext,
    kind: str,
    message: str,
    advice: list[str],
    code: int,
    log_path: str | None = None,
    fixes: list[dict[str, Any]] | None = None,
) -> int:
    ctx.emit(Failed(kind_=kind, message=message, advice=advice, log_path=log_path, fixes=fixes or []))
    if ctx.is_main and ctx.folder.path.is_dir():
        ctx.folder.update(
            status="failed",
            error_kind=kind,
            error_message=message,
            advice=advice,
            finished_at=_now(),
            checkpoint=str(ctx.folder.last_checkpoint() or "") or None,
        )
    return code


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# ---------------------------------------------------------------------------------------------- setup


def _prepare_folder(ctx: RunContext, resume: bool) -> Path | None:
    """Create or reopen the run folder; returns the checkpoint to resume from."""
    folder = ctx.folder
    checkpoint = None
    if resume:
        checkpoint = folder.last_checkpoint()
        if checkpoint is None:
            state = folder.read().get("status")
            if state == "completed":
                raise ConfigError(f"The run in {folder.path} already completed; there is nothing to resume.")
            raise ConfigError(
                f"There is no checkpoint in {folder.checkpoints_dir} to resume from. "
                "Start the run again without --resume (checkpoints are written every save_steps)."
            )
    elif folder.exists():
        status = folder.read().get("status", "unknown")
        raise ConfigError(
            f"{folder.path} already holds a run (status {status}). Continue it with --resume, "
            "or choose another output_dir (e.g. --set output_dir=runs/new-run)."
        )
    if ctx.is_main:
        folder.path.mkdir(parents=True, exist_ok=True)
        ctx.config.save(folder.config_path)
        if checkpoint is not None:
            folder.truncate_metrics(int(checkpoint.name.split("-")[-1]))
    return checkpoint


@dataclass
class Data:
    train: EncodedDataset
    validation: EncodedDataset | None
    rows: int
    problems: int
    sample_examples: list[Any] = field(default_factory=list)  # raw examples whose prompts are sampled


def _load_data(ctx: RunContext, tokenizer: Any) -> Data:
    cfg = ctx.config.dataset
    examples, report = load_examples(cfg.path, cfg.format, cfg.columns)
    if report.problem_count:
        first = "; ".join(p.describe() for p in report.problems[:3])
        ctx.log(f"{report.problem_count:,} of {report.total:,} rows skipped. {first}", "warning")
    if cfg.validation_path:
        val_examples, _ = load_examples(cfg.validation_path, cfg.format, cfg.columns)
        train_examples = examples
    else:
        train_examples, val_examples = split(examples, cfg.validation_split, ctx.config.training.seed)
    max_len = ctx.config.training.max_seq_len
    train = encode_all(train_examples, tokenizer, max_len)
    if train.truncated or train.dropped:
        ctx.log(
            f"{train.truncated:,} examples are longer than max_seq_len {max_len} and were cut; "
            f"{train.dropped:,} lost their whole answer and were skipped.",
            "warning",
        )
    if not train.items:
        raise UserError(
            f"No training example keeps any answer tokens within max_seq_len {max_len}. "
            "Raise training.max_seq_len or shorten the prompts.",
            kind="data",
            exit_code=2,
        )
    validation = encode_all(val_examples, tokenizer, max_len) if val_examples else None
    samples = (val_examples or train_examples)[: ctx.config.training.sample_prompts]
    return Data(
        train,
        validation if validation and validation.items else None,
        report.rows,
        report.problem_count,
        samples,
    )


def _to_dataset(encoded: EncodedDataset) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "input_ids": [e.input_ids for e in encoded.items],
            "labels": [e.labels for e in encoded.items],
            "length": [len(e.input_ids) for e in encoded.items],
        }
    )


# --------------------------------------------------------------------------------------------- recipe


def _run(ctx: RunContext, resume: bool) -> int:
    from finetune_gui.core import hardware
    from finetune_gui.core.models import load_tokenizer, materialize, resolve_model
    from finetune_gui.core.tuners import setup as method_setup

    config = ctx.config
    check_paths(config)
    checkpoint = _prepare_folder(ctx, resume)
    for notice in config.notices:
        ctx.log(notice, "warning")
    ctx.hardware = hardware.detect()
    plan = hardware.plan_device(config.training.precision, ctx.hardware)
    ctx.log(f"Resolving the model {config.model}")
    source = resolve_model(config.model, allow_pickle=config.allow_pickle_weights)
    source = materialize(source, lambda what, _f: ctx.log(f"Converting the GGUF model: {what}"))
    tokenizer = load_tokenizer(source, config.trust_remote_code)
    ctx.base_dtype = _declared_dtype(source, config.trust_remote_code)
    if ensure_chat_template(tokenizer):
        ctx.log(
            "The tokenizer has no chat template; using a plain '### User / ### Assistant' layout.", "warning"
        )
    ctx.log(f"Reading the dataset {config.dataset.path}")
    data = _load_data(ctx, tokenizer)
    checkpointing, ctx.estimate_gib = _plan_memory(ctx)
    ctx.log(f"Loading the model on {plan.device} ({plan.precision})")
    model = method_setup.load_base(config, source, plan, checkpointing)
    model = method_setup.apply_method(model, config, source)
    trainable, total = method_setup.count_parameters(model)
    trainer = _make_trainer(ctx, model, tokenizer, data, plan, checkpointing)
    max_steps = trainer.args.max_steps if trainer.args.max_steps > 0 else _planned_steps(ctx, data)
    start_step = int(checkpoint.name.split("-")[-1]) if checkpoint else 0
    if ctx.is_main:
        ctx.folder.update(**_run_facts(ctx, plan, trainable, total, data, checkpointing, status="running"))
    ctx.emit(
        Started(
            config=config.to_dict(),
            trainable_parameters=trainable,
            total_parameters=total,
            world_size=ctx.world_size,
            max_steps=max_steps,
            start_step=start_step,
            device=plan.device,
            precision=plan.precision,
            estimate_gib=ctx.estimate_gib,
            train_rows=len(data.train.items),
            validation_rows=len(data.validation.items) if data.validation else 0,
        )
    )
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    status = "stopped" if ctx.control.stop_requested else "completed"
    metrics = _final_metrics(ctx, trainer, data, status)
    output = _save_result(ctx, trainer.model, tokenizer)
    if ctx.is_main:
        ctx.folder.update(
            status=status,
            finished_at=_now(),
            duration_s=round(time.time() - ctx.started_at, 1),
            metrics=metrics,
            measured_peak_gib=_peak_memory_gib(plan.device),
            output=str(output),
        )
    if ctx.is_main and METHODS[config.method].adapter_kind is not None:
        from finetune_gui.core.adapters.library import AdapterLibrary

        AdapterLibrary().register_run(ctx.folder.path)
    ctx.emit(Finished(status=status, metrics=metrics, output_path=str(output)))
    from finetune_gui.core.training.distributed import barrier

    barrier()
    return 0


def _declared_dtype(source: Any, trust_remote_code: bool) -> Any:
    import torch

    from finetune_gui.core.models import load_config

    declared = getattr(load_config(source, trust_remote_code), "dtype", None)
    if isinstance(declared, str):
        declared = getattr(torch, declared, None)
    return declared if isinstance(declared, torch.dtype) else None


def _plan_memory(ctx: RunContext) -> tuple[bool, float | None]:
    """Gradient checkpointing on/off ('auto' asks the estimate), and the estimated peak in GiB: the one
    estimate of this config on this machine, the number the wizard and ``estimate --config`` show."""
    from finetune_gui.core.estimate import estimate_run, shape_for

    config = ctx.config
    try:
        ctx.shape = shape_for(config)
        result = estimate_run(config, ctx.shape, ctx.hardware, methods=[config.method]).methods[config.method]
    except Exception as exc:  # an estimate is advice; an unusual architecture must not stop the run
        ctx.log(f"No memory estimate for this model ({type(exc).__name__}: {exc}).", "warning")
        result = None
    setting = config.training.gradient_checkpointing
    if setting == "on":
        checkpointing = True
    elif setting == "off":
        checkpointing = False
    else:
        checkpointing = bool(result and result.gradient_checkpointing)
    return checkpointing, result.total_gib if result is not None else None


def _planned_steps(ctx: RunContext, data: Data) -> int:
    import math

    t = ctx.config.training
    per_step = t.batch_size * t.gradient_accumulation * ctx.world_size
    return max(1, math.ceil(len(data.train.items) / per_step * (t.epochs or 1)))


def _make_trainer(
    ctx: RunContext, model: Any, tokenizer: Any, data: Data, plan: DevicePlan, checkpointing: bool
) -> Any:
    from transformers import PrinterCallback, Trainer, TrainingArguments

    from finetune_gui.core.training.callbacks import EventsCallback, PadCollator, SamplesCallback

    config, t = ctx.config, ctx.config.training
    optim = {"adamw": "adamw_torch", "adamw_8bit": "adamw_bnb_8bit", "paged_adamw_8bit": "paged_adamw_8bit"}[
        optimizer_for(config.method, t.optimizer, plan.device)
    ]
    has_eval = data.validation is not None
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
        max_grad_norm=t.max_grad_norm,
        optim=optim,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=t.eval_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        data_seed=t.seed,
        bf16=plan.mixed_precision and plan.precision == "bf16",
        fp16=plan.mixed_precision and plan.precision == "fp16",
        use_cpu=plan.device == "cpu",
        activation_checkpointing=checkpointing and not METHODS[config.method].quantized_base,
        activation_checkpointing_kwargs={"use_reentrant": False},
        train_sampling_strategy="group_by_length" if t.group_by_length else "random",
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        report_to="none",
        disable_tqdm=True,
        log_level="error",
    )
    pad_to = 8 if plan.device == "cuda" else None
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=_to_dataset(data.train),
        eval_dataset=_to_dataset(data.validation) if has_eval else None,
        data_collator=PadCollator(tokenizer.pad_token_id, pad_to),
        processing_class=tokenizer,
        callbacks=[
            EventsCallback(
                ctx,
                simulate_oom_at=int(os.environ.get(SIMULATE_OOM_ENV, "0") or 0),
                step_delay_s=float(os.environ.get(STEP_DELAY_ENV, "0") or 0),
            )
        ],
    )
    # Our events replace the Trainer's own printing of log dicts.
    trainer.remove_callback(PrinterCallback)
    prompts = [p for p in (sample_prompt(e, tokenizer) for e in data.sample_examples) if p]
    if prompts and has_eval:
        trainer.add_callback(SamplesCallback(ctx, tokenizer, prompts, t.sample_max_new_tokens))
    return trainer


def sample_prompt(example: Any, tokenizer: Any) -> tuple[str, str] | None:
    """(what the model is given, what the user reads) for a sample: a chat up to its last answer, or a
    completion's prompt; plain text has no question to ask."""
    if example.kind == "chat":
        turns = list(example.messages)
        while turns and turns[-1][0] == "assistant":
            turns.pop()
        if not turns:
            return None
        messages = [{"role": r, "content": c} for r, c in turns]
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text, turns[-1][1]
    if example.kind == "completion":
        return example.prompt, example.prompt
    return None


def _final_metrics(ctx: RunContext, trainer: Any, data: Data, status: str) -> dict[str, Any]:
    history = [r for r in trainer.state.log_history if "loss" in r]
    metrics: dict[str, Any] = {
        "steps": trainer.state.global_step,
        "epoch": round(trainer.state.epoch or 0.0, 4),
    }
    if history:
        metrics["final_loss"] = history[-1]["loss"]
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
    """Write adapter/ (adapter methods) or model/ (full), atomically via a staging folder."""
    import shutil

    from finetune_gui.core.tuners.setup import save_trained

    folder = ctx.folder
    target = folder.adapter_dir if METHODS[ctx.config.method].adapter_kind else folder.model_dir
    if not ctx.is_main:
        return target
    staging = target.with_name(f".{target.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    save_trained(model, ctx.config, staging, ctx.base_dtype)
    tokenizer.save_pretrained(staging)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target


def _peak_memory_gib(device: str) -> float:
    from finetune_gui.core.training.readings import peak_gib

    return round(peak_gib(device), 3)


def _run_facts(
    ctx: RunContext,
    plan: DevicePlan,
    trainable: int,
    total: int,
    data: Data,
    checkpointing: bool,
    status: str,
) -> dict[str, Any]:
    from finetune_gui.core.training.readings import library_versions

    return {
        "status": status,
        "pid": os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ctx.started_at)),
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
        "versions": library_versions(),
        "error_kind": None,
        "error_message": None,
    }
