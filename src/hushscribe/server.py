"""An OpenAI-compatible transcription server: `hushscribe serve` (FastAPI + uvicorn).

Tools written against OpenAI's audio API switch to private transcription by changing one base URL.
One model is loaded per process. Every request runs the same pipeline as the CLI in its own worker
thread (decode, VAD, text filters, formats); only recognition goes through `BatchingEngine`, one
queue in front of the model that merges the segments of concurrent requests into shared batches.
An upload of up to PREPARE_IN_POOL_BYTES is decoded and segmented in a pool of processes first.
"""

import asyncio
import contextlib
import hmac
import json
import logging
import mimetypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path

from fastapi import Body, FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hushscribe import formats, tempfiles
from hushscribe.audio import cpu_threads
from hushscribe.engines.base import Engine
from hushscribe.engines.batching import BatchingEngine
from hushscribe.errors import HushError
from hushscribe.library import Library, NotInLibrary, parse_search
from hushscribe.options import OptionError, parse, parse_output
from hushscribe.realtime import RealtimeSession
from hushscribe.transcriber import Prepared, TranscribeOptions, Transcriber, prepare

log = logging.getLogger(__name__)

# OpenAI's json and text are the bare text; every other response_format is one of formats.REGISTRY, our json (the
# full transcript) as `hushscribe_json`.
API_FORMATS = {("hushscribe_json" if name == "json" else name): name for name in formats.REGISTRY}
RESPONSE_FORMATS = ("json", "text", *API_FORMATS)
# The form field that sets each option options.parse() names (the API's own names where OpenAI has one).
PARAMS = {"language": "language", "context": "prompt", "speakers": "speakers", "script": "script",
          "fix_de": "fix_de", "highpass": "highpass", "normalize": "normalize", "max_line_chars": "max_line_chars",
          "word_timestamps": "timestamp_granularities[]"}
# what tools send by default, for files and for live audio
OPENAI_MODEL_ALIASES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe", "gpt-transcribe",
                        "gpt-live-transcribe", "gpt-realtime-whisper")
MAX_LIVE_STREAMS = 256  # WebSocket connections served at once (each holds at most one worker thread)
MAX_REQUESTS_AT_ONCE = 256  # transcription requests worked on at once (a thread each); their segments share batches
# A browser cannot set headers on a WebSocket: OpenAI's browser clients send the key as a subprotocol.
KEY_PROTOCOL = "openai-insecure-api-key."
LIVE_PAGE = {"": ("live.html", "text/html"), "/app.js": ("live.js", "text/javascript"),
             "/worklet.js": ("live-worklet.js", "text/javascript"), "/style.css": ("live.css", "text/css")}
LIBRARY_OFF = ("the library is off on this server: start it with `hushscribe serve --with-library` to search and "
               "save transcripts")
# Uploads up to this size are decoded and segmented in a pool of processes, then recognised in the request's thread:
# PyAV's decode loop holds the GIL, so in the request threads concurrent uploads were decoded one at a time. A larger
# upload streams through its request's thread a window at a time, as the CLI reads a file.
PREPARE_IN_POOL_BYTES = 16 << 20
PREPARE_PROCESSES = 8  # at most (about 100 MB each), and no more than the cores
# The live page may load only what this server serves, and talk only to it.
LIVE_PAGE_POLICY = "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"


@contextlib.asynccontextmanager
async def _lifespan(app):
    # Starlette runs each request in a thread of anyio's pool, 40 by default: requests beyond that would wait
    # outside the shared batches while the GPU has room for them
    import anyio.to_thread

    anyio.to_thread.current_default_thread_limiter().total_tokens = MAX_REQUESTS_AT_ONCE
    try:
        yield
    finally:
        app.state.preparers.close()


class Preparers:
    """Processes that decode an upload and find its speech (transcriber.prepare), started on first use; decoding
    holds the GIL, so in the server's threads it would not run side by side."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False
        self._lock = threading.Lock()

    def prepared(self, path: Path, options: TranscribeOptions) -> Prepared | Path:
        """`path` decoded and segmented by a worker process, or `path` itself for the request's thread to read a
        window at a time: an upload over PREPARE_IN_POOL_BYTES, or where no worker can be had."""
        if path.stat().st_size > PREPARE_IN_POOL_BYTES:
            return path
        with self._lock:
            if self._broken:
                return path
            if self._pool is None:  # spawned: a fork would copy the model's process, threads, CUDA and all
                self._pool = ProcessPoolExecutor(min(cpu_threads(), PREPARE_PROCESSES),
                                                 mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_exit_with, initargs=(os.getpid(),))
            pool = self._pool
        try:
            return pool.submit(prepare, path, options).result()
        except BrokenProcessPool:  # e.g. a script that starts the server unguarded by `if __name__ == "__main__"`
            with self._lock:
                if not self._broken:
                    log.warning("decoding uploads in the request threads: the worker processes could not start")
                self._broken = True
            return path

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None


def _exit_with(parent: int) -> None:
    """In a worker process: exit once `parent` is gone (a killed server), not linger waiting for work."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="hushscribe-parent-watch", daemon=True).start()


class ApiError(Exception):
    """An error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def create_app(engine: Engine, *, api_key: str | None = None, max_upload_bytes: int = 500 << 20,
               library: Library | None = None):
    """The FastAPI application around one loaded engine; with `library`, /v1/library serves it and transcription
    requests may save to it."""
    batching = BatchingEngine(engine)
    transcriber = Transcriber(batching)
    served = batching.model_name
    app = FastAPI(title="hushscribe", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    app.state.preparers = preparers = Preparers()

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        param = str(first.get("loc", ["", ""])[-1]) or None
        message = f"{param}: {first.get('msg', 'invalid request')}" if param else "invalid request"
        return JSONResponse(ApiError(400, message, param=param).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse(ApiError(exc.status_code, str(exc.detail)).body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.error("request failed: %s", type(exc).__name__)  # no content, no trace to the client
        return JSONResponse(ApiError(500, "internal server error", kind="server_error").body(), status_code=500)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """Key check and size limit before the body is read."""
        try:
            if request.url.path.startswith("/v1/"):
                _check_key(request.headers.get("authorization"), api_key)
            length = request.headers.get("content-length")
            if length and length.isdigit() and int(length) > max_upload_bytes + (64 << 10):
                raise _too_large(max_upload_bytes)
        except ApiError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        return await call_next(request)

    @app.get("/health")
    def health():
        return {"status": "ok", "engine": batching.name, "model": served, **batching.stats}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "hushscribe"}
                                           for name in (served, *OPENAI_MODEL_ALIASES)]}

    @app.post("/v1/audio/transcriptions")
    def transcriptions(
        file: UploadFile = File(...),
        model: str = Form(...),
        language: str | None = Form(None),
        prompt: str | None = Form(None),
        response_format: str = Form("json"),
        temperature: float = Form(0.0),  # accepted; decoding is greedy
        timestamp_granularities: list[str] | None = Form(None, alias="timestamp_granularities[]"),
        speakers: str | None = Form(None),  # ours, as are the four below: "auto", a number, or "off" (the default)
        script: str | None = Form(None),  # "simplified" or "traditional" Chinese
        fix_de: bool = Form(False),  # repair 的/地/得 in Mandarin
        highpass: str | None = Form(None),  # Hz, e.g. 80, against rumble
        normalize: bool = Form(False),  # loudness normalisation for quiet recordings
        max_line_chars: str | None = Form(None),  # of a subtitle line in srt and vtt (default 42)
        save: bool = Form(False),  # keep the transcript in the library (served with --with-library)
        keep_audio: bool = Form(False),  # and a copy of the recording
    ):
        _check_model(model, served)
        if response_format not in RESPONSE_FORMATS:
            raise ApiError(400, f"response_format must be one of {', '.join(RESPONSE_FORMATS)}",
                           param="response_format")
        granularities = set(timestamp_granularities or ["segment"])
        if not granularities <= {"word", "segment"}:
            raise ApiError(400, "timestamp_granularities[] takes 'word' and/or 'segment'",
                           param="timestamp_granularities[]")
        try:
            options = transcriber.checked(parse(
                language=language, context=prompt, speakers=speakers, script=script, fix_de=fix_de,
                highpass=highpass, normalize=normalize,
                word_timestamps="word" in granularities))  # verbose_json lists the words; srt and vtt cut at them
            output = parse_output(max_line_chars=max_line_chars)
        except OptionError as exc:
            raise ApiError(400, str(exc), param=PARAMS[exc.option]) from None
        output = replace(output, granularities=frozenset(granularities))
        if (save or keep_audio) and library is None:
            raise ApiError(400, LIBRARY_OFF, param="save", code="library_off")
        with tempfiles.job_folder() as folder:  # removed when the request ends, however it ends
            path = _save_upload(file, folder, max_upload_bytes)
            try:
                transcript = transcriber.transcribe(preparers.prepared(path, options), options)
            except HushError as exc:  # named as the client named it, not by our private folder
                message = f"{path.name}: {exc.detail}" if exc.source else str(exc)
                raise ApiError(400, message, param="file", code="invalid_audio") from None
            except Exception as exc:  # one line in our log, no trace to the client
                log.error("transcription failed: %s", type(exc).__name__)
                raise ApiError(500, "the transcription failed inside the server", kind="server_error") from None
            saved = _save(library, transcript, path, options, keep_audio) if save or keep_audio else None
        headers = {"X-Hushscribe-Library-Id": str(saved)} if saved else None
        if response_format == "json":
            return JSONResponse({"text": transcript.text}, headers=headers)
        if response_format == "text":
            return PlainTextResponse(transcript.text, headers=headers)
        return _rendered(transcript, API_FORMATS[response_format], output, headers)

    _library_routes(app, library)

    live_threads = ThreadPoolExecutor(max_workers=MAX_LIVE_STREAMS, thread_name_prefix="hushscribe-live")

    @app.websocket("/v1/realtime")
    async def realtime(websocket: WebSocket):
        """OpenAI's Realtime API in transcription mode (see hushscribe.realtime)."""
        protocols = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
        key = next((p.removeprefix(KEY_PROTOCOL) for p in protocols if p.startswith(KEY_PROTOCOL)), None)
        try:
            _check_key(websocket.headers.get("authorization") or (f"Bearer {key}" if key else None), api_key)
            if websocket.query_params.get("intent", "transcription") != "transcription":
                raise ApiError(400, "this server only transcribes: connect with ?intent=transcription",
                               param="intent", code="unsupported_intent")
            if "model" in websocket.query_params:
                _check_model(websocket.query_params["model"], served)
        except ApiError as exc:
            await websocket.send_denial_response(JSONResponse(exc.body(), status_code=exc.status))
            return
        await websocket.accept(subprotocol="realtime" if "realtime" in protocols else None)
        session = RealtimeSession(transcriber, served, OPENAI_MODEL_ALIASES)
        loop = asyncio.get_running_loop()
        try:
            for event in session.created():
                await websocket.send_json(event)
            while (message := await websocket.receive())["type"] != "websocket.disconnect":
                try:  # a binary frame or bad JSON is answered with an error event
                    event = json.loads(message.get("text") or "")
                except ValueError:
                    event = None
                for answer in await loop.run_in_executor(live_threads, session.handle, event):
                    await websocket.send_json(answer)
        except WebSocketDisconnect:  # gone while we answered; what it was saying goes with it, as OpenAI's does
            pass
        except asyncio.CancelledError:  # the server stops, and the stream outlived its grace: it ends, quietly
            pass

    @app.get("/live")
    @app.get("/live/{name}")
    def live_page(name: str = ""):
        """The live captions page: the browser's microphone, captions from /v1/realtime."""
        key = f"/{name}" if name else ""
        if key not in LIVE_PAGE:
            raise ApiError(404, "not found")
        file, media = LIVE_PAGE[key]
        body = (resources.files("hushscribe") / "assets" / "live" / file).read_bytes()
        return Response(body, media_type=media, headers={"Content-Security-Policy": LIVE_PAGE_POLICY,
                                                         "Cache-Control": "no-store"})

    @app.post("/v1/audio/translations")
    def translations():
        raise ApiError(400, "translation is not supported by this server: hushscribe transcribes in the language "
                            "spoken; use /v1/audio/transcriptions", param="model", code="unsupported_endpoint")

    return app


def _rendered(transcript, name: str, output=None, headers: dict | None = None) -> Response:
    """A transcript in one of formats.REGISTRY, as OpenAI serves them: JSON as JSON, every text format (srt and vtt
    among them) as plain UTF-8 text; a binary one (docx) as itself."""
    fmt = formats.REGISTRY[name]
    body = formats.render(transcript, fmt.name, output or parse_output())
    as_is = isinstance(body, bytes) or fmt.mime == "application/json"
    return Response(body, media_type=fmt.mime if as_is else "text/plain; charset=utf-8", headers=headers)


def _save(library: Library, transcript, path, options, keep_audio: bool) -> int:
    try:
        return library.add(transcript, recording=path, options=options, keep_audio=keep_audio)
    except HushError as exc:
        raise ApiError(400, f"{path.name}: {exc.detail}", param="keep_audio", code="library_refused") from None


def _library_routes(app, library: Library | None) -> None:
    """/v1/library: search, the saved transcripts, export, speaker names, delete. 404 saying how to turn it on
    when the server was started without it."""

    def opened() -> Library:
        if library is None:
            raise ApiError(404, LIBRARY_OFF, code="library_off")
        return library

    @app.get("/v1/library/search")
    def library_search(q: str = "", speaker: str | None = None, since: str | None = None, limit: str | None = None):
        try:
            query = parse_search(q, speaker=speaker, since=since, limit=limit)
        except OptionError as exc:
            raise ApiError(400, str(exc), param="q" if exc.option == "query" else exc.option) from None
        return {"object": "list", "query": query.text, "data": [hit.to_dict() for hit in opened().search(query)]}

    @app.get("/v1/library/transcripts")
    def library_list():
        return {"object": "list", "data": [asdict(entry) for entry in opened().entries()]}

    @app.get("/v1/library/transcripts/{transcript_id}")
    def library_transcript(transcript_id: int):
        with _found(transcript_id):
            entry = opened().entry(transcript_id)
            return {**asdict(entry), "transcript": opened().transcript(transcript_id).to_dict()}

    @app.get("/v1/library/transcripts/{transcript_id}/export")
    def library_export(transcript_id: int, format: str = "txt"):
        if format not in formats.FORMATS:
            raise ApiError(400, f"format must be one of {', '.join(formats.FORMATS)}", param="format")
        with _found(transcript_id):
            return _rendered(opened().transcript(transcript_id), format)

    @app.get("/v1/library/transcripts/{transcript_id}/audio")
    def library_audio(transcript_id: int):
        with _found(transcript_id):
            opened().entry(transcript_id)
            kept = opened().audio(transcript_id)
        if kept is None:
            raise ApiError(404, f"transcript {transcript_id} was saved without its audio", code="no_audio")
        media = mimetypes.guess_type(kept[0])[0] or "application/octet-stream"
        return Response(kept[1], media_type=media)

    @app.patch("/v1/library/transcripts/{transcript_id}/speakers")
    def library_rename(transcript_id: int, names: dict[str, str] = Body(...)):
        with _found(transcript_id):
            return {"speakers": opened().rename_speakers(transcript_id, names)}

    @app.delete("/v1/library/transcripts/{transcript_id}")
    def library_delete(transcript_id: int):
        with _found(transcript_id):
            entry = opened().delete(transcript_id)
        return {"id": entry.id, "object": "library.transcript", "deleted": True}


@contextlib.contextmanager
def _found(transcript_id: int):
    """A transcript the library does not hold is a 404, a change it refuses a 400; both say why."""
    try:
        yield
    except NotInLibrary as exc:
        raise ApiError(404, str(exc).replace("`hushscribe library list`", "GET /v1/library/transcripts"),
                       code="not_found") from None
    except HushError as exc:
        raise ApiError(400, str(exc)) from None


def _check_key(header: str | None, api_key: str | None) -> None:
    if not api_key:
        return
    if not header or not header.startswith("Bearer "):
        raise ApiError(401, "missing API key: send the header 'Authorization: Bearer <key>'", code="invalid_api_key")
    if not hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), api_key.encode()):
        raise ApiError(401, "incorrect API key", code="invalid_api_key")


def _check_model(model: str, served: str) -> None:
    if model not in (served, *OPENAI_MODEL_ALIASES):
        raise ApiError(404, f"the model '{model}' is not served here; this server runs '{served}' "
                            f"(also answering to {', '.join(OPENAI_MODEL_ALIASES)}); start another with "
                            "`hushscribe serve --model NAME` for a different one",
                       param="model", code="model_not_found")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the file is larger than this server's limit of {limit / (1 << 20):.0f} MB; "
                         "split it or start the server with a higher --max-upload-mb", param="file",
                    code="file_too_large")


def _save_upload(file, folder, limit: int):
    """The upload copied into the job's private folder under its own file name (so messages name
    it), at most `limit` bytes; Starlette's spooled copy is closed, and so gone, at once."""

    name = Path((file.filename or "").replace("\0", "")).name.strip()
    if name in ("", ".", ".."):
        name = "upload"
    if len(name.encode()) > 200:  # file systems stop at 255 bytes
        suffix = Path(name).suffix[:16]
        name = name.encode()[:180].decode(errors="ignore") + suffix
    path = folder / name
    size = 0
    try:
        with open(path, "wb") as out:
            while chunk := file.file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                out.write(chunk)
    finally:
        file.file.close()
    if size == 0:
        raise ApiError(400, f"{name}: the file is empty (0 bytes); send a recording", param="file",
                       code="invalid_audio")
    return path


def serve(engine: Engine, *, host: str, port: int, api_key: str | None, max_upload_mb: float,
          library: Library | None = None) -> None:
    import uvicorn

    tempfiles.process_folder()  # private, and clears what a killed server left behind
    # uvicorn hands SIGTERM back to the previous handler once it has shut down: make that an orderly
    # exit, so that the private folder is removed (the default action would end the process at once)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = create_app(engine, api_key=api_key, max_upload_bytes=int(max_upload_mb * (1 << 20)), library=library)
    # access_log off: request lines would name uploads; a stop waits at most 5 s for open connections
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False,
                timeout_graceful_shutdown=5)
