"""Decode any recording to 16 kHz mono float32 with PyAV (FFmpeg), with optional clean-up filters."""

from __future__ import annotations

import errno
import io
import itertools
import logging
import os
import queue
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import av
import numpy as np

from hushscribe.errors import HushError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = frozenset(
    ".wav .mp3 .m4a .aac .flac .ogg .oga .opus .webm .mp4 .mkv .mov .wma .aiff .aif .amr .3gp .mka .m4v .avi"
    .split()
)
# EBU R128 integrated loudness target for speech (what podcast and broadcast guides use)
LOUDNESS_TARGET_LUFS = -16.0


def find_recordings(folder: Path) -> list[Path]:
    """Every audio and video file under `folder`, by its extension, at any depth, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)


Source = Union[str, Path, bytes, BinaryIO]


@dataclass(frozen=True)
class AudioFilters:
    """Optional clean-up applied while decoding; both off by default."""

    highpass_hz: float | None = None  # cut rumble / hum below this frequency
    normalize_loudness: bool = False  # EBU R128 loudness normalisation (FFmpeg loudnorm)

    def graph_description(self) -> list[tuple[str, str]]:
        steps = []
        if self.highpass_hz:
            steps.append(("highpass", f"f={self.highpass_hz}"))
        if self.normalize_loudness:
            steps.append(("loudnorm", f"I={LOUDNESS_TARGET_LUFS}:TP=-1.5:LRA=11"))
            # loudnorm works at 192 kHz internally and outputs that rate; bring it back
            steps.append(("aresample", str(SAMPLE_RATE)))
        return steps


def source_name(source: Source) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return getattr(source, "name", None) or "<bytes>"


def decode(source: Source, filters: AudioFilters | None = None) -> np.ndarray:
    """Decode the first audio stream of `source` to a float32 mono 16 kHz array.

    Raises HushError for anything that is not a readable recording with sound in it.
    """
    seconds, chunks = open_stream(source, filters)
    buffer = _Buffer(int(seconds * SAMPLE_RATE))
    for chunk in chunks:
        buffer.append(chunk)
    return buffer.array()


# PyAV 19 reads tags as UTF-8 with surrogateescape and dropped the argument; older versions decode them
# strictly unless told otherwise, which made a file with a Latin-1 title unreadable
_OPEN_OPTIONS = {"metadata_errors": "surrogateescape"} if int(av.__version__.split(".")[0]) < 19 else {}


def open_container(file: str | BinaryIO) -> av.container.InputContainer:
    """`av.open` for reading, on every PyAV we support: tags that are not UTF-8 never stop a file opening."""
    return av.open(file, **_OPEN_OPTIONS)


def open_stream(source: Source, filters: AudioFilters | None = None) -> tuple[float, Iterator[np.ndarray]]:
    """Open and check `source` now (HushError for a missing, empty or unreadable file, or one with no
    sound track); returns its length in seconds as the container states it (0 if unknown) and the
    16 kHz mono float32 samples as an iterator of chunks, decoded as they are read, so that a long
    recording need not be held whole. A truncated tail ends the iterator with what decoded."""
    name = source_name(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise HushError("no such file; check the path", source=name)
        if path.is_dir():
            raise HushError("is a folder, not a recording", source=name)
        if path.stat().st_size == 0:
            raise HushError("the file is empty (0 bytes), so there is nothing to transcribe; if it is still being "
                            "recorded or copied, wait until that finishes, then export or copy it again", source=name)
    elif isinstance(source, bytes):
        if not source:
            raise HushError("the upload is empty (0 bytes); choose the recording again", source=name)
        source = io.BytesIO(source)
    try:
        container = open_container(str(source) if isinstance(source, Path) else source)
    except av.error.FFmpegError as exc:
        raise HushError(
            f"not an audio or video file that can be read ({_reason(exc)}); "
            "convert it to wav, mp3, m4a, flac or ogg and try again",
            source=name,
        ) from None
    if not container.streams.audio:
        container.close()
        raise HushError("has no audio track; pick a file with sound", source=name)
    seconds = container.duration / av.time_base if container.duration else 0.0
    return max(seconds, 0.0), _samples(container, filters or AudioFilters(), name)


def _samples(container, filters: AudioFilters, name: str) -> Iterator[np.ndarray]:
    total = 0
    with container:
        try:
            for chunk in _decoded_chunks(container, container.streams.audio[0], filters):
                if not np.isfinite(chunk).all():
                    # NaN/inf samples from broken float files would poison every model: silence them
                    chunk = np.nan_to_num(chunk, nan=0.0, posinf=0.0, neginf=0.0)
                total += len(chunk)
                yield chunk
        except av.error.FFmpegError as exc:
            if total == 0:
                raise HushError(
                    f"the audio could not be decoded ({_reason(exc)}); the file may be damaged or truncated",
                    source=name,
                ) from None
            # a truncated tail: keep what decoded, as ffmpeg itself does
    if total == 0:
        raise HushError("contains no audio samples; the file may be damaged", source=name)


def cpu_threads() -> int:
    """Threads for CPU-heavy work: OMP_NUM_THREADS where it is set (Ray sets it to the cores a task
    or worker was given), else every core this process may run on."""
    try:
        threads = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        threads = 0
    if threads > 0:
        return threads
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def duration(audio: np.ndarray) -> float:
    return len(audio) / SAMPLE_RATE


# Decoded frames are small (1024-1152 samples for AAC/MP3: 150 000 an hour), and the resampler's
# per-call cost dominated decoding. Frames are gathered as arrays and resampled 10 s at a time.
GATHER_S = 10


def _decoded_chunks(container, stream, filters: AudioFilters) -> Iterator[np.ndarray]:
    """Yield float32 mono 16 kHz chunks through the optional filter graph."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    steps = filters.graph_description()
    graph = _filter_graph(steps) if steps else None
    pending: list = []  # decoded frames of one format, layout and rate, up to GATHER_S long
    kind, samples = None, 0
    for frame in container.decode(stream):
        if pending and ((frame.format.name, frame.layout.name, frame.sample_rate) != kind
                        or samples >= GATHER_S * frame.sample_rate):
            for out in _resampled(resampler, pending):
                yield from _through(graph, out)
            pending, samples = [], 0
        if not pending:
            kind = frame.format.name, frame.layout.name, frame.sample_rate
        pending.append(frame)
        samples += frame.samples
    for out in _resampled(resampler, pending) if pending else ():
        yield from _through(graph, out)
    for out in resampler.resample(None):
        yield from _through(graph, out)
    if graph is not None:
        yield from _through(graph, None)


def _resampled(resampler, frames: list) -> list:
    """16 kHz mono float frames out of consecutive decoded frames of one kind, in one resampler call."""
    first = frames[0]
    try:
        joined = av.AudioFrame.from_ndarray(np.concatenate([f.to_ndarray() for f in frames], axis=1),
                                            format=first.format.name, layout=first.layout.name)
        joined.sample_rate = first.sample_rate
        return resampler.resample(joined)
    except (ValueError, TypeError, av.error.FFmpegError):  # a layout PyAV cannot rebuild: one by one
        out = []
        for frame in frames:
            frame.pts = None  # timestamps from odd containers confuse the resampler; we only need samples
            out.extend(resampler.resample(frame))
        return out


def _filter_graph(steps: list[tuple[str, str]]):
    graph = av.filter.Graph()
    nodes = [graph.add_abuffer(format="flt", sample_rate=SAMPLE_RATE, layout="mono", time_base=f"1/{SAMPLE_RATE}")]
    for name, args in steps:
        nodes.append(graph.add(name, args))
    nodes.append(graph.add("aformat", f"sample_fmts=flt:channel_layouts=mono:sample_rates={SAMPLE_RATE}"))
    nodes.append(graph.add("abuffersink"))
    graph.link_nodes(*nodes).configure()
    return graph


def _through(graph, frame) -> Iterator[np.ndarray]:
    if graph is None:
        if frame is not None:
            yield frame.to_ndarray().reshape(-1)
        return
    graph.push(frame)
    while True:
        try:
            out = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        yield out.to_ndarray().reshape(-1)


class _Buffer:
    """A growable float32 array, so a long file is held once rather than as a list plus a copy."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(max(capacity, SAMPLE_RATE), dtype=np.float32)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, chunk: np.ndarray) -> None:
        end = self._size + len(chunk)
        if end > len(self._data):
            self._data = np.resize(self._data, max(end, int(len(self._data) * 1.5)))
        self._data[self._size:end] = chunk
        self._size = end

    def array(self) -> np.ndarray:
        view = self._data[: self._size]
        # a view keeps the spare capacity alive; copy only when that spare is large
        return view.copy() if self._size < 0.9 * len(self._data) else view


# Input devices, named as ffmpeg names them: FORMAT:NAME. The platform's default input; Windows has none
# (dshow opens a device by its own name).
DEFAULT_INPUTS = {"linux": "alsa:default", "darwin": "avfoundation::default"}
CAPTURE_FORMATS = ("alsa", "pulse", "oss", "sndio", "jack", "avfoundation", "dshow", "lavfi")  # named in errors
LIVE_CHUNK_S = 0.1  # audio handed over at a time, as a microphone delivers it
# What to do about a device that cannot be opened, by input format
LIST_INPUTS = {
    "alsa": "list the inputs with `arecord -l` and pass one as --mic alsa:plughw:CARD,DEVICE",
    "avfoundation": "list the inputs with `ffmpeg -f avfoundation -list_devices true -i \"\"` and pass one as "
                    "--mic avfoundation::INDEX",
    "dshow": "pass --mic \"dshow:audio=NAME\" with a NAME from Sound settings › Input (e.g. \"Microphone (USB "
             "Audio)\"); `ffmpeg -list_devices true -f dshow -i dummy` lists them too",
}
PERMISSION_HINT = ("allow this terminal to use the microphone (macOS: System Settings › Privacy & Security › "
                   "Microphone; Windows: Settings › Privacy › Microphone; Linux: the 'audio' group)")


def default_input() -> str:
    """The platform's default audio input as --mic writes it; HushError where there is none (Windows)."""
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    if platform in DEFAULT_INPUTS:
        return DEFAULT_INPUTS[platform]
    if platform == "win32":
        raise HushError("Windows has no default microphone that FFmpeg can open: " + LIST_INPUTS["dshow"])
    raise HushError(f"no default microphone is known on {sys.platform}: pass --mic FORMAT:NAME as FFmpeg names "
                    "the input, e.g. --mic oss:/dev/dsp")


def open_input(device: str, filters: AudioFilters | None = None,
               stop: threading.Event | None = None) -> Iterator[np.ndarray]:
    """Open an input device named as ffmpeg names it, FORMAT:NAME (alsa:default, avfoundation::1,
    dshow:audio=Microphone (USB), lavfi:amovie=talk.flac), now: HushError saying what to do when it cannot be.

    Returns its audio as 16 kHz mono float32 chunks of LIVE_CHUNK_S, read at the device's own pace by a thread of
    their own, so that a slow consumer never makes the device drop audio: one that falls behind gets what piled
    up as one chunk. They end when the device does (a failing one with a warning), or once `stop` is set, with
    what was captured until then."""
    container = _open_device(device)
    return _captured(container, device, filters or AudioFilters(), stop or threading.Event())


def _open_device(device: str):
    kind, _, name = device.partition(":")
    if not name:
        raise HushError(f"input device {device}: write it as FFmpeg names it, FORMAT:NAME, e.g. alsa:default or "
                        "avfoundation::0")
    if kind not in av.formats_available:
        known = ", ".join(f for f in CAPTURE_FORMATS if f in av.formats_available)
        raise HushError(f"input device {device}: no input format '{kind}' in this FFmpeg (it has {known})")
    if kind == "alsa" and Path("/usr/share/alsa/alsa.conf").exists():
        # PyAV's wheels bundle an alsa-lib that looks for its configuration where the wheel was built
        os.environ.setdefault("ALSA_CONFIG_DIR", "/usr/share/alsa")
    try:
        with _ffmpeg_reasons(), _stderr_silenced():
            container = av.open(name, format=kind)
    except av.error.FFmpegError as exc:
        reason = exc.log[2].strip() if getattr(exc, "log", None) else _reason(exc)
        if exc.errno == errno.EACCES or os.strerror(errno.EACCES) in reason:
            raise HushError(f"input device {device}: permission denied; {PERMISSION_HINT}") from None
        raise HushError(f"input device {device} cannot be opened: {reason}; check that it is plugged in and not "
                        f"in use, or {LIST_INPUTS.get(kind, 'check its name')}") from None
    if not container.streams.audio:
        container.close()
        raise HushError(f"input device {device} has no sound; {LIST_INPUTS.get(kind, 'pick an audio input')}")
    return container


@contextmanager
def _ffmpeg_reasons() -> Iterator[None]:
    """FFmpeg's own reason for a failure on the exception (PyAV adds it only while FFmpeg's log is on), not on
    stderr."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture():
            yield
    finally:
        av.logging.set_level(level)


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """alsa-lib writes its complaints straight to file descriptor 2; the error raised says what matters."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _captured(container, device: str, filters: AudioFilters, stop: threading.Event) -> Iterator[np.ndarray]:
    chunks: queue.Queue = queue.Queue()
    closing = threading.Event()
    reader = threading.Thread(target=_read_device, args=(container, filters, chunks, closing), daemon=True,
                              name="hushscribe-capture")
    reader.start()
    try:
        while True:
            stopping = stop.is_set()  # then what is waiting now is the last
            items = _waiting(chunks, stop)
            audio = [item for item in items if isinstance(item, np.ndarray)]
            if audio:
                yield np.concatenate(audio)
            if items and not isinstance(items[-1], np.ndarray):  # the reading ended: None, or why
                if isinstance(items[-1], av.error.FFmpegError):
                    log.warning("the input device %s stopped (%s)", device, _reason(items[-1]))
                elif items[-1] is not None:
                    raise items[-1]
                return
            if stopping:
                return
    finally:
        closing.set()
        reader.join(timeout=1.0)  # a device that blocks is left to the daemon thread


def _waiting(chunks: queue.Queue, stop: threading.Event) -> list:
    """All that is on `chunks` now; while there is nothing, waits for something until `stop` is set."""
    items = []
    while not items and not stop.is_set():
        try:
            items.append(chunks.get(timeout=0.1))  # woken now and then to see `stop`
        except queue.Empty:
            pass
    while True:
        try:
            items.append(chunks.get_nowait())
        except queue.Empty:
            return items


def _read_device(container, filters: AudioFilters, chunks: queue.Queue, closing: threading.Event) -> None:
    """Put the device's audio on `chunks` until it ends or `closing` is set, then None, or the exception that
    ended it."""
    end = None
    try:
        with container:
            for chunk in _device_chunks(container, filters):
                chunks.put(chunk)
                if closing.is_set():
                    break
    except BaseException as exc:
        end = exc
    chunks.put(end)


def _device_chunks(container, filters: AudioFilters) -> Iterator[np.ndarray]:
    """16 kHz mono float32 chunks of LIVE_CHUNK_S (after filters, of any length) out of a device's frames."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE,
                                  frame_size=int(LIVE_CHUNK_S * SAMPLE_RATE))
    steps = filters.graph_description()
    graph = _filter_graph(steps) if steps else None
    for frame in itertools.chain(container.decode(container.streams.audio[0]), [None]):  # None: the rest
        if frame is not None:
            frame.pts = None  # a device's clock may jump; only the samples matter
        for out in resampler.resample(frame):
            yield from _through(graph, out)
    if graph is not None:
        yield from _through(graph, None)


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc).split(":")[-1].strip() or type(exc).__name__
