"""The library: saved transcripts in one SQLite file, searchable in Chinese and English.

Off until the user turns it on (`transcribe --save`, `serve --library`, the web page's Save box); it lives at
$HUSHSCRIBE_LIBRARY, else $XDG_DATA_HOME/hushscribe/library.db (~/.local/share/hushscribe/library.db).

Search is FTS5 over terms we make ourselves (`index_terms`), so that it needs no tokenizer beyond the unicode61 and
porter ones every FTS5 build has: runs of Chinese (and of every script written without spaces) as overlapping
character pairs plus the run's last character alone, so that a two-character word inside running text is found (a
trigram index cannot find one) and one character too; other words as words, stemmed by porter ("budgets" finds
"budget"). Traditional characters are indexed and looked for as Simplified (OpenCC t2s), so each finds the other.
A hit is a segment: its time, its speaker, a sentence or two.

Privacy: `secure_delete` zeroes what a delete frees, and the index drops a deleted transcript's terms, so `delete`
leaves none of its text in the file: an encrypted library (always opened by SQLCipher's own, new SQLite) through
FTS5's secure-delete; a plain one by merging its index after the delete, because an index with FTS5's secure-delete
on cannot be read by an SQLite older than 3.42, and a plain file must open with any Python's.
With a passphrase the file is SQLCipher's (AES-256; `pip install 'hushscribe[encrypt]'`): without the passphrase
nothing in it can be read.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sqlite3
import threading
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import NamedTuple

from hushscribe.errors import HushError
from hushscribe.options import OptionError
from hushscribe.text import CJK_IDEOGRAPH_RE, SCRIPT_SIMPLIFIED, SPACELESS_LETTER_RANGES, convert_script
from hushscribe.transcript import Segment, Transcript, Word

LIBRARY_ENV = "HUSHSCRIBE_LIBRARY"
PASSPHRASE_ENV = "HUSHSCRIBE_LIBRARY_PASSPHRASE"
SAVE_ENV = "HUSHSCRIBE_SAVE"  # 1: every surface saves what it transcribes unless told otherwise
SCHEMA_VERSION = 1
PLAIN_HEADER = b"SQLite format 3\x00"  # an SQLCipher file starts with random salt instead
MAX_AUDIO_BYTES = 900 << 20  # SQLite holds at most 1e9 bytes in one value
SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 1000
CONTEXT_CHARS = 60  # of a long segment, what a hit shows either side of its first match
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"  # highlight()'s markers: control characters no transcript holds

SCHEMA = """
CREATE TABLE IF NOT EXISTS transcripts (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,           -- the recording's file name
    size INTEGER,                   -- its bytes
    sha256 TEXT,
    recorded TEXT,                  -- the file's modification time (ISO 8601), when known
    added TEXT NOT NULL,            -- when it was saved (ISO 8601, UTC)
    duration REAL NOT NULL,
    language TEXT,
    engine TEXT,
    model TEXT,
    options TEXT,                   -- JSON: what it was transcribed with
    processing_s REAL
);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,         -- also the rowid of its terms in segment_terms
    transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
    start REAL NOT NULL,
    end REAL NOT NULL,
    text TEXT NOT NULL,
    language TEXT,
    speaker TEXT,
    flags TEXT,                     -- JSON list
    words TEXT                      -- JSON list of [start, end, text, probability], when timed
);
CREATE INDEX IF NOT EXISTS segments_transcript ON segments(transcript_id);
CREATE TABLE IF NOT EXISTS speakers (
    transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
    speaker TEXT NOT NULL,          -- S1, S2, …
    name TEXT NOT NULL,
    PRIMARY KEY (transcript_id, speaker)
);
CREATE TABLE IF NOT EXISTS audio (
    transcript_id INTEGER PRIMARY KEY REFERENCES transcripts(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS segment_terms USING fts5(terms, tokenize = 'porter unicode61');
"""


class NotInLibrary(HushError):
    """A transcript id the library does not hold."""


def default_path() -> Path:
    """$HUSHSCRIBE_LIBRARY, else $XDG_DATA_HOME/hushscribe/library.db, else ~/.local/share/hushscribe/library.db."""
    if os.environ.get(LIBRARY_ENV):
        return Path(os.environ[LIBRARY_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "hushscribe" / "library.db"


def saving_by_default() -> bool:
    return os.environ.get(SAVE_ENV, "").strip().lower() in ("1", "true", "yes")


# --- terms ---------------------------------------------------------------------------------------------------


class Term(NamedTuple):
    text: str
    start: int  # its place in the text it came from, in characters
    end: int
    alone: bool = False  # a run's last spaceless character, by itself


# Runs of spaceless characters (Chinese, Japanese, Thai…), and runs of other word characters: Python's \w less "_",
# letters and numbers, which are what unicode61 keeps inside a token too, so each term is one FTS5 token.
_SPACELESS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in SPACELESS_LETTER_RANGES)
_RUNS = re.compile(f"([{_SPACELESS}]+)|([^\\W_{_SPACELESS}]+)")
_WORD = re.compile(r"[^\W_]+")


def _simplified(text: str) -> str:
    """Traditional characters as Simplified, one for one, so that every character keeps its place."""
    if not CJK_IDEOGRAPH_RE.search(text):
        return text
    simplified = convert_script(text, None, SCRIPT_SIMPLIFIED)
    if len(simplified) == len(text):
        return simplified
    return "".join(c if len(c := convert_script(ch, None, SCRIPT_SIMPLIFIED)) == 1 else ch for ch in text)


def index_terms(text: str) -> list[Term]:
    """The terms `text` is indexed and looked for by: words as they are, runs of spaceless characters (Chinese,
    Japanese, Thai) as overlapping pairs and their last character alone ("预算报告" → 预算 算报 报告 告),
    Traditional characters as Simplified."""
    terms: list[Term] = []
    for match in _RUNS.finditer(_simplified(text)):
        if match.group(2):
            terms.append(Term(match.group(2), match.start(), match.end()))
        elif match.group(1).isalnum():
            terms += _pairs(match.group(1), match.start())
        else:  # Thai vowel signs and the like are no part of a token
            terms += [t for word in _WORD.finditer(match.group(1)) for t in _pairs(word.group(), match.start() +
                                                                                   word.start())]
    return terms


def _pairs(run: str, at: int) -> list[Term]:
    pairs = [Term(run[i:i + 2], at + i, at + i + 2) for i in range(len(run) - 1)]
    pairs.append(Term(run[-1], at + len(run) - 1, at + len(run), True))
    return pairs


def fts_query(query: str) -> str:
    """The FTS5 query for a search box's text: every word, or "quoted phrase", in the segment. Each is the phrase of
    its terms; a run the query ends in drops its last character alone (the text may go on after it), and one
    character alone is a prefix (it starts a pair, or ends a run). Every term is quoted, so nothing typed is taken
    as FTS5 syntax. Empty when there is nothing to look for."""
    phrases = [_phrase(index_terms(quoted or word)) for quoted, word in re.findall(r'"([^"]*)"|(\S+)', query)]
    return " AND ".join(phrase for phrase in phrases if phrase)


def _phrase(terms: list[Term]) -> str:
    prefix = False
    if terms and terms[-1].alone:
        if len(terms) > 1 and terms[-2].end == terms[-1].end:
            terms = terms[:-1]  # the pair before holds the character
        else:
            prefix = True
    if not terms:
        return ""
    return '"' + " ".join(term.text for term in terms) + '"' + (" *" if prefix else "")


def marked_spans(highlighted: str, terms: list[Term], prefixes: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """Where in the text each match highlight() marked stands, as (start, end) character spans. `highlighted` is the
    indexed terms joined by spaces, MARK_OPEN/MARK_CLOSE around each match; a pair matched by one of `prefixes` (the
    query's lone characters) marks that character only."""
    spans: list[tuple[int, int]] = []
    inside = False
    for term, piece in zip(terms, highlighted.split(" ")):
        if piece.startswith(MARK_OPEN):
            whole = piece.endswith(MARK_CLOSE) and len(term.text) == 2 and term.text[0] in prefixes
            spans.append((term.start, term.start + 1 if whole else term.end))
            inside = True
        elif inside:
            spans[-1] = (spans[-1][0], term.end)
        inside = inside and not piece.endswith(MARK_CLOSE)
    return spans


# --- what is kept and found ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One saved transcript, as listed."""

    id: int
    source: str
    added: str  # ISO 8601, UTC
    duration: float
    language: str | None
    engine: str
    model: str
    size: int | None
    sha256: str | None
    recorded: str | None
    speakers: dict[str, str]
    has_audio: bool
    options: dict


@dataclass(frozen=True)
class Hit:
    """A segment that matched: where it is, who said it, its text and where the match stands in it."""

    transcript_id: int
    source: str
    added: str
    start: float
    end: float
    speaker: str | None  # the speaker's name
    text: str
    marks: tuple[tuple[int, int], ...]  # (start, end) character spans in text

    def context(self, chars: int = CONTEXT_CHARS) -> tuple[str, tuple[tuple[int, int], ...]]:
        """The text around the first match, at most `chars` either side, with the marks moved to match."""
        first = self.marks[0][0] if self.marks else 0
        lo = max(0, first - chars)
        hi = min(len(self.text), (self.marks[0][1] if self.marks else 0) + chars)
        text = ("…" if lo else "") + self.text[lo:hi] + ("…" if hi < len(self.text) else "")
        shift = (1 if lo else 0) - lo
        marks = tuple((a + shift, min(b, hi) + shift) for a, b in self.marks if a < hi and b > lo)
        return text, marks

    def to_dict(self) -> dict:
        return {**asdict(self), "marks": [list(mark) for mark in self.marks]}


@dataclass(frozen=True)
class SearchQuery:
    """A search, as every surface asks for it."""

    text: str
    fts: str  # the FTS5 query made of it
    prefixes: frozenset[str] = frozenset()  # its lone spaceless characters, looked for as any pair they start
    speaker: str | None = None  # a name (or part of one) or a speaker id such as S1
    since: str | None = None  # ISO 8601 UTC: saved on or after this
    limit: int = SEARCH_LIMIT


def parse_search(text: str | None, *, speaker: str | None = None, since: str | date | None = None,
                 limit: int | str | None = None) -> SearchQuery:
    """A SearchQuery from what a surface received; OptionError names the first value that cannot be used
    ("query", "speaker", "since", "limit")."""
    text = (text or "").strip()
    fts = fts_query(text)
    if not fts:
        raise OptionError("query", f"nothing to search for in {text!r}: give a word, e.g. 预算 or budget")
    prefixes = frozenset(term.text for word in text.split() if len(terms := index_terms(word)) == 1
                         for term in terms if term.alone)
    return SearchQuery(text=text, fts=fts, prefixes=prefixes, speaker=(speaker or "").strip() or None,
                       since=_since(since), limit=_limit(limit))


def _since(value: str | date | None) -> str | None:
    """The start of a local date (YYYY-MM-DD) as the UTC time `added` is compared with."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise OptionError("since", f"a date is written YYYY-MM-DD, such as 2026-03-01, not {value!r}") from None
    midnight = datetime.combine(value, time()).astimezone()  # the user's midnight, in their time zone
    return _iso(midnight)


def _limit(value: int | str | None) -> int:
    if value is None or value == "":
        return SEARCH_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        limit = 0
    if isinstance(value, bool) or not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise OptionError("limit", f"the number of hits must be from 1 to {MAX_SEARCH_LIMIT}, not {value!r}")
    return limit


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the file ------------------------------------------------------------------------------------------------


def is_encrypted(path: Path) -> bool:
    """Whether the library at `path` is SQLCipher's (its first bytes are not SQLite's header)."""
    with open(path, "rb") as file:
        header = file.read(len(PLAIN_HEADER))
    return bool(header) and header != PLAIN_HEADER


def open_library(path: Path | None = None, passphrase: str | None = None, *, create: bool = False) -> Library:
    """The library at `path` (default_path()), made when `create` (encrypted when a passphrase is given).
    HushError when there is none, it needs a passphrase, the passphrase is wrong or the file is no library."""
    path = Path(path or default_path())
    fresh = not path.exists()
    if fresh and not create:
        raise HushError(f"there is no library at {path}; start one by saving a transcript "
                        "(hushscribe transcribe FILE --save)")
    if fresh:
        _make_private_folder(path.parent)
    elif passphrase is None and is_encrypted(path):
        raise HushError(f"{path} is not a plain SQLite file: if it is an encrypted library, give its passphrase "
                        f"(set {PASSPHRASE_ENV}); else choose another file with {LIBRARY_ENV}")
    elif passphrase is not None and not is_encrypted(path):
        raise HushError(f"the library {path} is not encrypted, so it takes no passphrase: unset {PASSPHRASE_ENV}")
    db = _connect(path, passphrase)
    if fresh:
        os.chmod(path, 0o600)
    return Library(path, db, encrypted=passphrase is not None)


def _make_private_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise HushError(f"cannot create the library's folder {folder} ({exc.strerror}); set {LIBRARY_ENV} to a "
                        "file in a folder you can write to") from None


def _connect(path: Path, passphrase: str | None):
    if passphrase is not None:
        db = _sqlcipher_connect(path, passphrase)
    elif fts5_in_sqlite3():
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    else:  # some Pythons' SQLite is built without FTS5: SQLCipher's has it, and opens a plain file without a key
        db = _sqlcipher_module("this Python's SQLite has no full-text search (FTS5)").connect(
            str(path), check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA secure_delete = ON")  # freed pages and cells are zeroed: deleted text does not linger
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 10000")
        db.executescript(SCHEMA)
        _check_version(db, path)
        if passphrase is not None:  # SQLCipher's SQLite is new enough; a plain file stays readable by older ones
            db.execute("INSERT INTO segment_terms(segment_terms, rank) VALUES ('secure-delete', 1)")
        db.execute("SELECT rowid FROM segment_terms WHERE segment_terms MATCH 'x' LIMIT 1").fetchall()
    except _database_errors() as exc:
        db.close()
        raise HushError(f"{path} is not a hushscribe library ({exc}); choose another file with {LIBRARY_ENV}") \
            from None
    return db


def _database_errors() -> tuple[type[Exception], ...]:
    """sqlite3's errors, and SQLCipher's (its own classes) when it is installed."""
    try:
        from sqlcipher3 import dbapi2 as sqlcipher
    except ImportError:
        return (sqlite3.DatabaseError,)
    return (sqlite3.DatabaseError, sqlcipher.DatabaseError)


@functools.lru_cache(maxsize=1)
def fts5_in_sqlite3() -> bool:
    """Whether Python's own SQLite has FTS5 (nearly every build has)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        try:
            db.execute("CREATE VIRTUAL TABLE probe USING fts5(text)")
        except sqlite3.OperationalError:
            return False
    return True


def _sqlcipher_module(why: str):
    try:
        from sqlcipher3 import dbapi2 as sqlcipher
    except ImportError:
        raise HushError(f"{why}: pip install 'hushscribe[encrypt]' (SQLCipher, with an SQLite of its own)") from None
    return sqlcipher


def _sqlcipher_connect(path: Path, passphrase: str):
    sqlcipher = _sqlcipher_module("an encrypted library needs SQLCipher")
    if not passphrase:
        raise HushError("the library's passphrase is empty: choose one (a few words are easier to keep than symbols)")
    db = sqlcipher.connect(str(path), check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA cipher_log_level = NONE")  # a wrong passphrase is our message, not SQLCipher's log line
    db.execute("PRAGMA key = '" + passphrase.replace("'", "''") + "'")
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlcipher.DatabaseError:
        db.close()
        raise HushError(f"wrong passphrase for the library {path}") from None
    return db


def _check_version(db, path: Path) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    elif version > SCHEMA_VERSION:
        raise HushError(f"the library {path} was made by a newer hushscribe (version {version}); upgrade hushscribe")


class Library:
    """An open library. Methods may be called from any thread (one at a time: the web page and the API server
    share one)."""

    def __init__(self, path: Path, db, *, encrypted: bool) -> None:
        self.path, self.encrypted = path, encrypted
        self._db = db
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- adding ---

    def add(self, transcript: Transcript, *, recording: Path | bytes | None = None, options=None,
            keep_audio: bool = False) -> int:
        """Save `transcript` (with the recording's size, hash and date, and the options it was made with; a copy of
        the recording when `keep_audio`). Returns its id."""
        data = _recording_bytes(recording, transcript.source) if recording is not None else None
        if keep_audio and data is None:
            raise HushError(f"{transcript.source}: there is no recording to keep a copy of")
        if keep_audio and len(data) > MAX_AUDIO_BYTES:
            raise HushError(f"{transcript.source} is {len(data) / (1 << 20):.0f} MB, more than the "
                            f"{MAX_AUDIO_BYTES >> 20} MB a library keeps of a recording; save it without its audio")
        recorded = None
        if isinstance(recording, Path):
            recorded = _iso(datetime.fromtimestamp(recording.stat().st_mtime, timezone.utc))
        with self._lock, self._transaction():
            transcript_id = self._insert_transcript(transcript, data, recorded, options)
            self._insert_segments(transcript_id, transcript.segments)
            self._db.executemany("INSERT INTO speakers VALUES (?, ?, ?)",
                                 [(transcript_id, s, n) for s, n in transcript.speakers.items()])
            if keep_audio:
                self._db.execute("INSERT INTO audio VALUES (?, ?, ?)", (transcript_id, transcript.source, data))
        return transcript_id

    def _insert_transcript(self, transcript: Transcript, data: bytes | None, recorded: str | None, options) -> int:
        cursor = self._db.execute(
            "INSERT INTO transcripts (source, size, sha256, recorded, added, duration, language, engine, model, "
            "options, processing_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (transcript.source, len(data) if data is not None else None,
             hashlib.sha256(data).hexdigest() if data is not None else None, recorded,
             _iso(datetime.now(timezone.utc)), transcript.duration, transcript.language, transcript.engine,
             transcript.model, json.dumps(_plain(options), ensure_ascii=False), transcript.processing_s))
        return cursor.lastrowid

    def _insert_segments(self, transcript_id: int, segments: list[Segment]) -> None:
        for segment in segments:
            cursor = self._db.execute(
                "INSERT INTO segments (transcript_id, start, end, text, language, speaker, flags, words) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (transcript_id, segment.start, segment.end, segment.text, segment.language, segment.speaker,
                 json.dumps(segment.flags), _words_json(segment.words)))
            self._db.execute("INSERT INTO segment_terms (rowid, terms) VALUES (?, ?)",
                             (cursor.lastrowid, " ".join(term.text for term in index_terms(segment.text))))

    # --- reading ---

    def entries(self, limit: int | None = None) -> list[Entry]:
        """The saved transcripts, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM transcripts ORDER BY id DESC LIMIT ?", (limit or -1,)).fetchall()
            return [self.entry(row[0]) for row in rows]

    def entry(self, transcript_id: int) -> Entry:
        with self._lock:
            row = self._db.execute(
                "SELECT id, source, added, duration, language, engine, model, size, sha256, recorded, options, "
                "EXISTS (SELECT 1 FROM audio WHERE transcript_id = t.id) FROM transcripts t WHERE id = ?",
                (_checked_id(transcript_id),)).fetchone()
            if row is None:
                raise NotInLibrary(f"there is no transcript {transcript_id} in the library; `hushscribe library "
                                   "list` shows the ids")
            speakers = dict(self._db.execute("SELECT speaker, name FROM speakers WHERE transcript_id = ? "
                                             "ORDER BY rowid", (row[0],)).fetchall())
        return Entry(*row[:10], speakers=speakers, has_audio=bool(row[11]), options=json.loads(row[10] or "null"))

    def transcript(self, transcript_id: int) -> Transcript:
        """The saved transcript, as it was made, with its speakers' names as they are now."""
        entry = self.entry(transcript_id)
        with self._lock:
            rows = self._db.execute("SELECT start, end, text, language, flags, words, speaker FROM segments "
                                    "WHERE transcript_id = ? ORDER BY id", (entry.id,)).fetchall()
        segments = [Segment(start, end, text, language, json.loads(flags or "[]"), _words(words), speaker)
                    for start, end, text, language, flags, words, speaker in rows]
        return Transcript(source=entry.source, duration=entry.duration, segments=segments, language=entry.language,
                          engine=entry.engine or "", model=entry.model or "", speakers=entry.speakers)

    def audio(self, transcript_id: int) -> tuple[str, bytes] | None:
        """The kept recording's (file name, bytes), or None when it was not kept."""
        with self._lock:
            row = self._db.execute("SELECT name, data FROM audio WHERE transcript_id = ?",
                                   (_checked_id(transcript_id),)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def search(self, query: SearchQuery) -> list[Hit]:
        """The segments that hold every word of the query, newest transcript first, each transcript's in order."""
        sql = ("SELECT s.transcript_id, t.source, t.added, s.start, s.end, s.speaker, s.text, "
               f"highlight(segment_terms, 0, char({ord(MARK_OPEN)}), char({ord(MARK_CLOSE)})) "
               "FROM segment_terms JOIN segments s ON s.id = segment_terms.rowid "
               "JOIN transcripts t ON t.id = s.transcript_id WHERE segment_terms MATCH ?")
        values: list = [query.fts]
        if query.since:
            sql += " AND t.added >= ?"
            values.append(query.since)
        if query.speaker:
            sql += (" AND EXISTS (SELECT 1 FROM speakers p WHERE p.transcript_id = s.transcript_id AND "
                    "p.speaker = s.speaker AND (p.speaker = ? COLLATE NOCASE OR instr(lower(p.name), lower(?))))")
            values += [query.speaker, query.speaker]
        sql += " ORDER BY segment_terms.rowid DESC LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*values, query.limit)).fetchall()
            names = self._speaker_names({row[0] for row in rows})
        hits = [Hit(tid, source, added, start, end, names.get((tid, speaker), speaker), text,
                    tuple(marked_spans(highlighted, index_terms(text), query.prefixes)))
                for tid, source, added, start, end, speaker, text, highlighted in rows]
        return sorted(hits, key=lambda hit: (-hit.transcript_id, hit.start))

    def _speaker_names(self, transcript_ids: set[int]) -> dict[tuple[int, str], str]:
        marks = ",".join("?" * len(transcript_ids))
        rows = self._db.execute(f"SELECT transcript_id, speaker, name FROM speakers WHERE transcript_id IN ({marks})",
                                tuple(transcript_ids)).fetchall()
        return {(tid, speaker): name for tid, speaker, name in rows}

    # --- changing ---

    def rename_speakers(self, transcript_id: int, names: dict[str, str] | list[str]) -> dict[str, str]:
        """Give a saved transcript's speakers names (as Transcript.rename_speakers takes them); returns them all."""
        transcript = self.transcript(transcript_id)
        transcript.rename_speakers(names)
        with self._lock, self._transaction():
            self._db.executemany("UPDATE speakers SET name = ? WHERE transcript_id = ? AND speaker = ?",
                                 [(name, transcript_id, s) for s, name in transcript.speakers.items()])
        return transcript.speakers

    def delete(self, transcript_id: int) -> Entry:
        """Remove a transcript: its rows, its index terms and its audio copy, leaving none of its text in the file."""
        entry = self.entry(transcript_id)
        with self._lock:
            with self._transaction():
                self._db.execute("DELETE FROM segment_terms WHERE rowid IN "
                                 "(SELECT id FROM segments WHERE transcript_id = ?)", (entry.id,))
                self._db.execute("DELETE FROM transcripts WHERE id = ?", (entry.id,))  # segments etc. cascade
            if not self.encrypted:
                # without FTS5's secure-delete a deleted row's terms stay in the index until it is merged: merge now
                self._db.execute("INSERT INTO segment_terms(segment_terms) VALUES ('optimize')")
        return entry

    def _transaction(self):
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises (the connection is in autocommit mode)."""

    def __init__(self, db) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, exc, trace) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _checked_id(transcript_id) -> int:
    try:
        value = int(str(transcript_id).strip().lstrip("#"))
    except ValueError:
        value = 0
    if value < 1:
        raise HushError(f"{transcript_id!r} is not a transcript id: ids are whole numbers, as "
                        "`hushscribe library list` shows them")
    return value


def _recording_bytes(recording: Path | bytes, name: str) -> bytes:
    if isinstance(recording, (bytes, bytearray)):
        return bytes(recording)
    try:
        return Path(recording).read_bytes()
    except OSError as exc:
        raise HushError(f"cannot read the recording to save it ({exc.strerror})", source=str(recording)) from None


def _plain(options):
    """Options as JSON takes them: dataclasses as dicts, tuples and sets as lists."""
    if is_dataclass(options):
        options = asdict(options)
    return json.loads(json.dumps(options, default=lambda value: sorted(value) if isinstance(value, (set, frozenset))
                                 else str(value)))


def _words_json(words: list[Word] | None) -> str | None:
    if words is None:
        return None
    return json.dumps([[w.start, w.end, w.text, w.probability] for w in words], ensure_ascii=False)


def _words(text: str | None) -> list[Word] | None:
    return None if text is None else [Word(*values) for values in json.loads(text)]
