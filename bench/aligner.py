"""Forced-aligner benchmark (issue 19): seconds of GPU time to time the words of an hour of speech.

    python bench/aligner.py                      # true-size Qwen3-ForcedAligner-0.6B, random bf16 weights, CUDA
    python bench/aligner.py --size tiny --device cpu --minutes 2     # a smoke run of the same code

The workload is what `--word-timestamps` gives the aligner after Qwen3-ASR-1.7B: an hour cut into 30 s segments
(VAD's longest), each with the transcript a real recognition would give it. English segments carry 2.6 words a second
(a brisk talk) and Chinese ones 4.5 characters a second, taken from the shared clips' references repeated to length;
the hour is half of each. `QwenAligner.align` is timed as the transcriber calls it (all segments at once, batched by
BATCH_AUDIO_S), warm, best and median of --repeats runs with the GPU synchronised.

The checkpoint is tests/qwen_checkpoint.py's 0.6b aligner (the published architecture, random weights) with the
tests' small byte-level tokenizer: a CJK character is 3 tokens there and an English word about 3, against about 1
and 1.3 with the real tokenizer, so the text part of each sequence is longer than the real one and the figure is
an upper bound. Random weights put the words anywhere; the work per segment does not depend on where.
Results: bench/results/aligner-DATE-MACHINE.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "src")]

from hushscribe.audio import SAMPLE_RATE  # noqa: E402

SEGMENT_S = 30.0
EN_WORDS_PER_S = 2.6
ZH_CHARS_PER_S = 4.5
FALLBACK_EN = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
FALLBACK_ZH = "我最喜欢夏天满地的鲜花这里一朵那里一朵真比天上的星星还多"


def references() -> tuple[str, str]:
    """All English and all Chinese reference text of the shared clips (or a fallback without them)."""
    import os

    folder = Path(os.environ.get("HUSHSCRIBE_TEST_AUDIO", REPO.parent / "shared" / "audio"))
    manifest = folder / "manifest.jsonl"
    if not manifest.exists():
        return FALLBACK_EN, FALLBACK_ZH
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    english = " ".join(r["text"] for r in rows if r["lang"] == "en")
    chinese = "".join(r["text"].replace(" ", "") for r in rows if r["lang"] == "zh")
    return english, chinese


def workload(minutes: float) -> tuple[list[np.ndarray], list[tuple[str, str]]]:
    english, chinese = references()
    words, characters = english.split(), [c for c in chinese if not c.isspace()]
    count = int(minutes * 60 / SEGMENT_S)
    rng = np.random.default_rng(0)
    segments, texts = [], []
    for i in range(count):
        segments.append((0.1 * rng.standard_normal(int(SEGMENT_S * SAMPLE_RATE))).astype(np.float32))
        if i % 2:
            n = int(ZH_CHARS_PER_S * SEGMENT_S)
            texts.append(("".join(characters[(i * n + k) % len(characters)] for k in range(n)), "zh"))
        else:
            n = int(EN_WORDS_PER_S * SEGMENT_S)
            texts.append((" ".join(words[(i * n + k) % len(words)] for k in range(n)), "en"))
    return segments, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="0.6b", choices=["tiny", "0.6b"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-audio-s", default="", help="comma-separated BATCH_AUDIO_S values to compare")
    parser.add_argument("--checkpoint", type=Path, help="an aligner folder to use instead of building one")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()

    import torch

    from hushscribe.engines import qwen_aligner
    from hushscribe.engines.qwen_aligner import QwenAligner
    from tests.qwen_checkpoint import build_aligner

    device = torch.device(args.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.checkpoint or build_aligner(Path(scratch) / "aligner", args.size)
        started = time.perf_counter()
        aligner = QwenAligner(folder, device, dtype)
        load_s = time.perf_counter() - started
    segments, texts = workload(args.minutes)
    audio_h = len(segments) * SEGMENT_S / 3600
    rows = []
    for batch_audio_s in [float(b) for b in args.batch_audio_s.split(",") if b] or [aligner.batch_audio_s]:
        aligner.batch_audio_s = batch_audio_s
        aligner.align(segments[:4], texts[:4])  # warm: kernels chosen, memory pooled
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            timed = aligner.align(segments, texts)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        words = sum(len(w or []) for w in timed)
        row = {"batch_audio_s": batch_audio_s, "segments": len(segments), "audio_h": audio_h, "words": words,
               "best_s": min(times), "median_s": statistics.median(times),
               "s_per_hour": statistics.median(times) / audio_h,
               "peak_mem_gb": torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None}
        print(json.dumps(row), flush=True)
        rows.append(row)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    result = {
        "what": "Qwen3-ForcedAligner word timings for 30 s segments with their transcripts (bench/aligner.py)",
        "size": args.size, "device": name,
        "dtype": str(dtype), "torch": torch.__version__, "transformers": __import__("transformers").__version__,
        "load_s": load_s, "default_batch_audio_s": qwen_aligner.BATCH_AUDIO_S, "rows": rows,
        "s_per_hour": min(r["s_per_hour"] for r in rows), "target_s_per_hour": 2.0,
    }
    machine = "h200" if "H200" in result["device"] else ("h100" if "H100" in result["device"] else device.type)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"aligner-{date.today()}-{machine}-{args.size}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['s_per_hour']:.2f} s per hour of audio (target ≤ 2 s); saved {path}")


if __name__ == "__main__":
    main()
