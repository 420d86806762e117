"""The web page (Streamlit): upload or record, preview, transcribe, edit while listening, download.

Started by `hushscribe web`, which binds 127.0.0.1 and turns Streamlit's usage statistics off.
The page is a thin layer over Transcriber; the helpers at the top are plain functions. The transcript editor is a
Streamlit component of our own: static files in assets/editor, served by Streamlit itself.
"""

from __future__ import annotations

import io
import mimetypes
import os
import re
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import streamlit as st

from hushscribe.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, decode
from hushscribe.errors import HushError
from hushscribe.formats import FORMATS, REGISTRY, format_timestamp, output_path, render, word_spans
from hushscribe.languages import LANGUAGE_NAMES
from hushscribe.library import (
    PASSPHRASE_ENV,
    default_path,
    is_encrypted,
    open_library,
    parse_search,
    saving_by_default,
)
from hushscribe.options import OutputOptions
from hushscribe.transcript import Transcript, Word

VIEWS = ["Transcribe", "Library"]
UPLOAD_TYPES = sorted(extension.lstrip(".") for extension in AUDIO_EXTENSIONS)  # what the CLI finds in folders
WAVEFORM_POINTS = 1200  # enough detail on any screen; a 1 h file reduces to this in one numpy pass
SPEAKER_CHOICES = ["off", "auto", "2", "3", "4", "5", "6"]
HIGHPASS_HZ = 80.0
EDITOR_ASSETS = Path(__file__).parent / "assets" / "editor"  # index.html, editor.js, editor.css: no build step
# The widget that sets each option options.parse() names, for error messages.
WIDGETS = {"language": "Language", "script": "Chinese script", "context": "Context / hotwords",
           "fix_de": "Fix 的/地/得", "speakers": "Speakers", "highpass": "High-pass filter",
           "normalize": "Normalise loudness", "max_line_chars": "Subtitle line length",
           "word_timestamps": "Word timings"}


def waveform(samples: np.ndarray, points: int = WAVEFORM_POINTS) -> np.ndarray:
    """Peak envelope of `samples` in `points` buckets (what a waveform preview draws)."""
    if len(samples) == 0:
        return np.zeros(0, np.float32)
    usable = len(samples) // points * points
    if usable == 0:
        return np.abs(samples)
    return np.abs(samples[:usable]).reshape(points, -1).max(axis=1)


def with_edits(transcript: Transcript, lines: list[str]) -> Transcript:
    """The transcript with the user's edits, one line per segment, so that every format carries them. An edited
    line loses its word timings (they timed the words it had); a line left as it was keeps them."""
    segments = [segment if segment.text == line.strip() else replace(segment, text=line.strip(), words=None)
                for segment, line in zip(transcript.segments, lines, strict=True)]
    return replace(transcript, segments=segments)


def with_names(transcript: Transcript, names: dict[str, str]) -> Transcript:
    """The transcript with speakers renamed ({"S1": "Ana"}); a blank name keeps the speaker's default."""
    renamed = replace(transcript, speakers=dict(transcript.speakers))
    renamed.rename_speakers({speaker: name for speaker, name in names.items() if name.strip()})
    return renamed


def word_pieces(text: str, words: list[Word] | None) -> list[dict] | None:
    """`text` in pieces that put together are the text: each word found in it (as subtitles find them), with its
    times; the text between words as pieces without. None when no word is found, so the editor marks only the
    line."""
    pieces: list[dict] = []
    cursor = 0
    for first, after, start, end in word_spans(text, words or []):
        if first > cursor:
            pieces.append({"text": text[cursor:first]})
        pieces.append({"text": text[first:after], "start": round(float(start), 3), "end": round(float(end), 3)})
        cursor = after
    if not pieces:
        return None
    if cursor < len(text):
        pieces.append({"text": text[cursor:]})
    return pieces


def editor_lines(transcript: Transcript) -> list[dict]:
    """What the editor shows for each segment: its times, its [HH:MM:SS] stamp, the speaker's name (None without
    speakers), its text and that text in word pieces (word_pieces)."""
    return [{"start": round(float(s.start), 3), "end": round(float(s.end), 3),
             "stamp": f"[{format_timestamp(s.start, millis=False)}]", "speaker": transcript.speaker_name(s.speaker),
             "text": s.text, "pieces": word_pieces(s.text, s.words)}
            for s in transcript.segments]


def downloads(transcript: Transcript, output: OutputOptions) -> dict[str, str | bytes]:
    return {fmt: render(transcript, fmt, output) for fmt in FORMATS}


def zip_of(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def named(name: str, data: bytes) -> io.BytesIO:
    """Uploaded bytes as a file object carrying the upload's name, so errors and transcripts name it."""
    upload = io.BytesIO(data)
    upload.name = name
    return upload


def stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


# --- the page ---------------------------------------------------------------------------------------------------


def page() -> None:
    from streamlit.components.v1 import declare_component

    from hushscribe import tempfiles
    from hushscribe.models import list_models
    from hushscribe.options import LINE_CHARS_RANGE, MAX_LINE_CHARS, OptionError, parse, parse_output

    tempfiles.process_folder()  # uploads stay in memory; anything a library spools lands in a private folder
    st.set_page_config(page_title="hushscribe", page_icon="🤫", layout="wide")
    st.title("hushscribe")
    st.caption("Private transcription: your recordings never leave this machine.")
    if st.sidebar.radio("View", VIEWS, horizontal=True, key="view") == "Library":
        library_view()  # the model is not loaded to read the library
        return

    with st.sidebar:
        st.header("Settings")
        models = list_models()
        present = [m for m in models if m.path and m.engine != "aligner"]  # the aligner times words only
        labels = {f"{m.name} ({m.engine}, {m.size / 1e9:.2f} GB)": m for m in present}
        choice = labels[st.selectbox("Model", list(labels))]
        for missing in (m for m in models if not m.path):
            st.caption(f"{missing.name}: not installed — `hushscribe models download {missing.name}`")
        codes = ["auto", "zh", "yue", "en"] + sorted(c for c in LANGUAGE_NAMES if c not in ("zh", "yue", "en"))
        language = st.selectbox("Language", codes, format_func=lambda c: "auto-detect" if c == "auto"
                                else f"{LANGUAGE_NAMES[c]} ({c})")
        script = st.radio("Chinese script", ["simplified", "traditional"], horizontal=True)
        timestamps = st.checkbox("Paragraph timestamps", value=True)
        line_chars = st.number_input("Subtitle line length", min_value=LINE_CHARS_RANGE[0],
                                     max_value=LINE_CHARS_RANGE[1], value=MAX_LINE_CHARS,
                                     help="characters a subtitle line may hold: 42 suits English, about 16 Chinese")
        context = st.text_area("Context / hotwords", placeholder="names and terms, e.g. Dr. Chan, 七牛, Qwen")
        speakers = st.radio("Speakers", SPEAKER_CHOICES, horizontal=True,
                            help="who spoke when: 'auto' finds how many; a number if you know it")
        word_timings = st.checkbox("Word timings", help="times each word, so that the editor marks each word as it "
                                   "plays (a click on a word goes to it) and subtitles cut at words")
        fix_de = st.checkbox("Fix 的/地/得 (Mandarin)")
        highpass = st.checkbox(f"High-pass filter ({HIGHPASS_HZ:.0f} Hz)")
        normalize = st.checkbox("Normalise loudness")
        save = st.checkbox("Save to the library", value=saving_by_default(),
                           help="keep each transcript in your library, to search later (made the first time)")
        keep_audio = st.checkbox("Keep the audio in the library", disabled=not save,
                                 help="the library's player then plays where a search hit was said")
        st.caption("Live captions while people speak: start `hushscribe serve` and open "
                   "[its live page](http://127.0.0.1:8000/live) (or `hushscribe live` in a terminal).")

    status = st.empty()
    status.info(f"Loading {choice.name}…")
    transcriber, load_seconds = _load(choice.engine, str(choice.path) if choice.engine == "qwen" else None)
    status.success(f"{choice.name} ready (loaded in {load_seconds:.1f} s)")

    uploads = st.file_uploader("Recordings", type=UPLOAD_TYPES, accept_multiple_files=True)
    recording = st.audio_input("Or record with the microphone")
    inputs = [(f.name, f.getvalue()) for f in uploads or []]
    if recording is not None:
        inputs.append(("recording.wav", recording.getvalue()))

    recordings = dict(inputs)  # what each result's editor plays, as uploaded (compressed), while it is uploaded
    unreadable: dict[str, str] = {}  # name → why it cannot be decoded
    for name, data in inputs:
        with st.expander(name, expanded=len(inputs) == 1):
            st.audio(data)
            try:
                samples = decode(named(name, data))
            except HushError as exc:
                unreadable[name] = str(exc)
                st.error(str(exc))  # the message names the file
                continue
            st.area_chart(waveform(samples), height=110)
            st.caption(f"{len(samples) / SAMPLE_RATE:.2f} s · {len(data) / 1e6:.2f} MB")

    try:  # checked by the engine too: word timings with Qwen3-ASR need its aligner
        options = transcriber.checked(parse(language=language, script=script, context=context, fix_de=fix_de,
                                            speakers=speakers, highpass=HIGHPASS_HZ if highpass else None,
                                            normalize=normalize, word_timestamps=word_timings))
        output = parse_output(formats=FORMATS, timestamps=timestamps, max_line_chars=line_chars)
    except OptionError as exc:  # the widgets offer only good values; a bad one is named by its label
        st.error(f"{WIDGETS[exc.option]}: {exc}")
        return
    results: dict[str, dict] = st.session_state.setdefault("results", {})
    if st.session_state.get("cancel"):
        st.info("Cancelled after the current batch; files already finished are kept below.")
    if st.button("Transcribe", type="primary", disabled=not inputs):
        try:  # before any time goes into recognition: a library that cannot be opened is said at once
            library = opened_library(create=True) if save else None
        except HushError as exc:
            st.error(f"Save to the library: {exc}")
            return
        # pressing Cancel reruns the page, which stops this run at its next step (after the current batch)
        st.button("Cancel", key="cancel")
        overall = st.progress(0.0, text="overall")
        for index, (name, data) in enumerate(inputs):
            results.pop(name, None)
            if name in unreadable:
                results[name] = {"error": unreadable[name]}
                continue
            bar = st.progress(0.0, text=name)
            try:
                # decoded again, now with the chosen filters
                with transcriber.stream(named(name, data), options) as stream:  # Cancel stops the run in the loop
                    for _ in stream:
                        bar.progress(min(1.0, stream.position / max(stream.duration, 1e-6)),
                                     text=f"{name}: {stream.position:.0f} of {stream.duration:.0f} s, "
                                          f"{stream.x_realtime:.1f}× realtime")
                    transcript = stream.result()
                # the editor's key is new with each transcript, so that edits of an earlier one are not carried over
                results[name] = {"transcript": transcript, "editor": f"editor-{name}-{time.time_ns()}"}
                if library is not None:
                    results[name]["saved"] = library.add(
                        results[name]["transcript"], recording=data, options=options, keep_audio=keep_audio)
            except HushError as exc:
                results[name] = {"error": str(exc)}
            overall.progress((index + 1) / len(inputs), text=f"{index + 1} of {len(inputs)} files")

    editor = declare_component("editor", path=str(EDITOR_ASSETS))  # served by Streamlit at /component/…/index.html
    for name, result in results.items():
        st.subheader(name)
        if "error" in result:
            st.error(result["error"])
            continue
        transcript: Transcript = result["transcript"]
        st.caption(f"{transcript.duration:.2f} s of audio in {transcript.processing_s:.2f} s "
                   f"({transcript.x_realtime:.1f}× realtime) · language {transcript.language or '?'}"
                   + (f" · saved in the library as #{result['saved']}" if "saved" in result else ""))
        if transcript.speakers:
            st.caption("Speaker names (every download uses them)")
            columns = st.columns(min(len(transcript.speakers), 4))
            names = {speaker: columns[i % len(columns)].text_input(default, key=f"name-{name}-{speaker}",
                                                                   placeholder=default)
                     for i, (speaker, default) in enumerate(transcript.speakers.items())}
            transcript = with_names(transcript, names)
        # The editor's value, every line's text, is read before it is drawn, so that it draws the edited lines
        # (an edited line without its words) and a redrawn editor comes back as the user left it.
        edited = st.session_state.get(result["editor"])
        final = with_edits(transcript, edited) if edited else transcript
        editor(lines=editor_lines(final), audio=recordings.get(name), audio_type=mimetypes.guess_type(name)[0] or "",
               key=result["editor"], default=None)
        st.code(render(final, "txt", output), language=None, wrap_lines=True)
        files = {fmt: (output_path(Path(), stem(name), fmt).name, content)
                 for fmt, content in downloads(final, output).items()}
        columns = st.columns(len(files) + 1)
        for column, (fmt, (file_name, content)) in zip(columns, files.items()):
            column.download_button(fmt.upper(), content, file_name=file_name, mime=REGISTRY[fmt].mime,
                                   key=f"dl-{file_name}")
        columns[-1].download_button("ZIP", zip_of(dict(files.values())), file_name=f"{stem(name)}.zip",
                                    mime="application/zip", key=f"zip-{name}")


# --- the library -------------------------------------------------------------------------------------------------


def marked_markdown(text: str, marks) -> str:
    """`text` as Markdown with each mark in bold and highlighted, everything else escaped."""
    pieces, cursor = [], 0
    for start, end in marks:
        pieces += [_md_escape(text[cursor:start]), f"**:orange-background[{_md_escape(text[start:end])}]**"]
        cursor = end
    return "".join(pieces + [_md_escape(text[cursor:])])


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", text)  # what Markdown and Streamlit's :color[…] act on


def opened_library(*, create: bool = False):
    """The library the page works on ($HUSHSCRIBE_LIBRARY or the default; its passphrase from the environment or
    the Library view), one per process; None when there is none and `create` is false."""
    path = default_path()
    if not create and not path.exists():
        return None
    return _library(str(path), os.environ.get(PASSPHRASE_ENV) or st.session_state.get("library_passphrase"))


@st.cache_resource(show_spinner=False)
def _library(path: str, passphrase: str | None):
    return open_library(Path(path), passphrase, create=True)


def library_view() -> None:
    st.header("Library")
    try:
        library = opened_library()
    except HushError as exc:
        st.error(str(exc))
        if is_encrypted(default_path()):
            st.text_input("Passphrase", type="password", key="library_passphrase")
        return
    if library is None:
        st.info(f"The library is off: transcripts are kept only while this page is open. Tick “Save to the "
                f"library” when you transcribe (or run `hushscribe transcribe FILE --save`) to start one at "
                f"{default_path()}.")
        return
    st.caption(f"{library.path}" + (" · encrypted" if library.encrypted else ""))
    columns = st.columns([3, 1, 1])
    text = columns[0].text_input("Search", placeholder="预算, budget, \"an exact phrase\"", key="library_query")
    speaker = columns[1].text_input("Speaker", placeholder="a name or S1", key="library_speaker")
    since = columns[2].date_input("Saved since", value=None, key="library_since")
    try:
        if text.strip():
            _show_hits(library.search(parse_search(text, speaker=speaker, since=since)))
        else:
            _show_entries(library)
        if "library_open" in st.session_state:
            _show_saved(library, *st.session_state["library_open"])
    except HushError as exc:  # a bad search, or a transcript deleted meanwhile
        st.error(str(exc))


def _show_hits(hits) -> None:
    if not hits:
        st.info("Nothing found. Every word must be in one segment; try fewer words.")
    for index, hit in enumerate(hits):
        text, marks = hit.context()
        speaker = f"{_md_escape(hit.speaker)}: " if hit.speaker else ""
        left, right = st.columns([6, 1])
        left.markdown(f"**#{hit.transcript_id} {_md_escape(hit.source)}** "
                      f"`{format_timestamp(hit.start, millis=False)}` {speaker}{marked_markdown(text, marks)}")
        right.button("Open", key=f"hit-{index}", on_click=_open, args=(hit.transcript_id, hit.start))


def _show_entries(library) -> None:
    entries = library.entries(limit=200)
    st.caption(f"{len(entries)} transcript{'s' * (len(entries) != 1)}, newest first")
    for entry in entries:
        left, right = st.columns([6, 1])
        left.markdown(f"**#{entry.id} {_md_escape(entry.source)}** · {entry.added[:10]} · "
                      f"{format_timestamp(entry.duration, millis=False)} · {entry.language or '?'}"
                      + (" · audio kept" if entry.has_audio else ""))
        right.button("Open", key=f"entry-{entry.id}", on_click=_open, args=(entry.id, None))


def _open(transcript_id: int, start: float | None) -> None:
    st.session_state["library_open"] = (transcript_id, start)


def _show_saved(library, transcript_id: int, start: float | None) -> None:
    """One saved transcript: the player at `start` (when its audio was kept), its text with the segment said at
    `start` (a search hit's) marked, speaker names, downloads, delete."""
    entry = library.entry(transcript_id)
    transcript = library.transcript(transcript_id)
    st.subheader(f"#{entry.id} {entry.source}")
    st.caption(f"saved {entry.added[:16].replace('T', ' ')} UTC · {entry.engine} ({entry.model}) · "
               f"language {entry.language or '?'}")
    kept = library.audio(transcript_id)
    if kept:
        st.audio(kept[1], format=mimetypes.guess_type(kept[0])[0] or "audio/wav", start_time=int(start or 0))
    lines = [("▶ " if segment.start == start else "") + f"`{format_timestamp(segment.start, millis=False)}` "
             + (f"{_md_escape(transcript.speaker_name(segment.speaker))}: " if segment.speaker else "")
             + (f"**{_md_escape(segment.text)}**" if segment.start == start else _md_escape(segment.text))
             for segment in transcript.segments]
    st.markdown("  \n".join(lines))
    if transcript.speakers:
        _rename_saved(library, transcript_id, transcript)
    columns = st.columns(len(FORMATS) + 1)
    for column, (fmt, content) in zip(columns, downloads(transcript, OutputOptions()).items()):
        column.download_button(fmt.upper(), content, file_name=output_path(Path(), stem(entry.source), fmt).name,
                               mime=REGISTRY[fmt].mime, key=f"saved-{fmt}")
    if columns[-1].button("Delete", key="delete-saved"):
        st.session_state["confirm_delete"] = transcript_id
    if st.session_state.get("confirm_delete") == transcript_id:
        st.warning(f"Delete #{entry.id} {entry.source} for good: its text, index entries and audio copy?")
        if st.button("Delete for good", type="primary", key="delete-for-good"):
            library.delete(transcript_id)
            del st.session_state["library_open"], st.session_state["confirm_delete"]
            st.rerun()


def _rename_saved(library, transcript_id: int, transcript: Transcript) -> None:
    columns = st.columns(min(len(transcript.speakers), 4))
    names = {speaker: columns[i % len(columns)].text_input(speaker, value=name, key=f"saved-name-{speaker}")
             for i, (speaker, name) in enumerate(transcript.speakers.items())}
    if st.button("Save names", key="save-names"):
        library.rename_speakers(transcript_id, {s: n for s, n in names.items() if n.strip()})
        st.rerun()


@st.cache_resource(max_entries=1, show_spinner=False)  # one model per process; switching frees the old one
def _load(engine: str, model: str | None):
    from hushscribe.transcriber import Transcriber

    started = time.perf_counter()
    return Transcriber(engine, model=model), time.perf_counter() - started


if __name__ == "__main__":
    page()
