"""Turn a Transcript into the text of an output file (txt, srt, vtt, json, md) and write it safely."""

from __future__ import annotations

import functools
import io
import json
import math
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hushscribe.errors import HushError
from hushscribe.options import MAX_LINE_CHARS, OutputOptions
from hushscribe.text import is_spaceless
from hushscribe.transcript import Segment, Transcript, paragraphs

# Subtitle limits: 2 lines (of OutputOptions.max_line_chars, 42 by default), ~7 s on screen.
MAX_LINES = 2
MAX_CUE_S = 7.0
MIN_CUE_S = 0.1  # keeps start < end after rounding to ms, and gives a zero-length segment a moment on screen
MIN_PREFIXED_LINE_CHARS = 20  # a long speaker name must not squeeze the text out of a cue
CUE_GAP_S = 1.0  # a pause between two timed words at least this long ends a cue: none stays up through silence
WORD_SEARCH_SLACK = 10  # how far past the last matched word a word's text may sit in the segment text

# Where a cue or a line may break, best first. A break is a position between two characters.
BREAK_SENTENCE, BREAK_CLAUSE, BREAK_PHRASE, BREAK_SPACE, BREAK_CJK, BREAK_MID_WORD = range(6)
SENTENCE_END = "。！？.!?…"
CLAUSE_END = "；;"
PHRASE_END = "，,、：:"
# Punctuation that must not start a line, and brackets that must not end one (a light form of CJK kinsoku).
NO_LINE_START = "，。！？、；：）」』》〉】”’…,.!?;:)]}%"
NO_LINE_END = "（「『《〈【“‘([{"
# Cost of a cue break, in fractions of the span's length: a sentence end a little off the middle beats a bare space.
# Cost of a line break inside a cue, in characters of extra line width it is worth avoiding.
LINE_BREAK_COST = {BREAK_SENTENCE: 0, BREAK_CLAUSE: 3, BREAK_PHRASE: 5, BREAK_SPACE: 10, BREAK_CJK: 10}
BREAK_PENALTY = {BREAK_SENTENCE: 0.0, BREAK_CLAUSE: 0.1, BREAK_PHRASE: 0.2, BREAK_SPACE: 0.35, BREAK_CJK: 0.4,
                 BREAK_MID_WORD: 10.0}

MD_MARKUP_START = re.compile(r"^(#|-|\+|\*|>|=|\||`|~|\d+[.)])")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str  # lines joined with "\n"
    speaker: str | None = None  # the speaker's display name, when the transcript has speakers
    marks: tuple[tuple[int, float], ...] = ()  # (place in text, time) where each timed word after the first starts


# --- times -------------------------------------------------------------------------------------------------------


def _to_ms(seconds: float) -> int:
    # Half-up on the millisecond, so 59.9996 s is 60.000 s and not 59.999 s.
    return max(0, math.floor(seconds * 1000 + 0.5))


def format_timestamp(seconds: float, sep: str = ",", *, millis: bool = True) -> str:
    """`HH:MM:SS,mmm` (SRT; pass sep="." for WebVTT) or `HH:MM:SS` with millis=False. Never negative."""
    ms = _to_ms(seconds)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, ms = divmod(rest, 1000)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{clock}{sep}{ms:03d}" if millis else clock


def format_duration(seconds: float) -> str:
    """`H:MM:SS`, to the nearest second."""
    total = round(max(0.0, seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


# --- where text may break ----------------------------------------------------------------------------------------


def _punctuation_class(ch: str) -> int | None:
    if ch in SENTENCE_END:
        return BREAK_SENTENCE
    if ch in CLAUSE_END:
        return BREAK_CLAUSE
    if ch in PHRASE_END:
        return BREAK_PHRASE
    return None


def _break_class(text: str, b: int) -> int | None:
    """How good a break between text[b-1] and text[b] is; None where no break belongs."""
    prev, nxt = text[b - 1], text[b]
    if prev.isspace():
        return None  # a run of spaces is broken once, right after the word before it
    punct = _punctuation_class(prev)
    if nxt.isspace():
        return BREAK_SPACE if punct is None else punct
    if (is_spaceless(prev) or is_spaceless(nxt)) and nxt not in NO_LINE_START and prev not in NO_LINE_END:
        return BREAK_CJK if punct is None else punct
    return BREAK_MID_WORD


def _break_classes(text: str) -> list[int | None]:
    """_break_class for every position 0..len(text); the two ends are never breaks."""
    return [None] + [_break_class(text, b) for b in range(1, len(text))] + [None]


def _normalise_space(text: str) -> str:
    # Newlines inside a segment would end an SRT/VTT cue early; runs of spaces would skew line lengths.
    return " ".join(text.split())


# --- lines within a cue ------------------------------------------------------------------------------------------


def wrap_lines(text: str, max_line_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES) -> list[str] | None:
    """Fewest lines of at most `max_line_chars` characters, balanced in length; None if it needs more than
    `max_lines`. Lines break at spaces, or between any two characters of CJK text; never inside a Latin word."""
    if len(text) <= max_line_chars:
        return [text]
    if len(text) > max_lines * (max_line_chars + 1):
        return None  # cannot fit even if every break swallowed a space
    classes = _break_classes(text)
    stops = (0, *(b for b in range(1, len(text)) if classes[b] is not None and classes[b] <= BREAK_CJK), len(text))

    def width(i: int, j: int) -> int:
        return len(text[stops[i]:stops[j]].strip())

    @functools.lru_cache(maxsize=None)
    def best(i: int, lines: int) -> tuple[float, int, tuple[int, ...]]:
        """(score, widest line, line-end stop indices) for text from stops[i] in exactly `lines` lines;
        score = widest line + the cost of the chosen breaks, so a sentence end beats a bare space."""
        last = len(stops) - 1
        if lines == 1:
            return width(i, last), width(i, last), (last,)
        options = []
        for j in range(i + 1, last):
            if width(i, j) > max_line_chars:
                continue
            score, widest, ends = best(j, lines - 1)
            line_widest = max(width(i, j), widest)
            penalty = score - widest + LINE_BREAK_COST[classes[stops[j]]]
            options.append((line_widest + penalty, line_widest, (j, *ends)))
        return min(options, default=(math.inf, math.inf, ()))

    for lines in range(2, max_lines + 1):
        _, widest, ends = best(0, lines)
        if widest <= max_line_chars:
            starts = (0, *ends[:-1])
            return [text[stops[a]:stops[b]].strip() for a, b in zip(starts, ends)]
    return None


# --- cues --------------------------------------------------------------------------------------------------------


def word_spans(text: str, words) -> list[tuple[int, int, float, float]]:
    """(first character, the one after the last, start, end) in `text` of each word found there. Words whose text
    is not found near where the previous one ended are skipped."""
    spans = []
    cursor = 0
    for word in words:
        token = _normalise_space(word.text)
        if not token:
            continue
        at = text.find(token, cursor, cursor + len(token) + WORD_SEARCH_SLACK)
        if at < 0:
            continue
        spans.append((at, at + len(token), word.start, word.end))
        cursor = at + len(token)
    return spans


def _boundary_times(text: str, segment: Segment, spans: list[tuple[int, int, float, float]]) -> list[float]:
    """A time for each position 0..len(text): from the word spans, in between (and without words) spread in
    proportion to the count of non-space characters, so a cut at a space leaves no gap. Never decreasing."""
    anchors = {0: segment.start, len(text): segment.end}
    for first, after, start, end in spans:
        anchors[first], anchors[after] = start, end
    filled = [0]  # non-space characters before each position
    for ch in text:
        filled.append(filled[-1] + (not ch.isspace()))
    keys = sorted(anchors)
    times = [segment.start] * (len(text) + 1)
    for a, b in zip(keys, keys[1:]):
        for i in range(a, b + 1):
            share = (filled[i] - filled[a]) / (filled[b] - filled[a]) if filled[b] > filled[a] else (i - a) / (b - a)
            times[i] = anchors[a] + (anchors[b] - anchors[a]) * share
    for i in range(1, len(times)):
        times[i] = max(times[i], times[i - 1])
    return times


def _split_spans(text: str, times: list[float], classes: list[int | None], lo: int, hi: int,
                 max_line_chars: int, max_lines: int, max_duration: float) -> list[tuple[int, int, list[str]]]:
    """Cut text[lo:hi] (no outer spaces) into pieces that fit the limits: (start, end, lines) for each, in order."""
    lines = wrap_lines(text[lo:hi], max_line_chars, max_lines)
    duration = times[hi] - times[lo]
    if lines is not None and duration <= max_duration:
        return [(lo, hi, lines)]
    # Aim for equal pieces: with k pieces needed, cut off the first k//2 of them.
    if lines is None:
        worst = BREAK_MID_WORD  # a word longer than a cue can hold is cut; better than breaking the line limit
        pieces = max(2, math.ceil((hi - lo) / (max_lines * max_line_chars)))
        target = lo + (hi - lo) * (pieces // 2) / pieces
    else:
        worst = BREAK_CJK  # too long on screen only: never cut a word for that; the caller clamps the time
        pieces = max(2, math.ceil(duration / max_duration))
        target_time = times[lo] + duration * (pieces // 2) / pieces
        target = min(range(lo, hi + 1), key=lambda b: abs(times[b] - target_time))
    candidates = [b for b in range(lo + 1, hi) if classes[b] is not None and classes[b] <= worst]
    if not candidates:
        return [(lo, hi, lines or [text[lo:hi]])]
    cut = min(candidates, key=lambda b: BREAK_PENALTY[classes[b]] + abs(b - target) / (hi - lo))
    resume = cut
    while text[resume].isspace():
        resume += 1
    return (_split_spans(text, times, classes, lo, cut, max_line_chars, max_lines, max_duration)
            + _split_spans(text, times, classes, resume, hi, max_line_chars, max_lines, max_duration))


def _fit_times(raw: list[tuple[int, int]], limit_ms: int | None, max_ms: int) -> list[tuple[int, int]]:
    """Make cue times (ms) ordered, non-overlapping, start < end, at most `max_ms` long and within [0, limit_ms]."""
    min_ms = _to_ms(MIN_CUE_S)
    fitted: list[list[int]] = []
    prev_end = 0
    for start, end in raw:
        start = max(start, prev_end)
        end = min(max(end, start + min_ms), start + max_ms)
        fitted.append([start, end])
        prev_end = end
    # Segments may end past the audio (recognisers round up); pull the tail back inside, squeezing cues if needed.
    next_start = limit_ms if limit_ms is not None else prev_end
    for cue in reversed(fitted):
        cue[1] = min(cue[1], next_start)
        cue[0] = max(0, min(cue[0], cue[1] - min_ms))
        next_start = cue[0]
    return [(start, end) for start, end in fitted]


def cues(transcript: Transcript, *, max_line_chars: int = MAX_LINE_CHARS, max_lines: int = MAX_LINES,
         max_duration: float = MAX_CUE_S, speaker_prefix: bool = False) -> list[Cue]:
    """Subtitle cues: at most `max_lines` lines of at most `max_line_chars` characters (every character counts as
    one, CJK included) and at most `max_duration` seconds each. Long segments are cut, preferably after sentence,
    then clause, then phrase punctuation, then at spaces; CJK text may be cut between any two characters; a Latin
    word is cut only if it alone is longer than a cue holds. Times come from the words where the segment has them,
    else from the segment's span shared out by character count. Cues are ordered, do not overlap, have
    start < end and lie within [0, transcript.duration] (the last segment end when the duration is unknown).
    Each cue carries its segment's speaker name; with `speaker_prefix` its lines leave room for "Name: " in front."""
    pieces: list[tuple[float, float, str, str | None]] = []
    for segment in transcript.segments:
        text = _normalise_space(segment.text)
        if not text:
            continue
        speaker = transcript.speaker_name(segment.speaker)
        width = max(MIN_PREFIXED_LINE_CHARS, max_line_chars - len(speaker) - 2) if speaker and speaker_prefix \
            else max_line_chars
        spans = word_spans(text, segment.words or [])
        times = _boundary_times(text, segment, spans)
        classes = _break_classes(text)
        for lo, hi in _between_pauses(text, spans):
            for a, b, lines in _split_spans(text, times, classes, lo, hi, width, max_lines, max_duration):
                marks = _marks(text, a, lines, [(first, start) for first, _, start, _ in spans if a < first < b])
                pieces.append((times[a], times[b], "\n".join(lines), speaker, marks))
    limit_ms = _to_ms(transcript.duration) if transcript.duration > 0 else None
    fitted = _fit_times([(_to_ms(p[0]), _to_ms(p[1])) for p in pieces], limit_ms, _to_ms(max_duration))
    return [Cue(start / 1000, end / 1000, text, speaker, marks)
            for (start, end), (_, _, text, speaker, marks) in zip(fitted, pieces)]


def _between_pauses(text: str, spans: list[tuple[int, int, float, float]]) -> list[tuple[int, int]]:
    """(lo, hi) stretches of `text` (no outer spaces) cut where CUE_GAP_S or more passes between two timed words."""
    cuts = [b[0] for a, b in zip(spans, spans[1:]) if b[2] - a[3] >= CUE_GAP_S]
    edges = [0, *cuts, len(text)]
    stretches = []
    for lo, hi in zip(edges, edges[1:]):
        piece = text[lo:hi]
        lo, hi = lo + len(piece) - len(piece.lstrip()), hi - (len(piece) - len(piece.rstrip()))
        if hi > lo:
            stretches.append((lo, hi))
    return stretches


def _marks(text: str, lo: int, lines: list[str], starts: list[tuple[int, float]]) -> tuple[tuple[int, float], ...]:
    """Word starts (position in `text`, time) as places in the cue's text, its `lines` (taken from `text` from `lo`
    on) joined with "\n"."""
    placed, at, joined = [], lo, 0
    for line in lines:
        found = text.find(line, at)
        placed += [(joined + first - found, time) for first, time in starts if found <= first < found + len(line)]
        at, joined = found + len(line), joined + len(line) + 1
    return tuple(placed)


# --- formats -----------------------------------------------------------------------------------------------------


def _render_txt(transcript: Transcript, how: OutputOptions) -> str:
    blocks = [(f"[{format_timestamp(p.start, millis=False)}] " if how.timestamps else "")
              + (f"{transcript.speaker_name(p.speaker)}: " if p.speaker else "") + p.text
              for p in paragraphs(transcript.segments, transcript.language)]
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _render_srt(transcript: Transcript, how: OutputOptions) -> str:
    blocks = [f"{index}\n{format_timestamp(cue.start)} --> {format_timestamp(cue.end)}\n"
              f"{f'{cue.speaker}: ' if cue.speaker else ''}{cue.text}\n"
              for index, cue in enumerate(cues(transcript, max_line_chars=how.max_line_chars, speaker_prefix=True),
                                          start=1)]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    # WebVTT cue text is markup: a bare "<" or "&" would be read as a tag or an entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _render_vtt(transcript: Transcript, how: OutputOptions, *, marked: bool = False) -> str:
    """WebVTT; a speaker is a voice span, <v Name>, which players may show or style. `marked` (the vtt-words
    format): each cue also marks when each word is said (`<00:00:01.500>word`), so that a player can highlight the
    words as they come (karaoke style: ::cue(:past) and ::cue(:future) in CSS); without word timings it is the vtt."""
    blocks = [f"{format_timestamp(cue.start, '.')} --> {format_timestamp(cue.end, '.')}\n"
              f"{f'<v {_vtt_escape(cue.speaker)}>' if cue.speaker else ''}{_vtt_payload(cue, marked)}\n"
              for cue in cues(transcript, max_line_chars=how.max_line_chars)]
    return "\n".join(["WEBVTT\n", *blocks])


def _vtt_payload(cue: Cue, marked: bool) -> str:
    """The cue's text escaped, with its word marks where asked (each strictly inside the cue and after the last,
    as WebVTT requires)."""
    parts, last, previous = [], 0, cue.start
    for place, time in cue.marks if marked else ():
        if previous < round(time, 3) < cue.end:
            parts += [_vtt_escape(cue.text[last:place]), f"<{format_timestamp(time, '.')}>"]
            last, previous = place, round(time, 3)
    return "".join(parts) + _vtt_escape(cue.text[last:])


def _render_tsv(transcript: Transcript, how: OutputOptions) -> str:
    """A table for spreadsheets: start and end in milliseconds (as Whisper's tsv), speaker, text; one segment a row,
    tabs and line breaks inside the text turned into spaces."""
    rows = [("start", "end", "speaker", "text")]
    rows += [(str(_to_ms(s.start)), str(_to_ms(s.end)), transcript.speaker_name(s.speaker) if s.speaker else "",
              " ".join(s.text.split())) for s in transcript.segments]
    return "".join("\t".join(row) + "\n" for row in rows)


def _render_json(transcript: Transcript, how: OutputOptions) -> str:
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


def _md_plain(text: str) -> str:
    """Keep each line literal: a line that opens with heading, list or quote syntax gets a backslash, and so does
    "<" (a source named "<array>" would otherwise vanish as an HTML tag)."""
    lines = text.replace("<", "\\<").split("\n")
    return "\n".join(("\\" + line) if MD_MARKUP_START.match(line) else line for line in lines)


def _md_heading(text: str) -> str:
    """Literal text in a heading: its start is no line start to Markdown, but "#" (a closing sequence) and "<"
    are markup."""
    return text.replace("<", "\\<").replace("#", "\\#")


def _turns(transcript: Transcript):
    """The paragraphs of a transcript, each with its speaker's name where a turn begins (the name once, over all
    the paragraphs of the turn), else None."""
    speaker = None
    for p in paragraphs(transcript.segments, transcript.language):
        yield (transcript.speaker_name(p.speaker) if p.speaker and p.speaker != speaker else None), p
        speaker = p.speaker


def _render_md(transcript: Transcript, how: OutputOptions) -> str:
    title = _md_heading(Path(transcript.source).name or transcript.source)
    about = " · ".join(part for part in (
        f"Duration {format_duration(transcript.duration)}",
        f"language {transcript.language}" if transcript.language else "",
        " / ".join(part for part in (transcript.engine, transcript.model) if part),
    ) if part)
    body = []
    for name, p in _turns(transcript):
        if name:
            body.append(f"### {_md_heading(name)}")
        body.append((f"**[{format_timestamp(p.start, millis=False)}]** " if how.timestamps else "")
                    + _md_plain(p.text))
    return "\n\n".join([f"# {title}", about, *body]) + "\n"


# Word's East Asian font for each language written in CJK (Word falls back to what the machine has); Traditional
# Chinese (and Cantonese, written in it) gets its own, since a Simplified font lacks or misdraws its characters.
CJK_FONTS = {"zh": "Microsoft YaHei", "yue": "Microsoft JhengHei", "ja": "Yu Gothic", "ko": "Malgun Gothic"}
TRADITIONAL_FONT = "Microsoft JhengHei"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _render_docx(transcript: Transcript, how: OutputOptions) -> bytes:
    """A Word document: the file name as its title, a line of what it is (duration, language, speakers, date), then
    the paragraphs of the txt output, each speaker's turn under their name, `[HH:MM:SS]` stamps in grey."""
    from datetime import date

    import docx
    from docx.oxml.ns import qn
    from docx.shared import Pt, RGBColor

    document = docx.Document()
    east_asian = TRADITIONAL_FONT if _traditional(transcript.text) else CJK_FONTS.get(transcript.language or "",
                                                                                       CJK_FONTS["zh"])
    for style in ("Normal", "Title", "Heading 2"):
        document.styles[style].element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), east_asian)
    properties = document.core_properties  # nothing about this machine or its user
    properties.title, properties.author, properties.last_modified_by = transcript.source, "hushscribe", "hushscribe"
    properties.comments = ""
    document.add_heading(Path(transcript.source).name or transcript.source, level=0)
    names = [transcript.speaker_name(s) for s in dict.fromkeys(p.speaker for p in transcript.segments if p.speaker)]
    about = " · ".join(part for part in (
        f"Duration {format_duration(transcript.duration)}",
        f"language {transcript.language}" if transcript.language else "",
        f"speakers: {', '.join(names)}" if names else "",
        f"transcribed {date.today().isoformat()} by hushscribe"
        + (f" ({' / '.join(p for p in (transcript.engine, transcript.model) if p)})" if transcript.engine else ""),
    ) if part)
    document.add_paragraph(about).runs[0].font.color.rgb = RGBColor(0x59, 0x59, 0x66)
    for name, p in _turns(transcript):
        if name:
            document.add_heading(name, level=2)
        paragraph = document.add_paragraph()
        if how.timestamps:
            stamp = paragraph.add_run(f"[{format_timestamp(p.start, millis=False)}] ")
            stamp.font.color.rgb, stamp.font.size = RGBColor(0x80, 0x80, 0x8C), Pt(9)
        paragraph.add_run(p.text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _traditional(text: str) -> bool:
    """Whether Chinese text is written in Traditional characters (it changes when made Simplified)."""
    from hushscribe.text import convert_script

    return bool(re.search("[\u4e00-\u9fff]", text)) and convert_script(text, "zh", "simplified") != text


def _render_verbose_json(transcript: Transcript, how: OutputOptions) -> str:
    """OpenAI's verbose_json: the language as a lower-case English name, segments and/or words as asked."""
    from hushscribe.languages import LANGUAGE_NAMES

    body = {
        "task": "transcribe",
        "language": LANGUAGE_NAMES.get(transcript.language or "", transcript.language or "").lower(),
        "duration": round(transcript.duration, 3),
        "text": transcript.text,
    }
    if "segment" in how.granularities:
        body["segments"] = [{"id": i, "seek": 0, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text,
                             "tokens": [], "temperature": 0.0, "language": s.language, "flags": s.flags,
                             **({"speaker": transcript.speaker_name(s.speaker)} if s.speaker else {})}
                            for i, s in enumerate(transcript.segments)]
    if "word" in how.granularities:
        body["words"] = [{"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
                         for s in transcript.segments for w in (s.words or ())]
    return json.dumps(body, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Format:
    name: str
    extension: str  # of the file written
    mime: str
    render: Callable[[Transcript, OutputOptions], str | bytes]  # bytes for a binary format (docx)
    file: bool = True  # offered as an output file; False: only an API response


# Every format, in the order surfaces list them. Adding one here offers it on the CLI, the web page, batch and the API.
REGISTRY = {f.name: f for f in (
    Format("txt", "txt", "text/plain", _render_txt),
    Format("srt", "srt", "application/x-subrip", _render_srt),
    Format("vtt", "vtt", "text/vtt", _render_vtt),
    Format("vtt-words", "words.vtt", "text/vtt", functools.partial(_render_vtt, marked=True)),
    Format("json", "json", "application/json", _render_json),
    Format("md", "md", "text/markdown", _render_md),
    Format("tsv", "tsv", "text/tab-separated-values", _render_tsv),
    Format("docx", "docx", DOCX_MIME, _render_docx),
    Format("verbose_json", "json", "application/json", _render_verbose_json, file=False),
)}
FORMATS = tuple(name for name, f in REGISTRY.items() if f.file)  # the output files


def render(transcript: Transcript, fmt: str, output: OutputOptions = OutputOptions()) -> str | bytes:
    """The text of an output file, shaped by `output` (paragraph stamps in txt and md, subtitle lines in srt and
    vtt, what verbose_json carries); json carries every time."""
    found = REGISTRY.get(fmt.lower())
    if found is None:
        raise HushError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    return found.render(transcript, output)


def output_path(folder: Path, stem: str, fmt: str) -> Path:
    """Where the `fmt` output of a recording named `stem` goes in `folder`."""
    return Path(folder) / f"{stem}.{REGISTRY[fmt].extension}"


class OutputExists(HushError):
    """An output file that is there already, when replacing it was not asked for; each surface says how to ask."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path} already exists")


def refuse_existing(paths: list[Path]) -> None:
    """OutputExists for the first of `paths` that exists."""
    for path in paths:
        if Path(path).exists():
            raise OutputExists(path)


def write(transcript: Transcript, fmt: str, path: Path, output: OutputOptions = OutputOptions(), *,
          overwrite: bool = True) -> Path:
    """Render and write to `path` atomically (a temporary file in the same folder, then a rename), UTF-8 with "\\n"
    line ends, so a reader never sees half a file. Returns the path written."""
    path = Path(path)
    text = render(transcript, fmt, output)  # before touching the disk: a bad format writes nothing
    if not overwrite:
        refuse_existing([path])
    folder = path.parent
    temp = folder / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        # os.open with 0o666 lets the umask decide the mode, as for any new file (mkstemp would force 0600).
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileNotFoundError:
        raise HushError(f"cannot write {path}: the folder {folder} does not exist; create it or choose another "
                        f"output folder") from None
    except NotADirectoryError:
        raise HushError(f"cannot write {path}: {folder} is a file, not a folder; choose another output "
                        f"folder") from None
    except PermissionError:
        raise HushError(f"cannot write {path}: no permission to write in {folder}; choose another output "
                        f"folder") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text if isinstance(text, bytes) else text.encode())
            out.flush()
            os.fsync(out.fileno())  # the data is on disk before the rename makes it visible
        os.replace(temp, path)
    except OSError as exc:
        raise HushError(f"cannot write {path}: {exc.strerror or exc}; check the path and free space") from None
    finally:
        temp.unlink(missing_ok=True)
    return path
