"""Calibrates how the Whisper engine tells Cantonese from Mandarin when the language is identified, not given.

    python bench/cantonese.py [--audio ../shared/audio] [--threads 2]

Every shared zh and yue clip (clips over 8 s cut in halves) is decoded as Chinese with and without the Cantonese
prompt, clean, with white noise at 15 dB SNR and in telephone band (300-3400 Hz through 8 kHz), and prints each
segment's gain (mean log-probability per token with the prompt minus without) and Cantonese evidence, whether the
engine takes it for Cantonese, and the margins: the lowest gain of the Cantonese segments that show evidence and the
highest of the Mandarin ones that would pass every other test. CANTONESE_GAIN belongs between the two.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hushscribe.audio import SAMPLE_RATE, decode  # noqa: E402
from hushscribe.engines.base import RecognitionOptions  # noqa: E402
from hushscribe.engines.whisper import CANTONESE_EVIDENCE, WhisperEngine, _sounds_cantonese  # noqa: E402
from hushscribe.languages import cantonese_evidence  # noqa: E402

SNR_DB = 15.0

def conditions(samples: np.ndarray) -> dict[str, np.ndarray]:

    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(samples)).astype(np.float32)
    noise *= np.sqrt(np.mean(samples ** 2) / np.mean(noise ** 2) / 10 ** (SNR_DB / 10))
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    spectrum[(freqs < 300) | (freqs > 3400)] = 0
    phone = np.fft.irfft(spectrum, len(samples)).astype(np.float32)[::2].repeat(2)[:len(samples)]
    return {"clean": samples, "noise": samples + noise, "phone": phone}

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=ROOT.parent / "shared" / "audio")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    engine = WhisperEngine(threads=args.threads)
    options = RecognitionOptions(language="zh")
    rows = [json.loads(line) for line in (args.audio / "manifest.jsonl").read_text().splitlines() if line.strip()]
    lowest_yue, highest_zh = float("inf"), float("-inf")
    for row in (r for r in rows if r["lang"] in ("zh", "yue")):
        samples = decode(args.audio / row["file"])
        parts = [samples] if len(samples) < 8 * SAMPLE_RATE else np.array_split(samples, 2)
        for part in parts:
            for condition, audio in conditions(part).items():
                (zh, zh_score), = engine._decoded([audio], "zh", options)
                (yue, yue_score), = engine._decoded([audio], "yue", options)
                gain, evidence = yue_score - zh_score, cantonese_evidence(yue.text)
                taken = _sounds_cantonese(yue.text, zh.text, gain)
                print(f"{row['lang']:3} {condition:5} gain {gain:+.3f} evidence {evidence:+.3f} "
                      f"{'yue' if taken else 'zh '} {yue.text[:40]}", flush=True)
                if row["lang"] == "yue" and evidence > CANTONESE_EVIDENCE:
                    lowest_yue = min(lowest_yue, gain)
                if row["lang"] == "zh" and _sounds_cantonese(yue.text, zh.text, float("inf")):
                    highest_zh = max(highest_zh, gain)
    print(f"lowest gain of Cantonese with evidence: {lowest_yue:.3f}; "
          f"highest gain of Mandarin that passes every other test: {highest_zh:.3f}")

if __name__ == "__main__":
    main()
