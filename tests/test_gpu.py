"""The CUDA-only paths: QLoRA's 4-bit base with the paged 8-bit optimizer, bf16 on a GPU, and lean full
fine-tuning's CUDA peak against standard's. Skipped without CUDA (`pytest -m gpu` on a GPU machine;
bench/gpu_check.py runs them too)."""

from __future__ import annotations

import json

import pytest
import torch
from test_training import ListSink, make_config

from finetune_gui.core.events import Finished, Started, Step
from finetune_gui.core.methods import optimizer_for
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.recipe import run_training

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def _train(config) -> ListSink:
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 0
    assert sink.of(Finished)[0].status == "completed"
    return sink


def _falls(sink: ListSink) -> bool:
    losses = [e.loss for e in sink.of(Step) if e.loss is not None]
    return len(losses) >= 4 and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2


def test_qlora_on_cuda_trains_a_4bit_base_with_the_paged_8bit_optimizer(tiny_model, small_dataset, tmp_path):
    pytest.importorskip("bitsandbytes")
    config = make_config(
        tiny_model, small_dataset, tmp_path / "run", "qlora", max_steps=12, learning_rate=2e-3
    )
    sink = _train(config)
    started = sink.of(Started)[0]
    assert started.device == "cuda"
    assert optimizer_for("qlora", config.training.optimizer, started.device) == "paged_adamw_8bit"
    assert _falls(sink)
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()


def test_bf16_on_cuda_trains_lora_in_bf16_and_learns(tiny_model, small_dataset, tmp_path):
    if not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    config = make_config(
        tiny_model, small_dataset, tmp_path / "run", "lora", max_steps=12, learning_rate=2e-3
    )
    config.training.precision = "bf16"
    sink = _train(config)
    assert sink.of(Started)[0].precision == "bf16"
    assert all(e.loss is not None and torch.isfinite(torch.tensor(e.loss)) for e in sink.of(Step))
    assert _falls(sink)


def test_lean_full_fine_tuning_peaks_below_standard_on_cuda(tiny_model, small_dataset, tmp_path):
    peaks = {}
    for mode in ("standard", "lean"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        config = make_config(
            tiny_model, small_dataset, tmp_path / mode, "full", max_steps=6, learning_rate=1e-3
        )
        config.training.memory_mode = mode
        sink = _train(config)
        assert sink.of(Started)[0].memory_mode == mode
        peaks[mode] = json.loads((tmp_path / mode / "run.json").read_text())["measured_peak_gib"]
    assert 0 < peaks["lean"] < peaks["standard"]


def test_padding_free_batches_on_cuda_give_the_padded_loss_and_gradients(tiny_model):
    """SDPA's CUDA kernels per example (flash or memory-efficient) against the padded batch."""
    from test_packing import assert_same, features, loss_and_grads
    from transformers import AutoModelForCausalLM

    from finetune_gui.core.training import packing
    from finetune_gui.core.training.callbacks import PadCollator

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).cuda()
    rows = features(model.config.vocab_size)
    on_gpu = lambda batch: {k: v.cuda() if torch.is_tensor(v) else v for k, v in batch.items()}  # noqa: E731
    padded = loss_and_grads(model, on_gpu(PadCollator(0)(rows)))
    packing.enable(model)
    assert_same(padded, loss_and_grads(model, on_gpu(packing.PackedCollator()(rows))))
