"""The embedded Whisper engine's own decoding: timestamps and where a long window stopped, and the sampled
decode that replaces a looping beam search."""

from __future__ import annotations

import pytest

from hushscribe.audio import decode
from hushscribe.engines.base import RecognitionOptions
from hushscribe.engines.whisper import SAMPLES_PER_TIMESTAMP, _timestamped
from hushscribe.text import loops

T = 50_000  # a timestamp_begin; <|n * 0.02|> is T + n


@pytest.mark.parametrize("tokens, kept, resume", [
    # ends on a single timestamp: the sentences are done; what follows 8.00 s is decoded when long enough
    ([T, 1, 2, T + 100, T + 100, 3, 4, T + 400], None, 400),
    ([1, 2, 3], None, None),  # no timestamps at all (decoded without them)
    # ends on two timestamps: keep up to the last finished sentence, decode on from 2.00 s
    ([T, 1, 2, T + 100, T + 100, 3, T + 250, T + 250], [T, 1, 2, T + 100, T + 100, 3, T + 250], 250),
    # a sentence cut off by the token cap after a finished one: decode it again from 2.00 s
    ([T, 1, 2, T + 100, T + 100, 3, 4, 5], [T, 1, 2, T + 100], 100),
])
def test_a_window_that_stops_early_is_decoded_on_from_its_last_timestamp(tokens, kept, resume):
    assert _timestamped(tokens, T) == ((tokens if kept is None else kept),
                                       None if resume is None else resume * SAMPLES_PER_TIMESTAMP)


@pytest.mark.slow
def test_the_sampled_decode_of_a_looping_segment_is_the_same_every_time(transcriber, clip):
    """The child's poem over music: the beam search loops; sampling, from a fixed seed, gives the same text on every
    call (a fresh model, seeded anew, for each). Whether sampling escapes the loop depends on the clip: on the 27 s
    reading every temperature loops too, which the transcriber meets by cutting the segment first (and flagging a loop
    that survives, tests/test_transcriber.py)."""
    engine = transcriber.engine
    poem = decode(clip("child_reading_poem")["path"])
    (plain,) = engine.recognize([poem], RecognitionOptions(language="zh"))
    assert loops(plain.text)
    sampled = [engine.recognize([poem], RecognitionOptions(language="zh", sampled=True))[0].text for _ in range(2)]
    assert sampled[0] == sampled[1] and sampled[0] and sampled[0] != plain.text
