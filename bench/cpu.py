"""CPU benchmark: hushscribe's embedded Whisper pipeline vs plain faster-whisper on the same weights.

    python bench/cpu.py [--audio ../shared/audio] [--threads 2] [--out bench/results/cpu-DATE.json]

Every row uses the embedded Whisper base weights, int8, beam 5 and the same thread count:

- plain faster-whisper: `WhisperModel.transcribe` with its defaults on the whole clip, no VAD (its
  temperature fallback samples at random, so its hard clips would vary from run to run; the seed is
  fixed before every call here);
- faster-whisper batched: its `BatchedInferencePipeline` with `multilingual=True` (a language
  detected for every chunk, which overrides the language it is given) and its own VAD, as its defaults do;
- hushscribe: its full pipeline (VAD segments, prompts, greedy-beam decoding, text filters).

Columns: the shared clips by language group, each row told the manifest's language (Cantonese
decoded as Chinese by faster-whisper, since Whisper base has no Cantonese token); then the long
mixed file (tests.conversations.long_mixed: every zh, yue and en clip joined, about 274 s) with no
language given to any row. Scores: CER for zh/yue, WER for others, mixed error rate for zh-en and
the long file, after hushscribe.scoring's normalisation. × realtime: seconds of audio per second
of recognition (decoding the clips is not timed).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hushscribe import Transcriber  # noqa: E402
from hushscribe.audio import SAMPLE_RATE, decode  # noqa: E402
from hushscribe.models import embedded_whisper_dir  # noqa: E402
from hushscribe.scoring import error_rate  # noqa: E402
from tests.conversations import long_mixed  # noqa: E402

LANGUAGE_GROUPS = {"zh": "zh", "yue": "yue", "en": "en", "zh-en": "zh-en"}  # the rest are "other"
LONG_MIXED = "mixed-long"
SEED = 0
BEAM_SIZE = 5

# A recogniser turns 16 kHz mono samples and a manifest language (None: detect it) into text.
Recogniser = Callable[[np.ndarray, str | None], str]


def load_manifest(audio_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (audio_dir / "manifest.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"] = audio_dir / row["file"]
    return rows


@functools.cache
def decoded(path: Path) -> np.ndarray:
    return decode(path)


def whisper_language(language: str | None) -> str | None:
    """The manifest's language as plain faster-whisper takes it (Whisper base has no Cantonese token)."""
    return {"yue": "zh", "zh-en": "zh"}.get(language, language)


def whisper_model(threads: int):
    from faster_whisper import WhisperModel

    return WhisperModel(str(embedded_whisper_dir()), device="cpu", compute_type="int8", cpu_threads=threads)


def plain(threads: int) -> Recogniser:
    model = whisper_model(threads)

    def recognise(samples: np.ndarray, language: str | None) -> str:
        pieces, _ = model.transcribe(samples, language=whisper_language(language), beam_size=BEAM_SIZE)
        return "".join(p.text for p in pieces)

    return recognise


def batched(threads: int) -> Recogniser:
    from faster_whisper import BatchedInferencePipeline

    pipeline = BatchedInferencePipeline(whisper_model(threads))

    def recognise(samples: np.ndarray, language: str | None) -> str:
        pieces, _ = pipeline.transcribe(samples, language=whisper_language(language), beam_size=BEAM_SIZE,
                                        multilingual=True)
        return "".join(p.text for p in pieces)

    return recognise


def hushscribe(threads: int) -> Recogniser:
    from hushscribe.engines.whisper import WhisperEngine

    transcriber = Transcriber(WhisperEngine(threads=threads))

    def recognise(samples: np.ndarray, language: str | None) -> str:
        return transcriber.transcribe(samples, language="zh" if language == "zh-en" else language).text

    return recognise


ROWS: dict[str, Callable[[int], Recogniser]] = {
    "plain faster-whisper (base int8, beam 5, no VAD)": plain,
    "faster-whisper batched (base int8, beam 5, its VAD, multilingual)": batched,
    "hushscribe (embedded base int8, beam 5, VAD + filters)": hushscribe,
}


def timed(recognise: Recogniser, samples: np.ndarray, language: str | None) -> tuple[str, float]:
    import ctranslate2

    ctranslate2.set_random_seed(SEED)  # temperature fallbacks sample: fix them so a rerun gives the same row
    start = time.perf_counter()
    text = recognise(samples, language)
    return text, time.perf_counter() - start


def run_row(recognise: Recogniser, rows: list[dict], long_file: tuple[np.ndarray, str]) -> dict:
    """One row: every clip told its language, then the long mixed file with none."""
    clips = {row["file"]: timed(recognise, decoded(row["path"]), row["lang"]) for row in rows}
    summary = summarise(rows, clips)
    samples, reference = long_file
    text, seconds = timed(recognise, samples, None)
    summary[LONG_MIXED] = {"error_rate": error_rate(reference, text), "seconds": seconds,
                           "x_realtime": len(samples) / SAMPLE_RATE / seconds, "text": text}
    return summary


def summarise(rows: list[dict], results: dict[str, tuple[str, float]]) -> dict:
    groups: dict[str, list] = defaultdict(list)
    for row in rows:
        groups[LANGUAGE_GROUPS.get(row["lang"], "other")].append(row)
    audio_s = sum(r["duration_s"] for r in rows)
    summary = {"x_realtime": audio_s / sum(t for _, t in results.values()), "per_language": {}, "per_clip": {}}
    for group, members in groups.items():
        refs = [m["text"] for m in members]
        hyps = [results[m["file"]][0] for m in members]
        summary["per_language"][group] = error_rate(refs, hyps)
    for row in rows:
        text, seconds = results[row["file"]]
        summary["per_clip"][row["file"]] = {
            "error_rate": error_rate(row["text"], text), "seconds": seconds, "text": text,
        }
    return summary


def table(report: dict) -> str:
    groups = sorted(next(iter(report["rows"].values()))["per_language"])
    lines = [f"| row | × realtime | {' | '.join(groups)} | {LONG_MIXED} (auto) | × realtime ({LONG_MIXED}) |",
             "|" + "---|" * (4 + len(groups))]
    for name, summary in report["rows"].items():
        cells = " | ".join(f"{100 * summary['per_language'][g]:.1f} %" for g in groups)
        long = summary[LONG_MIXED]
        lines.append(f"| {name} | {summary['x_realtime']:.1f}× | {cells} | {100 * long['error_rate']:.1f} % "
                     f"| {long['x_realtime']:.1f}× |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=ROOT.parent / "shared" / "audio")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / f"cpu-{date.today()}.json")
    args = parser.parse_args()
    rows = load_manifest(args.audio)
    long_file = long_mixed(rows)
    report = {
        "date": str(date.today()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads",
        "long_mixed_s": len(long_file[0]) / SAMPLE_RATE,
        "rows": {name: run_row(make(args.threads), rows, long_file) for name, make in ROWS.items()},
    }
    print(table(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
