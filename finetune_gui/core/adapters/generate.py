"""Generation with a base model and, optionally, adapters: one base loaded once, adapters switched or
stacked on it without reloading. Used by ``finetune-gui generate`` and the playground."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from finetune_gui.core.errors import UserError
from finetune_gui.core.methods import for_kind


class Generator:
    def __init__(self, model: str, allow_pickle: bool = False):
        from finetune_gui.core.models import load_model, load_tokenizer, materialize, resolve_model

        self.source = materialize(resolve_model(model, allow_pickle=allow_pickle))
        self.tokenizer = load_tokenizer(self.source)
        self.base = load_model(self.source).eval()
        self.model: Any = self.base
        self.active: list[tuple[str, float]] = []
        self.last_end = "end"  # how the last answer ended: end | length | stopped
        self.last_tokens = 0  # tokens the last answer generated

    def use_adapters(self, adapters: list[tuple[str, float]]) -> None:
        """Switch to these adapters (one, or several LoRA adapters combined W + Σ wᵢ·ΔWᵢ); [] is the base."""
        from finetune_gui.core.adapters.adapter_folder import check_fits, describe_adapter
        from finetune_gui.core.tuners import bottleneck

        if not adapters:
            self.model, self.active = self._peft_base_or_base(), []
            if hasattr(self.model, "disable_adapter_layers"):
                self.model.disable_adapter_layers()
            return
        described = [describe_adapter(path) for path, _ in adapters]
        methods = [for_kind(d["kind"]) for d in described]
        layers, linear = self._base_facts()
        for path, _weight in adapters:
            check_fits(path, layers, linear, self.source.spec)
        if not all(m.peft for m in methods):  # our own bottleneck adapters
            if len(adapters) > 1:
                raise UserError("Bottleneck adapters cannot be stacked with others; choose one.")
            from finetune_gui.core.models import load_model

            self.model = bottleneck.load(load_model(self.source), Path(adapters[0][0])).eval()
            self.active = list(adapters)
            return
        if len(adapters) > 1 and not all(m.stacks_with_weights for m in methods):
            raise UserError(
                "Only LoRA adapters can be stacked with weights; the others are applied one at a time."
            )
        from peft import PeftModel

        peft: Any = self.model if isinstance(self.model, PeftModel) else None
        wanted = {d["peft_type"] for d in described}
        if peft is not None and {str(c.peft_type.value) for c in peft.peft_config.values()} != wanted:
            self._unwrap(peft)  # PEFT holds adapters of one type at a time: start afresh on the base
            peft = None
        names = []
        for index, (path, _weight) in enumerate(adapters):
            name = f"adapter_{abs(hash(str(Path(path).resolve())))}_{index}"
            try:
                if peft is None:
                    peft = PeftModel.from_pretrained(self.base, path, adapter_name=name)
                elif name not in peft.peft_config:
                    peft.load_adapter(path, adapter_name=name)
            except (OSError, ValueError, RuntimeError, KeyError) as exc:
                raise UserError(
                    f"{Path(path).name} could not be loaded ({type(exc).__name__}: {str(exc)[:160]}). Its files may "
                    "be damaged, or it was made for another model."
                ) from None
            names.append(name)
        if hasattr(peft, "enable_adapter_layers"):  # switched off while the base was shown
            peft.enable_adapter_layers()
        if len(names) == 1 and adapters[0][1] == 1.0:
            peft.set_adapter(names[0])
        else:
            stack = f"stack_{len(peft.peft_config)}"
            peft.add_weighted_adapter(names, [w for _, w in adapters], stack, combination_type="cat")
            peft.set_adapter(stack)
        self.model, self.active = peft.eval(), list(adapters)

    def _unwrap(self, peft: Any) -> None:
        """Take every adapter off the base (LoRA-family layers are swapped back for the originals; prefix
        and prompt tuning never changed the base)."""
        if not peft.active_peft_config.is_prompt_learning:
            peft.base_model.unload()
        self.model = self.base

    def _base_facts(self) -> tuple[int, dict[str, tuple[int, int]]]:
        """The loaded base's layer count and each Linear module's (in, out) features, by suffix."""
        from torch import nn

        config = self.base.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        linear = {
            name.rsplit(".", 1)[-1]: (module.in_features, module.out_features)
            for name, module in self.base.named_modules()
            if isinstance(module, nn.Linear)
        }
        return int(text.num_hidden_layers), linear

    def _peft_base_or_base(self) -> Any:
        return (
            self.model
            if self.model is not self.base and hasattr(self.model, "disable_adapter_layers")
            else self.base
        )

    def prompt_ids(self, prompt: str, system: str | None = None) -> Any:
        """The prompt through the chat template, after ``system`` when given (the one the adapter trained
        with: without it, a template such as SmolLM2's adds its own default)."""
        if getattr(self.tokenizer, "chat_template", None):
            turns = [{"role": "system", "content": system}] if system else []
            text = self.tokenizer.apply_chat_template(
                [*turns, {"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        else:
            text = f"{system}\n\n{prompt}" if system else prompt
        return self.tokenizer(text, return_tensors="pt", add_special_tokens=False)

    def stream(
        self,
        prompt: str,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 0.95,
        stop: threading.Event | None = None,
        system: str | None = None,
    ) -> Iterator[str]:
        """Yield the answer piece by piece; ``stop`` ends it early."""
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        inputs = self.prompt_ids(prompt, system)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        class Stop(StoppingCriteria):
            def __call__(self, *_args: Any, **_kwargs: Any) -> bool:
                return bool(stop is not None and stop.is_set())

        kwargs = dict(
            **inputs,
            streamer=streamer,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([Stop()]),
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            kwargs.update(do_sample=False)
        errors: list[BaseException] = []
        produced: list[int] = []
        prompt_length = int(inputs["input_ids"].shape[1])

        from finetune_gui.core.tuners.answering import ready_to_answer

        def run() -> None:
            try:
                with torch.no_grad(), ready_to_answer(self.model):
                    output = self.model.generate(**kwargs)
                produced.append(int(output.shape[1]) - prompt_length)
            except BaseException as exc:  # re-raised in the caller's thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from streamer
        thread.join()
        if errors:
            raise errors[0]
        self.last_tokens = produced[0] if produced else 0
        if stop is not None and stop.is_set():
            self.last_end = "stopped"
        elif produced and produced[0] >= max_new_tokens:
            self.last_end = "length"  # cut at max_new_tokens, not finished
        else:
            self.last_end = "end"
