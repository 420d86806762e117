"""Word timings kept true to the final text and to their contract (hushscribe/words.py)."""

from __future__ import annotations

import pytest

from hushscribe.transcript import Word
from hushscribe.words import MIN_WORD_S, retexted, tidy_times, word_texts


def keeps_the_contract(times: list[tuple[float, float]], duration: float) -> bool:
    """One timing per word, in order, inside [0, duration], never zero-length."""
    inside = all(0 <= start < end <= duration + 1e-9 for start, end in times)
    ordered = all(a[1] <= b[0] + 1e-9 for a, b in zip(times, times[1:]))
    return inside and ordered


@pytest.mark.parametrize("times,duration", [
    ([(1.0, 1.0)] * 5, 10.0),  # the aligner put five words in one 80 ms bin
    ([(2.0, 3.0), (1.0, 1.5), (4.0, 4.0)], 10.0),  # out of order
    ([(39.9, 41.0), (45.0, 46.0)], 30.0),  # past the segment's end
    ([(0.0, 0.0)] * 400, 1.0),  # more words than fit at MIN_WORD_S: shared evenly
    ([(-1.0, 0.2), (0.2, 0.2)], 0.5),
])
def test_tidy_times_keeps_the_contract(times, duration):
    tidy = tidy_times(times, duration)
    assert len(tidy) == len(times) and keeps_the_contract(tidy, duration)


def test_tidy_times_leaves_good_times_alone():
    times = [(0.08, 0.4), (0.48, 0.96), (1.2, 1.6)]
    assert tidy_times(times, 2.0) == times
    step = MIN_WORD_S
    assert tidy_times([(1.0, 1.0), (1.0, 1.0)], 5.0) == [(1.0, 1.0 + step), (1.0 + step, 1.0 + 2 * step)]


@pytest.mark.parametrize("text,tokens,expected", [
    ("Hello, world. This is it!", ["Hello", "world", "This", "is", "it"], ["Hello,", "world.", "This", "is", "it!"]),
    ("¿Qué pasa? U.S. army", ["Qué", "pasa", "US", "army"], ["¿Qué", "pasa?", "U.S.", "army"]),
    ("你好，世界OK", ["你", "好", "世", "界", "OK"], ["你", "好，", "世", "界", "OK"]),
    ("this is", ["this", "is"], ["this", "is"]),  # "is" is not the one inside "this"
    ("well-known", ["wellknown"], ["well-known"]),
])
def test_each_aligned_token_gets_its_own_stretch_of_the_text(text, tokens, expected):
    assert word_texts(text, tokens) == expected


def test_recognised_words_carry_the_filtered_text():
    # Whisper wrote Traditional characters and an ASCII comma; the output is Simplified with a full-width one
    words = [Word(0.0, 0.4, " 我們"), Word(0.4, 0.6, "說"), Word(0.6, 0.7, ","), Word(0.7, 1.2, "好的")]
    found = retexted(words, "我们说，好的")
    assert [w.text for w in found] == ["我们", "说", "，", "好的"]
    assert [(w.start, w.end) for w in found] == [(w.start, w.end) for w in words]
    # a repaired loop: the words whose text was cut go
    loop = [Word(i, i + 1, w) for i, w in enumerate([" And", " so", " so", " so", " on"])]
    assert [w.text for w in retexted(loop, "And so on")] == ["And", "so", "on"]
    assert retexted(loop, "") == []
