"""The web page: its helpers, and the page itself through Streamlit's AppTest."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("streamlit", reason="the web page needs Streamlit (pip install 'hushscribe[web]')")

from hushscribe.options import OutputOptions  # noqa: E402
from hushscribe.transcript import Segment, Transcript  # noqa: E402
from hushscribe.web import downloads, editable_text, waveform, with_edits, with_names, zip_of  # noqa: E402

WEB = __import__("hushscribe.web", fromlist=["web"]).__file__


def sample() -> Transcript:
    return Transcript("talk.wav", 20.0, [Segment(1.0, 5.0, "Hello there.", "en"),
                                         Segment(9.0, 14.0, "General Kenobi.", "en")], "en", "whisper", "base")


def test_waveform_of_an_hour_is_small_and_keeps_peaks():
    hour = np.zeros(16000 * 3600, np.float32)
    hour[16000 * 1800] = 0.9
    envelope = waveform(hour)
    assert len(envelope) == 1200 and envelope.max() == pytest.approx(0.9)


def test_edits_line_by_line_reach_every_format():
    transcript = sample()
    edited, aligned = with_edits(transcript, editable_text(transcript).replace("Hello there.", "Hello, there!"))
    assert aligned
    files = downloads(edited, OutputOptions())
    assert "Hello, there!" in files["txt"] and "Hello, there!" in files["srt"]
    assert json.loads(files["json"])["segments"][0]["text"] == "Hello, there!"
    assert files["srt"].count("-->") == 2


def test_edits_that_change_the_line_count_keep_the_text():
    transcript = sample()
    edited, aligned = with_edits(transcript, "Hello there.\nGeneral\nKenobi.")
    assert not aligned and edited.text == "Hello there. General Kenobi."
    assert edited.segments[0].start == 1.0 and edited.segments[0].end == 14.0


def test_speaker_names_reach_every_download_and_leave_the_result_alone():
    transcript = sample()
    transcript.segments = [replace(transcript.segments[0], speaker="S1"), replace(transcript.segments[1], speaker="S2")]
    transcript.speakers = {"S1": "Speaker 1", "S2": "Speaker 2"}
    named = with_names(transcript, {"S1": "Ana", "S2": "  "})  # a blank name keeps the default
    files = downloads(named, OutputOptions())
    assert "[00:00:01] Ana: Hello there." in files["txt"] and "[00:00:09] Speaker 2: General Kenobi." in files["txt"]
    assert "<v Ana>Hello there." in files["vtt"] and "Ana: Hello there." in files["srt"]
    assert json.loads(files["json"])["segments"][0]["speaker_name"] == "Ana" and "### Ana" in files["md"]
    assert transcript.speakers["S1"] == "Speaker 1"  # the kept result is not renamed under the page's feet


def test_zip_holds_every_download():
    files = {f"talk.{fmt}": content for fmt, content in downloads(sample(), OutputOptions(timestamps=False)).items()}
    archive = zipfile.ZipFile(io.BytesIO(zip_of(files)))
    assert sorted(archive.namelist()) == sorted(files)
    assert archive.read("talk.txt").decode() == files["talk.txt"]


def test_page_loads_the_model_once_and_shows_settings():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(WEB, default_timeout=120).run()
    assert not app.exception
    assert any("ready (loaded in" in s.value for s in app.success)
    assert any("whisper-base" in option for option in app.sidebar.selectbox[0].options)
    assert app.sidebar.selectbox[1].value == "auto"
    assert app.button[0].label == "Transcribe" and app.button[0].disabled  # nothing to transcribe yet
    app.sidebar.checkbox[0].uncheck().run()  # a rerun reuses the loaded model
    assert not app.exception and any("ready" in s.value for s in app.success)
