"""The command line: `hushscribe transcribe INPUT... [-o OUTDIR] [-f txt,srt,…]`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from hushscribe import __version__
from hushscribe.audio import find_recordings
from hushscribe.engines import ENGINES
from hushscribe.errors import HushError
from hushscribe.formats import (
    FORMATS,
    OutputExists,
    format_timestamp,
    output_path,
    refuse_existing,
    render,
    write,
)
from hushscribe.library import LIBRARY_ENV, PASSPHRASE_ENV, SAVE_ENV, SEARCH_LIMIT, default_path, saving_by_default
from hushscribe.models import DOWNLOADABLE
from hushscribe.options import (
    OptionError,
    OutputOptions,
    TranscribeOptions,
    parse,
    parse_output,
)
from hushscribe.text import SCRIPTS
from hushscribe.transcript import FLAG_WARNINGS, Transcript

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Job:
    """One input file and where its outputs go."""

    path: Path
    out_dir: Path | None  # None: print to stdout
    error: str | None = None
    duration: float = 0.0
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)  # the files written (none when printed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hushscribe", description="Private speech-to-text on your own machine.")
    parser.add_argument("--version", action="version", version=f"hushscribe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    t = commands.add_parser("transcribe", help="transcribe recordings (files or folders)",
                            description="Transcribe recordings. Folders are searched recursively for audio and video.")
    t.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="audio/video files or folders")
    t.add_argument("-o", "--output-dir", type=Path, help="write outputs here (default: next to each input; "
                   "one input and no -o/-f prints the transcript instead)")
    t.add_argument("-f", "--formats", help=f"comma-separated output formats: {','.join(FORMATS)} (default: txt)")
    _engine_arguments(t)
    _transcription_arguments(t)
    t.add_argument("--overwrite", action="store_true", help="replace existing output files")
    t.add_argument("--save", action="store_true", default=saving_by_default(),
                   help="keep the transcript in your library, to search later (made the first time; default: "
                        f"${SAVE_ENV}=1 turns it on for every run)")
    t.add_argument("--keep-audio", action="store_true", help="with --save, keep a copy of the recording too")
    _library_argument(t)
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    b = commands.add_parser("batch", help="transcribe an archive: resumable, across GPUs and machines with Ray",
                            description="Transcribe every recording under INPUT_DIR into OUT_DIR (mirroring the "
                                        "tree), keeping OUT_DIR/_manifest.jsonl; running it again skips what is "
                                        "done for unchanged files and retries what failed.")
    b.add_argument("input_dir", type=Path, metavar="INPUT_DIR")
    b.add_argument("-o", "--output-dir", type=Path, required=True)
    b.add_argument("-f", "--formats", default="txt,json",
                   help=f"comma-separated: {','.join(FORMATS)} (default: txt,json)")
    _engine_arguments(b)
    _transcription_arguments(b)
    b.add_argument("--ray", metavar="ADDRESS", help="run on Ray: 'local' starts one on this machine, 'auto' or "
                   "host:port joins a running cluster (default: no Ray, this process)")
    b.add_argument("--gpus-per-worker", type=float, default=None,
                   help="GPUs per Ray worker (default: 1 where the cluster has GPUs; 0: CPU workers)")
    b.add_argument("--cpus-per-worker", type=float, default=2, help="cores per CPU worker (default 2)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    v = commands.add_parser("live", help="captions from the microphone, or while a recording plays",
                            description="Show captions as people speak into the default microphone (or --mic), or "
                                        "as INPUT plays in real time: the words still being heard dimmed, each "
                                        "utterance's final text as a line. Ctrl+C stops. With -o, the transcript "
                                        "is written when it ends (live-YYYYMMDD-HHMMSS for the microphone).")
    v.add_argument("input", type=Path, nargs="?", metavar="INPUT",
                   help="an audio or video file to play (default: listen to the microphone)")
    v.add_argument("--mic", metavar="DEVICE", help="the input to listen to, as FFmpeg names it, FORMAT:NAME: "
                   "alsa:plughw:1, avfoundation::1, \"dshow:audio=Microphone (USB)\" (default: the system's "
                   "default input)")
    v.add_argument("-o", "--output-dir", type=Path, help="write the transcript here when it ends")
    v.add_argument("-f", "--formats", help=f"comma-separated output formats: {','.join(FORMATS)} (default: txt)")
    v.add_argument("--overwrite", action="store_true", help="replace existing output files")
    v.add_argument("--speed", type=float, default=1.0,
                   help="how fast to play INPUT: 1 is real time (default), 0 as fast as recognition goes")
    _engine_arguments(v)
    _transcription_arguments(v)

    w = commands.add_parser("web", help="the web page (Streamlit) on this machine")
    w.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    w.add_argument("--port", type=int, default=8501)

    s = commands.add_parser("serve", help="an OpenAI-compatible transcription API on this machine",
                            description="Serve POST /v1/audio/transcriptions as OpenAI's API does, with one model "
                                        "loaded; concurrent requests share GPU batches.")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--api-key", default=os.environ.get("HUSHSCRIBE_API_KEY"),
                   help="require 'Authorization: Bearer KEY' on every /v1 request (default: $HUSHSCRIBE_API_KEY)")
    s.add_argument("--max-upload-mb", type=float, default=500, help="largest upload accepted (default 500)")
    s.add_argument("--with-library", action="store_true",
                   help="serve your library at /v1/library (search, transcripts, export, delete) and let requests "
                        "save to it with save=true (default: off)")
    _library_argument(s)
    _engine_arguments(s)

    _library_parser(commands)

    m = commands.add_parser("models", help="list or download models")
    model_commands = m.add_subparsers(dest="models_command", required=True)
    model_commands.add_parser("list", help="the models hushscribe knows, where they are and their size")
    d = model_commands.add_parser("download", help="fetch Qwen3-ASR weights or its forced aligner (the only command "
                                  "that uses the network)")
    d.add_argument("name", choices=sorted(DOWNLOADABLE), help="which model")
    return parser


def _library_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--library", type=Path, metavar="FILE", help=f"the library file (default: ${LIBRARY_ENV}, "
                        "else ~/.local/share/hushscribe/library.db); encrypted ones take their passphrase from "
                        f"${PASSPHRASE_ENV} or ask for it")


def _library_parser(commands) -> None:
    lib = commands.add_parser("library", help="search and manage the transcripts you saved (transcribe --save)",
                              description="Your saved transcripts: search them in any language (Chinese in either "
                                          "script), show, export, rename speakers, delete.")
    actions = lib.add_subparsers(dest="library_command", required=True)
    init = actions.add_parser("init", help="start a library (transcribe --save also starts one)")
    init.add_argument("--encrypt", action="store_true", help="encrypt it with a passphrase (SQLCipher, AES-256; "
                      "pip install 'hushscribe[encrypt]'): without it, the file reveals nothing")
    search = actions.add_parser("search", help="find what was said: every word must be in the segment",
                                description="Words are found by their stem (budgets finds budget); Chinese words "
                                            "inside sentences in Simplified or Traditional; \"quote\" a phrase.")
    search.add_argument("query", nargs="+", metavar="WORDS")
    search.add_argument("--speaker", metavar="NAME", help="only what this speaker said (a name, part of one, or S1)")
    search.add_argument("--since", metavar="YYYY-MM-DD", help="only transcripts saved on or after this day")
    search.add_argument("-n", "--limit", default=None, help=f"at most this many hits (default {SEARCH_LIMIT})")
    search.add_argument("--json", action="store_true", help="the hits as JSON")
    actions.add_parser("list", help="the saved transcripts, newest first")
    show = actions.add_parser("show", help="a saved transcript: what it is, then its text")
    show.add_argument("id", metavar="ID")
    export = actions.add_parser("export", help="write a saved transcript in an output format (or its kept audio)")
    export.add_argument("id", metavar="ID")
    export.add_argument("-f", "--format", default="txt", help=f"{', '.join(FORMATS)} or audio (default: txt)")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: print it)")
    rename = actions.add_parser("rename", help="name a saved transcript's speakers: ID S1=Ana S2=Ben")
    rename.add_argument("id", metavar="ID")
    rename.add_argument("names", nargs="+", metavar="SPEAKER=NAME")
    delete = actions.add_parser("delete", help="remove a transcript for good: text, index and audio copy")
    delete.add_argument("id", metavar="ID")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask")
    for action in actions.choices.values():
        _library_argument(action)


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="recognition engine (default: auto)")
    parser.add_argument("--model", help="model name or folder for the engine")
    parser.add_argument("--aligner", metavar="FOLDER", help="Qwen3-ForcedAligner folder that times Qwen3-ASR's words "
                        "(default: the one `hushscribe models download qwen3-forcedaligner-0.6b` fetched)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--debug", action="store_true", help="log each segment's text and timing to stderr "
                        "(without it, logs never hold transcript text)")


def _transcription_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of options.parse and parse_output's timestamps, the same on transcribe and batch."""
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="never fuse the Qwen decoder step with torch.compile (by default it is compiled "
                             "once a long job has lost more to the plain step than the compile costs)")
    parser.add_argument("-l", "--language", default="auto",
                        help="auto, or a code such as zh, yue, en, ja (default: auto)")
    parser.add_argument("--script", choices=SCRIPTS, help="Chinese output script (default: simplified for zh and yue)")
    parser.add_argument("--context", help="names and terms that help recognition, e.g. \"Qwen, 七牛, Dr. Chan\"")
    parser.add_argument("--timestamps", action=argparse.BooleanOptionalAction, default=True,
                        help="[HH:MM:SS] at the start of each paragraph in txt/md (default: on)")
    parser.add_argument("--max-line-chars", metavar="N",
                        help="characters a subtitle line (srt, vtt) may hold (default 42; about 16 suits Chinese)")
    parser.add_argument("--fix-de", action="store_true", help="repair 的/地/得 in Mandarin text")
    parser.add_argument("--word-timestamps", action="store_true",
                        help="time every word: JSON lists the words, subtitles are cut between words, and "
                             "vtt-words highlights each word as it is said (Qwen3-ASR needs its forced aligner)")
    parser.add_argument("--speakers", default="off", metavar="auto|N|off",
                        help="who spoke when: 'auto' finds how many, N if you know (default: off)")
    parser.add_argument("--highpass", metavar="HZ", help="high-pass filter below HZ (e.g. 80) against rumble")
    parser.add_argument("--normalize", action="store_true", help="normalise loudness (EBU R128) for quiet recordings")


def main(argv: list[str] | None = None) -> int:
    from hushscribe import tempfiles

    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "debug", False))
    tempfiles.process_folder()  # libraries' temporary files go into a private folder, removed at exit
    try:
        if args.command == "models":
            return models_command(args)
        if args.command == "web":
            return web_command(args)
        if args.command == "serve":
            return serve_command(args)
        if args.command == "batch":
            return batch_command(args)
        if args.command == "live":
            return live_command(args)
        if args.command == "library":
            return library_command(args)
        return transcribe_command(args)
    except HushError as exc:
        print(f"hushscribe: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hushscribe: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _setup_logging(debug: bool) -> None:
    """Warnings as one 'hushscribe: …' line on stderr; --debug adds our own debug lines (segment
    texts among them), never other libraries'."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hushscribe: %(message)s"))
    logger = logging.getLogger("hushscribe")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)


def transcribe_command(args: argparse.Namespace) -> int:
    from hushscribe.transcriber import Transcriber

    options, output = _options(args)
    jobs = collect_jobs(args.inputs, args.output_dir, to_stdout=args.formats is None)
    runnable = [job for job in jobs if job.error is None]
    transcriber = None
    if args.keep_audio and not args.save:
        raise HushError("--keep-audio keeps the recording in the library: add --save")
    library = open_library_for(args.library, create=True) if args.save and runnable else None
    if runnable:
        transcriber = Transcriber(args.engine, model=args.model, device=args.device, compile=args.compile,
                                  aligner=args.aligner)
        options = transcriber.checked(options)
    for job in runnable:
        try:
            transcript = run_job(transcriber, job, options, output, quiet=args.quiet)
            if library is not None:
                saved = library.add(transcript, recording=job.path, options=options, keep_audio=args.keep_audio)
                print(f"hushscribe: {job.path.name} saved in the library as #{saved}", file=sys.stderr)
        except HushError as exc:
            job.error = str(exc)
    for job in jobs:
        if job.error:
            print(f"hushscribe: error: {job.error}", file=sys.stderr)
    if len(jobs) > 1 or not (args.quiet or jobs[0].error):  # one file's error needs no summary below it
        print_summary(jobs, args.output_dir)
    return EXIT_FAILED if any(job.error for job in jobs) else 0


def batch_command(args: argparse.Namespace) -> int:
    from hushscribe import batch

    if args.ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise HushError("--ray needs Ray: pip install 'hushscribe[batch]'") from None
    options, output = _options(args)
    summary = batch.run_batch(args.input_dir, args.output_dir, output=output, options=options,
                              engine=args.engine, model=args.model, device=args.device, ray_address=args.ray,
                              gpus_per_worker=args.gpus_per_worker, cpus_per_worker=args.cpus_per_worker,
                              compile=args.compile, aligner=args.aligner, quiet=args.quiet)
    batch.print_summary(summary)
    return EXIT_FAILED if summary.failed else 0


def live_command(args: argparse.Namespace) -> int:
    from hushscribe.audio import decode, default_input, open_input
    from hushscribe.live import LiveRecognizer
    from hushscribe.transcriber import Transcriber
    from hushscribe.transcript import Segment, Transcript

    options, output = _options(args)
    stopped = threading.Event()  # Ctrl+C: the chunks end, the open utterance is closed, the transcript kept
    if args.input and args.mic:
        raise HushError("give INPUT (a recording to play) or --mic (a device to listen to), not both")
    if args.formats and not args.output_dir:
        raise HushError("-f/--formats needs -o DIR, the folder to write the transcript to")
    if options.speakers or options.word_timestamps:
        flag = "--speakers" if options.speakers else "--word-timestamps"
        raise HushError(f"live captions do not {'label speakers' if options.speakers else 'time words'}; save the "
                        f"transcript with -o and transcribe the recording with {flag} afterwards")
    if args.input:
        job, source = Job(args.input, args.output_dir), args.input.name
        targets = _targets(job, output)  # before the recording plays, not after
        chunks = _played(decode(args.input, options.filters), args.speed, stopped)
    else:
        device = args.mic or default_input()
        job, source = Job(Path(time.strftime("live-%Y%m%d-%H%M%S")), args.output_dir), args.mic or "microphone"
        targets = _targets(job, output)
        chunks = open_input(device, options.filters, stopped)  # opened now, before the model loads
    transcriber = Transcriber(args.engine, model=args.model, device=args.device, compile=args.compile)
    live = LiveRecognizer(transcriber.engine, transcriber.checked(options))
    if not args.input:
        print(f"hushscribe: listening to {device}; Ctrl+C stops", file=sys.stderr, flush=True)
    with _stopped_by(signal.SIGINT, stopped), closing(chunks):
        finals, duration = _show_live(live, chunks)
    if targets:
        transcript = Transcript(source=source, duration=duration, language=options.language or live.language,
                                engine=transcriber.engine.name, model=transcriber.engine.model_name,
                                segments=[Segment(c.start, c.end, c.committed, c.language) for c in finals
                                          if c.committed])
        _write_outputs(job, transcript, output, targets)
        print(f"hushscribe: wrote {', '.join(str(t) for t in job.outputs)}", file=sys.stderr)
    return 0


def _played(samples, speed: float, stop: threading.Event) -> Iterator:
    """A recording in chunks as a microphone delivers them, each when it is due at `speed` (0: at once), until
    `stop` is set."""
    from hushscribe.audio import LIVE_CHUNK_S, SAMPLE_RATE

    chunk, started = int(LIVE_CHUNK_S * SAMPLE_RATE), time.perf_counter()
    for at in range(0, len(samples), chunk):
        if stop.is_set():
            return
        yield samples[at:at + chunk]
        if speed > 0:  # as the recording plays: wait until this chunk's end is due
            time.sleep(max(0.0, (at + chunk) / SAMPLE_RATE / speed - (time.perf_counter() - started)))


@contextmanager
def _stopped_by(signum: int, stopped: threading.Event) -> Iterator[None]:
    """The signal sets `stopped` instead of interrupting, once; a second one interrupts."""

    def stop(received, frame) -> None:
        stopped.set()
        signal.signal(signum, previous)

    previous = signal.signal(signum, stop)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def _show_live(live, chunks: Iterator) -> tuple[list, float]:
    """Feed `chunks` to `live`, then close the open utterance, showing the captions as they come; returns the
    utterances' final captions and the seconds heard."""
    from hushscribe.audio import SAMPLE_RATE

    terminal, finals, heard = sys.stdout.isatty(), [], 0
    for chunk in chunks:
        heard += len(chunk)
        finals += _shown(live.feed(chunk), terminal)
    finals += _shown(live.finish(), terminal)
    return finals, heard / SAMPLE_RATE


def _shown(captions: list, terminal: bool) -> list:
    """Print each utterance's final text as a stamped line and, on a terminal, the words still being heard
    dimmed on a line rewritten as they change; returns the final captions."""
    for caption in captions:
        if caption.final and caption.committed:
            line = f"[{format_timestamp(caption.start, millis=False)}] {caption.committed}"
            print(("\r\x1b[K" if terminal else "") + line, flush=True)
        elif terminal and (caption.text or caption.final):  # an utterance ending with no text clears the line
            print(f"\r\x1b[K{caption.committed}\x1b[2m{caption.tentative}\x1b[0m", end="", flush=True)
    return [caption for caption in captions if caption.final]


def serve_command(args: argparse.Namespace) -> int:
    try:
        from hushscribe import server
    except ImportError:
        raise HushError("the API server needs FastAPI and uvicorn: pip install 'hushscribe[server]'") from None
    from hushscribe.engines import load_engine

    _warn_if_public(args.host, args.port, "the API")
    if args.with_library and not args.api_key and not _is_local(args.host):
        raise HushError("--with-library on an address other machines can reach needs --api-key: anyone who reaches "
                        "the server could read your library")
    library = open_library_for(args.library, create=True) if args.with_library else None
    engine = load_engine(args.engine, model=args.model, device=args.device, aligner=args.aligner)
    print(f"hushscribe: serving {engine.name} ({engine.model_name}) at http://{args.host}:{args.port}/v1"
          + (" (API key required)" if args.api_key else "") + f"; live captions at http://{args.host}:{args.port}/live"
          + (f"; the library {library.path} at /v1/library" if library else ""), file=sys.stderr, flush=True)
    server.serve(engine, host=args.host, port=args.port, api_key=args.api_key, max_upload_mb=args.max_upload_mb,
                 library=library)
    return 0


def _is_local(host: str) -> bool:
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return False


def _warn_if_public(host: str, port: int, what: str) -> None:
    if not _is_local(host):
        print(f"hushscribe: {what} will be reachable from other machines at {host}:{port}; anyone who can reach "
              "it can transcribe with your machine and see results", file=sys.stderr)


def web_command(args: argparse.Namespace) -> int:
    try:
        from streamlit.web import cli as streamlit_cli
    except ImportError:
        raise HushError("the web page needs Streamlit: pip install 'hushscribe[web]'") from None
    from hushscribe import web

    _warn_if_public(args.host, args.port, "the page")
    # ours, whatever the user's Streamlit config says: no usage statistics, no browser, no watcher
    os.environ["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    sys.argv = ["streamlit", "run", str(Path(web.__file__)), "--server.address", args.host,
                "--server.port", str(args.port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
                "--global.developmentMode", "false", "--server.fileWatcherType", "none",
                "--client.toolbarMode", "minimal"]
    return streamlit_cli.main()


def open_library_for(path: Path | None, *, create: bool = False, encrypt: bool = False):
    """The library at `path` (or the default one), its passphrase from $HUSHSCRIBE_LIBRARY_PASSPHRASE or asked for;
    made when `create`, saying where."""
    from hushscribe import library

    path = path or default_path()
    fresh = not path.exists()
    passphrase = os.environ.get(PASSPHRASE_ENV) or None
    if passphrase is None and ((fresh and encrypt) or (not fresh and library.is_encrypted(path))):
        passphrase = _ask_passphrase(path, twice=fresh)
    opened = library.open_library(path, passphrase, create=create)
    if fresh:
        print(f"hushscribe: started a library at {path}" + (" (encrypted)" if opened.encrypted else "")
              + "; search it with `hushscribe library search WORDS`", file=sys.stderr)
    return opened


def _ask_passphrase(path: Path, *, twice: bool) -> str:
    import getpass

    if not sys.stdin.isatty():
        raise HushError(f"the library {path} needs its passphrase: set {PASSPHRASE_ENV}")
    passphrase = getpass.getpass(f"passphrase for {path}: ")
    if twice and getpass.getpass("the same passphrase again: ") != passphrase:
        raise HushError("the two passphrases differ; nothing was made")
    return passphrase


def library_command(args: argparse.Namespace) -> int:
    if args.library_command == "init":
        if (args.library or default_path()).exists():
            raise HushError(f"there is a library at {args.library or default_path()} already")
        open_library_for(args.library, create=True, encrypt=args.encrypt).close()
        return 0
    with open_library_for(args.library) as library:
        try:
            return LIBRARY_ACTIONS[args.library_command](library, args)
        except OptionError as exc:
            raise HushError(f"--{exc.option}: {exc}" if exc.option != "query" else str(exc)) from None


def _library_search(library, args: argparse.Namespace) -> int:
    import json

    from hushscribe.library import parse_search

    hits = library.search(parse_search(" ".join(args.query), speaker=args.speaker, since=args.since,
                                       limit=args.limit))
    if args.json:
        print(json.dumps([hit.to_dict() for hit in hits], ensure_ascii=False, indent=1))
        return 0
    colour = sys.stdout.isatty()
    shown = None
    for hit in hits:
        if hit.transcript_id != shown:
            print(f"#{hit.transcript_id} {hit.source} · saved {_local_day(hit.added)}")
            shown = hit.transcript_id
        text, marks = hit.context()
        speaker = f"{hit.speaker}: " if hit.speaker else ""
        print(f"  [{format_timestamp(hit.start, millis=False)}] {speaker}{_highlighted(text, marks, colour)}")
    print(f"hushscribe: {len(hits)} hit{'s' * (len(hits) != 1)} in {library.path}"
          + ("; more with --limit" if len(hits) == (int(args.limit or SEARCH_LIMIT)) else ""), file=sys.stderr)
    return 0 if hits else EXIT_FAILED


def _highlighted(text: str, marks, colour: bool) -> str:
    """`text` with each mark in bold yellow on a terminal, **like this** otherwise."""
    start, end = ("\x1b[1;33m", "\x1b[0m") if colour else ("**", "**")
    for a, b in reversed(marks):
        text = text[:a] + start + text[a:b] + end + text[b:]
    return text


def _local_day(iso: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M")


def _library_list(library, args: argparse.Namespace) -> int:
    from hushscribe.formats import format_duration

    entries = library.entries()
    for entry in entries:
        audio = " · audio kept" if entry.has_audio else ""
        print(f"#{entry.id:<5} {_local_day(entry.added)}  {format_duration(entry.duration):>8}  "
              f"{entry.language or '?':5} {entry.source}{audio}")
    print(f"hushscribe: {len(entries)} transcript{'s' * (len(entries) != 1)} in {library.path}", file=sys.stderr)
    return 0


def _library_show(library, args: argparse.Namespace) -> int:
    from hushscribe.formats import format_duration

    entry = library.entry(args.id)
    speakers = ", ".join(f"{s} = {name}" for s, name in entry.speakers.items())
    facts = {"file": entry.source, "saved": _local_day(entry.added), "duration": format_duration(entry.duration),
             "language": entry.language, "engine": f"{entry.engine} ({entry.model})" if entry.engine else None,
             "size": f"{entry.size:,} bytes" if entry.size is not None else None, "sha256": entry.sha256,
             "speakers": speakers or None, "audio": "kept" if entry.has_audio else "not kept"}
    print(f"#{entry.id}")
    for name, value in facts.items():
        if value:
            print(f"  {name + ':':10} {value}")
    print()
    sys.stdout.write(render(library.transcript(entry.id), "txt"))
    return 0


def _library_export(library, args: argparse.Namespace) -> int:
    fmt = args.format.strip().lower()
    if fmt == "audio":
        kept = library.audio(args.id)
        if kept is None:
            raise HushError(f"transcript {args.id} was saved without its audio (transcribe --save --keep-audio "
                            "keeps it)")
        body: str | bytes = kept[1]
    elif fmt in FORMATS:
        body = render(library.transcript(args.id), fmt)
    else:
        raise HushError(f"-f/--format: unknown format {fmt!r}; choose from {', '.join(FORMATS)} or audio")
    if args.output is not None:
        try:
            args.output.write_bytes(body if isinstance(body, bytes) else body.encode())
        except OSError as exc:
            raise HushError(f"cannot write {args.output} ({exc.strerror}); choose another -o") from None
        print(f"hushscribe: wrote {args.output}", file=sys.stderr)
    elif isinstance(body, bytes):
        raise HushError(f"{fmt} is not text: write it to a file with -o FILE")
    else:
        sys.stdout.write(body)
    return 0


def _library_rename(library, args: argparse.Namespace) -> int:
    pairs = [name.split("=", 1) for name in args.names]
    if any(len(pair) != 2 for pair in pairs):
        raise HushError("give each name as SPEAKER=NAME, such as S1=Ana (`hushscribe library show ID` lists the "
                        "speakers)")
    names = library.rename_speakers(args.id, {speaker.strip(): name for speaker, name in pairs})
    print(", ".join(f"{speaker} = {name}" for speaker, name in names.items()))
    return 0


def _library_delete(library, args: argparse.Namespace) -> int:
    entry = library.entry(args.id)
    if not args.yes:
        if not sys.stdin.isatty():
            raise HushError(f"deleting #{entry.id} ({entry.source}) cannot be undone: add --yes")
        if input(f"delete #{entry.id} {entry.source} for good? [y/N] ").strip().lower() not in ("y", "yes"):
            print("hushscribe: nothing deleted", file=sys.stderr)
            return EXIT_FAILED
    library.delete(entry.id)
    print(f"hushscribe: deleted #{entry.id} ({entry.source}): its text, index entries"
          + (" and audio copy" if entry.has_audio else ""), file=sys.stderr)
    return 0


LIBRARY_ACTIONS = {"search": _library_search, "list": _library_list, "show": _library_show,
                   "export": _library_export, "rename": _library_rename, "delete": _library_delete}


def models_command(args: argparse.Namespace) -> int:
    from hushscribe import models

    if args.models_command == "download":
        repo = models.DOWNLOADABLE[args.name]
        print(f"downloading {repo} from Hugging Face (this command alone uses the network)…", file=sys.stderr)
        print(models.download(args.name))
        return 0
    for info in models.list_models():
        where = str(info.path) if info.path else f"not present: hushscribe models download {info.name}"
        size = f"{info.size / 1e9:.2f} GB" if info.path else "-"
        print(f"{info.name:24} {info.engine:8} {size:>9}  {where}")
    return 0


def collect_jobs(inputs: list[Path], output_dir: Path | None, *, to_stdout: bool) -> list[Job]:
    """Expand folders (recursively, audio/video only); outputs mirror the folder's tree under -o."""
    jobs: list[Job] = []
    for item in inputs:
        if item.is_dir():
            files = find_recordings(item)
            if not files:
                jobs.append(Job(item, None, error=f"{item}: no audio or video files in this folder"))
            for f in files:
                out = (output_dir / f.parent.relative_to(item)) if output_dir else f.parent
                jobs.append(Job(f, out))
        elif item.exists():
            jobs.append(Job(item, output_dir or item.parent))
        else:
            jobs.append(Job(item, None, error=f"{item}: no such file or folder; check the path"))
    if to_stdout and output_dir is None and len(jobs) == 1 and jobs[0].error is None:
        jobs[0].out_dir = None
    return jobs


def run_job(transcriber, job: Job, options: TranscribeOptions, output: OutputOptions, *, quiet: bool) -> Transcript:
    from tqdm import tqdm

    targets = _targets(job, output)
    started = time.perf_counter()
    with transcriber.stream(job.path, options) as stream:
        job.duration = stream.duration
        # progress in seconds of the recording: a long one is segmented window by window as it goes
        with tqdm(total=round(stream.duration), desc=job.path.name[:30], unit="s", file=sys.stderr, disable=quiet,
                  leave=False, dynamic_ncols=True) as bar:
            for _ in stream:
                bar.set_postfix_str(f"{stream.x_realtime:.1f}× realtime", refresh=False)
                bar.update(max(0, round(stream.position) - bar.n))
        transcript = stream.result()
    _warn_about_flags(job, transcript)
    if job.out_dir is None:
        sys.stdout.write(render(transcript, "txt", output))
        sys.stdout.flush()
    else:
        _write_outputs(job, transcript, output, targets)
    job.seconds = time.perf_counter() - started
    return transcript


def _warn_about_flags(job: Job, transcript: Transcript) -> None:
    """A line on stderr for each segment flag (repaired loop, token cap), at the time the txt output shows."""
    for segment in transcript.segments:
        for flag in segment.flags:
            print(f"hushscribe: warning: {job.path} {format_timestamp(segment.start, millis=False)}: "
                  f"{FLAG_WARNINGS.get(flag, flag)}", file=sys.stderr)


def print_summary(jobs: list[Job], output_dir: Path | None) -> None:
    done = [j for j in jobs if not j.error]
    line = f"hushscribe: {len(done)} transcribed, {len(jobs) - len(done)} failed"
    if done:
        audio = sum(j.duration for j in done)
        seconds = sum(j.seconds for j in done)
        speed = f", {audio / seconds:.1f}× realtime" if seconds else ""
        line += f"; {audio:.1f} s of audio in {seconds:.1f} s{speed}" + _where_outputs_went(done, output_dir)
    print(line, file=sys.stderr)


def _where_outputs_went(done: list[Job], output_dir: Path | None) -> str:
    """'; wrote a.txt, a.srt' for one recording, else the folder they all went to (empty when printed)."""
    written = [j for j in done if j.outputs]
    if not written:
        return ""
    if len(written) == 1:
        return "; wrote " + ", ".join(str(p) for p in written[0].outputs)
    folders = {j.out_dir for j in written}
    if output_dir is None and len(folders) > 1:
        return "; outputs next to each recording"
    return f"; outputs in {output_dir or folders.pop()}"


def _targets(job: Job, output: OutputOptions) -> list[Path]:
    """The files a job will write (none when it prints), checked before any time goes into recognition: the
    folder made, and none of them there already unless --overwrite."""
    if job.out_dir is None:
        return []
    targets = [output_path(job.out_dir, job.path.stem, fmt) for fmt in output.formats]
    _make_output_dir(job)
    if not output.overwrite:
        _refuse_existing(job, targets)
    return targets


def _write_outputs(job: Job, transcript: Transcript, output: OutputOptions, targets: list[Path]) -> None:
    if not output.overwrite:
        _refuse_existing(job, targets)  # written meanwhile, by another run
    for fmt, target in zip(output.formats, targets):
        try:
            job.outputs.append(write(transcript, fmt, target, output, overwrite=True))
        except HushError as exc:
            raise HushError(str(exc), source=str(job.path)) from None


def _refuse_existing(job: Job, targets: list[Path]) -> None:
    try:
        refuse_existing(targets)
    except OutputExists as exc:
        raise HushError(f"{exc.path} already exists; pass --overwrite to replace it", source=str(job.path)) from None


def _make_output_dir(job: Job) -> None:
    """Create the output folder before spending time on recognition."""
    try:
        job.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HushError(f"cannot create the output folder {job.out_dir} ({exc.strerror}); choose another with -o",
                        source=str(job.path)) from None


# The flag that sets each option parse() names, for error messages.
FLAGS = {"language": "--language", "script": "--script", "context": "--context", "fix_de": "--fix-de",
         "speakers": "--speakers", "highpass": "--highpass", "normalize": "--normalize", "formats": "--formats",
         "timestamps": "--timestamps", "overwrite": "--overwrite", "max_line_chars": "--max-line-chars",
         "word_timestamps": "--word-timestamps"}


def _options(args: argparse.Namespace) -> tuple[TranscribeOptions, OutputOptions]:
    """The options a transcribe or batch command line sets; HushError naming the flag for a bad value."""
    try:
        options = parse(language=args.language, script=args.script, context=args.context, fix_de=args.fix_de,
                        speakers=args.speakers, highpass=args.highpass, normalize=args.normalize,
                        word_timestamps=args.word_timestamps)
        output = parse_output(formats=args.formats, timestamps=args.timestamps, max_line_chars=args.max_line_chars,
                              overwrite=getattr(args, "overwrite", False))
    except OptionError as exc:
        raise HushError(f"{FLAGS[exc.option]}: {exc}") from None
    return options, output


if __name__ == "__main__":
    sys.exit(main())
