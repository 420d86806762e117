"""Live captions over OpenAI's Realtime API (transcription mode): `hushscribe serve` for real, the official `openai`
client's realtime connection, real clips sent as 24 kHz PCM16 in 100 ms appends."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import pytest

from hushscribe.audio import SAMPLE_RATE, decode
from hushscribe.scoring import error_rate

openai = pytest.importorskip("openai", reason="the realtime tests use the official openai client")
pytest.importorskip("websockets", reason="the openai client's realtime connection needs websockets")
pytest.importorskip("fastapi", reason="the server needs pip install 'hushscribe[server]'")

from .test_server import KEY, health, start_server, stop  # noqa: E402

RATE = 24000
APPEND = RATE // 10  # 100 ms per append, as a browser or a phone line sends it
EN_CEILING = 0.062  # the CLI test's English ceiling (Whisper base on the shared English clips)
SESSION = {"type": "transcription", "audio": {"input": {
    "format": {"type": "audio/pcm", "rate": RATE},
    "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
    "turn_detection": {"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}}}}
MANUAL_TURNS = {"type": "transcription", "audio": {"input": {  # the client commits each turn itself
    "turn_detection": None, "transcription": {"language": "en"}}}}


def pcm24(audio: np.ndarray) -> bytes:
    """16 kHz float samples as 24 kHz PCM16, as OpenAI's clients send them."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    out = [f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame), *resampler.resample(None)]]
    return np.concatenate(out).astype("<i2").tobytes()


def appends(pcm: bytes) -> list[str]:
    return [base64.b64encode(pcm[i:i + 2 * APPEND]).decode() for i in range(0, len(pcm), 2 * APPEND)]


@pytest.fixture(scope="module")
def server():
    process, base = start_server("--engine", "whisper", "--api-key", KEY)
    yield base
    log = stop(process)
    assert "Traceback" not in log, log


def send_all(connection, session: dict, chunks: list[str]) -> None:
    """The session set (past the created and updated events), every append sent at once, then a commit."""
    connection.recv()
    connection.session.update(session=session)
    connection.recv()
    for chunk in chunks:
        connection.input_audio_buffer.append(audio=chunk)
    connection.input_audio_buffer.commit()


def connect(base: str, key: str = KEY):
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)
    return client.realtime.connect(extra_query={"intent": "transcription"}, max_retries=0)


def events_until(connection, completed: int = 1) -> list:
    """Server events as the client parses them, until `completed` transcripts (or an error) have come."""
    events = []
    while sum(e.type.endswith("transcription.completed") for e in events) < completed:
        events.append(connection.recv())
        if events[-1].type == "error":
            break
    return events


def test_openai_realtime_client_gets_live_captions_of_two_recordings(server, clip):
    first, second = clip("jfk"), clip("new_home")
    gap = np.zeros(SAMPLE_RATE, np.float32)
    audio = np.concatenate([gap, decode(first["path"]), gap, gap, decode(second["path"]), gap, gap])
    second_starts_ms = 3000 + 1000 * len(decode(first["path"])) / SAMPLE_RATE
    with connect(server) as connection:
        created = connection.recv()
        assert created.type == "session.created" and created.session.type == "transcription"
        connection.session.update(session=SESSION)
        updated = connection.recv()
        assert updated.type == "session.updated"
        assert updated.session.audio.input.transcription.language == "en"
        assert updated.session.audio.input.turn_detection.silence_duration_ms == 500
        sender = threading.Thread(target=lambda: [connection.input_audio_buffer.append(audio=chunk)
                                                  for chunk in appends(pcm24(audio))]
                                  + [connection.input_audio_buffer.commit()])
        sender.start()
        events = events_until(connection, completed=1000)  # the commit after 2 s of silence finds nothing open
        sender.join()
    assert events[-1].type == "error" and events[-1].error.code == "input_audio_buffer_commit_empty", events[-1]
    started = [e for e in events if e.type == "input_audio_buffer.speech_started"]
    completed = [e for e in events if e.type.endswith("transcription.completed")]
    assert [e.item_id for e in completed] == [e.item_id for e in started]  # each utterance heard is transcribed
    for item, done in zip(started, completed):
        mine = [e for e in events if getattr(e, "item_id", None) == item.item_id]
        order = [e.type for e in mine]
        assert order[0] == "input_audio_buffer.speech_started"
        assert order.index("input_audio_buffer.speech_stopped") < order.index("input_audio_buffer.committed")
        assert order[-1] == "conversation.item.input_audio_transcription.completed"
        deltas = [e.delta for e in mine if e.type.endswith("transcription.delta")]
        assert "".join(deltas) == done.transcript  # deltas only ever add to the text
        assert done.usage.type == "duration" and done.usage.seconds > 0
    # the utterances of each recording (a pause of 0.5 s closes one), scored together
    for row, is_second in ((first, False), (second, True)):
        text = " ".join(done.transcript for item, done in zip(started, completed)
                        if (item.audio_start_ms > second_starts_ms - 500) == is_second)
        assert error_rate(row["text"], text) <= EN_CEILING + 0.02, text
    assert abs(started[0].audio_start_ms - 1000) <= 700  # speech begins 1 s in (the VAD's lead-in before it)
    assert any(abs(e.audio_start_ms - second_starts_ms) <= 700 for e in started)
    # words were committed while a sentence was still being spoken: a delta before its speech stopped
    longest = max(completed, key=lambda e: e.usage.seconds)
    mine = [e.type for e in events if getattr(e, "item_id", None) == longest.item_id]
    assert mine.index("conversation.item.input_audio_transcription.delta") < mine.index(
        "input_audio_buffer.speech_stopped"), mine
    # the tentative words (ours) reach the client as events it does not know, without breaking it
    assert any(e.type == "hushscribe.transcription.tentative" and e.text for e in events)
    committed = [e for e in events if e.type == "input_audio_buffer.committed"]
    assert committed[0].previous_item_id is None
    assert [e.previous_item_id for e in committed[1:]] == [e.item_id for e in committed[:-1]]


def test_manual_commits_and_bad_events_get_openai_shaped_answers(server, clip):
    row = clip("jfk")
    with connect(server) as connection:
        connection.recv()
        connection.session.update(session=MANUAL_TURNS)
        assert connection.recv().session.audio.input.turn_detection is None
        connection.input_audio_buffer.commit()  # nothing appended yet
        error = connection.recv()
        assert error.type == "error" and error.error.code == "input_audio_buffer_commit_empty"
        for chunk in appends(pcm24(decode(row["path"]))):
            connection.input_audio_buffer.append(audio=chunk)
        connection.input_audio_buffer.commit()
        events = events_until(connection)
        assert [e.type for e in events][:3] == ["input_audio_buffer.committed", "conversation.item.added",
                                                "conversation.item.done"]
        assert error_rate(row["text"], events[-1].transcript) <= EN_CEILING + 0.02
        # each mistake gets one error event naming what is wrong, and the session goes on
        for bad, code, param in (
            ({"type": "input_audio_buffer.append", "audio": "not base64!"}, "invalid_value", "audio"),
            ({"type": "response.create"}, "unsupported_event", "type"),
            ({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"language": "klingon"}}}}}, "invalid_value",
             "session.audio.input.transcription.language"),
            ({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "transcription": {"model": "gpt-9"}}}}}, "model_not_found",
             "session.audio.input.transcription.model"),
            ({"type": "session.update", "session": {"type": "realtime"}}, "invalid_value", "session.type"),
            ({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
                "format": {"type": "audio/pcmu"}}}}}, "invalid_value", "session.audio.input.format"),
        ):
            connection.send(bad | {"event_id": "mine-1"})
            answer = connection.recv()
            assert answer.type == "error", (bad, answer)
            assert (answer.error.code, answer.error.param, answer.error.event_id) == (code, param, "mine-1")
        connection.input_audio_buffer.append(audio=appends(pcm24(decode(row["path"])))[0])
        connection.input_audio_buffer.clear()
        assert connection.recv().type == "input_audio_buffer.cleared"


def test_a_wrong_key_or_intent_is_refused_before_the_socket_opens(server):
    with pytest.raises(Exception) as refused:
        with connect(server, key="wrong") as connection:
            connection.recv()
    assert "401" in str(refused.value)
    from websockets.sync.client import connect as plain

    with pytest.raises(Exception) as refused:
        plain(server.replace("http", "ws") + "/v1/realtime?intent=conversation",
              additional_headers={"Authorization": f"Bearer {KEY}"})
    assert "400" in str(refused.value)
    # a browser cannot set headers: the key as a subprotocol, as OpenAI's browser clients send it
    with plain(server.replace("http", "ws") + "/v1/realtime?intent=transcription",
               subprotocols=["realtime", f"openai-insecure-api-key.{KEY}"]) as socket:
        assert json.loads(socket.recv())["type"] == "session.created"
        socket.send(b"\x00binary")
        assert json.loads(socket.recv())["error"]["code"] == "invalid_event"


def test_live_streams_share_batches_on_the_qwen_engine(tiny_qwen, clip):
    """Several live streams at once are recognised in shared batches (the tiny random Qwen on the CPU: its text is
    nonsense, so this checks the batching, and that every stream gets its utterance back)."""
    process, base = start_server("--engine", "qwen", "--model", str(tiny_qwen), "--device", "cpu")
    audio = np.concatenate([decode(clip("jfk")["path"]), np.zeros(SAMPLE_RATE, np.float32)])
    chunks = appends(pcm24(audio))

    def stream(_) -> list:
        with connect(base, key="unused") as connection:
            send_all(connection, SESSION, chunks)
            return events_until(connection)

    try:
        with ThreadPoolExecutor(4) as pool:
            streams = list(pool.map(stream, range(4)))
        stats = health(base)
    finally:
        log = stop(process)
    assert "Traceback" not in log, log
    for events in streams:
        assert events[-1].type == "conversation.item.input_audio_transcription.completed", events[-1]
        assert sum(e.type.endswith("tentative") for e in events) >= 3  # recognised again while it was heard
    assert stats["most_calls_in_a_batch"] >= 2, stats


def test_a_server_stopped_mid_stream_ends_it_without_a_traceback(clip):
    """A minute of audio committed at once keeps the server recognising it for longer than its grace period when it
    is stopped: the stream is cut off there, with no traceback in the server's log."""
    process, base = start_server("--engine", "whisper")
    chunks = appends(pcm24(np.tile(decode(clip("jfk")["path"]), 6)))
    try:
        with connect(base, key="unused") as connection:
            send_all(connection, MANUAL_TURNS, chunks)
            time.sleep(1)  # the server is at work on the minute
            log = stop(process)
    finally:
        if process.poll() is None:
            stop(process)
    assert "Traceback" not in log, log
    if "graceful shutdown exceeded" not in log:
        pytest.skip("this machine recognised the minute within the server's 5 s grace period")
