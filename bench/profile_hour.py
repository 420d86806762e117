"""Where the model-throughput hour's time goes: one batch of 30 s segments (true-size random weights, 5 new
tokens per second, as bench/bench.py forces), each stage of QwenEngine._generate timed apart (synchronised):
the processor (features and prompt tokens), the audio encoder, the prefill, the decode steps, and reading the
ids back; then one decode step alone at several cache lengths.

    python bench/profile_hour.py [--size 1.7b] [--segments 120] [--fuse] [--windows] [--kernels]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import SEGMENTS, force_tokens, speech  # noqa: E402  (bench/bench.py, this folder)
from hushscribe.audio import SAMPLE_RATE  # noqa: E402
from hushscribe.engines import qwen, qwen_decode  # noqa: E402
from hushscribe.engines.base import RecognitionOptions  # noqa: E402
from hushscribe.engines.qwen_decode import StepGraph, bucket  # noqa: E402
from tests.qwen_checkpoint import build_checkpoint  # noqa: E402


def clock() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def stages(engine, batch, options) -> dict:
    """One _generate, stage by stage (ms)."""
    out, t = {}, clock()
    size = bucket(len(batch))
    batch = batch + [batch[-1]] * (size - len(batch))
    inputs = engine.inputs(batch, options)
    out["processor_ms"], t = 1000 * (clock() - t), clock()
    budget = qwen.max_new_tokens(max(len(a) for a in batch) / SAMPLE_RATE)
    with torch.inference_mode():
        embeds = engine._embeddings(inputs)
        out["encoder_ms"], t = 1000 * (clock() - t), clock()
        step = engine._step_graph(size, embeds.shape[1] + budget)
        valid = inputs["attention_mask"].bool()
        step.prefill(embeds, valid)
        out["prefill_ms"], t = 1000 * (clock() - t), clock()
        ids = step.run(embeds, valid, budget)
        out["prefill_and_decode_ms"], t = 1000 * (clock() - t), clock()
        rows = ids.tolist()
        [engine._parse(row, options.language) for row in rows]
        out["parse_ms"] = 1000 * (clock() - t)
    out["decode_ms"] = out["prefill_and_decode_ms"] - out["prefill_ms"]
    out["decode_ms_per_step"] = out["decode_ms"] / (budget - 1)
    out.update(batch=size, prompt_tokens=embeds.shape[1], new_tokens=budget, cache_len=step.cache_len)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def step_ms_by_live_slots(engine, batch: int, cache_len: int) -> dict:
    """One decode step alone (its graph replayed 100 times, from 100 slots before the mark to the mark) with
    512, 640, ... live slots per row, whichever way the decoder attends (windows or the split-KV kernel)."""
    step = StepGraph(engine._decoder, batch, cache_len, engine.device, engine.dtype, sorted(engine._stop_ids),
                     engine.processor.tokenizer.pad_token_id, use_graph=True)
    rows = {}
    for live in range(512, cache_len + 1, 128):
        graph = step.graphs[step._window(live - 1)]
        step.reset()
        step.mask[..., :live] = True
        step.slot.fill_(live - 100)
        t = clock()
        for _ in range(100):
            graph.replay()
        rows[live] = round(1000 * (clock() - t) / 100, 3)
    del step
    torch.cuda.empty_cache()
    return rows


def top_kernels(label: str, run, times: int = 5) -> None:
    """The GPU kernels of `run()` (after one untimed call), GPU time per call by kernel and their count."""
    from torch.profiler import ProfilerActivity, profile

    run()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(times):
            run()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA"]
    launches = sum(e.count for e in events) / times
    gpu_ms = sum(e.self_device_time_total for e in events) / times / 1000
    print(f"{label}: {launches:.0f} kernels, GPU time {gpu_ms:.2f} ms per call")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:18]:
        print(f"  {e.self_device_time_total / times / 1000:8.3f} ms  {e.count // times:5d}x  {e.key[:110]}")


def kernels(engine, batch: int, live: int) -> None:
    """The kernels of one decode step, run uncaptured at `live` slots per row."""
    step = StepGraph(engine._decoder, batch, live + 64, engine.device, engine.dtype, sorted(engine._stop_ids),
                     engine.processor.tokenizer.pad_token_id, use_graph=False)
    step.mask[..., :live] = True
    window = step._window(live - 1)

    def one():
        step.slot.fill_(live - 1)
        step._step(window)

    top_kernels(f"decode step, batch {batch}, {live} live slots", one, times=20)


def stage_kernels(engine, batch, options) -> None:
    """The kernels of the audio encoder and of the prefill on one batch of the hour."""
    inputs = engine.inputs(batch, options)
    with torch.inference_mode():
        top_kernels(f"encoder, {len(batch)} segments", lambda: engine._embeddings(inputs), times=3)
        embeds = engine._embeddings(inputs)
        budget = qwen.max_new_tokens(max(len(a) for a in batch) / SAMPLE_RATE)
        step = engine._step_graph(bucket(len(batch)), embeds.shape[1] + budget)
        valid = inputs["attention_mask"].bool()
        top_kernels(f"prefill, {len(batch)} rows of {embeds.shape[1]}", lambda: step.prefill(embeds, valid), times=3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1.7b")
    parser.add_argument("--segments", type=int, default=SEGMENTS)
    parser.add_argument("--fuse", action="store_true", help="compile the fused step first")
    parser.add_argument("--windows", action="store_true", help="attend by SDPA over 64-slot windows, not the kernel")
    parser.add_argument("--cache-len", type=int, default=1024)
    parser.add_argument("--kernels", action="store_true", help="profile one decode step's kernels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        build_checkpoint(Path(folder), args.size)
        print(f"checkpoint {time.perf_counter() - t:.1f} s", flush=True)
        qwen_decode.USE_KERNELS = not args.windows
        t = clock()
        engine = qwen.QwenEngine(folder, device="cuda", compile=False)
        print(f"load + warm-up {clock() - t:.1f} s", flush=True)
        if args.fuse:
            t = clock()
            engine.fuse()
            print(f"compile {clock() - t:.1f} s", flush=True)
        force_tokens(engine)
        options = RecognitionOptions(language="en")
        hour = [speech(30)] * args.segments
        stages(engine, hour, options)  # this batch size's graph
        for _ in range(2):
            print(json.dumps(stages(engine, hour, options)), flush=True)
        t = clock()
        engine.recognize(hour, options)
        seconds = clock() - t
        print(json.dumps({"recognize_s": round(seconds, 3), "x_realtime": round(30 * args.segments / seconds)}))
        engine._steps.clear()
        rows = step_ms_by_live_slots(engine, bucket(args.segments), args.cache_len)
        print(json.dumps({"step_ms_by_live_slots": rows, "kernels": engine._decoder.kernels}), flush=True)
        if args.kernels:
            kernels(engine, bucket(args.segments), 512)
            stage_kernels(engine, hour, options)


if __name__ == "__main__":
    main()
