"""Where a decode step's time goes: the captured step replayed alone, and the kernels of an eager
step under torch.profiler (true-size random weights, 30 s segments).

    python bench/profile_decode.py [--size 1.7b] [--batches 2,32]
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--batches", default="2,32")
    args = parser.parse_args()
    segment = (np.random.default_rng(0).standard_normal(30 * SAMPLE_RATE) * 0.1).astype(np.float32)
    with tempfile.TemporaryDirectory() as folder:
        build_checkpoint(Path(folder), args.size)
        engine = QwenEngine(folder, device="cuda")
        options = RecognitionOptions(language="en")
        for batch in [int(b) for b in args.batches.split(",")]:
            profile_batch(engine, segment, batch, options)


def profile_batch(engine: QwenEngine, segment: np.ndarray, batch: int, options: RecognitionOptions) -> None:
    with torch.inference_mode():  # the engine's cache tensors are inference tensors
        engine._generate([segment] * batch, options)  # captures this bucket
        step = engine._steps[batch]
        step.reset()  # replays advance the cache: start from an empty one so 100 steps fit
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(100):
            step.graph.replay()
        torch.cuda.synchronize()
        print(f"batch {batch}: graph replay {1000 * (time.perf_counter() - t) / 100:.2f} ms/step "
              f"(cache {step.cache_len} slots)", flush=True)
        inputs = engine.inputs([segment] * batch, options)
        embeds = engine._embeddings(inputs)
        torch.cuda.synchronize()
        t = time.perf_counter()
        engine._embeddings(inputs)
        torch.cuda.synchronize()
        print(f"batch {batch}: encoder + embeddings {1000 * (time.perf_counter() - t):.1f} ms", flush=True)
        step.graph, graph = None, step.graph
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            step.run(embeds, inputs["attention_mask"].bool(), 20)
            torch.cuda.synchronize()
        step.graph = graph
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14), flush=True)


if __name__ == "__main__":
    main()
