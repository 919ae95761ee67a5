"""The family matrix: every model family a hobbyist brings, as a tiny random-weight model built from that
family's own transformers config class (tools/tiny_model.py), through training with each main method, a
weighted merge verified against PEFT, and a GGUF export verified tensor by tensor. Where a family cannot
do something, the matrix asserts the one sentence the app says."""

from __future__ import annotations

from pathlib import Path

import pytest
from family_matrix import WORKS, cell, table
from test_training import ListSink
from tiny_model import build_tiny_model

from finetune_gui.core.config import RunConfig
from finetune_gui.core.errors import UserError
from finetune_gui.core.events import Failed, Finished
from finetune_gui.core.training.control import RunControl
from finetune_gui.core.training.recipe import run_training

# llama: the other tests. Mistral's and Qwen2's modelling is Llama's with their own names (and Qwen2's
# q/k/v biases; transformers copies their code from Llama's): their rows run with -m slow and in
# tools/family_matrix.py; Qwen3 (q/k norms), Gemma 3, Phi-3 and the mixture of experts run in make test.
FAMILIES = [
    pytest.param("qwen2", marks=pytest.mark.slow),
    "qwen3",
    "gemma3",
    pytest.param("mistral", marks=pytest.mark.slow),
    "phi3",
    "qwen3_moe",
]
REPO = Path(__file__).resolve().parents[1]
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


def expect(name, column, outcome):
    """The matrix's cell (tools/family_matrix.py) holds: it works, or it fails with its sentence."""
    wanted = cell(name, column)
    if wanted == WORKS:
        assert not isinstance(outcome, (Failed, Exception)), (name, column, outcome)
        return True
    message = outcome.message if isinstance(outcome, Failed) else str(outcome)
    assert wanted in message, (name, column, message)
    return False


def test_each_family_trains_merges_and_exports_verified(family, small_dataset, tmp_path):
    from finetune_gui.core.adapters.exporter import export
    from finetune_gui.core.adapters.generate import Generator
    from finetune_gui.core.adapters.merge import merge, verify

    name, model = family
    runs = {method: train(model, small_dataset, tmp_path / method, method) for method in METHODS}
    for method, outcome in runs.items():
        expect(name, method, outcome)
    if cell(name, "dora") != WORKS:  # said before the run too: the method card and the estimate
        from transformers import AutoConfig

        from finetune_gui.core.estimate import Settings, estimate, model_shape

        card = estimate(model_shape(AutoConfig.from_pretrained(model)), Settings(device="cpu"), 8.0).methods[
            "dora"
        ]
        assert not card.runnable and card.note.startswith(cell(name, "dora")), card.note
    assert (runs["full"] / "model" / "config.json").is_file()
    adapter, other = str(runs["lora"] / "adapter"), str(runs["qlora"] / "adapter")
    generator = Generator(str(model))
    generator.use_adapters([(adapter, 1.0)])
    assert isinstance("".join(generator.stream("Hello", max_new_tokens=4)), str)
    for index, stack in enumerate(([(adapter, 0.7)], [(adapter, 1.0)], [(adapter, 0.7), (other, 0.3)])):
        out = merge(str(model), stack, tmp_path / f"merged-{index}")
        report = verify(str(model), stack, out)
        assert report.verified and expect(name, "merge", report), report.message
    # The weights are right, not only the verdict: a merge is NOT verified against other weights.
    assert not verify(str(model), [(adapter, 1.0)], tmp_path / "merged-0").verified
    # q4_1 for every family; f16 too for qwen3 (no transformers reader); the others take the same f16
    # path as Llama's tests.
    for kind in ("f16", "q4_1") if name == "qwen3" else ("q4_1",):
        try:
            result = export(str(model), [(adapter, 0.7)], tmp_path / kind, fmt="gguf", gguf_type=kind)
        except UserError as exc:
            assert not expect(name, "gguf", exc)
            return
        gguf = result.gguf.to_dict()
        assert expect(name, "gguf", gguf) and gguf["verified"], gguf["message"]
        assert gguf["kept"] > 0.9 and gguf["tensors"]["matches"], gguf["message"]
        assert "it answers like the base" not in gguf["message"]  # on the run's own examples, where read
        if name in ("qwen3", "qwen3_moe"):  # transformers cannot read these GGUF files back
            assert "answers not checked: no GGUF runtime for" in gguf["message"]
        else:
            assert "answers: perplexity" in gguf["message"]


def test_the_user_guide_table_is_the_matrix():
    guide = (REPO / "docs" / "user-guide.md").read_text(encoding="utf-8")
    assert table() in guide, "run: .venv/bin/python tools/family_matrix.py"
