"""Live captions: audio arrives in small chunks, text comes back while people speak.

The VAD finds utterances as they happen. While one is open, it is recognised again every `step_s` seconds (whole,
from its start); a word is committed once two successive hypotheses agree on it and on everything before it
(LocalAgreement-2), and the rest is shown as tentative. When the utterance ends (a pause of END_PAUSE_S, or
MAX_UTTERANCE_S of speech) it is recognised once more and closed. Committed text only ever grows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hushscribe import vad
from hushscribe.audio import SAMPLE_RATE
from hushscribe.engines.base import Engine, RecognitionOptions
from hushscribe.options import TranscribeOptions
from hushscribe.text import SPACELESS_LETTER_RANGES, filtered, join_texts

STEP_S = 1.0  # how often the open utterance is recognised again
END_PAUSE_S = 0.6  # a pause this long after speech ends the utterance
MAX_UTTERANCE_S = 25.0  # an utterance this long is closed at once, whatever follows (engines read ≤ 30 s)
PRE_ROLL_S = 0.5  # audio kept before speech starts, so that its first sound is heard
# A unit of agreement: one letter of a script written without spaces (Chinese, Japanese, Thai, …) with the
# punctuation after it, or a run of other non-space characters (a word and its punctuation).
_SPACELESS = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in SPACELESS_LETTER_RANGES)
_UNIT = re.compile(f"[{_SPACELESS}][^\\w\\s]*|[^\\s{_SPACELESS}]+")


@dataclass(frozen=True)
class Caption:
    """What one utterance says so far: `committed` never changes but grows; `tentative` may still change."""

    utterance: int  # 0, 1, 2, … in the order they are spoken
    start: float  # seconds from the start of the stream
    end: float
    committed: str
    tentative: str
    final: bool  # the utterance is over: `committed` is its whole text
    language: str | None = None

    @property
    def text(self) -> str:
        return self.committed + self.tentative


class LiveRecognizer:
    """One live stream: feed() it 16 kHz mono float32 chunks, get Captions back; finish() closes the last one."""

    def __init__(self, engine: Engine, options: TranscribeOptions | None = None, *, step_s: float = STEP_S) -> None:
        options = (options or TranscribeOptions()).checked()
        self.engine, self.step_s = engine, step_s
        self._options = RecognitionOptions(language=options.language, context=options.context)
        self._vad, self._script, self._fix_de = options.vad, options.script, options.fix_de
        self.language = options.language  # of the utterance recognised last
        self._audio = np.zeros(0, np.float32)  # from `_origin` on: what is not yet part of a closed utterance
        self._origin = 0  # samples since the stream began
        self._utterance = 0
        self._committed: list[str] = []  # units of the open utterance
        self._previous: list[str] = []  # its last hypothesis
        self._decoded_at = 0  # length of `_audio` when the open utterance was last recognised

    def feed(self, samples: np.ndarray) -> list[Caption]:
        self._audio = np.concatenate([self._audio, np.asarray(samples, np.float32)])
        if len(self._audio) - self._decoded_at < self.step_s * SAMPLE_RATE:
            return []
        return self._step(final=False)

    def finish(self) -> list[Caption]:
        """The open utterance closed (the stream is over)."""
        return self._step(final=True)

    def _step(self, *, final: bool) -> list[Caption]:
        captions: list[Caption] = []
        while True:
            self._decoded_at = len(self._audio)
            spans = vad.speech_spans(vad.activity(self._audio, self._vad), len(self._audio), self._vad)
            if not spans:
                self._drop(max(0, len(self._audio) - int(PRE_ROLL_S * SAMPLE_RATE)))
                return captions
            start, end = spans[0].start, spans[0].end
            for before, after in zip(spans, spans[1:]):
                if (after.start - before.end) / SAMPLE_RATE >= END_PAUSE_S:
                    break  # another utterance follows this one
                end = after.end
            more = end < spans[-1].end
            end = min(end, start + int(MAX_UTTERANCE_S * SAMPLE_RATE))
            closes = (final or more or (len(self._audio) - end) / SAMPLE_RATE >= END_PAUSE_S
                      or (end - start) / SAMPLE_RATE >= MAX_UTTERANCE_S)
            captions.append(self._recognised(start, end, closes))
            if not closes:
                return captions
            self._drop(end)
            if not (final or more):
                return captions

    def _recognised(self, start: int, end: int, closes: bool) -> Caption:
        """The open utterance (`start`-`end` of the buffer) recognised again; closed when `closes`."""
        recognition = self.engine.recognize([self._audio[start:end]], self._options)[0]
        self.language = recognition.language or self._options.language
        units = _units(filtered(recognition.text, self.language, script=self._script, fix_de_too=self._fix_de)[0])
        agreed = len(units) if closes else max(_agreed(self._previous, units), len(self._committed))
        self._committed += units[len(self._committed):agreed]
        self._previous = units
        heard = _joined(units)  # the tentative rest: this hypothesis after as many units as are committed
        caption = Caption(self._utterance, (self._origin + start) / SAMPLE_RATE, (self._origin + end) / SAMPLE_RATE,
                          committed=_joined(self._committed),
                          tentative=heard[len(_joined(units[:len(self._committed)])):], final=closes,
                          language=self.language)
        if closes:
            self._utterance += 1
            self._committed, self._previous = [], []
        return caption

    def _drop(self, samples: int) -> None:
        self._audio = self._audio[samples:]
        self._origin += samples
        self._decoded_at = max(0, self._decoded_at - samples)


def _units(text: str) -> list[str]:
    return _UNIT.findall(text)


def _joined(units: list[str]) -> str:
    """Units as text: spaced where the script is (English), not between Chinese characters."""
    return join_texts([(unit, None) for unit in units])


def _key(unit: str) -> str:
    return re.sub(r"[^\w]", "", unit).casefold()


def _agreed(previous: list[str], current: list[str]) -> int:
    """How many units two hypotheses share from their start (compared without case or punctuation)."""
    count = 0
    for a, b in zip(previous, current):
        if _key(a) != _key(b):
            break
        count += 1
    return count
