"""Decoding: every listed container/codec, video tracks, filters, and bad input."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from hushscribe.audio import SAMPLE_RATE, AudioFilters, decode, open_stream
from hushscribe.errors import HushError

from .bad_inputs import add_info_tags, write_wav

# (file suffix, container format, audio codec, sample rate, channels, add a video track)
VARIANTS = [
    ("mp3", "mp3", "libmp3lame", 44100, 2, False),
    ("m4a", "ipod", "aac", 44100, 2, False),
    ("aac", "adts", "aac", 22050, 1, False),
    ("flac", "flac", "flac", 48000, 1, False),
    ("ogg", "ogg", "vorbis", 44100, 2, False),
    ("opus", "opus", "libopus", 48000, 2, False),
    ("webm", "webm", "libopus", 48000, 1, True),
    ("mp4", "mp4", "aac", 44100, 2, True),
    ("mkv", "matroska", "libmp3lame", 32000, 1, True),
    ("mov", "mov", "aac", 48000, 6, True),
    ("wav", "wav", "pcm_s16le", 8000, 1, False),
]


def encode(samples: np.ndarray, path: Path, fmt: str, codec: str, rate: int, channels: int, video: bool) -> None:
    """Write 16 kHz mono `samples` as `path` with the given codec, rate and channel count."""
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        if codec == "vorbis":
            stream.codec_context.options = {"strict": "-2"}  # FFmpeg's own Vorbis encoder is 'experimental'
        vstream = None
        if video:
            vstream = out.add_stream("libvpx" if fmt == "webm" else "mpeg4", rate=5)
            vstream.width, vstream.height, vstream.pix_fmt = 64, 48, "yuv420p"
        source = av.AudioFrame.from_ndarray((samples * 32767).astype(np.int16)[None, :], format="s16", layout="mono")
        source.sample_rate = SAMPLE_RATE
        resampler = av.AudioResampler(format=stream.codec_context.codec.audio_formats[0].name, layout=layout,
                                      rate=rate, frame_size=stream.codec_context.frame_size or 1024)
        for frame in resampler.resample(source) + resampler.resample(None):
            frame.pts = None
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if vstream is not None:
            for i in range(int(len(samples) / SAMPLE_RATE * 5)):
                image = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 7 % 255, np.uint8), format="rgb24")
                out.mux(vstream.encode(image))
            out.mux(vstream.encode(None))


@pytest.fixture(scope="module")
def reference(clip) -> np.ndarray:
    return decode(clip("jfk")["path"])


@pytest.mark.parametrize("suffix,fmt,codec,rate,channels,video", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_every_format_decodes_to_16k_mono(tmp_path, reference, suffix, fmt, codec, rate, channels, video):
    path = tmp_path / f"clip.{suffix}"
    encode(reference, path, fmt, codec, rate, channels, video)
    decoded = decode(path)
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    # codecs add priming samples and pad the last frame; 80 ms covers all of them
    assert abs(len(decoded) - len(reference)) < 0.08 * SAMPLE_RATE
    level = lambda x: np.sqrt(np.mean(x[: len(reference)] ** 2))  # noqa: E731
    assert level(decoded) == pytest.approx(level(reference), rel=0.35)
    # the decoded signal is the same sound: its 10 ms envelope correlates with the original's,
    # allowing for the encoder's priming delay (AAC adds 1024 samples)
    env = lambda x: np.abs(x[: len(x) // 160 * 160]).reshape(-1, 160).mean(axis=1)  # noqa: E731
    a, b = env(reference), env(decoded)
    n = min(len(a), len(b)) - 10
    best = max(np.corrcoef(a[:n], b[lag:lag + n])[0, 1] for lag in range(10))
    assert best > 0.9


def test_decodes_bytes_and_file_objects(clip):
    path = clip("aishell1")["path"]
    from_path = decode(path)
    assert np.array_equal(decode(path.read_bytes()), from_path)
    with open(path, "rb") as f:
        assert np.array_equal(decode(f), from_path)


def test_highpass_removes_rumble():
    t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    hum = (0.3 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    filters = AudioFilters(highpass_hz=200)
    filtered_hum = _roundtrip(hum, filters)
    filtered_tone = _roundtrip(tone, filters)
    assert np.sqrt(np.mean(filtered_hum[4000:-4000] ** 2)) < 0.1 * np.sqrt(np.mean(hum**2))
    assert np.sqrt(np.mean(filtered_tone[4000:-4000] ** 2)) > 0.8 * np.sqrt(np.mean(tone**2))


def test_loudness_normalisation_lifts_a_quiet_recording(clip):
    quiet = decode(clip("librispeech")["path"]) * 0.02
    louder = _roundtrip(quiet, AudioFilters(normalize_loudness=True))
    assert abs(len(louder) - len(quiet)) < 0.05 * SAMPLE_RATE
    assert np.sqrt(np.mean(louder**2)) > 10 * np.sqrt(np.mean(quiet**2))


def _roundtrip(samples: np.ndarray, filters: AudioFilters) -> np.ndarray:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return decode(buf.getvalue(), filters)


@pytest.mark.parametrize("content,expected", [
    (b"", "empty"),
    (b"this is a text file, not audio\n" * 20, "not an audio or video file"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" * 10, "not an audio or video file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "no audio track"),  # FFmpeg reads it as an image
])
def test_bad_files_give_one_clear_error(tmp_path, content, expected):
    path = tmp_path / "recording.wav"
    path.write_bytes(content)
    with pytest.raises(HushError) as info:
        decode(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(HushError, match="no such file"):
        decode(tmp_path / "nope.wav")
    with pytest.raises(HushError, match="folder"):
        decode(tmp_path)


def test_tags_that_are_not_utf8_do_not_stop_a_file(tmp_path, reference):
    # PyAV < 19 raised UnicodeDecodeError on opening such a file unless told otherwise; 19 no longer takes the option
    plain, tagged = tmp_path / "plain.wav", tmp_path / "tagged.wav"
    write_wav(plain, reference)
    write_wav(tagged, reference)
    add_info_tags(tagged, {b"INAM": "Entrevue au caf\xe9".encode("latin-1"), b"IART": b"Ren\xe9"})
    seconds, chunks = open_stream(tagged)
    assert seconds == pytest.approx(len(reference) / SAMPLE_RATE, abs=0.01)
    np.testing.assert_array_equal(np.concatenate(list(chunks)), decode(plain))


def test_video_without_audio_track(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")))
        out.mux(stream.encode(None))
    with pytest.raises(HushError, match="no audio track"):
        decode(path)


def test_truncated_mp3_keeps_what_decodes(tmp_path, reference):
    path = tmp_path / "clip.mp3"
    encode(reference, path, "mp3", "libmp3lame", 44100, 1, False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    decoded = decode(path)
    assert 0.4 * len(reference) < len(decoded) < 0.6 * len(reference)


def test_nan_samples_become_silence(tmp_path):
    samples = np.full(SAMPLE_RATE, np.nan, dtype=np.float32)
    samples[:100] = 0.5
    path = tmp_path / "nan.wav"
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    decoded = decode(path)
    assert np.isfinite(decoded).all()
