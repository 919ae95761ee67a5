import shutil

import pytest
from cli_helpers import cli

from finetune_gui.core.errors import ModelError
from finetune_gui.core.models import inspect_model, load_model, resolve_model


def test_folder_resolves_and_inspects(tiny_model):
    source = resolve_model(str(tiny_model))
    assert source.kind == "folder"
    info = inspect_model(source)
    model = load_model(source)
    assert info.parameters == sum(p.numel() for p in model.parameters())
    assert info.architecture == "LlamaForCausalLM"
    assert info.context_length == 512
    assert info.has_chat_template
    assert info.num_layers == 2


def test_config_only_folder_inspects_without_weights(tiny_model, tmp_path):
    shutil.copy(tiny_model / "config.json", tmp_path / "config.json")
    source = resolve_model(str(tmp_path), require_weights=False)
    assert inspect_model(source).parameters > 0
    assert not inspect_model(source).has_chat_template
    with pytest.raises(ModelError, match="no weights"):
        resolve_model(str(tmp_path))


def test_pickle_weights_are_refused_unless_allowed(tiny_model, tmp_path):
    shutil.copy(tiny_model / "config.json", tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelError, match="pickle weights"):
        resolve_model(str(tmp_path))
    assert resolve_model(str(tmp_path), allow_pickle=True).kind == "folder"


def test_missing_path_and_non_model_folder(tmp_path):
    with pytest.raises(ModelError, match="No model at"):
        resolve_model(str(tmp_path / "nothing-here"))
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model(str(tmp_path))
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_model(str(bad))


def test_offline_hub_id_fails_at_once():
    import time

    start = time.perf_counter()
    with pytest.raises(ModelError, match="offline"):
        resolve_model("someone/some-model-that-is-not-cached")
    assert time.perf_counter() - start < 5


def test_gguf_file_loads_dequantized(tiny_model, tmp_path):
    """Write the tiny model as an f32 GGUF with the llama.cpp converter's gguf writer, then load it."""
    gguf = pytest.importorskip("gguf")
    from finetune_gui.core.models import load_tokenizer

    out = tmp_path / "tiny.gguf"
    _write_llama_gguf(tiny_model, out, gguf)
    source = resolve_model(str(out))
    assert source.kind == "gguf" and source.gguf_file == "tiny.gguf"
    model = load_model(source)
    ref = load_model(resolve_model(str(tiny_model)))
    import torch

    ids = torch.tensor([[1, 5, 9, 20, 3]])
    assert torch.allclose(model(ids).logits, ref(ids).logits, atol=1e-4)
    assert load_tokenizer(source) is not None


def _write_llama_gguf(folder, out, gguf):
    """A minimal f32 llama GGUF of the tiny model (weights permuted as llama.cpp expects)."""
    import json

    import numpy as np
    from safetensors.numpy import load_file

    cfg = json.loads((folder / "config.json").read_text())
    tok = json.loads((folder / "tokenizer.json").read_text())
    w = gguf.GGUFWriter(str(out), "llama")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_vocab_size(cfg["vocab_size"])
    vocab = sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
    added = {a["id"]: a["content"] for a in tok["added_tokens"]}
    tokens = [added.get(i, t) for t, i in vocab]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if i in added else 1 for i in range(len(tokens))])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_bos_token_id(cfg["bos_token_id"])
    tensors = load_file(str(folder / "model.safetensors"))
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def permute(x, n):
        return x.reshape(n, 2, x.shape[0] // n // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    parts = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    for name, value in tensors.items():
        if name in names:
            target = names[name]
        else:
            _, _, layer, *rest = name.split(".")
            key = ".".join(rest[:-1])
            target = f"blk.{layer}.{parts[key]}.weight"
            if key == "self_attn.q_proj":
                value = permute(value, heads)
            elif key == "self_attn.k_proj":
                value = permute(value, kv_heads)
        w.add_tensor(target, np.ascontiguousarray(value.astype(np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_download_reports_progress_as_json_lines():
    import io
    import json

    from finetune_gui.core.models import json_progress_class

    stream = io.StringIO()
    bar = json_progress_class(stream)(total=10, desc="Fetching 3 files")
    bar.update(5)
    bar.update(5)
    bar.close()
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["fraction"] for e in events] == [0.5, 1.0] and events[0]["what"] == "Fetching 3 files"


def test_download_command_offline_is_one_sentence():

    result = cli("download", "someone/not-cached", "--json", timeout=60)
    assert result.returncode == 1 and "offline" in result.stderr and "Traceback" not in result.stderr


def test_one_rule_says_what_a_path_is_for_the_window_and_the_commands(tiny_model, tmp_path, monkeypatch):
    from finetune_gui.core.adapters.path_kinds import path_kind
    from finetune_gui.core.models import is_hub_id

    monkeypatch.chdir(tmp_path)
    adapter = tmp_path / "my-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    (tmp_path / "notes.jsonl").write_text("{}\n")
    (tmp_path / "notes.docx").write_text("x")
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "data").mkdir()
    kinds = {
        str(tiny_model): "model",
        str(tmp_path / "m.gguf"): "model",
        str(adapter): "adapter",
        str(tmp_path / "notes.jsonl"): "dataset",
        str(tmp_path / "data"): "dataset",
        str(tmp_path / "notes.docx"): "",
        "HuggingFaceTB/SmolLM2-135M-Instruct": "hub id",
        "owner/model.gguf": "",  # a missing file, not a repository
        "./relative/path": "",
        "no-slash": "",
        str(tmp_path / "missing" / "x"): "",
    }
    assert {spec: path_kind(spec) for spec in kinds} == kinds
    # A folder here that looks like owner/name is that folder, not a hub id (the window used to disagree).
    (tmp_path / "owner" / "name").mkdir(parents=True)
    assert not is_hub_id("owner/name") and path_kind("owner/name") == "dataset"
    assert is_hub_id("Qwen/Qwen3-0.6B") and not is_hub_id("a/b/c") and not is_hub_id("~/models/x")
