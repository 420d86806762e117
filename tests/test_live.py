"""Live captions (hushscribe.live): committed text only grows, utterances close at pauses, and the real engine's
live transcript matches the offline one."""

from __future__ import annotations

import numpy as np
import pytest

from hushscribe.audio import SAMPLE_RATE, decode
from hushscribe.engines.base import Recognition
from hushscribe.live import LiveRecognizer, _agreed, _joined, _units
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
    captions = fed(LiveRecognizer(engine), speech)
    committed = [c.committed for c in captions]
    assert all(later.startswith(earlier) for earlier, later in zip(committed, committed[1:]))
    assert committed[1] == "And" and committed[2] == "And so my"  # agreed by the second and third hypotheses
    assert captions[3].committed == "And so my" and captions[3].tentative == " fellow Americans"  # "Ask" disagreed
    assert captions[-1].final and captions[-1].committed.startswith("And so my")
    assert all(not c.final for c in captions[:-1]) and len(engine.calls) >= 8


@pytest.mark.slow
def test_live_captions_of_two_utterances_match_the_offline_transcript(transcriber, clip):
    first, second = clip("jfk"), clip("new_home")
    gap = np.zeros(2 * SAMPLE_RATE, np.float32)
    audio = np.concatenate([gap[:SAMPLE_RATE // 2], decode(first["path"]), gap, decode(second["path"]), gap])
    captions = fed(LiveRecognizer(transcriber.engine, step_s=1.0), audio)
    finals = [c for c in captions if c.final]
    assert [c.utterance for c in finals] == [0, 1]
    for caption, row in zip(finals, (first, second)):
        offline = transcriber.transcribe(decode(row["path"]), language="en").text
        assert error_rate(row["text"], caption.committed) <= error_rate(row["text"], offline) + 0.02, caption
    # captions while the first utterance is spoken: text shown, and some of it committed, before it ends
    during = [c for c in captions if c.utterance == 0 and not c.final]
    assert len(during) >= 5 and any(c.committed for c in during) and during[0].end < finals[0].end - 5
    for utterance in (0, 1):
        committed = [c.committed for c in captions if c.utterance == utterance]
        assert all(later.startswith(earlier) for earlier, later in zip(committed, committed[1:]))


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
