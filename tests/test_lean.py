"""Lean full fine-tuning and the chunked loss: the same loss and gradients as the model's own, the
estimate against torchtune's published figure, and a lean run that trains, stops, resumes and saves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from cli_helpers import cli
from test_training import ListSink, make_config

from finetune_gui.core.events import Finished, Log, Started, Step
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.recipe import run_training

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.mark.parametrize("method", ["full", "lora"])
def test_the_chunked_loss_equals_the_models_own_loss_and_gradients(tiny_model, monkeypatch, method):
    from transformers import AutoModelForCausalLM

    from finetune_gui.core.training import loss as loss_module

    monkeypatch.setattr(loss_module, "CHUNK_ENTRIES", 3 * 400)  # a few positions a chunk: many chunks
    torch.manual_seed(0)
    ids = torch.randint(5, 390, (3, 21))
    labels = ids.clone()
    labels[:, :6] = -100  # a prompt that carries no loss
    labels[2, 15:] = -100  # padding
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}

    def model_and_grads(chunked: bool):
        model = AutoModelForCausalLM.from_pretrained(tiny_model)
        if method == "lora":
            from peft import LoraConfig, get_peft_model

            torch.manual_seed(1)
            model = get_peft_model(
                model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
            )
        if chunked:
            value, _ = loss_module.ChunkedLoss(model)(model, dict(inputs), None)
            assert value is not None, "the chunked loss switched itself off"
        else:
            value = model(**inputs).loss
        value.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return value.item(), grads

    reference, reference_grads = model_and_grads(False)
    chunked, chunked_grads = model_and_grads(True)
    assert chunked == pytest.approx(reference, rel=1e-5)
    assert reference_grads.keys() == chunked_grads.keys() and reference_grads
    for name, grad in reference_grads.items():
        assert torch.allclose(chunked_grads[name], grad, atol=1e-6, rtol=1e-4), name


def test_a_run_whose_chunked_loss_gives_way_says_so_once(tiny_model, small_dataset, tmp_path, monkeypatch):
    """The estimate assumes chunks; when the model's own loss takes over, the log warns of the higher peak."""
    from finetune_gui.core.training import loss as loss_module

    monkeypatch.setattr(loss_module.ChunkedLoss, "_agrees", staticmethod(lambda *_a: False))
    config = make_config(tiny_model, small_dataset, tmp_path / "run", "lora", max_steps=3)
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 0
    told = [e for e in sink.of(Log) if "memory-saving loss is off" in e.message]
    assert len(told) == 1 and told[0].level == "warning"
    assert "did not match the model's own logits" in told[0].message
    assert sink.of(Finished)[0].status == "completed"


def estimate_json(*args):
    result = cli("estimate", *map(str, args), "--json", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_lean_full_fine_tuning_of_llama_3b_matches_torchtunes_figure(tmp_path):
    sys.path.insert(0, str(TOOLS))
    from known_models import write_config

    model = write_config("Llama-3.2-3B", tmp_path / "llama")
    config = tmp_path / "lean.yaml"
    config.write_text(
        f"model: {model}\nmethod: full\ntraining: {{memory_mode: lean, batch_size: 2, max_seq_len: 4096, "
        "precision: bf16, gradient_checkpointing: on}\n"
    )
    lean = estimate_json("--config", config, "--method", "full", "--vram-gib", 80)["methods"]["full"]
    assert lean["memory_mode"] == "lean"
    assert abs(lean["total_gib"] - 17.6) <= 0.1 * 17.6, lean  # torchtune, A100, same batch
    assert lean["standard_gib"] > 2.5 * lean["total_gib"]
    auto = estimate_json(
        model, "--method", "full", "--batch-size", 1, "--seq-len", 1024, "--dtype", "bf16", "--vram-gib", 16
    )
    full = auto["methods"]["full"]
    assert full["fits"] and full["memory_mode"] == "lean" and auto["recommended"] == "full"


def test_a_lean_run_trains_stops_resumes_and_saves(tiny_model, small_dataset, tmp_path):
    from finetune_gui.core.tuners.lean import LeanAdamW

    config = make_config(
        tiny_model, small_dataset, tmp_path / "run", "full", max_steps=40, learning_rate=3e-3, save_steps=4
    )
    config.training.memory_mode = "lean"
    control = RunControl()

    class StopAtFive(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, Step) and event.step == 5:
                control.request_stop()

    sink = StopAtFive()
    assert run_training(config, sink=sink, control=control) == 0
    assert sink.of(Started)[0].memory_mode == "lean" and sink.of(Finished)[0].status == "stopped"
    steps = sink.of(Step)
    assert all(e.grad_norm and e.grad_norm > 0 for e in steps)
    assert not [e for e in sink.of(Log) if "memory-saving loss" in e.message]  # its chunks held
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["memory_mode"] == "lean" and (tmp_path / "run" / "model" / "model.safetensors").is_file()
    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-6"
    saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)
    assert any(s["m"][0].dtype == torch.uint8 for s in saved["state"].values() if s.get("quantized"))
    probe = LeanAdamW([torch.nn.Parameter(torch.zeros(1))])  # the state round-trips as saved (uint8, fp32)
    one = {
        "state": {
            0: {
                "step": 3,
                "quantized": True,
                "m": [torch.ones(4, dtype=torch.uint8)],
                "m_scale": [torch.ones(1)],
            }
        },
        "param_groups": [{**probe.param_groups[0], "params": [0]}],
    }
    probe.load_state_dict(one)
    restored = next(iter(probe.state.values()))
    assert restored["m"][0].dtype == torch.uint8 and restored["m_scale"][0].dtype == torch.float32

    config.training.max_steps = 12
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl(), resume=True) == 0
    losses = [e.loss for e in sink.of(Step)]
    assert [e.step for e in sink.of(Step)] == list(range(7, 13))
    assert sum(losses[-3:]) / 3 < steps[0].loss  # it went on learning from the resumed state
    assert sink.of(Finished)[0].status == "completed"


def test_bf16_weights_computed_in_fp32_give_fp32_results_and_bf16_gradients(tiny_model):
    """CPUs without fast bf16 arithmetic: the weights stay bf16 (the memory saving), the arithmetic is
    fp32, and the gradients still reach the bf16 weights the optimizer updates."""
    from transformers import AutoModelForCausalLM

    from finetune_gui.core.tuners.lean import compute_in_float32

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16)
    reference = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16).float()
    switched = compute_in_float32(model)
    assert switched == sum(isinstance(m, (torch.nn.Linear, torch.nn.Embedding)) for m in model.modules())
    ids = torch.tensor([[1, 5, 9, 20, 30, 40]])
    logits = model(ids).logits
    assert logits.dtype == torch.float32
    assert torch.allclose(logits, reference(ids).logits, atol=1e-4)
    logits.sum().backward()
    weights = [p for p in model.parameters() if p.dim() == 2]
    assert all(
        p.dtype == torch.bfloat16 and p.grad is not None and p.grad.dtype == torch.bfloat16 for p in weights
    )
    assert all(not k.startswith("parametrizations") for k in model.state_dict())  # saves as before


def test_clipping_in_the_backward_pass_bounds_the_norm_and_spares_healthy_gradients():
    """Each weight is updated as its gradient arrives, so the global norm is not known yet: while the norms
    are above the limit each tensor gets its share of it by size (the global norm stays within the limit);
    below the limit a healthy gradient is left alone."""
    from finetune_gui.core.tuners.lean import LeanAdamW

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.zeros(n)) for n in (5000, 300, 20)]
    optimizer = LeanAdamW(params, lr=1e-3, max_grad_norm=1.0)
    optimizer.attach()
    seen: list[torch.Tensor] = []
    update = optimizer._update
    optimizer._update = lambda p, g: (seen.append(p.grad.clone()), update(p, g))  # what the update used

    def backward(scale: float) -> tuple[float, float]:
        seen.clear()
        directions = [torch.randn(p.shape) for p in params]
        norm = torch.cat(directions).norm()
        sum((p * d * scale / norm).sum() for p, d in zip(params, directions, strict=True)).backward()
        optimizer.step()
        return float(torch.cat(seen).norm()), optimizer.take_grad_norm()

    used, logged = backward(10.0)  # the first step, far over the limit
    assert used <= 1.0 + 1e-5 and logged == pytest.approx(10.0, rel=1e-4)  # the log says the real norm
    used, logged = backward(0.5)  # the last step was over: still shares
    assert used <= 0.5 + 1e-5
    used, logged = backward(0.5)  # below the limit now: as it came
    assert used == pytest.approx(0.5, rel=1e-4)


@pytest.mark.slow
def test_lean_mode_trains_the_demo_model_to_standard_modes_loss(demo_model, tmp_path):
    """The issue's measure: full fine-tuning, 20 steps of 4 × 128, lr 5e-5, the demo's made-up facts; the
    mean of the last five losses in lean mode within 10% of standard mode's (measured 0.1%)."""
    from finetune_gui.core.config import RunConfig

    repo = Path(__file__).resolve().parents[1]
    last5 = {}
    for mode in ("standard", "lean"):
        config = RunConfig(model=str(demo_model), method="full", output_dir=str(tmp_path / mode))
        config.dataset.path, config.dataset.validation_split = (
            str(repo / "resources" / "demo-dataset.jsonl"),
            0,
        )
        t = config.training
        t.memory_mode, t.max_steps, t.batch_size, t.learning_rate, t.max_seq_len = mode, 20, 4, 5e-5, 128
        t.save_steps, t.check_questions, t.sample_prompts, t.check_forgetting = 100000, 0, 0, False
        t.gradient_checkpointing, t.seed = "on", 7
        sink = ListSink()
        assert run_training(config, sink=sink, control=RunControl()) == 0
        assert sink.of(Started)[0].memory_mode == mode
        losses = [e.loss for e in sink.of(Step)]
        last5[mode] = sum(losses[-5:]) / 5
    assert last5["lean"] <= 1.10 * last5["standard"], last5
