"""Segmentation: speech covered, ≤ 30 s, cut inside silences, nothing overlapping."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hushscribe import vad
from hushscribe.audio import SAMPLE_RATE, decode


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def assert_well_formed(segments: list[vad.Span], n_samples: int) -> None:
    for a, b in zip(segments, segments[1:]):
        assert a.end <= b.start, "segments overlap"
    for s in segments:
        assert 0 <= s.start < s.end <= n_samples
        assert s.duration_s <= vad.MAX_SEGMENT_S + 1e-9


def test_speech_between_silences_is_covered_once(manifest):
    clips = [decode(r["path"]) for r in manifest if r["lang"] in ("en", "zh")][:8]
    pieces, truth, cursor = [], [], 0
    for c in clips:
        pieces += [silence(3.0), c]
        cursor += int(3.0 * SAMPLE_RATE)
        truth.append((cursor, cursor + len(c)))
        cursor += len(c)
    audio = np.concatenate(pieces + [silence(2.0)])
    segments = vad.split(audio)
    assert_well_formed(segments, len(audio))
    covered = np.zeros(len(audio), bool)
    for s in segments:
        covered[s.start:s.end] = True
    for start, end in truth:
        # every clip's loud part (its speech) is inside some segment
        loud = np.flatnonzero(np.abs(audio[start:end]) > 0.05) + start
        assert covered[loud].mean() > 0.99
    # of the 3 s silences between clips only the padding around speech is sent to the recogniser
    padding = len(truth) * 2 * vad.VadOptions().pad_s * SAMPLE_RATE
    assert covered.sum() < sum(e - s for s, e in truth) + padding + 0.5 * SAMPLE_RATE


def test_long_speech_without_pauses_is_cut_at_quiet_points(manifest):
    # clips glued end to end with no pause: one long span that must be split into ≤ 30 s pieces
    audio = np.concatenate([decode(r["path"]) for r in manifest if r["lang"] == "zh"])
    segments = vad.split(audio)
    assert_well_formed(segments, len(audio))
    assert len(segments) >= 3
    for a, b in zip(segments, segments[1:]):
        if a.end == b.start:  # a cut inside speech: it sits at a quiet moment
            window = audio[a.end - 800:a.end + 800]
            assert np.sqrt(np.mean(window**2)) < np.sqrt(np.mean(audio**2))


def test_quietest_point_is_found():
    rng = np.random.default_rng(1)
    loud = (rng.standard_normal(SAMPLE_RATE * 40) * 0.3).astype(np.float32)
    loud[SAMPLE_RATE * 22: SAMPLE_RATE * 22 + 1600] *= 0.01
    pieces = vad._split_long(vad.Span(0, len(loud)), loud, int(30 * SAMPLE_RATE))
    assert pieces[0].end == pytest.approx(SAMPLE_RATE * 22 + 800, abs=200)
    assert pieces[-1].end == len(loud)


@pytest.mark.parametrize("make", [
    lambda: silence(20),
    lambda: (np.random.default_rng(0).standard_normal(SAMPLE_RATE * 20) * 0.05).astype(np.float32),
    lambda: np.zeros(0, np.float32),
], ids=["silence", "steady-noise", "empty"])
def test_no_speech_gives_no_segments(make):
    assert vad.split(make()) == []


def test_quiet_speech_silero_misses_is_kept(clip):
    # a child reading over music: Silero scores most of it below 0.3, but it is loud, so it stays
    audio = decode(clip("child_reading_poem")["path"])
    segments = vad.split(audio)
    kept = sum(s.end - s.start for s in segments)
    assert kept > 0.9 * len(audio)


def test_segments_respect_max_length_option(clip):
    audio = decode(clip("harvard")["path"])
    options = vad.VadOptions(max_segment_s=8.0)
    segments = vad.split(audio, options)
    assert all(s.duration_s <= 8.0 for s in segments)
    assert len(segments) >= 4


def test_silero_read_as_audio_arrives_gives_the_probabilities_of_one_read(clip):
    audio = decode(clip("jfk")["path"])
    stream, sizes = vad.SileroStream(), np.random.default_rng(0).integers(1, 3 * vad.FRAME, len(audio))
    edges = np.cumsum(np.concatenate(([0], sizes)))
    pieces = [stream.feed(audio[a:b]) for a, b in zip(edges, edges[1:]) if a < len(audio)]
    streamed = np.concatenate(pieces + [stream.flush()])
    assert np.allclose(streamed, vad.speech_probabilities(audio), atol=1e-5)
    assert len(stream.flush()) == 0  # nothing left


def test_silero_convolutions_on_all_cores_give_the_probabilities_of_the_whole_model(clip, monkeypatch):
    """The frames' convolutions run in pieces on several threads, the LSTM after them; the probabilities are
    the single ONNX model's, read in one go, exactly."""
    import onnxruntime

    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # pieces of 69 frames for this 11 s clip
    audio = decode(clip("jfk")["path"])
    path = Path(importlib.util.find_spec("faster_whisper").submodule_search_locations[0]) / "assets"
    whole = onnxruntime.InferenceSession(str(path / "silero_vad_v6.onnx"), providers=["CPUExecutionProvider"])
    state = np.zeros((1, 1, 128), np.float32)
    frames = vad._frames_with_context(audio, 0, -(-len(audio) // vad.FRAME))
    expected = whole.run(None, {"input": frames, "h": state, "c": state})[0].reshape(-1)
    assert np.array_equal(vad.speech_probabilities(audio), expected)


def test_speech_runs_are_the_unpadded_spans():
    active = np.zeros(100, bool)
    active[10:20] = active[25:30] = True  # a pause of 5 frames (0.16 s) inside speech
    active[60:63] = True  # a blip: too short to be speech
    assert vad.speech_runs(active) == [(10, 30)]
    unpadded = vad.speech_spans(active, 100 * vad.FRAME, vad.VadOptions(pad_s=0))
    assert unpadded == [vad.Span(10 * vad.FRAME, 30 * vad.FRAME)]
