"""Speech spans from Silero VAD, merged into segments of at most 30 s that are cut inside silences.

The Silero weights are the ONNX file that ships inside the faster-whisper package: no download.
Segments are contiguous stretches of the recording that never overlap, so each word lands in
exactly one segment: nothing is lost or doubled at a cut.
"""

from __future__ import annotations

import functools
import importlib.util
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hushscribe.audio import SAMPLE_RATE, cpu_threads
from hushscribe.errors import HushError

FRAME = 512  # samples per Silero frame at 16 kHz (32 ms)
MAX_SEGMENT_S = 30.0  # both engines read at most 30 s of audio at once


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.35  # Silero speech probability at or above which a frame is speech
    # Silero misses some speech (a child reading over music gives 0.0-0.3), so a frame it rejects
    # is dropped only if it is also quiet: within this margin of the recording's noise floor.
    quiet_margin_db: float = 12.0
    min_silence_s: float = 0.3  # a pause at least this long separates two speech spans
    min_speech_s: float = 0.25  # shorter blips (clicks, breaths) are not speech
    # kept around speech so onsets and trailing consonants survive; Whisper also reads better with a
    # little lead-in (measured on the shared clips: 0.2 → 0.4 s took en WER 6.6 → 5.4 %, zh CER 43.5 → 42.3 %)
    pad_s: float = 0.4
    max_segment_s: float = MAX_SEGMENT_S
    max_gap_s: float = 2.0  # a longer pause always starts a new segment


@dataclass(frozen=True)
class Span:
    start: int  # sample offsets into the 16 kHz audio
    end: int

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE


CONTEXT = 64  # samples of the previous frame Silero v6 sees with each frame
SileroState = tuple[np.ndarray, np.ndarray]  # the LSTM's h and c, each (1, 1, 128)


# Silero is read in two parts. Its convolutions see each frame on its own and are nine tenths of the work
# (0.07 ms a frame on one core), so they run on all cores, in pieces of about the frames over the threads.
# Its LSTM reads the frames in order. Long audio is read by the LSTM as independent 60 s blocks on all
# cores, each after 4 s of the audio before it, so that its state has settled by the block's first frame;
# audio up to one block long is read in one go.
MIN_PIECE_FRAMES, MAX_PIECE_FRAMES = 32, 1024  # 1-33 s
BLOCK_FRAMES = 1875  # 60 s
WARM_UP_FRAMES = 125  # 4 s


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero speech probability for each 512-sample frame (the last one zero-padded)."""
    n_frames = -(-len(audio) // FRAME)
    threads = cpu_threads()
    piece = min(MAX_PIECE_FRAMES, max(MIN_PIECE_FRAMES, -(-n_frames // threads)))

    def encoded(first: int) -> np.ndarray:
        return _encode(_frames_with_context(audio, first, min(n_frames, first + piece)))

    def block(start: int) -> np.ndarray:
        first = max(0, start - WARM_UP_FRAMES)
        return _recur(features[first:start + BLOCK_FRAMES])[0][start - first:]

    _silero()  # built here once: the threads below would each build it on a first call (lru_cache has no lock)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        features = np.concatenate([np.zeros((0, 1, 128), np.float32),
                                   *pool.map(encoded, range(0, n_frames, piece))])
        return np.concatenate([np.zeros(0, np.float32), *pool.map(block, range(0, n_frames, BLOCK_FRAMES))])


def _frames_with_context(audio: np.ndarray, first: int, end: int) -> np.ndarray:
    """Frames first..end-1 as Silero v6 reads them: each after the last 64 samples of the one
    before (zeros before the start). Built per piece, so no copy of the whole recording is made."""
    before = audio[first * FRAME - CONTEXT:first * FRAME] if first > 0 else np.zeros(CONTEXT, np.float32)
    return _with_context(_frames(audio, first, end), before)


def _with_context(body: np.ndarray, before: np.ndarray) -> np.ndarray:
    """(frames, FRAME) samples as Silero v6 reads them, each after the last 64 samples of the one before;
    `before` is the context of the first."""
    frames = np.empty((len(body), CONTEXT + FRAME), np.float32)
    frames[:, CONTEXT:] = body
    frames[0, :CONTEXT] = before
    frames[1:, :CONTEXT] = body[:-1, -CONTEXT:]
    return frames


def _frames(audio: np.ndarray, first: int, end: int) -> np.ndarray:
    """Frames first..end-1 of `audio` as a (frames, FRAME) float32 copy, the last one zero-padded."""
    piece = audio[first * FRAME:end * FRAME]
    frames = np.zeros((end - first) * FRAME, np.float32)
    frames[:len(piece)] = piece
    return frames.reshape(-1, FRAME)


def _run_silero(batch: np.ndarray, state: SileroState | None = None) -> tuple[np.ndarray, SileroState]:
    """Probabilities for consecutive frames (with their context) and the LSTM state after the last; from
    `state`, or a fresh one."""
    return _recur(_encode(batch), state)


def _encode(batch: np.ndarray) -> np.ndarray:
    """Silero's convolutions: (frames, CONTEXT + FRAME) samples → (frames, 1, 128) features, each frame's
    its own."""
    return _silero()[0].run(None, {"input": batch})[0]


def _recur(features: np.ndarray, state: SileroState | None = None) -> tuple[np.ndarray, SileroState]:
    """Silero's LSTM and output layer over consecutive frames' features: their probabilities, and the state
    after the last."""
    _, recurrent, name = _silero()
    h, c = state or (np.zeros((1, 1, 128), np.float32),) * 2
    probs, h, c = recurrent.run(None, {name: features, "h": h, "c": c})
    return probs.reshape(-1), (h, c)


class SileroStream:
    """Silero read as audio arrives: feed() the next samples, get the speech probability of each frame they
    complete. The context and the LSTM state carry over from call to call, so the probabilities are those
    speech_probabilities() gives for all the audio at once (when that is at most one block)."""

    def __init__(self) -> None:
        self._partial = np.zeros(0, np.float32)  # samples of the frame not yet complete
        self._before = np.zeros(CONTEXT, np.float32)  # the context of the next frame
        self._state: SileroState | None = None

    def feed(self, samples: np.ndarray) -> np.ndarray:
        audio = np.concatenate([self._partial, np.asarray(samples, np.float32)])
        whole = len(audio) // FRAME
        body, self._partial = audio[:whole * FRAME].reshape(whole, FRAME), audio[whole * FRAME:]
        if whole == 0:
            return np.zeros(0, np.float32)
        probs, self._state = _run_silero(_with_context(body, self._before), self._state)
        self._before = body[-1, -CONTEXT:].copy()
        return probs

    def flush(self) -> np.ndarray:
        """The probability of the incomplete last frame, zero-padded as speech_probabilities() reads it (if any)."""
        return self.feed(np.zeros(-len(self._partial) % FRAME, np.float32))


@functools.lru_cache(maxsize=1)
def _silero():
    """The Silero VAD v6 ONNX file that ships inside the faster-whisper package (found without importing
    it, so VAD needs neither CTranslate2 nor a download), as two sessions: the convolutions up to the
    LSTM's input, and the rest; and the name of that input."""
    import onnx
    import onnxruntime
    from onnx.utils import Extractor

    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or not spec.submodule_search_locations:
        raise HushError("the Silero VAD model is missing: the faster-whisper package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "silero_vad_v6.onnx"
    model = onnx.load(path)
    features = next(node.input[0] for node in model.graph.node if node.op_type == "LSTM")
    outputs = [output.name for output in model.graph.output]
    onnxruntime.disable_telemetry_events()  # besides ORT_DISABLE_TELEMETRY (set at import of hushscribe)
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = options.intra_op_num_threads = 1
    options.log_severity_level = 4
    extractor = Extractor(model)

    def session(inputs: list[str], outputs: list[str]):
        part = extractor.extract_model(inputs, outputs).SerializeToString()
        return onnxruntime.InferenceSession(part, providers=["CPUExecutionProvider"], sess_options=options)

    return session(["input"], [features]), session([features, "h", "c"], outputs), features


def frame_levels_db(audio: np.ndarray) -> np.ndarray:
    """Mean power of each 512-sample frame in dBFS (computed a minute at a time: no full-size copy)."""
    n_frames = -(-len(audio) // FRAME)
    out = np.empty(n_frames)
    for first in range(0, n_frames, BLOCK_FRAMES):
        end = min(n_frames, first + BLOCK_FRAMES)
        out[first:end] = np.mean(_frames(audio, first, end).astype(np.float64) ** 2, axis=1)
    return 10 * np.log10(out + 1e-10)


def active_frames(probs: np.ndarray, levels_db: np.ndarray, options: VadOptions = VadOptions(),
                  floor_db: float | None = None) -> np.ndarray:
    """Frames to keep: speech by Silero, or too loud to be the background (`floor_db`; by default the noise floor
    of `levels_db`)."""
    floor = noise_floor_db(levels_db) if floor_db is None else floor_db
    return (probs >= options.threshold) | (levels_db >= floor + options.quiet_margin_db)


def noise_floor_db(levels_db: np.ndarray) -> float:
    """A recording's background level: the 5th percentile of its frame levels, as np.percentile gives it (linear),
    found with a partial sort: np.percentile's ~70 µs would be a quarter of what a live chunk costs."""
    rank = 0.05 * (len(levels_db) - 1)
    below = int(rank)
    above = min(below + 1, len(levels_db) - 1)
    ranked = np.partition(levels_db, (below, above))
    return ranked[below] + (ranked[above] - ranked[below]) * (rank - below)


def speech_spans(active: np.ndarray, n_samples: int, options: VadOptions = VadOptions()) -> list[Span]:
    """Turn active frames into padded spans (sample offsets), in order, not overlapping.
    Pauses shorter than `min_silence_s` do not split a span."""
    pad = int(options.pad_s * SAMPLE_RATE)
    result: list[Span] = []
    for a, b in speech_runs(active, options):
        lo, hi = max(0, a * FRAME - pad), min(n_samples, b * FRAME + pad)
        if result and lo <= result[-1].end:
            # paddings touch: split the shared pause in the middle
            middle = (result[-1].end + lo) // 2
            result[-1] = Span(result[-1].start, middle)
            lo = middle
        result.append(Span(lo, hi))
    return result


def speech_runs(active: np.ndarray, options: VadOptions = VadOptions()) -> list[tuple[int, int]]:
    """Speech as runs of frames (first, end), unpadded: active frames with pauses of at most `min_silence_s`
    inside, each at least `min_speech_s` long."""
    frames = np.flatnonzero(active)
    if len(frames) == 0:
        return []
    pauses = np.flatnonzero(np.diff(frames) - 1 > int(options.min_silence_s * SAMPLE_RATE / FRAME))
    starts = frames[np.concatenate(([0], pauses + 1))]
    ends = frames[np.concatenate((pauses, [len(frames) - 1]))] + 1
    long = ends - starts >= options.min_speech_s * SAMPLE_RATE / FRAME
    return list(zip(starts[long].tolist(), ends[long].tolist()))


def segments_from_spans(spans: list[Span], audio: np.ndarray, options: VadOptions = VadOptions()) -> list[Span]:
    """Merge speech spans into segments of at most `max_segment_s`, splitting over-long spans at
    their quietest point."""
    limit = int(options.max_segment_s * SAMPLE_RATE)
    max_gap = int(options.max_gap_s * SAMPLE_RATE)
    pieces = [piece for span in spans for piece in _split_long(span, audio, limit)]
    segments: list[Span] = []
    for piece in pieces:
        if segments:
            last = segments[-1]
            if piece.end - last.start <= limit and piece.start - last.end <= max_gap:
                segments[-1] = Span(last.start, piece.end)
                continue
        segments.append(piece)
    return segments


def split(audio: np.ndarray, options: VadOptions = VadOptions(), active: np.ndarray | None = None) -> list[Span]:
    """Speech segments of `audio` (16 kHz mono), each at most `options.max_segment_s` long; pass `active`
    (from activity()) when it is already known."""
    if len(audio) == 0:
        return []
    active = activity(audio, options) if active is None else active
    return segments_from_spans(speech_spans(active, len(audio), options), audio, options)


def activity(audio: np.ndarray, options: VadOptions = VadOptions()) -> np.ndarray:
    """Active frames of `audio` (see active_frames): one bool per 512-sample frame."""
    if len(audio) == 0:
        return np.zeros(0, bool)
    return active_frames(speech_probabilities(audio), frame_levels_db(audio), options)


def _split_long(span: Span, audio: np.ndarray, limit: int) -> list[Span]:
    """Cut a span longer than `limit` samples at the quietest 100 ms in the later half of each window."""
    pieces = []
    start = span.start
    while span.end - start > limit:
        lo, hi = start + limit // 2, start + limit
        cut = lo + quietest(audio[lo:hi])
        pieces.append(Span(start, cut))
        start = cut
    pieces.append(Span(start, span.end))
    return pieces


def halve(span: Span, audio: np.ndarray) -> tuple[Span, Span]:
    """Cut a segment in two at the quietest moment of its middle third."""
    third = (span.end - span.start) // 3
    cut = span.start + third + quietest(audio[span.start + third:span.end - third])
    return Span(span.start, cut), Span(cut, span.end)


def quietest(audio: np.ndarray, window: int = SAMPLE_RATE // 10) -> int:
    """Offset of the centre of the lowest-energy window (sliding, 10 ms hop)."""
    hop = SAMPLE_RATE // 100
    if len(audio) <= window:
        return len(audio) // 2
    power = np.concatenate(([0.0], np.cumsum(audio.astype(np.float64) ** 2)))
    starts = np.arange(0, len(audio) - window + 1, hop)
    energy = power[starts + window] - power[starts]
    return int(starts[np.argmin(energy)]) + window // 2
