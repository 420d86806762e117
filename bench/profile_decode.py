"""Where a decode step's time goes (true-size random weights, 30 s segments): for each batch size,
the captured step replayed alone with and without Inductor fusion, the number of kernels one step
launches, the capture/compile time, and the encoder's time for the batch.

    python bench/profile_decode.py [--size 1.7b] [--batches 1,32,128] [--table 128]
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
from hushscribe.audio import SAMPLE_RATE  # noqa: E402
from hushscribe.engines.base import RecognitionOptions  # noqa: E402
from hushscribe.engines.qwen import QwenEngine  # noqa: E402
from hushscribe.engines.qwen_decode import StepGraph, bucket  # noqa: E402
from tests.qwen_checkpoint import build_checkpoint  # noqa: E402

CACHE_LEN = 768  # a 30 s segment: ~410 prompt tokens + 324 budget, rounded up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1.7b")
    parser.add_argument("--batches", default="1,32,128")
    parser.add_argument("--table", default="", help="batch sizes to print a kernel table for")
    args = parser.parse_args()
    segment = (np.random.default_rng(0).standard_normal(30 * SAMPLE_RATE) * 0.1).astype(np.float32)
    tables = {int(b) for b in args.table.split(",") if b}
    with tempfile.TemporaryDirectory() as folder, torch.inference_mode():
        build_checkpoint(Path(folder), args.size)
        t = time.perf_counter()
        engine = QwenEngine(folder, device="cuda", compile=False)
        print(f"load {time.perf_counter() - t:.1f} s", flush=True)
        options = RecognitionOptions(language="en")
        batches = [int(b) for b in args.batches.split(",")]
        rows = {batch: {"batch": batch} for batch in batches}
        for batch in batches:
            inputs = engine.inputs([segment] * bucket(batch), options)
            engine._embeddings(inputs)
            torch.cuda.synchronize()
            t = time.perf_counter()
            engine._embeddings(inputs)
            torch.cuda.synchronize()
            rows[batch]["encoder_ms"] = round(1000 * (time.perf_counter() - t), 1)
        for fuse in (False, True):
            if fuse:
                t = time.perf_counter()
                engine.fuse()
                print(f"compile {time.perf_counter() - t:.1f} s", flush=True)
            for batch in batches:
                rows[batch].update(profile_step(engine, bucket(batch), fuse, batch in tables))
                print(json.dumps(rows[batch]), flush=True)
    print(json.dumps(list(rows.values()), indent=1))


def profile_step(engine: QwenEngine, batch: int, fuse: bool, table: bool) -> dict:
    name = "fused" if fuse else "plain"
    torch.cuda.synchronize()
    t = time.perf_counter()
    step = StepGraph(engine._decoder, batch, CACHE_LEN, engine.device, engine.dtype, sorted(engine._stop_ids),
                     engine.processor.tokenizer.pad_token_id, use_graph=True)
    torch.cuda.synchronize()
    out = {f"{name}_capture_s": round(time.perf_counter() - t, 1)}
    graph = step.graphs[CACHE_LEN]  # the whole cache read: the step's cost with every slot live
    for _ in range(3):
        graph.replay()
    step.reset()  # replays advance the cache: start from an empty one so the steps fit
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(300):
        graph.replay()
    torch.cuda.synchronize()
    out[f"{name}_ms_per_step"] = round(1000 * (time.perf_counter() - t) / 300, 3)
    step.reset()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        step._step(CACHE_LEN)
        torch.cuda.synchronize()
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    out[f"{name}_kernels_per_step"] = len(events)
    if table:
        print(f"--- batch {batch}, {name}", flush=True)
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12), flush=True)
    del step
    torch.cuda.empty_cache()
    return out


if __name__ == "__main__":
    main()
