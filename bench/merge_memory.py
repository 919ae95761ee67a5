"""Extra memory of a merge, as a share of the model's size: this app's streaming merge against PEFT's
merge_and_unload, side by side, each in its own process (peak RSS minus the process's RSS before).

    .venv/bin/python bench/merge_memory.py [--model PATH]   # default: the demo model
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

OURS = r"""
import json, resource, sys, psutil
before = psutil.Process().memory_info().rss
import torch, transformers, peft  # the libraries' own footprint is not the merge's
from finetune_gui.core.adapters.merge import merge
base = psutil.Process().memory_info().rss
merge(sys.argv[1], [(sys.argv[2], 1.0)], sys.argv[3])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"extra_bytes": peak - base}))
"""

PEFT = r"""
import json, resource, sys, psutil
import torch, transformers, peft
base = psutil.Process().memory_info().rss
from peft import PeftModel
from transformers import AutoModelForCausalLM
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sys.argv[1]), sys.argv[2]).merge_and_unload()
model.save_pretrained(sys.argv[3])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"extra_bytes": peak - base}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder with safetensors (default: the demo model)")
    args = parser.parse_args()
    if args.model is None:
        from finetune_gui.core.demo import prepare_demo_model

        args.model = str(prepare_demo_model())
    model = Path(args.model)
    size = sum(p.stat().st_size for p in model.glob("*.safetensors"))
    with tempfile.TemporaryDirectory() as tmp:
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        torch.manual_seed(0)
        lora = get_peft_model(
            AutoModelForCausalLM.from_pretrained(model),
            LoraConfig(r=16, target_modules="all-linear", init_lora_weights=False),
        )
        lora.save_pretrained(Path(tmp) / "adapter")
        del lora
        results = {}
        for name, code in (("app", OURS), ("peft_merge_and_unload", PEFT)):
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    code,
                    str(model),
                    str(Path(tmp) / "adapter"),
                    str(Path(tmp) / f"out-{name}"),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            extra = json.loads(out.stdout.strip().splitlines()[-1])["extra_bytes"]
            results[name] = {
                "extra_mb": round(extra / 2**20, 1),
                "extra_share_of_model": round(extra / size, 3),
            }
    print(
        json.dumps(
            {"benchmark": "merge_memory", "model": str(model), "model_mb": round(size / 2**20, 1), **results}
        )
    )


if __name__ == "__main__":
    main()
