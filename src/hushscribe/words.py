"""Word timings kept true to the text every output shows: each word is a stretch of its segment's final text, and
its times keep one contract whatever timed them (Whisper's cross-attention, the Qwen3 forced aligner): one timing
per word, in order, inside the segment, never zero-length."""

from __future__ import annotations

import difflib
from dataclasses import replace

from hushscribe.transcript import Word

MIN_WORD_S = 0.02  # a word timed to one instant gets at least this long


def retexted(words: list[Word], text: str) -> list[Word]:
    """`words` as recognised, each now holding the stretch of the segment's final `text` that its own characters
    became (script converted, punctuation made full-width, a loop repaired), so that the words put together are
    the text; a word whose characters are all gone goes. Times are kept."""
    raw = "".join(w.text for w in words)
    owner = [i for i, w in enumerate(words) for _ in w.text]
    taken: list[int | None] = [None] * len(text)  # the word each character of `text` came from
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, raw, text, autojunk=False).get_opcodes():
        if tag in ("equal", "replace"):
            for k in range(j2 - j1):
                taken[j1 + k] = owner[i1 + k * (i2 - i1) // (j2 - j1)]
    last = next((i for i in taken if i is not None), None)
    if last is None:
        return []
    for position, i in enumerate(taken):  # what the filters added belongs to the word before it
        last = taken[position] = last if i is None else i
    stretches: dict[int, list[int]] = {}
    for position, i in enumerate(taken):
        stretches.setdefault(i, []).append(position)
    kept = [(i, text[p[0]:p[-1] + 1].strip()) for i, p in stretches.items()]
    return [replace(words[i], text=piece) for i, piece in kept if piece]


def word_texts(text: str, tokens: list[str]) -> list[str]:
    """The segment's own text for each aligned token (as the aligner splits text: punctuation dropped): from its
    first character up to the next token's, spaces stripped, so punctuation stays with its word ("¿Qué", "Hello,",
    "好，"). A token not found in order (it should always be) is given as itself."""
    starts, cursor = [], 0
    for token in tokens:
        span = _find_spread(text, token, cursor)
        starts.append(span[0] if span else None)
        cursor = span[1] if span else cursor
    found = [at for at in starts if at is not None]
    if found:
        starts[starts.index(found[0])] = found[0] = 0  # what comes before the first word belongs to it
    bounds = found + [len(text)]
    return [token if at is None else text[at:bounds[bounds.index(at) + 1]].strip() or token
            for token, at in zip(tokens, starts)]


def _find_spread(text: str, token: str, cursor: int) -> tuple[int, int] | None:
    """Where `token` is in `text` at or after `cursor` (start, end), its characters in order with only characters
    the aligner drops (punctuation) between them ("US" in "U.S."); None if it is not there."""
    at = text.find(token[0], cursor) if token else -1
    while at >= 0:
        position, matched = at, 0
        while position < len(text) and matched < len(token):
            if text[position] == token[matched]:
                matched += 1
            elif text[position].isspace() or text[position].isalnum():
                break
            position += 1
        if matched == len(token):
            return at, position
        at = text.find(token[0], at + 1)
    return None


def tidy_times(times: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Word (start, end) pairs made to keep the contract: inside [0, duration], in order, each at least MIN_WORD_S
    long (a word the aligner put in one instant pushes the next along); when that cannot fit, the words share the
    segment evenly."""
    step = min(MIN_WORD_S, duration / max(1, len(times)))
    fixed, previous = [], 0.0
    for start, end in times:
        start = min(max(start, previous), duration)
        end = max(end, start + step)
        fixed.append([start, end])
        previous = end
    following = duration  # from the end back: pull what runs past the segment inside it
    for word in reversed(fixed):
        word[1] = min(word[1], following)
        word[0] = min(word[0], word[1] - step)
        following = word[0]
    if fixed and fixed[0][0] < 0:
        share = duration / len(fixed)
        return [(i * share, (i + 1) * share) for i in range(len(fixed))]
    return [(round(start, 3), round(end, 3)) for start, end in fixed]


def tidied(words: list[Word], duration: float) -> list[Word]:
    """`words` (times relative to their segment) with times that keep the contract (tidy_times)."""
    times = tidy_times([(w.start, w.end) for w in words], duration)
    return [replace(w, start=start, end=end) for w, (start, end) in zip(words, times)]
