"""Who spoke when: speaker embeddings over short windows of speech, clustered over the whole recording.

Embeddings. Resemblyzer's GE2E voice encoder (Apache-2.0, 1.4 M parameters), converted to ONNX by
tools/convert_speaker_encoder.py and shipped in hushscribe/assets, so it needs no download, no torch and nothing
beyond onnxruntime (already here for Silero VAD). Where recognition runs on a CUDA GPU, the same weights run there
in torch (speaker_encoder.npz). Input is a 40-bin linear-power mel spectrogram (25 ms / 10 ms);
each window of speech up to 1.6 s (the length the encoder was trained on) gives one 256-d unit vector.

Windows. Speech spans (Silero, as for recognition, with little padding) are cut into 1.6 s windows every
STEP_FRAMES; a span shorter than that gives one window of its own length (down to MIN_WINDOW_FRAMES), so a short
reply between two pauses still gets a voice of its own. Windows never cross a pause.

Clustering. Agglomerative, average linkage on cosine similarity, in numpy: with N speakers it stops at N
clusters; with "auto" it stops when the two closest clusters are less alike than MERGE_SIMILARITY, which also
answers one speaker (spectral clustering's eigengap cannot say "one"). GE2E window embeddings are noisy but
speakers form tight groups; average linkage needs one threshold, which was measured on the shared clips (see
tests/test_speakers.py). A long recording is clustered on at most MAX_CLUSTERED windows spread evenly over it;
every window then goes to its nearest cluster centre, so the cost stays bounded (O(MAX_CLUSTERED²)).

Turns. Every 10 ms frame of speech takes the speaker whose centre is closest to the mean score of the windows
covering it; runs shorter than MIN_TURN_S are given to their neighbours. Speakers are numbered S1, S2, … in order
of first appearance.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from hushscribe import vad
from hushscribe.audio import SAMPLE_RATE, cpu_threads
from hushscribe.errors import HushError
from hushscribe.transcript import Segment

ENCODER_PATH = Path(__file__).parent / "assets" / "speaker_encoder.onnx"
WEIGHTS_PATH = ENCODER_PATH.with_suffix(".npz")  # the same weights, for torch on a GPU
EMBEDDING = 256

# Mel spectrogram as Resemblyzer computes it (librosa defaults: Slaney mel scale, Hann window, centred frames).
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms: one frame
N_MELS = 40
FRAME_S = HOP / SAMPLE_RATE

WINDOW_FRAMES = 160  # 1.6 s, the encoder's training length
STEP_FRAMES = 40  # a window every 0.4 s
MIN_WINDOW_FRAMES = 40  # speech shorter than 0.4 s gets no window of its own; its neighbours label it
BATCH = 256  # windows per encoder call
PAD_S = 0.1  # kept around Silero's speech for embedding (recognition keeps more)

MERGE_SIMILARITY = 0.60  # "auto": clusters at least this alike (average cosine) are one speaker (measured: 0.55-0.65)
MIN_SPEAKER_WINDOWS = 3  # "auto": a cluster of fewer windows, or a smaller share of them all, is no speaker
MIN_SPEAKER_SHARE = 0.05
MAX_CLUSTERED = 1000  # windows clustered directly; the rest join their nearest centre
MIN_TURN_S = 0.3  # shorter runs of one speaker inside speech are taken as noise


@dataclass(frozen=True)
class Turn:
    start: float  # seconds
    end: float
    speaker: str  # "S1", "S2", … in order of first appearance


def speaker_id(index: int) -> str:
    """The id of the speaker who spoke `index`-th (0-based) for the first time."""
    return f"S{index + 1}"


# --- features --------------------------------------------------------------------------------------------------


@functools.cache
def mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) Slaney-style mel filterbank, area-normalised (librosa.filters.mel defaults)."""

    def hz_to_mel(hz):
        hz = np.asarray(hz, np.float64)
        log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(hz >= 1000.0, log_part, hz * 3.0 / 200.0)

    def mel_to_hz(mel):
        mel = np.asarray(mel, np.float64)
        return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), mel * 200.0 / 3.0)

    fft_hz = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def mel_power(samples: np.ndarray, block_frames: int = 6000) -> np.ndarray:
    """(frames, N_MELS) linear-power mel spectrogram, one frame per HOP samples, frames centred (zero padding),
    computed a minute at a time."""
    padded = np.pad(samples.astype(np.float32, copy=False), N_FFT // 2)
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as librosa
    out = np.empty((n_frames, N_MELS), np.float32)
    for first in range(0, n_frames, block_frames):
        count = min(block_frames, n_frames - first)
        frames = np.lib.stride_tricks.sliding_window_view(padded[first * HOP:(first + count - 1) * HOP + N_FFT],
                                                          N_FFT)[::HOP]
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        out[first:first + count] = power.astype(np.float32) @ mel_filters().T
    return out


# --- the encoder -------------------------------------------------------------------------------------------------


class SpeakerEncoder:
    """The voice encoder on the CPU (onnxruntime, every core this process is given): (batch, frames, N_MELS) mel
    spectrograms → (batch, 256) unit embeddings."""

    def __init__(self, path: Path = ENCODER_PATH) -> None:
        import onnxruntime

        if not Path(path).exists():
            raise HushError(f"the speaker model is missing ({path}); reinstall hushscribe")
        onnxruntime.disable_telemetry_events()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = cpu_threads()
        options.log_severity_level = 4
        self.session = onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])

    def embed(self, mels: np.ndarray) -> np.ndarray:
        out = [self.session.run(None, {"mels": mels[i:i + BATCH]})[0] for i in range(0, len(mels), BATCH)]
        return np.concatenate(out) if out else np.zeros((0, EMBEDDING), np.float32)


class TorchSpeakerEncoder:
    """The same encoder in torch, for a CUDA GPU: the weights of speaker_encoder.npz (torch's own layout) in
    nn.LSTM and nn.Linear. An hour of speech takes well under a second."""

    def __init__(self, device: str = "cuda", path: Path = WEIGHTS_PATH) -> None:
        import torch

        weights = {name: torch.from_numpy(array) for name, array in np.load(path).items()}
        self.torch, self.device = torch, torch.device(device)
        self.lstm = torch.nn.LSTM(N_MELS, EMBEDDING, num_layers=3, batch_first=True)
        self.linear = torch.nn.Linear(EMBEDDING, EMBEDDING)
        self.lstm.load_state_dict({k.removeprefix("lstm."): v for k, v in weights.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k.removeprefix("linear."): v for k, v in weights.items()
                                     if k.startswith("linear.")})
        self.lstm.to(self.device).eval()
        self.linear.to(self.device).eval()

    def embed(self, mels: np.ndarray) -> np.ndarray:
        torch = self.torch
        if len(mels) == 0:
            return np.zeros((0, EMBEDDING), np.float32)
        with torch.inference_mode():
            _, (hidden, _) = self.lstm(torch.from_numpy(np.ascontiguousarray(mels)).to(self.device))
            embeddings = torch.nn.functional.normalize(torch.relu(self.linear(hidden[-1])), dim=1)
            return embeddings.float().cpu().numpy()


@functools.lru_cache(maxsize=2)
def default_encoder(device: str = "cpu") -> SpeakerEncoder | TorchSpeakerEncoder:
    """The encoder for the device recognition runs on: torch on a CUDA device (where torch with CUDA is installed;
    Whisper can run on CUDA without it), else onnxruntime on the CPU."""
    if device.startswith("cuda") and importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return TorchSpeakerEncoder(device)
    return SpeakerEncoder()


# --- windows of one recording, gathered as it streams ---------------------------------------------------------------


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
            mel = mel_power(samples[span.start:span.end])
            first = round((offset + span.start) / HOP)
            self._spans.append((first, first + len(mel)))
            for start, count in window_starts(len(mel)):
                by_length.setdefault(count, []).append((first + start, mel[start:start + count]))
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
        centres = cluster_centres(embeddings, count)
        return frame_turns(self._spans, windows, embeddings @ centres.T)


# --- clustering --------------------------------------------------------------------------------------------------


def agglomerate(embeddings: np.ndarray, count: int | None, threshold: float | None = None) -> np.ndarray:
    """Cluster labels 0..k-1 by average-linkage agglomeration on cosine similarity: down to `count` clusters, or
    (count None) until no two clusters are at least `threshold` alike on average."""
    threshold = MERGE_SIMILARITY if threshold is None else threshold
    n = len(embeddings)
    similarity = (embeddings @ embeddings.T).astype(np.float64)
    np.fill_diagonal(similarity, -np.inf)
    sizes = np.ones(n)
    members = np.arange(n)  # the cluster (its first member's row) each point belongs to
    alive = np.ones(n, bool)
    clusters = n
    target = count or 1
    while clusters > target:
        flat = int(np.argmax(similarity))
        a, b = divmod(flat, n)
        if count is None and similarity[a, b] < threshold:
            break
        # Lance-Williams update for average linkage: the merged row is the size-weighted mean of the two
        merged = (sizes[a] * similarity[a] + sizes[b] * similarity[b]) / (sizes[a] + sizes[b])
        similarity[a], similarity[:, a] = merged, merged
        similarity[b], similarity[:, b] = -np.inf, -np.inf
        similarity[a, a] = -np.inf
        sizes[a] += sizes[b]
        alive[b] = False
        members[members == b] = a
        clusters -= 1
    _, labels = np.unique(members, return_inverse=True)
    return labels


def cluster_centres(embeddings: np.ndarray, count: int | None) -> np.ndarray:
    """(k, 256) unit centres of the speakers among `embeddings` (k = count, or found when count is None)."""
    stride = -(-len(embeddings) // MAX_CLUSTERED)
    sample = embeddings[::stride]
    count = min(count, len(sample)) if count else None
    labels = agglomerate(sample, count)
    sizes = np.bincount(labels)
    # "auto": a handful of windows alone is no speaker (windows that straddle a change of speaker, noise);
    # they join the nearest real speaker below
    keep = sizes >= max(MIN_SPEAKER_WINDOWS, MIN_SPEAKER_SHARE * len(sample)) if count is None else sizes > 0
    keep[np.argmax(sizes)] = True
    centres = np.stack([sample[labels == k].mean(axis=0) for k in np.flatnonzero(keep)])
    for _ in range(3):  # a few k-means steps over every window settle the centres
        nearest = np.argmax(embeddings @ _unit(centres).T, axis=1)
        centres = np.stack([embeddings[nearest == k].mean(axis=0) if np.any(nearest == k) else centres[k]
                            for k in range(len(centres))])
    return _unit(centres)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


# --- from windows to turns ---------------------------------------------------------------------------------------


def frame_turns(spans: list[tuple[int, int]], windows: np.ndarray, scores: np.ndarray) -> list[Turn]:
    """Turns from per-window speaker scores: each speech frame takes the best mean score of the windows covering
    it (frames no window covers take the nearest window's), short runs join their neighbours, speakers are
    renumbered by first appearance."""
    end = int(max(windows[:, 1].max(), max(e for _, e in spans)))
    k = scores.shape[1]
    total = np.zeros((end + 1, k))
    np.add.at(total, windows[:, 0], scores)
    np.add.at(total, windows[:, 1], -scores)
    covered = np.zeros(end + 1)
    np.add.at(covered, windows[:, 0], 1)
    np.add.at(covered, windows[:, 1], -1)
    total, covered = np.cumsum(total, axis=0)[:end], np.cumsum(covered)[:end]
    centres = (windows[:, 0] + windows[:, 1]) / 2
    runs: list[list] = []  # [first frame, end frame, speaker index]
    for first, last in spans:
        if last <= first:
            continue
        frames = np.arange(first, last)
        mean = total[first:last] / np.maximum(covered[first:last], 1)[:, None]
        bare = covered[first:last] < 0.5
        if np.any(bare):
            nearest = np.abs(centres[None, :] - frames[bare][:, None]).argmin(axis=1)
            mean[bare] = scores[nearest]
        labels = np.argmax(mean, axis=1)
        cuts = np.flatnonzero(np.diff(labels)) + 1
        for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(labels)]):
            runs.append([first + a, first + b, int(labels[a])])
    runs = _absorb_short(runs, round(MIN_TURN_S / FRAME_S))
    order: dict[int, str] = {}
    turns: list[Turn] = []
    for first, last, label in runs:
        speaker = order.setdefault(label, speaker_id(len(order)))
        if turns and turns[-1].speaker == speaker and first * FRAME_S - turns[-1].end < 1e-6:
            turns[-1] = replace(turns[-1], end=last * FRAME_S)
        else:
            turns.append(Turn(first * FRAME_S, last * FRAME_S, speaker))
    return turns


def _absorb_short(runs: list[list], min_frames: int) -> list[list]:
    """Give a run shorter than `min_frames` that touches another run to its longer touching neighbour."""
    changed = True
    while changed:
        changed = False
        for i, (first, last, _) in enumerate(runs):
            if last - first >= min_frames:
                continue
            touching = [j for j in (i - 1, i + 1) if 0 <= j < len(runs)
                        and (runs[j][1] == first or runs[j][0] == last)]
            if not touching:
                continue
            j = max(touching, key=lambda j: runs[j][1] - runs[j][0])
            runs[j] = [min(runs[j][0], first), max(runs[j][1], last), runs[j][2]]
            del runs[i]
            changed = True
            break
    return runs


def diarize(samples: np.ndarray, speakers: int | str = "auto", options: vad.VadOptions = vad.VadOptions(),
            encoder: SpeakerEncoder | None = None) -> list[Turn]:
    """Speaker turns of a whole 16 kHz mono recording held in memory (the transcriber streams instead)."""
    diarizer = Diarizer(speakers, encoder)
    diarizer.add(samples, vad.activity(samples, options), options=options)
    return diarizer.turns()


# --- turns onto transcript segments ------------------------------------------------------------------------------


MIN_SPLIT_S = 0.5  # a speaker's part of a segment shorter than this does not split it (padding, a cough)


def label_segments(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """`segments` with their speaker set; a segment that spans a change of speaker is split there: between words
    where the segment has word timings, else at the pause between the two turns, its text cut at the break
    (space, punctuation, or between CJK characters) nearest the same share of its characters."""
    out: list[Segment] = []
    for segment in segments:
        runs = _runs([t for t in turns if t.end > segment.start and t.start < segment.end], segment)
        if not runs:  # between turns (padding around speech): the nearest turn's speaker
            nearest = min(turns, key=lambda t: max(t.start - segment.end, segment.start - t.end, 0.0), default=None)
            out.append(replace(segment, speaker=nearest.speaker if nearest else None))
        elif len(runs) == 1 or not segment.text:
            out.append(replace(segment, speaker=max(runs, key=lambda r: r[1] - r[0])[2]))
        else:
            out += _split(segment, runs)
    return out


def _runs(turns: list[Turn], segment: Segment) -> list[tuple[float, float, str]]:
    """The speakers' runs inside `segment`, (start, end, speaker) clipped to it: consecutive turns of one speaker
    as one run, and a run shorter than MIN_SPLIT_S given to its neighbours."""
    runs = _joined([(max(t.start, segment.start), min(t.end, segment.end), t.speaker) for t in turns])
    if len(runs) > 1:
        runs = _joined([r for r in runs if r[1] - r[0] >= MIN_SPLIT_S] or [max(runs, key=lambda r: r[1] - r[0])])
    return runs


def _joined(runs: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Consecutive runs of one speaker as one."""
    out: list[tuple[float, float, str]] = []
    for start, end, speaker in runs:
        if out and out[-1][2] == speaker:
            out[-1] = (out[-1][0], end, speaker)
        else:
            out.append((start, end, speaker))
    return out


def _split(segment: Segment, runs: list[tuple[float, float, str]]) -> list[Segment]:
    """Pieces of `segment`, one per run that has speech in it, in order; neighbours of one speaker are merged."""
    changes = [(a[1] + b[0]) / 2 for a, b in zip(runs, runs[1:])]  # the middle of the pause between two runs
    text = segment.text
    pieces: list[tuple[int, float, str, list | None]] = []  # (text position, start time, speaker, words)
    if segment.words:
        # each word goes to the run its middle falls in; a piece starts at its first word, found in the text
        # walking forward from the previous word (so a repeated word is found where it is)
        cursor = 0
        for word in segment.words:
            index = sum((word.start + word.end) / 2 >= c for c in changes)
            found = text.find(word.text.strip(), cursor) if word.text.strip() else -1
            at = found if found >= cursor else None
            if not pieces or pieces[-1][2] != runs[index][2]:
                position = at if at is not None else _break_near(text, cursor)
                pieces.append((max(position, pieces[-1][0] if pieces else 0), word.start, runs[index][2], []))
            pieces[-1][3].append(word)
            if at is not None:
                cursor = at + len(word.text.strip())
    else:
        span = max(segment.end - segment.start, 1e-6)
        for run, start in zip(runs, [segment.start, *changes]):
            position = _break_near(text, round(len(text) * (start - segment.start) / span)) if pieces else 0
            if pieces and pieces[-1][2] == run[2]:
                continue
            pieces.append((max(position, pieces[-1][0] if pieces else 0), start, run[2], None))
    pieces[0] = (0, segment.start, *pieces[0][2:])
    ends = [p[0] for p in pieces[1:]] + [len(text)]
    merged: list[tuple[int, float, str, list | None]] = []  # pieces with text; neighbours of one speaker joined
    for piece, end in zip(pieces, ends):
        if not text[piece[0]:end].strip():
            continue
        if merged and merged[-1][2] == piece[2]:
            merged[-1] = (*merged[-1][:3], (merged[-1][3] or []) + (piece[3] or []) if segment.words else None)
        else:
            merged.append(piece)
    out = []
    for i, (position, start, speaker, words) in enumerate(merged):
        end_position, end = (merged[i + 1][0], merged[i + 1][1]) if i + 1 < len(merged) else (len(text), segment.end)
        out.append(replace(segment, start=start, end=end, text=text[position:end_position].strip(), speaker=speaker,
                           words=words if segment.words else None, flags=list(segment.flags)))
    return out or [replace(segment, speaker=runs[0][2])]


def _break_near(text: str, target: int) -> int:
    """The place to cut `text` nearest `target`: after punctuation or at a space, or between two CJK characters."""
    from hushscribe.text import is_spaceless

    def fits(i: int) -> bool:
        return 0 < i < len(text) and (text[i].isspace() or text[i - 1] in "。！？，、；：.!?,;:"
                                      or (is_spaceless(text[i - 1]) and is_spaceless(text[i])))

    for distance in range(len(text)):
        for i in (target - distance, target + distance):
            if fits(i):
                return i
    return min(max(target, 0), len(text))
