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
