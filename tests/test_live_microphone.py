"""`hushscribe live` listening to an input device (audio.open_input), with no sound card: FFmpeg's lavfi device
plays a shared clip through the same capture path a microphone takes. `amovie` alone delivers it as fast as it
decodes (the captions then catch up in one step); `arealtime` after it paces it as a microphone does."""

from __future__ import annotations

import errno
import json
import re
import shutil
import signal
import subprocess
import sys
import time

import av
import pytest

from hushscribe import audio
from hushscribe.cli import EXIT_USAGE, main
from hushscribe.errors import HushError
from hushscribe.scoring import error_rate

LIVE_NAME = re.compile(r"live-\d{8}-\d{6}")


def hushscribe(*args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "hushscribe", "live", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def lavfi_clip(row: dict, tmp_path, graph: str = "") -> str:
    """--mic for a lavfi device playing the clip (copied: a path with ':' or ',' would need lavfi's escaping)."""
    path = tmp_path / f"clip{row['path'].suffix}"
    shutil.copyfile(row["path"], path)
    return f"lavfi:amovie={path}{graph}"


def written(folder) -> dict:
    """The transcript -o got, as its JSON; its files are named live-YYYYMMDD-HHMMSS."""
    files = sorted(folder.iterdir())
    assert [f.suffix for f in files] == [".json", ".txt"] and all(LIVE_NAME.fullmatch(f.stem) for f in files), files
    return json.loads(files[0].read_text())


def test_the_cli_captions_an_input_device_and_writes_its_transcript(clip, tmp_path):
    row = clip("jfk")
    device = lavfi_clip(row, tmp_path)
    run = hushscribe("--mic", device, "-l", "en", "-o", str(tmp_path / "out"), "-f", "txt,json")
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stderr
    assert f"listening to {device}" in stderr
    lines = stdout.splitlines()
    assert lines and all(re.match(r"\[\d\d:\d\d:\d\d\] \S", line) for line in lines), stdout
    assert error_rate(row["text"], " ".join(line[11:] for line in lines)) <= 0.1
    data = written(tmp_path / "out")
    assert data["source"] == device and data["duration"] == pytest.approx(row["duration_s"], abs=0.1)
    assert error_rate(row["text"], data["text"]) <= 0.1


def test_ctrl_c_stops_and_keeps_what_was_said_so_far(clip, tmp_path):
    row = clip("jfk")
    # a device that never ends, delivering the clip over and over in real time, as a microphone would
    run = hushscribe("--mic", lavfi_clip(row, tmp_path, ":loop=0,arealtime"), "-l", "en", "-o", str(tmp_path / "out"),
                     "-f", "json,txt")
    for line in run.stderr:
        if "listening" in line:
            break
    time.sleep(6)  # "And so my fellow Americans, ask not what your country…"
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    assert "Traceback" not in stderr and "wrote" in stderr
    assert stdout.startswith("[00:00:00] And so my fellow")
    data = written(tmp_path / "out")
    assert 3 < data["duration"] < row["duration_s"]  # stopped part of the way into the first time through
    # what was said before the stop is all there: every utterance but the last, which Ctrl+C may cut mid-word
    assert len(data["segments"]) >= 2 and data["segments"][-1]["text"], data
    said = " ".join(segment["text"] for segment in data["segments"][:-1])
    assert len(said.split()) >= 4 and error_rate(" ".join(row["text"].split()[:len(said.split())]), said) <= 0.15, data


@pytest.mark.parametrize("device, says", [
    ("alsa:nonexistent", "input device alsa:nonexistent cannot be opened: cannot open audio device nonexistent"),
    ("nosuch:device", "input device nosuch:device: no input format 'nosuch'"),
    ("default", "input device default: write it as FFmpeg names it, FORMAT:NAME"),
])
def test_a_device_that_cannot_be_opened_is_one_line_and_a_usage_error(device, says):
    if device.startswith("alsa") and "alsa" not in av.formats_available:
        pytest.skip("this PyAV has no alsa input (not Linux)")
    stdout, stderr = hushscribe("--mic", device).communicate(timeout=120)
    assert stderr.startswith(f"hushscribe: error: {says}") and stderr.count("\n") == 1, stderr  # no ALSA noise
    assert stdout == ""


def test_the_exit_code_of_a_device_error_is_the_usage_error(capsys):
    assert main(["live", "--mic", "nosuch:device"]) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("hushscribe: error: input device nosuch:device")


def test_permission_denied_says_how_to_allow_the_microphone(monkeypatch):
    def denied(name, **options):
        raise av.error.PermissionError(errno.EACCES, "Permission denied", name)

    monkeypatch.setattr(audio.av, "open", denied)
    with pytest.raises(HushError, match=r"input device alsa:hw:0: permission denied; allow this terminal to use "
                                        "the microphone"):
        audio.open_input("alsa:hw:0")


def test_windows_has_no_default_input_so_it_asks_for_mic(monkeypatch, capsys):
    monkeypatch.setattr(audio.sys, "platform", "win32")
    assert main(["live", "-l", "en"]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert error.startswith("hushscribe: error: Windows has no default microphone") and '--mic "dshow:audio=' in error


def test_formats_without_an_output_folder_are_refused_before_listening(capsys):
    assert main(["live", "-f", "srt"]) == EXIT_USAGE
    assert "-f/--formats needs -o DIR" in capsys.readouterr().err


def test_speakers_are_refused_rather_than_ignored(capsys):
    assert main(["live", "--speakers", "auto"]) == EXIT_USAGE
    assert "live captions do not label speakers" in capsys.readouterr().err
