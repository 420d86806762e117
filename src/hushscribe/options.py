"""What a user can ask of a transcription, read once for every surface (CLI, web page, HTTP API, batch).

A surface passes on what the user set, as it came (`parse(language="auto", speakers="3", highpass="80")`), and
gets frozen options back, or an OptionError that names the option, so that each surface points at its own
control: the CLI at `--language`, the API at `param: "language"`, the web page at its Language widget.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field, replace
from typing import Iterator

from hushscribe import vad
from hushscribe.audio import AudioFilters
from hushscribe.errors import HushError
from hushscribe.languages import normalize_language
from hushscribe.text import check_script

MAX_SPEAKERS = 20
# Subtitle lines: the usual broadcast guidance (Netflix, BBC) is 42 characters a line; Chinese subtitles use about 16.
MAX_LINE_CHARS = 42
LINE_CHARS_RANGE = (10, 200)
MAX_HIGHPASS_HZ = 1000.0  # above this a "rumble" filter would cut speech itself


class OptionError(HushError):
    """A value the user set that cannot be used; `option` names it as parse() does ("language", "formats", …)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        super().__init__(message)


@dataclass(frozen=True)
class TranscribeOptions:
    """Everything that shapes one transcription."""

    language: str | None = None  # ISO code (zh, yue, en, …); None or "auto" detects it
    script: str | None = None  # "simplified" | "traditional"; None: Simplified for Chinese, as spoken otherwise
    context: str | None = None  # names and terms to help recognition (hotwords)
    fix_de: bool = False  # repair 的/地/得 in Mandarin
    word_timestamps: bool = False
    # who spoke when: None (off: costs nothing), "auto" (find how many), or the number of speakers
    speakers: int | str | None = None
    filters: AudioFilters = field(default_factory=AudioFilters)
    vad: vad.VadOptions = field(default_factory=vad.VadOptions)

    def checked(self) -> TranscribeOptions:
        """These options with the language as an ISO code and speakers as None, "auto" or a count; OptionError
        for a value that cannot be used."""
        with _naming("language"):
            language = normalize_language(self.language)
        with _naming("speakers"):
            speakers = checked_speakers(self.speakers)
        with _naming("script"):
            check_script(self.script)
        return replace(self, language=language, speakers=speakers, context=(self.context or "").strip() or None)


@dataclass(frozen=True)
class OutputOptions:
    """What is written for each recording."""

    formats: tuple[str, ...] = ("txt",)
    timestamps: bool = True  # [HH:MM:SS] at the start of each paragraph in txt and md
    overwrite: bool = False  # replace output files that exist
    max_line_chars: int = MAX_LINE_CHARS  # of a subtitle line (srt, vtt)
    granularities: frozenset[str] = frozenset({"segment"})  # what verbose_json (the API's) carries: segment, word


def parse(*, language: str | None = None, script: str | None = None, context: str | None = None,
          fix_de: bool = False, speakers: int | str | None = None, highpass: float | str | None = None,
          normalize: bool = False, word_timestamps: bool = False) -> TranscribeOptions:
    """TranscribeOptions from what a surface received; OptionError names the first option that cannot be used."""
    options = TranscribeOptions(
        language=language, script=(script or "").strip().lower() or None, context=context, fix_de=bool(fix_de),
        speakers=speakers, word_timestamps=bool(word_timestamps),
        filters=AudioFilters(highpass_hz=_hertz(highpass), normalize_loudness=bool(normalize)),
    )
    return options.checked()


def parse_output(*, formats: str | list[str] | tuple[str, ...] | None = None, timestamps: bool = True,
                 overwrite: bool = False, max_line_chars: int | str | None = None) -> OutputOptions:
    """OutputOptions from a comma-separated list of formats (or a list; None gives txt) and the rest."""
    from hushscribe.formats import FORMATS

    names = formats.split(",") if isinstance(formats, str) else list(formats or ["txt"])
    chosen = tuple(dict.fromkeys(name.strip().lower() for name in names if name.strip())) or ("txt",)
    unknown = [name for name in chosen if name not in FORMATS]
    if unknown:
        raise OptionError("formats", f"unknown format {', '.join(unknown)}; choose from {', '.join(FORMATS)}")
    return OutputOptions(formats=chosen, timestamps=bool(timestamps), overwrite=bool(overwrite),
                         max_line_chars=_line_chars(max_line_chars))


def checked_speakers(value: int | str | None) -> int | str | None:
    """A speakers option as TranscribeOptions keeps it: None (off), "auto", or a count; HushError otherwise.
    Accepts what a surface passes on: "off", "auto", "3", 3."""
    if isinstance(value, str):
        value = value.strip().lower()
        if value in ("", "off", "none"):
            return None
        if value == "auto":
            return "auto"
        if not value.isdecimal() or not value.isascii():
            raise HushError(f"speakers must be 'auto', 'off' or a number of speakers, not {value!r}")
        value = int(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SPEAKERS:
        raise HushError(f"the number of speakers must be a whole number from 1 to {MAX_SPEAKERS}, not {value!r}")
    return value


def _line_chars(value: int | str | None) -> int:
    """A subtitle line's length in characters: None or "" gives MAX_LINE_CHARS."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return MAX_LINE_CHARS
    low, high = LINE_CHARS_RANGE
    try:
        chars = int(value)
    except (TypeError, ValueError):
        chars = 0
    if isinstance(value, bool) or not low <= chars <= high:
        raise OptionError("max_line_chars", f"a subtitle line must hold from {low} to {high} characters "
                                            f"(42 suits English, 16 Chinese), not {value!r}")
    return chars


def _hertz(value: float | str | None) -> float | None:
    """A high-pass cut-off: None or "" (off), or a frequency in Hz above 0 and at most MAX_HIGHPASS_HZ."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        hertz = float(value)
    except (TypeError, ValueError):
        raise OptionError("highpass", f"the high-pass cut-off must be a frequency in Hz, such as 80, "
                                      f"not {value!r}") from None
    if not math.isfinite(hertz) or not 0 < hertz <= MAX_HIGHPASS_HZ:
        raise OptionError("highpass", f"the high-pass cut-off must be above 0 and at most {MAX_HIGHPASS_HZ:.0f} Hz "
                                      f"(80 takes out rumble), not {value!r}")
    return hertz


@contextlib.contextmanager
def _naming(option: str) -> Iterator[None]:
    """Turns a HushError raised while reading `option` into an OptionError that names it."""
    try:
        yield
    except OptionError:
        raise
    except HushError as exc:
        raise OptionError(option, str(exc)) from None
