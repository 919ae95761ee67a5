"""Peak memory of one method's training step, from the model's shape alone, with its parts shown.

It models this app's own training path (``core/tuners/setup.py`` and ``core/training/recipe.py``): what
dtype the base is loaded in, which weights train (always fp32, as PEFT keeps adapters), the optimizer,
activation checkpointing per decoder layer, and the loss path. Terms, in bytes:

- weights: full fine-tuning keeps fp32 master weights (4/param) plus autocast's bf16 copies (2/param);
  LoRA-family bases sit in the compute dtype (2/param); QLoRA packs decoder linears in NF4 (0.5/param)
  with double-quantized constants (0.127 bit/param) while embeddings, norms and lm_head are upcast to
  fp32 by ``prepare_model_for_kbit_training``.
- trainable state: fp32 weight 4 + AdamW moments 8 (8-bit AdamW: 2) per trainable param, and its
  fp32 gradient (4), which is live in the backward pass when activations are being freed, so the peak
  takes the larger of the forward peak (activations + logits) and the gradients.
- activations per token and layer, from what autograd keeps for backward in a Llama-style block
  (``layer_activation_bytes``, plus each method's own term from the registry); with checkpointing only
  each layer's input is kept, plus one layer recomputed at a time. Eager attention adds the heads × seq²
  score matrices.
- logits and loss: the loss is computed in chunks (core/training/loss.py), so one chunk of logits is
  live at a time, about 10 bytes × its entries (bf16 logits, their fp32 upcast, and the fp32
  log-softmax), plus the final hidden states the chunks are computed from.
- margin: CUDA context (0.5 GiB) and allocator fragmentation (8% of the rest).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from finetune_gui.core.estimate.shape import ModelShape
from finetune_gui.core.hardware import GIB
from finetune_gui.core.methods import METHODS, optimizer_for

CUDA_CONTEXT_GIB = 0.5
FRAGMENTATION = 0.08
CPU_BASELINE_GIB = 0.6  # the Python process with torch and transformers imported, on CPU
# On CPUs the peak RSS holds this share of a step's activations and logits beyond the live tensors (the
# C allocator's retained blocks), less what the weight gradients reuse: measured on the demo model for
# every method at 4×256 and 4×512 tokens (bench/cpu_memory.py, docs/memory-calibration.md).
CPU_RETENTION = 0.45
NF4_BYTES = 0.5 + 0.127 / 8
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
MARGIN_PARTS = {"cuda_context", "fragmentation", "process_baseline", "allocator_retention"}


@dataclass(frozen=True)
class Settings:
    """What of a run the estimate depends on; ``core/estimate/for_run.py`` builds it from a RunConfig."""

    batch_size: int = 4
    seq_len: int = 512
    dtype: str = "bf16"  # compute dtype: bf16 | fp16 on GPUs, fp32 on CPUs
    device: str = "cuda"
    gradient_checkpointing: bool | None = None  # None: on only when needed to fit
    lora_r: int = 16
    lora_targets: str | list[str] = "all-linear"
    virtual_tokens: int = 20
    bottleneck: int = 64
    optimizer: str = "auto"  # training.optimizer; 'auto' is resolved per method (methods.optimizer_for)
    memory_mode: str = (
        "auto"  # training.memory_mode: auto | standard | lean (methods that train every weight)
    )
    accumulation: int = 1  # gradient accumulation steps
    world_size: int = 1
    # Sequences each row trains: 2 for the preference objectives (the chosen and the rejected answer run
    # through the model together); their reference pass runs without gradients, before, and keeps nothing.
    sequences: int = 1
    reference_pass: bool = False  # DPO scores every batch with the adapter switched off (time, not memory)

    @property
    def compute_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def rows(self) -> int:
        """Sequences in one forward pass: the batch times the sequences of each row."""
        return self.batch_size * self.sequences


@dataclass
class MethodEstimate:
    method: str
    total_gib: float  # what the device must have free: allocated peak + CUDA context + fragmentation
    allocated_gib: float  # comparable to torch.cuda.max_memory_allocated()
    breakdown: dict[str, float]
    trainable_parameters: int
    gradient_checkpointing: bool
    fits: bool = False
    without_checkpointing_gib: float = 0.0
    with_checkpointing_gib: float = 0.0
    needs_checkpointing: bool = False
    runnable: bool = True
    note: str = ""
    largest_seq_len: int | None = None  # at this batch size, within the budget
    largest_batch_size: int | None = None  # at this sequence length, within the budget
    memory_mode: str = (
        "standard"  # the mode this figure is for (lean: only for methods training every weight)
    )
    standard_gib: float | None = None  # both modes' figures, for methods that train every weight
    lean_gib: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trainable_parameters(method: str, shape: ModelShape, s: Settings) -> int:
    return int(METHODS[method].trainable(shape, s))


def layer_activation_bytes(shape: ModelShape, method: str, s: Settings, keys: int) -> float:
    """Bytes autograd keeps per token for one decoder layer (Llama-style block), for backward.

    Always kept, as gradients flow through every layer: both RMSNorms' fp32 inputs, the attention
    kernel's q, k, v and output, and the MLP's gate, up and SiLU(gate). The method adds its own term
    (the registry's ``activations``: e.g. each LoRA module's input copy, or, when the base weights
    train, every Linear's input).
    """
    c = s.compute_bytes
    h, i, kv = shape.hidden, shape.intermediate, shape.kv_dim
    if shape.attention == "eager":
        kv = h  # eager attention repeats k and v to every head
    total: float = 2 * 4 * h + c * (2 * h + 2 * kv) + 3 * c * i
    if shape.attention == "eager":
        shape = replace(shape, kv_dim=kv)
    total += METHODS[method].activations(shape, s)
    if shape.attention == "eager":
        total += (4 + c) * shape.heads * keys  # fp32 softmax and its compute-dtype copy
    return float(total)


# The loss computes logits this many entries (positions × vocabulary) at a time, 256 MB in fp32; the
# training loss (core/training/loss.py) reads it from here, so the estimate counts the chunk it uses.
CHUNK_ENTRIES = 1 << 26


def activation_bytes(method: str, shape: ModelShape, s: Settings, checkpointing: bool) -> tuple[float, float]:
    """(activations, logits and loss) in bytes for one step. The loss is computed in chunks: one chunk's
    logits live at a time (bf16, fp32 upcast and log-softmax: 10 bytes an entry; 12 in fp32), plus the
    final hidden states the chunks are computed from."""
    m = METHODS[method]
    tokens = s.rows * (s.seq_len + (s.virtual_tokens if m.virtual_tokens_in_sequence else 0))
    keys = s.seq_len + (s.virtual_tokens if m.virtual_keys else 0)
    per_layer = layer_activation_bytes(shape, method, s, keys) * tokens
    c = s.compute_bytes
    if checkpointing:
        activations = shape.layers * c * shape.hidden * tokens + per_layer
    else:
        activations = shape.layers * per_layer
    if m.past_key_values:  # past key/values for every layer and sequence of the batch
        activations += shape.layers * 2 * s.rows * s.virtual_tokens * shape.kv_dim * c
    entries = min(tokens * shape.vocab, max(CHUNK_ENTRIES, s.rows * shape.vocab))
    logits = (10.0 if s.dtype != "fp32" else 12.0) * entries + c * tokens * shape.hidden
    return activations, logits


def lean(method: str, s: Settings) -> bool:
    return METHODS[method].trains_all_weights and s.memory_mode == "lean"


def in_backward(accumulation: int, world_size: int) -> bool:
    """Lean mode updates each weight in the backward pass, unless gradients must add up first (over
    accumulated steps, or over several workers)."""
    return accumulation == 1 and world_size == 1


def largest_tensor(shape: ModelShape) -> int:
    linear = max((n_in * n_out for n_in, n_out, _ in shape.linear_shapes.values()), default=0)
    return max(shape.embedding, shape.lm_head, linear)


def weight_bytes(method: str, shape: ModelShape, s: Settings) -> float:
    m = METHODS[method]
    if lean(method, s):
        return 2.0 * shape.parameters  # bf16 weights, no fp32 master copy
    if m.trains_all_weights:
        return 4.0 * shape.parameters  # fp32 master weights; autocast's copies are a forward-pass term
    if m.quantized_base:
        return NF4_BYTES * shape.decoder_linear + 4.0 * (shape.parameters - shape.decoder_linear)
    return float(s.compute_bytes * shape.parameters)


def estimate_method(method: str, shape: ModelShape, s: Settings, budget_gib: float | None) -> MethodEstimate:
    """The method's peak in the configured memory mode; 'auto' is standard where that fits, lean where
    only lean fits (methods that train every weight)."""
    if not METHODS[method].trains_all_weights:
        result = _estimate_mode(method, shape, replace(s, memory_mode="standard"), budget_gib)
        if METHODS[method].quantized_base and shape.expert_parameters > 0.2 * shape.parameters:
            result.note = result.note or experts_note(shape)
        return result
    if s.memory_mode in ("standard", "lean"):
        result = _estimate_mode(method, shape, s, budget_gib)
        other = _estimate_mode(
            method,
            shape,
            replace(s, memory_mode="lean" if s.memory_mode == "standard" else "standard"),
            budget_gib,
        )
    else:
        standard = _estimate_mode(method, shape, replace(s, memory_mode="standard"), budget_gib)
        lean_one = _estimate_mode(method, shape, replace(s, memory_mode="lean"), budget_gib)
        result, other = (
            (lean_one, standard) if (not standard.fits and lean_one.fits) else (standard, lean_one)
        )
    by_mode = {result.memory_mode: result.total_gib, other.memory_mode: other.total_gib}
    result.standard_gib, result.lean_gib = by_mode["standard"], by_mode["lean"]
    return result


def experts_note(shape: ModelShape) -> str:
    """Why 4-bit saves little on a mixture of experts: bitsandbytes quantizes Linear layers, and the
    experts are fused tensors (kept in fp32 for k-bit training, so QLoRA can need more than LoRA)."""
    return (
        f"4-bit reaches only the Linear layers: this model's experts ({shape.expert_parameters / 1e9:.1f} B of "
        f"its {shape.parameters / 1e9:.1f} B parameters) stay unquantized, so QLoRA saves nothing here"
    )


def _estimate_mode(method: str, shape: ModelShape, s: Settings, budget_gib: float | None) -> MethodEstimate:
    """Peak = persistent state + the larger of the forward peak (activations and logits, plus autocast's
    weight copies when fp32 weights train) and the backward peak (gradients), plus the margin."""
    m = METHODS[method]
    is_lean = lean(method, s)
    trainable = trainable_parameters(method, shape, s)
    eight_bit = is_lean or optimizer_for(method, s.optimizer, s.device).endswith("8bit")
    optimizer_bytes = 2 if eight_bit else 8
    c = s.compute_bytes
    persistent = {
        "weights": weight_bytes(method, shape, s),
        # Full fine-tuning's weights are the trainable ones; adapters add their own fp32 copies.
        "trainable_weights": 0.0 if m.trains_all_weights else 4.0 * trainable,
        "optimizer": float(optimizer_bytes * trainable),
    }
    autocast_copies = (
        c * shape.parameters if m.trains_all_weights and s.dtype != "fp32" and not is_lean else 0.0
    )
    if is_lean and in_backward(s.accumulation, s.world_size):
        # Gradients live one tensor at a time; its update works on fp32 slices of at most 16 M elements.
        gradient_bytes = 2.0 * largest_tensor(shape) + 12.0 * min(largest_tensor(shape), 1 << 24)
    else:
        gradient_bytes = (2.0 if is_lean else 4.0) * trainable

    def total_for(checkpointing: bool) -> tuple[float, dict[str, float]]:
        activations, logits = activation_bytes(method, shape, s, checkpointing)
        forward = {
            "autocast_weight_copies": autocast_copies,
            "activations": activations,
            "logits_and_loss": logits,
        }
        step_tensors = m.step_bytes(shape, s)
        if step_tensors:  # under checkpointing one layer's at a time, recomputed for its backward
            forward["method_step_tensors"] = step_tensors / shape.layers if checkpointing else step_tensors
        if s.device == "cpu" and m.quantized_base:
            # bitsandbytes' CPU path dequantizes each 4-bit weight to fp32 for its matmul, and autograd
            # keeps that copy for the backward pass: the whole decoder in fp32, live at the forward peak.
            forward["dequantized_weights"] = 4.0 * shape.decoder_linear
        backward = {"gradients": gradient_bytes}
        phase = forward if sum(forward.values()) >= sum(backward.values()) else backward
        parts = {**persistent, **{k: v for k, v in phase.items() if v}}
        allocated = sum(parts.values())
        if s.device == "cuda":
            parts["cuda_context"] = CUDA_CONTEXT_GIB * GIB
            parts["fragmentation"] = FRAGMENTATION * allocated
        else:
            parts["process_baseline"] = CPU_BASELINE_GIB * GIB
        if s.device == "cpu":
            # glibc keeps freed activation-sized blocks (a few MB: under its mmap threshold) in the heap,
            # so the process holds more than its live tensors; gradients of the weights reuse part of it.
            whole_gradients = 0.0 if is_lean and in_backward(s.accumulation, s.world_size) else gradient_bytes
            kept = CPU_RETENTION * (activations + logits) - whole_gradients
            if kept > 0:
                parts["allocator_retention"] = kept
        return sum(parts.values()) / GIB, {k: round(v / GIB, 3) for k, v in parts.items()}

    without, parts_without = total_for(False)
    with_ckpt, parts_with = total_for(True)
    if is_lean:
        use = True  # lean mode always checkpoints activations
    elif s.gradient_checkpointing is None:
        use = budget_gib is not None and without > budget_gib and with_ckpt <= budget_gib
    else:
        use = s.gradient_checkpointing
    total, breakdown = (with_ckpt, parts_with) if use else (without, parts_without)
    return MethodEstimate(
        method=method,
        total_gib=round(total, 3),
        allocated_gib=round(sum(v for k, v in breakdown.items() if k not in MARGIN_PARTS), 3),
        breakdown=breakdown,
        trainable_parameters=trainable,
        gradient_checkpointing=use,
        fits=budget_gib is None or total <= budget_gib,
        without_checkpointing_gib=round(without, 3),
        with_checkpointing_gib=round(with_ckpt, 3),
        needs_checkpointing=budget_gib is not None and without > budget_gib >= with_ckpt,
        memory_mode="lean" if is_lean else "standard",
    )


def largest_fit(method: str, shape: ModelShape, s: Settings, budget_gib: float, what: str) -> int | None:
    """The largest seq_len (multiple of 64) or batch size that fits ``budget_gib``, or None."""

    def fits(value: int) -> bool:
        trial = replace(s, seq_len=value) if what == "seq_len" else replace(s, batch_size=value)
        return estimate_method(method, shape, trial, budget_gib).fits

    step = 64 if what == "seq_len" else 1
    low, high = 1, (131072 // 64 if what == "seq_len" else 1024)
    if not fits(low * step):
        return None
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid * step):
            low = mid
        else:
            high = mid - 1
    return low * step
