"""Padding-free batches: the loss and gradients are the padded batch's, for each attention shape the
families bring (Llama, Qwen3's q/k norms, Gemma 3's sliding windows shorter than an example), with LoRA and
with activation checkpointing; a packed row whose attention crossed the examples' boundaries would not be;
and a run trains to the same losses with them on and off."""

from __future__ import annotations

import json

import pytest
import torch
from test_training import ListSink, make_config
from tiny_model import build_tiny_model

from finetune_gui.core.events import Finished, Log, Started
from finetune_gui.core.training import packing
from finetune_gui.core.training.callbacks import PadCollator
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.loss import ChunkedLoss
from finetune_gui.core.training.recipe import run_training

LENGTHS = (37, 5, 70, 12)  # 70 and 37 are longer than the tiny Gemma 3's sliding window (16)


def features(vocab: int) -> list[dict]:
    generator = torch.Generator().manual_seed(1)
    found = []
    for n in LENGTHS:
        ids = torch.randint(3, vocab, (n,), generator=generator).tolist()
        found.append({"input_ids": ids, "labels": [-100] * (n // 3) + ids[n // 3 :]})
    return found


def loss_and_grads(model, batch):
    model.zero_grad()
    items = (batch["labels"][..., 1:] != -100).sum()
    with packing.packed_forward(batch):
        loss, _ = ChunkedLoss(model)(model, batch, items)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same(padded, packed):
    (loss_a, grads_a), (loss_b, grads_b) = padded, packed
    assert torch.allclose(loss_a, loss_b, rtol=1e-5, atol=1e-6), (loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], rtol=1e-4, atol=1e-6), name


def test_the_collator_puts_examples_side_by_side_with_their_own_positions():
    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8, 9], "labels": [8, 9]}]
    batch = packing.PackedCollator()(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    # The second example's first token is not predicted from the first example's last one.
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 5] and batch["max_length_q"] == 3
    assert "attention_mask" not in batch


@pytest.mark.parametrize("family", ["llama", "qwen3", "gemma3"])
def test_packed_loss_and_gradients_are_the_padded_batchs(family, tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path = tiny_model if family == "llama" else build_tiny_model(tmp_path / family, family)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    rows = features(model.config.vocab_size)
    model.train()
    padded = loss_and_grads(model, PadCollator(0)(rows))
    packing.enable(model)
    assert_same(padded, loss_and_grads(model, packing.PackedCollator()(rows)))
    packing.disable(model)
    assert model.config._attn_implementation == "sdpa"

    # The same through a LoRA model, with the layers recomputed in the backward pass.
    torch.manual_seed(0)
    lora = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", lora_dropout=0.0))
    lora.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    lora.enable_input_require_grads()
    padded = loss_and_grads(lora, PadCollator(0)(rows))
    packing.enable(lora)
    assert_same(padded, loss_and_grads(lora, packing.PackedCollator()(rows)))


def test_attention_across_the_boundaries_would_be_caught(tiny_model):
    """The comparison above can fail: the same packed row, its boundaries dropped (one causal sequence), gives
    another loss."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    rows = features(model.config.vocab_size)
    padded = loss_and_grads(model, PadCollator(0)(rows))
    packing.enable(model)
    crossing = packing.PackedCollator()(rows)
    whole = torch.tensor([0, crossing["input_ids"].shape[1]], dtype=torch.int32)
    crossing.update(
        cu_seq_lens_q=whole, cu_seq_lens_k=whole, max_length_q=int(whole[1]), max_length_k=int(whole[1])
    )
    with pytest.raises(AssertionError):
        assert_same(padded, loss_and_grads(model, crossing))


def run(tiny_model, dataset, out, method, padding_free):
    config = make_config(tiny_model, dataset, out, method, padding_free=padding_free, check_questions=0)
    config.training.learning_rate = 1e-2
    config.lora.dropout = 0.0
    sink = ListSink()
    assert run_training(config, sink=sink, control=RunControl()) == 0
    losses = [json.loads(line).get("loss") for line in (out / "metrics.jsonl").read_text().splitlines()]
    logs = [e.message for e in sink.of(Log)]
    return [x for x in losses if x is not None], logs, sink


@pytest.mark.parametrize("method", ["lora", "full"])
def test_a_run_trains_to_the_same_losses_with_padding_free_batches(
    method, tiny_model, small_dataset, tmp_path
):
    padded, padded_logs, _ = run(tiny_model, small_dataset, tmp_path / "padded", method, False)
    packed, logs, sink = run(tiny_model, small_dataset, tmp_path / "packed", method, True)
    assert any(line.startswith("Padding-free batches") for line in logs)
    assert not any(line.startswith("Padding-free batches") for line in padded_logs)
    assert len(packed) == len(padded) == sink.of(Started)[0].max_steps
    assert packed == pytest.approx(padded, rel=2e-4)
    # Evaluations ran packed too, to the same loss.
    evals = [json.loads(x) for x in (tmp_path / "packed" / "metrics.jsonl").read_text().splitlines()]
    evals_padded = [json.loads(x) for x in (tmp_path / "padded" / "metrics.jsonl").read_text().splitlines()]
    pick = lambda rows: [r["eval_loss"] for r in rows if "eval_loss" in r]  # noqa: E731
    assert pick(evals) and pick(evals) == pytest.approx(pick(evals_padded), rel=2e-4)
    # What was saved names plain SDPA, not the packed attention.
    output = sink.of(Finished)[0].output_path
    for name in ("config.json", "adapter_config.json"):
        path = tmp_path / "packed" / output.split("/")[-1] / name
        if path.exists():
            assert packing.ATTENTION not in path.read_text()


def test_prefix_tuning_stays_padded_and_says_why(tiny_model, small_dataset, tmp_path):
    _, logs, _ = run(tiny_model, small_dataset, tmp_path / "prefix", "prefix", True)
    assert "Batches are padded: prefix and prompt tuning give their virtual tokens to each row." in logs
