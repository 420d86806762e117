"""Live captions: audio arrives in small chunks, text comes back while people speak.

Silero reads each chunk once as it arrives (vad.SileroStream), so a chunk costs the same however long the open
utterance is. An utterance opens when speech starts (a Caption with no text yet says so) and closes as soon as
`end_pause_s` of silence follows its speech, or at MAX_UTTERANCE_S; it is recognised once more then, with
`pre_roll_s` of audio before its speech and the VAD's padding after it. While it is open it is recognised again
every `step_s` seconds (whole, from its start); a word is committed once two successive hypotheses agree on it
and on everything before it (LocalAgreement-2), and the rest is shown as tentative. Committed text only grows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from hushscribe import vad
from hushscribe.audio import SAMPLE_RATE
from hushscribe.engines.base import Engine, RecognitionOptions
from hushscribe.options import TranscribeOptions
from hushscribe.text import SPACELESS_LETTER_RANGES, filtered, join_texts

FRAME = vad.FRAME  # the VAD's step: audio is held, measured and dropped a whole frame at a time
STEP_S = 1.0  # how often the open utterance is recognised again
END_PAUSE_S = 0.5  # this much silence after speech ends the utterance (OpenAI Realtime's default too)
MAX_UTTERANCE_S = 25.0  # an utterance this long is closed at once, whatever follows (engines read ≤ 30 s)
PRE_ROLL_S = 0.5  # audio kept before speech starts, so that its first sound is heard
# Quieter frames are digital silence (a microphone starting up, a gap filled with zeros), not the room's background:
# a noise floor taken from them would make every sound loud. A frame's activity is final, so this would last.
DIGITAL_SILENCE_DB = -90.0
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

    def __init__(self, engine: Engine, options: TranscribeOptions | None = None, *, step_s: float = STEP_S,
                 end_pause_s: float = END_PAUSE_S, pre_roll_s: float = PRE_ROLL_S) -> None:
        options = (options or TranscribeOptions()).checked()
        self.engine, self.step_s = engine, step_s
        self._options = RecognitionOptions(language=options.language, context=options.context)
        self._vad, self._script, self._fix_de = options.vad, options.script, options.fix_de
        self._end_pause, self._pre_roll, self._pad = (_frames(end_pause_s), _frames(pre_roll_s),
                                                      _frames(options.vad.pad_s))
        # kept while nobody speaks: the pre-roll of any activity that may still turn out to be speech
        self._idle = self._pre_roll + _frames(options.vad.min_silence_s + options.vad.min_speech_s)
        self.language = options.language  # of the utterance recognised last
        self._silero = vad.SileroStream()
        self._audio = np.zeros(0, np.float32)  # from `_origin` on: what is not yet part of a closed utterance
        self._active = np.zeros(0, bool)  # for each whole frame of `_audio`: speech or loud (vad.active_frames)
        self._levels = np.zeros(0)  # and its level in dBFS
        self._origin = 0  # samples since the stream began: a whole number of frames
        self._utterance = 0
        self._open = False  # the utterance `_utterance` has started (its first Caption is out)
        self._committed: list[str] = []  # units of the open utterance
        self._previous: list[str] = []  # its last hypothesis
        self._decoded_at = 0  # length of `_audio` when the open utterance was last recognised (or opened)

    def feed(self, samples: np.ndarray) -> list[Caption]:
        samples = np.asarray(samples, np.float32)
        self._audio = np.concatenate([self._audio, samples])
        self._measure(self._silero.feed(samples))
        return self._captions(final=False)

    def finish(self) -> list[Caption]:
        """The open utterance closed (the stream is over)."""
        self._measure(self._silero.flush())
        return self._captions(final=True)

    def _measure(self, probs: np.ndarray) -> None:
        """The frames just completed (Silero's `probs` for them) measured: their levels, and whether they are active,
        decided once, against the noise floor of the audio held now."""
        if len(probs) == 0:
            return
        levels = vad.frame_levels_db(self._audio[len(self._active) * FRAME:])[:len(probs)]
        self._levels = np.concatenate([self._levels, levels])
        heard = self._levels[self._levels > DIGITAL_SILENCE_DB]
        floor = vad.noise_floor_db(heard if len(heard) else self._levels)
        self._active = np.concatenate([self._active, vad.active_frames(probs, levels, self._vad, floor)])

    def _captions(self, *, final: bool) -> list[Caption]:
        captions: list[Caption] = []
        while runs := vad.speech_runs(self._active, self._vad):
            start = max(0, runs[0][0] - self._pre_roll)
            end, closes = self._end(runs)
            longest = start + _frames(MAX_UTTERANCE_S)
            closes, end = closes or final or end >= longest, min(end, longest)
            if not self._open:
                self._open, self._decoded_at = True, len(self._audio)
                captions.append(self._caption(start, end, "", "", final=False))
            if not closes:
                if len(self._audio) - self._decoded_at >= self.step_s * SAMPLE_RATE:
                    captions.append(self._recognised(start, end, closes=False))
                return captions
            captions.append(self._recognised(start, end, closes=True))
            self._drop(end)
        self._drop(max(0, len(self._active) - self._idle))
        return captions

    def _end(self, runs: list[tuple[int, int]]) -> tuple[int, bool]:
        """Where the open utterance ends (a frame, padded) and whether it is over: the first of its speech runs that
        `end_pause_s` of silence follows ends it. Blips too short to be speech break a silence but are not speech."""
        active = np.flatnonzero(self._active)
        for (_, speech_end), (following, _) in zip(runs, runs[1:] + [(len(self._active), 0)]):
            sounds = active[(active >= speech_end - 1) & (active < following)]  # its last frame, then any blips
            if np.any(np.diff(np.append(sounds, following)) > self._end_pause):
                return min(following, speech_end + self._pad), True
        return min(len(self._active), runs[-1][1] + self._pad), False

    def _recognised(self, start: int, end: int, closes: bool) -> Caption:
        """The open utterance (frames `start`-`end` of the buffer) recognised again; closed when `closes`."""
        audio = self._audio[start * FRAME:end * FRAME]
        recognition = self.engine.recognize([audio], self._options)[0]
        self._decoded_at = len(self._audio)
        self.language = recognition.language or self._options.language
        units = _units(filtered(recognition.text, self.language, script=self._script, fix_de_too=self._fix_de)[0])
        agreed = len(units) if closes else max(_agreed(self._previous, units), len(self._committed))
        self._committed += units[len(self._committed):agreed]
        self._previous = units
        heard = _joined(units)  # the tentative rest: this hypothesis after as many units as are committed
        tentative = heard[len(_joined(units[:len(self._committed)])):]
        caption = self._caption(start, end, _joined(self._committed), tentative, final=closes)
        if closes:
            self._utterance += 1
            self._open, self._committed, self._previous = False, [], []
        return caption

    def _caption(self, start: int, end: int, committed: str, tentative: str, *, final: bool) -> Caption:
        seconds = [(self._origin + min(frame * FRAME, len(self._audio))) / SAMPLE_RATE for frame in (start, end)]
        return Caption(self._utterance, *seconds, committed=committed, tentative=tentative, final=final,
                       language=self.language)

    def _drop(self, frames: int) -> None:
        self._audio = self._audio[frames * FRAME:]
        self._active, self._levels = self._active[frames:], self._levels[frames:]
        self._origin += frames * FRAME
        self._decoded_at = max(0, self._decoded_at - frames * FRAME)


def _frames(seconds: float) -> int:
    """Whole frames that hold at least `seconds`."""
    return math.ceil(seconds * SAMPLE_RATE / FRAME)


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
