"""Adapters: the library, weighted stacking merged exactly, refusals, generation, and export files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import cli

from finetune_gui.core.errors import UserError


def make_lora(tiny_model, out, r, seed, targets="all-linear", **extra):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets, init_lora_weights=False, **extra)
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def two_loras(tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return make_lora(tiny_model, root / "a", 4, 1), make_lora(tiny_model, root / "b", 8, 2)


def test_weighted_stack_merges_to_exactly_base_plus_weighted_deltas(tiny_model, two_loras, tmp_path):
    from safetensors.torch import load_file

    from finetune_gui.core.adapters.merge import merge, verify

    a, b = two_loras
    out = merge(str(tiny_model), [(str(a), 0.7), (str(b), 0.3)], tmp_path / "merged")
    merged = load_file(str(out / "model.safetensors"))
    base = load_file(str(tiny_model / "model.safetensors"))
    # Independent computation from the raw adapter tensors: W + Σ wᵢ·(alphaᵢ/rᵢ)·BᵢAᵢ.
    expected = {k: v.double() for k, v in base.items()}
    for folder, weight in ((a, 0.7), (b, 0.3)):
        config = json.loads((folder / "adapter_config.json").read_text())
        tensors = load_file(str(folder / "adapter_model.safetensors"))
        for key, lora_a in tensors.items():
            if key.endswith("lora_A.weight"):
                name = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight") + ".weight"
                lora_b = tensors[key.replace("lora_A", "lora_B")]
                scale = config["lora_alpha"] / config["r"]
                expected[name] += weight * scale * (lora_b.double() @ lora_a.double())
    changed = 0
    for key, value in merged.items():
        assert torch.allclose(value.double(), expected[key], atol=1e-6), key
        changed += int(not torch.equal(value, base[key]))
    assert changed == 14  # 7 linear layers × 2 decoder layers
    report = verify(str(tiny_model), [(str(a), 0.7), (str(b), 0.3)], out)
    assert report.verified and report.max_abs_diff < 1e-4


def test_single_merge_equals_peft_merge_and_unload(tiny_model, two_loras, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from finetune_gui.core.adapters.merge import merge

    a, _ = two_loras
    out = merge(str(tiny_model), [(str(a), 1.0)], tmp_path / "merged")
    ours = AutoModelForCausalLM.from_pretrained(out)
    theirs = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), a).merge_and_unload()
    ids = torch.tensor([[1, 5, 9, 20, 30, 40, 50]])
    assert torch.allclose(ours(ids).logits, theirs(ids).logits, atol=1e-5)
    assert (out / "tokenizer.json").is_file() and (out / "config.json").is_file()


def test_dora_and_ia3_merge_alone(tiny_model, tmp_path):
    from peft import IA3Config, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune_gui.core.adapters.merge import merge, verify

    dora = make_lora(tiny_model, tmp_path / "dora", 4, 3, use_dora=True)
    out = merge(str(tiny_model), [(str(dora), 1.0)], tmp_path / "dora-merged")
    assert verify(str(tiny_model), [(str(dora), 1.0)], out).verified
    torch.manual_seed(4)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model), IA3Config(init_ia3_weights=False)
    )
    model.save_pretrained(tmp_path / "ia3")
    out = merge(str(tiny_model), [(str(tmp_path / "ia3"), 1.0)], tmp_path / "ia3-merged")
    ids = torch.tensor([[1, 5, 9, 20]])
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), tmp_path / "ia3")
    assert torch.allclose(
        AutoModelForCausalLM.from_pretrained(out)(ids).logits, reference(ids).logits, atol=1e-5
    )


def test_what_cannot_merge_is_refused_with_the_reason(tiny_model, two_loras, tmp_path):
    from peft import PrefixTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune_gui.core.adapters.merge import merge

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model),
        PrefixTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM"),
    )
    model.save_pretrained(tmp_path / "prefix")
    with pytest.raises(UserError, match="changes activations, not weights"):
        merge(str(tiny_model), [(str(tmp_path / "prefix"), 1.0)], tmp_path / "out1")
    dora = make_lora(tiny_model, tmp_path / "dora", 4, 3, use_dora=True)
    with pytest.raises(UserError, match="only LoRA adapters combine"):
        merge(str(tiny_model), [(str(two_loras[0]), 0.5), (str(dora), 1.0)], tmp_path / "out2")
    other = make_lora(tiny_model, tmp_path / "other", 4, 5, targets=["q_proj"])
    cfg = json.loads((other / "adapter_config.json").read_text())
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(other / "adapter_model.safetensors"))
    tensors = {k: torch.zeros(v.shape[0], v.shape[1] * 2) if "lora_A" in k else v for k, v in tensors.items()}
    save_file(tensors, str(other / "adapter_model.safetensors"))
    (other / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="trained for another base"):
        merge(str(tiny_model), [(str(other), 1.0)], tmp_path / "out3")
    assert not (tmp_path / "out3").exists() and not (tmp_path / ".out3.partial").exists()


def test_library_registers_runs_and_imports(tiny_model, two_loras, tmp_path):
    from finetune_gui.core.adapters.library import AdapterLibrary

    library = AdapterLibrary()
    entry = library.add(two_loras[0], name="style")
    assert entry["kind"] == "lora" and entry["rank"] == 4 and entry["size_bytes"] > 0
    library.rename("style", "pirate style")
    assert library.get(entry["id"])["name"] == "pirate style"
    with pytest.raises(UserError, match="not an adapter folder"):
        library.add(tmp_path)
    result = cli("adapters", "list", "--json", timeout=60)
    assert [a["name"] for a in json.loads(result.stdout)["adapters"]] == ["pirate style"]
    library.remove(entry["id"])
    assert library.entries() == []


def test_generate_switches_and_stacks_on_one_base(tiny_model, two_loras):
    from finetune_gui.core.adapters.generate import Generator

    generator = Generator(str(tiny_model))
    base_model = generator.base
    base = "".join(generator.stream("Hello", max_new_tokens=5))
    generator.use_adapters([(str(two_loras[0]), 1.0)])
    one = "".join(generator.stream("Hello", max_new_tokens=5))
    generator.use_adapters([(str(two_loras[0]), 0.7), (str(two_loras[1]), 0.3)])
    stacked = "".join(generator.stream("Hello", max_new_tokens=5))
    generator.use_adapters([])
    again = "".join(generator.stream("Hello", max_new_tokens=5))
    assert again == base and isinstance(one, str) and isinstance(stacked, str)
    assert generator.base is base_model  # one base, never reloaded


def test_dora_answers_compute_their_weight_norms_once_per_answer(tiny_model, tmp_path, monkeypatch):
    """While nothing trains, a DoRA layer's dense update and weight norm cannot change: the generator
    computes them once per answer instead of once per token where memory allows, drops them after, and
    answers exactly as without."""
    from peft.tuners.lora import dora

    from finetune_gui.core.adapters.generate import Generator
    from finetune_gui.core.tuners import answering as dora_cache

    adapter = make_lora(tiny_model, tmp_path / "dora", 4, 3, use_dora=True)
    generator = Generator(str(tiny_model))
    generator.use_adapters([(str(adapter), 1.0)])
    layers = dora_cache.dora_layers(generator.model)
    assert len(layers) == 14 and dora_cache.cache_bytes(layers) > 0
    stored = []
    real_store = dora.DoraLinearLayer._cache_store
    monkeypatch.setattr(
        dora.DoraLinearLayer, "_cache_store", lambda self, k, v: (stored.append(k), real_store(self, k, v))
    )
    cached = "".join(generator.stream("Hello", max_new_tokens=12))
    assert len(stored) == 2 * len(layers)  # B·A and the norm, once per layer for the whole answer
    assert not dora.ENABLE_DORA_CACHING and all(
        not m._dora_cache for x in layers for m in x.lora_magnitude_vector.values()
    )

    stored.clear()
    monkeypatch.setattr(dora_cache, "free_bytes", lambda device: 0)  # no room: computed per token, as before
    assert "".join(generator.stream("Hello", max_new_tokens=12)) == cached and stored == []


def virtual_token_adapter(tiny_model, folder, config, scale):
    """A prefix or prompt tuning adapter strong enough to change what the random tiny model says."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(5)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), config)
    with torch.no_grad():
        for parameter in model.prompt_encoder.parameters():
            parameter.mul_(scale)
    model.save_pretrained(folder)
    return folder


def test_virtual_token_adapters_answer_as_trained_and_switch_with_lora(tiny_model, two_loras, tmp_path):
    """Prefix and prompt tuning answer as the trained model computes (the virtual tokens once in front),
    not as the base: transformers 5's generate once dropped PEFT's prefix (answers were the base's) and
    prepended the soft prompt before every new token (garbage after one word). One generator switches
    between them and LoRA, although PEFT holds adapters of one type at a time."""
    from peft import PrefixTuningConfig, PromptTuningConfig

    from finetune_gui.core.adapters.generate import Generator

    prefix = virtual_token_adapter(
        tiny_model, tmp_path / "prefix", PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=6), 8
    )
    prompt = virtual_token_adapter(
        tiny_model, tmp_path / "prompt", PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=6), 40
    )
    generator = Generator(str(tiny_model))
    question = "the river ?"
    inputs = generator.prompt_ids(question)
    base = "".join(generator.stream(question, max_new_tokens=8))

    def as_trained() -> str:  # one full forward pass per token, as in training
        ids = inputs["input_ids"]
        with torch.no_grad():
            for _ in range(8):
                ids = torch.cat([ids, generator.model(input_ids=ids).logits[:, -1:].argmax(-1)], dim=1)
        return generator.tokenizer.decode(ids[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    for adapter in (two_loras[0], prefix, prompt, two_loras[0], prefix):
        generator.use_adapters([(str(adapter), 1.0)])
        lengths = []  # positions the first layer computes at each step
        first_layer = generator.base.model.layers[0]
        hook = first_layer.register_forward_pre_hook(
            lambda _m, args, kwargs, seen=lengths: seen.append(
                (args or (kwargs["hidden_states"],))[0].shape[1]
            ),
            with_kwargs=True,
        )
        answered = "".join(generator.stream(question, max_new_tokens=8))
        hook.remove()
        expected = as_trained()
        if adapter != prompt:  # a soft prompt cannot move this random model's answer; the lengths show it
            assert expected != base, adapter.name  # the adapter matters to this model
        assert answered == expected, adapter.name
        virtual = 6 if adapter == prompt else 0  # the soft prompt once, then one new token a step
        assert lengths == [inputs["input_ids"].shape[1] + virtual] + [1] * 7, adapter.name
    generator.use_adapters([])
    assert "".join(generator.stream(question, max_new_tokens=8)) == base


def test_merge_cli_writes_a_verified_folder(tiny_model, two_loras, tmp_path):
    result = cli(
        "merge",
        "--base",
        tiny_model,
        "--adapter",
        f"{two_loras[0]}:0.5",
        "--adapter",
        f"{two_loras[1]}:0.5",
        "--output",
        tmp_path / "m",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["merge"]["verified"] and (tmp_path / "m" / "model.safetensors").is_file()
    bad = cli("merge", "--base", tiny_model, "--adapter", tmp_path / "nope", "--output", tmp_path / "x")
    assert bad.returncode != 0 and "No adapter folder" in bad.stderr and "Traceback" not in bad.stderr


def test_modelfile_follows_the_chat_template(tiny_model):
    from finetune_gui.core.adapters.modelfile import modelfile

    text = modelfile(tiny_model, "model-f16.gguf")
    assert text.startswith("FROM ./model-f16.gguf")
    assert 'PARAMETER stop "<|im_end|>"' in text and "<|im_start|>assistant" in text


@pytest.mark.slow
def test_gguf_export_of_the_demo_model_agrees(demo_model, tmp_path):
    from finetune_gui.core.adapters.gguf_export import export_gguf, verify_gguf

    gguf = export_gguf(demo_model, tmp_path / "demo-f16.gguf", "f16")
    assert verify_gguf(demo_model, gguf).top1_agreement >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("kind, size, quality", [("q4_1", 0.45, 1.25), ("q5_0", 0.50, 1.20)])
def test_quantized_gguf_of_the_demo_model_is_small_and_close(demo_model, tmp_path, kind, size, quality):
    from finetune_gui.core.adapters.gguf_export import export_gguf, verify_gguf

    f16 = export_gguf(demo_model, tmp_path / "demo-f16.gguf", "f16")
    quantized = export_gguf(demo_model, tmp_path / f"demo-{kind}.gguf", kind, "demo-export")
    assert quantized.stat().st_size <= size * f16.stat().st_size
    result = verify_gguf(demo_model, quantized, kind)
    assert result.verified and result.perplexity_ratio <= quality, result.message


def gguf_name(path):
    from gguf import GGUFReader

    return str(GGUFReader(str(path)).fields["general.name"].contents())


def f16_bytes(model_dir: Path) -> int:
    """What an f16 file of the model's tensors would hold."""
    import math

    from safetensors import safe_open

    total = 0
    for file in model_dir.glob("*.safetensors"):
        with safe_open(str(file), "pt") as weights:
            for name in weights.keys():  # noqa: SIM118  (safe_open is not iterable)
                total += 2 * math.prod(weights.get_slice(name).get_shape())
    return total


# Slow (about 35 s): `make test` keeps the quantized export's verdict both ways (the two "not verified"
# tests here) and the family matrix's verified exports.
@pytest.mark.slow
def test_quantized_gguf_exports_are_named_described_verified_and_never_mixed(tiny_model, two_loras, tmp_path):
    """The GGUF path on the tiny model, through the command: q4_1 written by the app (q5_0 takes the same
    path: the demo model's slow test covers it; f16 goes through llama.cpp's converter, which every GGUF
    verification runs too), verified by loading it back, named after the export, with its Modelfile and
    model card; a second export into the same folder is refused; --overwrite replaces the folder whole."""
    out = tmp_path / "pirate-style"
    common = [
        "--base",
        str(tiny_model),
        "--adapter",
        f"{two_loras[0]}:0.7",
        "--adapter",
        f"{two_loras[1]}:0.3",
    ]
    sizes = {"f16": f16_bytes(tiny_model)}
    for kind, target in (("q4_1", out),):
        result = cli(
            "merge", *common, "--output", target, "--format", "gguf", "--gguf-type", kind, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        report = json.loads(result.stdout)
        gguf = Path(report["gguf"]["path"])
        sizes[kind] = gguf.stat().st_size
        assert gguf.parent == target and gguf.name == f"{target.name}-{kind}.gguf"
        assert report["gguf"]["verified"] and "perplexity" in report["gguf"]["message"]
        assert "agrees on" in report["gguf"]["message"] and "tensors: all" in report["gguf"]["message"]
        assert gguf_name(gguf) == target.name  # the export's name, not "Model"
        card = (target / "README.md").read_text()
        assert str(tiny_model) in card and "0.7" in card and f"ollama create {target.name}" in card
        assert (target / "Modelfile").read_text().startswith(f"FROM ./{gguf.name}")
        assert report["ollama"] == f"ollama create {target.name} -f Modelfile"
    assert sizes["q4_1"] <= 0.45 * sizes["f16"]
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(str(out), gguf_file="pirate-style-q4_1.gguf")

    before = sorted(p.name for p in out.iterdir())
    again = cli("merge", *common, "--output", out, "--format", "gguf", "--gguf-type", "q5_0", timeout=300)
    assert again.returncode != 0 and "already holds files" in again.stderr and "Traceback" not in again.stderr
    assert sorted(p.name for p in out.iterdir()) == before
    # --overwrite replaces the folder whole (a safetensors export: the same folder swap, without a GGUF).
    replaced = cli("merge", *common, "--output", out, "--overwrite", timeout=300)
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    names = sorted(p.name for p in out.iterdir())
    assert "model.safetensors" in names and "pirate-style-q4_1.gguf" not in names  # never mixed
    assert not any(p.name.startswith(".pirate-style") for p in tmp_path.iterdir())


def test_gguf_options_report_size_and_quality_per_type(tiny_model):
    result = cli("gguf-options", tiny_model, "--json", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    types = report["types"]
    assert {"f16", "q8_0", "q5_0", "q4_1", "q4_0"} <= set(types)
    assert (
        types["q4_0"]["size_bytes"]
        < types["q5_0"]["size_bytes"]
        < types["q8_0"]["size_bytes"]
        < types["f16"]["size_bytes"]
    )
    assert all(entry["perplexity_ratio"] > 0 for entry in types.values())
    assert report["recommended"] in types and types[report["recommended"]]["close"]


def test_peft_combinations_and_adapter_folder_export(tiny_model, two_loras, tmp_path):
    from peft import PrefixTuningConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune_gui.core.adapters.exporter import export

    a, b = two_loras
    report = export(str(tiny_model), [(str(a), 0.5), (str(b), 0.5)], tmp_path / "svd", combination="svd")
    assert report.merge.verified and (tmp_path / "svd" / "model.safetensors").is_file()
    with pytest.raises(UserError, match="'linear' combination cannot combine"):
        export(str(tiny_model), [(str(a), 0.5), (str(b), 0.5)], tmp_path / "lin", combination="linear")
    prefix = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model),
        PrefixTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM"),
    )
    prefix.save_pretrained(tmp_path / "prefix")
    report = export(str(tiny_model), [(str(tmp_path / "prefix"), 1.0)], tmp_path / "exported", fmt="adapter")
    folder = Path(report.output)
    assert report.folder == report.output and report.merge is None and report.verified
    assert (folder / "adapter_config.json").is_file() and str(tiny_model) in (
        folder / "README.md"
    ).read_text()
    assert (folder / "BASE_MODEL.txt").read_text().strip() == str(tiny_model)


def test_a_single_adapter_merged_at_a_weight_is_verified_against_that_weight(tiny_model, two_loras, tmp_path):
    """0.7 × one adapter: the reference is the adapter at 0.7, so a right merge is verified and a merge
    at another weight than the reference's is not."""
    from finetune_gui.core.adapters.merge import merge, verify

    a, _ = two_loras
    out = merge(str(tiny_model), [(str(a), 0.7)], tmp_path / "merged")
    report = verify(str(tiny_model), [(str(a), 0.7)], out)
    assert report.verified and report.max_abs_diff < 1e-4, report.message
    assert not verify(str(tiny_model), [(str(a), 1.0)], out).verified


def snapped_base(tiny_model, folder):
    """The tiny model with every 2-D weight rounded onto the q4_1 grid, as the demo model's are (it is a
    dequantized Q4_1 file)."""
    import shutil

    import numpy as np
    from gguf import GGMLQuantizationType, quants
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_model, folder)
    tensors = load_file(str(folder / "model.safetensors"))
    q41 = GGMLQuantizationType.Q4_1
    for key, value in tensors.items():
        if value.ndim == 2 and value.shape[-1] % 32 == 0:
            array = value.float().numpy().astype(np.float32)
            tensors[key] = torch.from_numpy(quants.dequantize(quants.quantize(array, q41), q41)).to(
                value.dtype
            )
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_an_export_that_snaps_the_fine_tune_back_to_the_base_is_not_verified(tiny_model, tmp_path):
    """The demo model's trap on the tiny model: a base on the q4_1 grid and a small fine-tune. Its q4_1
    export rounds the changes away (NOT verified, and the sentence says what to choose); q8_0 keeps them."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = snapped_base(tiny_model, tmp_path / "grid-base")
    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(base)
    peft = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=4, target_modules="all-linear", init_lora_weights=False)
    )
    with torch.no_grad():  # a small fine-tune: changes well inside one q4_1 step
        for name, param in peft.named_parameters():
            if "lora_B" in name:
                param.mul_(0.02)
    peft.save_pretrained(tmp_path / "small")
    # Before the export: the same measure on the merged weights in memory names the type that loses it.
    from finetune_gui.core.adapters.gguf_types import options_for

    before = options_for(str(base), ["q4_1", "q8_0"], [(str(tmp_path / "small"), 1.0)])["types"]
    assert before["q4_1"]["kept"] < 0.5 and not before["q4_1"]["close"]
    assert before["q8_0"]["kept"] > 0.9 and before["q8_0"]["close"]
    # q4_1 through the command (its exit code says NOT verified), q8_0 in this process.
    result = cli(
        "merge",
        "--base",
        base,
        "--adapter",
        tmp_path / "small",
        "--output",
        tmp_path / "q4_1",
        "--format",
        "gguf",
        "--gguf-type",
        "q4_1",
        timeout=300,
    )
    assert "Traceback" not in result.stderr
    from finetune_gui.core.adapters.exporter import export

    q80 = export(str(base), [(str(tmp_path / "small"), 1.0)], tmp_path / "q8_0", fmt="gguf", gguf_type="q8_0")
    verdicts = {
        "q4_1": (result.returncode, json.loads(result.stdout)["gguf"]),
        "q8_0": (0 if q80.verified else 4, q80.to_dict()["gguf"]),
    }
    code, q41 = verdicts["q4_1"]
    assert code != 0 and not q41["verified"] and q41["kept"] < 0.5, q41["message"]
    assert q41["message"].startswith("NOT verified: q4_1 keeps only") and "q8_0" in q41["message"]
    code, q80 = verdicts["q8_0"]
    assert code == 0 and q80["verified"] and q80["kept"] > 0.9, q80["message"]
    assert "tensors: all" in q80["message"] and "answers:" in q80["message"]


def test_a_gguf_that_answers_like_the_base_on_the_runs_own_examples_is_not_verified(
    tiny_model, two_loras, small_dataset, tmp_path
):
    """The answers check on the run's own examples: the base model's GGUF offered as the export of a
    fine-tune (what a lost fine-tune looks like) answers like the base, and says so. The other way (a
    right export of a run's adapter answers like the fine-tune) runs for every family in
    tests/test_families.py, whose adapters sit in their run folders."""
    from finetune_gui.core.adapters.gguf_export import export_gguf, verify_gguf
    from finetune_gui.core.adapters.merge import merge
    from finetune_gui.core.data.scan import load_examples

    merged = merge(str(tiny_model), [(str(two_loras[0]), 1.0)], tmp_path / "merged")
    examples = load_examples(small_dataset)[0][:8]
    lost = export_gguf(tiny_model, tmp_path / "lost" / "lost-f16.gguf", "f16")
    bad = verify_gguf(merged, lost, "f16", base_dir=tiny_model, examples=examples)
    assert not bad.verified and bad.own_base_agreement > bad.own_agreement + 0.1, bad.message
    assert "it answers like the base, not like your fine-tune" in bad.message
    assert bad.kept < 0.1
