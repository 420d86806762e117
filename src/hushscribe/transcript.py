"""What recognition produces: segments with times, text and flags, gathered in a Transcript."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Flags a segment may carry (strings so they read well in JSON).
FLAG_TOKEN_CAP = "hit_token_cap"  # generation stopped at max_new_tokens: text may be cut short
FLAG_REPETITION = "repetition_repaired"  # a repetition loop was detected and cut
# What each flag means to the person reading the transcript (the CLI warns with these)
FLAG_WARNINGS = {
    FLAG_TOKEN_CAP: "the text reached the length limit and may be cut short; listen there to check it",
    FLAG_REPETITION: "a repetition loop was repaired; listen there to check the text",
}


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
    speaker: str | None = None  # "S1", "S2", … (first to speak is S1) when speakers were asked for


@dataclass
class Transcript:
    source: str  # file name (or "<array>") the transcript belongs to
    duration: float  # seconds of audio
    segments: list[Segment]
    language: str | None = None  # the dominant language
    engine: str = ""
    model: str = ""
    processing_s: float = 0.0
    # speaker id → the name every output shows ("S1" → "Speaker 1" until renamed); empty when speakers were off
    speakers: dict[str, str] = field(default_factory=dict)

    def speaker_name(self, speaker: str | None) -> str | None:
        """The name outputs show for a speaker id ("S1" → "Speaker 1" or the name given); None for none."""
        return self.speakers.get(speaker, speaker) if speaker else None

    def rename_speakers(self, names: dict[str, str] | list[str]) -> None:
        """Give speakers names: {"S1": "Ana", …}, or a list in order of first appearance (["Ana", "Ben"]).
        HushError for a speaker the transcript does not have or an empty name."""
        from hushscribe.errors import HushError

        if not isinstance(names, dict):
            if len(names) > len(self.speakers):
                raise HushError(f"{len(names)} names given, but only {len(self.speakers)} speakers were found")
            names = dict(zip(self.speakers, names))
        for speaker, name in names.items():
            if speaker not in self.speakers:
                known = ", ".join(self.speakers) or "none"
                raise HushError(f"there is no speaker {speaker!r} to rename (speakers: {known})")
            if not name.strip() or "\n" in name:
                raise HushError(f"a speaker name must be one line of text, not {name!r}")
        self.speakers.update({speaker: name.strip() for speaker, name in names.items()})

    @property
    def text(self) -> str:
        """All segment texts joined with the spacing their language wants."""
        from hushscribe.text import join_texts

        return join_texts([(s.text, s.language or self.language) for s in self.segments])

    @property
    def languages(self) -> list[str]:
        """Every language heard, the one with the most speech first."""
        return languages_by_time(self.segments)

    @property
    def x_realtime(self) -> float:
        return self.duration / self.processing_s if self.processing_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "duration": round(self.duration, 3),
            "language": self.language,
            "languages": self.languages,
            "engine": self.engine,
            "model": self.model,
            "processing_s": round(self.processing_s, 3),
            "text": self.text,
            **({"speakers": dict(self.speakers)} if self.speakers else {}),
            "segments": [self._segment_dict(s) for s in self.segments],
        }

    def _segment_dict(self, segment: Segment) -> dict:
        fields = asdict(segment)
        if segment.speaker is None:
            del fields["speaker"]  # output without speakers stays as it was
        else:
            fields["speaker_name"] = self.speaker_name(segment.speaker)
        return fields


def languages_by_time(segments: list[Segment]) -> list[str]:
    """The languages of `segments`, the one spoken longest first."""
    seconds: dict[str, float] = {}
    for segment in segments:
        if segment.language:
            seconds[segment.language] = seconds.get(segment.language, 0.0) + segment.end - segment.start
    return sorted(seconds, key=seconds.get, reverse=True)


@dataclass(frozen=True)
class Paragraph:
    start: float  # seconds
    text: str
    speaker: str | None = None  # the speaker id of every segment in it


def paragraphs(segments: list[Segment], language: str | None = None, *, pause_s: float = 2.0,
               max_chars: int = 400) -> list[Paragraph]:
    """Group segments into paragraphs: a new one when the speaker changes, after a pause longer than `pause_s` or
    once a paragraph holds `max_chars` characters."""
    from hushscribe.text import join_texts

    groups: list[list[Segment]] = []
    for seg in segments:
        if not seg.text:
            continue
        if groups:
            last = groups[-1]
            size = sum(len(s.text) for s in last)
            if (seg.start - last[-1].end <= pause_s and size + len(seg.text) <= max_chars
                    and seg.speaker == last[-1].speaker):
                last.append(seg)
                continue
        groups.append([seg])
    return [Paragraph(g[0].start, join_texts([(s.text, s.language or language) for s in g]), g[0].speaker)
            for g in groups]
