"""Where the 30 s clip's latency goes (bench/bench.py's latency_30s_s): `Transcriber.transcribe` of the bench's
30 s FLAC, warm, fused, true-size random weights, 5 new tokens per second; each stage timed apart (synchronised,
so the stages add up to a little more than the plain call), then the GPU's kernels over one plain call.

    python bench/profile_clip.py [--size 1.7b] [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from profile_hour import clock, top_kernels  # noqa: E402

from bench import force_tokens, speech, write_flac  # noqa: E402  (bench/bench.py, this folder)
from hushscribe import Transcriber, vad  # noqa: E402
from hushscribe import transcriber as transcriber_module  # noqa: E402
from hushscribe.engines import qwen, qwen_decode  # noqa: E402
from tests.qwen_checkpoint import build_checkpoint  # noqa: E402

SPENT: dict[str, list[float]] = defaultdict(list)


def timed(owner, name: str, label: str) -> None:
    """`owner.name` timed (synchronised) into SPENT[label] at every call."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = clock()
        try:
            return original(*args, **kwargs)
        finally:
            SPENT[label].append(clock() - start)

    setattr(owner, name, wrapper)


def median_ms(values: list[float]) -> float:
    return round(1000 * sorted(values)[len(values) // 2], 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1.7b")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        build_checkpoint(work / "model", args.size)
        engine = qwen.QwenEngine(work / "model", device="cuda")
        start = clock()
        engine.fuse()
        print(json.dumps({"fuse_s": round(clock() - start, 2)}), flush=True)
        force_tokens(engine)
        transcriber = Transcriber(engine)
        clip = work / "clip30.flac"
        write_flac(clip, speech(30))

        def one():
            return transcriber.transcribe(clip, language="en")

        for _ in range(3):
            one()
        plain = []
        for _ in range(args.runs):
            start = clock()
            one()
            plain.append(clock() - start)
        print(json.dumps({"transcribe_ms": median_ms(plain), "min_ms": round(1000 * min(plain), 2)}), flush=True)

        timed(transcriber_module, "_segmented", "VAD (Silero, levels, spans)")
        timed(vad, "speech_probabilities", "Silero")
        timed(qwen.QwenEngine, "recognize", "recognize")
        timed(qwen.QwenEngine, "inputs", "inputs (log-mel, ids)")
        timed(qwen.QwenEngine, "_embeddings", "audio encoder")
        timed(qwen_decode.StepGraph, "prefill", "prefill")
        timed(qwen_decode.StepGraph, "run", "prefill + decode")
        timed(qwen.QwenEngine, "_parse", "parse")
        rows = []
        for _ in range(args.runs):
            SPENT.clear()
            start = clock()
            transcript = one()
            whole = clock() - start
            rows.append({label: sum(times) for label, times in SPENT.items()} | {"transcribe": whole})
        report = {label: median_ms([row[label] for row in rows]) for label in rows[0]}
        report["decode steps"] = report["prefill + decode"] - report["prefill"]
        report["segments_s"] = [round(s.end - s.start, 2) for s in transcript.segments]
        calls = {label: len(times) for label, times in SPENT.items()}
        print(json.dumps({"stages_ms": report, "calls": calls}), flush=True)

        top_kernels("one transcribe of the 30 s clip", one, times=3)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            one()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=60))
        print(f"wall {1000 * (time.perf_counter() - start):.0f} ms in all")


if __name__ == "__main__":
    main()
