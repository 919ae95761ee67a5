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
