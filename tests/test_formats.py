"""Output formats: subtitle limits hold, nothing is lost or doubled, files are written atomically."""

from __future__ import annotations

import json
import os
import re

import pytest

from hushscribe.errors import HushError
from hushscribe.formats import (
    FORMATS,
    Cue,
    OutputExists,
    cues,
    format_duration,
    format_timestamp,
    render,
    wrap_lines,
    write,
)
from hushscribe.options import OutputOptions
from hushscribe.transcript import Segment, Transcript, Word

MAX_LINE_CHARS = 42
MAX_LINES = 2
MAX_CUE_S = 7.0

ENGLISH_SENTENCE = "The quick brown fox jumps over the lazy dog, then naps in the sun. "
CHINESE_SENTENCE = "今天天气很好，我们去公园散步吧。那里有很多人在跑步；也有人在看书！"


UNSTAMPED = OutputOptions(timestamps=False)


def english() -> Transcript:
    return Transcript(
        source="/recordings/meeting.wav", duration=14.0, language="en", engine="whisper", model="small",
        processing_s=2.0,
        segments=[
            Segment(0.0, 3.0, "Hello world.", "en"),
            Segment(3.5, 6.0, "This is a test.", "en"),
            Segment(10.0, 12.0, "After a pause.", "en"),  # 4 s after the last one: a new paragraph
        ],
    )


def chinese() -> Transcript:
    return Transcript(
        source="talk.mp3", duration=9.0, language="zh",
        segments=[Segment(0.0, 4.0, "你好，世界。", "zh"), Segment(4.2, 8.5, "我们开始吧。", "zh")],
    )


def long_english() -> Transcript:
    text = (ENGLISH_SENTENCE * 5)[:300].strip()
    return Transcript(source="long.wav", duration=30.0, language="en", segments=[Segment(1.0, 29.0, text, "en")])


def long_chinese() -> Transcript:
    text = (CHINESE_SENTENCE * 10)[:300]
    return Transcript(source="long.wav", duration=60.0, language="zh", segments=[Segment(0.0, 58.0, text, "zh")])


def with_words() -> Transcript:
    words = [Word(0.5, 0.9, " So"), Word(1.0, 1.4, " this"), Word(1.5, 1.7, " is"), Word(1.8, 2.6, " timed."),
             Word(9.0, 9.5, " Much"), Word(9.6, 10.4, " later.")]
    return Transcript(source="w.wav", duration=12.0, language="en",
                      segments=[Segment(0.0, 11.0, "So this is timed. Much later.", "en", words=words)])


def slow_short() -> Transcript:
    return Transcript(source="slow.wav", duration=25.0, language="en",
                      segments=[Segment(2.0, 22.0, "Well, we just wait here for a while.", "en")])


def empty() -> Transcript:
    return Transcript(source="silence.wav", duration=5.0, segments=[])


def awkward() -> Transcript:
    """Segments that real recognisers produce: an unbreakable token, overlap, an end past the audio, zero length."""
    url = "https://example.com/" + "a" * 70
    return Transcript(source="odd.wav", duration=10.0, language="en", segments=[
        Segment(0.0, 3.0, f"See {url} for details.", "en"),
        Segment(2.5, 5.0, "Overlapping  start\nwith a newline.", "en"),
        Segment(6.0, 6.0, "Zero.", "en"),
        Segment(9.0, 10.4, "Past the end.", "en"),
        Segment(10.4, 10.4, "Way past.", "en"),
        Segment(7.0, 7.0, "   ", "en"),
    ])


ALL_TRANSCRIPTS = [english, chinese, long_english, long_chinese, with_words, slow_short, empty, awkward]

TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d{3})"
TIME_LINE = re.compile(rf"^{TIME} --> {TIME}$")


def seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_subtitles(text: str, *, vtt: bool) -> list[tuple[int | None, float, float, list[str]]]:
    """(index, start, end, lines) for every cue of an SRT or WebVTT file."""
    if vtt:
        assert text.startswith("WEBVTT\n\n") or text == "WEBVTT\n"
        text = text[len("WEBVTT\n"):].lstrip("\n")
    if not text:
        return []
    assert text.endswith("\n") and not text.endswith("\n\n\n")
    parsed = []
    for block in text.rstrip("\n").split("\n\n"):
        rows = block.split("\n")
        index = None if vtt else int(rows.pop(0))
        match = TIME_LINE.match(rows.pop(0))
        assert match, block
        parsed.append((index, seconds(*match.groups()[:4]), seconds(*match.groups()[4:]), rows))
    return parsed


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def check_subtitles(transcript: Transcript, text: str, *, vtt: bool) -> None:
    parsed = parse_subtitles(text, vtt=vtt)
    if not vtt:
        assert [index for index, *_ in parsed] == list(range(1, len(parsed) + 1))
    previous_end = 0.0
    for _, start, end, lines in parsed:
        assert previous_end <= start < end <= transcript.duration
        assert end - start <= MAX_CUE_S + 1e-9
        assert 1 <= len(lines) <= MAX_LINES
        assert all(0 < len(line) <= MAX_LINE_CHARS for line in lines), lines
        previous_end = end
    said = "".join(line for *_, lines in parsed for line in lines)
    if vtt:
        said = said.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert squeeze(said) == squeeze("".join(s.text for s in transcript.segments))


@pytest.mark.parametrize("make", ALL_TRANSCRIPTS)
def test_srt_keeps_limits_and_every_character(make):
    transcript = make()
    check_subtitles(transcript, render(transcript, "srt"), vtt=False)


@pytest.mark.parametrize("make", ALL_TRANSCRIPTS)
def test_vtt_keeps_limits_and_every_character(make):
    transcript = make()
    check_subtitles(transcript, render(transcript, "vtt"), vtt=True)


def test_long_english_breaks_at_sentences_and_never_inside_a_word():
    transcript = long_english()
    found = cues(transcript)
    assert len(found) >= 4
    words = set(transcript.segments[0].text.split())
    for cue in found:
        assert all(word in words for word in cue.text.split()), cue.text
    assert sum(cue.text.endswith((".", ",")) for cue in found) >= len(found) // 2  # punctuation is preferred


def test_chinese_cues_break_at_punctuation_and_count_each_character_once():
    found = cues(long_chinese())
    assert all(len(line) <= MAX_LINE_CHARS for cue in found for line in cue.text.split("\n"))
    assert all(not line.startswith(("，", "。", "；", "！")) for cue in found for line in cue.text.split("\n"))
    assert sum(cue.text.endswith(("。", "；", "！", "，")) for cue in found) >= len(found) // 2


def test_lines_are_balanced():
    lines = wrap_lines("one two three four five six seven eight nine ten eleven")
    assert len(lines) == 2 and abs(len(lines[0]) - len(lines[1])) <= 6
    assert wrap_lines("short") == ["short"]
    assert [len(line) for line in wrap_lines("字" * 60)] == [30, 30]  # CJK breaks between any two characters
    assert wrap_lines("x" * 50) is None  # one word longer than a line cannot be wrapped at spaces


def test_cue_times_follow_the_words():
    found = cues(with_words())
    assert [cue.text for cue in found] == ["So this is timed.", "Much later."]
    assert (found[0].start, found[0].end) == (0.5, 2.6)
    assert (found[1].start, found[1].end) == (9.0, 10.4)


def test_a_pause_between_words_ends_the_cue_even_inside_a_sentence():
    words = [Word(0.5, 0.9, " We"), Word(1.0, 1.4, " will"), Word(4.0, 4.4, " see"), Word(4.5, 5.0, " soon.")]
    transcript = Transcript(source="w.wav", duration=8.0, language="en",
                            segments=[Segment(0.0, 6.0, "We will see soon.", "en", words=words)])
    assert [(c.start, c.end, c.text) for c in cues(transcript)] == [(0.5, 1.4, "We will"), (4.0, 5.0, "see soon.")]
    # words closer than CUE_GAP_S stay in one cue
    close = [Word(0.5, 0.9, " We"), Word(1.0, 1.4, " will"), Word(1.9, 2.2, " see"), Word(2.3, 2.8, " soon.")]
    transcript.segments[0].words = close
    assert [(c.start, c.end, c.text) for c in cues(transcript)] == [(0.5, 2.8, "We will see soon.")]


def test_vtt_words_marks_when_each_word_is_said():
    transcript = with_words()
    text = render(transcript, "vtt-words")
    assert text.startswith("WEBVTT\n") and "00:00:00.500 --> 00:00:02.600\nSo <00:00:01.000>this " \
                                          "<00:00:01.500>is <00:00:01.800>timed." in text
    assert "00:00:09.000 --> 00:00:10.400\nMuch <00:00:09.600>later." in text
    # the same cues as the vtt, and its text once the marks are taken out
    assert re.sub(r"<\d\d:\d\d:\d\d\.\d{3}>", "", text) == render(transcript, "vtt")
    # long Chinese text with words on every character: marks always strictly inside their cue, in order
    chinese = long_chinese()
    segment = chinese.segments[0]
    step = (segment.end - segment.start) / len(segment.text)
    segment.words = [Word(segment.start + i * step, segment.start + (i + 0.8) * step, ch)
                     for i, ch in enumerate(segment.text)]
    for block in render(chinese, "vtt-words").split("\n\n")[1:]:
        times = re.findall(r"(\d\d):(\d\d):(\d\d)\.(\d{3})", block)
        seconds = [int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in times]
        start, end, marks = seconds[0], seconds[1], seconds[2:]
        assert marks == sorted(set(marks)) and all(start < t < end for t in marks), block
    assert render(english(), "vtt-words") == render(english(), "vtt")  # no words: nothing to mark


def test_cue_times_without_words_follow_character_counts():
    transcript = Transcript(source="x", duration=20.0, segments=[
        Segment(0.0, 12.0, "Aaaa aaaa aaaa aaaa aaaa aaaa aaaa aaaa. Bbbb bbbb bbbb bbbb bbbb bbbb bbbb bbbb.")])
    first, second = cues(transcript)
    assert first.start == 0.0 and second.end == 12.0
    assert first.end == pytest.approx(6.0, abs=0.2) and second.start == pytest.approx(6.0, abs=0.2)


def test_a_slow_short_segment_is_split_in_time():
    found = cues(slow_short())
    assert len(found) >= 3
    assert all(cue.end - cue.start <= MAX_CUE_S for cue in found)
    assert found[0].text.startswith("Well,")


def test_an_unsplittable_slow_word_is_clamped():
    transcript = Transcript(source="x", duration=30.0, segments=[Segment(1.0, 21.0, "Hmm.")])
    assert cues(transcript) == [Cue(1.0, 8.0, "Hmm.")]


def test_empty_transcript():
    transcript = empty()
    assert cues(transcript) == []
    assert render(transcript, "srt") == ""
    assert render(transcript, "vtt") == "WEBVTT\n"
    assert render(transcript, "txt") == ""
    assert render(transcript, "txt", UNSTAMPED) == ""
    assert render(transcript, "md").startswith("# silence.wav\n")


def test_vtt_header_and_dot_times():
    text = render(english(), "vtt")
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:03.000\nHello world.\n\n")


def test_srt_layout():
    assert render(english(), "srt").startswith("1\n00:00:00,000 --> 00:00:03,000\nHello world.\n\n2\n")


def test_vtt_escapes_markup():
    transcript = Transcript(source="x", duration=3.0, segments=[Segment(0.0, 2.0, "a <b> & c")])
    assert "a &lt;b&gt; &amp; c" in render(transcript, "vtt")


def test_format_timestamp_rounds_to_the_millisecond():
    assert format_timestamp(59.9996) == "00:01:00,000"
    assert format_timestamp(59.9994) == "00:00:59,999"
    assert format_timestamp(3661.5, ".") == "01:01:01.500"
    assert format_timestamp(-0.2) == "00:00:00,000"
    assert format_timestamp(59.9996, millis=False) == "00:01:00"
    assert format_timestamp(5.7, millis=False) == "00:00:05"
    assert format_duration(3725.6) == "1:02:06"


def test_txt_paragraphs_start_with_stamps_and_split_at_pauses():
    assert render(english(), "txt") == "[00:00:00] Hello world. This is a test.\n\n[00:00:10] After a pause.\n"
    assert render(english(), "txt", UNSTAMPED) == "Hello world. This is a test.\n\nAfter a pause.\n"


def test_txt_chinese_has_no_spaces_between_segments():
    assert render(chinese(), "txt", UNSTAMPED) == "你好，世界。我们开始吧。\n"


def test_json_round_trips_every_field():
    transcript = with_words()
    transcript.segments[0].flags.append("hit_token_cap")
    data = json.loads(render(transcript, "json"))
    assert set(data) == {"source", "duration", "language", "languages", "engine", "model", "processing_s", "text",
                         "segments"}
    mixed = Transcript(source="<array>", duration=9.0, language="zh", segments=[
        Segment(0.0, 2.0, "Hello.", language="en"), Segment(2.0, 8.0, "你好。", language="zh")])
    assert json.loads(render(mixed, "json"))["languages"] == ["zh", "en"]  # the one spoken longest first
    segment = data["segments"][0]
    assert segment["text"] == "So this is timed. Much later." and segment["flags"] == ["hit_token_cap"]
    assert segment["words"][3] == {"start": 1.8, "end": 2.6, "text": " timed.", "probability": None}
    assert json.loads(render(chinese(), "json"))["segments"][0]["text"] == "你好，世界。"  # not \u-escaped
    assert "你好" in render(chinese(), "json")


def test_md_has_title_metadata_and_stamps():
    head, about, *body = render(english(), "md").rstrip("\n").split("\n\n")
    assert head == "# meeting.wav"
    assert "0:00:14" in about and "en" in about and "whisper" in about and "small" in about
    assert body == ["**[00:00:00]** Hello world. This is a test.", "**[00:00:10]** After a pause."]
    assert render(english(), "md", UNSTAMPED).endswith("\n\nHello world. This is a test.\n\nAfter a pause.\n")


def test_md_lines_never_turn_into_markup():
    transcript = Transcript(source="<array>", duration=20.0, segments=[
        Segment(0.0, 1.0, "# not a heading"), Segment(5.0, 6.0, "- not a list"), Segment(10.0, 11.0, "1. not either")])
    head, _, *body = render(transcript, "md", UNSTAMPED).rstrip("\n").split("\n\n")
    assert head == "# \\<array>"
    assert body == ["\\# not a heading", "\\- not a list", "\\1. not either"]
    stamped = render(transcript, "md").rstrip("\n").split("\n\n")[2:]
    assert all(paragraph.startswith("**[") for paragraph in stamped)


def test_unknown_format_names_the_valid_ones():
    with pytest.raises(HushError) as caught:
        render(english(), "odt")
    assert all(fmt in str(caught.value) for fmt in FORMATS)


def test_every_format_renders():
    for fmt in FORMATS:
        text = render(english(), fmt)
        if fmt == "docx":
            text = "\n".join(p.text for p in read_docx(text).paragraphs) + "\n"
        assert "After a pause." in text and text.endswith("\n") and not text.endswith("\n\n"), fmt


def read_docx(data: bytes):
    import io

    import docx

    return docx.Document(io.BytesIO(data))


def test_docx_has_title_about_stamped_paragraphs_and_speaker_turns(tmp_path):
    from hushscribe.formats import write

    transcript = english()
    transcript.segments[0].speaker = transcript.segments[1].speaker = "S1"
    transcript.segments[2].speaker = "S2"
    transcript.speakers = {"S1": "Ana", "S2": "Speaker 2"}
    path = write(transcript, "docx", tmp_path / "meeting.docx")
    document = read_docx(path.read_bytes())
    title, about, *body = [(p.style.name, p.text) for p in document.paragraphs]
    assert title == ("Title", "meeting.wav")
    assert "Duration 0:00:14" in about[1] and "language en" in about[1] and "speakers: Ana, Speaker 2" in about[1]
    assert "transcribed" in about[1] and "whisper / small" in about[1]
    assert body == [("Heading 2", "Ana"), ("Normal", "[00:00:00] Hello world. This is a test."),
                    ("Heading 2", "Speaker 2"), ("Normal", "[00:00:10] After a pause.")]
    assert document.core_properties.author == "hushscribe" and document.core_properties.last_modified_by == "hushscribe"
    unstamped = read_docx(render(english(), "docx", UNSTAMPED))
    assert [p.text for p in unstamped.paragraphs][2:] == ["Hello world. This is a test.", "After a pause."]


def test_docx_sets_a_cjk_font_for_chinese_and_a_traditional_one_for_traditional_text():
    from docx.oxml.ns import qn

    def east_asian(transcript) -> str:
        style = read_docx(render(transcript, "docx")).styles["Normal"]
        return style.element.rPr.rFonts.get(qn("w:eastAsia"))

    assert east_asian(chinese()) == "Microsoft YaHei"
    traditional = chinese()
    traditional.segments[0].text, traditional.language = "你們好，這是廣東話。", "yue"
    assert east_asian(traditional) == "Microsoft JhengHei"
    assert "你好，世界。" in [p.text for p in read_docx(render(chinese(), "docx")).paragraphs][2]


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "out.srt"
    assert write(english(), "srt", target) == target
    assert os.listdir(tmp_path) == ["out.srt"]
    assert target.read_bytes() == render(english(), "srt").encode("utf-8")
    write(chinese(), "txt", target)  # overwrite is the default
    assert target.read_text(encoding="utf-8") == render(chinese(), "txt")
    assert os.listdir(tmp_path) == ["out.srt"]


def test_write_refuses_to_overwrite_when_asked(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("keep me")
    with pytest.raises(OutputExists, match="already exists") as caught:  # each surface says how to replace it
        write(english(), "txt", target, overwrite=False)
    assert caught.value.path == target and "--" not in str(caught.value)
    assert target.read_text() == "keep me"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_write_failure_cleans_up(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(HushError, match="out.srt"):
        write(english(), "srt", tmp_path / "out.srt")
    assert os.listdir(tmp_path) == []


def test_write_to_missing_folder(tmp_path):
    with pytest.raises(HushError, match="does not exist"):
        write(english(), "txt", tmp_path / "nowhere" / "out.txt")


def test_write_to_unwritable_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        probe = folder / "probe"
        try:
            probe.touch()
            probe.unlink()
            blocked = False  # root ignores the mode bits
        except PermissionError:
            blocked = True
        if blocked:
            with pytest.raises(HushError, match="permission"):
                write(english(), "txt", folder / "out.txt")
            assert os.listdir(folder) == []
        # A path "under" a regular file fails for everyone, root included.
        regular = tmp_path / "file.txt"
        regular.write_text("x")
        with pytest.raises(HushError, match="not a folder") as caught:
            write(english(), "srt", regular / "out.srt")
        assert str(regular / "out.srt") in str(caught.value)
    finally:
        folder.chmod(0o700)


def test_write_permission_message(tmp_path, monkeypatch):
    # The chmod test above cannot block root; this reaches the same branch for everyone.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(HushError, match="no permission to write in") as caught:
        write(english(), "txt", tmp_path / "out.txt")
    assert str(tmp_path / "out.txt") in str(caught.value)


def test_lines_break_at_a_sentence_end_rather_than_a_bare_space():
    from hushscribe.formats import wrap_lines

    assert wrap_lines("Small children came to see him. The grass and bushes were wet with dew.") == [
        "Small children came to see him.", "The grass and bushes were wet with dew."]


def test_tsv_is_one_row_a_segment_in_milliseconds():
    transcript = english()
    rows = [line.split("\t") for line in render(transcript, "tsv").splitlines()]
    assert rows[0] == ["start", "end", "speaker", "text"]
    assert rows[1:] == [["0", "3000", "", "Hello world."], ["3500", "6000", "", "This is a test."],
                        ["10000", "12000", "", "After a pause."]]
    tabbed = Transcript(source="a.wav", duration=2.0, segments=[Segment(0.0, 1.0, "a\tb\nc", "en", speaker="S1")],
                        speakers={"S1": "Ana"})
    assert render(tabbed, "tsv").splitlines()[1] == "0\t1000\tAna\ta b c"
