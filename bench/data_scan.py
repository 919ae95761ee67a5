"""Scanning a large JSONL: throughput (MB/s) and peak memory, at two file sizes side by side, to show
that memory does not grow with the file (only duplicate detection keeps 16 bytes a row).

    .venv/bin/python bench/data_scan.py [--mb 200]     # scans files of MB/4 and MB
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from finetune_gui.core.data.scan import scan_dataset
start = time.perf_counter()
report = scan_dataset(sys.argv[1])
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": report.rows, "seconds": elapsed, "peak_rss_mb": peak}))
"""


def write_jsonl(path: Path, megabytes: float, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = [
        "the",
        "model",
        "learns",
        "facts",
        "about",
        "a",
        "fictional",
        "island",
        "in",
        "a",
        "calm",
        "voice",
        "with",
        "tides",
        "and",
        "herons",
    ]
    target = megabytes * 1024 * 1024
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        i = 0
        while written < target:
            answer = " ".join(rng.choice(words) for _ in range(rng.randint(20, 200)))
            row = {
                "messages": [
                    {"role": "user", "content": f"Question {i}?"},
                    {"role": "assistant", "content": answer},
                ]
            }
            line = json.dumps(row) + "\n"
            handle.write(line)
            written += len(line)
            i += 1


def scan(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in (("small", args.mb / 4), ("large", args.mb)):
            path = Path(tmp) / f"{label}.jsonl"
            write_jsonl(path, size)
            mb = path.stat().st_size / 1024 / 1024
            result = scan(path)
            results[label] = {
                "mb": round(mb, 1),
                "rows": result["rows"],
                "mb_per_s": round(mb / result["seconds"], 1),
                "peak_rss_mb": round(result["peak_rss_mb"], 1),
            }
            path.unlink()
    growth = results["large"]["peak_rss_mb"] - results["small"]["peak_rss_mb"]
    print(
        json.dumps(
            {
                "benchmark": "data_scan",
                **results,
                "peak_growth_mb_per_100mb_of_file": round(
                    100 * growth / (results["large"]["mb"] - results["small"]["mb"]), 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
