"""Smoke / timing run of the *official* qwen-asr package (0.0.6, transformers backend) on a
random-weight checkpoint in its own layout (bench/official_checkpoint.py), loaded exactly as a user
would: `Qwen3ASRModel.from_pretrained(folder, dtype=..., device_map=..., max_inference_batch_size=...,
max_new_tokens=N)` then `.transcribe([(wav16k, 16000), ...], language=...)`.

Every segment is forced to decode exactly N new tokens, as hushscribe's engine does with random
weights: the wrapper passes `max_new_tokens=N` to generate(), and `min_new_tokens=N` is set on the
thinker's generation config (the official generate() hard-codes eos ids [151645, 151643] and
forwards to `model.thinker.generate`, which reads `model.thinker.generation_config`). A counting
wrapper around `model.generate` records the new tokens of every row and checks that none stopped
early.

Runs only in the official environment (transformers 4.57.x, qwen-asr 0.0.6; nagisa / librosa /
soundfile stand in as empty modules when absent: the path with 16 kHz numpy input never calls them).

    python bench/official_smoke.py [--size tiny|0.6b|1.7b] [--checkpoint DIR] [--device cpu|cuda]
        [--tokens N] [--batches 1,4] [--segment-seconds 30] [--clips a.wav b.flac ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from official_checkpoint import STOOD_IN, build_checkpoint  # noqa: E402  (installs the stand-ins first)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

import qwen_asr  # noqa: E402
from qwen_asr import Qwen3ASRModel  # noqa: E402

SAMPLE_RATE = 16000
_ROOT = Path(__file__).resolve().parent.parent
AUDIO = next((d for d in (_ROOT / "shared" / "audio" / "en", _ROOT.parent / "shared" / "audio" / "en")
              if d.is_dir()), _ROOT / "shared" / "audio" / "en")
DEFAULT_CLIPS = ["jfk_inaugural_1961.flac", "librispeech_1995-1837-0001.wav",
                 "deepspeech_new_home_in_the_stars.wav", "leopard_3speaker_diarization.wav"]
OFFICIAL_EOS = (151645, 151643)  # hard-coded in Qwen3ASRForConditionalGeneration.generate


def load_clip(path: Path) -> np.ndarray:
    """16 kHz mono float32: 16 kHz PCM wav through the stdlib, anything else through PyAV."""
    if path.suffix.lower() == ".wav":
        with wave.open(str(path)) as w:
            if w.getframerate() == SAMPLE_RATE and w.getsampwidth() == 2:
                pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
                pcm = pcm.reshape(-1, w.getnchannels()).mean(axis=1)
                return (pcm / 32768.0).astype(np.float32)
    import av  # only for other rates / formats

    out = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        for frame in container.decode(audio=0):
            out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
        out.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(out).astype(np.float32)


class TokenCounter:
    """Wraps model.generate (called once per inference batch by the official wrapper) and records
    the new tokens per row: generated positions up to and including the first official eos."""

    def __init__(self, model):
        self.model = model
        self.original = model.generate
        self.rows: list[int] = []
        self.eos_seen = 0
        self.generate_calls = 0
        self.batch_sizes: list[int] = []
        model.generate = self

    def __call__(self, *args, **kwargs):
        out = self.original(*args, **kwargs)
        prompt_len = kwargs["input_ids"].shape[1]
        new = out.sequences[:, prompt_len:].cpu()
        self.generate_calls += 1
        self.batch_sizes.append(new.shape[0])
        for row in new.tolist():
            hits = [i for i, t in enumerate(row) if t in OFFICIAL_EOS]
            self.eos_seen += bool(hits)
            self.rows.append(hits[0] + 1 if hits else len(row))
        return out

    def take(self) -> dict:
        report = {"tokens_per_segment": sorted(set(self.rows)), "segments": len(self.rows),
                  "generate_calls": self.generate_calls, "batch_sizes": self.batch_sizes,
                  "eos_seen": self.eos_seen}
        self.rows, self.eos_seen, self.generate_calls, self.batch_sizes = [], 0, 0, []
        return report


def timed(asr: Qwen3ASRModel, counter: TokenCounter, wavs: list[np.ndarray], language: str | None,
          sync) -> tuple[dict, list]:
    sync()
    t = time.perf_counter()
    results = asr.transcribe([(w, SAMPLE_RATE) for w in wavs], language=language)
    sync()
    seconds = time.perf_counter() - t
    audio_s = sum(len(w) for w in wavs) / SAMPLE_RATE
    report = {"seconds": round(seconds, 3), "audio_s": round(audio_s, 1),
              "x_realtime": round(audio_s / seconds, 1), **counter.take()}
    return report, results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="tiny", choices=["tiny", "0.6b", "1.7b"])
    parser.add_argument("--checkpoint", type=Path, help="an existing folder (else one is built in a temp dir)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="bfloat16 / float32 (default: bf16 on cuda, fp32 on cpu)")
    parser.add_argument("--attn", default=None, help="attn_implementation (sdpa default; flash_attention_2)")
    parser.add_argument("--tokens", type=int, default=24, help="new tokens forced per segment")
    parser.add_argument("--batch-size", type=int, default=32, help="max_inference_batch_size (official default 32)")
    parser.add_argument("--batches", default="1,4", help="synthetic-segment batch sizes to time")
    parser.add_argument("--segment-seconds", type=float, default=30.0)
    parser.add_argument("--language", default="English", help="forced language ('' for auto)")
    parser.add_argument("--clips", nargs="*", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per batch size (first warms up)")
    args = parser.parse_args()

    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    dtype = getattr(torch, args.dtype) if args.dtype else (torch.bfloat16 if cuda else torch.float32)
    language = args.language or None
    report = {"qwen_asr": getattr(qwen_asr, "__version__", None) or _dist_version("qwen-asr"),
              "transformers": transformers.__version__, "torch": torch.__version__,
              "device": torch.cuda.get_device_name() if cuda else "cpu", "size": args.size,
              "dtype": str(dtype), "tokens_forced": args.tokens, "stand_in_modules": STOOD_IN}
    print(json.dumps(report), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.checkpoint
        if folder is None or not (folder / "config.json").exists():
            folder = folder or Path(tmp)
            t = time.perf_counter()
            build_checkpoint(folder, args.size)
            print(json.dumps({"build_s": round(time.perf_counter() - t, 1), "folder": str(folder)}), flush=True)

        t = time.perf_counter()
        kwargs = dict(dtype=dtype, device_map="cuda:0" if args.device == "cuda" else args.device,
                      max_inference_batch_size=args.batch_size, max_new_tokens=args.tokens)
        if args.attn:
            kwargs["attn_implementation"] = args.attn
        asr = Qwen3ASRModel.from_pretrained(str(folder), **kwargs)
        # force exactly N new tokens per segment: max_new_tokens=N above, min_new_tokens=N here
        asr.model.thinker.generation_config.min_new_tokens = args.tokens
        sync()
        print(json.dumps({"load_s": round(time.perf_counter() - t, 1),
                          "attn": asr.model.thinker.config._attn_implementation,
                          "params_m": round(sum(p.numel() for p in asr.model.parameters()) / 1e6, 1),
                          "tied": asr.model.thinker.lm_head.weight.data_ptr()
                          == asr.model.thinker.model.embed_tokens.weight.data_ptr()}), flush=True)
        counter = TokenCounter(asr.model)

        # real clips: one alone, then all together as one batch
        names = args.clips if args.clips is not None else [AUDIO / n for n in DEFAULT_CLIPS]
        clips = []
        for path in names:
            try:
                clips.append((path.name, load_clip(path)))
            except (ImportError, FileNotFoundError) as e:
                print(json.dumps({"skipped_clip": str(path), "why": repr(e)}), flush=True)
        if clips:
            name, wav = clips[0]
            rec, results = timed(asr, counter, [wav], language, sync)
            print(json.dumps({"clip": name, **rec, "language": results[0].language,
                              "text": results[0].text[:120]}), flush=True)
            rec, results = timed(asr, counter, [w for _, w in clips], language, sync)
            print(json.dumps({"clips_batch": [n for n, _ in clips], **rec,
                              "texts": [r.text[:60] for r in results]}), flush=True)

        # synthetic fixed-length segments, the benchmark shape
        rng = np.random.default_rng(0)
        segment = (rng.standard_normal(int(args.segment_seconds * SAMPLE_RATE)) * 0.1).astype(np.float32)
        for batch in [int(b) for b in args.batches.split(",") if b]:
            for attempt in range(args.repeat):
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                rec, _ = timed(asr, counter, [segment] * batch, language, sync)
                if cuda:
                    rec["peak_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
                print(json.dumps({f"segments{batch}x{args.segment_seconds:g}s_run{attempt}": rec}), flush=True)


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
