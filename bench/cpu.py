"""CPU benchmark: hushscribe's embedded Whisper pipeline vs plain faster-whisper on the same weights.

    python bench/cpu.py [--audio ../shared/audio] [--threads 2] [--out bench/results/cpu-DATE.json]

Both rows use the embedded Whisper base weights, int8, beam 5, the same thread count and the
language from the manifest (Cantonese decoded as Chinese, since Whisper base has no Cantonese
token). Plain faster-whisper runs its defaults on the whole clip with no VAD (its temperature
fallback samples at random, so its hard clips vary from run to run; the seed is fixed here);
hushscribe runs its full pipeline (VAD segments, prompts, greedy-beam decoding, text filters). Scores: CER for zh/yue, WER for others,
mixed error rate for zh-en, after hushscribe.scoring's normalisation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

from hushscribe import Transcriber
from hushscribe.audio import decode
from hushscribe.models import embedded_whisper_dir
from hushscribe.scoring import error_rate

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE_GROUPS = {"zh": "zh", "yue": "yue", "en": "en", "zh-en": "zh-en"}  # the rest are "other"


def load_manifest(audio_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (audio_dir / "manifest.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"] = audio_dir / row["file"]
    return rows


def run_plain(rows: list[dict], threads: int, seed: int = 0) -> dict[str, tuple[str, float]]:
    import ctranslate2
    from faster_whisper import WhisperModel

    model = WhisperModel(str(embedded_whisper_dir()), device="cpu", compute_type="int8", cpu_threads=threads)
    out = {}
    for row in rows:
        samples = decode(row["path"])
        language = {"yue": "zh", "zh-en": "zh"}.get(row["lang"], row["lang"])
        ctranslate2.set_random_seed(seed)  # its temperature fallback samples: fix it so a rerun gives the same row
        start = time.perf_counter()
        pieces, _ = model.transcribe(samples, language=language, beam_size=5)
        text = "".join(p.text for p in pieces)
        out[row["file"]] = (text, time.perf_counter() - start)
    return out


def run_hushscribe(rows: list[dict], threads: int) -> dict[str, tuple[str, float]]:
    from hushscribe.engines.whisper import WhisperEngine

    transcriber = Transcriber(WhisperEngine(threads=threads))
    out = {}
    for row in rows:
        language = "zh" if row["lang"] == "zh-en" else row["lang"]
        start = time.perf_counter()
        transcript = transcriber.transcribe(row["path"], language=language)
        out[row["file"]] = (transcript.text, time.perf_counter() - start)
    return out


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=ROOT.parent / "shared" / "audio")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / f"cpu-{date.today()}.json")
    args = parser.parse_args()
    rows = load_manifest(args.audio)
    report = {
        "date": str(date.today()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads",
        "rows": {
            "plain faster-whisper (base int8, beam 5, no VAD)": summarise(rows, run_plain(rows, args.threads)),
            "hushscribe (embedded base int8, beam 5, VAD + filters)": summarise(rows, run_hushscribe(rows, args.threads)),
        },
    }
    groups = sorted(next(iter(report["rows"].values()))["per_language"])
    header = f"| row | × realtime | {' | '.join(groups)} |"
    print(header)
    print("|" + "---|" * (2 + len(groups)))
    for name, summary in report["rows"].items():
        cells = " | ".join(f"{100 * summary['per_language'][g]:.1f} %" for g in groups)
        print(f"| {name} | {summary['x_realtime']:.1f}× | {cells} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
