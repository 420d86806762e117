"""A corpus of bad and odd inputs, generated on the fly from the bundled JFK sample.

Each case says what every surface must do with it: "error" (one clear message that names the
file; a fragment of it is given), "empty" (a transcript with no text: no speech, nothing made up)
or "speech" (the JFK sentence, scored against its reference).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parent.parent
JFK = REPO / "samples" / "jfk.flac"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")


@dataclass(frozen=True)
class Case:
    name: str  # the file name in the corpus
    expect: str  # "error" | "empty" | "speech"
    message: str = ""  # for errors: a fragment of the message


def jfk(rate: int = 16000) -> np.ndarray:
    from hushscribe.audio import decode

    audio = decode(JFK)
    if rate == 16000:
        return audio
    positions = np.arange(int(len(audio) * rate / 16000)) * 16000 / rate
    return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray, rate: int = 16000, channels: int = 1) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm, channels).tobytes() if channels > 1 else pcm.tobytes())


def write_float_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    """32-bit float WAV (format 3), which the stdlib cannot write."""
    data = audio.astype("<f4").tobytes()
    header = (b"RIFF" + (36 + len(data)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
              + (3).to_bytes(2, "little") + (1).to_bytes(2, "little") + rate.to_bytes(4, "little")
              + (rate * 4).to_bytes(4, "little") + (4).to_bytes(2, "little") + (32).to_bytes(2, "little")
              + b"data" + len(data).to_bytes(4, "little"))
    path.write_bytes(header + data)


def add_info_tags(path: Path, tags: dict[bytes, bytes]) -> None:
    """Append a RIFF LIST/INFO chunk of raw tag bytes (e.g. b"INAM": b"Caf\xe9", Latin-1) to a WAV file."""
    fields = b"".join(key + (len(value) + 1).to_bytes(4, "little") + value + b"\0" + b"\0" * (len(value) % 2 == 0)
                      for key, value in tags.items())  # each value NUL-terminated, padded to an even length
    body = path.read_bytes()[8:] + b"LIST" + (len(fields) + 4).to_bytes(4, "little") + b"INFO" + fields
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)


def encode(path: Path, audio: np.ndarray, codec: str, container: str | None = None, rate: int = 16000) -> None:
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray((np.clip(audio, -1, 1) * 32767).astype(np.int16)[None], format="s16",
                                           layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


def video_without_audio(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def build(folder: Path) -> list[Case]:
    """Write the corpus into `folder`; returns its cases."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = jfk()
    cases = []

    def add(name: str, expect: str, message: str = "") -> Path:
        cases.append(Case(name, expect, message))
        return folder / name

    add("empty.wav", "error", "empty").write_bytes(b"")
    write_wav(add("ten_ms.wav", "empty"), speech[:160])
    write_wav(add("silence.wav", "empty"), np.zeros(16000 * 20, np.float32))
    write_wav(add("noise.wav", "empty"), np.random.default_rng(0).normal(0, 0.05, 16000 * 15).astype(np.float32))
    encode(folder / "whole.mp3", speech, "libmp3lame")
    data = (folder / "whole.mp3").read_bytes()
    (folder / "whole.mp3").unlink()
    add("cut_header.mp3", "error", "").write_bytes(data[:200])
    add("cut_half.mp3", "speech").write_bytes(data[: int(len(data) * 0.97)])  # the tail of the last word lost
    encode(folder / "whole.m4a", speech, "aac", "mp4")
    m4a = (folder / "whole.m4a").read_bytes()
    (folder / "whole.m4a").unlink()
    add("cut.m4a", "error", "").write_bytes(m4a[: len(m4a) // 3])
    encode(add("mp3_named.wav", "speech"), speech, "libmp3lame", "mp3")
    add("notes.wav", "error", "not an audio").write_text("These are my notes, not a recording.\n" * 50)
    add("report.wav", "error", "not an audio").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" * 40)
    add("photo.wav", "error", "audio").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    video_without_audio(add("screen.mp4", "error", "no audio track"))
    write_wav(add("phone_8k.wav", "speech"), jfk(8000), rate=8000)
    write_wav(add("six_channels.wav", "speech"), speech, channels=6)
    write_float_wav(add("studio_192k_float.wav", "speech"), jfk(192000), 192000)
    broken = speech.copy()
    broken[1000:1400] = np.nan
    broken[5000:5100] = np.inf
    write_float_wav(add("nan_inf.wav", "speech"), broken, 16000)
    encode(add("voice.ogg", "speech"), jfk(48000), "libopus", "ogg", rate=48000)
    write_wav(add("my talk – 会议 (final).wav", "speech"), speech)
    write_wav(add("..odd..name.wav", "speech"), speech)
    tagged = add("latin1_tags.wav", "speech")  # tags written by an old Windows tool: not UTF-8
    write_wav(tagged, speech)
    add_info_tags(tagged, {b"INAM": "Entrevue au café".encode("latin-1"), b"IART": "René".encode("latin-1")})
    return cases
