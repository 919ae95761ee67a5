"""Export a merged model as GGUF (llama.cpp's converter from PyPI) with an Ollama Modelfile, verified.

The GGUF is loaded back with transformers and its top token compared with the merged model's on a
fixed prompt; the Modelfile's TEMPLATE and stop tokens follow the model's own chat template, so the
exported model knows where its answer ends.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import UserError

GGUF_TYPES = ("f16", "bf16", "q8_0", "f32")

CHATML = '''TEMPLATE """{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ if .Prompt }}<|im_start|>user
{{ .Prompt }}<|im_end|>
{{ end }}<|im_start|>assistant
{{ .Response }}<|im_end|>
"""
PARAMETER stop "<|im_end|>"
PARAMETER stop "<|im_start|>"'''

LLAMA3 = '''TEMPLATE """{{ if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>

{{ .Prompt }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>

{{ .Response }}<|eot_id|>"""
PARAMETER stop "<|eot_id|>"
PARAMETER stop "<|start_header_id|>"'''

GEMMA = '''TEMPLATE """<start_of_turn>user
{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }}<end_of_turn>
<start_of_turn>model
{{ .Response }}<end_of_turn>
"""
PARAMETER stop "<end_of_turn>"'''

PLAIN = '''TEMPLATE """{{ if .System }}### System:
{{ .System }}

{{ end }}### User:
{{ .Prompt }}

### Assistant:
{{ .Response }}"""
PARAMETER stop "### User:"'''


def export_gguf(model_dir: str | Path, out_file: str | Path, outtype: str = "f16") -> Path:
    if outtype not in GGUF_TYPES:
        raise UserError(f"GGUF type {outtype!r} is not offered; choose one of {', '.join(GGUF_TYPES)}.")
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")
    from finetune_gui.core.processes import self_command

    result = subprocess.run(
        self_command("convert-gguf", str(model_dir), "--outtype", outtype, "--outfile", str(partial)),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        last = [line for line in result.stderr.splitlines() if line.strip()][-1:] or ["no message"]
        raise UserError(f"The GGUF converter could not convert {model_dir}: {last[0]}")
    partial.replace(out_file)
    return out_file


def chat_template_text(model_dir: Path) -> str:
    import json

    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        return (
            json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
            or ""
        )
    except (OSError, ValueError):
        return ""


def modelfile(model_dir: str | Path, gguf_name: str, temperature: float = 0.7) -> str:
    """An Ollama Modelfile whose TEMPLATE and stop tokens match the model's chat template."""
    template = chat_template_text(Path(model_dir))
    if "<|im_start|>" in template:
        body = CHATML
    elif "<|start_header_id|>" in template:
        body = LLAMA3
    elif "<start_of_turn>" in template:
        body = GEMMA
    else:
        body = PLAIN
    system = default_system_prompt(Path(model_dir))
    system_line = f'SYSTEM """{system}"""\n' if system else ""
    return f"FROM ./{gguf_name}\n{body}\n{system_line}PARAMETER temperature {temperature}\n"


def default_system_prompt(model_dir: Path) -> str:
    """The system message a chat template adds when there is none (SmolLM2's does), so that Ollama
    prompts the model exactly as it was trained."""
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        text = tokenizer.apply_chat_template([{"role": "user", "content": "\x00"}], tokenize=False)
    except Exception:
        return ""
    start = "<|im_start|>system\n"
    if start in text and text.index(start) < text.index("\x00"):
        return text.split(start, 1)[1].split("<|im_end|>", 1)[0]
    return ""


def verify_gguf(model_dir: str | Path, gguf_file: str | Path) -> dict[str, Any]:
    """Top-token agreement between the merged model and its GGUF (loaded back by transformers)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    model_dir, gguf_file = Path(model_dir), Path(gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    messages = [{"role": "user", "content": "Tell me a short story about a lighthouse keeper and a storm."}]
    text = (
        tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        if getattr(tokenizer, "chat_template", None)
        else messages[0]["content"]
    )
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    reference = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    exported = AutoModelForCausalLM.from_pretrained(
        str(gguf_file.parent), gguf_file=gguf_file.name, quantization_config=GgufConfig(dequantize=True)
    ).eval()
    with torch.no_grad():
        a = reference(ids).logits.argmax(-1)
        b = exported(ids).logits.argmax(-1)
    agreement = (a == b).float().mean().item()
    ok = agreement >= 0.95
    return {
        "verified": ok,
        "top1_agreement": agreement,
        "message": f"{'verified' if ok else 'NOT verified'}: the GGUF's top token agrees with the merged model on "
        f"{agreement:.0%} of {ids.shape[1]} positions",
    }
