"""The Python API: Transcriber.transcribe / stream, over the real engine and over a recording engine
that shows what the pipeline hands to an engine."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from hushscribe import HushError, TranscribeOptions, Transcriber
from hushscribe.audio import SAMPLE_RATE, decode
from hushscribe.engines.base import Recognition, RecognitionOptions
from hushscribe.scoring import error_rate
from hushscribe.transcriber import MIN_LOOP_PIECE_S, MIN_SIDE_PIECE_S, SIDE_BY_SIDE_ROWS, prepare
from hushscribe.transcript import FLAG_REPETITION, Word


class RecordingEngine:
    """Answers with a word every 0.5 s and the segment length, and loops on segments longer than `loop_above_s`;
    word timings (when asked) for those words, but only over a segment's first `hears_s` seconds, as Whisper can
    stop early."""

    name = "recording"
    model_name = "test"
    word_timing = "recognition"

    def __init__(self, batch_size: int = 4, loop_above_s: float = 1e9, hears_s: float = 1e9) -> None:
        self.batch_size = batch_size
        self.loop_above_s = loop_above_s
        self.hears_s = hears_s
        self.calls: list[tuple[list[float], RecognitionOptions]] = []

    def supports_language(self, language: str) -> bool:
        return language != "fil"

    def language_probabilities(self, segments: list[np.ndarray]) -> list[dict[str, float]]:
        return [{"en": 1.0} for _ in segments]

    def recognize(self, segments, options):
        self.calls.append(([len(s) / SAMPLE_RATE for s in segments], options))
        out = []
        for s in segments:
            seconds = len(s) / SAMPLE_RATE
            words = [Word(t, t + 0.3, f" {t:.1f}") for t in np.arange(0.0, min(seconds, self.hears_s) - 0.3, 0.5)]
            heard = "".join(w.text for w in words)  # the words are the text, as Whisper's are
            text = "and again " * 30 if seconds > self.loop_above_s else f"{heard} ({seconds:.1f} seconds)".strip()
            out.append(Recognition(text=text, language=options.language,
                                   words=words if options.word_timestamps else None))
        return out


def speech_with_pauses(clips: list[np.ndarray], pause_s: float = 3.0) -> np.ndarray:
    gap = np.zeros(int(pause_s * SAMPLE_RATE), np.float32)
    return np.concatenate([x for c in clips for x in (gap, c)] + [gap])


def test_segments_follow_vad_in_batches(clip):
    engine = RecordingEngine(batch_size=2)
    audio = speech_with_pauses([decode(clip(name)["path"]) for name in ("jfk", "librispeech", "deepspeech")])
    stream = Transcriber(engine).stream(audio, language="en", context="Kennedy")
    assert stream.duration == pytest.approx(len(audio) / SAMPLE_RATE)
    seen = [(stream.done, stream.position, segment) for segment in stream]
    assert stream.total == 3
    assert [done for done, _, _ in seen] == [1, 2, 3]  # `done` already counts the segment in hand
    assert [position for _, position, _ in seen] == [segment.end for _, _, segment in seen]
    transcript = stream.result()
    assert [len(c[0]) for c in engine.calls] == [2, 1]
    assert all(c[1].language == "en" and c[1].context == "Kennedy" for c in engine.calls)
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts) and transcript.segments[-1].end <= transcript.duration
    assert transcript.language == "en" and transcript.engine == "recording"


class LanguageEngine(RecordingEngine):
    """Hears in each segment the languages a timeline of the recording puts there, weighted by time."""

    def __init__(self, recording: np.ndarray, timeline: list[tuple[float, float, dict[str, float]]]) -> None:
        super().__init__(batch_size=4)
        self.recording, self.timeline = recording, timeline
        self.identified: list[float] = []  # seconds of each segment or piece whose language was asked

    def language_probabilities(self, segments):
        return [self._heard(s) for s in segments]

    def _heard(self, segment: np.ndarray) -> dict[str, float]:
        start = next(i for i in np.flatnonzero(self.recording == segment[0])
                     if np.array_equal(self.recording[i:i + len(segment)], segment)) / SAMPLE_RATE
        end = start + len(segment) / SAMPLE_RATE
        self.identified.append(end - start)
        heard: dict[str, float] = {}
        for a, b, probabilities in self.timeline:
            overlap = max(0.0, min(b, end) - max(a, start))
            for language, p in probabilities.items():
                heard[language] = heard.get(language, 0.0) + p * overlap
        total = sum(heard.values())
        return {language: p / total for language, p in heard.items()}


def timeline_of(clips: list[tuple[np.ndarray, dict[str, float]]], pause_s: float):
    """A recording of `clips` each after `pause_s` of silence, and the timeline LanguageEngine reads."""
    timeline, t = [], 0.0
    for audio, probabilities in clips:
        t += pause_s
        timeline.append((t, t + len(audio) / SAMPLE_RATE, probabilities))
        t += len(audio) / SAMPLE_RATE
    return speech_with_pauses([audio for audio, _ in clips], pause_s), timeline


def test_each_segment_is_recognised_in_its_own_language(clip):
    """No language asked for: a clear switch wins, an unsure short segment keeps the recording's language."""
    english, unsure, chinese = ({"en": 0.98, "de": 0.02}, {"de": 0.55, "en": 0.45}, {"zh": 0.97, "ja": 0.03})
    recording, timeline = timeline_of([(decode(clip("jfk")["path"]), english),
                                       (decode(clip("librispeech")["path"]), english),
                                       (decode(clip("deepspeech")["path"]), unsure),
                                       (decode(clip("aishell1")["path"]), chinese)], pause_s=3.0)
    engine = LanguageEngine(recording, timeline)
    transcript = Transcriber(engine).transcribe(recording)
    assert [s.language for s in transcript.segments] == ["en", "en", "en", "zh"]
    assert [c[1].language for c in engine.calls] == ["en", "zh"]  # one engine call per language
    assert transcript.language == "en" and transcript.languages == ["en", "zh"]
    assert transcript.to_dict()["languages"] == ["en", "zh"]
    assert len(engine.identified) == 4  # every engine was sure enough of each segment: nothing was cut


def test_a_segment_that_changes_language_is_cut_at_the_pause(clip):
    """Two clips 1 s apart make one segment; the engine is unsure of it, so it is cut at the pause and each
    piece recognised in its own language (the English one is never forced into Chinese)."""
    recording, timeline = timeline_of([(decode(clip("jfk")["path"]), {"en": 0.98, "zh": 0.02}),
                                       (decode(clip("aishell1")["path"]), {"zh": 0.97, "en": 0.03})], pause_s=1.0)
    engine = LanguageEngine(recording, timeline)
    stream = Transcriber(engine).stream(recording)
    segments = list(stream)
    assert [s.language for s in segments] == ["en", "zh"] and stream.total == 2
    english, chinese = segments
    assert english.end <= timeline[1][0] and chinese.start >= timeline[0][1]  # the cut is inside the pause
    assert chinese.end - chinese.start < 7.0


def test_unknown_or_unsupported_language_is_a_user_error(clip):
    with pytest.raises(HushError, match="unknown language"):
        Transcriber(RecordingEngine()).transcribe(np.zeros(SAMPLE_RATE, np.float32), language="elvish")
    with pytest.raises(HushError, match="does not know"):
        Transcriber(RecordingEngine()).transcribe(np.zeros(SAMPLE_RATE, np.float32), language="fil")


def test_a_looping_long_segment_is_recognised_again_in_halves(clip):
    engine = RecordingEngine(loop_above_s=20)  # each half is at most 2/3 of the 26 s segment
    audio = decode(clip("film_dialogue_26s")["path"])
    transcript = Transcriber(engine).transcribe(audio, language="en")
    assert len(engine.calls) == 2 and len(engine.calls[1][0]) == 2
    assert "and again" not in transcript.text and FLAG_REPETITION not in transcript.segments[0].flags
    # still one segment covering the same stretch, its text from both halves
    assert len(transcript.segments) == 1 and transcript.text.count("seconds") == 2


def test_a_loop_is_cut_at_pauses_down_to_short_pieces_then_sampled(clip):
    engine = RecordingEngine(loop_above_s=0)  # loops whatever it is given, sampled or not
    audio = decode(clip("film_dialogue_26s")["path"])
    transcript = Transcriber(engine).transcribe(audio, language="en")
    (whole,), _ = engine.calls[0]
    sampled = [seconds for lengths, options in engine.calls if options.sampled for seconds in lengths]
    # the halves of halves, each too short to cut again, add up to the segment, and are each decoded by sampling
    assert len(sampled) >= 4 and sum(sampled) == pytest.approx(whole, abs=0.01)
    assert all(MIN_LOOP_PIECE_S * 2 / 3 <= seconds < 2 * MIN_LOOP_PIECE_S for seconds in sampled)
    # nothing clean came of it: one segment, each piece's loop cut short, flagged
    (segment,) = transcript.segments
    assert FLAG_REPETITION in segment.flags and segment.text.count("and again") <= 4 * len(sampled)


def test_speech_the_words_skip_is_recognised_again_on_its_own(clip):
    first, second = (decode(clip(name)["path"]) for name in ("librispeech", "deepspeech"))
    pause = 0.8  # under max_gap_s: both clips are one segment
    audio = speech_with_pauses([first, second], pause_s=pause)
    engine = RecordingEngine(hears_s=len(first) / SAMPLE_RATE)  # words for the first clip only
    transcript = Transcriber(engine).transcribe(audio, language="en", word_timestamps=True)
    whole, pieces = (c[0] for c in engine.calls)
    assert len(whole) == 1 and len(pieces) >= 2 and sum(pieces) == pytest.approx(whole[0])
    # still one segment, its words now reaching a second into the second clip, its text from every piece
    (segment,) = transcript.segments
    assert segment.words[-1].end > 2 * pause + len(first) / SAMPLE_RATE + 1.0
    assert segment.text.count("seconds") == len(pieces)
    # words heard everywhere, or no word timings to go by: recognised once
    for engine, options in ((RecordingEngine(), {"word_timestamps": True}), (RecordingEngine(hears_s=1.0), {})):
        Transcriber(engine).transcribe(audio, language="en", **options)
        assert len(engine.calls) == 1


def test_a_batch_with_room_gets_long_segments_in_pieces_cut_in_pauses_and_put_together_again(clip, monkeypatch):
    path = clip("harvard_list72")["path"]  # 27.8 s and 6.3 s of read sentences with pauses between them
    plain = RecordingEngine(batch_size=8)
    whole = Transcriber(plain).transcribe(path, language="en")
    gpu = RecordingEngine(batch_size=8)
    gpu.side_by_side = True
    pieced = Transcriber(gpu).transcribe(path, language="en")
    (lengths, _), = gpu.calls  # one batch
    assert len(lengths) > len(plain.calls[0][0]) and min(lengths) >= MIN_SIDE_PIECE_S
    assert max(lengths) < max(plain.calls[0][0]) / 2  # the batch takes as long as its longest piece
    assert sum(lengths) == pytest.approx(sum(plain.calls[0][0]))
    # the same segments as without pieces, each with its pieces' text put together
    assert [(s.start, s.end) for s in pieced.segments] == [(s.start, s.end) for s in whole.segments]
    assert pieced.text.count("seconds") == len(lengths)
    # a full batch has no room, and a batch of SIDE_BY_SIDE_ROWS is not small: nothing is cut
    for batch_size, rows in ((2, SIDE_BY_SIDE_ROWS), (8, 2)):
        full = RecordingEngine(batch_size=batch_size)
        full.side_by_side = True
        monkeypatch.setattr("hushscribe.transcriber.SIDE_BY_SIDE_ROWS", rows)
        Transcriber(full).transcribe(path, language="en")
        assert full.calls[0][0] == plain.calls[0][0]


def test_silence_gives_an_empty_transcript_without_calling_the_engine():
    engine = RecordingEngine()
    transcript = Transcriber(engine).transcribe(np.zeros(SAMPLE_RATE * 5, np.float32))
    assert transcript.segments == [] and transcript.text == "" and engine.calls == []


def test_real_engine_on_path_bytes_and_array_agree(transcriber, clip):
    row = clip("aishell1")
    from_path = transcriber.transcribe(row["path"], language="zh")
    from_bytes = transcriber.transcribe(row["path"].read_bytes(), language="zh")
    from_array = transcriber.transcribe(decode(row["path"]), TranscribeOptions(language="zh"))
    prepared = prepare(row["path"])  # decoded and segmented first, as batch's CPU tasks do
    from_prepared = transcriber.transcribe(prepared, language="zh")
    assert from_path.text == from_bytes.text == from_array.text == from_prepared.text
    assert error_rate(row["text"], from_path.text) < 0.2
    assert from_path.source == from_prepared.source == row["path"].name and from_array.source == "<array>"
    assert from_prepared.duration == pytest.approx(row["duration_s"], abs=0.01)


def test_real_engine_script_choice(transcriber, clip):
    row = clip("aishell1")
    simplified = transcriber.transcribe(row["path"], language="zh").text
    traditional = transcriber.transcribe(row["path"], language="zh", script="traditional").text
    assert "现" in simplified and "現" in traditional


def test_real_engine_on_silence_and_noise_says_nothing(transcriber):
    rng = np.random.default_rng(0)
    assert transcriber.transcribe(np.zeros(SAMPLE_RATE * 10, np.float32)).text == ""
    assert transcriber.transcribe((rng.standard_normal(SAMPLE_RATE * 10) * 0.02).astype(np.float32)).text == ""


def _flac_with_speech_at(path, speech: np.ndarray, minutes: float, every_s: float) -> list[float]:
    """A long FLAC of silence with `speech` every `every_s` seconds; returns where it starts."""
    import av

    total = int(minutes * 60 * SAMPLE_RATE)
    starts = [t for t in np.arange(7.0, minutes * 60 - 20, every_s)]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        step = 60 * SAMPLE_RATE
        for begin in range(0, total, step):
            block = np.zeros(min(step, total - begin), np.float32)
            for t in starts:
                lo = int(t * SAMPLE_RATE) - begin
                if -len(speech) < lo < len(block):
                    piece = speech[max(0, -lo):len(block) - lo]
                    block[max(0, lo):max(0, lo) + len(piece)] = piece
            frame = av.AudioFrame.from_ndarray((block * 32767).astype(np.int16)[None], format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return starts


def test_a_long_file_is_read_in_windows_with_the_right_times(clip, tmp_path, transcriber):
    """25 min (three windows) with the same sentence every 4 min: each comes back, at its own time."""
    from hushscribe.scoring import error_rate

    row = clip("jfk")
    path = tmp_path / "long.flac"
    starts = _flac_with_speech_at(path, decode(row["path"]), 25, 240)
    stream = transcriber.stream(path, language="en")
    transcript = stream.result()
    assert transcript.duration == pytest.approx(25 * 60, abs=0.1)
    assert len(transcript.segments) == len(starts) == 7
    for start, segment in zip(starts, transcript.segments):
        assert abs(segment.start - start) < 1.0 and error_rate(row["text"], segment.text) < 0.1


class GpuEngine(RecordingEngine):
    """A RecordingEngine on "cuda" whose first batch waits (up to 20 s) for `reading` to be set, noting whether it
    was: what it would see if the file went on being read while the GPU recognises."""

    device = "cuda"

    def __init__(self) -> None:
        super().__init__(batch_size=16)
        self.reading = threading.Event()
        self.overlapped: bool | None = None

    def recognize(self, segments, options):
        if self.overlapped is None:
            self.overlapped = self.reading.wait(timeout=20)
        return super().recognize(segments, options)


def test_on_a_gpu_the_next_window_is_read_while_this_one_is_recognised(clip, tmp_path, monkeypatch):
    """Three stages at once: a window is recognised while the next is segmented (VAD) and the one after that
    decoded."""
    from hushscribe import transcriber as transcriber_module

    path = tmp_path / "long.flac"
    _flac_with_speech_at(path, decode(clip("jfk")["path"]), 25, 240)  # three windows
    segmented, windows = transcriber_module._segmented, transcriber_module._windows
    engine = GpuEngine()
    decoded_second = threading.Event()
    decoding_overlapped = []

    def noting(offset, *args):
        if offset:  # a later window is being made
            engine.reading.set()
        else:  # the first window's VAD waits (up to 20 s) for the second window to be decoded meanwhile
            decoding_overlapped.append(decoded_second.wait(timeout=20))
        return segmented(offset, *args)

    def decoding(chunks):
        for offset, samples in windows(chunks):
            if offset:
                decoded_second.set()
            yield offset, samples

    monkeypatch.setattr(transcriber_module, "_segmented", noting)
    monkeypatch.setattr(transcriber_module, "_windows", decoding)
    ahead = Transcriber(engine).transcribe(path, language="en")
    assert engine.overlapped  # the second window was being made while the first was recognised
    assert decoding_overlapped == [True]  # and it was decoded while the first was being segmented
    # the same transcript as without reading ahead
    engine.device = "cpu"
    plain = Transcriber(engine).transcribe(path, language="en")
    assert plain.segments == ahead.segments and plain.duration == ahead.duration
    # stopped early: the thread goes, and an error in it reaches the reader
    engine.device = "cuda"
    stream = Transcriber(engine).stream(path, language="en")
    next(iter(stream))
    del stream  # a caller that stops early lets the stream go
    gc.collect()
    assert not [t for t in threading.enumerate() if t.name == "hushscribe-read-ahead"]

    def failing(offset, *args):
        if offset:
            raise HushError("the file broke off", source="long.flac")
        return segmented(offset, *args)

    monkeypatch.setattr(transcriber_module, "_segmented", failing)
    with pytest.raises(HushError, match="broke off"):
        Transcriber(engine).transcribe(path, language="en")


class FailingGpuEngine(GpuEngine):
    """A GpuEngine whose second batch fails."""

    def recognize(self, segments, options):
        if self.calls:
            raise HushError("the GPU fell off")
        return super().recognize(segments, options)


def test_a_stream_closed_or_failed_lets_its_read_ahead_threads_go_at_once(clip, tmp_path):
    """A stream in a cycle with its iterator is freed by the garbage collector, whenever it runs: closed, or
    failed in recognition, it lets its file and read-ahead threads go itself (collection off here)."""
    path = tmp_path / "long.flac"
    _flac_with_speech_at(path, decode(clip("jfk")["path"]), 25, 240)  # three windows

    def read_ahead() -> list:
        return [t for t in threading.enumerate() if t.name == "hushscribe-read-ahead"]

    engine = GpuEngine()
    engine.reading.set()
    gc.disable()
    try:
        stream = Transcriber(engine).stream(path, language="en")
        next(iter(stream))
        assert read_ahead()
        stream.close()
        assert not read_ahead()
        failing = FailingGpuEngine()
        failing.reading.set()
        with pytest.raises(HushError, match="fell off"):
            Transcriber(failing).transcribe(path, language="en")
        assert not read_ahead()
    finally:
        gc.enable()


DROPPED_IN_A_READ_AHEAD_THREAD = """
import gc, sys, threading, time
import numpy as np
from hushscribe import transcriber

transcriber._segmented = lambda offset, samples, options: (offset, samples, [], None)
dropped = threading.Event()


def decoded():
    for i in range(10):
        if i == 3:  # the collector runs in the decoding thread once the stream has been dropped
            dropped.wait(5)
            gc.collect()
        yield i, np.zeros(10, np.float32)


class Stream:  # as TranscriptStream: in a cycle with its own iterator, so only the collector frees it
    def __init__(self, windows):
        self.windows, self.me = windows, self


gc.disable()  # only the collection above
stream = Stream(transcriber._read_ahead(transcriber._with_speech(transcriber._read_ahead(decoded()), None)))
next(stream.windows)
del stream
dropped.set()
deadline = time.monotonic() + 10
while time.monotonic() < deadline and any(t.name == "hushscribe-read-ahead" for t in threading.enumerate()):
    time.sleep(0.05)
print(sum(t.name == "hushscribe-read-ahead" for t in threading.enumerate()))
"""


def test_a_stream_freed_by_the_collector_in_a_read_ahead_thread_lets_both_threads_go():
    """A stream dropped unfinished is freed by the garbage collector, which may run in the decoding thread: its
    read-ahead stages must not wait there for each other (both threads hung, and with them every later
    collection in the process)."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", DROPPED_IN_A_READ_AHEAD_THREAD], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "0", result.stdout + result.stderr[-2000:]


@pytest.mark.slow
def test_a_three_hour_file_is_streamed_in_bounded_memory(clip, tmp_path):
    """Peak memory for a 3 h recording stays near that of a short one (the audio alone would be
    0.7 GB as float32)."""
    import subprocess
    import sys

    path = tmp_path / "three_hours.flac"
    _flac_with_speech_at(path, decode(clip("jfk")["path"]), 180, 1800)
    probe = ("import resource, sys\nfrom hushscribe import Transcriber\nt = Transcriber('whisper')\n"
             "t.transcribe(sys.argv[2], language='en')\n"
             "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "n = len(t.transcribe(sys.argv[1], language='en').segments)\n"
             "print(n, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, str(path), str(clip("jfk")["path"])], capture_output=True,
                         text=True, check=True).stdout.split()
    segments, base_kb, peak_kb = (int(x) for x in out)
    assert segments == 6
    assert (peak_kb - base_kb) / 1024 < 250, f"peak grew by {(peak_kb - base_kb) / 1024:.0f} MB"


# Language auto (none asked for), the embedded Whisper base on this project's 2-core CI machine, measured
# 2026-11-30 (issue 16): yue clips 30.6 % CER with 8 of 10 found Cantonese (told -l yue: 31.1 %), zh clips 43.1 %
# with none taken for Cantonese (the child's poem over music alone is 0.8-0.9), the long mixed file 26.3 %.
# Ceilings leave about 3 points of margin.
AUTO_YUE_CER, AUTO_ZH_CER, LONG_MIXED_ERROR = 0.34, 0.46, 0.30


@pytest.mark.slow
def test_cantonese_and_mandarin_are_told_apart_without_being_asked(transcriber, manifest):
    for language, ceiling in (("yue", AUTO_YUE_CER), ("zh", AUTO_ZH_CER)):
        rows = [r for r in manifest if r["lang"] == language]
        transcripts = [transcriber.transcribe(r["path"]) for r in rows]
        rate = error_rate([r["text"] for r in rows], [t.text for t in transcripts])
        found = [t.language for t in transcripts]
        print(f"{language} auto: {100 * rate:.1f} %, found {found}")
        assert rate <= ceiling, f"{language}: {rate:.3f} > {ceiling}"
        if language == "yue":
            assert found.count("yue") >= 7  # the two left are a narration and a commentary in standard Chinese
        else:
            assert all("yue" not in t.languages for t in transcripts)  # no Mandarin clip turns Cantonese


@pytest.mark.slow
def test_a_long_recording_that_changes_language_stays_in_each_language(transcriber, manifest):
    """Every zh, yue and en clip joined with 1 s gaps (274 s): each turn in its own language, never translated."""
    from tests.conversations import long_mixed

    audio, reference = long_mixed(manifest)
    transcript = transcriber.transcribe(audio)
    rate = error_rate(reference, transcript.text)
    print(f"long mixed file: {100 * rate:.1f} %, languages {transcript.languages}")
    assert rate <= LONG_MIXED_ERROR
    assert set(transcript.languages) == {"zh", "yue", "en"}
    english = " ".join(s.text for s in transcript.segments if s.language == "en").lower()
    assert "ask not what your country can do for you" in english and "a new home in the stars" in english
