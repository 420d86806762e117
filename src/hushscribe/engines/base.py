"""The protocol every engine implements: load once, recognise batches of ≤ 30 s segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hushscribe.transcript import Word


@dataclass(frozen=True)
class RecognitionOptions:
    language: str | None = None  # ISO code to force; None detects it
    # the language was identified, not asked for: an engine may refine it (Whisper finds Cantonese within zh)
    identified: bool = False
    context: str | None = None  # names and terms that help recognition; never part of the output
    word_timestamps: bool = False
    # the plain decode of these segments looped: decode them by other means (Whisper samples); an engine without
    # another means decodes them as always
    sampled: bool = False


@dataclass
class Recognition:
    text: str
    language: str | None
    flags: list[str] = field(default_factory=list)
    words: list[Word] | None = None  # times relative to the start of the segment


class Engine(Protocol):
    name: str  # "whisper", "qwen"
    model_name: str
    batch_size: int  # segments the transcriber hands over at once
    device: object  # where it runs ("cpu", "cuda", "cuda:1", or a torch.device): speaker labels run there too
    # how it times words: "recognition" (recognize() returns them when asked), "aligner" (align() times a
    # segment's final text), or None (it cannot)
    word_timing: str | None
    # optional: True where segments recognised side by side cost no more than the longest (a GPU), so that the
    # transcriber cuts a lone long segment into pieces to fill the batch
    side_by_side: bool

    def supports_language(self, language: str) -> bool: ...

    def language_probabilities(self, segments: list[np.ndarray]) -> list[dict[str, float]] | None:
        """For each segment (≤ 30 s), the probability of each language it may be in (ISO codes); None from an
        engine whose model names each segment's language itself as it recognises it (Qwen3-ASR)."""
        ...

    def recognize(self, segments: list[np.ndarray], options: RecognitionOptions) -> list[Recognition]:
        """One Recognition per segment (16 kHz mono float32, ≤ 30 s each), in order."""
        ...

    def align(self, segments: list[np.ndarray], texts: list[tuple[str, str | None]]) -> list[list[Word] | None]:
        """Only where word_timing is "aligner": for each segment and its final (text, language), its words with
        times relative to the segment (None where it has nothing to time)."""
        ...
