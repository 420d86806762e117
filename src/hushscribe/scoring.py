"""Scoring transcripts against references: one error rate for every script.

Text is normalised (OpenCC to Simplified, lower case, punctuation removed) and split into tokens:
each CJK character is a token and so is each run of other letters or digits. The error rate over
those tokens is CER for Chinese and Cantonese, WER for English and other spaced languages, and the
mixed error rate for zh-en code-switching. Needs `jiwer` (the `test` extra).
"""

from __future__ import annotations

import re
import unicodedata

from hushscribe.text import convert_script

# CJK ideographs, kana and Hangul syllables each count as one token
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")


def tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    text = convert_script(text, "zh", "simplified").lower()
    text = text.replace("’", "'").replace("'", "")  # "I'm" and "Im" are the same word
    return _TOKEN.findall(text)


def error_rate(references: list[str] | str, hypotheses: list[str] | str) -> float:
    """Token error rate over all pairs together (substitutions + deletions + insertions) / reference tokens."""
    import jiwer

    if isinstance(references, str):
        references, hypotheses = [references], [hypotheses]
    refs = [" ".join(tokens(r)) for r in references]
    hyps = [" ".join(tokens(h)) for h in hypotheses]
    return jiwer.wer(refs, hyps) if any(hyps) else 1.0


def diarization_error_rate(reference: list[tuple[float, float, str]], hypothesis: list[tuple[float, float, str]],
                           *, collar: float = 0.25, step: float = 0.01) -> float:
    """(missed speech + false alarm + speaker confusion) / scored reference speech, as the field scores it (NIST's
    md-eval): on a `step`-second grid, only inside the reference's labelled span (its first start to its last end),
    time within `collar` seconds of a reference turn's start or end not scored, overlapped speech counted once per
    speaker, under the best one-to-one mapping of hypothesis speakers to reference speakers. Turns are (start, end,
    speaker) and may overlap in either list. In each frame with R reference and H hypothesis speakers, of whom M are
    mapped onto each other, the error is max(R, H) - M (the missed, false alarm and confused speakers together).
    Needs no jiwer; the mapping is exact (see _best_matching), so keep speakers to a dozen."""
    import numpy as np

    end = max([e for _, e, _ in reference + hypothesis], default=0.0)
    n = int(np.ceil(end / step)) + 1

    def frames(turns) -> np.ndarray:
        """(frames, speakers) activity."""
        names = sorted({s for _, _, s in turns})
        active = np.zeros((n, len(names)), bool)
        for start, stop, speaker in turns:
            active[round(start / step):round(stop / step), names.index(speaker)] = True
        return active

    ref, hyp = frames(reference), frames(hypothesis)
    scored = np.zeros(n, bool)
    if reference:
        scored[round(min(s for s, _, _ in reference) / step):round(max(e for _, e, _ in reference) / step)] = True
    c = round(collar / step)
    for start, stop, _ in reference:
        for edge in (round(start / step), round(stop / step)):
            scored[max(0, edge - c):edge + c] = False
    ref, hyp = ref[scored], hyp[scored]
    speech = int(ref.sum())
    if speech == 0:
        return 0.0 if not hyp.any() else 1.0
    matched = _best_matching(ref.T.astype(np.int64) @ hyp.astype(np.int64))
    return (int(np.maximum(ref.sum(axis=1), hyp.sum(axis=1)).sum()) - matched) / speech


def read_rttm(path) -> list[tuple[float, float, str]]:
    """The (start, end, speaker) turns of an RTTM file (`SPEAKER file 1 start duration <NA> <NA> speaker ...`)."""
    from pathlib import Path

    turns = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, duration = float(fields[3]), float(fields[4])
            turns.append((start, start + duration, fields[7]))
    return turns


def _best_matching(overlap) -> int:
    """The largest total of `overlap[r, h]` over one-to-one pairings of rows and columns (exact, by dynamic
    programming over the sets of columns used: fine for the dozen or so speakers a test has)."""
    rows, cols = overlap.shape
    if rows > cols:
        overlap, rows, cols = overlap.T, cols, rows
    best = {0: 0}  # columns used by the first rows → best total
    for r in range(rows):
        nxt: dict[int, int] = {}
        for used, total in best.items():
            for c in range(cols):
                if not used >> c & 1:
                    key, value = used | 1 << c, total + int(overlap[r, c])
                    if value > nxt.get(key, -1):
                        nxt[key] = value
        best = nxt
    return max(best.values(), default=0)
