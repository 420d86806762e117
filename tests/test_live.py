"""Live captions (hushscribe.live): committed text only grows, utterances open and close at once when speech starts
and stops, Silero reads each frame once, and the real engine's live transcript matches the offline one."""

from __future__ import annotations

import numpy as np
import pytest

from hushscribe import vad
from hushscribe.audio import SAMPLE_RATE, decode
from hushscribe.engines.base import Recognition
from hushscribe.live import END_PAUSE_S, PRE_ROLL_S, Caption, LiveRecognizer, _agreed, _joined, _units
from hushscribe.scoring import error_rate

CHUNK = SAMPLE_RATE // 10  # 100 ms, as a microphone delivers it


def test_units_are_words_or_chinese_characters():
    assert _units("And so, my fellow Americans.") == ["And", "so,", "my", "fellow", "Americans."]
    assert _units("我们用Python，好吗？") == ["我", "们", "用", "Python，", "好", "吗？"]
    assert _joined(_units("我们用 Python 吧。And so.")) == "我们用 Python 吧。And so."
    assert _agreed(_units("ask NOT!"), _units("ask not what")) == 2  # compared without case or punctuation
    assert _agreed(_units("ask what"), _units("ask not")) == 1


class Scripted:
    """An engine that answers each call with the next hypothesis of a script."""

    name, model_name, batch_size, device = "scripted", "test", 1, "cpu"

    def __init__(self, hypotheses: list[str]) -> None:
        self.hypotheses, self.calls = list(hypotheses), []

    def supports_language(self, language: str) -> bool:
        return True

    def language_probabilities(self, segments):
        return None

    def recognize(self, segments, options):
        self.calls.append(len(segments[0]) / SAMPLE_RATE)
        return [Recognition(text=self.hypotheses.pop(0) if len(self.hypotheses) > 1 else self.hypotheses[0],
                            language="en")]


def fed(recognizer: LiveRecognizer, audio: np.ndarray) -> list:
    captions = [c for i in range(0, len(audio), CHUNK) for c in recognizer.feed(audio[i:i + CHUNK])]
    return captions + recognizer.finish()


def test_committed_text_only_grows_and_two_agreeing_hypotheses_commit(clip):
    speech = decode(clip("jfk")["path"])
    engine = Scripted(["And", "And so my", "And so my fellow", "Ask so my fellow Americans", "And so my fellow"
                       " Americans ask", "And so my fellow Americans, ask not."])
    captions = fed(LiveRecognizer(engine, end_pause_s=1.5), speech)  # one utterance: jfk pauses for ≤ 1.1 s
    assert captions[0].text == "" and not captions[0].final  # speech started
    committed = [c.committed for c in captions]
    assert all(later.startswith(earlier) for earlier, later in zip(committed, committed[1:]))
    assert committed[2] == "And" and committed[3] == "And so my"  # agreed by the second and third hypotheses
    assert captions[4].committed == "And so my" and captions[4].tentative == " fellow Americans"  # "Ask" disagreed
    assert captions[-1].final and captions[-1].committed.startswith("And so my")
    assert all(not c.final for c in captions[:-1]) and len(engine.calls) >= 8


def arrivals(recognizer: LiveRecognizer, audio: np.ndarray) -> list[tuple[float, Caption]]:
    """Each caption with the seconds of audio fed when it came back."""
    return [((i + CHUNK) / SAMPLE_RATE, c) for i in range(0, len(audio), CHUNK)
            for c in recognizer.feed(audio[i:i + CHUNK])]


def test_speech_start_is_told_at_once_before_any_text(clip):
    audio = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), decode(clip("new_home")["path"])])
    speech_start = vad.speech_runs(vad.activity(audio[SAMPLE_RATE:]))[0][0] * vad.FRAME / SAMPLE_RATE + 1.0
    engine = Scripted(["we must"])
    live = LiveRecognizer(engine)
    at, captions = next(((i + CHUNK) / SAMPLE_RATE, captions) for i in range(0, len(audio), CHUNK)
                        if (captions := live.feed(audio[i:i + CHUNK])))
    caption, = captions
    assert (caption.utterance, caption.committed, caption.tentative, caption.final) == (0, "", "", False)
    assert engine.calls == []  # before the first recognition
    assert at <= speech_start + vad.VadOptions().min_speech_s + 0.1 + 0.05  # as soon as it is long enough to be speech
    assert caption.start == pytest.approx(speech_start - PRE_ROLL_S, abs=0.05)


def test_an_utterance_closes_as_soon_as_its_speech_is_followed_by_the_end_pause(clip):
    audio = decode(clip("harvard")["path"])
    speech = vad.speech_runs(vad.activity(audio))  # offline: eleven sentences, pauses of ≥ 0.57 s between them
    finals = [(at, c) for at, c in arrivals(LiveRecognizer(Scripted(["a sentence"])), audio) if c.final]
    assert len(finals) == len(speech) == 11
    frame = vad.FRAME / SAMPLE_RATE
    for (at, caption), (_, end) in zip(finals, speech):
        speech_end = end * frame
        # within END_PAUSE_S and one chunk of the speech's end (its last frame as the offline VAD sees it, ± one)
        assert speech_end + END_PAUSE_S - frame <= at <= speech_end + END_PAUSE_S + CHUNK / SAMPLE_RATE + frame
        assert caption.end == pytest.approx(speech_end + vad.VadOptions().pad_s, abs=2 * frame)  # padded as offline


def test_silero_reads_each_frame_once_however_long_the_utterance(clip, monkeypatch):
    read: list[int] = []  # frames Silero reads for each chunk
    run_silero = vad._run_silero

    def counted(batch, state=None):
        read.append(len(batch))
        return run_silero(batch, state)

    monkeypatch.setattr(vad, "_run_silero", counted)
    speech = decode(clip("jfk")["path"])
    captions = fed(LiveRecognizer(Scripted(["And so"]), end_pause_s=1.5), speech)  # an 11 s utterance
    assert [c.final for c in captions].count(True) == 1
    assert sum(read) == -(-len(speech) // vad.FRAME) and max(read) <= -(-CHUNK // vad.FRAME)


@pytest.mark.slow
def test_live_captions_of_two_recordings_match_the_offline_transcript(transcriber, clip):
    first, second = clip("jfk"), clip("new_home")
    gap = np.zeros(2 * SAMPLE_RATE, np.float32)
    audio = np.concatenate([gap[:SAMPLE_RATE // 2], decode(first["path"]), gap, decode(second["path"]), gap])
    captions = fed(LiveRecognizer(transcriber.engine, step_s=1.0), audio)
    finals = [c for c in captions if c.final]
    assert [c.utterance for c in finals] == list(range(len(finals))) and len(finals) >= 2
    first_end = 0.5 + first["duration_s"]
    for row, spoken in ((first, [c for c in finals if c.end <= first_end + 0.5]),
                        (second, [c for c in finals if c.start > first_end])):
        offline = transcriber.transcribe(decode(row["path"]), language="en").text
        text = " ".join(c.committed for c in spoken)
        assert error_rate(row["text"], text) <= error_rate(row["text"], offline) + 0.02, spoken
    # captions while the first recording is spoken: text shown, and some of it committed, before each utterance ends
    during = [c for c in captions if c.end < first_end and c.text and not c.final]
    assert len(during) >= 5 and any(c.committed for c in during)
    for utterance in range(len(finals)):
        committed = [c.committed for c in captions if c.utterance == utterance]
        assert committed[0] == "" and all(later.startswith(earlier) for earlier, later in zip(committed, committed[1:]))


def test_the_cli_plays_a_recording_live_and_writes_its_transcript(clip, tmp_path):
    import json
    import subprocess
    import sys
    import time

    row = clip("new_home")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "hushscribe", "live", str(row["path"]), "-l", "en", "-o",
                             str(tmp_path), "-f", "txt,json"], capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert elapsed >= row["duration_s"]  # played in real time
    assert result.stdout.startswith("[00:00:00] ") and error_rate(row["text"], result.stdout[11:]) <= 0.05
    stem = row["path"].stem
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    assert error_rate(row["text"], data["text"]) <= 0.05 and data["segments"][0]["language"] == "en"
    assert (tmp_path / f"{stem}.txt").read_text().startswith("[00:00:00] ")
