"""The one public API: Transcriber(engine=…).transcribe(source) → Transcript.

decode → VAD segments → batched recognition → text filters → Transcript
"""

from __future__ import annotations

import functools
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, TypeVar

import numpy as np

from hushscribe import audio as audio_mod
from hushscribe import text, vad
from hushscribe.audio import SAMPLE_RATE, Source
from hushscribe.engines import load_engine
from hushscribe.engines.base import Engine, Recognition, RecognitionOptions
from hushscribe.errors import HushError
from hushscribe.options import OptionError, TranscribeOptions, checked_speakers  # noqa: F401 (re-exported)
from hushscribe.transcript import FLAG_REPETITION, Segment, Transcript, Word, languages_by_time
from hushscribe.words import retexted, tidied

log = logging.getLogger(__name__)


Samples = tuple[int, np.ndarray]  # a window's offset in samples, and its samples
# offset in samples, samples, speech spans in them, VAD activity per frame (for speaker labels)
Window = tuple[int, np.ndarray, list[vad.Span], np.ndarray]
T = TypeVar("T")


class Transcriber:
    """Holds one loaded engine; transcribe as many sources with it as you like."""

    def __init__(self, engine: str | Engine = "auto", *, model: str | None = None, device: str = "auto",
                 compile: bool = True, aligner: str | None = None) -> None:
        if isinstance(engine, str):
            engine = load_engine(engine, model=model, device=device, compile=compile, aligner=aligner)
        self.engine: Engine = engine

    def transcribe(self, source: Source | np.ndarray | Prepared, options: TranscribeOptions | None = None,
                   **overrides) -> Transcript:
        """Transcribe a path, bytes, file object, a 16 kHz mono float32 array, or what prepare() made."""
        return self.stream(source, options, **overrides).result()

    def checked(self, options: TranscribeOptions) -> TranscribeOptions:
        """`options` checked (TranscribeOptions.checked), and OptionError for a language this engine cannot do."""
        options = options.checked()
        if options.language and not self.engine.supports_language(options.language):
            raise OptionError("language", f"the {self.engine.name} engine does not know the language "
                                          f"'{options.language}'")
        if options.word_timestamps and not getattr(self.engine, "word_timing", None):
            raise OptionError("word_timestamps", "word timings with Qwen3-ASR need its forced aligner: fetch it "
                                                 "once with `hushscribe models download qwen3-forcedaligner-0.6b` "
                                                 "(on the command line, --aligner FOLDER takes one you have)")
        return options

    def stream(self, source: Source | np.ndarray | Prepared, options: TranscribeOptions | None = None,
               **overrides) -> "TranscriptStream":
        """Open and check the source now (HushError for a bad one); decode, segment and recognise
        lazily, a window of at most WINDOW_S at a time, while the caller iterates over the stream."""
        options = self.checked(replace(options or TranscribeOptions(), **overrides))
        started = time.perf_counter()
        if isinstance(source, Prepared):
            return TranscriptStream(self.engine, source.name, source.seconds, iter(source.windows), options, started)
        name, seconds, decoded = _opened(source, options)
        if str(getattr(self.engine, "device", "cpu")) == "cpu":
            windows = _with_speech(decoded, options.vad)
        else:  # the CPU is free while the GPU recognises: the next windows are decoded, and segmented, meanwhile
            windows = _read_ahead(_with_speech(_read_ahead(decoded), options.vad))
        return TranscriptStream(self.engine, name, seconds, windows, options, started)


@dataclass
class Prepared:
    """A recording decoded and cut into speech spans: all that recognition needs, made without the
    model (`hushscribe batch` makes these in CPU tasks that feed the GPU workers)."""

    name: str
    seconds: float
    windows: list[Window]


def prepare(source: Source | np.ndarray, options: TranscribeOptions | None = None) -> Prepared:
    """Decode `source` whole and find its speech (HushError for a bad one); pass the result to
    Transcriber.transcribe. Holds the whole recording in memory, unlike a stream."""
    options = options or TranscribeOptions()
    name, _, decoded = _opened(source, options)
    windows = list(_with_speech(decoded, options.vad))
    return Prepared(name, (windows[-1][0] + len(windows[-1][1])) / SAMPLE_RATE if windows else 0.0, windows)


def _opened(source: Source | np.ndarray, options: TranscribeOptions) -> tuple[str, float, Iterator[Samples]]:
    """(file name, seconds as the container states them, the lazy windows of its samples with their offsets)."""
    if isinstance(source, np.ndarray):
        samples = _checked_array(source)
        name, seconds, chunks = "<array>", len(samples) / SAMPLE_RATE, iter([samples])
    else:
        name = audio_mod.source_name(source)
        seconds, chunks = audio_mod.open_stream(source, options.filters)
    return Path(name).name, seconds, _windows(chunks)


def _with_speech(windows: Iterator[Samples], options: vad.VadOptions) -> Iterator[Window]:
    """Each window with its speech spans; closing this closes `windows`."""
    try:
        for offset, samples in windows:
            yield _segmented(offset, samples, options)
    finally:
        windows.close()


def _segmented(offset: int, samples: np.ndarray, options: vad.VadOptions) -> Window:
    active = vad.activity(samples, options)
    return offset, samples, vad.split(samples, options, active), active


# Long recordings are decoded, segmented and recognised in windows of about this long, cut at the
# quietest 100 ms of their last CUT_SEARCH_S, so that memory stays bounded whatever the length.
WINDOW_S = 600.0
CUT_SEARCH_S = 30.0
# A segment whose text loops is recognised again in halves, down to pieces this long.
MIN_LOOP_PIECE_S = 3.0
# A stretch of speech between pauses (padded as for recognition) at least this long in which a segment's word
# timings put no word is recognised again on its own: on a long segment Whisper can stop early or skip a reply.
MIN_UNHEARD_S = 1.5
# Below this probability of its likeliest language, a segment is cut at its pauses and each piece identified
# apart: a segment that holds two languages is unsure of either. Pieces are at least MIN_LANGUAGE_PIECE_S long.
SURE_OF_LANGUAGE = 0.9
MIN_LANGUAGE_PIECE_S = 1.5
# How much what the recording speaks most weighs against what a segment sounds like: the segment's probability
# of each language times (that language's share of the recording so far) ** PRIOR_WEIGHT, the share at least
# PRIOR_FLOOR, so that a clear switch of language always wins.
PRIOR_WEIGHT = 0.5
PRIOR_FLOOR = 0.05
# On an engine that recognises segments side by side at no cost, a batch of fewer than SIDE_BY_SIDE_ROWS segments is
# filled up to that many with pieces of its longest segments, cut in pauses, none shorter than MIN_SIDE_PIECE_S: the
# batch takes as long as its longest piece. Only small batches: up to a few rows a decode step costs what one row
# does, but an hour's batches cut from 24 to 71 rows took 9.8 s instead of 8.8 s (H200, 1.7B).
SIDE_BY_SIDE_ROWS = 8
MIN_SIDE_PIECE_S = 4.0
# Segments whose languages are found before they are recognised (an engine keeps their encodings in between)
LANGUAGE_LOOKAHEAD = 8


def _windows(chunks: Iterator[np.ndarray]) -> Iterator[Samples]:
    """(offset in samples, samples) windows of the decoded stream."""
    window, search = int(WINDOW_S * SAMPLE_RATE), int(CUT_SEARCH_S * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    size = offset = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        while size >= window + search:
            buffer = np.concatenate(pending)
            cut = window - search + vad.quietest(buffer[window - search:window])
            yield offset, buffer[:cut]
            pending, size, offset = [buffer[cut:]], len(buffer) - cut, offset + cut
    if size:
        yield offset, np.concatenate(pending)


class TranscriptStream:
    """Segments of one source as they are recognised; `result()` gathers the Transcript."""

    def __init__(self, engine: Engine, source: str, seconds: float, windows: Iterator[Window],
                 options: TranscribeOptions, started: float) -> None:
        self.engine, self.source, self.options = engine, source, options
        self.duration = seconds  # as the container states it; exact once the stream is read to the end
        self.position = 0.0  # seconds of the recording done so far
        self.total = 0  # speech segments found so far
        self.done = 0  # of them recognised
        self._windows, self._started = windows, started
        self._segments: list[Segment] = []
        self._iterator = self._recognise()
        self.language = options.language
        self.heard: dict[str, float] = {}  # seconds of speech heard in each language (weighted by probability)
        self._diarizer = None
        if options.speakers is not None:
            from hushscribe import speakers  # imported only when asked for: off costs nothing

            self._diarizer = speakers.Diarizer(options.speakers, device=str(getattr(engine, "device", "cpu")))

    def __iter__(self) -> Iterator[Segment]:
        """Yields every segment as it is recognised, empty ones (no speech found) included. Speakers are known
        only once the whole recording is heard: these segments have none; `result()` labels (and splits) them."""
        return self._iterator

    def result(self) -> Transcript:
        for _ in self._iterator:
            pass
        segments = [s for s in self._segments if s.text]
        speaker_names: dict[str, str] = {}
        if self._diarizer is not None:
            segments, speaker_names = self._labelled(segments)
        return Transcript(
            source=self.source,
            duration=self.duration,
            segments=segments,
            language=self.language or next(iter(languages_by_time(segments)), None),
            engine=self.engine.name,
            model=self.engine.model_name,
            processing_s=time.perf_counter() - self._started,
            speakers=speaker_names,
        )

    def likeliest_language(self, probabilities: dict[str, float]) -> str | None:
        """The language of a segment: its own probabilities weighed against the recording's languages so far."""
        if not probabilities:
            return None
        total = sum(self.heard.values()) or 1.0

        def score(language: str) -> float:
            share = max(self.heard.get(language, 0.0) / total, PRIOR_FLOOR)
            return probabilities[language] * share ** PRIOR_WEIGHT

        return max(probabilities, key=score)

    @property
    def x_realtime(self) -> float:
        """Seconds of the recording done per second since the stream was opened."""
        return self.position / max(time.perf_counter() - self._started, 1e-6)

    def hear(self, probabilities: dict[str, float], seconds: float) -> None:
        """Counts `seconds` of speech heard with these language probabilities towards the recording's languages."""
        for language, p in probabilities.items():
            self.heard[language] = self.heard.get(language, 0.0) + p * seconds

    def _labelled(self, segments: list[Segment]) -> tuple[list[Segment], dict[str, str]]:
        """Segments with speakers (split where the speaker changes) and the default names, "Speaker 1", …"""
        from hushscribe import speakers

        segments = speakers.label_segments(segments, self._diarizer.turns())
        if not self.options.word_timestamps:  # asked of the engine only to split segments at the right word
            segments = [replace(s, words=None) for s in segments]
        # numbered in the order they speak in the transcript (a first turn without words has no text)
        order = {old: speakers.speaker_id(i) for i, old in enumerate(dict.fromkeys(s.speaker for s in segments
                                                                                  if s.speaker))}
        segments = [replace(s, speaker=order.get(s.speaker)) for s in segments]
        return segments, {new: f"Speaker {n}" for n, new in enumerate(order.values(), start=1)}

    def close(self) -> None:
        """Stop here: the recording's file and read-ahead threads go now, not when the stream is collected (it is in
        a cycle with its iterator). `with transcriber.stream(...) as stream:` closes it however the block ends."""
        self._iterator.close()

    def __enter__(self) -> "TranscriptStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _recognise(self) -> Iterator[Segment]:
        end = 0
        try:
            for offset, samples, spans, active in self._windows:
                end = offset + len(samples)
                if self._diarizer is not None:
                    self._diarizer.add(samples, active, offset, self.options.vad)
                found = self.total
                window = _Window(self, offset, samples, spans, active)
                for segment in window.recognise():
                    self.total = found + window.units  # a segment cut where its language changes counts as pieces
                    log.debug("%s %.2f-%.2f s [%s]: %s", self.source, segment.start, segment.end, segment.language,
                              segment.text)  # transcript text: only with --debug
                    self._segments.append(segment)
                    self.done += 1
                    self.position = segment.end
                    yield segment
                self.total = found + window.units
                self.position = end / SAMPLE_RATE
            self.duration = end / SAMPLE_RATE
        finally:  # finished, failed or closed: the file and any read-ahead threads are let go
            if hasattr(self._windows, "close"):
                self._windows.close()


class _Window:
    """One window of a stream: its samples, speech spans (with the VAD activity they came from) and their
    recognition."""

    def __init__(self, stream: TranscriptStream, offset: int, samples: np.ndarray, spans: list[vad.Span],
                 active: np.ndarray) -> None:
        self.stream, self.offset, self._samples, self._spans, self._active = stream, offset, samples, spans, active
        self.units = len(spans)  # segments to recognise: the spans, a span cut where its language changes as its pieces

    def recognise(self) -> Iterator[Segment]:
        step = max(1, self.stream.engine.batch_size)
        ahead = max(step, LANGUAGE_LOOKAHEAD)
        for start in range(0, len(self._spans), ahead):
            spans = self._spans[start:start + ahead]
            units = self._with_languages(spans)
            self.units += len(units) - len(spans)
            for i in range(0, len(units), step):
                yield from self._recognise_units(units[i:i + step])

    def _recognise_units(self, units: list[tuple[vad.Span, str | None]]) -> list[Segment]:
        """Segments for (span, language) pairs, in order: one engine call per language among them. An engine that
        recognises segments side by side at no cost (a GPU) gets a batch with room to spare as more, shorter pieces,
        cut in pauses; their texts are put together again, one segment per unit."""
        pieces = self._side_by_side(units)
        found: dict[int, Segment] = {}
        for language in dict.fromkeys(language for _, language in pieces):
            chosen = [i for i, (_, lang) in enumerate(pieces) if lang == language]
            segments = self._recognise_batch([pieces[i][0] for i in chosen], self._options(language), retry=True)
            found.update(zip(chosen, segments))
        segments, at = [], 0
        for span, _ in units:
            count = sum(1 for piece, _ in pieces if span.start <= piece.start < span.end)
            parts = [found[i] for i in range(at, at + count)]
            segments.append(parts[0] if count == 1 else _merged(parts))
            at += count
        return self._aligned(segments) if self._words_wanted and self.stream.engine.word_timing == "aligner" \
            else segments

    @property
    def _words_wanted(self) -> bool:
        options = self.stream.options
        return options.word_timestamps or options.speakers is not None  # speakers: to split turns at words

    def _options(self, language: str | None) -> RecognitionOptions:
        stream = self.stream
        return RecognitionOptions(
            language=language, identified=stream.language is None, context=stream.options.context,
            word_timestamps=self._words_wanted and stream.engine.word_timing == "recognition",
        )

    def _aligned(self, segments: list[Segment]) -> list[Segment]:
        """`segments` with their words timed by the engine's aligner, on their final text (as every output shows
        it: script, punctuation and repairs applied)."""
        spans = [vad.Span(round(s.start * SAMPLE_RATE) - self.offset, round(s.end * SAMPLE_RATE) - self.offset)
                 for s in segments]
        timed = self.stream.engine.align(self._audio(spans), [(s.text, s.language) for s in segments])
        return [replace(s, words=[replace(w, start=w.start + s.start, end=w.end + s.start) for w in words])
                if words else s for s, words in zip(segments, timed, strict=True)]

    def _with_languages(self, spans: list[vad.Span]) -> list[tuple[vad.Span, str | None]]:
        """Each segment with the language to recognise it in: the one asked for; else the one the engine hears in
        it, weighed against what the recording speaks most (so that a short, unsure segment does not flip), and a
        segment the engine is unsure of is cut at its pauses where the language changes; None for an engine that
        names each segment's language itself."""
        stream = self.stream
        if stream.language is not None:
            return [(span, stream.language) for span in spans]
        heard = stream.engine.language_probabilities(self._audio(spans))
        if heard is None:
            return [(span, None) for span in spans]
        pieces = []  # per segment: [(piece, its language probabilities)]
        for span, probabilities in zip(spans, heard, strict=True):
            parts = self._pieces(span) if max(probabilities.values(), default=0.0) < SURE_OF_LANGUAGE else [span]
            parts_heard = ([probabilities] if len(parts) == 1
                           else stream.engine.language_probabilities(self._audio(parts)))
            pieces.append(list(zip(parts, parts_heard, strict=True)))
        for piece, probabilities in (unit for segment in pieces for unit in segment):
            stream.hear(probabilities, piece.duration_s)
        units = []
        for segment in pieces:
            chosen = [(piece, stream.likeliest_language(probabilities)) for piece, probabilities in segment]
            for language, run in itertools.groupby(chosen, key=lambda unit: unit[1]):
                run = list(run)
                units.append((vad.Span(run[0][0].start, run[-1][0].end), language))
        return units

    def _side_by_side(self, units: list[tuple[vad.Span, str | None]]) -> list[tuple[vad.Span, str | None]]:
        """`units` with the longest piece cut in the pause nearest its middle that leaves MIN_SIDE_PIECE_S either
        side, again and again while a small batch has room (SIDE_BY_SIDE_ROWS, engine.side_by_side): a lone 30 s
        clip decodes as a few 5-10 s pieces at once, in the time of the longest."""
        engine = self.stream.engine
        pieces = list(units)
        room = min(engine.batch_size, SIDE_BY_SIDE_ROWS) - len(pieces) if getattr(engine, "side_by_side", False) \
            else 0
        while room > 0:
            cuts = {i: self._cut_in_pause(span, int(MIN_SIDE_PIECE_S * SAMPLE_RATE), short=True)
                    for i, (span, _) in enumerate(pieces) if span.duration_s >= 2 * MIN_SIDE_PIECE_S}
            cuts = {i: halves for i, halves in cuts.items() if halves}
            if not cuts:
                break
            i = max(cuts, key=lambda i: pieces[i][0].duration_s)
            pieces[i:i + 1] = [(half, pieces[i][1]) for half in cuts[i]]
            room -= 1
        return pieces

    def _cut_in_pause(self, span: vad.Span, margin: int, *, short: bool = False) -> tuple[vad.Span, vad.Span] | None:
        """`span` cut in the pause (see _pauses) nearest its middle among those at least `margin` samples from
        either end; None if there is none."""
        middle = (span.start + span.end) // 2
        pauses = [cut for cut in self._pauses(span, short=short) if span.start + margin <= cut <= span.end - margin]
        if not pauses:
            return None
        cut = min(pauses, key=lambda cut: abs(cut - middle))
        return vad.Span(span.start, cut), vad.Span(cut, span.end)

    def _pieces(self, span: vad.Span) -> list[vad.Span]:
        """`span` cut in the middle of each pause inside it, into pieces of at least MIN_LANGUAGE_PIECE_S."""
        pieces = _cut_at(span, [vad.Span(cut, cut) for cut in self._pauses(span)])
        merged = pieces[:1]
        for piece in pieces[1:]:
            if piece.duration_s < MIN_LANGUAGE_PIECE_S or merged[-1].duration_s < MIN_LANGUAGE_PIECE_S:
                merged[-1] = vad.Span(merged[-1].start, piece.end)
            else:
                merged.append(piece)
        return merged

    def _pauses(self, span: vad.Span, *, short: bool = False) -> list[int]:
        """The middle of each pause between the stretches of speech inside `span`; with `short`, also of pauses
        shorter than the stretches' padding (where two stretches meet)."""
        inside = [s for s in self._speech if s.end > span.start and s.start < span.end]
        return [(a.end + b.start) // 2 for a, b in zip(inside, inside[1:]) if b.start > a.end or
                (short and b.start == a.end)]

    def _audio(self, spans: list[vad.Span]) -> list[np.ndarray]:
        return [self._samples[s.start:s.end] for s in spans]

    def _recognise_batch(self, spans: list[vad.Span], options: RecognitionOptions, *, retry: bool) -> list[Segment]:
        results = self.stream.engine.recognize(self._audio(spans), options)
        segments = []
        for span, rec in zip(spans, results, strict=True):
            if retry and text.loops(rec.text):
                # its pieces are recognised in the language found for the whole (Whisper's Cantonese among it)
                segment = self._unlooped(span, replace(options, language=rec.language or options.language,
                                                       identified=False))
            else:
                segment = self._segment(span, rec)
            if retry and (unheard := self._unheard(span, segment)):
                # Whisper can end a long segment early or skip a short reply: cut the segment around what it missed
                pieces = _merged(self._recognise_batch(_cut_at(span, unheard), options, retry=False))
                segment = pieces if len(self._unheard(span, pieces)) < len(unheard) else segment
            segments.append(segment)
        return segments

    def _unlooped(self, span: vad.Span, options: RecognitionOptions) -> Segment:
        """A segment whose text looped, recognised again: cut at the pause nearest its middle, each half again
        while it loops, down to pieces of MIN_LOOP_PIECE_S; a piece too short to cut is decoded by the engine's
        other means (Whisper samples). Only a loop that survives all that is cut short and flagged."""
        halves = self._halves(span)
        if halves is None:
            sampled = replace(options, sampled=True)
            return self._segment(span, self.stream.engine.recognize(self._audio([span]), sampled)[0])
        results = self.stream.engine.recognize(self._audio(halves), options)
        return _merged([self._unlooped(half, options) if text.loops(rec.text) else self._segment(half, rec)
                        for half, rec in zip(halves, results, strict=True)])

    def _halves(self, span: vad.Span) -> tuple[vad.Span, vad.Span] | None:
        """`span` cut in two in the pause nearest its middle, if one lies in its middle third, else at the quietest
        moment of that third; None for a span shorter than twice MIN_LOOP_PIECE_S."""
        if span.duration_s < 2 * MIN_LOOP_PIECE_S:
            return None
        return self._cut_in_pause(span, (span.end - span.start) // 3) or vad.halve(span, self._samples)

    def _segment(self, span: vad.Span, rec: Recognition) -> Segment:
        return self._filtered(span, rec.text, rec.language or self.stream.language, rec.flags, rec.words)

    def _unheard(self, span: vad.Span, segment: Segment) -> list[vad.Span]:
        """The stretches of speech in `span`, at least MIN_UNHEARD_S long, in which no word of `segment` has its
        middle; none where the segment has no word timings, or no word at all (nothing heard to go by)."""
        if not segment.words:
            return []
        middles = np.array([(w.start + w.end) / 2 * SAMPLE_RATE - self.offset for w in segment.words])
        inside = [vad.Span(max(s.start, span.start), min(s.end, span.end)) for s in self._speech
                  if s.end > span.start and s.start < span.end]
        return [s for s in inside
                if s.duration_s >= MIN_UNHEARD_S and not np.any((middles >= s.start) & (middles < s.end))]

    @functools.cached_property
    def _speech(self) -> list[vad.Span]:
        """The window's speech between pauses, padded as for recognition (its segments are made of these)."""
        return vad.speech_spans(self._active, len(self._samples), self.stream.options.vad)

    def _filtered(self, span: vad.Span, raw: str, language: str | None, flags: list[str],
                  words: list[Word] | None) -> Segment:
        options = self.stream.options
        clean, repaired = text.filtered(raw, language, script=options.script, fix_de_too=options.fix_de)
        flags = list(flags) + ([FLAG_REPETITION] if repaired and FLAG_REPETITION not in flags else [])
        start = (self.offset + span.start) / SAMPLE_RATE
        if words:  # the filtered text's words, timed as the engine timed what they came from
            words = tidied(retexted(words, clean), span.duration_s)
        shifted = [replace(w, start=w.start + start, end=w.end + start) for w in words] if words else None
        return Segment(start=start, end=(self.offset + span.end) / SAMPLE_RATE, text=clean, language=language,
                       flags=flags, words=shifted)


_END = object()


def _read_ahead(windows: Iterator[T]) -> Iterator[T]:
    """`windows` made one ahead in a thread: the next window is made (decoded, or segmented) while this one is used.
    An error in the thread is raised here; stopping early stops the thread and closes `windows` (the file)."""
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def make() -> None:
        try:
            for window in windows:
                if not hand_over((window, None)):
                    return
            hand_over((_END, None))
        except BaseException as exc:  # given to the reader, who raises it
            hand_over((None, exc))
        finally:
            windows.close()

    thread = threading.Thread(target=make, name="hushscribe-read-ahead", daemon=True)
    thread.start()
    reader = threading.current_thread()
    try:
        while True:
            window, error = ready.get()
            if error is not None:
                raise error
            if window is _END:
                return
            yield window
            reader = threading.current_thread()
    finally:
        stop.set()
        # Closed by its reader: the thread is waited for. A stream dropped unfinished is freed by the garbage
        # collector instead (it is in a cycle with its iterator), in whatever thread it runs: in the decoding
        # thread, waiting for the segmenting thread, itself waiting for the next decoded window, would hang both.
        # The thread ends on its own once it sees `stop`.
        if threading.current_thread() is reader:
            thread.join()


def _cut_at(span: vad.Span, stretches: list[vad.Span]) -> list[vad.Span]:
    """`span` cut at the edges of `stretches` (inside it): the pieces in order, each stretch one of them."""
    edges = sorted({span.start, span.end, *(edge for s in stretches for edge in (s.start, s.end))})
    return [vad.Span(a, b) for a, b in zip(edges, edges[1:])]


def _merged(parts: list[Segment]) -> Segment:
    """One segment from consecutive pieces of it, so the progress count stays one per VAD segment."""
    words = [w for p in parts for w in (p.words or [])]
    return Segment(
        start=parts[0].start, end=parts[-1].end, text=text.join_texts([(p.text, p.language) for p in parts]),
        language=parts[0].language, flags=sorted({f for p in parts for f in p.flags}),
        words=words if parts[0].words is not None else None,
    )


def _checked_array(samples: np.ndarray) -> np.ndarray:
    if samples.ndim != 1:
        raise HushError(f"expected a 1-D array of 16 kHz mono samples, got shape {samples.shape}", source="<array>")
    samples = np.nan_to_num(samples.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    return samples
