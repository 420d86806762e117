"""OpenAI's Realtime API in transcription mode, over one WebSocket: clients written for it work by changing the URL.

A client sends `session.update` (language, prompt, turn detection, audio format) and `input_audio_buffer.append`
events with base64 PCM16; the server answers as OpenAI's does: `input_audio_buffer.speech_started` when someone
starts to speak, `conversation.item.input_audio_transcription.delta` as words are committed (while they are still
speaking: committed text never changes), and at the end of the utterance `speech_stopped`, `committed`, the item,
and `…transcription.completed` with the whole text. One event of our own, `hushscribe.transcription.tentative`,
carries the words heard after the committed ones, which may still change (clients that do not know it ignore it).

With turn detection off (`turn_detection: null`) the client decides: the audio appended until its
`input_audio_buffer.commit` is one item, transcribed as a recording is.

`RealtimeSession.handle` takes one client event and returns the server events it causes; recognition happens
inside it (call it from a worker thread). Nothing is written to disk.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import secrets
from dataclasses import dataclass, replace

import av
import numpy as np

from hushscribe import vad
from hushscribe.audio import SAMPLE_RATE
from hushscribe.errors import HushError
from hushscribe.live import END_PAUSE_S, PRE_ROLL_S, Caption, LiveRecognizer
from hushscribe.options import OptionError, TranscribeOptions, parse
from hushscribe.transcriber import Transcriber

INPUT_RATE = 24000  # OpenAI's PCM rate; we also take any other rate a client names
RATES = (8000, 48000)  # the PCM rates we take
MIN_COMMIT_MS = 100  # OpenAI refuses to commit less audio than this
MAX_MANUAL_S = 30 * 60  # audio held for one manual commit
TENTATIVE = "hushscribe.transcription.tentative"
UNSUPPORTED = ("response.create", "response.cancel", "conversation.item.create", "conversation.item.retrieve",
               "conversation.item.truncate", "conversation.item.delete", "output_audio_buffer.clear")


class EventError(Exception):
    """A client event that cannot be carried out: answered with an `error` event, and the session goes on."""

    def __init__(self, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


@dataclass(frozen=True)
class TurnDetection:
    threshold: float = 0.5
    prefix_padding_ms: int = int(PRE_ROLL_S * 1000)
    silence_duration_ms: int = int(END_PAUSE_S * 1000)

    def as_dict(self) -> dict:
        return {"type": "server_vad", "threshold": self.threshold, "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms}


class RealtimeSession:
    """One WebSocket connection: its settings, its audio and the utterance being heard."""

    def __init__(self, transcriber: Transcriber, served: str, aliases: tuple[str, ...]) -> None:
        self.transcriber, self.served, self.aliases = transcriber, served, aliases
        self.id = "sess_" + secrets.token_hex(12)
        self.model = served
        self.rate = INPUT_RATE
        self.options = TranscribeOptions()
        self.turns: TurnDetection | None = TurnDetection()
        self._events = itertools.count()
        self._previous_item: str | None = None
        self._heard_s = 0.0  # seconds of audio appended since the session began
        self._reset()

    # --- the protocol -------------------------------------------------------------------------------------

    def created(self) -> list[dict]:
        return [self._event("session.created", session=self.session())]

    def handle(self, event: object) -> list[dict]:
        """The server events one client event causes; an `error` event for one that cannot be carried out."""
        kind = event.get("type") if isinstance(event, dict) else None
        client_id = event.get("event_id") if isinstance(event, dict) else None
        try:
            if not isinstance(kind, str):
                raise EventError("each message must be a JSON object with a 'type'", code="invalid_event",
                                 param="type")
            if kind == "session.update":
                return self._update(event.get("session"))
            if kind == "input_audio_buffer.append":
                return self._append(event.get("audio"))
            if kind == "input_audio_buffer.commit":
                return self._commit()
            if kind == "input_audio_buffer.clear":
                self._reset()
                return [self._event("input_audio_buffer.cleared")]
            if kind in UNSUPPORTED:
                raise EventError(f"{kind} is not part of a transcription session: this server transcribes what it "
                                 "hears and never answers", code="unsupported_event", param="type")
            raise EventError(f"unknown event type '{kind}'", code="invalid_event", param="type")
        except EventError as exc:
            return [self._event("error", error={"type": "invalid_request_error", "code": exc.code,
                                                "message": exc.message, "param": exc.param, "event_id": client_id})]

    def session(self) -> dict:
        return {"id": self.id, "object": "realtime.transcription_session", "type": "transcription",
                "audio": {"input": {
                    "format": {"type": "audio/pcm", "rate": self.rate},
                    "transcription": {"model": self.model, "language": self.options.language,
                                      "prompt": self.options.context or ""},
                    "turn_detection": self.turns.as_dict() if self.turns else None,
                    "noise_reduction": None}},
                "include": []}

    # --- events ---------------------------------------------------------------------------------------------

    def _update(self, session: object) -> list[dict]:
        if not isinstance(session, dict):
            raise EventError("session.update needs a 'session' object", code="invalid_value", param="session")
        if session.get("type", "transcription") != "transcription":
            raise EventError("this server only transcribes: set session.type to 'transcription' (and connect with "
                             "?intent=transcription)", code="invalid_value", param="session.type")
        audio = session.get("audio") or {}
        entry = (audio.get("input") if isinstance(audio, dict) else None) or {}
        if not isinstance(entry, dict):
            raise EventError("session.audio.input must be an object", code="invalid_value",
                             param="session.audio.input")
        rate, model, options, turns = self.rate, self.model, self.options, self.turns
        if "format" in entry:
            rate = _rate(entry["format"])
        if "transcription" in entry:
            model, options = self._transcription(entry["transcription"] or {})
        if "turn_detection" in entry:
            turns = _turns(entry["turn_detection"])
        events = self._closed()  # the utterance being heard ends with the settings it began with
        if rate != self.rate:
            self._resampler = _Resampler(rate)
        self.rate, self.model, self.options, self.turns = rate, model, options, turns
        self._listen()
        return events + [self._event("session.updated", session=self.session())]

    def _transcription(self, given: object) -> tuple[str, TranscribeOptions]:
        param = "session.audio.input.transcription"
        if not isinstance(given, dict):
            raise EventError(f"{param} must be an object", code="invalid_value", param=param)
        model = given.get("model") or self.served
        if model not in (self.served, *self.aliases):
            raise EventError(f"the model '{model}' is not served here; this server runs '{self.served}' (also "
                             f"answering to {', '.join(self.aliases)})", code="model_not_found", param=param + ".model")
        try:
            options = self.transcriber.checked(parse(language=given.get("language") or None,
                                                     context=given.get("prompt") or None))
        except OptionError as exc:
            field = {"language": "language", "context": "prompt"}.get(exc.option, exc.option)
            raise EventError(str(exc), code="invalid_value", param=f"{param}.{field}") from None
        return model, options

    def _append(self, audio: object) -> list[dict]:
        if not isinstance(audio, str):
            raise EventError("input_audio_buffer.append needs 'audio': base64 PCM16", code="invalid_value",
                             param="audio")
        try:
            pcm = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise EventError("'audio' is not valid base64", code="invalid_value", param="audio") from None
        if len(pcm) % 2:
            raise EventError("'audio' must be whole 16-bit samples (an even number of bytes)", code="invalid_value",
                             param="audio")
        samples = self._resampler.resampled(np.frombuffer(pcm, "<i2"))
        self._heard_s += len(pcm) / 2 / self.rate
        if self.turns is None:
            if self._manual_samples + len(samples) > MAX_MANUAL_S * SAMPLE_RATE:
                raise EventError(f"more than {MAX_MANUAL_S // 60} minutes of audio without a commit; commit "
                                 "sooner, or turn on turn_detection", code="input_audio_buffer_too_large",
                                 param="audio")
            self._manual.append(samples)
            self._manual_samples += len(samples)
            return []
        return self._captions(self._live.feed(samples))

    def _commit(self) -> list[dict]:
        if self.turns is not None:
            events = self._closed()
            if not events:
                raise EventError("there is no speech in the buffer to commit", code="input_audio_buffer_commit_empty")
            return events
        if self._manual_samples < MIN_COMMIT_MS * SAMPLE_RATE // 1000:
            raise EventError(f"buffer too small: at least {MIN_COMMIT_MS} ms of audio must be appended before a "
                             "commit", code="input_audio_buffer_commit_empty")
        samples = np.concatenate(self._manual + [self._resampler.resampled(None)])
        self._reset()
        item = self._new_item()
        events = self._committed(item)
        try:
            text = self.transcriber.transcribe(samples, self.options).text
        except HushError as exc:
            return events + [self._event("conversation.item.input_audio_transcription.failed", item_id=item,
                                         content_index=0, error={"type": "transcription_error",
                                                                 "code": "audio_unintelligible",
                                                                 "message": str(exc), "param": None})]
        return events + self._completed(item, text, len(samples) / SAMPLE_RATE, delta=text)

    def _closed(self) -> list[dict]:
        """The utterance being heard closed now (commit, new settings); [] when none is open."""
        if self.turns is None:
            return []
        return self._captions(self._live.finish())

    def _captions(self, captions: list[Caption]) -> list[dict]:
        events = []
        for caption in captions:
            if self._item is None:
                self._item, self._sent = self._new_item(), ""
                events.append(self._event("input_audio_buffer.speech_started", item_id=self._item,
                                          audio_start_ms=self._ms(caption.start)))
            delta = caption.committed[len(self._sent):] if caption.committed.startswith(self._sent) else ""
            if caption.final:
                item = self._item
                events.append(self._event("input_audio_buffer.speech_stopped", item_id=item,
                                          audio_end_ms=self._ms(caption.end)))
                events += self._committed(item)
                events += self._completed(item, caption.committed, caption.end - caption.start, delta=delta)
                self._item = None
                continue
            if delta:
                self._sent = caption.committed
                events.append(self._delta(self._item, delta))
            events.append(self._event(TENTATIVE, item_id=self._item, content_index=0, text=caption.tentative))
        return events

    def _committed(self, item: str) -> list[dict]:
        """The buffer committed as `item`, added to the conversation as audio (its transcript follows)."""
        previous, self._previous_item = self._previous_item, item
        return [self._event("input_audio_buffer.committed", item_id=item, previous_item_id=previous),
                self._event("conversation.item.added", previous_item_id=previous, item=_item(item)),
                self._event("conversation.item.done", previous_item_id=previous, item=_item(item))]

    def _completed(self, item: str, text: str, seconds: float, *, delta: str) -> list[dict]:
        return ([self._delta(item, delta)] if delta else []) + [
            self._event("conversation.item.input_audio_transcription.completed", item_id=item, content_index=0,
                        transcript=text, usage={"type": "duration", "seconds": round(seconds, 3)})]

    def _delta(self, item: str, text: str) -> dict:
        return self._event("conversation.item.input_audio_transcription.delta", item_id=item, content_index=0,
                           delta=text)

    # --- state ----------------------------------------------------------------------------------------------

    def _reset(self) -> None:
        """A fresh buffer: the utterance being heard and the manual audio dropped (the session's clock goes on)."""
        self._resampler = _Resampler(self.rate)
        self._manual: list[np.ndarray] = []
        self._manual_samples = 0
        self._listen()

    def _listen(self) -> None:
        """A new recognizer for what comes next, with the session's settings."""
        turns = self.turns or TurnDetection()
        options = replace(self.options, vad=replace(vad.VadOptions(), threshold=turns.threshold))
        self._live = LiveRecognizer(self.transcriber.engine, options, end_pause_s=turns.silence_duration_ms / 1000,
                                    pre_roll_s=turns.prefix_padding_ms / 1000)
        self._live_start = self._heard_s  # where its clock starts in the session's
        self._item: str | None = None
        self._sent = ""

    def _ms(self, seconds: float) -> int:
        return round((self._live_start + seconds) * 1000)

    def _new_item(self) -> str:
        return "item_" + secrets.token_hex(10)

    def _event(self, kind: str, **fields) -> dict:
        return {"type": kind, "event_id": f"event_{self.id[5:13]}{next(self._events):06d}", **fields}


def _item(item: str) -> dict:
    return {"id": item, "object": "realtime.item", "type": "message", "role": "user", "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}]}


def _rate(fmt: object) -> int:
    param = "session.audio.input.format"
    if not isinstance(fmt, dict) or fmt.get("type") != "audio/pcm":
        raise EventError("the audio format must be {'type': 'audio/pcm', 'rate': 24000}: 16-bit little-endian mono "
                         "PCM (G.711 is not taken)", code="invalid_value", param=param)
    rate = fmt.get("rate", INPUT_RATE)
    if not isinstance(rate, int) or not RATES[0] <= rate <= RATES[1]:
        raise EventError(f"the PCM rate must be a whole number of Hz from {RATES[0]} to {RATES[1]} (OpenAI's is "
                         f"{INPUT_RATE})", code="invalid_value", param=param + ".rate")
    return rate


def _turns(given: object) -> TurnDetection | None:
    param = "session.audio.input.turn_detection"
    if given is None:
        return None
    if not isinstance(given, dict) or given.get("type") not in ("server_vad", "semantic_vad"):
        raise EventError("turn_detection must be null or {'type': 'server_vad', …} (semantic_vad is served as "
                         "server_vad)", code="invalid_value", param=param)
    defaults = TurnDetection()
    try:
        turns = TurnDetection(threshold=float(given.get("threshold", defaults.threshold)),
                              prefix_padding_ms=int(given.get("prefix_padding_ms", defaults.prefix_padding_ms)),
                              silence_duration_ms=int(given.get("silence_duration_ms", defaults.silence_duration_ms)))
    except (TypeError, ValueError):
        raise EventError("threshold, prefix_padding_ms and silence_duration_ms must be numbers", code="invalid_value",
                         param=param) from None
    if not (0 < turns.threshold < 1 and 0 <= turns.prefix_padding_ms <= 2000 and
            100 <= turns.silence_duration_ms <= 10_000):
        raise EventError("threshold must be between 0 and 1, prefix_padding_ms 0–2000 and silence_duration_ms "
                         "100–10000", code="invalid_value", param=param)
    return turns


class _Resampler:
    """PCM16 at the client's rate in, 16 kHz float32 out, with no seam between appends."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)

    def resampled(self, pcm: np.ndarray | None) -> np.ndarray:
        """The next samples (None: the rest held back at the end)."""
        frame = None
        if pcm is not None:
            if not len(pcm):
                return np.zeros(0, np.float32)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm).reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = self.rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, np.float32)
