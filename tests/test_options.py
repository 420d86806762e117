"""One options model for every surface: options.parse and parse_output, and each surface naming the option the
user set in its own words (the CLI's flag, the API's field, the web page's widget)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from hushscribe.audio import SAMPLE_RATE, AudioFilters
from hushscribe.formats import FORMATS, REGISTRY, render
from hushscribe.options import OptionError, OutputOptions, TranscribeOptions, parse, parse_output
from hushscribe.transcript import Segment, Transcript


def test_parse_reads_what_a_surface_receives():
    options = parse(language="Cantonese", script=" Traditional ", context="  七牛, Qwen ", fix_de=True,
                    speakers="3", highpass="80", normalize=True)
    assert options == TranscribeOptions(language="yue", script="traditional", context="七牛, Qwen", fix_de=True,
                                        speakers=3, filters=AudioFilters(highpass_hz=80.0, normalize_loudness=True))
    assert parse(language="auto", speakers="off", highpass="", context="  ") == TranscribeOptions()


@pytest.mark.parametrize("given, option", [
    ({"language": "klingon"}, "language"),
    ({"script": "latin"}, "script"),
    ({"speakers": "many"}, "speakers"),
    ({"speakers": 0}, "speakers"),
    ({"highpass": "loud"}, "highpass"),
    ({"highpass": "-5"}, "highpass"),
    ({"highpass": "nan"}, "highpass"),
    ({"highpass": 5000}, "highpass"),
])
def test_a_bad_value_is_named_by_its_option(given, option):
    with pytest.raises(OptionError) as caught:
        parse(**given)
    assert caught.value.option == option and str(next(iter(given.values()))).strip().lower() in str(caught.value)


def test_parse_output_checks_formats_against_the_registry():
    assert parse_output(formats="SRT, json,srt").formats == ("srt", "json")  # each once, in the order given
    assert parse_output(formats=None).formats == ("txt",)
    with pytest.raises(OptionError) as caught:
        parse_output(formats="txt,odt")
    assert caught.value.option == "formats" and "odt" in str(caught.value)
    assert all(fmt in str(caught.value) for fmt in FORMATS)
    with pytest.raises(OptionError):
        parse_output(formats="verbose_json")  # the API's response, not a file


def test_subtitle_lines_hold_what_the_user_asks():
    assert parse_output(max_line_chars="16").max_line_chars == 16 and parse_output().max_line_chars == 42
    for bad in ("5", "many", "1000", True):
        with pytest.raises(OptionError) as caught:
            parse_output(max_line_chars=bad)
        assert caught.value.option == "max_line_chars"
    text = "今天我们讨论一下这个季度的销售情况，然后再说一下明年的计划，最后大家自由发言。"
    transcript = Transcript(source="a.wav", duration=9.0, segments=[Segment(0.0, 9.0, text, "zh")], language="zh")
    for fmt in ("srt", "vtt"):
        lines = [line for line in render(transcript, fmt, OutputOptions(max_line_chars=16)).splitlines()
                 if line and "-->" not in line and not line.isdigit() and line != "WEBVTT"]
        assert "".join(lines) == text and max(map(len, lines)) <= 16 < max(map(len, render(transcript, fmt)
                                                                                      .splitlines()))


def test_every_format_has_its_mime_type_and_renders():
    transcript = Transcript(source="a.wav", duration=2.0, segments=[Segment(0.0, 1.5, "你好，世界。", "zh")],
                            language="zh")
    for name, fmt in REGISTRY.items():
        assert "/" in fmt.mime and all(part.isalnum() for part in fmt.extension.split("."))  # vtt-words: words.vtt
        body = render(transcript, name)
        if name == "docx":
            import docx

            body = "\n".join(p.text for p in docx.Document(io.BytesIO(body)).paragraphs)
        assert "你好" in body
    body = json.loads(render(transcript, "verbose_json", OutputOptions(granularities=frozenset({"segment", "word"}))))
    assert body["language"] == "chinese" and body["segments"][0]["end"] == 1.5 and body["words"] == []


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hushscribe", *args], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("args, flag", [
    (["--highpass", "loud"], "--highpass"),
    (["--speakers", "many"], "--speakers"),
    (["-l", "klingon"], "--language"),
    (["-f", "txt,odt"], "--formats"),
    (["--max-line-chars", "5"], "--max-line-chars"),
])
def test_the_cli_names_the_flag_on_transcribe_and_batch(tmp_path, args, flag):
    wav = tmp_path / "in" / "silence.wav"
    wav.parent.mkdir()
    _write_silence(wav)
    for command in (["transcribe", str(wav), "-o", str(tmp_path / "out")],
                    ["batch", str(wav.parent), "-o", str(tmp_path / "out")]):
        result = run_cli(*command, *args, "-q")
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"hushscribe: error: {flag}: ") and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.txt"))


def test_batch_offers_what_transcribe_offers():
    from hushscribe.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse has no public way to list a command's flags
    flags = {name: {flag for action in commands[name]._actions for flag in action.option_strings}
             for name in ("transcribe", "batch")}
    shared = {"--language", "--script", "--context", "--timestamps", "--no-timestamps", "--fix-de", "--speakers",
              "--highpass", "--normalize", "--formats", "--engine", "--model", "--device"}
    assert shared <= flags["transcribe"] and shared <= flags["batch"]


def _write_silence(path) -> None:
    import av

    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, SAMPLE_RATE), np.int16), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
