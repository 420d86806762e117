"""BatchingEngine: the one queue in front of a model that the API server's requests share."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from hushscribe.engines.base import Recognition, RecognitionOptions
from hushscribe.engines.batching import BatchingEngine


class CountingEngine:
    """Answers each segment with its first sample (so that a caller can tell its own results), records the
    number of segments of every call, and holds its first call until `waiting` more calls are queued behind it."""

    name, model_name, batch_size, device, word_timing = "counting", "test", 4, "cpu", None

    def __init__(self, waiting: int) -> None:
        self.waiting, self.calls, self.entered, self.queued = waiting, [], threading.Event(), None

    def supports_language(self, language):
        return True

    def language_probabilities(self, segments):
        return None

    def recognize(self, segments, options):
        if not self.calls:
            self.entered.set()
            deadline = time.monotonic() + 30
            while self.queued() < self.waiting and time.monotonic() < deadline:
                time.sleep(0.01)
        self.calls.append(len(segments))
        return [Recognition(str(int(segment[0])), options.language) for segment in segments]


def test_calls_share_batches_but_never_overfill_one():
    """Room for four segments a batch; four callers of three segments each queue together behind a first: a
    call that would overfill a batch opens the next one, where it used to be taken along (3 + 3 segments, which
    the engine runs as a batch of four and one of two); every caller gets its own results."""
    engine = CountingEngine(waiting=4)
    batching = BatchingEngine(engine)
    engine.queued = batching._queue.qsize
    options = RecognitionOptions(language="en")

    def call(caller: int) -> list[str]:
        segments = [np.full(160, 10 * caller + i, np.float32) for i in range(3)]
        return [rec.text for rec in batching.recognize(segments, options)]

    with ThreadPoolExecutor(5) as pool:
        first = pool.submit(call, 0)
        assert engine.entered.wait(30)
        answers = list(pool.map(call, range(1, 5)))
    assert first.result() == ["0", "1", "2"]
    assert answers == [[str(10 * caller + i) for i in range(3)] for caller in range(1, 5)]
    assert engine.calls == [3] * 5
