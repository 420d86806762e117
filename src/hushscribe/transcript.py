"""What recognition produces: segments with times, text and flags, gathered in a Transcript."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Flags a segment may carry (strings so they read well in JSON).
FLAG_TOKEN_CAP = "hit_token_cap"  # generation stopped at max_new_tokens: text may be cut short
FLAG_REPETITION = "repetition_repaired"  # a repetition loop was detected and cut


@dataclass
class Word:
    start: float
    end: float
    text: str
    probability: float | None = None


@dataclass
class Segment:
    start: float  # seconds from the start of the recording
    end: float
    text: str
    language: str | None = None  # ISO code, e.g. "zh", "yue", "en"
    flags: list[str] = field(default_factory=list)
    words: list[Word] | None = None


@dataclass
class Transcript:
    source: str  # file name (or "<array>") the transcript belongs to
    duration: float  # seconds of audio
    segments: list[Segment]
    language: str | None = None  # the dominant language
    engine: str = ""
    model: str = ""
    processing_s: float = 0.0

    @property
    def text(self) -> str:
        """All segment texts joined with the spacing their language wants."""
        from hushscribe.text import join_texts

        return join_texts([(s.text, s.language or self.language) for s in self.segments])

    @property
    def x_realtime(self) -> float:
        return self.duration / self.processing_s if self.processing_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "duration": round(self.duration, 3),
            "language": self.language,
            "engine": self.engine,
            "model": self.model,
            "processing_s": round(self.processing_s, 3),
            "text": self.text,
            "segments": [asdict(s) for s in self.segments],
        }


def paragraphs(segments: list[Segment], language: str | None = None, *, pause_s: float = 2.0,
               max_chars: int = 400) -> list[tuple[float, str]]:
    """Group segments into paragraphs: a new one after a pause longer than `pause_s` or once
    a paragraph holds `max_chars` characters. Returns (start seconds, text) pairs."""
    from hushscribe.text import join_texts

    groups: list[list[Segment]] = []
    for seg in segments:
        if not seg.text:
            continue
        if groups:
            last = groups[-1]
            size = sum(len(s.text) for s in last)
            if seg.start - last[-1].end <= pause_s and size + len(seg.text) <= max_chars:
                last.append(seg)
                continue
        groups.append([seg])
    return [(g[0].start, join_texts([(s.text, s.language or language) for s in g])) for g in groups]
