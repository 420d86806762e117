"""The official qwen-asr package (0.0.6, transformers backend) timed on bench/bench.py's workload, in
its own environment (transformers 4.57.x; bench.py installs it and runs this as a subprocess).

The random-weight checkpoint is built in the official layout (bench/official_checkpoint.py) and
loaded as a user would: `Qwen3ASRModel.from_pretrained(folder, dtype=bf16, device_map="cuda:0")`
with its default max_inference_batch_size (32), then `.transcribe([(wav, 16000), ...], language=...)`.
Every segment is forced to decode exactly N new tokens (N = tokens per second × its length), as in
hushscribe's rows: `max_new_tokens` on the wrapper and `min_new_tokens` on the thinker's generation
config (its generate() hard-codes the real eos ids, ordinary random rows here). A counting wrapper
around `model.generate` checks that every row decoded exactly N.

    python bench/official_rows.py --out rows.json [--size 1.7b] [--segments 120] [--long-seconds 300]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_checkpoint import STOOD_IN, build_checkpoint  # noqa: E402  (installs the stand-ins first)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from qwen_asr import Qwen3ASRModel  # noqa: E402

SAMPLE_RATE = 16000


class TokenCounter:
    """Wraps model.generate (called once per inference batch) and records each row's new tokens."""

    def __init__(self, model):
        self.original = model.generate
        self.rows: list[int] = []
        self.batches: list[int] = []
        model.generate = self

    def __call__(self, *args, **kwargs):
        out = self.original(*args, **kwargs)
        new = out.sequences[:, kwargs["input_ids"].shape[1]:]
        self.batches.append(new.shape[0])
        self.rows.extend([new.shape[1]] * new.shape[0])
        return out

    def take(self) -> dict:
        report = {"new_tokens_per_row": sorted(set(self.rows)), "rows": len(self.rows), "batches": self.batches}
        self.rows, self.batches = [], []
        return report


def timed(asr, counter: TokenCounter, wavs: list[np.ndarray], tokens_per_second: float, language: str) -> dict:
    """Transcribe `wavs` (all of one length) forcing tokens_per_second × length new tokens each."""
    seconds_each = len(wavs[0]) / SAMPLE_RATE
    tokens = math.ceil(tokens_per_second * min(seconds_each, 1200))  # the wrapper cuts files into ≤ 20 min
    asr.max_new_tokens = tokens
    asr.model.thinker.generation_config.min_new_tokens = tokens
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    t = time.perf_counter()
    asr.transcribe([(w, SAMPLE_RATE) for w in wavs], language=language)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    audio_s = sum(len(w) for w in wavs) / SAMPLE_RATE
    return {"seconds": round(seconds, 3), "audio_s": round(audio_s, 1), "x_realtime": round(audio_s / seconds, 1),
            "peak_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2), "forced_tokens": tokens, **counter.take()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default="1.7b", choices=["tiny", "0.6b", "1.7b"])
    parser.add_argument("--segments", type=int, default=120, help="30 s segments (120 = one hour)")
    parser.add_argument("--tokens-per-second", type=float, default=5.0)
    parser.add_argument("--long-seconds", type=float, default=300.0,
                        help="one file this long, cut by the wrapper itself (its defaults)")
    parser.add_argument("--audio", type=Path, required=True, help="a .npy of 16 kHz float32 speech to cut from")
    parser.add_argument("--raised-batch", type=int, default=128,
                        help="also time one batch of this many 30 s segments with the batch limit raised to it")
    args = parser.parse_args()

    speech = np.load(args.audio)
    segment = speech[: 30 * SAMPLE_RATE]
    report = {"qwen_asr": "0.0.6", "transformers": transformers.__version__, "torch": torch.__version__,
              "stand_in_modules": STOOD_IN}
    with __import__("tempfile").TemporaryDirectory() as folder:
        build_checkpoint(Path(folder), args.size)
        t = time.perf_counter()
        asr = Qwen3ASRModel.from_pretrained(folder, dtype=torch.bfloat16, device_map="cuda:0")
        torch.cuda.synchronize()
        report["load_s"] = round(time.perf_counter() - t, 1)
        report["max_inference_batch_size"] = asr.max_inference_batch_size
        counter = TokenCounter(asr.model)
        timed(asr, counter, [segment] * 2, 1, "English")  # warm-up: CUDA context, kernels
        report["latency_30s"] = timed(asr, counter, [segment], args.tokens_per_second, "English")
        print(json.dumps({"latency_30s": report["latency_30s"]}), flush=True)
        report["segments_30s"] = timed(asr, counter, [segment] * args.segments, args.tokens_per_second, "English")
        print(json.dumps({"segments_30s": report["segments_30s"]}), flush=True)
        long = np.resize(speech, int(args.long_seconds * SAMPLE_RATE))
        report["defaults_one_file"] = timed(asr, counter, [long], args.tokens_per_second, "English")
        print(json.dumps({"defaults_one_file": report["defaults_one_file"]}), flush=True)
        if args.raised_batch:  # its best: the limit raised so that one batch holds them all
            asr.max_inference_batch_size = args.raised_batch
            report["segments_30s_raised_batch"] = {
                "max_inference_batch_size": args.raised_batch,
                **timed(asr, counter, [segment] * args.raised_batch, args.tokens_per_second, "English")}
            print(json.dumps({"segments_30s_raised_batch": report["segments_30s_raised_batch"]}), flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
