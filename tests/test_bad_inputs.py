"""The bad-input corpus (tests/bad_inputs.py) through the Python API, the CLI and the HTTP API:
each bad file gets one clear message that names it, good files next to it still get their
transcripts, silence and noise give an empty transcript, and nothing crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hushscribe import HushError
from hushscribe.scoring import error_rate

from .bad_inputs import JFK_TEXT, build

SPEECH_CEILING = 0.1  # the JFK sentence comes back all but perfect from every odd container (measured: 0.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    cases = build(folder)
    assert len(cases) >= 19
    return folder, cases


def check_message(message: str, name: str, fragment: str) -> None:
    assert name in message and fragment in message, message
    assert "\n" not in message.strip() and "Traceback" not in message and len(message) < 400, message


def test_python_api(corpus, transcriber):
    folder, cases = corpus
    for case in cases:
        path = folder / case.name
        if case.expect == "error":
            with pytest.raises(HushError) as info:
                transcriber.transcribe(path, language="en")
            check_message(str(info.value), case.name, case.message)
            continue
        transcript = transcriber.transcribe(path, language="en")
        if case.expect == "empty":
            assert transcript.text == "" and transcript.segments == [], case.name
        else:
            assert error_rate(JFK_TEXT, transcript.text) <= SPEECH_CEILING, (case.name, transcript.text)


def test_cli_on_a_folder_of_good_and_bad_files(corpus, tmp_path):
    folder, cases = corpus
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", str(folder), "--engine", "whisper",
                             "-l", "en", "-o", str(out), "-f", "txt,json", "-q"], capture_output=True, text=True)
    assert result.returncode == 1  # some failed
    errors = [line for line in result.stderr.splitlines() if line.startswith("hushscribe: error:")]
    assert "Traceback" not in result.stderr
    for case in cases:
        stem = Path(case.name).stem
        if case.expect == "error":
            lines = [line for line in errors if case.name in line]
            assert len(lines) == 1, (case.name, result.stderr)
            check_message(lines[0], case.name, case.message)
            assert not list(out.glob(f"{stem}.*")), case.name
            continue
        text = (out / f"{stem}.txt").read_text()
        segments = json.loads((out / f"{stem}.json").read_text())["segments"]
        if case.expect == "empty":
            assert text.strip() == "" and segments == [], case.name
        else:
            assert error_rate(JFK_TEXT, " ".join(s["text"] for s in segments)) <= SPEECH_CEILING, case.name
    assert len(errors) == sum(c.expect == "error" for c in cases)
    assert f"{sum(c.expect != 'error' for c in cases)} transcribed" in result.stderr


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", *args, "--engine", "whisper", "-q"],
                          capture_output=True, text=True)


def test_cli_paths_and_outputs_that_cannot_work(corpus, tmp_path):
    folder, _ = corpus
    good = folder / "phone_8k.wav"
    missing = run_cli(str(tmp_path / "nowhere.wav"), str(good), "-o", str(tmp_path / "a"))
    assert missing.returncode == 1 and "nowhere.wav: no such file or folder" in missing.stderr
    assert (tmp_path / "a" / "phone_8k.txt").exists()  # the good one still done

    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should be")
    clash = run_cli(str(good), "-o", str(blocker / "out"))
    assert clash.returncode == 1 and "Traceback" not in clash.stderr
    check_message(clash.stderr.strip().splitlines()[0], "blocker", "")

    out = tmp_path / "b"
    assert run_cli(str(good), "-o", str(out)).returncode == 0
    before = (out / "phone_8k.txt").read_text()
    (out / "phone_8k.txt").write_text("my edits")
    again = run_cli(str(good), "-o", str(out))
    assert again.returncode == 1 and "already exists; pass --overwrite" in again.stderr
    assert (out / "phone_8k.txt").read_text() == "my edits"  # never overwritten without --overwrite
    assert run_cli(str(good), "-o", str(out), "--overwrite").returncode == 0
    assert (out / "phone_8k.txt").read_text() == before
    assert sorted(p.name for p in out.iterdir()) == ["phone_8k.txt"]  # no temp files left beside it


def test_cli_with_a_cache_folder_it_cannot_write(corpus, tmp_path):
    """The embedded Whisper model is assembled in hushscribe's cache folder on first use: where that folder
    cannot be made, one message says which folder and what to set."""
    folder, _ = corpus
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    result = subprocess.run([sys.executable, "-m", "hushscribe", "transcribe", str(folder / "phone_8k.wav"),
                             "--engine", "whisper", "-q", "-o", str(tmp_path / "out")],
                            env={**os.environ, "HUSHSCRIBE_CACHE": str(blocker / "cache")}, capture_output=True,
                            text=True)
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    check_message(result.stderr.strip(), str(blocker / "cache"), "point HUSHSCRIBE_CACHE at a folder you can write")


def test_http_api(corpus):
    openai = pytest.importorskip("openai")
    from .test_server import health, start_server, stop

    folder, cases = corpus
    process, base = start_server("--engine", "whisper")
    try:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=600)
        for case in cases:
            with open(folder / case.name, "rb") as f:
                upload = (case.name, f.read())
            if case.expect == "error":
                with pytest.raises(openai.BadRequestError) as info:
                    client.audio.transcriptions.create(model="whisper-1", file=upload, language="en")
                error = info.value.response.json()["error"]
                check_message(error["message"], case.name, case.message)
                assert error["message"].startswith(f"{case.name}: ")  # no server-side path
                assert error["param"] == "file"
                continue
            text = client.audio.transcriptions.create(model="whisper-1", file=upload, language="en").text
            if case.expect == "empty":
                assert text == "", case.name
            else:
                assert error_rate(JFK_TEXT, text) <= SPEECH_CEILING, case.name
        assert health(base)["status"] == "ok"
    finally:
        log = stop(process)
    assert "Traceback" not in log, log
