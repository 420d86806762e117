"""Speaker turns onto transcript segments: each segment takes its speaker, and one that spans a change of speaker
is split there."""

from __future__ import annotations

from dataclasses import replace

from hushscribe.speakers.turns import Turn
from hushscribe.text import is_spaceless
from hushscribe.transcript import Segment

MIN_SPLIT_S = 0.5  # a speaker's part of a segment shorter than this does not split it (padding, a cough)


def label_segments(segments: list[Segment], turns: list[Turn]) -> list[Segment]:
    """`segments` with their speaker set; a segment that spans a change of speaker is split there: between words
    where the segment has word timings, else at the pause between the two turns, its text cut at the break
    (space, punctuation, or between CJK characters) nearest the same share of its characters."""
    out: list[Segment] = []
    for segment in segments:
        runs = _runs([t for t in turns if t.end > segment.start and t.start < segment.end], segment)
        if not runs:  # between turns (padding around speech): the nearest turn's speaker
            nearest = min(turns, key=lambda t: max(t.start - segment.end, segment.start - t.end, 0.0), default=None)
            out.append(replace(segment, speaker=nearest.speaker if nearest else None))
        elif len(runs) == 1 or not segment.text:
            out.append(replace(segment, speaker=max(runs, key=lambda r: r[1] - r[0])[2]))
        else:
            out += _split(segment, runs)
    return out


def _runs(turns: list[Turn], segment: Segment) -> list[tuple[float, float, str]]:
    """The speakers' runs inside `segment`, (start, end, speaker) clipped to it: consecutive turns of one speaker
    as one run, and a run shorter than MIN_SPLIT_S given to its neighbours."""
    runs = _joined([(max(t.start, segment.start), min(t.end, segment.end), t.speaker) for t in turns])
    if len(runs) > 1:
        runs = _joined([r for r in runs if r[1] - r[0] >= MIN_SPLIT_S] or [max(runs, key=lambda r: r[1] - r[0])])
    return runs


def _joined(runs: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Consecutive runs of one speaker as one."""
    out: list[tuple[float, float, str]] = []
    for start, end, speaker in runs:
        if out and out[-1][2] == speaker:
            out[-1] = (out[-1][0], end, speaker)
        else:
            out.append((start, end, speaker))
    return out


def _split(segment: Segment, runs: list[tuple[float, float, str]]) -> list[Segment]:
    """Pieces of `segment`, one per run that has speech in it, in order; neighbours of one speaker are merged."""
    changes = [(a[1] + b[0]) / 2 for a, b in zip(runs, runs[1:])]  # the middle of the pause between two runs
    text = segment.text
    pieces: list[tuple[int, float, str, list | None]] = []  # (text position, start time, speaker, words)
    if segment.words:
        # each word goes to the run its middle falls in; a piece starts at its first word, found in the text
        # walking forward from the previous word (so a repeated word is found where it is)
        cursor = 0
        for word in segment.words:
            index = sum((word.start + word.end) / 2 >= c for c in changes)
            found = text.find(word.text.strip(), cursor) if word.text.strip() else -1
            at = found if found >= cursor else None
            if not pieces or pieces[-1][2] != runs[index][2]:
                position = at if at is not None else _break_near(text, cursor)
                pieces.append((max(position, pieces[-1][0] if pieces else 0), word.start, runs[index][2], []))
            pieces[-1][3].append(word)
            if at is not None:
                cursor = at + len(word.text.strip())
    else:
        span = max(segment.end - segment.start, 1e-6)
        for run, start in zip(runs, [segment.start, *changes]):
            position = _break_near(text, round(len(text) * (start - segment.start) / span)) if pieces else 0
            if pieces and pieces[-1][2] == run[2]:
                continue
            pieces.append((max(position, pieces[-1][0] if pieces else 0), start, run[2], None))
    pieces[0] = (0, segment.start, *pieces[0][2:])
    ends = [p[0] for p in pieces[1:]] + [len(text)]
    merged: list[tuple[int, float, str, list | None]] = []  # pieces with text; neighbours of one speaker joined
    for piece, end in zip(pieces, ends):
        if not text[piece[0]:end].strip():
            continue
        if merged and merged[-1][2] == piece[2]:
            merged[-1] = (*merged[-1][:3], (merged[-1][3] or []) + (piece[3] or []) if segment.words else None)
        else:
            merged.append(piece)
    out = []
    for i, (position, start, speaker, words) in enumerate(merged):
        end_position, end = (merged[i + 1][0], merged[i + 1][1]) if i + 1 < len(merged) else (len(text), segment.end)
        out.append(replace(segment, start=start, end=end, text=text[position:end_position].strip(), speaker=speaker,
                           words=words if segment.words else None, flags=list(segment.flags)))
    return out or [replace(segment, speaker=runs[0][2])]


def _break_near(text: str, target: int) -> int:
    """The place to cut `text` nearest `target`: after punctuation or at a space, or between two CJK characters."""

    def fits(i: int) -> bool:
        return 0 < i < len(text) and (text[i].isspace() or text[i - 1] in "。！？，、；：.!?,;:"
                                      or (is_spaceless(text[i - 1]) and is_spaceless(text[i])))

    for distance in range(len(text)):
        for i in (target - distance, target + distance):
            if fits(i):
                return i
    return min(max(target, 0), len(text))
