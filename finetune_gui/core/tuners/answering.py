"""What an adapted model needs to answer (generate) right and fast, around each answer: ``ready_to_answer``.

**Prefix and prompt tuning.** transformers 5's ``generate`` passes its cache as ``cache``; PEFT (0.21) looks
for ``past_key_values``, finds none at every step and injects the virtual tokens again each time.
Prefix tuning's prefix, handed over as ``past_key_values``, lost to the empty ``cache``: answers were the
base model's, word for word, although training (a plain forward pass) had learned. Prompt tuning's soft
prompt was prepended again before every new token: one right word, then garbage. Here the prefix goes
into generate's cache at the first step, and the soft prompt's repeats are cut.

**DoRA without per-token recomputation.** In eval mode PEFT recomputes, for every adapted layer and
every generated token, the dense update B·A and the adapted weight's norm, although neither can change
while nothing trains: scoring a DoRA adapter's answers took about 7× as long as a LoRA one's on the
demo model on a CPU. PEFT can cache both (``peft.helpers.DoraCaching``): the same answers, 3× faster
there. The dense updates take as much memory as the adapted weights, so the cache is used only where
that fits with room to spare, and dropped when the answer is done."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peft import PeftType

from finetune_gui.core.hardware import GIB

ROOM = 1 * GIB  # free memory kept beyond twice the cache, for the answer's own tensors

_lock = threading.Lock()
_users = 0  # answers using the cache now (the playground answers with base and tuned side by side)


def dora_layers(model: Any) -> list[Any]:
    """The PEFT LoRA layers with a DoRA magnitude for an active adapter."""
    found = []
    for module in model.modules():
        magnitudes = getattr(module, "lora_magnitude_vector", None)
        active = getattr(module, "active_adapters", None) or []
        if magnitudes is not None and any(name in magnitudes for name in active):
            found.append(module)
    return found


def cache_bytes(layers: list[Any]) -> int:
    """What caching costs: a dense update (the base weight's shape, in the adapter's dtype) per adapter."""
    total = 0
    for layer in layers:
        weight = layer.get_base_layer().weight
        for name in layer.active_adapters:
            if name in layer.lora_magnitude_vector and name in layer.lora_A:
                total += weight.shape[0] * weight.shape[1] * layer.lora_A[name].weight.element_size()
    return total


def free_bytes(device: Any) -> int:
    import torch

    if getattr(device, "type", str(device)) == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(psutil.virtual_memory().available)


@contextmanager
def ready_to_answer(model: Any) -> Iterator[None]:
    """Within it, ``model.generate`` answers with the adapter as trained, as fast as memory allows."""
    with virtual_tokens_once(model), dora_cache(model):
        yield


@contextmanager
def virtual_tokens_once(model: Any) -> Iterator[None]:
    """Prefix and prompt tuning put their learned (virtual) tokens in front of the question once, at
    generate's first step, as in training; see the module's note for what went wrong without it."""
    config = getattr(model, "active_peft_config", None)
    if config is None or not getattr(config, "is_prompt_learning", False):
        yield
        return
    prefix_tuning = config.peft_type == PeftType.PREFIX_TUNING
    virtual = int(config.num_virtual_tokens)

    def hook(_module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        cache = kwargs.get("cache")
        if cache is None:
            return None  # a plain forward pass (training, scoring): PEFT's tokens arrive as it expects
        seen = cache.get_seq_length()
        prefix = kwargs.pop("past_key_values", None)
        if prefix_tuning and prefix is not None and prefix is not cache and seen == 0:
            for index, layer in enumerate(prefix.layers):  # the first step: the prefix into generate's cache
                cache.update(layer.keys, layer.values, index)
        embeds = kwargs.get("inputs_embeds")
        if not prefix_tuning and seen > 0 and embeds is not None and embeds.shape[1] > virtual:
            kwargs["inputs_embeds"] = embeds[:, virtual:]  # PEFT prepended them again: they are cached
        return args, kwargs

    handle = model.get_base_model().register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def dora_cache(model: Any) -> Iterator[bool]:
    """Within it, a DoRA model's eval-mode forward passes reuse B·A and the weight norm (yields whether
    the cache is on). Leaving it drops the cached tensors, so the memory is back and later weights are
    never answered with stale ones."""
    layers = dora_layers(model)
    if not layers:
        yield False
        return
    device = next(model.parameters()).device
    fits = free_bytes(device) > 2 * cache_bytes(layers) + ROOM
    if not fits:
        yield False
        return
    from peft.helpers import DoraCaching

    global _users
    with _lock:
        _users += 1
        DoraCaching()(enabled=True)
    try:
        yield True
    finally:
        with _lock:
            _users -= 1
            if _users == 0:
                DoraCaching()(enabled=False)
        for layer in layers:
            for magnitude in layer.lora_magnitude_vector.values():
                magnitude._cache_clear()
