"""GPU smoke run: the true-size Qwen3-ASR architecture with random bf16 weights loads, compiles and
runs at batch 1 and batch 32 through hushscribe's engine. Random weights never stop early, so every
segment decodes its whole token budget (24 + 10 per second: 324 tokens for 30 s), a worst case.

    python bench/qwen_smoke.py [--size 1.7b|0.6b] [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.qwen_checkpoint import build_checkpoint  # noqa: E402

from hushscribe.audio import SAMPLE_RATE  # noqa: E402
from hushscribe.engines.base import RecognitionOptions  # noqa: E402
from hushscribe.engines.qwen import QwenEngine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1.7b")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--batches", default="1,32,7")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    segment = (rng.standard_normal(30 * SAMPLE_RATE) * 0.1).astype(np.float32)
    report = {"gpu": torch.cuda.get_device_name(), "size": args.size, "compile": args.compile,
              "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        build_checkpoint(Path(folder), args.size)
        report["build_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        engine = QwenEngine(folder, device="cuda", compile=args.compile)
        torch.cuda.synchronize()
        report["load_and_warm_up_s"] = round(time.perf_counter() - t, 1)
        report["auto_batch_size"] = engine.batch_size
        for batch in [int(b) for b in args.batches.split(",")]:
            engine.batch_size = batch
            for attempt in ("first", "second"):
                torch.cuda.reset_peak_memory_stats()
                torch.cuda.synchronize()
                t = time.perf_counter()
                results = engine.recognize([segment] * batch, RecognitionOptions(language="en"))
                torch.cuda.synchronize()
                seconds = time.perf_counter() - t
                report[f"batch{batch}_{attempt}"] = {
                    "seconds": round(seconds, 3),
                    "per_30s_segment_s": round(seconds / batch, 4),
                    "x_realtime": round(30 * batch / seconds, 1),
                    "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
                    "segments_back": len(results),
                }
                print(json.dumps({f"batch{batch}_{attempt}": report[f"batch{batch}_{attempt}"]}), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
