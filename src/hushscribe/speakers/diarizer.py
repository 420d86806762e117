"""The Diarizer: speaker embeddings of one recording, gathered window by window as it streams, then turned into
speaker turns.

Speech spans (Silero, as for recognition, with little padding) are cut into 1.6 s windows every STEP_FRAMES; a span
shorter than that gives one window of its own length (down to MIN_WINDOW_FRAMES), so a short reply between two
pauses still gets a voice of its own. Windows never cross a pause. Each window is brought to WINDOW_LEVEL_DBFS before
it is embedded: the encoder reads linear mel power and was trained on speech at that level, so a quiet far-field
recording (or a voice far from the microphone) otherwise gives embeddings that differ by loudness, not voice
(measured on the quiet AMI excerpt: the two speakers' windows 0.74 alike on average, 0.61 once levelled)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from hushscribe import vad
from hushscribe.speakers.clustering import cluster_centres, steady_windows
from hushscribe.speakers.encoder import SpeakerEncoder, TorchSpeakerEncoder, default_encoder
from hushscribe.speakers.features import HOP, mel_power
from hushscribe.speakers.turns import Turn, frame_turns

WINDOW_FRAMES = 160  # 1.6 s, the encoder's training length
STEP_FRAMES = 40  # a window every 0.4 s
MIN_WINDOW_FRAMES = 40  # speech shorter than 0.4 s gets no window of its own; its neighbours label it
PAD_S = 0.1  # kept around Silero's speech for embedding (recognition keeps more)
WINDOW_LEVEL_DBFS = -30.0  # RMS each window is brought to: Resemblyzer's preprocessing normalises utterances to it


def speech_spans(active: np.ndarray, n_samples: int, options: vad.VadOptions = vad.VadOptions()) -> list[vad.Span]:
    """Speech to embed, from the VAD's active frames: as for recognition, with less padding around it."""
    return vad.speech_spans(active, n_samples, replace(options, pad_s=PAD_S))


def window_starts(n_frames: int) -> list[tuple[int, int]]:
    """(first frame, frame count) of the windows over a stretch of `n_frames` speech frames: WINDOW_FRAMES long
    every STEP_FRAMES, the last one ending at the stretch's end; one shorter window for a short stretch."""
    if n_frames < MIN_WINDOW_FRAMES:
        return []
    if n_frames <= WINDOW_FRAMES:
        return [(0, n_frames - n_frames % 10)]  # lengths in tens of frames, so that short windows batch together
    starts = list(range(0, n_frames - WINDOW_FRAMES + 1, STEP_FRAMES))
    if starts[-1] != n_frames - WINDOW_FRAMES:
        starts.append(n_frames - WINDOW_FRAMES)
    return [(s, WINDOW_FRAMES) for s in starts]


def levelled(mel: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """A window's mel power as if its samples had an RMS of WINDOW_LEVEL_DBFS (power scales with the square)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if len(samples) else 0.0
    return mel * np.float32((10 ** (WINDOW_LEVEL_DBFS / 20) / max(rms, 1e-5)) ** 2)


class Diarizer:
    """Collects speaker embeddings window by window as a recording streams past (a few kB per minute of speech,
    never the audio), then clusters them all at once in `turns()`."""

    def __init__(self, speakers: int | str = "auto", encoder: SpeakerEncoder | TorchSpeakerEncoder | None = None,
                 device: str = "cpu") -> None:
        self.speakers = speakers
        self._encoder, self._device = encoder, device
        self._spans: list[tuple[int, int]] = []  # speech, in frames from the start of the recording
        self._windows: list[tuple[int, int]] = []  # (first frame, end frame)
        self._embeddings: list[np.ndarray] = []

    @property
    def encoder(self) -> SpeakerEncoder | TorchSpeakerEncoder:
        if self._encoder is None:
            self._encoder = default_encoder(self._device)
        return self._encoder

    def add(self, samples: np.ndarray, active: np.ndarray, offset: int = 0,
            options: vad.VadOptions = vad.VadOptions()) -> None:
        """Embed the speech of a piece of the recording that starts `offset` samples into it, given the VAD's
        active frames of the piece (vad.activity)."""
        by_length: dict[int, list[tuple[int, np.ndarray]]] = {}
        for span in speech_spans(active, len(samples), options):
            speech = samples[span.start:span.end]
            mel = mel_power(speech)
            first = round((offset + span.start) / HOP)
            self._spans.append((first, first + len(mel)))
            for start, count in window_starts(len(mel)):
                window = levelled(mel[start:start + count], speech[start * HOP:(start + count) * HOP])
                by_length.setdefault(count, []).append((first + start, window))
        for count, windows in by_length.items():
            self._windows += [(start, start + count) for start, _ in windows]
            self._embeddings.append(self.encoder.embed(np.stack([mel for _, mel in windows])))

    def turns(self) -> list[Turn]:
        """Speaker turns over the speech seen so far, in time order."""
        if not self._windows:
            return []
        embeddings = np.concatenate(self._embeddings)
        windows = np.array(self._windows)
        count = None if self.speakers == "auto" else int(self.speakers)
        centres = cluster_centres(embeddings, count, steady_windows(windows, embeddings))
        return frame_turns(self._spans, windows, embeddings @ centres.T)


def diarize(samples: np.ndarray, speakers: int | str = "auto", options: vad.VadOptions = vad.VadOptions(),
            encoder: SpeakerEncoder | None = None) -> list[Turn]:
    """Speaker turns of a whole 16 kHz mono recording held in memory (the transcriber streams instead)."""
    diarizer = Diarizer(speakers, encoder)
    diarizer.add(samples, vad.activity(samples, options), options=options)
    return diarizer.turns()
