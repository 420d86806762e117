"""The protocol every engine implements: load once, recognise batches of ≤ 30 s segments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hushscribe.transcript import Word


@dataclass(frozen=True)
class RecognitionOptions:
    language: str | None = None  # ISO code to force; None detects it
    context: str | None = None  # names and terms that help recognition; never part of the output
    word_timestamps: bool = False


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

    def supports_language(self, language: str) -> bool: ...

    def detect_language(self, audio: np.ndarray) -> str | None:
        """The language spoken in `audio` (up to 30 s of speech), or None if the engine cannot tell."""
        ...

    def recognize(self, segments: list[np.ndarray], options: RecognitionOptions) -> list[Recognition]:
        """One Recognition per segment (16 kHz mono float32, ≤ 30 s each), in order."""
        ...
