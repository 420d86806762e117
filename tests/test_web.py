"""The web page: its helpers, and the page itself through Streamlit's AppTest."""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("streamlit", reason="the web page needs Streamlit (pip install 'hushscribe[web]')")

from hushscribe.options import OutputOptions  # noqa: E402
from hushscribe.transcript import Segment, Transcript, Word  # noqa: E402
from hushscribe.web import EDITOR_ASSETS, downloads, editor_lines, waveform, with_edits, with_names, word_pieces, zip_of  # noqa: E402

WEB = __import__("hushscribe.web", fromlist=["web"]).__file__


def sample() -> Transcript:
    return Transcript("talk.wav", 20.0, [Segment(1.0, 5.0, "Hello there.", "en"),
                                         Segment(9.0, 14.0, "General Kenobi.", "en")], "en", "whisper", "base")


def test_waveform_of_an_hour_is_small_and_keeps_peaks():
    hour = np.zeros(16000 * 3600, np.float32)
    hour[16000 * 1800] = 0.9
    envelope = waveform(hour)
    assert len(envelope) == 1200 and envelope.max() == pytest.approx(0.9)


def timed() -> Transcript:
    """sample() with its words timed, as with Word timings on."""
    transcript = sample()
    transcript.segments[0].words = [Word(1.0, 2.5, "Hello"), Word(2.6, 4.8, "there.")]
    transcript.segments[1].words = [Word(9.0, 11.0, "General"), Word(11.2, 13.9, "Kenobi.")]
    return transcript


def test_edits_line_by_line_reach_every_format():
    edited = with_edits(sample(), ["Hello, there!", "General Kenobi."])
    files = downloads(edited, OutputOptions())
    assert "Hello, there!" in files["txt"] and "Hello, there!" in files["srt"]
    assert json.loads(files["json"])["segments"][0]["text"] == "Hello, there!"
    assert files["srt"].count("-->") == 2


def test_an_edited_line_loses_its_words_and_the_others_keep_theirs():
    transcript = timed()
    edited = with_edits(transcript, [" Hello, there! ", "General Kenobi."])
    assert edited.segments[0].text == "Hello, there!" and edited.segments[0].words is None
    assert edited.segments[1] == transcript.segments[1]  # unchanged, words and all
    assert transcript.segments[0].words  # the kept result is not edited under the page's feet
    assert [line["pieces"] is None for line in editor_lines(edited)] == [True, False]


def test_word_pieces_put_together_are_the_text():
    text = "Hello there, general Kenobi."
    words = [Word(1.0, 1.4, " Hello"), Word(1.5, 2.0, "there,"), Word(2.1, 2.6, "general"), Word(2.7, 3.3, "Kenobi.")]
    pieces = word_pieces(text, words)
    assert "".join(p["text"] for p in pieces) == text
    assert [p["text"] for p in pieces if "start" in p] == ["Hello", "there,", "general", "Kenobi."]
    assert pieces[0] == {"text": "Hello", "start": 1.0, "end": 1.4} and pieces[1] == {"text": " "}


def test_word_pieces_of_chinese_are_characters_and_a_word_not_found_is_left_out():
    pieces = word_pieces("你好，世界。", [Word(0.0, 0.3, "你"), Word(0.3, 0.6, "好，"), Word(0.6, 0.9, "地"),
                                      Word(0.9, 1.2, "世界。")])
    assert "".join(p["text"] for p in pieces) == "你好，世界。"
    assert [(p["text"], p.get("start")) for p in pieces] == [("你", 0.0), ("好，", 0.3), ("世界。", 0.9)]


def test_words_that_do_not_match_the_text_leave_the_line_whole():
    assert word_pieces("General Kenobi.", [Word(9.0, 11.0, "Obi-Wan")]) is None
    assert word_pieces("General Kenobi.", None) is None and word_pieces("", []) is None


def test_editor_lines_carry_stamps_speakers_and_words():
    transcript = timed()
    transcript.segments = [replace(transcript.segments[0], speaker="S1"), replace(transcript.segments[1], speaker="S2")]
    transcript.speakers = {"S1": "Speaker 1", "S2": "Speaker 2"}
    lines = editor_lines(with_names(transcript, {"S1": "Ana"}))
    assert [(line["stamp"], line["speaker"], line["text"]) for line in lines] == [
        ("[00:00:01]", "Ana", "Hello there."), ("[00:00:09]", "Speaker 2", "General Kenobi.")]
    assert (lines[1]["start"], lines[1]["end"]) == (9.0, 14.0)
    assert [p.get("start") for p in lines[1]["pieces"]] == [9.0, None, 11.2]
    assert editor_lines(sample())[0]["speaker"] is None and editor_lines(sample())[0]["pieces"] is None
    json.dumps(lines)  # what the component receives


def test_the_editor_ships_its_files_and_loads_nothing_from_outside():
    assert {p.name for p in EDITOR_ASSETS.iterdir()} >= {"index.html", "editor.js", "editor.css"}
    for asset in EDITOR_ASSETS.iterdir():
        text = asset.read_text()
        outside = r"https?:|[\"'(=]\s*//|@import|@font-face|fetch\(|XMLHttpRequest|WebSocket"
        assert not re.findall(outside, text), asset.name


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


def test_page_draws_a_result_in_the_editor_and_its_edits_reach_the_preview():
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(WEB, default_timeout=120)
    app.session_state["results"] = {"talk.wav": {"transcript": timed(), "editor": "editor-talk"}}
    app.run()
    assert not app.exception
    (editor,) = app.get("component_instance")
    args = json.loads(editor.proto.json_args)
    assert args["lines"] == editor_lines(timed()) and args["audio"] is None  # the file is no longer uploaded
    app.session_state["editor-talk"] = ["Hello, there!", "General Kenobi."]  # as the editor sends it back
    app.run()
    assert not app.exception
    assert app.code[0].value == "[00:00:01] Hello, there!\n\n[00:00:09] General Kenobi."
    lines = json.loads(app.get("component_instance")[0].proto.json_args)["lines"]
    assert lines[0]["text"] == "Hello, there!" and lines[0]["pieces"] is None and lines[1]["pieces"]


def library_page(monkeypatch, path) -> "AppTest":  # noqa: F821
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("HUSHSCRIBE_LIBRARY", str(path))
    monkeypatch.delenv("HUSHSCRIBE_LIBRARY_PASSPHRASE", raising=False)
    app = AppTest.from_file(WEB, default_timeout=60)
    app.session_state["view"] = "Library"
    return app.run()


def test_the_library_view_says_it_is_off_until_turned_on(monkeypatch, tmp_path):
    app = library_page(monkeypatch, tmp_path / "library.db")
    assert not app.exception and "The library is off" in app.info[0].value
    assert not (tmp_path / "library.db").exists() and not app.success  # no model was loaded for it


def test_the_library_view_finds_opens_at_the_hit_renames_exports_and_deletes(monkeypatch, tmp_path):
    from hushscribe.library import open_library, parse_search

    path = tmp_path / "library.db"
    segments = [Segment(1.0, 5.0, "我们先说一下明年的预算。", "zh", speaker="S1"),
                Segment(9.0, 14.0, "The budgets were discussed.", "en", speaker="S2")]
    transcript = Transcript("meeting.wav", 20.0, segments, "zh", "whisper", "base",
                            speakers={"S1": "Speaker 1", "S2": "Speaker 2"})
    with open_library(path, create=True) as library:
        transcript_id = library.add(transcript, recording=b"RIFF....WAVE", keep_audio=True)
    app = library_page(monkeypatch, path)
    assert not app.exception and "#1 meeting.wav" in app.markdown[0].value  # the list, newest first
    app.text_input(key="library_query").input("budget").run()
    (hit,) = [m.value for m in app.markdown if "budgets" in m.value]
    assert "**:orange-background[budgets]**" in hit and "Speaker 2" in hit and "`00:00:09`" in hit
    app.button(key="hit-0").click().run()
    assert not app.exception
    (player,) = app.get("audio")
    assert player.proto.start_time == 9
    assert any("▶ `00:00:09` Speaker 2: **The budgets were discussed.**" in m.value for m in app.markdown)
    assert [b.label for b in app.get("download_button")][:2] == ["TXT", "SRT"]
    app.text_input(key="saved-name-S1").input("Ana").run()
    app.button(key="save-names").click().run()
    with open_library(path) as library:
        assert library.transcript(transcript_id).speakers["S1"] == "Ana"
    app.text_input(key="library_query").input("預算").run()  # Traditional finds Simplified
    assert any("Ana:" in m.value and "orange-background[预算]" in m.value for m in app.markdown)
    app.button(key="delete-saved").click().run()
    app.button(key="delete-for-good").click().run()
    assert not app.exception
    with open_library(path) as library:
        assert library.entries() == [] and library.search(parse_search("预算")) == []
    app.text_input(key="library_query").input("budget OR").run()
    assert "Nothing found" in app.info[0].value


def test_an_encrypted_library_asks_for_its_passphrase_in_the_page(monkeypatch, tmp_path):
    pytest.importorskip("sqlcipher3", reason="pip install 'hushscribe[encrypt]'")
    from hushscribe.library import open_library

    path = tmp_path / "library.db"
    with open_library(path, "page passphrase", create=True) as library:
        library.add(sample())
    app = library_page(monkeypatch, path)
    assert "give its passphrase" in app.error[0].value
    app.text_input(key="library_passphrase").input("wrong one").run()
    assert "wrong passphrase" in app.error[0].value
    app.text_input(key="library_passphrase").input("page passphrase").run()
    assert not app.error and "#1 talk.wav" in app.markdown[0].value
    assert any(caption.value.endswith("library.db · encrypted") for caption in app.caption)
