"""The library on real SQLite: indexing, Chinese (Simplified and Traditional) and English search over the shared clips'
reference transcripts, filters, export, deletion that leaves no text in the file, and encryption."""

from __future__ import annotations

import hashlib
import re

import pytest

from hushscribe.errors import HushError
from hushscribe.formats import render
from hushscribe.library import Library, fts_query, open_library, parse_search
from hushscribe.options import OptionError
from hushscribe.text import convert_script
from hushscribe.transcript import Segment, Transcript, Word

HAN = re.compile(r"[\u4e00-\u9fff]{2}")


def reference_transcript(row: dict) -> Transcript:
    """A clip's reference as the transcript recognition would have made: one segment over the clip."""
    text = row["text"].replace(" ", "") if row["lang"] in ("zh", "yue") else row["text"]
    return Transcript(source=row["path"].name, duration=row["duration_s"], language=row["lang"],
                      segments=[Segment(0.0, row["duration_s"], text, row["lang"])], engine="reference")


def meeting() -> Transcript:
    return Transcript(source="budget-meeting.m4a", duration=30.0, language="zh", engine="whisper", model="base",
                      speakers={"S1": "Speaker 1", "S2": "Speaker 2"}, segments=[
                          Segment(0.0, 4.0, "我们先说一下明年的预算。", "zh", speaker="S1"),
                          Segment(4.0, 9.5, "The budgets for marketing were discussed.", "en", speaker="S2",
                                  words=[Word(4.0, 4.3, "The"), Word(4.3, 5.0, "budgets", 0.9)]),
                          Segment(12.0, 15.0, "预算要在三月之前定下来。", "zh", speaker="S1", flags=["hit_token_cap"]),
                      ])


@pytest.fixture(scope="module")
def references(manifest, tmp_path_factory):
    """A library holding every shared clip's reference, and which id each clip got."""
    library = open_library(tmp_path_factory.mktemp("library") / "library.db", create=True)
    ids = {row["file"]: library.add(reference_transcript(row), recording=row["path"]) for row in manifest}
    yield library, ids
    library.close()


def inner_words(text: str) -> list[str]:
    """Two-character Han words inside `text` (never at its start or end), a few per sentence."""
    return [m.group() for m in HAN.finditer(text, 1) if m.end() < len(text)][::4]


def found_in(library: Library, word: str, transcript_id: int) -> list[str]:
    """What each hit in the transcript marked, for a search of `word`."""
    return [hit.text[a:b] for hit in library.search(parse_search(word, limit=100)) if hit.transcript_id == transcript_id
            for a, b in hit.marks]


def test_a_two_character_chinese_word_inside_a_sentence_is_found_in_either_script(references, manifest):
    library, ids = references
    checked = 0
    for row in (r for r in manifest if r["lang"] in ("zh", "yue")):
        text = reference_transcript(row).segments[0].text
        for word in inner_words(text):
            traditional = convert_script(word, row["lang"], "traditional")
            for asked in {word, traditional}:
                marks = found_in(library, asked, ids[row["file"]])
                assert marks and all(mark == word for mark in marks), (row["file"], asked, marks)
                checked += 1
    assert checked >= 40


def test_a_transcript_in_traditional_characters_is_found_by_simplified_words(tmp_path):
    with open_library(tmp_path / "library.db", create=True) as library:
        traditional = convert_script("我们先说一下明年的预算，还有销售问题。", "zh", "traditional")
        assert "預算" in traditional
        transcript_id = library.add(Transcript("tw.wav", 5.0, [Segment(1.0, 5.0, traditional, "zh")], language="zh"))
        for word in ("预算", "預算", "销售", "明年的预算", "售"):
            hits = library.search(parse_search(word))
            assert [hit.transcript_id for hit in hits] == [transcript_id], word
            assert convert_script(hits[0].text[slice(*hits[0].marks[0])], "zh", None) == word.replace("預", "预")
        assert library.search(parse_search("算还")) == []  # a comma stands between them
        assert library.search(parse_search("预报")) == []


def test_english_words_are_found_by_their_stem_and_phrases_in_order(references, manifest):
    library, ids = references
    jfk = ids[next(r["file"] for r in manifest if "jfk" in r["file"])]
    assert found_in(library, "asking", jfk) == ["ask", "ask"]
    assert found_in(library, "American", jfk) == ["Americans"]
    assert found_in(library, '"fellow Americans"', jfk) == ["fellow Americans"]
    assert found_in(library, '"Americans fellow"', jfk) == []
    mixed = ids[next(r["file"] for r in manifest if r["lang"] == "zh-en")]
    assert found_in(library, "处理 learning", mixed) == ["处理", "learning", "learning"]  # machine and deep learning
    assert library.search(parse_search("crocodiles")) and not library.search(parse_search("alligator"))


def test_hits_carry_file_time_speaker_and_filters_narrow_them(tmp_path):
    with open_library(tmp_path / "library.db", create=True) as library:
        first = library.add(meeting())
        second = library.add(meeting())
        library.rename_speakers(second, {"S1": "Ana Lopez"})
        hits = library.search(parse_search("预算"))
        assert [(h.transcript_id, h.start, h.speaker) for h in hits] == [
            (second, 0.0, "Ana Lopez"), (second, 12.0, "Ana Lopez"), (first, 0.0, "Speaker 1"),
            (first, 12.0, "Speaker 1")]
        assert hits[0].source == "budget-meeting.m4a" and hits[0].text[slice(*hits[0].marks[0])] == "预算"
        assert {h.transcript_id for h in library.search(parse_search("预算", speaker="ana"))} == {second}
        assert library.search(parse_search("预算", speaker="S2")) == []
        assert [h.speaker for h in library.search(parse_search("budget", speaker="s2"))] == ["Speaker 2"] * 2
        assert len(library.search(parse_search("预算", since="2000-01-01"))) == 4
        assert library.search(parse_search("预算", since="2999-01-01")) == []
        assert len(library.search(parse_search("预算", limit=1))) == 1


def test_a_saved_transcript_comes_back_as_it_was_with_its_recording(tmp_path):
    recording = tmp_path / "budget-meeting.m4a"
    recording.write_bytes(b"not really audio, but bytes to keep")
    with open_library(tmp_path / "library.db", create=True) as library:
        kept = library.add(meeting(), recording=recording, options={"language": "zh"}, keep_audio=True)
        plain = library.add(meeting(), recording=recording)
        original, saved = meeting().to_dict(), library.transcript(kept).to_dict()
        assert saved == original
        assert render(library.transcript(kept), "srt") == render(meeting(), "srt")
        entry = library.entry(kept)
        assert (entry.size, entry.options, entry.has_audio, entry.recorded[:4]) == (35, {"language": "zh"}, True,
                                                                                   entry.added[:4])
        assert entry.sha256 == hashlib.sha256(recording.read_bytes()).hexdigest()
        assert library.audio(kept) == ("budget-meeting.m4a", recording.read_bytes())
        assert library.audio(plain) is None
        assert [e.id for e in library.entries()] == [plain, kept]


def test_delete_leaves_none_of_the_text_in_the_file(tmp_path):
    path = tmp_path / "library.db"
    secret = "患者第一次提到疼痛是在三月"
    english = "Zanzibar quarterly figures"
    with open_library(path, create=True) as library:
        kept = library.add(Transcript("kept.wav", 3.0, [Segment(0, 3, "这一段留着：保留的内容", "zh")]))
        gone = library.add(Transcript("gone.wav", 9.0, [Segment(0, 4, secret, "zh"), Segment(4, 9, english, "en")]),
                           recording=b"RIFF-audio-copy-marker", keep_audio=True)
        before = path.read_bytes()
        assert secret.encode() in before and english.encode() in before and b"audio-copy-marker" in before
        library.delete(gone)
        with pytest.raises(HushError, match=f"no transcript {gone}"):
            library.entry(gone)
        assert library.search(parse_search("疼痛")) == [] and library.search(parse_search("Zanzibar")) == []
        assert library.search(parse_search("保留"))[0].transcript_id == kept
    after = path.read_bytes()
    for text in (secret, english, "疼痛", "Zanzibar", "zanzibar", "gone.wav", "audio-copy-marker"):
        assert text.encode() not in after, text
    assert "保留的内容".encode() in after  # the bytes are readable: what is kept is there


def test_an_encrypted_library_reveals_nothing_without_its_passphrase(tmp_path):
    pytest.importorskip("sqlcipher3", reason="pip install 'hushscribe[encrypt]'")
    path = tmp_path / "library.db"
    with open_library(path, "correct horse battery", create=True) as library:
        transcript_id = library.add(meeting(), recording=b"secret audio bytes", keep_audio=True)
        library.add(Transcript("x.wav", 2.0, [Segment(0, 2, "Zanzibar quarterly figures", "en")]))
        assert library.search(parse_search("預算"))[0].transcript_id == transcript_id
        library.delete(transcript_id)
    raw = path.read_bytes()
    for text in ("SQLite format 3", "预算", "budget", "Zanzibar", "secret audio", "segments", "Speaker"):
        assert text.encode() not in raw, text
    with pytest.raises(HushError, match="if it is an encrypted library, give its passphrase"):
        open_library(path)
    with pytest.raises(HushError, match="wrong passphrase"):
        open_library(path, "wrong horse")
    with open_library(path, "correct horse battery") as library:
        assert [h.source for h in library.search(parse_search("figure"))] == ["x.wav"]
        assert library.search(parse_search("预算")) == []


def test_bad_input_gets_one_clear_message(tmp_path):
    with pytest.raises(HushError, match="no library at .*--save"):
        open_library(tmp_path / "none.db")
    (tmp_path / "notes.db").write_text("my shopping list\n" * 100)
    with pytest.raises(HushError, match="notes.db is not a plain SQLite file: if it is an encrypted library"):
        open_library(tmp_path / "notes.db")
    (tmp_path / "other.db").write_bytes(b"SQLite format 3\x00" + bytes(200))
    with pytest.raises(HushError, match="other.db is not a hushscribe library"):
        open_library(tmp_path / "other.db")
    with pytest.raises(HushError, match="not encrypted"):
        open_library(open_library(tmp_path / "plain.db", create=True).path, "a passphrase")
    for call, option in ((lambda: parse_search("!!! ？"), "query"), (lambda: parse_search("x", since="March"), "since"),
                         (lambda: parse_search("x", limit="lots"), "limit")):
        with pytest.raises(OptionError) as raised:
            call()
        assert raised.value.option == option
    with open_library(tmp_path / "library.db", create=True) as library:
        for bad in ("7", "abc"):
            with pytest.raises(HushError, match="library list"):
                library.delete(bad)
        transcript_id = library.add(meeting())
        with pytest.raises(HushError, match="no speaker 'S9'"):
            library.rename_speakers(transcript_id, {"S9": "Ana"})


def test_what_is_typed_is_never_taken_as_fts5_syntax():
    assert fts_query('budget OR NOT "x" * (预算') == '"budget" AND "OR" AND "NOT" AND "x" AND "预算"'
    assert fts_query("的") == '"的" *'
    assert fts_query("AI助手") == '"AI 助手"'


def test_without_fts5_in_pythons_sqlite_the_library_uses_sqlcipher_and_stays_a_plain_file(tmp_path, monkeypatch):
    pytest.importorskip("sqlcipher3", reason="pip install 'hushscribe[encrypt]'")
    from hushscribe import library as library_module

    monkeypatch.setattr(library_module, "fts5_in_sqlite3", lambda: False)  # as a Python built without FTS5
    path = tmp_path / "library.db"
    with open_library(path, create=True) as library:
        assert type(library._db).__module__.startswith("sqlcipher3")
        transcript_id = library.add(meeting())
        assert library.search(parse_search("預算"))[0].transcript_id == transcript_id
        library.delete(transcript_id)
    assert path.read_bytes().startswith(b"SQLite format 3\x00") and "预算".encode() not in path.read_bytes()
    monkeypatch.undo()
    with open_library(path) as library:  # Python's own SQLite reads it
        assert library.entries() == [] and library.add(meeting()) and library.search(parse_search("预算"))
