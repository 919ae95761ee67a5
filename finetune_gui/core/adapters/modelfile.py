"""The Ollama Modelfile beside an exported GGUF: its TEMPLATE and stop tokens follow the model's own chat
template, so the exported model knows where its answer ends, and its SYSTEM is the system prompt the
fine-tune trained with (else the template's own default), so Ollama asks it as it was trained."""

from __future__ import annotations

from pathlib import Path

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


def modelfile(
    model_dir: str | Path, gguf_name: str, temperature: float = 0.7, system: str | None = None
) -> str:
    """An Ollama Modelfile whose TEMPLATE and stop tokens match the model's chat template; its SYSTEM is
    ``system`` (the one the fine-tune trained with), else the template's own default."""
    template = chat_template_text(Path(model_dir))
    if "<|im_start|>" in template:
        body = CHATML
    elif "<|start_header_id|>" in template:
        body = LLAMA3
    elif "<start_of_turn>" in template:
        body = GEMMA
    else:
        body = PLAIN
    system = system or default_system_prompt(Path(model_dir))
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
