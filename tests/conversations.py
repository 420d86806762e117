"""Conversations built from the shared clips of different people, with the truth known by construction."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from hushscribe import speakers, vad
from hushscribe.audio import SAMPLE_RATE, decode

# One clip per person (each a single voice; the multi-speaker clips and a second clip of one voice are left out),
# across languages and recording conditions.
VOICES = (
    "librispeech_1995", "osr_us_000_0034", "jfk_inaugural", "deepspeech_new_home",
    "leopard_test_es", "leopard_test_fr", "leopard_test_it", "leopard_test_pt",
    "aishell1_BAC009", "cosyvoice_pr1212_laoxu", "cosyvoice_pr1212_child", "f5tts_basic_ref_zh_taiyi",
    "funasr_asr_example_cn_en_lecture", "storytelling_gd0046360", "storytelling_gd1002659",
    "commentary_xg0011541_258290", "vlog_gd0008289", "entertainment_xq0016523",
)


@functools.cache
def voice(path: Path) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A clip's samples and its speech stretches (sample offsets) as the diarizer's VAD sees them."""
    samples = decode(path)
    spans = speakers.speech_spans(vad.activity(samples), len(samples))
    return samples, [(s.start, s.end) for s in spans]


def conversation(paths: list[Path], turns: int, *, pause_s: tuple[float, float] = (0.0, 0.0),
                 short_every: int = 0, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """Speakers taking `turns` turns in a shuffled rota (no one speaks twice in a row), each turn 2-5 s of one
    clip's speech (every `short_every`-th turn 0.8-1.8 s), separated by pauses drawn from `pause_s`.
    Returns the samples and the reference turns (start, end, "P<i>") over the speech they hold."""
    rng = np.random.default_rng(seed)
    pieces, reference, at = [], [], 0
    previous = -1
    for t in range(turns):
        who = int(rng.choice([i for i in range(len(paths)) if i != previous or len(paths) == 1]))
        previous = who
        samples, spans = voice(paths[who])
        wanted = rng.uniform(0.8, 1.8) if short_every and t % short_every == short_every - 1 else rng.uniform(2, 5)
        piece, speech = _speech_piece(samples, spans, int(wanted * SAMPLE_RATE), rng)
        gap = np.zeros(int(rng.uniform(*pause_s) * SAMPLE_RATE), np.float32)
        for a, b in speech:
            reference.append(((at + a) / SAMPLE_RATE, (at + b) / SAMPLE_RATE, f"P{who}"))
        pieces += [piece, gap]
        at += len(piece) + len(gap)
    return np.concatenate(pieces), _merged(reference)


LONG_MIXED_LANGUAGES = ("zh", "yue", "en")
LONG_MIXED_GAP_S = 1.0


def long_mixed(manifest: list[dict]) -> tuple[np.ndarray, str]:
    """The long mixed file: every zh, yue and en clip in manifest order, joined with 1 s of silence between clips into
    one 16 kHz mono recording (about 274 s of changing language), and its reference (the clips' references in order)."""
    rows = [row for row in manifest if row["lang"] in LONG_MIXED_LANGUAGES]
    gap = np.zeros(int(LONG_MIXED_GAP_S * SAMPLE_RATE), np.float32)
    pieces = [piece for row in rows for piece in (gap, decode(row["path"]))][1:]
    return np.concatenate(pieces), " ".join(row["text"] for row in rows)


def _speech_piece(samples, spans, length, rng) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """About `length` samples of one clip that start and end in speech, and where the speech lies in them."""
    starts = [s for a, b in spans for s in range(a, max(a + 1, b - length // 2), SAMPLE_RATE // 10)]
    start = int(rng.choice(starts))
    stop = min(len(samples), start + length)
    speech = [(max(a, start) - start, min(b, stop) - start) for a, b in spans if a < stop and b > start]
    stop = start + speech[-1][1]
    return samples[start:stop], speech


def _merged(turns):
    out = []
    for start, end, who in turns:
        if out and out[-1][2] == who and start - out[-1][1] < 1e-6:
            out[-1] = (out[-1][0], end, who)
        else:
            out.append((start, end, who))
    return out


def two_voices_file(manifest: list[dict], path: Path) -> list[tuple[float, float, str]]:
    """Two English speakers taking 8 turns with short pauses, written to `path` (WAV); the reference turns."""
    from .bad_inputs import write_wav

    paths = [next(row["path"] for row in manifest if fragment in row["file"])
             for fragment in ("librispeech_1995", "osr_us_000_0034")]
    samples, reference = conversation(paths, 8, pause_s=(0.3, 0.8), seed=3)
    write_wav(path, samples)
    return reference


def segment_turns(segments: list[dict]) -> list[tuple[float, float, str]]:
    """Hypothesis turns from JSON segments (with `speaker`), for the diarization error rate."""
    return [(s["start"], s["end"], s["speaker"]) for s in segments]
