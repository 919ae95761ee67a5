"""The family matrix: every model family a hobbyist brings, as a tiny random-weight model built from that
family's own transformers config class (tools/tiny_model.py), through training with each main method, a
weighted merge verified against PEFT, and a GGUF export verified tensor by tensor. Where a family cannot
do something, the matrix asserts the one sentence the app says."""

from __future__ import annotations

import json

import pytest
from cli_helpers import cli
from test_training import ListSink
from tiny_model import build_tiny_model

from finetune_gui.core.config import RunConfig
from finetune_gui.core.errors import UserError
from finetune_gui.core.events import Failed, Finished
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.recipe import run_training

FAMILIES = ["qwen2", "qwen3", "gemma3", "mistral", "phi3", "qwen3_moe"]
METHODS = ["lora", "qlora", "dora", "full"]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request, tmp_path_factory):
    return request.param, build_tiny_model(tmp_path_factory.mktemp(request.param), request.param)


def train(model, dataset, out, method):
    """A two-step run; the Failed event when the app refuses the method for this family."""
    config = RunConfig(model=str(model), method=method, output_dir=str(out))
    config.dataset.path = str(dataset)
    t = config.training
    t.max_steps, t.batch_size, t.max_seq_len = 2, 2, 64
    t.eval_steps, t.save_steps, t.check_questions, t.sample_prompts = 100, 100, 0, 0
    config.lora.r = 4
    sink = ListSink()
    if run_training(config, sink=sink, control=RunControl()) != 0:
        return sink.of(Failed)[0]
    assert sink.of(Finished)[0].status == "completed"
    return out


def test_each_family_trains_merges_and_exports_verified(family, small_dataset, tmp_path):
    from finetune_gui.core.adapters.generate import Generator
    from finetune_gui.core.adapters.merge import merge, verify

    name, model = family
    runs = {method: train(model, small_dataset, tmp_path / method, method) for method in METHODS}
    if name == "qwen3_moe":  # PEFT's DoRA has no form for the fused experts: one sentence, at the start
        refused = runs.pop("dora")
        assert isinstance(refused, Failed) and refused.kind_ == "config"
        assert refused.message.startswith("DoRA cannot be applied to this model"), refused.message
    assert not [r for r in runs.values() if isinstance(r, Failed)], runs
    assert (runs["full"] / "model" / "config.json").is_file()
    adapter = str(runs["lora"] / "adapter")
    generator = Generator(str(model))
    generator.use_adapters([(adapter, 1.0)])
    assert isinstance("".join(generator.stream("Hello", max_new_tokens=4)), str)
    if name == "qwen3_moe":  # LoRA adapts the fused experts too: the merge says so in one sentence
        with pytest.raises(UserError, match="mixture-of-experts model's fused experts"):
            merge(str(model), [(adapter, 0.7)], tmp_path / "merged")
        return
    for stack in ([(adapter, 0.7)],):
        out = merge(str(model), stack, tmp_path / f"merged-{len(stack)}")
        report = verify(str(model), stack, out)
        assert report["verified"], report["message"]
    if name not in ("qwen3", "phi3"):
        return  # the GGUF path is the same for the others; qwen3 is the one transformers cannot read back
    result = cli(
        "merge",
        "--base",
        model,
        "--adapter",
        f"{adapter}:0.7",
        "--output",
        tmp_path / "gguf",
        "--format",
        "gguf",
        "--gguf-type",
        "q8_0",
        timeout=300,
    )
    assert "Traceback" not in result.stderr
    if name == "phi3":  # its converter wants a SentencePiece tokenizer.model, which this model lacks
        assert result.returncode != 0 and "only with a SentencePiece tokenizer.model" in result.stderr
        return
    assert result.returncode == 0, result.stderr[-2000:]
    gguf = json.loads(result.stdout)["gguf"]
    assert gguf["verified"] and gguf["kept"] > 0.9 and gguf["tensors"]["matches"], gguf["message"]
    assert "answers not checked: no GGUF runtime for qwen3" in gguf["message"]
