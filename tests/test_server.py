"""The OpenAI-compatible server, started for real (`hushscribe serve` in a subprocess on a free port)
and called with the official `openai` client."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

openai = pytest.importorskip("openai", reason="the server tests use the official openai client")
pytest.importorskip("fastapi", reason="the server needs pip install 'hushscribe[server]'")

from hushscribe import formats  # noqa: E402
from hushscribe.scoring import error_rate  # noqa: E402

from .bad_inputs import encode  # noqa: E402
from .servers import free_port, wait_until_up  # noqa: E402

KEY = "test-key-5f1c"
LIMIT_MB = 3
# Whisper base on the 16 shortest shared clips, measured: mean token error 0.241; each clip's own
# error at most 0.53, against at least 0.89 for any other clip's reference.
CONCURRENT_MEAN_CEILING = 0.30
OWN_CEILING = 0.6


def health(base: str) -> dict:
    with urllib.request.urlopen(f"{base}/health", timeout=5) as response:
        return json.loads(response.read())


def start_server(*args: str):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "hushscribe", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "HUSHSCRIBE_API_KEY": ""},
    )
    wait_until_up(f"{base}/health", process)
    return process, base


def stop(process) -> str:
    process.terminate()
    try:
        out, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


@pytest.fixture(scope="module")
def whisper_server():
    process, base = start_server("--engine", "whisper", "--api-key", KEY, "--max-upload-mb", str(LIMIT_MB))
    yield base
    log = stop(process)
    assert "Traceback" not in log, log


@pytest.fixture(scope="module")
def client(whisper_server):
    return openai.OpenAI(base_url=f"{whisper_server}/v1", api_key=KEY, max_retries=0, timeout=600)


def transcribe(client, path: Path, **kwargs):
    with open(path, "rb") as f:
        return client.audio.transcriptions.create(model="whisper-1", file=f, **kwargs)


def test_every_response_format(client, clip):
    row = clip("jfk")
    text = transcribe(client, row["path"], response_format="json", temperature=0.2).text
    assert error_rate(row["text"], text) < 0.1
    assert transcribe(client, row["path"], response_format="text").strip() == text

    for fmt in ("srt", "vtt"):
        body = transcribe(client, row["path"], response_format=fmt)
        assert body.startswith("WEBVTT" if fmt == "vtt" else "1\n")
        cue_lines = [line for line in body.splitlines() if line and "-->" not in line
                     and not line.isdigit() and line != "WEBVTT"]
        assert " ".join(cue_lines) == text
        assert body.count("-->") >= 2

    verbose = transcribe(client, row["path"], response_format="verbose_json",
                         timestamp_granularities=["word", "segment"])
    assert verbose.text == text and verbose.language == "english"
    assert abs(verbose.duration - row["duration_s"]) < 0.1
    assert verbose.segments and all(0 <= s.start < s.end <= verbose.duration + 1e-3 for s in verbose.segments)
    words = verbose.words
    assert len(words) >= 20 and all(w.start <= w.end for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words) and words[-1].end <= verbose.duration + 1e-3
    assert "country" in " ".join(w.word for w in words).lower()
    segment_only = transcribe(client, row["path"], response_format="verbose_json")
    assert segment_only.segments and not getattr(segment_only, "words", None)

    # ours, from the format registry, and each served with the type OpenAI uses for its kind
    for fmt, kind in (("srt", "text/plain"), ("tsv", "text/plain"), ("hushscribe_json", "application/json")):
        with open(row["path"], "rb") as f:
            raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=f, response_format=fmt)
        assert raw.headers["content-type"].startswith(kind), (fmt, raw.headers["content-type"])
        body = raw.http_response.text
        if fmt == "tsv":
            assert body.startswith("start\tend\tspeaker\ttext\n0\t") and "country" in body
        elif fmt == "hushscribe_json":
            assert json.loads(body)["segments"][0]["language"] == "en"
    with open(row["path"], "rb") as f:  # a Word document, as itself
        raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=f, response_format="docx")
    assert raw.headers["content-type"] == formats.REGISTRY["docx"].mime
    import docx

    document = docx.Document(io.BytesIO(raw.http_response.content))
    assert document.paragraphs[0].text == row["path"].name and text in document.paragraphs[2].text


def test_prompt_and_language_are_used(client, clip):
    row = clip("aishell1")
    text = transcribe(client, row["path"], language="zh", prompt="交易").text
    assert error_rate(row["text"], text) < 0.3


def test_sixteen_concurrent_requests_each_get_their_own_transcript(client, whisper_server, manifest):
    rows = sorted(manifest, key=lambda r: r["duration_s"])[:16]
    before = health(whisper_server)["segments"]

    def one(row):
        language = "zh" if row["lang"] == "zh-en" else row["lang"]
        return transcribe(client, row["path"], language=language).text

    with ThreadPoolExecutor(16) as pool:
        texts = list(pool.map(one, rows))
    for i, (row, text) in enumerate(zip(rows, texts)):
        errors = [error_rate(other["text"], text) for other in rows]
        assert errors[i] < OWN_CEILING, (row["file"], text)
        assert errors[i] == min(errors), (row["file"], text)  # not another request's transcript
    assert error_rate([r["text"] for r in rows], texts) < CONCURRENT_MEAN_CEILING
    assert health(whisper_server)["segments"] - before >= len(rows)


def post_raw(base: str, path: str, *, key: str | None = KEY, body: bytes = b"", content_type: str = "") -> tuple:
    request = urllib.request.Request(f"{base}{path}", data=body or None, method="POST" if body else "GET")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(openai.APIStatusError) as info:
        call()
    return info.value.status_code, info.value.response.json()["error"]


def test_speakers_field_labels_verbose_json_segments(client, manifest, tmp_path):
    from hushscribe.scoring import diarization_error_rate

    from .conversations import segment_turns, two_voices_file

    audio = tmp_path / "interview.wav"
    reference = two_voices_file(manifest, audio)
    result = transcribe(client, audio, response_format="verbose_json", extra_body={"speakers": "2"})
    segments = [s.model_dump() for s in result.segments]
    assert {s["speaker"] for s in segments} == {"Speaker 1", "Speaker 2"}
    assert diarization_error_rate(reference, segment_turns(segments)) < 0.15  # as the CLI (measured 0.086)
    vtt = transcribe(client, audio, response_format="vtt", extra_body={"speakers": "auto"})
    assert "<v Speaker 2>" in vtt
    plain = transcribe(client, audio, response_format="verbose_json")  # off by default
    assert all("speaker" not in s.model_dump() or s.model_dump()["speaker"] is None for s in plain.segments)
    with pytest.raises(openai.BadRequestError) as error:
        transcribe(client, audio, extra_body={"speakers": "many"})
    assert error.value.body["param"] == "speakers" and "number of speakers" in error.value.body["message"]


def test_bad_requests_get_openai_shaped_errors_and_the_server_goes_on(client, whisper_server, clip, tmp_path):
    mp3 = tmp_path / "cut.mp3"  # a real mp3, then only its first 300 bytes
    encode(mp3, np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1, "libmp3lame")
    truncated = mp3.read_bytes()[:300]
    cases = {
        "empty": (lambda: client.audio.transcriptions.create(model="whisper-1", file=("empty.wav", b"")), 400, "file"),
        "text": (lambda: client.audio.transcriptions.create(model="whisper-1", file=("notes.wav", b"hello " * 100)),
                 400, "file"),
        "truncated": (lambda: client.audio.transcriptions.create(model="whisper-1", file=("cut.mp3", truncated)),
                      400, "file"),
        "oversize": (lambda: client.audio.transcriptions.create(
            model="whisper-1", file=("big.wav", b"\0" * ((LIMIT_MB + 1) << 20))), 413, "file"),
        "model": (lambda: client.audio.transcriptions.create(model="gpt-9", file=("a.wav", b"RIFF")), 404, "model"),
        "format": (lambda: client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF"),
                                                              response_format="odt"), 400, "response_format"),
        "language": (lambda: client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF"),
                                                                language="klingon"), 400, "language"),
        "translation": (lambda: client.audio.translations.create(model="whisper-1", file=("a.wav", b"RIFF")), 400,
                        "model"),
        # our options: each error names the field that was set
        "script": (lambda: client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF"),
                                                              extra_body={"script": "latin"}), 400, "script"),
        "highpass": (lambda: client.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"RIFF"),
                                                                extra_body={"highpass": "loud"}), 400, "highpass"),
    }
    for name, (call, status, param) in cases.items():
        got_status, error = error_of(call)
        assert got_status == status, (name, error)
        assert set(error) == {"message", "type", "param", "code"} and error["param"] == param, (name, error)
        assert "Traceback" not in error["message"] and len(error["message"]) < 400, (name, error)
    assert "empty" in error_of(cases["empty"][0])[1]["message"]

    bad = openai.OpenAI(base_url=f"{whisper_server}/v1", api_key="wrong-key", max_retries=0)
    status, error = error_of(lambda: bad.models.list())
    assert status == 401 and error["code"] == "invalid_api_key"
    status, body = post_raw(whisper_server, "/v1/models", key=None)  # the openai client always sends one
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, body = post_raw(whisper_server, "/v1/audio/transcriptions", body=b"x" * 10,
                            content_type="multipart/form-data; boundary=zz")
    assert status == 400 and "error" in body

    assert health(whisper_server)["status"] == "ok"  # still serving
    assert error_rate(clip("jfk")["text"], transcribe(client, clip("jfk")["path"]).text) < 0.1
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "whisper-base" and "whisper-1" in ids


def test_concurrent_requests_share_batches_on_the_qwen_engine(tiny_qwen, manifest):
    """Requests arriving together are recognised in shared batches (the tiny random Qwen on the CPU:
    its text is nonsense, so this checks the batching and that every request gets an answer)."""
    process, base = start_server("--engine", "qwen", "--model", str(tiny_qwen), "--device", "cpu")
    try:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=600)
        rows = sorted(manifest, key=lambda r: r["duration_s"])[:8]
        with ThreadPoolExecutor(8) as pool:
            texts = list(pool.map(lambda r: transcribe(client, r["path"], language="en").text, rows))
        assert len(texts) == 8  # a failed request raises in map
        stats = health(base)
        assert stats["engine"] == "qwen" and stats["segments"] >= 8
        assert stats["most_calls_in_a_batch"] >= 2, stats
        assert stats["batches"] < stats["segments"]
    finally:
        log = stop(process)
    assert "Traceback" not in log, log


class WaitingEngine:
    """Holds its first batch until `expected` requests are in the server at once (each in its own thread asks
    whether its language is known), then answers every segment "hello"."""

    name, model_name, batch_size, device, word_timing = "waiting", "test", 128, "cpu", None

    def __init__(self, expected: int) -> None:
        import threading

        self.expected, self.threads, self.lock, self.first = expected, set(), threading.Lock(), True

    def supports_language(self, language):
        import threading

        with self.lock:
            self.threads.add(threading.get_ident())
        return True

    def language_probabilities(self, segments):
        return None

    def recognize(self, segments, options):
        from hushscribe.engines.base import Recognition

        if self.first:
            self.first = False
            deadline = time.monotonic() + 30
            while len(self.threads) < self.expected and time.monotonic() < deadline:
                time.sleep(0.01)
        return [Recognition("hello", "en") for _ in segments]


def test_sixty_four_requests_at_once_are_all_taken_in(clip):
    """More requests at once than anyio's default 40 threads: while the engine holds its first batch, every one of
    them is in the server (each in a thread of its own), on its way to the shared batches."""
    import threading

    import uvicorn

    from hushscribe.server import create_app

    clients = 64
    engine = WaitingEngine(clients)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        data = clip("jfk")["path"].read_bytes()
        with ThreadPoolExecutor(clients) as pool:
            texts = list(pool.map(lambda _: client.audio.transcriptions.create(
                model="whisper-1", file=("jfk.flac", data), language="en").text, range(clients)))
        assert texts == ["hello"] * clients
        assert len(engine.threads) == clients
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_serve_binds_to_loopback_by_default():
    from hushscribe.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000


def test_the_library_is_off_unless_the_server_is_started_with_it(client):
    status, body = error_of(lambda: client.get("/library/search", cast_to=object, options={"params": {"q": "x"}}))
    assert (status, body["code"]) == (404, "library_off") and "--with-library" in body["message"]
    status, body = error_of(lambda: client.post("/library/transcripts/1", cast_to=object))
    assert status in (404, 405)


def test_library_search_transcripts_export_rename_and_delete_through_the_openai_client(manifest, clip, tmp_path,
                                                                                       monkeypatch):
    from hushscribe.library import open_library
    from hushscribe.transcript import Segment, Transcript

    library_path = tmp_path / "library.db"
    with open_library(library_path, create=True) as library:
        for row in (r for r in manifest if "jfk" not in r["file"]):  # JFK's is saved through the API below
            library.add(Transcript(row["path"].name, row["duration_s"], [Segment(0.0, row["duration_s"], row["text"],
                                                                                 row["lang"], speaker="S1")],
                                   language=row["lang"], speakers={"S1": "Speaker 1"}))
    monkeypatch.setenv("HUSHSCRIBE_LIBRARY", str(library_path))
    process, base = start_server("--engine", "whisper", "--api-key", KEY, "--with-library")
    try:
        api = openai.OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=600)
        found = api.get("/library/search", cast_to=object, options={"params": {"q": "預算 OR 交易"}})
        assert found["data"] == []  # every word must be there, "OR" among them
        found = api.get("/library/search", cast_to=object, options={"params": {"q": "交易"}})
        [hit] = found["data"]
        assert hit["source"] == "aishell1_BAC009S0764W0121.wav" and hit["speaker"] == "Speaker 1"
        assert [hit["text"][a:b] for a, b in hit["marks"]] == ["交易"]
        wenet = api.get("/library/search", cast_to=object, options={"params": {"q": "銷售", "speaker": "s1"}})
        assert [h["source"] for h in wenet["data"]] == [clip("test_meeting")["path"].name]

        saved = api.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=clip("jfk")["path"].open("rb"), extra_body={"save": "true", "keep_audio": "true"})
        new_id = int(saved.headers["x-hushscribe-library-id"])
        assert "country" in saved.parse().text
        hits = api.get("/library/search", cast_to=object, options={"params": {"q": "countries", "limit": "5"}})["data"]
        assert hits[0]["transcript_id"] == new_id
        entry = api.get(f"/library/transcripts/{new_id}", cast_to=object)
        assert entry["has_audio"] and entry["sha256"] and entry["transcript"]["engine"] == "whisper"
        srt = api.get(f"/library/transcripts/{new_id}/export", cast_to=str, options={"params": {"format": "srt"}})
        assert srt.startswith("1\n00:00:")
        request = urllib.request.Request(f"{base}/v1/library/transcripts/{new_id}/audio",
                                         headers={"Authorization": f"Bearer {KEY}"})
        with urllib.request.urlopen(request, timeout=10) as response:  # the bytes kept, as any client gets them
            assert response.read() == clip("jfk")["path"].read_bytes()
        renamed = api.patch("/library/transcripts/1/speakers", cast_to=object, body={"S1": "Li Wei"})
        assert renamed == {"speakers": {"S1": "Li Wei"}}
        assert api.get("/library/search", cast_to=object, options={"params": {"q": "交易", "speaker": "wei"}})["data"]
        assert api.delete(f"/library/transcripts/{new_id}", cast_to=object)["deleted"] is True
        for call, code in [(lambda: api.get(f"/library/transcripts/{new_id}", cast_to=object), 404),
                           (lambda: api.get("/library/search", cast_to=object, options={"params": {"q": "?"}}), 400),
                           (lambda: api.patch("/library/transcripts/1/speakers", cast_to=object,
                                              body={"S7": "x"}), 400),
                           (lambda: openai.OpenAI(base_url=f"{base}/v1", api_key="wrong", max_retries=0).get(
                               "/library/transcripts", cast_to=object), 401)]:
            status, body = error_of(call)
            assert status == code and body["message"], body
    finally:
        log = stop(process)
    assert "Traceback" not in log, log
    assert "country".encode() not in library_path.read_bytes()
